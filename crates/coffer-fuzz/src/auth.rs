//! The signature verifiers: SigV4, OSS V1 (with SigV2, which shares its
//! core) and OSS V4, header and presigned, plus scheme detection.
//!
//! Input is a request in the text form of the SDK captures:
//!
//! ```text
//! PUT /bucket/key?query
//! host: 127.0.0.1:18080
//! authorization: AWS4-HMAC-SHA256 Credential=…
//! ```
//!
//! Header lines that `http` refuses are skipped, as hyper would refuse the
//! request before the verifier saw it. Every verifier runs at the fixed
//! [`NOW`] against one credential, so captured and generated seeds verify
//! and the fuzzer starts from requests that reach the signature check.

use coffer_auth::{OssRequest, Secret, SignedRequest, SignedRequestV2, Verified, canonical};
use http::{HeaderMap, HeaderName, HeaderValue};
use time::OffsetDateTime;
use time::macros::datetime;

/// The credential of the captures (`tests/vectors/sdk-captures.txt`).
pub const ACCESS_KEY: &str = "AKIDEXAMPLE";
pub const SECRET_KEY: &str = "SECRETEXAMPLE";
/// The verification time: within the 15-minute skew of every capture.
pub const NOW: OffsetDateTime = datetime!(2026-11-29 11:25:35 UTC);

/// A request as the verifiers see it.
pub struct RawRequest {
    pub method: String,
    /// Percent-encoded, as received.
    pub path: String,
    /// Without the `?`.
    pub query: String,
    pub headers: HeaderMap,
}

impl RawRequest {
    /// Parses the text form; `None` without a UTF-8 `METHOD target` line.
    pub fn parse(data: &[u8]) -> Option<Self> {
        let mut lines = data.split(|&b| b == b'\n');
        let first = std::str::from_utf8(lines.next()?)
            .ok()?
            .trim_end_matches('\r');
        let (method, target) = first.split_once(' ')?;
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut headers = HeaderMap::new();
        for line in lines {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.trim_ascii()),
                HeaderValue::from_bytes(value),
            ) {
                headers.append(name, value);
            }
        }
        Some(Self {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
        })
    }

    /// Path-style addressing as the server resolves it: the bucket and the
    /// percent-decoded key (`None` when the decoded path is not UTF-8).
    fn bucket_and_key(&self) -> Option<(Option<String>, Option<String>)> {
        let rest = self.path.strip_prefix('/').unwrap_or(&self.path);
        if rest.is_empty() {
            return Some((None, None));
        }
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let decode = |s: &str| String::from_utf8(canonical::percent_decode(s)).ok();
        let key = decode(key)?;
        Some((Some(decode(bucket)?), (!key.is_empty()).then_some(key)))
    }

    fn signed(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: &self.method,
            raw_path: &self.path,
            raw_query: &self.query,
            headers: &self.headers,
        }
    }
}

fn lookup(access_key: &str) -> Option<Secret> {
    (access_key == ACCESS_KEY).then(|| Secret::new(SECRET_KEY))
}

fn wrong_secret(access_key: &str) -> Option<Secret> {
    (access_key == ACCESS_KEY).then(|| Secret::new("SECRETEXAMPLF"))
}

/// Runs `verify` with the right and with a wrong secret: a request that
/// verifies must stop verifying when only the secret changes, or the
/// verifier accepted it without checking the signature. Returns whether it
/// verified.
fn check<E>(verify: impl Fn(&dyn Fn(&str) -> Option<Secret>) -> Result<Verified, E>) -> bool {
    let verified = verify(&lookup).is_ok();
    if verified {
        assert!(
            verify(&wrong_secret).is_err(),
            "a request verified under a wrong secret"
        );
    }
    verified
}

/// SigV4 header and presigned verification (`AWS4-HMAC-SHA256`).
pub fn sigv4(data: &[u8]) {
    let _ = sigv4_verifies(data);
}

/// Whether `data` parses and verifies as SigV4 (for the replay test's check
/// that the seeds reach the signature comparison).
pub fn sigv4_verifies(data: &[u8]) -> bool {
    let Some(req) = RawRequest::parse(data) else {
        return false;
    };
    let _ = coffer_auth::detect(&req.headers, &req.query);
    check(|lookup| coffer_auth::sigv4::verify(&req.signed(), NOW, "s3", &lookup))
}

/// OSS V1 (`OSS ak:sig`, `OSSAccessKeyId=`) and SigV2 (`AWS ak:sig`,
/// `AWSAccessKeyId=`), both on the shared V1-family core.
pub fn oss_v1(data: &[u8]) {
    let _ = oss_v1_verifies(data);
}

/// Whether `data` verifies as OSS V1 or as SigV2.
pub fn oss_v1_verifies(data: &[u8]) -> bool {
    let Some(req) = RawRequest::parse(data) else {
        return false;
    };
    let _ = coffer_auth::detect(&req.headers, &req.query);
    let v2 = SignedRequestV2 {
        method: &req.method,
        host_bucket: None,
        raw_path: &req.path,
        raw_query: &req.query,
        headers: &req.headers,
    };
    let sigv2 = check(|lookup| coffer_auth::sigv2::verify(&v2, NOW, &lookup));
    let Some((bucket, key)) = req.bucket_and_key() else {
        return sigv2;
    };
    let oss = OssRequest {
        method: &req.method,
        bucket: bucket.as_deref(),
        key: key.as_deref(),
        raw_query: &req.query,
        headers: &req.headers,
    };
    let oss_v1 = check(|lookup| coffer_auth::oss_v1::verify(&oss, NOW, &lookup));
    sigv2 || oss_v1
}

/// OSS V4 header and presigned verification (`OSS4-HMAC-SHA256`).
pub fn oss_v4(data: &[u8]) {
    let _ = oss_v4_verifies(data);
}

/// Whether `data` verifies as OSS V4.
pub fn oss_v4_verifies(data: &[u8]) -> bool {
    let Some(req) = RawRequest::parse(data) else {
        return false;
    };
    let _ = coffer_auth::detect(&req.headers, &req.query);
    let Some((bucket, key)) = req.bucket_and_key() else {
        return false;
    };
    let oss = OssRequest {
        method: &req.method,
        bucket: bucket.as_deref(),
        key: key.as_deref(),
        raw_query: &req.query,
        headers: &req.headers,
    };
    check(|lookup| coffer_auth::oss_v4::verify(&oss, NOW, &lookup))
}
