//! Versions: enabled, suspended and unversioned buckets; delete markers; deletes by version
//! id; object lock; version-addressed updates; ListObjectVersions paging.

use super::fixtures::{BY, finished_blob, new_bucket, object_record};
use crate::{
    BlobStore, Condition, Deleted, MetadataStore, ObjectRecord, Retention, RetentionMode,
    StoreError, Version, VersionChange, VersionListPage, VersionListQuery, VersionRef, Versioning,
};

/// A record of one fresh blob, tagged by its ETag.
async fn version_record(blobs: &dyn BlobStore, etag: &str) -> ObjectRecord {
    let blob = finished_blob(blobs, &[etag.as_bytes()]).await;
    object_record(etag, &[(&blob, None)])
}

fn id(which: &Option<String>) -> VersionRef {
    VersionRef::Id(which.clone().expect("a version id"))
}

/// (key, version id, is latest, etag or "marker") of every version, listed in one page.
async fn listing(meta: &dyn MetadataStore, bucket: &str) -> Vec<(String, String, bool, String)> {
    let query = VersionListQuery {
        max_keys: 1000,
        ..Default::default()
    };
    let page = meta.list_versions(bucket, &query).await.unwrap();
    assert!(!page.is_truncated);
    page.versions
        .into_iter()
        .map(|v| {
            let what = match &v.version {
                Version::Object(o) => o.etag.clone(),
                Version::DeleteMarker(_) => "marker".into(),
            };
            let version_id = v.version.version_id().unwrap_or("null").to_owned();
            (v.key, version_id, v.is_latest, what)
        })
        .collect()
}

/// The object version `which` names (a panic if it is a marker or absent).
async fn object_version(
    meta: &dyn MetadataStore,
    bucket: &str,
    key: &str,
    which: VersionRef,
) -> ObjectRecord {
    match meta.get_version(bucket, key, which).await.unwrap().version {
        Version::Object(record) => record,
        Version::DeleteMarker(marker) => panic!("a delete marker: {marker:?}"),
    }
}

fn locked<T>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::ObjectLocked))
}

async fn referenced(meta: &dyn MetadataStore, record: &ObjectRecord) -> bool {
    meta.is_blob_referenced(&record.extents[0].blob)
        .await
        .unwrap()
}

