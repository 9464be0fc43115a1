//! Lifecycle rules: one canonical model ([`LifecycleConfiguration`]) that
//! both dialects parse into (`s3.rs`: PutBucketLifecycleConfiguration's
//! `LifecycleConfiguration/Rule`; `oss.rs`: OSS's `?lifecycle` form), one
//! validation ([`LifecycleConfiguration::validate`]), and the evaluation
//! a background worker calls per object version and per upload
//! ([`eval`]).
//!
//! Coffer has one storage class, so `Transition` and
//! `NoncurrentVersionTransition` are refused with `InvalidRequest`.

pub mod eval;
mod oss;
mod s3;

use serde::{Deserialize, Serialize};

use super::tags::check_pair;
use super::{DAY_MS, is_midnight};
use crate::error::{ApiError, ApiResult};

pub use eval::{
    DueAction, LifecycleAction, UploadFacts, VersionFacts, action_for_version, upload_due_for_abort,
};
pub use oss::{parse_oss, render_oss};
pub use s3::{parse_s3, render_s3};

/// Bucket config key of the lifecycle rules (JSON of [`LifecycleConfiguration`]).
pub const LIFECYCLE_KEY: &str = "lifecycle";
/// Most rules one configuration may hold (AWS and OSS).
pub const MAX_RULES: usize = 1000;
/// Longest rule ID, in characters.
pub const MAX_ID_CHARS: usize = 255;
/// Most noncurrent versions a rule may keep (`NewerNoncurrentVersions`).
pub const MAX_NEWER_NONCURRENT: u32 = 100;

/// A bucket's lifecycle rules, validated: what is stored and evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleConfiguration {
    /// The rules, in the order given.
    pub rules: Vec<LifecycleRule>,
}

/// One rule: which objects, and what happens to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    /// Unique within the configuration (generated when the client gave none).
    pub id: String,
    /// Disabled rules are kept but never applied.
    pub enabled: bool,
    /// Which objects the rule applies to.
    pub filter: RuleFilter,
    /// How S3 wrote the filter: a `<Filter>` element or the legacy
    /// top-level `<Prefix>`; GET in S3 gives back the same form.
    #[serde(default)]
    pub legacy_prefix: bool,
    /// Expiry of current versions, or of expired delete markers.
    pub expiration: Option<Expiration>,
    /// Deletion of noncurrent versions.
    pub noncurrent_expiration: Option<NoncurrentExpiration>,
    /// Abort of incomplete multipart uploads.
    pub abort_upload: Option<AbortUpload>,
}

/// A rule's filter. Every condition must hold (an empty filter matches
/// every object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleFilter {
    /// The key must start with it.
    #[serde(default)]
    pub prefix: String,
    /// The object must carry every one of these tags, with these values.
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// The object must be strictly larger (bytes).
    pub size_greater_than: Option<u64>,
    /// The object must be strictly smaller (bytes).
    pub size_less_than: Option<u64>,
    /// OSS `Filter/Not`: objects matching any of these are excluded.
    #[serde(default)]
    pub not: Vec<NotFilter>,
}

/// One OSS `Filter/Not`: excludes keys with `prefix` (and, if given, the tag).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotFilter {
    /// Keys starting with it are excluded.
    pub prefix: String,
    /// If given, only such keys that also carry this tag are excluded.
    pub tag: Option<(String, String)>,
}

/// When current versions expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiration {
    /// S3 `Days` / OSS `Days`: days after the object's creation, rounded
    /// up to the next midnight UTC.
    Days(u32),
    /// S3 `Date`: every matching object from this midnight UTC on (ms).
    Date(i64),
    /// OSS `CreatedBeforeDate`: objects last modified before this
    /// midnight UTC (ms), from now on.
    CreatedBeforeDate(i64),
    /// `ExpiredObjectDeleteMarker`: remove delete markers that are the
    /// only version left of their key.
    ExpiredObjectDeleteMarker,
}

/// When noncurrent versions are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoncurrentExpiration {
    /// Days after the version became noncurrent (rounded up to midnight UTC).
    pub noncurrent_days: u32,
    /// Keep this many newest noncurrent versions regardless of age.
    pub newer_noncurrent_versions: Option<u32>,
}

/// When incomplete multipart uploads are aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AbortUpload {
    /// Days after initiation, rounded up to the next midnight UTC.
    DaysAfterInitiation(u32),
    /// OSS `CreatedBeforeDate`: uploads initiated before this midnight (ms).
    CreatedBeforeDate(i64),
}

/// A number from the XML as sent: kept signed so that `0` and `-1` are
/// reported as InvalidArgument (out of range), not MalformedXML.
pub(crate) fn number(text: &str) -> ApiResult<i64> {
    text.trim().parse().map_err(|_| ApiError::malformed_xml())
}

/// A positive day count of `field` in `action`, or InvalidArgument saying so.
pub(crate) fn positive_days(value: i64, field: &str, action: &str) -> ApiResult<u32> {
    match u32::try_from(value) {
        Ok(days) if days > 0 => Ok(days),
        _ => Err(ApiError::invalid_argument(format!(
            "'{field}' for {action} action must be a positive integer"
        ))
        .with_ec("0014-00000011")),
    }
}

