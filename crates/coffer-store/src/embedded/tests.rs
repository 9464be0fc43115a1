//! The contract suite run on the embedded pair, plus what only the embedded pair promises:
//! persistence across a reopen of the same data directory, pending rows and orphans collected
//! at open, and data directories written before the `pending_blobs` table existed.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tempfile::TempDir;

use super::open_embedded;
use crate::contract;
use crate::{BlobStore, MetadataStore, Store, StoreError};

#[tokio::test]
async fn metadata_contract() {
    let dir = TempDir::new().unwrap();
    let (meta, blobs) = open_embedded(dir.path()).unwrap();
    contract::metadata_contract(&meta, &blobs).await;
}

#[tokio::test]
async fn blob_contract() {
    let dir = TempDir::new().unwrap();
    let (_, blobs) = open_embedded(dir.path()).unwrap();
    contract::blob_contract(&blobs).await;
    assert!(blobs.store().tmp_is_empty(), "nothing left in tmp/");
}

#[tokio::test]
async fn usable_as_trait_objects() {
    let dir = TempDir::new().unwrap();
    let (meta, blobs) = open_embedded(dir.path()).unwrap();
    let meta: Arc<dyn MetadataStore> = Arc::new(meta);
    let blobs: Arc<dyn BlobStore> = Arc::new(blobs);
    let task = tokio::spawn(async move {
        let mut writer = blobs.create().await?;
        writer.write(Bytes::from_static(b"x")).await?;
        let id = writer.finish().await?;
        meta.is_blob_referenced(&id).await
    });
    assert!(!task.await.unwrap().unwrap());
}

#[tokio::test]
async fn persists_across_reopen() {
    let dir = TempDir::new().unwrap();
    let written = {
        let (meta, blobs) = open_embedded(dir.path()).unwrap();
        contract::persistence_write(&meta, &blobs).await
    };
    let (meta, blobs) = open_embedded(dir.path()).unwrap();
    contract::persistence_check(&meta, &blobs, written).await;
}

#[tokio::test]
async fn open_collects_pending_blobs_and_their_rows() {
    let dir = TempDir::new().unwrap();
    let (pending, abandoned) = {
        let (meta, blobs) = open_embedded(dir.path()).unwrap();
        let writer = blobs.create().await.unwrap();
        let pending = writer.id().clone();
        meta.add_pending_blob(&pending, SystemTime::now())
            .await
            .unwrap();
        writer.finish().await.unwrap();
        // A writer still open when the process stops: its temp file stays behind (it is
        // past the inline size, so it has one).
        let mut abandoned = blobs.create().await.unwrap();
        let cut = Bytes::from(vec![7u8; super::files::INLINE_BLOB_MAX + 1]);
        abandoned.write(cut).await.unwrap();
        let id = abandoned.id().clone();
        std::mem::forget(abandoned);
        (pending, id)
    };
    let (meta, blobs) = open_embedded(dir.path()).unwrap();
    let later = SystemTime::now() + Duration::from_secs(60);
    assert!(meta.list_pending_blobs(later).await.unwrap().is_empty());
    for id in [&pending, &abandoned] {
        assert!(matches!(blobs.len(id).await, Err(StoreError::NoSuchBlob)));
    }
    assert!(blobs.store().tmp_is_empty());
    assert_eq!(blobs.store().blob_count(), 0);
}

