//! Reading a byte range of an object: only the blobs, and for sealed
//! objects only the chunks, that the range needs; sealed chunks are opened
//! (authenticated) before any byte of them is passed on.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use coffer_auth::checksum::ChecksumAlgorithm;
use coffer_crypto::sealed::{self, CHUNK_SIZE, RangePlan};
use coffer_keying::Opening;
use coffer_store::{Backend, BlobStore, Extent, StoreError};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::buffers::BatchBuffer;
use super::writer::{BlobTarget, BodyWriter, StagedBody, discard};
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Sealed chunks read and opened at a time (about 256 KiB). Small batches
/// and a short queue keep a batch in the core's cache between the `pread`
/// that fills it and the socket write that sends it: in one interleaved run,
/// 256 KiB batches with 2 queued cost less CPU per GiB than 1 MiB with 4,
/// and 4 MiB batches no less than 1 MiB (docs/performance.md, issue 19).
const READ_BATCH_CHUNKS: u64 = 4;
/// Plaintext bytes read at a time.
const READ_BATCH: u64 = READ_BATCH_CHUNKS * CHUNK_SIZE as u64;
/// Batches queued between the reader thread and the connection.
const READ_AHEAD: usize = 2;
/// Sealed chunks in a response's first batch, which is opened before the
/// status is sent: an object of up to 1 MiB is authenticated whole, and a
/// damaged one answered with an error rather than a cut 200.
const FIRST_BATCH_CHUNKS: u64 = 16;

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
        let (buf, pooled) = BatchBuffer::for_read(wanted).into_vec();
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
    sink: impl FnMut(Vec<Bytes>) -> bool,
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
    mut sink: impl FnMut(Vec<Bytes>) -> bool,
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
    for (nth, piece) in pieces.into_iter().enumerate() {
        let (part, extent) = (&envelope.parts[piece.index], &extents[piece.index]);
        // A blob must be exactly as long as its layout says: bytes appended
        // after the final chunk would otherwise go unread, and the damage
        // unnoticed.
        if blobs.len(extent)? != sealed::sealed_size(part.plain_size) {
            return Err(ReadError::Integrity);
        }
        let opener = opening.opener(part.part_number);
        for batch in sealed_batches(&piece.plan, nth == 0) {
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
            // Opened where it was read; each chunk's plaintext is passed on
            // where it lies, as a slice of the buffer (no copy to close the
            // gaps the tags leave).
            let pieces = opener
                .open_range_in_pieces(&batch, buffer.as_mut_slice())
                .map_err(|_| ReadError::Integrity)?;
            let plaintext = pieces.iter().map(|piece| piece.len()).sum::<usize>();
            crate::metrics::opened(envelope.algorithm, plaintext as u64);
            if plaintext != 0 {
                let bytes = buffer.into_bytes();
                if !sink(pieces.into_iter().map(|piece| bytes.slice(piece)).collect()) {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// The batches a part's plan is read and opened in: [`READ_BATCH_CHUNKS`]
/// chunks each, but up to [`FIRST_BATCH_CHUNKS`] in the response's first.
fn sealed_batches(plan: &RangePlan, first_of_response: bool) -> Vec<RangePlan> {
    let head = match plan.batches(FIRST_BATCH_CHUNKS).next() {
        Some(head) if first_of_response && head.last_chunk < plan.last_chunk => head,
        _ if first_of_response => return plan.batches(FIRST_BATCH_CHUNKS).collect(),
        _ => return plan.batches(READ_BATCH_CHUNKS).collect(),
    };
    // The rest of the plan: the chunks after the head, from their first byte.
    let next = head.last_chunk + 1;
    let rest = RangePlan {
        first_chunk: next,
        last_chunk: plan.last_chunk,
        chunk_count: plan.chunk_count,
        sealed: next * sealed::SEALED_CHUNK_SIZE as u64..plan.sealed.end,
        skip: 0,
        len: plan.len - head.len,
    };
    std::iter::once(head)
        .chain(rest.batches(READ_BATCH_CHUNKS))
        .collect()
}

fn read_plain(
    blobs: &Blobs,
    extents: &[Extent],
    range: Range<u64>,
    mut sink: impl FnMut(Vec<Bytes>) -> bool,
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
                if !sink(vec![buf.into_bytes()]) {
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
    let (tx, mut rx) = mpsc::channel(READ_AHEAD);
    let blobs = blobs(state);
    let remaining = range.end - range.start;
    tokio::task::spawn_blocking(move || {
        let mut started = false;
        let result = read_range(&blobs, &source, range, |pieces| {
            started = true;
            tx.blocking_send(Ok(pieces)).is_ok()
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
        Some(Ok(pieces)) => pieces,
        Some(Err(error)) => return Err(ReadError::from_io(error).into_api()),
        None => Vec::new(),
    };
    Ok(ResponseBody::Stream {
        pending: first.into_iter(),
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
        read_range(&blobs, &source, range, |pieces| {
            match pieces.iter().try_for_each(|piece| writer.write(piece)) {
                Ok(()) => true,
                Err(e) => {
                    write_error = Some(e);
                    false
                }
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

    /// The first batch of a response holds up to 16 chunks, the rest 4; together they tile
    /// the plan, whatever the range.
    #[test]
    fn sealed_batches_tile_the_plan() {
        let chunk = CHUNK_SIZE as u64;
        let part = 40 * chunk + 123;
        for range in [
            0..part,
            1..part,
            5 * chunk + 7..37 * chunk,
            3..chunk,
            0..17 * chunk,
        ] {
            let plan = sealed::plan_range(part, range.clone()).expect("in the part");
            for first in [true, false] {
                let batches = sealed_batches(&plan, first);
                let sizes: Vec<u64> = batches
                    .iter()
                    .map(|b| b.last_chunk - b.first_chunk + 1)
                    .collect();
                let head = if first { 16 } else { 4 };
                assert!(sizes[0] <= head && sizes.iter().skip(1).all(|&n| n <= 4));
                if first && plan.last_chunk - plan.first_chunk >= 16 {
                    assert_eq!(sizes[0], 16, "{range:?}");
                }
                assert_eq!(batches[0].first_chunk, plan.first_chunk);
                assert_eq!(batches[0].sealed.start, plan.sealed.start);
                assert_eq!(batches.last().map(|b| b.sealed.end), Some(plan.sealed.end));
                for pair in batches.windows(2) {
                    assert_eq!(pair[0].last_chunk + 1, pair[1].first_chunk);
                    assert_eq!(pair[0].sealed.end, pair[1].sealed.start);
                }
                assert_eq!(batches.iter().map(|b| b.len).sum::<u64>(), plan.len);
            }
        }
    }

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
