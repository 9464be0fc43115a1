//! The embedded KMS's state in memory, and its records as the keystore
//! stores them ([`crate::keystore`]): one sealed record per key, one per
//! alias.
//!
//! Every secret is sealed by the root key under a context naming what it is
//! and whose: `kms-cmk:<key id>:v<n>` (material), `kms-byok-commitment:<key id>`,
//! `kms-import-key:<key id>:<token sha256>` (RSA wrapping private key),
//! `kms-key-policy:<key id>` (a key policy set for the key: not secret, but sealed so that
//! it is bound to its key and cannot be edited in the store unnoticed).
//! [`RootIntegrity`] seals the file backend's digest under `kms-keystore:v1`.
//! Import tokens are stored only as their SHA-256. Times are RFC 3339.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use coffer_crypto::SymmetricKey;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use super::byok;
use crate::RootKey;
#[cfg(test)]
pub use crate::keystore::file::FILE_NAME;
use crate::keystore::{IntegritySeal, SealedImportToken, SealedKey, SealedRotation, SealedVersion};
use crate::kms::{KeySpec, KeyState, KmsError, Origin, WrappingAlgorithm};

const INTEGRITY_CONTEXT: &str = "kms-keystore:v1";

/// The keystore's [`IntegritySeal`] over the root key: seals and opens
/// digests under `kms-keystore:v1` only, so a backend holding it can protect
/// its records from editing without being able to open any secret.
pub struct RootIntegrity(Arc<RootKey>);

impl RootIntegrity {
    /// The integrity seal of `root`.
    pub fn new(root: Arc<RootKey>) -> Self {
        Self(root)
    }
}

impl IntegritySeal for RootIntegrity {
    fn seal(&self, digest: &[u8]) -> Result<Vec<u8>, KmsError> {
        self.0
            .seal(INTEGRITY_CONTEXT, digest)
            .map_err(|e| internal(e.to_string()))
    }

    fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        self.0
            .open(INTEGRITY_CONTEXT, sealed)
            .map_err(|_| wrong_root())
    }
}

/// Everything the KMS knows. Cloned and changed as a whole; the records that
/// changed are then swapped into the keystore one by one, and only then is
/// the copy made current, so a failed write never leaves memory ahead of the
/// keystore.
#[derive(Clone, Default)]
pub struct State {
    pub keys: BTreeMap<String, Cmk>,
    /// `alias/name` → key id.
    pub aliases: BTreeMap<String, String>,
    /// Hex SHA-256 of the token → the pending import.
    pub import_tokens: BTreeMap<String, ImportToken>,
}

#[derive(Clone, PartialEq)]
pub struct Cmk {
    pub key_id: String,
    pub description: String,
    pub state: KeyState,
    pub origin: Origin,
    pub key_spec: KeySpec,
    pub created: OffsetDateTime,
    pub deletion_date: Option<OffsetDateTime>,
    pub valid_to: Option<OffsetDateTime>,
    pub managed: bool,
    pub tags: BTreeMap<String, String>,
    pub current_version: u32,
    /// Empty for a BYOK key without (valid) material.
    pub versions: BTreeMap<u32, MaterialVersion>,
    pub rotation: Rotation,
    /// BYOK: HMAC commitment to the material imported first.
    pub import_commitment: Option<[u8; 32]>,
    /// Who created the key (`None`: before key policies were recorded).
    pub creator: Option<String>,
    /// The key policy set for the key; `None`: the default one.
    pub policy: Option<String>,
}

#[derive(Clone)]
pub struct MaterialVersion {
    pub created: OffsetDateTime,
    /// None for version 1; `AUTOMATIC` or `ON_DEMAND` for rotations.
    pub rotation_type: Option<&'static str>,
    pub key: SymmetricKey,
}

#[derive(Clone, Copy, PartialEq)]
pub struct Rotation {
    pub enabled: bool,
    pub period_days: u32,
    /// When automatic rotation was enabled or last happened; the next
    /// rotation is `anchor + period_days`.
    pub anchor: Option<OffsetDateTime>,
}

impl PartialEq for MaterialVersion {
    fn eq(&self, other: &Self) -> bool {
        self.created == other.created
            && self.rotation_type == other.rotation_type
            && self.key.expose() == other.key.expose()
    }
}

impl Rotation {
    pub fn next(&self) -> Option<OffsetDateTime> {
        if !self.enabled {
            return None;
        }
        self.anchor
            .and_then(|a| a.checked_add(time::Duration::days(i64::from(self.period_days))))
    }
}

