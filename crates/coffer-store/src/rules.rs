//! The rules every metadata backend applies the same way — ids, names, key ranges, listing
//! roll-up, object lock — written once here so that the embedded store and any other backend
//! (coffer-meta-pg) cannot drift apart. Pure functions: no I/O but the random source.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{
    ListPage, ListedVersion, MAX_KEY_LEN, ObjectRecord, Retention, RetentionMode, StoreError,
    UploadListPage, UploadRecord, Version, VersionChange, VersionListPage, VersionListQuery,
    Versioning,
};

/// 128 random bits as 32 lower-case hex characters: blob ids, and (upper-cased) upload ids.
pub fn random_hex() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| std::io::Error::other(format!("random source failed: {e}")))?;
    Ok(hex::encode(bytes))
}

/// A fresh blob id: what every `BlobStore` names a new blob (a backend other than the embedded
/// one must name blobs exactly as it does).
pub fn new_blob_id() -> Result<crate::BlobId, StoreError> {
    random_hex()
}

/// Blob ids are 32 lower-case hex characters (what every `BlobStore` hands out).
pub fn is_valid_blob_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Upload ids are the store's: 32 upper-case hex characters. Anything else names no upload.
pub fn is_valid_upload_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

/// An object key the store holds: 1 to [`MAX_KEY_LEN`] bytes (`InvalidArgument` otherwise).
pub fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(StoreError::InvalidArgument(format!(
            "object key must be 1 to {MAX_KEY_LEN} bytes"
        )));
    }
    Ok(())
}

/// A bucket name the store holds: non-empty, without NUL (`InvalidArgument` otherwise).
pub fn check_bucket_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.contains('\0') {
        return Err(StoreError::InvalidArgument(
            "bucket name must be non-empty and without NUL".into(),
        ));
    }
    Ok(())
}

/// Milliseconds since the Unix epoch (negative before it), saturating.
pub fn epoch_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < 0xFF {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

/// The smallest common prefix `key` rolls up into: the prefix up to and including the first
/// delimiter after `prefix`.
pub fn common_prefix<'k>(key: &'k str, prefix: &str, delimiter: &str) -> Option<&'k str> {
    if delimiter.is_empty() {
        return None;
    }
    let rest = key.strip_prefix(prefix)?;
    let at = rest.find(delimiter)?;
    key.get(..prefix.len() + at + delimiter.len())
}

/// One entry of a listing page, in key order: an item under its key, or a common prefix.
pub enum ListEntry<T> {
    /// An object (or upload) under its key.
    Item(String, T),
    /// A common prefix the delimiter rolled keys up into.
    CommonPrefix(String),
}

/// The ListObjects page of a walk's entries: the objects and common prefixes in order, and
/// the last one as the next marker when `is_truncated`.
pub fn list_page(entries: Vec<ListEntry<ObjectRecord>>, is_truncated: bool) -> ListPage {
    let mut page = ListPage {
        is_truncated,
        ..ListPage::default()
    };
    for entry in entries {
        match entry {
            ListEntry::Item(key, record) => {
                page.next_marker = Some(key.clone());
                page.objects.push((key, record));
            }
            ListEntry::CommonPrefix(prefix) => {
                page.next_marker = Some(prefix.clone());
                page.common_prefixes.push(prefix);
            }
        }
    }
    if !is_truncated {
        page.next_marker = None;
    }
    page
}

/// The ListMultipartUploads page of a walk's entries: the uploads and common prefixes in
/// order, and the last one's key (and upload id) as the next markers when `is_truncated`.
pub fn upload_list_page(
    entries: Vec<ListEntry<UploadRecord>>,
    is_truncated: bool,
) -> UploadListPage {
    let mut page = UploadListPage {
        is_truncated,
        ..UploadListPage::default()
    };
    for entry in entries {
        match entry {
            ListEntry::Item(key, upload) => {
                page.next_key_marker = Some(key);
                page.next_upload_id_marker = Some(upload.upload_id.clone());
                page.uploads.push(upload);
            }
            ListEntry::CommonPrefix(prefix) => {
                page.next_key_marker = Some(prefix.clone());
                page.next_upload_id_marker = None;
                page.common_prefixes.push(prefix);
            }
        }
    }
    if !is_truncated {
        page.next_key_marker = None;
        page.next_upload_id_marker = None;
    }
    page
}

