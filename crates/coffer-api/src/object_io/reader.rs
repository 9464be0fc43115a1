//! Reading a byte range of an object: only the blobs, and for sealed
//! objects only the chunks, that the range needs; sealed chunks are opened
//! (authenticated) before any byte of them is passed on.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use coffer_auth::checksum::ChecksumAlgorithm;
use coffer_crypto::sealed::{self, CHUNK_SIZE};
use coffer_keying::Opening;
use coffer_store::{Backend, BlobStore, Extent, StoreError};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::buffers::BatchBuffer;
use super::writer::{BlobTarget, BodyWriter, StagedBody, discard};
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Sealed chunks read and opened at a time.
const READ_BATCH_CHUNKS: u64 = 16;
/// Plaintext bytes passed on at a time.
const READ_BATCH: u64 = READ_BATCH_CHUNKS * CHUNK_SIZE as u64;

/// An object's stored body and what opens it.
pub struct BodySource {
    /// The blobs of the body, in order.
    pub extents: Vec<Extent>,
    /// The keys that open them; `None` for a plaintext object.
    pub opening: Option<Opening>,
}

/// Why a read stopped.
#[derive(Debug)]
enum ReadError {
    Io(std::io::Error),
    /// A sealed chunk, or the layout, failed authentication.
    Integrity,
    /// The blob store cannot be reached for now (503 before the first byte; after it, the
    /// response is cut like any other failure).
    Unavailable(Backend, std::io::Error),
}

/// An [`ReadError::Unavailable`] while it crosses the body channel as an `io::Error`.
#[derive(Debug)]
struct BackendDown {
    backend: Backend,
    source: std::io::Error,
}

impl std::fmt::Display for BackendDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} unavailable: {}", self.backend, self.source)
    }
}

impl std::error::Error for BackendDown {}

impl From<std::io::Error> for ReadError {
    fn from(error: std::io::Error) -> Self {
        ReadError::Io(error)
    }
}

impl ReadError {
    /// As the response body carries it: an integrity failure is
    /// `InvalidData`, and nothing else is.
    fn into_io(self) -> std::io::Error {
        match self {
            ReadError::Unavailable(backend, source) => {
                let kind = match source.kind() {
                    std::io::ErrorKind::InvalidData => std::io::ErrorKind::Other,
                    kind => kind,
                };
                std::io::Error::new(kind, BackendDown { backend, source })
            }
            ReadError::Io(error) if error.kind() != std::io::ErrorKind::InvalidData => error,
            ReadError::Io(error) => std::io::Error::other(error.to_string()),
            ReadError::Integrity => std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the object failed its integrity check",
            ),
        }
    }

    fn from_io(error: std::io::Error) -> Self {
        if error
            .get_ref()
            .is_some_and(|inner| inner.is::<BackendDown>())
        {
            let kind = error.kind();
            return match error
                .into_inner()
                .map(|inner| inner.downcast::<BackendDown>())
            {
                Some(Ok(down)) => ReadError::Unavailable(down.backend, down.source),
                _ => ReadError::Io(std::io::Error::from(kind)),
            };
        }
        match error.kind() {
            std::io::ErrorKind::InvalidData => ReadError::Integrity,
            _ => ReadError::Io(error),
        }
    }

    fn into_api(self) -> ApiError {
        match self {
            ReadError::Io(e) => ApiError::internal("reading an object", e),
            ReadError::Integrity => ApiError::integrity_check_failed(),
            ReadError::Unavailable(backend, source) => {
                ApiError::from(StoreError::unavailable(backend, source))
            }
        }
    }
}

/// The blob store, waited on from a blocking reader thread.
struct Blobs {
    store: Arc<dyn BlobStore>,
    runtime: Handle,
}

impl Blobs {
    fn len(&self, extent: &Extent) -> Result<u64, ReadError> {
        self.runtime
            .block_on(self.store.len(&extent.blob))
            .map_err(store_error)
    }

