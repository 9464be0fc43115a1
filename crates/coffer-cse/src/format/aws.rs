//! The AWS S3 Encryption Client formats: V3 (suite 0x0073,
//! AES-256-GCM with HKDF-SHA512 key derivation and key commitment; written
//! by default, as amazon-s3-encryption-client-python 4 does) and V2
//! (AES-256-GCM with a random IV). Metadata keys and values are the
//! Python client's, byte for byte.

use std::collections::BTreeMap;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hkdf::{HKDF_SHA512, KeyType, Salt};
use coffer_crypto::SymmetricKey;
use zeroize::Zeroizing;

use super::{ContentKey, KeyAttempts, KeyKindNeeded, Metadata, b64, b64_field, candidates};
use crate::content::gcm::{GcmParams, IV_LEN};
use crate::master_key::kms::KmsContext;
use crate::master_key::{MasterKey, MasterKeyKind, RsaPadding};
use crate::{CseError, json};

/// V3 metadata keys.
pub mod v3 {
    /// The content algorithm suite.
    pub const CONTENT_CIPHER: &str = "x-amz-c";
    /// The wrapped data key, base64.
    pub const ENCRYPTED_DATA_KEY: &str = "x-amz-3";
    /// The key wrap algorithm.
    pub const WRAP_ALG: &str = "x-amz-w";
    /// The material description (AES and RSA wraps), JSON.
    pub const MAT_DESC: &str = "x-amz-m";
    /// The KMS encryption context (KMS wrap), JSON.
    pub const ENCRYPTION_CONTEXT: &str = "x-amz-t";
    /// The key commitment, base64.
    pub const KEY_COMMITMENT: &str = "x-amz-d";
    /// The message id the content key is derived with, base64.
    pub const MESSAGE_ID: &str = "x-amz-i";
}

/// V2 (and V1) metadata keys.
pub mod v2 {
    /// The V1 wrapped data key, base64 (read only).
    pub const ENCRYPTED_DATA_KEY_V1: &str = "x-amz-key";
    /// The V2 wrapped data key, base64.
    pub const ENCRYPTED_DATA_KEY: &str = "x-amz-key-v2";
    /// The key wrap algorithm.
    pub const WRAP_ALG: &str = "x-amz-wrap-alg";
    /// The material description or KMS encryption context, JSON.
    pub const MAT_DESC: &str = "x-amz-matdesc";
    /// The content IV, base64.
    pub const IV: &str = "x-amz-iv";
    /// The content cipher, e.g. `AES/GCM/NoPadding`.
    pub const CONTENT_CIPHER: &str = "x-amz-cek-alg";
    /// The GCM tag length in bits.
    pub const TAG_LEN: &str = "x-amz-tag-len";
}

/// Suite 0x0073, ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY.
const SUITE_ID: [u8; 2] = [0x00, 0x73];
/// How V3 names the suite in `x-amz-c` and in the KMS context.
const SUITE_NAME: &str = "115";
/// Message id (HKDF salt) and commitment lengths of suite 0x0073.
const MESSAGE_ID_LEN: usize = 28;
const COMMITMENT_LEN: usize = 28;
/// V3's fixed GCM IV (the key is unique per message id).
const V3_IV: [u8; IV_LEN] = [0x01; IV_LEN];
/// The V2 content cipher; also the AAD of `AES/GCM` key wrapping and the
/// suffix of the RSA pseudo data key, in V2 and V3 alike (Java S3EC v4
/// names suite 0x0073's cipher so too).
const GCM_CIPHER_NAME: &str = "AES/GCM/NoPadding";
/// Reserved KMS encryption-context key naming the content cipher.
const CONTEXT_CEK_ALG: &str = "aws:x-amz-cek-alg";

/// Which S3EC message format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    V2,
    V3,
}

impl Version {
    /// Random bytes per object: V3 message id, V2 IV.
    fn nonce_len(self) -> usize {
        match self {
            Version::V2 => IV_LEN,
            Version::V3 => MESSAGE_ID_LEN,
        }
    }

    /// The reserved context value: the suite (V3) or cipher name (V2).
    fn context_cek_alg(self) -> &'static str {
        match self {
            Version::V2 => GCM_CIPHER_NAME,
            Version::V3 => SUITE_NAME,
        }
    }
}

