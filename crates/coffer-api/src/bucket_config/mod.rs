//! Bucket configuration for data protection, as plain data: lifecycle
//! rules and their evaluation, S3 object-lock configuration, the OSS WORM
//! retention policy, and tag sets (bucket tags now, object tags later).
//!
//! Each kind is parsed from its dialect's XML, validated once, and stored
//! as one canonical JSON document in the bucket's config under the name
//! its module exports ([`lifecycle::LIFECYCLE_KEY`],
//! [`object_lock::OBJECT_LOCK_KEY`], [`worm::WORM_KEY`],
//! [`tags::BUCKET_TAGGING_KEY`]); a GET in either dialect renders that
//! document in its own XML. Nothing here does I/O: the handlers live in
//! `ops/`, and the functions other code calls (a lifecycle worker, the
//! object-delete path) take the stored document and a clock reading.

pub mod cors;
pub mod https_config;
pub mod lifecycle;
pub mod object_lock;
pub mod tags;
pub mod worm;

use coffer_store::BucketRecord;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

/// One stored configuration document of `bucket`, decoded; `None` if the
/// bucket has none. A document that no longer decodes is an internal
/// error (only this crate writes them), never silently ignored.
pub fn stored<T: DeserializeOwned>(bucket: &BucketRecord, key: &str) -> ApiResult<Option<T>> {
    match bucket.config.get(key) {
        None => Ok(None),
        Some(json) => serde_json::from_str(json)
            .map(Some)
            .map_err(|e| ApiError::internal(&format!("stored bucket config {key:?}"), e)),
    }
}

/// The canonical JSON of a configuration document.
pub fn to_json<T: serde::Serialize>(doc: &T) -> ApiResult<String> {
    serde_json::to_string(doc).map_err(|e| ApiError::internal("JSON", e))
}

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Parses an ISO 8601 UTC timestamp as S3 and OSS XML write it
/// (`2024-01-01T00:00:00Z`, `2024-01-01T00:00:00.000Z`, or with an
/// explicit offset) into milliseconds since the epoch.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Whether `ms` is exactly midnight UTC.
pub fn is_midnight(ms: i64) -> bool {
    ms.rem_euclid(DAY_MS) == 0
}

/// `x-amz-checksum-*`, Content-MD5 or a trailing checksum: AWS requires
/// one on PutBucketLifecycleConfiguration, PutObjectLockConfiguration and
/// PutBucketTagging, so Coffer does too.
pub fn has_integrity_header(headers: &http::HeaderMap) -> bool {
    headers.contains_key("content-md5")
        || headers.contains_key("x-amz-trailer")
        || headers
            .keys()
            .any(|name| name.as_str().starts_with("x-amz-checksum-"))
}

/// The refusal of a PUT without [`has_integrity_header`].
pub fn missing_integrity_header() -> ApiError {
    ApiError::invalid_request(
        "Missing required header for this request: Content-MD5 (or an x-amz-checksum-* header)",
    )
}
