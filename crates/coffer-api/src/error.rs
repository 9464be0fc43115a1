//! The one error type of the API edge, and the only place that knows S3
//! and OSS error codes and statuses. Every layer below speaks its own domain
//! errors; they are converted here.

use coffer_auth::AuthError;
use coffer_auth::ChunkError;
use coffer_kms::kms::KmsError;
use coffer_store::StoreError;
use http::StatusCode;

/// Every error code Coffer answers with. Each knows its S3 name, its HTTP
/// status and, when OSS documents a single one for it, its OSS `EC`. The
/// OSS name, where it differs, is chosen when the error is rendered
/// ([`ErrorCode::oss_code`]): handlers never ask which dialect they speak
/// to pick a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    // Authentication and authorization.
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    InvalidAccessKeyId,
    MissingSecurityHeader,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,

    // The request itself.
    InvalidArgument,
    InvalidRequest,
    MalformedXML,
    MalformedPolicy,
    MaxMessageLengthExceeded,
    MethodNotAllowed,
    NotImplemented,
    IllegalLocationConstraintException,

    // The request body.
    BadDigest,
    InvalidDigest,
    XAmzContentSHA256Mismatch,
    IncompleteBody,
    MissingContentLength,
    RequestTimeout,
    EntityTooLarge,
    EntityTooSmall,

    // Buckets.
    NoSuchBucket,
    InvalidBucketName,
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    NoSuchBucketPolicy,
    ServerSideEncryptionConfigurationNotFoundError,
    NoSuchServerSideEncryptionRule,

    // Objects and multipart uploads.
    NoSuchKey,
    KeyTooLongError,
    MetadataTooLarge,
    InvalidRange,
    InvalidPartNumber,
    PreconditionFailed,
    NoSuchUpload,
    InvalidPart,
    InvalidPartOrder,

    // Server-side encryption and the KMS behind it.
    InvalidEncryptionAlgorithmError,
    IntegrityCheckFailed,
    KmsNotFound,
    KmsDisabled,
    KmsInvalidState,
    KmsInvalidCiphertext,
    KmsIncorrectKey,
    KmsValidation,
    KmsInternal,
    /// A KMS failure SSE does not expect (alias or key-import errors):
    /// reported as `KMS.KMSInternalException`, but with 403.
    KmsUnexpected,

    // The admin API.
    NoSuchUser,
    UserAlreadyExists,
    NoSuchAdminEndpoint,

    InternalError,
}

