//! The one error type of client-side encryption. Messages name metadata
//! fields, algorithms and KMS codes, never key material.

/// Every failure of this crate.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CseError {
    /// The master key(s) given cannot unwrap this object's content key (or
    /// the key commitment does not match). `detail` says which key kind was
    /// tried; it never contains key bytes.
    #[error("wrong master key: {0}")]
    WrongMasterKey(String),
    /// A metadata field the format needs is absent.
    #[error("missing metadata field {0}")]
    MissingField(String),
    /// A metadata field is present but does not decode or is inconsistent.
    #[error("invalid metadata field {field}: {reason}")]
    InvalidField {
        /// The metadata key.
        field: String,
        /// What is wrong with its value (never key material).
        reason: String,
    },
    /// A content or wrap algorithm Coffer does not implement.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The GCM tag does not verify: the content was altered or truncated.
    #[error("tag mismatch: the object was altered or truncated")]
    TagMismatch,
    /// The object's metadata carries no client-side encryption.
    #[error("the object is not client-side encrypted")]
    NotEncrypted,
    /// The KMS answered with an error; `code` is its `__type`
    /// (`NotFoundException`, `DisabledException`, …).
    #[error("KMS error {code}: {message}")]
    Kms {
        /// The KMS error type.
        code: String,
        /// The KMS's own message.
        message: String,
    },
    /// A key file that cannot be read or written (the text never holds key
    /// bytes).
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The key file's path, as given.
        path: String,
        /// Why it could not be used.
        reason: String,
    },
    /// A request the library cannot honour (e.g. a part size that is not a
    /// multiple of 16, an RSA key without its private half for reading).
    #[error("{0}")]
    Invalid(String),
    /// The cryptographic library failed where it should not (RNG, key setup).
    #[error("cryptographic failure: {0}")]
    Crypto(&'static str),
}

impl CseError {
    pub(crate) fn missing(field: &str) -> Self {
        Self::MissingField(field.to_owned())
    }

    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

impl From<coffer_crypto::CryptoError> for CseError {
    fn from(error: coffer_crypto::CryptoError) -> Self {
        match error {
            coffer_crypto::CryptoError::Random => Self::Crypto("random number generator"),
            _ => Self::Crypto("key setup"),
        }
    }
}
