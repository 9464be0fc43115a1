//! The OSS client-side encryption format (oss2 `CryptoBucket`,
//! alibabacloud-oss-v2 `EncryptionClient`): AES-256-CTR content, CEK and IV
//! wrapped separately, `client-side-encryption-*` metadata.

use std::collections::BTreeMap;

use coffer_crypto::SymmetricKey;
use zeroize::Zeroizing;

use super::{ContentKey, KeyAttempts, KeyKindNeeded, Metadata, b64, candidates, decode_b64};
use crate::content::BLOCK_LEN;
use crate::master_key::kms::KmsContext;
use crate::master_key::{MasterKey, MasterKeyKind, RsaPadding};
use crate::{CseError, json};

/// The wrapped content key, base64.
pub const KEY: &str = "client-side-encryption-key";
/// The wrapped initial counter block, base64.
pub const START: &str = "client-side-encryption-start";
/// The content cipher, `AES/CTR/NoPadding`.
pub const CEK_ALG: &str = "client-side-encryption-cek-alg";
/// The key wrap algorithm.
pub const WRAP_ALG: &str = "client-side-encryption-wrap-alg";
/// The material description, JSON.
pub const MATDESC: &str = "client-side-encryption-matdesc";
/// The plaintext length in bytes.
pub const UNENCRYPTED_LENGTH: &str = "client-side-encryption-unencrypted-content-length";
/// The plaintext's MD5, base64.
pub const UNENCRYPTED_MD5: &str = "client-side-encryption-unencrypted-content-md5";
/// The total size of a multipart upload.
pub const DATA_SIZE: &str = "client-side-encryption-data-size";
/// The part size of a multipart upload.
pub const PART_SIZE: &str = "client-side-encryption-part-size";

/// Old oss2 names, read only.
mod deprecated {
    pub const KEY: &str = "oss-crypto-key";
    pub const START: &str = "oss-crypto-start";
    pub const CEK_ALG: &str = "oss-cek-alg";
    pub const WRAP_ALG: &str = "oss-wrap-alg";
    pub const MATDESC: &str = "oss-crypto-matdesc";
    pub const UNENCRYPTED_LENGTH: &str = "oss-crypto-unencrypted-content-length";
}

/// The only content cipher of the format.
pub const CEK_ALG_CTR: &str = "AES/CTR/NoPadding";
/// Old oss2 wrote "AES/GCM/NoPadding" but encrypted with CTR.
const DEPRECATED_CEK_ALG_GCM: &str = "AES/GCM/NoPadding";

/// A wrap algorithm of the format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OssWrap {
    RsaOaep,
    RsaPkcs1,
    /// `KMS/ALICLOUD`; `double_base64` is false for the deprecated `kms`
    /// layout, where the header holds the KMS blob string as is.
    Kms {
        double_base64: bool,
    },
    /// Coffer only: RFC 3394 AES key wrap.
    AesWrap,
}

impl OssWrap {
    pub(crate) fn name(self) -> &'static str {
        match self {
            OssWrap::RsaOaep => "RSA/NONE/OAEPWithSHA-1AndMGF1Padding",
            OssWrap::RsaPkcs1 => "RSA/NONE/PKCS1Padding",
            OssWrap::Kms { .. } => "KMS/ALICLOUD",
            OssWrap::AesWrap => "AESWrap",
        }
    }

    fn parse(name: &str, deprecated: bool) -> Result<Self, CseError> {
        if deprecated {
            // oss2 models.py: "kms" is KMS with raw blobs, anything else RSA-OAEP.
            return Ok(if name == "kms" {
                OssWrap::Kms {
                    double_base64: false,
                }
            } else {
                OssWrap::RsaOaep
            });
        }
        match name {
            "RSA/NONE/OAEPWithSHA-1AndMGF1Padding" => Ok(OssWrap::RsaOaep),
            "RSA/NONE/PKCS1Padding" => Ok(OssWrap::RsaPkcs1),
            "KMS/ALICLOUD" => Ok(OssWrap::Kms {
                double_base64: true,
            }),
            "AESWrap" => Ok(OssWrap::AesWrap),
            other => Err(CseError::UnsupportedAlgorithm(format!(
                "OSS wrap algorithm {other:?}"
            ))),
        }
    }

    fn needs(self) -> KeyKindNeeded {
        match self {
            OssWrap::RsaOaep | OssWrap::RsaPkcs1 => KeyKindNeeded::Rsa,
            OssWrap::Kms { .. } => KeyKindNeeded::Kms,
            OssWrap::AesWrap => KeyKindNeeded::Aes,
        }
    }
}