pub(super) async fn enabled_versioning(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    let bucket = new_bucket(meta, "versions").await;
    meta.set_bucket_versioning(&bucket, Versioning::Enabled)
        .await
        .unwrap();
    assert_eq!(
        meta.get_bucket(&bucket).await.unwrap().versioning,
        Versioning::Enabled
    );
    let mut records = Vec::new();
    let mut ids = Vec::new();
    for etag in ["e1", "e2", "e3"] {
        let record = version_record(blobs, etag).await;
        let written = meta
            .put_object(&bucket, "k", record.clone(), Condition::Always)
            .await
            .unwrap();
        assert!(written.version_id.is_some(), "an enabled bucket gives ids");
        records.push(record);
        ids.push(written.version_id);
    }
    assert!(ids[0] != ids[1] && ids[1] != ids[2]);
    assert_eq!(meta.get_object(&bucket, "k").await.unwrap().etag, "e3");
    let v1 = meta.get_version(&bucket, "k", id(&ids[0])).await.unwrap();
    assert!(!v1.is_latest);
    assert!(matches!(&v1.version, Version::Object(o) if o.etag == "e1" && o.version_id == ids[0]));
    assert!(
        meta.get_version(&bucket, "k", id(&ids[2]))
            .await
            .unwrap()
            .is_latest
    );
    for record in &records {
        assert!(
            referenced(meta, record).await,
            "every version keeps its blob"
        );
    }
    let all = listing(meta, &bucket).await;
    let etags: Vec<_> = all.iter().map(|v| (v.2, v.3.as_str())).collect();
    assert_eq!(etags, [(true, "e3"), (false, "e2"), (false, "e1")]);

    // A delete adds a marker; the key reads as absent; the versions stay.
    let Deleted::Marker {
        version_id: marker @ Some(_),
    } = meta
        .delete_object(&bucket, "k", Condition::Always, BY)
        .await
        .unwrap()
    else {
        panic!("a delete in an enabled bucket writes a marker with an id");
    };
    assert!(matches!(
        meta.get_object(&bucket, "k").await,
        Err(StoreError::NoSuchKey)
    ));
    let latest = meta
        .get_version(&bucket, "k", VersionRef::Latest)
        .await
        .unwrap();
    assert!(latest.is_latest);
    assert!(matches!(latest.version, Version::DeleteMarker(m) if m.version_id == marker));
    assert_eq!(listing(meta, &bucket).await.len(), 4);
    // An absent key in a versioned bucket may be written IfAbsent over the marker.
    assert!(matches!(
        meta.put_object(
            &bucket,
            "k",
            records[0].clone(),
            Condition::IfEtag("e3".into())
        )
        .await,
        Err(StoreError::NoSuchKey)
    ));

    // Deleting the marker by id brings e3 back.
    let removed = meta
        .delete_version(&bucket, "k", id(&marker), false, BY.now_ms)
        .await
        .unwrap();
    assert!(matches!(removed, Some(Version::DeleteMarker(_))));
    assert_eq!(meta.get_object(&bucket, "k").await.unwrap().etag, "e3");
    // Deleting the current version by id promotes the next one and frees only its blob.
    meta.delete_version(&bucket, "k", id(&ids[2]), false, BY.now_ms)
        .await
        .unwrap()
        .unwrap();
    assert!(!referenced(meta, &records[2]).await);
    assert!(referenced(meta, &records[1]).await);
    let current = meta.get_object(&bucket, "k").await.unwrap();
    assert_eq!(
        (current.etag.as_str(), &current.version_id),
        ("e2", &ids[1])
    );
    // A well-formed id of no version is not an error; a malformed one is.
    assert_eq!(
        meta.delete_version(&bucket, "k", id(&ids[2]), false, BY.now_ms)
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        meta.get_version(&bucket, "k", id(&ids[2])).await,
        Err(StoreError::NoSuchVersion)
    ));
    assert!(matches!(
        meta.get_version(&bucket, "k", VersionRef::Id("garbage".into()))
            .await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        meta.get_version(&bucket, "k", VersionRef::Null).await,
        Err(StoreError::NoSuchVersion)
    ));

    // Noncurrent versions and markers keep a bucket from being deleted.
    meta.delete_object(&bucket, "k", Condition::Always, BY)
        .await
        .unwrap();
    for version in [&ids[0], &ids[1]] {
        meta.delete_version(&bucket, "k", id(version), false, BY.now_ms)
            .await
            .unwrap()
            .unwrap();
    }
    assert!(!referenced(meta, &records[0]).await);
    assert!(matches!(
        meta.delete_bucket(&bucket).await,
        Err(StoreError::BucketNotEmpty)
    ));
    let only = listing(meta, &bucket).await;
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].3, "marker");
    meta.delete_version(&bucket, "k", VersionRef::Id(only[0].1.clone()), false, 0)
        .await
        .unwrap()
        .unwrap();
    meta.delete_bucket(&bucket).await.unwrap();
}

