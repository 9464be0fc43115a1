//! S3 object lock on object versions: the lock a new version gets (the request's
//! `x-amz-object-lock-*` headers, else the bucket's default retention), the headers GET and
//! HEAD answer with, who may bypass GOVERNANCE retention, and the four operations on one
//! version's lock: PutObjectRetention / GetObjectRetention (`?retention`) and
//! PutObjectLegalHold / GetObjectLegalHold (`?legal-hold`).
//!
//! The store enforces the lock (`delete_version`, `update_version` refuse with
//! `ObjectLocked` in their own transaction); this module decides what is asked of it. The
//! bucket's configuration is `bucket_config::object_lock`; OSS's WORM policy is
//! `ops/worm.rs`.

use coffer_auth::sigv4::Payload;
use coffer_store::{
    BucketRecord, ObjectRecord, Retention, UploadRecord, VersionChange, VersionRef,
};
use http::{Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;

use super::versioning::{read_version, requested_version, version_header};
use super::{authorized_bucket, empty_response, iso8601, now_ms, small_body, xml_response};
use crate::body::ResponseBody;
use crate::bucket_config::object_lock::{
    OBJECT_LOCK_KEY, ObjectLockConfig, default_retention, mode_name, parse_mode,
};
use crate::bucket_config::{has_integrity_header, missing_integrity_header, parse_timestamp};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::{ApiRequest, Dialect};
use crate::state::AppState;
use crate::xml;

/// The object lock a new version carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewVersionLock {
    /// Its retention: the request's, else the bucket's default, else none.
    pub retention: Option<Retention>,
    /// Its legal hold.
    pub legal_hold: bool,
}

impl NewVersionLock {
    /// Whether the version will be locked in any way.
    pub fn is_locked(&self) -> bool {
        self.retention.is_some() || self.legal_hold
    }

    /// The lock an upload recorded at its creation, for the object its completion writes.
    pub fn of_upload(upload: &UploadRecord) -> Self {
        Self {
            retention: upload.retention.clone(),
            legal_hold: upload.legal_hold,
        }
    }
}

/// Whether `bucket` has S3 object lock.
pub fn has_object_lock(bucket: &BucketRecord) -> bool {
    bucket.config.contains_key(OBJECT_LOCK_KEY)
}

fn missing_lock_configuration() -> ApiError {
    ApiError::invalid_request("Bucket is missing Object Lock Configuration")
}

fn protected() -> ApiError {
    ApiError::access_denied("Access Denied because object protected by object lock.")
}

/// Rounds an instant up to a whole second: S3 writes retain-until dates in whole seconds,
/// and a date read back and sent again must never count as shortening the retention.
fn whole_second_up(ms: i64) -> i64 {
    ms.div_euclid(1000)
        .saturating_add(i64::from(ms.rem_euclid(1000) != 0))
        .saturating_mul(1000)
}

/// A retain-until date (ISO 8601), which must lie after `now_ms`.
fn retain_until(text: &str, now_ms: i64) -> ApiResult<i64> {
    let until = parse_timestamp(text).ok_or_else(|| {
        ApiError::invalid_argument("The retain until date must be provided in ISO 8601 format")
    })?;
    if until <= now_ms {
        return Err(ApiError::invalid_argument(
            "The retain until date must be in the future!",
        ));
    }
    Ok(whole_second_up(until))
}

/// The lock a new version written by `req` (PutObject, CopyObject, CreateMultipartUpload)
/// into `bucket` gets at `now_ms`: `x-amz-object-lock-mode` with
/// `x-amz-object-lock-retain-until-date` (both or neither) and
/// `x-amz-object-lock-legal-hold`, only on a bucket with object lock (`InvalidRequest`
/// otherwise, as S3); without a retention in the request, the bucket's default retention
/// counts from `now_ms`. The OSS dialect has no such headers, but the bucket's default
/// applies to its writes all the same.
pub fn for_new_version(
    req: &ApiRequest,
    bucket: &BucketRecord,
    now_ms: i64,
) -> ApiResult<NewVersionLock> {
    let (mode, until, hold) = match req.dialect {
        Dialect::S3 => (
            req.header("x-amz-object-lock-mode"),
            req.header("x-amz-object-lock-retain-until-date"),
            req.header("x-amz-object-lock-legal-hold"),
        ),
        Dialect::Oss => (None, None, None),
    };
    let config = ObjectLockConfig::of(bucket)?;
    if config.is_none() && (mode.is_some() || until.is_some() || hold.is_some()) {
        return Err(missing_lock_configuration());
    }
    let legal_hold = match hold {
        None | Some("OFF") => false,
        Some("ON") => true,
        Some(_) => {
            return Err(ApiError::invalid_argument(
                "Legal Hold must be either of 'ON' or 'OFF'",
            ));
        }
    };
    let retention = match (mode, until) {
        (Some(mode), Some(until)) => Some(Retention {
            mode: parse_mode(mode)
                .ok_or_else(|| ApiError::invalid_argument("Unknown wormMode directive."))?,
            until_ms: retain_until(until, now_ms)?,
        }),
        (None, None) => config
            .as_ref()
            .and_then(default_retention)
            .map(|(mode, period)| Retention {
                mode,
                until_ms: whole_second_up(now_ms.saturating_add(
                    i64::try_from(period.whole_milliseconds()).unwrap_or(i64::MAX),
                )),
            }),
        _ => {
            return Err(ApiError::invalid_request(
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
            ));
        }
    };
    Ok(NewVersionLock {
        retention,
        legal_hold,
    })
}

