//! `users/<name>/policy`: the identity policy attached to a user (`coffer user policy
//! put|get|delete`). A document is validated whole before it is stored ([`identity::parse`]),
//! so a stored policy is always one the server understands; it is kept as written, and
//! removed with its user.

use coffer_auth::sigv4::Payload;
use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::json;
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::identity;
use crate::ops::small_body;
use crate::request::{ApiRequest, path_decode};
use crate::state::AppState;

/// The largest document accepted, in bytes (AWS: 6,144 characters for a managed policy; a
/// bucket policy may have 20 KiB, which this follows).
const MAX_POLICY_BYTES: usize = 20 * 1024;

/// `GET`: the document as it was PUT.
pub(super) async fn get(state: &AppState, name: &str) -> ApiResult<Response<ResponseBody>> {
    let name = path_decode(name)?;
    let user = state.meta.user_by_name(&name).await?.ok_or_else(no_user)?;
    let Some(policy) = user.policy else {
        return Err(ApiError::new(
            ErrorCode::NoSuchUserPolicy,
            format!("The user {name} has no policy attached."),
        ));
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(ResponseBody::full(policy.into_bytes()))
        .map_err(|e| ApiError::internal("building a response", e))
}

/// `PUT`: validates the document and attaches it, replacing any earlier one.
pub(super) async fn put(
    state: &AppState,
    req: &ApiRequest,
    name: &str,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let name = path_decode(name)?;
    let body = small_body(req, body, payload).await?;
    if body.len() > MAX_POLICY_BYTES {
        return Err(ApiError::new(
            ErrorCode::MalformedPolicy,
            format!("A user policy is at most {MAX_POLICY_BYTES} bytes."),
        ));
    }
    let document = std::str::from_utf8(&body)
        .map_err(|_| ApiError::new(ErrorCode::MalformedPolicy, "The policy is not UTF-8."))?;
    identity::parse(document)
        .map_err(|error| ApiError::new(ErrorCode::MalformedPolicy, error.message))?;
    if !state
        .meta
        .set_user_policy(&name, Some(document.to_owned()))
        .await?
    {
        return Err(no_user());
    }
    tracing::info!(user = %name, "user policy attached");
    json(StatusCode::NO_CONTENT, &serde_json::json!({}))
}

/// `DELETE`: detaches the policy (no error when there was none, as S3's DeleteBucketPolicy).
pub(super) async fn delete(state: &AppState, name: &str) -> ApiResult<Response<ResponseBody>> {
    let name = path_decode(name)?;
    if !state.meta.set_user_policy(&name, None).await? {
        return Err(no_user());
    }
    tracing::info!(user = %name, "user policy detached");
    json(StatusCode::NO_CONTENT, &serde_json::json!({}))
}

fn no_user() -> ApiError {
    ApiError::new(ErrorCode::NoSuchUser, "The user does not exist.")
}
