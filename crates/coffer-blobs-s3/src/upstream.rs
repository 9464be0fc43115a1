//! The upstream bucket as the store and its writers share it: the signed
//! client, where blob ids go, and how an upstream failure becomes a
//! [`StoreError`].

use std::io::ErrorKind;

use coffer_client::objects::TransferError;
use coffer_client::{ClientError, SignedClient};
use coffer_store::{BlobId, StoreError};
use http::StatusCode;

/// One bucket and prefix of one endpoint.
pub(crate) struct Upstream {
    pub(crate) client: SignedClient,
    pub(crate) bucket: String,
    /// `PREFIX/` or empty: a blob's key is this followed by its id.
    pub(crate) key_prefix: String,
    pub(crate) part_size: usize,
    pub(crate) list_page_size: Option<u32>,
}

impl Upstream {
    /// The upstream key of a blob.
    pub(crate) fn key(&self, id: &BlobId) -> String {
        format!("{}{id}", self.key_prefix)
    }

    /// An upstream failure as the store reports it: always an `Io` error whose
    /// message names the endpoint, the bucket and what was being done. Its kind
    /// tells why: `NotConnected` (no connection: refused, reset, DNS, TLS),
    /// `TimedOut` (no answer in time), `InvalidData` (an answer that does not
    /// read as S3), `Other` (the upstream refused: credentials, a missing
    /// bucket, its own failure). Callers turn a 404 into `NoSuchBlob` before
    /// calling this where a 404 means that.
    pub(crate) fn error(&self, doing: &str, error: TransferError) -> StoreError {
        let kind = match &error {
            TransferError::Client(ClientError::Transport { .. } | ClientError::Tls(_)) => {
                ErrorKind::NotConnected
            }
            TransferError::Client(ClientError::Timeout { .. }) => ErrorKind::TimedOut,
            TransferError::Client(ClientError::BadResponse(_)) => ErrorKind::InvalidData,
            TransferError::Io(io) => io.kind(),
            _ => ErrorKind::Other,
        };
        StoreError::Io(std::io::Error::new(
            kind,
            format!(
                "upstream blob store {} (bucket {}): {doing}: {error}",
                self.client.url(),
                self.bucket
            ),
        ))
    }

    /// A read or length failure: a 404 for the object (not for the bucket) is
    /// `NoSuchBlob`.
    pub(crate) fn read_error(&self, doing: &str, error: TransferError) -> StoreError {
        if is_missing_object(&error) {
            StoreError::NoSuchBlob
        } else {
            self.error(doing, error)
        }
    }
}

/// A 404 that means "no such object": any 404 but one naming the bucket (a
/// HEAD's 404 carries no body, so it cannot tell; the store checks the bucket
/// when it opens).
pub(crate) fn is_missing_object(error: &TransferError) -> bool {
    match error {
        TransferError::Client(ClientError::Server { status, message }) => {
            *status == StatusCode::NOT_FOUND && !message.starts_with("NoSuchBucket")
        }
        _ => false,
    }
}
