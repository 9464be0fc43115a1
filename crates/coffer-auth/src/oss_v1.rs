//! Alibaba Cloud OSS signature V1: `Authorization: OSS <ak>:<signature>` and
//! presigned URLs (`OSSAccessKeyId`, `Expires`, `Signature`), HMAC-SHA1.
//!
//! ```text
//! StringToSign = VERB \n Content-MD5 \n Content-Type \n DATE \n
//!                CanonicalizedOSSHeaders CanonicalizedResource
//! ```
//! DATE is `x-oss-date` or `Date` (header form) or the `Expires` value
//! (presigned). CanonicalizedOSSHeaders is every `x-oss-*` header, sorted,
//! `name:value\n` each. CanonicalizedResource is `/bucket/key` with the key
//! *decoded*, followed by `?` and the signed sub-resources ([`SUBRESOURCES`])
//! sorted, decoded, `k=v` or `k`, joined by `&`.
//! See <https://www.alibabacloud.com/help/en/oss/developer-reference/include-signatures-in-the-authorization-header>.
//!
//! The scheme is one `Variant` of the V1 family shared with
//! [`crate::sigv2`] (see `v1_family`).

use http::HeaderMap;
use time::OffsetDateTime;

#[cfg(test)]
use crate::amz_time::parse_http_date;
use crate::amz_time::{parse_amz_date, parse_http_date as http_date};
use crate::canonical::decoded_form_query_pairs;
use crate::error::AuthError;
use crate::oss::OssRequest;
use crate::scheme::Scheme;
#[cfg(test)]
use crate::secret::Secret;
use crate::signing::SigningParams;
use crate::sigv4::SecretLookup;
use crate::v1_family::{DateOverride, ResourceRule, V1Request, Variant};
#[cfg(test)]
use crate::verified::Payload;
use crate::verified::Verified;

/// The query parameters that are signed (the sub-resources): the union of
/// the lists of oss2 2.19.1 (`auth.py`) and alibabacloud-oss-v2 1.4.1
/// (`signer/v1.py`, plus the per-operation `encryption`, `httpsConfig`).
/// Every other parameter (`prefix`, `list-type`, `max-keys`…) is unsigned.
pub const SUBRESOURCES: &[&str] = &[
    "acl",
    "uploadId",
    "uploads",
    "partNumber",
    "group",
    "link",
    "delete",
    "website",
    "location",
    "objectInfo",
    "objectMeta",
    "response-content-type",
    "response-content-language",
    "response-cache-control",
    "response-content-encoding",
    "response-expires",
    "response-content-disposition",
    "logging",
    "cors",
    "lifecycle",
    "restore",
    "qos",
    "referer",
    "stat",
    "bucketInfo",
    "append",
    "position",
    "security-token",
    "live",
    "comp",
    "status",
    "vod",
    "startTime",
    "endTime",
    "x-oss-process",
    "symlink",
    "callback",
    "callback-var",
    "tagging",
    "encryption",
    "versions",
    "versioning",
    "versionId",
    "policy",
    "requestPayment",
    "x-oss-traffic-limit",
    "qosInfo",
    "asyncFetch",
    "x-oss-request-payer",
    "sequential",
    "inventory",
    "inventoryId",
    "continuation-token",
    "worm",
    "wormId",
    "wormExtend",
    "replication",
    "replicationLocation",
    "replicationProgress",
    "transferAcceleration",
    "cname",
    "metaQuery",
    "x-oss-ac-source-ip",
    "x-oss-ac-subnet-mask",
    "x-oss-ac-vpc-id",
    "x-oss-ac-forward-allow",
    "resourceGroup",
    "style",
    "styleName",
    "x-oss-async-process",
    "regionList",
    "x-oss-write-get-object-response",
    "bucketArchiveDirectRead",
    "httpsConfig",
    "redundancyTransition",
    "x-oss-target-redundancy-type",
    "x-oss-redundancy-transition-taskid",
    "accessPoint",
    "accessPointPolicy",
    "publicAccessBlock",
    "x-oss-access-point-name",
    "requesterQosInfo",
    "qosRequester",
    "resourcePoolInfo",
    "resourcePool",
    "resourcePoolBuckets",
    // alibabacloud-oss-v2 only.
    "cloudboxes",
];

