//! Request signatures and payload integrity for Coffer, sans-IO.
//!
//! * [`sigv4`]: AWS Signature Version 4 — verification of header and presigned
//!   (query) authentication, signing for our own clients, and the per-chunk
//!   signer used by `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` uploads.
//! * [`chunked`]: a push-based decoder for the `aws-chunked` content encoding,
//!   with chunk and trailer signature verification in bounded memory.
//! * [`checksum`]: the `x-amz-checksum-*` algorithms and CRC-64/XZ (for OSS).
//! * [`canonical`], [`amz_time`], [`mac`]: building blocks shared with the
//!   OSS signature schemes (canonical query encoding, timestamps, HMAC).
//!
//! Nothing here does I/O or needs an async runtime. No secret ever appears in
//! an error message or a `Debug` output.
#![forbid(unsafe_code)]

pub mod amz_time;
pub mod canonical;
pub mod checksum;
pub mod chunked;
mod error;
pub mod mac;
mod secret;
pub mod sigv4;

pub use checksum::{ChecksumAlgorithm, Checksummer, Crc64Xz, crc64_xz};
pub use chunked::{ChunkError, ChunkMode, ChunkedDecoder, Trailers};
pub use error::AuthError;
pub use secret::Secret;
pub use sigv4::{
    ChunkSigner, Payload, SecretLookup, SignedRequest, SigningParams, Verified, presign, sign,
    verify,
};
