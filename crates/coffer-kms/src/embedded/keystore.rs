//! The embedded KMS's state, in memory and on disk.
//!
//! On disk: `<data-dir>/kms/keystore.json` (directory 0700, file 0600,
//! replaced atomically: temporary file, fsync, rename, fsync of the
//! directory):
//!
//! ```json
//! {"format":1,"integrity":"<base64>","keystore":{
//!   "keys":[{"key_id":…,"state":"Enabled",…,"versions":[{"version":1,"created":…,
//!            "rotation_type":null,"sealed":"<base64>"}],"import_commitment":"<base64>"}],
//!   "aliases":{"alias/name":"<key id>"},
//!   "import_tokens":[{"token_sha256":"<hex>","key_id":…,"algorithm":"RSAES_OAEP_SHA_256",
//!                     "expires":…,"sealed_private_key":"<base64>"}]}}
//! ```
//!
//! Every secret is sealed by the root key under a context naming what it is
//! and whose: `kms-cmk:<key id>:v<n>` (material), `kms-byok-commitment:<key id>`,
//! `kms-import-key:<key id>:<token sha256>` (RSA wrapping private key). The
//! `integrity` value is the SHA-256 of the compact `keystore` JSON sealed under
//! `kms-keystore:v1`, so metadata (states, deletion dates, aliases) cannot be
//! edited on disk either. Import tokens are stored only as their SHA-256.
//! Times are RFC 3339.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use coffer_crypto::SymmetricKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use super::byok;
use crate::RootKey;
use crate::kms::{KeySpec, KeyState, KmsError, Origin, WrappingAlgorithm};

pub const FILE_NAME: &str = "keystore.json";
const FORMAT: u32 = 1;
const INTEGRITY_CONTEXT: &str = "kms-keystore:v1";

/// Everything the KMS knows. Cloned, changed and persisted as a whole, then
/// swapped in, so a failed write never leaves memory ahead of disk.
#[derive(Clone, Default)]
pub struct State {
    pub keys: BTreeMap<String, Cmk>,
    /// `alias/name` → key id.
    pub aliases: BTreeMap<String, String>,
    /// Hex SHA-256 of the token → the pending import.
    pub import_tokens: BTreeMap<String, ImportToken>,
}

#[derive(Clone)]
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
}

#[derive(Clone)]
pub struct MaterialVersion {
    pub created: OffsetDateTime,
    /// None for version 1; `AUTOMATIC` or `ON_DEMAND` for rotations.
    pub rotation_type: Option<&'static str>,
    pub key: SymmetricKey,
}

