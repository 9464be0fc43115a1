//! The upstream bucket as the store and its writers share it: the signed
//! client, where blob ids go, and how an upstream failure becomes a
//! [`StoreError`].

use std::io::ErrorKind;

use coffer_client::objects::TransferError;
use coffer_client::{ClientError, SignedClient};
use coffer_store::{Backend, BlobId, StoreError};
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

    /// An upstream failure as the store reports it, with a message naming the
    /// endpoint, the bucket and what was being done (for the logs: the API
    /// never shows it to clients). An upstream out of reach is
    /// `Unavailable` of the blob store: no connection (refused, reset, DNS),
    /// no answer in time, a connection lost mid-answer, or an answer of 500,
    /// 502, 503 or 504, or 429 (the upstream's own failure or overload). The
    /// rest is an `Io` error whose kind tells why: `NotConnected` (TLS could
    /// not be set up), `InvalidData` (an answer that does not read as S3),
    /// `Other` (the upstream refused: credentials, a missing bucket). Callers
    /// turn a 404 into `NoSuchBlob` before calling this where a 404 means that.
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
        let unavailable = is_unavailable(&error);
        let io = std::io::Error::new(
            kind,
            format!(
                "upstream blob store {} (bucket {}): {doing}: {error}",
                self.client.url(),
                self.bucket
            ),
        );
        if unavailable {
            StoreError::unavailable(Backend::Blobs, io)
        } else {
            StoreError::Io(io)
        }
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

/// Whether `error` says the upstream is out of reach or failing for now
/// (see [`Upstream::error`]), rather than refusing the request.
fn is_unavailable(error: &TransferError) -> bool {
    match error {
        TransferError::Client(ClientError::Transport { .. } | ClientError::Timeout { .. }) => true,
        TransferError::Client(ClientError::Server { status, .. }) => matches!(
            *status,
            StatusCode::INTERNAL_SERVER_ERROR
                | StatusCode::BAD_GATEWAY
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT
                | StatusCode::TOO_MANY_REQUESTS
        ),
        TransferError::Io(io) => matches!(
            io.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::NotConnected
                | ErrorKind::BrokenPipe
                | ErrorKind::TimedOut
                | ErrorKind::UnexpectedEof
        ),
        _ => false,
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
