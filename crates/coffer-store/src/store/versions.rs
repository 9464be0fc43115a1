//! Versions: how a write, a delete and a delete by version id change the versions of a key.
//!
//! Layout. `objects` holds the current object of each key (what GET without a version id and
//! ListObjects read, so an unversioned bucket costs nothing more than before versioning);
//! `versions` holds every other version: noncurrent objects and delete markers, newest first
//! per key. Invariants, kept by every transaction here:
//! - a key's newest version is its `objects` entry if it has one, else its first `versions`
//!   entry, which is then a delete marker;
//! - an unversioned bucket has no `versions` entries;
//! - a key has at most one null version (id `None`), in either table.
//!
//! Order. Each version in `versions` sits at a sequence number; higher is newer. A version
//! with an id was given its number when it was created, and its id starts with it (16 hex
//! digits), so a lookup by id is one `get`. A null version gets a number only when it leaves
//! `objects` (the newest number then, since it was the newest version); finding the null
//! version of a key scans that key's versions.

use std::collections::BTreeSet;

use redb::{ReadableTable, Table, WriteTransaction};

use super::objects::free_extents;
use super::{BUCKETS, BlobRefs, META, OBJECTS, PENDING_BLOBS, Store, VERSIONS, require_bucket};
use crate::keys::{object_key, version_key, versions_of_key};
use crate::records::{decode, encode};
use crate::rules::{ImportPlan, apply_version_change, check_removable, seq_of, version_id};
use crate::{
    BlobId, BucketRecord, DeleteMarker, FoundVersion, ObjectRecord, StoreError, StoredBody,
    Version, VersionChange, VersionRef, Versioning,
};

/// The `meta` row holding the last sequence number given to a version.
const VERSION_SEQ: &str = "version_seq";

pub(super) type Versions<'t> = Table<'t, &'static [u8], &'static [u8]>;

/// The versioning state of `bucket`, read in the caller's transaction; `NoSuchBucket`.
pub(super) fn bucket_versioning(
    txn: &WriteTransaction,
    bucket: &str,
) -> Result<Versioning, StoreError> {
    let buckets = txn.open_table(BUCKETS)?;
    let record: BucketRecord = match buckets.get(bucket)? {
        Some(v) => decode(v.value())?,
        None => return Err(StoreError::NoSuchBucket),
    };
    Ok(record.versioning)
}

/// A new sequence number, higher than every one given before.
fn next_seq(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let mut meta = txn.open_table(META)?;
    let seq = meta.get(VERSION_SEQ)?.map_or(0, |v| v.value()) + 1;
    meta.insert(VERSION_SEQ, seq)?;
    Ok(seq)
}

/// A new version id and its sequence number.
fn new_version_id(txn: &WriteTransaction) -> Result<(String, u64), StoreError> {
    let seq = next_seq(txn)?;
    Ok((version_id(seq)?, seq))
}

/// The working set of one write transaction on one key's versions.
pub(super) struct KeyVersions<'t> {
    txn: &'t WriteTransaction,
    bucket: &'t str,
    key: &'t str,
    pub(super) objects: Table<'t, &'static [u8], &'static [u8]>,
    versions: Versions<'t>,
    pub(super) refs: BlobRefs<'t>,
}