#[derive(Clone, PartialEq)]
pub struct ImportToken {
    pub key_id: String,
    pub algorithm: WrappingAlgorithm,
    pub expires: OffsetDateTime,
    pub private_key_pkcs8: Zeroizing<Vec<u8>>,
}

fn material_context(key_id: &str, version: u32) -> String {
    format!("kms-cmk:{key_id}:v{version}")
}

fn commitment_context(key_id: &str) -> String {
    format!("kms-byok-commitment:{key_id}")
}

fn policy_context(key_id: &str) -> String {
    format!("kms-key-policy:{key_id}")
}

fn import_key_context(key_id: &str, token_sha256: &str) -> String {
    format!("kms-import-key:{key_id}:{token_sha256}")
}

fn internal(message: impl Into<String>) -> KmsError {
    KmsError::Internal(message.into())
}

fn malformed(reason: &str) -> KmsError {
    internal(format!("the KMS keystore is malformed: {reason}"))
}

fn wrong_root() -> KmsError {
    internal(
        "the KMS keystore does not open with this root key: wrong or replaced root key, or a damaged file",
    )
}

pub fn format_time(t: OffsetDateTime) -> Result<String, KmsError> {
    t.format(&Rfc3339)
        .map_err(|_| internal("a time is outside the RFC 3339 range"))
}

fn parse_time(s: &str) -> Result<OffsetDateTime, KmsError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|_| malformed("a time is not RFC 3339"))
}

pub fn state_name(state: KeyState) -> &'static str {
    state.as_str()
}

fn parse_state(s: &str) -> Result<KeyState, KmsError> {
    Ok(match s {
        "Enabled" => KeyState::Enabled,
        "Disabled" => KeyState::Disabled,
        "PendingDeletion" => KeyState::PendingDeletion,
        "PendingImport" => KeyState::PendingImport,
        _ => return Err(malformed("unknown key state")),
    })
}

pub fn origin_name(origin: Origin) -> &'static str {
    match origin {
        Origin::Generated => "AWS_KMS",
        Origin::External => "EXTERNAL",
    }
}

pub fn key_spec_name(spec: KeySpec) -> &'static str {
    match spec {
        KeySpec::SymmetricDefault => "SYMMETRIC_DEFAULT",
        KeySpec::Sm4 => "SM4",
    }
}

fn rotation_type(name: &str) -> Result<&'static str, KmsError> {
    match name {
        "AUTOMATIC" => Ok("AUTOMATIC"),
        "ON_DEMAND" => Ok("ON_DEMAND"),
        _ => Err(malformed("unknown rotation type")),
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn seal(root: &RootKey, context: &str, secret: &[u8]) -> Result<String, KmsError> {
    root.seal(context, secret)
        .map(|sealed| BASE64.encode(sealed))
        .map_err(|e| internal(e.to_string()))
}

fn unseal(root: &RootKey, context: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    let bytes = BASE64
        .decode(sealed)
        .map_err(|_| malformed("a sealed value is not base64"))?;
    root.open(context, &bytes).map_err(|_| wrong_root())
}

/// Seals a key and its pending import tokens into its keystore record.
pub fn seal_key<'a>(
    cmk: &Cmk,
    tokens: impl IntoIterator<Item = (&'a String, &'a ImportToken)>,
    root: &RootKey,
) -> Result<SealedKey, KmsError> {
    let mut versions = Vec::with_capacity(cmk.versions.len());
    for (&version, material) in &cmk.versions {
        versions.push(SealedVersion {
            version,
            created: format_time(material.created)?,
            rotation_type: material.rotation_type.map(str::to_owned),
            sealed: seal(
                root,
                &material_context(&cmk.key_id, version),
                material.key.expose(),
            )?,
        });
    }
    let import_commitment = cmk
        .import_commitment
        .map(|c| seal(root, &commitment_context(&cmk.key_id), &c))
        .transpose()?;
    let sealed_policy = cmk
        .policy
        .as_ref()
        .map(|policy| seal(root, &policy_context(&cmk.key_id), policy.as_bytes()))
        .transpose()?;
    let mut import_tokens = Vec::new();
    for (hash, token) in tokens {
        import_tokens.push(SealedImportToken {
            token_sha256: hash.clone(),
            key_id: token.key_id.clone(),
            algorithm: byok::algorithm_name(token.algorithm).to_owned(),
            expires: format_time(token.expires)?,
            sealed_private_key: seal(
                root,
                &import_key_context(&token.key_id, hash),
                &token.private_key_pkcs8,
            )?,
        });
    }
    Ok(SealedKey {
        key_id: cmk.key_id.clone(),
        description: cmk.description.clone(),
        state: state_name(cmk.state).to_owned(),
        origin: origin_name(cmk.origin).to_owned(),
        key_spec: key_spec_name(cmk.key_spec).to_owned(),
        created: format_time(cmk.created)?,
        deletion_date: cmk.deletion_date.map(format_time).transpose()?,
        valid_to: cmk.valid_to.map(format_time).transpose()?,
        managed: cmk.managed,
        tags: cmk.tags.clone(),
        current_version: cmk.current_version,
        rotation: SealedRotation {
            enabled: cmk.rotation.enabled,
            period_days: cmk.rotation.period_days,
            anchor: cmk.rotation.anchor.map(format_time).transpose()?,
        },
        versions,
        import_commitment,
        import_tokens,
        creator: cmk.creator.clone(),
        sealed_policy,
    })
}

