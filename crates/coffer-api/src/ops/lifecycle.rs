//! Bucket lifecycle rules: S3 `?lifecycle` (PutBucketLifecycleConfiguration,
//! GetBucketLifecycleConfiguration, DeleteBucketLifecycle) and OSS
//! `?lifecycle` (PutBucketLifecycle, GetBucketLifecycle,
//! DeleteBucketLifecycle). Both dialects store and read the one canonical
//! document of `bucket_config::lifecycle`; applying the rules is the
//! lifecycle worker's job.

use coffer_auth::sigv4::Payload;
use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::{authorized_bucket, empty_response, save_bucket_config, small_body, xml_response};
use crate::body::ResponseBody;
use crate::bucket_config::lifecycle::{self, LIFECYCLE_KEY, LifecycleConfiguration};
use crate::bucket_config::{has_integrity_header, missing_integrity_header, stored, to_json};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::{ApiRequest, Dialect};
use crate::state::AppState;

/// `PUT /<bucket>?lifecycle`. S3 requires Content-MD5 or an
/// `x-amz-checksum-*` header, as AWS does; OSS does not.
pub async fn put(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    if req.dialect == Dialect::S3 && !has_integrity_header(&req.headers) {
        return Err(missing_integrity_header());
    }
    let body = small_body(req, body, payload).await?;
    let config = match req.dialect {
        Dialect::S3 => lifecycle::parse_s3(&body)?,
        Dialect::Oss => lifecycle::parse_oss(&body)?,
    };
    save_bucket_config(state, bucket, LIFECYCLE_KEY, to_json(&config)?).await?;
    empty_response(StatusCode::OK)
}

/// `GET /<bucket>?lifecycle`: the rules in the request's dialect.
pub async fn get(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let Some(config) = stored::<LifecycleConfiguration>(&bucket, LIFECYCLE_KEY)? else {
        return Err(ApiError::new(
            ErrorCode::NoSuchLifecycleConfiguration,
            "The lifecycle configuration does not exist",
        ));
    };
    let xml = match req.dialect {
        Dialect::S3 => lifecycle::render_s3(&config),
        Dialect::Oss => lifecycle::render_oss(&config),
    };
    xml_response(StatusCode::OK, xml)
}

/// `DELETE /<bucket>?lifecycle`: succeeds whether or not there were rules.
pub async fn delete(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    super::delete_bucket_configs(state, req, &[LIFECYCLE_KEY]).await
}
