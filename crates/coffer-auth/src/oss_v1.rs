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

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, HeaderValue};
use time::OffsetDateTime;

use crate::amz_time::{format_http_date, parse_amz_date, parse_http_date};
use crate::canonical::{decoded_form_query_pairs, uri_encode};
use crate::error::AuthError;
use crate::mac::{constant_time_eq, hmac_sha1};
use crate::oss::{OssRequest, push_trimmed_values, x_oss_header_names};
use crate::scheme::Scheme;
use crate::secret::Secret;
use crate::sigv4::{MAX_SKEW, SecretLookup, SigningParams, single_header};
use crate::verified::{Payload, Verified};

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

/// The `Authorization` header type.
const AUTH_TYPE: &str = "OSS";
const DATE_REQUIRED: &str = "OSS authentication requires a valid Date.";

fn is_subresource(name: &[u8]) -> bool {
    SUBRESOURCES.iter().any(|s| s.as_bytes() == name)
}

/// The string to sign, with `date` as the DATE line (the `x-oss-date` or
/// `Date` header value, or the presigned `Expires`).
pub(crate) fn string_to_sign(req: &OssRequest<'_>, date: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(req.method.as_bytes());
    out.push(b'\n');
    push_trimmed_values(req.headers, "content-md5", &mut out);
    out.push(b'\n');
    push_trimmed_values(req.headers, "content-type", &mut out);
    out.push(b'\n');
    out.extend_from_slice(date.as_bytes());
    out.push(b'\n');
    for name in x_oss_header_names(req.headers) {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        push_trimmed_values(req.headers, name, &mut out);
        out.push(b'\n');
    }
    out.extend_from_slice(&req.resource_path());
    let mut subresources: Vec<(Vec<u8>, Vec<u8>)> = decoded_form_query_pairs(req.raw_query)
        .into_iter()
        .filter(|(name, _)| is_subresource(name))
        .collect();
    subresources.sort();
    for (i, (name, value)) in subresources.iter().enumerate() {
        out.push(if i == 0 { b'?' } else { b'&' });
        out.extend_from_slice(name);
        if !value.is_empty() {
            out.push(b'=');
            out.extend_from_slice(value);
        }
    }
    out
}

fn signature(secret: &Secret, string_to_sign: &[u8]) -> [u8; 20] {
    hmac_sha1(secret.expose_secret().as_bytes(), string_to_sign)
}

/// What the request claims, from the header or the query.
struct Claims {
    access_key: String,
    /// Base64 as sent; decoded only to compare.
    signature: String,
    /// The DATE line of the string to sign.
    date: String,
    /// The header that gave the date (`x-oss-date`, `date`), or `None` if presigned.
    date_header: Option<&'static str>,
}

fn claims_from_header(headers: &HeaderMap, authorization: &str) -> Result<Claims, AuthError> {
    let bad = |m: &str| AuthError::HeaderMalformed(m.to_owned());
    let (access_key, signature) = authorization
        .strip_prefix(AUTH_TYPE)
        .filter(|rest| rest.starts_with([' ', '\t']))
        .and_then(|rest| rest.trim().rsplit_once(':'))
        .ok_or_else(|| bad("the authorization must be OSS <AccessKeyId>:<Signature>"))?;
    let access_key = access_key.trim();
    if access_key.is_empty() || access_key.contains([' ', '\t']) {
        return Err(bad("the AccessKeyId is empty or contains spaces"));
    }
    let (date_header, value) = match single_header(headers, "x-oss-date")? {
        Some(value) => ("x-oss-date", value),
        None => (
            "date",
            single_header(headers, "date")?.ok_or(AuthError::AccessDenied(DATE_REQUIRED))?,
        ),
    };
    Ok(Claims {
        access_key: access_key.to_owned(),
        signature: signature.trim().to_owned(),
        date: value.to_owned(),
        date_header: Some(date_header),
    })
}

