//! The migration entry point: a key's versions written exactly as another store listed them
//! (`coffer admin migrate`), never called by a server.

use super::versions::{KeyVersions, bucket_versioning};
use super::{PENDING_BLOBS, Store};
use crate::rules::{ImportPlan, check_key, import_plan};
use crate::{BlobId, StoreError, Version};

impl Store {
    /// Makes `versions` (newest first) the complete version list of `key`, exactly as given
    /// (ids, times, envelopes, extents), in one transaction: whatever versions the key had are
    /// removed, blobs they referenced that `versions` does not are released, and the new
    /// blobs are referenced (they must be finished and unreferenced: `NoSuchBlob`,
    /// `BlobInUse`) with their pending rows cleared. See [`crate::rules::import_plan`] for
    /// what is refused.
    pub fn import_key_versions(
        &self,
        bucket: &str,
        key: &str,
        versions: Vec<Version>,
    ) -> Result<(), StoreError> {
        check_key(key)?;
        let blobs: Vec<BlobId> = versions
            .iter()
            .filter_map(|version| match version {
                Version::Object(record) => Some(record),
                Version::DeleteMarker(_) => None,
            })
            .flat_map(|record| record.extents.iter().map(|e| e.blob.clone()))
            .collect();
        self.with_held_bodies(&blobs, |held| {
            self.write(|txn, freed| {
                let plan = import_plan(versions, bucket_versioning(txn, bucket)?)?;
                let new_blobs = plan.blobs()?;
                let mut key_versions = KeyVersions::open(txn, bucket, key)?;
                let removed = key_versions.replace_all(plan)?;
                let old_blobs = ImportPlan::blobs_of(&removed);
                for blob in old_blobs.difference(&new_blobs) {
                    key_versions.refs.remove(blob.as_str())?;
                    freed.push(blob.clone());
                }
                let mut pending = txn.open_table(PENDING_BLOBS)?;
                for blob in new_blobs.difference(&old_blobs) {
                    self.take_fresh_blob(txn, &mut key_versions.refs, &mut pending, &held, blob)?;
                }
                Ok(())
            })
        })
    }
}
