//! Copying one end to the other, each step idempotent so that a run interrupted anywhere
//! and started again finishes the job without duplicating or losing anything: a record
//! already at the target as the source has it is left alone; a key's versions are imported
//! in one transaction (`MetadataStore::import_key_versions`), after its blobs were copied
//! byte for byte under new ids (blob ids are bound by nothing but the records' extents:
//! docs/format.md binds chunks to the object id and part number, never to a blob id).

use std::time::SystemTime;

use coffer_kms::ServiceKeyStore;
use coffer_kms::keystore::{Cas, KeyStore};
use coffer_store::{BlobId, BlobStore, MetadataStore, StoreError, Version};
use futures_util::StreamExt;

use super::report::placeless;
use super::side::Side;
use super::walk::{KeyVersions, KeyWalk};

/// What a copy step did.
#[derive(Debug, Default)]
pub struct Tally {
    pub copied: u64,
    pub already: u64,
}

impl Tally {
    fn line(&self, what: &str) -> String {
        format!(
            "{what}: {} copied, {} already there",
            self.copied, self.already
        )
    }
}

/// The service key ring's document, as is (sealed by the root key). A target holding a
/// different ring is refused: something already runs on it.
pub fn ring(source: &dyn ServiceKeyStore, target: &dyn ServiceKeyStore) -> Result<String, String> {
    let document = source
        .load()
        .map_err(|e| e.to_string())?
        .ok_or("the source has no service key ring: was a server ever started on it?")?
        .value;
    match target.load().map_err(|e| e.to_string())? {
        Some(existing) if existing.value == document => {
            Ok("service key ring: already there".into())
        }
        Some(_) => Err(format!(
            "the target's service key ring ({}) is not the source's: a server or gateway already \
             ran on the target; migrate into an empty database and bucket prefix, or a new \
             data dir",
            target.location()
        )),
        None => match target
            .compare_and_swap(None, &document)
            .map_err(|e| e.to_string())?
        {
            Cas::Swapped(_) => Ok("service key ring: copied".into()),
            Cas::Lost => Err(
                "the target's service key ring changed meanwhile: is something \
                              running on it?"
                    .into(),
            ),
        },
    }
}

