//! Where the S-box constants of the SIMD kernels come from, recomputed from
//! first principles and compared with the literals the kernels use.
//!
//! SM4's S-box is affine–inverse–affine over GF(2⁸) with the SM4 field
//! polynomial: `S(x) = A·inv₁(A·x ⊕ c) ⊕ c` with a circulant 8×8 bit matrix
//! `A` (found here by search over the 2·256 circulant matrices and 256
//! constants). A field isomorphism `T` (x ↦ r, r a root of the SM4
//! polynomial in the AES field) turns the SM4-field inversion into AES's:
//! `inv₁(y) = T⁻¹·inv₂(T·y)`. So `S(x) = (A·T⁻¹)·inv₂((T·A)·x ⊕ T·c) ⊕ c`:
//! a pre-affine map, AES-field inversion, a post-affine map — which is what
//! GFNI (`gf2p8affineqb`, `gf2p8affineinvqb`) and AES-NI (`aesenclast`,
//! whose SubBytes is `L_aes·inv₂(y) ⊕ 0x63`) compute.
#![forbid(unsafe_code)]

/// x⁸+x⁷+x⁶+x⁵+x⁴+x²+1: SM4's field polynomial (GB/T 32907).
const SM4_POLY: u16 = 0x1f5;
/// x⁸+x⁴+x³+x+1: AES's field polynomial (FIPS 197).
const AES_POLY: u16 = 0x11b;

/// The SM4 S-box as GB/T 32907 prints it.
pub(super) const SBOX: [u8; 256] = [
    0xd6, 0x90, 0xe9, 0xfe, 0xcc, 0xe1, 0x3d, 0xb7, 0x16, 0xb6, 0x14, 0xc2, 0x28, 0xfb, 0x2c, 0x05,
    0x2b, 0x67, 0x9a, 0x76, 0x2a, 0xbe, 0x04, 0xc3, 0xaa, 0x44, 0x13, 0x26, 0x49, 0x86, 0x06, 0x99,
    0x9c, 0x42, 0x50, 0xf4, 0x91, 0xef, 0x98, 0x7a, 0x33, 0x54, 0x0b, 0x43, 0xed, 0xcf, 0xac, 0x62,
    0xe4, 0xb3, 0x1c, 0xa9, 0xc9, 0x08, 0xe8, 0x95, 0x80, 0xdf, 0x94, 0xfa, 0x75, 0x8f, 0x3f, 0xa6,
    0x47, 0x07, 0xa7, 0xfc, 0xf3, 0x73, 0x17, 0xba, 0x83, 0x59, 0x3c, 0x19, 0xe6, 0x85, 0x4f, 0xa8,
    0x68, 0x6b, 0x81, 0xb2, 0x71, 0x64, 0xda, 0x8b, 0xf8, 0xeb, 0x0f, 0x4b, 0x70, 0x56, 0x9d, 0x35,
    0x1e, 0x24, 0x0e, 0x5e, 0x63, 0x58, 0xd1, 0xa2, 0x25, 0x22, 0x7c, 0x3b, 0x01, 0x21, 0x78, 0x87,
    0xd4, 0x00, 0x46, 0x57, 0x9f, 0xd3, 0x27, 0x52, 0x4c, 0x36, 0x02, 0xe7, 0xa0, 0xc4, 0xc8, 0x9e,
    0xea, 0xbf, 0x8a, 0xd2, 0x40, 0xc7, 0x38, 0xb5, 0xa3, 0xf7, 0xf2, 0xce, 0xf9, 0x61, 0x15, 0xa1,
    0xe0, 0xae, 0x5d, 0xa4, 0x9b, 0x34, 0x1a, 0x55, 0xad, 0x93, 0x32, 0x30, 0xf5, 0x8c, 0xb1, 0xe3,
    0x1d, 0xf6, 0xe2, 0x2e, 0x82, 0x66, 0xca, 0x60, 0xc0, 0x29, 0x23, 0xab, 0x0d, 0x53, 0x4e, 0x6f,
    0xd5, 0xdb, 0x37, 0x45, 0xde, 0xfd, 0x8e, 0x2f, 0x03, 0xff, 0x6a, 0x72, 0x6d, 0x6c, 0x5b, 0x51,
    0x8d, 0x1b, 0xaf, 0x92, 0xbb, 0xdd, 0xbc, 0x7f, 0x11, 0xd9, 0x5c, 0x41, 0x1f, 0x10, 0x5a, 0xd8,
    0x0a, 0xc1, 0x31, 0x88, 0xa5, 0xcd, 0x7b, 0xbd, 0x2d, 0x74, 0xd0, 0x12, 0xb8, 0xe5, 0xb4, 0xb0,
    0x89, 0x69, 0x97, 0x4a, 0x0c, 0x96, 0x77, 0x7e, 0x65, 0xb9, 0xf1, 0x09, 0xc5, 0x6e, 0xc6, 0x84,
    0x18, 0xf0, 0x7d, 0xec, 0x3a, 0xdc, 0x4d, 0x20, 0x79, 0xee, 0x5f, 0x3e, 0xd7, 0xcb, 0x39, 0x48,
];

