//! The SM4 kernels for x86-64: 32 or 64 blocks per call, the S-box computed by
//! GFNI or by AES-NI through the affine isomorphism between SM4's and AES's
//! GF(2⁸) (the constants below are derived and checked in `derivation.rs`).
//! Three kernels: AVX-512 with GFNI (two groups of sixteen blocks in ZMM
//! registers, or four for the 64-block `encrypt_wide` of SM4-GCM's CTR;
//! rotations by `vprold`, three-way XORs by `vpternlogd`), and AVX2 with
//! GFNI or with AES-NI (two calls of two groups of eight).
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
//!   contract is "the CPU has AVX2 and the S-box's features"; only the entry
//!   points call them.
//! - **Unaligned loads and stores** (`loadu`/`storeu`: no alignment
//!   requirement): `_mm512_*` at `blocks + 64·i` for `i < 4·G` where
//!   `blocks` is a `&mut [[u8; 16]; 16·G]` (G · 256 contiguous bytes; G = 2
//!   for `encrypt`, 4 for `encrypt_wide`), `_mm256_*` at
//!   `blocks + 32·i` for `i < 8` where `blocks` is a `&mut [[u8; 16]; 16]`
//!   (256 bytes), so every access lies inside the exclusively borrowed
//!   array; and `_mm_loadu_si128` of `[u8; 16]` constants.
//!
//! Constant time: no branch and no memory address depends on key or data.
//! The S-box is arithmetic (GFNI affine maps around the field inversion, or
//! `pshufb` on register-resident nibble tables around `aesenclast`).
#![allow(unsafe_code)]

use super::Backend;
use std::arch::x86_64::{
    __m128i, __m256i, __m512i, _mm_aesenclast_si128, _mm_cvtsi128_si32, _mm_loadu_si128,
    _mm_setzero_si128, _mm256_and_si256, _mm256_broadcastsi128_si256, _mm256_castsi256_si128,
    _mm256_cvtsi256_si32, _mm256_extracti128_si256, _mm256_gf2p8affine_epi64_epi8,
    _mm256_gf2p8affineinv_epi64_epi8, _mm256_loadu_si256, _mm256_or_si256, _mm256_set_m128i,
    _mm256_set1_epi8, _mm256_set1_epi32, _mm256_set1_epi64x, _mm256_shuffle_epi8,
    _mm256_slli_epi32, _mm256_srli_epi16, _mm256_srli_epi32, _mm256_storeu_si256,
    _mm256_unpackhi_epi32, _mm256_unpackhi_epi64, _mm256_unpacklo_epi32, _mm256_unpacklo_epi64,
    _mm256_xor_si256, _mm512_broadcast_i32x4, _mm512_castsi512_si128,
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

/// The blocks of one AVX2 step.
type Blocks16 = [[u8; 16]; 16];

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
        }
    }

    /// Encrypts 32 blocks in place under the 32 round keys.
    pub(super) fn encrypt(self, round_keys: &[u32; 32], blocks: &mut Blocks) {
        // SAFETY (all three): a `Kernel` is only built by `detect`, after
        // detecting exactly the features its `Isa` names, which are the
        // features the called function is compiled for.
        match self.0 {
            Isa::Avx512Gfni => unsafe { encrypt_avx512_gfni(round_keys, blocks) },
            Isa::Avx2Gfni => unsafe { encrypt_avx2_gfni(round_keys, blocks) },
            Isa::Avx2AesNi => unsafe { encrypt_avx2_aes_ni(round_keys, blocks) },
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
    for half in blocks.as_chunks_mut::<16>().0 {
        // SAFETY: this function is compiled for (and only called with) AVX2 and GFNI.
        unsafe { encrypt16_avx2::<GfniSbox>(round_keys, half) }
    }
}

#[target_feature(enable = "avx2,aes")]
fn encrypt_avx2_aes_ni(round_keys: &[u32; 32], blocks: &mut Blocks) {
    for half in blocks.as_chunks_mut::<16>().0 {
        // SAFETY: this function is compiled for (and only called with) AVX2 and AES-NI.
        unsafe { encrypt16_avx2::<AesNiSbox>(round_keys, half) }
    }
}

/// τ with the AVX-512 S-box (see `tau_avx2`).
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
    unsafe { tau_avx2::<GfniSbox>(word) }
}

