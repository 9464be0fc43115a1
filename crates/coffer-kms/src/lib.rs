//! Coffer's key management.
//!
//! - [`root_key`]: the root key, which seals every secret Coffer keeps at rest.
//! - [`kms`]: the KMS traits, with AWS KMS names and semantics:
//!   [`KmsDataPlane`] (data keys and key state: all that SSE and client-side
//!   encryption need, and all an external backend must offer), [`KmsAdmin`]
//!   (key administration, served by the KMS API) and [`Kms`] (both).
//! - [`embedded`]: the embedded backend: customer master keys, aliases,
//!   rotation, BYOK, sealed by the root key, with an audit log; over a
//!   keystore shared with other gateways it is kept current by
//!   [`EmbeddedKms::refresh`] and [`EmbeddedKms::refresh_all`], and can be
//!   made to refuse key use while it is not known to be. External
//!   backends will sit beside it the way rustls adds crypto providers, each
//!   passing the `contract` suite.
//! - [`key_policy`]: key policy documents: the defaults, the limits; stored by the
//!   backend with each key, evaluated by the KMS API and the S3 layer.
//! - [`keystore`]: where the embedded KMS keeps its sealed records, behind
//!   the [`keystore::KeyStore`] trait (get, list, compare-and-swap of one
//!   record, audit append); [`keystore::file::FileKeyStore`] is
//!   `<data-dir>/kms/keystore.json` and `audit.log`.
//! - `memory`, `memory_keystore` and `contract` (feature `testing`): an
//!   in-memory data plane and an in-memory keystore for tests, and the
//!   contract suites every KMS backend and every keystore passes.
//! - [`service_keys`]: the service master key behind SSE-S3 / SSE-OSS, its
//!   document behind the [`ServiceKeyStore`] trait (load, compare-and-swap of
//!   the whole document); [`FileServiceKeyStore`] is
//!   `<data-dir>/service-keys.json`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(any(test, feature = "testing"))]
pub mod contract;
pub mod embedded;
pub mod key_policy;
pub mod keystore;
pub mod kms;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
#[cfg(any(test, feature = "testing"))]
pub mod memory_keystore;
pub mod observe;
pub mod root_key;

pub use embedded::EmbeddedKms;
pub use kms::{CallContext, EncryptionContext, Kms, KmsAdmin, KmsDataPlane, KmsError};
pub use root_key::{RootKey, RootKeyError, SaltError};
pub mod service_keys;

pub use service_keys::{FileServiceKeyStore, KeyringError, ServiceKeyStore, ServiceKeyring};
