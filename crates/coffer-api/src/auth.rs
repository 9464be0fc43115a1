//! Authentication at the API edge: who signed the request.

use coffer_auth::{
    AuthError, OssRequest, Payload, Scheme, SignedRequest, SignedRequestV2, oss_v1, oss_v4, sigv2,
    sigv4,
};

use crate::error::{ApiError, ApiResult};
use crate::request::{Target, resolve_target};
use crate::state::{AppState, Principal};

/// Who made a request and how its body is protected.
pub struct Authenticated {
    /// The signer, or [`Principal::Anonymous`] for an unsigned request.
    pub principal: Principal,
    /// How the body is protected (an unsigned request's is [`Payload::Unsigned`]).
    pub payload: Payload,
    /// The access key id that signed it; `None` when unsigned.
    pub access_key: Option<String>,
    /// The signature scheme (`s3:signatureversion`, `s3:authType`); `None` when unsigned.
    pub scheme: Option<Scheme>,
}

/// Verifies the request's signature in whichever scheme it uses (SigV4,
/// SigV2, OSS V1, OSS V4; header or presigned URL) and names its principal.
/// An unsigned request is [`Principal::Anonymous`]: what it may do is the
/// authorization's question (`authz`), except that the admin API never
/// serves one. Errors carry S3 codes; the OSS dialect renames some when the
/// error is rendered.
pub fn authenticate(
    state: &AppState,
    parts: &http::request::Parts,
    target: &Target,
) -> ApiResult<Authenticated> {
    let raw_query = parts.uri.query().unwrap_or_default();
    let now = time::OffsetDateTime::now_utc();
    let Some(scheme) = coffer_auth::detect(&parts.headers, raw_query) else {
        if parts.uri.path().starts_with(crate::router::ADMIN_PREFIX) {
            return Err(ApiError::access_denied(
                "Anonymous access is not allowed: sign the request.",
            ));
        }
        return Ok(Authenticated {
            principal: Principal::Anonymous,
            payload: Payload::Unsigned,
            access_key: None,
            scheme: None,
        });
    };
    let verified = match scheme {
        scheme if scheme.is_oss() => {
            let request = OssRequest {
                method: parts.method.as_str(),
                bucket: target.bucket.as_deref(),
                key: target.key.as_deref(),
                raw_query,
                headers: &parts.headers,
            };
            match scheme {
                Scheme::OssV1 | Scheme::OssV1Presigned => oss_v1::verify(&request, now, state),
                _ => oss_v4::verify(&request, now, state),
            }
        }
        Scheme::SigV2 | Scheme::SigV2Presigned => {
            let request = SignedRequestV2 {
                method: parts.method.as_str(),
                host_bucket: host_bucket(parts.uri.path(), target),
                raw_path: parts.uri.path(),
                raw_query,
                headers: &parts.headers,
            };
            sigv2::verify(&request, now, state)
        }
        _ => {
            let request = SignedRequest {
                method: parts.method.as_str(),
                raw_path: parts.uri.path(),
                raw_query,
                headers: &parts.headers,
            };
            sigv4::verify(&request, now, "s3", state)
        }
    }
    .map_err(ApiError::from)?;
    let principal = state
        .principal_for(&verified.access_key)
        .ok_or_else(|| ApiError::from(AuthError::UnknownAccessKey))?;
    Ok(Authenticated {
        principal,
        payload: verified.payload,
        access_key: Some(verified.access_key),
        scheme: Some(scheme),
    })
}

/// The bucket when the host named it (virtual-host or CNAME addressing),
/// which SigV2 signs before the path: the target differs from what the path
/// alone gives. `None` for path-style requests.
fn host_bucket<'a>(raw_path: &str, target: &'a Target) -> Option<&'a str> {
    let bucket = target.bucket.as_deref()?;
    match resolve_target(raw_path, None, &[]) {
        Ok(path_style) if path_style == *target => None,
        _ => Some(bucket),
    }
}
