//! S3 object-lock configuration (`?object-lock`): PutObjectLockConfiguration
//! and GetObjectLockConfiguration. CreateBucket with
//! `x-amz-bucket-object-lock-enabled: true` (`ops/bucket.rs`) stores the
//! first document; the parsed form and `default_retention` are in
//! `bucket_config::object_lock`. OSS's equivalent is the WORM policy
//! (`ops/worm.rs`).

use coffer_auth::sigv4::Payload;
use coffer_store::BucketRecord;
use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::{authorized_bucket, empty_response, save_bucket_config, small_body, xml_response};
use crate::body::ResponseBody;
use crate::bucket_config::object_lock::{self, OBJECT_LOCK_KEY, ObjectLockConfig};
use crate::bucket_config::{has_integrity_header, missing_integrity_header, to_json};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::{ApiRequest, Dialect};
use crate::state::AppState;

fn s3_only(req: &ApiRequest) -> ApiResult<()> {
    match req.dialect {
        Dialect::S3 => Ok(()),
        Dialect::Oss => Err(ApiError::not_implemented(
            "Object lock configuration in the OSS dialect (OSS uses the ?worm retention policy)",
        )),
    }
}

/// Whether the bucket's versioning is Enabled, which S3 requires before
/// object lock can be turned on for a bucket created without it.
fn versioning_enabled(bucket: &BucketRecord) -> bool {
    bucket.versioning == coffer_store::Versioning::Enabled
}

/// `PUT /<bucket>?object-lock`: Content-MD5 or a checksum is required (as
/// AWS does). A bucket created without object lock may turn it on only
/// when its versioning is Enabled (`InvalidBucketState` otherwise).
pub async fn put(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    s3_only(req)?;
    let bucket = authorized_bucket(state, req).await?;
    if !has_integrity_header(&req.headers) {
        return Err(missing_integrity_header());
    }
    let body = small_body(req, body, payload).await?;
    let config = object_lock::parse(&body)?;
    if ObjectLockConfig::of(&bucket)?.is_none() && !versioning_enabled(&bucket) {
        return Err(ApiError::new(
            ErrorCode::InvalidBucketState,
            "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
        ));
    }
    save_bucket_config(state, bucket, OBJECT_LOCK_KEY, to_json(&config)?).await?;
    empty_response(StatusCode::OK)
}

/// `GET /<bucket>?object-lock`.
pub async fn get(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    s3_only(req)?;
    let bucket = authorized_bucket(state, req).await?;
    let Some(config) = ObjectLockConfig::of(&bucket)? else {
        return Err(ApiError::new(
            ErrorCode::ObjectLockConfigurationNotFoundError,
            "Object Lock configuration does not exist for this bucket",
        ));
    };
    xml_response(StatusCode::OK, object_lock::render(&config))
}
