//! Coffer's cryptography: pure functions over bytes, no I/O, no HTTP, no KMS.
//!
//! - [`sealed`]: the sealed-object format (chunked AEAD, STREAM), the one way
//!   every route of the server seals and opens object bodies; specified in
//!   `docs/format.md`.
//! - [`secret_box`]: AES-256-GCM sealing of small secrets (credentials and
//!   key material at rest), and the nonce ‖ ciphertext ‖ tag core the KMS
//!   ciphertext blob and the CSE `AES/GCM` key wrap frame their own way.
//! - [`keys`]: key material types that zeroize themselves.
//! - [`random`]: the system CSPRNG, for nonces, keys and identifiers.
//! - [`sm4_simd`]: the SM4 block cipher on GFNI or AES-NI (portable fallback)
//!   and SM4-GCM composed on it with a carry-less-multiply GHASH.
//!
//! No `unsafe` except in `sm4_simd`'s x86 kernels (SIMD intrinsics: SM4 in
//! `x86.rs`, GHASH in `ghash_x86.rs`), which
//! allow it for themselves and argue their soundness; every other module
//! forbids it.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod keys;
pub mod random;
pub mod sealed;
pub mod secret_box;
pub mod sm4_simd;

pub use keys::SymmetricKey;
pub use sealed::{
    Algorithm, Envelope, KeyReference, ObjectId, PartLayout, PartOpener, PartSealer, WrapKind,
};

/// Every failure of this crate. Opening failures carry no detail on purpose:
/// "which check failed" helps an attacker and never the user.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// Opening failed: wrong key, wrong context or AAD, or altered bytes.
    /// Which of them is deliberately not said.
    #[error("decryption error")]
    Decryption,
    /// A sealed value whose version byte this build does not know.
    #[error("unsupported sealed format version {0}")]
    UnsupportedVersion(u8),
    /// Key material of the wrong length.
    #[error("key material must be {expected} bytes")]
    KeyLength {
        /// The length the key must have.
        expected: usize,
    },
    /// The operating system's random number generator failed; nothing was
    /// sealed with a weak nonce or key.
    #[error("the system random number generator failed")]
    Random,
    /// A stored envelope that does not decode; the text names the rule broken
    /// (it describes layout only, never key material).
    #[error("malformed envelope: {0}")]
    Envelope(&'static str),
    /// A byte range that does not lie within the part it was asked of.
    #[error("range outside the part")]
    Range,
    /// A part with more chunks than the 32-bit chunk counter can number.
    #[error("part too large to seal (more than 2^32 chunks)")]
    PartTooLarge,
}
