//! Coffer's cryptography: pure functions over bytes, no I/O, no HTTP, no KMS.
//!
//! - [`sealed`]: the sealed-object format (chunked AEAD, STREAM), the one way
//!   every route of the server seals and opens object bodies; specified in
//!   `docs/format.md`.
//! - [`secret_box`]: small-secret sealing for credentials at rest.
//! - [`keys`]: key material types that zeroize themselves.
#![forbid(unsafe_code)]

pub mod keys;
pub mod random;
pub mod sealed;
pub mod secret_box;

pub use keys::SymmetricKey;
pub use sealed::{
    Algorithm, Envelope, KeyReference, ObjectId, PartLayout, PartOpener, PartSealer, WrapKind,
};

/// Every failure of this crate. Opening failures carry no detail on purpose:
/// "which check failed" helps an attacker and never the user.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("decryption error")]
    Decryption,
    #[error("unsupported sealed format version {0}")]
    UnsupportedVersion(u8),
    #[error("key material must be {expected} bytes")]
    KeyLength { expected: usize },
    #[error("the system random number generator failed")]
    Random,
    /// A stored envelope that does not decode; the text names the rule broken
    /// (it describes layout only, never key material).
    #[error("malformed envelope: {0}")]
    Envelope(&'static str),
    #[error("range outside the part")]
    Range,
    #[error("part too large to seal (more than 2^32 chunks)")]
    PartTooLarge,
}
