//! The store: redb metadata (`meta.redb`) plus blob files, and the crash-safety rules that tie
//! them together.
//!
//! Rules: a blob is durable before any transaction references it (a file fsynced, renamed,
//! directory fsynced), or by that transaction (a small body it writes to `blob_bodies`); a
//! blob file is deleted only after the transaction that stopped referencing it has committed
//! (an inline body, by that transaction itself); at open, everything in `tmp/` and every blob
//! not in `blob_refs` is deleted.

mod blobs;
mod buckets;
mod commit;
mod import;
mod multipart;
mod objects;
mod users;
mod version_list;
mod versions;

pub(crate) use blobs::BlobBody;
pub use objects::Deleter;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, TableDefinition,
    WriteTransaction,
};

use crate::blob::{blob_path, private_dir, private_file, sync_dir};
use crate::lease::LocalLeases;
use crate::rules::is_valid_blob_id;
use crate::{BlobId, StoreError};

/// Schema of the tables below; bump on incompatible change. Version 2 added `blob_bodies`
/// (small blobs kept in the database): a binary that reads version 1 only would not find
/// them, so it must refuse such a data dir. Opening a version-1 dir upgrades it in place
/// (nothing to rewrite: the new table starts empty).
const SCHEMA_VERSION: u64 = 2;
/// The page cache of `meta.redb` unless configured: redb's own default, 1 GiB.
pub const DEFAULT_CACHE_BYTES: usize = 1 << 30;
/// Longest object key S3 allows, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const BUCKETS: TableDefinition<&str, &[u8]> = TableDefinition::new("buckets");
const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");
const UPLOADS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("uploads");
const PARTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("parts");
const BLOB_REFS: TableDefinition<&str, ()> = TableDefinition::new("blob_refs");
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
const ACCESS_KEYS: TableDefinition<&str, &str> = TableDefinition::new("access_keys");
/// Blob id → when it was recorded as pending (ms since the epoch). Added after schema
/// version 1 shipped without bumping it: a data dir without this table gains an empty one at
/// open, and no other table changes.
const PENDING_BLOBS: TableDefinition<&str, i64> = TableDefinition::new("pending_blobs");
/// Every version of a key but its current object (see `versions.rs`). Added like
/// `pending_blobs`: a data dir without it gains an empty one at open.
const VERSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("versions");
/// Blob id → (when it was written, ms since the epoch; its bytes): blobs small enough to
/// live in the database rather than in a file (see `blobs.rs`). Since schema version 2.
const BLOB_BODIES: TableDefinition<&str, (i64, &[u8])> = TableDefinition::new("blob_bodies");

/// Handle to the store; cheap to clone, shareable across threads.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    data_dir: PathBuf,
    tmp_dir: PathBuf,
    blobs_dir: PathBuf,
    /// Leases of background work, held in memory: one process per data directory.
    leases: LocalLeases,
    /// Writers waiting to share a transaction (`commit.rs`).
    committer: commit::Committer,
    /// Small blobs finished and waiting for the transaction that references them (`blobs.rs`).
    held: blobs::HeldBodies,
}

type BlobRefs<'t> = Table<'t, &'static str, ()>;

/// A handle that does not keep the store open: what a blob writer holds, so that one left
/// unfinished (or leaked) never holds the database after the store is dropped.
#[derive(Clone)]
pub(crate) struct WeakStore(Weak<Inner>);

impl WeakStore {
    pub(crate) fn upgrade(&self) -> Result<Store, StoreError> {
        let inner = self.0.upgrade().ok_or_else(|| {
            StoreError::Io(std::io::Error::other(
                "the store was closed before the write ended",
            ))
        })?;
        Ok(Store { inner })
    }
}

impl Store {
    pub(crate) fn downgrade(&self) -> WeakStore {
        WeakStore(Arc::downgrade(&self.inner))
    }

    /// The leases of background work this process holds.
    pub(crate) fn leases(&self) -> &LocalLeases {
        &self.inner.leases
    }