/// Opens a key's record: the key, and its pending import tokens by digest.
pub fn open_key(
    record: SealedKey,
    root: &RootKey,
) -> Result<(Cmk, Vec<(String, ImportToken)>), KmsError> {
    let mut versions = BTreeMap::new();
    for v in &record.versions {
        let opened = unseal(
            root,
            &material_context(&record.key_id, v.version),
            &v.sealed,
        )?;
        let key = SymmetricKey::from_slice(&opened)
            .map_err(|_| malformed("key material is not 32 bytes"))?;
        let material = MaterialVersion {
            created: parse_time(&v.created)?,
            rotation_type: v.rotation_type.as_deref().map(rotation_type).transpose()?,
            key,
        };
        if versions.insert(v.version, material).is_some() {
            return Err(malformed("a material version appears twice"));
        }
    }
    let import_commitment = match &record.import_commitment {
        Some(sealed) => {
            let opened = unseal(root, &commitment_context(&record.key_id), sealed)?;
            Some(
                <[u8; 32]>::try_from(opened.as_slice())
                    .map_err(|_| malformed("a commitment is not 32 bytes"))?,
            )
        }
        None => None,
    };
    let origin = match record.origin.as_str() {
        "AWS_KMS" => Origin::Generated,
        "EXTERNAL" => Origin::External,
        _ => return Err(malformed("unknown origin")),
    };
    let key_spec = match record.key_spec.as_str() {
        "SYMMETRIC_DEFAULT" => KeySpec::SymmetricDefault,
        "SM4" => KeySpec::Sm4,
        _ => return Err(malformed("unknown key spec")),
    };
    let policy = match &record.sealed_policy {
        Some(sealed) => {
            let opened = unseal(root, &policy_context(&record.key_id), sealed)?;
            Some(
                String::from_utf8(opened.to_vec())
                    .map_err(|_| malformed("a key policy is not UTF-8"))?,
            )
        }
        None => None,
    };
    if !versions.is_empty() && !versions.contains_key(&record.current_version) {
        return Err(malformed("the current version is missing"));
    }
    let mut tokens = Vec::with_capacity(record.import_tokens.len());
    for token in record.import_tokens {
        if token.key_id != record.key_id {
            return Err(malformed("an import token names another key"));
        }
        let pkcs8 = unseal(
            root,
            &import_key_context(&token.key_id, &token.token_sha256),
            &token.sealed_private_key,
        )?;
        let algorithm = byok::algorithm_from_name(&token.algorithm)
            .ok_or_else(|| malformed("unknown wrapping algorithm"))?;
        tokens.push((
            token.token_sha256,
            ImportToken {
                key_id: token.key_id,
                algorithm,
                expires: parse_time(&token.expires)?,
                private_key_pkcs8: pkcs8,
            },
        ));
    }
    let cmk = Cmk {
        key_id: record.key_id,
        description: record.description,
        state: parse_state(&record.state)?,
        origin,
        key_spec,
        created: parse_time(&record.created)?,
        deletion_date: record
            .deletion_date
            .as_deref()
            .map(parse_time)
            .transpose()?,
        valid_to: record.valid_to.as_deref().map(parse_time).transpose()?,
        managed: record.managed,
        tags: record.tags,
        current_version: record.current_version,
        versions,
        rotation: Rotation {
            enabled: record.rotation.enabled,
            period_days: record.rotation.period_days,
            anchor: record
                .rotation
                .anchor
                .as_deref()
                .map(parse_time)
                .transpose()?,
        },
        import_commitment,
        creator: record.creator,
        policy,
    };
    Ok((cmk, tokens))
}
