//! GHASH by carry-less multiplication, sixteen blocks per reduction: the
//! products of the blocks with descending powers of H are summed unreduced
//! and reduced once (an aggregated GHASH, as in Intel's GCM white paper).
//! Three widths: VPCLMULQDQ on ZMM registers (four blocks per instruction,
//! AVX-512), on YMM registers (two, AVX2), and PCLMULQDQ on XMM.
//!
//! Arithmetic is POLYVAL's (RFC 8452, Appendix A): a GCM block read
//! big-endian is a POLYVAL field element (one `pshufb` per register), H
//! becomes `mulx(H)`, and a product `a·b·x⁻¹²⁸` is reduced by two folds with
//! the constant 0xc2…01 (Gueron and Lindell's AES-GCM-SIV reduction). The
//! state, H's powers and every intermediate are `u128`s in that domain.
//!
//! # Why the `unsafe` here is sound
//!
//! The second module of the crate allowed `unsafe` (beside `x86.rs`, whose
//! pattern it follows), for two kinds of operation:
//! - **Calling code compiled for CPU features.** A [`Clmul`] value exists
//!   only once `is_x86_feature_detected!` has confirmed its features: its
//!   field is private and only [`Clmul::detect`], which checks first,
//!   constructs one. The `#[target_feature]` entry points are private and
//!   called only from `Clmul`'s methods, each matching the features the value
//!   proves (every width includes PCLMULQDQ and SSSE3, which the power table
//!   and the tail use). The `#[inline(always)]` helpers are `unsafe fn`s
//!   whose contract is "the CPU has the features named in their `# Safety`";
//!   only the entry points call them.
//! - **Unaligned loads** (`loadu`: no alignment requirement) of 16, 32 or
//!   64 bytes at `blocks.as_ptr() + 16·i` where every one of the loaded
//!   blocks `i .. i + 1, 2 or 4` is `< blocks.len()` (the loops walk
//!   `chunks_exact(16)` and the tail one block at a time), and of the power
//!   table at `powers.as_ptr() + j` for `j + 1, 2 or 4 ≤ 16` (a `&[u128; 16]`);
//!   and a load from, or a store to, a local `u128` (the state's way in and
//!   out of a register). Nothing else is written through a pointer.
//!
//! Constant time: no branch and no memory address depends on H or on data.
#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m128i, __m256i, __m512i, _mm_clmulepi64_si128, _mm_loadu_si128, _mm_set_epi64x,
    _mm_setr_epi8, _mm_setzero_si128, _mm_shuffle_epi8, _mm_shuffle_epi32, _mm_slli_si128,
    _mm_srli_si128, _mm_storeu_si128, _mm_xor_si128, _mm256_broadcastsi128_si256,
    _mm256_castsi256_si128, _mm256_clmulepi64_epi128, _mm256_extracti128_si256, _mm256_loadu_si256,
    _mm256_shuffle_epi8, _mm256_slli_si256, _mm256_srli_si256, _mm256_xor_si256,
    _mm256_zextsi128_si256, _mm512_broadcast_i32x4, _mm512_bslli_epi128, _mm512_bsrli_epi128,
    _mm512_castsi512_si256, _mm512_clmulepi64_epi128, _mm512_extracti64x4_epi64,
    _mm512_loadu_si512, _mm512_shuffle_epi8, _mm512_ternarylogic_epi64, _mm512_xor_si512,
    _mm512_zextsi128_si512,
};

use super::gcm::GhashBackend;

/// Blocks per reduction, and the number of H's powers kept.
pub(super) const AGGREGATE: usize = 16;

/// H's powers in POLYVAL's domain, highest first: `powers[j]` = H^(16 − j),
/// so that the blocks of a group of `n ≤ 16` meet `powers[16 − n ..]` in
/// order, and four consecutive entries fill a ZMM register lane by lane.
pub(super) type Powers = [u128; AGGREGATE];

