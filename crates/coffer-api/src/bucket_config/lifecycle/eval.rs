//! Lifecycle evaluation as pure functions: given the rules, the time and
//! the facts of one object version (or one in-progress upload), what is
//! due. A background worker walks a bucket's version listing key by key,
//! newest version first, builds a [`VersionFacts`] for each version and
//! calls [`action_for_version`]; it walks the uploads and calls
//! [`upload_due_for_abort`]. Applying the answer (and re-checking it in the
//! store's transaction) is the worker's job; nothing here does I/O.
//!
//! AWS's semantics:
//!
//! * `Days` counts from the object's creation (its last-modified time; for
//!   `NoncurrentDays`, from when the version became noncurrent, i.e. when
//!   the next newer version was written; for `DaysAfterInitiation`, from
//!   the upload's initiation), and the result is rounded up to the next
//!   midnight UTC: an object written 2024-01-01T10:00Z under `Days` 1 is
//!   due from 2024-01-03T00:00Z.
//! * A `Date` rule applies to every matching current version from that
//!   midnight on; OSS's `CreatedBeforeDate` applies now to the versions
//!   (uploads) created before that midnight.
//! * Disabled rules are ignored. A filter matches when the key starts with
//!   its prefix, the version carries every one of its tags, its size is
//!   strictly between the bounds given, and no OSS `Not` excludes it.
//! * Expiration applies to current versions only. A current delete marker
//!   with no other version left (an expired object delete marker) is
//!   removed by a rule with `ExpiredObjectDeleteMarker`, or by a `Days` /
//!   `Date` expiration once the marker itself is old enough; a current
//!   delete marker with older versions behind it is left alone.
//! * `NoncurrentVersionExpiration` deletes noncurrent versions (delete
//!   markers included) `NoncurrentDays` after they became noncurrent,
//!   keeping the `NewerNoncurrentVersions` newest noncurrent ones.
//! * When several rules match, the first one (in configuration order)
//!   that makes an action due is reported.

use super::{
    AbortUpload, Expiration, LifecycleConfiguration, LifecycleRule, RuleFilter, ceil_midnight,
};
use crate::bucket_config::DAY_MS;
use coffer_store::Versioning;

/// What the worker knows about one version of one key.
#[derive(Debug, Clone, Copy)]
pub struct VersionFacts<'a> {
    /// The object's key.
    pub key: &'a str,
    /// Its size in bytes (0 for a delete marker).
    pub size: u64,
    /// Its tags (none for a delete marker).
    pub tags: &'a [(String, String)],
    /// When this version was written (ms since the epoch).
    pub last_modified_ms: i64,
    /// Whether it is the key's current (newest) version.
    pub is_latest: bool,
    /// Whether it is a delete marker.
    pub is_delete_marker: bool,
    /// For a noncurrent version: when it became noncurrent, i.e. when the
    /// next newer version of the key was written. `None` makes a
    /// noncurrent version ineligible (its age is unknown).
    pub noncurrent_since_ms: Option<i64>,
    /// For a noncurrent version: how many noncurrent versions of the key
    /// are newer than it (0 for the newest noncurrent one).
    pub newer_noncurrent_versions: u32,
    /// Whether this is the only version the key has left.
    pub only_version: bool,
}

/// What is due for one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleAction {
    /// Expire the current version: in an unversioned bucket delete it
    /// (`add_delete_marker` false); in a versioned one add a delete
    /// marker on top (a null one when versioning is suspended).
    ExpireCurrent {
        /// Whether to add a delete marker rather than delete.
        add_delete_marker: bool,
    },
    /// Permanently delete this noncurrent version (or noncurrent delete marker).
    DeleteNoncurrent,
    /// Permanently delete this delete marker: it is the key's only version.
    RemoveExpiredDeleteMarker,
}

/// An action that is due, and the rule that made it so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueAction<'r> {
    /// What to do.
    pub action: LifecycleAction,
    /// The ID of the rule that asks for it.
    pub rule_id: &'r str,
}

/// What the worker knows about one in-progress multipart upload.
#[derive(Debug, Clone, Copy)]
pub struct UploadFacts<'a> {
    /// The key the upload will create.
    pub key: &'a str,
    /// When it was initiated (ms since the epoch).
    pub initiated_ms: i64,
}

