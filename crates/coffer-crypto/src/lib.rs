//! Coffer's cryptography: pure functions over bytes, no I/O, no HTTP, no KMS.
//!
//! Today it holds the small-secret sealing used for credentials at rest
//! ([`secret_box`]) and key material types that zeroize themselves
//! ([`keys`]). The sealed-object format (chunked AEAD) will live here too, so
//! that every route of the server seals and opens object bodies one way.
#![forbid(unsafe_code)]

pub mod keys;
pub mod random;
pub mod secret_box;

pub use keys::SymmetricKey;

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
}
