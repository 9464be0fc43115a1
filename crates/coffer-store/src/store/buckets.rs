//! Buckets: create, read, list, delete-if-empty, update.

use redb::{ReadableDatabase, ReadableTable};

use super::{BUCKETS, OBJECTS, Store, UPLOADS, VERSIONS};
use crate::keys::bucket_prefix;
use crate::records::{decode, encode};
use crate::rules::check_bucket_name;
use crate::{BucketRecord, StoreError};

impl Store {
    // ---- Buckets ----

    /// Creates `bucket` in one transaction; `BucketExists` (naming the current owner) if the
    /// name is taken, `InvalidArgument` if the store cannot hold the name.
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

    /// The bucket named `name`, or `NoSuchBucket`.
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

    /// Fails with `BucketNotEmpty` while the bucket holds objects, versions (delete markers
    /// included) or in-progress uploads.
    pub fn delete_bucket(&self, name: &str) -> Result<(), StoreError> {
        self.write(|txn, _| {
            let mut buckets = txn.open_table(BUCKETS)?;
            if buckets.get(name)?.is_none() {
                return Err(StoreError::NoSuchBucket);
            }
            let objects = txn.open_table(OBJECTS)?;
            let uploads = txn.open_table(UPLOADS)?;
            let versions = txn.open_table(VERSIONS)?;
            if has_prefix(&objects, &bucket_prefix(name))?
                || has_prefix(&uploads, &bucket_prefix(name))?
                || has_prefix(&versions, &bucket_prefix(name))?
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

    /// Sets (`Some`) or removes (`None`) one configuration document of a bucket, in one
    /// transaction: concurrent changes to other documents are kept.
    pub fn set_bucket_config(
        &self,
        bucket: &str,
        name: &str,
        value: Option<String>,
    ) -> Result<(), StoreError> {
        self.write(|txn, _| {
            let mut buckets = txn.open_table(BUCKETS)?;
            let mut record: BucketRecord = match buckets.get(bucket)? {
                Some(v) => decode(v.value())?,
                None => return Err(StoreError::NoSuchBucket),
            };
            match value {
                Some(value) => record.config.insert(name.to_owned(), value),
                None => record.config.remove(name),
            };
            buckets.insert(bucket, encode(&record)?.as_slice())?;
            Ok(())
        })
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