pub(super) async fn suspended_and_unversioned(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    // Unversioned: one null version per key, replaced by each write.
    let bucket = new_bucket(meta, "nullver").await;
    let first = version_record(blobs, "u1").await;
    let written = meta
        .put_object(&bucket, "k", first.clone(), Condition::Always)
        .await
        .unwrap();
    assert_eq!(written.version_id, None);
    meta.put_object(
        &bucket,
        "k",
        version_record(blobs, "u2").await,
        Condition::Always,
    )
    .await
    .unwrap();
    assert!(!referenced(meta, &first).await);
    assert_eq!(
        listing(meta, &bucket).await,
        [("k".into(), "null".into(), true, "u2".into())]
    );
    assert!(matches!(
        meta.set_bucket_versioning(&bucket, Versioning::Unversioned)
            .await,
        Err(StoreError::InvalidArgument(_))
    ));

    // Enabled, then suspended: writes replace the null version only.
    meta.set_bucket_versioning(&bucket, Versioning::Enabled)
        .await
        .unwrap();
    let kept = meta
        .put_object(
            &bucket,
            "k",
            version_record(blobs, "v1").await,
            Condition::Always,
        )
        .await
        .unwrap()
        .version_id;
    meta.set_bucket_versioning(&bucket, Versioning::Suspended)
        .await
        .unwrap();
    let null_one = version_record(blobs, "n1").await;
    meta.put_object(&bucket, "k", null_one.clone(), Condition::Always)
        .await
        .unwrap();
    meta.put_object(
        &bucket,
        "k",
        version_record(blobs, "n2").await,
        Condition::Always,
    )
    .await
    .unwrap();
    assert!(
        !referenced(meta, &null_one).await,
        "the null version was replaced"
    );
    let names = |l: Vec<(String, String, bool, String)>| -> Vec<String> {
        l.into_iter()
            .map(|v| {
                if v.1 == "null" {
                    format!("null:{}", v.3)
                } else {
                    v.3
                }
            })
            .collect()
    };
    // The u2 null version from the unversioned days was replaced by n1 too.
    assert_eq!(names(listing(meta, &bucket).await), ["null:n2", "v1"]);
    assert_eq!(
        meta.delete_object(&bucket, "k", Condition::Always, BY)
            .await
            .unwrap(),
        Deleted::Marker { version_id: None }
    );
    assert_eq!(names(listing(meta, &bucket).await), ["null:marker", "v1"]);
    meta.set_bucket_versioning(&bucket, Versioning::Enabled)
        .await
        .unwrap();
    meta.put_object(
        &bucket,
        "k",
        version_record(blobs, "v2").await,
        Condition::Always,
    )
    .await
    .unwrap();
    assert_eq!(
        names(listing(meta, &bucket).await),
        ["v2", "null:marker", "v1"]
    );
    let v1 = meta.get_version(&bucket, "k", id(&kept)).await.unwrap();
    assert!(matches!(v1.version, Version::Object(o) if o.etag == "v1"));
}

pub(super) async fn object_lock(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    let bucket = new_bucket(meta, "lock").await;
    meta.set_bucket_versioning(&bucket, Versioning::Enabled)
        .await
        .unwrap();
    let now = BY.now_ms;
    let until = now + 86_400_000;
    let retained = |mode| Retention {
        mode,
        until_ms: until,
    };
    let mut ids = Vec::new();
    for (etag, retention, legal_hold) in [
        ("gov", Some(retained(RetentionMode::Governance)), false),
        ("comp", Some(retained(RetentionMode::Compliance)), false),
        ("hold", None, true),
    ] {
        let record = ObjectRecord {
            retention,
            legal_hold,
            ..version_record(blobs, etag).await
        };
        let written = meta
            .put_object(&bucket, "k", record, Condition::Always)
            .await
            .unwrap();
        ids.push(written.version_id);
    }
    for version in &ids {
        assert!(locked(
            meta.delete_version(&bucket, "k", id(version), false, now)
                .await
        ));
    }
    assert!(locked(
        meta.delete_version(&bucket, "k", id(&ids[1]), true, now)
            .await
    ));
    assert!(locked(
        meta.delete_version(&bucket, "k", id(&ids[2]), true, now)
            .await
    ));
    // A delete marker on top is allowed: nothing is removed.
    meta.delete_object(&bucket, "k", Condition::Always, BY)
        .await
        .unwrap();
    assert_eq!(listing(meta, &bucket).await.len(), 4);

    // Retention changes: COMPLIANCE only extends; GOVERNANCE shortens only with bypass.
    let change = |retention: Option<Retention>, bypass| VersionChange::Retention {
        retention,
        bypass_governance: bypass,
        now_ms: now,
    };
    let shorter = |mode| Retention {
        mode,
        until_ms: until - 1,
    };
    for bypass in [false, true] {
        assert!(locked(
            meta.update_version(
                &bucket,
                "k",
                id(&ids[1]),
                change(Some(shorter(RetentionMode::Compliance)), bypass)
            )
            .await
        ));
        assert!(locked(
            meta.update_version(
                &bucket,
                "k",
                id(&ids[1]),
                change(Some(retained(RetentionMode::Governance)), bypass)
            )
            .await
        ));
    }
    let longer = Retention {
        mode: RetentionMode::Compliance,
        until_ms: until + 1,
    };
    let updated = meta
        .update_version(
            &bucket,
            "k",
            id(&ids[1]),
            change(Some(longer.clone()), false),
        )
        .await
        .unwrap();
    assert_eq!(updated.retention, Some(longer));
    assert!(locked(
        meta.update_version(&bucket, "k", id(&ids[0]), change(None, false))
            .await
    ));
    meta.update_version(&bucket, "k", id(&ids[0]), change(None, true))
        .await
        .unwrap();
    meta.delete_version(&bucket, "k", id(&ids[0]), false, now)
        .await
        .unwrap()
        .unwrap();
    // A legal hold holds until lifted; an expired retention no longer protects.
    meta.update_version(&bucket, "k", id(&ids[2]), VersionChange::LegalHold(false))
        .await
        .unwrap();
    meta.delete_version(&bucket, "k", id(&ids[2]), false, now)
        .await
        .unwrap()
        .unwrap();
    meta.delete_version(&bucket, "k", id(&ids[1]), false, until + 2)
        .await
        .unwrap()
        .unwrap();
}

