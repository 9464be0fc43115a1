//! Multipart uploads: parts, listing, completion and abort.

use super::fixtures::BY;
use super::fixtures::{finished_blob, new_bucket, object_record, part_record, upload_record};
use crate::{BlobStore, Condition, MetadataStore, StoreError, UploadListQuery};

pub(super) async fn multipart(meta: &dyn MetadataStore, blobs: &dyn BlobStore) {
    let bucket = new_bucket(meta, "mpu").await;
    let acl = Some(r#"{"grants":[]}"#.to_owned());
    let id = meta
        .create_upload(
            &bucket,
            "big",
            crate::UploadRecord {
                acl: acl.clone(),
                ..upload_record()
            },
        )
        .await
        .unwrap();
    assert_eq!(id.len(), 32);
    let upload = meta.get_upload(&bucket, "big", &id).await.unwrap();
    assert_eq!(
        (upload.upload_id.as_str(), upload.key.as_str()),
        (id.as_str(), "big")
    );
    assert_eq!(upload.acl, acl, "an upload keeps its ACL for the object");
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
            meta.complete_upload(&bucket, "big", &id, bad, Condition::Always)
                .await,
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
    meta.complete_upload(&bucket, "big", &id, done.clone(), Condition::Always)
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
        meta.complete_upload(&bucket, "big", &id, done.clone(), Condition::Always)
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

    meta.delete_object(&bucket, "big", Condition::Always, BY)
        .await
        .unwrap();
    meta.delete_bucket(&bucket).await.unwrap();
}
