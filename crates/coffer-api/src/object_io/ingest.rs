//! Request bodies into staged blobs: aws-chunked decoding and every
//! integrity check the request asked for (payload SHA-256, flexible
//! checksum, Content-MD5, OSS CRC-64), in a blocking worker fed by the
//! connection.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use coffer_auth::checksum::{ChecksumAlgorithm, Checksummer};
use coffer_auth::chunked::Trailers;
use coffer_auth::sigv4::Payload;
use http::HeaderMap;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use tokio::sync::mpsc;

use super::writer::{BlobTarget, BodyWriter, StagedBody, discard};
use crate::body_checks::{BodyChecks, sha256_mismatch};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

/// Largest body a single PUT or part may carry (S3's limit).
pub const MAX_SINGLE_UPLOAD: u64 = 5 * 1024 * 1024 * 1024;
/// Body frames in flight between the connection and the writer thread. Few:
/// a frame may be a few hundred KiB (hyper's read buffer), and with many
/// concurrent uploads these queues are most of the server's memory.
const FRAMES_IN_FLIGHT: usize = 4;

/// Where the expected value of a body's flexible checksum comes from.
enum Expected {
    /// An `x-amz-checksum-*` header.
    Header(String),
    /// The aws-chunked trailer announced by `x-amz-trailer`.
    Trailer,
    /// Nowhere: the checksum is computed for the record (a part of an
    /// upload that declared an algorithm, sent without one), not checked.
    Computed,
}

/// What a request says its body must satisfy.
pub struct BodyRules {
    /// Payload mode from the signature.
    payload: Payload,
    /// `Content-MD5`, decoded.
    content_md5: Option<[u8; 16]>,
    /// The flexible checksum: algorithm and where its expected value is.
    checksum: Option<(ChecksumAlgorithm, Expected)>,
    /// `x-amz-decoded-content-length` for aws-chunked bodies.
    decoded_length: Option<u64>,
    /// `x-oss-hash-crc64ecma` sent by an OSS client: the body's CRC-64/XZ.
    crc64: Option<u64>,
}

impl BodyRules {
    /// Reads the integrity headers of an upload request.
    pub fn from_headers(headers: &HeaderMap, payload: Payload) -> ApiResult<Self> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let content_md5 = header("content-md5")
            .map(|b64| {
                BASE64
                    .decode(b64.trim())
                    .ok()
                    .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
                    .ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::InvalidDigest,
                            "The Content-MD5 you specified was invalid.",
                        )
                    })
            })
            .transpose()?;

        let mut checksum = None;
        for (name, value) in headers {
            if let Some(algorithm) = ChecksumAlgorithm::from_header_name(name.as_str()) {
                if checksum.is_some() {
                    return Err(ApiError::invalid_request(
                        "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                    ));
                }
                let value = value
                    .to_str()
                    .map_err(|_| ApiError::invalid_request("Invalid checksum header value"))?;
                checksum = Some((algorithm, Expected::Header(value.to_owned())));
            }
        }
        if let Some(trailer) = header("x-amz-trailer") {
            let algorithm =
                ChecksumAlgorithm::from_header_name(trailer.trim()).ok_or_else(|| {
                    ApiError::invalid_request(format!("Unsupported trailer {trailer}"))
                })?;
            if checksum.is_some() {
                return Err(ApiError::invalid_request(
                    "A checksum cannot be sent both as a header and as a trailer",
                ));
            }
            checksum = Some((algorithm, Expected::Trailer));
        }
        let chunked = matches!(
            payload,
            Payload::StreamingSigned(_)
                | Payload::StreamingSignedTrailer(_)
                | Payload::StreamingUnsignedTrailer
        );
        let decoded_length = match header("x-amz-decoded-content-length") {
            Some(text) => Some(text.parse::<u64>().map_err(|_| {
                ApiError::invalid_argument("x-amz-decoded-content-length must be a number")
            })?),
            None if chunked => {
                return Err(ApiError::new(
                    ErrorCode::MissingContentLength,
                    "You must provide the x-amz-decoded-content-length header for aws-chunked bodies.",
                ));
            }
            None => None,
        };
        if let Some(len) = decoded_length.or_else(|| content_length(headers))
            && len > MAX_SINGLE_UPLOAD
        {
            return Err(ApiError::new(
                ErrorCode::EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed object size.",
            ));
        }
        let crc64 = header("x-oss-hash-crc64ecma")
            .map(|text| {
                text.trim().parse::<u64>().map_err(|_| {
                    ApiError::invalid_argument("x-oss-hash-crc64ecma must be a decimal CRC-64")
                })
            })
            .transpose()?;
        Ok(Self {
            payload,
            content_md5,
            checksum,
            decoded_length,
            crc64,
        })
    }
}

