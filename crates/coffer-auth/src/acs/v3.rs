//! POP signature V3 (`ACS3-HMAC-SHA256`):
//!
//! ```text
//! CanonicalRequest = METHOD \n path \n canonical query \n
//!                    canonical headers (name:value\n each) \n
//!                    signed header names (a;b;c) \n hex SHA-256 of the body
//! StringToSign     = "ACS3-HMAC-SHA256" \n hex SHA-256(CanonicalRequest)
//! Signature        = hex HMAC-SHA256(secret, StringToSign)
//! Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<names>,Signature=<hex>
//! ```
//!
//! The canonical query sorts the decoded parameters by name and
//! percent-encodes names and values per RFC 3986. Headers are lower-cased,
//! trimmed, and sorted; repeated ones are joined with `,`. The verifier
//! insists that `host`, `content-type` (when sent) and every `x-acs-*`
//! header are signed, and that `x-acs-content-sha256` is the body's hash,
//! so no part of the request can change without breaking the signature.

use http::HeaderMap;
use time::OffsetDateTime;

use super::{AcsVerified, checked_nonce, checked_time};
use crate::canonical::{decoded_form_query_pairs, uri_encode};
use crate::mac::{constant_time_eq, hmac_sha256, sha256_hex};
use crate::{AuthError, SecretLookup};

/// The algorithm name, which starts the `Authorization` header.
pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// The parts of an `ACS3-HMAC-SHA256` `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// `Credential`: the AccessKeyId.
    pub access_key: String,
    /// `SignedHeaders`, lower case, as given.
    pub signed_headers: Vec<String>,
    /// `Signature`: lower-case hex.
    pub signature: String,
}

/// Whether an `Authorization` value uses V3 (the server routes on it).
pub fn is_v3(authorization: &str) -> bool {
    authorization
        .strip_prefix(ALGORITHM)
        .is_some_and(|rest| rest.starts_with(' '))
}

/// Parses `ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…`.
pub fn parse_authorization(value: &str) -> Result<Authorization, AuthError> {
    let malformed = |why: &str| AuthError::HeaderMalformed(why.to_owned());
    let rest = value
        .strip_prefix(ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| malformed("the algorithm must be ACS3-HMAC-SHA256"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for field in rest.split(',') {
        let (name, value) = field
            .trim()
            .split_once('=')
            .ok_or_else(|| malformed("every field must be Name=value"))?;
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => return Err(malformed("unknown field")),
        };
        if slot.replace(value).is_some() {
            return Err(malformed("a field is given twice"));
        }
    }
    let credential = credential
        .filter(|c| !c.is_empty())
        .ok_or_else(|| malformed("Credential is missing"))?;
    let signed: Vec<String> = signed
        .ok_or_else(|| malformed("SignedHeaders is missing"))?
        .split(';')
        .map(str::to_owned)
        .collect();
    if signed
        .iter()
        .any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err(malformed("SignedHeaders must be lower-case names"));
    }
    let signature = signature
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| malformed("Signature must be 64 hex digits"))?;
    Ok(Authorization {
        access_key: credential.to_owned(),
        signed_headers: signed,
        signature: signature.to_ascii_lowercase(),
    })
}

