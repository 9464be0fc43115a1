//! The body compare-and-swap (`replace_body`): a version's extents and envelope replaced in
//! place, blob references moved in the same transaction, every other field kept, and a
//! concurrent writer winning.

use std::time::{Duration, SystemTime};

use super::fixtures::{BY, finished_blob, new_bucket, object_record};
use crate::{
    BlobStore, Condition, MetadataStore, ObjectRecord, StoreError, StoredBody, Version, VersionRef,
    Versioning,
};

fn body_of(record: &ObjectRecord) -> StoredBody {
    StoredBody {
        extents: record.extents.clone(),
        envelope: record.envelope.clone(),
    }
}

/// A sealed body in one new blob, with its pending row (as a writer leaves it before commit).
async fn sealed_body(meta: &dyn MetadataStore, blobs: &dyn BlobStore, tag: &[u8]) -> StoredBody {
    let blob = finished_blob(blobs, &[b"sealed ", tag]).await;
    meta.add_pending_blob(&blob, SystemTime::now())
        .await
        .unwrap();
    let mut extents = object_record("x", &[(&blob, None)]).extents;
    extents[0].size = 7 + tag.len() as u64;
    StoredBody {
        extents,
        envelope: Some([b"envelope ", tag].concat()),
    }
}

pub(super) async fn body_compare_and_swap(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    let bucket = new_bucket(meta, "body-cas").await;
    let (p1, p2) = (
        finished_blob(blobs, &[b"part one"]).await,
        finished_blob(blobs, &[b"part two"]).await,
    );
    let mut plain = object_record("etag-2", &[(&p1, Some(1)), (&p2, Some(2))]);
    plain.envelope = None;
    plain.tags = vec![("t".into(), "v".into())];
    meta.put_object(&bucket, "k", plain.clone(), Condition::Always)
        .await
        .unwrap();
    let stored = meta.get_object(&bucket, "k").await.unwrap();
    let new = sealed_body(meta, blobs, b"one").await;

    let mut stale = body_of(&stored);
    stale.extents.pop();
    assert!(
        !meta
            .replace_body(&bucket, "k", VersionRef::Latest, stale, new.clone())
            .await
            .unwrap(),
        "a swap from other extents does nothing"
    );
    let mut sealed_already = body_of(&stored);
    sealed_already.envelope = Some(b"other".to_vec());
    assert!(
        !meta
            .replace_body(
                &bucket,
                "k",
                VersionRef::Latest,
                sealed_already,
                new.clone()
            )
            .await
            .unwrap(),
        "a swap from another envelope does nothing"
    );
    assert_eq!(meta.get_object(&bucket, "k").await.unwrap(), stored);
    assert!(!meta.is_blob_referenced(&new.extents[0].blob).await.unwrap());

    assert!(
        meta.replace_body(
            &bucket,
            "k",
            VersionRef::Latest,
            body_of(&stored),
            new.clone()
        )
        .await
        .unwrap()
    );
    let after = meta.get_object(&bucket, "k").await.unwrap();
    assert_eq!(body_of(&after), new, "the body is swapped");
    assert_eq!(
        ObjectRecord {
            extents: stored.extents.clone(),
            envelope: None,
            ..after.clone()
        },
        stored,
        "every other field stays"
    );
    let new_blob = &new.extents[0].blob;
    assert!(meta.is_blob_referenced(new_blob).await.unwrap());
    let far_future = SystemTime::now() + Duration::from_secs(3600);
    assert!(
        !meta
            .list_pending_blobs(far_future)
            .await
            .unwrap()
            .iter()
            .any(|p| &p.blob == new_blob),
        "the swap clears the new blob's pending row"
    );
    for old in [&p1, &p2] {
        assert!(
            !meta.is_blob_referenced(old).await.unwrap(),
            "the old blobs are released"
        );
    }
    let again = sealed_body(meta, blobs, b"again").await;
    assert!(
        !meta
            .replace_body(
                &bucket,
                "k",
                VersionRef::Latest,
                body_of(&stored),
                again.clone()
            )
            .await
            .unwrap(),
        "a second swap from the same expected body loses"
    );
    assert!(
        !meta
            .replace_body(
                &bucket,
                "absent",
                VersionRef::Latest,
                body_of(&stored),
                again.clone()
            )
            .await
            .unwrap(),
        "a swap on an absent key is false, not an error"
    );
    let referenced = StoredBody {
        extents: after.extents.clone(),
        envelope: None,
    };
    assert!(matches!(
        meta.replace_body(
            &bucket,
            "k",
            VersionRef::Latest,
            body_of(&after),
            referenced
        )
        .await,
        Err(StoreError::BlobInUse)
    ));
    blobs.delete(&again.extents[0].blob).await.unwrap();
    meta.remove_pending_blob(&again.extents[0].blob)
        .await
        .unwrap();
    meta.delete_object(&bucket, "k", Condition::Always, BY)
        .await
        .unwrap();
    meta.delete_bucket(&bucket).await.unwrap();

    noncurrent_version(meta, blobs).await;
}

/// A noncurrent version is swapped by its id and stays noncurrent; the current one is untouched.
async fn noncurrent_version(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    let bucket = new_bucket(meta, "body-cas-v").await;
    meta.set_bucket_versioning(&bucket, Versioning::Enabled)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for etag in ["e1", "e2"] {
        let blob = finished_blob(blobs, &[etag.as_bytes()]).await;
        let mut record = object_record(etag, &[(&blob, None)]);
        record.envelope = None;
        let written = meta
            .put_object(&bucket, "k", record, Condition::Always)
            .await
            .unwrap();
        ids.push(VersionRef::Id(written.version_id.expect("an id")));
    }
    let current = meta.get_object(&bucket, "k").await.unwrap();
    let Version::Object(old) = meta
        .get_version(&bucket, "k", ids[0].clone())
        .await
        .unwrap()
        .version
    else {
        panic!("the first version is an object");
    };
    let new = sealed_body(meta, blobs, b"v1").await;
    assert!(
        meta.replace_body(&bucket, "k", ids[0].clone(), body_of(&old), new.clone())
            .await
            .unwrap()
    );
    let found = meta
        .get_version(&bucket, "k", ids[0].clone())
        .await
        .unwrap();
    assert!(!found.is_latest, "the swapped version stays noncurrent");
    let Version::Object(swapped) = found.version else {
        panic!("still an object");
    };
    assert_eq!(body_of(&swapped), new);
    assert_eq!(swapped.version_id, old.version_id, "the version id stays");
    assert_eq!(swapped.etag, "e1");
    assert_eq!(meta.get_object(&bucket, "k").await.unwrap(), current);
    for which in ids {
        meta.delete_version(&bucket, "k", which, false, BY.now_ms)
            .await
            .unwrap();
    }
    meta.delete_bucket(&bucket).await.unwrap();
}
