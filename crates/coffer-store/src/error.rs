//! The store's one error type.

/// Everything a store operation can fail with. Domain errors first, then I/O and database errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named bucket does not exist.
    #[error("no such bucket")]
    NoSuchBucket,
    /// A bucket of that name already exists.
    #[error("bucket already exists (owner {owner})")]
    BucketExists {
        /// The existing bucket's owner, so the caller can tell "yours" from "taken".
        owner: String,
    },
    /// A bucket still holding objects or uploads cannot be deleted.
    #[error("bucket is not empty")]
    BucketNotEmpty,
    /// No object record under that key.
    #[error("no such key")]
    NoSuchKey,
    /// No version of that id under that key.
    #[error("no such version")]
    NoSuchVersion,
    /// The version is a delete marker, and the operation needs an object.
    #[error("the version is a delete marker")]
    DeleteMarker,
    /// The version is under an object-lock retention or legal hold that forbids the change.
    #[error("the object version is locked (retention or legal hold)")]
    ObjectLocked,
    /// No upload of that id for that key (never created, completed or aborted).
    #[error("no such upload")]
    NoSuchUpload,
    /// An extent of a completed upload is not the blob of a current part of that upload.
    #[error("invalid part: not a current part of this upload")]
    InvalidPart,
    /// The blob does not exist, or is not finished yet.
    #[error("no such blob")]
    NoSuchBlob,
    /// A blob handed to `put_object`/`put_part` is already referenced by another record.
    #[error("blob is already referenced")]
    BlobInUse,
    /// A conditional write or delete found the record not as the condition requires
    /// (present for `IfAbsent`, another ETag for `IfEtag`).
    #[error("precondition failed")]
    PreconditionFailed,
    /// A blob read asked for bytes past the blob's end, or a range that ends before it starts.
    #[error("range {start}..{end} is outside a blob of {len} bytes")]
    InvalidRange {
        /// The first byte asked for.
        start: u64,
        /// One past the last byte asked for.
        end: u64,
        /// The blob's length.
        len: u64,
    },
    /// Another user already has this name or this access key.
    #[error("user name or access key already exists")]
    UserExists,
    /// A name or key the store cannot hold (empty, too long, contains NUL…).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Stored metadata could not be decoded.
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
    /// A file or directory of the store could not be read or written.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A backend could not be reached or is not serving: connection refused, reset or timed
    /// out, no pooled connection to be had, the database shutting down, an upstream answering
    /// 5xx. Retrying later may succeed, so the API answers 503 with `Retry-After`. A write that
    /// fails so may have an unknown outcome (the connection dropped during the commit): see
    /// the commit order in [`crate::MetadataStore`]'s module docs.
    #[error("{backend} unavailable: {source}")]
    Unavailable {
        /// Which backend.
        backend: Backend,
        /// What the backend's client reported (it may name hosts: for the logs only).
        #[source]
        source: std::io::Error,
    },
    /// The metadata database failed (redb's error, boxed: it is large).
    #[error("metadata database error: {0}")]
    Database(#[source] Box<redb::Error>),
}

/// The two backends a gateway depends on, as an [`StoreError::Unavailable`] names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The metadata store (PostgreSQL).
    Metadata,
    /// The blob store (an upstream S3).
    Blobs,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Metadata => "metadata store",
            Backend::Blobs => "blob store",
        })
    }
}

impl StoreError {
    /// An [`StoreError::Unavailable`] of `backend`, with `source` as its cause.
    pub fn unavailable(backend: Backend, source: std::io::Error) -> Self {
        StoreError::Unavailable { backend, source }
    }

    /// Whether this is [`StoreError::Unavailable`]: the backend may serve again later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    /// Whether the embedded store could not open because another process holds its
    /// database (another server on the same data dir).
    pub fn is_locked_by_another_process(&self) -> bool {
        matches!(self, StoreError::Database(e) if matches!(**e, redb::Error::DatabaseAlreadyOpen))
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Database(Box::new(redb::Error::from(e)))
            }
        }
    )*};
}

from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