/// A date that must be midnight UTC (S3 `Date`, OSS `CreatedBeforeDate`).
pub(crate) fn midnight_date(text: &str, what: &str) -> ApiResult<i64> {
    let ms = super::parse_timestamp(text).ok_or_else(|| {
        ApiError::invalid_argument(format!("'{what}' must be an ISO 8601 date"))
            .with_ec("0014-00000087")
    })?;
    if !is_midnight(ms) {
        return Err(
            ApiError::invalid_argument(format!("'{what}' must be at midnight GMT"))
                .with_ec("0014-00000087"),
        );
    }
    Ok(ms)
}

/// A size bound of a filter: a non-negative integer.
pub(crate) fn size_bound(text: &str, what: &str) -> ApiResult<u64> {
    u64::try_from(number(text)?)
        .map_err(|_| ApiError::invalid_argument(format!("'{what}' must be a non-negative integer")))
}

/// The refusal of a storage-class transition.
pub(crate) fn transitions_refused() -> ApiError {
    ApiError::invalid_request(
        "Transition and NoncurrentVersionTransition actions are not supported: Coffer stores every object in one storage class (STANDARD), so there is no class to move objects to. Use Expiration, NoncurrentVersionExpiration or AbortIncompleteMultipartUpload.",
    )
}

impl LifecycleConfiguration {
    /// Checks the rules as AWS does, once they are parsed from either
    /// dialect; fills in generated IDs for rules that came without one.
    pub fn validate(mut self) -> ApiResult<Self> {
        if self.rules.is_empty() {
            return Err(ApiError::malformed_xml());
        }
        if self.rules.len() > MAX_RULES {
            return Err(ApiError::invalid_argument(format!(
                "A lifecycle configuration can have at most {MAX_RULES} rules"
            ))
            .with_ec("0014-00000014"));
        }
        for (i, rule) in self.rules.iter_mut().enumerate() {
            if rule.id.is_empty() {
                rule.id = generated_id(i);
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            rule.validate()?;
            if self.rules[..i].iter().any(|r| r.id == rule.id) {
                return Err(ApiError::invalid_argument(
                    "Rule ID must be unique. Found same ID for more than one rule",
                )
                .with_ec("0014-00000015"));
            }
        }
        Ok(self)
    }
}

/// An ID for a rule that came without one: stable for the position, so a
/// re-sent configuration gets the same IDs.
fn generated_id(index: usize) -> String {
    format!("rule-{}", index + 1)
}

impl LifecycleRule {
    fn validate(&self) -> ApiResult<()> {
        if self.id.chars().count() > MAX_ID_CHARS {
            return Err(ApiError::invalid_argument(format!(
                "ID length should not exceed allowed limit of {MAX_ID_CHARS}"
            )));
        }
        if self.expiration.is_none()
            && self.noncurrent_expiration.is_none()
            && self.abort_upload.is_none()
        {
            return Err(ApiError::invalid_request(
                "At least one action needs to be specified in a rule",
            ));
        }
        let f = &self.filter;
        for (i, (key, value)) in f.tags.iter().enumerate() {
            check_pair(key, value)?;
            if f.tags[..i].iter().any(|(k, _)| k == key) {
                return Err(ApiError::invalid_request(
                    "Duplicate Tag Keys are not allowed.",
                ));
            }
        }
        for not in &f.not {
            if let Some((key, value)) = &not.tag {
                check_pair(key, value)?;
            }
        }
        if let (Some(gt), Some(lt)) = (f.size_greater_than, f.size_less_than)
            && gt >= lt
        {
            return Err(ApiError::invalid_argument(
                "ObjectSizeGreaterThan must be less than ObjectSizeLessThan",
            ));
        }
        if f.size_less_than == Some(0) {
            return Err(ApiError::invalid_argument(
                "ObjectSizeLessThan must be greater than 0",
            ));
        }
        let has_tags = !f.tags.is_empty();
        let has_sizes = f.size_greater_than.is_some() || f.size_less_than.is_some();
        if self.abort_upload.is_some() && (has_tags || has_sizes) {
            return Err(ApiError::invalid_request(
                "AbortIncompleteMultipartUpload cannot be specified with Tags or object size filters: an upload has neither yet.",
            ));
        }
        if self.expiration == Some(Expiration::ExpiredObjectDeleteMarker) && has_tags {
            return Err(ApiError::invalid_request(
                "ExpiredObjectDeleteMarker cannot be specified with Tags: delete markers carry no tags.",
            ));
        }
        if let Some(n) = &self.noncurrent_expiration
            && let Some(newer) = n.newer_noncurrent_versions
            && !(1..=MAX_NEWER_NONCURRENT).contains(&newer)
        {
            return Err(ApiError::invalid_argument(format!(
                "'NewerNoncurrentVersions' must be between 1 and {MAX_NEWER_NONCURRENT}"
            )));
        }
        Ok(())
    }
}

/// A rule's `Status` (`Enabled` or `Disabled`, MalformedXML otherwise), after refusing
/// transitions, which both dialects parse the same way.
pub(crate) fn rule_enabled(status: Option<&str>, has_transitions: bool) -> ApiResult<bool> {
    if has_transitions {
        return Err(transitions_refused());
    }
    match status.map(str::trim) {
        Some("Enabled") => Ok(true),
        Some("Disabled") => Ok(false),
        _ => Err(ApiError::malformed_xml()),
    }
}

/// The first midnight UTC at or after `ms`.
pub(crate) fn ceil_midnight(ms: i64) -> i64 {
    let rem = ms.rem_euclid(DAY_MS);
    if rem == 0 { ms } else { ms - rem + DAY_MS }
}

#[cfg(test)]
mod tests;