/// The id of the version given sequence number `seq`: `seq` as 16 hex digits, then 64
/// random bits. Ids sort by age, and a lookup by id needs no index (`seq_of`).
pub fn version_id(seq: u64) -> Result<String, StoreError> {
    let random = random_hex()?;
    Ok(format!("{seq:016x}{}", &random[..16]))
}

/// The sequence number a version id starts with; `None` for a string that is not one of ours.
pub fn seq_of(version_id: &str) -> Option<u64> {
    if version_id.len() != 32 || !version_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(version_id.get(..16)?, 16).ok()
}

/// Where the versions of one imported key go (`MetadataStore::import_key_versions`, the
/// migration entry point): the current object, and every other version at its sequence
/// number, newest first.
#[derive(Debug, PartialEq)]
pub struct ImportPlan {
    /// The newest version, when it is an object: the key's `objects` entry.
    pub current: Option<ObjectRecord>,
    /// Every other version with its sequence number, newest (highest) first.
    pub history: Vec<(u64, Version)>,
    /// The highest sequence number the key's versions use (0 if none): the store's version
    /// sequence must be at least this, so that later versions are newer.
    pub max_seq: u64,
}

impl ImportPlan {
    /// Every blob the planned versions reference; `BlobInUse` when two extents name one blob
    /// (each blob belongs to one record).
    pub fn blobs(&self) -> Result<std::collections::BTreeSet<crate::BlobId>, StoreError> {
        let objects = self
            .current
            .iter()
            .chain(self.history.iter().filter_map(|(_, v)| match v {
                Version::Object(record) => Some(record),
                Version::DeleteMarker(_) => None,
            }));
        let mut blobs = std::collections::BTreeSet::new();
        for extent in objects.flat_map(|record| &record.extents) {
            if !blobs.insert(extent.blob.clone()) {
                return Err(StoreError::BlobInUse);
            }
        }
        Ok(blobs)
    }

    /// The blobs of `removed` records (the versions an import replaced).
    pub fn blobs_of(removed: &[ObjectRecord]) -> std::collections::BTreeSet<crate::BlobId> {
        removed
            .iter()
            .flat_map(|r| r.extents.iter().map(|e| e.blob.clone()))
            .collect()
    }
}

/// Plans the import of a key's complete version list (`versions`, newest first, exactly as
/// another store listed them) into a bucket with `versioning`. A version with an id sits at
/// the sequence number its id starts with; a null version in the history gets the number just
/// above the next older version's (the store that listed it had one between its neighbours).
/// `InvalidArgument` for an id that is not one of ours, versions not strictly newest first,
/// an id twice, two null versions, or versions an unversioned bucket cannot hold (anything
/// but one null object).
pub fn import_plan(
    versions: Vec<Version>,
    versioning: Versioning,
) -> Result<ImportPlan, StoreError> {
    let invalid = |why: &str| Err(StoreError::InvalidArgument(format!("import: {why}")));
    if versioning == Versioning::Unversioned
        && (versions.len() > 1
            || versions
                .first()
                .is_some_and(|v| v.version_id().is_some() || matches!(v, Version::DeleteMarker(_))))
    {
        return invalid("an unversioned bucket holds one null object per key");
    }
    if versions.iter().filter(|v| v.version_id().is_none()).count() > 1 {
        return invalid("two null versions of one key");
    }
    let ids: std::collections::BTreeSet<&str> =
        versions.iter().filter_map(Version::version_id).collect();
    if ids.len() != versions.iter().filter(|v| v.version_id().is_some()).count() {
        return invalid("one version id twice");
    }
    let mut iter = versions.into_iter();
    let (current, rest): (Option<ObjectRecord>, Vec<Version>) = match iter.next() {
        Some(Version::Object(record)) => (Some(record), iter.collect()),
        Some(marker) => (None, std::iter::once(marker).chain(iter).collect()),
        None => (None, Vec::new()),
    };
    // Oldest first: each number above the one before.
    let mut floor = 0u64;
    let mut history = Vec::with_capacity(rest.len());
    for version in rest.into_iter().rev() {
        let seq = match version.version_id() {
            Some(id) => match seq_of(id) {
                Some(seq) if seq > floor => seq,
                Some(_) => return invalid("versions are not newest first"),
                None => return invalid("a version id that is not one of ours"),
            },
            None => floor + 1,
        };
        floor = seq;
        history.push((seq, version));
    }
    // The current object is the newest by where it lives, whatever its number: a null
    // version leaving `objects` takes the next number, above the id of the version that
    // displaced it, so a history may hold a number above the current object's.
    let mut max_seq = floor;
    if let Some(id) = current.as_ref().and_then(|c| c.version_id.as_deref()) {
        match seq_of(id) {
            Some(seq) => max_seq = max_seq.max(seq),
            None => return invalid("a version id that is not one of ours"),
        }
    }
    history.reverse();
    Ok(ImportPlan {
        current,
        history,
        max_seq,
    })
}

