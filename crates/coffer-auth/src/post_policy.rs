//! Browser form uploads (S3 POST Object, OSS PostObject): the signature over
//! the base64 policy document a form carries.
//!
//! The string to sign is the `policy` field exactly as sent (base64 of the
//! JSON document); nothing of the HTTP request is signed. The schemes:
//!
//! * S3 SigV4: fields `x-amz-algorithm` (`AWS4-HMAC-SHA256`), `x-amz-credential`
//!   (`AK/date/region/s3/aws4_request`), `x-amz-date`, `x-amz-signature` =
//!   hex(HMAC-SHA256(SigV4 signing key, policy)).
//! * S3 SigV2: `AWSAccessKeyId`, `signature` = base64(HMAC-SHA1(secret, policy)).
//! * OSS V1: `OSSAccessKeyId`, `Signature` = base64(HMAC-SHA1(secret, policy)).
//! * OSS V4: `x-oss-signature-version` (`OSS4-HMAC-SHA256`), `x-oss-credential`
//!   (`AK/date/region/oss/aliyun_v4_request`), `x-oss-date`, `x-oss-signature` =
//!   hex(HMAC-SHA256(OSS V4 signing key, policy)).
//!
//! A policy's validity is its own `expiration` (checked by the caller with
//! the rest of the document), so no clock skew is checked here; the date in
//! a V4 credential must be the day of its `x-amz-date` / `x-oss-date`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::error::AuthError;
use crate::mac::{constant_time_eq, hmac_sha1, hmac_sha256};
use crate::scheme::Scheme;
use crate::secret::{Secret, SigningKey};
use crate::sigv4::SecretLookup;

/// The signature fields of one form, by scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostSignature {
    /// S3 SigV4 (`x-amz-algorithm` = `AWS4-HMAC-SHA256`).
    SigV4 {
        /// `x-amz-credential`: `AK/date/region/s3/aws4_request`.
        credential: String,
        /// `x-amz-date`: `YYYYMMDDTHHMMSSZ`.
        date: String,
        /// `x-amz-signature`, lower-case hex.
        signature: String,
    },
    /// S3 SigV2 (`AWSAccessKeyId` and `signature`).
    SigV2 {
        /// `AWSAccessKeyId`.
        access_key: String,
        /// `signature`, base64.
        signature: String,
    },
    /// OSS V1 (`OSSAccessKeyId` and `Signature`).
    OssV1 {
        /// `OSSAccessKeyId`.
        access_key: String,
        /// `Signature`, base64.
        signature: String,
    },
    /// OSS V4 (`x-oss-signature-version` = `OSS4-HMAC-SHA256`).
    OssV4 {
        /// `x-oss-credential`: `AK/date/region/oss/aliyun_v4_request`.
        credential: String,
        /// `x-oss-date`: `YYYYMMDDTHHMMSSZ`.
        date: String,
        /// `x-oss-signature`, lower-case hex.
        signature: String,
    },
}

/// The form fields that carry a signature in some scheme: they are never
/// themselves covered by the policy's conditions (the credential and date
/// fields of the V4 schemes are, and are not listed here).
pub const SIGNATURE_FIELDS: &[&str] = &[
    "policy",
    "x-amz-signature",
    "awsaccesskeyid",
    "signature",
    "ossaccesskeyid",
    "x-oss-signature",
];

