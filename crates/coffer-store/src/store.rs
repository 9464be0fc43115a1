//! The store: redb metadata (`meta.redb`) plus blob files, and the crash-safety rules that tie
//! them together.
//!
//! Rules: a blob is durable (fsynced, renamed, directory fsynced) before any transaction
//! references it; a blob is deleted only after the transaction that stopped referencing it has
//! committed; at open, everything in `tmp/` and every blob not in `blob_refs` is deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::blob::{NewBlob, blob_path, is_valid_blob_id, random_hex, sync_dir};
use crate::keys::{
    after_key_uploads, bucket_prefix, object_key, part_key, prefix_successor, upload_key,
    upload_prefix,
};
use crate::list::{Entry, Walk, max_lower, walk};
use crate::records::{decode, encode};
use crate::{
    BlobId, BucketRecord, ListPage, ListQuery, ObjectRecord, PartRecord, StoreError,
    UploadListPage, UploadListQuery, UploadRecord, UserRecord,
};

/// Schema of the tables below; bump on incompatible change.
const SCHEMA_VERSION: u64 = 1;
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
}

type BlobRefs<'t> = Table<'t, &'static str, ()>;

impl Store {
    /// Opens (creating if needed) the store in `data_dir`, then collects orphans: everything in
    /// `tmp/` and every blob file no record references.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let tmp_dir = data_dir.join("tmp");
        let blobs_dir = data_dir.join("blobs");
        fs::create_dir_all(&tmp_dir)?;
        fs::create_dir_all(&blobs_dir)?;
        for shard in 0..=255u8 {
            fs::create_dir_all(blobs_dir.join(hex::encode([shard])))?;
        }
        sync_dir(&blobs_dir)?;
        sync_dir(data_dir)?;
        let db = Database::create(data_dir.join("meta.redb"))?;
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let version = meta.get("schema_version")?.map(|v| v.value());
            match version {
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
                Some(SCHEMA_VERSION) => {}
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
        }
        txn.commit()?;
        let store = Store {
            inner: Arc::new(Inner {
                db,
                data_dir: data_dir.to_path_buf(),
                tmp_dir,
                blobs_dir,
            }),
        };
        store.collect_orphans()?;
        Ok(store)
    }

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
        // The crash-safety harness (tests/interop/crash_harness.py) reads these counts.
        if temp_files + blob_files > 0 {
            tracing::info!(
                temp_files,
                blob_files,
                "removed orphaned temp and blob files"
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
        txn.commit()?;
        for id in freed {
            self.remove_blob_file(&id);
        }
        Ok(result)
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

    // ---- Buckets ----

    pub fn create_bucket(&self, bucket: BucketRecord) -> Result<(), StoreError> {
        check_bucket_name(&bucket.name)?;
        let value = encode(&bucket)?;
        self.write(|txn, _| {
            let mut buckets = txn.open_table(BUCKETS)?;
            if let Some(existing) = buckets.get(bucket.name.as_str())? {
                let existing: BucketRecord = decode(existing.value())?;
                return Err(StoreError::BucketExists {
                    owner: existing.owner,
                });
            }
            buckets.insert(bucket.name.as_str(), value.as_slice())?;
            Ok(())
        })
    }

    pub fn bucket(&self, name: &str) -> Result<BucketRecord, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let buckets = txn.open_table(BUCKETS)?;
        match buckets.get(name)? {
            Some(v) => decode(v.value()),
            None => Err(StoreError::NoSuchBucket),
        }
    }

    /// All buckets, sorted by name.
    pub fn list_buckets(&self) -> Result<Vec<BucketRecord>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let buckets = txn.open_table(BUCKETS)?;
        let mut out = Vec::new();
        for entry in buckets.iter()? {
            let (_, v) = entry?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    /// Fails with `BucketNotEmpty` while the bucket holds objects or in-progress uploads.
    pub fn delete_bucket(&self, name: &str) -> Result<(), StoreError> {
        self.write(|txn, _| {
            let mut buckets = txn.open_table(BUCKETS)?;
            if buckets.get(name)?.is_none() {
                return Err(StoreError::NoSuchBucket);
            }
            let objects = txn.open_table(OBJECTS)?;
            let uploads = txn.open_table(UPLOADS)?;
            if has_prefix(&objects, &bucket_prefix(name))?
                || has_prefix(&uploads, &bucket_prefix(name))?
            {
                return Err(StoreError::BucketNotEmpty);
            }
            buckets.remove(name)?;
            Ok(())
        })
    }

    /// Replaces the record of an existing bucket (configuration changes).
    pub fn update_bucket(&self, bucket: BucketRecord) -> Result<(), StoreError> {
        let value = encode(&bucket)?;
        self.write(|txn, _| {
            let mut buckets = txn.open_table(BUCKETS)?;
            if buckets.get(bucket.name.as_str())?.is_none() {
                return Err(StoreError::NoSuchBucket);
            }
            buckets.insert(bucket.name.as_str(), value.as_slice())?;
            Ok(())
        })
    }

    // ---- Blobs ----

    /// A temp file to write a blob into; see [`NewBlob::finish`].
    pub fn new_blob(&self) -> Result<NewBlob, StoreError> {
        NewBlob::create(&self.inner.tmp_dir, &self.inner.blobs_dir)
    }

    pub fn open_blob(&self, id: &BlobId) -> Result<fs::File, StoreError> {
        if !is_valid_blob_id(id) {
            return Err(StoreError::NoSuchBlob);
        }
        match fs::File::open(blob_path(&self.inner.blobs_dir, id)) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NoSuchBlob),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a finished blob that no record references: the clean-up of a
    /// write whose metadata commit failed (otherwise it would wait for the
    /// next start-up's orphan collection).
    pub fn discard_blob(&self, id: &BlobId) -> Result<(), StoreError> {
        if !is_valid_blob_id(id) {
            return Err(StoreError::NoSuchBlob);
        }
        let txn = self.inner.db.begin_read()?;
        if txn.open_table(BLOB_REFS)?.get(id.as_str())?.is_some() {
            return Err(StoreError::BlobInUse);
        }
        match fs::remove_file(blob_path(&self.inner.blobs_dir, id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks that `id` names a finished blob no record references yet.
    fn check_fresh_blob(&self, refs: &BlobRefs<'_>, id: &str) -> Result<(), StoreError> {
        if !is_valid_blob_id(id) || !blob_path(&self.inner.blobs_dir, id).is_file() {
            return Err(StoreError::NoSuchBlob);
        }
        if refs.get(id)?.is_some() {
            return Err(StoreError::BlobInUse);
        }
        Ok(())
    }

    // ---- Objects ----

    /// Inserts or replaces an object. Its extents must name blobs finished by
    /// [`NewBlob::finish`] and not referenced by anything else (`NoSuchBlob`, `BlobInUse`).
    pub fn put_object(
        &self,
        bucket: &str,
        key: &str,
        record: ObjectRecord,
    ) -> Result<(), StoreError> {
        check_key(key)?;
        let value = encode(&record)?;
        self.write(|txn, freed| {
            require_bucket(&txn.open_table(BUCKETS)?, bucket)?;
            let mut objects = txn.open_table(OBJECTS)?;
            let mut refs = txn.open_table(BLOB_REFS)?;
            let mut new_blobs = BTreeSet::new();
            for extent in &record.extents {
                if !new_blobs.insert(extent.blob.as_str()) {
                    return Err(StoreError::BlobInUse);
                }
                self.check_fresh_blob(&refs, &extent.blob)?;
            }
            for blob in &new_blobs {
                refs.insert(*blob, ())?;
            }
            let old = objects
                .insert(object_key(bucket, key).as_slice(), value.as_slice())?
                .map(|v| decode::<ObjectRecord>(v.value()))
                .transpose()?;
            if let Some(old) = old {
                free_extents(&mut refs, &old, &new_blobs, freed)?;
            }
            Ok(())
        })
    }

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

    /// Replaces an object's envelope, only if the object still has the
    /// envelope `expected` (a concurrent overwrite wins). The body is not
    /// touched: this is how data keys are re-wrapped under a new key.
    /// Returns whether the envelope was replaced.
    pub fn replace_envelope(
        &self,
        bucket: &str,
        key: &str,
        expected: &[u8],
        envelope: Vec<u8>,
    ) -> Result<bool, StoreError> {
        self.write(|txn, _| {
            let mut objects = txn.open_table(OBJECTS)?;
            let table_key = object_key(bucket, key);
            let current = match objects.get(table_key.as_slice())? {
                Some(v) => decode::<ObjectRecord>(v.value())?,
                None => return Ok(false),
            };
            if current.envelope.as_deref() != Some(expected) {
                return Ok(false);
            }
            let record = ObjectRecord {
                envelope: Some(envelope),
                ..current
            };
            objects.insert(table_key.as_slice(), encode(&record)?.as_slice())?;
            Ok(true)
        })
    }

    /// Overwrites an existing object's record exactly as given, without
    /// checking it or touching blob references. Only for offline tools with
    /// the server stopped (`coffer inspect tamper`, which plays an attacker
    /// who edits the metadata database in tests); never call it from a server.
    pub fn overwrite_object_record_unchecked(
        &self,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
    ) -> Result<(), StoreError> {
        let value = encode(record)?;
        self.write(|txn, _| {
            let mut objects = txn.open_table(OBJECTS)?;
            let table_key = object_key(bucket, key);
            if objects.get(table_key.as_slice())?.is_none() {
                return Err(StoreError::NoSuchKey);
            }
            objects.insert(table_key.as_slice(), value.as_slice())?;
            Ok(())
        })
    }

    /// Returns whether an object was deleted; an absent key is not an error.
    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<bool, StoreError> {
        self.write(|txn, freed| {
            require_bucket(&txn.open_table(BUCKETS)?, bucket)?;
            let mut objects = txn.open_table(OBJECTS)?;
            let old = objects
                .remove(object_key(bucket, key).as_slice())?
                .map(|v| decode::<ObjectRecord>(v.value()))
                .transpose()?;
            match old {
                Some(old) => {
                    let mut refs = txn.open_table(BLOB_REFS)?;
                    free_extents(&mut refs, &old, &BTreeSet::new(), freed)?;
                    Ok(true)
                }
                None => Ok(false),
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
        let mut page = ListPage {
            is_truncated,
            ..ListPage::default()
        };
        for entry in entries {
            match entry {
                Entry::Item(key, record) => {
                    page.next_marker = Some(key.clone());
                    page.objects.push((key, record));
                }
                Entry::CommonPrefix(cp) => {
                    page.next_marker = Some(cp.clone());
                    page.common_prefixes.push(cp);
                }
            }
        }
        if !is_truncated {
            page.next_marker = None;
        }
        Ok(page)
    }

    // ---- Multipart ----

    /// Starts an upload; returns its id (32 upper-case hex characters).
    pub fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        mut upload: UploadRecord,
    ) -> Result<String, StoreError> {
        check_key(key)?;
        self.write(|txn, _| {
            require_bucket(&txn.open_table(BUCKETS)?, bucket)?;
            let mut uploads = txn.open_table(UPLOADS)?;
            let (id, table_key) = loop {
                let id = random_hex()?.to_ascii_uppercase();
                let table_key = upload_key(bucket, key, &id);
                if uploads.get(table_key.as_slice())?.is_none() {
                    break (id, table_key);
                }
            };
            upload.upload_id = id.clone();
            upload.key = key.to_owned();
            uploads.insert(table_key.as_slice(), encode(&upload)?.as_slice())?;
            Ok(id)
        })
    }

    pub fn upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadRecord, StoreError> {
        let txn = self.inner.db.begin_read()?;
        get_upload(&txn.open_table(UPLOADS)?, bucket, key, upload_id)
    }

    /// Adds or replaces a part; a replaced part's blob is freed. The part's blob must be
    /// finished and unreferenced.
    pub fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: PartRecord,
    ) -> Result<(), StoreError> {
        let value = encode(&part)?;
        self.write(|txn, freed| {
            get_upload(&txn.open_table(UPLOADS)?, bucket, key, upload_id)?;
            let mut parts = txn.open_table(PARTS)?;
            let mut refs = txn.open_table(BLOB_REFS)?;
            self.check_fresh_blob(&refs, &part.blob)?;
            refs.insert(part.blob.as_str(), ())?;
            let old = parts
                .insert(
                    part_key(upload_id, part.part_number).as_slice(),
                    value.as_slice(),
                )?
                .map(|v| decode::<PartRecord>(v.value()))
                .transpose()?;
            if let Some(old) = old
                && old.blob != part.blob
            {
                refs.remove(old.blob.as_str())?;
                freed.push(old.blob);
            }
            Ok(())
        })
    }

    /// Parts with numbers above `part_number_marker`, ascending, at most `max_parts`; and
    /// whether more follow.
    pub fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number_marker: u32,
        max_parts: usize,
    ) -> Result<(Vec<PartRecord>, bool), StoreError> {
        let txn = self.inner.db.begin_read()?;
        get_upload(&txn.open_table(UPLOADS)?, bucket, key, upload_id)?;
        let parts = txn.open_table(PARTS)?;
        let lo = part_key(upload_id, part_number_marker);
        let hi = part_key(upload_id, u32::MAX);
        let mut out = Vec::new();
        for entry in parts.range::<&[u8]>((
            Bound::Excluded(lo.as_slice()),
            Bound::Included(hi.as_slice()),
        ))? {
            if out.len() == max_parts {
                return Ok((out, max_parts > 0));
            }
            let (_, v) = entry?;
            out.push(decode(v.value())?);
        }
        Ok((out, false))
    }

    /// One page of in-progress uploads, in (key, upload id) order.
    pub fn list_uploads(
        &self,
        bucket: &str,
        q: &UploadListQuery,
    ) -> Result<UploadListPage, StoreError> {
        let txn = self.inner.db.begin_read()?;
        require_bucket(&txn.open_table(BUCKETS)?, bucket)?;
        let uploads = txn.open_table(UPLOADS)?;
        let encoded_prefix = upload_prefix(bucket, &q.prefix);
        let mut start = Bound::Included(encoded_prefix.clone());
        if let Some(km) = &q.key_marker {
            let after = match &q.upload_id_marker {
                Some(id) => Bound::Excluded(upload_key(bucket, km, id)),
                None => Bound::Included(after_key_uploads(bucket, km)),
            };
            start = max_lower(start, after);
        }
        let Some(end) = prefix_successor(&encoded_prefix) else {
            return Err(StoreError::Corrupt("no end to the key range".into()));
        };
        let (entries, is_truncated) = walk(
            &uploads,
            Walk {
                start,
                end,
                prefix: &q.prefix,
                delimiter: q.delimiter.as_deref(),
                skip_prefix: q.key_marker.as_deref(),
                max: q.max_uploads,
                decode: |_: &[u8], v: &[u8]| {
                    let upload: UploadRecord = decode(v)?;
                    Ok((upload.key.clone(), upload))
                },
                encode_prefix: |cp: &str| upload_prefix(bucket, cp),
            },
        )?;
        let mut page = UploadListPage {
            is_truncated,
            ..UploadListPage::default()
        };
        for entry in entries {
            match entry {
                Entry::Item(key, upload) => {
                    page.next_key_marker = Some(key);
                    page.next_upload_id_marker = Some(upload.upload_id.clone());
                    page.uploads.push(upload);
                }
                Entry::CommonPrefix(cp) => {
                    page.next_key_marker = Some(cp.clone());
                    page.next_upload_id_marker = None;
                    page.common_prefixes.push(cp);
                }
            }
        }
        if !is_truncated {
            page.next_key_marker = None;
            page.next_upload_id_marker = None;
        }
        Ok(page)
    }

    /// Removes the upload and its parts; frees the part blobs.
    pub fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<(), StoreError> {
        self.write(|txn, freed| {
            let mut uploads = txn.open_table(UPLOADS)?;
            get_upload(&uploads, bucket, key, upload_id)?;
            uploads.remove(upload_key(bucket, key, upload_id).as_slice())?;
            let mut parts = txn.open_table(PARTS)?;
            let mut refs = txn.open_table(BLOB_REFS)?;
            for part in take_parts(&mut parts, upload_id)?.into_values() {
                refs.remove(part.blob.as_str())?;
                freed.push(part.blob);
            }
            Ok(())
        })
    }

    /// Turns the upload into the object `record`, in one transaction. Every extent must be the
    /// blob of a current part of this upload (`InvalidPart` otherwise, also when an extent
    /// names a part number that does not match). Blobs of parts left out and of the previous
    /// object version are freed.
    pub fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        record: ObjectRecord,
    ) -> Result<(), StoreError> {
        let value = encode(&record)?;
        self.write(|txn, freed| {
            let mut uploads = txn.open_table(UPLOADS)?;
            get_upload(&uploads, bucket, key, upload_id)?;
            let mut parts = txn.open_table(PARTS)?;
            let current = take_parts(&mut parts, upload_id)?;
            let by_blob: BTreeMap<&str, u32> = current
                .values()
                .map(|p| (p.blob.as_str(), p.part_number))
                .collect();
            let mut used = BTreeSet::new();
            for extent in &record.extents {
                let Some(&number) = by_blob.get(extent.blob.as_str()) else {
                    return Err(StoreError::InvalidPart);
                };
                if extent.part_number.is_some_and(|n| n != number)
                    || !used.insert(extent.blob.as_str())
                {
                    return Err(StoreError::InvalidPart);
                }
            }
            uploads.remove(upload_key(bucket, key, upload_id).as_slice())?;
            let mut refs = txn.open_table(BLOB_REFS)?;
            for part in current.values() {
                if !used.contains(part.blob.as_str()) {
                    refs.remove(part.blob.as_str())?;
                    freed.push(part.blob.clone());
                }
            }
            let mut objects = txn.open_table(OBJECTS)?;
            let old = objects
                .insert(object_key(bucket, key).as_slice(), value.as_slice())?
                .map(|v| decode::<ObjectRecord>(v.value()))
                .transpose()?;
            if let Some(old) = old {
                free_extents(&mut refs, &old, &used, freed)?;
            }
            Ok(())
        })
    }

    // ---- Users ----

    /// Adds a user; `UserExists` if the name or the access key is taken.
    pub fn put_user(&self, user: UserRecord) -> Result<(), StoreError> {
        let value = encode(&user)?;
        self.write(|txn, _| {
            let mut users = txn.open_table(USERS)?;
            let mut access_keys = txn.open_table(ACCESS_KEYS)?;
            if users.get(user.name.as_str())?.is_some()
                || access_keys.get(user.access_key.as_str())?.is_some()
            {
                return Err(StoreError::UserExists);
            }
            users.insert(user.name.as_str(), value.as_slice())?;
            access_keys.insert(user.access_key.as_str(), user.name.as_str())?;
            Ok(())
        })
    }

    pub fn user_by_access_key(&self, access_key: &str) -> Result<Option<UserRecord>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let access_keys = txn.open_table(ACCESS_KEYS)?;
        let Some(name) = access_keys.get(access_key)? else {
            return Ok(None);
        };
        let users = txn.open_table(USERS)?;
        let user = users.get(name.value())?;
        user.map(|v| decode(v.value())).transpose()
    }

    /// All users, sorted by name.
    pub fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let users = txn.open_table(USERS)?;
        let mut out = Vec::new();
        for entry in users.iter()? {
            let (_, v) = entry?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    /// Returns whether a user was deleted.
    pub fn delete_user(&self, name: &str) -> Result<bool, StoreError> {
        self.write(|txn, _| {
            let mut users = txn.open_table(USERS)?;
            let old = users
                .remove(name)?
                .map(|v| decode::<UserRecord>(v.value()))
                .transpose()?;
            let Some(old) = old else {
                return Ok(false);
            };
            let mut access_keys = txn.open_table(ACCESS_KEYS)?;
            access_keys.remove(old.access_key.as_str())?;
            Ok(true)
        })
    }
}

fn check_bucket_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.contains('\0') {
        return Err(StoreError::InvalidArgument(
            "bucket name must be non-empty and without NUL".into(),
        ));
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(StoreError::InvalidArgument(format!(
            "object key must be 1 to {MAX_KEY_LEN} bytes"
        )));
    }
    Ok(())
}

/// Upload ids are ours: 32 upper-case hex characters. Anything else names no upload.
fn is_valid_upload_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
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

fn has_prefix(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    prefix: &[u8],
) -> Result<bool, StoreError> {
    let mut range = table.range::<&[u8]>(prefix..)?;
    match range.next() {
        Some(entry) => Ok(entry?.0.value().starts_with(prefix)),
        None => Ok(false),
    }
}

fn get_upload(
    uploads: &impl ReadableTable<&'static [u8], &'static [u8]>,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<UploadRecord, StoreError> {
    if !is_valid_upload_id(upload_id) {
        return Err(StoreError::NoSuchUpload);
    }
    match uploads.get(upload_key(bucket, key, upload_id).as_slice())? {
        Some(v) => decode(v.value()),
        None => Err(StoreError::NoSuchUpload),
    }
}

/// Removes and returns every part of the upload, by part number.
fn take_parts(
    parts: &mut Table<'_, &'static [u8], &'static [u8]>,
    upload_id: &str,
) -> Result<BTreeMap<u32, PartRecord>, StoreError> {
    let lo = part_key(upload_id, 0);
    let hi = part_key(upload_id, u32::MAX);
    let mut out = BTreeMap::new();
    let mut keys = Vec::new();
    for entry in parts.range::<&[u8]>(lo.as_slice()..=hi.as_slice())? {
        let (k, v) = entry?;
        let part: PartRecord = decode(v.value())?;
        keys.push(k.value().to_vec());
        out.insert(part.part_number, part);
    }
    for k in keys {
        parts.remove(k.as_slice())?;
    }
    Ok(out)
}

/// Unreferences the blobs of `old` that are not in `keep`, queueing their files for deletion.
fn free_extents(
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
