//! POP signature V1 (`SignatureMethod=HMAC-SHA1`, `SignatureVersion=1.0`):
//! every request parameter (query and form body) but `Signature`, sorted by
//! name, each name and value percent-encoded per RFC 3986 and joined as
//! `k=v&…`; the string to sign is `METHOD&%2F&` followed by that canonical
//! query percent-encoded once more, and the signature is the base64 of its
//! HMAC-SHA1 under the key `secret&`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use time::OffsetDateTime;

use super::{AcsVerified, checked_nonce, checked_time};
use crate::canonical::uri_encode;
use crate::mac::{constant_time_eq, hmac_sha1};
use crate::{AuthError, SecretLookup};

/// The one signature method V1 defines.
pub const SIGNATURE_METHOD: &str = "HMAC-SHA1";
/// The one signature version.
pub const SIGNATURE_VERSION: &str = "1.0";

/// The V1 string to sign for `method` over the decoded `params` (which
/// must not hold `Signature`).
pub fn string_to_sign(method: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Byte order of UTF-8 is code-point order, which the SDKs sort by.
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let canonical = sorted
        .iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                uri_encode(name.as_bytes()),
                uri_encode(value.as_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{method}&%2F&{}", uri_encode(canonical.as_bytes()))
}

/// The base64 HMAC-SHA1 of `string_to_sign` under `secret&`.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    let key = zeroize::Zeroizing::new(format!("{secret}&"));
    BASE64.encode(hmac_sha1(key.as_bytes(), string_to_sign.as_bytes()))
}