impl<'t> KeyVersions<'t> {
    pub(super) fn open(
        txn: &'t WriteTransaction,
        bucket: &'t str,
        key: &'t str,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            txn,
            bucket,
            key,
            objects: txn.open_table(OBJECTS)?,
            versions: txn.open_table(VERSIONS)?,
            refs: txn.open_table(super::BLOB_REFS)?,
        })
    }

    /// The current object (the `objects` entry), if any.
    pub(super) fn current(&self) -> Result<Option<ObjectRecord>, StoreError> {
        self.objects
            .get(object_key(self.bucket, self.key).as_slice())?
            .map(|v| decode(v.value()))
            .transpose()
    }

    /// The key's versions in `versions`, newest first, with their sequence numbers.
    fn history(&self) -> Result<Vec<(u64, Version)>, StoreError> {
        let start = versions_of_key(self.bucket, self.key);
        let mut out = Vec::new();
        for entry in self.versions.range::<&[u8]>(start.as_slice()..)? {
            let (k, v) = entry?;
            let Some(rest) = k.value().strip_prefix(start.as_slice()) else {
                break;
            };
            let seq: [u8; 8] = rest
                .try_into()
                .map_err(|_| StoreError::Corrupt("bad version key".into()))?;
            out.push((!u64::from_be_bytes(seq), decode(v.value())?));
        }
        Ok(out)
    }

    /// Installs `record` as the key's newest version under the bucket's versioning, in this
    /// transaction; returns its version id. Versions it replaces (the null version, in an
    /// unversioned or suspended bucket) must be removable at `record.last_modified_ms`; their
    /// blobs not in `keep` are released into `freed`.
    pub(super) fn install(
        &mut self,
        versioning: Versioning,
        mut record: ObjectRecord,
        keep: &BTreeSet<&str>,
        freed: &mut Vec<BlobId>,
    ) -> Result<Option<String>, StoreError> {
        let now_ms = record.last_modified_ms;
        record.version_id = match versioning {
            Versioning::Enabled => Some(new_version_id(self.txn)?.0),
            Versioning::Unversioned | Versioning::Suspended => None,
        };
        self.retire_current(versioning, now_ms, keep, freed)?;
        let version_id = record.version_id.clone();
        self.objects.insert(
            object_key(self.bucket, self.key).as_slice(),
            encode(&record)?.as_slice(),
        )?;
        Ok(version_id)
    }

    /// Puts a delete marker on top (versioned or suspended bucket); returns its version id.
    pub(super) fn add_marker(
        &mut self,
        versioning: Versioning,
        owner: &str,
        now_ms: i64,
        freed: &mut Vec<BlobId>,
    ) -> Result<Option<String>, StoreError> {
        let (version_id, seq) = match versioning {
            Versioning::Enabled => {
                let (id, seq) = new_version_id(self.txn)?;
                (Some(id), seq)
            }
            Versioning::Suspended => (None, 0),
            Versioning::Unversioned => {
                return Err(StoreError::InvalidArgument(
                    "an unversioned bucket has no delete markers".into(),
                ));
            }
        };
        self.retire_current(versioning, now_ms, &BTreeSet::new(), freed)?;
        let seq = if version_id.is_some() {
            seq
        } else {
            next_seq(self.txn)?
        };
        let marker = Version::DeleteMarker(DeleteMarker {
            version_id: version_id.clone(),
            owner: owner.to_owned(),
            last_modified_ms: now_ms,
        });
        self.versions.insert(
            version_key(self.bucket, self.key, seq).as_slice(),
            encode(&marker)?.as_slice(),
        )?;
        Ok(version_id)
    }

    /// Makes room for a new newest version: the current object is replaced (unversioned),
    /// or moves into `versions`; in a suspended bucket the null version is removed wherever
    /// it is.
    fn retire_current(
        &mut self,
        versioning: Versioning,
        now_ms: i64,
        keep: &BTreeSet<&str>,
        freed: &mut Vec<BlobId>,
    ) -> Result<(), StoreError> {
        let current = self.current()?;
        if versioning == Versioning::Suspended {
            self.remove_null_from_history(now_ms, freed)?;
        }
        let Some(current) = current else {
            return Ok(());
        };
        let replaced = match versioning {
            Versioning::Unversioned => true,
            Versioning::Suspended => current.version_id.is_none(),
            Versioning::Enabled => false,
        };
        if replaced {
            check_removable(&current, false, now_ms)?;
            free_extents(&mut self.refs, &current, keep, freed)?;
            self.objects
                .remove(object_key(self.bucket, self.key).as_slice())?;
        } else {
            self.demote(current)?;
        }
        Ok(())
    }

    /// Moves the current object into `versions`.
    fn demote(&mut self, current: ObjectRecord) -> Result<(), StoreError> {
        let seq = match current.version_id.as_deref() {
            Some(id) => seq_of(id)
                .ok_or_else(|| StoreError::Corrupt(format!("bad stored version id {id:?}")))?,
            None => next_seq(self.txn)?,
        };
        self.objects
            .remove(object_key(self.bucket, self.key).as_slice())?;
        self.versions.insert(
            version_key(self.bucket, self.key, seq).as_slice(),
            encode(&Version::Object(current))?.as_slice(),
        )?;
        Ok(())
    }

    fn remove_null_from_history(
        &mut self,
        now_ms: i64,
        freed: &mut Vec<BlobId>,
    ) -> Result<(), StoreError> {
        let null = self
            .history()?
            .into_iter()
            .find(|(_, v)| v.version_id().is_none());
        if let Some((seq, version)) = null {
            self.remove_from_history(seq, &version, false, now_ms, freed)?;
        }
        Ok(())
    }

    fn remove_from_history(
        &mut self,
        seq: u64,
        version: &Version,
        bypass_governance: bool,
        now_ms: i64,
        freed: &mut Vec<BlobId>,
    ) -> Result<(), StoreError> {
        if let Version::Object(record) = version {
            check_removable(record, bypass_governance, now_ms)?;
            free_extents(&mut self.refs, record, &BTreeSet::new(), freed)?;
        }
        self.versions
            .remove(version_key(self.bucket, self.key, seq).as_slice())?;
        Ok(())
    }

    /// Finds the version `which` names: where it is (`None` = `objects`, `Some(seq)` =
    /// `versions`), the version, and whether it is the newest.
    pub(super) fn find(
        &self,
        which: &VersionRef,
    ) -> Result<Option<(Option<u64>, Version, bool)>, StoreError> {
        let current = self.current()?;
        match which {
            VersionRef::Latest => {
                if let Some(current) = current {
                    return Ok(Some((None, Version::Object(current), true)));
                }
                Ok(self
                    .history()?
                    .into_iter()
                    .next()
                    .map(|(seq, v)| (Some(seq), v, true)))
            }
            VersionRef::Null | VersionRef::Id(_) => {
                let wanted = match which {
                    VersionRef::Id(id) => Some(id.as_str()),
                    _ => None,
                };
                if let Some(current) = current.filter(|c| c.version_id.as_deref() == wanted) {
                    return Ok(Some((None, Version::Object(current), true)));
                }
                let has_current = self
                    .objects
                    .get(object_key(self.bucket, self.key).as_slice())?
                    .is_some();
                let found = match wanted {
                    Some(id) => {
                        let seq = seq_of(id).ok_or_else(|| {
                            StoreError::InvalidArgument("invalid version id".into())
                        })?;
                        self.versions
                            .get(version_key(self.bucket, self.key, seq).as_slice())?
                            .map(|v| decode::<Version>(v.value()))
                            .transpose()?
                            .filter(|v| v.version_id() == Some(id))
                            .map(|v| (seq, v))
                    }
                    None => self
                        .history()?
                        .into_iter()
                        .find(|(_, v)| v.version_id().is_none()),
                };
                let Some((seq, version)) = found else {
                    return Ok(None);
                };
                let newest = !has_current && self.history()?.first().map(|(s, _)| *s) == Some(seq);
                Ok(Some((Some(seq), version, newest)))
            }
        }
    }

    /// Removes the version `which` names for good (no marker); returns it, or `None` if there
    /// is no such version. If it was the newest, the next newest takes its place.
    pub(super) fn remove(
        &mut self,
        which: &VersionRef,
        bypass_governance: bool,
        now_ms: i64,
        freed: &mut Vec<BlobId>,
    ) -> Result<Option<Version>, StoreError> {
        let Some((place, version, newest)) = self.find(which)? else {
            return Ok(None);
        };
        match place {
            None => {
                let Version::Object(record) = &version else {
                    return Err(StoreError::Corrupt("a delete marker in objects".into()));
                };
                check_removable(record, bypass_governance, now_ms)?;
                free_extents(&mut self.refs, record, &BTreeSet::new(), freed)?;
                self.objects
                    .remove(object_key(self.bucket, self.key).as_slice())?;
            }
            Some(seq) => {
                self.remove_from_history(seq, &version, bypass_governance, now_ms, freed)?
            }
        }
        if newest {
            self.promote()?;
        }
        Ok(Some(version))
    }

    /// After the newest version went away: if the next newest is an object, it becomes the
    /// current object.
    fn promote(&mut self) -> Result<(), StoreError> {
        if self.current()?.is_some() {
            return Ok(());
        }
        if let Some((seq, Version::Object(record))) = self.history()?.into_iter().next() {
            self.versions
                .remove(version_key(self.bucket, self.key, seq).as_slice())?;
            self.objects.insert(
                object_key(self.bucket, self.key).as_slice(),
                encode(&record)?.as_slice(),
            )?;
        }
        Ok(())
    }

    /// Removes every version of the key (its `objects` entry and `versions` rows) and writes
    /// `plan`'s instead, exactly as planned; returns the object versions removed, whose blob
    /// references the caller settles. Raises the version sequence to `plan.max_seq`.
    pub(super) fn replace_all(
        &mut self,
        plan: ImportPlan,
    ) -> Result<Vec<ObjectRecord>, StoreError> {
        let mut removed: Vec<ObjectRecord> = self.current()?.into_iter().collect();
        for (seq, version) in self.history()? {
            if let Version::Object(record) = version {
                removed.push(record);
            }
            self.versions
                .remove(version_key(self.bucket, self.key, seq).as_slice())?;
        }
        self.objects
            .remove(object_key(self.bucket, self.key).as_slice())?;
        if let Some(current) = &plan.current {
            self.objects.insert(
                object_key(self.bucket, self.key).as_slice(),
                encode(current)?.as_slice(),
            )?;
        }
        for (seq, version) in &plan.history {
            self.versions.insert(
                version_key(self.bucket, self.key, *seq).as_slice(),
                encode(version)?.as_slice(),
            )?;
        }
        let mut meta = self.txn.open_table(META)?;
        let seq = meta.get(VERSION_SEQ)?.map_or(0, |v| v.value());
        if plan.max_seq > seq {
            meta.insert(VERSION_SEQ, plan.max_seq)?;
        }
        Ok(removed)
    }

    /// Rewrites the object version at `place` (as [`KeyVersions::find`] returned it).
    pub(super) fn rewrite(
        &mut self,
        place: Option<u64>,
        record: ObjectRecord,
    ) -> Result<(), StoreError> {
        match place {
            None => {
                self.objects.insert(
                    object_key(self.bucket, self.key).as_slice(),
                    encode(&record)?.as_slice(),
                )?;
            }
            Some(seq) => {
                self.versions.insert(
                    version_key(self.bucket, self.key, seq).as_slice(),
                    encode(&Version::Object(record))?.as_slice(),
                )?;
            }
        }
        Ok(())
    }
}

