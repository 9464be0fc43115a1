//! ListObjectVersions: the `objects` and `versions` tables walked together, key by key, each
//! key's versions newest first (the current object, then its `versions` entries).

use std::iter::Peekable;

use redb::ReadableDatabase;

use super::{BUCKETS, OBJECTS, Store, VERSIONS, require_bucket};
use crate::keys::{bucket_prefix, object_key, prefix_successor, split_version_key, upload_prefix};
use crate::list::common_prefix;
use crate::records::decode;
use crate::{ListedVersion, StoreError, Version, VersionListPage, VersionListQuery};

impl Store {
    /// One page of a ListObjectVersions listing: versions by key, newest first within a key,
    /// with prefix, delimiter roll-up and (key, version id) markers. `NoSuchBucket`.
    ///
    /// Keys under a common prefix are skipped by walking them, not by seeking.
    pub fn list_versions(
        &self,
        bucket: &str,
        q: &VersionListQuery,
    ) -> Result<VersionListPage, StoreError> {
        let txn = self.inner.db.begin_read()?;
        require_bucket(&txn.open_table(BUCKETS)?, bucket)?;
        let mut page = VersionListPage::default();
        if q.max_keys == 0 {
            return Ok(page);
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
        let mut objects = objects_table
            .range::<&[u8]>(object_key(bucket, start).as_slice()..objects_end.as_slice())?
            .map(|entry| -> Result<(String, Version), StoreError> {
                let (k, v) = entry?;
                let key = k
                    .value()
                    .get(table_prefix..)
                    .and_then(|k| std::str::from_utf8(k).ok())
                    .ok_or_else(|| StoreError::Corrupt("object key is not UTF-8".into()))?;
                Ok((key.to_owned(), Version::Object(decode(v.value())?)))
            })
            .peekable();
        let mut versions = versions_table
            .range::<&[u8]>(upload_prefix(bucket, start).as_slice()..versions_end.as_slice())?
            .map(|entry| -> Result<(String, Version), StoreError> {
                let (k, v) = entry?;
                let (key, _) = k
                    .value()
                    .get(table_prefix..)
                    .and_then(split_version_key)
                    .ok_or_else(|| StoreError::Corrupt("bad version key".into()))?;
                Ok((key, decode(v.value())?))
            })
            .peekable();

        let delimiter = q.delimiter.as_deref().filter(|d| !d.is_empty());
        let mut count = 0;
        let mut last_prefix: Option<String> = None;
        loop {
            let key = match (peek_key(&mut objects)?, peek_key(&mut versions)?) {
                (None, None) => break,
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (Some(a), Some(b)) => a.min(b),
            };
            // The key's versions, newest first.
            let mut of_key = Vec::new();
            if peek_key(&mut objects)?.as_deref() == Some(key.as_str()) {
                of_key.extend(objects.next().transpose()?.map(|(_, v)| v));
            }
            while peek_key(&mut versions)?.as_deref() == Some(key.as_str()) {
                of_key.extend(versions.next().transpose()?.map(|(_, v)| v));
            }
            let mut skip = 0;
            if q.key_marker.as_deref() == Some(key.as_str()) {
                skip = of_key.len();
                if let Some(marker) = q.version_id_marker.as_deref() {
                    let marker = (marker != "null").then_some(marker);
                    if let Some(at) = of_key.iter().position(|v| v.version_id() == marker) {
                        skip = at + 1;
                    }
                }
            }
            if let Some(cp) = delimiter.and_then(|d| common_prefix(&key, &q.prefix, d)) {
                if last_prefix.as_deref() == Some(cp) || q.key_marker.as_deref() == Some(cp) {
                    continue;
                }
                if count == q.max_keys {
                    page.is_truncated = true;
                    break;
                }
                count += 1;
                page.next_key_marker = Some(cp.to_owned());
                page.next_version_id_marker = None;
                page.common_prefixes.push(cp.to_owned());
                last_prefix = Some(cp.to_owned());
                continue;
            }
            for (i, version) in of_key.into_iter().enumerate().skip(skip) {
                if count == q.max_keys {
                    page.is_truncated = true;
                    break;
                }
                count += 1;
                page.next_key_marker = Some(key.clone());
                page.next_version_id_marker =
                    Some(version.version_id().unwrap_or("null").to_owned());
                page.versions.push(ListedVersion {
                    key: key.clone(),
                    version,
                    is_latest: i == 0,
                });
            }
            if page.is_truncated {
                break;
            }
        }
        if !page.is_truncated {
            page.next_key_marker = None;
            page.next_version_id_marker = None;
        }
        Ok(page)
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
