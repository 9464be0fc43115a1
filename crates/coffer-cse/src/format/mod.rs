//! The two metadata formats: how a content key is wrapped and described in
//! user metadata, and how it is recovered.

pub mod aws;
pub mod oss;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use coffer_crypto::SymmetricKey;

use crate::CseError;
use crate::content::BLOCK_LEN;
use crate::content::gcm::GcmParams;
use crate::master_key::{MasterKey, MasterKeyKind};

/// User metadata without the `x-amz-meta-` / `x-oss-meta-` prefix, keys in
/// lower case.
pub type Metadata = BTreeMap<String, String>;

/// An object format Coffer writes and reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// OSS client-side encryption: AES-256-CTR, unauthenticated.
    Oss,
    /// S3 Encryption Client V3: AES-256-GCM with HKDF-SHA512 key derivation
    /// and key commitment (suite 0x0073). The default.
    Aws,
    /// S3 Encryption Client V2: AES-256-GCM, random 12-byte IV.
    AwsV2,
}

impl Format {
    /// The format's name on the command line and in messages (`oss`,
    /// `aws`, `aws-v2`); [`str::parse`] reads it back.
    pub fn name(self) -> &'static str {
        match self {
            Format::Oss => "oss",
            Format::Aws => "aws",
            Format::AwsV2 => "aws-v2",
        }
    }

    /// Whether the content carries an authentication tag.
    pub fn is_authenticated(self) -> bool {
        self != Format::Oss
    }

    /// Which format an object's metadata is in; `None` if it carries no
    /// client-side encryption (S3EC V1 and instruction-file objects are
    /// recognised and refused when opened).
    pub fn detect(metadata: &Metadata) -> Option<Format> {
        if aws::is_v3(metadata) {
            Some(Format::Aws)
        } else if aws::is_v2(metadata) {
            Some(Format::AwsV2)
        } else if oss::is_oss(metadata) {
            Some(Format::Oss)
        } else {
            None
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = CseError;

    fn from_str(text: &str) -> Result<Self, CseError> {
        match text.to_ascii_lowercase().as_str() {
            "oss" => Ok(Format::Oss),
            "aws" | "aws-v3" | "s3ec" => Ok(Format::Aws),
            "aws-v2" => Ok(Format::AwsV2),
            other => Err(CseError::Invalid(format!(
                "unknown client-side encryption format {other:?} (expected oss, aws or aws-v2)"
            ))),
        }
    }
}

/// The cipher parameters of one object, recovered or freshly made.
#[derive(Clone)]
pub(crate) enum ContentKey {
    /// OSS: CEK and the initial 128-bit counter.
    Ctr {
        key: SymmetricKey,
        iv: [u8; BLOCK_LEN],
    },
    /// S3EC: the (derived, for V3) content key, IV and AAD.
    Gcm(GcmParams),
}

/// Which master key kind a wrap algorithm needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKindNeeded {
    Kms,
    Aes,
    Rsa,
}

impl KeyKindNeeded {
    fn matches(self, key: &MasterKey) -> bool {
        matches!(
            (self, &key.kind),
            (KeyKindNeeded::Kms, MasterKeyKind::Kms(_))
                | (KeyKindNeeded::Aes, MasterKeyKind::Aes(_))
                | (KeyKindNeeded::Rsa, MasterKeyKind::Rsa(_))
        )
    }

    fn name(self) -> &'static str {
        match self {
            KeyKindNeeded::Kms => "a KMS key",
            KeyKindNeeded::Aes => "an AES key",
            KeyKindNeeded::Rsa => "an RSA private key",
        }
    }
}

/// The keys that may unwrap a key wrapped with `wrap_alg`, those whose
/// description equals `stored_description` first; "wrong master key" if
/// none is of the right kind.
pub(crate) fn candidates<'k>(
    keys: &'k [MasterKey],
    needed: KeyKindNeeded,
    wrap_alg: &str,
    stored_description: Option<&BTreeMap<String, String>>,
) -> Result<Vec<&'k MasterKey>, CseError> {
    let mut candidates: Vec<&MasterKey> = keys.iter().filter(|k| needed.matches(k)).collect();
    if candidates.is_empty() {
        let given: Vec<String> = keys.iter().map(MasterKey::label).collect();
        return Err(CseError::WrongMasterKey(format!(
            "the object's key is wrapped with {wrap_alg}, which needs {}; given: {}",
            needed.name(),
            if given.is_empty() {
                "none".into()
            } else {
                given.join(", ")
            }
        )));
    }
    if let Some(stored) = stored_description {
        candidates.sort_by_key(|k| &k.description != stored);
    }
    Ok(candidates)
}

/// Outcomes of trying candidate keys in turn: only "wrong master key" moves
/// on to the next candidate; any other error (KMS down, corrupt metadata)
/// ends the search. (A loop in the caller rather than a closure-taking
/// helper keeps the futures `Send` for multi-threaded runtimes.)
#[derive(Default)]
pub(crate) struct KeyAttempts {
    last_wrong_key: Option<String>,
}

impl KeyAttempts {
    /// `Ok(Some(value))`: done; `Ok(None)`: try the next key.
    pub(crate) fn record<T>(
        &mut self,
        outcome: Result<T, CseError>,
    ) -> Result<Option<T>, CseError> {
        match outcome {
            Ok(value) => Ok(Some(value)),
            Err(CseError::WrongMasterKey(detail)) => {
                self.last_wrong_key = Some(detail);
                Ok(None)
            }
            Err(other) => Err(other),
        }
    }

    /// The error once every candidate failed.
    pub(crate) fn exhausted(self) -> CseError {
        CseError::WrongMasterKey(self.last_wrong_key.unwrap_or_default())
    }
}

/// Base64 field from the metadata, decoded.
pub(crate) fn b64_field(metadata: &Metadata, field: &str) -> Result<Vec<u8>, CseError> {
    let text = metadata
        .get(field)
        .ok_or_else(|| CseError::missing(field))?;
    decode_b64(field, text)
}

pub(crate) fn decode_b64(field: &str, text: &str) -> Result<Vec<u8>, CseError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| CseError::invalid(field, "not base64"))
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
