//! The one place where object bodies enter and leave the store.
//!
//! Writing: the request body is handed frame by frame to a blocking worker
//! that undoes aws-chunked framing, hashes (MD5 for the ETag, the payload
//! SHA-256, the flexible checksum) and writes a staged blob; the blob only
//! becomes visible when the operation commits its metadata. Reading: a
//! blocking worker reads just the requested range from the object's extents.
//! Server-side encryption will seal and open here, so every route (PUT,
//! multipart, copies, ranged GET) shares one path.

use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use coffer_auth::checksum::{ChecksumAlgorithm, Checksummer, Crc64Xz};
use coffer_auth::chunked::Trailers;
use coffer_auth::sigv4::Payload;
use coffer_store::{BlobId, Extent, Store};
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use md5::{Digest as _, Md5};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::auth::{BodyChecks, sha256_mismatch};
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult};

/// Largest body a single PUT or part may carry (S3's limit).
pub const MAX_SINGLE_UPLOAD: u64 = 5 * 1024 * 1024 * 1024;
/// Size of the chunks read from blobs and sent to clients.
const READ_CHUNK: usize = 256 * 1024;
/// Size of the write buffer in front of a blob file.
const WRITE_BUFFER: usize = 1024 * 1024;
/// Body frames in flight between the connection and the writer thread.
const FRAMES_IN_FLIGHT: usize = 16;

/// What a request says its body must satisfy.
pub struct BodyRules {
    /// Payload mode from the signature.
    payload: Payload,
    /// `Content-MD5`, decoded.
    content_md5: Option<[u8; 16]>,
    /// The flexible checksum: algorithm and, unless it comes in a trailer, value.
    checksum: Option<(ChecksumAlgorithm, Option<String>)>,
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
                            StatusCode::BAD_REQUEST,
                            "InvalidDigest",
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
                checksum = Some((algorithm, Some(value.to_owned())));
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
            checksum = Some((algorithm, None));
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
                    StatusCode::LENGTH_REQUIRED,
                    "MissingContentLength",
                    "You must provide the x-amz-decoded-content-length header for aws-chunked bodies.",
                ));
            }
            None => None,
        };
        if let Some(len) = decoded_length.or_else(|| content_length(headers))
            && len > MAX_SINGLE_UPLOAD
        {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "EntityTooLarge",
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

pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// A body written to a staged blob and verified; not yet visible.
pub struct StagedBody {
    pub blob: BlobId,
    pub size: u64,
    pub md5: [u8; 16],
    pub checksum: Option<(ChecksumAlgorithm, String)>,
    /// CRC-64/XZ, kept for every object so OSS clients can check any of them.
    pub crc64: u64,
}

impl StagedBody {
    pub fn etag(&self) -> String {
        hex::encode(self.md5)
    }

    pub fn extent(&self, part_number: Option<u32>) -> Extent {
        Extent {
            blob: self.blob.clone(),
            size: self.size,
            part_number,
            etag: Some(self.etag()),
        }
    }
}

/// Commits staged blobs with `commit` (a metadata transaction, run off the
/// async threads); if it fails, the blobs are deleted at once.
pub async fn commit_staged<T: Send + 'static>(
    store: &Store,
    blobs: Vec<BlobId>,
    commit: impl FnOnce(&Store) -> Result<T, coffer_store::StoreError> + Send + 'static,
) -> ApiResult<T> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        commit(&store).inspect_err(|_| {
            for blob in &blobs {
                if let Err(error) = store.discard_blob(blob) {
                    tracing::warn!(%error, blob, "could not discard an uncommitted blob");
                }
            }
        })
    })
    .await
    .map_err(|e| ApiError::internal("blocking task", e))?
    .map_err(ApiError::from)
}

enum Frame {
    Data(Bytes),
    End,
}

/// Streams a request body into a staged blob, verifying every integrity
/// claim the request made. On any error nothing is left behind.
pub async fn ingest(store: &Store, mut body: Incoming, rules: BodyRules) -> ApiResult<StagedBody> {
    let (tx, rx) = mpsc::channel::<Frame>(FRAMES_IN_FLIGHT);
    let store = store.clone();
    let worker = tokio::task::spawn_blocking(move || write_staged(&store, rx, rules));

    let mut failure = None;
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data()
                    && tx.send(Frame::Data(data)).await.is_err()
                {
                    break; // the worker stopped early: its error says why
                }
            }
            Some(Err(error)) => {
                tracing::debug!(%error, "request body failed");
                failure = Some(ApiError::incomplete_body());
                break;
            }
            None => {
                let _ = tx.send(Frame::End).await;
                break;
            }
        }
    }
    drop(tx);
    let written = worker
        .await
        .map_err(|e| ApiError::internal("body writer", e))?;
    match (failure, written) {
        (Some(error), _) => Err(error),
        (None, result) => result,
    }
}

