//! Request signatures and payload integrity for Coffer, sans-IO.
//!
//! * [`sigv4`]: AWS Signature Version 4 — verification of header and presigned
//!   (query) authentication, signing for our own clients, and the per-chunk
//!   signer used by `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` uploads.
//! * [`oss_v1`], [`oss_v4`]: the Alibaba Cloud OSS signatures (`OSS`, HMAC-SHA1;
//!   `OSS4-HMAC-SHA256`), header and presigned, verification and signing,
//!   over an [`OssRequest`] that names the bucket and the decoded key.
//! * [`sigv2`]: legacy AWS Signature Version 2 (`AWS`, HMAC-SHA1), header
//!   and presigned, over a [`SignedRequestV2`]; it shares its core with
//!   [`oss_v1`] (the private `v1_family` module).
//! * [`post_policy`]: the signature of a browser form upload's policy document
//!   (S3 POST Object with SigV4 or SigV2, OSS PostObject with V1 or V4).
//! * [`acs`]: the Alibaba Cloud API (POP) signatures of RPC-style APIs such
//!   as KMS: V1 (`HMAC-SHA1` over the canonical query) and V3
//!   (`ACS3-HMAC-SHA256` over a canonical request with `x-acs-*` headers).
//! * [`detect`]: which [`Scheme`] a request uses, so the server picks the
//!   verifier and the error dialect ([`AuthError::code`] or
//!   [`AuthError::oss_code`]). Every verifier returns a [`Verified`].
//! * [`chunked`]: a push-based decoder for the `aws-chunked` content encoding,
//!   with chunk and trailer signature verification in bounded memory.
//! * [`checksum`]: the `x-amz-checksum-*` algorithms and CRC-64/XZ (for OSS).
//! * [`md5`]: MD5 (ETags, `Content-MD5`) through aws-lc's assembly.
//! * [`canonical`], [`amz_time`], [`mac`]: building blocks shared with the
//!   OSS signature schemes (canonical query encoding, timestamps, HMAC).
//!
//! Nothing here does I/O or needs an async runtime. No secret ever appears in
//! an error message or a `Debug` output.
// Unsafe code is denied (the workspace forbids it): `md5` alone allows it,
// for its FFI calls into aws-lc, with the safety argument in its docs.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod acs;
pub mod amz_time;
pub mod canonical;
pub mod checksum;
mod chunk_signer;
pub mod chunked;
mod credentials;
mod error;
pub mod mac;
pub mod md5;
pub mod oss;
pub mod oss_v1;
pub mod oss_v4;
pub mod post_policy;
mod scheme;
mod secret;
mod signing;
pub mod sigv2;
pub mod sigv4;
#[cfg(test)]
mod test_captures;
mod v1_family;
mod verified;

pub use checksum::{ChecksumAlgorithm, Checksummer, Crc64Xz, crc64_xz};
pub use chunk_signer::ChunkSigner;
pub use chunked::{ChunkError, ChunkMode, ChunkedDecoder, Trailers};
pub use error::AuthError;
pub use oss::OssRequest;
pub use scheme::{Scheme, detect};
pub use secret::Secret;
pub use signing::SigningParams;
pub use sigv2::SignedRequestV2;
pub use sigv4::{SecretLookup, SignedRequest, presign, sign, verify};
pub use verified::{Payload, Verified};
