//! The migration entry point: a key's versions imported exactly as listed, again without
//! change, replaced with their blobs released, and what is refused.

use super::fixtures::{BY, finished_blob, new_bucket, object_record};
use crate::{
    BlobStore, Condition, MetadataStore, ObjectRecord, StoreError, Version, VersionListQuery,
    VersionRef, Versioning,
};

/// Every version of `key`, newest first, as one page lists them.
async fn versions_of(meta: &dyn MetadataStore, bucket: &str, key: &str) -> Vec<Version> {
    let query = VersionListQuery {
        prefix: key.to_owned(),
        max_keys: 1000,
        ..Default::default()
    };
    let page = meta.list_versions(bucket, &query).await.unwrap();
    page.versions
        .into_iter()
        .filter(|v| v.key == key)
        .map(|v| v.version)
        .collect()
}

/// `versions` with each object's blobs copied to fresh ones (what a migration does).
async fn with_fresh_blobs(blobs: &dyn BlobStore, versions: &[Version]) -> Vec<Version> {
    let mut out = Vec::new();
    for version in versions {
        let mut version = version.clone();
        if let Version::Object(record) = &mut version {
            for extent in &mut record.extents {
                extent.blob = finished_blob(blobs, &[b"copied"]).await;
            }
        }
        out.push(version);
    }
    out
}

async fn record(blobs: &dyn BlobStore, etag: &str) -> ObjectRecord {
    let blob = finished_blob(blobs, &[etag.as_bytes()]).await;
    object_record(etag, &[(&blob, None)])
}

pub(super) async fn import_versions(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    // A source history with ids, a null version in the middle and a delete marker on top.
    let source = new_bucket(meta, "import-src").await;
    meta.set_bucket_versioning(&source, Versioning::Enabled)
        .await
        .unwrap();
    meta.put_object(&source, "k", record(blobs, "v1").await, Condition::Always)
        .await
        .unwrap();
    meta.set_bucket_versioning(&source, Versioning::Suspended)
        .await
        .unwrap();
    meta.put_object(&source, "k", record(blobs, "null").await, Condition::Always)
        .await
        .unwrap();
    meta.set_bucket_versioning(&source, Versioning::Enabled)
        .await
        .unwrap();
    meta.put_object(&source, "k", record(blobs, "v3").await, Condition::Always)
        .await
        .unwrap();
    // The null version left `objects` after v3 got its id: its number is above v3's.
    let before_marker = versions_of(meta, &source, "k").await;
    meta.delete_object(&source, "k", Condition::Always, BY)
        .await
        .unwrap();
    let listed = versions_of(meta, &source, "k").await;
    assert_eq!(listed.len(), 4);

    let target = new_bucket(meta, "import-dst").await;
    meta.set_bucket_versioning(&target, Versioning::Enabled)
        .await
        .unwrap();
    let imported = with_fresh_blobs(blobs, &listed).await;
    meta.import_key_versions(&target, "k", imported.clone())
        .await
        .unwrap();
    assert_eq!(
        versions_of(meta, &target, "k").await,
        imported,
        "imported versions list exactly as given, ids and order kept"
    );
    for version in &imported {
        let found = meta
            .get_version(&target, "k", VersionRef::exactly(version.version_id()))
            .await
            .unwrap();
        assert_eq!(
            &found.version, version,
            "an imported version is found by its id"
        );
        if let Version::Object(record) = version {
            assert!(
                meta.is_blob_referenced(&record.extents[0].blob)
                    .await
                    .unwrap()
            );
        }
    }
    assert!(
        matches!(
            meta.get_object(&target, "k").await,
            Err(StoreError::NoSuchKey)
        ),
        "a delete marker on top reads as absent"
    );
    let current_on_top = with_fresh_blobs(blobs, &before_marker).await;
    meta.import_key_versions(&target, "k-current", current_on_top.clone())
        .await
        .unwrap();
    assert_eq!(
        versions_of(meta, &target, "k-current").await,
        current_on_top
    );
    assert_eq!(
        Version::Object(meta.get_object(&target, "k-current").await.unwrap()),
        current_on_top[0],
        "the newest object is the current one"
    );

    // Importing the same list again changes nothing.
    meta.import_key_versions(&target, "k", imported.clone())
        .await
        .unwrap();
    assert_eq!(versions_of(meta, &target, "k").await, imported);

    // A later write is newer than every imported version.
    let written = meta
        .put_object(
            &target,
            "k",
            record(blobs, "after").await,
            Condition::Always,
        )
        .await
        .unwrap();
    let after = versions_of(meta, &target, "k").await;
    assert_eq!(after.len(), 5);
    assert_eq!(after[0].version_id(), written.version_id.as_deref());
    assert!(
        written.version_id.as_deref() > imported.iter().filter_map(|v| v.version_id()).max(),
        "the version sequence was raised past the imported ids"
    );

    // Importing a shorter list replaces the key's versions and releases the blobs left out.
    let kept = with_fresh_blobs(blobs, &imported[1..2]).await;
    meta.import_key_versions(&target, "k", kept.clone())
        .await
        .unwrap();
    assert_eq!(versions_of(meta, &target, "k").await, kept);
    for version in &after {
        if let Version::Object(record) = version {
            assert!(
                !meta
                    .is_blob_referenced(&record.extents[0].blob)
                    .await
                    .unwrap(),
                "a replaced version's blob is released"
            );
        }
    }
    meta.import_key_versions(&target, "k", Vec::new())
        .await
        .unwrap();
    assert!(versions_of(meta, &target, "k").await.is_empty());

    // Refused: versions out of order, a blob another record holds, two null versions, and
    // more than one null object in an unversioned bucket.
    let mut reversed = with_fresh_blobs(blobs, &imported).await;
    reversed.reverse();
    assert!(matches!(
        meta.import_key_versions(&target, "k", reversed).await,
        Err(StoreError::InvalidArgument(_))
    ));
    let in_use = meta.get_version(&source, "k", VersionRef::exactly(imported[1].version_id()));
    let in_use = in_use.await.unwrap().version;
    assert!(matches!(
        meta.import_key_versions(&target, "k2", vec![in_use]).await,
        Err(StoreError::BlobInUse)
    ));
    let plain = new_bucket(meta, "import-plain").await;
    let one = with_fresh_blobs(blobs, &[Version::Object(record(blobs, "p").await)]).await;
    meta.import_key_versions(&plain, "p", one.clone())
        .await
        .unwrap();
    assert_eq!(
        meta.get_object(&plain, "p").await.unwrap(),
        match &one[0] {
            Version::Object(record) => record.clone(),
            Version::DeleteMarker(_) => unreachable!("an object"),
        }
    );
    let two = with_fresh_blobs(blobs, &imported[1..3]).await;
    assert!(matches!(
        meta.import_key_versions(&plain, "q", two).await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        meta.import_key_versions("no-such-bucket-import", "k", Vec::new())
            .await,
        Err(StoreError::NoSuchBucket)
    ));
}
