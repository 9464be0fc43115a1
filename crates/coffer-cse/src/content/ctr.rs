//! AES-256-CTR with a 128-bit big-endian counter that wraps mod 2^128
//! (pycryptodome's `Counter.new(128, initial_value=…)`, which the OSS SDKs
//! use). Seekable: the keystream at byte `offset` starts at counter
//! `initial + offset / 16`, so parts and ranges are processed independently.
//!
//! CTR is **unauthenticated**: it hides the content but does not detect a
//! change to it.

use aws_lc_rs::cipher::{AES_256, EncryptingKey, EncryptionContext, UnboundCipherKey};
use coffer_crypto::SymmetricKey;

use super::BLOCK_LEN;
use crate::CseError;

/// An AES-256-CTR keystream positioned by byte offset. Encrypting and
/// decrypting are the same operation ([`CtrCipher::apply_at`]). Cheap to
/// clone and `Send + Sync`, so parts can be encrypted on several threads.
#[derive(Clone)]
pub struct CtrCipher {
    key: SymmetricKey,
    initial_counter: u128,
}

impl CtrCipher {
    pub(crate) fn new(key: &SymmetricKey, initial_counter: [u8; BLOCK_LEN]) -> Self {
        Self {
            key: key.clone(),
            initial_counter: u128::from_be_bytes(initial_counter),
        }
    }

    /// XORs the keystream that starts at byte `offset` of the stream into
    /// `buf` in place: encrypts plaintext at `offset`, or decrypts the
    /// ciphertext found there.
    pub fn apply_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), CseError> {
        if buf.is_empty() {
            return Ok(());
        }
        let key = UnboundCipherKey::new(&AES_256, self.key.expose())
            .and_then(EncryptingKey::ctr)
            .map_err(|_| CseError::Crypto("AES-CTR key setup"))?;
        let block = self
            .initial_counter
            .wrapping_add(u128::from(offset / BLOCK_LEN as u64));
        let skip = (offset % BLOCK_LEN as u64) as usize;
        let (head, rest) = if skip == 0 {
            buf.split_at_mut(0)
        } else {
            // A partial first block: run one whole block through CTR and
            // keep the bytes that line up with `buf`.
            let head_len = (BLOCK_LEN - skip).min(buf.len());
            buf.split_at_mut(head_len)
        };
        let mut next = block;
        if !head.is_empty() {
            let mut scratch = [0u8; BLOCK_LEN];
            scratch[skip..skip + head.len()].copy_from_slice(head);
            xor_keystream(&key, block, &mut scratch)?;
            head.copy_from_slice(&scratch[skip..skip + head.len()]);
            next = block.wrapping_add(1);
        }
        if !rest.is_empty() {
            xor_keystream(&key, next, rest)?;
        }
        Ok(())
    }
}

/// CTR from counter block `counter` (aws-lc increments all 128 bits).
fn xor_keystream(key: &EncryptingKey, counter: u128, buf: &mut [u8]) -> Result<(), CseError> {
    key.less_safe_encrypt(buf, EncryptionContext::Iv128(counter.to_be_bytes().into()))
        .map(|_| ())
        .map_err(|_| CseError::Crypto("AES-CTR"))
}

/// `AES-256(key, block)`: one raw block encryption, from CTR over zeros.
pub(crate) fn encrypt_block(
    key: &SymmetricKey,
    block: [u8; BLOCK_LEN],
) -> Result<[u8; BLOCK_LEN], CseError> {
    let mut out = [0u8; BLOCK_LEN];
    CtrCipher::new(key, block).apply_at(0, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SymmetricKey {
        SymmetricKey::from_slice(&[7u8; 32]).expect("32 bytes")
    }

    /// Reference: keystream block i = AES(key, initial + i), one block at a time.
    fn reference(key: &SymmetricKey, initial: u128, data: &[u8]) -> Vec<u8> {
        data.chunks(BLOCK_LEN)
            .enumerate()
            .flat_map(|(i, chunk)| {
                let ks = encrypt_block(key, initial.wrapping_add(i as u128).to_be_bytes())
                    .expect("block");
                chunk.iter().zip(ks).map(|(d, k)| d ^ k).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn any_offset_matches_the_whole_stream() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
        let iv = [
            0x65, 0x69, 0xb0, 0x1e, 0x53, 0x6d, 0x8c, 0xab, 0, 0, 0, 0, 0x7d, 0xad, 0x69, 0xad,
        ];
        let cipher = CtrCipher::new(&key(), iv);
        let whole = reference(&key(), u128::from_be_bytes(iv), &data);
        for start in [0usize, 1, 15, 16, 17, 31, 32, 100, 299] {
            for len in [0usize, 1, 2, 15, 16, 17, 40, 300 - start] {
                let len = len.min(data.len() - start);
                let mut part = data[start..start + len].to_vec();
                cipher.apply_at(start as u64, &mut part).expect("ctr");
                assert_eq!(part, whole[start..start + len], "start {start} len {len}");
            }
        }
    }

    #[test]
    fn counter_wraps_mod_2_pow_128() {
        let iv = [0xff; 16];
        let data = [0xA5u8; 64];
        let mut out = data;
        CtrCipher::new(&key(), iv)
            .apply_at(0, &mut out)
            .expect("ctr");
        assert_eq!(out.to_vec(), reference(&key(), u128::MAX, &data));
        // Block 1 uses counter 0 after the wrap.
        let zero = encrypt_block(&key(), [0; 16]).expect("block");
        let expected: Vec<u8> = data[16..32].iter().zip(zero).map(|(d, k)| d ^ k).collect();
        assert_eq!(out[16..32], expected[..]);
        // Seeking across the wrap gives the same bytes.
        let mut tail = data[20..50].to_vec();
        CtrCipher::new(&key(), iv)
            .apply_at(20, &mut tail)
            .expect("ctr");
        assert_eq!(tail, out[20..50]);
    }

    #[test]
    fn low_half_carries_into_high_half() {
        // Counter ...00ffffffffffffffff + 1 must carry into byte 7.
        let mut iv = [0u8; 16];
        iv[8..].copy_from_slice(&[0xff; 8]);
        let data = [0u8; 32];
        let mut out = data;
        CtrCipher::new(&key(), iv)
            .apply_at(0, &mut out)
            .expect("ctr");
        assert_eq!(
            out.to_vec(),
            reference(&key(), u128::from_be_bytes(iv), &data)
        );
    }
}
