//! Multipart uploads: create, parts, listings, abort, and the one-transaction completion.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use redb::{ReadableDatabase, ReadableTable, Table};

use super::objects::check_condition;
use super::versions::{KeyVersions, bucket_versioning};
use super::{BLOB_REFS, BUCKETS, OBJECTS, PARTS, PENDING_BLOBS, Store, UPLOADS, require_bucket};
use crate::keys::{after_key_uploads, part_key, prefix_successor, upload_key, upload_prefix};
use crate::list::{Walk, max_lower, walk};
use crate::records::{decode, encode};
use crate::rules::random_hex;
use crate::rules::{check_key, is_valid_upload_id, upload_list_page};
use crate::{
    BlobId, Condition, ObjectRecord, PartRecord, StoreError, UploadListPage, UploadListQuery,
    UploadRecord, Written,
};

impl Store {
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

    /// The upload `upload_id` of `key` in `bucket`, or `NoSuchUpload`.
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
    /// finished and unreferenced; its pending row is cleared by the same commit.
    pub fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: PartRecord,
    ) -> Result<(), StoreError> {
        let value = encode(&part)?;
        let blob = part.blob.clone();
        self.with_held_bodies([&blob], |held| {
            let (store, bucket, key, upload_id) = (
                self.clone(),
                bucket.to_owned(),
                key.to_owned(),
                upload_id.to_owned(),
            );
            self.write_grouped(move |txn, freed| {
                let (bucket, key, upload_id) = (bucket.as_str(), key.as_str(), upload_id.as_str());
                get_upload(&txn.open_table(UPLOADS)?, bucket, key, upload_id)?;
                let mut parts = txn.open_table(PARTS)?;
                let mut refs = txn.open_table(BLOB_REFS)?;
                let mut pending = txn.open_table(PENDING_BLOBS)?;
                store.take_fresh_blob(txn, &mut refs, &mut pending, &held, &part.blob)?;
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
        Ok(upload_list_page(entries, is_truncated))
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
        condition: &Condition,
    ) -> Result<Written, StoreError> {
        let blobs: Vec<BlobId> = record.extents.iter().map(|e| e.blob.clone()).collect();
        self.write(|txn, freed| {
            let versioning = bucket_versioning(txn, bucket)?;
            let mut uploads = txn.open_table(UPLOADS)?;
            get_upload(&uploads, bucket, key, upload_id)?;
            check_condition(&txn.open_table(OBJECTS)?, bucket, key, condition)?;
            let mut parts = txn.open_table(PARTS)?;
            let current = take_parts(&mut parts, upload_id)?;
            let by_blob: BTreeMap<&str, u32> = current
                .values()
                .map(|p| (p.blob.as_str(), p.part_number))
                .collect();
            let mut used = BTreeSet::new();
            for (extent, blob) in record.extents.iter().zip(&blobs) {
                let Some(&number) = by_blob.get(blob.as_str()) else {
                    return Err(StoreError::InvalidPart);
                };
                if extent.part_number.is_some_and(|n| n != number) || !used.insert(blob.as_str()) {
                    return Err(StoreError::InvalidPart);
                }
            }
            uploads.remove(upload_key(bucket, key, upload_id).as_slice())?;
            let mut versions = KeyVersions::open(txn, bucket, key)?;
            for part in current.values() {
                if !used.contains(part.blob.as_str()) {
                    versions.refs.remove(part.blob.as_str())?;
                    freed.push(part.blob.clone());
                }
            }
            let version_id = versions.install(versioning, record, &used, freed)?;
            Ok(Written { version_id })
        })
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