/// Whether `days` after `since_ms` (rounded up to midnight UTC) has come by `now_ms`.
fn days_elapsed(since_ms: i64, days: u32, now_ms: i64) -> bool {
    let due = since_ms.saturating_add(i64::from(days).saturating_mul(DAY_MS));
    ceil_midnight(due) <= now_ms
}

impl RuleFilter {
    /// Whether a version with this key, size and tags is selected.
    pub fn matches(&self, key: &str, size: u64, tags: &[(String, String)]) -> bool {
        key.starts_with(&self.prefix)
            && self.tags.iter().all(|t| tags.contains(t))
            && self.size_greater_than.is_none_or(|gt| size > gt)
            && self.size_less_than.is_none_or(|lt| size < lt)
            && !self.not.iter().any(|not| {
                key.starts_with(&not.prefix) && not.tag.as_ref().is_none_or(|t| tags.contains(t))
            })
    }

    /// Whether an upload to `key` is selected: uploads have no size or
    /// tags yet, so only the prefixes count (rules that abort uploads
    /// cannot have tag or size conditions).
    fn matches_key(&self, key: &str) -> bool {
        key.starts_with(&self.prefix)
            && !self
                .not
                .iter()
                .any(|not| not.tag.is_none() && key.starts_with(&not.prefix))
    }
}

impl LifecycleRule {
    /// The action this rule makes due for `v` at `now_ms`, if any.
    fn due(
        &self,
        versioning: Versioning,
        now_ms: i64,
        v: &VersionFacts,
    ) -> Option<LifecycleAction> {
        if !self.enabled {
            return None;
        }
        let (size, tags): (u64, &[(String, String)]) = if v.is_delete_marker {
            (0, &[])
        } else {
            (v.size, v.tags)
        };
        if !self.filter.matches(v.key, size, tags) {
            return None;
        }
        if !v.is_latest {
            let n = self.noncurrent_expiration?;
            let since = v.noncurrent_since_ms?;
            let kept = n
                .newer_noncurrent_versions
                .is_some_and(|keep| v.newer_noncurrent_versions < keep);
            return (!kept && days_elapsed(since, n.noncurrent_days, now_ms))
                .then_some(LifecycleAction::DeleteNoncurrent);
        }
        let expiration = self.expiration?;
        let age_reached = match expiration {
            Expiration::Days(days) => days_elapsed(v.last_modified_ms, days, now_ms),
            Expiration::Date(date) => now_ms >= date,
            Expiration::CreatedBeforeDate(date) => v.last_modified_ms < date,
            Expiration::ExpiredObjectDeleteMarker => false,
        };
        if v.is_delete_marker {
            let marker_rule = expiration == Expiration::ExpiredObjectDeleteMarker;
            return (v.only_version && (marker_rule || age_reached))
                .then_some(LifecycleAction::RemoveExpiredDeleteMarker);
        }
        age_reached.then_some(LifecycleAction::ExpireCurrent {
            add_delete_marker: versioning != Versioning::Unversioned,
        })
    }
}

/// The lifecycle action due for one object version at `now_ms`, if any:
/// the first rule (in configuration order) that makes one due.
pub fn action_for_version<'r>(
    config: &'r LifecycleConfiguration,
    versioning: Versioning,
    now_ms: i64,
    version: &VersionFacts,
) -> Option<DueAction<'r>> {
    config.rules.iter().find_map(|rule| {
        rule.due(versioning, now_ms, version)
            .map(|action| DueAction {
                action,
                rule_id: &rule.id,
            })
    })
}

/// Whether an in-progress upload is due for abort at `now_ms`: the ID of
/// the first enabled rule whose prefix selects its key and whose
/// `AbortIncompleteMultipartUpload` (OSS `AbortMultipartUpload`) has come.
pub fn upload_due_for_abort<'r>(
    config: &'r LifecycleConfiguration,
    now_ms: i64,
    upload: &UploadFacts,
) -> Option<&'r str> {
    config
        .rules
        .iter()
        .filter(|rule| rule.enabled && rule.filter.matches_key(upload.key))
        .find(|rule| match rule.abort_upload {
            Some(AbortUpload::DaysAfterInitiation(days)) => {
                days_elapsed(upload.initiated_ms, days, now_ms)
            }
            Some(AbortUpload::CreatedBeforeDate(date)) => upload.initiated_ms < date,
            None => false,
        })
        .map(|rule| rule.id.as_str())
}
