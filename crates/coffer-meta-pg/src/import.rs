//! The migration entry point (`MetadataStore::import_key_versions`): a key's versions written
//! exactly as another store listed them, by `coffer admin migrate`; never called by a gateway.

use coffer_store::rules::{ImportPlan, import_plan};
use coffer_store::{StoreError, Version};

use crate::db::{Tx, execute};
use crate::error::Error;
use crate::versions::{KeyVersions, bucket, release_blob, take_blob};

/// Replaces every version of `key` with `versions` (newest first), settling blob references
/// and raising the `version_seq` SEQUENCE past every id imported.
pub(crate) async fn key_versions(
    tx: &Tx<'_>,
    bucket_name: &str,
    key: &str,
    versions: &[Version],
) -> Result<(), Error> {
    let versioning = bucket(tx, bucket_name).await?.versioning;
    let plan = import_plan(versions.to_vec(), versioning)?;
    let new_blobs = plan.blobs()?;
    let removed = KeyVersions::new(tx, bucket_name, key)
        .replace_all(&plan)
        .await?;
    let old_blobs = ImportPlan::blobs_of(&removed);
    for blob in old_blobs.difference(&new_blobs) {
        release_blob(tx, blob).await?;
    }
    for blob in new_blobs.difference(&old_blobs) {
        take_blob(tx, blob).await?;
    }
    if plan.max_seq > 0 {
        let max_seq = i64::try_from(plan.max_seq)
            .map_err(|_| StoreError::InvalidArgument("import: version id out of range".into()))?;
        // A sequence is not transactional: a retried or rolled-back import may leave it
        // raised, which is only a gap.
        execute(
            tx,
            "SELECT setval('version_seq', GREATEST($1::bigint, (SELECT last_value FROM version_seq)))",
            &[&max_seq],
        )
        .await?;
    }
    Ok(())
}
