//! The SM4 kernels for x86-64: 32 or 64 blocks per call, the S-box computed by
//! GFNI or by AES-NI through the affine isomorphism between SM4's and AES's
//! GF(2⁸) (the constants below are derived and checked in `derivation.rs`).
//! Four kernels: AVX-512 with GFNI (two groups of sixteen blocks in ZMM
//! registers, or four for the 64-block `encrypt_wide` of SM4-GCM's CTR;
//! rotations by `vprold`, three-way XORs by `vpternlogd`), AVX2 with GFNI or
//! with AES-NI (two calls of two groups of eight), and SSSE3 with AES-NI for
//! CPUs without AVX2 (four calls of two groups of four). The AVX2 and SSSE3
//! kernels are one body of code over the [`Lanes`] of a YMM or XMM register.
//!
//! Layout: a group is four registers, register j holding word j of every
//! block of the group (a 4×4 word transpose per 128-bit lane), byte-swapped
//! so that SM4's big-endian words are native `u32` lanes and the L transform
//! is plain 32-bit rotations. Two groups run interleaved: one round depends
//! on the previous, so a lone group would wait on latency.
//!
//! # Why the `unsafe` here is sound
//!
//! This is the only module of the crate allowed `unsafe`, for two kinds of
//! operation:
//! - **Calling code compiled for CPU features** (`#[target_feature]` entry
//!   points and the `core::arch` intrinsics they inline). A [`Kernel`] value
//!   exists only once `is_x86_feature_detected!` has confirmed its features:
//!   its field is private and only [`Kernel::detect`], which checks
//!   first, constructs one. The entry points are private and
//!   called only from `Kernel`'s methods, each matching the features that
//!   value proves. The `#[inline(always)]` helpers are `unsafe fn`s whose
//!   contract is "the CPU has the register width's extension (AVX2 for YMM,
//!   SSSE3 for XMM) and the S-box's"; only the entry points call them.
//! - **Unaligned loads and stores** (`loadu`/`storeu`: no alignment
//!   requirement): `_mm512_*` at `blocks + 64·i` for `i < 4·G` where
//!   `blocks` is a `&mut [[u8; 16]; 16·G]` (G · 256 contiguous bytes; G = 2
//!   for `encrypt`, 4 for `encrypt_wide`), and a YMM (XMM) register at
//!   blocks `2·i` (`i`) for `i < 8` of a pair of 16 (8) exclusively borrowed
//!   blocks in `encrypt_pair`, so every access lies inside the borrowed
//!   array; and `_mm_loadu_si128` of `[u8; 16]` constants.
//!
//! Constant time: no branch and no memory address depends on key or data.
//! The S-box is arithmetic (GFNI affine maps around the field inversion, or
//! `pshufb` on register-resident nibble tables around `aesenclast`).
#![allow(unsafe_code)]

use super::Backend;
use std::arch::x86_64::{
    __m128i, __m256i, __m512i, _mm_aesenclast_si128, _mm_and_si128, _mm_cvtsi128_si32,
    _mm_loadu_si128, _mm_or_si128, _mm_set1_epi32, _mm_setzero_si128, _mm_shuffle_epi8,
    _mm_slli_epi32, _mm_srli_epi16, _mm_srli_epi32, _mm_storeu_si128, _mm_unpackhi_epi32,
    _mm_unpackhi_epi64, _mm_unpacklo_epi32, _mm_unpacklo_epi64, _mm_xor_si128, _mm256_and_si256,
    _mm256_broadcastsi128_si256, _mm256_castsi256_si128, _mm256_cvtsi256_si32,
    _mm256_extracti128_si256, _mm256_gf2p8affine_epi64_epi8, _mm256_gf2p8affineinv_epi64_epi8,
    _mm256_loadu_si256, _mm256_or_si256, _mm256_set_m128i, _mm256_set1_epi32, _mm256_set1_epi64x,
    _mm256_shuffle_epi8, _mm256_slli_epi32, _mm256_srli_epi16, _mm256_srli_epi32,
    _mm256_storeu_si256, _mm256_unpackhi_epi32, _mm256_unpackhi_epi64, _mm256_unpacklo_epi32,
    _mm256_unpacklo_epi64, _mm256_xor_si256, _mm512_broadcast_i32x4, _mm512_castsi512_si128,
    _mm512_gf2p8affine_epi64_epi8, _mm512_gf2p8affineinv_epi64_epi8, _mm512_loadu_si512,
    _mm512_rol_epi32, _mm512_set1_epi32, _mm512_set1_epi64, _mm512_shuffle_epi8,
    _mm512_storeu_si512, _mm512_ternarylogic_epi32, _mm512_unpackhi_epi32, _mm512_unpackhi_epi64,
    _mm512_unpacklo_epi32, _mm512_unpacklo_epi64, _mm512_xor_si512,
};

