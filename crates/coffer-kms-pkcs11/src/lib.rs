//! Coffer's KMS on a PKCS#11 token (an HSM, or softhsm2 in tests), beside
//! the embedded KMS the way rustls's crypto providers sit side by side.
//!
//! - [`uri`]: the `pkcs11:` setting (RFC 7512 PKCS#11 URI; the PIN from a
//!   file or `COFFER_PKCS11_PIN`, never in the URI).
//! - `token`: the module, the token's slot and one logged-in session,
//!   started over when the token fails, so calls fail closed while it is
//!   away and work again when it is back.
//! - `objects`: keys, versions, states and aliases as token objects.
//! - `blob`: the ciphertext blob (key id and version, AES-256-GCM by the token).
//! - [`Pkcs11Kms`]: the KMS traits over them (`--kms-backend pkcs11:…`).
//! - [`TokenRootWrapper`]: the root key wrapped by a token key
//!   (`--root-key pkcs11:…;object=LABEL`).
//!
//! The PKCS#11 API blocks: every call here is for blocking threads, as the
//! KMS traits already require.
#![warn(missing_docs)]

mod blob;
mod kms;
mod objects;
mod root;
mod token;
pub mod uri;

pub use kms::{Pkcs11Kms, STATE_CACHE};
pub use root::TokenRootWrapper;
pub use uri::TokenUri;
