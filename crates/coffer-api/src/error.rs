//! The one error type of the API edge, and the only place that knows S3
//! error codes and statuses. Every layer below speaks its own domain errors;
//! they are converted here.

use coffer_store::StoreError;
use http::StatusCode;

/// An S3 error: a code from the S3 error table, its HTTP status and a
/// message for humans. Rendered as S3 error XML by [`crate::response`].
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// OSS's fine-grained error code, when the failure has a documented one.
    pub ec: Option<&'static str>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            ec: None,
        }
    }

    /// The same error with OSS's fine-grained code (`EC`) for it.
    pub fn with_ec(mut self, ec: &'static str) -> Self {
        self.ec = Some(ec);
        self
    }

    pub fn no_such_bucket() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist",
        )
    }
    pub fn no_such_key() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        )
    }
    pub fn no_such_upload() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
    }
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
    }
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
    }
    pub fn malformed_xml() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema.",
        )
    }
    pub fn bad_digest(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadDigest", message)
    }
    pub fn not_implemented(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!("{what} is not implemented by Coffer"),
        )
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        )
    }
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error: {context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        )
    }
    /// A rejected aws-chunked body, with the decoder's own code and status.
    pub fn chunked(error: coffer_auth::ChunkError) -> Self {
        let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError::new(status, error.code(), error.to_string())
    }
    /// A request body that stalled for longer than the server waits.
    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "RequestTimeout",
            "Your socket connection to the server was not read from or written to within the timeout period.",
        )
    }
    /// Stored data or metadata that failed authentication: never served,
    /// and reported without detail.
    pub fn integrity_check_failed() -> Self {
        tracing::error!("an object failed its integrity check");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "IntegrityCheckFailed",
            "The object's stored data failed its integrity check and is not served.",
        )
    }
    pub fn incomplete_body() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "IncompleteBody",
            "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        )
    }
}

/// The OSS fine-grained error code (`EC`) of an error: its own when it has
/// one, else the one OSS documents for its code, else a neutral
/// `0000-00000000`, so that clients that read `EC` always find one.
pub fn oss_ec(error: &ApiError) -> &'static str {
    error.ec.unwrap_or(match error.code {
        "NoSuchKey" => "0026-00000001",
        "NoSuchBucket" => "0015-00000101",
        _ => "0000-00000000",
    })
}

/// The code OSS uses for what S3 calls `code`: the two differ for a few
/// failures (OSS says InvalidDigest for any digest mismatch, and
/// InvalidObjectName for a key that is too long); the rest are shared.
pub fn oss_code(code: &'static str) -> &'static str {
    match code {
        "BadDigest" | "XAmzContentSHA256Mismatch" => "InvalidDigest",
        "KeyTooLongError" => "InvalidObjectName",
        other => other,
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NoSuchBucket => ApiError::no_such_bucket(),
            StoreError::NoSuchKey => ApiError::no_such_key(),
            StoreError::NoSuchUpload => ApiError::no_such_upload(),
            StoreError::BucketNotEmpty => ApiError::new(
                StatusCode::CONFLICT,
                "BucketNotEmpty",
                "The bucket you tried to delete is not empty",
            ),
            StoreError::InvalidPart => ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidPart",
                "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
            ),
            other => ApiError::internal("store", other),
        }
    }
}