/// A carry-less-multiply GHASH this CPU has been found to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Clmul(Width);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Width {
    Zmm,
    Ymm,
    Xmm,
}

impl Clmul {
    /// The kernel of a CLMUL backend, if this CPU has its features.
    pub(super) fn detect(backend: GhashBackend) -> Option<Clmul> {
        let base = is_x86_feature_detected!("pclmulqdq") && is_x86_feature_detected!("ssse3");
        let (width, has_features) = match backend {
            GhashBackend::Avx512Vpclmulqdq => (
                Width::Zmm,
                base && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("vpclmulqdq"),
            ),
            GhashBackend::Avx2Vpclmulqdq => (
                Width::Ymm,
                base && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("vpclmulqdq"),
            ),
            GhashBackend::Pclmulqdq => (Width::Xmm, base),
            GhashBackend::Portable => return None,
        };
        has_features.then_some(Clmul(width))
    }

    /// The backend this kernel implements.
    pub(super) fn backend(self) -> GhashBackend {
        match self.0 {
            Width::Zmm => GhashBackend::Avx512Vpclmulqdq,
            Width::Ymm => GhashBackend::Avx2Vpclmulqdq,
            Width::Xmm => GhashBackend::Pclmulqdq,
        }
    }

    /// POLYVAL's product `a·b·x⁻¹²⁸` (for the power table).
    pub(super) fn dot(self, a: u128, b: u128) -> u128 {
        // SAFETY: every width's `detect` confirmed PCLMULQDQ and SSSE3.
        unsafe { dot_xmm(a, b) }
    }

    /// Absorbs whole GCM blocks into `state` (POLYVAL domain).
    pub(super) fn update(self, powers: &Powers, state: &mut u128, blocks: &[[u8; 16]]) {
        // SAFETY: a `Clmul` is only built by `detect`, after detecting the
        // features the called function is compiled for.
        *state = match self.0 {
            Width::Zmm => unsafe { update_zmm(powers, *state, blocks) },
            Width::Ymm => unsafe { update_ymm(powers, *state, blocks) },
            Width::Xmm => unsafe { update_xmm(powers, *state, blocks) },
        };
    }
}

#[target_feature(enable = "pclmulqdq,ssse3")]
fn dot_xmm(a: u128, b: u128) -> u128 {
    // SAFETY: compiled for (and only called with) PCLMULQDQ and SSSE3.
    unsafe {
        let (lo, mid, hi) = product(to_xmm(a), to_xmm(b));
        from_xmm(reduce(lo, mid, hi))
    }
}

#[target_feature(enable = "pclmulqdq,ssse3")]
fn update_xmm(powers: &Powers, state: u128, blocks: &[[u8; 16]]) -> u128 {
    // SAFETY: compiled for (and only called with) PCLMULQDQ and SSSE3.
    unsafe {
        let mut state = to_xmm(state);
        let (groups, tail) = blocks.as_chunks::<AGGREGATE>();
        for group in groups {
            state = aggregate_xmm(powers, state, group);
        }
        if !tail.is_empty() {
            state = aggregate_xmm(powers, state, tail);
        }
        from_xmm(state)
    }
}