fn write_staged(
    store: &Store,
    mut rx: mpsc::Receiver<Frame>,
    rules: BodyRules,
) -> ApiResult<StagedBody> {
    let mut blob = store.new_blob()?;
    let BodyChecks {
        mut decoder,
        sha256: expected_sha256,
    } = BodyChecks::from(rules.payload);
    let mut sha256 = expected_sha256.map(|_| Sha256::new());
    let mut checksummer = rules
        .checksum
        .as_ref()
        .map(|(algorithm, _)| Checksummer::new(*algorithm));
    let mut md5 = Md5::new();
    let mut crc64 = Crc64Xz::new();
    let mut size: u64 = 0;
    let mut decoded = Vec::new();

    {
        let mut out = std::io::BufWriter::with_capacity(WRITE_BUFFER, blob.file());
        let mut consume = |data: &[u8]| -> ApiResult<()> {
            size += data.len() as u64;
            if size > MAX_SINGLE_UPLOAD {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed object size.",
                ));
            }
            md5.update(data);
            crc64.update(data);
            if let Some(h) = sha256.as_mut() {
                h.update(data);
            }
            if let Some(c) = checksummer.as_mut() {
                c.update(data);
            }
            out.write_all(data)
                .map_err(|e| ApiError::internal("writing a blob", e))
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
        out.flush()
            .map_err(|e| ApiError::internal("writing a blob", e))?;
    }

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
    let md5: [u8; 16] = md5.finalize().into();
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
                Some(value) => Some(value),
                None => trailers.get(algorithm.header_name()).map(str::to_owned),
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
    let crc64 = crc64.finish();
    if rules.crc64.is_some_and(|expected| expected != crc64) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidDigest",
            "The x-oss-hash-crc64ecma you specified did not match what we received.",
        ));
    }
    let blob = blob.finish()?;
    Ok(StagedBody {
        blob,
        size,
        md5,
        checksum,
        crc64,
    })
}

/// Calls `sink` with successive pieces of bytes `range` of the body made of
/// `extents`. Stops early (returning Ok) when `sink` returns false.
pub fn read_range(
    store: &Store,
    extents: &[Extent],
    range: Range<u64>,
    mut sink: impl FnMut(Bytes) -> bool,
) -> std::io::Result<()> {
    let mut extent_start = 0u64;
    for extent in extents {
        let extent_end = extent_start + extent.size;
        let from = range.start.max(extent_start);
        let to = range.end.min(extent_end);
        if from < to {
            let mut file = store
                .open_blob(&extent.blob)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            file.seek(SeekFrom::Start(from - extent_start))?;
            let mut left = to - from;
            while left > 0 {
                let want = left.min(READ_CHUNK as u64) as usize;
                let mut buf = vec![0u8; want];
                file.read_exact(&mut buf)?;
                left -= want as u64;
                if !sink(Bytes::from(buf)) {
                    return Ok(());
                }
            }
        }
        extent_start = extent_end;
        if extent_start >= range.end {
            break;
        }
    }
    Ok(())
}

/// A response body streaming bytes `range` of an object.
pub fn stream_range(store: &Store, extents: Vec<Extent>, range: Range<u64>) -> ResponseBody {
    let (tx, rx) = mpsc::channel(4);
    let store = store.clone();
    let remaining = range.end - range.start;
    tokio::task::spawn_blocking(move || {
        let result = read_range(&store, &extents, range, |chunk| {
            tx.blocking_send(Ok(chunk)).is_ok()
        });
        if let Err(error) = result {
            tracing::error!(%error, "reading an object body failed");
            let _ = tx.blocking_send(Err(error));
        }
    });
    ResponseBody::Stream {
        chunks: rx,
        remaining,
    }
}

/// Copies bytes `range` of an object into a new staged blob (CopyObject,
/// UploadPartCopy).
pub async fn copy_range(
    store: &Store,
    extents: Vec<Extent>,
    range: Range<u64>,
) -> ApiResult<StagedBody> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut blob = store.new_blob()?;
        let mut md5 = Md5::new();
        let mut crc64 = Crc64Xz::new();
        let mut size = 0u64;
        let mut write_error = None;
        {
            let mut out = std::io::BufWriter::with_capacity(WRITE_BUFFER, blob.file());
            read_range(&store, &extents, range, |chunk| {
                md5.update(&chunk);
                crc64.update(&chunk);
                size += chunk.len() as u64;
                match out.write_all(&chunk) {
                    Ok(()) => true,
                    Err(e) => {
                        write_error = Some(e);
                        false
                    }
                }
            })
            .map_err(|e| ApiError::internal("reading the copy source", e))?;
            if let Some(e) = write_error {
                return Err(ApiError::internal("writing a copy", e));
            }
            out.flush()
                .map_err(|e| ApiError::internal("writing a copy", e))?;
        }
        let blob = blob.finish()?;
        Ok(StagedBody {
            blob,
            size,
            md5: md5.finalize().into(),
            checksum: None,
            crc64: crc64.finish(),
        })
    })
    .await
    .map_err(|e| ApiError::internal("copy worker", e))?
}
