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

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::join_all;

use crate::blob::random_hex;
use crate::{
    BlobId, BlobStore, BucketRecord, Condition, Extent, ListQuery, MetadataStore, ObjectRecord,
    PartRecord, StoreError, UploadListQuery, UploadRecord, UserRecord,
};

/// Runs every metadata check; `blobs` is the store the backend's records point into.
pub async fn metadata_contract(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    buckets(meta, blobs).await;
    conditional_put(meta, blobs).await;
    conditional_delete(meta, blobs).await;
    envelope_compare_and_swap(meta, blobs).await;
    concurrent_conditions(meta, blobs).await;
    listing(meta, blobs).await;
    multipart(meta, blobs).await;
    pending_blobs(meta, blobs).await;
    users(meta).await;
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
    let user = user_record(&format!("persist-{}", suffix()));
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

// ---- Metadata ----

async fn buckets(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    let name = new_bucket(meta, "buckets").await;
    match meta.create_bucket(bucket_record(&name, "bob")).await {
        Err(StoreError::BucketExists { owner }) => assert_eq!(owner, "alice"),
        other => panic!("creating an existing bucket: {other:?}"),
    }
    assert_eq!(meta.get_bucket(&name).await.unwrap().owner, "alice");
    let missing = format!("missing-{}", suffix());
    assert!(matches!(
        meta.get_bucket(&missing).await,
        Err(StoreError::NoSuchBucket)
    ));
    assert!(matches!(
        meta.create_bucket(bucket_record("", "alice")).await,
        Err(StoreError::InvalidArgument(_))
    ));

    let other = new_bucket(meta, "buckets-b").await;
    let names: Vec<String> = meta
        .list_buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert!(names.contains(&name) && names.contains(&other));
    assert!(names.windows(2).all(|w| w[0] < w[1]), "buckets sorted");

    // Configuration documents, one at a time.
    assert_eq!(meta.get_bucket_config(&name, "policy").await.unwrap(), None);
    meta.set_bucket_config(&name, "policy", Some("P".into()))
        .await
        .unwrap();
    meta.set_bucket_config(&name, "encryption", Some("E".into()))
        .await
        .unwrap();
    assert_eq!(
        meta.get_bucket_config(&name, "policy").await.unwrap(),
        Some("P".into())
    );
    meta.set_bucket_config(&name, "policy", None).await.unwrap();
    assert_eq!(meta.get_bucket_config(&name, "policy").await.unwrap(), None);
    assert_eq!(
        meta.get_bucket_config(&name, "encryption").await.unwrap(),
        Some("E".into()),
        "removing one document keeps the others"
    );
    assert!(matches!(
        meta.set_bucket_config(&missing, "policy", None).await,
        Err(StoreError::NoSuchBucket)
    ));
    assert!(matches!(
        meta.get_bucket_config(&missing, "policy").await,
        Err(StoreError::NoSuchBucket)
    ));

    // Delete only when empty: objects and uploads both count.
    let blob = finished_blob(blobs, &[b"x"]).await;
    meta.put_object(
        &name,
        "k",
        object_record("e", &[(&blob, None)]),
        Condition::Always,
    )
    .await
    .unwrap();
    assert!(matches!(
        meta.delete_bucket(&name).await,
        Err(StoreError::BucketNotEmpty)
    ));
    meta.delete_object(&name, "k", Condition::Always)
        .await
        .unwrap();
    let upload = meta
        .create_upload(&name, "u", upload_record())
        .await
        .unwrap();
    assert!(matches!(
        meta.delete_bucket(&name).await,
        Err(StoreError::BucketNotEmpty)
    ));
    meta.abort_upload(&name, "u", &upload).await.unwrap();
    meta.delete_bucket(&name).await.unwrap();
    assert!(matches!(
        meta.get_bucket(&name).await,
        Err(StoreError::NoSuchBucket)
    ));
    assert!(matches!(
        meta.delete_bucket(&name).await,
        Err(StoreError::NoSuchBucket)
    ));
    meta.delete_bucket(&other).await.unwrap();
}

async fn conditional_put(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    let bucket = new_bucket(meta, "cond-put").await;
    let b1 = finished_blob(blobs, &[b"one"]).await;
    let b2 = finished_blob(blobs, &[b"two"]).await;
    let b3 = finished_blob(blobs, &[b"three"]).await;

    let missing = format!("missing-{}", suffix());
    assert!(matches!(
        meta.put_object(&missing, "k", object_record("e", &[]), Condition::Always)
            .await,
        Err(StoreError::NoSuchBucket)
    ));
    assert!(matches!(
        meta.put_object(&bucket, "", object_record("e", &[]), Condition::Always)
            .await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        meta.get_object(&bucket, "k").await,
        Err(StoreError::NoSuchKey)
    ));
    assert!(matches!(
        meta.get_object(&missing, "k").await,
        Err(StoreError::NoSuchBucket)
    ));

    // If-Match on an absent key.
    assert!(matches!(
        meta.put_object(
            &bucket,
            "k",
            object_record("e1", &[(&b1, None)]),
            Condition::IfEtag("e1".into())
        )
        .await,
        Err(StoreError::NoSuchKey)
    ));
    assert!(!meta.is_blob_referenced(&b1).await.unwrap());

    let first = object_record("e1", &[(&b1, None)]);
    meta.put_object(&bucket, "k", first.clone(), Condition::IfAbsent)
        .await
        .unwrap();
    assert_eq!(meta.get_object(&bucket, "k").await.unwrap(), first);
    assert!(meta.is_blob_referenced(&b1).await.unwrap());

    // A second If-None-Match fails and changes nothing.
    assert!(matches!(
        meta.put_object(
            &bucket,
            "k",
            object_record("e2", &[(&b2, None)]),
            Condition::IfAbsent
        )
        .await,
        Err(StoreError::PreconditionFailed)
    ));
    assert_eq!(meta.get_object(&bucket, "k").await.unwrap(), first);
    assert!(!meta.is_blob_referenced(&b2).await.unwrap());

    // If-Match with another ETag fails; with the current one it replaces.
    assert!(matches!(
        meta.put_object(
            &bucket,
            "k",
            object_record("e2", &[(&b2, None)]),
            Condition::IfEtag("nope".into())
        )
        .await,
        Err(StoreError::PreconditionFailed)
    ));
    assert_eq!(meta.get_object(&bucket, "k").await.unwrap(), first);
    let second = object_record("e2", &[(&b2, None)]);
    meta.put_object(&bucket, "k", second.clone(), Condition::IfEtag("e1".into()))
        .await
        .unwrap();
    assert_eq!(meta.get_object(&bucket, "k").await.unwrap(), second);
    assert!(
        !meta.is_blob_referenced(&b1).await.unwrap(),
        "an overwrite releases the previous record's blobs"
    );

    // A blob belongs to one record at a time.
    assert!(matches!(
        meta.put_object(
            &bucket,
            "other",
            object_record("e", &[(&b2, None)]),
            Condition::Always
        )
        .await,
        Err(StoreError::BlobInUse)
    ));
    assert!(matches!(
        meta.put_object(
            &bucket,
            "other",
            object_record("e", &[(&b3, None), (&b3, None)]),
            Condition::Always
        )
        .await,
        Err(StoreError::BlobInUse)
    ));
    assert!(matches!(
        meta.get_object(&bucket, "other").await,
        Err(StoreError::NoSuchKey)
    ));

    // Unconditional overwrite.
    let third = object_record("e3", &[(&b3, None)]);
    meta.put_object(&bucket, "k", third.clone(), Condition::Always)
        .await
        .unwrap();
    assert_eq!(meta.get_object(&bucket, "k").await.unwrap(), third);
    meta.delete_object(&bucket, "k", Condition::Always)
        .await
        .unwrap();
    meta.delete_bucket(&bucket).await.unwrap();
}

async fn conditional_delete(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    let bucket = new_bucket(meta, "cond-del").await;
    let blob = finished_blob(blobs, &[b"body"]).await;
    let record = object_record("e1", &[(&blob, None)]);
    meta.put_object(&bucket, "k", record.clone(), Condition::Always)
        .await
        .unwrap();

    assert!(matches!(
        meta.delete_object(&bucket, "k", Condition::IfEtag("other".into()))
            .await,
        Err(StoreError::PreconditionFailed)
    ));
    assert!(matches!(
        meta.delete_object(&bucket, "k", Condition::IfAbsent).await,
        Err(StoreError::PreconditionFailed)
    ));
    assert_eq!(meta.get_object(&bucket, "k").await.unwrap(), record);
    assert!(
        meta.delete_object(&bucket, "k", Condition::IfEtag("e1".into()))
            .await
            .unwrap()
    );
    assert!(matches!(
        meta.get_object(&bucket, "k").await,
        Err(StoreError::NoSuchKey)
    ));
    assert!(
        !meta.is_blob_referenced(&blob).await.unwrap(),
        "a delete releases the record's blobs"
    );
    assert!(matches!(
        meta.delete_object(&bucket, "k", Condition::IfEtag("e1".into()))
            .await,
        Err(StoreError::NoSuchKey)
    ));
    assert!(
        !meta
            .delete_object(&bucket, "k", Condition::Always)
            .await
            .unwrap(),
        "deleting an absent key is not an error"
    );
    assert!(
        !meta
            .delete_object(&bucket, "k", Condition::IfAbsent)
            .await
            .unwrap()
    );
    let missing = format!("missing-{}", suffix());
    assert!(matches!(
        meta.delete_object(&missing, "k", Condition::Always).await,
        Err(StoreError::NoSuchBucket)
    ));
    meta.delete_bucket(&bucket).await.unwrap();
}

async fn envelope_compare_and_swap(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    let bucket = new_bucket(meta, "cas").await;
    let blob = finished_blob(blobs, &[b"sealed"]).await;
    let mut record = object_record("e", &[(&blob, None)]);
    record.envelope = Some(b"old".to_vec());
    meta.put_object(&bucket, "k", record.clone(), Condition::Always)
        .await
        .unwrap();

    assert!(
        !meta
            .replace_envelope(&bucket, "k", b"stale".to_vec(), b"new".to_vec())
            .await
            .unwrap(),
        "a CAS with the wrong expected envelope does nothing"
    );
    assert_eq!(meta.get_object(&bucket, "k").await.unwrap(), record);

    assert!(
        meta.replace_envelope(&bucket, "k", b"old".to_vec(), b"new".to_vec())
            .await
            .unwrap()
    );
    let after = meta.get_object(&bucket, "k").await.unwrap();
    assert_eq!(after.envelope.as_deref(), Some(&b"new"[..]));
    assert_eq!(
        ObjectRecord {
            envelope: record.envelope.clone(),
            ..after
        },
        record,
        "a CAS changes the envelope only"
    );
    assert!(
        meta.is_blob_referenced(&blob).await.unwrap(),
        "a CAS keeps the body"
    );
    assert!(
        !meta
            .replace_envelope(&bucket, "k", b"old".to_vec(), b"newer".to_vec())
            .await
            .unwrap(),
        "a second CAS from the same expected value loses"
    );
    assert!(
        !meta
            .replace_envelope(&bucket, "absent", b"old".to_vec(), b"new".to_vec())
            .await
            .unwrap(),
        "a CAS on an absent key is false, not an error"
    );

    // An object without an envelope never matches.
    let plain = finished_blob(blobs, &[b"plain"]).await;
    let mut unsealed = object_record("p", &[(&plain, None)]);
    unsealed.envelope = None;
    meta.put_object(&bucket, "plain", unsealed, Condition::Always)
        .await
        .unwrap();
    assert!(
        !meta
            .replace_envelope(&bucket, "plain", Vec::new(), b"new".to_vec())
            .await
            .unwrap()
    );
    for key in ["k", "plain"] {
        meta.delete_object(&bucket, key, Condition::Always)
            .await
            .unwrap();
    }
    meta.delete_bucket(&bucket).await.unwrap();
}

/// Racing conditional writes: exactly one of several `IfAbsent` puts, and one of several CAS
/// from the same expected envelope, wins.
async fn concurrent_conditions(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    let bucket = new_bucket(meta, "race").await;
    let mut racers = Vec::new();
    for n in 0..8 {
        let blob = finished_blob(blobs, &[format!("racer {n}").as_bytes()]).await;
        racers.push(object_record(&format!("e{n}"), &[(&blob, None)]));
    }
    let puts = racers
        .iter()
        .map(|record| meta.put_object(&bucket, "k", record.clone(), Condition::IfAbsent));
    let results = join_all(puts).await;
    let winners: Vec<usize> = (0..results.len()).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one IfAbsent put wins: {results:?}"
    );
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(StoreError::PreconditionFailed))),
        "the losers see PreconditionFailed: {results:?}"
    );
    let stored = meta.get_object(&bucket, "k").await.unwrap();
    assert_eq!(stored, racers[winners[0]]);
    for (i, record) in racers.iter().enumerate() {
        assert_eq!(
            meta.is_blob_referenced(&record.extents[0].blob)
                .await
                .unwrap(),
            i == winners[0],
            "only the winner's blob is referenced"
        );
    }

    let expected = stored.envelope.clone().unwrap();
    let swaps = (0..8u8).map(|n| meta.replace_envelope(&bucket, "k", expected.clone(), vec![n]));
    let swapped = join_all(swaps).await;
    let won: Vec<usize> = (0..swapped.len())
        .filter(|&i| matches!(swapped[i], Ok(true)))
        .collect();
    assert_eq!(won.len(), 1, "exactly one CAS wins: {swapped:?}");
    assert!(swapped.iter().all(Result::is_ok));
    let envelope = meta.get_object(&bucket, "k").await.unwrap().envelope;
    assert_eq!(envelope, Some(vec![u8::try_from(won[0]).unwrap()]));

    meta.delete_object(&bucket, "k", Condition::Always)
        .await
        .unwrap();
    meta.delete_bucket(&bucket).await.unwrap();
}

