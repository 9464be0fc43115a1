//! The versions of one key inside one transaction: the embedded store's rules
//! (`coffer-store/src/store/versions.rs`, docs/metadata.md "Versions") over the `objects` and
//! `versions` tables, plus blob references and the release of blobs into `pending_blobs`.
//!
//! Invariants kept by every transaction: a key's newest version is its `objects` row if it has
//! one, else its `versions` row with the highest `seq`, which is then a delete marker; an
//! unversioned bucket has no `versions` rows; a key has at most one null version.

use std::collections::BTreeSet;
use std::time::SystemTime;

use coffer_store::{
    BucketRecord, Condition, DeleteMarker, ObjectRecord, StoreError, Version, VersionRef,
    Versioning,
};

use crate::codec::{decode, encode, seq_of, version_id};
use crate::db::{Tx, execute, query, query_opt};
use crate::error::Error;
use coffer_store::rules::{ImportPlan, check_removable, epoch_ms, is_valid_blob_id};

/// Where a version lives: `None` = the `objects` row, `Some(seq)` = a `versions` row.
pub(crate) type Place = Option<i64>;

/// The bucket's record, read in the transaction; `NoSuchBucket`.
pub(crate) async fn bucket(tx: &Tx<'_>, bucket: &str) -> Result<BucketRecord, Error> {
    match query_opt(tx, "SELECT record FROM buckets WHERE name = $1", &[&bucket]).await? {
        Some(row) => Ok(decode(row.get::<_, &str>(0))?),
        None => Err(StoreError::NoSuchBucket.into()),
    }
}

/// A new sequence number, higher than every one given before (also across gateways).
async fn next_seq(tx: &Tx<'_>) -> Result<i64, Error> {
    let row = query(tx, "SELECT nextval('version_seq')", &[]).await?;
    Ok(row
        .first()
        .map(|r| r.get::<_, i64>(0))
        .ok_or_else(|| StoreError::Corrupt("nextval returned no row".into()))?)
}

/// Takes the reference of a new record's blob: it must be one of ours and unreferenced
/// (`NoSuchBlob`, `BlobInUse`); its pending row goes.
pub(crate) async fn take_blob(tx: &Tx<'_>, blob: &str) -> Result<(), Error> {
    if !is_valid_blob_id(blob) {
        return Err(StoreError::NoSuchBlob.into());
    }
    if query_opt(tx, "SELECT 1 FROM blob_refs WHERE blob = $1", &[&blob])
        .await?
        .is_some()
    {
        return Err(StoreError::BlobInUse.into());
    }
    execute(tx, "INSERT INTO blob_refs (blob) VALUES ($1)", &[&blob]).await?;
    execute(tx, "DELETE FROM pending_blobs WHERE blob = $1", &[&blob]).await?;
    Ok(())
}

/// Releases a blob no record references any more: its reference goes and a pending row names
/// it, in this transaction, so the sweeper deletes it after its grace period.
pub(crate) async fn release_blob(tx: &Tx<'_>, blob: &str) -> Result<(), Error> {
    execute(tx, "DELETE FROM blob_refs WHERE blob = $1", &[&blob]).await?;
    execute(
        tx,
        "INSERT INTO pending_blobs (blob, since_ms) VALUES ($1, $2)
         ON CONFLICT (blob) DO UPDATE SET since_ms = EXCLUDED.since_ms",
        &[&blob, &epoch_ms(SystemTime::now())],
    )
    .await?;
    Ok(())
}

/// Releases the blobs of `old` not in `keep`.
async fn release_extents(
    tx: &Tx<'_>,
    old: &ObjectRecord,
    keep: &BTreeSet<String>,
) -> Result<(), Error> {
    for extent in &old.extents {
        if !keep.contains(&extent.blob) {
            release_blob(tx, &extent.blob).await?;
        }
    }
    Ok(())
}

/// One key's versions, inside one transaction.
pub(crate) struct KeyVersions<'a, 't> {
    tx: &'a Tx<'t>,
    bucket: &'a str,
    key: &'a [u8],
}

impl<'a, 't> KeyVersions<'a, 't> {
    pub(crate) fn new(tx: &'a Tx<'t>, bucket: &'a str, key: &'a str) -> Self {
        Self {
            tx,
            bucket,
            key: key.as_bytes(),
        }
    }

    /// The current object (the `objects` row), if any.
    pub(crate) async fn current(&self) -> Result<Option<ObjectRecord>, Error> {
        let row = query_opt(
            self.tx,
            "SELECT record FROM objects WHERE bucket = $1 AND key = $2",
            &[&self.bucket, &self.key],
        )
        .await?;
        Ok(row.map(|r| decode(r.get::<_, &str>(0))).transpose()?)
    }

    /// Checks `condition` against the current object.
    pub(crate) async fn check_condition(&self, condition: &Condition) -> Result<(), Error> {
        if *condition == Condition::Always {
            return Ok(());
        }
        Ok(condition.check(self.current().await?.as_ref())?)
    }