/// Verifies a V1-signed request: `params` are all its decoded parameters,
/// query and form body together, `Signature` included. Each name may occur
/// once.
pub fn verify(
    method: &str,
    params: &[(String, String)],
    now: OffsetDateTime,
    lookup: &impl SecretLookup,
) -> Result<AcsVerified, AuthError> {
    for (i, (name, _)) in params.iter().enumerate() {
        if params[..i].iter().any(|(other, _)| other == name) {
            return Err(AuthError::InvalidArgument(format!(
                "The parameter {name} is given more than once."
            )));
        }
    }
    let get = |name: &'static str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(given) = get("Signature") else {
        return Err(AuthError::Missing);
    };
    let required = |name: &'static str| get(name).ok_or(AuthError::MissingSecurityHeader(name));
    let access_key = required("AccessKeyId")?;
    if required("SignatureMethod")? != SIGNATURE_METHOD {
        return Err(AuthError::InvalidArgument(
            "SignatureMethod must be HMAC-SHA1.".into(),
        ));
    }
    if required("SignatureVersion")? != SIGNATURE_VERSION {
        return Err(AuthError::InvalidArgument(
            "SignatureVersion must be 1.0.".into(),
        ));
    }
    let nonce = checked_nonce(required("SignatureNonce")?)?;
    let time = checked_time(required("Timestamp")?, now)?;
    let secret = lookup
        .secret(access_key)
        .ok_or(AuthError::UnknownAccessKey)?;
    let signed: Vec<(String, String)> = params
        .iter()
        .filter(|(name, _)| name != "Signature")
        .cloned()
        .collect();
    let expected = signature(secret.expose_secret(), &string_to_sign(method, &signed));
    if !constant_time_eq(expected.as_bytes(), given.as_bytes()) {
        return Err(AuthError::SignatureMismatch);
    }
    Ok(AcsVerified {
        access_key: access_key.to_owned(),
        nonce,
        time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    /// Parameters as `aliyunsdkcore` 2.16 signs an Encrypt request; the
    /// string to sign and signature below are what its composer produced
    /// for them (secret `secret-example`).
    fn vector_params() -> Vec<(String, String)> {
        [
            ("Action", "Encrypt"),
            ("Version", "2016-01-20"),
            ("KeyId", "alias/my-key"),
            ("Plaintext", "aGVsbG8gd29ybGQ="),
            ("EncryptionContext", r#"{"x-passphrase":"a b*c~"}"#),
            ("Timestamp", "2026-12-03T07:26:18Z"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureType", ""),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", "5e3f0f2a-1b2c-4d5e-8f90-a1b2c3d4e5f6"),
            ("AccessKeyId", "AKIDEXAMPLE"),
            ("Format", "JSON"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    const VECTOR_STRING_TO_SIGN: &str = "POST&%2F&AccessKeyId%3DAKIDEXAMPLE%26Action%3DEncrypt%26EncryptionContext%3D%257B%2522x-passphrase%2522%253A%2522a%2520b%252Ac~%2522%257D%26Format%3DJSON%26KeyId%3Dalias%252Fmy-key%26Plaintext%3DaGVsbG8gd29ybGQ%253D%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D5e3f0f2a-1b2c-4d5e-8f90-a1b2c3d4e5f6%26SignatureType%3D%26SignatureVersion%3D1.0%26Timestamp%3D2026-12-03T07%253A26%253A18Z%26Version%3D2016-01-20";
    const VECTOR_SIGNATURE: &str = "lRkXMHkEiCJHM1GbeiG+7GxNimY=";

    fn lookup(key: &str) -> Option<Secret> {
        (key == "AKIDEXAMPLE").then(|| Secret::new("secret-example"))
    }

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-12-03 07:30:00 UTC)
    }

    fn signed_params() -> Vec<(String, String)> {
        let mut params = vector_params();
        params.push(("Signature".into(), VECTOR_SIGNATURE.into()));
        params
    }

    #[test]
    fn matches_the_sdk_vector() {
        let sts = string_to_sign("POST", &vector_params());
        assert_eq!(sts, VECTOR_STRING_TO_SIGN);
        assert_eq!(signature("secret-example", &sts), VECTOR_SIGNATURE);
    }

    #[test]
    fn verifies_the_sdk_vector() {
        let verified = verify("POST", &signed_params(), now(), &lookup).expect("verifies");
        assert_eq!(verified.access_key, "AKIDEXAMPLE");
        assert_eq!(verified.nonce, "5e3f0f2a-1b2c-4d5e-8f90-a1b2c3d4e5f6");
    }

    #[test]
    fn one_changed_bit_anywhere_is_refused() {
        let base = signed_params();
        for index in 0..base.len() {
            for in_name in [false, true] {
                let mut params = base.clone();
                let field = if in_name {
                    &mut params[index].0
                } else {
                    &mut params[index].1
                };
                let mut bytes = std::mem::take(field).into_bytes();
                match bytes.first_mut() {
                    Some(b) => *b ^= 0x01,
                    None => bytes.push(b'A'),
                }
                *field = String::from_utf8(bytes).expect("ASCII stays ASCII");
                assert!(
                    verify("POST", &params, now(), &lookup).is_err(),
                    "a flipped bit in parameter {index} (name: {in_name}) was accepted"
                );
            }
        }
        assert!(verify("GET", &base, now(), &lookup).is_err());
    }

    #[test]
    fn refuses_skew_unknown_keys_and_duplicates() {
        let late = now() + time::Duration::minutes(16);
        assert_eq!(
            verify("POST", &signed_params(), late, &lookup),
            Err(AuthError::TimeTooSkewed)
        );
        let nobody = |_: &str| None;
        assert_eq!(
            verify("POST", &signed_params(), now(), &nobody),
            Err(AuthError::UnknownAccessKey)
        );
        let mut twice = signed_params();
        twice.push(("KeyId".into(), "other".into()));
        assert!(matches!(
            verify("POST", &twice, now(), &lookup),
            Err(AuthError::InvalidArgument(_))
        ));
        let unsigned: Vec<_> = vector_params();
        assert_eq!(
            verify("POST", &unsigned, now(), &lookup),
            Err(AuthError::Missing)
        );
    }
}
