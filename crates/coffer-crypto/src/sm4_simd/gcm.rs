//! SM4-GCM composed here, NIST SP 800-38D with a 96-bit IV: J0 = IV ‖ 0³¹ ‖ 1,
//! the plaintext enciphered by inc32 counters from J0 + 1, S = GHASH over
//! A ‖ pad ‖ C ‖ pad ‖ len(A)₆₄ ‖ len(C)₆₄, tag = E(J0) ⊕ S. Same bytes as
//! `aes_gcm::AesGcm<sm4::Sm4, U12>`, which stays as the fallback (CPUs
//! without carry-less multiply) and as the tests' reference.
//!
//! Why not `aes-gcm`: its GHASH (`ghash` 0.5 over `polyval` 0.6) multiplies
//! and reduces once per block, half of SM4-GCM's time beside the SIMD SM4.
//! Here GHASH sums sixteen products per reduction (`ghash_x86.rs`), and each
//! step of 64 counter blocks is enciphered, XORed and hashed while in cache.
//!
//! Opening checks the tag before deciphering anything: on a bad tag the
//! buffer still holds the ciphertext it was given, never plaintext.
#![forbid(unsafe_code)]

use std::fmt;

use aes_gcm::AesGcm;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::consts::U12;
#[cfg(target_arch = "x86_64")]
use aws_lc_rs::constant_time::verify_slices_are_equal;
#[cfg(target_arch = "x86_64")]
use zeroize::{Zeroize, Zeroizing};

#[cfg(target_arch = "x86_64")]
use super::ghash_x86::{AGGREGATE, Clmul, Powers};
use super::{Backend, Sm4};
use crate::CryptoError;

/// A GHASH implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GhashBackend {
    /// VPCLMULQDQ on ZMM registers (AVX-512F/BW): four blocks per multiply.
    Avx512Vpclmulqdq,
    /// VPCLMULQDQ on YMM registers (AVX2): two blocks per multiply.
    Avx2Vpclmulqdq,
    /// PCLMULQDQ: one block per multiply, still one reduction per sixteen.
    Pclmulqdq,
    /// `aes_gcm::AesGcm`'s own GHASH (the `ghash` crate; CLMUL one block per
    /// reduction where the CPU has it): the whole of SM4-GCM is then
    /// `AesGcm<Sm4, U12>`.
    Portable,
}

impl GhashBackend {
    /// Every backend, fastest first.
    pub const ALL: [GhashBackend; 4] = [
        GhashBackend::Avx512Vpclmulqdq,
        GhashBackend::Avx2Vpclmulqdq,
        GhashBackend::Pclmulqdq,
        GhashBackend::Portable,
    ];

    /// The fastest backend this CPU runs.
    pub fn detect() -> GhashBackend {
        GhashBackend::ALL
            .into_iter()
            .find(|backend| backend.is_available())
            .unwrap_or(GhashBackend::Portable)
    }

    /// Whether this CPU runs the backend.
    pub fn is_available(self) -> bool {
        match self {
            GhashBackend::Portable => true,
            #[cfg(target_arch = "x86_64")]
            clmul => Clmul::detect(clmul).is_some(),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// Length of an SM4-GCM tag.
const TAG_LEN: usize = 16;

/// GCM's bound on one message's plaintext: 2³² − 2 blocks.
const MAX_TEXT_LEN: u64 = ((1 << 32) - 2) * 16;

/// SM4-GCM with a 96-bit nonce and a 128-bit tag, keyed once: the SM4 and
/// GHASH implementations are picked from the CPU at key setup. Round keys
/// and H's powers are wiped on drop; `Debug` names the backends only.
pub struct Sm4Gcm {
    engine: Engine,
}

// One per key, and callers box the whole `Sm4Gcm`: the variants' sizes
// (H's powers are 256 bytes) cost nothing worth an indirection.
#[allow(clippy::large_enum_variant)]
enum Engine {
    #[cfg(target_arch = "x86_64")]
    Composed {
        cipher: Sm4,
        hash: HashKey,
    },
    Portable {
        gcm: AesGcm<Sm4, U12>,
        sm4: Backend,
    },
}

impl Sm4Gcm {
    /// Keys SM4-GCM on the fastest backends this CPU runs.
    pub fn new(key: &[u8; 16]) -> Sm4Gcm {
        Sm4Gcm::with_backends(key, Backend::detect(), GhashBackend::detect())
            .expect("detected backends are available")
    }

    /// Keys SM4-GCM on the given backends, or `None` when this CPU cannot
    /// run one of them (tests and benchmarks force backends).
    pub fn with_backends(key: &[u8; 16], sm4: Backend, ghash: GhashBackend) -> Option<Sm4Gcm> {
        let cipher = Sm4::with_backend(key, sm4)?;
        let engine = match ghash {
            GhashBackend::Portable => Engine::Portable {
                sm4: cipher.backend(),
                gcm: AesGcm::from(cipher),
            },
            #[cfg(target_arch = "x86_64")]
            clmul => {
                let hash = HashKey::new(&cipher, Clmul::detect(clmul)?);
                Engine::Composed { cipher, hash }
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => return None,
        };
        Some(Sm4Gcm { engine })
    }

    /// The SM4 and GHASH backends in use.
    pub fn backends(&self) -> (Backend, GhashBackend) {
        match &self.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::Composed { cipher, hash } => (cipher.backend(), hash.clmul.backend()),
            Engine::Portable { sm4, .. } => (*sm4, GhashBackend::Portable),
        }
    }

    /// Encrypts `buf` in place and returns the tag; `None` (nothing
    /// changed) when `buf` is longer than GCM allows (2³² − 2 blocks).
    pub fn seal_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Option<[u8; TAG_LEN]> {
        match &self.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::Composed { cipher, hash } => seal(cipher, hash, nonce, aad, buf),
            Engine::Portable { gcm, .. } => gcm
                .encrypt_in_place_detached(nonce.into(), aad, buf)
                .ok()
                .map(Into::into),
        }
    }

    /// Checks `tag` and, only if it matches, decrypts `buf` in place. On
    /// any failure `buf` is left as it was (ciphertext).
    pub fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        match &self.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::Composed { cipher, hash } => open(cipher, hash, nonce, aad, buf, tag),
            // `aes-gcm` also checks the tag before it deciphers.
            Engine::Portable { gcm, .. } => gcm
                .decrypt_in_place_detached(nonce.into(), aad, buf, tag.into())
                .map_err(|_| CryptoError::Decryption),
        }
    }
}

