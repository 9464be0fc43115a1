//! Buckets, objects, multipart state and users on local disk: redb metadata plus blob files,
//! crash-safe.
//!
//! Metadata lives in one redb database, `<data_dir>/meta.redb`; object bodies live in blob files
//! `<data_dir>/blobs/<2 hex>/<blob id>`, or, up to 64 KiB, in that database's `blob_bodies`
//! table (`store/blobs.rs`). The store knows nothing of HTTP or crypto: headers, checksums and
//! encryption envelopes are opaque to it.
//!
//! # Two faces
//! - The async traits a backend implements and the API calls: [`MetadataStore`]
//!   (`meta.rs`: its module docs are the contract, including the commit order) and
//!   [`BlobStore`] / [`BlobWriter`] (`blob_store.rs`). The embedded pair implementing them,
//!   [`EmbeddedMetadata`] and [`FileBlobStore`] (`embedded/`), runs the synchronous store on
//!   tokio's blocking threads. `contract/` is the suite every backend passes (feature
//!   `contract` for other crates' tests).
//! - The synchronous [`Store`] (`store/`, one module per family: buckets, objects, multipart,
//!   blobs, users), whose every function blocks: the embedded pair's engine, and what the
//!   offline `coffer inspect` reads. Blob files never leave the crate: the API reads and
//!   writes bytes through [`BlobStore`] only.
//!
//! # Crash safety
//! A blob is written to `<data_dir>/tmp/` (with `O_DIRECT`: `direct.rs`), fsynced, renamed into
//! `blobs/` (directory fsynced), or a small one committed to `blob_bodies`, and only then
//! referenced by a metadata transaction, whose commit fsyncs (concurrent writers share one
//! commit: `store/commit.rs`). Blob files that stop being referenced are deleted after the
//! commit; inline bodies by the commit itself. [`Store::open`] removes everything under `tmp/` and
//! every blob file the metadata does not reference, then every pending-blob row (those blobs were
//! unreferenced, so just deleted). An acknowledged write survives `kill -9`;
//! an interrupted one leaves nothing visible.
//!
//! # Listing
//! S3 semantics: keys in byte order; keys up to and including `start_after` are skipped; with a
//! delimiter, keys containing it after the prefix roll up into one common prefix (up to and
//! including the first delimiter after the prefix), which counts once toward `max_keys` and whose
//! keys are skipped by seeking, not iterating; a common prefix equal to `start_after` is skipped.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod blob;
mod blob_store;
#[cfg(any(test, feature = "contract"))]
pub mod contract;
mod direct;
mod embedded;
mod error;
mod keys;
mod lease;
mod list;
mod meta;
mod records;
pub mod rules;
mod store;

pub(crate) use blob::NewBlob;
pub use blob_store::{BlobStore, BlobStream, BlobWriter};
pub use embedded::{EmbeddedMetadata, FileBlobStore, open_embedded, open_embedded_with_cache};
pub use error::{Backend, StoreError};
pub use lease::{Lease, LeaseFuture};
pub use meta::{MetadataStore, StoreFuture};
pub use records::{
    BlobId, BucketRecord, Condition, DeleteMarker, Deleted, Extent, FoundVersion, ListPage,
    ListQuery, ListedVersion, ObjectRecord, PartRecord, PendingBlob, Retention, RetentionMode,
    StoredBody, UploadListPage, UploadListQuery, UploadRecord, UserRecord, Version, VersionChange,
    VersionListPage, VersionListQuery, VersionRef, Versioning, Written,
};
pub use store::{DEFAULT_CACHE_BYTES, Deleter, MAX_KEY_LEN, Store};

#[cfg(test)]
mod tests;
