//! Pending blobs: the rows that let a crash leave no orphan blob behind.

use std::time::{Duration, SystemTime};

use super::fixtures::BY;
use super::fixtures::{new_bucket, object_record, part_record, upload_record};
use crate::{BlobId, BlobStore, Condition, MetadataStore, StoreError};

pub(super) async fn pending_blobs(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
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
    meta.delete_object(&bucket, "k", Condition::Always, BY)
        .await
        .unwrap();
    meta.delete_bucket(&bucket).await.unwrap();
}