/// Product in GF(2⁸) modulo `poly`.
fn mul(a: u8, b: u8, poly: u16) -> u8 {
    let (mut a, mut product) = (u16::from(a), 0u16);
    for bit in 0..8 {
        if b >> bit & 1 == 1 {
            product ^= a;
        }
        a <<= 1;
        if a & 0x100 != 0 {
            a ^= poly;
        }
    }
    product as u8
}

/// Multiplicative inverse in GF(2⁸) modulo `poly` (x²⁵⁴), with inv(0) = 0.
fn inv(x: u8, poly: u16) -> u8 {
    (0..254).fold(1, |power, _| mul(power, x, poly))
}

/// An 8×8 matrix over GF(2): `rows[i]` masks the input bits whose parity
/// is output bit i.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BitMatrix([u8; 8]);

impl BitMatrix {
    /// The matrix of a GF(2)-linear map, from the images of the basis.
    fn of(f: impl Fn(u8) -> u8) -> Self {
        let mut rows = [0u8; 8];
        for column in 0..8 {
            let image = f(1 << column);
            for (row, r) in rows.iter_mut().enumerate() {
                *r |= (image >> row & 1) << column;
            }
        }
        BitMatrix(rows)
    }

    fn apply(self, x: u8) -> u8 {
        (0..8).fold(0, |out, row| {
            out | (((self.0[row] & x).count_ones() & 1) as u8) << row
        })
    }

    /// The matrix operand of `gf2p8affineqb`: output bit i comes from byte
    /// 7 − i of the quadword (Intel SDM, GF2P8AFFINEQB).
    fn gfni_qword(self) -> u64 {
        (0..8).fold(0, |q, row| q | u64::from(self.0[row]) << (8 * (7 - row)))
    }
}

/// The inverse of a bijection on bytes.
fn invert(f: impl Fn(u8) -> u8) -> impl Fn(u8) -> u8 {
    let mut table = [0u8; 256];
    for x in 0..=255u8 {
        table[usize::from(f(x))] = x;
    }
    move |y| table[usize::from(y)]
}

/// The circulant matrix with `first` as row 0, each next row rotated one bit
/// further left or right.
fn circulant(first: u8, left: bool) -> BitMatrix {
    BitMatrix(std::array::from_fn(|i| {
        if left {
            first.rotate_left(i as u32)
        } else {
            first.rotate_right(i as u32)
        }
    }))
}

/// `(A, c)` with `S(x) = A·inv₁(A·x ⊕ c) ⊕ c` for every x.
fn sm4_affine() -> (BitMatrix, u8) {
    let inverse: Vec<u8> = (0..=255u8).map(|x| inv(x, SM4_POLY)).collect();
    for left in [false, true] {
        for first in 1..=255u8 {
            let a = circulant(first, left);
            for c in 0..=255u8 {
                let sbox = |x: u8| a.apply(inverse[usize::from(a.apply(x) ^ c)]) ^ c;
                if (0..=255u8).all(|x| sbox(x) == SBOX[usize::from(x)]) {
                    return (a, c);
                }
            }
        }
    }
    panic!("no circulant affine decomposition of the S-box");
}

