//! Object records: put (taking blob references), get, envelope compare-and-swap, delete, list.

use std::collections::BTreeSet;
use std::ops::Bound;

use redb::{ReadableDatabase, ReadableTable};

use super::versions::{KeyVersions, bucket_versioning};
use super::{BUCKETS, BlobRefs, OBJECTS, PENDING_BLOBS, Store, require_bucket};
use crate::keys::{object_key, prefix_successor};
use crate::list::{Walk, max_lower, walk};
use crate::records::decode;
use crate::rules::{check_key, list_page};
use crate::{
    BlobId, Condition, Deleted, ListPage, ListQuery, ObjectRecord, StoreError, VersionRef,
    Versioning, Written,
};

/// Who deletes, and when: what a delete marker records.
#[derive(Clone, Copy, Debug)]
pub struct Deleter<'a> {
    /// The user deleting.
    pub owner: &'a str,
    /// Milliseconds since the Unix epoch.
    pub now_ms: i64,
}

impl Store {
    // ---- Objects ----

    /// Inserts or replaces an object. Its extents must name finished blobs not referenced by
    /// anything else (`NoSuchBlob`, `BlobInUse`).
    pub fn put_object(
        &self,
        bucket: &str,
        key: &str,
        record: ObjectRecord,
    ) -> Result<Written, StoreError> {
        self.put_object_if(bucket, key, record, &Condition::Always)
    }

    /// [`Store::put_object`], only if `condition` holds for the current record (checked in
    /// the same transaction). The pending rows of the record's blobs are cleared by the same
    /// commit.
    pub fn put_object_if(
        &self,
        bucket: &str,
        key: &str,
        record: ObjectRecord,
        condition: &Condition,
    ) -> Result<Written, StoreError> {
        check_key(key)?;
        let blobs: Vec<BlobId> = record.extents.iter().map(|e| e.blob.clone()).collect();
        self.with_held_bodies(&blobs, |held| {
            let (store, bucket, key, condition) = (
                self.clone(),
                bucket.to_owned(),
                key.to_owned(),
                condition.clone(),
            );
            // Grouped: concurrent PUTs share one commit. The job may run again (see
            // `commit.rs`), so it installs a copy of the record.
            self.write_grouped(move |txn, freed| {
                let (bucket, key) = (bucket.as_str(), key.as_str());
                let versioning = bucket_versioning(txn, bucket)?;
                check_condition(&txn.open_table(OBJECTS)?, bucket, key, &condition)?;
                let mut versions = KeyVersions::open(txn, bucket, key)?;
                let mut pending = txn.open_table(PENDING_BLOBS)?;
                let mut new_blobs = BTreeSet::new();
                for blob in record.extents.iter().map(|extent| extent.blob.as_str()) {
                    if !new_blobs.insert(blob) {
                        return Err(StoreError::BlobInUse);
                    }
                    store.take_fresh_blob(txn, &mut versions.refs, &mut pending, &held, blob)?;
                }
                let version_id = versions.install(versioning, record.clone(), &new_blobs, freed)?;
                Ok(Written { version_id })
            })
        })
    }

