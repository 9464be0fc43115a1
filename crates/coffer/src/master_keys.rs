//! The client-side encryption options shared by `coffer cp`/`cat` and
//! `coffer cse`: which master keys to use, and the object format to write.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use coffer_client::SignedClient;
use coffer_cse::{Format, MasterKey, RsaPadding};

/// RSA padding of the `oss` format's key wrap.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum OssRsaPadding {
    /// RSA-OAEP-SHA1 (oss2 `LocalRsaProvider`).
    #[default]
    Oaep,
    /// PKCS#1 v1.5 (oss2 `RsaProvider`, alibabacloud-oss-v2 `MasterRsaCipher`); legacy.
    Pkcs1,
}

/// Where master keys come from. Any combination may be given for reading
/// (the object's wrap algorithm picks one); exactly one for writing.
#[derive(Args, Clone, Default)]
pub struct MasterKeyArgs {
    /// KMS key (id, ARN or alias/NAME) of the endpoint's KMS API.
    #[arg(long)]
    pub kms_key_id: Option<String>,
    /// AES-256 key file (one line of base64; `coffer cse generate-key`).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// RSA public key (PEM): what writing needs.
    #[arg(long)]
    pub rsa_public_key: Option<PathBuf>,
    /// RSA private key (PEM): what reading needs (it can also write).
    #[arg(long)]
    pub rsa_private_key: Option<PathBuf>,
    /// RSA key wrap of the `oss` format.
    #[arg(long, value_enum, default_value = "oaep")]
    pub oss_rsa_padding: OssRsaPadding,
    /// Material description / KMS encryption context stored with the wrapped
    /// key, as a JSON object of strings (e.g. '{"desc": "key-1"}').
    #[arg(long)]
    pub matdesc: Option<String>,
}

impl MasterKeyArgs {
    pub fn is_empty(&self) -> bool {
        self.kms_key_id.is_none()
            && self.key_file.is_none()
            && self.rsa_public_key.is_none()
            && self.rsa_private_key.is_none()
    }

    /// Every master key these options name.
    pub fn keys(&self, kms: &Arc<SignedClient>) -> Result<Vec<MasterKey>, String> {
        let description = match &self.matdesc {
            None => BTreeMap::new(),
            Some(json) => serde_json::from_str::<BTreeMap<String, String>>(json)
                .map_err(|e| format!("--matdesc must be a JSON object of strings: {e}"))?,
        };
        let padding = match self.oss_rsa_padding {
            OssRsaPadding::Oaep => RsaPadding::OaepSha1,
            OssRsaPadding::Pkcs1 => RsaPadding::Pkcs1v15,
        };
        let mut keys = Vec::new();
        if let Some(id) = &self.kms_key_id {
            keys.push(MasterKey::kms(Arc::clone(kms), id.clone()));
        }
        if let Some(path) = &self.key_file {
            keys.push(MasterKey::aes_key_file(path).map_err(|e| e.to_string())?);
        }
        if self.rsa_public_key.is_some() || self.rsa_private_key.is_some() {
            keys.push(
                MasterKey::rsa_pem_files(
                    self.rsa_public_key.as_deref(),
                    self.rsa_private_key.as_deref(),
                )
                .map_err(|e| e.to_string())?,
            );
        }
        Ok(keys
            .into_iter()
            .map(|key| {
                key.with_description(description.clone())
                    .with_oss_rsa_padding(padding)
            })
            .collect())
    }

    /// The one master key an upload wraps with.
    pub fn writing_key(&self, kms: &Arc<SignedClient>) -> Result<MasterKey, String> {
        let mut keys = self.keys(kms)?;
        match keys.len() {
            1 => Ok(keys.remove(0)),
            0 => Err("--encrypt needs a master key: --kms-key-id, --key-file or --rsa-public-key".into()),
            _ => Err("give exactly one master key to encrypt with (--kms-key-id, --key-file or --rsa-public-key)".into()),
        }
    }
}

/// The `--format` option: a client-side encryption object format by name.
pub fn parse_format(text: &str) -> Result<Format, String> {
    text.parse()
        .map_err(|e: coffer_cse::CseError| e.to_string())
}
