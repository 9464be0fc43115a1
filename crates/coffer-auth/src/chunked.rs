//! A push-based decoder for the `aws-chunked` content encoding.
//!
//! ```text
//! <hex size>[;chunk-signature=<64 hex>]\r\n<data>\r\n      (repeated)
//! 0[;chunk-signature=<64 hex>]\r\n
//! [name:value\r\n ...]  [x-amz-trailer-signature:<64 hex>\r\n]
//! \r\n
//! ```
//!
//! Data is streamed to the caller as it arrives and hashed incrementally, so
//! memory stays bounded whatever the chunk size. A chunk's signature is only
//! known to be right once its last byte arrived: on any error the caller must
//! discard everything decoded so far. See
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html>.

use sha2::{Digest as _, Sha256};

use crate::chunk_signer::ChunkSigner;
use crate::mac::decode_hex32;

/// Longest chunk-header or trailer line, without its CRLF.
pub const MAX_LINE: usize = 4096;
/// Largest accepted chunk.
pub const MAX_CHUNK_SIZE: u64 = 64 * 1024 * 1024;
/// Most trailer lines accepted (the signature line excluded).
pub const MAX_TRAILERS: usize = 16;

/// The trailer line that carries the trailer signature.
pub const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";

/// Whether chunks carry signatures.
#[derive(Debug)]
pub enum ChunkMode {
    /// No chunk signatures (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`); chunk
    /// extensions are ignored.
    Unsigned,
    /// Every chunk, and the trailer if expected, must be signed.
    Signed(ChunkSigner),
}

/// Why an aws-chunked body was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The framing is wrong.
    #[error("malformed aws-chunked body: {0}")]
    Malformed(&'static str),
    /// A chunk-header or trailer line exceeds [`MAX_LINE`].
    #[error("malformed aws-chunked body: line too long")]
    LineTooLong,
    /// A chunk exceeds [`MAX_CHUNK_SIZE`].
    #[error("aws-chunked chunk size exceeds the limit")]
    ChunkTooLarge,
    /// More than [`MAX_TRAILERS`] trailer lines.
    #[error("malformed aws-chunked body: too many trailers")]
    TooManyTrailers,
    /// A chunk or trailer signature does not match.
    #[error("The request signature we calculated does not match the signature you provided.")]
    SignatureMismatch,
    /// The body ended before the final chunk and trailer.
    #[error("the aws-chunked body ended early")]
    Incomplete,
    /// Bytes after the end of the aws-chunked body.
    #[error("malformed aws-chunked body: data after the final chunk")]
    TrailingData,
}

impl ChunkError {
    /// The S3 error code for the response body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SignatureMismatch => "SignatureDoesNotMatch",
            Self::Incomplete => "IncompleteBody",
            _ => "InvalidRequest",
        }
    }

    /// The HTTP status code for the response.
    pub fn status(&self) -> u16 {
        match self {
            Self::SignatureMismatch => 403,
            _ => 400,
        }
    }
}

/// Trailer headers, names lower-cased, in the order received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trailers(pub Vec<(String, String)>);

impl Trailers {
    /// The value of trailer `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The trailers as `(name, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Whether there are no trailers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a `<size>[;ext]` line.
    ChunkHeader,
    /// Passing chunk data through.
    Data { remaining: u64 },
    /// Expecting the CRLF after chunk data.
    DataEnd { seen_cr: bool },
    /// Reading trailer lines up to the empty line.
    Trailer,
    /// The body is complete.
    Done,
}

/// Decodes an aws-chunked body pushed in arbitrary pieces.
#[derive(Debug)]
pub struct ChunkedDecoder {
    signer: Option<ChunkSigner>,
    expect_trailer: bool,
    state: State,
    line: Vec<u8>,
    chunk_hash: Sha256,
    chunk_signature: [u8; 32],
    trailer_hash: Sha256,
    trailer_signed: bool,
    trailers: Trailers,
    decoded_len: u64,
    failed: Option<ChunkError>,
}

impl ChunkedDecoder {
    /// A decoder; `expect_trailer` is true for the `*-TRAILER` payload kinds.
    pub fn new(mode: ChunkMode, expect_trailer: bool) -> Self {
        Self {
            signer: match mode {
                ChunkMode::Unsigned => None,
                ChunkMode::Signed(signer) => Some(signer),
            },
            expect_trailer,
            state: State::ChunkHeader,
            line: Vec::new(),
            chunk_hash: Sha256::new(),
            chunk_signature: [0; 32],
            trailer_hash: Sha256::new(),
            trailer_signed: false,
            trailers: Trailers::default(),
            decoded_len: 0,
            failed: None,
        }
    }

    /// Bytes of decoded data so far (compare with `x-amz-decoded-content-length`).
    pub fn decoded_len(&self) -> u64 {
        self.decoded_len
    }

