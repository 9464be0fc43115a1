//! Why keying failed, in its own terms; the API edge maps each to its
//! S3/OSS error.

use coffer_kms::KmsError;

/// A failure to seal or open an object's keys. Nothing is written or
/// served after one.
#[derive(Debug, thiserror::Error)]
pub enum KeyingError {
    /// The KMS refused or failed (disabled, pending deletion, not found,
    /// wrong context, unreachable).
    #[error(transparent)]
    Kms(#[from] KmsError),
    /// SSE-KMS was asked of a server that runs without a KMS.
    #[error("this server runs without a KMS")]
    NoKms,
    /// Stored keys or envelopes failed authentication: never served, and
    /// reported without detail.
    #[error("the object's stored data failed its integrity check")]
    Integrity,
    /// The object is sealed with a customer key the request did not bring.
    #[error("the object is stored with a customer-provided key the request did not provide")]
    CustomerKeyRequired,
    /// The request brought a customer key for an object not sealed with one.
    #[error("the object is not encrypted with a customer-provided key")]
    CustomerKeyNotApplicable,
    /// The customer key is not the one the object was sealed with.
    #[error("the customer-provided key does not match the object's")]
    CustomerKeyMismatch,
    /// A customer key arrived over plain HTTP (it crossed the network in
    /// the clear).
    #[error("customer-provided keys are accepted only over TLS")]
    CustomerKeyOverPlainHttp,
    /// Something that should not fail did (randomness, a poisoned lock).
    #[error("{context}: {message}")]
    Internal {
        /// What was being done.
        context: &'static str,
        /// The cause, free of key material.
        message: String,
    },
}

impl KeyingError {
    pub(crate) fn internal(context: &'static str, cause: impl std::fmt::Display) -> Self {
        KeyingError::Internal {
            context,
            message: cause.to_string(),
        }
    }
}

/// The result of a keying call.
pub type KeyingResult<T> = Result<T, KeyingError>;
