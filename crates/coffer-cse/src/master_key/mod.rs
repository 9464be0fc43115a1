//! Master keys: what wraps each object's content key. The key never leaves
//! the client; only the wrapped content key is stored with the object.

pub mod aes;
pub mod kms;
pub mod rsa;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use coffer_client::SignedClient;
use coffer_crypto::SymmetricKey;

pub use self::aes::{AesMasterKey, generate_key_file};
pub use self::kms::KmsMasterKey;
pub use self::rsa::{RsaMasterKey, RsaPadding};
use crate::CseError;

/// A master key plus its description (stored with each object it wraps:
/// the KMS encryption context for `aws`+KMS, the material description
/// otherwise).
#[derive(Clone, Debug)]
pub struct MasterKey {
    pub(crate) kind: MasterKeyKind,
    pub(crate) description: BTreeMap<String, String>,
    pub(crate) oss_rsa_padding: RsaPadding,
}

/// The three kinds of master key.
#[derive(Clone, Debug)]
pub enum MasterKeyKind {
    /// A key of a KMS, which wraps and unwraps over the network.
    Kms(KmsMasterKey),
    /// A local AES-256 key.
    Aes(AesMasterKey),
    /// A local RSA key pair.
    Rsa(RsaMasterKey),
}

impl MasterKey {
    fn from_kind(kind: MasterKeyKind) -> Self {
        Self {
            kind,
            description: BTreeMap::new(),
            oss_rsa_padding: RsaPadding::OaepSha1,
        }
    }

    /// A KMS key (id, ARN or `alias/…`) reached through `client`.
    pub fn kms(client: Arc<SignedClient>, key_id: impl Into<String>) -> Self {
        Self::from_kind(MasterKeyKind::Kms(KmsMasterKey::new(client, key_id.into())))
    }

    /// An AES-256 key already in memory.
    pub fn aes(key: SymmetricKey) -> Self {
        Self::from_kind(MasterKeyKind::Aes(AesMasterKey::new(key)))
    }

    /// An AES-256 key file (one line of base64, see [`generate_key_file`]).
    pub fn aes_key_file(path: &Path) -> Result<Self, CseError> {
        Ok(Self::from_kind(MasterKeyKind::Aes(
            AesMasterKey::from_file(path)?,
        )))
    }

    /// An RSA key pair from PEM text (either half may be absent: public
    /// only can write, private only can read and write).
    pub fn rsa_pem(public: Option<&str>, private: Option<&str>) -> Result<Self, CseError> {
        Ok(Self::from_kind(MasterKeyKind::Rsa(RsaMasterKey::from_pem(
            public, private,
        )?)))
    }

    /// [`MasterKey::rsa_pem`] from files.
    pub fn rsa_pem_files(public: Option<&Path>, private: Option<&Path>) -> Result<Self, CseError> {
        Ok(Self::from_kind(MasterKeyKind::Rsa(
            RsaMasterKey::from_pem_files(public, private)?,
        )))
    }

    /// Sets the description stored with the objects this key wraps: the
    /// KMS encryption context (format `aws`, KMS keys) or the material
    /// description (`x-amz-m` / `x-amz-matdesc`, OSS `matdesc`). When
    /// several keys are offered for reading, the one whose description
    /// matches the object's is tried first.
    pub fn with_description(mut self, description: BTreeMap<String, String>) -> Self {
        self.description = description;
        self
    }

    /// RSA padding for the `oss` format: OAEP (default, oss2
    /// `LocalRsaProvider`) or PKCS#1 v1.5 (oss2 `RsaProvider`,
    /// alibabacloud-oss-v2 `MasterRsaCipher`; legacy). Ignored for other
    /// key kinds and formats.
    pub fn with_oss_rsa_padding(mut self, padding: RsaPadding) -> Self {
        self.oss_rsa_padding = padding;
        self
    }

    /// Which kind of key this is, and the key itself.
    pub fn kind(&self) -> &MasterKeyKind {
        &self.kind
    }

    /// The material description (or KMS encryption context) stored with
    /// every key this master key wraps.
    pub fn description(&self) -> &BTreeMap<String, String> {
        &self.description
    }

    /// `"KMS key <id>"`, `"AES key"`, `"RSA key"`: for messages.
    pub fn label(&self) -> String {
        match &self.kind {
            MasterKeyKind::Kms(k) => format!("KMS key {}", k.key_id()),
            MasterKeyKind::Aes(_) => "AES key".into(),
            MasterKeyKind::Rsa(_) => "RSA key".into(),
        }
    }
}