#[target_feature(enable = "avx2,vpclmulqdq,pclmulqdq,ssse3")]
fn update_ymm(powers: &Powers, state: u128, blocks: &[[u8; 16]]) -> u128 {
    // SAFETY: compiled for (and only called with) AVX2, VPCLMULQDQ,
    // PCLMULQDQ and SSSE3. The loads read blocks 2i, 2i + 1 of a
    // 16-block group (i < 8) and powers 2i, 2i + 1 (module docs).
    unsafe {
        let reverse = _mm256_broadcastsi128_si256(reverse_bytes());
        let table = powers.as_ptr().cast::<__m256i>();
        let h: [__m256i; 8] = std::array::from_fn(|i| _mm256_loadu_si256(table.add(i)));
        let mut state = to_xmm(state);
        let (groups, tail) = blocks.as_chunks::<AGGREGATE>();
        for group in groups {
            let data = group.as_ptr().cast::<__m256i>();
            let x0 = _mm256_shuffle_epi8(_mm256_loadu_si256(data), reverse);
            let x0 = _mm256_xor_si256(x0, _mm256_zextsi128_si256(state));
            let (mut lo, mut mid, mut hi) = product_ymm(x0, h[0]);
            for (i, &power) in h.iter().enumerate().skip(1) {
                let x = _mm256_shuffle_epi8(_mm256_loadu_si256(data.add(i)), reverse);
                let (l, m, u) = product_ymm(x, power);
                lo = _mm256_xor_si256(lo, l);
                mid = _mm256_xor_si256(mid, m);
                hi = _mm256_xor_si256(hi, u);
            }
            // Fold the middle terms within each lane, then the two lanes.
            let lo = _mm256_xor_si256(lo, _mm256_slli_si256::<8>(mid));
            let hi = _mm256_xor_si256(hi, _mm256_srli_si256::<8>(mid));
            state = reduce_folded(fold_ymm(lo), fold_ymm(hi));
        }
        if !tail.is_empty() {
            state = aggregate_xmm(powers, state, tail);
        }
        from_xmm(state)
    }
}

#[target_feature(enable = "avx512f,avx512bw,vpclmulqdq,pclmulqdq,ssse3")]
fn update_zmm(powers: &Powers, state: u128, blocks: &[[u8; 16]]) -> u128 {
    // SAFETY: compiled for (and only called with) AVX-512F/BW, VPCLMULQDQ,
    // PCLMULQDQ and SSSE3. The loads read blocks 4i .. 4i + 4 of a 16-block
    // group (i < 4) and powers 4i .. 4i + 4 (module docs).
    unsafe {
        let reverse = _mm512_broadcast_i32x4(reverse_bytes());
        let table = powers.as_ptr().cast::<__m512i>();
        let h: [__m512i; 4] = std::array::from_fn(|i| _mm512_loadu_si512(table.add(i)));
        let mut state = to_xmm(state);
        let (groups, tail) = blocks.as_chunks::<AGGREGATE>();
        for group in groups {
            let data = group.as_ptr().cast::<__m512i>();
            let x: [__m512i; 4] = std::array::from_fn(|i| {
                _mm512_shuffle_epi8(_mm512_loadu_si512(data.add(i)), reverse)
            });
            let x0 = _mm512_xor_si512(x[0], _mm512_zextsi128_si512(state));
            let lo = xor4_zmm(
                _mm512_clmulepi64_epi128::<0x00>(x0, h[0]),
                _mm512_clmulepi64_epi128::<0x00>(x[1], h[1]),
                _mm512_clmulepi64_epi128::<0x00>(x[2], h[2]),
                _mm512_clmulepi64_epi128::<0x00>(x[3], h[3]),
            );
            let hi = xor4_zmm(
                _mm512_clmulepi64_epi128::<0x11>(x0, h[0]),
                _mm512_clmulepi64_epi128::<0x11>(x[1], h[1]),
                _mm512_clmulepi64_epi128::<0x11>(x[2], h[2]),
                _mm512_clmulepi64_epi128::<0x11>(x[3], h[3]),
            );
            let mid = _mm512_xor_si512(
                xor4_zmm(
                    _mm512_clmulepi64_epi128::<0x01>(x0, h[0]),
                    _mm512_clmulepi64_epi128::<0x01>(x[1], h[1]),
                    _mm512_clmulepi64_epi128::<0x01>(x[2], h[2]),
                    _mm512_clmulepi64_epi128::<0x01>(x[3], h[3]),
                ),
                xor4_zmm(
                    _mm512_clmulepi64_epi128::<0x10>(x0, h[0]),
                    _mm512_clmulepi64_epi128::<0x10>(x[1], h[1]),
                    _mm512_clmulepi64_epi128::<0x10>(x[2], h[2]),
                    _mm512_clmulepi64_epi128::<0x10>(x[3], h[3]),
                ),
            );
            // Fold the middle terms within each lane, then the four lanes.
            let lo = _mm512_xor_si512(lo, _mm512_bslli_epi128::<8>(mid));
            let hi = _mm512_xor_si512(hi, _mm512_bsrli_epi128::<8>(mid));
            state = reduce_folded(fold_zmm(lo), fold_zmm(hi));
        }
        if !tail.is_empty() {
            state = aggregate_xmm(powers, state, tail);
        }
        from_xmm(state)
    }
}

