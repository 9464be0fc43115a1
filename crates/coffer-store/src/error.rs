//! The store's one error type.

/// Everything a store operation can fail with. Domain errors first, then I/O and database errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("bucket already exists (owner {owner})")]
    BucketExists { owner: String },
    #[error("bucket is not empty")]
    BucketNotEmpty,
    #[error("no such key")]
    NoSuchKey,
    #[error("no such upload")]
    NoSuchUpload,
    /// An extent of a completed upload is not the blob of a current part of that upload.
    #[error("invalid part: not a current part of this upload")]
    InvalidPart,
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
    InvalidRange { start: u64, end: u64, len: u64 },
    #[error("user name or access key already exists")]
    UserExists,
    /// A name or key the store cannot hold (empty, too long, contains NUL…).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Stored metadata could not be decoded.
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata database error: {0}")]
    Database(#[source] Box<redb::Error>),
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