#[derive(Clone, Copy)]
pub struct Rotation {
    pub enabled: bool,
    pub period_days: u32,
    /// When automatic rotation was enabled or last happened; the next
    /// rotation is `anchor + period_days`.
    pub anchor: Option<OffsetDateTime>,
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

#[derive(Clone)]
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

fn import_key_context(key_id: &str, token_sha256: &str) -> String {
    format!("kms-import-key:{key_id}:{token_sha256}")
}

#[derive(Serialize, Deserialize)]
struct KeystoreFile {
    format: u32,
    integrity: String,
    keystore: KeystoreBody,
}

#[derive(Serialize, Deserialize)]
struct KeystoreBody {
    keys: Vec<KeyRecord>,
    aliases: BTreeMap<String, String>,
    import_tokens: Vec<TokenRecord>,
}

#[derive(Serialize, Deserialize)]
struct KeyRecord {
    key_id: String,
    description: String,
    state: String,
    origin: String,
    key_spec: String,
    created: String,
    deletion_date: Option<String>,
    valid_to: Option<String>,
    managed: bool,
    tags: BTreeMap<String, String>,
    current_version: u32,
    rotation: RotationRecord,
    versions: Vec<VersionRecord>,
    import_commitment: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct RotationRecord {
    enabled: bool,
    period_days: u32,
    anchor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct VersionRecord {
    version: u32,
    created: String,
    rotation_type: Option<String>,
    sealed: String,
}

#[derive(Serialize, Deserialize)]
struct TokenRecord {
    token_sha256: String,
    key_id: String,
    algorithm: String,
    expires: String,
    sealed_private_key: String,
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

/// The keystore file: where it lives and how it is read and written.
pub struct KeystoreFileStore {
    path: PathBuf,
}

impl KeystoreFileStore {
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join(FILE_NAME),
        }
    }

    /// Reads and opens the keystore; `None` when there is no file yet.
    pub fn load(&self, root: &RootKey) -> Result<Option<State>, KmsError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(internal(format!("{}: {e}", self.path.display()))),
        };
        let file: KeystoreFile =
            serde_json::from_slice(&bytes).map_err(|_| malformed("not the expected JSON"))?;
        if file.format != FORMAT {
            return Err(malformed("unknown format version"));
        }
        let sealed_digest = BASE64
            .decode(&file.integrity)
            .map_err(|_| malformed("integrity is not base64"))?;
        let digest = root
            .open(INTEGRITY_CONTEXT, &sealed_digest)
            .map_err(|_| wrong_root())?;
        let body = serde_json::to_vec(&file.keystore).map_err(|e| internal(e.to_string()))?;
        let actual = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body);
        if aws_lc_rs::constant_time::verify_slices_are_equal(actual.as_ref(), &digest).is_err() {
            return Err(wrong_root());
        }
        decode_body(file.keystore, root).map(Some)
    }

    /// Seals and writes `state`, durably, replacing the file atomically.
    pub fn persist(&self, state: &State, root: &RootKey) -> Result<(), KmsError> {
        let body = encode_body(state, root)?;
        let compact = serde_json::to_vec(&body).map_err(|e| internal(e.to_string()))?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &compact);
        let integrity = root
            .seal(INTEGRITY_CONTEXT, digest.as_ref())
            .map_err(|e| internal(e.to_string()))?;
        let file = KeystoreFile {
            format: FORMAT,
            integrity: BASE64.encode(integrity),
            keystore: body,
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| internal(e.to_string()))?;
        let io = |e: std::io::Error| internal(format!("{}: {e}", self.path.display()));
        coffer_files::replace(&self.path, &json).map_err(io)
    }
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

fn encode_body(state: &State, root: &RootKey) -> Result<KeystoreBody, KmsError> {
    let mut keys = Vec::with_capacity(state.keys.len());
    for cmk in state.keys.values() {
        let mut versions = Vec::with_capacity(cmk.versions.len());
        for (&version, material) in &cmk.versions {
            versions.push(VersionRecord {
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
        keys.push(KeyRecord {
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
            rotation: RotationRecord {
                enabled: cmk.rotation.enabled,
                period_days: cmk.rotation.period_days,
                anchor: cmk.rotation.anchor.map(format_time).transpose()?,
            },
            versions,
            import_commitment,
        });
    }
    let mut import_tokens = Vec::with_capacity(state.import_tokens.len());
    for (hash, token) in &state.import_tokens {
        import_tokens.push(TokenRecord {
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
    Ok(KeystoreBody {
        keys,
        aliases: state.aliases.clone(),
        import_tokens,
    })
}

fn decode_body(body: KeystoreBody, root: &RootKey) -> Result<State, KmsError> {
    let mut state = State::default();
    for record in body.keys {
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
        if !versions.is_empty() && !versions.contains_key(&record.current_version) {
            return Err(malformed("the current version is missing"));
        }
        let cmk = Cmk {
            key_id: record.key_id.clone(),
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
        };
        if state.keys.insert(record.key_id, cmk).is_some() {
            return Err(malformed("a key appears twice"));
        }
    }
    for (alias, target) in &body.aliases {
        if !state.keys.contains_key(target) {
            return Err(malformed("an alias names a missing key"));
        }
        state.aliases.insert(alias.clone(), target.clone());
    }
    for record in body.import_tokens {
        let pkcs8 = unseal(
            root,
            &import_key_context(&record.key_id, &record.token_sha256),
            &record.sealed_private_key,
        )?;
        let algorithm = byok::algorithm_from_name(&record.algorithm)
            .ok_or_else(|| malformed("unknown wrapping algorithm"))?;
        state.import_tokens.insert(
            record.token_sha256,
            ImportToken {
                key_id: record.key_id,
                algorithm,
                expires: parse_time(&record.expires)?,
                private_key_pkcs8: pkcs8,
            },
        );
    }
    Ok(state)
}
