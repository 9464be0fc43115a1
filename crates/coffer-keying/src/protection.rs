//! What a write asks for: the protection of a new object, decoded from a
//! request or a bucket's default by the API edge, in terms that name no
//! header and no dialect.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use coffer_crypto::{Algorithm, SymmetricKey};
use coffer_kms::EncryptionContext;
use md5::{Digest, Md5};

/// How a new object is protected at rest.
#[derive(Debug)]
pub enum Protection {
    /// Stored as sent: only for a bucket whose owner opted out of
    /// encryption at rest explicitly (a request without encryption headers
    /// otherwise gets the bucket's rule, else the server's
    /// [`DefaultProtection`]).
    None,
    /// A fresh data key wrapped by the service master key (`AES256`, OSS `SM4`).
    Service(Algorithm),
    /// SSE-C: the customer's key is the data key and is never stored.
    Customer(CustomerKey),
    /// SSE-KMS: a data key from the KMS under a customer master key.
    Kms(KmsProtection),
}

/// SSE-KMS as requested.
#[derive(Debug, Default)]
pub struct KmsProtection {
    /// The CMK (id, ARN or alias); `None`: the service's default key.
    pub key_id: Option<String>,
    /// SM4-GCM for the data (OSS `x-oss-server-side-data-encryption: SM4`)
    /// instead of AES-256-GCM.
    pub sm4: bool,
    /// The client's encryption context, bound to the data key beside the
    /// object's ARN and stored with the object.
    pub context: EncryptionContext,
    /// Wrap data keys under a cached per-bucket key instead of asking the
    /// KMS for each object.
    pub bucket_key: bool,
}

/// An algorithm name that no mode of Coffer's answers to.
#[derive(Debug, thiserror::Error)]
#[error("the encryption method {0:?} is not supported")]
pub struct UnsupportedAlgorithm(pub String);

impl Protection {
    /// The protection an algorithm name asks for (`AES256`, `SM4`, or a
    /// KMS name: `KMS`, `aws:kms`, `aws:kms:dsse`), with the KMS parameters
    /// that came with it. `data_encryption` is OSS's data cipher for KMS
    /// (only `SM4` exists). Names are matched as sent, surrounding
    /// whitespace aside.
    pub fn named(
        algorithm: &str,
        data_encryption: Option<&str>,
        kms: impl FnOnce() -> KmsProtection,
    ) -> Result<Protection, UnsupportedAlgorithm> {
        match algorithm.trim() {
            "AES256" => Ok(Protection::Service(Algorithm::Aes256Gcm)),
            "SM4" => Ok(Protection::Service(Algorithm::Sm4Gcm)),
            name if is_kms_name(name) => match data_encryption {
                Some(data) if data != "SM4" => Err(UnsupportedAlgorithm(data.to_owned())),
                _ => Ok(Protection::Kms(KmsProtection {
                    sm4: data_encryption.is_some(),
                    ..kms()
                })),
            },
            other => Err(UnsupportedAlgorithm(other.to_owned())),
        }
    }
}

/// What protects a new object whose request and bucket name no encryption:
/// the server's default (`--default-sse`), never plaintext. AWS S3 has
/// sealed every new object with SSE-S3 since 2023; so does Coffer, with
/// [`DefaultProtection::default`] (`AES256`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DefaultProtection {
    /// A fresh data key wrapped by the service master key: `AES256` or `SM4`.
    Service(Algorithm),
    /// SSE-KMS under `key_id` (id, ARN or alias), or the KMS's default SSE
    /// key (`alias/aws/s3`) when `None`.
    Kms {
        /// The customer master key; `None`: the default SSE key.
        key_id: Option<String>,
    },
}

impl Default for DefaultProtection {
    fn default() -> Self {
        DefaultProtection::Service(Algorithm::Aes256Gcm)
    }
}

impl DefaultProtection {
    /// Reads `AES256`, `SM4`, `aws:kms` (also `KMS`) or `aws:kms:KEY-ID`
    /// (`KEY-ID` an id, ARN or alias; the part after the first
    /// `aws:kms:`). Plaintext is not a server default: there is no name
    /// for it here.
    pub fn parse(text: &str) -> Result<Self, UnsupportedAlgorithm> {
        let text = text.trim();
        match text {
            "AES256" => Ok(DefaultProtection::Service(Algorithm::Aes256Gcm)),
            "SM4" => Ok(DefaultProtection::Service(Algorithm::Sm4Gcm)),
            "aws:kms" | "KMS" => Ok(DefaultProtection::Kms { key_id: None }),
            _ => match text
                .strip_prefix("aws:kms:")
                .or_else(|| text.strip_prefix("KMS:"))
                .map(str::trim)
            {
                Some(key_id) if !key_id.is_empty() => Ok(DefaultProtection::Kms {
                    key_id: Some(key_id.to_owned()),
                }),
                _ => Err(UnsupportedAlgorithm(text.to_owned())),
            },
        }
    }