    /// Bytes `range` of a blob, read into a reused buffer (no allocation,
    /// page faults or zeroing per batch). A blob shorter than the range is
    /// `UnexpectedEof`.
    fn read(&self, extent: &Extent, range: Range<u64>) -> Result<BatchBuffer, ReadError> {
        let wanted = usize::try_from(range.end - range.start).map_err(|_| ReadError::Integrity)?;
        let (buf, pooled) = BatchBuffer::for_bytes(wanted).into_vec();
        let buf = self
            .runtime
            .block_on(self.store.read_into(&extent.blob, range, buf))
            .map_err(store_error)?;
        Ok(BatchBuffer::from_vec(buf, wanted, pooled))
    }
}

fn store_error(error: StoreError) -> ReadError {
    match error {
        // A blob shorter than the range its record promises: truncated.
        StoreError::InvalidRange { .. } => {
            ReadError::Io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
        }
        StoreError::Io(io) => ReadError::Io(io),
        StoreError::Unavailable { backend, source } => ReadError::Unavailable(backend, source),
        other => ReadError::Io(std::io::Error::other(other.to_string())),
    }
}

/// Calls `sink` with successive pieces of plaintext bytes `range` of the
/// object. Stops early (returning Ok) when `sink` returns false.
fn read_range(
    blobs: &Blobs,
    source: &BodySource,
    range: Range<u64>,
    sink: impl FnMut(Bytes) -> bool,
) -> Result<(), ReadError> {
    match &source.opening {
        None => read_plain(blobs, &source.extents, range, sink),
        Some(opening) => read_sealed(blobs, &source.extents, opening, range, sink),
    }
}

/// The sealed path: the envelope's planner ([`Envelope::plan_range`], the
/// one the fuzz target exercises) names the parts, chunks and sealed bytes
/// to read; each part's plan is read in batches of [`READ_BATCH_CHUNKS`]
/// chunks, each opened (authenticated) in the buffer it was read into.
///
/// [`Envelope::plan_range`]: coffer_crypto::sealed::Envelope::plan_range
fn read_sealed(
    blobs: &Blobs,
    extents: &[Extent],
    opening: &Opening,
    range: Range<u64>,
    mut sink: impl FnMut(Bytes) -> bool,
) -> Result<(), ReadError> {
    let envelope = opening.envelope();
    if envelope.parts.len() != extents.len() {
        return Err(ReadError::Integrity);
    }
    // Zero bytes of a non-empty object: nothing to read. (Zero bytes of an
    // empty object still open its empty chunks, so that even an empty read
    // is authenticated.)
    if range.is_empty() && envelope.plain_size() != 0 {
        return Ok(());
    }
    let pieces = envelope
        .plan_range(range)
        .map_err(|_| ReadError::Integrity)?;
    for piece in pieces {
        let (part, extent) = (&envelope.parts[piece.index], &extents[piece.index]);
        // A blob must be exactly as long as its layout says: bytes appended
        // after the final chunk would otherwise go unread, and the damage
        // unnoticed.
        if blobs.len(extent)? != sealed::sealed_size(part.plain_size) {
            return Err(ReadError::Integrity);
        }
        let opener = opening.opener(part.part_number);
        for batch in piece.plan.batches(READ_BATCH_CHUNKS) {
            if batch.sealed.end > extent.size {
                return Err(ReadError::Integrity);
            }
            let mut buffer = blobs
                .read(extent, batch.sealed.clone())
                .map_err(|e| match e {
                    // A blob shorter than its layout says: truncated.
                    ReadError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                        ReadError::Integrity
                    }
                    other => other,
                })?;
            // Opened where it was read: the buffer becomes the plaintext.
            let plaintext = opener
                .open_range_in_slice(&batch, buffer.as_mut_slice())
                .map_err(|_| ReadError::Integrity)?;
            buffer.truncate(plaintext);
            crate::metrics::opened(envelope.algorithm, plaintext as u64);
            if plaintext != 0 && !sink(buffer.into_bytes()) {
                return Ok(());
            }
        }
    }
    Ok(())
}

