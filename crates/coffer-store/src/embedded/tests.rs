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
        // A writer still open when the process stops: its temp file stays behind.
        let mut abandoned = blobs.create().await.unwrap();
        abandoned.write(Bytes::from_static(b"cut")).await.unwrap();
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
