//! Blobs: staging new ones, opening committed ones, discarding uncommitted ones.
//!
//! A blob is a file `blobs/<2 hex>/<id>`, or, when small, a row of `blob_bodies` (inline).
//! A small blob is held in memory when its writer finishes and written by the transaction
//! that first references it ([`Store::take_fresh_blob`]): a small PUT then costs one row in
//! the group commit of its record, shared with its neighbours, instead of a file create, two
//! fsyncs and a rename of its own. Until that commit it is as durable as an unreferenced blob
//! ever is here: the next [`Store::open`] would delete it anyway. The bytes are the same
//! sealed bytes either way; readers go through [`BlobBody`] and never see the difference.

use std::collections::HashMap;
use std::fs;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use redb::{ReadableDatabase, ReadableTable, Table, WriteTransaction};

use super::{BLOB_BODIES, BLOB_REFS, BlobRefs, PENDING_BLOBS, Store};
use crate::blob::{NewBlob, blob_path};
use crate::rules::{epoch_ms, is_valid_blob_id};
use crate::{BlobId, PendingBlob, StoreError};

/// A finished blob, opened for reading.
pub(crate) enum BlobBody {
    /// A blob file.
    File(fs::File),
    /// A small blob's bytes, from `blob_bodies`.
    Inline(Bytes),
}

impl BlobBody {
    pub(crate) fn len(&self) -> Result<u64, StoreError> {
        Ok(match self {
            BlobBody::File(file) => file.metadata()?.len(),
            BlobBody::Inline(bytes) => bytes.len() as u64,
        })
    }
}

impl Store {
    // ---- Blobs ----

    /// A temp file to write a blob into under a fresh id; see [`NewBlob::finish`].
    #[cfg(test)]
    pub(crate) fn new_blob(&self) -> Result<NewBlob, StoreError> {
        self.new_blob_named(crate::rules::new_blob_id()?)
    }

    /// A temp file for the blob `id` (named earlier by [`crate::rules::new_blob_id`]).
    pub(crate) fn new_blob_named(&self, id: BlobId) -> Result<NewBlob, StoreError> {
        NewBlob::create_named(id, &self.inner.tmp_dir, &self.inner.blobs_dir)
    }

    /// Finishes the small blob `id`: held in memory until the transaction that first
    /// references it writes it to `blob_bodies` ([`Store::take_fresh_blob`]), or until
    /// [`Store::discard_blob`]. `BlobInUse` if a blob is held under `id` already.
    pub(crate) fn hold_inline_blob(&self, id: BlobId, body: Bytes) -> Result<(), StoreError> {
        if !is_valid_blob_id(&id) {
            return Err(StoreError::InvalidArgument("not a blob id".into()));
        }
        self.inner.held.hold(id, epoch_ms(SystemTime::now()), body)
    }

