//! OSS bucket WORM retention policy: InitiateBucketWorm (`POST ?worm`),
//! AbortBucketWorm (`DELETE ?worm`), CompleteBucketWorm
//! (`POST ?wormId=ID`), ExtendBucketWorm (`POST ?wormId=ID&wormExtend`),
//! GetBucketWorm (`GET ?worm`). The state machine is
//! `bucket_config::worm`; these handlers read the stored policy, apply one
//! transition and write it back.

use coffer_auth::sigv4::Payload;
use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::{
    authorized_bucket, empty_response, now_ms, save_bucket_config, small_body, xml_response,
};
use crate::body::ResponseBody;
use crate::bucket_config::worm::{self, WORM_KEY, WormConfig};
use crate::bucket_config::{stored, to_json};
use crate::error::{ApiError, ApiResult};
use crate::request::{ApiRequest, Dialect};
use crate::state::AppState;

fn oss_only(req: &ApiRequest) -> ApiResult<()> {
    match req.dialect {
        Dialect::Oss => Ok(()),
        Dialect::S3 => Err(ApiError::not_implemented(
            "The WORM retention policy in the S3 dialect (S3 uses ?object-lock)",
        )),
    }
}

fn worm_id(req: &ApiRequest) -> ApiResult<&str> {
    req.param("wormId")
        .ok_or_else(|| ApiError::invalid_argument("wormId is required."))
}

/// `POST /<bucket>?worm`: answers the new policy's id in `x-oss-worm-id`.
pub async fn initiate(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    oss_only(req)?;
    let bucket = authorized_bucket(state, req).await?;
    let body = small_body(req, body, payload).await?;
    let days = worm::parse_period(&body)?;
    let existing = stored::<WormConfig>(&bucket, WORM_KEY)?;
    let config = worm::initiate(existing, days, worm::new_worm_id()?, now_ms())?;
    let id = config.worm_id.clone();
    save_bucket_config(state, bucket, WORM_KEY, to_json(&config)?).await?;
    let mut response = empty_response(StatusCode::OK)?;
    let value =
        http::HeaderValue::from_str(&id).map_err(|e| ApiError::internal("x-oss-worm-id", e))?;
    response.headers_mut().insert("x-oss-worm-id", value);
    Ok(response)
}

/// `DELETE /<bucket>?worm`: removes a policy that is not locked.
pub async fn abort(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    oss_only(req)?;
    let bucket = authorized_bucket(state, req).await?;
    worm::abort(stored(&bucket, WORM_KEY)?, now_ms())?;
    state
        .meta
        .set_bucket_config(&bucket.name, WORM_KEY, None)
        .await?;
    empty_response(StatusCode::NO_CONTENT)
}

/// `POST /<bucket>?wormId=ID`: locks the policy.
pub async fn complete(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    oss_only(req)?;
    let bucket = authorized_bucket(state, req).await?;
    let config = worm::complete(stored(&bucket, WORM_KEY)?, worm_id(req)?, now_ms())?;
    save_bucket_config(state, bucket, WORM_KEY, to_json(&config)?).await?;
    empty_response(StatusCode::OK)
}

/// `POST /<bucket>?wormId=ID&wormExtend`: a longer retention period.
pub async fn extend(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    oss_only(req)?;
    let bucket = authorized_bucket(state, req).await?;
    let body = small_body(req, body, payload).await?;
    let days = worm::parse_period(&body)?;
    let config = worm::extend(stored(&bucket, WORM_KEY)?, worm_id(req)?, days, now_ms())?;
    save_bucket_config(state, bucket, WORM_KEY, to_json(&config)?).await?;
    empty_response(StatusCode::OK)
}

/// `GET /<bucket>?worm`.
pub async fn get(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    oss_only(req)?;
    let bucket = authorized_bucket(state, req).await?;
    let config = worm::current(stored(&bucket, WORM_KEY)?, now_ms())?;
    xml_response(StatusCode::OK, worm::render(&config))
}
