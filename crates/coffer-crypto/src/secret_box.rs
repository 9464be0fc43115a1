//! Sealing of small secrets with AES-256-GCM: the secret box, and the
//! AEAD core every small-secret format of Coffer shares.
//!
//! The core ([`seal_append`], [`open_prefixed`]) writes and reads
//! `nonce (12 bytes, random) ‖ ciphertext ‖ tag (16 bytes)` under a caller's
//! AAD. Each stored format frames it its own way: the secret box below, the
//! KMS ciphertext blob (a header in front, header and encryption context as
//! AAD) and the S3 Encryption Client's `AES/GCM` key wrap (no framing).
//!
//! The secret box seals credentials and key material at rest under the
//! root key. Sealed layout, version 1:
//!
//! ```text
//! version (1 byte = 0x01) ‖ nonce (12 bytes, random) ‖ AES-256-GCM(ciphertext ‖ tag 16 bytes)
//! ```
//!
//! The caller passes a *context* naming what the secret is and whom it belongs
//! to (for example `user-secret:<access key>`); it is authenticated as AAD,
//! so a sealed value copied onto another record does not open.
#![forbid(unsafe_code)]

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::{CryptoError, SymmetricKey};

/// Length of the AES-GCM nonce in front of every sealed value.
pub const NONCE_LEN: usize = aws_lc_rs::aead::NONCE_LEN;
/// Length of the AES-GCM tag at the end of every sealed value.
pub const TAG_LEN: usize = 16;

const VERSION: u8 = 1;
const AAD_LABEL: &[u8] = b"coffer secret-box v1\0";

/// Seals `plaintext` under `key`, bound to `context`.
pub fn seal(key: &SymmetricKey, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    crate::random::fill(&mut nonce)?;
    Ok(seal_with_nonce(key, context, plaintext, nonce))
}

fn seal_with_nonce(
    key: &SymmetricKey,
    context: &str,
    plaintext: &[u8],
    nonce: [u8; NONCE_LEN],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(VERSION);
    seal_append_with_nonce(key, nonce, &aad(context), plaintext, &mut out);
    out
}

/// Opens a value made by [`seal`] with the same key and context.
pub fn open(
    key: &SymmetricKey,
    context: &str,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let (&version, rest) = sealed.split_first().ok_or(CryptoError::Decryption)?;
    if version != VERSION {
        return Err(CryptoError::UnsupportedVersion(version));
    }
    open_prefixed(key, &aad(context), rest)
}

/// Appends `nonce ‖ AES-256-GCM(key, plaintext, aad) ‖ tag` to `out`, with
/// a fresh random nonce.
pub fn seal_append(
    key: &SymmetricKey,
    aad: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    crate::random::fill(&mut nonce)?;
    seal_append_with_nonce(key, nonce, aad, plaintext, out);
    Ok(())
}

/// [`seal_append`] with a nonce chosen by the caller: for fixed test
/// vectors only. A nonce must never be used twice under one key.
pub fn seal_append_with_nonce(
    key: &SymmetricKey,
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) {
    out.reserve(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    let start = out.len();
    out.extend_from_slice(plaintext);
    let tag = cipher(key)
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out[start..],
        )
        .expect("AES-GCM sealing only fails for inputs beyond 64 GiB");
    out.extend_from_slice(tag.as_ref());
}

/// Opens `nonce ‖ ciphertext ‖ tag` (as [`seal_append`] writes it) with the
/// same key and AAD. Every failure, a short input included, is
/// [`CryptoError::Decryption`].
pub fn open_prefixed(
    key: &SymmetricKey,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Decryption);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Decryption)?;
    let mut in_out = Zeroizing::new(ciphertext.to_vec());
    let plaintext_len = cipher(key)
        .open_in_place(nonce, Aad::from(aad), &mut in_out)
        .map_err(|_| CryptoError::Decryption)?
        .len();
    in_out.truncate(plaintext_len);
    Ok(in_out)
}

fn cipher(key: &SymmetricKey) -> LessSafeKey {
    let unbound =
        UnboundKey::new(&AES_256_GCM, key.expose()).expect("a SymmetricKey is always 32 bytes");
    LessSafeKey::new(unbound)
}

fn aad(context: &str) -> Vec<u8> {
    let mut bytes = AAD_LABEL.to_vec();
    bytes.extend_from_slice(context.as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SymmetricKey {
        SymmetricKey::from_slice(&[7u8; 32]).expect("32 bytes")
    }

    /// Fixed vector: pins the layout (version, nonce, AAD label) so that a
    /// change to any of them is a deliberate format change, not an accident.
    #[test]
    fn fixed_vector() {
        let sealed = seal_with_nonce(&key(), "user-secret:AK", b"s3cret", [1u8; 12]);
        let expected = concat!(
            "01",
            "010101010101010101010101",
            "05d2eac5f5cbb81fea08ac1fecede14e18ff787e464a"
        );
        // The first 13 bytes are layout; the rest is checked by open() below.
        assert_eq!(hex(&sealed[..13]), &expected[..26]);
        assert_eq!(sealed.len(), 1 + 12 + 6 + 16);
        assert_eq!(
            open(&key(), "user-secret:AK", &sealed)
                .expect("opens")
                .as_slice(),
            b"s3cret"
        );
        assert_eq!(hex(&sealed[13..]), FIXED_CIPHERTEXT);
    }

    const FIXED_CIPHERTEXT: &str = "05d2eac5f5cbb81fea08ac1fecede14e18ff787e464a";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn round_trip_and_binding() {
        let sealed = seal(&key(), "ctx-a", b"value").expect("seal");
        assert_eq!(
            open(&key(), "ctx-a", &sealed).expect("open").as_slice(),
            b"value"
        );
        assert_eq!(open(&key(), "ctx-b", &sealed), Err(CryptoError::Decryption));
        let other = SymmetricKey::from_slice(&[8u8; 32]).expect("32 bytes");
        assert_eq!(open(&other, "ctx-a", &sealed), Err(CryptoError::Decryption));
    }

    #[test]
    fn every_single_byte_change_is_detected() {
        let sealed = seal(&key(), "ctx", b"some secret value").expect("seal");
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            assert!(open(&key(), "ctx", &tampered).is_err(), "byte {i} flipped");
        }
        assert!(open(&key(), "ctx", &sealed[..sealed.len() - 1]).is_err());
        assert!(open(&key(), "ctx", &[]).is_err());
    }
}