/// The canonical request over `signed_headers` (lower case, any order).
/// `None` when a signed header is absent or not text.
pub fn canonical_request(
    method: &str,
    path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    signed_headers: &[String],
    payload_sha256_hex: &str,
) -> Option<String> {
    let mut pairs = decoded_form_query_pairs(raw_query);
    pairs.sort();
    let query = pairs
        .iter()
        .map(|(name, value)| format!("{}={}", uri_encode(name), uri_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    let mut names: Vec<&str> = signed_headers.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    let mut canonical_headers = String::new();
    for name in &names {
        let mut values = headers
            .get_all(*name)
            .iter()
            .map(|v| v.to_str().map(str::trim))
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    Some(format!(
        "{method}\n{path}\n{query}\n{canonical_headers}\n{}\n{payload_sha256_hex}",
        names.join(";")
    ))
}

/// The string to sign for a canonical request.
pub fn string_to_sign(canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// The hex HMAC-SHA256 of `string_to_sign` under `secret`.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), string_to_sign.as_bytes()))
}

/// Verifies a V3-signed request and its body.
pub fn verify(
    method: &str,
    path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: OffsetDateTime,
    lookup: &impl SecretLookup,
) -> Result<AcsVerified, AuthError> {
    let authorization = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?
        .to_str()
        .map_err(|_| AuthError::HeaderMalformed("the header is not text".into()))?;
    let authorization = parse_authorization(authorization)?;
    let signed = |name: &str| authorization.signed_headers.iter().any(|h| h == name);
    for name in headers.keys() {
        let name = name.as_str();
        let must_sign = name == "host" || name == "content-type" || name.starts_with("x-acs-");
        if must_sign && !signed(name) {
            return Err(AuthError::HeaderMalformed(format!(
                "the header {name} must be signed"
            )));
        }
    }
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::MissingSecurityHeader(name))
    };
    header("host")?;
    let payload = header("x-acs-content-sha256")?;
    let digest = sha256_hex(body);
    if !payload.eq_ignore_ascii_case(&digest) {
        return Err(AuthError::ContentSha256Mismatch);
    }
    let nonce = checked_nonce(header("x-acs-signature-nonce")?)?;
    let time = checked_time(header("x-acs-date")?, now)?;
    let secret = lookup
        .secret(&authorization.access_key)
        .ok_or(AuthError::UnknownAccessKey)?;
    let canonical = canonical_request(
        method,
        path,
        raw_query,
        headers,
        &authorization.signed_headers,
        payload,
    )
    .ok_or_else(|| AuthError::HeaderMalformed("a signed header is missing".into()))?;
    let expected = signature(secret.expose_secret(), &string_to_sign(&canonical));
    if !constant_time_eq(expected.as_bytes(), authorization.signature.as_bytes()) {
        return Err(AuthError::SignatureMismatch);
    }
    Ok(AcsVerified {
        access_key: authorization.access_key,
        nonce,
        time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    /// A GenerateDataKey request as `alibabacloud_tea_openapi` 0.4.6 signs
    /// it; the Authorization below is what its `Utils.get_authorization`
    /// produced for these inputs (secret `secret-example`).
    const BODY: &[u8] = b"Recipient=x%3Dy";
    const QUERY: &str = "EncryptionContext=%7B%22a%22%3A%22b%20c%22%7D&KeyId=alias%2Fmy-key&KeySpec=AES_256&NumberOfBytes=32";
    const AUTHORIZATION: &str = "ACS3-HMAC-SHA256 Credential=AKIDEXAMPLE,SignedHeaders=accept;content-type;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=4d4a4c1219cdc540bbde6153830b8e0e476cf956589a8b8ed405a10ecda0b9ed";

    fn headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "kms.example.test:9443"),
            ("x-acs-version", "2016-01-20"),
            ("x-acs-action", "GenerateDataKey"),
            ("user-agent", "test/1.0"),
            ("x-acs-date", "2026-12-03T07:26:18Z"),
            ("x-acs-signature-nonce", "a1b2c3d4e5f60718293a4b5c6d7e8f90"),
            ("accept", "application/json"),
            ("content-type", "application/x-www-form-urlencoded"),
            (
                "x-acs-content-sha256",
                "d30ba88468a3b385562d65febade96e3fee942171bb612668344fb070d5de065",
            ),
            ("authorization", AUTHORIZATION),
        ] {
            headers.insert(name, value.parse().expect("a valid header value"));
        }
        headers
    }

    fn lookup(key: &str) -> Option<Secret> {
        (key == "AKIDEXAMPLE").then(|| Secret::new("secret-example"))
    }

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-12-03 07:30:00 UTC)
    }

    fn check(
        method: &str,
        query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<AcsVerified, AuthError> {
        verify(method, "/", query, headers, body, now(), &lookup)
    }

    #[test]
    fn verifies_the_sdk_vector() {
        let verified = check("POST", QUERY, &headers(), BODY).expect("verifies");
        assert_eq!(verified.access_key, "AKIDEXAMPLE");
        assert_eq!(verified.nonce, "a1b2c3d4e5f60718293a4b5c6d7e8f90");
    }

    fn flip_first(text: &str) -> String {
        let mut bytes = text.as_bytes().to_vec();
        bytes[0] ^= 0x01;
        String::from_utf8(bytes).expect("ASCII stays ASCII")
    }

    #[test]
    fn one_changed_bit_anywhere_is_refused() {
        // Every signed header's value, including the signature itself.
        for name in headers().keys() {
            let mut changed = headers();
            let value = changed[name].to_str().expect("text").to_owned();
            changed.insert(name, flip_first(&value).parse().expect("a header value"));
            assert!(
                check("POST", QUERY, &changed, BODY).is_err(),
                "a flipped bit in {name} was accepted"
            );
        }
        // The body, the query, the method.
        let mut body = BODY.to_vec();
        body[3] ^= 0x01;
        assert_eq!(
            check("POST", QUERY, &headers(), &body),
            Err(AuthError::ContentSha256Mismatch)
        );
        for at in 0..QUERY.len() {
            let mut query = QUERY.as_bytes().to_vec();
            query[at] ^= 0x01;
            let query = String::from_utf8(query).expect("ASCII stays ASCII");
            assert!(
                check("POST", &query, &headers(), BODY).is_err(),
                "a flipped bit at query byte {at} was accepted"
            );
        }
        assert!(check("PUT", QUERY, &headers(), BODY).is_err());
    }

    #[test]
    fn an_unsigned_acs_header_is_refused() {
        let mut extra = headers();
        extra.insert("x-acs-extra", "1".parse().expect("a header value"));
        assert!(matches!(
            check("POST", QUERY, &extra, BODY),
            Err(AuthError::HeaderMalformed(_))
        ));
    }

    #[test]
    fn refuses_skew_and_unknown_keys() {
        let late = now() + time::Duration::minutes(16);
        assert_eq!(
            verify("POST", "/", QUERY, &headers(), BODY, late, &lookup),
            Err(AuthError::TimeTooSkewed)
        );
        let nobody = |_: &str| None;
        assert_eq!(
            verify("POST", "/", QUERY, &headers(), BODY, now(), &nobody),
            Err(AuthError::UnknownAccessKey)
        );
    }
}