impl BodyRules {
    /// Makes sure the body's `algorithm` checksum is computed (a part of an
    /// upload that declared it): checked if the request sent one, computed
    /// if it sent none; a checksum of another algorithm is refused, as S3
    /// refuses it.
    pub fn with_checksum(mut self, algorithm: ChecksumAlgorithm) -> ApiResult<Self> {
        match &self.checksum {
            None => self.checksum = Some((algorithm, Expected::Computed)),
            Some((sent, _)) if *sent == algorithm => {}
            Some((sent, _)) => {
                return Err(ApiError::invalid_request(format!(
                    "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                    algorithm.name().to_ascii_lowercase(),
                    sent.name().to_ascii_lowercase()
                )));
            }
        }
        Ok(self)
    }
}

/// The `Content-Length` header as a number; `None` when absent or not a number.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

enum Frame {
    Data(Bytes),
    End,
}

/// The next frame of a request body: `None` at its end; RequestTimeout if
/// the client sends nothing for `idle` (a stalled or slow-loris body would
/// otherwise hold its connection forever); IncompleteBody if the connection
/// fails or ends early.
pub async fn next_frame(
    body: &mut Incoming,
    idle: Duration,
) -> ApiResult<Option<hyper::body::Frame<Bytes>>> {
    match tokio::time::timeout(idle, body.frame()).await {
        Err(_) => Err(ApiError::request_timeout()),
        Ok(None) => Ok(None),
        Ok(Some(Ok(frame))) => Ok(Some(frame)),
        Ok(Some(Err(error))) => {
            tracing::debug!(%error, "request body failed");
            Err(ApiError::incomplete_body())
        }
    }
}

/// An upload's bytes as they arrive: the request body itself, or the file
/// part of a browser form upload. Either way it goes through [`ingest`]: one
/// body path, one sealing path.
pub trait BodyStream: Send {
    /// The next bytes; `None` at the end. RequestTimeout after `idle`
    /// without any, IncompleteBody if the connection fails; a stream may
    /// refuse its bytes (a form's size limits) with its own error.
    fn next_data(
        &mut self,
        idle: Duration,
    ) -> impl std::future::Future<Output = ApiResult<Option<Bytes>>> + Send;
}