impl Store {
    // ---- Versions ----

    /// Sets a bucket's versioning to Enabled or Suspended (never back to Unversioned:
    /// `InvalidArgument`). `NoSuchBucket`.
    pub fn set_bucket_versioning(
        &self,
        bucket: &str,
        versioning: Versioning,
    ) -> Result<(), StoreError> {
        if versioning == Versioning::Unversioned {
            return Err(StoreError::InvalidArgument(
                "versioning can be enabled or suspended, not turned off".into(),
            ));
        }
        self.write(|txn, _| {
            let mut buckets = txn.open_table(BUCKETS)?;
            let mut record: BucketRecord = match buckets.get(bucket)? {
                Some(v) => decode(v.value())?,
                None => return Err(StoreError::NoSuchBucket),
            };
            record.versioning = versioning;
            buckets.insert(bucket, encode(&record)?.as_slice())?;
            Ok(())
        })
    }

    /// The version `which` names, and whether it is the newest. `NoSuchKey` when the key has
    /// no version at all (`Latest`), `NoSuchVersion` when the named one does not exist,
    /// `InvalidArgument` for an id that cannot be one of ours, `NoSuchBucket`.
    pub fn version(
        &self,
        bucket: &str,
        key: &str,
        which: &VersionRef,
    ) -> Result<FoundVersion, StoreError> {
        // A read through a write transaction (aborted): one code path finds versions for
        // reads and writes alike. redb serialises writers, so this is for version-addressed
        // reads only; GET of the current object goes through `Store::object`.
        let txn = self.inner.db.begin_write()?;
        let found = (|| {
            require_bucket(&txn.open_table(BUCKETS)?, bucket)?;
            KeyVersions::open(&txn, bucket, key)?.find(which)
        })();
        txn.abort()?;
        match found? {
            Some((_, version, is_latest)) => Ok(FoundVersion { version, is_latest }),
            None if *which == VersionRef::Latest => Err(StoreError::NoSuchKey),
            None => Err(StoreError::NoSuchVersion),
        }
    }

