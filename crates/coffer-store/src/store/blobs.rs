//! Blob files: staging new blobs, opening committed ones, discarding uncommitted ones.

use std::fs;
use std::time::SystemTime;

use redb::{ReadableDatabase, ReadableTable};

use super::{BLOB_REFS, BlobRefs, PENDING_BLOBS, Store};
use crate::blob::{NewBlob, blob_path, is_blob_id};
use crate::{BlobId, PendingBlob, StoreError};

impl Store {
    // ---- Blobs ----

    /// A temp file to write a blob into; see [`NewBlob::finish`].
    pub(crate) fn new_blob(&self) -> Result<NewBlob, StoreError> {
        NewBlob::create(&self.inner.tmp_dir, &self.inner.blobs_dir)
    }

    pub(crate) fn open_blob(&self, id: &BlobId) -> Result<fs::File, StoreError> {
        if !is_blob_id(id) {
            return Err(StoreError::NoSuchBlob);
        }
        match fs::File::open(blob_path(&self.inner.blobs_dir, id)) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NoSuchBlob),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a finished blob that no record references: the clean-up of a
    /// write whose metadata commit failed (otherwise it would wait for the
    /// next start-up's orphan collection).
    pub(crate) fn discard_blob(&self, id: &BlobId) -> Result<(), StoreError> {
        if !is_blob_id(id) {
            return Err(StoreError::NoSuchBlob);
        }
        let txn = self.inner.db.begin_read()?;
        if txn.open_table(BLOB_REFS)?.get(id.as_str())?.is_some() {
            return Err(StoreError::BlobInUse);
        }
        match fs::remove_file(blob_path(&self.inner.blobs_dir, id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks that `id` names a finished blob no record references yet.
    pub(super) fn check_fresh_blob(&self, refs: &BlobRefs<'_>, id: &str) -> Result<(), StoreError> {
        if !is_blob_id(id) || !blob_path(&self.inner.blobs_dir, id).is_file() {
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
        if !is_blob_id(id) {
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

    /// The finished blobs of shard `shard` (the directory `blobs/<2 hex>/`) last modified
    /// before `before`. Temp files are never listed.
    pub fn blobs_older_than(
        &self,
        shard: u8,
        before: SystemTime,
    ) -> Result<Vec<BlobId>, StoreError> {
        let dir = self.inner.blobs_dir.join(hex::encode([shard]));
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(id) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let metadata = entry.metadata()?;
            if is_blob_id(&id) && metadata.is_file() && metadata.modified()? < before {
                out.push(id);
            }
        }
        out.sort();
        Ok(out)
    }
}