pub(super) async fn version_updates(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    let bucket = new_bucket(meta, "vupdate").await;
    meta.set_bucket_versioning(&bucket, Versioning::Enabled)
        .await
        .unwrap();
    let old = meta
        .put_object(
            &bucket,
            "k",
            version_record(blobs, "old").await,
            Condition::Always,
        )
        .await
        .unwrap()
        .version_id;
    meta.put_object(
        &bucket,
        "k",
        version_record(blobs, "new").await,
        Condition::Always,
    )
    .await
    .unwrap();
    let tags = vec![("team".to_owned(), "blue".to_owned())];
    meta.update_version(&bucket, "k", id(&old), VersionChange::Tags(tags.clone()))
        .await
        .unwrap();
    let stored = object_version(meta, &bucket, "k", id(&old)).await;
    assert_eq!(stored.tags, tags);
    assert!(
        meta.get_object(&bucket, "k").await.unwrap().tags.is_empty(),
        "only the named version changed"
    );
    // The ACL of one version: set, read back, removed.
    let acl = Some(r#"{"grants":[{"grantee":"AllUsers","permission":"READ"}]}"#.to_owned());
    let changed = meta
        .update_version(&bucket, "k", id(&old), VersionChange::Acl(acl.clone()))
        .await
        .unwrap();
    assert_eq!(changed.acl, acl);
    assert_eq!(object_version(meta, &bucket, "k", id(&old)).await.acl, acl);
    assert_eq!(
        meta.get_object(&bucket, "k").await.unwrap().acl,
        version_record(blobs, "any").await.acl,
        "only the named version's ACL changed"
    );
    meta.update_version(&bucket, "k", id(&old), VersionChange::Acl(None))
        .await
        .unwrap();
    assert_eq!(object_version(meta, &bucket, "k", id(&old)).await.acl, None);
    // Rewrap of a noncurrent version.
    assert!(
        meta.replace_envelope(&bucket, "k", id(&old), vec![1, 2, 3], vec![7])
            .await
            .unwrap()
    );
    assert!(
        !meta
            .replace_envelope(&bucket, "k", id(&old), vec![1, 2, 3], vec![8])
            .await
            .unwrap()
    );
    let stored = object_version(meta, &bucket, "k", id(&old)).await;
    assert_eq!(stored.envelope, Some(vec![7]));
    let marker = match meta
        .delete_object(&bucket, "k", Condition::Always, BY)
        .await
        .unwrap()
    {
        Deleted::Marker { version_id } => version_id,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        meta.update_version(&bucket, "k", id(&marker), VersionChange::LegalHold(true))
            .await,
        Err(StoreError::DeleteMarker)
    ));
}

/// Writes `count` versions of each key, tagged `key#0`, `key#1`… (oldest first).
async fn put_versions(
    meta: &dyn MetadataStore,
    blobs: &dyn BlobStore,
    bucket: &str,
    keys: &[(&str, usize)],
) {
    for &(key, count) in keys {
        for n in 0..count {
            meta.put_object(
                bucket,
                key,
                version_record(blobs, &format!("{key}#{n}")).await,
                Condition::Always,
            )
            .await
            .unwrap();
        }
    }
}

