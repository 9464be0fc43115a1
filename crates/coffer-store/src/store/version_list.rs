//! ListObjectVersions: the `objects` and `versions` tables walked together, key by key, each
//! key's versions newest first (the current object, then its `versions` entries).

use std::iter::Peekable;

use redb::ReadableDatabase;

use super::{BUCKETS, OBJECTS, Store, VERSIONS, require_bucket};
use crate::keys::{bucket_prefix, object_key, prefix_successor, split_version_key, upload_prefix};
use crate::records::decode;
use crate::rules::VersionPage;
use crate::{StoreError, Version, VersionListPage, VersionListQuery};

impl Store {
    /// One page of a ListObjectVersions listing: versions by key, newest first within a key,
    /// with prefix, delimiter roll-up and (key, version id) markers. `NoSuchBucket`.
    ///
    /// Keys under a common prefix are skipped by seeking past them, so a listing costs the
    /// same however many keys a common prefix holds.
    pub fn list_versions(
        &self,
        bucket: &str,
        q: &VersionListQuery,
    ) -> Result<VersionListPage, StoreError> {
        let txn = self.inner.db.begin_read()?;
        require_bucket(&txn.open_table(BUCKETS)?, bucket)?;
        if q.max_keys == 0 {
            return Ok(VersionListPage::default());
        }
        let start = match &q.key_marker {
            Some(marker) if marker.as_str() > q.prefix.as_str() => marker.as_str(),
            _ => q.prefix.as_str(),
        };
        let table_prefix = bucket_prefix(bucket).len();
        let objects_table = txn.open_table(OBJECTS)?;
        let versions_table = txn.open_table(VERSIONS)?;
        let objects_end = successor(&object_key(bucket, &q.prefix))?;
        let versions_end = successor(&upload_prefix(bucket, &q.prefix))?;
        // The two tables from a table key on (never past their end: redb ranges run forward).
        let objects_from = |from: &[u8]| -> Result<_, StoreError> {
            let from = from.min(objects_end.as_slice());
            Ok(objects_table
                .range::<&[u8]>(from..objects_end.as_slice())?
                .map(move |entry| -> Result<(String, Version), StoreError> {
                    let (k, v) = entry?;
                    let key = k
                        .value()
                        .get(table_prefix..)
                        .and_then(|k| std::str::from_utf8(k).ok())
                        .ok_or_else(|| StoreError::Corrupt("object key is not UTF-8".into()))?;
                    Ok((key.to_owned(), Version::Object(decode(v.value())?)))
                })
                .peekable())
        };
        let versions_from = |from: &[u8]| -> Result<_, StoreError> {
            let from = from.min(versions_end.as_slice());
            Ok(versions_table
                .range::<&[u8]>(from..versions_end.as_slice())?
                .map(move |entry| -> Result<(String, Version), StoreError> {
                    let (k, v) = entry?;
                    let (key, _) = k
                        .value()
                        .get(table_prefix..)
                        .and_then(split_version_key)
                        .ok_or_else(|| StoreError::Corrupt("bad version key".into()))?;
                    Ok((key, decode(v.value())?))
                })
                .peekable())
        };
        let mut objects = objects_from(&object_key(bucket, start))?;
        let mut versions = versions_from(&upload_prefix(bucket, start))?;

        let mut page = VersionPage::new(q);
        loop {
            let key = match (peek_key(&mut objects)?, peek_key(&mut versions)?) {
                (None, None) => break,
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (Some(a), Some(b)) => a.min(b),
            };
            if let Some(prefix) = page.rolled_up(&key).map(str::to_owned) {
                if !page.add_prefix(&prefix) {
                    break;
                }
                // Every key under the common prefix rolls up into it: seek past them all.
                objects = objects_from(&successor(&object_key(bucket, &prefix))?)?;
                versions = versions_from(&successor(&upload_prefix(bucket, &prefix))?)?;
                continue;
            }
            // The key's versions, newest first.
            let mut of_key = Vec::new();
            if peek_key(&mut objects)?.as_deref() == Some(key.as_str()) {
                of_key.extend(objects.next().transpose()?.map(|(_, v)| v));
            }
            while peek_key(&mut versions)?.as_deref() == Some(key.as_str()) {
                of_key.extend(versions.next().transpose()?.map(|(_, v)| v));
            }
            if !page.add_key(&key, of_key) {
                break;
            }
        }
        Ok(page.finish())
    }
}

fn successor(prefix: &[u8]) -> Result<Vec<u8>, StoreError> {
    prefix_successor(prefix).ok_or_else(|| StoreError::Corrupt("no end to the key range".into()))
}

/// The key of the next entry, without consuming it; an error entry is returned by `next`.
fn peek_key<I>(iter: &mut Peekable<I>) -> Result<Option<String>, StoreError>
where
    I: Iterator<Item = Result<(String, Version), StoreError>>,
{
    match iter.peek() {
        None => Ok(None),
        Some(Ok((key, _))) => Ok(Some(key.clone())),
        Some(Err(_)) => match iter.next() {
            Some(Err(e)) => Err(e),
            _ => Ok(None),
        },
    }
}
