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

async fn create_bucket_b(meta: &dyn MetadataStore) {
    meta.create_bucket(crate::BucketRecord {
        name: "b".into(),
        owner: "o".into(),
        ..Default::default()
    })
    .await
    .unwrap();
}

fn object_of(blob: &crate::BlobId, size: u64) -> crate::ObjectRecord {
    crate::ObjectRecord {
        size,
        etag: "e".into(),
        extents: vec![crate::Extent {
            blob: blob.clone(),
            size,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A small blob is held in memory when finished and written to the database by the commit
/// that references it, nothing before: one commit per small PUT. One no record names is
/// gone after a reopen; one a record names survives, and the commit that frees it deletes
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_blobs_are_written_by_their_commit_and_freed_like_files() {
    let dir = TempDir::new().unwrap();
    let (kept, orphan) = {
        let (meta, blobs) = open_embedded(dir.path()).unwrap();
        create_bucket_b(&meta).await;
        let kept = blob_of(&blobs, &[b"kept"]).await;
        let orphan = blob_of(&blobs, &[b"orphan"]).await;
        let store = blobs.store();
        for id in [&kept, &orphan] {
            assert!(!store.is_inline_blob(id).unwrap(), "not written at finish");
        }
        assert_eq!(read_all(&blobs, &orphan, 0..6).await, b"orphan");
        meta.put_object("b", "k", object_of(&kept, 4), crate::Condition::Always)
            .await
            .unwrap();
        assert!(
            store.is_inline_blob(&kept).unwrap(),
            "written with its record"
        );
        assert!(!store.is_inline_blob(&orphan).unwrap());
        assert!(
            store.pending_blobs_older_than(i64::MAX).unwrap().is_empty(),
            "no pending rows: a body reaches the database only with its reference"
        );
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
    assert!(!blobs.store().is_inline_blob(&kept).unwrap());
}

/// A commit that fails leaves the small blobs it would have written where they were: the
/// caller can retry with them (the retry writes them) or discard them (then they are gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_gives_back_the_small_blobs_it_held() {
    let dir = TempDir::new().unwrap();
    let (meta, blobs) = open_embedded(dir.path()).unwrap();
    create_bucket_b(&meta).await;
    let first = blob_of(&blobs, &[b"first"]).await;
    let never = crate::Condition::IfEtag("no-such-etag".into());
    let refused = meta.put_object("b", "k", object_of(&first, 5), never).await;
    assert!(matches!(refused, Err(StoreError::NoSuchKey)), "{refused:?}");
    assert_eq!(read_all(&blobs, &first, 0..5).await, b"first");
    meta.put_object("b", "k", object_of(&first, 5), crate::Condition::Always)
        .await
        .unwrap();
    assert!(blobs.store().is_inline_blob(&first).unwrap());

    // Two records cannot take one blob: the second commit fails and holds nothing.
    let again = meta
        .put_object("b", "k2", object_of(&first, 5), crate::Condition::Always)
        .await;
    assert!(matches!(again, Err(StoreError::BlobInUse)), "{again:?}");

    let second = blob_of(&blobs, &[b"second"]).await;
    let refused = meta
        .put_part(
            "b",
            "k",
            "no-such-upload",
            crate::PartRecord {
                part_number: 1,
                etag: "e".into(),
                size: 6,
                last_modified_ms: 0,
                blob: second.clone(),
                checksum: None,
                envelope: None,
                crc64: None,
            },
        )
        .await;
    assert!(refused.is_err(), "no such upload");
    blobs.delete(&second).await.unwrap();
    assert!(matches!(
        blobs.len(&second).await,
        Err(StoreError::NoSuchBlob)
    ));
    let put = meta
        .put_object("b", "k3", object_of(&second, 6), crate::Condition::Always)
        .await;
    assert!(matches!(put, Err(StoreError::NoSuchBlob)), "{put:?}");
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