impl fmt::Debug for Sm4Gcm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sm4, ghash) = self.backends();
        f.debug_struct("Sm4Gcm")
            .field("sm4", &sm4)
            .field("ghash", &ghash)
            .finish_non_exhaustive()
    }
}

/// GHASH's key: the CLMUL kernel and H¹…H¹⁶ in its (POLYVAL) domain,
/// wiped on drop.
#[cfg(target_arch = "x86_64")]
struct HashKey {
    clmul: Clmul,
    powers: Powers,
}

#[cfg(target_arch = "x86_64")]
impl HashKey {
    /// H = E(0¹²⁸).
    fn new(cipher: &Sm4, clmul: Clmul) -> HashKey {
        let mut blocks = Zeroizing::new([[0u8; 16]; STEP]);
        cipher.encrypt_64(&mut blocks);
        HashKey::from_h(&blocks[0], clmul)
    }

    /// GHASH's H becomes `mulx(H)` read big-endian in POLYVAL's field
    /// (RFC 8452, Appendix A), then its powers.
    fn from_h(h: &[u8; 16], clmul: Clmul) -> HashKey {
        let h = Zeroizing::new(mulx(u128::from_be_bytes(*h)));
        let mut powers = [0u128; AGGREGATE];
        powers[AGGREGATE - 1] = *h;
        for j in (0..AGGREGATE - 1).rev() {
            powers[j] = clmul.dot(powers[j + 1], *h);
        }
        HashKey { clmul, powers }
    }
}

#[cfg(target_arch = "x86_64")]
impl Drop for HashKey {
    fn drop(&mut self) {
        self.powers.zeroize();
    }
}

/// Multiplication by x in POLYVAL's field.
#[cfg(target_arch = "x86_64")]
fn mulx(v: u128) -> u128 {
    let carry = v >> 127;
    (v << 1) ^ carry ^ (carry << 127) ^ (carry << 126) ^ (carry << 121)
}

/// Blocks of one CTR step (one wide SM4 kernel call).
#[cfg(target_arch = "x86_64")]
const STEP: usize = 64;

/// A running GHASH (state in POLYVAL's domain, wiped on drop).
#[cfg(target_arch = "x86_64")]
struct Ghash<'a> {
    key: &'a HashKey,
    state: u128,
}

#[cfg(target_arch = "x86_64")]
impl Ghash<'_> {
    /// Absorbs `bytes`, zero-padded to whole blocks.
    fn update_padded(&mut self, bytes: &[u8]) {
        let (blocks, tail) = bytes.as_chunks::<16>();
        if !blocks.is_empty() {
            self.key
                .clmul
                .update(&self.key.powers, &mut self.state, blocks);
        }
        if !tail.is_empty() {
            let mut last = [0u8; 16];
            last[..tail.len()].copy_from_slice(tail);
            self.key
                .clmul
                .update(&self.key.powers, &mut self.state, &[last]);
        }
    }

    /// Absorbs the length block and returns S.
    fn finish(mut self, aad_len: usize, text_len: usize) -> [u8; 16] {
        let mut lengths = [0u8; 16];
        lengths[..8].copy_from_slice(&(aad_len as u64 * 8).to_be_bytes());
        lengths[8..].copy_from_slice(&(text_len as u64 * 8).to_be_bytes());
        self.update_padded(&lengths);
        self.state.to_be_bytes()
    }
}

