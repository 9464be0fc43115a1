//! Blobs: staging new ones, opening committed ones, discarding uncommitted ones.
//!
//! A blob is a file `blobs/<2 hex>/<id>`, or, when small, a row of `blob_bodies` (inline):
//! a small PUT then costs a row in a group commit shared with its neighbours instead of a
//! file create, two fsyncs and a rename of its own. The bytes are the same sealed bytes
//! either way; readers go through [`BlobBody`] and never see the difference.

use std::fs;
use std::time::SystemTime;

use bytes::Bytes;
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::{BLOB_BODIES, BLOB_REFS, BlobRefs, PENDING_BLOBS, Store};
use crate::blob::{NewBlob, blob_path};
use crate::rules::{epoch_ms, is_valid_blob_id};
use crate::{BlobId, PendingBlob, StoreError};

/// A finished blob, opened for reading.
pub(crate) enum BlobBody {
    /// A blob file.
    File(fs::File),
    /// A small blob's bytes, from `blob_bodies`.
    Inline(Bytes),
}

impl BlobBody {
    pub(crate) fn len(&self) -> Result<u64, StoreError> {
        Ok(match self {
            BlobBody::File(file) => file.metadata()?.len(),
            BlobBody::Inline(bytes) => bytes.len() as u64,
        })
    }
}

impl Store {
    // ---- Blobs ----

    /// A temp file to write a blob into under a fresh id; see [`NewBlob::finish`].
    #[cfg(test)]
    pub(crate) fn new_blob(&self) -> Result<NewBlob, StoreError> {
        self.new_blob_named(crate::rules::new_blob_id()?)
    }

    /// A temp file for the blob `id` (named earlier by [`crate::rules::new_blob_id`]).
    pub(crate) fn new_blob_named(&self, id: BlobId) -> Result<NewBlob, StoreError> {
        NewBlob::create_named(id, &self.inner.tmp_dir, &self.inner.blobs_dir)
    }

    /// Finishes the small blob `id` as a row of `blob_bodies`, in a group commit: durable,
    /// not referenced yet. A pending row beside it, which the commit that references the blob
    /// clears, is how the next `Store::open` finds it should no record name it (without
    /// reading every inline body).
    pub(crate) fn finish_inline_blob(&self, id: BlobId, body: Bytes) -> Result<(), StoreError> {
        if !is_valid_blob_id(&id) {
            return Err(StoreError::InvalidArgument("not a blob id".into()));
        }
        let written_ms = epoch_ms(SystemTime::now());
        self.write_grouped(move |txn, _| {
            let mut bodies = txn.open_table(BLOB_BODIES)?;
            if bodies.get(id.as_str())?.is_some() {
                return Err(StoreError::BlobInUse);
            }
            bodies.insert(id.as_str(), (written_ms, &body[..]))?;
            // A row the writer added when it named the blob keeps its earlier time.
            let mut pending = txn.open_table(PENDING_BLOBS)?;
            if pending.get(id.as_str())?.is_none() {
                pending.insert(id.as_str(), written_ms)?;
            }
            Ok(())
        })
    }

    /// Whether `id` is a blob kept inline in the database (a small sealed
    /// body), rather than a file under `blobs/`.
    pub fn is_inline_blob(&self, id: &str) -> Result<bool, StoreError> {
        let txn = self.inner.db.begin_read()?;
        Ok(txn.open_table(BLOB_BODIES)?.get(id)?.is_some())
    }

