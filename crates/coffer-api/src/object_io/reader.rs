//! Reading a byte range of an object: only the blobs, and for sealed
//! objects only the chunks, that the range needs; sealed chunks are opened
//! (authenticated) before any byte of them is passed on.

use std::io::Read;
use std::ops::Range;
use std::os::unix::fs::FileExt;

use bytes::Bytes;
use coffer_crypto::sealed::{self, CHUNK_SIZE};
use coffer_store::{Extent, Store};
use tokio::sync::mpsc;

use super::writer::{BlobTarget, BlobWriter, StagedBody};
use crate::body::ResponseBody;
use coffer_keying::Opening;

use crate::error::{ApiError, ApiResult};

/// Sealed chunks read and opened at a time.
const READ_BATCH_CHUNKS: u64 = 16;
/// Plaintext bytes passed on at a time.
const READ_BATCH: u64 = READ_BATCH_CHUNKS * CHUNK_SIZE as u64;

/// An object's stored body and what opens it.
pub struct BodySource {
    pub extents: Vec<Extent>,
    pub opening: Option<Opening>,
}

/// Why a read stopped.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    /// A sealed chunk, or the layout, failed authentication.
    Integrity,
}

impl From<std::io::Error> for ReadError {
    fn from(error: std::io::Error) -> Self {
        ReadError::Io(error)
    }
}

impl ReadError {
    fn into_api(self) -> ApiError {
        match self {
            ReadError::Io(e) => ApiError::internal("reading an object", e),
            ReadError::Integrity => ApiError::integrity_check_failed(),
        }
    }
}

fn open_blob(store: &Store, extent: &Extent) -> Result<std::fs::File, ReadError> {
    store
        .open_blob(&extent.blob)
        .map_err(|e| ReadError::Io(std::io::Error::other(e.to_string())))
}

/// Reads `len` bytes at `at` into a new buffer (not zero-filled first: the
/// read fills it). Fewer bytes than asked is `UnexpectedEof`.
fn read_at(file: &std::fs::File, at: u64, len: u64) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::with_capacity(len as usize);
    FileOffset { file, at }.take(len).read_to_end(&mut buf)?;
    if buf.len() as u64 != len {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    Ok(buf)
}

/// `Read` over a file from an offset with `pread`, leaving the file's own
/// position alone (no seek per batch).
struct FileOffset<'a> {
    file: &'a std::fs::File,
    at: u64,
}

impl Read for FileOffset<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// Calls `sink` with successive pieces of plaintext bytes `range` of the
/// object. Stops early (returning Ok) when `sink` returns false.
pub fn read_range(
    store: &Store,
    source: &BodySource,
    range: Range<u64>,
    sink: impl FnMut(Bytes) -> bool,
) -> Result<(), ReadError> {
    match &source.opening {
        None => read_plain(store, &source.extents, range, sink),
        Some(opening) => read_sealed(store, &source.extents, opening, range, sink),
    }
}

/// The sealed path: the envelope's planner ([`Envelope::plan_range`], the
/// one the fuzz target exercises) names the parts, chunks and sealed bytes
/// to read; each part's plan is read in batches of [`READ_BATCH_CHUNKS`]
/// chunks, each opened (authenticated) in the buffer it was read into.
///
/// [`Envelope::plan_range`]: coffer_crypto::sealed::Envelope::plan_range
fn read_sealed(
    store: &Store,
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
        let file = open_blob(store, extent)?;
        // A blob must be exactly as long as its layout says: bytes appended
        // after the final chunk would otherwise go unread, and the damage
        // unnoticed.
        if file.metadata()?.len() != sealed::sealed_size(part.plain_size) {
            return Err(ReadError::Integrity);
        }
        let opener = opening.opener(part.part_number);
        for batch in piece.plan.batches(READ_BATCH_CHUNKS) {
            if batch.sealed.end > extent.size {
                return Err(ReadError::Integrity);
            }
            let mut bytes = read_at(
                &file,
                batch.sealed.start,
                batch.sealed.end - batch.sealed.start,
            )
            .map_err(|e| match e {
                // A blob shorter than its layout says: truncated.
                ReadError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                    ReadError::Integrity
                }
                other => other,
            })?;
            // Opened where it was read: the buffer becomes the plaintext.
            opener
                .open_range_in_place(&batch, &mut bytes)
                .map_err(|_| ReadError::Integrity)?;
            if !bytes.is_empty() && !sink(Bytes::from(bytes)) {
                return Ok(());
            }
        }
    }
    Ok(())
}

fn read_plain(
    store: &Store,
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
            let file = open_blob(store, extent)?;
            let mut at = from - extent_start;
            let end = to - extent_start;
            while at < end {
                let len = (end - at).min(READ_BATCH);
                let buf = read_at(&file, at, len)?;
                at += len;
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

/// A response body streaming plaintext bytes `range` of an object.
///
/// The first batch is read (and, when sealed, authenticated) before this
/// returns, so that a damaged object is answered with an error status
/// rather than a truncated 200; later failures abort the stream.
pub async fn stream_range(
    store: &Store,
    source: BodySource,
    range: Range<u64>,
) -> ApiResult<ResponseBody> {
    let (tx, mut rx) = mpsc::channel(4);
    let store = store.clone();
    let remaining = range.end - range.start;
    tokio::task::spawn_blocking(move || {
        let result = read_range(&store, &source, range, |chunk| {
            tx.blocking_send(Ok(chunk)).is_ok()
        });
        if let Err(error) = result {
            tracing::error!(?error, "reading an object body failed");
            let _ = tx.blocking_send(Err(error));
        }
    });
    let first = match rx.recv().await {
        Some(Ok(bytes)) => Some(bytes),
        Some(Err(error)) => return Err(error.into_api()),
        None => None,
    };
    Ok(ResponseBody::Stream {
        first,
        chunks: rx,
        remaining,
    })
}

/// Copies plaintext bytes `range` of an object into a new staged blob
/// (CopyObject, UploadPartCopy), sealed for its new place if `target` says.
pub async fn copy_range(
    store: &Store,
    source: BodySource,
    range: Range<u64>,
    target: BlobTarget,
) -> ApiResult<StagedBody> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut writer = BlobWriter::new(&store, target)?;
        let mut write_error = None;
        read_range(&store, &source, range, |chunk| match writer.write(&chunk) {
            Ok(()) => true,
            Err(e) => {
                write_error = Some(e);
                false
            }
        })
        .map_err(ReadError::into_api)?;
        if let Some(e) = write_error {
            return Err(e);
        }
        writer.finish()
    })
    .await
    .map_err(|e| ApiError::internal("copy worker", e))?
}
