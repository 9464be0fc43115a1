//! Whether a request body matches what its signature and headers
//! promised: the checks a payload mode asks for (aws-chunked framing and
//! chunk signatures, a signed SHA-256), Content-MD5 and `x-amz-checksum-*`.
//! Used for small in-memory bodies here and for streamed ones by
//! `object_io`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use coffer_auth::Payload;
use coffer_auth::chunked::{ChunkMode, ChunkedDecoder};
use http::HeaderMap;
use md5::{Digest, Md5};
use sha2::Sha256;

use crate::error::{ApiError, ApiResult, ErrorCode};

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