impl ErrorCode {
    /// The code in S3's error table (and Coffer's own, for the admin API).
    pub fn s3_code(self) -> &'static str {
        use ErrorCode::*;
        match self {
            AccessDenied => "AccessDenied",
            AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed",
            AuthorizationQueryParametersError => "AuthorizationQueryParametersError",
            InvalidAccessKeyId => "InvalidAccessKeyId",
            MissingSecurityHeader => "MissingSecurityHeader",
            RequestTimeTooSkewed => "RequestTimeTooSkewed",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            InvalidArgument => "InvalidArgument",
            InvalidRequest => "InvalidRequest",
            MalformedXML => "MalformedXML",
            MalformedPolicy => "MalformedPolicy",
            MaxMessageLengthExceeded => "MaxMessageLengthExceeded",
            MethodNotAllowed => "MethodNotAllowed",
            NotImplemented => "NotImplemented",
            IllegalLocationConstraintException => "IllegalLocationConstraintException",
            BadDigest => "BadDigest",
            InvalidDigest => "InvalidDigest",
            XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
            IncompleteBody => "IncompleteBody",
            MissingContentLength => "MissingContentLength",
            RequestTimeout => "RequestTimeout",
            EntityTooLarge => "EntityTooLarge",
            EntityTooSmall => "EntityTooSmall",
            NoSuchBucket => "NoSuchBucket",
            InvalidBucketName => "InvalidBucketName",
            BucketAlreadyExists => "BucketAlreadyExists",
            BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            BucketNotEmpty => "BucketNotEmpty",
            NoSuchBucketPolicy => "NoSuchBucketPolicy",
            ServerSideEncryptionConfigurationNotFoundError => {
                "ServerSideEncryptionConfigurationNotFoundError"
            }
            NoSuchServerSideEncryptionRule => "NoSuchServerSideEncryptionRule",
            NoSuchKey => "NoSuchKey",
            KeyTooLongError => "KeyTooLongError",
            MetadataTooLarge => "MetadataTooLarge",
            InvalidRange => "InvalidRange",
            InvalidPartNumber => "InvalidPartNumber",
            PreconditionFailed => "PreconditionFailed",
            NoSuchUpload => "NoSuchUpload",
            InvalidPart => "InvalidPart",
            InvalidPartOrder => "InvalidPartOrder",
            InvalidEncryptionAlgorithmError => "InvalidEncryptionAlgorithmError",
            IntegrityCheckFailed => "IntegrityCheckFailed",
            KmsNotFound => "KMS.NotFoundException",
            KmsDisabled => "KMS.DisabledException",
            KmsInvalidState => "KMS.KMSInvalidStateException",
            KmsInvalidCiphertext => "KMS.InvalidCiphertextException",
            KmsIncorrectKey => "KMS.IncorrectKeyException",
            KmsValidation => "KMS.ValidationException",
            KmsInternal | KmsUnexpected => "KMS.KMSInternalException",
            NoSuchUser => "NoSuchUser",
            UserAlreadyExists => "UserAlreadyExists",
            NoSuchAdminEndpoint => "NoSuchAdminEndpoint",
            InternalError => "InternalError",
        }
    }

    /// The code OSS uses for the same failure. The two differ for a few:
    /// OSS says InvalidDigest for any digest mismatch, InvalidObjectName
    /// for a key that is too long, and InvalidArgument for a malformed
    /// `Authorization` header or presigned query and a missing required
    /// header; the rest are shared.
    pub fn oss_code(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BadDigest | XAmzContentSHA256Mismatch => "InvalidDigest",
            KeyTooLongError => "InvalidObjectName",
            AuthorizationHeaderMalformed
            | AuthorizationQueryParametersError
            | MissingSecurityHeader => "InvalidArgument",
            other => other.s3_code(),
        }
    }

    /// The HTTP status the code is sent with.
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            AccessDenied
            | InvalidAccessKeyId
            | RequestTimeTooSkewed
            | SignatureDoesNotMatch
            | KmsDisabled
            | KmsInvalidState
            | KmsInvalidCiphertext
            | KmsIncorrectKey
            | KmsUnexpected => StatusCode::FORBIDDEN,
            NoSuchBucket
            | NoSuchBucketPolicy
            | ServerSideEncryptionConfigurationNotFoundError
            | NoSuchServerSideEncryptionRule
            | NoSuchKey
            | NoSuchUpload
            | NoSuchUser
            | NoSuchAdminEndpoint => StatusCode::NOT_FOUND,
            BucketAlreadyExists | BucketAlreadyOwnedByYou | BucketNotEmpty | UserAlreadyExists => {
                StatusCode::CONFLICT
            }
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            MissingContentLength => StatusCode::LENGTH_REQUIRED,
            PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            InvalidRange | InvalidPartNumber => StatusCode::RANGE_NOT_SATISFIABLE,
            NotImplemented => StatusCode::NOT_IMPLEMENTED,
            IntegrityCheckFailed | KmsInternal | InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            AuthorizationHeaderMalformed
            | AuthorizationQueryParametersError
            | MissingSecurityHeader
            | InvalidArgument
            | InvalidRequest
            | MalformedXML
            | MalformedPolicy
            | MaxMessageLengthExceeded
            | IllegalLocationConstraintException
            | BadDigest
            | InvalidDigest
            | XAmzContentSHA256Mismatch
            | IncompleteBody
            | RequestTimeout
            | EntityTooLarge
            | EntityTooSmall
            | InvalidBucketName
            | KeyTooLongError
            | MetadataTooLarge
            | InvalidPart
            | InvalidPartOrder
            | InvalidEncryptionAlgorithmError
            | KmsNotFound
            | KmsValidation => StatusCode::BAD_REQUEST,
        }
    }

    /// OSS's fine-grained error code (`EC`), when OSS documents one EC for
    /// every failure with this code. Codes whose EC depends on what failed
    /// get it per site ([`ApiError::with_ec`]).
    pub fn oss_ec(self) -> Option<&'static str> {
        match self {
            ErrorCode::NoSuchKey => Some("0026-00000001"),
            ErrorCode::NoSuchBucket => Some("0015-00000101"),
            ErrorCode::MetadataTooLarge => Some("0011-00000002"),
            _ => None,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.s3_code())
    }
}

