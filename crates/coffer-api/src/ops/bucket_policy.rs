//! The bucket policy: `?policy` PUT/GET/DELETE in both dialects (S3's IAM JSON, OSS's RAM
//! form) and S3's `?policyStatus`. A document is parsed and validated whole by `coffer-policy`
//! before it is stored, as sent; one that does not parse, names a resource outside the bucket,
//! or is public under BlockPublicPolicy is refused and nothing is stored. Its evaluation is
//! `authz`'s.

use std::sync::Arc;

use coffer_auth::sigv4::Payload;
use coffer_policy::{Policy, Service};
use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::{authorized_bucket, empty_response, small_body, xml_response};
use crate::authz::bucket_policy::{self, POLICY_KEY, POLICY_MAX_BYTES, POLICY_SERVICE_KEY};
use crate::authz::public_access_block::PublicAccessBlock;
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::{ApiRequest, Dialect};
use crate::state::AppState;

fn malformed(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::MalformedPolicy, message)
}

/// Parses and validates a PutBucketPolicy body for `bucket`: the document's text and its
/// parsed form, or `MalformedPolicy` with the parser's reason.
pub fn validate(body: &[u8], bucket: &str, dialect: Dialect) -> ApiResult<(String, Arc<Policy>)> {
    if body.len() > POLICY_MAX_BYTES {
        return Err(malformed(format!(
            "Policies must be less than {} KiB: this one has {} bytes.",
            POLICY_MAX_BYTES / 1024,
            body.len()
        )));
    }
    let text =
        std::str::from_utf8(body).map_err(|_| malformed("Policies must be valid JSON (UTF-8)."))?;
    let policy =
        bucket_policy::parse(text, service(dialect)).map_err(|error| malformed(error.message))?;
    policy
        .check_bucket(bucket)
        .map_err(|error| malformed(error.message))?;
    Ok((text.to_owned(), policy))
}

fn service(dialect: Dialect) -> Service {
    match dialect {
        Dialect::S3 => Service::S3,
        Dialect::Oss => Service::Oss,
    }
}

/// `PUT /<bucket>?policy`.
pub async fn put(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let body = small_body(req, body, payload).await?;
    let (text, policy) = validate(&body, &bucket.name, req.dialect)?;
    if PublicAccessBlock::of(&bucket).block_public_policy && policy.is_public() {
        return Err(ApiError::access_denied(
            "Access Denied: the bucket's public access block (BlockPublicPolicy) refuses a public policy.",
        ));
    }
    // The dialect first: a policy is never evaluated as the other dialect's document.
    let marker = (req.dialect == Dialect::Oss).then(|| "oss".to_owned());
    state
        .meta
        .set_bucket_config(&bucket.name, POLICY_SERVICE_KEY, marker)
        .await?;
    state
        .meta
        .set_bucket_config(&bucket.name, POLICY_KEY, Some(text))
        .await?;
    empty_response(match req.dialect {
        Dialect::S3 => StatusCode::NO_CONTENT,
        Dialect::Oss => StatusCode::OK,
    })
}

fn no_policy() -> ApiError {
    ApiError::new(
        ErrorCode::NoSuchBucketPolicy,
        "The bucket policy does not exist",
    )
}

/// `GET /<bucket>?policy`: the document as it was stored.
pub async fn get(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let text = bucket.config.get(POLICY_KEY).ok_or_else(no_policy)?;
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(ResponseBody::full(text.clone()))
        .map_err(|e| ApiError::internal("building a response", e))
}

/// `DELETE /<bucket>?policy`.
pub async fn delete(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    super::delete_bucket_configs(state, req, &[POLICY_KEY, POLICY_SERVICE_KEY]).await
}

/// `GET /<bucket>?policyStatus`: whether the policy makes the bucket public (AWS's meaning of
/// public); `NoSuchBucketPolicy` without one.
pub async fn status(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    if !bucket.config.contains_key(POLICY_KEY) {
        return Err(no_policy());
    }
    // A stored document that no longer parses is reported public: the safe answer.
    let public = bucket_policy::of(&bucket).map_or(true, |p| p.is_some_and(|p| p.is_public()));
    let mut w = req.xml("PolicyStatus");
    w.elem("IsPublic", public.to_string());
    xml_response(StatusCode::OK, w.finish())
}