    /// The record of `key` in `bucket`, or `NoSuchKey`.
    pub fn object(&self, bucket: &str, key: &str) -> Result<ObjectRecord, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let objects = txn.open_table(OBJECTS)?;
        match objects.get(object_key(bucket, key).as_slice())? {
            Some(v) => decode(v.value()),
            None => {
                require_bucket(&txn.open_table(BUCKETS)?, bucket)?;
                Err(StoreError::NoSuchKey)
            }
        }
    }

    /// Deletes the current object; an absent key is not an error.
    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<Deleted, StoreError> {
        let by = Deleter {
            owner: "",
            now_ms: 0,
        };
        self.delete_object_if(bucket, key, &Condition::Always, by)
    }

    /// [`Store::delete_object`], only if `condition` holds for the current record (checked in
    /// the same transaction). In a versioned or suspended bucket it adds a delete marker.
    pub fn delete_object_if(
        &self,
        bucket: &str,
        key: &str,
        condition: &Condition,
        by: Deleter<'_>,
    ) -> Result<Deleted, StoreError> {
        let (bucket, key, condition) = (bucket.to_owned(), key.to_owned(), condition.clone());
        let (owner, now_ms) = (by.owner.to_owned(), by.now_ms);
        self.write_grouped(move |txn, freed| {
            let (bucket, key) = (bucket.as_str(), key.as_str());
            let by = Deleter {
                owner: &owner,
                now_ms,
            };
            let versioning = bucket_versioning(txn, bucket)?;
            check_condition(&txn.open_table(OBJECTS)?, bucket, key, &condition)?;
            let mut versions = KeyVersions::open(txn, bucket, key)?;
            if versioning != Versioning::Unversioned {
                let version_id = versions.add_marker(versioning, by.owner, by.now_ms, freed)?;
                return Ok(Deleted::Marker { version_id });
            }
            match versions.remove(&VersionRef::Latest, false, by.now_ms, freed)? {
                Some(_) => Ok(Deleted::Removed),
                None => Ok(Deleted::Absent),
            }
        })
    }

    /// One page of an S3 listing (see the crate docs for the semantics).
    pub fn list_objects(&self, bucket: &str, q: &ListQuery) -> Result<ListPage, StoreError> {
        let txn = self.inner.db.begin_read()?;
        require_bucket(&txn.open_table(BUCKETS)?, bucket)?;
        let objects = txn.open_table(OBJECTS)?;
        let encoded_prefix = object_key(bucket, &q.prefix);
        let mut start = Bound::Included(encoded_prefix.clone());
        if let Some(after) = &q.start_after {
            start = max_lower(start, Bound::Excluded(object_key(bucket, after)));
        }
        let Some(end) = prefix_successor(&encoded_prefix) else {
            return Err(StoreError::Corrupt("no end to the key range".into()));
        };
        let table_prefix_len = bucket.len() + 1;
        let (entries, is_truncated) = walk(
            &objects,
            Walk {
                start,
                end,
                prefix: &q.prefix,
                delimiter: q.delimiter.as_deref(),
                skip_prefix: q.start_after.as_deref(),
                max: q.max_keys,
                decode: |k: &[u8], v: &[u8]| {
                    let key = k
                        .get(table_prefix_len..)
                        .and_then(|k| std::str::from_utf8(k).ok())
                        .ok_or_else(|| StoreError::Corrupt("object key is not UTF-8".into()))?;
                    Ok((key.to_owned(), decode::<ObjectRecord>(v)?))
                },
                encode_prefix: |cp: &str| object_key(bucket, cp),
            },
        )?;
        Ok(list_page(entries, is_truncated))
    }
}

/// Checks `condition` against the record currently stored under `key`.
pub(super) fn check_condition(
    objects: &impl ReadableTable<&'static [u8], &'static [u8]>,
    bucket: &str,
    key: &str,
    condition: &Condition,
) -> Result<(), StoreError> {
    if *condition == Condition::Always {
        return Ok(());
    }
    let current = objects
        .get(object_key(bucket, key).as_slice())?
        .map(|v| decode::<ObjectRecord>(v.value()))
        .transpose()?;
    condition.check(current.as_ref())
}

/// Unreferences the blobs of `old` that are not in `keep`, queueing their files for deletion.
pub(super) fn free_extents(
    refs: &mut BlobRefs<'_>,
    old: &ObjectRecord,
    keep: &BTreeSet<&str>,
    freed: &mut Vec<BlobId>,
) -> Result<(), StoreError> {
    for extent in &old.extents {
        if !keep.contains(extent.blob.as_str()) {
            refs.remove(extent.blob.as_str())?;
            freed.push(extent.blob.clone());
        }
    }
    Ok(())
}