/// S3 requires a body digest (`Content-MD5` or an `x-amz-checksum-*`, sent or trailing) on
/// an upload whose object will be locked (by its own headers or the bucket's default).
pub fn require_integrity(req: &ApiRequest, lock: &NewVersionLock) -> ApiResult<()> {
    if req.dialect == Dialect::S3 && lock.is_locked() && !has_integrity_header(&req.headers) {
        return Err(ApiError::invalid_request(
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters",
        ));
    }
    Ok(())
}

/// The same rule for each part of an upload whose object will be locked.
pub fn require_part_integrity(req: &ApiRequest, upload: &UploadRecord) -> ApiResult<()> {
    require_integrity(req, &NewVersionLock::of_upload(upload))
}

/// Whether `req` asks to bypass GOVERNANCE retention and its principal may
/// (`s3:BypassGovernanceRetention`, decided by `authz` with the operation).
pub fn may_bypass_governance(req: &ApiRequest) -> bool {
    req.authorized
        .as_ref()
        .is_some_and(|authorized| authorized.bypass_governance)
}

/// The lock headers of a GET or HEAD answer (S3 dialect): mode and retain-until date when
/// the version has a retention, the legal hold's status in a bucket with object lock.
pub fn response_headers(
    req: &ApiRequest,
    bucket: &BucketRecord,
    record: &ObjectRecord,
) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    if req.dialect != Dialect::S3 {
        return headers;
    }
    if let Some(retention) = &record.retention {
        headers.push((
            "x-amz-object-lock-mode".to_owned(),
            mode_name(retention.mode).to_owned(),
        ));
        headers.push((
            "x-amz-object-lock-retain-until-date".to_owned(),
            iso8601(retention.until_ms),
        ));
    }
    if record.legal_hold || has_object_lock(bucket) {
        headers.push((
            "x-amz-object-lock-legal-hold".to_owned(),
            if record.legal_hold { "ON" } else { "OFF" }.to_owned(),
        ));
    }
    headers
}

/// The bucket a retention or legal-hold request addresses: S3 dialect, object lock on.
async fn locked_bucket(state: &AppState, req: &ApiRequest) -> ApiResult<BucketRecord> {
    if req.dialect == Dialect::Oss {
        return Err(ApiError::not_implemented(
            "Object retention and legal hold in the OSS dialect (OSS uses the bucket's ?worm policy)",
        ));
    }
    let bucket = authorized_bucket(state, req).await?;
    if !has_object_lock(&bucket) {
        return Err(missing_lock_configuration());
    }
    Ok(bucket)
}

/// Applies `change` to the version the request names; the answer names that version.
async fn update(
    state: &AppState,
    req: &ApiRequest,
    bucket: &BucketRecord,
    change: VersionChange,
) -> ApiResult<Response<ResponseBody>> {
    let key = req.key()?;
    let which = requested_version(req)?.unwrap_or(VersionRef::Latest);
    let updated = match state
        .meta
        .update_version(&bucket.name, key, which, change)
        .await
    {
        Err(coffer_store::StoreError::ObjectLocked) => return Err(protected()),
        Err(coffer_store::StoreError::InvalidArgument(_)) => {
            return Err(ApiError::invalid_argument("Invalid version id specified"));
        }
        other => other?,
    };
    let mut response = empty_response(StatusCode::OK)?;
    if let Some((name, value)) = version_header(req, bucket, updated.version_id.as_deref())
        && let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(name),
            http::HeaderValue::try_from(value),
        )
    {
        response.headers_mut().insert(name, value);
    }
    Ok(response)
}

/// `<Retention>`: both elements, or neither (no retention).
#[derive(Debug, Deserialize)]
struct RetentionXml {
    #[serde(rename = "Mode")]
    mode: Option<String>,
    #[serde(rename = "RetainUntilDate")]
    retain_until_date: Option<String>,
}

