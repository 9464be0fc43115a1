//! Coffer's KMS on a KMIP server (`--kms-backend kmip://…`): the customer master keys stay in
//! the KMIP server, which encrypts and decrypts Coffer's data keys with AES-256-GCM (KMIP 1.4
//! Encrypt/Decrypt with authenticated encryption), over mutual TLS.
//!
//! - [`ttlv`]: KMIP's binary encoding.
//! - [`protocol`]: the request messages Coffer sends and reading their replies.
//! - [`client`]: a blocking client with kept connections and timeouts.
//! - [`blob`]: the ciphertext blob (names its key, binds the encryption context).
//! - [`keys`]: Coffer key ids as KMIP Names, and the short-lived state memory.
//! - [`kms`]: [`KmipKms`], the `Kms` traits.
//!
//! docs/kms.md ("KMIP backend") is the user's guide.

#![forbid(unsafe_code)]

pub mod blob;
pub mod client;
pub mod config;
pub mod keys;
pub mod kms;
pub mod protocol;
pub mod ttlv;

pub use config::KmipConfig;
pub use keys::STATE_TTL;
pub use kms::KmipKms;

/// The alias of the key SSE-KMS uses when a request names none, as a KMIP Name.
pub const DEFAULT_SSE_ALIAS: &str = "alias/aws/s3";
