//! Client-side encryption for Coffer objects.
//!
//! Objects are encrypted on the client with a fresh content key, which a
//! [`MasterKey`] (KMS key, AES key file or RSA key pair) wraps into the
//! object's user metadata. Two families of formats, both exactly as the
//! public SDKs write them (see `docs/client-side-encryption.md`):
//!
//! * [`Format::Aws`] (default) / [`Format::AwsV2`]: the AWS S3 Encryption
//!   Client's V3 (key-committing) and V2 formats, AES-256-GCM, authenticated.
//! * [`Format::Oss`]: the OSS SDKs' format, AES-256-CTR, **unauthenticated**.
//!
//! Writing: [`ObjectEncryption::new`] → [`ObjectEncryption::metadata`] +
//! [`ObjectEncryption::encryptor`] (or [`ObjectEncryption::seekable`] for
//! parallel OSS parts). Reading: [`ObjectDecryption::open`] →
//! [`ObjectDecryption::decryptor`] (GCM: trust the plaintext only after
//! `finish()`), or [`ObjectDecryption::range`] (never authenticated).
//! [`rewrap`] changes the master key without touching the content.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod content;
mod error;
pub mod format;
mod json;
pub mod master_key;
mod object;

pub use content::ctr::CtrCipher;
pub use error::CseError;
pub use format::{Format, Metadata};
pub use master_key::{MasterKey, MasterKeyKind, RsaPadding, generate_key_file};
pub use object::{
    ContentDecryptor, ContentEncryptor, MultipartLayout, ObjectDecryption, ObjectEncryption,
    PlaintextInfo, RangeDecryptor, rewrap,
};