    /// Opens (creating if needed) the store in `data_dir`, then collects orphans: everything in
    /// `tmp/` and every blob file no record references. Caches up to [`DEFAULT_CACHE_BYTES`]
    /// of `meta.redb`'s pages.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        Self::open_with_cache(data_dir, DEFAULT_CACHE_BYTES)
    }

    /// [`Store::open`], caching up to `cache_bytes` of `meta.redb`'s pages: with small bodies
    /// inline, most of what this store adds to the process's memory.
    pub fn open_with_cache(data_dir: &Path, cache_bytes: usize) -> Result<Store, StoreError> {
        let tmp_dir = data_dir.join("tmp");
        let blobs_dir = data_dir.join("blobs");
        private_dir(data_dir)?;
        private_dir(&tmp_dir)?;
        private_dir(&blobs_dir)?;
        for shard in 0..=255u8 {
            private_dir(&blobs_dir.join(hex::encode([shard])))?;
        }
        sync_dir(&blobs_dir)?;
        sync_dir(data_dir)?;
        let db_path = data_dir.join("meta.redb");
        private_file(&db_path)?;
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(&db_path)?;
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let version = meta.get("schema_version")?.map(|v| v.value());
            match version {
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
                Some(SCHEMA_VERSION) => {}
                // Version 1 lacks only `blob_bodies`, created below.
                Some(1) => {
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
                Some(v) => {
                    return Err(StoreError::Corrupt(format!(
                        "metadata schema version {v}, this build reads {SCHEMA_VERSION}"
                    )));
                }
            }
            txn.open_table(BUCKETS)?;
            txn.open_table(OBJECTS)?;
            txn.open_table(UPLOADS)?;
            txn.open_table(PARTS)?;
            txn.open_table(BLOB_REFS)?;
            txn.open_table(USERS)?;
            txn.open_table(ACCESS_KEYS)?;
            txn.open_table(PENDING_BLOBS)?;
            txn.open_table(VERSIONS)?;
            txn.open_table(BLOB_BODIES)?;
        }
        txn.commit()?;
        let store = Store {
            inner: Arc::new(Inner {
                db,
                data_dir: data_dir.to_path_buf(),
                tmp_dir,
                blobs_dir,
                leases: LocalLeases::default(),
                committer: commit::Committer::default(),
                held: blobs::HeldBodies::default(),
            }),
        };
        store.collect_orphans()?;
        Ok(store)
    }

    /// The directory the store was opened on (`meta.redb`, `blobs/`, `tmp/`).
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    fn collect_orphans(&self) -> Result<(), StoreError> {
        let (mut temp_files, mut blob_files) = (0usize, 0usize);
        for entry in fs::read_dir(&self.inner.tmp_dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                fs::remove_dir_all(entry.path())?;
            } else {
                fs::remove_file(entry.path())?;
            }
            temp_files += 1;
        }
        let txn = self.inner.db.begin_read()?;
        let refs = txn.open_table(BLOB_REFS)?;
        for shard in fs::read_dir(&self.inner.blobs_dir)? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for entry in fs::read_dir(shard.path())? {
                let entry = entry?;
                let name = entry.file_name();
                let referenced = match name.to_str() {
                    Some(id) if is_valid_blob_id(id) => refs.get(id)?.is_some(),
                    _ => false,
                };
                if !referenced && entry.file_type()?.is_file() {
                    fs::remove_file(entry.path())?;
                    blob_files += 1;
                }
            }
        }
        // Inline bodies are written with their first reference now; an earlier build wrote
        // them alone, with a pending row beside each: only those rows are looked up, not
        // every inline body.
        let bodies = txn.open_table(BLOB_BODIES)?;
        let pending = txn.open_table(PENDING_BLOBS)?;
        let mut orphan_bodies = Vec::new();
        for entry in pending.iter()? {
            let id = entry?.0.value().to_owned();
            if bodies.get(id.as_str())?.is_some() && refs.get(id.as_str())?.is_none() {
                orphan_bodies.push(id);
            }
        }
        let inline_blobs = orphan_bodies.len();
        let kept_bodies = usize::try_from(bodies.len()?).unwrap_or(usize::MAX) - inline_blobs;
        // No write is in flight at open: every pending row is stale, and its blob, which no
        // record references, was just deleted above (a file) or is deleted below (inline).
        let stale_pending = !pending.is_empty()?;
        drop((bodies, pending, refs));
        drop(txn);
        if stale_pending || !orphan_bodies.is_empty() {
            self.write(|txn, _| {
                txn.open_table(PENDING_BLOBS)?.retain(|_, _| false)?;
                let mut bodies = txn.open_table(BLOB_BODIES)?;
                for id in &orphan_bodies {
                    bodies.remove(id.as_str())?;
                }
                Ok(())
            })?;
        }
        // The crash-safety harness (tests/interop/crash_harness.py) reads these counts.
        if temp_files + blob_files + inline_blobs > 0 {
            tracing::info!(
                temp_files,
                blob_files,
                inline_blobs,
                "removed orphaned temp and blob files"
            );
        }
        // The harness's tally of referenced blobs counts these beside the files of `blobs/`.
        if kept_bodies > 0 {
            tracing::info!(
                inline_blobs = kept_bodies,
                "blobs kept inline in the database"
            );
        }
        Ok(())
    }

    /// Runs `f` in one write transaction and commits it; then deletes the blob files `f`
    /// pushed onto its second argument (blobs the transaction stopped referencing).
    fn write<R>(
        &self,
        f: impl FnOnce(&WriteTransaction, &mut Vec<BlobId>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let txn = self.inner.db.begin_write()?;
        let mut freed = Vec::new();
        let result = match f(&txn, &mut freed) {
            Ok(r) => r,
            Err(e) => {
                if let Err(abort) = txn.abort() {
                    tracing::warn!(error = %abort, "cannot abort metadata transaction");
                }
                return Err(e);
            }
        };
        let files = self.drop_inline_bodies(&txn, freed)?;
        txn.commit()?;
        for id in files {
            self.remove_blob_file(&id);
        }
        Ok(result)
    }

    /// Deletes, in `txn`, the inline bodies among the freed blobs `freed`; returns the others,
    /// whose files go once `txn` has committed.
    fn drop_inline_bodies(
        &self,
        txn: &WriteTransaction,
        mut freed: Vec<BlobId>,
    ) -> Result<Vec<BlobId>, StoreError> {
        if freed.is_empty() {
            return Ok(freed);
        }
        let mut bodies = txn.open_table(BLOB_BODIES)?;
        let mut files = Vec::with_capacity(freed.len());
        for id in freed.drain(..) {
            if bodies.remove(id.as_str())?.is_none() {
                files.push(id);
            }
        }
        Ok(files)
    }

    fn remove_blob_file(&self, id: &str) {
        if !is_valid_blob_id(id) {
            return;
        }
        if let Err(e) = fs::remove_file(blob_path(&self.inner.blobs_dir, id))
            && e.kind() != std::io::ErrorKind::NotFound
        {
            // Unreferenced already: the next open collects it.
            tracing::warn!(blob = id, error = %e, "cannot remove freed blob");
        }
    }
}

fn require_bucket(
    buckets: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<(), StoreError> {
    match buckets.get(name)? {
        Some(_) => Ok(()),
        None => Err(StoreError::NoSuchBucket),
    }
}

#[cfg(test)]
impl Store {
    pub(crate) fn blob_file_exists(&self, id: &str) -> bool {
        blob_path(&self.inner.blobs_dir, id).exists()
    }

    pub(crate) fn tmp_is_empty(&self) -> bool {
        fs::read_dir(&self.inner.tmp_dir).is_ok_and(|mut d| d.next().is_none())
    }

    pub(crate) fn blob_count(&self) -> usize {
        fs::read_dir(&self.inner.blobs_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|shard| fs::read_dir(shard.path()).ok())
            .map(|d| d.count())
            .sum()
    }
}
