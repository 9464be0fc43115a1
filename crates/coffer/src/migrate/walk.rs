//! A bucket's keys in listing order, each with all its versions (newest first), read page by
//! page through `MetadataStore::list_versions`.

use std::collections::VecDeque;

use coffer_store::{ListedVersion, MetadataStore, Version, VersionListQuery};

/// Versions per listing page.
const PAGE: usize = 1000;

/// One key's versions, newest first.
pub struct KeyVersions {
    pub key: String,
    pub versions: Vec<Version>,
}

/// Walks one bucket's keys.
pub struct KeyWalk<'a> {
    meta: &'a dyn MetadataStore,
    bucket: String,
    buffered: VecDeque<ListedVersion>,
    /// Where the next page starts; `None` once the listing is exhausted.
    next: Option<(Option<String>, Option<String>)>,
}

impl<'a> KeyWalk<'a> {
    pub fn new(meta: &'a dyn MetadataStore, bucket: &str) -> Self {
        Self {
            meta,
            bucket: bucket.to_owned(),
            buffered: VecDeque::new(),
            next: Some((None, None)),
        }
    }

    /// Refills the buffer when it is empty; returns whether it holds a version.
    async fn fill(&mut self) -> Result<bool, String> {
        while self.buffered.is_empty() {
            let Some((key_marker, version_id_marker)) = self.next.take() else {
                return Ok(false);
            };
            let query = VersionListQuery {
                key_marker,
                version_id_marker,
                max_keys: PAGE,
                ..Default::default()
            };
            let page = self
                .meta
                .list_versions(&self.bucket, &query)
                .await
                .map_err(|e| format!("listing the versions of bucket {}: {e}", self.bucket))?;
            if page.is_truncated {
                self.next = Some((page.next_key_marker, page.next_version_id_marker));
            }
            self.buffered.extend(page.versions);
        }
        Ok(true)
    }

    /// The next key and every version of it.
    pub async fn next_key(&mut self) -> Result<Option<KeyVersions>, String> {
        if !self.fill().await? {
            return Ok(None);
        }
        let first = self
            .buffered
            .pop_front()
            .expect("fill left a version buffered");
        let key = first.key;
        let mut versions = vec![first.version];
        while self.fill().await? {
            match self.buffered.front() {
                Some(next) if next.key == key => {
                    let next = self
                        .buffered
                        .pop_front()
                        .expect("a version is at the front");
                    versions.push(next.version);
                }
                _ => break,
            }
        }
        Ok(Some(KeyVersions { key, versions }))
    }
}