/// OSS V1 as a member of the V1 family.
pub(crate) static OSS_V1: Variant = Variant {
    algorithm: "OSS",
    header_prefix: "x-oss-",
    date_header: "x-oss-date",
    date_override: DateOverride::ReplacesDateLine,
    subresources: SUBRESOURCES,
    access_key_param: "OSSAccessKeyId",
    resource: ResourceRule::DecodedBucketKey,
    query_pairs: decoded_form_query_pairs,
    parse_date: parse_oss_date,
    headers_in_query: false,
    schemes: (Scheme::OssV1, Scheme::OssV1Presigned),
    date_required: "OSS authentication requires a valid Date.",
};

fn parse_oss_date(value: &str) -> Option<OffsetDateTime> {
    http_date(value).or_else(|| parse_amz_date(value))
}

#[cfg(test)]
fn is_subresource(name: &[u8]) -> bool {
    OSS_V1.is_subresource(name)
}

fn v1_request<'a>(req: &OssRequest<'a>) -> V1Request<'a> {
    V1Request {
        method: req.method,
        raw_query: req.raw_query,
        headers: req.headers,
        resource_path: req.resource_path(),
    }
}

/// The string to sign, with `date` as the DATE line (the `x-oss-date` or
/// `Date` header value, or the presigned `Expires`).
#[cfg(test)]
pub(crate) fn string_to_sign(req: &OssRequest<'_>, date: &str) -> Vec<u8> {
    OSS_V1.string_to_sign(&v1_request(req), date, None, false)
}

/// Verifies the OSS V1 signature of a request, by `Authorization` header or
/// presigned query (`OSSAccessKeyId`, `Expires`, `Signature`).
///
/// Header form: the `x-oss-date` (else `Date`) header must be within
/// 15 minutes of `now`. Presigned: `now` must not be past `Expires`. V1
/// never signs the body: [`Verified::payload`] is [`Payload::Unsigned`] and
/// [`Verified::region`] is empty.
///
/// [`Payload::Unsigned`]: crate::Payload::Unsigned
pub fn verify(
    req: &OssRequest<'_>,
    now: OffsetDateTime,
    lookup: &impl SecretLookup,
) -> Result<Verified, AuthError> {
    OSS_V1.verify(&v1_request(req), now, lookup)
}

/// Signs a request with an `Authorization: OSS …` header.
///
/// Sets `Date` to `params.now` (unless an `x-oss-date` header is present,
/// which then takes its place) and inserts `Authorization`. Content-MD5,
/// Content-Type and every `x-oss-*` header present are signed, so set them
/// first. `params.region` and `params.service` are not used. Returns the
/// base64 signature.
pub fn sign(
    method: &str,
    bucket: Option<&str>,
    key: Option<&str>,
    raw_query: &str,
    headers: &mut HeaderMap,
    params: &SigningParams<'_>,
) -> Result<String, AuthError> {
    let empty = HeaderMap::new();
    let resource_path = OssRequest {
        method,
        bucket,
        key,
        raw_query,
        headers: &empty,
    }
    .resource_path();
    OSS_V1.sign(method, raw_query, resource_path, headers, params)
}

/// Presigns a request: returns the full query string (without `?`) to send,
/// i.e. `raw_query` followed by `OSSAccessKeyId`, `Expires` (`params.now` +
/// `expires_secs`) and `Signature`. Content-MD5, Content-Type and the
/// `x-oss-*` headers in `headers` are signed and must be sent as they are.
pub fn presign(
    method: &str,
    bucket: Option<&str>,
    key: Option<&str>,
    raw_query: &str,
    headers: &HeaderMap,
    expires_secs: u32,
    params: &SigningParams<'_>,
) -> Result<String, AuthError> {
    let req = OssRequest {
        method,
        bucket,
        key,
        raw_query,
        headers,
    };
    Ok(OSS_V1.presign(&v1_request(&req), expires_secs, params))
}

#[cfg(test)]
mod tests;
