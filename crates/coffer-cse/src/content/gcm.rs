//! AES-256-GCM as one stream over a whole object, with the 16-byte tag
//! appended: the S3 Encryption Client's content format. aws-lc-rs only has
//! one-shot AEAD, so the stream is GCM built from its parts (NIST SP
//! 800-38D): AES-CTR from aws-lc-rs for the keystream and RustCrypto's
//! `ghash` for the authenticator. Memory stays bounded whatever the object
//! size.
//!
//! Only 96-bit IVs are used (S3EC V2: random; V3: `01` × 12), so
//! `J0 = IV ‖ 00000001` and content block *i* uses counter `IV ‖ (2 + i)`.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use coffer_crypto::SymmetricKey;
use ghash::GHash;
use ghash::universal_hash::{KeyInit, UniversalHash};

use super::BLOCK_LEN;
use super::ctr::{CtrCipher, encrypt_block};
use crate::CseError;

/// GCM tag length (S3EC `x-amz-tag-len: 128`).
pub const TAG_LEN: usize = 16;
/// GCM IV length used by every S3EC suite.
pub const IV_LEN: usize = 12;
/// The most content one GCM stream may carry: 2^32 - 2 blocks. Below it the
/// 32-bit GCM counter never wraps, so a full 128-bit CTR counter gives the
/// same keystream.
pub const MAX_CONTENT_LEN: u64 = ((1u64 << 32) - 2) * BLOCK_LEN as u64;

/// Key, IV and additional data of one GCM stream.
#[derive(Clone)]
pub(crate) struct GcmParams {
    pub(crate) key: SymmetricKey,
    pub(crate) iv: [u8; IV_LEN],
    pub(crate) aad: &'static [u8],
}

impl GcmParams {
    fn counter(&self, value: u32) -> [u8; BLOCK_LEN] {
        let mut block = [0u8; BLOCK_LEN];
        block[..IV_LEN].copy_from_slice(&self.iv);
        block[IV_LEN..].copy_from_slice(&value.to_be_bytes());
        block
    }

    /// The content keystream: counter `IV ‖ 2` for byte 0. Decrypts any
    /// range, **without authentication**.
    pub(crate) fn keystream(&self) -> CtrCipher {
        CtrCipher::new(&self.key, self.counter(2))
    }

    fn authenticator(&self) -> Result<Authenticator, CseError> {
        let h = encrypt_block(&self.key, [0u8; BLOCK_LEN])?;
        let mut ghash = GHash::new(&h.into());
        ghash.update_padded(self.aad);
        Ok(Authenticator {
            ghash,
            pending: [0u8; BLOCK_LEN],
            pending_len: 0,
            content_len: 0,
            aad_len: self.aad.len() as u64,
            tag_mask: encrypt_block(&self.key, self.counter(1))?,
        })
    }

    pub(crate) fn encryptor(&self) -> Result<GcmEncryptor, CseError> {
        Ok(GcmEncryptor {
            keystream: self.keystream(),
            auth: self.authenticator()?,
        })
    }

    pub(crate) fn decryptor(&self) -> Result<GcmDecryptor, CseError> {
        Ok(GcmDecryptor {
            keystream: self.keystream(),
            auth: self.authenticator()?,
            held_back: Vec::with_capacity(2 * TAG_LEN),
        })
    }
}

/// GHASH over the ciphertext, fed in arbitrary pieces.
struct Authenticator {
    ghash: GHash,
    pending: [u8; BLOCK_LEN],
    pending_len: usize,
    content_len: u64,
    aad_len: u64,
    tag_mask: [u8; BLOCK_LEN],
}

impl Authenticator {
    fn reserve(&self, len: usize) -> Result<u64, CseError> {
        let offset = self.content_len;
        match offset.checked_add(len as u64) {
            Some(end) if end <= MAX_CONTENT_LEN => Ok(offset),
            _ => Err(CseError::Invalid(format!(
                "content larger than AES-GCM allows ({MAX_CONTENT_LEN} bytes)"
            ))),
        }
    }

    fn absorb(&mut self, mut ciphertext: &[u8]) {
        self.content_len += ciphertext.len() as u64;
        if self.pending_len > 0 {
            let take = (BLOCK_LEN - self.pending_len).min(ciphertext.len());
            self.pending[self.pending_len..self.pending_len + take]
                .copy_from_slice(&ciphertext[..take]);
            self.pending_len += take;
            ciphertext = &ciphertext[take..];
            if self.pending_len < BLOCK_LEN {
                return;
            }
            self.ghash.update(&[self.pending.into()]);
            self.pending_len = 0;
        }
        let whole = ciphertext.len() - ciphertext.len() % BLOCK_LEN;
        self.ghash.update_padded(&ciphertext[..whole]);
        let rest = &ciphertext[whole..];
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    fn tag(mut self) -> [u8; TAG_LEN] {
        self.ghash.update_padded(&self.pending[..self.pending_len]);
        let mut lengths = [0u8; BLOCK_LEN];
        lengths[..8].copy_from_slice(&(self.aad_len * 8).to_be_bytes());
        lengths[8..].copy_from_slice(&(self.content_len * 8).to_be_bytes());
        self.ghash.update(&[lengths.into()]);
        let mut tag: [u8; TAG_LEN] = self.ghash.finalize().into();
        for (t, m) in tag.iter_mut().zip(self.tag_mask) {
            *t ^= m;
        }
        tag
    }
}

/// Sequential GCM encryption of one object: feed the plaintext in order,
/// then append [`GcmEncryptor::finish`]'s tag to the ciphertext.
pub struct GcmEncryptor {
    keystream: CtrCipher,
    auth: Authenticator,
}

impl GcmEncryptor {
    /// Encrypts the next piece of plaintext in place.
    pub fn update(&mut self, buf: &mut [u8]) -> Result<(), CseError> {
        let offset = self.auth.reserve(buf.len())?;
        self.keystream.apply_at(offset, buf)?;
        self.auth.absorb(buf);
        Ok(())
    }