/// `state ⊕ x₁, x₂, …, xₙ` (n ≤ 16) times H^n, …, H^1, summed unreduced,
/// reduced once.
///
/// # Safety
/// The CPU has PCLMULQDQ and SSSE3; `blocks.len() ≤ 16`.
#[inline(always)]
unsafe fn aggregate_xmm(powers: &Powers, state: __m128i, blocks: &[[u8; 16]]) -> __m128i {
    // SAFETY: the caller guarantees the features; block i < blocks.len() and
    // power 16 − n + i < 16 are in bounds (n = blocks.len() ≤ 16).
    unsafe {
        debug_assert!(!blocks.is_empty() && blocks.len() <= AGGREGATE);
        let reverse = reverse_bytes();
        let first_power = AGGREGATE - blocks.len();
        let (mut lo, mut mid, mut hi) = (
            _mm_setzero_si128(),
            _mm_setzero_si128(),
            _mm_setzero_si128(),
        );
        let mut carried = state;
        for (i, block) in blocks.iter().enumerate() {
            let x = _mm_shuffle_epi8(_mm_loadu_si128(block.as_ptr().cast()), reverse);
            // The state joins the first block only.
            let x = _mm_xor_si128(x, carried);
            carried = _mm_setzero_si128();
            let h = _mm_loadu_si128(powers.as_ptr().add(first_power + i).cast());
            let (l, m, u) = product(x, h);
            lo = _mm_xor_si128(lo, l);
            mid = _mm_xor_si128(mid, m);
            hi = _mm_xor_si128(hi, u);
        }
        reduce(lo, mid, hi)
    }
}

/// The schoolbook 256-bit carry-less product of `a` and `b` as its low,
/// middle (two cross terms, summed) and high 128-bit parts.
///
/// # Safety
/// The CPU has PCLMULQDQ.
#[inline(always)]
unsafe fn product(a: __m128i, b: __m128i) -> (__m128i, __m128i, __m128i) {
    // SAFETY: the caller guarantees PCLMULQDQ.
    unsafe {
        (
            _mm_clmulepi64_si128::<0x00>(a, b),
            _mm_xor_si128(
                _mm_clmulepi64_si128::<0x01>(a, b),
                _mm_clmulepi64_si128::<0x10>(a, b),
            ),
            _mm_clmulepi64_si128::<0x11>(a, b),
        )
    }
}

/// [`product`] lane by lane on YMM registers.
///
/// # Safety
/// The CPU has AVX2 and VPCLMULQDQ.
#[inline(always)]
unsafe fn product_ymm(a: __m256i, b: __m256i) -> (__m256i, __m256i, __m256i) {
    // SAFETY: the caller guarantees the features.
    unsafe {
        (
            _mm256_clmulepi64_epi128::<0x00>(a, b),
            _mm256_xor_si256(
                _mm256_clmulepi64_epi128::<0x01>(a, b),
                _mm256_clmulepi64_epi128::<0x10>(a, b),
            ),
            _mm256_clmulepi64_epi128::<0x11>(a, b),
        )
    }
}