/// Blocks one kernel call encrypts.
pub(super) const BLOCKS: usize = 32;

/// The blocks of one kernel call.
pub(super) type Blocks = [[u8; 16]; BLOCKS];

/// The blocks of one wide call (a CTR step of the composed SM4-GCM).
pub(super) type WideBlocks = [[u8; 16]; 2 * BLOCKS];

/// `gf2p8affineqb` operands of the pre-affine map `x ↦ (T·A)·x ⊕ T·c`.
pub(super) const GFNI_PRE: (u64, u8) = (0x4c28_7db9_1a22_505d, 0x3e);
/// `gf2p8affineinvqb` operands of the post-affine map `y ↦ (A·T⁻¹)·y ⊕ c`.
pub(super) const GFNI_POST: (u64, u8) = (0xf3ab_34a9_74a6_b589, 0xd3);
/// Low- and high-nibble tables of the pre-affine map (AES-NI backend).
pub(super) const AESNI_PRE: ([u8; 16], [u8; 16]) = (
    [
        0x3e, 0xb2, 0x0e, 0x82, 0xbb, 0x37, 0x8b, 0x07, 0xa1, 0x2d, 0x91, 0x1d, 0x24, 0xa8, 0x14,
        0x98,
    ],
    [
        0x00, 0xdc, 0x2e, 0xf2, 0xc5, 0x19, 0xeb, 0x37, 0x08, 0xd4, 0x26, 0xfa, 0xcd, 0x11, 0xe3,
        0x3f,
    ],
);
/// Low- and high-nibble tables of the post-affine map, which also undoes the
/// affine layer of AES's SubBytes.
pub(super) const AESNI_POST: ([u8; 16], [u8; 16]) = (
    [
        0x6c, 0xd4, 0xa6, 0x1e, 0x52, 0xea, 0x98, 0x20, 0x0b, 0xb3, 0xc1, 0x79, 0x35, 0x8d, 0xff,
        0x47,
    ],
    [
        0x00, 0xe0, 0x50, 0xb0, 0x9d, 0x7d, 0xcd, 0x2d, 0xc0, 0x20, 0x90, 0x70, 0x5d, 0xbd, 0x0d,
        0xed,
    ],
);

/// `aesenclast` applies ShiftRows before SubBytes; bytes pre-permuted by its
/// inverse come out where they went in.
const INVERSE_SHIFT_ROWS: [u8; 16] = [0, 13, 10, 7, 4, 1, 14, 11, 8, 5, 2, 15, 12, 9, 6, 3];

/// A `pshufb` pattern moving bytes the same way within each 32-bit word.
const fn per_word(pattern: [u8; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        out[i] = (i as u8 & !3) + pattern[i % 4];
        i += 1;
    }
    out
}

/// Big-endian words to native and back.
const BYTE_SWAP: [u8; 16] = per_word([3, 2, 1, 0]);
/// Rotations of native 32-bit lanes by whole bytes.
const ROTATE_8: [u8; 16] = per_word([3, 0, 1, 2]);
const ROTATE_16: [u8; 16] = per_word([2, 3, 0, 1]);
const ROTATE_24: [u8; 16] = per_word([1, 2, 3, 0]);

/// A SIMD backend this CPU has been found to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Kernel(Isa);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    Avx512Gfni,
    Avx2Gfni,
    Avx2AesNi,
    Ssse3AesNi,
}

impl Kernel {
    /// The kernel of a SIMD backend, if this CPU has its features.
    pub(super) fn detect(backend: Backend) -> Option<Kernel> {
        let (isa, has_features) = match backend {
            Backend::Avx512Gfni => (
                Isa::Avx512Gfni,
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("gfni"),
            ),
            Backend::Avx2Gfni => (
                Isa::Avx2Gfni,
                is_x86_feature_detected!("avx2") && is_x86_feature_detected!("gfni"),
            ),
            Backend::Avx2AesNi => (
                Isa::Avx2AesNi,
                is_x86_feature_detected!("avx2") && is_x86_feature_detected!("aes"),
            ),
            Backend::Ssse3AesNi => (
                Isa::Ssse3AesNi,
                is_x86_feature_detected!("ssse3") && is_x86_feature_detected!("aes"),
            ),
            Backend::Portable => return None,
        };
        has_features.then_some(Kernel(isa))
    }