/// Deletes the blobs an interrupted run left at the target: those its pending rows name.
/// No server runs on the target during a migration (its service key ring is this source's,
/// checked first), so every pending row is stale, as at an embedded store's open.
pub async fn sweep_pending(target: &Side) -> Result<String, String> {
    let pending = target
        .meta
        .list_pending_blobs(SystemTime::now() + std::time::Duration::from_secs(1))
        .await
        .map_err(|e| e.to_string())?;
    for row in &pending {
        target
            .blobs
            .delete(&row.blob)
            .await
            .map_err(|e| format!("deleting the leftover blob {}: {e}", row.blob))?;
        target
            .meta
            .remove_pending_blob(&row.blob)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(format!(
        "leftover blobs of an interrupted run: {} deleted",
        pending.len()
    ))
}

/// Every KMS keystore record (keys with their sealed material, aliases), as is. A record
/// the target has differently is replaced by the source's.
pub fn kms_records(source: &dyn KeyStore, target: &dyn KeyStore) -> Result<String, String> {
    let mut tally = Tally::default();
    let existing = target.list().map_err(|e| e.to_string())?;
    for (id, record) in source.list().map_err(|e| e.to_string())? {
        let expected = match existing.get(&id) {
            Some(there) if there.value == record.value => {
                tally.already += 1;
                continue;
            }
            Some(there) => Some(&there.revision),
            None => None,
        };
        match target
            .compare_and_swap(&id, expected, Some(&record.value))
            .map_err(|e| format!("KMS record {id}: {e}"))?
        {
            Cas::Swapped(_) => tally.copied += 1,
            Cas::Lost => {
                return Err(format!(
                    "KMS record {id} changed at the target meanwhile: is something running on it?"
                ));
            }
        }
    }
    Ok(tally.line("KMS keystore records"))
}

/// The audit log's lines: those the target lacks are appended, when the target's lines are
/// the source's first ones (a resumed run); otherwise the target's log is left alone.
pub fn audit(source: &Side, target: &Side, target_store: &dyn KeyStore) -> Result<String, String> {
    let mut there = Vec::new();
    target.for_each_audit_line(|line| {
        there.push(coffer_auth::mac::sha256(line.as_bytes()));
        Ok(())
    })?;
    let (mut index, mut appended, mut diverged) = (0usize, 0u64, false);
    source.for_each_audit_line(|line| {
        if diverged {
            return Ok(());
        }
        if let Some(digest) = there.get(index) {
            diverged = *digest != coffer_auth::mac::sha256(line.as_bytes());
        } else {
            target_store
                .append_audit(line)
                .map_err(|e| format!("appending an audit line: {e}"))?;
            appended += 1;
        }
        index += 1;
        Ok(())
    })?;
    if diverged || index < there.len() {
        return Ok(format!(
            "KMS audit log: the target's log is not the start of the source's; left alone \
             ({} lines there)",
            there.len()
        ));
    }
    Ok(format!(
        "KMS audit log: {appended} lines appended, {} already there",
        there.len()
    ))
}

/// Buckets with their configuration documents and versioning state, as records.
pub async fn buckets(
    source: &dyn MetadataStore,
    target: &dyn MetadataStore,
) -> Result<String, String> {
    let mut tally = Tally::default();
    for bucket in source.list_buckets().await.map_err(|e| e.to_string())? {
        match target.get_bucket(&bucket.name).await {
            Ok(there) if there == bucket => tally.already += 1,
            Ok(there) => {
                if (&there.owner, &there.region, there.created_ms)
                    != (&bucket.owner, &bucket.region, bucket.created_ms)
                {
                    return Err(format!(
                        "bucket {} exists at the target with another owner, region or creation \
                         time: the target is not a copy of this source",
                        bucket.name
                    ));
                }
                for name in there.config.keys().chain(bucket.config.keys()) {
                    target
                        .set_bucket_config(&bucket.name, name, bucket.config.get(name).cloned())
                        .await
                        .map_err(|e| format!("bucket {}: {e}", bucket.name))?;
                }
                if there.versioning != bucket.versioning {
                    target
                        .set_bucket_versioning(&bucket.name, bucket.versioning)
                        .await
                        .map_err(|e| format!("bucket {}: {e}", bucket.name))?;
                }
                tally.copied += 1;
            }
            Err(StoreError::NoSuchBucket) => {
                let name = bucket.name.clone();
                target
                    .create_bucket(bucket)
                    .await
                    .map_err(|e| format!("bucket {name}: {e}"))?;
                tally.copied += 1;
            }
            Err(e) => return Err(format!("bucket {}: {e}", bucket.name)),
        }
    }
    Ok(tally.line("buckets"))
}

/// Users and their access keys (secrets stay sealed as they are).
pub async fn users(
    source: &dyn MetadataStore,
    target: &dyn MetadataStore,
) -> Result<String, String> {
    let mut tally = Tally::default();
    let there = target.list_users().await.map_err(|e| e.to_string())?;
    for user in source.list_users().await.map_err(|e| e.to_string())? {
        match there.iter().find(|u| u.name == user.name) {
            Some(existing) if *existing == user => tally.already += 1,
            Some(_) => {
                return Err(format!(
                    "user {} exists at the target with another access key or secret",
                    user.name
                ));
            }
            None => {
                let name = user.name.clone();
                target
                    .add_user(user)
                    .await
                    .map_err(|e| format!("user {name}: {e}"))?;
                tally.copied += 1;
            }
        }
    }
    Ok(tally.line("users"))
}

/// Refuses a source with multipart uploads in progress: they are not moved.
pub async fn refuse_uploads(source: &dyn MetadataStore) -> Result<(), String> {
    let mut busy = Vec::new();
    for bucket in source.list_buckets().await.map_err(|e| e.to_string())? {
        let query = coffer_store::UploadListQuery {
            max_uploads: 1,
            ..Default::default()
        };
        let page = source
            .list_uploads(&bucket.name, &query)
            .await
            .map_err(|e| format!("bucket {}: {e}", bucket.name))?;
        if let Some(upload) = page.uploads.first() {
            busy.push(format!("{}/{}", bucket.name, upload.key));
        }
    }
    if busy.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the source has multipart uploads in progress (in {}): in-progress uploads are not \
         migrated; complete or abort them first (aws s3api list-multipart-uploads, \
         abort-multipart-upload), then run the migration again",
        busy.join(", ")
    ))
}

