//! Buckets: creation, configuration and deletion, and the listing of their objects (S3
//! order, prefixes, delimiters, pages).

use super::fixtures::BY;
use super::fixtures::{
    bucket_record, finished_blob, new_bucket, object_record, suffix, upload_record,
};
use crate::{BlobStore, Condition, ListQuery, MetadataStore, StoreError};

pub(super) async fn buckets(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
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
    meta.delete_object(&name, "k", Condition::Always, BY)
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

pub(super) async fn listing(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
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
        meta.delete_object(&bucket, key, Condition::Always, BY)
            .await
            .unwrap();
    }
    meta.delete_object(&neighbour, "a", Condition::Always, BY)
        .await
        .unwrap();
    meta.delete_bucket(&bucket).await.unwrap();
    meta.delete_bucket(&neighbour).await.unwrap();
}
