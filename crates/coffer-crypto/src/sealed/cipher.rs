//! Per-part content keys (HKDF-SHA256 over the DEK) and the chunk AEAD.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{Algorithm, NONCE_PREFIX_LEN, ObjectId, TAG_LEN};
use crate::sm4_simd::Sm4Gcm;
use crate::{CryptoError, SymmetricKey};

/// HKDF `info` label of the content key and nonce prefix (format.md §2).
const CONTENT_LABEL: &[u8] = b"coffer/v1/content";

/// The output length asked of HKDF.
struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256(ikm = DEK, salt, info = concatenation of `info`) into `out`.
pub(crate) fn hkdf_sha256(dek: &SymmetricKey, salt: &[u8], info: &[&[u8]], out: &mut [u8]) {
    Salt::new(HKDF_SHA256, salt)
        .extract(dek.expose())
        .expand(info, Len(out.len()))
        .expect("HKDF-SHA256 expands to at most 8160 bytes and we ask for at most 39")
        .fill(out)
        .expect("the output buffer has the length given to expand");
}

/// The key material of one part: the content key and the nonce prefix.
/// Wiped on drop; its `Debug` shows nothing.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct PartKey {
    pub(crate) key: [u8; 32],
    pub(crate) nonce_prefix: [u8; NONCE_PREFIX_LEN],
}

impl PartKey {
    pub(crate) fn derive(
        algorithm: Algorithm,
        dek: &SymmetricKey,
        object_id: &ObjectId,
        part_number: u32,
    ) -> Self {
        let mut okm = zeroize::Zeroizing::new([0u8; 32 + NONCE_PREFIX_LEN]);
        hkdf_sha256(
            dek,
            &object_id.0,
            &[CONTENT_LABEL, &[algorithm.id()], &part_number.to_be_bytes()],
            &mut okm[..],
        );
        let mut part_key = PartKey {
            key: [0; 32],
            nonce_prefix: [0; NONCE_PREFIX_LEN],
        };
        part_key.key.copy_from_slice(&okm[..32]);
        part_key.nonce_prefix.copy_from_slice(&okm[32..]);
        part_key
    }
}

impl std::fmt::Debug for PartKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PartKey(<redacted>)")
    }
}

/// A keyed chunk AEAD. The key schedules live in aws-lc-rs (AES) or in
/// [`Sm4Gcm`] (SM4 on GFNI, AES-NI or portable, GHASH on (V)PCLMULQDQ or
/// `aes-gcm`'s, picked from the CPU; same bytes), which wipes them on drop.
pub(crate) enum ChunkCipher {
    Aes256Gcm(LessSafeKey),
    Sm4Gcm(Box<Sm4Gcm>),
}

impl ChunkCipher {
    pub(crate) fn new(algorithm: Algorithm, part_key: &PartKey) -> Self {
        match algorithm {
            Algorithm::Aes256Gcm => {
                let unbound = UnboundKey::new(&AES_256_GCM, &part_key.key)
                    .expect("an AES-256 key is 32 bytes");
                ChunkCipher::Aes256Gcm(LessSafeKey::new(unbound))
            }
            Algorithm::Sm4Gcm => {
                let key: &[u8; 16] = part_key.key[..16]
                    .try_into()
                    .expect("an SM4 key is 16 bytes");
                ChunkCipher::Sm4Gcm(Box::new(Sm4Gcm::new(key)))
            }
        }
    }

    /// Encrypts `buf` in place and returns the tag.
    pub(crate) fn seal_in_place(&self, nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> [u8; 16] {
        let mut tag = [0u8; TAG_LEN];
        match self {
            ChunkCipher::Aes256Gcm(key) => {
                let t = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(aad),
                        buf,
                    )
                    .expect("AES-GCM seals up to 64 GiB and a chunk is 64 KiB");
                tag.copy_from_slice(t.as_ref());
            }
            ChunkCipher::Sm4Gcm(key) => {
                tag = key
                    .seal_in_place(&nonce, aad, buf)
                    .expect("GCM seals up to 64 GiB and a chunk is 64 KiB");
            }
        }
        tag
    }

    /// Decrypts `sealed` (ciphertext ‖ tag) in place; on success the first
    /// `sealed.len() - TAG_LEN` bytes are the plaintext.
    pub(crate) fn open_in_place(
        &self,
        nonce: [u8; 12],
        aad: &[u8],
        sealed: &mut [u8],
    ) -> Result<(), CryptoError> {
        match self {
            ChunkCipher::Aes256Gcm(key) => key
                .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), sealed)
                .map(|_| ())
                .map_err(|_| CryptoError::Decryption),
            ChunkCipher::Sm4Gcm(key) => {
                let (ciphertext, tag) = sealed
                    .split_last_chunk_mut::<TAG_LEN>()
                    .ok_or(CryptoError::Decryption)?;
                key.open_in_place(&nonce, aad, ciphertext, tag)
            }
        }
    }
}