    /// The backend this kernel implements.
    pub(super) fn backend(self) -> Backend {
        match self.0 {
            Isa::Avx512Gfni => Backend::Avx512Gfni,
            Isa::Avx2Gfni => Backend::Avx2Gfni,
            Isa::Avx2AesNi => Backend::Avx2AesNi,
            Isa::Ssse3AesNi => Backend::Ssse3AesNi,
        }
    }

    /// Encrypts 32 blocks in place under the 32 round keys.
    pub(super) fn encrypt(self, round_keys: &[u32; 32], blocks: &mut Blocks) {
        // SAFETY (all four): a `Kernel` is only built by `detect`, after
        // detecting exactly the features its `Isa` names, which are the
        // features the called function is compiled for.
        match self.0 {
            Isa::Avx512Gfni => unsafe { encrypt_avx512_gfni(round_keys, blocks) },
            Isa::Avx2Gfni => unsafe { encrypt_avx2_gfni(round_keys, blocks) },
            Isa::Avx2AesNi => unsafe { encrypt_avx2_aes_ni(round_keys, blocks) },
            Isa::Ssse3AesNi => unsafe { encrypt_ssse3_aes_ni(round_keys, blocks) },
        }
    }

    /// Encrypts 64 blocks in place: four groups in flight on AVX-512,
    /// two calls of [`encrypt`](Self::encrypt) otherwise.
    pub(super) fn encrypt_wide(self, round_keys: &[u32; 32], blocks: &mut WideBlocks) {
        match self.0 {
            // SAFETY: as in `encrypt`.
            Isa::Avx512Gfni => unsafe { encrypt_wide_avx512_gfni(round_keys, blocks) },
            _ => {
                for half in blocks.as_chunks_mut::<BLOCKS>().0 {
                    self.encrypt(round_keys, half);
                }
            }
        }
    }