/// The bucket (with object lock) and the XML document of a PUT `?retention` or
/// `?legal-hold`, which S3 sends with `Content-MD5` or a checksum.
async fn locked_document<T: serde::de::DeserializeOwned>(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<(BucketRecord, T)> {
    let bucket = locked_bucket(state, req).await?;
    if !has_integrity_header(&req.headers) {
        return Err(missing_integrity_header());
    }
    let body = small_body(req, body, payload).await?;
    Ok((bucket, xml::parse(&body)?))
}

/// `PUT /<bucket>/<key>?retention[&versionId=…]`: sets, extends, shortens or removes one
/// version's retention, as the store's rules allow (`AccessDenied` otherwise; GOVERNANCE
/// yields to `x-amz-bypass-governance-retention` from a principal who may).
pub async fn put_retention(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let (bucket, doc): (_, RetentionXml) = locked_document(state, req, body, payload).await?;
    let now = now_ms();
    let retention = match (doc.mode.as_deref(), doc.retain_until_date.as_deref()) {
        (Some(mode), Some(until)) => Some(Retention {
            mode: parse_mode(mode).ok_or_else(ApiError::malformed_xml)?,
            until_ms: retain_until(until, now)?,
        }),
        (None, None) => None,
        _ => return Err(ApiError::malformed_xml()),
    };
    let change = VersionChange::Retention {
        retention,
        bypass_governance: may_bypass_governance(req),
        now_ms: now,
    };
    update(state, req, &bucket, change).await
}

/// `GET /<bucket>/<key>?retention[&versionId=…]`: `NoSuchObjectLockConfiguration` when the
/// version has none.
pub async fn get_retention(
    state: &AppState,
    req: &ApiRequest,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = locked_bucket(state, req).await?;
    let key = req.key()?;
    let record = read_version(state, req, &bucket, key, requested_version(req)?).await?;
    let Some(retention) = record.retention else {
        return Err(no_lock_of_object());
    };
    let mut w = req.xml("Retention");
    w.elem("Mode", mode_name(retention.mode))
        .elem("RetainUntilDate", iso8601(retention.until_ms));
    xml_response(StatusCode::OK, w.finish())
}

fn no_lock_of_object() -> ApiError {
    ApiError::new(
        ErrorCode::NoSuchObjectLockConfiguration,
        "The specified object does not have a ObjectLock configuration",
    )
}

/// `<LegalHold><Status>ON|OFF</Status></LegalHold>`.
#[derive(Debug, Deserialize)]
struct LegalHoldXml {
    #[serde(rename = "Status")]
    status: Option<String>,
}

/// `PUT /<bucket>/<key>?legal-hold[&versionId=…]`.
pub async fn put_legal_hold(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let (bucket, doc): (_, LegalHoldXml) = locked_document(state, req, body, payload).await?;
    let on = match doc.status.as_deref().map(str::trim) {
        Some("ON") => true,
        Some("OFF") => false,
        _ => return Err(ApiError::malformed_xml()),
    };
    update(state, req, &bucket, VersionChange::LegalHold(on)).await
}

/// `GET /<bucket>/<key>?legal-hold[&versionId=…]`. The store keeps the legal hold as on or
/// off, so a version that never had one answers `OFF` (S3 answers
/// `NoSuchObjectLockConfiguration` until one is first set).
pub async fn get_legal_hold(
    state: &AppState,
    req: &ApiRequest,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = locked_bucket(state, req).await?;
    let key = req.key()?;
    let record = read_version(state, req, &bucket, key, requested_version(req)?).await?;
    let mut w = req.xml("LegalHold");
    w.elem("Status", if record.legal_hold { "ON" } else { "OFF" });
    xml_response(StatusCode::OK, w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retain_until_dates_are_future_whole_seconds() {
        let now = 1_700_000_000_000;
        assert_eq!(
            retain_until("2023-11-14T22:13:21Z", now).expect("future"),
            1_700_000_001_000
        );
        // Fractions round up, never down.
        assert_eq!(
            retain_until("2023-11-14T22:13:20.001Z", now).expect("future"),
            1_700_000_001_000
        );
        for past in ["2023-11-14T22:13:20Z", "2020-01-01T00:00:00Z"] {
            assert_eq!(
                retain_until(past, now).map_err(|e| e.code).err(),
                Some(ErrorCode::InvalidArgument),
                "{past}"
            );
        }
        assert!(retain_until("tomorrow", now).is_err());
        assert_eq!(whole_second_up(-1), 0);
        assert_eq!(whole_second_up(2000), 2000);
    }
}