async fn listing(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    let bucket = new_bucket(meta, "list").await;
    let keys = ["a", "a/b", "a/c", "b", "c/d/e", "c/f", "d", "é"];
    for key in keys {
        let blob = finished_blob(blobs, &[key.as_bytes()]).await;
        meta.put_object(
            &bucket,
            key,
            object_record(key, &[(&blob, None)]),
            Condition::Always,
        )
        .await
        .unwrap();
    }
    // A neighbouring bucket whose name extends this one's must not leak in.
    let neighbour = format!("{bucket}x");
    meta.create_bucket(bucket_record(&neighbour, "alice"))
        .await
        .unwrap();
    let blob = finished_blob(blobs, &[b"n"]).await;
    meta.put_object(
        &neighbour,
        "a",
        object_record("n", &[(&blob, None)]),
        Condition::Always,
    )
    .await
    .unwrap();

    let list = |prefix: &str, delimiter: Option<&str>, after: Option<&str>, max: usize| {
        let query = ListQuery {
            prefix: prefix.into(),
            delimiter: delimiter.map(Into::into),
            start_after: after.map(Into::into),
            max_keys: max,
        };
        let bucket = bucket.clone();
        async move { meta.list_objects(&bucket, &query).await.unwrap() }
    };
    let names = |page: &crate::ListPage| -> Vec<String> {
        page.objects.iter().map(|(k, _)| k.clone()).collect()
    };

    let all = list("", None, None, 1000).await;
    assert_eq!(names(&all), keys, "byte order of the keys");
    assert!(!all.is_truncated && all.next_marker.is_none());
    assert_eq!(all.objects[3].1.etag, "b", "records come with their keys");

    let top = list("", Some("/"), None, 1000).await;
    assert_eq!(names(&top), ["a", "b", "d", "é"]);
    assert_eq!(top.common_prefixes, ["a/", "c/"]);

    let under_c = list("c/", Some("/"), None, 1000).await;
    assert_eq!(names(&under_c), ["c/f"]);
    assert_eq!(under_c.common_prefixes, ["c/d/"]);

    assert_eq!(names(&list("a/", None, None, 1000).await), ["a/b", "a/c"]);
    assert_eq!(
        names(&list("", None, Some("a/b"), 1000).await),
        ["a/c", "b", "c/d/e", "c/f", "d", "é"]
    );
    let none = list("zzz", None, None, 1000).await;
    assert!(none.objects.is_empty() && none.common_prefixes.is_empty() && !none.is_truncated);
    let zero = list("", None, None, 0).await;
    assert!(zero.objects.is_empty() && !zero.is_truncated);

    // Pages of two with a delimiter: a common prefix counts once and is not repeated.
    let p1 = list("", Some("/"), None, 2).await;
    assert_eq!(
        (names(&p1), p1.common_prefixes.clone()),
        (vec!["a".into()], vec!["a/".into()])
    );
    assert!(p1.is_truncated);
    assert_eq!(p1.next_marker.as_deref(), Some("a/"));
    let p2 = list("", Some("/"), p1.next_marker.as_deref(), 2).await;
    assert_eq!(
        (names(&p2), p2.common_prefixes.clone()),
        (vec!["b".into()], vec!["c/".into()])
    );
    assert!(p2.is_truncated);
    assert_eq!(p2.next_marker.as_deref(), Some("c/"));
    let p3 = list("", Some("/"), p2.next_marker.as_deref(), 2).await;
    assert_eq!(names(&p3), ["d", "é"]);
    assert!(p3.common_prefixes.is_empty());
    assert!(!p3.is_truncated && p3.next_marker.is_none());

    // Pages of three without a delimiter cover every key once.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = list("", None, after.as_deref(), 3).await;
        seen.extend(names(&page));
        if !page.is_truncated {
            break;
        }
        after = page.next_marker.clone();
        assert_eq!(after.as_deref(), seen.last().map(String::as_str));
    }
    assert_eq!(seen, keys);

    let missing = format!("missing-{}", suffix());
    assert!(matches!(
        meta.list_objects(&missing, &ListQuery::default()).await,
        Err(StoreError::NoSuchBucket)
    ));

    for key in keys {
        meta.delete_object(&bucket, key, Condition::Always)
            .await
            .unwrap();
    }
    meta.delete_object(&neighbour, "a", Condition::Always)
        .await
        .unwrap();
    meta.delete_bucket(&bucket).await.unwrap();
    meta.delete_bucket(&neighbour).await.unwrap();
}

