//! [`BlobStore`] over the blobs of a [`Store`]: small ones inline in its database, the others
//! in files (`tmp/` while written, then `blobs/<2 hex>/<id>`, fsynced).

use std::io::Read;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};

use super::blocking;
use crate::blob_store::{BlobStore, BlobStream, BlobWriter, buffer_for};
use crate::meta::StoreFuture;
use crate::rules::new_blob_id;
use crate::store::{BlobBody, WeakStore};
use crate::{BlobId, NewBlob, Store, StoreError};

/// Bytes per piece of a read stream: a reader's batch (1 MiB of sealed
/// chunks and their tags) comes in one piece.
const READ_PIECE: u64 = 8 * 1024 * 1024;

/// The embedded blob store: one file per blob under `<data_dir>/blobs/`.
#[derive(Clone)]
pub struct FileBlobStore {
    store: Store,
}

impl FileBlobStore {
    /// Blobs of an open store; pair it with a [`super::EmbeddedMetadata`] over the same one.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The synchronous store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl BlobStore for FileBlobStore {
    fn create(&self) -> StoreFuture<'_, Box<dyn BlobWriter>> {
        let store = self.store.clone();
        Box::pin(async move {
            // No file yet: a small blob never gets one (see `FileBlobWriter`).
            let writer: Box<dyn BlobWriter> = Box::new(FileBlobWriter {
                id: new_blob_id()?,
                store: store.downgrade(),
                state: Some(Staged::Buffered {
                    pieces: Vec::new(),
                    len: 0,
                }),
            });
            Ok(writer)
        })
    }

    fn read(&self, blob: &BlobId, range: Range<u64>) -> StoreFuture<'_, BlobStream> {
        let (store, id) = (self.store.clone(), blob.clone());
        Box::pin(async move {
            let (start, end) = (range.start, range.end);
            let body = blocking(move || {
                let body = store.open_blob(&id)?;
                let len = body.len()?;
                if start > end || end > len {
                    return Err(StoreError::InvalidRange { start, end, len });
                }
                Ok(body)
            })
            .await?;
            let file = match body {
                BlobBody::File(file) => Arc::new(file),
                BlobBody::Inline(bytes) => {
                    // In range: checked above against its length.
                    let piece = bytes.slice(start as usize..end as usize);
                    let pieces = (!piece.is_empty()).then_some(Ok(piece));
                    return Ok(stream::iter(pieces).boxed());
                }
            };
            let pieces = stream::unfold((file, start), move |(file, at)| async move {
                if at >= end {
                    return None;
                }
                let len = (end - at).min(READ_PIECE);
                let reading = Arc::clone(&file);
                let piece = blocking(move || {
                    // Read into spare capacity: no zero-fill of a buffer the
                    // read overwrites anyway.
                    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(usize::MAX));
                    FileOffset { file: &reading, at }
                        .take(len)
                        .read_to_end(&mut buf)?;
                    if buf.len() as u64 != len {
                        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
                    }
                    Ok(Bytes::from(buf))
                })
                .await;
                // After an error the next poll ends the stream.
                let next = if piece.is_ok() { at + len } else { end };
                Some((piece, (file, next)))
            });
            Ok(pieces.boxed())
        })
    }

    /// One `pread` straight into the caller's buffer, on a blocking thread.
    fn read_into(
        &self,
        blob: &BlobId,
        range: Range<u64>,
        mut buf: Vec<u8>,
    ) -> StoreFuture<'_, Vec<u8>> {
        let (store, id) = (self.store.clone(), blob.clone());
        Box::pin(blocking(move || {
            let (start, end) = (range.start, range.end);
            let wanted = buffer_for(&range, buf.len())?;
            let body = store.open_blob(&id)?;
            let len = body.len()?;
            if start > end || end > len {
                return Err(StoreError::InvalidRange { start, end, len });
            }
            match body {
                BlobBody::File(file) => file.read_exact_at(&mut buf[..wanted], start)?,
                // In range: checked above against its length.
                BlobBody::Inline(bytes) => {
                    buf[..wanted].copy_from_slice(&bytes[start as usize..end as usize]);
                }
            }
            Ok(buf)
        }))
    }

    fn len(&self, blob: &BlobId) -> StoreFuture<'_, u64> {
        let (store, id) = (self.store.clone(), blob.clone());
        Box::pin(blocking(move || store.open_blob(&id)?.len()))
    }

    fn delete(&self, blob: &BlobId) -> StoreFuture<'_, ()> {
        let (store, id) = (self.store.clone(), blob.clone());
        Box::pin(blocking(move || store.discard_blob(&id)))
    }

    fn list_older_than(&self, before: SystemTime) -> BoxStream<'_, Result<BlobId, StoreError>> {
        let store = self.store.clone();
        stream::iter(0..=255u8)
            .then(move |shard| {
                let store = store.clone();
                blocking(move || store.blobs_older_than(shard, before))
            })
            .flat_map(|shard| {
                stream::iter(match shard {
                    Ok(ids) => ids.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                })
            })
            .boxed()
    }
}

