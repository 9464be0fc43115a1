//! The one error type of the API edge, and the only place that knows S3
//! and OSS error codes and statuses. Every layer below speaks its own domain
//! errors; they are converted here.

use coffer_auth::AuthError;
use coffer_auth::ChunkError;
use coffer_kms::kms::KmsError;
use coffer_store::{Backend, StoreError};
use http::StatusCode;

/// Seconds a `ServiceUnavailable` answer asks the client to wait (`Retry-After`): long
/// enough for a restarting database or a pool to recover, short enough that an SDK's own
/// backoff, which starts lower, stays in charge.
pub const RETRY_AFTER_SECONDS: u32 = 2;

/// Every error code Coffer answers with. Each knows its S3 name, its HTTP
/// status and, when OSS documents a single one for it, its OSS `EC`. The
/// OSS name, where it differs, is chosen when the error is rendered
/// ([`ErrorCode::oss_code`]): handlers never ask which dialect they speak
/// to pick a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    // Authentication and authorization.
    /// The caller may not do this: not the owner, a policy denies it, or an admin call by a non-admin.
    AccessDenied,
    /// The `Authorization` header cannot be parsed (scheme, credential scope, fields).
    AuthorizationHeaderMalformed,
    /// A presigned URL's query parameters are missing or malformed.
    AuthorizationQueryParametersError,
    /// No user has the access key the request is signed with.
    InvalidAccessKeyId,
    /// A header the request needs is absent.
    MissingSecurityHeader,
    /// The signed request time is too far from the server's clock (or a presigned URL is not
    /// valid yet).
    RequestTimeTooSkewed,
    /// The signature (of the request, or of an aws-chunked chunk) is not the one the secret key gives.
    SignatureDoesNotMatch,

    // Cross-origin requests and browser form uploads.
    /// A CORS preflight the bucket's rules do not allow (or a bucket without rules).
    AccessForbidden,
    /// A CORS preflight without `Origin` or `Access-Control-Request-Method`.
    BadRequest,
    /// The bucket has no CORS rules to get.
    NoSuchCORSConfiguration,
    /// A POST form's policy document is not valid base64 JSON of the documented shape.
    InvalidPolicyDocument,
    /// A POST body that is not well-formed `multipart/form-data`.
    MalformedPOSTRequest,

    // The request itself.
    /// A header or query parameter has a value the operation refuses.
    InvalidArgument,
    /// The request as a whole is not one the operation accepts (conflicting or unsupported options, a malformed chunked body).
    InvalidRequest,
    /// The XML body is not well-formed or not the expected document.
    MalformedXML,
    /// An `AccessControlPolicy` document that is not one S3 accepts (a grantee or permission
    /// it does not know).
    MalformedACLError,
    /// A bucket policy document that cannot be parsed or is not supported.
    MalformedPolicy,
    /// A request body (XML, JSON) longer than the operation reads.
    MaxMessageLengthExceeded,
    /// The HTTP method is not one this resource answers.
    MethodNotAllowed,
    /// A feature of S3 or OSS that Coffer does not implement.
    NotImplemented,
    /// CreateBucket asked for a region other than the server's.
    IllegalLocationConstraintException,

    // The request body.
    /// The body does not match its `Content-MD5` or declared checksum.
    BadDigest,
    /// A `Content-MD5` or checksum header that is not a valid digest.
    InvalidDigest,
    /// The body does not match its signed `x-amz-content-sha256`.
    XAmzContentSHA256Mismatch,
    /// The body ended before its declared length.
    IncompleteBody,
    /// A body sent without `Content-Length` where one is required.
    MissingContentLength,
    /// The body stalled for longer than the server waits.
    RequestTimeout,
    /// A body, part or object larger than the maximum.
    EntityTooLarge,
    /// A part other than the last is below the minimum part size.
    EntityTooSmall,

    // Buckets.
    /// The bucket does not exist.
    NoSuchBucket,
    /// The bucket name breaks the naming rules.
    InvalidBucketName,
    /// Another user owns a bucket of that name.
    BucketAlreadyExists,
    /// The caller already owns a bucket of that name.
    BucketAlreadyOwnedByYou,
    /// DeleteBucket on a bucket that still holds objects or uploads.
    BucketNotEmpty,
    /// The bucket has no policy to get or delete.
    NoSuchBucketPolicy,
    /// The bucket has no public access block to get.
    NoSuchPublicAccessBlockConfiguration,
    /// S3: the bucket has no default-encryption configuration.
    ServerSideEncryptionConfigurationNotFoundError,
    /// OSS: the bucket has no default-encryption rule.
    NoSuchServerSideEncryptionRule,

    // Bucket configuration for data protection.
    /// The bucket has no lifecycle configuration (OSS: NoSuchLifecycle).
    NoSuchLifecycleConfiguration,
    /// S3: the bucket has no tag set.
    NoSuchTagSet,
    /// S3: the bucket has no object ownership setting.
    OwnershipControlsNotFoundError,
    /// An ACL other than the owner's own on a bucket whose ACLs are off (BucketOwnerEnforced).
    AccessControlListNotSupported,
    /// CreateBucket or PutBucketOwnershipControls would have ACLs off while the bucket's ACL
    /// grants others access.
    InvalidBucketAclWithObjectOwnership,
    /// An ACL grant by e-mail address: Coffer users have none.
    UnresolvableGrantByEmailAddress,
    /// A tag breaks the limits: count, key or value length, a duplicate key, a reserved prefix.
    InvalidTag,
    /// S3: the bucket has no object-lock configuration.
    ObjectLockConfigurationNotFoundError,
    /// The bucket's state does not allow the request (object lock without versioning).
    InvalidBucketState,
    /// OSS: the bucket has no WORM retention policy (or none with that id).
    NoSuchWORMConfiguration,
    /// OSS: the WORM retention policy is locked and cannot be removed or changed so.
    WORMConfigurationLocked,
    /// OSS: the WORM request is not valid for the policy (period out of range, wrong state).
    InvalidWORMConfiguration,
    /// S3: the object version has no retention (or legal hold) to get.
    NoSuchObjectLockConfiguration,
    /// The bucket's WORM retention policy protects the object from being overwritten or
    /// deleted yet (OSS `FileImmutable`, 409; the S3 dialect answers the same).
    FileImmutable,

    // Objects and multipart uploads.
    /// No object under that key.
    NoSuchKey,
    /// No version of that id under that key.
    NoSuchVersion,
    /// The object key is longer than the maximum.
    KeyTooLongError,
    /// The user metadata headers exceed the size limit.
    MetadataTooLarge,
    /// A `Range` that no byte of the object satisfies.
    InvalidRange,
    /// A `partNumber` the object does not have.
    InvalidPartNumber,
    /// A conditional header (`If-Match`, `If-Unmodified-Since`, or a copy source's conditions)
    /// did not hold.
    PreconditionFailed,
    /// A conditional write whose condition held when it began lost to another write of the
    /// key before it committed: retry.
    ConditionalRequestConflict,
    /// An OSS write with `x-oss-forbid-overwrite: true` to a key that exists (409; OSS only).
    FileAlreadyExists,
    /// No upload of that id: never created, or already completed or aborted.
    NoSuchUpload,
    /// CompleteMultipartUpload names a part that was not uploaded, or with another ETag.
    InvalidPart,
    /// CompleteMultipartUpload lists its parts out of ascending order.
    InvalidPartOrder,

    // Server-side encryption and the KMS behind it.
    /// An SSE header names an algorithm Coffer does not offer.
    InvalidEncryptionAlgorithmError,
    /// Stored data or metadata failed authentication; never served, reported without detail.
    IntegrityCheckFailed,
    /// The KMS key named for SSE-KMS does not exist.
    KmsNotFound,
    /// The KMS key is disabled.
    KmsDisabled,
    /// The KMS key is in a state that refuses this use (for example pending deletion).
    KmsInvalidState,
    /// The KMS could not decrypt the object's wrapped data key.
    KmsInvalidCiphertext,
    /// The data key was wrapped under another KMS key than the one named.
    KmsIncorrectKey,
    /// The KMS refused the request's parameters.
    KmsValidation,
    /// The KMS failed internally.
    KmsInternal,
    /// A KMS failure SSE does not expect (alias or key-import errors):
    /// reported as `KMS.KMSInternalException`, but with 403.
    KmsUnexpected,

    // The admin API.
    /// Admin API: no user of that name.
    NoSuchUser,
    /// Admin API: a user of that name or access key exists.
    UserAlreadyExists,
    /// Admin API: the user has no policy attached.
    NoSuchUserPolicy,
    /// Admin API: no endpoint at that path.
    NoSuchAdminEndpoint,
    /// Admin API: a background pass asked for is running elsewhere (another gateway holds its
    /// lease) and did not end within the wait: 409, try again.
    PassInProgress,

    /// A failure of the server itself; the detail goes to the log, not the client.
    InternalError,
    /// A backend the gateway depends on (the metadata store, the blob store) cannot be
    /// reached for now: 503 with `Retry-After`, which the SDKs retry. The same code in the OSS
    /// dialect.
    ServiceUnavailable,
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
            AccessForbidden => "AccessForbidden",
            BadRequest => "BadRequest",
            NoSuchCORSConfiguration => "NoSuchCORSConfiguration",
            InvalidPolicyDocument => "InvalidPolicyDocument",
            MalformedPOSTRequest => "MalformedPOSTRequest",
            InvalidArgument => "InvalidArgument",
            InvalidRequest => "InvalidRequest",
            MalformedXML => "MalformedXML",
            MalformedACLError => "MalformedACLError",
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
            NoSuchVersion => "NoSuchVersion",
            InvalidBucketName => "InvalidBucketName",
            BucketAlreadyExists => "BucketAlreadyExists",
            BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            BucketNotEmpty => "BucketNotEmpty",
            NoSuchBucketPolicy => "NoSuchBucketPolicy",
            NoSuchPublicAccessBlockConfiguration => "NoSuchPublicAccessBlockConfiguration",
            ServerSideEncryptionConfigurationNotFoundError => {
                "ServerSideEncryptionConfigurationNotFoundError"
            }
            NoSuchServerSideEncryptionRule => "NoSuchServerSideEncryptionRule",
            NoSuchLifecycleConfiguration => "NoSuchLifecycleConfiguration",
            NoSuchTagSet => "NoSuchTagSet",
            OwnershipControlsNotFoundError => "OwnershipControlsNotFoundError",
            AccessControlListNotSupported => "AccessControlListNotSupported",
            InvalidBucketAclWithObjectOwnership => "InvalidBucketAclWithObjectOwnership",
            UnresolvableGrantByEmailAddress => "UnresolvableGrantByEmailAddress",
            InvalidTag => "InvalidTag",
            ObjectLockConfigurationNotFoundError => "ObjectLockConfigurationNotFoundError",
            InvalidBucketState => "InvalidBucketState",
            NoSuchWORMConfiguration => "NoSuchWORMConfiguration",
            WORMConfigurationLocked => "WORMConfigurationLocked",
            InvalidWORMConfiguration => "InvalidWORMConfiguration",
            NoSuchObjectLockConfiguration => "NoSuchObjectLockConfiguration",
            FileImmutable => "FileImmutable",
            NoSuchKey => "NoSuchKey",
            KeyTooLongError => "KeyTooLongError",
            MetadataTooLarge => "MetadataTooLarge",
            InvalidRange => "InvalidRange",
            InvalidPartNumber => "InvalidPartNumber",
            PreconditionFailed => "PreconditionFailed",
            ConditionalRequestConflict => "ConditionalRequestConflict",
            FileAlreadyExists => "FileAlreadyExists",
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
            NoSuchUserPolicy => "NoSuchUserPolicy",
            PassInProgress => "PassInProgress",
            InternalError => "InternalError",
            ServiceUnavailable => "ServiceUnavailable",
        }
    }

    /// The code OSS uses for the same failure. The two differ for a few:
    /// OSS says InvalidDigest for any digest mismatch, InvalidObjectName
    /// for a key that is too long, NoSuchLifecycle for a bucket without
    /// lifecycle rules, and InvalidArgument for a malformed
    /// `Authorization` header or presigned query and a missing required
    /// header; the rest are shared.
    pub fn oss_code(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BadDigest | XAmzContentSHA256Mismatch => "InvalidDigest",
            KeyTooLongError => "InvalidObjectName",
            NoSuchLifecycleConfiguration => "NoSuchLifecycle",
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
            | AccessForbidden
            | InvalidAccessKeyId
            | RequestTimeTooSkewed
            | SignatureDoesNotMatch
            | KmsDisabled
            | KmsInvalidState
            | KmsInvalidCiphertext
            | KmsIncorrectKey
            | KmsUnexpected => StatusCode::FORBIDDEN,
            NoSuchBucket
            | NoSuchCORSConfiguration
            | NoSuchBucketPolicy
            | NoSuchPublicAccessBlockConfiguration
            | ServerSideEncryptionConfigurationNotFoundError
            | NoSuchServerSideEncryptionRule
            | NoSuchLifecycleConfiguration
            | NoSuchTagSet
            | OwnershipControlsNotFoundError
            | ObjectLockConfigurationNotFoundError
            | NoSuchObjectLockConfiguration
            | NoSuchWORMConfiguration
            | NoSuchKey
            | NoSuchVersion
            | NoSuchUpload
            | NoSuchUser
            | NoSuchAdminEndpoint
            | NoSuchUserPolicy => StatusCode::NOT_FOUND,
            BucketAlreadyExists
            | BucketAlreadyOwnedByYou
            | BucketNotEmpty
            | UserAlreadyExists
            | InvalidBucketState
            | ConditionalRequestConflict
            | FileAlreadyExists
            | FileImmutable
            | PassInProgress => StatusCode::CONFLICT,
            WORMConfigurationLocked => StatusCode::FORBIDDEN,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            MissingContentLength => StatusCode::LENGTH_REQUIRED,
            PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            InvalidRange | InvalidPartNumber => StatusCode::RANGE_NOT_SATISFIABLE,
            NotImplemented => StatusCode::NOT_IMPLEMENTED,
            IntegrityCheckFailed | KmsInternal | InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            AuthorizationHeaderMalformed
            | AuthorizationQueryParametersError
            | MissingSecurityHeader
            | InvalidArgument
            | BadRequest
            | InvalidPolicyDocument
            | MalformedPOSTRequest
            | InvalidRequest
            | MalformedXML
            | MalformedACLError
            | AccessControlListNotSupported
            | InvalidBucketAclWithObjectOwnership
            | UnresolvableGrantByEmailAddress
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
            | InvalidTag
            | InvalidWORMConfiguration
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
            ErrorCode::EntityTooSmall => Some("0042-00000213"),
            ErrorCode::FileImmutable => Some("0026-00000005"),
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
    /// What failed, as the client is told: code and status.
    pub code: ErrorCode,
    /// The `Message` of the error document, for humans.
    pub message: String,
    /// OSS's fine-grained code for this failure, when it is not the one
    /// its code always has ([`ErrorCode::oss_ec`]).
    pub ec: Option<&'static str>,
    /// Headers the error response carries besides the document (a delete
    /// marker's `x-amz-delete-marker` and `x-amz-version-id`, …).
    pub headers: Vec<(String, String)>,
}