pub(super) async fn version_listing(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    let bucket = new_bucket(meta, "vlist").await;
    meta.set_bucket_versioning(&bucket, Versioning::Enabled)
        .await
        .unwrap();
    put_versions(
        meta,
        blobs,
        &bucket,
        &[("a", 2), ("b/1", 1), ("b/2", 2), ("c", 3), ("c\0x", 1)],
    )
    .await;
    meta.delete_object(&bucket, "a", Condition::Always, BY)
        .await
        .unwrap();
    let full = listing(meta, &bucket).await;
    let keys: Vec<&str> = full.iter().map(|v| v.0.as_str()).collect();
    assert_eq!(
        keys,
        ["a", "a", "a", "b/1", "b/2", "b/2", "c", "c", "c", "c\0x"]
    );
    assert_eq!(full[0].3, "marker");
    assert_eq!(full[6].3, "c#2", "newest first");

    // Paging two at a time walks the same list.
    for max_keys in [1, 2, 3] {
        let mut paged = Vec::new();
        let mut query = VersionListQuery {
            max_keys,
            ..Default::default()
        };
        loop {
            let page = meta.list_versions(&bucket, &query).await.unwrap();
            assert!(page.versions.len() <= max_keys);
            paged.extend(
                page.versions
                    .iter()
                    .map(|v| (v.key.clone(), v.version.version_id().map(str::to_owned))),
            );
            if !page.is_truncated {
                break;
            }
            query.key_marker = page.next_key_marker;
            query.version_id_marker = page.next_version_id_marker;
        }
        let expected: Vec<_> = full
            .iter()
            .map(|v| (v.0.clone(), Some(v.1.clone())))
            .collect();
        assert_eq!(paged, expected, "pages of {max_keys}");
    }

    // Delimiter: b/ rolls up once; prefix narrows.
    let query = VersionListQuery {
        delimiter: Some("/".into()),
        max_keys: 1000,
        ..Default::default()
    };
    let page = meta.list_versions(&bucket, &query).await.unwrap();
    assert_eq!(page.common_prefixes, ["b/"]);
    assert_eq!(page.versions.len(), 7);
    let query = VersionListQuery {
        prefix: "b/".into(),
        max_keys: 1000,
        ..Default::default()
    };
    let page = meta.list_versions(&bucket, &query).await.unwrap();
    assert_eq!(page.versions.len(), 3);
    assert!(page.versions.iter().all(|v| v.key.starts_with("b/")));
    // A key marker alone skips every version of that key.
    let query = VersionListQuery {
        key_marker: Some("b/2".into()),
        max_keys: 1000,
        ..Default::default()
    };
    let page = meta.list_versions(&bucket, &query).await.unwrap();
    assert_eq!(page.versions[0].key, "c");

    // Pages with a delimiter: each common prefix once, in order among the keys, whatever the
    // page size, and its keys (current and noncurrent) never listed.
    put_versions(
        meta,
        blobs,
        &bucket,
        &[("d/x/1", 2), ("d/x/2", 1), ("d/y", 2), ("e", 1)],
    )
    .await;
    let version_ids = |page: &VersionListPage| -> Vec<(String, Option<String>)> {
        page.versions
            .iter()
            .map(|v| (v.key.clone(), v.version.version_id().map(str::to_owned)))
            .collect()
    };
    for prefix in ["", "d/"] {
        let query = VersionListQuery {
            prefix: prefix.into(),
            delimiter: Some("/".into()),
            max_keys: 1000,
            ..Default::default()
        };
        let whole = meta.list_versions(&bucket, &query).await.unwrap();
        let keys: Vec<&str> = whole.versions.iter().map(|v| v.key.as_str()).collect();
        if prefix.is_empty() {
            assert_eq!(whole.common_prefixes, ["b/", "d/"]);
            assert_eq!(keys, ["a", "a", "a", "c", "c", "c", "c\0x", "e"]);
        } else {
            assert_eq!(whole.common_prefixes, ["d/x/"]);
            assert_eq!(keys, ["d/y", "d/y"]);
        }
        for max_keys in [1, 2, 3] {
            let (mut versions, mut prefixes) = (Vec::new(), Vec::new());
            let mut query = VersionListQuery {
                max_keys,
                ..query.clone()
            };
            loop {
                let page = meta.list_versions(&bucket, &query).await.unwrap();
                assert!(page.versions.len() + page.common_prefixes.len() <= max_keys);
                versions.extend(version_ids(&page));
                prefixes.extend(page.common_prefixes);
                if !page.is_truncated {
                    break;
                }
                query.key_marker = page.next_key_marker;
                query.version_id_marker = page.next_version_id_marker;
            }
            assert_eq!(
                versions,
                version_ids(&whole),
                "{prefix:?} in pages of {max_keys}"
            );
            assert_eq!(
                prefixes, whole.common_prefixes,
                "{prefix:?} in pages of {max_keys}"
            );
        }
    }
}
