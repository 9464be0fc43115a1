//! Alibaba Cloud OSS signature V4 (`OSS4-HMAC-SHA256`): verification of
//! header and presigned authentication, and signing for our own clients.
//!
//! The construction is SigV4's with other names: the scope is
//! `date/region/oss/aliyun_v4_request`, the key chain starts from
//! `"aliyun_v4" + secret`, the canonical URI is `/bucket/key` re-encoded from
//! the decoded key (`/` kept), a value-less query parameter is written `k`
//! (not `k=`), and the canonical headers are the `x-oss-*`, `content-type`
//! and `content-md5` headers plus those named in `AdditionalHeaders`.
//! See <https://www.alibabacloud.com/help/en/oss/developer-reference/recommend-to-use-signature-version-4>.

use http::{HeaderMap, HeaderName, HeaderValue};
use time::{Duration, OffsetDateTime};

use crate::amz_time::{format_amz_date, parse_amz_date};
use crate::canonical::{
    canonical_form_query_pairs, decoded_form_query_pairs, uri_encode, uri_encode_path_into,
};
use crate::credentials::{self, Credentials};
use crate::error::AuthError;
use crate::mac::{constant_time_eq, decode_hex32, hmac_sha256, sha256};
use crate::oss::{OssRequest, push_trimmed_values};
use crate::scheme::Scheme;
use crate::secret::{Secret, SigningKey};
use crate::signing::SigningParams;
use crate::sigv4::{
    MAX_PRESIGNED_EXPIRES, MAX_SKEW, SecretLookup, UNSIGNED_PAYLOAD, malformed, parse_signature,
    single_header,
};
use crate::verified::{Payload, Verified};

/// The algorithm name, in `Authorization` and `x-oss-signature-version`.
pub const ALGORITHM: &str = "OSS4-HMAC-SHA256";
/// The product in the credential scope.
pub const PRODUCT: &str = "oss";
/// The last element of the credential scope.
pub const TERMINATOR: &str = "aliyun_v4_request";

/// `date/region/oss/aliyun_v4_request`.
fn scope(date: &str, region: &str) -> String {
    format!("{date}/{region}/{PRODUCT}/{TERMINATOR}")
}

fn signing_key(secret: &Secret, date: &str, region: &str) -> SigningKey {
    SigningKey::derive("aliyun_v4", secret, date, region, PRODUCT, TERMINATOR)
}

/// Whether `name` (lower case) goes into the canonical headers by default.
fn is_default_signed(name: &str) -> bool {
    name.starts_with("x-oss-") || name == "content-type" || name == "content-md5"
}

/// The canonical query: every parameter (but `exclude`), decoded with form
/// rules, re-encoded per RFC 3986, sorted, `k=v` or `k`, joined by `&`.
fn canonical_query(raw_query: &str, exclude: Option<&str>) -> String {
    let mut out = String::with_capacity(raw_query.len() + 8);
    for (name, value) in canonical_form_query_pairs(raw_query) {
        if exclude.is_some_and(|ex| ex == name) {
            continue;
        }
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&name);
        if !value.is_empty() {
            out.push('=');
            out.push_str(&value);
        }
    }
    out
}

