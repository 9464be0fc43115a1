//! The contract suite: the behaviour every [`MetadataStore`] and [`BlobStore`] backend must
//! show, written once against the traits. The embedded pair runs it in this crate's tests;
//! another backend runs it from its own tests with the `contract` feature:
//!
//! ```ignore
//! coffer_store::contract::metadata_contract(&meta, &blobs).await;
//! coffer_store::contract::blob_contract(&blobs).await;
//! ```
//!
//! Every function panics on the first broken promise, naming it. Names it creates (buckets,
//! users) carry a random suffix, so the suite can run against a shared, non-empty backend.
//! The metadata suite needs a blob store too: records must reference real, finished blobs.
#![allow(clippy::unwrap_used)]

mod blobs;
mod body_swap;
mod buckets;
mod conditions;
mod fixtures;
mod import;
mod lease;
mod multipart;
mod pending;
mod users;
mod versions;

use crate::{BlobId, BlobStore, Condition, MetadataStore, ObjectRecord, UserRecord};
use blobs::{blob_delete_and_listing, blob_round_trip_and_ranges, unfinished_blob_is_invisible};
use body_swap::body_compare_and_swap;
use buckets::{buckets, listing};
use conditions::{
    concurrent_conditions, conditional_delete, conditional_put, envelope_compare_and_swap,
    not_modified_after,
};
use fixtures::{
    finished_blob, new_bucket, object_record, part_record, read_all, suffix, upload_record,
    user_record,
};
use import::import_versions;
use lease::leases;
use multipart::multipart;
use pending::pending_blobs;
use users::users;
use versions::{
    enabled_versioning, object_lock, suspended_and_unversioned, version_listing, version_updates,
};

/// Runs every metadata check; `blobs` is the store the backend's records point into.
pub async fn metadata_contract(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    buckets(meta, blobs).await;
    conditional_put(meta, blobs).await;
    conditional_delete(meta, blobs).await;
    not_modified_after(meta, blobs).await;
    envelope_compare_and_swap(meta, blobs).await;
    body_compare_and_swap(meta, blobs).await;
    concurrent_conditions(meta, blobs).await;
    listing(meta, blobs).await;
    multipart(meta, blobs).await;
    pending_blobs(meta, blobs).await;
    users(meta).await;
    leases(meta).await;
    enabled_versioning(meta, blobs).await;
    suspended_and_unversioned(meta, blobs).await;
    object_lock(meta, blobs).await;
    version_updates(meta, blobs).await;
    version_listing(meta, blobs).await;
    import_versions(meta, blobs).await;
}

/// Runs every blob store check.
pub async fn blob_contract(blobs: &dyn BlobStore) {
    blob_round_trip_and_ranges(blobs).await;
    unfinished_blob_is_invisible(blobs).await;
    blob_delete_and_listing(blobs).await;
}

/// First half of the persistence check: writes through the traits. Drop the backend, open it
/// again on the same storage, then call [`persistence_check`] with the returned value.
pub async fn persistence_write(meta: &dyn MetadataStore, blobs: &dyn BlobStore) -> Persisted {
    let bucket = new_bucket(meta, "persist").await;
    let body = b"kept across a restart".to_vec();
    let blob = finished_blob(blobs, &[&body]).await;
    let mut record = object_record("etag-persist", &[(&blob, None)]);
    record.extents[0].size = body.len() as u64;
    meta.put_object(&bucket, "dir/key", record.clone(), Condition::Always)
        .await
        .unwrap();
    meta.set_bucket_config(&bucket, "encryption", Some("<SSE/>".into()))
        .await
        .unwrap();
    let upload_id = meta
        .create_upload(&bucket, "big", upload_record())
        .await
        .unwrap();
    let part_blob = finished_blob(blobs, &[b"part one"]).await;
    meta.put_part(&bucket, "big", &upload_id, part_record(1, &part_blob))
        .await
        .unwrap();
    let mut user = user_record(&format!("persist-{}", suffix()));
    user.policy = Some(r#"{"Statement":[]}"#.into());
    meta.add_user(user.clone()).await.unwrap();
    Persisted {
        bucket,
        record,
        body,
        upload_id,
        part_blob,
        user,
    }
}

/// What [`persistence_write`] wrote.
pub struct Persisted {
    bucket: String,
    record: ObjectRecord,
    body: Vec<u8>,
    upload_id: String,
    part_blob: BlobId,
    user: UserRecord,
}

/// Second half of the persistence check, after a reopen.
pub async fn persistence_check(meta: &dyn MetadataStore, blobs: &dyn BlobStore, p: Persisted) {
    let record = meta.get_object(&p.bucket, "dir/key").await.unwrap();
    assert_eq!(record, p.record, "an object record survives a reopen");
    let blob = &record.extents[0].blob;
    assert_eq!(read_all(blobs, blob, 0..p.body.len() as u64).await, p.body);
    assert!(meta.is_blob_referenced(blob).await.unwrap());
    assert_eq!(
        meta.get_bucket_config(&p.bucket, "encryption")
            .await
            .unwrap()
            .as_deref(),
        Some("<SSE/>"),
        "bucket configuration survives a reopen"
    );
    let (parts, _) = meta
        .list_parts(&p.bucket, "big", &p.upload_id, 0, 10)
        .await
        .unwrap();
    assert_eq!(parts, vec![part_record(1, &p.part_blob)]);
    assert_eq!(blobs.len(&p.part_blob).await.unwrap(), 8);
    assert_eq!(
        meta.user_by_access_key(&p.user.access_key).await.unwrap(),
        Some(p.user),
        "a user survives a reopen"
    );
}