/// A data directory from before `pending_blobs` (schema version 1 without that table) opens,
/// reads and writes as before.
#[tokio::test]
async fn opens_a_data_dir_without_the_pending_table() {
    let dir = TempDir::new().unwrap();
    let written = {
        let (meta, blobs) = open_embedded(dir.path()).unwrap();
        contract::persistence_write(&meta, &blobs).await
    };
    {
        let db = redb::Database::open(dir.path().join("meta.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        let pending: redb::TableDefinition<&str, i64> = redb::TableDefinition::new("pending_blobs");
        assert!(txn.delete_table(pending).unwrap());
        txn.commit().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let (meta, blobs) = (
        super::EmbeddedMetadata::new(store.clone()),
        super::FileBlobStore::new(store),
    );
    contract::persistence_check(&meta, &blobs, written).await;
    contract::metadata_contract(&meta, &blobs).await;
}

/// Writes `pieces` as one blob and finishes it.
async fn blob_of(blobs: &super::FileBlobStore, pieces: &[&[u8]]) -> crate::BlobId {
    let mut writer = blobs.create().await.unwrap();
    for piece in pieces {
        writer.write(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    writer.finish().await.unwrap()
}

async fn read_all(
    blobs: &super::FileBlobStore,
    id: &crate::BlobId,
    range: std::ops::Range<u64>,
) -> Vec<u8> {
    use futures_util::TryStreamExt;
    let pieces: Vec<Bytes> = blobs
        .read(id, range)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    pieces.concat()
}

/// Small blobs live in `blob_bodies`, large ones in files; readers cannot tell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_blobs_are_inline_and_read_like_files() {
    let dir = TempDir::new().unwrap();
    let (_, blobs) = open_embedded(dir.path()).unwrap();
    let small = blob_of(&blobs, &[b"hello, ", b"inline"]).await;
    assert_eq!(blobs.store().blob_count(), 0, "a small blob makes no file");
    assert!(blobs.store().tmp_is_empty());
    assert_eq!(blobs.len(&small).await.unwrap(), 13);
    assert_eq!(read_all(&blobs, &small, 0..13).await, b"hello, inline");
    assert_eq!(read_all(&blobs, &small, 7..13).await, b"inline");
    assert!(read_all(&blobs, &small, 13..13).await.is_empty());
    assert!(matches!(
        blobs.read(&small, 5..14).await.err(),
        Some(StoreError::InvalidRange { len: 13, .. })
    ));

    let max = super::files::INLINE_BLOB_MAX;
    let edge = blob_of(&blobs, &[&vec![1u8; max]]).await;
    assert_eq!(
        blobs.store().blob_count(),
        0,
        "exactly the inline maximum is inline"
    );
    let large = blob_of(&blobs, &[&vec![2u8; max - 1], &[3u8; 2]]).await;
    assert_eq!(
        blobs.store().blob_count(),
        1,
        "one byte more spills to a file"
    );
    assert_eq!(blobs.len(&edge).await.unwrap(), max as u64);
    let tail = read_all(&blobs, &large, max as u64 - 2..max as u64 + 1).await;
    assert_eq!(tail, [2, 3, 3]);

    let later = SystemTime::now() + Duration::from_secs(60);
    let listed: Vec<_> = {
        use futures_util::TryStreamExt;
        blobs.list_older_than(later).try_collect().await.unwrap()
    };
    let mut expected = vec![small.clone(), edge.clone(), large.clone()];
    expected.sort();
    let mut listed = listed;
    listed.sort();
    assert_eq!(listed, expected);
    let earlier = SystemTime::now() - Duration::from_secs(60);
    assert_eq!(
        futures_util::StreamExt::count(blobs.list_older_than(earlier)).await,
        0
    );

    for id in [&small, &edge, &large] {
        blobs.delete(id).await.unwrap();
        assert!(matches!(blobs.len(id).await, Err(StoreError::NoSuchBlob)));
    }
    assert_eq!(blobs.store().blob_count(), 0);
}

/// An inline blob no record names is collected at open; one a record names survives, and
/// the commit that frees it deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_blobs_are_collected_and_freed_like_files() {
    let dir = TempDir::new().unwrap();
    let (kept, orphan) = {
        let (meta, blobs) = open_embedded(dir.path()).unwrap();
        meta.create_bucket(crate::BucketRecord {
            name: "b".into(),
            owner: "o".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        let kept = blob_of(&blobs, &[b"kept"]).await;
        let orphan = blob_of(&blobs, &[b"orphan"]).await;
        let record = crate::ObjectRecord {
            size: 4,
            etag: "e".into(),
            extents: vec![crate::Extent {
                blob: kept.clone(),
                size: 4,
                ..Default::default()
            }],
            ..Default::default()
        };
        meta.put_object("b", "k", record, crate::Condition::Always)
            .await
            .unwrap();
        // The orphan's pending row is how the next open finds it; the commit that
        // referenced `kept` cleared its row.
        let pending: Vec<_> = blobs
            .store()
            .pending_blobs_older_than(i64::MAX)
            .unwrap()
            .into_iter()
            .map(|row| row.blob)
            .collect();
        assert_eq!(pending, vec![orphan.to_string()]);
        (kept, orphan)
    };
    let (meta, blobs) = open_embedded(dir.path()).unwrap();
    assert_eq!(read_all(&blobs, &kept, 0..4).await, b"kept");
    assert!(matches!(
        blobs.len(&orphan).await,
        Err(StoreError::NoSuchBlob)
    ));
    assert!(matches!(
        blobs.delete(&kept).await,
        Err(StoreError::BlobInUse)
    ));
    let by = crate::Deleter {
        owner: "o",
        now_ms: 0,
    };
    meta.delete_object("b", "k", crate::Condition::Always, by)
        .await
        .unwrap();
    assert!(matches!(
        blobs.len(&kept).await,
        Err(StoreError::NoSuchBlob)
    ));
}

/// Schema version 2 added `blob_bodies`: a version-1 dir is upgraded in place, a newer one
/// is refused with a clear error.
#[test]
fn schema_version_upgrades_one_and_refuses_newer() {
    let dir = TempDir::new().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
    let set_version = |version: u64, drop_bodies: bool| {
        let db = redb::Database::open(dir.path().join("meta.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(meta)
            .unwrap()
            .insert("schema_version", version)
            .unwrap();
        if drop_bodies {
            let bodies: redb::TableDefinition<&str, (i64, &[u8])> =
                redb::TableDefinition::new("blob_bodies");
            assert!(txn.delete_table(bodies).unwrap());
        }
        txn.commit().unwrap();
    };
    let version = || {
        let db = redb::Database::open(dir.path().join("meta.redb")).unwrap();
        let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
        let table = txn.open_table(meta).unwrap();
        redb::ReadableTable::get(&table, "schema_version")
            .unwrap()
            .unwrap()
            .value()
    };
    set_version(1, true);
    drop(Store::open(dir.path()).unwrap());
    assert_eq!(version(), 2);
    set_version(3, false);
    let refused = Store::open(dir.path()).err().unwrap().to_string();
    assert!(
        refused.contains("schema version 3, this build reads 2"),
        "{refused}"
    );
}