    /// Runs `commit` (a transaction referencing `blobs`) with the bodies held for them, taken
    /// out of memory for the time it runs; they go back if it fails, so that the caller can
    /// retry or discard them.
    pub(super) fn with_held_bodies<'b, R>(
        &self,
        blobs: impl IntoIterator<Item = &'b BlobId>,
        commit: impl FnOnce(Held) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let held = self.inner.held.take(blobs);
        if held.is_empty() {
            return commit(held);
        }
        let result = commit(Arc::clone(&held));
        if result.is_err() {
            self.inner.held.restore(&held);
        }
        result
    }

    /// Whether `id` is a blob kept inline in the database (a small sealed
    /// body), rather than a file under `blobs/`.
    pub fn is_inline_blob(&self, id: &str) -> Result<bool, StoreError> {
        let txn = self.inner.db.begin_read()?;
        Ok(txn.open_table(BLOB_BODIES)?.get(id)?.is_some())
    }

    /// Opens a finished blob: its inline body, else its file. `NoSuchBlob`.
    pub(crate) fn open_blob(&self, id: &BlobId) -> Result<BlobBody, StoreError> {
        if !is_valid_blob_id(id) {
            return Err(StoreError::NoSuchBlob);
        }
        if let Some(body) = self.inner.held.get(id) {
            return Ok(BlobBody::Inline(body));
        }
        {
            let txn = self.inner.db.begin_read()?;
            if let Some(row) = txn.open_table(BLOB_BODIES)?.get(id.as_str())? {
                return Ok(BlobBody::Inline(Bytes::copy_from_slice(row.value().1)));
            }
        }
        match fs::File::open(blob_path(&self.inner.blobs_dir, id)) {
            Ok(f) => Ok(BlobBody::File(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NoSuchBlob),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a finished blob that no record references: the clean-up of a
    /// write whose metadata commit failed (otherwise it would wait for the
    /// next start-up's orphan collection).
    pub(crate) fn discard_blob(&self, id: &BlobId) -> Result<(), StoreError> {
        if !is_valid_blob_id(id) {
            return Err(StoreError::NoSuchBlob);
        }
        if self.inner.held.remove(id) {
            return Ok(());
        }
        let inline = self.write(|txn, _| {
            if txn.open_table(BLOB_REFS)?.get(id.as_str())?.is_some() {
                return Err(StoreError::BlobInUse);
            }
            // A pending row stays: its owner (the sweeper) removes it, and open clears the rest.
            Ok(txn.open_table(BLOB_BODIES)?.remove(id.as_str())?.is_some())
        })?;
        if inline {
            return Ok(());
        }
        match fs::remove_file(blob_path(&self.inner.blobs_dir, id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes the reference of `id`, a finished blob no record references yet (`NoSuchBlob`,
    /// `BlobInUse`), in `txn`: writes its body to `blob_bodies` if it is among `held`, and
    /// clears its pending row.
    pub(super) fn take_fresh_blob(
        &self,
        txn: &WriteTransaction,
        refs: &mut BlobRefs<'_>,
        pending: &mut Table<'_, &'static str, i64>,
        held: &[HeldBody],
        id: &str,
    ) -> Result<(), StoreError> {
        if !is_valid_blob_id(id) {
            return Err(StoreError::NoSuchBlob);
        }
        let mut bodies = txn.open_table(BLOB_BODIES)?;
        if let Some(body) = held.iter().find(|body| body.id == id) {
            if bodies
                .insert(id, (body.written_ms, &body.bytes[..]))?
                .is_some()
            {
                return Err(StoreError::BlobInUse);
            }
        } else if bodies.get(id)?.is_none() && !blob_path(&self.inner.blobs_dir, id).is_file() {
            return Err(StoreError::NoSuchBlob);
        }
        if refs.insert(id, ())?.is_some() {
            return Err(StoreError::BlobInUse);
        }
        pending.remove(id)?;
        Ok(())
    }

    /// Records `id` as pending since `since_ms`: named, its bytes about to be written, not
    /// referenced yet. The commit that references it clears the row.
    pub fn add_pending_blob(&self, id: &BlobId, since_ms: i64) -> Result<(), StoreError> {
        if !is_valid_blob_id(id) {
            return Err(StoreError::InvalidArgument("not a blob id".into()));
        }
        self.write(|txn, _| {
            if txn.open_table(BLOB_REFS)?.get(id.as_str())?.is_some() {
                return Err(StoreError::BlobInUse);
            }
            txn.open_table(PENDING_BLOBS)?
                .insert(id.as_str(), since_ms)?;
            Ok(())
        })
    }

    /// Removes the pending row of `id`; returns whether there was one.
    pub fn remove_pending_blob(&self, id: &BlobId) -> Result<bool, StoreError> {
        self.write(|txn, _| {
            Ok(txn
                .open_table(PENDING_BLOBS)?
                .remove(id.as_str())?
                .is_some())
        })
    }

    /// Pending rows written before `before_ms`, by blob id.
    pub fn pending_blobs_older_than(&self, before_ms: i64) -> Result<Vec<PendingBlob>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let pending = txn.open_table(PENDING_BLOBS)?;
        let mut out = Vec::new();
        for entry in pending.iter()? {
            let (id, since) = entry?;
            if since.value() < before_ms {
                out.push(PendingBlob {
                    blob: id.value().to_owned(),
                    since_ms: since.value(),
                });
            }
        }
        Ok(out)
    }

    /// Whether a committed record (object or part) references `id`.
    pub fn is_blob_referenced(&self, id: &BlobId) -> Result<bool, StoreError> {
        let txn = self.inner.db.begin_read()?;
        Ok(txn.open_table(BLOB_REFS)?.get(id.as_str())?.is_some())
    }

    /// The finished blobs whose ids start with the hex of `shard` (files in the directory
    /// `blobs/<2 hex>/`, and inline bodies) last written before `before`. Temp files are never
    /// listed.
    pub fn blobs_older_than(
        &self,
        shard: u8,
        before: SystemTime,
    ) -> Result<Vec<BlobId>, StoreError> {
        let prefix = hex::encode([shard]);
        let mut out = Vec::new();
        {
            let before_ms = epoch_ms(before);
            out.extend(self.inner.held.older_than(&prefix, before_ms));
            let txn = self.inner.db.begin_read()?;
            let bodies = txn.open_table(BLOB_BODIES)?;
            for row in bodies.range(prefix.as_str()..)? {
                let (id, body) = row?;
                if !id.value().starts_with(&prefix) {
                    break;
                }
                if body.value().0 < before_ms {
                    out.push(id.value().to_owned());
                }
            }
        }
        let dir = self.inner.blobs_dir.join(&prefix);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                out.sort();
                return Ok(out);
            }
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let entry = entry?;
            let Some(id) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let metadata = entry.metadata()?;
            if is_valid_blob_id(&id) && metadata.is_file() && metadata.modified()? < before {
                out.push(id);
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A small blob's body, finished and not yet committed.
#[derive(Clone)]
pub(super) struct HeldBody {
    id: BlobId,
    /// When its writer finished it (ms since the epoch): its `blob_bodies` time.
    written_ms: i64,
    bytes: Bytes,
}

/// The bodies one commit takes in (see [`Store::with_held_bodies`]).
pub(super) type Held = Arc<[HeldBody]>;

/// How long a body may wait for its commit. A write commits right after it finishes its
/// blob; one that never does (its request cancelled in between) must not hold the memory for
/// ever. An hour, like the sweeper's grace period for blobs its pending rows name.
const HELD_AT_MOST: Duration = Duration::from_secs(3600);

/// Small blobs' bodies finished and waiting for the transaction that references them.
#[derive(Default)]
pub(super) struct HeldBodies {
    bodies: Mutex<HeldMap>,
}

#[derive(Default)]
struct HeldMap {
    by_id: HashMap<BlobId, (i64, Bytes)>,
    /// When bodies held too long were last dropped (ms since the epoch).
    pruned_ms: i64,
}

impl HeldBodies {
    /// The map guards plain data that a panic cannot leave half-updated.
    fn lock(&self) -> std::sync::MutexGuard<'_, HeldMap> {
        self.bodies.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn hold(&self, id: BlobId, written_ms: i64, bytes: Bytes) -> Result<(), StoreError> {
        let mut map = self.lock();
        // At most once a minute: a scan of every held body.
        if written_ms - map.pruned_ms > 60_000 {
            map.pruned_ms = written_ms;
            let oldest = written_ms - HELD_AT_MOST.as_millis() as i64;
            let before = map.by_id.len();
            map.by_id.retain(|_, (held_ms, _)| *held_ms >= oldest);
            let dropped = before - map.by_id.len();
            if dropped > 0 {
                tracing::warn!(dropped, "dropped small blobs whose write never committed");
            }
        }
        if map.by_id.contains_key(&id) {
            return Err(StoreError::BlobInUse);
        }
        map.by_id.insert(id, (written_ms, bytes));
        Ok(())
    }

    fn get(&self, id: &str) -> Option<Bytes> {
        self.lock().by_id.get(id).map(|(_, bytes)| bytes.clone())
    }

    fn remove(&self, id: &str) -> bool {
        self.lock().by_id.remove(id).is_some()
    }

    fn take<'b>(&self, ids: impl IntoIterator<Item = &'b BlobId>) -> Held {
        let mut map = self.lock();
        if map.by_id.is_empty() {
            return Arc::new([]);
        }
        ids.into_iter()
            .filter_map(|id| {
                let (written_ms, bytes) = map.by_id.remove(id)?;
                Some(HeldBody {
                    id: id.clone(),
                    written_ms,
                    bytes,
                })
            })
            .collect()
    }

    pub(super) fn restore(&self, held: &[HeldBody]) {
        let mut map = self.lock();
        for body in held {
            map.by_id
                .insert(body.id.clone(), (body.written_ms, body.bytes.clone()));
        }
    }

    pub(super) fn older_than(&self, prefix: &str, before_ms: i64) -> Vec<BlobId> {
        self.lock()
            .by_id
            .iter()
            .filter(|(id, (written_ms, _))| id.starts_with(prefix) && *written_ms < before_ms)
            .map(|(id, _)| id.clone())
            .collect()
    }
}