/// Every object version and delete marker of every bucket, with its blobs.
pub async fn objects(source: &Side, target: &Side) -> Result<String, String> {
    let mut tally = Tally::default();
    let mut extra = 0u64;
    let buckets = source
        .meta
        .list_buckets()
        .await
        .map_err(|e| e.to_string())?;
    for bucket in &buckets {
        let mut from = KeyWalk::new(source.meta.as_ref(), &bucket.name);
        let mut to = KeyWalk::new(target.meta.as_ref(), &bucket.name);
        let mut there = to.next_key().await?;
        let (copied_before, already_before) = (tally.copied, tally.already);
        while let Some(key) = from.next_key().await? {
            while there.as_ref().is_some_and(|t| t.key < key.key) {
                extra += 1;
                there = to.next_key().await?;
            }
            let existing = match there.take_if(|t| t.key == key.key) {
                Some(existing) => {
                    there = to.next_key().await?;
                    Some(existing)
                }
                None => None,
            };
            if existing.is_some_and(|e| same_versions(&e, &key)) {
                tally.already += 1;
                continue;
            }
            copy_key(source, target, &bucket.name, key).await?;
            tally.copied += 1;
        }
        while there.is_some() {
            extra += 1;
            there = to.next_key().await?;
        }
        eprintln!(
            "  bucket {}: {} keys copied, {} already there",
            bucket.name,
            tally.copied - copied_before,
            tally.already - already_before
        );
    }
    let mut line = tally.line("keys (all their versions)");
    if extra > 0 {
        line.push_str(&format!(
            "; the target has {extra} keys the source lacks (left alone)"
        ));
    }
    Ok(line)
}

fn same_versions(a: &KeyVersions, b: &KeyVersions) -> bool {
    a.versions.len() == b.versions.len()
        && a.versions
            .iter()
            .zip(&b.versions)
            .all(|(x, y)| placeless(x) == placeless(y))
}

/// Copies one key's blobs to new blobs at the target and imports its versions there.
async fn copy_key(
    source: &Side,
    target: &Side,
    bucket: &str,
    key: KeyVersions,
) -> Result<(), String> {
    let name = |e: &dyn std::fmt::Display| format!("{bucket}/{}: {e}", key.key);
    let mut written: Vec<BlobId> = Vec::new();
    let mut versions = Vec::with_capacity(key.versions.len());
    let mut result = Ok(());
    for mut version in key.versions.iter().cloned() {
        if let Version::Object(record) = &mut version {
            for extent in &mut record.extents {
                match copy_blob(source.blobs.as_ref(), target, &extent.blob).await {
                    Ok((id, size)) => {
                        written.push(id.clone());
                        if size != extent.size {
                            result = Err(format!(
                                "blob {} holds {size} bytes, its record says {}",
                                extent.blob, extent.size
                            ));
                        }
                        extent.blob = id;
                    }
                    Err(e) => result = Err(e),
                }
                if result.is_err() {
                    break;
                }
            }
        }
        if result.is_err() {
            break;
        }
        versions.push(version);
    }
    if result.is_ok() {
        result = target
            .meta
            .import_key_versions(bucket, &key.key, versions)
            .await
            .map_err(|e| e.to_string());
    }
    if let Err(e) = result {
        for id in &written {
            let _ = target.blobs.delete(id).await;
            let _ = target.meta.remove_pending_blob(id).await;
        }
        return Err(name(&e));
    }
    Ok(())
}

/// Copies one blob byte for byte into a new target blob (named pending first, as every
/// write of the store does); returns its id and length.
async fn copy_blob(
    source: &dyn BlobStore,
    target: &Side,
    blob: &BlobId,
) -> Result<(BlobId, u64), String> {
    let err = |e: StoreError| format!("blob {blob}: {e}");
    let len = source.len(blob).await.map_err(err)?;
    let mut writer = target.blobs.create().await.map_err(err)?;
    let id = writer.id().clone();
    target
        .meta
        .add_pending_blob(&id, SystemTime::now())
        .await
        .map_err(err)?;
    let mut stream = source.read(blob, 0..len).await.map_err(err)?;
    let mut copied = 0u64;
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(err)?;
        copied += piece.len() as u64;
        writer.write(piece).await.map_err(err)?;
    }
    writer.finish().await.map_err(err)?;
    Ok((id, copied))
}
