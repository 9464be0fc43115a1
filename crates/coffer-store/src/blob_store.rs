//! The blob store: the contract every blob backend implements (fsync'd files today, an
//! S3-compatible cluster next), and which the API calls through `Arc<dyn BlobStore>`.
//!
//! A blob is an immutable byte string under a random [`BlobId`] (128 bits, 32 lower-case hex
//! characters), holding sealed bytes the store never interprets. It is written once through a
//! [`BlobWriter`] and becomes visible only when [`BlobWriter::finish`] returns; it is then read
//! by byte ranges until deleted. Whether a record references it is the metadata store's
//! business ([`crate::MetadataStore`], whose module docs give the commit order).
//!
//! # The contract
//! - **Durability.** `finish` returns only once the whole blob is durable (files: the file
//!   fsynced, renamed into place, the directory fsynced; S3: the upload acknowledged). One
//!   exception, in the embedded pair: a blob of at most 64 KiB is held in memory and written
//!   to the database by the transaction that first references it, so it is durable when the
//!   record naming it is (an unreferenced blob there would not survive a reopen anyway: open
//!   deletes it).
//! - **All or nothing.** Before `finish` returns, the blob is not visible to `read`, `len` or
//!   `list_older_than`; a writer dropped unfinished (or whose `finish` failed) leaves nothing
//!   behind that a reader could see, and its storage is reclaimed (files: at once on drop, or
//!   at the next open after a crash; S3: by the sweeper, from the pending row).
//! - **Errors.** [`StoreError`]: `NoSuchBlob` for an id that names no finished blob (including
//!   one that is not a blob id at all); `InvalidRange` for a range past the end; `Io` for
//!   anything the medium reports. An error in the middle of a read stream ends the stream.

use std::ops::Range;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::meta::StoreFuture;
use crate::{BlobId, StoreError};

/// A stream of a blob's bytes, in order; an `Err` item ends it.
pub type BlobStream = BoxStream<'static, Result<Bytes, StoreError>>;

/// Blobs: create, read a range, measure, delete, list old ones.
pub trait BlobStore: Send + Sync {
    /// Starts a new blob under a fresh id (readable at once with [`BlobWriter::id`], so that
    /// a pending row can name the blob before its bytes are written).
    fn create(&self) -> StoreFuture<'_, Box<dyn BlobWriter>>;

    /// Bytes `range` of a finished blob, as a stream of pieces (their sizes are the
    /// backend's choice). The blob and the range are checked before the stream is returned:
    /// `NoSuchBlob`; `InvalidRange` if `range.end` is past the blob's length or before
    /// `range.start`. An empty range within the blob gives an empty stream.
    fn read(&self, blob: &BlobId, range: Range<u64>) -> StoreFuture<'_, BlobStream>;

    /// Bytes `range` of a finished blob read into the front of `buf` (at least that long; the
    /// rest is left as it was), which is given back: a caller that reuses its buffers reads
    /// without allocating or zeroing any. The checks and errors of [`read`](Self::read), and
    /// `Io` (`UnexpectedEof`) if the blob yields fewer bytes. By default through `read`,
    /// copying; a backend that can read in place overrides it.
    fn read_into(
        &self,
        blob: &BlobId,
        range: Range<u64>,
        mut buf: Vec<u8>,
    ) -> StoreFuture<'_, Vec<u8>> {
        let blob = blob.clone();
        Box::pin(async move {
            let wanted = buffer_for(&range, buf.len())?;
            let mut pieces = self.read(&blob, range).await?;
            let mut at = 0;
            while let Some(piece) = pieces.next().await {
                let piece = piece?;
                let end = at + piece.len();
                if end > wanted {
                    return Err(StoreError::Io(std::io::Error::other(
                        "the blob store gave more bytes than asked for",
                    )));
                }
                buf[at..end].copy_from_slice(&piece);
                at = end;
            }
            if at != wanted {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
            Ok(buf)
        })
    }

    /// The length of a finished blob in bytes. `NoSuchBlob`.
    fn len(&self, blob: &BlobId) -> StoreFuture<'_, u64>;

    /// Deletes a finished blob. Deleting an absent blob succeeds (sweepers retry); an id
    /// that is not a blob id at all is `NoSuchBlob`. Call it only for a blob no committed
    /// record references: a failed commit, a stale pending row, a blob a commit released. A
    /// backend that can tell refuses a referenced blob with `BlobInUse` (the embedded one
    /// does). A delete lost to a crash is harmless: the blob is still unreferenced, and the
    /// collector finds it again.
    fn delete(&self, blob: &BlobId) -> StoreFuture<'_, ()>;

    /// Finished blobs last written before `before`, for a collector that compares them with
    /// the metadata store's references and pending rows. Never lists unfinished blobs. The
    /// order is unspecified.
    fn list_older_than(&self, before: SystemTime) -> BoxStream<'_, Result<BlobId, StoreError>>;
}

/// The length of `range`, checked to fit a buffer of `room` bytes (a caller's bug otherwise);
/// for [`BlobStore::read_into`] and its overrides.
pub(crate) fn buffer_for(range: &Range<u64>, room: usize) -> Result<usize, StoreError> {
    usize::try_from(range.end.saturating_sub(range.start))
        .ok()
        .filter(|wanted| *wanted <= room)
        .ok_or_else(|| StoreError::Io(std::io::Error::other("read buffer shorter than the range")))
}

/// One blob being written. Not visible to anyone until [`BlobWriter::finish`] returns.
pub trait BlobWriter: Send {
    /// The id the blob will have.
    fn id(&self) -> &BlobId;

    /// Appends `data`. After an error (or after the future was dropped before completing)
    /// the writer is unusable: further calls fail and `finish` fails.
    fn write(&mut self, data: Bytes) -> StoreFuture<'_, ()>;

    /// Makes the blob durable and visible under [`BlobWriter::id`], which it returns.
    fn finish(self: Box<Self>) -> StoreFuture<'static, BlobId>;
}
