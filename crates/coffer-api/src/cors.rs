//! Cross-origin requests at the HTTP edge: the preflight `OPTIONS` answer
//! and the `Access-Control-*` headers of actual responses (errors included),
//! both from the bucket's CORS rules (`bucket_config::cors`). Preflights are
//! unsigned, as browsers send them; they reveal only whether the rules allow
//! the request.

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

use crate::body::ResponseBody;
use crate::bucket_config::cors::{CORS_KEY, CorsConfiguration, CorsRequest, CorsRule};
use crate::bucket_config::stored;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

/// What S3 answers a preflight its rules do not allow.
const NOT_ALLOWED: &str = "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.";
/// The `Vary` of every answer to a bucket with rules (S3 sends it whether or
/// not a rule matched, so caches keep answers to different origins apart).
const VARY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

/// Answers `OPTIONS` on `bucket` from its rules: 200 with the matching
/// rule's headers, else 403 AccessForbidden as S3 gives it.
pub async fn preflight(
    state: &AppState,
    headers: &HeaderMap,
    bucket: &str,
) -> ApiResult<Response<ResponseBody>> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let origin = text("origin").ok_or_else(|| {
        ApiError::new(
            ErrorCode::BadRequest,
            "Insufficient information. Origin request header needed.",
        )
    })?;
    let method = text("access-control-request-method").ok_or_else(|| {
        ApiError::new(
            ErrorCode::BadRequest,
            "Invalid Access-Control-Request-Method: null",
        )
    })?;
    let requested_headers: Vec<&str> = text("access-control-request-headers")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let forbidden = |message: &str| ApiError::new(ErrorCode::AccessForbidden, message);
    let record = match state.meta.get_bucket(bucket).await {
        Ok(record) => record,
        Err(coffer_store::StoreError::NoSuchBucket) => {
            return Err(forbidden("CORSResponse: Bucket not found"));
        }
        Err(error) => return Err(error.into()),
    };
    let config = stored::<CorsConfiguration>(&record, CORS_KEY)?
        .ok_or_else(|| forbidden("CORSResponse: CORS is not enabled for this bucket."))?;
    let request = CorsRequest {
        origin,
        method,
        headers: requested_headers,
    };
    let rule = config
        .matching(&request)
        .ok_or_else(|| forbidden(NOT_ALLOWED))?;
    let mut response = Response::new(ResponseBody::Empty);
    *response.status_mut() = StatusCode::OK;
    let out = response.headers_mut();
    allow(out, rule, origin);
    if !request.headers.is_empty() {
        insert(
            out,
            "access-control-allow-headers",
            &request.headers.join(", "),
        );
    }
    insert(out, "vary", VARY);
    Ok(response)
}

/// Adds the `Access-Control-*` headers of the rule of `bucket` that allows
/// `method` from `origin` to `response` (any status), and `Vary` when the
/// bucket has rules. A bucket that cannot be read adds nothing.
pub async fn decorate(
    state: &AppState,
    bucket: &str,
    origin: &str,
    method: &Method,
    response: &mut Response<ResponseBody>,
) {
    let Ok(record) = state.meta.get_bucket(bucket).await else {
        return;
    };
    let Ok(Some(config)) = stored::<CorsConfiguration>(&record, CORS_KEY) else {
        return;
    };
    let request = CorsRequest {
        origin,
        method: method.as_str(),
        headers: Vec::new(),
    };
    let out = response.headers_mut();
    if let Some(rule) = config.matching(&request) {
        allow(out, rule, origin);
    }
    // OSS sends `Vary` only when the rules ask for it (ResponseVary).
    if config.response_vary != Some(false) {
        insert(out, "vary", VARY);
    }
}

/// The headers that grant a matching rule's access.
fn allow(out: &mut HeaderMap, rule: &CorsRule, origin: &str) {
    if rule.any_origin() {
        insert(out, "access-control-allow-origin", "*");
    } else {
        insert(out, "access-control-allow-origin", origin);
        insert(out, "access-control-allow-credentials", "true");
    }
    insert(
        out,
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
    );
    if !rule.expose_headers.is_empty() {
        insert(
            out,
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
    if let Some(seconds) = rule.max_age_seconds {
        insert(out, "access-control-max-age", &seconds.to_string());
    }
}

/// Sets header `name`; a value that cannot be a header (an origin the
/// client sent, echoed) is left out.
fn insert(out: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        out.insert(name, value);
    }
}
