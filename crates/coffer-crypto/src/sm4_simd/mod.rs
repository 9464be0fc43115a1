//! SM4 (GB/T 32907) as a RustCrypto block cipher whose implementation is
//! chosen from the CPU once per key: GFNI (AVX-512, else AVX2), else AES-NI
//! (AVX2, else SSSE3), else the portable `sm4` crate; and [`Sm4Gcm`], SM4-GCM
//! composed on it with an aggregated CLMUL GHASH (`gcm.rs`, `ghash_x86.rs`),
//! same bytes as `aes_gcm::AesGcm<sm4::Sm4, U12>`, which remains its fallback.
//!
//! The SIMD backends encrypt 32 blocks per step (CTR hands them over 32
//! counters at a time) and compute the S-box by the affine isomorphism
//! between SM4's and AES's GF(2⁸): constant time, no secret-indexed table.
//! Their `unsafe` is confined to `x86.rs` and GHASH's to `ghash_x86.rs`,
//! whose module documentation argues its soundness.

// Elsewhere only the portable backend exists: the key schedule and the SIMD
// plumbing go unused.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_imports))]

#[cfg(test)]
mod derivation;
mod gcm;
#[cfg(test)]
mod gcm_tests;
#[cfg(target_arch = "x86_64")]
mod ghash_x86;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use gcm::{GhashBackend, Sm4Gcm};

use std::fmt;

use sm4::cipher::consts::{U16, U32};
use sm4::cipher::inout::{InOut, InOutBuf};
use sm4::cipher::{
    Block, BlockBackend, BlockCipher, BlockClosure, BlockEncrypt, BlockSizeUser, Key, KeyInit,
    KeySizeUser, ParBlocks, ParBlocksSizeUser,
};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// An SM4 implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// AVX-512 (F, BW) and GFNI: the S-box as `gf2p8affineqb` then
    /// `gf2p8affineinvqb`, 32 blocks in ZMM registers.
    Avx512Gfni,
    /// AVX2 and GFNI: the same S-box, sixteen blocks at a time in YMM
    /// registers.
    Avx2Gfni,
    /// AVX2 and AES-NI: the S-box as `aesenclast` between two affine maps
    /// done by nibble-table shuffles.
    Avx2AesNi,
    /// SSSE3 and AES-NI, for CPUs without AVX2: the same S-box, eight blocks
    /// at a time in XMM registers.
    Ssse3AesNi,
    /// The RustCrypto `sm4` crate: one block at a time through S-box tables
    /// (slow, and its memory accesses depend on secrets).
    Portable,
}

impl Backend {
    /// Every backend, fastest first.
    pub const ALL: [Backend; 5] = [
        Backend::Avx512Gfni,
        Backend::Avx2Gfni,
        Backend::Avx2AesNi,
        Backend::Ssse3AesNi,
        Backend::Portable,
    ];

    /// The fastest backend this CPU runs.
    pub fn detect() -> Backend {
        Backend::ALL
            .into_iter()
            .find(|backend| backend.is_available())
            .unwrap_or(Backend::Portable)
    }