/// `a ⊕ b ⊕ c ⊕ d` in two `vpternlogq`.
///
/// # Safety
/// The CPU has AVX-512F.
#[inline(always)]
unsafe fn xor4_zmm(a: __m512i, b: __m512i, c: __m512i, d: __m512i) -> __m512i {
    // SAFETY: the caller guarantees AVX-512F.
    unsafe { _mm512_xor_si512(_mm512_ternarylogic_epi64::<0x96>(a, b, c), d) }
}

/// The XOR of a YMM register's two 128-bit lanes.
///
/// # Safety
/// The CPU has AVX2.
#[inline(always)]
unsafe fn fold_ymm(x: __m256i) -> __m128i {
    // SAFETY: the caller guarantees AVX2.
    unsafe { _mm_xor_si128(_mm256_castsi256_si128(x), _mm256_extracti128_si256::<1>(x)) }
}

/// The XOR of a ZMM register's four 128-bit lanes.
///
/// # Safety
/// The CPU has AVX-512F and AVX2.
#[inline(always)]
unsafe fn fold_zmm(x: __m512i) -> __m128i {
    // SAFETY: the caller guarantees the features.
    unsafe {
        fold_ymm(_mm256_xor_si256(
            _mm512_castsi512_si256(x),
            _mm512_extracti64x4_epi64::<1>(x),
        ))
    }
}

/// Folds the middle part into the low and high parts, then reduces.
///
/// # Safety
/// The CPU has PCLMULQDQ.
#[inline(always)]
unsafe fn reduce(lo: __m128i, mid: __m128i, hi: __m128i) -> __m128i {
    // SAFETY: the caller guarantees PCLMULQDQ.
    unsafe {
        reduce_folded(
            _mm_xor_si128(lo, _mm_slli_si128::<8>(mid)),
            _mm_xor_si128(hi, _mm_srli_si128::<8>(mid)),
        )
    }
}

/// `(hi·x¹²⁸ ⊕ lo)·x⁻¹²⁸` modulo POLYVAL's polynomial: two Montgomery
/// folds of the low half by 0xc2000000_00000000 (x¹²⁸ ≡ x¹²⁷ + x¹²⁶ +
/// x¹²¹ + 1, multiplied through by x⁻⁶⁴ twice).
///
/// # Safety
/// The CPU has PCLMULQDQ.
#[inline(always)]
unsafe fn reduce_folded(lo: __m128i, hi: __m128i) -> __m128i {
    // SAFETY: the caller guarantees PCLMULQDQ.
    unsafe {
        let poly = _mm_set_epi64x(0xc200_0000_0000_0000_u64 as i64, 1);
        let t = _mm_xor_si128(
            _mm_shuffle_epi32::<0x4e>(lo),
            _mm_clmulepi64_si128::<0x10>(lo, poly),
        );
        let t = _mm_xor_si128(
            _mm_shuffle_epi32::<0x4e>(t),
            _mm_clmulepi64_si128::<0x10>(t, poly),
        );
        _mm_xor_si128(hi, t)
    }
}

/// The `pshufb` pattern reversing sixteen bytes (a GCM block, big-endian,
/// into POLYVAL's little-endian order).
///
/// # Safety
/// The CPU has SSE2.
#[inline(always)]
unsafe fn reverse_bytes() -> __m128i {
    // SAFETY: SSE2 is part of x86-64.
    unsafe { _mm_setr_epi8(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0) }
}

/// # Safety
/// The CPU has SSE2.
#[inline(always)]
unsafe fn to_xmm(x: u128) -> __m128i {
    // SAFETY: SSE2 is part of x86-64; the load reads the 16 bytes of `x`.
    unsafe { _mm_loadu_si128((&raw const x).cast()) }
}

/// # Safety
/// The CPU has SSE2.
#[inline(always)]
unsafe fn from_xmm(x: __m128i) -> u128 {
    let mut out = 0u128;
    // SAFETY: SSE2 is part of x86-64; the store writes the 16 bytes of `out`.
    unsafe { _mm_storeu_si128((&raw mut out).cast(), x) };
    out
}