    /// The key's `versions` rows, newest first, with their sequence numbers.
    async fn history(&self) -> Result<Vec<(i64, Version)>, Error> {
        let rows = query(
            self.tx,
            "SELECT seq, record FROM versions WHERE bucket = $1 AND key = $2 ORDER BY seq DESC",
            &[&self.bucket, &self.key],
        )
        .await?;
        rows.iter()
            .map(|r| Ok((r.get(0), decode(r.get::<_, &str>(1))?)))
            .collect()
    }

    async fn write_current(&self, record: &ObjectRecord) -> Result<(), Error> {
        execute(
            self.tx,
            "INSERT INTO objects (bucket, key, record) VALUES ($1, $2, $3)
             ON CONFLICT (bucket, key) DO UPDATE SET record = EXCLUDED.record",
            &[&self.bucket, &self.key, &encode(record)?],
        )
        .await?;
        Ok(())
    }

    async fn delete_current(&self) -> Result<(), Error> {
        execute(
            self.tx,
            "DELETE FROM objects WHERE bucket = $1 AND key = $2",
            &[&self.bucket, &self.key],
        )
        .await?;
        Ok(())
    }

    async fn write_version(&self, seq: i64, version: &Version) -> Result<(), Error> {
        let is_marker = matches!(version, Version::DeleteMarker(_));
        execute(
            self.tx,
            "INSERT INTO versions (bucket, key, seq, version_id, is_marker, record)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (bucket, key, seq) DO UPDATE SET version_id = EXCLUDED.version_id,
                 is_marker = EXCLUDED.is_marker, record = EXCLUDED.record",
            &[
                &self.bucket,
                &self.key,
                &seq,
                &version.version_id(),
                &is_marker,
                &encode(version)?,
            ],
        )
        .await?;
        Ok(())
    }

    /// Removes every version of the key and writes `plan`'s instead, exactly as planned;
    /// returns the object versions removed, whose blob references the caller settles.
    pub(crate) async fn replace_all(&self, plan: &ImportPlan) -> Result<Vec<ObjectRecord>, Error> {
        let mut removed: Vec<ObjectRecord> = self.current().await?.into_iter().collect();
        removed.extend(
            self.history()
                .await?
                .into_iter()
                .filter_map(|(_, v)| match v {
                    Version::Object(record) => Some(record),
                    Version::DeleteMarker(_) => None,
                }),
        );
        self.delete_current().await?;
        execute(
            self.tx,
            "DELETE FROM versions WHERE bucket = $1 AND key = $2",
            &[&self.bucket, &self.key],
        )
        .await?;
        if let Some(current) = &plan.current {
            self.write_current(current).await?;
        }
        for (seq, version) in &plan.history {
            let seq = i64::try_from(*seq).map_err(|_| {
                StoreError::InvalidArgument("import: version id out of range".into())
            })?;
            self.write_version(seq, version).await?;
        }
        Ok(removed)
    }

    async fn delete_version_row(&self, seq: i64) -> Result<(), Error> {
        execute(
            self.tx,
            "DELETE FROM versions WHERE bucket = $1 AND key = $2 AND seq = $3",
            &[&self.bucket, &self.key, &seq],
        )
        .await?;
        Ok(())
    }

    /// Installs `record` as the key's newest version under `versioning`; returns its version
    /// id. Versions it replaces must be removable at `record.last_modified_ms`; their blobs not
    /// in `keep` are released.
    pub(crate) async fn install(
        &self,
        versioning: Versioning,
        mut record: ObjectRecord,
        keep: &BTreeSet<String>,
    ) -> Result<Option<String>, Error> {
        let now_ms = record.last_modified_ms;
        record.version_id = match versioning {
            Versioning::Enabled => Some(version_id(next_seq(self.tx).await?)?),
            Versioning::Unversioned | Versioning::Suspended => None,
        };
        self.retire_current(versioning, now_ms, keep).await?;
        self.write_current(&record).await?;
        Ok(record.version_id)
    }

    /// Puts a delete marker on top (versioned or suspended bucket); returns its version id.
    pub(crate) async fn add_marker(
        &self,
        versioning: Versioning,
        owner: &str,
        now_ms: i64,
    ) -> Result<Option<String>, Error> {
        let (id, seq) = match versioning {
            Versioning::Enabled => {
                let seq = next_seq(self.tx).await?;
                (Some(version_id(seq)?), Some(seq))
            }
            Versioning::Suspended => (None, None),
            Versioning::Unversioned => {
                return Err(StoreError::InvalidArgument(
                    "an unversioned bucket has no delete markers".into(),
                )
                .into());
            }
        };
        self.retire_current(versioning, now_ms, &BTreeSet::new())
            .await?;
        let seq = match seq {
            Some(seq) => seq,
            None => next_seq(self.tx).await?,
        };
        let marker = Version::DeleteMarker(DeleteMarker {
            version_id: id.clone(),
            owner: owner.to_owned(),
            last_modified_ms: now_ms,
        });
        self.write_version(seq, &marker).await?;
        Ok(id)
    }

