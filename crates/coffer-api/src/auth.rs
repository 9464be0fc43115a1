//! Authentication at the API edge: who signed the request, and whether a
//! small in-memory body matches what the signature and headers promised.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use coffer_auth::chunked::{ChunkMode, ChunkedDecoder};
use coffer_auth::{
    AuthError, OssRequest, Payload, Scheme, SignedRequest, SignedRequestV2, oss_v1, oss_v4, sigv2,
    sigv4,
};
use http::HeaderMap;
use md5::{Digest, Md5};
use sha2::Sha256;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::{Target, resolve_target};
use crate::state::{AppState, Principal};

/// Verifies the request's signature in whichever scheme it uses (SigV4,
/// SigV2, OSS V1, OSS V4; header or presigned URL) and names its principal.
/// Anonymous requests are refused. Errors carry S3 codes; the OSS dialect
/// renames some when the error is rendered.
pub fn authenticate(
    state: &AppState,
    parts: &http::request::Parts,
    target: &Target,
) -> ApiResult<(Principal, Payload)> {
    let raw_query = parts.uri.query().unwrap_or_default();
    let now = time::OffsetDateTime::now_utc();
    let verified = match coffer_auth::detect(&parts.headers, raw_query) {
        None => {
            return Err(ApiError::access_denied(
                "Anonymous access is not allowed: sign the request.",
            ));
        }
        Some(scheme) if scheme.is_oss() => {
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
        Some(Scheme::SigV2 | Scheme::SigV2Presigned) => {
            let request = SignedRequestV2 {
                method: parts.method.as_str(),
                host_bucket: host_bucket(parts.uri.path(), target),
                raw_path: parts.uri.path(),
                raw_query,
                headers: &parts.headers,
            };
            sigv2::verify(&request, now, state)
        }
        Some(_) => {
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
    Ok((principal, verified.payload))
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

/// How a body must be checked, from its payload mode: an aws-chunked
/// decoder (which verifies chunk signatures) and/or a SHA-256 to match.
pub struct BodyChecks {
    pub decoder: Option<ChunkedDecoder>,
    pub sha256: Option<[u8; 32]>,
}

impl From<Payload> for BodyChecks {
    fn from(payload: Payload) -> Self {
        let (decoder, sha256) = match payload {
            Payload::Unsigned => (None, None),
            Payload::Sha256(hash) => (None, Some(hash)),
            Payload::StreamingSigned(signer) => (
                Some(ChunkedDecoder::new(ChunkMode::Signed(signer), false)),
                None,
            ),
            Payload::StreamingSignedTrailer(signer) => (
                Some(ChunkedDecoder::new(ChunkMode::Signed(signer), true)),
                None,
            ),
            Payload::StreamingUnsignedTrailer => {
                (Some(ChunkedDecoder::new(ChunkMode::Unsigned, true)), None)
            }
        };
        Self { decoder, sha256 }
    }
}

pub fn sha256_mismatch() -> ApiError {
    ApiError::new(
        ErrorCode::XAmzContentSHA256Mismatch,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    )
}

/// Checks a small body read into memory against the payload hash, the
/// aws-chunked framing and Content-MD5, returning the decoded body.
pub fn verify_small_body(headers: &HeaderMap, payload: Payload, raw: Bytes) -> ApiResult<Bytes> {
    let checks = BodyChecks::from(payload);
    let body = match checks.decoder {
        Some(mut decoder) => {
            let mut out = Vec::new();
            decoder.push(&raw, &mut out).map_err(ApiError::chunked)?;
            decoder.finish().map_err(ApiError::chunked)?;
            Bytes::from(out)
        }
        None => raw,
    };
    if let Some(expected) = checks.sha256
        && Sha256::digest(&body).as_slice() != expected.as_slice()
    {
        return Err(sha256_mismatch());
    }
    for (name, value) in headers {
        if let Some(algorithm) = coffer_auth::ChecksumAlgorithm::from_header_name(name.as_str())
            && value.to_str().ok().map(str::trim) != Some(algorithm.checksum(&body).as_str())
        {
            return Err(ApiError::bad_digest(format!(
                "The {} you specified did not match the calculated checksum.",
                algorithm.name()
            )));
        }
    }
    if let Some(expected) = headers.get("content-md5").and_then(|v| v.to_str().ok()) {
        let actual = BASE64.encode(Md5::digest(&body));
        if expected.trim() != actual {
            return Err(ApiError::bad_digest(
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    Ok(body)
}
