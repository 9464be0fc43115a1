//! Conditional writes: `IfAbsent`, `IfEtag` and `IfNotModifiedAfter` puts and deletes, the envelope
//! compare-and-swap, and races between them.

use futures_util::future::join_all;

use super::fixtures::BY;
use super::fixtures::{finished_blob, new_bucket, object_record, suffix};
use crate::{BlobStore, Condition, Deleted, MetadataStore, ObjectRecord, StoreError, VersionRef};

pub(super) async fn conditional_put(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
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
    meta.delete_object(&bucket, "k", Condition::Always, BY)
        .await
        .unwrap();
    meta.delete_bucket(&bucket).await.unwrap();
}

pub(super) async fn conditional_delete(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    let bucket = new_bucket(meta, "cond-del").await;
    let blob = finished_blob(blobs, &[b"body"]).await;
    let record = object_record("e1", &[(&blob, None)]);
    meta.put_object(&bucket, "k", record.clone(), Condition::Always)
        .await
        .unwrap();

    assert!(matches!(
        meta.delete_object(&bucket, "k", Condition::IfEtag("other".into()), BY)
            .await,
        Err(StoreError::PreconditionFailed)
    ));
    assert!(matches!(
        meta.delete_object(&bucket, "k", Condition::IfAbsent, BY)
            .await,
        Err(StoreError::PreconditionFailed)
    ));
    assert_eq!(meta.get_object(&bucket, "k").await.unwrap(), record);
    assert_eq!(
        meta.delete_object(&bucket, "k", Condition::IfEtag("e1".into()), BY)
            .await
            .unwrap(),
        Deleted::Removed
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
        meta.delete_object(&bucket, "k", Condition::IfEtag("e1".into()), BY)
            .await,
        Err(StoreError::NoSuchKey)
    ));
    assert_eq!(
        meta.delete_object(&bucket, "k", Condition::Always, BY)
            .await
            .unwrap(),
        Deleted::Absent,
        "deleting an absent key is not an error"
    );
    assert_eq!(
        meta.delete_object(&bucket, "k", Condition::IfAbsent, BY)
            .await
            .unwrap(),
        Deleted::Absent
    );
    let missing = format!("missing-{}", suffix());
    assert!(matches!(
        meta.delete_object(&missing, "k", Condition::Always, BY)
            .await,
        Err(StoreError::NoSuchBucket)
    ));
    meta.delete_bucket(&bucket).await.unwrap();
}

pub(super) async fn envelope_compare_and_swap(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    let bucket = new_bucket(meta, "cas").await;
    let blob = finished_blob(blobs, &[b"sealed"]).await;
    let mut record = object_record("e", &[(&blob, None)]);
    record.envelope = Some(b"old".to_vec());
    meta.put_object(&bucket, "k", record.clone(), Condition::Always)
        .await
        .unwrap();

    assert!(
        !meta
            .replace_envelope(
                &bucket,
                "k",
                VersionRef::Latest,
                b"stale".to_vec(),
                b"new".to_vec()
            )
            .await
            .unwrap(),
        "a CAS with the wrong expected envelope does nothing"
    );
    assert_eq!(meta.get_object(&bucket, "k").await.unwrap(), record);

    assert!(
        meta.replace_envelope(
            &bucket,
            "k",
            VersionRef::Latest,
            b"old".to_vec(),
            b"new".to_vec()
        )
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
            .replace_envelope(
                &bucket,
                "k",
                VersionRef::Latest,
                b"old".to_vec(),
                b"newer".to_vec()
            )
            .await
            .unwrap(),
        "a second CAS from the same expected value loses"
    );
    assert!(
        !meta
            .replace_envelope(
                &bucket,
                "absent",
                VersionRef::Latest,
                b"old".to_vec(),
                b"new".to_vec()
            )
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
            .replace_envelope(
                &bucket,
                "plain",
                VersionRef::Latest,
                Vec::new(),
                b"new".to_vec()
            )
            .await
            .unwrap()
    );
    for key in ["k", "plain"] {
        meta.delete_object(&bucket, key, Condition::Always, BY)
            .await
            .unwrap();
    }
    meta.delete_bucket(&bucket).await.unwrap();
}

/// Racing conditional writes: exactly one of several `IfAbsent` puts, and one of several CAS
/// from the same expected envelope, wins.
pub(super) async fn concurrent_conditions(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
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
            .all(|r| matches!(r, Ok(_) | Err(StoreError::PreconditionFailed))),
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
    let swaps = (0..8u8).map(|n| {
        meta.replace_envelope(&bucket, "k", VersionRef::Latest, expected.clone(), vec![n])
    });
    let swapped = join_all(swaps).await;
    let won: Vec<usize> = (0..swapped.len())
        .filter(|&i| matches!(swapped[i], Ok(true)))
        .collect();
    assert_eq!(won.len(), 1, "exactly one CAS wins: {swapped:?}");
    assert!(swapped.iter().all(Result::is_ok));
    let envelope = meta.get_object(&bucket, "k").await.unwrap().envelope;
    assert_eq!(envelope, Some(vec![u8::try_from(won[0]).unwrap()]));

    meta.delete_object(&bucket, "k", Condition::Always, BY)
        .await
        .unwrap();
    meta.delete_bucket(&bucket).await.unwrap();
}

/// `IfNotModifiedAfter`: puts, deletes and completions go through only while the current
/// object (if any) is at least as old as the cutoff.
pub(super) async fn not_modified_after(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    let bucket = new_bucket(meta, "cond-age").await;
    let young = |blob: &crate::BlobId, at: i64| ObjectRecord {
        last_modified_ms: at,
        ..object_record("e", &[(blob, None)])
    };
    // An absent key passes.
    let b1 = finished_blob(blobs, &[b"one"]).await;
    meta.put_object(
        &bucket,
        "k",
        young(&b1, 100),
        Condition::IfNotModifiedAfter(50),
    )
    .await
    .unwrap();
    // The object there is newer than the cutoff: nothing changes.
    let b2 = finished_blob(blobs, &[b"two"]).await;
    assert!(matches!(
        meta.put_object(
            &bucket,
            "k",
            young(&b2, 200),
            Condition::IfNotModifiedAfter(99)
        )
        .await,
        Err(StoreError::PreconditionFailed)
    ));
    assert!(matches!(
        meta.delete_object(&bucket, "k", Condition::IfNotModifiedAfter(99), BY)
            .await,
        Err(StoreError::PreconditionFailed)
    ));
    assert_eq!(
        meta.get_object(&bucket, "k").await.unwrap(),
        young(&b1, 100)
    );
    assert!(!meta.is_blob_referenced(&b2).await.unwrap());
    // At the cutoff or older: replaced, then removed.
    meta.put_object(
        &bucket,
        "k",
        young(&b2, 200),
        Condition::IfNotModifiedAfter(100),
    )
    .await
    .unwrap();
    assert!(!meta.is_blob_referenced(&b1).await.unwrap());
    assert_eq!(
        meta.delete_object(&bucket, "k", Condition::IfNotModifiedAfter(250), BY)
            .await
            .unwrap(),
        Deleted::Removed
    );
    assert_eq!(
        meta.delete_object(&bucket, "k", Condition::IfNotModifiedAfter(0), BY)
            .await
            .unwrap(),
        Deleted::Absent
    );
    meta.delete_bucket(&bucket).await.unwrap();
}
