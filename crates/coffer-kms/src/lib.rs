//! Coffer's key management.
//!
//! - [`root_key`]: the root key, which seals every secret Coffer keeps at rest.
//! - [`kms`]: the `Kms` trait (AWS KMS names and semantics).
//! - [`embedded`]: the embedded backend: customer master keys, aliases,
//!   rotation, BYOK, sealed in `<data-dir>/kms/keystore.json` by the root key,
//!   with an audit log. External backends will sit beside it the way rustls
//!   adds crypto providers.
//! - [`service_keys`]: the service master key behind SSE-S3 / SSE-OSS.
#![forbid(unsafe_code)]

pub mod embedded;
pub mod kms;
pub mod root_key;

pub use embedded::EmbeddedKms;
pub use kms::{CallContext, EncryptionContext, Kms, KmsError};
pub use root_key::{RootKey, RootKeyError};
pub mod service_keys;

pub use service_keys::{KeyringError, ServiceKeyring};