fn read_plain(
    blobs: &Blobs,
    extents: &[Extent],
    range: Range<u64>,
    mut sink: impl FnMut(Bytes) -> bool,
) -> Result<(), ReadError> {
    let mut extent_start = 0u64;
    for extent in extents {
        let extent_end = extent_start + extent.size;
        let from = range.start.max(extent_start);
        let to = range.end.min(extent_end);
        if from < to {
            let mut at = from - extent_start;
            let end = to - extent_start;
            while at < end {
                let len = (end - at).min(READ_BATCH);
                let buf = blobs.read(extent, at..at + len)?;
                at += len;
                if !sink(buf.into_bytes()) {
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

/// A response body streaming plaintext bytes `range` of an object.
///
/// The first batch is read (and, when sealed, authenticated) before this
/// returns, so that a damaged object is answered with an error status
/// rather than a truncated 200; later failures abort the stream.
pub async fn stream_range(
    state: &AppState,
    source: BodySource,
    range: Range<u64>,
) -> ApiResult<ResponseBody> {
    let (tx, mut rx) = mpsc::channel(4);
    let blobs = blobs(state);
    let remaining = range.end - range.start;
    tokio::task::spawn_blocking(move || {
        let mut started = false;
        let result = read_range(&blobs, &source, range, |chunk| {
            started = true;
            tx.blocking_send(Ok(chunk)).is_ok()
        });
        if let Err(error) = result {
            // Before the first chunk, the failure becomes the response's
            // error (`ApiError::integrity_check_failed` counts it).
            if started && matches!(error, ReadError::Integrity) {
                crate::metrics::integrity_failure();
            }
            tracing::error!(?error, "reading an object body failed");
            let _ = tx.blocking_send(Err(error.into_io()));
        }
    });
    let first = match rx.recv().await {
        Some(Ok(bytes)) => Some(bytes),
        Some(Err(error)) => return Err(ReadError::from_io(error).into_api()),
        None => None,
    };
    Ok(ResponseBody::Stream {
        first,
        chunks: rx,
        remaining,
    })
}

/// Copies plaintext bytes `range` of an object into a new staged blob
/// (CopyObject, UploadPartCopy, the sealing of a plaintext version), sealed
/// for its new place if `target` says, with its `checksum` computed if asked
/// for. On any error nothing is left behind (as for `ingest`).
pub async fn copy_range(
    state: &AppState,
    source: BodySource,
    range: Range<u64>,
    target: BlobTarget,
    checksum: Option<ChecksumAlgorithm>,
) -> ApiResult<StagedBody> {
    let blobs = blobs(state);
    let meta = Arc::clone(&state.meta);
    let copied = tokio::task::spawn_blocking(move || {
        let mut writer = BodyWriter::new(
            blobs.runtime.clone(),
            blobs.store.as_ref(),
            meta.as_ref(),
            target,
        )
        .map_err(|error| (error, None))?;
        let pending = writer.pending_row().cloned();
        let failed = |error| (error, pending.clone());
        if let Some(algorithm) = checksum {
            writer.compute_checksum(algorithm);
        }
        let mut write_error = None;
        read_range(&blobs, &source, range, |chunk| match writer.write(&chunk) {
            Ok(()) => true,
            Err(e) => {
                write_error = Some(e);
                false
            }
        })
        .map_err(|e| failed(e.into_api()))?;
        if let Some(e) = write_error {
            return Err(failed(e));
        }
        writer.finish().map_err(failed)
    })
    .await
    .map_err(|e| ApiError::internal("copy worker", e))?;
    match copied {
        Ok(staged) => Ok(staged),
        Err((error, pending)) => {
            if let Some(blob) = pending {
                discard(state, &[blob]).await;
            }
            Err(error)
        }
    }
}

fn blobs(state: &AppState) -> Blobs {
    Blobs {
        store: Arc::clone(&state.blobs),
        runtime: Handle::current(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob store out of reach before the first byte is answered 503 (the error crosses the
    /// body channel as an `io::Error` and comes out as it went in); an integrity failure stays
    /// one.
    #[test]
    fn an_unavailable_blob_store_survives_the_body_channel() {
        let down = store_error(StoreError::unavailable(
            Backend::Blobs,
            std::io::Error::new(std::io::ErrorKind::NotConnected, "refused"),
        ));
        let api = ReadError::from_io(down.into_io()).into_api();
        assert_eq!(api.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(api.message.contains("blob store"));

        let api = ReadError::from_io(ReadError::Integrity.into_io()).into_api();
        assert_eq!(api.code, crate::error::ErrorCode::IntegrityCheckFailed);
        let api = ReadError::from_io(std::io::Error::other("disk")).into_api();
        assert_eq!(api.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    }
}