    /// Whether this CPU runs the backend.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Portable => true,
            #[cfg(target_arch = "x86_64")]
            simd => x86::Kernel::detect(simd).is_some(),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// The SM4 block cipher (encryption only: CTR and GCM need no more).
/// Round keys are wiped on drop; `Debug` names the backend only.
pub struct Sm4 {
    implementation: Implementation,
}

enum Implementation {
    #[cfg(target_arch = "x86_64")]
    Simd {
        kernel: x86::Kernel,
        round_keys: RoundKeys,
    },
    Portable(sm4::Sm4),
}

#[derive(Zeroize, ZeroizeOnDrop)]
struct RoundKeys([u32; 32]);

/// The key schedule's system parameter FK (GB/T 32907 §7.3).
const FK: [u32; 4] = [0xa3b1_bac6, 0x56aa_3350, 0x677d_9197, 0xb270_22dc];

/// The key schedule's fixed parameters CK: byte j of CK[i] is (4i + j)·7 mod 256.
const CK: [u32; 32] = {
    let mut ck = [0u32; 32];
    let mut i = 0;
    while i < 32 {
        let mut j = 0;
        while j < 4 {
            ck[i] = ck[i] << 8 | ((4 * i + j) * 7 % 256) as u32;
            j += 1;
        }
        i += 1;
    }
    ck
};

impl Sm4 {
    /// Keys SM4 on the given backend, or `None` when this CPU cannot run
    /// it (tests and benchmarks force backends; [`KeyInit::new`] detects).
    pub fn with_backend(key: &[u8; 16], backend: Backend) -> Option<Sm4> {
        let implementation = match backend {
            Backend::Portable => Implementation::Portable(sm4::Sm4::new(key.into())),
            #[cfg(target_arch = "x86_64")]
            simd => {
                let kernel = x86::Kernel::detect(simd)?;
                Implementation::Simd {
                    kernel,
                    round_keys: expand_key(key, |word| kernel.tau(word)),
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => return None,
        };
        Some(Sm4 { implementation })
    }

    /// Encrypts 64 blocks in place (a CTR step of [`Sm4Gcm`]), without the
    /// `cipher` traits' copies.
    fn encrypt_64(&self, blocks: &mut [[u8; 16]; 64]) {
        match &self.implementation {
            #[cfg(target_arch = "x86_64")]
            Implementation::Simd { kernel, round_keys } => {
                kernel.encrypt_wide(&round_keys.0, blocks)
            }
            Implementation::Portable(portable) => {
                for block in blocks {
                    portable.encrypt_block(Block::<sm4::Sm4>::from_mut_slice(block));
                }
            }
        }
    }

    /// The backend encrypting.
    pub fn backend(&self) -> Backend {
        match &self.implementation {
            #[cfg(target_arch = "x86_64")]
            Implementation::Simd { kernel, .. } => kernel.backend(),
            Implementation::Portable(_) => Backend::Portable,
        }
    }
}

/// The key schedule (GB/T 32907 §7.3), τ supplied by the backend so that
/// it is constant time too.
fn expand_key(key: &[u8; 16], tau: impl Fn(u32) -> u32) -> RoundKeys {
    let mut k = Zeroizing::new([0u32; 4]);
    for (i, word) in k.iter_mut().enumerate() {
        let bytes = [key[4 * i], key[4 * i + 1], key[4 * i + 2], key[4 * i + 3]];
        *word = u32::from_be_bytes(bytes) ^ FK[i];
    }
    let mut round_keys = RoundKeys([0; 32]);
    for (i, round_key) in round_keys.0.iter_mut().enumerate() {
        let b = tau(k[(i + 1) % 4] ^ k[(i + 2) % 4] ^ k[(i + 3) % 4] ^ CK[i]);
        k[i % 4] ^= b ^ b.rotate_left(13) ^ b.rotate_left(23);
        *round_key = k[i % 4];
    }
    round_keys
}

impl fmt::Debug for Sm4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sm4")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl ZeroizeOnDrop for Sm4 {}

impl BlockCipher for Sm4 {}

impl BlockSizeUser for Sm4 {
    type BlockSize = U16;
}

impl KeySizeUser for Sm4 {
    type KeySize = U16;
}

impl KeyInit for Sm4 {
    fn new(key: &Key<Self>) -> Self {
        let key: &[u8; 16] = key.as_ref();
        Sm4::with_backend(key, Backend::detect()).unwrap_or_else(|| Sm4 {
            implementation: Implementation::Portable(sm4::Sm4::new(key.into())),
        })
    }
}

impl BlockEncrypt for Sm4 {
    fn encrypt_with_backend(&self, f: impl BlockClosure<BlockSize = U16>) {
        match &self.implementation {
            #[cfg(target_arch = "x86_64")]
            Implementation::Simd { kernel, round_keys } => f.call(&mut SimdBlocks {
                kernel: *kernel,
                round_keys: &round_keys.0,
            }),
            Implementation::Portable(portable) => portable.encrypt_with_backend(f),
        }
    }
}

/// The `cipher` backend of the SIMD kernels: 32 blocks per call; fewer are
/// padded to 32 (a single block costs a full call, which GCM pays once per
/// 64 KiB chunk, for its tag mask).
#[cfg(target_arch = "x86_64")]
struct SimdBlocks<'a> {
    kernel: x86::Kernel,
    round_keys: &'a [u32; 32],
}

#[cfg(target_arch = "x86_64")]
impl SimdBlocks<'_> {
    /// Encrypts up to 32 blocks, returning them padded to 32.
    fn encrypt(&self, input: &[Block<Self>]) -> x86::Blocks {
        let mut blocks = [[0u8; 16]; x86::BLOCKS];
        for (block, input) in blocks.iter_mut().zip(input) {
            block.copy_from_slice(input);
        }
        self.kernel.encrypt(self.round_keys, &mut blocks);
        blocks
    }
}

#[cfg(target_arch = "x86_64")]
impl BlockSizeUser for SimdBlocks<'_> {
    type BlockSize = U16;
}

#[cfg(target_arch = "x86_64")]
impl ParBlocksSizeUser for SimdBlocks<'_> {
    type ParBlocksSize = U32;
}

#[cfg(target_arch = "x86_64")]
impl BlockBackend for SimdBlocks<'_> {
    fn proc_block(&mut self, mut block: InOut<'_, '_, Block<Self>>) {
        let encrypted = self.encrypt(std::slice::from_ref(block.get_in()));
        block.get_out().copy_from_slice(&encrypted[0]);
    }

    fn proc_par_blocks(&mut self, mut blocks: InOut<'_, '_, ParBlocks<Self>>) {
        let encrypted = self.encrypt(blocks.get_in());
        for (output, block) in blocks.get_out().iter_mut().zip(&encrypted) {
            output.copy_from_slice(block);
        }
    }

    fn proc_tail_blocks(&mut self, mut blocks: InOutBuf<'_, '_, Block<Self>>) {
        let encrypted = self.encrypt(blocks.get_in());
        for (output, block) in blocks.get_out().iter_mut().zip(&encrypted) {
            output.copy_from_slice(block);
        }
    }
}