/// An API error: a code, a message for humans and, where the site knows
/// a finer one than its code's, an OSS `EC`. Rendered in the request's
/// dialect when the response is built (`server.rs`).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// OSS's fine-grained code for this failure, when it is not the one
    /// its code always has ([`ErrorCode::oss_ec`]).
    pub ec: Option<&'static str>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            ec: None,
        }
    }

    /// The same error with OSS's fine-grained code (`EC`) for its site.
    pub fn with_ec(mut self, ec: &'static str) -> Self {
        self.ec = Some(ec);
        self
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The OSS fine-grained error code (`EC`): the site's own when it has
    /// one, else the one OSS documents for the code, else a neutral
    /// `0000-00000000`, so that clients that read `EC` always find one.
    pub fn oss_ec(&self) -> &'static str {
        self.ec
            .or_else(|| self.code.oss_ec())
            .unwrap_or("0000-00000000")
    }

    pub fn no_such_bucket() -> Self {
        Self::new(
            ErrorCode::NoSuchBucket,
            "The specified bucket does not exist",
        )
    }
    pub fn no_such_key() -> Self {
        Self::new(ErrorCode::NoSuchKey, "The specified key does not exist.")
    }
    pub fn no_such_upload() -> Self {
        Self::new(
            ErrorCode::NoSuchUpload,
            "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
    }
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AccessDenied, message)
    }
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }
    pub fn malformed_xml() -> Self {
        Self::new(
            ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema.",
        )
    }
    pub fn bad_digest(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadDigest, message)
    }
    pub fn not_implemented(what: &str) -> Self {
        Self::new(
            ErrorCode::NotImplemented,
            format!("{what} is not implemented by Coffer"),
        )
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            ErrorCode::MethodNotAllowed,
            "The specified method is not allowed against this resource.",
        )
    }
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error: {context}");
        Self::new(
            ErrorCode::InternalError,
            "We encountered an internal error. Please try again.",
        )
    }
    /// A rejected aws-chunked body.
    pub fn chunked(error: ChunkError) -> Self {
        let code = match error {
            ChunkError::SignatureMismatch => ErrorCode::SignatureDoesNotMatch,
            ChunkError::Incomplete => ErrorCode::IncompleteBody,
            ChunkError::Malformed(_)
            | ChunkError::LineTooLong
            | ChunkError::ChunkTooLarge
            | ChunkError::TooManyTrailers
            | ChunkError::TrailingData => ErrorCode::InvalidRequest,
        };
        Self::new(code, error.to_string())
    }
    /// A request body that stalled for longer than the server waits.
    pub fn request_timeout() -> Self {
        Self::new(
            ErrorCode::RequestTimeout,
            "Your socket connection to the server was not read from or written to within the timeout period.",
        )
    }
    /// Stored data or metadata that failed authentication: never served,
    /// and reported without detail.
    pub fn integrity_check_failed() -> Self {
        tracing::error!("an object failed its integrity check");
        Self::new(
            ErrorCode::IntegrityCheckFailed,
            "The object's stored data failed its integrity check and is not served.",
        )
    }
    pub fn incomplete_body() -> Self {
        Self::new(
            ErrorCode::IncompleteBody,
            "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        )
    }
}

impl From<AuthError> for ApiError {
    /// The S3 code of an authentication failure; the OSS dialect renames
    /// some at the edge ([`ErrorCode::oss_code`]).
    fn from(error: AuthError) -> Self {
        let code = match error {
            AuthError::Missing | AuthError::Expired | AuthError::AccessDenied(_) => {
                ErrorCode::AccessDenied
            }
            AuthError::HeaderMalformed(_) => ErrorCode::AuthorizationHeaderMalformed,
            AuthError::QueryMalformed(_) => ErrorCode::AuthorizationQueryParametersError,
            AuthError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            AuthError::MissingSecurityHeader(_) => ErrorCode::MissingSecurityHeader,
            AuthError::UnknownAccessKey => ErrorCode::InvalidAccessKeyId,
            AuthError::SignatureMismatch => ErrorCode::SignatureDoesNotMatch,
            AuthError::TimeTooSkewed | AuthError::NotYetValid => ErrorCode::RequestTimeTooSkewed,
            AuthError::ContentSha256Mismatch => ErrorCode::XAmzContentSHA256Mismatch,
            AuthError::NotImplemented(_) => ErrorCode::NotImplemented,
        };
        Self::new(code, error.to_string())
    }
}