/// Fails with `ObjectLocked` if a legal hold or a retention unexpired at `now_ms` protects
/// `record` (GOVERNANCE yields to `bypass_governance`).
pub fn check_removable(
    record: &ObjectRecord,
    bypass_governance: bool,
    now_ms: i64,
) -> Result<(), StoreError> {
    if record.legal_hold {
        return Err(StoreError::ObjectLocked);
    }
    match &record.retention {
        Some(r)
            if r.until_ms > now_ms
                && !(r.mode == RetentionMode::Governance && bypass_governance) =>
        {
            Err(StoreError::ObjectLocked)
        }
        _ => Ok(()),
    }
}

/// Applies `change` to `record` (one object version), checking a retention change with
/// [`check_retention_change`]: every backend's `update_version` calls this inside its
/// transaction.
pub fn apply_version_change(
    record: &mut ObjectRecord,
    change: VersionChange,
) -> Result<(), StoreError> {
    match change {
        VersionChange::Tags(tags) => record.tags = tags,
        VersionChange::LegalHold(on) => record.legal_hold = on,
        VersionChange::Acl(acl) => record.acl = acl,
        VersionChange::Retention {
            retention,
            bypass_governance,
            now_ms,
        } => {
            check_retention_change(
                record.retention.as_ref(),
                retention.as_ref(),
                bypass_governance,
                now_ms,
            )?;
            record.retention = retention;
        }
    }
    Ok(())
}

/// Whether a retention may go from `old` to `new` at `now_ms` (`ObjectLocked` if not): an
/// expired (or absent) retention may be changed freely; an active COMPLIANCE one only
/// extended; an active GOVERNANCE one extended or made COMPLIANCE, or anything with
/// `bypass_governance`.
pub fn check_retention_change(
    old: Option<&Retention>,
    new: Option<&Retention>,
    bypass_governance: bool,
    now_ms: i64,
) -> Result<(), StoreError> {
    let Some(old) = old.filter(|r| r.until_ms > now_ms) else {
        return Ok(());
    };
    let keeps_or_extends = new.is_some_and(|new| new.until_ms >= old.until_ms);
    let allowed = match old.mode {
        RetentionMode::Compliance => {
            keeps_or_extends && new.is_some_and(|n| n.mode == RetentionMode::Compliance)
        }
        RetentionMode::Governance => keeps_or_extends || bypass_governance,
    };
    if allowed {
        Ok(())
    } else {
        Err(StoreError::ObjectLocked)
    }
}

/// One ListObjectVersions page as it fills: every backend walks its keys in byte order and
/// hands each key's versions (newest first), or the common prefix it rolls up into, to this;
/// the markers, the roll-up, the count and the truncation are decided here, once.
pub struct VersionPage<'q> {
    query: &'q VersionListQuery,
    page: VersionListPage,
    count: usize,
    last_prefix: Option<String>,
}

impl<'q> VersionPage<'q> {
    /// An empty page for `query`.
    pub fn new(query: &'q VersionListQuery) -> Self {
        Self {
            query,
            page: VersionListPage::default(),
            count: 0,
            last_prefix: None,
        }
    }