impl PostSignature {
    /// The signature a form carries, from its fields (`field` looks a name
    /// up case-insensitively); `Ok(None)` for a form with no signature
    /// fields at all (an anonymous upload). Fields of an incomplete scheme,
    /// or of two schemes, are refused.
    pub fn from_fields<'a>(
        field: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Option<Self>, AuthError> {
        let get = |name: &'static str| -> Result<String, AuthError> {
            field(name)
                .map(str::to_owned)
                .ok_or_else(|| missing_field(name))
        };
        let v4 = field("x-amz-algorithm").is_some()
            || field("x-amz-credential").is_some()
            || field("x-amz-signature").is_some();
        let oss_v4 = field("x-oss-signature-version").is_some()
            || field("x-oss-credential").is_some()
            || field("x-oss-signature").is_some();
        let v2 = field("awsaccesskeyid").is_some();
        let oss_v1 = field("ossaccesskeyid").is_some();
        if [v4, oss_v4, v2, oss_v1].iter().filter(|x| **x).count() > 1 {
            return Err(AuthError::InvalidArgument(
                "Only one authentication mechanism is allowed in a POST form".into(),
            ));
        }
        let signature = if v4 {
            let algorithm = get("x-amz-algorithm")?;
            if algorithm != crate::sigv4::ALGORITHM {
                return Err(AuthError::InvalidArgument(format!(
                    "Unsupported x-amz-algorithm: only {} is supported",
                    crate::sigv4::ALGORITHM
                )));
            }
            Self::SigV4 {
                credential: get("x-amz-credential")?,
                date: get("x-amz-date")?,
                signature: get("x-amz-signature")?,
            }
        } else if oss_v4 {
            let version = get("x-oss-signature-version")?;
            if version != crate::oss_v4::ALGORITHM {
                return Err(AuthError::InvalidArgument(format!(
                    "Unsupported x-oss-signature-version: only {} is supported",
                    crate::oss_v4::ALGORITHM
                )));
            }
            Self::OssV4 {
                credential: get("x-oss-credential")?,
                date: get("x-oss-date")?,
                signature: get("x-oss-signature")?,
            }
        } else if v2 {
            Self::SigV2 {
                access_key: get("awsaccesskeyid")?,
                signature: get("signature")?,
            }
        } else if oss_v1 {
            Self::OssV1 {
                access_key: get("ossaccesskeyid")?,
                signature: get("signature")?,
            }
        } else {
            return Ok(None);
        };
        Ok(Some(signature))
    }

    /// The scheme, as the request-level verifiers name it (for the
    /// `s3:signatureversion` condition key and the error dialect).
    pub fn scheme(&self) -> Scheme {
        match self {
            Self::SigV4 { .. } => Scheme::SigV4,
            Self::SigV2 { .. } => Scheme::SigV2,
            Self::OssV1 { .. } => Scheme::OssV1,
            Self::OssV4 { .. } => Scheme::OssV4,
        }
    }

    /// The access key id the form names.
    pub fn access_key(&self) -> Result<&str, AuthError> {
        match self {
            Self::SigV2 { access_key, .. } | Self::OssV1 { access_key, .. } => Ok(access_key),
            Self::SigV4 { credential, .. } | Self::OssV4 { credential, .. } => {
                Ok(self.scope(credential)?.access_key)
            }
        }
    }

    /// Checks the signature over `policy` (the base64 field as sent) with
    /// the secret of the access key it names, which it returns.
    pub fn verify(&self, policy: &str, lookup: &impl SecretLookup) -> Result<String, AuthError> {
        let access_key = self.access_key()?;
        let secret = lookup
            .secret(access_key)
            .ok_or(AuthError::UnknownAccessKey)?;
        let expected = self.sign_with(policy, &secret)?;
        let given = match self {
            Self::SigV4 { signature, .. }
            | Self::SigV2 { signature, .. }
            | Self::OssV1 { signature, .. }
            | Self::OssV4 { signature, .. } => signature.trim(),
        };
        if constant_time_eq(expected.as_bytes(), given.as_bytes()) {
            Ok(access_key.to_owned())
        } else {
            Err(AuthError::SignatureMismatch)
        }
    }

    /// The signature this form's scheme and credential give `policy` under
    /// `secret` (for clients and tests; [`Self::verify`] compares with it).
    pub fn sign_with(&self, policy: &str, secret: &Secret) -> Result<String, AuthError> {
        Ok(match self {
            Self::SigV2 { .. } | Self::OssV1 { .. } => BASE64.encode(hmac_sha1(
                secret.expose_secret().as_bytes(),
                policy.as_bytes(),
            )),
            Self::SigV4 {
                credential, date, ..
            }
            | Self::OssV4 {
                credential, date, ..
            } => {
                let scope = self.scope(credential)?;
                if date.len() < 8 || !date.is_char_boundary(8) || &date[..8] != scope.date {
                    return Err(AuthError::InvalidArgument(
                        "The date of the credential scope must be the day of the form's date field"
                            .into(),
                    ));
                }
                let (prefix, terminator) = match self {
                    Self::OssV4 { .. } => ("aliyun_v4", crate::oss_v4::TERMINATOR),
                    _ => ("AWS4", "aws4_request"),
                };
                let key = SigningKey::derive(
                    prefix,
                    secret,
                    scope.date,
                    scope.region,
                    scope.service,
                    terminator,
                );
                hex::encode(hmac_sha256(&key.0, policy.as_bytes()))
            }
        })
    }

    /// The parts of a V4 credential, checked for this scheme's service and
    /// terminator.
    fn scope<'a>(&self, credential: &'a str) -> Result<Scope<'a>, AuthError> {
        let (service, terminator) = match self {
            Self::OssV4 { .. } => ("oss", crate::oss_v4::TERMINATOR),
            _ => ("s3", "aws4_request"),
        };
        let bad = || {
            AuthError::InvalidArgument(format!(
                "The credential must be <AccessKeyId>/<date>/<region>/{service}/{terminator}"
            ))
        };
        let parts: Vec<&str> = credential.trim().split('/').collect();
        let [access_key, date, region, svc, term] = parts.as_slice() else {
            return Err(bad());
        };
        if *svc != service
            || *term != terminator
            || access_key.is_empty()
            || date.len() != 8
            || !date.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        Ok(Scope {
            access_key,
            date,
            region,
            service,
        })
    }
}