    /// Makes room for a new newest version: the current object is replaced (unversioned), or
    /// moves into `versions`; in a suspended bucket the null version goes wherever it is.
    async fn retire_current(
        &self,
        versioning: Versioning,
        now_ms: i64,
        keep: &BTreeSet<String>,
    ) -> Result<(), Error> {
        let current = self.current().await?;
        if versioning == Versioning::Suspended {
            self.remove_null_from_history(now_ms).await?;
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
            release_extents(self.tx, &current, keep).await?;
            self.delete_current().await?;
        } else {
            self.demote(current).await?;
        }
        Ok(())
    }

    /// Moves the current object into `versions`.
    async fn demote(&self, current: ObjectRecord) -> Result<(), Error> {
        let seq = match current.version_id.as_deref() {
            Some(id) => seq_of(id)
                .ok_or_else(|| StoreError::Corrupt(format!("bad stored version id {id:?}")))?,
            None => next_seq(self.tx).await?,
        };
        self.delete_current().await?;
        self.write_version(seq, &Version::Object(current)).await
    }

    async fn remove_null_from_history(&self, now_ms: i64) -> Result<(), Error> {
        let null = self
            .history()
            .await?
            .into_iter()
            .find(|(_, v)| v.version_id().is_none());
        if let Some((seq, version)) = null {
            self.remove_from_history(seq, &version, false, now_ms)
                .await?;
        }
        Ok(())
    }

    async fn remove_from_history(
        &self,
        seq: i64,
        version: &Version,
        bypass_governance: bool,
        now_ms: i64,
    ) -> Result<(), Error> {
        if let Version::Object(record) = version {
            check_removable(record, bypass_governance, now_ms)?;
            release_extents(self.tx, record, &BTreeSet::new()).await?;
        }
        self.delete_version_row(seq).await
    }

    /// Finds the version `which` names: where it is, the version, and whether it is the
    /// newest.
    pub(crate) async fn find(
        &self,
        which: &VersionRef,
    ) -> Result<Option<(Place, Version, bool)>, Error> {
        let current = self.current().await?;
        let wanted = match which {
            VersionRef::Latest => {
                if let Some(current) = current {
                    return Ok(Some((None, Version::Object(current), true)));
                }
                let newest = self.history().await?.into_iter().next();
                return Ok(newest.map(|(seq, v)| (Some(seq), v, true)));
            }
            VersionRef::Null => None,
            VersionRef::Id(id) => Some(id.as_str()),
        };
        let has_current = current.is_some();
        if let Some(current) = current.filter(|c| c.version_id.as_deref() == wanted) {
            return Ok(Some((None, Version::Object(current), true)));
        }
        let history = self.history().await?;
        let found = match wanted {
            Some(id) => {
                let seq = seq_of(id)
                    .ok_or_else(|| StoreError::InvalidArgument("invalid version id".into()))?;
                history
                    .iter()
                    .find(|(s, v)| *s == seq && v.version_id() == Some(id))
            }
            None => history.iter().find(|(_, v)| v.version_id().is_none()),
        };
        let Some((seq, version)) = found else {
            return Ok(None);
        };
        let newest = !has_current && history.first().map(|(s, _)| s) == Some(seq);
        Ok(Some((Some(*seq), version.clone(), newest)))
    }

    /// Removes the version `which` names for good; returns it, or `None` if there is no such
    /// version. If it was the newest, the next newest takes its place.
    pub(crate) async fn remove(
        &self,
        which: &VersionRef,
        bypass_governance: bool,
        now_ms: i64,
    ) -> Result<Option<Version>, Error> {
        let Some((place, version, newest)) = self.find(which).await? else {
            return Ok(None);
        };
        match place {
            None => {
                let Version::Object(record) = &version else {
                    return Err(StoreError::Corrupt("a delete marker in objects".into()).into());
                };
                check_removable(record, bypass_governance, now_ms)?;
                release_extents(self.tx, record, &BTreeSet::new()).await?;
                self.delete_current().await?;
            }
            Some(seq) => {
                self.remove_from_history(seq, &version, bypass_governance, now_ms)
                    .await?
            }
        }
        if newest {
            self.promote().await?;
        }
        Ok(Some(version))
    }

    /// After the newest version went away: if the next newest is an object, it becomes the
    /// current object.
    async fn promote(&self) -> Result<(), Error> {
        if self.current().await?.is_some() {
            return Ok(());
        }
        if let Some((seq, Version::Object(record))) = self.history().await?.into_iter().next() {
            self.delete_version_row(seq).await?;
            self.write_current(&record).await?;
        }
        Ok(())
    }

    /// Rewrites the object version at `place` (as [`KeyVersions::find`] returned it).
    pub(crate) async fn rewrite(&self, place: Place, record: ObjectRecord) -> Result<(), Error> {
        match place {
            None => self.write_current(&record).await,
            Some(seq) => self.write_version(seq, &Version::Object(record)).await,
        }
    }
}