pub(crate) fn is_oss(metadata: &Metadata) -> bool {
    metadata.contains_key(KEY) || metadata.contains_key(deprecated::KEY)
}

/// A fresh IV: 16 random bytes with bytes 8..11 zero (as both OSS SDKs do),
/// so the low 64-bit half never carries in practice.
fn random_iv() -> Result<[u8; BLOCK_LEN], CseError> {
    let mut iv = [0u8; BLOCK_LEN];
    coffer_crypto::random::fill(&mut iv)?;
    iv[8..12].fill(0);
    Ok(iv)
}

/// A new object's content key and its metadata (without sizes).
///
/// Under a KMS key the CEK is wrapped as Alibaba's KMS wraps a data key:
/// `Encrypt(base64(CEK))`, so the blob decrypts to base64 text through
/// either KMS protocol, and oss2's `AliKMSProvider` (which decodes that
/// text) reads the object through Coffer's Alibaba KMS API. A
/// `GenerateDataKey` blob over the AWS protocol would hold the raw key.
pub(crate) async fn new_object(master: &MasterKey) -> Result<(ContentKey, Metadata), CseError> {
    let iv = random_iv()?;
    let key = SymmetricKey::generate()?;
    let metadata = wrap(master, &key, &iv).await?;
    Ok((ContentKey::Ctr { key, iv }, metadata))
}

/// Wraps CEK and IV under `master`: the metadata fields that carry them
/// (used for new objects and by rewrap).
pub(crate) async fn wrap(
    master: &MasterKey,
    key: &SymmetricKey,
    iv: &[u8; BLOCK_LEN],
) -> Result<Metadata, CseError> {
    let mut metadata = describe(master, iv).await?;
    metadata.insert(KEY.into(), wrap_secret(master, key.expose()).await?);
    Ok(metadata)
}

/// Everything but the wrapped CEK: wrapped IV, algorithms, matdesc.
async fn describe(master: &MasterKey, iv: &[u8; BLOCK_LEN]) -> Result<Metadata, CseError> {
    let mut metadata = Metadata::new();
    metadata.insert(START.into(), wrap_secret(master, iv).await?);
    metadata.insert(CEK_ALG.into(), CEK_ALG_CTR.into());
    metadata.insert(WRAP_ALG.into(), wrap_for(master).name().into());
    if !master.description.is_empty() {
        metadata.insert(
            MATDESC.into(),
            json::dumps(
                master
                    .description
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            ),
        );
    }
    Ok(metadata)
}

fn wrap_for(master: &MasterKey) -> OssWrap {
    match &master.kind {
        MasterKeyKind::Kms(_) => OssWrap::Kms {
            double_base64: true,
        },
        MasterKeyKind::Aes(_) => OssWrap::AesWrap,
        MasterKeyKind::Rsa(_) => match master.oss_rsa_padding {
            RsaPadding::OaepSha1 => OssWrap::RsaOaep,
            RsaPadding::Pkcs1v15 => OssWrap::RsaPkcs1,
        },
    }
}

/// Wraps one secret (CEK or IV) into its header value.
async fn wrap_secret(master: &MasterKey, secret: &[u8]) -> Result<String, CseError> {
    Ok(match &master.kind {
        MasterKeyKind::Aes(aes) => b64(&aes.key_wrap(secret)?),
        MasterKeyKind::Rsa(rsa) => b64(&rsa.encrypt(master.oss_rsa_padding, secret)?),
        // AliKMSProvider encrypts base64(secret) as text (and Alibaba's KMS
        // decrypts a data-key blob to base64(key)): keep that shape.
        MasterKeyKind::Kms(kms) => {
            let text = Zeroizing::new(b64(secret));
            kms_header(&kms.encrypt(text.as_bytes(), &KmsContext::new()).await?)
        }
    })
}