/// S3's refusal of a form without a field its scheme needs.
fn missing_field(name: &str) -> AuthError {
    AuthError::InvalidArgument(format!(
        "Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields."
    ))
}

/// `AK/date/region/service/terminator`, split.
struct Scope<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    const AK: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn lookup(access_key: &str) -> Option<Secret> {
        (access_key == AK).then(|| Secret::new(SECRET))
    }

    fn fields(pairs: &[(&'static str, &'static str)]) -> Option<PostSignature> {
        PostSignature::from_fields(|name| {
            pairs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        })
        .expect("a complete scheme")
    }

    // Computed by botocore 1.x (`S3SigV4PostAuth`, `HmacV1PostAuth`) with its clock fixed at
    // 2015-12-29T00:00:00Z: an implementation independent of this one.
    const SIGV4_POLICY: &str = "eyJleHBpcmF0aW9uIjogIjIwMTUtMTItMzBUMTI6MDA6MDAuMDAwWiIsICJjb25kaXRpb25zIjogW3siYnVja2V0IjogInNpZ3Y0ZXhhbXBsZWJ1Y2tldCJ9LCBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwgeyJ4LWFtei1hbGdvcml0aG0iOiAiQVdTNC1ITUFDLVNIQTI1NiJ9LCB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LCB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiJ9XX0=";
    const SIGV2_POLICY: &str = "eyJleHBpcmF0aW9uIjogIjIwMTUtMTItMzBUMTI6MDA6MDAuMDAwWiIsICJjb25kaXRpb25zIjogW3siYnVja2V0IjogInNpZ3Y0ZXhhbXBsZWJ1Y2tldCJ9XX0=";

    #[test]
    fn sigv4_matches_botocore() {
        let signature = fields(&[
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            (
                "x-amz-credential",
                "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request",
            ),
            ("x-amz-date", "20151229T000000Z"),
            (
                "x-amz-signature",
                "a004bd07e117f5e0a2b935e63aff531e46e850a2e16bdd056cdd51389a31f80e",
            ),
        ])
        .expect("signed");
        assert_eq!(signature.scheme(), Scheme::SigV4);
        assert_eq!(signature.verify(SIGV4_POLICY, &lookup).expect("valid"), AK);
        // One byte of the policy changed: the signature no longer holds.
        let tampered = SIGV4_POLICY.replacen("eyJl", "eyJm", 1);
        assert_eq!(
            signature.verify(&tampered, &lookup),
            Err(AuthError::SignatureMismatch)
        );
    }

    #[test]
    fn sigv2_matches_botocore() {
        let signature = fields(&[
            ("AWSAccessKeyId", AK),
            ("signature", "dORK/XD8fA9RxLUa+ECPetsMimk="),
        ])
        .expect("signed");
        assert_eq!(signature.verify(SIGV2_POLICY, &lookup).expect("valid"), AK);
    }

    // Computed with Python's hmac module from OSS's documented algorithms (PostObject,
    // "Signature" V1: base64(HMAC-SHA1(secret, policy)); V4: hex(HMAC-SHA256(signing key,
    // policy)) with the key chain from "aliyun_v4" + secret over date, region, "oss",
    // "aliyun_v4_request").
    #[test]
    fn oss_v1_and_v4_match_the_documented_algorithm() {
        let v1 = fields(&[
            ("OSSAccessKeyId", AK),
            ("Signature", "dORK/XD8fA9RxLUa+ECPetsMimk="),
        ])
        .expect("signed");
        assert_eq!(v1.scheme(), Scheme::OssV1);
        assert_eq!(v1.verify(SIGV2_POLICY, &lookup).expect("valid"), AK);
        let v4 = fields(&[
            ("x-oss-signature-version", "OSS4-HMAC-SHA256"),
            (
                "x-oss-credential",
                "AKIAIOSFODNN7EXAMPLE/20151229/cn-hangzhou/oss/aliyun_v4_request",
            ),
            ("x-oss-date", "20151229T000000Z"),
            ("x-oss-signature", OSS_V4_SIGNATURE),
        ])
        .expect("signed");
        assert_eq!(v4.verify(SIGV2_POLICY, &lookup).expect("valid"), AK);
    }

    const OSS_V4_SIGNATURE: &str =
        "25a3b241f56d5fa9d1798bdcc34994e193c817673f5e131d3f80ffca4b10c7e5";

    #[test]
    fn incomplete_or_mixed_schemes_are_refused() {
        let missing = PostSignature::from_fields(|name| {
            (name == "x-amz-algorithm").then_some("AWS4-HMAC-SHA256")
        });
        assert_eq!(missing, Err(missing_field("x-amz-credential")));
        let mixed = PostSignature::from_fields(|name| match name {
            "awsaccesskeyid" | "ossaccesskeyid" | "signature" => Some("x"),
            _ => None,
        });
        assert!(matches!(mixed, Err(AuthError::InvalidArgument(_))));
        assert_eq!(PostSignature::from_fields(|_| None), Ok(None));
        let wrong_date = fields(&[
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            (
                "x-amz-credential",
                "AKIAIOSFODNN7EXAMPLE/20151228/us-east-1/s3/aws4_request",
            ),
            ("x-amz-date", "20151229T000000Z"),
            ("x-amz-signature", "00"),
        ])
        .expect("signed");
        assert!(matches!(
            wrong_date.verify(SIGV4_POLICY, &lookup),
            Err(AuthError::InvalidArgument(_))
        ));
        let unknown = fields(&[("AWSAccessKeyId", "nobody"), ("signature", "x")]).expect("signed");
        assert_eq!(
            unknown.verify(SIGV2_POLICY, &lookup),
            Err(AuthError::UnknownAccessKey)
        );
    }
}
