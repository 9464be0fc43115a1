//! Request bodies into staged blobs: aws-chunked decoding and every
//! integrity check the request asked for (payload SHA-256, flexible
//! checksum, Content-MD5, OSS CRC-64), checked, hashed and sealed in the
//! connection's task as the frames arrive, each finished batch written by a
//! blocking worker; a small body (at most [`SMALL_BODY`] bytes) is read whole
//! and staged from the connection's task, with the same checks.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use coffer_auth::checksum::{ChecksumAlgorithm, Checksummer};
use coffer_auth::chunked::{ChunkedDecoder, Trailers};
use coffer_auth::sigv4::Payload;
use coffer_store::BlobId;
use http::HeaderMap;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use tokio::sync::mpsc;

use super::writer::{
    BlobSink, BlobTarget, BodyEncoder, Digests, StagedBody, discard, stage_encoded, staged,
};
use crate::body_checks::{BodyChecks, sha256_mismatch};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

/// Largest body a single PUT or part may carry (S3's limit).
pub const MAX_SINGLE_UPLOAD: u64 = 5 * 1024 * 1024 * 1024;
/// Batches queued for the writer thread besides the one it writes and the
/// one being filled: one, so an upload holds at most three batch buffers
/// (with many concurrent uploads these are most of the server's memory).
const BATCHES_IN_FLIGHT: usize = 1;
/// A body announced at most this long is read whole in the connection's
/// task and hashed, sealed and handed to the store from there: for such a
/// body the blocking worker, its channel and its batch buffer cost more than
/// the work (a 4 KiB body hashes and seals in microseconds; 64 KiB in
/// about 0.1 ms).
pub const SMALL_BODY: u64 = 64 * 1024;

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
    /// The body's (decoded) length as announced: an upper bound only (a
    /// form upload's file is shorter than its request), never trusted.
    announced: Option<u64>,
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
        let announced = decoded_length.or_else(|| content_length(headers));
        if let Some(len) = announced
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
            announced,
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
    // A body announced small is read whole first; should it be longer after
    // all, what was read goes first down the streaming path.
    let mut head = Vec::new();
    if rules.announced.is_some_and(|len| len <= SMALL_BODY) {
        let mut read = 0;
        while read <= SMALL_BODY {
            match body.next_data(idle).await? {
                Some(data) => {
                    read += data.len() as u64;
                    head.push(data);
                }
                None => return ingest_small(state, &head, rules, target).await,
            }
        }
    }

    let (tx, rx) = mpsc::channel::<Batch>(BATCHES_IN_FLIGHT);
    let (blobs, meta) = (Arc::clone(&state.blobs), Arc::clone(&state.meta));
    let runtime = tokio::runtime::Handle::current();
    let writer = tokio::task::spawn_blocking(move || {
        let sink =
            BlobSink::new(runtime, blobs.as_ref(), meta.as_ref()).map_err(|error| (error, None))?;
        let pending = sink.pending_row().cloned();
        write_batches(sink, rx).map_err(|error| (error, pending))
    });
    let encoded = encode_frames(
        &mut body,
        head,
        BodyCheck::new(rules),
        BodyEncoder::new(target, None),
        &tx,
        idle,
    )
    .await;
    drop(tx);
    let written = writer
        .await
        .map_err(|e| ApiError::internal("body writer", e))?;
    let (error, pending) = match (encoded, written) {
        (Ok((digests, checksum)), Ok((blob, stored))) => {
            let mut staged = staged(blob, stored, digests);
            staged.checksum = checksum;
            return Ok(staged);
        }
        // The writer stopped first: its error says why.
        (Err(None), Err((error, pending))) | (Ok(_), Err((error, pending))) => (error, pending),
        (Err(None), Ok((blob, _))) => (ApiError::incomplete_body(), Some(blob)),
        (Err(Some(error)), Ok((blob, _))) => (error, Some(blob)),
        (Err(Some(error)), Err((_, pending))) => (error, pending),
    };
    if let Some(blob) = pending {
        discard(state, &[blob]).await;
    }
    Err(error)
}

/// What the connection's task hands the blob writer.
enum Batch {
    /// The blob's next bytes, a page-aligned batch.
    Data(Bytes),
    /// Every batch was sent and the body passed its checks: finish the blob.
    End,
}

/// The connection's half of a streamed body: each frame is checked, copied
/// once into its place in a page-aligned batch, hashed there and sealed in
/// place (`BodyEncoder`) before the next frame is read, and each finished
/// batch goes to the blob writer. A frame is dropped before the next read,
/// so hyper refills the read buffer it came in (no fresh allocation and
/// page faults per read, and the bytes are still in cache when copied); the
/// writer thread wakes once per batch, not per frame. The work per poll is
/// one frame's (at most hyper's read buffer, ≈ 400 KiB: about 0.5 ms of
/// MD5 and AES-GCM). `Err(None)`: the writer stopped (its error says why).
async fn encode_frames(
    body: &mut impl BodyStream,
    head: Vec<Bytes>,
    mut check: BodyCheck,
    mut encoder: BodyEncoder,
    tx: &mpsc::Sender<Batch>,
    idle: Duration,
) -> Result<(Digests, Option<(ChecksumAlgorithm, String)>), Option<ApiError>> {
    let mut ready = Vec::new();
    let mut head = head.into_iter();
    loop {
        let data = match head.next() {
            Some(data) => data,
            None => match body.next_data(idle).await? {
                Some(data) => data,
                None => break,
            },
        };
        check.push(&data, |plain| {
            encoder.write(plain, &mut |batch| {
                ready.push(batch);
                Ok(())
            })
        })?;
        drop(data);
        for batch in ready.drain(..) {
            tx.send(Batch::Data(batch)).await.map_err(|_| None)?;
        }
    }
    // Checked before the last batch is sealed and the blob finished: a body
    // that fails a check is never fsynced.
    let checksum = check.finish(encoder.md5(), encoder.crc64())?;
    let digests = encoder.finish(&mut |batch| {
        ready.push(batch);
        Ok(())
    })?;
    for batch in ready.drain(..).map(Batch::Data).chain([Batch::End]) {
        tx.send(batch).await.map_err(|_| None)?;
    }
    Ok((digests, checksum))
}