async fn multipart(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    let bucket = new_bucket(meta, "mpu").await;
    let id = meta
        .create_upload(&bucket, "big", upload_record())
        .await
        .unwrap();
    assert_eq!(id.len(), 32);
    let upload = meta.get_upload(&bucket, "big", &id).await.unwrap();
    assert_eq!(
        (upload.upload_id.as_str(), upload.key.as_str()),
        (id.as_str(), "big")
    );
    assert!(matches!(
        meta.get_upload(&bucket, "other", &id).await,
        Err(StoreError::NoSuchUpload)
    ));
    assert!(matches!(
        meta.get_upload(&bucket, "big", "not-an-upload").await,
        Err(StoreError::NoSuchUpload)
    ));

    let mut part_blobs = Vec::new();
    for n in 1..=4u32 {
        let blob = finished_blob(blobs, &[format!("part {n}").as_bytes()]).await;
        meta.put_part(&bucket, "big", &id, part_record(n, &blob))
            .await
            .unwrap();
        part_blobs.push(blob);
    }
    // Replacing part 4 releases its first blob.
    let replaced = part_blobs[3].clone();
    part_blobs[3] = finished_blob(blobs, &[b"part 4 again"]).await;
    meta.put_part(&bucket, "big", &id, part_record(4, &part_blobs[3]))
        .await
        .unwrap();
    assert!(!meta.is_blob_referenced(&replaced).await.unwrap());
    assert!(matches!(
        meta.put_part(&bucket, "big", &id, part_record(5, &part_blobs[0]))
            .await,
        Err(StoreError::BlobInUse)
    ));

    // Parts, paginated by part number.
    let (first, more) = meta.list_parts(&bucket, "big", &id, 0, 2).await.unwrap();
    assert_eq!(
        first.iter().map(|p| p.part_number).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(more);
    let (rest, more) = meta.list_parts(&bucket, "big", &id, 2, 10).await.unwrap();
    assert_eq!(
        rest.iter().map(|p| p.part_number).collect::<Vec<_>>(),
        [3, 4]
    );
    assert_eq!(rest[1].blob, part_blobs[3]);
    assert!(!more);

    // Uploads, listed in (key, id) order.
    let other = meta
        .create_upload(&bucket, "dir/x", upload_record())
        .await
        .unwrap();
    let page = meta
        .list_uploads(
            &bucket,
            &UploadListQuery {
                max_uploads: 1000,
                ..UploadListQuery::default()
            },
        )
        .await
        .unwrap();
    let listed: Vec<(&str, &str)> = page
        .uploads
        .iter()
        .map(|u| (u.key.as_str(), u.upload_id.as_str()))
        .collect();
    assert_eq!(listed, [("big", id.as_str()), ("dir/x", other.as_str())]);
    let rolled = meta
        .list_uploads(
            &bucket,
            &UploadListQuery {
                delimiter: Some("/".into()),
                max_uploads: 1,
                ..UploadListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(rolled.uploads.len(), 1);
    assert!(rolled.is_truncated);
    assert_eq!(rolled.next_key_marker.as_deref(), Some("big"));
    let rolled = meta
        .list_uploads(
            &bucket,
            &UploadListQuery {
                delimiter: Some("/".into()),
                key_marker: rolled.next_key_marker.clone(),
                upload_id_marker: rolled.next_upload_id_marker.clone(),
                max_uploads: 10,
                ..UploadListQuery::default()
            },
        )
        .await
        .unwrap();
    assert!(rolled.uploads.is_empty());
    assert_eq!(rolled.common_prefixes, ["dir/"]);

    // A completion naming a blob that is not a part of the upload changes nothing.
    let previous_blob = finished_blob(blobs, &[b"previous"]).await;
    let previous = object_record("prev", &[(&previous_blob, None)]);
    meta.put_object(&bucket, "big", previous.clone(), Condition::Always)
        .await
        .unwrap();
    let stranger = finished_blob(blobs, &[b"stranger"]).await;
    for bad in [
        object_record("x", &[(&part_blobs[0], Some(1)), (&stranger, Some(2))]),
        object_record("x", &[(&part_blobs[0], Some(2))]),
        object_record("x", &[(&part_blobs[0], Some(1)), (&part_blobs[0], Some(1))]),
    ] {
        assert!(matches!(
            meta.complete_upload(&bucket, "big", &id, bad).await,
            Err(StoreError::InvalidPart)
        ));
        assert_eq!(
            meta.get_object(&bucket, "big").await.unwrap(),
            previous,
            "a failed completion leaves the previous object"
        );
        let (parts, _) = meta.list_parts(&bucket, "big", &id, 0, 10).await.unwrap();
        assert_eq!(parts.len(), 4, "a failed completion keeps every part");
        assert!(meta.is_blob_referenced(&part_blobs[0]).await.unwrap());
    }

    // Completion with parts 1, 2 and 4: one step.
    let done = object_record(
        "done-3",
        &[
            (&part_blobs[0], Some(1)),
            (&part_blobs[1], Some(2)),
            (&part_blobs[3], Some(4)),
        ],
    );
    meta.complete_upload(&bucket, "big", &id, done.clone())
        .await
        .unwrap();
    assert_eq!(meta.get_object(&bucket, "big").await.unwrap(), done);
    assert!(matches!(
        meta.get_upload(&bucket, "big", &id).await,
        Err(StoreError::NoSuchUpload)
    ));
    assert!(matches!(
        meta.list_parts(&bucket, "big", &id, 0, 10).await,
        Err(StoreError::NoSuchUpload)
    ));
    assert!(matches!(
        meta.complete_upload(&bucket, "big", &id, done.clone())
            .await,
        Err(StoreError::NoSuchUpload)
    ));
    for used in [0, 1, 3] {
        assert!(meta.is_blob_referenced(&part_blobs[used]).await.unwrap());
    }
    assert!(
        !meta.is_blob_referenced(&part_blobs[2]).await.unwrap(),
        "a part left out is released"
    );
    assert!(
        !meta.is_blob_referenced(&previous_blob).await.unwrap(),
        "the replaced object is released"
    );

    // Abort.
    let aborted_blob = finished_blob(blobs, &[b"aborted"]).await;
    meta.put_part(&bucket, "dir/x", &other, part_record(1, &aborted_blob))
        .await
        .unwrap();
    meta.abort_upload(&bucket, "dir/x", &other).await.unwrap();
    assert!(!meta.is_blob_referenced(&aborted_blob).await.unwrap());
    assert!(matches!(
        meta.abort_upload(&bucket, "dir/x", &other).await,
        Err(StoreError::NoSuchUpload)
    ));
    assert!(matches!(
        meta.put_part(&bucket, "dir/x", &other, part_record(1, &stranger))
            .await,
        Err(StoreError::NoSuchUpload)
    ));

    meta.delete_object(&bucket, "big", Condition::Always)
        .await
        .unwrap();
    meta.delete_bucket(&bucket).await.unwrap();
}

async fn pending_blobs(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    let bucket = new_bucket(meta, "pending").await;
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    let far_future = now + 24 * hour;

    // Rows are written before the bytes, under the writer's id.
    let stale_writer = blobs.create().await.unwrap();
    let stale = stale_writer.id().clone();
    meta.add_pending_blob(&stale, now - 2 * hour).await.unwrap();
    let fresh_writer = blobs.create().await.unwrap();
    let fresh = fresh_writer.id().clone();
    meta.add_pending_blob(&fresh, now).await.unwrap();
    let stale_finished = stale_writer.finish().await.unwrap();
    assert_eq!(
        stale_finished, stale,
        "finish returns the id known at create"
    );
    fresh_writer.finish().await.unwrap();

    let old: Vec<BlobId> = meta
        .list_pending_blobs(now - hour)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.blob)
        .collect();
    assert!(
        old.contains(&stale) && !old.contains(&fresh),
        "only stale rows are listed"
    );
    let all = meta.list_pending_blobs(far_future).await.unwrap();
    assert!(all.iter().any(|p| p.blob == fresh));
    assert!(
        all.windows(2).all(|w| w[0].blob < w[1].blob),
        "in blob id order"
    );

    // The commit that references a blob clears its row.
    meta.put_object(
        &bucket,
        "k",
        object_record("e", &[(&fresh, None)]),
        Condition::Always,
    )
    .await
    .unwrap();
    let all = meta.list_pending_blobs(far_future).await.unwrap();
    assert!(
        !all.iter().any(|p| p.blob == fresh),
        "put_object clears the row"
    );
    assert!(all.iter().any(|p| p.blob == stale));
    assert!(matches!(
        meta.add_pending_blob(&fresh, now).await,
        Err(StoreError::BlobInUse)
    ));

    let upload = meta
        .create_upload(&bucket, "mp", upload_record())
        .await
        .unwrap();
    let part_writer = blobs.create().await.unwrap();
    let part_blob = part_writer.id().clone();
    meta.add_pending_blob(&part_blob, now).await.unwrap();
    part_writer.finish().await.unwrap();
    meta.put_part(&bucket, "mp", &upload, part_record(1, &part_blob))
        .await
        .unwrap();
    assert!(
        !meta
            .list_pending_blobs(far_future)
            .await
            .unwrap()
            .iter()
            .any(|p| p.blob == part_blob),
        "put_part clears the row"
    );

    // The sweeper's step: delete the blob, then the row.
    blobs.delete(&stale).await.unwrap();
    assert!(meta.remove_pending_blob(&stale).await.unwrap());
    assert!(!meta.remove_pending_blob(&stale).await.unwrap());
    assert!(
        !meta
            .list_pending_blobs(far_future)
            .await
            .unwrap()
            .iter()
            .any(|p| p.blob == stale)
    );

    meta.abort_upload(&bucket, "mp", &upload).await.unwrap();
    meta.delete_object(&bucket, "k", Condition::Always)
        .await
        .unwrap();
    meta.delete_bucket(&bucket).await.unwrap();
}

async fn users(meta: &dyn MetadataStore) {
    let s = suffix();
    let alice = user_record(&format!("alice-{s}"));
    let bob = user_record(&format!("bob-{s}"));
    meta.add_user(bob.clone()).await.unwrap();
    meta.add_user(alice.clone()).await.unwrap();
    let mut same_name = user_record(&alice.name);
    same_name.access_key = format!("AK-other-{s}");
    assert!(matches!(
        meta.add_user(same_name).await,
        Err(StoreError::UserExists)
    ));
    let mut same_key = user_record(&format!("carol-{s}"));
    same_key.access_key = alice.access_key.clone();
    assert!(matches!(
        meta.add_user(same_key).await,
        Err(StoreError::UserExists)
    ));

    assert_eq!(
        meta.user_by_access_key(&alice.access_key).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        meta.user_by_access_key(&format!("AK-none-{s}"))
            .await
            .unwrap(),
        None
    );
    let listed: Vec<String> = meta
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    let a = listed.iter().position(|n| *n == alice.name);
    let b = listed.iter().position(|n| *n == bob.name);
    assert!(
        matches!((a, b), (Some(a), Some(b)) if a < b),
        "users sorted by name"
    );

    assert!(meta.remove_user(&alice.name).await.unwrap());
    assert!(!meta.remove_user(&alice.name).await.unwrap());
    assert_eq!(
        meta.user_by_access_key(&alice.access_key).await.unwrap(),
        None,
        "removing a user removes its access key"
    );
    // The name and key are free again.
    meta.add_user(alice.clone()).await.unwrap();
    assert!(meta.remove_user(&alice.name).await.unwrap());
    assert!(meta.remove_user(&bob.name).await.unwrap());
}

// ---- Blobs ----

async fn blob_round_trip_and_ranges(blobs: &dyn BlobStore) {
    let body: Vec<u8> = (0..=255u8).cycle().take(3 * 1024 * 1024 + 17).collect();
    let mut writer = blobs.create().await.unwrap();
    let id = writer.id().clone();
    for piece in body.chunks(700_000) {
        writer.write(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    assert_eq!(writer.finish().await.unwrap(), id);
    let len = body.len() as u64;
    assert_eq!(blobs.len(&id).await.unwrap(), len);

    for range in [0..len, 0..10, 1000..2_500_000, len - 10..len, 5..6] {
        let start = usize::try_from(range.start).unwrap();
        let end = usize::try_from(range.end).unwrap();
        assert_eq!(
            read_all(blobs, &id, range.clone()).await,
            body[start..end],
            "range {range:?}"
        );
    }
    for empty in [0..0, 7..7, len..len] {
        assert!(read_all(blobs, &id, empty).await.is_empty());
    }
    for past in [0..len + 1, len + 1..len + 1, len + 5..len + 10] {
        assert!(
            matches!(
                blobs.read(&id, past.clone()).await,
                Err(StoreError::InvalidRange { .. })
            ),
            "range {past:?} is past the end"
        );
    }
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = 10..5;
    assert!(matches!(
        blobs.read(&id, backwards).await,
        Err(StoreError::InvalidRange { .. })
    ));

    // An empty blob.
    let empty = blobs.create().await.unwrap().finish().await.unwrap();
    assert_eq!(blobs.len(&empty).await.unwrap(), 0);
    assert!(read_all(blobs, &empty, 0..0).await.is_empty());

    // Ids that name nothing.
    let unknown = random_hex().unwrap();
    assert!(matches!(
        blobs.len(&unknown).await,
        Err(StoreError::NoSuchBlob)
    ));
    assert!(matches!(
        blobs.read(&unknown, 0..0).await,
        Err(StoreError::NoSuchBlob)
    ));
    assert!(matches!(
        blobs.read(&"../etc/passwd".to_owned(), 0..0).await,
        Err(StoreError::NoSuchBlob)
    ));
    blobs.delete(&id).await.unwrap();
    blobs.delete(&empty).await.unwrap();
}

async fn unfinished_blob_is_invisible(blobs: &dyn BlobStore) {
    let mut writer = blobs.create().await.unwrap();
    let id = writer.id().clone();
    writer
        .write(Bytes::from_static(b"half a body"))
        .await
        .unwrap();
    assert!(
        matches!(blobs.len(&id).await, Err(StoreError::NoSuchBlob)),
        "an unfinished blob is not visible"
    );
    drop(writer);
    assert!(matches!(blobs.len(&id).await, Err(StoreError::NoSuchBlob)));
    assert!(matches!(
        blobs.read(&id, 0..0).await,
        Err(StoreError::NoSuchBlob)
    ));
    let listed = listed_older_than(blobs, SystemTime::now() + Duration::from_secs(3600)).await;
    assert!(
        !listed.contains(&id),
        "a dropped writer's blob is never listed"
    );
}

async fn blob_delete_and_listing(blobs: &dyn BlobStore) {
    let before_write = SystemTime::now() - Duration::from_secs(3600);
    let id = finished_blob(blobs, &[b"to be ", b"deleted"]).await;
    let later = SystemTime::now() + Duration::from_secs(3600);
    assert!(listed_older_than(blobs, later).await.contains(&id));
    assert!(
        !listed_older_than(blobs, before_write).await.contains(&id),
        "a blob written after T is not older than T"
    );
    assert_eq!(read_all(blobs, &id, 0..13).await, b"to be deleted");
    blobs.delete(&id).await.unwrap();
    assert!(matches!(blobs.len(&id).await, Err(StoreError::NoSuchBlob)));
    assert!(matches!(
        blobs.read(&id, 0..0).await,
        Err(StoreError::NoSuchBlob)
    ));
    assert!(!listed_older_than(blobs, later).await.contains(&id));
    blobs.delete(&id).await.unwrap();
}

// ---- Helpers ----

fn suffix() -> String {
    random_hex().unwrap()[..10].to_owned()
}

async fn new_bucket(meta: &dyn MetadataStore, label: &str) -> String {
    let name = format!("ct-{label}-{}", suffix());
    meta.create_bucket(bucket_record(&name, "alice"))
        .await
        .unwrap();
    name
}

async fn finished_blob(blobs: &dyn BlobStore, pieces: &[&[u8]]) -> BlobId {
    let mut writer = blobs.create().await.unwrap();
    for piece in pieces {
        writer.write(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    writer.finish().await.unwrap()
}

async fn read_all(blobs: &dyn BlobStore, id: &BlobId, range: Range<u64>) -> Vec<u8> {
    let mut stream = blobs.read(id, range).await.unwrap();
    let mut out = Vec::new();
    while let Some(piece) = stream.next().await {
        out.extend_from_slice(&piece.unwrap());
    }
    out
}

async fn listed_older_than(blobs: &dyn BlobStore, before: SystemTime) -> Vec<BlobId> {
    blobs
        .list_older_than(before)
        .map(|id| id.unwrap())
        .collect()
        .await
}

fn bucket_record(name: &str, owner: &str) -> BucketRecord {
    BucketRecord {
        name: name.into(),
        owner: owner.into(),
        region: "us-east-1".into(),
        created_ms: 1,
        config: BTreeMap::new(),
    }
}

fn object_record(etag: &str, blobs: &[(&BlobId, Option<u32>)]) -> ObjectRecord {
    ObjectRecord {
        size: blobs.len() as u64,
        etag: etag.into(),
        last_modified_ms: 2,
        owner: "alice".into(),
        headers: vec![("content-type".into(), "text/plain".into())],
        checksum: Some(("crc32".into(), "AAAAAA==".into())),
        extents: blobs
            .iter()
            .map(|(blob, part_number)| Extent {
                blob: (*blob).clone(),
                size: 1,
                part_number: *part_number,
                etag: None,
            })
            .collect(),
        envelope: Some(vec![1, 2, 3]),
        crc64: Some(42),
    }
}

fn upload_record() -> UploadRecord {
    UploadRecord {
        upload_id: String::new(),
        key: String::new(),
        initiated_ms: 3,
        owner: "alice".into(),
        headers: vec![],
        checksum_algorithm: None,
        envelope: None,
    }
}

fn part_record(n: u32, blob: &BlobId) -> PartRecord {
    PartRecord {
        part_number: n,
        etag: format!("etag{n}"),
        size: 1,
        last_modified_ms: 4,
        blob: blob.clone(),
        checksum: None,
        envelope: None,
        crc64: None,
    }
}

fn user_record(name: &str) -> UserRecord {
    UserRecord {
        name: name.into(),
        access_key: format!("AK-{name}"),
        sealed_secret: vec![9; 16],
        created_ms: 5,
    }
}