    /// Opens a finished blob: its inline body, else its file. `NoSuchBlob`.
    pub(crate) fn open_blob(&self, id: &BlobId) -> Result<BlobBody, StoreError> {
        if !is_valid_blob_id(id) {
            return Err(StoreError::NoSuchBlob);
        }
        {
            let txn = self.inner.db.begin_read()?;
            if let Some(row) = txn.open_table(BLOB_BODIES)?.get(id.as_str())? {
                return Ok(BlobBody::Inline(Bytes::copy_from_slice(row.value().1)));
            }
        }
        match fs::File::open(blob_path(&self.inner.blobs_dir, id)) {
            Ok(f) => Ok(BlobBody::File(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NoSuchBlob),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a finished blob that no record references: the clean-up of a
    /// write whose metadata commit failed (otherwise it would wait for the
    /// next start-up's orphan collection).
    pub(crate) fn discard_blob(&self, id: &BlobId) -> Result<(), StoreError> {
        if !is_valid_blob_id(id) {
            return Err(StoreError::NoSuchBlob);
        }
        let inline = self.write(|txn, _| {
            if txn.open_table(BLOB_REFS)?.get(id.as_str())?.is_some() {
                return Err(StoreError::BlobInUse);
            }
            // A pending row stays: its owner (the sweeper) removes it, and open clears the rest.
            Ok(txn.open_table(BLOB_BODIES)?.remove(id.as_str())?.is_some())
        })?;
        if inline {
            return Ok(());
        }
        match fs::remove_file(blob_path(&self.inner.blobs_dir, id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks that `id` names a finished blob (inline or a file) no record references yet.
    pub(super) fn check_fresh_blob(
        &self,
        txn: &WriteTransaction,
        refs: &BlobRefs<'_>,
        id: &str,
    ) -> Result<(), StoreError> {
        if !is_valid_blob_id(id) {
            return Err(StoreError::NoSuchBlob);
        }
        let inline = txn.open_table(BLOB_BODIES)?.get(id)?.is_some();
        if !inline && !blob_path(&self.inner.blobs_dir, id).is_file() {
            return Err(StoreError::NoSuchBlob);
        }
        if refs.get(id)?.is_some() {
            return Err(StoreError::BlobInUse);
        }
        Ok(())
    }

    /// Records `id` as pending since `since_ms`: named, its bytes about to be written, not
    /// referenced yet. The commit that references it clears the row.
    pub fn add_pending_blob(&self, id: &BlobId, since_ms: i64) -> Result<(), StoreError> {
        if !is_valid_blob_id(id) {
            return Err(StoreError::InvalidArgument("not a blob id".into()));
        }
        self.write(|txn, _| {
            if txn.open_table(BLOB_REFS)?.get(id.as_str())?.is_some() {
                return Err(StoreError::BlobInUse);
            }
            txn.open_table(PENDING_BLOBS)?
                .insert(id.as_str(), since_ms)?;
            Ok(())
        })
    }

    /// Removes the pending row of `id`; returns whether there was one.
    pub fn remove_pending_blob(&self, id: &BlobId) -> Result<bool, StoreError> {
        self.write(|txn, _| {
            Ok(txn
                .open_table(PENDING_BLOBS)?
                .remove(id.as_str())?
                .is_some())
        })
    }

    /// Pending rows written before `before_ms`, by blob id.
    pub fn pending_blobs_older_than(&self, before_ms: i64) -> Result<Vec<PendingBlob>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let pending = txn.open_table(PENDING_BLOBS)?;
        let mut out = Vec::new();
        for entry in pending.iter()? {
            let (id, since) = entry?;
            if since.value() < before_ms {
                out.push(PendingBlob {
                    blob: id.value().to_owned(),
                    since_ms: since.value(),
                });
            }
        }
        Ok(out)
    }

    /// Whether a committed record (object or part) references `id`.
    pub fn is_blob_referenced(&self, id: &BlobId) -> Result<bool, StoreError> {
        let txn = self.inner.db.begin_read()?;
        Ok(txn.open_table(BLOB_REFS)?.get(id.as_str())?.is_some())
    }

    /// The finished blobs whose ids start with the hex of `shard` (files in the directory
    /// `blobs/<2 hex>/`, and inline bodies) last written before `before`. Temp files are never
    /// listed.
    pub fn blobs_older_than(
        &self,
        shard: u8,
        before: SystemTime,
    ) -> Result<Vec<BlobId>, StoreError> {
        let prefix = hex::encode([shard]);
        let mut out = Vec::new();
        {
            let before_ms = epoch_ms(before);
            let txn = self.inner.db.begin_read()?;
            let bodies = txn.open_table(BLOB_BODIES)?;
            for row in bodies.range(prefix.as_str()..)? {
                let (id, body) = row?;
                if !id.value().starts_with(&prefix) {
                    break;
                }
                if body.value().0 < before_ms {
                    out.push(id.value().to_owned());
                }
            }
        }
        let dir = self.inner.blobs_dir.join(&prefix);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                out.sort();
                return Ok(out);
            }
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let entry = entry?;
            let Some(id) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let metadata = entry.metadata()?;
            if is_valid_blob_id(&id) && metadata.is_file() && metadata.modified()? < before {
                out.push(id);
            }
        }
        out.sort();
        Ok(out)
    }
}