/// Evaluates the polynomial `poly` (bit i = coefficient of xⁱ) at `r` in the
/// AES field.
fn evaluate(poly: u16, r: u8) -> u8 {
    let mut power = 1u8;
    let mut value = 0u8;
    for bit in 0..16 {
        if poly >> bit & 1 == 1 {
            value ^= power;
        }
        power = mul(power, r, AES_POLY);
    }
    value
}

/// `T`: the field isomorphism from the SM4 field to the AES field that maps
/// x to the smallest root `r` of the SM4 polynomial, so `xⁱ` to `rⁱ`.
fn isomorphism() -> impl Fn(u8) -> u8 + Copy {
    let root = (2..=255u8)
        .find(|&r| evaluate(SM4_POLY, r) == 0)
        .expect("an irreducible polynomial of degree 8 has its roots in every GF(2^8)");
    move |x: u8| evaluate(u16::from(x), root)
}

/// AES's SubBytes linear part (FIPS 197 §5.1.1).
fn aes_linear(b: u8) -> u8 {
    b ^ b.rotate_left(1) ^ b.rotate_left(2) ^ b.rotate_left(3) ^ b.rotate_left(4)
}

/// Every S-box constant the kernels use.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Derived {
    /// `gf2p8affineqb` matrix and constant of the pre-affine map.
    pub(super) gfni_pre: (u64, u8),
    /// `gf2p8affineinvqb` matrix and constant of the post-affine map.
    pub(super) gfni_post: (u64, u8),
    /// Nibble tables (low, high) of the pre-affine map.
    pub(super) aesni_pre: ([u8; 16], [u8; 16]),
    /// Nibble tables (low, high) of the post-affine map that also undoes
    /// AES's SubBytes affine layer.
    pub(super) aesni_post: ([u8; 16], [u8; 16]),
}

/// Derives the constants from the S-box and the two field polynomials,
/// checking each step on every input.
pub(super) fn derive() -> Derived {
    let (a, c) = sm4_affine();
    let t = isomorphism();
    let t_inv = invert(t);
    for x in 0..=255u8 {
        for y in 0..=255u8 {
            assert_eq!(t(mul(x, y, SM4_POLY)), mul(t(x), t(y), AES_POLY));
        }
    }
    let pre = BitMatrix::of(|x| t(a.apply(x)));
    let pre_constant = t(c);
    let post = BitMatrix::of(|y| a.apply(t_inv(y)));
    // aesenclast yields z = L_aes·inv₂(y) ⊕ 0x63, so inv₂(y) = L_aes⁻¹·(z ⊕ 0x63).
    let aes_linear_inv = invert(aes_linear);
    let aes_post = BitMatrix::of(|z| post.apply(aes_linear_inv(z)));
    let aes_post_constant = aes_post.apply(0x63) ^ c;
    for x in 0..=255u8 {
        let y = pre.apply(x) ^ pre_constant;
        assert_eq!(post.apply(inv(y, AES_POLY)) ^ c, SBOX[usize::from(x)]);
        let z = aes_linear(inv(y, AES_POLY)) ^ 0x63;
        assert_eq!(aes_post.apply(z) ^ aes_post_constant, SBOX[usize::from(x)]);
    }
    let nibbles = |m: BitMatrix, constant: u8| {
        (
            std::array::from_fn(|n| m.apply(n as u8) ^ constant),
            std::array::from_fn(|n| m.apply((n as u8) << 4)),
        )
    };
    Derived {
        gfni_pre: (pre.gfni_qword(), pre_constant),
        gfni_post: (post.gfni_qword(), c),
        aesni_pre: nibbles(pre, pre_constant),
        aesni_post: nibbles(aes_post, aes_post_constant),
    }
}
