//! Coffer's key management.
//!
//! Today: the root key ([`root_key`]), which seals every secret Coffer keeps
//! at rest. The embedded KMS (customer master keys, rotation, BYOK) will sit
//! beside it behind a `Kms` trait, with external backends added later the way
//! rustls adds crypto providers.
#![forbid(unsafe_code)]

pub mod kms;
pub mod root_key;

pub use kms::{CallContext, EncryptionContext, Kms, KmsError};
pub use root_key::{RootKey, RootKeyError};
pub mod service_keys;

pub use service_keys::{KeyringError, ServiceKeyring};
