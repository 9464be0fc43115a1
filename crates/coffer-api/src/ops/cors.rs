//! Bucket CORS rules: `?cors` in both dialects (S3 PutBucketCors,
//! GetBucketCors, DeleteBucketCors; OSS PutBucketCors, GetBucketCors,
//! DeleteBucketCors). The rules are `bucket_config::cors`; the preflight and
//! the headers of actual responses are `crate::cors`.

use coffer_auth::sigv4::Payload;
use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::{authorized_bucket, empty_response, save_bucket_config, small_body, xml_response};
use crate::body::ResponseBody;
use crate::bucket_config::cors::{
    CORS_KEY, CorsConfiguration, EC_NO_CONFIGURATION, MAX_RULES, OSS_MAX_RULES,
};
use crate::bucket_config::{has_integrity_header, missing_integrity_header, stored, to_json};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::{ApiRequest, Dialect};
use crate::state::AppState;

/// `PUT /<bucket>?cors`: replaces the bucket's rules. S3 requires
/// Content-MD5 (or a checksum), as AWS does.
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
    let max_rules = match req.dialect {
        Dialect::S3 => MAX_RULES,
        Dialect::Oss => OSS_MAX_RULES,
    };
    let config = CorsConfiguration::parse_xml(&body, max_rules)?;
    save_bucket_config(state, bucket, CORS_KEY, to_json(&config)?).await?;
    empty_response(StatusCode::OK)
}

/// `GET /<bucket>?cors`; NoSuchCORSConfiguration when there are no rules.
pub async fn get(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let config = stored::<CorsConfiguration>(&bucket, CORS_KEY)?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::NoSuchCORSConfiguration,
            "The CORS configuration does not exist",
        )
        .with_ec(EC_NO_CONFIGURATION)
    })?;
    let mut w = req.xml("CORSConfiguration");
    config.write_xml(&mut w, req.dialect == Dialect::Oss);
    xml_response(StatusCode::OK, w.finish())
}

/// `DELETE /<bucket>?cors`: 204, with or without rules.
pub async fn delete(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    super::delete_bucket_configs(state, req, &[CORS_KEY]).await
}