    /// The tag that follows the ciphertext.
    pub fn finish(self) -> [u8; TAG_LEN] {
        self.auth.tag()
    }
}

/// Sequential GCM decryption of one whole object (ciphertext ‖ tag). The
/// last 16 bytes seen are held back as the candidate tag. Plaintext handed
/// out by [`GcmDecryptor::update`] is **not yet authenticated**: treat it as
/// final only after [`GcmDecryptor::finish`] returned `Ok`.
pub struct GcmDecryptor {
    keystream: CtrCipher,
    auth: Authenticator,
    held_back: Vec<u8>,
}

impl GcmDecryptor {
    /// Decrypts the next piece of the stored object, appending plaintext to
    /// `out`.
    pub fn update(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), CseError> {
        let total = self.held_back.len() + chunk.len();
        if total <= TAG_LEN {
            self.held_back.extend_from_slice(chunk);
            return Ok(());
        }
        let release = total - TAG_LEN;
        let from_held = release.min(self.held_back.len());
        let from_chunk = release - from_held;
        let start = out.len();
        out.extend_from_slice(&self.held_back[..from_held]);
        out.extend_from_slice(&chunk[..from_chunk]);
        self.held_back.drain(..from_held);
        self.held_back.extend_from_slice(&chunk[from_chunk..]);

        let ciphertext = &mut out[start..];
        let offset = self.auth.reserve(ciphertext.len())?;
        self.auth.absorb(ciphertext);
        self.keystream.apply_at(offset, ciphertext)
    }

    /// Checks the tag (constant time). `Err(TagMismatch)` if the content or
    /// tag was altered, or the object was truncated.
    pub fn finish(self) -> Result<(), CseError> {
        if self.held_back.len() != TAG_LEN {
            return Err(CseError::TagMismatch);
        }
        let tag = self.auth.tag();
        verify_slices_are_equal(&tag, &self.held_back).map_err(|_| CseError::TagMismatch)
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    use proptest::prelude::*;

    use super::*;

    fn params(aad: &'static [u8]) -> GcmParams {
        GcmParams {
            key: SymmetricKey::from_slice(&[0x42; 32]).expect("32 bytes"),
            iv: [9u8; IV_LEN],
            aad,
        }
    }

    fn one_shot(p: &GcmParams, plaintext: &[u8]) -> Vec<u8> {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, p.key.expose()).expect("key"));
        let mut data = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(p.iv),
            Aad::from(p.aad),
            &mut data,
        )
        .expect("seal");
        data
    }

    fn stream_encrypt(p: &GcmParams, plaintext: &[u8], piece: usize) -> Vec<u8> {
        let mut enc = p.encryptor().expect("encryptor");
        let mut out = Vec::new();
        for chunk in plaintext.chunks(piece.max(1)) {
            let mut c = chunk.to_vec();
            enc.update(&mut c).expect("update");
            out.extend_from_slice(&c);
        }
        out.extend_from_slice(&enc.finish());
        out
    }

    fn stream_decrypt(p: &GcmParams, stored: &[u8], piece: usize) -> Result<Vec<u8>, CseError> {
        let mut dec = p.decryptor()?;
        let mut out = Vec::new();
        for chunk in stored.chunks(piece.max(1)) {
            dec.update(chunk, &mut out)?;
        }
        dec.finish()?;
        Ok(out)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The streamed GCM equals aws-lc-rs's one-shot AES-256-GCM for any
        /// length and any way of cutting the input.
        #[test]
        fn streaming_equals_one_shot(len in 0usize..300, piece in 1usize..70, with_aad in any::<bool>()) {
            let p = params(if with_aad { b"\x00\x73" } else { b"" });
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
            let expected = one_shot(&p, &plaintext);
            prop_assert_eq!(&stream_encrypt(&p, &plaintext, piece), &expected);
            prop_assert_eq!(stream_decrypt(&p, &expected, piece).expect("decrypt"), plaintext);
        }

        /// Any single changed byte (content or tag) is detected.
        #[test]
        fn any_byte_flip_is_detected(len in 0usize..100, at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let p = params(b"\x00\x73");
            let plaintext = vec![0x5Au8; len];
            let mut stored = one_shot(&p, &plaintext);
            let i = at.index(stored.len());
            stored[i] ^= 1 << bit;
            prop_assert_eq!(stream_decrypt(&p, &stored, 7), Err(CseError::TagMismatch));
        }
    }

    #[test]
    fn truncation_is_detected() {
        let p = params(b"");
        let stored = one_shot(&p, b"hello, world, this is longer than a tag");
        for cut in [0, 1, 15, 16, 17, stored.len() - 1] {
            assert_eq!(
                stream_decrypt(&p, &stored[..cut], 5),
                Err(CseError::TagMismatch),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn keystream_decrypts_any_range_without_the_tag() {
        let p = params(b"\x00\x73");
        let plaintext: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
        let stored = one_shot(&p, &plaintext);
        for (start, end) in [(0, 1), (5, 40), (16, 32), (150, 200)] {
            let mut part = stored[start..end].to_vec();
            p.keystream()
                .apply_at(start as u64, &mut part)
                .expect("ctr");
            assert_eq!(part, plaintext[start..end]);
        }
    }
}
