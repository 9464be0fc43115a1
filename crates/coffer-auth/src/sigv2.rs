//! AWS Signature Version 2 (legacy S3): `Authorization: AWS <ak>:<signature>`
//! and presigned URLs (`AWSAccessKeyId`, `Expires`, `Signature`), HMAC-SHA1.
//!
//! ```text
//! StringToSign = VERB \n Content-MD5 \n Content-Type \n DATE \n
//!                CanonicalizedAmzHeaders CanonicalizedResource
//! ```
//! DATE is the `Date` header, empty when `x-amz-date` is present (which is
//! then signed among the `x-amz-*` headers), or `Expires` (presigned).
//! CanonicalizedAmzHeaders is every `x-amz-*` header, sorted, `name:value\n`
//! each, several values joined by `,`. CanonicalizedResource is `/bucket`
//! when the bucket is in the host, then the path *as sent* (still
//! percent-encoded; `/bucket/` for a bucket, even when sent as `/bucket`),
//! then `?` and the signed sub-resources ([`SUBRESOURCES`])
//! sorted, with decoded values, `k=v` or `k`, joined by `&`.
//! See <https://docs.aws.amazon.com/AmazonS3/latest/API/RESTAuthentication.html>.
//!
//! Presigned URLs made by botocore carry the signed `x-amz-*`,
//! `Content-Type` and `Content-MD5` as query parameters; they are signed as
//! headers. SigV2 never signs the body: [`Verified::payload`] is
//! [`crate::Payload::Unsigned`] (a `Content-MD5` is checked separately).
//!
//! This is one `Variant` of the V1 family shared with [`crate::oss_v1`].

use http::HeaderMap;
use time::OffsetDateTime;

use crate::amz_time::parse_date_lenient;
use crate::canonical::decoded_query_pairs;
use crate::error::AuthError;
use crate::scheme::Scheme;
use crate::signing::SigningParams;
use crate::sigv4::SecretLookup;
use crate::v1_family::{DateOverride, ResourceRule, V1Request, Variant};
use crate::verified::Verified;

/// The signed query parameters: botocore 1.43's `HmacV1Auth.QSAOfInterest`
/// (what the aws CLI v1 and boto3 sign), which contains the list of the S3
/// developer guide. Every other parameter (`prefix`, `max-keys`…) is unsigned.
pub const SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "cors",
    "defaultObjectAcl",
    "location",
    "logging",
    "partNumber",
    "policy",
    "requestPayment",
    "torrent",
    "versioning",
    "versionId",
    "versions",
    "website",
    "uploads",
    "uploadId",
    "response-content-type",
    "response-content-language",
    "response-expires",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "delete",
    "lifecycle",
    "tagging",
    "restore",
    "storageClass",
    "notification",
    "replication",
    "analytics",
    "metrics",
    "inventory",
    "select",
    "select-type",
    "object-lock",
];

/// SigV2 as a member of the V1 family.
pub(crate) static SIGV2: Variant = Variant {
    algorithm: "AWS",
    header_prefix: "x-amz-",
    date_header: "x-amz-date",
    date_override: DateOverride::BlanksDateLine,
    subresources: SUBRESOURCES,
    access_key_param: "AWSAccessKeyId",
    resource: ResourceRule::RawPath,
    query_pairs: decoded_query_pairs,
    parse_date: parse_date_lenient,
    headers_in_query: true,
    schemes: (Scheme::SigV2, Scheme::SigV2Presigned),
    date_required: "AWS authentication requires a valid Date or x-amz-date header",
};

/// The parts of a request that SigV2 covers, exactly as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequestV2<'a> {
    /// The HTTP method, e.g. `PUT`.
    pub method: &'a str,
    /// The bucket when the host named it (virtual-host or CNAME addressing);
    /// `None` for path-style requests, whose path already starts with it.
    pub host_bucket: Option<&'a str>,
    /// The request path exactly as received, still percent-encoded.
    pub raw_path: &'a str,
    /// The query string as received, without the `?`.
    pub raw_query: &'a str,
    /// The request headers.
    pub headers: &'a HeaderMap,
}

