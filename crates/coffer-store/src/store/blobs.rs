//! Blob files: staging new blobs, opening committed ones, discarding uncommitted ones.

use std::fs;

use redb::{ReadableDatabase, ReadableTable};

use super::{BLOB_REFS, BlobRefs, Store};
use crate::blob::{NewBlob, blob_path, is_valid_blob_id};
use crate::{BlobId, StoreError};

impl Store {
    // ---- Blobs ----

    /// A temp file to write a blob into; see [`NewBlob::finish`].
    pub fn new_blob(&self) -> Result<NewBlob, StoreError> {
        NewBlob::create(&self.inner.tmp_dir, &self.inner.blobs_dir)
    }

    pub fn open_blob(&self, id: &BlobId) -> Result<fs::File, StoreError> {
        if !is_valid_blob_id(id) {
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
    pub fn discard_blob(&self, id: &BlobId) -> Result<(), StoreError> {
        if !is_valid_blob_id(id) {
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
        if !is_valid_blob_id(id) || !blob_path(&self.inner.blobs_dir, id).is_file() {
            return Err(StoreError::NoSuchBlob);
        }
        if refs.get(id)?.is_some() {
            return Err(StoreError::BlobInUse);
        }
        Ok(())
    }
}
