//! Signing requests (header and presigned) for our own clients and tests.

use http::{HeaderMap, HeaderValue};

use super::{
    ALGORITHM, MAX_PRESIGNED_EXPIRES, UNSIGNED_PAYLOAD, canonical_request, string_to_sign,
};
use crate::amz_time::format_amz_date;
use crate::canonical::{canonical_query_string, uri_encode};
use crate::error::AuthError;
use crate::mac::hmac_sha256;
use crate::signing::{SigningParams, scope, signing_key};

/// All header names in `headers`, sorted and joined by `;`.
fn all_header_names(headers: &HeaderMap) -> Result<String, AuthError> {
    if !headers.contains_key(http::header::HOST) {
        return Err(AuthError::MissingSecurityHeader("host"));
    }
    let mut names: Vec<&str> = headers.keys().map(http::HeaderName::as_str).collect();
    names.sort_unstable();
    names.dedup();
    Ok(names.join(";"))
}

fn signature_hex(
    method: &str,
    raw_path: &str,
    canonical_query: &str,
    headers: &HeaderMap,
    signed_headers: &str,
    payload_hash: &str,
    params: &SigningParams<'_>,
) -> Result<String, AuthError> {
    let amz_date = format_amz_date(params.now);
    let date = &amz_date[..8];
    let canonical = canonical_request(
        method,
        raw_path,
        canonical_query,
        headers,
        signed_headers,
        payload_hash,
    )
    .ok_or(AuthError::MissingSecurityHeader("a signed header"))?;
    let scope = scope(date, params.region, params.service);
    let key = signing_key(params.secret, date, params.region, params.service);
    let sts = string_to_sign(&amz_date, &scope, &canonical);
    Ok(hex::encode(hmac_sha256(&key.0, sts.as_bytes())))
}

/// Signs a request with an `Authorization` header.
///
/// Sets `x-amz-date` and `x-amz-content-sha256` (= `payload_hash`), then
/// signs every header present (which must include `host`) and inserts
/// `Authorization`. `raw_path` and `raw_query` must be exactly what will be
/// sent. Returns the hex signature, the seed for [`super::ChunkSigner::new`].
pub fn sign(
    method: &str,
    raw_path: &str,
    raw_query: &str,
    headers: &mut HeaderMap,
    payload_hash: &str,
    params: &SigningParams<'_>,
) -> Result<String, AuthError> {
    headers.remove(http::header::AUTHORIZATION);
    let amz_date = format_amz_date(params.now);
    let date_value = HeaderValue::from_str(&amz_date)
        .map_err(|_| AuthError::InvalidArgument("invalid x-amz-date".into()))?;
    let hash_value = HeaderValue::from_str(payload_hash)
        .map_err(|_| AuthError::InvalidArgument("invalid payload hash".into()))?;
    headers.insert("x-amz-date", date_value);
    headers.insert("x-amz-content-sha256", hash_value);
    let signed_headers = all_header_names(headers)?;
    let canonical_query = canonical_query_string(raw_query, None);
    let signature = signature_hex(
        method,
        raw_path,
        &canonical_query,
        headers,
        &signed_headers,
        payload_hash,
        params,
    )?;
    let authorization = format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={signed_headers}, Signature={signature}",
        params.access_key,
        scope(&amz_date[..8], params.region, params.service),
    );
    let authorization = HeaderValue::from_str(&authorization)
        .map_err(|_| AuthError::InvalidArgument("invalid access key, region or service".into()))?;
    headers.insert(http::header::AUTHORIZATION, authorization);
    Ok(signature)
}

/// Presigns a request: returns the full query string (without `?`) to send,
/// i.e. `raw_query` followed by the `X-Amz-*` parameters and the signature.
///
/// Every header in `headers` is signed (usually just `host`, which is
/// required). The payload is `UNSIGNED-PAYLOAD`. `expires_secs` must be in
/// 1..=604800.
pub fn presign(
    method: &str,
    raw_path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    expires_secs: u32,
    params: &SigningParams<'_>,
) -> Result<String, AuthError> {
    if !(1..=MAX_PRESIGNED_EXPIRES).contains(&expires_secs) {
        return Err(AuthError::InvalidArgument(
            "X-Amz-Expires must be between 1 and 604800 seconds".into(),
        ));
    }
    let signed_headers = all_header_names(headers)?;
    let amz_date = format_amz_date(params.now);
    let credential = format!(
        "{}/{}",
        params.access_key,
        scope(&amz_date[..8], params.region, params.service)
    );
    let mut query = String::from(raw_query);
    if !query.is_empty() {
        query.push('&');
    }
    query.push_str(&format!(
        "X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={}&X-Amz-Date={amz_date}&X-Amz-Expires={expires_secs}&X-Amz-SignedHeaders={}",
        uri_encode(credential.as_bytes()),
        uri_encode(signed_headers.as_bytes()),
    ));
    let canonical_query = canonical_query_string(&query, None);
    let signature = signature_hex(
        method,
        raw_path,
        &canonical_query,
        headers,
        &signed_headers,
        UNSIGNED_PAYLOAD,
        params,
    )?;
    query.push_str("&X-Amz-Signature=");
    query.push_str(&signature);
    Ok(query)
}