    /// Removes the version `which` names for good; returns it (`None`: no such version, not
    /// an error). The next newest version takes its place if it was the newest. A locked
    /// version is refused (`ObjectLocked`) unless only GOVERNANCE protects it and
    /// `bypass_governance` is set.
    pub fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        which: &VersionRef,
        bypass_governance: bool,
        now_ms: i64,
    ) -> Result<Option<Version>, StoreError> {
        self.write(|txn, freed| {
            require_bucket(&txn.open_table(BUCKETS)?, bucket)?;
            KeyVersions::open(txn, bucket, key)?.remove(which, bypass_governance, now_ms, freed)
        })
    }

    /// Applies `change` to the object version `which` names; returns the updated record.
    /// `NoSuchKey`/`NoSuchVersion` as for [`Store::version`]; `DeleteMarker` if it is one;
    /// `ObjectLocked` for a retention change the rules forbid.
    pub fn update_version(
        &self,
        bucket: &str,
        key: &str,
        which: &VersionRef,
        change: VersionChange,
    ) -> Result<ObjectRecord, StoreError> {
        self.write(|txn, _| {
            require_bucket(&txn.open_table(BUCKETS)?, bucket)?;
            let mut versions = KeyVersions::open(txn, bucket, key)?;
            let (place, version) = match versions.find(which)? {
                Some((place, version, _)) => (place, version),
                None if *which == VersionRef::Latest => return Err(StoreError::NoSuchKey),
                None => return Err(StoreError::NoSuchVersion),
            };
            let Version::Object(mut record) = version else {
                return Err(StoreError::DeleteMarker);
            };
            apply_version_change(&mut record, change)?;
            versions.rewrite(place, record.clone())?;
            Ok(record)
        })
    }

    /// Overwrites an existing object version's record exactly as given, without checking it
    /// or touching blob references. Only for offline tools with the server stopped (`coffer
    /// inspect tamper-set-record`, which plays an attacker who edits the metadata database in
    /// tests); never call it from a server.
    pub fn overwrite_object_record_unchecked(
        &self,
        bucket: &str,
        key: &str,
        which: &VersionRef,
        record: &ObjectRecord,
    ) -> Result<(), StoreError> {
        self.write(|txn, _| {
            let mut versions = KeyVersions::open(txn, bucket, key)?;
            match versions.find(which)? {
                Some((place, Version::Object(_), _)) => versions.rewrite(place, record.clone()),
                Some((_, Version::DeleteMarker(_), _)) => Err(StoreError::DeleteMarker),
                None => Err(StoreError::NoSuchKey),
            }
        })
    }

    /// Compare-and-swap of one object version's envelope (rewrap): replaces it only if the
    /// version still has `expected`. Returns whether it did (a version gone or changed
    /// meanwhile is `false`, not an error).
    pub fn replace_envelope(
        &self,
        bucket: &str,
        key: &str,
        which: &VersionRef,
        expected: &[u8],
        envelope: Vec<u8>,
    ) -> Result<bool, StoreError> {
        self.write(|txn, _| {
            let mut versions = KeyVersions::open(txn, bucket, key)?;
            let Some((place, Version::Object(record), _)) = versions.find(which)? else {
                return Ok(false);
            };
            if record.envelope.as_deref() != Some(expected) {
                return Ok(false);
            }
            let record = ObjectRecord {
                envelope: Some(envelope),
                ..record
            };
            versions.rewrite(place, record)?;
            Ok(true)
        })
    }
}