fn claims_from_query(pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<Claims, AuthError> {
    const PARAMS: [&str; 3] = ["OSSAccessKeyId", "Expires", "Signature"];
    let bad = |m: String| AuthError::QueryMalformed(m);
    let mut found: [Option<String>; 3] = Default::default();
    for (name, value) in pairs {
        let Some(index) = PARAMS.iter().position(|p| p.as_bytes() == name.as_slice()) else {
            continue;
        };
        let value = String::from_utf8(value.clone())
            .map_err(|_| bad(format!("{} is not valid text", PARAMS[index])))?;
        if found[index].replace(value).is_some() {
            return Err(bad(format!("{} appears more than once", PARAMS[index])));
        }
    }
    let [Some(access_key), Some(expires), Some(signature)] = found else {
        return Err(bad(
            "OSSAccessKeyId, Expires and Signature are required".into()
        ));
    };
    if access_key.is_empty() {
        return Err(bad("OSSAccessKeyId is empty".into()));
    }
    Ok(Claims {
        access_key,
        signature,
        date: expires,
        date_header: None,
    })
}

/// Parses `Expires`: unix seconds, 1 to 19 digits.
fn parse_expires(value: &str) -> Option<i64> {
    (!value.is_empty() && value.len() <= 19 && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse().ok())
        .flatten()
}

/// Verifies the OSS V1 signature of a request, by `Authorization` header or
/// presigned query (`OSSAccessKeyId`, `Expires`, `Signature`).
///
/// Header form: the `x-oss-date` (else `Date`) header must be within
/// 15 minutes of `now`. Presigned: `now` must not be past `Expires`. V1
/// never signs the body: [`Verified::payload`] is [`Payload::Unsigned`] and
/// [`Verified::region`] is empty.
pub fn verify(
    req: &OssRequest<'_>,
    now: OffsetDateTime,
    lookup: &impl SecretLookup,
) -> Result<Verified, AuthError> {
    let mut authorization = req.headers.get_all(http::header::AUTHORIZATION).iter();
    let header = authorization.next();
    if authorization.next().is_some() {
        return Err(AuthError::HeaderMalformed(
            "more than one Authorization header".into(),
        ));
    }
    let pairs = decoded_form_query_pairs(req.raw_query);
    let in_query = pairs
        .iter()
        .any(|(name, _)| name.as_slice() == b"OSSAccessKeyId");
    let claims = match (header, in_query) {
        (Some(_), true) => {
            return Err(AuthError::InvalidArgument(
                "Only one auth mechanism allowed; only the OSSAccessKeyId query parameter or the Authorization header should be specified".into(),
            ));
        }
        (Some(value), false) => {
            let value = value.to_str().map_err(|_| {
                AuthError::HeaderMalformed("the Authorization header is not valid text".into())
            })?;
            claims_from_header(req.headers, value.trim())?
        }
        (None, true) => claims_from_query(&pairs)?,
        (None, false) => return Err(AuthError::Missing),
    };

    match claims.date_header {
        Some(_) => {
            let time = parse_http_date(&claims.date)
                .or_else(|| parse_amz_date(&claims.date))
                .ok_or(AuthError::AccessDenied(DATE_REQUIRED))?;
            if (time - now).abs() > MAX_SKEW {
                return Err(AuthError::TimeTooSkewed);
            }
        }
        None => {
            let expires = parse_expires(&claims.date).ok_or_else(|| {
                AuthError::QueryMalformed("Expires must be a time in unix seconds".into())
            })?;
            if now.unix_timestamp() > expires {
                return Err(AuthError::Expired);
            }
        }
    }

    let secret = lookup
        .secret(&claims.access_key)
        .ok_or(AuthError::UnknownAccessKey)?;
    let expected = signature(&secret, &string_to_sign(req, &claims.date));
    drop(secret);
    let given = BASE64
        .decode(claims.signature.as_bytes())
        .map_err(|_| AuthError::SignatureMismatch)?;
    if !constant_time_eq(&expected, &given) {
        return Err(AuthError::SignatureMismatch);
    }

    let presigned = claims.date_header.is_none();
    let mut signed_headers: Vec<String> = ["content-md5", "content-type"]
        .into_iter()
        .chain(claims.date_header)
        .filter(|name| req.headers.contains_key(*name))
        .map(str::to_owned)
        .collect();
    for name in x_oss_header_names(req.headers) {
        if claims.date_header != Some(name) {
            signed_headers.push(name.to_owned());
        }
    }
    Ok(Verified {
        access_key: claims.access_key,
        region: String::new(),
        payload: Payload::Unsigned,
        presigned,
        signed_headers,
        scheme: if presigned {
            Scheme::OssV1Presigned
        } else {
            Scheme::OssV1
        },
    })
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
    headers.remove(http::header::AUTHORIZATION);
    headers.insert(
        http::header::DATE,
        HeaderValue::from_str(&format_http_date(params.now))
            .map_err(|_| AuthError::InvalidArgument("invalid Date".into()))?,
    );
    let date = match single_header(headers, "x-oss-date")? {
        Some(value) => value.to_owned(),
        None => format_http_date(params.now),
    };
    let req = OssRequest {
        method,
        bucket,
        key,
        raw_query,
        headers: &*headers,
    };
    let signature = BASE64.encode(signature(params.secret, &string_to_sign(&req, &date)));
    let authorization =
        HeaderValue::from_str(&format!("{AUTH_TYPE} {}:{signature}", params.access_key))
            .map_err(|_| AuthError::InvalidArgument("invalid access key".into()))?;
    headers.insert(http::header::AUTHORIZATION, authorization);
    Ok(signature)
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
    let expires = params.now.unix_timestamp() + i64::from(expires_secs);
    let req = OssRequest {
        method,
        bucket,
        key,
        raw_query,
        headers,
    };
    let signature = BASE64.encode(signature(
        params.secret,
        &string_to_sign(&req, &expires.to_string()),
    ));
    let mut query = String::from(raw_query);
    if !query.is_empty() {
        query.push('&');
    }
    query.push_str(&format!(
        "OSSAccessKeyId={}&Expires={expires}&Signature={}",
        uri_encode(params.access_key.as_bytes()),
        uri_encode(signature.as_bytes())
    ));
    Ok(query)
}

#[cfg(test)]
mod tests;