#[target_feature(enable = "avx2,aes")]
fn tau_avx2_aes_ni(word: u32) -> u32 {
    // SAFETY: as in `encrypt_avx2_aes_ni`.
    unsafe { tau_avx2::<AesNiSbox>(word) }
}

/// τ on the four bytes of a word (the S-box is byte-wise: byte order does
/// not matter).
///
/// # Safety
/// The CPU has AVX2 and `S`'s extension.
#[inline(always)]
unsafe fn tau_avx2<S: Sbox>(word: u32) -> u32 {
    // SAFETY: the caller guarantees the features.
    unsafe { _mm256_cvtsi256_si32(S::sbox(_mm256_set1_epi32(word as i32))) as u32 }
}

/// The S-box on every byte of a register.
trait Sbox {
    /// # Safety
    /// The CPU has AVX2 and the implementation's instruction set extension.
    unsafe fn sbox(x: __m256i) -> __m256i;
}

/// `gf2p8affineqb` (pre-affine) then `gf2p8affineinvqb` (AES-field inverse,
/// post-affine): two instructions per 32 bytes.
struct GfniSbox;

impl Sbox for GfniSbox {
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

impl Sbox for AesNiSbox {
    #[inline(always)]
    unsafe fn sbox(x: __m256i) -> __m256i {
        // SAFETY: the caller guarantees AVX2 and AES-NI.
        unsafe {
            let y = nibble_affine(x, &AESNI_PRE);
            let y = _mm256_shuffle_epi8(y, broadcast(&INVERSE_SHIFT_ROWS));
            let zero = _mm_setzero_si128();
            let low = _mm_aesenclast_si128(_mm256_castsi256_si128(y), zero);
            let high = _mm_aesenclast_si128(_mm256_extracti128_si256::<1>(y), zero);
            nibble_affine(_mm256_set_m128i(high, low), &AESNI_POST)
        }
    }
}

/// An affine map on every byte, as the XOR of a low-nibble and a high-nibble
/// `pshufb` table lookup (the table lives in a register: constant time).
///
/// # Safety
/// The CPU has AVX2.
#[inline(always)]
unsafe fn nibble_affine(x: __m256i, tables: &([u8; 16], [u8; 16])) -> __m256i {
    // SAFETY: the caller guarantees AVX2.
    unsafe {
        let mask = _mm256_set1_epi8(0x0f);
        let low = _mm256_and_si256(x, mask);
        let high = _mm256_and_si256(_mm256_srli_epi16::<4>(x), mask);
        _mm256_xor_si256(
            _mm256_shuffle_epi8(broadcast(&tables.0), low),
            _mm256_shuffle_epi8(broadcast(&tables.1), high),
        )
    }
}

/// Sixteen bytes in both 128-bit lanes.
///
/// # Safety
/// The CPU has AVX2.
#[inline(always)]
unsafe fn broadcast(bytes: &[u8; 16]) -> __m256i {
    // SAFETY: AVX2 per the caller; the load reads exactly the 16 bytes of
    // `bytes` and has no alignment requirement.
    unsafe { _mm256_broadcastsi128_si256(_mm_loadu_si128(bytes.as_ptr().cast::<__m128i>())) }
}

/// T = L∘τ on each 32-bit lane, with
/// L(b) = b ⊕ (b⋘2) ⊕ (b⋘10) ⊕ (b⋘18) ⊕ (b⋘24)
///      = b ⊕ (b⋘24) ⊕ ((b ⊕ (b⋘8) ⊕ (b⋘16))⋘2),
/// the whole-byte rotations being `pshufb`s.
///
/// # Safety
/// The CPU has AVX2 and `S`'s extension.
#[inline(always)]
unsafe fn t<S: Sbox>(x: __m256i) -> __m256i {
    // SAFETY: the caller guarantees the features.
    unsafe {
        let b = S::sbox(x);
        let by8 = _mm256_shuffle_epi8(b, broadcast(&ROTATE_8));
        let by16 = _mm256_shuffle_epi8(b, broadcast(&ROTATE_16));
        let by24 = _mm256_shuffle_epi8(b, broadcast(&ROTATE_24));
        let m = _mm256_xor_si256(_mm256_xor_si256(b, by8), by16);
        let m = _mm256_or_si256(_mm256_slli_epi32::<2>(m), _mm256_srli_epi32::<30>(m));
        _mm256_xor_si256(_mm256_xor_si256(b, by24), m)
    }
}

/// One round on a group: `x0 ⊕ T(x1 ⊕ x2 ⊕ x3 ⊕ rk)`.
///
/// # Safety
/// The CPU has AVX2 and `S`'s extension.
#[inline(always)]
unsafe fn round<S: Sbox>(
    x0: __m256i,
    x1: __m256i,
    x2: __m256i,
    x3: __m256i,
    rk: __m256i,
) -> __m256i {
    // SAFETY: the caller guarantees the features.
    unsafe {
        let input = _mm256_xor_si256(_mm256_xor_si256(x1, x2), _mm256_xor_si256(x3, rk));
        _mm256_xor_si256(x0, t::<S>(input))
    }
}

/// 4×4 transpose of 32-bit words within each 128-bit lane (its own inverse):
/// four registers of whole blocks become four registers of word j.
///
/// # Safety
/// The CPU has AVX2.
#[inline(always)]
unsafe fn transpose(x: [__m256i; 4]) -> [__m256i; 4] {
    // SAFETY: the caller guarantees AVX2.
    unsafe {
        let t0 = _mm256_unpacklo_epi32(x[0], x[1]);
        let t1 = _mm256_unpacklo_epi32(x[2], x[3]);
        let t2 = _mm256_unpackhi_epi32(x[0], x[1]);
        let t3 = _mm256_unpackhi_epi32(x[2], x[3]);
        [
            _mm256_unpacklo_epi64(t0, t1),
            _mm256_unpackhi_epi64(t0, t1),
            _mm256_unpacklo_epi64(t2, t3),
            _mm256_unpackhi_epi64(t2, t3),
        ]
    }
}

/// Encrypts sixteen blocks in AVX2 registers: load and transpose, 32 rounds
/// on both groups of eight interleaved, reverse the words (SM4's final R),
/// transpose back.
///
/// # Safety
/// The CPU has AVX2 and `S`'s extension.
#[inline(always)]
unsafe fn encrypt16_avx2<S: Sbox>(round_keys: &[u32; 32], blocks: &mut Blocks16) {
    // SAFETY: the caller guarantees the features. `blocks` is 256 exclusively
    // borrowed bytes; the unaligned loads and stores touch bytes
    // 32·i .. 32·i + 32 for i < 8 (register i holds blocks 2i and 2i + 1).
    unsafe {
        let base = blocks.as_mut_ptr().cast::<__m256i>();
        let swap = broadcast(&BYTE_SWAP);
        let mut loaded = [_mm256_set1_epi32(0); 8];
        for (i, register) in loaded.iter_mut().enumerate() {
            *register = _mm256_shuffle_epi8(_mm256_loadu_si256(base.add(i)), swap);
        }
        let mut a = transpose([loaded[0], loaded[1], loaded[2], loaded[3]]);
        let mut b = transpose([loaded[4], loaded[5], loaded[6], loaded[7]]);
        for keys in round_keys.chunks_exact(4) {
            let k0 = _mm256_set1_epi32(keys[0] as i32);
            a[0] = round::<S>(a[0], a[1], a[2], a[3], k0);
            b[0] = round::<S>(b[0], b[1], b[2], b[3], k0);
            let k1 = _mm256_set1_epi32(keys[1] as i32);
            a[1] = round::<S>(a[1], a[2], a[3], a[0], k1);
            b[1] = round::<S>(b[1], b[2], b[3], b[0], k1);
            let k2 = _mm256_set1_epi32(keys[2] as i32);
            a[2] = round::<S>(a[2], a[3], a[0], a[1], k2);
            b[2] = round::<S>(b[2], b[3], b[0], b[1], k2);
            let k3 = _mm256_set1_epi32(keys[3] as i32);
            a[3] = round::<S>(a[3], a[0], a[1], a[2], k3);
            b[3] = round::<S>(b[3], b[0], b[1], b[2], k3);
        }
        let [a0, a1, a2, a3] = transpose([a[3], a[2], a[1], a[0]]);
        let [b0, b1, b2, b3] = transpose([b[3], b[2], b[1], b[0]]);
        for (i, register) in [a0, a1, a2, a3, b0, b1, b2, b3].into_iter().enumerate() {
            _mm256_storeu_si256(base.add(i), _mm256_shuffle_epi8(register, swap));
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