/// `Read` over a file from an offset with `pread`, leaving the file's own
/// position alone.
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

/// Blobs up to this many bytes are kept in the database (`blob_bodies`), written by the
/// (group) commit of the record that references them; larger ones spill to a file. 64 KiB holds a
/// sealed 64 KiB chunk's worth of small objects while bounding what a writer buffers.
pub(crate) const INLINE_BLOB_MAX: usize = 64 * 1024;

/// A blob being written from the blocking threads: buffered in memory while it is small
/// enough to be inline, then a [`NewBlob`] temp file. `state` is `None` while a write runs,
/// and for good after a failed one (the temp file is gone with it).
struct FileBlobWriter {
    id: BlobId,
    store: WeakStore,
    state: Option<Staged>,
}

enum Staged {
    /// Not more than [`INLINE_BLOB_MAX`] bytes so far, as the caller's pieces (no copy).
    Buffered {
        pieces: Vec<Bytes>,
        len: usize,
    },
    File(NewBlob),
}

fn unusable() -> StoreError {
    StoreError::Io(std::io::Error::other(
        "blob writer unusable after a failed or abandoned write",
    ))
}

/// The pieces as one `Bytes`, copying only when there are several.
fn joined(mut pieces: Vec<Bytes>, len: usize) -> Bytes {
    if pieces.len() == 1 {
        return pieces.pop().expect("one piece");
    }
    let mut body = Vec::with_capacity(len);
    for piece in &pieces {
        body.extend_from_slice(piece);
    }
    Bytes::from(body)
}

impl BlobWriter for FileBlobWriter {
    fn id(&self) -> &BlobId {
        &self.id
    }

    fn write(&mut self, data: Bytes) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let staged = match self.state.take().ok_or_else(unusable)? {
                Staged::Buffered { mut pieces, len } if len + data.len() <= INLINE_BLOB_MAX => {
                    let len = len + data.len();
                    if !data.is_empty() {
                        pieces.push(data);
                    }
                    Staged::Buffered { pieces, len }
                }
                Staged::Buffered { pieces, .. } => {
                    let (store, id) = (self.store.upgrade()?, self.id.clone());
                    blocking(move || {
                        let mut blob = store.new_blob_named(id)?;
                        for piece in pieces.iter().chain([&data]) {
                            blob.write(piece)?;
                        }
                        Ok(Staged::File(blob))
                    })
                    .await?
                }
                Staged::File(mut blob) => {
                    blocking(move || {
                        blob.write(&data)?;
                        Ok(Staged::File(blob))
                    })
                    .await?
                }
            };
            self.state = Some(staged);
            Ok(())
        })
    }

    fn finish(mut self: Box<Self>) -> StoreFuture<'static, BlobId> {
        Box::pin(async move {
            match self.state.take().ok_or_else(unusable)? {
                Staged::Buffered { pieces, len } => {
                    // Held in memory (no I/O, so no blocking thread): the commit that
                    // references the blob writes it.
                    let store = self.store.upgrade()?;
                    store.hold_inline_blob(self.id.clone(), joined(pieces, len))?;
                    Ok(self.id)
                }
                Staged::File(blob) => blocking(move || blob.finish()).await,
            }
        })
    }
}