    /// Whether the final chunk and trailer have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, appending chunk data to `out`. After an error every
    /// later call fails too, and all output so far must be discarded.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.push_inner(input, out);
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    /// Ends the body and returns the trailers; fails if the body is incomplete.
    pub fn finish(self) -> Result<Trailers, ChunkError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if self.state != State::Done {
            return Err(ChunkError::Incomplete);
        }
        Ok(self.trailers)
    }

    fn push_inner(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkError> {
        while let Some((&first, rest)) = input.split_first() {
            match self.state {
                State::Data { remaining } => {
                    let n = usize::try_from(remaining).map_or(input.len(), |r| r.min(input.len()));
                    let (data, rest) = input.split_at(n);
                    out.extend_from_slice(data);
                    if self.signer.is_some() {
                        self.chunk_hash.update(data);
                    }
                    self.decoded_len += n as u64;
                    input = rest;
                    let remaining = remaining - n as u64;
                    if remaining == 0 {
                        self.end_of_chunk_data()?;
                        self.state = State::DataEnd { seen_cr: false };
                    } else {
                        self.state = State::Data { remaining };
                    }
                }
                State::DataEnd { seen_cr } => {
                    input = rest;
                    self.state = match (seen_cr, first) {
                        (false, b'\r') => State::DataEnd { seen_cr: true },
                        (true, b'\n') => State::ChunkHeader,
                        _ => {
                            return Err(ChunkError::Malformed(
                                "chunk data is not followed by CRLF",
                            ));
                        }
                    };
                }
                State::ChunkHeader | State::Trailer => {
                    let (consumed, complete) = self.read_line(input)?;
                    input = &input[consumed..];
                    if complete {
                        let line = std::mem::take(&mut self.line);
                        if self.state == State::ChunkHeader {
                            self.on_chunk_header(&line)?;
                        } else {
                            self.on_trailer_line(&line)?;
                        }
                    }
                }
                State::Done => return Err(ChunkError::TrailingData),
            }
        }
        Ok(())
    }

    /// Accumulates a line; returns (bytes consumed, whether a CRLF ended it).
    /// On completion `self.line` holds the line without its CRLF.
    fn read_line(&mut self, input: &[u8]) -> Result<(usize, bool), ChunkError> {
        let (part, complete) = match input.iter().position(|&b| b == b'\n') {
            Some(i) => (&input[..i], true),
            None => (input, false),
        };
        if self.line.len() + part.len() > MAX_LINE + 1 {
            return Err(ChunkError::LineTooLong);
        }
        self.line.extend_from_slice(part);
        if !complete {
            return Ok((part.len(), false));
        }
        if self.line.pop() != Some(b'\r') {
            return Err(ChunkError::Malformed("a line does not end with CRLF"));
        }
        if self.line.len() > MAX_LINE {
            return Err(ChunkError::LineTooLong);
        }
        if self.line.contains(&b'\r') {
            return Err(ChunkError::Malformed("stray CR in a line"));
        }
        Ok((part.len() + 1, true))
    }

    fn on_chunk_header(&mut self, line: &[u8]) -> Result<(), ChunkError> {
        let (size, extension) = match line.iter().position(|&b| b == b';') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        };
        if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
            return Err(ChunkError::Malformed("invalid chunk size"));
        }
        let size = size
            .iter()
            .try_fold(0u64, |acc, &d| {
                let digit = char::from(d).to_digit(16)?;
                acc.checked_mul(16)?.checked_add(u64::from(digit))
            })
            .ok_or(ChunkError::Malformed("invalid chunk size"))?;
        if size > MAX_CHUNK_SIZE {
            return Err(ChunkError::ChunkTooLarge);
        }
        if self.signer.is_some() {
            self.chunk_signature = extension
                .and_then(|e| e.strip_prefix(b"chunk-signature="))
                .and_then(decode_hex32)
                .ok_or(ChunkError::Malformed(
                    "a chunk lacks a valid chunk-signature",
                ))?;
            self.chunk_hash = Sha256::new();
        }
        if size == 0 {
            self.end_of_chunk_data()?;
            self.state = State::Trailer;
        } else {
            self.state = State::Data { remaining: size };
        }
        Ok(())
    }

    /// Checks the signature of the chunk whose data just ended.
    fn end_of_chunk_data(&mut self) -> Result<(), ChunkError> {
        let Some(signer) = &mut self.signer else {
            return Ok(());
        };
        let digest: [u8; 32] = std::mem::take(&mut self.chunk_hash).finalize().into();
        if signer.verify_chunk(&digest, &self.chunk_signature) {
            Ok(())
        } else {
            Err(ChunkError::SignatureMismatch)
        }
    }

    fn on_trailer_line(&mut self, line: &[u8]) -> Result<(), ChunkError> {
        if line.is_empty() {
            if self.expect_trailer && self.signer.is_some() && !self.trailer_signed {
                return Err(ChunkError::Malformed("the trailer signature is missing"));
            }
            self.state = State::Done;
            return Ok(());
        }
        if !self.expect_trailer {
            return Err(ChunkError::Malformed("a trailer was not announced"));
        }
        if self.trailer_signed {
            return Err(ChunkError::Malformed(
                "a trailer follows the trailer signature",
            ));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ChunkError::Malformed("a trailer line lacks ':'"))?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty()
            || !name
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ChunkError::Malformed("invalid trailer name"));
        }
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let value = std::str::from_utf8(value)
            .map_err(|_| ChunkError::Malformed("a trailer value is not valid text"))?
            .trim_matches([' ', '\t']);
        if name == TRAILER_SIGNATURE {
            let Some(signer) = &mut self.signer else {
                return Err(ChunkError::Malformed(
                    "a trailer signature in an unsigned body",
                ));
            };
            let provided = decode_hex32(value.as_bytes()).ok_or(ChunkError::Malformed(
                "the trailer signature is not 64 hex digits",
            ))?;
            let digest: [u8; 32] = std::mem::take(&mut self.trailer_hash).finalize().into();
            if !signer.verify_trailer(&digest, &provided) {
                return Err(ChunkError::SignatureMismatch);
            }
            self.trailer_signed = true;
            return Ok(());
        }
        if self.trailers.get(&name).is_some() {
            return Err(ChunkError::Malformed("a trailer appears twice"));
        }
        if self.trailers.0.len() >= MAX_TRAILERS {
            return Err(ChunkError::TooManyTrailers);
        }
        if self.signer.is_some() {
            self.trailer_hash.update(line);
            self.trailer_hash.update(b"\n");
        }
        self.trailers.0.push((name, value.to_owned()));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