impl BodyStream for Incoming {
    async fn next_data(&mut self, idle: Duration) -> ApiResult<Option<Bytes>> {
        while let Some(frame) = next_frame(self, idle).await? {
            // Trailer frames carry no body bytes (aws-chunked trailers are in the data).
            if let Ok(data) = frame.into_data() {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }
}

/// Streams a request body into a staged blob of `state`'s blob store,
/// verifying every integrity claim the request made. On any error nothing is
/// left behind: the unfinished blob is dropped and, when the metadata store
/// keeps pending rows, discarded with its row.
pub async fn ingest(
    state: &AppState,
    mut body: impl BodyStream,
    rules: BodyRules,
    target: BlobTarget,
    idle: Duration,
) -> ApiResult<StagedBody> {
    let (tx, rx) = mpsc::channel::<Frame>(FRAMES_IN_FLIGHT);
    let (blobs, meta) = (Arc::clone(&state.blobs), Arc::clone(&state.meta));
    let runtime = tokio::runtime::Handle::current();
    let worker = tokio::task::spawn_blocking(move || {
        let writer = BodyWriter::new(runtime, blobs.as_ref(), meta.as_ref(), target)
            .map_err(|error| (error, None))?;
        let pending = writer.pending_row().cloned();
        write_staged(writer, rx, rules).map_err(|error| (error, pending))
    });

    let mut failure = None;
    loop {
        match body.next_data(idle).await {
            Ok(Some(data)) => {
                if tx.send(Frame::Data(data)).await.is_err() {
                    break; // the worker stopped early: its error says why
                }
            }
            Err(error) => {
                failure = Some(error);
                break;
            }
            Ok(None) => {
                let _ = tx.send(Frame::End).await;
                break;
            }
        }
    }
    drop(tx);
    let written = worker
        .await
        .map_err(|e| ApiError::internal("body writer", e))?;
    let (error, pending) = match (failure, written) {
        (None, Ok(staged)) => return Ok(staged),
        (Some(error), Ok(staged)) => (error, Some(staged.blob)),
        (Some(error), Err((_, pending))) | (None, Err((error, pending))) => (error, pending),
    };
    if let Some(blob) = pending {
        discard(state, &[blob]).await;
    }
    Err(error)
}

fn write_staged(
    mut writer: BodyWriter,
    mut rx: mpsc::Receiver<Frame>,
    rules: BodyRules,
) -> ApiResult<StagedBody> {
    let BodyChecks {
        mut decoder,
        sha256: expected_sha256,
    } = BodyChecks::from(rules.payload);
    let mut sha256 = expected_sha256.map(|_| Sha256::new());
    let mut checksummer = rules
        .checksum
        .as_ref()
        .map(|(algorithm, _)| Checksummer::new(*algorithm));
    let mut decoded = Vec::new();

    {
        let mut consume = |data: &[u8]| -> ApiResult<()> {
            if writer.size() + data.len() as u64 > MAX_SINGLE_UPLOAD {
                return Err(ApiError::new(
                    ErrorCode::EntityTooLarge,
                    "Your proposed upload exceeds the maximum allowed object size.",
                ));
            }
            if let Some(h) = sha256.as_mut() {
                h.update(data);
            }
            if let Some(c) = checksummer.as_mut() {
                c.update(data);
            }
            writer.write(data)
        };
        loop {
            match rx.blocking_recv() {
                Some(Frame::Data(bytes)) => match decoder.as_mut() {
                    Some(decoder) => {
                        decoded.clear();
                        decoder
                            .push(&bytes, &mut decoded)
                            .map_err(ApiError::chunked)?;
                        consume(&decoded)?;
                    }
                    None => consume(&bytes)?,
                },
                Some(Frame::End) => break,
                None => return Err(ApiError::incomplete_body()),
            }
        }
    }

    let trailers = match decoder {
        Some(decoder) => decoder.finish().map_err(ApiError::chunked)?,
        None => Trailers::default(),
    };
    if let Some(expected) = rules.decoded_length
        && expected != writer.size()
    {
        return Err(ApiError::incomplete_body());
    }
    if let (Some(expected), Some(hasher)) = (expected_sha256, sha256)
        && hasher.finalize().as_slice() != expected.as_slice()
    {
        return Err(sha256_mismatch());
    }
    if let Some(expected) = rules.content_md5
        && expected != writer.md5()
    {
        return Err(ApiError::bad_digest(
            "The Content-MD5 you specified did not match what we received.",
        ));
    }
    let checksum = match (rules.checksum, checksummer) {
        (Some((algorithm, expected)), Some(checksummer)) => {
            let computed = checksummer.finish();
            let expected = match expected {
                Expected::Header(value) => Some(value),
                Expected::Trailer => trailers.get(algorithm.header_name()).map(str::to_owned),
                Expected::Computed => Some(computed.clone()),
            };
            match expected {
                Some(value) if value.trim() == computed => Some((algorithm, computed)),
                Some(_) => {
                    return Err(ApiError::bad_digest(format!(
                        "The {} you specified did not match the calculated checksum.",
                        algorithm.name()
                    )));
                }
                None => {
                    return Err(ApiError::invalid_request(format!(
                        "The trailer {} was announced but not sent.",
                        algorithm.header_name()
                    )));
                }
            }
        }
        _ => None,
    };
    if rules
        .crc64
        .is_some_and(|expected| expected != writer.crc64())
    {
        return Err(ApiError::new(
            ErrorCode::InvalidDigest,
            "The x-oss-hash-crc64ecma you specified did not match what we received.",
        ));
    }
    let mut staged = writer.finish()?;
    staged.checksum = checksum;
    Ok(staged)
}