/// The canonical resource path: `/bucket` (virtual host) + the raw path,
/// with a bucket-only path ending in `/`: a path-style `/bkt` signs as
/// `/bkt/`, as botocore (its `authPath`), boto 2 and s3cmd sign it.
fn resource_path(host_bucket: Option<&str>, raw_path: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw_path.len() + 64);
    if let Some(bucket) = host_bucket {
        out.push(b'/');
        out.extend_from_slice(bucket.as_bytes());
    }
    if raw_path.is_empty() {
        out.push(b'/');
    } else {
        out.extend_from_slice(raw_path.as_bytes());
        // By bytes: a path that does not start with `/` may start with a
        // multi-byte character, where `raw_path[1..]` would panic.
        if host_bucket.is_none() && raw_path.len() > 1 && !raw_path.as_bytes()[1..].contains(&b'/')
        {
            out.push(b'/');
        }
    }
    out
}

fn v1_request<'a>(req: &SignedRequestV2<'a>) -> V1Request<'a> {
    V1Request {
        method: req.method,
        raw_query: req.raw_query,
        headers: req.headers,
        resource_path: resource_path(req.host_bucket, req.raw_path),
    }
}

/// The string to sign, with `date` as the DATE line.
#[cfg(test)]
pub(crate) fn string_to_sign(req: &SignedRequestV2<'_>, date: &str, presigned: bool) -> Vec<u8> {
    SIGV2.string_to_sign(&v1_request(req), date, None, presigned)
}

/// Verifies the SigV2 signature of a request, by `Authorization: AWS …`
/// header or presigned query (`AWSAccessKeyId`, `Expires`, `Signature`).
///
/// Header form: `x-amz-date` (else `Date`) must be within 15 minutes of
/// `now`. Presigned: `now` must not be past `Expires`. The body is never
/// signed ([`crate::Payload::Unsigned`]) and [`Verified::region`] is empty.
pub fn verify(
    req: &SignedRequestV2<'_>,
    now: OffsetDateTime,
    lookup: &impl SecretLookup,
) -> Result<Verified, AuthError> {
    let canonical = SIGV2.verify(&v1_request(req), now, lookup);
    if !matches!(canonical, Err(AuthError::SignatureMismatch)) || !is_bare_bucket_path(req) {
        return canonical;
    }
    // rclone's SigV2 signer signs a path-style bucket request's path as sent
    // (`/bkt`); both forms name the same bucket, so either signature is the
    // signer's own statement about this request.
    let as_sent = V1Request {
        resource_path: req.raw_path.as_bytes().to_vec(),
        ..v1_request(req)
    };
    SIGV2.verify(&as_sent, now, lookup).or(canonical)
}

/// A path-style request naming only a bucket, without the trailing `/`
/// that [`resource_path`] adds.
fn is_bare_bucket_path(req: &SignedRequestV2<'_>) -> bool {
    let path = req.raw_path.as_bytes();
    req.host_bucket.is_none() && path.len() > 1 && path[0] == b'/' && !path[1..].contains(&b'/')
}

/// Signs a request with an `Authorization: AWS …` header.
///
/// Sets `Date` to `params.now` and inserts `Authorization`; if an
/// `x-amz-date` header is present the DATE line is empty and it is signed
/// among the `x-amz-*` headers instead. Content-MD5, Content-Type and every
/// `x-amz-*` header present are signed, so set them first. `params.region`
/// and `params.service` are not used. Returns the base64 signature.
pub fn sign(
    method: &str,
    host_bucket: Option<&str>,
    raw_path: &str,
    raw_query: &str,
    headers: &mut HeaderMap,
    params: &SigningParams<'_>,
) -> Result<String, AuthError> {
    SIGV2.sign(
        method,
        raw_query,
        resource_path(host_bucket, raw_path),
        headers,
        params,
    )
}

/// Presigns a request: returns the full query string (without `?`) to send,
/// i.e. `raw_query` followed by `AWSAccessKeyId`, `Expires` (`params.now` +
/// `expires_secs`) and `Signature`. Content-MD5, Content-Type and the
/// `x-amz-*` headers in `headers` (or in `raw_query`) are signed and must be
/// sent as they are.
pub fn presign(
    method: &str,
    host_bucket: Option<&str>,
    raw_path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    expires_secs: u32,
    params: &SigningParams<'_>,
) -> Result<String, AuthError> {
    let req = SignedRequestV2 {
        method,
        host_bucket,
        raw_path,
        raw_query,
        headers,
    };
    Ok(SIGV2.presign(&v1_request(&req), expires_secs, params))
}

#[cfg(test)]
mod tests;