/// A wrap algorithm: V2 name and V3 code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AwsWrap {
    KmsContext,
    AesGcm,
    RsaOaepSha1,
    /// Legacy V1/V2 `kms` (read only).
    LegacyKms,
    /// Legacy `AESWrap` (read only).
    LegacyAesWrap,
}

impl AwsWrap {
    fn v2_name(self) -> &'static str {
        match self {
            AwsWrap::KmsContext => "kms+context",
            AwsWrap::AesGcm => "AES/GCM",
            AwsWrap::RsaOaepSha1 => "RSA-OAEP-SHA1",
            AwsWrap::LegacyKms => "kms",
            AwsWrap::LegacyAesWrap => "AESWrap",
        }
    }

    fn v3_code(self) -> &'static str {
        match self {
            AwsWrap::KmsContext => "12",
            AwsWrap::AesGcm => "02",
            AwsWrap::RsaOaepSha1 => "22",
            AwsWrap::LegacyKms | AwsWrap::LegacyAesWrap => {
                unreachable!("legacy wraps are never written")
            }
        }
    }

    fn from_v2(name: &str) -> Result<Self, CseError> {
        match name {
            "kms+context" => Ok(AwsWrap::KmsContext),
            "AES/GCM" => Ok(AwsWrap::AesGcm),
            "RSA-OAEP-SHA1" => Ok(AwsWrap::RsaOaepSha1),
            "kms" => Ok(AwsWrap::LegacyKms),
            "AESWrap" => Ok(AwsWrap::LegacyAesWrap),
            other => Err(CseError::UnsupportedAlgorithm(format!(
                "S3EC wrap algorithm {other:?}"
            ))),
        }
    }

    fn from_v3(code: &str) -> Result<Self, CseError> {
        match code {
            "12" => Ok(AwsWrap::KmsContext),
            "02" => Ok(AwsWrap::AesGcm),
            "22" => Ok(AwsWrap::RsaOaepSha1),
            other => Err(CseError::invalid(
                v3::WRAP_ALG,
                format!("unknown wrap algorithm code {other:?}"),
            )),
        }
    }

    fn for_key(master: &MasterKey) -> Self {
        match master.kind {
            MasterKeyKind::Kms(_) => AwsWrap::KmsContext,
            MasterKeyKind::Aes(_) => AwsWrap::AesGcm,
            MasterKeyKind::Rsa(_) => AwsWrap::RsaOaepSha1,
        }
    }

    fn needs(self) -> KeyKindNeeded {
        match self {
            AwsWrap::KmsContext | AwsWrap::LegacyKms => KeyKindNeeded::Kms,
            AwsWrap::AesGcm | AwsWrap::LegacyAesWrap => KeyKindNeeded::Aes,
            AwsWrap::RsaOaepSha1 => KeyKindNeeded::Rsa,
        }
    }
}

pub(crate) fn is_v3(metadata: &Metadata) -> bool {
    metadata.contains_key(v3::ENCRYPTED_DATA_KEY)
}

pub(crate) fn is_v2(metadata: &Metadata) -> bool {
    metadata.contains_key(v2::ENCRYPTED_DATA_KEY)
}

/// S3EC V1 (AES-CBC) or a V3 object whose key lives in an instruction
/// file: recognised, not supported.
pub(crate) fn unsupported_variant(metadata: &Metadata) -> Option<CseError> {
    if metadata.contains_key(v2::ENCRYPTED_DATA_KEY_V1) {
        return Some(CseError::UnsupportedAlgorithm(
            "S3EC V1 objects (AES/CBC)".into(),
        ));
    }
    if metadata.contains_key(v3::CONTENT_CIPHER) && !metadata.contains_key(v3::ENCRYPTED_DATA_KEY) {
        return Some(CseError::UnsupportedAlgorithm(
            "S3EC instruction files".into(),
        ));
    }
    None
}

/// The KMS context / material description stored with a key wrapped by
/// `master`: user entries first, then the reserved cipher entry for KMS
/// (the order Python's dict gets).
fn stored_description(master: &MasterKey, version: Version) -> Vec<(&str, &str)> {
    let mut entries: Vec<(&str, &str)> = master
        .description
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if matches!(master.kind, MasterKeyKind::Kms(_)) {
        entries.retain(|(k, _)| *k != CONTEXT_CEK_ALG);
        entries.push((CONTEXT_CEK_ALG, version.context_cek_alg()));
    }
    entries
}