impl From<KmsError> for ApiError {
    /// The KMS failure an SSE request sees: the KMS's own exception name
    /// with the `KMS.` prefix S3 uses.
    fn from(error: KmsError) -> Self {
        let code = match error {
            KmsError::NotFound(_) => ErrorCode::KmsNotFound,
            KmsError::Disabled(_) => ErrorCode::KmsDisabled,
            KmsError::InvalidState { .. } => ErrorCode::KmsInvalidState,
            KmsError::InvalidCiphertext => ErrorCode::KmsInvalidCiphertext,
            KmsError::IncorrectKey => ErrorCode::KmsIncorrectKey,
            KmsError::Validation(_) => ErrorCode::KmsValidation,
            KmsError::Internal(_) => ErrorCode::KmsInternal,
            KmsError::AlreadyExists(_)
            | KmsError::InvalidImportToken
            | KmsError::IncorrectKeyMaterial
            | KmsError::ExpiredImportToken => ErrorCode::KmsUnexpected,
        };
        Self::new(code, error.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NoSuchBucket => ApiError::no_such_bucket(),
            StoreError::NoSuchKey => ApiError::no_such_key(),
            StoreError::NoSuchUpload => ApiError::no_such_upload(),
            StoreError::BucketNotEmpty => ApiError::new(
                ErrorCode::BucketNotEmpty,
                "The bucket you tried to delete is not empty",
            ),
            StoreError::InvalidPart => ApiError::new(
                ErrorCode::InvalidPart,
                "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
            ),
            other => ApiError::internal("store", other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every authentication failure keeps the code (in both dialects) and
    /// the status that `coffer-auth` gives it.
    #[test]
    fn auth_errors_keep_their_codes_and_statuses() {
        let all = [
            AuthError::Missing,
            AuthError::HeaderMalformed("h".into()),
            AuthError::QueryMalformed("q".into()),
            AuthError::InvalidArgument("a".into()),
            AuthError::MissingSecurityHeader("x-amz-date"),
            AuthError::UnknownAccessKey,
            AuthError::SignatureMismatch,
            AuthError::TimeTooSkewed,
            AuthError::NotYetValid,
            AuthError::Expired,
            AuthError::AccessDenied("no"),
            AuthError::ContentSha256Mismatch,
            AuthError::NotImplemented("sigv4a"),
        ];
        for error in all {
            let api = ApiError::from(error.clone());
            assert_eq!(api.code.s3_code(), error.code(), "{error:?}");
            assert_eq!(api.code.oss_code(), error.oss_code(), "{error:?}");
            assert_eq!(api.status().as_u16(), error.status(), "{error:?}");
            assert_eq!(api.message, error.to_string());
            assert_eq!(api.oss_ec(), "0000-00000000");
        }
    }

    #[test]
    fn chunk_errors_keep_their_codes_and_statuses() {
        let all = [
            ChunkError::Malformed("m"),
            ChunkError::LineTooLong,
            ChunkError::ChunkTooLarge,
            ChunkError::TooManyTrailers,
            ChunkError::SignatureMismatch,
            ChunkError::Incomplete,
            ChunkError::TrailingData,
        ];
        for error in all {
            let api = ApiError::chunked(error.clone());
            assert_eq!(api.code.s3_code(), error.code(), "{error:?}");
            assert_eq!(api.status().as_u16(), error.status(), "{error:?}");
        }
    }

    /// SSE-KMS failures carry the KMS exception name with S3's `KMS.`
    /// prefix (KMSInternalException for the ones SSE does not expect).
    #[test]
    fn kms_errors_are_prefixed_kms_exceptions() {
        let cases = [
            (KmsError::NotFound("k".into()), 400),
            (KmsError::Disabled("k".into()), 403),
            (
                KmsError::InvalidState {
                    key: "k".into(),
                    state: "PendingDeletion",
                },
                403,
            ),
            (KmsError::InvalidCiphertext, 403),
            (KmsError::IncorrectKey, 403),
            (KmsError::Validation("v".into()), 400),
            (KmsError::Internal("i".into()), 500),
            (KmsError::AlreadyExists("a".into()), 403),
            (KmsError::InvalidImportToken, 403),
            (KmsError::IncorrectKeyMaterial, 403),
            (KmsError::ExpiredImportToken, 403),
        ];
        let expected_type = |error: &KmsError| match error.aws_type() {
            t @ ("NotFoundException"
            | "DisabledException"
            | "KMSInvalidStateException"
            | "InvalidCiphertextException"
            | "IncorrectKeyException"
            | "ValidationException") => format!("KMS.{t}"),
            _ => "KMS.KMSInternalException".to_owned(),
        };
        for (error, status) in cases {
            let want = expected_type(&error);
            let api = ApiError::from(error);
            assert_eq!(api.code.s3_code(), want);
            assert_eq!(api.code.oss_code(), want);
            assert_eq!(api.status().as_u16(), status, "{want}");
        }
    }

    #[test]
    fn dialects_differ_only_where_oss_documents_it() {
        assert_eq!(ErrorCode::BadDigest.oss_code(), "InvalidDigest");
        assert_eq!(ErrorCode::KeyTooLongError.s3_code(), "KeyTooLongError");
        assert_eq!(ErrorCode::KeyTooLongError.oss_code(), "InvalidObjectName");
        assert_eq!(ErrorCode::NoSuchKey.oss_code(), "NoSuchKey");
        assert_eq!(ApiError::no_such_key().oss_ec(), "0026-00000001");
        assert_eq!(ApiError::no_such_bucket().oss_ec(), "0015-00000101");
        assert_eq!(
            ApiError::invalid_argument("x")
                .with_ec("0005-00000003")
                .oss_ec(),
            "0005-00000003"
        );
        assert_eq!(ApiError::invalid_argument("x").oss_ec(), "0000-00000000");
        assert_eq!(
            ErrorCode::MissingContentLength.status(),
            StatusCode::LENGTH_REQUIRED
        );
    }
}