/// `KMS/ALICLOUD` stores base64 of the KMS `CiphertextBlob` *string*; over
/// the AWS KMS JSON API that string is itself base64 of the blob.
fn kms_header(blob: &[u8]) -> String {
    b64(b64(blob).as_bytes())
}

/// The parts of an OSS object's metadata that locate its key.
struct Stored {
    deprecated: bool,
    wrap: OssWrap,
    description: Option<BTreeMap<String, String>>,
}

impl Stored {
    fn name(&self, current: &'static str, old: &'static str) -> &'static str {
        if self.deprecated { old } else { current }
    }
}

fn read_stored(metadata: &Metadata) -> Result<Stored, CseError> {
    let deprecated = !metadata.contains_key(KEY) && metadata.contains_key(deprecated::KEY);
    let (cek_field, wrap_field, matdesc_field) = if deprecated {
        (
            deprecated::CEK_ALG,
            deprecated::WRAP_ALG,
            deprecated::MATDESC,
        )
    } else {
        (CEK_ALG, WRAP_ALG, MATDESC)
    };
    let cek_alg = metadata
        .get(cek_field)
        .ok_or_else(|| CseError::missing(cek_field))?;
    let ctr = cek_alg == CEK_ALG_CTR || (deprecated && cek_alg == DEPRECATED_CEK_ALG_GCM);
    if !ctr {
        return Err(CseError::UnsupportedAlgorithm(format!(
            "OSS content cipher {cek_alg:?}"
        )));
    }
    let wrap_alg = metadata
        .get(wrap_field)
        .ok_or_else(|| CseError::missing(wrap_field))?;
    let wrap = OssWrap::parse(wrap_alg, deprecated)?;
    let description = match metadata.get(matdesc_field) {
        Some(text) if !text.is_empty() => Some(json::parse_map(matdesc_field, text)?),
        _ => None,
    };
    Ok(Stored {
        deprecated,
        wrap,
        description,
    })
}

/// Recovers CEK and IV.
pub(crate) async fn open(metadata: &Metadata, keys: &[MasterKey]) -> Result<ContentKey, CseError> {
    let stored = read_stored(metadata)?;
    let key_field = stored.name(KEY, deprecated::KEY);
    let start_field = stored.name(START, deprecated::START);
    let wrapped_key = stored_secret(metadata, key_field, stored.wrap)?;
    let wrapped_iv = stored_secret(metadata, start_field, stored.wrap)?;
    let mut attempts = KeyAttempts::default();
    for master in candidates(
        keys,
        stored.wrap.needs(),
        stored.wrap.name(),
        stored.description.as_ref(),
    )? {
        let outcome = unwrap_pair(master, &stored, &wrapped_key, &wrapped_iv).await;
        if let Some((key, iv)) = attempts.record(outcome)? {
            return Ok(ContentKey::Ctr { key, iv });
        }
    }
    Err(attempts.exhausted())
}

/// The wrapped bytes of a key field: base64, twice for `KMS/ALICLOUD`
/// (the inner base64 is the KMS blob string; the deprecated `kms` layout
/// stores that string directly).
fn stored_secret(metadata: &Metadata, field: &str, wrap: OssWrap) -> Result<Vec<u8>, CseError> {
    let text = metadata
        .get(field)
        .ok_or_else(|| CseError::missing(field))?;
    match wrap {
        OssWrap::Kms {
            double_base64: true,
        } => {
            let blob_text = String::from_utf8(decode_b64(field, text)?)
                .map_err(|_| CseError::invalid(field, "not a KMS blob"))?;
            decode_b64(field, &blob_text)
        }
        _ => decode_b64(field, text),
    }
}

