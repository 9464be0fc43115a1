//! [`BlobStore`] over the blob files of a [`Store`]: `tmp/` while written, then
//! `blobs/<2 hex>/<id>`, fsynced.

use std::io::{Read, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};

use super::blocking;
use crate::blob_store::{BlobStore, BlobStream, BlobWriter, buffer_for};
use crate::meta::StoreFuture;
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
            let blob = blocking(move || store.new_blob()).await?;
            let writer: Box<dyn BlobWriter> = Box::new(FileBlobWriter {
                id: blob.id().clone(),
                blob: Some(blob),
            });
            Ok(writer)
        })
    }

    fn read(&self, blob: &BlobId, range: Range<u64>) -> StoreFuture<'_, BlobStream> {
        let (store, id) = (self.store.clone(), blob.clone());
        Box::pin(async move {
            let (start, end) = (range.start, range.end);
            let file = blocking(move || {
                let file = store.open_blob(&id)?;
                let len = file.metadata()?.len();
                if start > end || end > len {
                    return Err(StoreError::InvalidRange { start, end, len });
                }
                Ok(file)
            })
            .await?;
            let file = Arc::new(file);
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
            let file = store.open_blob(&id)?;
            let len = file.metadata()?.len();
            if start > end || end > len {
                return Err(StoreError::InvalidRange { start, end, len });
            }
            file.read_exact_at(&mut buf[..wanted], start)?;
            Ok(buf)
        }))
    }

    fn len(&self, blob: &BlobId) -> StoreFuture<'_, u64> {
        let (store, id) = (self.store.clone(), blob.clone());
        Box::pin(blocking(move || {
            Ok(store.open_blob(&id)?.metadata()?.len())
        }))
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

/// A [`NewBlob`] written from the blocking threads. `blob` is `None` while a write runs, and
/// for good after a failed one (the temp file is gone with it).
struct FileBlobWriter {
    id: BlobId,
    blob: Option<NewBlob>,
}

fn unusable() -> StoreError {
    StoreError::Io(std::io::Error::other(
        "blob writer unusable after a failed or abandoned write",
    ))
}

impl BlobWriter for FileBlobWriter {
    fn id(&self) -> &BlobId {
        &self.id
    }

    fn write(&mut self, data: Bytes) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut blob = self.blob.take().ok_or_else(unusable)?;
            let blob = blocking(move || {
                blob.file().write_all(&data)?;
                Ok(blob)
            })
            .await?;
            self.blob = Some(blob);
            Ok(())
        })
    }

    fn finish(mut self: Box<Self>) -> StoreFuture<'static, BlobId> {
        Box::pin(async move {
            let blob = self.blob.take().ok_or_else(unusable)?;
            blocking(move || blob.finish()).await
        })
    }
}