/// The names of the canonical headers present in `headers`, sorted.
/// `additional` is the `;`-separated `AdditionalHeaders` list.
fn canonical_header_names<'h>(headers: &'h HeaderMap, additional: &str) -> Vec<&'h str> {
    let listed: Vec<String> = additional
        .split(';')
        .filter(|n| !n.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let mut names: Vec<&str> = headers
        .keys()
        .map(HeaderName::as_str)
        .filter(|name| is_default_signed(name) || listed.iter().any(|l| l == name))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The canonical request. `additional` is the `AdditionalHeaders` list as
/// the client sent it (`""` for none).
pub(crate) fn canonical_request(
    req: &OssRequest<'_>,
    canonical_query: &str,
    additional: &str,
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(req.method.as_bytes());
    out.push(b'\n');
    let mut uri = String::with_capacity(64);
    uri_encode_path_into(&req.resource_path(), &mut uri);
    out.extend_from_slice(uri.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query.as_bytes());
    out.push(b'\n');
    for name in canonical_header_names(req.headers, additional) {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        push_trimmed_values(req.headers, name, &mut out);
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(additional.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

/// `OSS4-HMAC-SHA256 \n x-oss-date \n scope \n hex(sha256(canonical request))`.
fn string_to_sign(oss_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{oss_date}\n{scope}\n{}",
        hex::encode(sha256(canonical_request))
    )
}

/// What the request claims, parsed from the header or the query.
struct Claims {
    access_key: String,
    scope_date: String,
    region: String,
    additional: String,
    signature: [u8; 32],
    oss_date: String,
    time: OffsetDateTime,
    payload_hash: String,
    canonical_query: String,
    /// `Some(x-oss-expires)` for presigned requests.
    expires: Option<u32>,
}

/// Splits `AK/date/region/oss/aliyun_v4_request`. The region may be empty.
fn parse_credential(value: &str, presigned: bool) -> Result<[String; 3], AuthError> {
    let parts: Vec<&str> = value.split('/').collect();
    let [access_key, date, region, product, terminator] = parts.as_slice() else {
        return Err(malformed(
            presigned,
            "the Credential must be <AccessKeyId>/<date>/<region>/oss/aliyun_v4_request",
        ));
    };
    if *terminator != TERMINATOR || *product != PRODUCT {
        return Err(malformed(
            presigned,
            "the credential scope must end with oss/aliyun_v4_request",
        ));
    }
    if access_key.is_empty() {
        return Err(malformed(presigned, "the AccessKeyId is empty"));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(presigned, "the credential date must be YYYYMMDD"));
    }
    Ok([access_key, date, region].map(|s| (*s).to_owned()))
}

fn check_additional_headers(list: &str, presigned: bool) -> Result<Vec<String>, AuthError> {
    if list.is_empty() {
        return Ok(Vec::new());
    }
    list.split(';')
        .map(|name| {
            if name.is_empty() || HeaderName::from_bytes(name.as_bytes()).is_err() {
                Err(malformed(
                    presigned,
                    "AdditionalHeaders lists an invalid header name",
                ))
            } else {
                Ok(name.to_ascii_lowercase())
            }
        })
        .collect()
}

fn parse_oss_date(value: &str, presigned: bool) -> Result<OffsetDateTime, AuthError> {
    parse_amz_date(value).ok_or_else(|| {
        malformed(
            presigned,
            "x-oss-date must be in the ISO8601 basic format yyyyMMdd'T'HHmmss'Z'",
        )
    })
}

fn claims_from_header(req: &OssRequest<'_>, authorization: &str) -> Result<Claims, AuthError> {
    let bad = |m: &str| AuthError::HeaderMalformed(m.to_owned());
    let [credential, additional, signature] = credentials::header_fields(
        authorization,
        ALGORITHM,
        ["Credential", "AdditionalHeaders", "Signature"],
    )?;
    let (Some(credential), Some(signature)) = (credential, signature) else {
        return Err(bad("Credential and Signature are required"));
    };
    let [access_key, scope_date, region] = parse_credential(credential, false)?;
    let signature = parse_signature(signature, false)?;
    let oss_date = single_header(req.headers, "x-oss-date")?
        .ok_or(AuthError::AccessDenied(
            "OSS V4 authentication requires a valid x-oss-date header",
        ))?
        .to_owned();
    let time = parse_amz_date(&oss_date).ok_or(AuthError::AccessDenied(
        "x-oss-date must be in the ISO8601 basic format yyyyMMdd'T'HHmmss'Z'",
    ))?;
    let payload_hash = single_header(req.headers, "x-oss-content-sha256")?
        .unwrap_or(UNSIGNED_PAYLOAD)
        .to_owned();
    Ok(Claims {
        access_key,
        scope_date,
        region,
        additional: additional.unwrap_or("").to_owned(),
        signature,
        oss_date,
        time,
        payload_hash,
        canonical_query: canonical_query(req.raw_query, None),
        expires: None,
    })
}

const PRESIGN_PARAMS: [&str; 6] = [
    "x-oss-signature-version",
    "x-oss-credential",
    "x-oss-date",
    "x-oss-expires",
    "x-oss-signature",
    "x-oss-additional-headers",
];

fn claims_from_query(
    req: &OssRequest<'_>,
    pairs: &[(Vec<u8>, Vec<u8>)],
) -> Result<Claims, AuthError> {
    let bad = |m: String| AuthError::QueryMalformed(m);
    let found = credentials::presign_params(pairs, &PRESIGN_PARAMS)?;
    let [
        Some(version),
        Some(credential),
        Some(oss_date),
        Some(expires),
        Some(signature),
        additional,
    ] = found
    else {
        return Err(bad(
            "x-oss-signature-version, x-oss-credential, x-oss-date, x-oss-expires and x-oss-signature are required"
                .into(),
        ));
    };
    if version != ALGORITHM {
        return Err(bad(
            "x-oss-signature-version only supports OSS4-HMAC-SHA256".into(),
        ));
    }
    let [access_key, scope_date, region] = parse_credential(&credential, true)?;
    let signature = parse_signature(&signature, true)?;
    let time = parse_oss_date(&oss_date, true)?;
    let expires =
        (!expires.is_empty() && expires.len() <= 7 && expires.bytes().all(|b| b.is_ascii_digit()))
            .then(|| expires.parse::<u32>().ok())
            .flatten()
            .filter(|e| (1..=MAX_PRESIGNED_EXPIRES).contains(e))
            .ok_or_else(|| bad("x-oss-expires must be between 1 and 604800 seconds".into()))?;
    Ok(Claims {
        access_key,
        scope_date,
        region,
        additional: additional.unwrap_or_default(),
        signature,
        oss_date,
        time,
        payload_hash: UNSIGNED_PAYLOAD.to_owned(),
        canonical_query: canonical_query(req.raw_query, Some("x-oss-signature")),
        expires: Some(expires),
    })
}

/// `x-oss-content-sha256`: `UNSIGNED-PAYLOAD` or a SHA-256 in hex.
fn payload(value: &str) -> Result<Payload, AuthError> {
    if value == UNSIGNED_PAYLOAD {
        return Ok(Payload::Unsigned);
    }
    decode_hex32(value.as_bytes())
        .map(Payload::Sha256)
        .ok_or_else(|| {
            AuthError::InvalidArgument(
                "x-oss-content-sha256 must be UNSIGNED-PAYLOAD or a SHA-256 in hex".into(),
            )
        })
}

/// Verifies the OSS V4 signature of a request, by `Authorization` header or
/// presigned query (`x-oss-signature-version`, `x-oss-credential`,
/// `x-oss-date`, `x-oss-expires`, `x-oss-signature`).
///
/// The region of the credential scope is returned, not checked (it may be
/// empty). Header form: `x-oss-date` must be within 15 minutes of `now`.
/// Presigned: `x-oss-date` at most 15 minutes ahead and `now` not past
/// `x-oss-date + x-oss-expires` (at most 604800 s, as for S3). On success
/// the caller must enforce [`Verified::payload`] ([`Payload::Sha256`] when
/// `x-oss-content-sha256` is a hash).
pub fn verify(
    req: &OssRequest<'_>,
    now: OffsetDateTime,
    lookup: &impl SecretLookup,
) -> Result<Verified, AuthError> {
    let pairs = decoded_form_query_pairs(req.raw_query);
    let in_query = pairs.iter().any(|(name, _)| {
        [
            &b"x-oss-signature-version"[..],
            b"x-oss-credential",
            b"x-oss-signature",
        ]
        .contains(&name.as_slice())
    });
    let claims = match credentials::locate(req.headers, in_query, "x-oss-signature")? {
        Credentials::Header(value) => claims_from_header(req, value)?,
        Credentials::Query => claims_from_query(req, &pairs)?,
    };
    let presigned = claims.expires.is_some();

    if claims.oss_date.get(..8) != Some(claims.scope_date.as_str()) {
        return Err(malformed(
            presigned,
            "the credential date is not the same as x-oss-date",
        ));
    }
    check_additional_headers(&claims.additional, presigned)?;
    match claims.expires {
        None if (claims.time - now).abs() > MAX_SKEW => return Err(AuthError::TimeTooSkewed),
        Some(_) if claims.time - now > MAX_SKEW => return Err(AuthError::NotYetValid),
        Some(expires)
            if claims
                .time
                .checked_add(Duration::seconds(i64::from(expires)))
                .is_none_or(|end| now > end) =>
        {
            return Err(AuthError::Expired);
        }
        _ => {}
    }
    let payload = payload(&claims.payload_hash)?;

    let secret = lookup
        .secret(&claims.access_key)
        .ok_or(AuthError::UnknownAccessKey)?;
    let key = signing_key(&secret, &claims.scope_date, &claims.region);
    drop(secret);
    let canonical = canonical_request(
        req,
        &claims.canonical_query,
        &claims.additional,
        &claims.payload_hash,
    );
    let scope = scope(&claims.scope_date, &claims.region);
    let expected = hmac_sha256(
        &key.0,
        string_to_sign(&claims.oss_date, &scope, &canonical).as_bytes(),
    );
    if !constant_time_eq(&expected, &claims.signature) {
        return Err(AuthError::SignatureMismatch);
    }

    let signed_headers = canonical_header_names(req.headers, &claims.additional)
        .into_iter()
        .map(str::to_owned)
        .collect();
    Ok(Verified {
        access_key: claims.access_key,
        region: claims.region,
        payload,
        presigned,
        signed_headers,
        scheme: if presigned {
            Scheme::OssV4Presigned
        } else {
            Scheme::OssV4
        },
    })
}

/// The `;`-joined names of the headers present that are not signed by
/// default, i.e. what `AdditionalHeaders` must list to sign every header.
fn additional_header_names(headers: &HeaderMap) -> String {
    let mut names: Vec<&str> = headers
        .keys()
        .map(HeaderName::as_str)
        .filter(|name| !is_default_signed(name))
        .collect();
    names.sort_unstable();
    names.dedup();
    names.join(";")
}

fn signature_hex(
    req: &OssRequest<'_>,
    canonical_query: &str,
    additional: &str,
    payload_hash: &str,
    params: &SigningParams<'_>,
) -> String {
    let oss_date = format_amz_date(params.now);
    let date = &oss_date[..8];
    let canonical = canonical_request(req, canonical_query, additional, payload_hash);
    let key = signing_key(params.secret, date, params.region);
    let sts = string_to_sign(&oss_date, &scope(date, params.region), &canonical);
    hex::encode(hmac_sha256(&key.0, sts.as_bytes()))
}

/// Signs a request with an `Authorization: OSS4-HMAC-SHA256 …` header.
///
/// Sets `x-oss-date` and `x-oss-content-sha256` (= `payload_hash`, usually
/// [`UNSIGNED_PAYLOAD`]), then signs every header present: the `x-oss-*`,
/// `content-type` and `content-md5` ones by default, the others (e.g.
/// `host`) through `AdditionalHeaders`. `params.service` is not used (the
/// product is always `oss`); `params.region` may be empty. Returns the hex
/// signature.
pub fn sign(
    method: &str,
    bucket: Option<&str>,
    key: Option<&str>,
    raw_query: &str,
    headers: &mut HeaderMap,
    payload_hash: &str,
    params: &SigningParams<'_>,
) -> Result<String, AuthError> {
    headers.remove(http::header::AUTHORIZATION);
    let oss_date = format_amz_date(params.now);
    let date_value = HeaderValue::from_str(&oss_date)
        .map_err(|_| AuthError::InvalidArgument("invalid x-oss-date".into()))?;
    let hash_value = HeaderValue::from_str(payload_hash)
        .map_err(|_| AuthError::InvalidArgument("invalid payload hash".into()))?;
    headers.insert("x-oss-date", date_value);
    headers.insert("x-oss-content-sha256", hash_value);
    let additional = additional_header_names(headers);
    let req = OssRequest {
        method,
        bucket,
        key,
        raw_query,
        headers: &*headers,
    };
    let signature = signature_hex(
        &req,
        &canonical_query(raw_query, None),
        &additional,
        payload_hash,
        params,
    );
    let mut authorization = format!(
        "{ALGORITHM} Credential={}/{}",
        params.access_key,
        scope(&oss_date[..8], params.region)
    );
    if !additional.is_empty() {
        authorization.push_str(",AdditionalHeaders=");
        authorization.push_str(&additional);
    }
    authorization.push_str(",Signature=");
    authorization.push_str(&signature);
    let authorization = HeaderValue::from_str(&authorization)
        .map_err(|_| AuthError::InvalidArgument("invalid access key or region".into()))?;
    headers.insert(http::header::AUTHORIZATION, authorization);
    Ok(signature)
}

/// Presigns a request: returns the full query string (without `?`) to send,
/// i.e. `raw_query` followed by the `x-oss-*` parameters and the signature.
///
/// Every header in `headers` is signed (the ones not signed by default via
/// `x-oss-additional-headers`); a plain browser GET has none. The payload is
/// `UNSIGNED-PAYLOAD`. `expires_secs` must be in 1..=604800.
pub fn presign(
    method: &str,
    bucket: Option<&str>,
    key: Option<&str>,
    raw_query: &str,
    headers: &HeaderMap,
    expires_secs: u32,
    params: &SigningParams<'_>,
) -> Result<String, AuthError> {
    if !(1..=MAX_PRESIGNED_EXPIRES).contains(&expires_secs) {
        return Err(AuthError::InvalidArgument(
            "x-oss-expires must be between 1 and 604800 seconds".into(),
        ));
    }
    let oss_date = format_amz_date(params.now);
    let credential = format!(
        "{}/{}",
        params.access_key,
        scope(&oss_date[..8], params.region)
    );
    let additional = additional_header_names(headers);
    let mut query = String::from(raw_query);
    if !query.is_empty() {
        query.push('&');
    }
    query.push_str(&format!(
        "x-oss-signature-version={ALGORITHM}&x-oss-date={oss_date}&x-oss-expires={expires_secs}&x-oss-credential={}",
        uri_encode(credential.as_bytes()),
    ));
    if !additional.is_empty() {
        query.push_str("&x-oss-additional-headers=");
        query.push_str(&uri_encode(additional.as_bytes()));
    }
    let req = OssRequest {
        method,
        bucket,
        key,
        raw_query: &query,
        headers,
    };
    let signature = signature_hex(
        &req,
        &canonical_query(&query, None),
        &additional,
        UNSIGNED_PAYLOAD,
        params,
    );
    query.push_str("&x-oss-signature=");
    query.push_str(&signature);
    Ok(query)
}

#[cfg(test)]
mod tests;