#[cfg(target_arch = "x86_64")]
impl Drop for Ghash<'_> {
    fn drop(&mut self) {
        self.state.zeroize();
    }
}

/// SM4 of the counter blocks IV ‖ inc32ⁱ(1), 64 at a time (wiped on drop).
#[cfg(target_arch = "x86_64")]
struct Keystream<'a> {
    cipher: &'a Sm4,
    nonce: [u8; 12],
    next: u32,
    blocks: Zeroizing<[[u8; 16]; STEP]>,
}

#[cfg(target_arch = "x86_64")]
impl<'a> Keystream<'a> {
    /// Counter blocks from J0 (counter 1): the first block of the first
    /// step is E(J0), the tag mask.
    fn from_j0(cipher: &'a Sm4, nonce: &[u8; 12]) -> Self {
        Keystream {
            cipher,
            nonce: *nonce,
            next: 1,
            blocks: Zeroizing::new([[0u8; 16]; STEP]),
        }
    }

    fn step(&mut self) -> &[[u8; 16]; STEP] {
        for (i, block) in self.blocks.iter_mut().enumerate() {
            block[..12].copy_from_slice(&self.nonce);
            block[12..].copy_from_slice(&self.next.wrapping_add(i as u32).to_be_bytes());
        }
        self.next = self.next.wrapping_add(STEP as u32);
        self.cipher.encrypt_64(&mut self.blocks);
        &self.blocks
    }
}

/// `data ⊕= keystream` over `data`'s length.
#[cfg(target_arch = "x86_64")]
fn xor_into(data: &mut [u8], keystream: &[u8]) {
    for (byte, key) in data.iter_mut().zip(keystream) {
        *byte ^= key;
    }
}

/// Bytes the first step enciphers: its first block is E(J0).
#[cfg(target_arch = "x86_64")]
const FIRST_STEP_BYTES: usize = (STEP - 1) * 16;

#[cfg(target_arch = "x86_64")]
fn seal(
    cipher: &Sm4,
    hash: &HashKey,
    nonce: &[u8; 12],
    aad: &[u8],
    buf: &mut [u8],
) -> Option<[u8; TAG_LEN]> {
    if buf.len() as u64 > MAX_TEXT_LEN {
        return None;
    }
    let mut ghash = Ghash {
        key: hash,
        state: 0,
    };
    ghash.update_padded(aad);
    let mut keystream = Keystream::from_j0(cipher, nonce);
    let first = keystream.step();
    let mask = first[0];
    // Each step's ciphertext is hashed while in cache; only the last piece
    // can end inside a block.
    let (head, rest) = buf.split_at_mut(buf.len().min(FIRST_STEP_BYTES));
    xor_into(head, first[1..].as_flattened());
    ghash.update_padded(head);
    for piece in rest.chunks_mut(STEP * 16) {
        xor_into(piece, keystream.step().as_flattened());
        ghash.update_padded(piece);
    }
    let mut tag = ghash.finish(aad.len(), buf.len());
    xor_into(&mut tag, &mask);
    Some(tag)
}

#[cfg(target_arch = "x86_64")]
fn open(
    cipher: &Sm4,
    hash: &HashKey,
    nonce: &[u8; 12],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), CryptoError> {
    if buf.len() as u64 > MAX_TEXT_LEN {
        return Err(CryptoError::Decryption);
    }
    let mut ghash = Ghash {
        key: hash,
        state: 0,
    };
    ghash.update_padded(aad);
    ghash.update_padded(buf);
    let mut expected = ghash.finish(aad.len(), buf.len());
    let mut keystream = Keystream::from_j0(cipher, nonce);
    let first = keystream.step();
    xor_into(&mut expected, &first[0]);
    verify_slices_are_equal(&expected, tag).map_err(|_| CryptoError::Decryption)?;
    let (head, rest) = buf.split_at_mut(buf.len().min(FIRST_STEP_BYTES));
    xor_into(head, first[1..].as_flattened());
    for piece in rest.chunks_mut(STEP * 16) {
        xor_into(piece, keystream.step().as_flattened());
    }
    Ok(())
}

/// GHASH of `data` zero-padded (no length block) under `h`, on `backend`;
/// `None` when this CPU cannot run it (for the tests against `ghash`).
#[cfg(all(test, target_arch = "x86_64"))]
pub(super) fn ghash(h: &[u8; 16], backend: GhashBackend, pieces: &[&[u8]]) -> Option<[u8; 16]> {
    let key = HashKey::from_h(h, Clmul::detect(backend)?);
    let mut ghash = Ghash {
        key: &key,
        state: 0,
    };
    for piece in pieces {
        ghash.update_padded(piece);
    }
    Some(ghash.state.to_be_bytes())
}