fn kms_context(entries: &[(&str, &str)]) -> KmsContext {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A new object: its content key and metadata.
pub(crate) async fn new_object(
    master: &MasterKey,
    version: Version,
) -> Result<(ContentKey, Metadata), CseError> {
    let description = stored_description(master, version);
    let (data_key, encrypted_key) = match &master.kind {
        // The Python client asks KMS for the data key (GenerateDataKey).
        MasterKeyKind::Kms(kms) => kms.generate_data_key(&kms_context(&description)).await?,
        _ => {
            let key = SymmetricKey::generate()?;
            let wrapped = wrap_data_key(master, &key)?;
            (key, wrapped)
        }
    };
    let mut nonce = vec![0u8; version.nonce_len()];
    coffer_crypto::random::fill(&mut nonce)?;
    assemble(master, version, data_key, &encrypted_key, &nonce)
}

/// The deterministic rest of [`new_object`]: content key and metadata from
/// the data key, its wrapped form and the nonce (V3 message id, V2 IV).
fn assemble(
    master: &MasterKey,
    version: Version,
    data_key: SymmetricKey,
    encrypted_key: &[u8],
    nonce: &[u8],
) -> Result<(ContentKey, Metadata), CseError> {
    let mut metadata = key_fields(
        master,
        version,
        encrypted_key,
        &stored_description(master, version),
    );
    let content = match version {
        Version::V3 => {
            let (content_key, commitment) = derive_v3(&data_key, nonce)?;
            metadata.insert(v3::CONTENT_CIPHER.into(), SUITE_NAME.into());
            metadata.insert(v3::MESSAGE_ID.into(), b64(nonce));
            metadata.insert(v3::KEY_COMMITMENT.into(), b64(&commitment));
            v3_params(content_key)
        }
        Version::V2 => {
            let iv: [u8; IV_LEN] = nonce
                .try_into()
                .map_err(|_| CseError::Crypto("V2 IV length"))?;
            metadata.insert(v2::IV.into(), b64(&iv));
            metadata.insert(v2::CONTENT_CIPHER.into(), GCM_CIPHER_NAME.into());
            metadata.insert(v2::TAG_LEN.into(), "128".into());
            GcmParams {
                key: data_key,
                iv,
                aad: b"",
            }
        }
    };
    Ok((ContentKey::Gcm(content), metadata))
}

/// Wraps an existing data key under `master` (rewrap): the key fields.
pub(crate) async fn wrap(
    master: &MasterKey,
    version: Version,
    data_key: &SymmetricKey,
) -> Result<Metadata, CseError> {
    let description = stored_description(master, version);
    let encrypted_key = match &master.kind {
        MasterKeyKind::Kms(kms) => {
            kms.encrypt(data_key.expose(), &kms_context(&description))
                .await?
        }
        _ => wrap_data_key(master, data_key)?,
    };
    Ok(key_fields(master, version, &encrypted_key, &description))
}

/// Wraps with a local key (AES/GCM or RSA-OAEP-SHA1 over the pseudo key).
fn wrap_data_key(master: &MasterKey, key: &SymmetricKey) -> Result<Vec<u8>, CseError> {
    match &master.kind {
        MasterKeyKind::Aes(aes) => aes.gcm_wrap(key.expose(), GCM_CIPHER_NAME.as_bytes()),
        MasterKeyKind::Rsa(rsa) => {
            let mut pseudo = Zeroizing::new(Vec::with_capacity(1 + 32 + GCM_CIPHER_NAME.len()));
            pseudo.push(key.expose().len() as u8);
            pseudo.extend_from_slice(key.expose());
            pseudo.extend_from_slice(GCM_CIPHER_NAME.as_bytes());
            rsa.encrypt(RsaPadding::OaepSha1, &pseudo)
        }
        MasterKeyKind::Kms(_) => unreachable!("KMS keys wrap through the KMS"),
    }
}

/// The metadata naming the wrapped key, its wrap algorithm and description.
fn key_fields(
    master: &MasterKey,
    version: Version,
    encrypted_key: &[u8],
    description: &[(&str, &str)],
) -> Metadata {
    let wrap = AwsWrap::for_key(master);
    let mut metadata = Metadata::new();
    match version {
        Version::V3 => {
            metadata.insert(v3::ENCRYPTED_DATA_KEY.into(), b64(encrypted_key));
            metadata.insert(v3::WRAP_ALG.into(), wrap.v3_code().into());
            if !description.is_empty() {
                let field = if wrap == AwsWrap::KmsContext {
                    v3::ENCRYPTION_CONTEXT
                } else {
                    v3::MAT_DESC
                };
                metadata.insert(field.into(), json::dumps(description.iter().copied()));
            }
        }
        Version::V2 => {
            metadata.insert(v2::ENCRYPTED_DATA_KEY.into(), b64(encrypted_key));
            metadata.insert(v2::WRAP_ALG.into(), wrap.v2_name().into());
            metadata.insert(
                v2::MAT_DESC.into(),
                json::dumps(description.iter().copied()),
            );
        }
    }
    metadata
}

/// HKDF-SHA512: (content key, commitment) from the data key and message id.
fn derive_v3(
    data_key: &SymmetricKey,
    message_id: &[u8],
) -> Result<(SymmetricKey, [u8; COMMITMENT_LEN]), CseError> {
    struct Len(usize);
    impl KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let prk = Salt::new(HKDF_SHA512, message_id).extract(data_key.expose());
    let mut content_key = Zeroizing::new([0u8; 32]);
    prk.expand(&[&SUITE_ID, b"DERIVEKEY"], Len(32))
        .and_then(|okm| okm.fill(&mut content_key[..]))
        .map_err(|_| CseError::Crypto("HKDF"))?;
    let mut commitment = [0u8; COMMITMENT_LEN];
    prk.expand(&[&SUITE_ID, b"COMMITKEY"], Len(COMMITMENT_LEN))
        .and_then(|okm| okm.fill(&mut commitment))
        .map_err(|_| CseError::Crypto("HKDF"))?;
    Ok((SymmetricKey::from_slice(&content_key[..])?, commitment))
}

fn v3_params(content_key: SymmetricKey) -> GcmParams {
    GcmParams {
        key: content_key,
        iv: V3_IV,
        aad: &SUITE_ID,
    }
}

/// What an object's metadata says about its wrapped data key.
struct StoredKey {
    version: Version,
    wrap: AwsWrap,
    encrypted_key: Vec<u8>,
    /// KMS context (kms+context) or material description.
    description: BTreeMap<String, String>,
}

fn read_stored_key(metadata: &Metadata) -> Result<StoredKey, CseError> {
    let present = [
        v2::ENCRYPTED_DATA_KEY_V1,
        v2::ENCRYPTED_DATA_KEY,
        v3::ENCRYPTED_DATA_KEY,
    ]
    .iter()
    .filter(|k| metadata.contains_key(**k))
    .count();
    if present > 1 {
        return Err(CseError::invalid(
            v3::ENCRYPTED_DATA_KEY,
            "keys of several S3EC format versions are present (tampered metadata)",
        ));
    }
    if is_v3(metadata) {
        let code = metadata
            .get(v3::WRAP_ALG)
            .ok_or_else(|| CseError::missing(v3::WRAP_ALG))?;
        let wrap = AwsWrap::from_v3(code)?;
        let description_field = if wrap == AwsWrap::KmsContext {
            v3::ENCRYPTION_CONTEXT
        } else {
            v3::MAT_DESC
        };
        Ok(StoredKey {
            version: Version::V3,
            wrap,
            encrypted_key: b64_field(metadata, v3::ENCRYPTED_DATA_KEY)?,
            description: optional_json(metadata, description_field)?,
        })
    } else {
        if [v3::CONTENT_CIPHER, v3::KEY_COMMITMENT, v3::MESSAGE_ID]
            .iter()
            .any(|k| metadata.contains_key(*k))
        {
            return Err(CseError::invalid(
                v2::ENCRYPTED_DATA_KEY,
                "V2 key with V3 content fields (tampered metadata)",
            ));
        }
        let name = metadata
            .get(v2::WRAP_ALG)
            .ok_or_else(|| CseError::missing(v2::WRAP_ALG))?;
        Ok(StoredKey {
            version: Version::V2,
            wrap: AwsWrap::from_v2(name)?,
            encrypted_key: b64_field(metadata, v2::ENCRYPTED_DATA_KEY)?,
            description: optional_json(metadata, v2::MAT_DESC)?,
        })
    }
}

fn optional_json(metadata: &Metadata, field: &str) -> Result<BTreeMap<String, String>, CseError> {
    match metadata.get(field) {
        Some(text) => json::parse_map(field, text),
        None => Ok(BTreeMap::new()),
    }
}

/// Recovers the data key with one of `keys`.
async fn unwrap_data_key(stored: &StoredKey, keys: &[MasterKey]) -> Result<SymmetricKey, CseError> {
    let wrap = stored.wrap;
    // The description of a KMS context is not a key selector (the
    // reserved entry is always there); for raw keys it is the matdesc.
    let selector =
        (!matches!(wrap, AwsWrap::KmsContext | AwsWrap::LegacyKms)).then_some(&stored.description);
    let mut attempts = KeyAttempts::default();
    for master in candidates(keys, wrap.needs(), wrap.v2_name(), selector)? {
        if let Some(key) = attempts.record(unwrap_with(master, stored).await)? {
            return Ok(key);
        }
    }
    Err(attempts.exhausted())
}

/// Unwraps the data key with one master key.
async fn unwrap_with(master: &MasterKey, stored: &StoredKey) -> Result<SymmetricKey, CseError> {
    let plain = match (&master.kind, stored.wrap) {
        (MasterKeyKind::Kms(kms), AwsWrap::KmsContext | AwsWrap::LegacyKms) => {
            kms.decrypt(&stored.encrypted_key, &stored.description)
                .await?
        }
        (MasterKeyKind::Aes(aes), AwsWrap::AesGcm) => {
            aes.gcm_unwrap(&stored.encrypted_key, GCM_CIPHER_NAME.as_bytes())?
        }
        (MasterKeyKind::Aes(aes), AwsWrap::LegacyAesWrap) => {
            aes.key_unwrap(&stored.encrypted_key)?
        }
        (MasterKeyKind::Rsa(rsa), AwsWrap::RsaOaepSha1) => {
            let pseudo = rsa.decrypt(RsaPadding::OaepSha1, &stored.encrypted_key)?;
            Zeroizing::new(parse_pseudo_key(&pseudo)?.to_vec())
        }
        _ => {
            return Err(CseError::WrongMasterKey(format!(
                "{} cannot unwrap {}",
                master.label(),
                stored.wrap.v2_name()
            )));
        }
    };
    SymmetricKey::from_slice(&plain)
        .map_err(|_| CseError::WrongMasterKey("the unwrapped data key is not 32 bytes".into()))
}

/// `len ‖ key ‖ "AES/GCM/NoPadding"` → key.
fn parse_pseudo_key(pseudo: &[u8]) -> Result<&[u8], CseError> {
    let bad = || {
        CseError::WrongMasterKey("the RSA-unwrapped value is not an S3EC pseudo data key".into())
    };
    let (&len, rest) = pseudo.split_first().ok_or_else(bad)?;
    let len = usize::from(len);
    if len != 32 || rest.len() < len || &rest[len..] != GCM_CIPHER_NAME.as_bytes() {
        return Err(bad());
    }
    Ok(&rest[..len])
}

/// Opens an S3EC object's content key.
pub(crate) async fn open(metadata: &Metadata, keys: &[MasterKey]) -> Result<ContentKey, CseError> {
    let stored = read_stored_key(metadata)?;
    match stored.version {
        Version::V3 => {
            let suite = metadata
                .get(v3::CONTENT_CIPHER)
                .ok_or_else(|| CseError::missing(v3::CONTENT_CIPHER))?;
            if suite != SUITE_NAME {
                return Err(CseError::UnsupportedAlgorithm(format!(
                    "S3EC content suite {suite:?}"
                )));
            }
            let message_id = b64_field(metadata, v3::MESSAGE_ID)?;
            if message_id.len() != MESSAGE_ID_LEN {
                return Err(CseError::invalid(v3::MESSAGE_ID, "not 28 bytes"));
            }
            let commitment = b64_field(metadata, v3::KEY_COMMITMENT)?;
            let data_key = unwrap_data_key(&stored, keys).await?;
            let (content_key, derived) = derive_v3(&data_key, &message_id)?;
            verify_slices_are_equal(&derived, &commitment).map_err(|_| {
                CseError::invalid(
                    v3::KEY_COMMITMENT,
                    "the key commitment does not match the data key",
                )
            })?;
            Ok(ContentKey::Gcm(v3_params(content_key)))
        }
        Version::V2 => {
            let cipher = metadata
                .get(v2::CONTENT_CIPHER)
                .ok_or_else(|| CseError::missing(v2::CONTENT_CIPHER))?;
            if cipher != GCM_CIPHER_NAME {
                return Err(CseError::UnsupportedAlgorithm(format!(
                    "S3EC content cipher {cipher:?}"
                )));
            }
            if let Some(tag_len) = metadata.get(v2::TAG_LEN)
                && tag_len != "128"
            {
                return Err(CseError::UnsupportedAlgorithm(format!(
                    "GCM tag length {tag_len}"
                )));
            }
            let iv: [u8; IV_LEN] = b64_field(metadata, v2::IV)?
                .try_into()
                .map_err(|_| CseError::invalid(v2::IV, "not 12 bytes"))?;
            let data_key = unwrap_data_key(&stored, keys).await?;
            Ok(ContentKey::Gcm(GcmParams {
                key: data_key,
                iv,
                aad: b"",
            }))
        }
    }
}

/// Rewrap: the data key of an S3EC object, and its version.
pub(crate) async fn open_data_key(
    metadata: &Metadata,
    keys: &[MasterKey],
) -> Result<(Version, SymmetricKey), CseError> {
    let stored = read_stored_key(metadata)?;
    let key = unwrap_data_key(&stored, keys).await?;
    if stored.version == Version::V3 {
        // Refuse to re-wrap a key the object's commitment does not vouch for.
        let message_id = b64_field(metadata, v3::MESSAGE_ID)?;
        let commitment = b64_field(metadata, v3::KEY_COMMITMENT)?;
        let (_, derived) = derive_v3(&key, &message_id)?;
        verify_slices_are_equal(&derived, &commitment).map_err(|_| {
            CseError::invalid(
                v3::KEY_COMMITMENT,
                "the key commitment does not match the data key",
            )
        })?;
    }
    Ok((stored.version, key))
}

/// The metadata fields rewrap replaces.
pub(crate) const WRAPPING_FIELDS: &[&str] = &[
    v3::ENCRYPTED_DATA_KEY,
    v3::WRAP_ALG,
    v3::MAT_DESC,
    v3::ENCRYPTION_CONTEXT,
    v2::ENCRYPTED_DATA_KEY,
    v2::WRAP_ALG,
    v2::MAT_DESC,
];

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use coffer_client::{Endpoint, SignedClient};

    use super::*;

    /// Fixed vectors written by amazon-s3-encryption-client-python 4.0.0
    /// (`tests/vectors/generate.py`: real `PutEncryptedObjectPipeline`, data
    /// key `00 01 … 1f`, a stand-in KMS blob, pinned message id / IV).
    fn vectors() -> serde_json::Value {
        serde_json::from_str(include_str!("../../tests/data/vectors.json")).expect("vectors.json")
    }

    fn hex_field(v: &serde_json::Value, name: &str) -> Vec<u8> {
        hex::decode(v[name].as_str().expect("hex string")).expect("hex")
    }

    /// A KMS master key for formatting only (no request is made).
    fn offline_kms_key() -> MasterKey {
        let client = SignedClient::new(Endpoint {
            url: "http://127.0.0.1:9".into(),
            access_key: "unused".into(),
            secret_key: coffer_auth::Secret::from("unused".to_owned()),
            region: "us-east-1".into(),
        })
        .expect("client");
        MasterKey::kms(Arc::new(client), "alias/test")
    }

    fn python_metadata(v: &serde_json::Value) -> Metadata {
        v["metadata"]
            .as_object()
            .expect("metadata")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_owned()))
            .collect()
    }

    fn encrypt_whole(content: &ContentKey, plaintext: &[u8]) -> Vec<u8> {
        let ContentKey::Gcm(params) = content else {
            panic!("GCM expected")
        };
        let mut enc = params.encryptor().expect("encryptor");
        let mut out = plaintext.to_vec();
        enc.update(&mut out).expect("update");
        out.extend_from_slice(&enc.finish());
        out
    }

    /// Assembles `case` from the vector file's data key and the Python
    /// client's own nonce field, then compares metadata and ciphertext.
    fn assert_writes_like_python(case_name: &str, version: Version, nonce_field: &str) {
        let v = vectors();
        let case = &v[case_name];
        let expected = python_metadata(case);
        let nonce = b64_field(&expected, nonce_field).expect("nonce field");
        let data_key = SymmetricKey::from_slice(&hex_field(&v, "cek")).expect("key");
        let (content, metadata) = assemble(
            &offline_kms_key(),
            version,
            data_key,
            b"stand-in KMS blob",
            &nonce,
        )
        .expect("assemble");
        assert_eq!(metadata, expected);
        assert_eq!(
            encrypt_whole(&content, &hex_field(&v, "plaintext")),
            hex_field(case, "ciphertext")
        );
    }

    #[test]
    fn writes_v3_exactly_as_the_python_client() {
        assert_writes_like_python("s3ec_v3_kms", Version::V3, v3::MESSAGE_ID);
    }

    #[test]
    fn writes_v2_exactly_as_the_python_client() {
        assert_writes_like_python("s3ec_v2_kms", Version::V2, v2::IV);
    }

    #[test]
    fn python_v3_commitment_is_checked() {
        let v = vectors();
        let metadata = python_metadata(&v["s3ec_v3_kms"]);
        let data_key = SymmetricKey::from_slice(&hex_field(&v, "cek")).expect("key");
        let message_id = b64_field(&metadata, v3::MESSAGE_ID).expect("x-amz-i");
        let (_, commitment) = derive_v3(&data_key, &message_id).expect("derive");
        assert_eq!(b64(&commitment), metadata[v3::KEY_COMMITMENT]);
        let other = SymmetricKey::from_slice(&[0xEE; 32]).expect("key");
        assert_ne!(
            derive_v3(&other, &message_id).expect("derive").1,
            commitment
        );
    }

    #[test]
    fn pseudo_data_key_is_checked() {
        let mut pseudo = vec![32u8];
        pseudo.extend_from_slice(&[7; 32]);
        pseudo.extend_from_slice(b"AES/GCM/NoPadding");
        assert_eq!(parse_pseudo_key(&pseudo).expect("valid"), &[7; 32]);
        pseudo.push(b'x');
        assert!(parse_pseudo_key(&pseudo).is_err());
        assert!(parse_pseudo_key(&[16]).is_err());
    }

    #[test]
    fn reads_the_legacy_aeswrap_v2_wrap() {
        let master = MasterKey::aes(SymmetricKey::from_slice(&[5; 32]).expect("key"));
        let data_key = SymmetricKey::from_slice(&[6; 32]).expect("key");
        let (content, mut metadata) = assemble(
            &master,
            Version::V2,
            data_key.clone(),
            b"replaced below",
            &[1; IV_LEN],
        )
        .expect("assemble");
        let MasterKeyKind::Aes(aes) = &master.kind else {
            unreachable!("an AES key")
        };
        let wrapped = aes.key_wrap(data_key.expose()).expect("wrap");
        metadata.insert(v2::ENCRYPTED_DATA_KEY.into(), b64(&wrapped));
        metadata.insert(v2::WRAP_ALG.into(), "AESWrap".into());
        let stored = encrypt_whole(&content, b"legacy");
        let opened = block_on(open(&metadata, std::slice::from_ref(&master))).expect("open");
        let ContentKey::Gcm(params) = opened else {
            panic!("GCM expected")
        };
        let mut dec = params.decryptor().expect("decryptor");
        let mut out = Vec::new();
        dec.update(&stored, &mut out).expect("update");
        dec.finish().expect("tag");
        assert_eq!(out, b"legacy");
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn mixed_versions_are_refused_as_tampering() {
        let v = vectors();
        let mut metadata = python_metadata(&v["s3ec_v3_kms"]);
        metadata.insert(v2::ENCRYPTED_DATA_KEY.into(), "AAAA".into());
        let err = read_stored_key(&metadata).err().expect("collision");
        assert!(
            err.to_string().contains("several S3EC format versions"),
            "{err}"
        );
    }
}
