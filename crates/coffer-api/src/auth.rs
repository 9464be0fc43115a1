//! Authentication at the API edge: who signed the request, and whether a
//! small in-memory body matches what the signature and headers promised.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use coffer_auth::chunked::{ChunkMode, ChunkedDecoder};
use coffer_auth::sigv4::{self, Payload, SignedRequest};
use http::{HeaderMap, StatusCode};
use md5::{Digest, Md5};
use sha2::Sha256;

use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, Principal};

/// Verifies the request's SigV4 signature (header or presigned URL) and
/// names its principal. Anonymous requests are refused.
pub fn authenticate(
    state: &AppState,
    method: &str,
    raw_path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    service: &str,
) -> ApiResult<(Principal, Payload)> {
    let signed = headers.contains_key(http::header::AUTHORIZATION)
        || raw_query.contains("X-Amz-Signature=")
        || raw_query.contains("X-Amz-Credential=");
    if !signed {
        return Err(ApiError::access_denied(
            "Anonymous access is not allowed: sign the request with SigV4.",
        ));
    }
    let request = SignedRequest {
        method,
        raw_path,
        raw_query,
        headers,
    };
    let verified = sigv4::verify(&request, time::OffsetDateTime::now_utc(), service, state)?;
    let principal = state.principal_for(&verified.access_key).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        )
    })?;
    Ok((principal, verified.payload))
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
        StatusCode::BAD_REQUEST,
        "XAmzContentSHA256Mismatch",
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
