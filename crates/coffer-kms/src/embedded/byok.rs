//! BYOK (imported key material): the RSA wrapping key handed out by
//! GetParametersForImport, unwrapping with RSA-OAEP, and the commitment that
//! lets a re-import prove it brings back the same material.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey,
    PrivateDecryptingKey,
};
use coffer_crypto::SymmetricKey;
use zeroize::Zeroizing;

use crate::kms::{KmsError, WrappingAlgorithm, WrappingKeySpec};

const COMMITMENT_LABEL: &[u8] = b"coffer-kms byok commitment v1\0";

/// A fresh RSA wrapping key: its private half as PKCS#8 (to be sealed) and
/// its public half as DER SubjectPublicKeyInfo (for the client).
pub fn generate_wrapping_key(
    spec: WrappingKeySpec,
) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), KmsError> {
    let size = match spec {
        WrappingKeySpec::Rsa2048 => KeySize::Rsa2048,
        WrappingKeySpec::Rsa3072 => KeySize::Rsa3072,
        WrappingKeySpec::Rsa4096 => KeySize::Rsa4096,
    };
    let internal = |what: &str| KmsError::Internal(format!("RSA wrapping key: {what}"));
    let private = PrivateDecryptingKey::generate(size).map_err(|_| internal("generation"))?;
    let pkcs8 = private.as_der().map_err(|_| internal("PKCS#8 encoding"))?;
    let public = private
        .public_key()
        .as_der()
        .map_err(|_| internal("SPKI encoding"))?;
    Ok((
        Zeroizing::new(pkcs8.as_ref().to_vec()),
        public.as_ref().to_vec(),
    ))
}

/// Unwraps imported material. Every failure (bad padding, wrong length, bad
/// key) is the same [`KmsError::IncorrectKeyMaterial`], so the answer is no
/// padding oracle.
pub fn unwrap_material(
    pkcs8: &[u8],
    algorithm: WrappingAlgorithm,
    wrapped: &[u8],
) -> Result<SymmetricKey, KmsError> {
    let private = PrivateDecryptingKey::from_pkcs8(pkcs8)
        .map_err(|_| KmsError::Internal("a stored RSA wrapping key does not parse".into()))?;
    let key = OaepPrivateDecryptingKey::new(private)
        .map_err(|_| KmsError::Internal("RSA-OAEP key".into()))?;
    let oaep = match algorithm {
        WrappingAlgorithm::RsaesOaepSha256 => &OAEP_SHA256_MGF1SHA256,
        WrappingAlgorithm::RsaesOaepSha1 => &OAEP_SHA1_MGF1SHA1,
    };
    let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
    let plaintext = key
        .decrypt(oaep, wrapped, &mut out, None)
        .map_err(|_| KmsError::IncorrectKeyMaterial)?;
    SymmetricKey::from_slice(plaintext).map_err(|_| KmsError::IncorrectKeyMaterial)
}

/// HMAC-SHA256 keyed by the material over a fixed label and the key id: a
/// binding commitment to the material that reveals nothing about it.
pub fn commitment(key_id: &str, material: &SymmetricKey) -> [u8; 32] {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, material.expose()),
        &commitment_message(key_id),
    );
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Whether `material` is the material `expected` commits to (constant time).
pub fn matches_commitment(key_id: &str, material: &SymmetricKey, expected: &[u8]) -> bool {
    hmac::verify(
        &hmac::Key::new(hmac::HMAC_SHA256, material.expose()),
        &commitment_message(key_id),
        expected,
    )
    .is_ok()
}

fn commitment_message(key_id: &str) -> Vec<u8> {
    let mut message = COMMITMENT_LABEL.to_vec();
    message.extend_from_slice(key_id.as_bytes());
    message
}

/// The wire names (`RSAES_OAEP_SHA_256`, `RSAES_OAEP_SHA_1`).
pub fn algorithm_name(algorithm: WrappingAlgorithm) -> &'static str {
    match algorithm {
        WrappingAlgorithm::RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
        WrappingAlgorithm::RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
    }
}

pub fn algorithm_from_name(name: &str) -> Option<WrappingAlgorithm> {
    match name {
        "RSAES_OAEP_SHA_256" => Some(WrappingAlgorithm::RsaesOaepSha256),
        "RSAES_OAEP_SHA_1" => Some(WrappingAlgorithm::RsaesOaepSha1),
        _ => None,
    }
}