/// The blob writer's half of a streamed body, on a blocking thread: writes
/// each batch as it comes, and finishes the blob at [`Batch::End`].
fn write_batches(mut sink: BlobSink, mut rx: mpsc::Receiver<Batch>) -> ApiResult<(BlobId, u64)> {
    loop {
        match rx.blocking_recv() {
            Some(Batch::Data(batch)) => sink.write(batch)?,
            Some(Batch::End) => return sink.finish(),
            None => return Err(ApiError::incomplete_body()),
        }
    }
}

/// A small body read whole (`frames`): checked, hashed and sealed here,
/// then staged, all without leaving the connection's task. A body that
/// fails a check never reaches the store.
async fn ingest_small(
    state: &AppState,
    frames: &[Bytes],
    rules: BodyRules,
    target: BlobTarget,
) -> ApiResult<StagedBody> {
    let size = frames.iter().map(|frame| frame.len() as u64).sum();
    let mut check = BodyCheck::new(rules);
    let mut encoder = BodyEncoder::new(target, Some(size));
    let mut batches = Vec::new();
    let mut keep = |batch| {
        batches.push(batch);
        Ok(())
    };
    for frame in frames {
        check.push(frame, |data| encoder.write(data, &mut keep))?;
    }
    let checksum = check.finish(encoder.md5(), encoder.crc64())?;
    let digests = encoder.finish(&mut keep)?;
    let mut staged = stage_encoded(state, batches, digests).await?;
    staged.checksum = checksum;
    Ok(staged)
}

/// A body's integrity checks as its bytes go by (aws-chunked decoding and
/// its signatures, the payload SHA-256, the flexible checksum), then, at
/// its end, against everything the request promised.
struct BodyCheck {
    rules: BodyRules,
    decoder: Option<ChunkedDecoder>,
    expected_sha256: Option<[u8; 32]>,
    sha256: Option<Sha256>,
    checksummer: Option<Checksummer>,
    /// A frame's decoded bytes (aws-chunked), reused.
    decoded: Vec<u8>,
    /// Decoded bytes so far.
    size: u64,
}

impl BodyCheck {
    fn new(mut rules: BodyRules) -> Self {
        let BodyChecks {
            decoder,
            sha256: expected_sha256,
        } = BodyChecks::from(std::mem::replace(&mut rules.payload, Payload::Unsigned));
        let checksummer = rules
            .checksum
            .as_ref()
            .map(|(algorithm, _)| Checksummer::new(*algorithm));
        Self {
            sha256: expected_sha256.map(|_| Sha256::new()),
            expected_sha256,
            decoder,
            checksummer,
            rules,
            decoded: Vec::new(),
            size: 0,
        }
    }

    /// Checks `frame` (body bytes as sent) and passes its decoded bytes on to `write`.
    fn push(
        &mut self,
        frame: &[u8],
        mut write: impl FnMut(&[u8]) -> ApiResult<()>,
    ) -> ApiResult<()> {
        let data = match self.decoder.as_mut() {
            Some(decoder) => {
                self.decoded.clear();
                decoder
                    .push(frame, &mut self.decoded)
                    .map_err(ApiError::chunked)?;
                &self.decoded[..]
            }
            None => frame,
        };
        if self.size + data.len() as u64 > MAX_SINGLE_UPLOAD {
            return Err(ApiError::new(
                ErrorCode::EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed object size.",
            ));
        }
        self.size += data.len() as u64;
        if let Some(h) = self.sha256.as_mut() {
            h.update(data);
        }
        if let Some(c) = self.checksummer.as_mut() {
            c.update(data);
        }
        write(data)
    }

    /// The checks at the body's end, given its MD5 and CRC-64; the verified
    /// flexible checksum for the record.
    fn finish(self, md5: [u8; 16], crc64: u64) -> ApiResult<Option<(ChecksumAlgorithm, String)>> {
        let Self {
            rules,
            decoder,
            expected_sha256,
            sha256,
            checksummer,
            size,
            ..
        } = self;
        let trailers = match decoder {
            Some(decoder) => decoder.finish().map_err(ApiError::chunked)?,
            None => Trailers::default(),
        };
        if let Some(expected) = rules.decoded_length
            && expected != size
        {
            return Err(ApiError::incomplete_body());
        }
        if let (Some(expected), Some(hasher)) = (expected_sha256, sha256)
            && hasher.finalize().as_slice() != expected.as_slice()
        {
            return Err(sha256_mismatch());
        }
        if let Some(expected) = rules.content_md5
            && expected != md5
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
        if rules.crc64.is_some_and(|expected| expected != crc64) {
            return Err(ApiError::new(
                ErrorCode::InvalidDigest,
                "The x-oss-hash-crc64ecma you specified did not match what we received.",
            ));
        }
        Ok(checksum)
    }
}