    /// The common prefix `key` rolls up into under the query's delimiter, if any; the caller
    /// then skips every key under it (by seeking or walking).
    pub fn rolled_up<'k>(&self, key: &'k str) -> Option<&'k str> {
        let delimiter = self.query.delimiter.as_deref()?;
        common_prefix(key, &self.query.prefix, delimiter)
    }

    /// Adds a common prefix (once; not the one the key marker names). Returns `false` when the
    /// page was already full: it is then truncated, and the walk stops.
    pub fn add_prefix(&mut self, prefix: &str) -> bool {
        if self.last_prefix.as_deref() == Some(prefix)
            || self.query.key_marker.as_deref() == Some(prefix)
        {
            return true;
        }
        if !self.room() {
            return false;
        }
        self.page.next_key_marker = Some(prefix.to_owned());
        self.page.next_version_id_marker = None;
        self.page.common_prefixes.push(prefix.to_owned());
        self.last_prefix = Some(prefix.to_owned());
        true
    }

    /// Adds one key's versions, newest first, after the version-id marker when `key` is the
    /// key marker. Returns `false` when the page filled up before all were added: it is then
    /// truncated, and the walk stops.
    pub fn add_key(&mut self, key: &str, versions: Vec<Version>) -> bool {
        let mut skip = 0;
        if self.query.key_marker.as_deref() == Some(key) {
            skip = versions.len();
            if let Some(marker) = self.query.version_id_marker.as_deref() {
                let marker = (marker != "null").then_some(marker);
                if let Some(at) = versions.iter().position(|v| v.version_id() == marker) {
                    skip = at + 1;
                }
            }
        }
        for (i, version) in versions.into_iter().enumerate().skip(skip) {
            if !self.room() {
                return false;
            }
            self.page.next_key_marker = Some(key.to_owned());
            self.page.next_version_id_marker =
                Some(version.version_id().unwrap_or("null").to_owned());
            self.page.versions.push(ListedVersion {
                key: key.to_owned(),
                version,
                is_latest: i == 0,
            });
        }
        true
    }

    /// Counts one more entry if there is room; marks the page truncated if not.
    fn room(&mut self) -> bool {
        if self.count == self.query.max_keys {
            self.page.is_truncated = true;
            return false;
        }
        self.count += 1;
        true
    }

    /// The page; its next markers only when truncated.
    pub fn finish(mut self) -> VersionListPage {
        if !self.page.is_truncated {
            self.page.next_key_marker = None;
            self.page.next_version_id_marker = None;
        }
        self.page
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeleteMarker;

    fn object(id: Option<&str>) -> Version {
        Version::Object(ObjectRecord {
            version_id: id.map(str::to_owned),
            ..Default::default()
        })
    }

    fn marker(id: Option<&str>) -> Version {
        Version::DeleteMarker(DeleteMarker {
            version_id: id.map(str::to_owned),
            owner: "o".into(),
            last_modified_ms: 1,
        })
    }

    const V1: &str = "0000000000000001dddddddddddddddd";
    const V2: &str = "0000000000000002aaaaaaaaaaaaaaaa";
    const V5: &str = "0000000000000005bbbbbbbbbbbbbbbb";
    const V9: &str = "0000000000000009cccccccccccccccc";

    #[test]
    fn an_import_keeps_ids_and_fits_the_null_version_between_its_neighbours() {
        let plan = import_plan(
            vec![
                marker(Some(V9)),
                object(Some(V5)),
                object(None),
                object(Some(V2)),
            ],
            Versioning::Enabled,
        );
        let plan = plan.expect("a valid history");
        assert_eq!(plan.current, None, "a marker on top: no current object");
        let seqs: Vec<u64> = plan.history.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, vec![9, 5, 3, 2]);
        assert_eq!(plan.max_seq, 9);

        let plan = import_plan(vec![object(Some(V9)), object(None)], Versioning::Suspended);
        let plan = plan.expect("a valid history");
        assert_eq!(
            plan.current,
            Some(ObjectRecord {
                version_id: Some(V9.into()),
                ..Default::default()
            })
        );
        assert_eq!(
            plan.history.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![1]
        );
        assert_eq!(plan.max_seq, 9, "the current object's id counts too");

        // A null version demoted by the current object took the number after its id.
        let plan = import_plan(
            vec![object(Some(V2)), object(None), object(Some(V1))],
            Versioning::Enabled,
        );
        let plan = plan.expect("what the store lists after enable, suspend, enable");
        assert_eq!(
            plan.history.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![2, 1]
        );
        assert_eq!(plan.max_seq, 2);
    }

    #[test]
    fn an_import_refuses_what_no_store_lists() {
        let refused = |versions, versioning| {
            matches!(
                import_plan(versions, versioning),
                Err(StoreError::InvalidArgument(_))
            )
        };
        assert!(refused(
            vec![marker(Some(V2)), object(Some(V5))],
            Versioning::Enabled
        ));
        assert!(refused(
            vec![object(None), marker(None)],
            Versioning::Suspended
        ));
        assert!(refused(vec![object(Some("nope"))], Versioning::Enabled));
        assert!(refused(
            vec![object(Some(V5)), object(None), object(Some(V5))],
            Versioning::Enabled
        ));
        assert!(refused(
            vec![object(None), object(None)],
            Versioning::Unversioned
        ));
        assert!(refused(vec![marker(None)], Versioning::Unversioned));
        assert!(!refused(vec![object(None)], Versioning::Unversioned));
        assert!(!refused(Vec::new(), Versioning::Unversioned));
    }
}