/// Unwraps CEK and IV with one master key; values of the wrong size mean
/// the wrong key (PKCS#1 v1.5 may "succeed" with one), so the next
/// candidate is tried.
async fn unwrap_pair(
    master: &MasterKey,
    stored: &Stored,
    wrapped_key: &[u8],
    wrapped_iv: &[u8],
) -> Result<(SymmetricKey, [u8; BLOCK_LEN]), CseError> {
    let key = unwrap_secret(master, stored.wrap, wrapped_key).await?;
    let key = kms_plaintext(&key, 32)
        .and_then(|k| SymmetricKey::from_slice(&k).ok())
        .ok_or_else(|| {
            let field = stored.name(KEY, deprecated::KEY);
            CseError::WrongMasterKey(format!("{field} does not unwrap to a 32-byte key"))
        })?;
    let iv = unwrap_secret(master, stored.wrap, wrapped_iv).await?;
    let iv = kms_plaintext(&iv, BLOCK_LEN)
        .and_then(|v| v.as_slice().try_into().ok())
        .or_else(|| deprecated_counter(&iv, stored.deprecated))
        .ok_or_else(|| {
            let field = stored.name(START, deprecated::START);
            CseError::WrongMasterKey(format!("{field} does not unwrap to a 16-byte IV"))
        })?;
    Ok((key, iv))
}

async fn unwrap_secret(
    master: &MasterKey,
    wrap: OssWrap,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CseError> {
    match (&master.kind, wrap) {
        (MasterKeyKind::Rsa(rsa), OssWrap::RsaOaep) => rsa.decrypt(RsaPadding::OaepSha1, wrapped),
        (MasterKeyKind::Rsa(rsa), OssWrap::RsaPkcs1) => rsa.decrypt(RsaPadding::Pkcs1v15, wrapped),
        (MasterKeyKind::Aes(aes), OssWrap::AesWrap) => aes.key_unwrap(wrapped),
        (MasterKeyKind::Kms(kms), OssWrap::Kms { .. }) => {
            kms.decrypt(wrapped, &KmsContext::new()).await
        }
        _ => Err(CseError::WrongMasterKey(format!(
            "{} cannot unwrap {}",
            master.label(),
            wrap.name()
        ))),
    }
}

/// A KMS plaintext is raw bytes (AWS-style) or base64 text of them
/// (Alibaba-style); RSA/AES plaintexts are raw. Accept both shapes.
fn kms_plaintext(plain: &[u8], expected_len: usize) -> Option<Zeroizing<Vec<u8>>> {
    use base64::Engine;
    if plain.len() == expected_len {
        return Some(Zeroizing::new(plain.to_vec()));
    }
    base64::engine::general_purpose::STANDARD
        .decode(plain)
        .ok()
        .map(Zeroizing::new)
        .filter(|decoded| decoded.len() == expected_len)
}

/// Very old oss2 objects stored the start counter as decimal text.
fn deprecated_counter(plain: &[u8], deprecated: bool) -> Option<[u8; BLOCK_LEN]> {
    if !deprecated {
        return None;
    }
    std::str::from_utf8(plain)
        .ok()?
        .trim()
        .parse::<u128>()
        .ok()
        .map(u128::to_be_bytes)
}

/// Plaintext length recorded by the writer, if any.
pub(crate) fn unencrypted_length(metadata: &Metadata) -> Option<u64> {
    metadata
        .get(UNENCRYPTED_LENGTH)
        .or_else(|| metadata.get(deprecated::UNENCRYPTED_LENGTH))
        .and_then(|v| v.trim().parse().ok())
}

/// The metadata fields rewrap replaces (current and deprecated names).
pub(crate) const WRAPPING_FIELDS: &[&str] = &[
    KEY,
    START,
    WRAP_ALG,
    MATDESC,
    CEK_ALG,
    deprecated::KEY,
    deprecated::START,
    deprecated::WRAP_ALG,
    deprecated::MATDESC,
    deprecated::CEK_ALG,
];
