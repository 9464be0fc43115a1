//! Sealed blobs in an existing S3-compatible cluster (Ceph RGW, Garage,
//! MinIO, AWS S3, another Coffer): [`S3BlobStore`] implements
//! [`coffer_store::BlobStore`] over one upstream bucket and prefix, through
//! Coffer's own SigV4 client (`coffer-client`), so there is one HTTP stack.
//!
//! - **Layout.** Blob `ID` (128 random bits, 32 hex characters) is the
//!   upstream object `PREFIX/ID`, holding exactly the blob's bytes: sealed
//!   ciphertext. The upstream sees no Coffer bucket, key, metadata or size
//!   other than the ciphertext's.
//! - **Writes** ([`config::DEFAULT_PART_SIZE`]): a blob of at most one part
//!   is one PUT at `finish`; a longer one a multipart upload of fixed-size
//!   parts (two in flight while the next fills), completed by `finish`. A
//!   writer dropped unfinished aborts its upload, best effort.
//! - **Reads**: one ranged GET per read (a HEAD for `len`); the length the
//!   answer reports decides `InvalidRange`. `delete` is a DELETE (an absent
//!   blob is fine); `list_older_than` pages through ListObjectsV2 of the
//!   prefix, keeping keys that are blob ids, by `LastModified`.
//! - **Failures** name the endpoint and bucket (for the logs). An upstream
//!   out of reach or failing (no connection, no answer in time, a 5xx or
//!   429) is `StoreError::Unavailable` of the blob store, which the API
//!   answers with 503 and `Retry-After`; a refusal (credentials, a missing
//!   bucket) is `StoreError::Io`. Connects and answers are bounded
//!   ([`config::DEFAULT_CONNECT_TIMEOUT`], [`config::DEFAULT_RESPONSE_TIMEOUT`]).
//!
//! `docs/metadata.md` ("Blobs in an S3 cluster") has the operator's view.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
mod store;
mod upstream;
mod writer;

pub use config::{S3BlobConfig, S3ConfigError};
pub use store::S3BlobStore;