    /// The protection a new object gets from this default.
    pub fn protection(&self) -> Protection {
        match self {
            DefaultProtection::Service(algorithm) => Protection::Service(*algorithm),
            DefaultProtection::Kms { key_id } => Protection::Kms(KmsProtection {
                key_id: key_id.clone(),
                ..KmsProtection::default()
            }),
        }
    }
}

impl std::fmt::Display for DefaultProtection {
    /// The name [`DefaultProtection::parse`] reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DefaultProtection::Service(Algorithm::Aes256Gcm) => f.write_str("AES256"),
            DefaultProtection::Service(Algorithm::Sm4Gcm) => f.write_str("SM4"),
            DefaultProtection::Kms { key_id: None } => f.write_str("aws:kms"),
            DefaultProtection::Kms {
                key_id: Some(key_id),
            } => write!(f, "aws:kms:{key_id}"),
        }
    }
}

/// Whether `name` asks for SSE-KMS in either dialect.
pub fn is_kms_name(name: &str) -> bool {
    matches!(name.trim(), "KMS" | "aws:kms" | "aws:kms:dsse")
}

/// An SSE-C key as the request gave it, with the MD5 that S3 echoes.
pub struct CustomerKey {
    pub(crate) key: SymmetricKey,
    md5_base64: String,
}

impl CustomerKey {
    /// Takes the customer's 256-bit key.
    pub fn new(key: SymmetricKey) -> Self {
        let md5_base64 = BASE64.encode(Md5::digest(key.expose()));
        CustomerKey { key, md5_base64 }
    }

    /// Base64 of the key's MD5, as `…-customer-key-MD5` carries it.
    pub fn md5_base64(&self) -> &str {
        &self.md5_base64
    }
}

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomerKey(<redacted>)")
    }
}

/// The stored attribute (and S3 header) that keeps a client's SSE-KMS
/// encryption context with its object: base64 of a JSON object.
pub const CONTEXT_ATTRIBUTE: &str = "x-amz-server-side-encryption-context";

/// The context key S3 binds every SSE-KMS data key to; a client may not set it.
pub(crate) const S3_ARN_CONTEXT: &str = "aws:s3:arn";

/// Decodes a client's encryption context (base64 of a JSON object of
/// strings, without `aws:s3:arn`); `None` if it is not one.
pub fn decode_context(encoded: &str) -> Option<EncryptionContext> {
    BASE64
        .decode(encoded.trim())
        .ok()
        .and_then(|json| serde_json::from_slice::<EncryptionContext>(&json).ok())
        .filter(|context| !context.contains_key(S3_ARN_CONTEXT))
}

/// The stored form of a client's encryption context.
pub(crate) fn encode_context(context: &EncryptionContext) -> String {
    BASE64.encode(serde_json::to_vec(context).expect("a map of strings serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_protection_names() {
        for (text, expected) in [
            ("AES256", DefaultProtection::Service(Algorithm::Aes256Gcm)),
            (" SM4 ", DefaultProtection::Service(Algorithm::Sm4Gcm)),
            ("aws:kms", DefaultProtection::Kms { key_id: None }),
            ("KMS", DefaultProtection::Kms { key_id: None }),
            (
                "aws:kms:alias/backups",
                DefaultProtection::Kms {
                    key_id: Some("alias/backups".into()),
                },
            ),
            (
                "aws:kms:arn:aws:kms:us-east-1:000000000000:key/k1",
                DefaultProtection::Kms {
                    key_id: Some("arn:aws:kms:us-east-1:000000000000:key/k1".into()),
                },
            ),
        ] {
            let parsed = DefaultProtection::parse(text).expect(text);
            assert_eq!(parsed, expected, "{text}");
            assert_eq!(
                DefaultProtection::parse(&parsed.to_string()).expect("round trip"),
                parsed
            );
        }
        for refused in ["", "none", "aes256", "aws:kms:", "DES"] {
            assert!(DefaultProtection::parse(refused).is_err(), "{refused:?}");
        }
        assert_eq!(DefaultProtection::default().to_string(), "AES256");
    }
}