    /// τ: the S-box on each byte of `word` (for the key schedule).
    pub(super) fn tau(self, word: u32) -> u32 {
        // SAFETY: as in `encrypt`.
        match self.0 {
            Isa::Avx512Gfni => unsafe { tau_avx512_gfni(word) },
            Isa::Avx2Gfni => unsafe { tau_avx2_gfni(word) },
            Isa::Avx2AesNi => unsafe { tau_avx2_aes_ni(word) },
            Isa::Ssse3AesNi => unsafe { tau_ssse3_aes_ni(word) },
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,gfni")]
fn encrypt_avx512_gfni(round_keys: &[u32; 32], blocks: &mut Blocks) {
    // SAFETY: this function is compiled for (and only called with) AVX-512F,
    // AVX-512BW and GFNI; `blocks` is 512 = 2 · 256 exclusively borrowed bytes.
    unsafe { encrypt_groups_avx512::<2>(round_keys, blocks.as_mut_ptr().cast()) }
}

#[target_feature(enable = "avx512f,avx512bw,gfni")]
fn encrypt_wide_avx512_gfni(round_keys: &[u32; 32], blocks: &mut WideBlocks) {
    // SAFETY: as in `encrypt_avx512_gfni`; `blocks` is 1024 = 4 · 256
    // exclusively borrowed bytes.
    unsafe { encrypt_groups_avx512::<4>(round_keys, blocks.as_mut_ptr().cast()) }
}

#[target_feature(enable = "avx2,gfni")]
fn encrypt_avx2_gfni(round_keys: &[u32; 32], blocks: &mut Blocks) {
    for pair in blocks.as_chunks_mut::<16>().0 {
        // SAFETY: this function is compiled for (and only called with) AVX2
        // and GFNI; `pair` is 2 · 4 · 2 blocks, as `__m256i` needs.
        unsafe { encrypt_pair::<__m256i, GfniSbox, 16>(round_keys, pair) }
    }
}

#[target_feature(enable = "avx2,aes")]
fn encrypt_avx2_aes_ni(round_keys: &[u32; 32], blocks: &mut Blocks) {
    for pair in blocks.as_chunks_mut::<16>().0 {
        // SAFETY: this function is compiled for (and only called with) AVX2
        // and AES-NI; `pair` is 2 · 4 · 2 blocks, as `__m256i` needs.
        unsafe { encrypt_pair::<__m256i, AesNiSbox, 16>(round_keys, pair) }
    }
}

#[target_feature(enable = "ssse3,aes")]
fn encrypt_ssse3_aes_ni(round_keys: &[u32; 32], blocks: &mut Blocks) {
    for pair in blocks.as_chunks_mut::<8>().0 {
        // SAFETY: this function is compiled for (and only called with) SSSE3
        // and AES-NI; `pair` is 2 · 4 · 1 blocks, as `__m128i` needs.
        unsafe { encrypt_pair::<__m128i, AesNiSbox, 8>(round_keys, pair) }
    }
}

/// τ with the AVX-512 S-box (see `tau`).
#[target_feature(enable = "avx512f,avx512bw,gfni")]
fn tau_avx512_gfni(word: u32) -> u32 {
    // SAFETY: as in `encrypt_avx512_gfni`.
    unsafe {
        _mm_cvtsi128_si32(_mm512_castsi512_si128(sbox_avx512(_mm512_set1_epi32(
            word as i32,
        )))) as u32
    }
}

#[target_feature(enable = "avx2,gfni")]
fn tau_avx2_gfni(word: u32) -> u32 {
    // SAFETY: as in `encrypt_avx2_gfni`.
    unsafe { tau::<__m256i, GfniSbox>(word) }
}

#[target_feature(enable = "avx2,aes")]
fn tau_avx2_aes_ni(word: u32) -> u32 {
    // SAFETY: as in `encrypt_avx2_aes_ni`.
    unsafe { tau::<__m256i, AesNiSbox>(word) }
}

#[target_feature(enable = "ssse3,aes")]
fn tau_ssse3_aes_ni(word: u32) -> u32 {
    // SAFETY: as in `encrypt_ssse3_aes_ni`.
    unsafe { tau::<__m128i, AesNiSbox>(word) }
}

/// τ on the four bytes of a word (the S-box is byte-wise: byte order does
/// not matter).
///
/// # Safety
/// The CPU has `V`'s and `S`'s features.
#[inline(always)]
unsafe fn tau<V: Lanes, S: Sbox<V>>(word: u32) -> u32 {
    // SAFETY: the caller guarantees the features.
    unsafe { S::sbox(V::splat32(word)).low_word() }
}

/// The registers the AVX2 (`__m256i`) and SSSE3 (`__m128i`) kernels run on:
/// the operations one group needs, each acting on every 128-bit lane alike,
/// so that one body of code serves both widths.
///
/// # Safety (every method)
/// The CPU has the register's extension: AVX2 for `__m256i`, SSSE3 for
/// `__m128i`. `load` and `store` also need `Self::BLOCKS` readable
/// (writable) blocks at their pointer.
trait Lanes: Copy {
    /// Blocks in one register.
    const BLOCKS: usize;
    unsafe fn load(from: *const [u8; 16]) -> Self;
    unsafe fn store(self, to: *mut [u8; 16]);
    unsafe fn splat32(word: u32) -> Self;
    /// Sixteen bytes in every 128-bit lane.
    unsafe fn table(bytes: &[u8; 16]) -> Self;
    unsafe fn xor(self, other: Self) -> Self;
    unsafe fn and(self, other: Self) -> Self;
    /// `pshufb`: each byte picked from its own lane of `self` by `pattern`.
    unsafe fn shuffle(self, pattern: Self) -> Self;
    /// Every 16-bit lane shifted right by 4 (the high nibbles, before masking).
    unsafe fn high_nibbles(self) -> Self;
    /// Every 32-bit lane rotated left by 2.
    unsafe fn rotate_left_2(self) -> Self;
    unsafe fn unpack_lo32(self, other: Self) -> Self;
    unsafe fn unpack_hi32(self, other: Self) -> Self;
    unsafe fn unpack_lo64(self, other: Self) -> Self;
    unsafe fn unpack_hi64(self, other: Self) -> Self;
    /// The first 32-bit lane.
    unsafe fn low_word(self) -> u32;
}

// SAFETY (both impls): each method is one or two intrinsics of the
// register's extension, which the caller guarantees; `load`/`store` are
// unaligned accesses of exactly `BLOCKS · 16` bytes the caller guarantees.
impl Lanes for __m256i {
    const BLOCKS: usize = 2;
    #[inline(always)]
    unsafe fn load(from: *const [u8; 16]) -> Self {
        unsafe { _mm256_loadu_si256(from.cast()) }
    }
    #[inline(always)]
    unsafe fn store(self, to: *mut [u8; 16]) {
        unsafe { _mm256_storeu_si256(to.cast(), self) }
    }
    #[inline(always)]
    unsafe fn splat32(word: u32) -> Self {
        unsafe { _mm256_set1_epi32(word as i32) }
    }
    #[inline(always)]
    unsafe fn table(bytes: &[u8; 16]) -> Self {
        unsafe { _mm256_broadcastsi128_si256(_mm_loadu_si128(bytes.as_ptr().cast())) }
    }
    #[inline(always)]
    unsafe fn xor(self, other: Self) -> Self {
        unsafe { _mm256_xor_si256(self, other) }
    }
    #[inline(always)]
    unsafe fn and(self, other: Self) -> Self {
        unsafe { _mm256_and_si256(self, other) }
    }
    #[inline(always)]
    unsafe fn shuffle(self, pattern: Self) -> Self {
        unsafe { _mm256_shuffle_epi8(self, pattern) }
    }
    #[inline(always)]
    unsafe fn high_nibbles(self) -> Self {
        unsafe { _mm256_srli_epi16::<4>(self) }
    }
    #[inline(always)]
    unsafe fn rotate_left_2(self) -> Self {
        unsafe { _mm256_or_si256(_mm256_slli_epi32::<2>(self), _mm256_srli_epi32::<30>(self)) }
    }
    #[inline(always)]
    unsafe fn unpack_lo32(self, other: Self) -> Self {
        unsafe { _mm256_unpacklo_epi32(self, other) }
    }
    #[inline(always)]
    unsafe fn unpack_hi32(self, other: Self) -> Self {
        unsafe { _mm256_unpackhi_epi32(self, other) }
    }
    #[inline(always)]
    unsafe fn unpack_lo64(self, other: Self) -> Self {
        unsafe { _mm256_unpacklo_epi64(self, other) }
    }
    #[inline(always)]
    unsafe fn unpack_hi64(self, other: Self) -> Self {
        unsafe { _mm256_unpackhi_epi64(self, other) }
    }
    #[inline(always)]
    unsafe fn low_word(self) -> u32 {
        unsafe { _mm256_cvtsi256_si32(self) as u32 }
    }
}

impl Lanes for __m128i {
    const BLOCKS: usize = 1;
    #[inline(always)]
    unsafe fn load(from: *const [u8; 16]) -> Self {
        unsafe { _mm_loadu_si128(from.cast()) }
    }
    #[inline(always)]
    unsafe fn store(self, to: *mut [u8; 16]) {
        unsafe { _mm_storeu_si128(to.cast(), self) }
    }
    #[inline(always)]
    unsafe fn splat32(word: u32) -> Self {
        unsafe { _mm_set1_epi32(word as i32) }
    }
    #[inline(always)]
    unsafe fn table(bytes: &[u8; 16]) -> Self {
        unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
    }
    #[inline(always)]
    unsafe fn xor(self, other: Self) -> Self {
        unsafe { _mm_xor_si128(self, other) }
    }
    #[inline(always)]
    unsafe fn and(self, other: Self) -> Self {
        unsafe { _mm_and_si128(self, other) }
    }
    #[inline(always)]
    unsafe fn shuffle(self, pattern: Self) -> Self {
        unsafe { _mm_shuffle_epi8(self, pattern) }
    }
    #[inline(always)]
    unsafe fn high_nibbles(self) -> Self {
        unsafe { _mm_srli_epi16::<4>(self) }
    }
    #[inline(always)]
    unsafe fn rotate_left_2(self) -> Self {
        unsafe { _mm_or_si128(_mm_slli_epi32::<2>(self), _mm_srli_epi32::<30>(self)) }
    }
    #[inline(always)]
    unsafe fn unpack_lo32(self, other: Self) -> Self {
        unsafe { _mm_unpacklo_epi32(self, other) }
    }
    #[inline(always)]
    unsafe fn unpack_hi32(self, other: Self) -> Self {
        unsafe { _mm_unpackhi_epi32(self, other) }
    }
    #[inline(always)]
    unsafe fn unpack_lo64(self, other: Self) -> Self {
        unsafe { _mm_unpacklo_epi64(self, other) }
    }
    #[inline(always)]
    unsafe fn unpack_hi64(self, other: Self) -> Self {
        unsafe { _mm_unpackhi_epi64(self, other) }
    }
    #[inline(always)]
    unsafe fn low_word(self) -> u32 {
        unsafe { _mm_cvtsi128_si32(self) as u32 }
    }
}

/// The S-box on every byte of a register.
trait Sbox<V: Lanes> {
    /// # Safety
    /// The CPU has `V`'s extension and the implementation's.
    unsafe fn sbox(x: V) -> V;
}

/// `gf2p8affineqb` (pre-affine) then `gf2p8affineinvqb` (AES-field inverse,
/// post-affine): two instructions per 32 bytes.
struct GfniSbox;

impl Sbox<__m256i> for GfniSbox {
    #[inline(always)]
    unsafe fn sbox(x: __m256i) -> __m256i {
        // SAFETY: the caller guarantees AVX2 and GFNI.
        unsafe {
            let pre = _mm256_set1_epi64x(GFNI_PRE.0 as i64);
            let post = _mm256_set1_epi64x(GFNI_POST.0 as i64);
            let y = _mm256_gf2p8affine_epi64_epi8::<{ GFNI_PRE.1 as i32 }>(x, pre);
            _mm256_gf2p8affineinv_epi64_epi8::<{ GFNI_POST.1 as i32 }>(y, post)
        }
    }
}

/// Pre-affine map by nibble tables, `aesenclast` with a zero round key (AES
/// field inverse and AES's affine layer; ShiftRows undone in advance), then
/// a post-affine map by nibble tables.
struct AesNiSbox;

impl AesNiSbox {
    /// The S-box around `aesenclast`, which `enclast` applies to each
    /// 128-bit lane.
    ///
    /// # Safety
    /// The CPU has `V`'s extension and AES-NI.
    #[inline(always)]
    unsafe fn around<V: Lanes>(x: V, enclast: impl FnOnce(V) -> V) -> V {
        // SAFETY: the caller guarantees the features.
        unsafe {
            let y = nibble_affine(x, &AESNI_PRE).shuffle(V::table(&INVERSE_SHIFT_ROWS));
            nibble_affine(enclast(y), &AESNI_POST)
        }
    }
}

impl Sbox<__m256i> for AesNiSbox {
    #[inline(always)]
    unsafe fn sbox(x: __m256i) -> __m256i {
        // SAFETY: the caller guarantees AVX2 and AES-NI (VAES is not
        // assumed: the two lanes go through `aesenclast` one by one).
        unsafe {
            Self::around(x, |y| {
                let zero = _mm_setzero_si128();
                let low = _mm_aesenclast_si128(_mm256_castsi256_si128(y), zero);
                let high = _mm_aesenclast_si128(_mm256_extracti128_si256::<1>(y), zero);
                _mm256_set_m128i(high, low)
            })
        }
    }
}

impl Sbox<__m128i> for AesNiSbox {
    #[inline(always)]
    unsafe fn sbox(x: __m128i) -> __m128i {
        // SAFETY: the caller guarantees SSSE3 and AES-NI.
        unsafe { Self::around(x, |y| _mm_aesenclast_si128(y, _mm_setzero_si128())) }
    }
}

/// An affine map on every byte, as the XOR of a low-nibble and a high-nibble
/// `pshufb` table lookup (the table lives in a register: constant time).
///
/// # Safety
/// The CPU has `V`'s extension.
#[inline(always)]
unsafe fn nibble_affine<V: Lanes>(x: V, tables: &([u8; 16], [u8; 16])) -> V {
    // SAFETY: the caller guarantees the extension.
    unsafe {
        let mask = V::table(&[0x0f; 16]);
        let low = x.and(mask);
        let high = x.high_nibbles().and(mask);
        V::table(&tables.0)
            .shuffle(low)
            .xor(V::table(&tables.1).shuffle(high))
    }
}

/// T = L∘τ on each 32-bit lane, with
/// L(b) = b ⊕ (b⋘2) ⊕ (b⋘10) ⊕ (b⋘18) ⊕ (b⋘24)
///      = b ⊕ (b⋘24) ⊕ ((b ⊕ (b⋘8) ⊕ (b⋘16))⋘2),
/// the whole-byte rotations being `pshufb`s.
///
/// # Safety
/// The CPU has `V`'s and `S`'s extensions.
#[inline(always)]
unsafe fn t<V: Lanes, S: Sbox<V>>(x: V) -> V {
    // SAFETY: the caller guarantees the features.
    unsafe {
        let b = S::sbox(x);
        let by8 = b.shuffle(V::table(&ROTATE_8));
        let by16 = b.shuffle(V::table(&ROTATE_16));
        let by24 = b.shuffle(V::table(&ROTATE_24));
        let m = b.xor(by8).xor(by16).rotate_left_2();
        b.xor(by24).xor(m)
    }
}

/// One round on a group: `x0 ⊕ T(x1 ⊕ x2 ⊕ x3 ⊕ rk)`.
///
/// # Safety
/// The CPU has `V`'s and `S`'s extensions.
#[inline(always)]
unsafe fn round<V: Lanes, S: Sbox<V>>(x0: V, x1: V, x2: V, x3: V, rk: V) -> V {
    // SAFETY: the caller guarantees the features.
    unsafe { x0.xor(t::<V, S>(x1.xor(x2).xor(x3.xor(rk)))) }
}

/// 4×4 transpose of 32-bit words within each 128-bit lane (its own inverse):
/// four registers of whole blocks become four registers of word j.
///
/// # Safety
/// The CPU has `V`'s extension.
#[inline(always)]
unsafe fn transpose<V: Lanes>(x: [V; 4]) -> [V; 4] {
    // SAFETY: the caller guarantees the extension.
    unsafe {
        let t0 = x[0].unpack_lo32(x[1]);
        let t1 = x[2].unpack_lo32(x[3]);
        let t2 = x[0].unpack_hi32(x[1]);
        let t3 = x[2].unpack_hi32(x[3]);
        [
            t0.unpack_lo64(t1),
            t0.unpack_hi64(t1),
            t2.unpack_lo64(t3),
            t2.unpack_hi64(t3),
        ]
    }
}

/// Encrypts two groups of `4 · V::BLOCKS` blocks (sixteen in YMM, eight in
/// XMM): load and transpose, 32 rounds on both groups interleaved, reverse
/// the words (SM4's final R), transpose back.
///
/// # Safety
/// The CPU has `V`'s and `S`'s extensions. (`N = 8 · V::BLOCKS` is checked
/// when the function is instantiated.)
#[inline(always)]
unsafe fn encrypt_pair<V: Lanes, S: Sbox<V>, const N: usize>(
    round_keys: &[u32; 32],
    pair: &mut [[u8; 16]; N],
) {
    const { assert!(N == 8 * V::BLOCKS, "a pair is two groups of four registers") };
    // SAFETY: the caller guarantees the features; the length is checked above. Register i
    // is loaded from and stored to blocks i·B .. (i + 1)·B (B = V::BLOCKS)
    // for i < 8: inside the exclusively borrowed `pair`.
    unsafe {
        let base = pair.as_mut_ptr();
        let swap = V::table(&BYTE_SWAP);
        let loaded: [V; 8] =
            std::array::from_fn(|i| V::load(base.add(i * V::BLOCKS)).shuffle(swap));
        let mut a = transpose([loaded[0], loaded[1], loaded[2], loaded[3]]);
        let mut b = transpose([loaded[4], loaded[5], loaded[6], loaded[7]]);
        for keys in round_keys.chunks_exact(4) {
            let k0 = V::splat32(keys[0]);
            a[0] = round::<V, S>(a[0], a[1], a[2], a[3], k0);
            b[0] = round::<V, S>(b[0], b[1], b[2], b[3], k0);
            let k1 = V::splat32(keys[1]);
            a[1] = round::<V, S>(a[1], a[2], a[3], a[0], k1);
            b[1] = round::<V, S>(b[1], b[2], b[3], b[0], k1);
            let k2 = V::splat32(keys[2]);
            a[2] = round::<V, S>(a[2], a[3], a[0], a[1], k2);
            b[2] = round::<V, S>(b[2], b[3], b[0], b[1], k2);
            let k3 = V::splat32(keys[3]);
            a[3] = round::<V, S>(a[3], a[0], a[1], a[2], k3);
            b[3] = round::<V, S>(b[3], b[0], b[1], b[2], k3);
        }
        let [a0, a1, a2, a3] = transpose([a[3], a[2], a[1], a[0]]);
        let [b0, b1, b2, b3] = transpose([b[3], b[2], b[1], b[0]]);
        for (i, register) in [a0, a1, a2, a3, b0, b1, b2, b3].into_iter().enumerate() {
            register.shuffle(swap).store(base.add(i * V::BLOCKS));
        }
    }
}

/// The GFNI S-box on every byte of a ZMM register.
///
/// # Safety
/// The CPU has AVX-512F and GFNI.
#[inline(always)]
unsafe fn sbox_avx512(x: __m512i) -> __m512i {
    // SAFETY: the caller guarantees the features.
    unsafe {
        let pre = _mm512_set1_epi64(GFNI_PRE.0 as i64);
        let post = _mm512_set1_epi64(GFNI_POST.0 as i64);
        let y = _mm512_gf2p8affine_epi64_epi8::<{ GFNI_PRE.1 as i32 }>(x, pre);
        _mm512_gf2p8affineinv_epi64_epi8::<{ GFNI_POST.1 as i32 }>(y, post)
    }
}

/// `a ⊕ b ⊕ c` in one `vpternlogd`.
///
/// # Safety
/// The CPU has AVX-512F.
#[inline(always)]
unsafe fn xor3_avx512(a: __m512i, b: __m512i, c: __m512i) -> __m512i {
    // SAFETY: the caller guarantees AVX-512F.
    unsafe { _mm512_ternarylogic_epi32::<0x96>(a, b, c) }
}

/// One round on a group of sixteen blocks:
/// `x0 ⊕ L(τ(x1 ⊕ x2 ⊕ x3 ⊕ rk))` with L's five terms by `vprold`.
///
/// # Safety
/// The CPU has AVX-512F and GFNI.
#[inline(always)]
unsafe fn round_avx512(x0: __m512i, x1: __m512i, x2: __m512i, x3: __m512i, rk: __m512i) -> __m512i {
    // SAFETY: the caller guarantees the features.
    unsafe {
        // x3 is the word the previous round produced: XOR it in last.
        let b = sbox_avx512(_mm512_xor_si512(xor3_avx512(x1, x2, rk), x3));
        let near = xor3_avx512(x0, b, _mm512_rol_epi32::<2>(b));
        let far = xor3_avx512(
            _mm512_rol_epi32::<10>(b),
            _mm512_rol_epi32::<18>(b),
            _mm512_rol_epi32::<24>(b),
        );
        _mm512_xor_si512(near, far)
    }
}

/// The 4×4 word transpose of `transpose`, on ZMM registers.
///
/// # Safety
/// The CPU has AVX-512F.
#[inline(always)]
unsafe fn transpose_avx512(x: [__m512i; 4]) -> [__m512i; 4] {
    // SAFETY: the caller guarantees AVX-512F.
    unsafe {
        let t0 = _mm512_unpacklo_epi32(x[0], x[1]);
        let t1 = _mm512_unpacklo_epi32(x[2], x[3]);
        let t2 = _mm512_unpackhi_epi32(x[0], x[1]);
        let t3 = _mm512_unpackhi_epi32(x[2], x[3]);
        [
            _mm512_unpacklo_epi64(t0, t1),
            _mm512_unpackhi_epi64(t0, t1),
            _mm512_unpacklo_epi64(t2, t3),
            _mm512_unpackhi_epi64(t2, t3),
        ]
    }
}

/// Encrypts `G` groups of sixteen blocks in ZMM registers (`G · 256`
/// bytes at `base`), interleaved as `encrypt16_avx2` does with two groups
/// of eight: more groups in flight hide more of a round's latency.
///
/// # Safety
/// The CPU has AVX-512F, AVX-512BW and GFNI; `base` points to `G · 256`
/// exclusively borrowed bytes.
#[inline(always)]
unsafe fn encrypt_groups_avx512<const G: usize>(round_keys: &[u32; 32], base: *mut __m512i) {
    // SAFETY: the caller guarantees the features and the `G · 256` bytes at
    // `base`; the unaligned loads and stores touch bytes 64·i .. 64·i + 64
    // for i < 4·G (register i holds blocks 4i .. 4i + 4).
    unsafe {
        let swap = _mm512_broadcast_i32x4(_mm_loadu_si128(BYTE_SWAP.as_ptr().cast::<__m128i>()));
        let mut groups: [[__m512i; 4]; G] = std::array::from_fn(|g| {
            transpose_avx512(std::array::from_fn(|i| {
                _mm512_shuffle_epi8(_mm512_loadu_si512(base.add(4 * g + i)), swap)
            }))
        });
        for keys in round_keys.chunks_exact(4) {
            for (j, &key) in keys.iter().enumerate() {
                let k = _mm512_set1_epi32(key as i32);
                for x in groups.iter_mut() {
                    x[j] = round_avx512(x[j], x[(j + 1) % 4], x[(j + 2) % 4], x[(j + 3) % 4], k);
                }
            }
        }
        for (g, x) in groups.iter().enumerate() {
            let out = transpose_avx512([x[3], x[2], x[1], x[0]]);
            for (i, register) in out.into_iter().enumerate() {
                _mm512_storeu_si512(base.add(4 * g + i), _mm512_shuffle_epi8(register, swap));
            }
        }
    }
}
