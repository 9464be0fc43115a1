//! The blob store alone: writing, ranged reads, invisibility until finished, deletion,
//! listing by age.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::fixtures::{finished_blob, listed_older_than, read_all};
use crate::rules::random_hex;
use crate::{BlobStore, StoreError};

pub(super) async fn blob_round_trip_and_ranges(blobs: &dyn BlobStore) {
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
    // read_into: the same bytes at the front of the caller's buffer, the rest untouched.
    for range in [0..len, 1000..2_500_000, len - 10..len, 7..7] {
        let (start, end) = (range.start as usize, range.end as usize);
        let buf = blobs
            .read_into(&id, range.clone(), vec![0xee; end - start + 3])
            .await
            .unwrap();
        assert_eq!(buf[..end - start], body[start..end], "range {range:?}");
        assert_eq!(buf[end - start..], [0xee; 3], "range {range:?}");
    }
    assert!(matches!(
        blobs.read_into(&id, len - 5..len + 1, vec![0; 6]).await,
        Err(StoreError::InvalidRange { .. })
    ));
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
        blobs.read_into(&unknown, 0..0, Vec::new()).await,
        Err(StoreError::NoSuchBlob)
    ));
    assert!(matches!(
        blobs.read(&"../etc/passwd".to_owned(), 0..0).await,
        Err(StoreError::NoSuchBlob)
    ));
    blobs.delete(&id).await.unwrap();
    blobs.delete(&empty).await.unwrap();
}

pub(super) async fn unfinished_blob_is_invisible(blobs: &dyn BlobStore) {
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

pub(super) async fn blob_delete_and_listing(blobs: &dyn BlobStore) {
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