/// What every handler returns.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with `code` and `message`, and no site-specific OSS `EC`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            ec: None,
            headers: Vec::new(),
        }
    }

    /// The same error with one more response header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
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

    /// `NoSuchBucket`, with S3's message.
    pub fn no_such_bucket() -> Self {
        Self::new(
            ErrorCode::NoSuchBucket,
            "The specified bucket does not exist",
        )
    }
    /// `NoSuchKey`, with S3's message.
    pub fn no_such_key() -> Self {
        Self::new(ErrorCode::NoSuchKey, "The specified key does not exist.")
    }
    /// `NoSuchUpload`, with S3's message.
    pub fn no_such_upload() -> Self {
        Self::new(
            ErrorCode::NoSuchUpload,
            "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
    }
    /// `AccessDenied`, saying why.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AccessDenied, message)
    }
    /// `InvalidArgument`, naming the argument.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }
    /// `InvalidRequest`, saying what is wrong.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }
    /// `MalformedXML`, with S3's message.
    pub fn malformed_xml() -> Self {
        Self::new(
            ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema.",
        )
    }
    /// `BadDigest`, naming the digest that did not match.
    pub fn bad_digest(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadDigest, message)
    }
    /// `NotImplemented`: `what` is a feature Coffer does not offer.
    pub fn not_implemented(what: &str) -> Self {
        Self::new(
            ErrorCode::NotImplemented,
            format!("{what} is not implemented by Coffer"),
        )
    }
    /// `MethodNotAllowed`, with S3's message.
    pub fn method_not_allowed() -> Self {
        Self::new(
            ErrorCode::MethodNotAllowed,
            "The specified method is not allowed against this resource.",
        )
    }
    /// `InternalError`: `context` and `error` are logged, the client gets only a generic
    /// message.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error: {context}");
        Self::new(
            ErrorCode::InternalError,
            "We encountered an internal error. Please try again.",
        )
    }
    /// `ServiceUnavailable` (503): `backend` cannot be reached for now. The message names
    /// which backend and nothing more (no host, URL or credential: those go to the log, from
    /// the store error); `Retry-After` asks the client to wait [`RETRY_AFTER_SECONDS`].
    pub fn unavailable(backend: Backend) -> Self {
        Self::new(
            ErrorCode::ServiceUnavailable,
            format!("The {backend} is unavailable. Please retry later."),
        )
        .with_header("Retry-After", RETRY_AFTER_SECONDS.to_string())
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
        crate::metrics::integrity_failure();
        Self::new(
            ErrorCode::IntegrityCheckFailed,
            "The object's stored data failed its integrity check and is not served.",
        )
    }
    /// `IncompleteBody`: fewer bytes than `Content-Length` arrived.
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
            StoreError::NoSuchVersion => ApiError::new(
                ErrorCode::NoSuchVersion,
                "The specified version does not exist.",
            ),
            StoreError::DeleteMarker => ApiError::method_not_allowed(),
            StoreError::PreconditionFailed => ApiError::new(
                ErrorCode::PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold",
            ),
            StoreError::ObjectLocked => {
                ApiError::access_denied("Access Denied because object protected by object lock.")
            }
            StoreError::InvalidArgument(message) => ApiError::invalid_argument(message),
            StoreError::InvalidPart => ApiError::new(
                ErrorCode::InvalidPart,
                "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
            ),
            StoreError::Unavailable { backend, source } => {
                tracing::warn!(error = %source, "{backend} unavailable");
                ApiError::unavailable(backend)
            }
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

    /// A backend out of reach is 503 ServiceUnavailable in both dialects, with `Retry-After`,
    /// naming the backend and nothing of the error underneath (which may name hosts).
    #[test]
    fn an_unavailable_backend_is_503_with_retry_after() {
        for (backend, named) in [
            (Backend::Metadata, "metadata store"),
            (Backend::Blobs, "blob store"),
        ] {
            let store = StoreError::unavailable(
                backend,
                std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "postgres://user:secret@db.internal:5432/coffer refused",
                ),
            );
            let api = ApiError::from(store);
            assert_eq!(api.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(api.code.s3_code(), "ServiceUnavailable");
            assert_eq!(api.code.oss_code(), "ServiceUnavailable");
            assert!(api.message.contains(named), "{}", api.message);
            assert!(!api.message.contains("secret") && !api.message.contains("db.internal"));
            assert_eq!(
                api.headers,
                vec![("Retry-After".to_owned(), RETRY_AFTER_SECONDS.to_string())]
            );
        }
        // Other store failures stay 500 InternalError, without Retry-After.
        let api = ApiError::from(StoreError::Io(std::io::Error::other("disk")));
        assert_eq!(api.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(api.headers.is_empty());
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

    /// The data-protection bucket configuration codes: S3 and OSS names and statuses.
    #[test]
    fn bucket_protection_codes() {
        use ErrorCode::*;
        let table = [
            (
                NoSuchLifecycleConfiguration,
                "NoSuchLifecycleConfiguration",
                "NoSuchLifecycle",
                404,
            ),
            (NoSuchTagSet, "NoSuchTagSet", "NoSuchTagSet", 404),
            (InvalidTag, "InvalidTag", "InvalidTag", 400),
            (
                ObjectLockConfigurationNotFoundError,
                "ObjectLockConfigurationNotFoundError",
                "ObjectLockConfigurationNotFoundError",
                404,
            ),
            (
                InvalidBucketState,
                "InvalidBucketState",
                "InvalidBucketState",
                409,
            ),
            (
                NoSuchWORMConfiguration,
                "NoSuchWORMConfiguration",
                "NoSuchWORMConfiguration",
                404,
            ),
            (
                WORMConfigurationLocked,
                "WORMConfigurationLocked",
                "WORMConfigurationLocked",
                403,
            ),
            (
                InvalidWORMConfiguration,
                "InvalidWORMConfiguration",
                "InvalidWORMConfiguration",
                400,
            ),
        ];
        for (code, s3, oss, status) in table {
            assert_eq!((code.s3_code(), code.oss_code()), (s3, oss));
            assert_eq!(code.status().as_u16(), status, "{s3}");
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