impl Store {
    /// Compare-and-swap of one object version's body (sealing a plaintext version in place):
    /// replaces its extents and envelope with `new` only if the version still has exactly
    /// `expected`; every other field stays. Takes the new blobs' references (clearing their
    /// pending rows) and releases the old blobs in the same transaction. Returns whether it
    /// did (`false`: the version is gone or changed meanwhile, and nothing changed).
    pub fn replace_body(
        &self,
        bucket: &str,
        key: &str,
        which: &VersionRef,
        expected: &StoredBody,
        new: StoredBody,
    ) -> Result<bool, StoreError> {
        let blobs: Vec<BlobId> = new.extents.iter().map(|e| e.blob.clone()).collect();
        self.with_held_bodies(&blobs, |held| {
            let swapped = self.write(|txn, freed| {
                require_bucket(&txn.open_table(BUCKETS)?, bucket)?;
                let mut versions = KeyVersions::open(txn, bucket, key)?;
                let Some((place, Version::Object(record), _)) = versions.find(which)? else {
                    return Ok(false);
                };
                if record.extents != expected.extents || record.envelope != expected.envelope {
                    return Ok(false);
                }
                let mut pending = txn.open_table(PENDING_BLOBS)?;
                let mut new_blobs = BTreeSet::new();
                for extent in &new.extents {
                    if !new_blobs.insert(extent.blob.as_str()) {
                        return Err(StoreError::BlobInUse);
                    }
                    self.take_fresh_blob(
                        txn,
                        &mut versions.refs,
                        &mut pending,
                        &held,
                        &extent.blob,
                    )?;
                }
                free_extents(&mut versions.refs, &record, &BTreeSet::new(), freed)?;
                let record = ObjectRecord {
                    extents: new.extents,
                    envelope: new.envelope,
                    ..record
                };
                versions.rewrite(place, record)?;
                Ok(true)
            })?;
            if !swapped {
                // Nothing took them: they wait for the caller's retry or discard.
                self.inner.held.restore(&held);
            }
            Ok(swapped)
        })
    }
}
