//! The authentication error, mapped to S3 and OSS error codes in one place.

/// Why a request failed authentication. Messages are safe to return to the
/// client: they never contain a secret, a derived key or a computed signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor presigned query parameters.
    /// The caller may treat the request as anonymous instead.
    #[error("The request carries no credentials")]
    Missing,
    /// The `Authorization` header could not be parsed or is inconsistent.
    #[error("The authorization header is malformed: {0}")]
    HeaderMalformed(String),
    /// The presigned query parameters could not be parsed or are inconsistent.
    #[error("Query-string authentication parameters are invalid: {0}")]
    QueryMalformed(String),
    /// A request argument (e.g. `x-amz-content-sha256`) has an invalid value.
    #[error("{0}")]
    InvalidArgument(String),
    /// A header the scheme requires is absent.
    #[error("Your request is missing a required header: {0}")]
    MissingSecurityHeader(&'static str),
    /// The access key id is not known.
    #[error("The access key ID you provided does not exist in our records.")]
    UnknownAccessKey,
    /// The signature (of the request, a chunk or the trailer) is wrong.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your key and signing method."
    )]
    SignatureMismatch,
    /// The request time is more than 15 minutes away from the server time.
    #[error("The difference between the request time and the current time is too large.")]
    TimeTooSkewed,
    /// A presigned URL whose validity starts more than 15 minutes from now.
    #[error("The request time is too far in the future.")]
    NotYetValid,
    /// A presigned URL past its `X-Amz-Expires`.
    #[error("Request has expired")]
    Expired,
    /// Authentication is refused for another reason (e.g. no date at all).
    #[error("{0}")]
    AccessDenied(&'static str),
    /// The body does not hash to the signed `x-amz-content-sha256`.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,
    /// A valid but unsupported scheme, e.g. ECDSA (SigV4a) streaming.
    #[error("{0}")]
    NotImplemented(&'static str),
}

impl AuthError {
    /// The S3 error code for the response body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing | Self::Expired | Self::AccessDenied(_) => "AccessDenied",
            Self::HeaderMalformed(_) => "AuthorizationHeaderMalformed",
            Self::QueryMalformed(_) => "AuthorizationQueryParametersError",
            Self::InvalidArgument(_) => "InvalidArgument",
            Self::MissingSecurityHeader(_) => "MissingSecurityHeader",
            Self::UnknownAccessKey => "InvalidAccessKeyId",
            Self::SignatureMismatch => "SignatureDoesNotMatch",
            Self::TimeTooSkewed | Self::NotYetValid => "RequestTimeTooSkewed",
            Self::ContentSha256Mismatch => "XAmzContentSHA256Mismatch",
            Self::NotImplemented(_) => "NotImplemented",
        }
    }

    /// The OSS error code for the response body, for requests in the OSS
    /// dialect ([`crate::Scheme::is_oss`]). The status is [`Self::status`].
    ///
    /// OSS answers a malformed `Authorization` header or presigned query, and
    /// a missing required header, with `InvalidArgument`; the rest match S3.
    /// `InvalidDigest` for a body that does not match `x-oss-content-sha256`
    /// is not verified against real OSS. No `EC` codes are given: the wire
    /// notes document none for authentication errors.
    pub fn oss_code(&self) -> &'static str {
        match self {
            Self::HeaderMalformed(_) | Self::QueryMalformed(_) | Self::MissingSecurityHeader(_) => {
                "InvalidArgument"
            }
            Self::ContentSha256Mismatch => "InvalidDigest",
            other => other.code(),
        }
    }

    /// The HTTP status code for the response.
    pub fn status(&self) -> u16 {
        match self {
            Self::HeaderMalformed(_)
            | Self::QueryMalformed(_)
            | Self::InvalidArgument(_)
            | Self::MissingSecurityHeader(_)
            | Self::ContentSha256Mismatch => 400,
            Self::NotImplemented(_) => 501,
            Self::Missing
            | Self::UnknownAccessKey
            | Self::SignatureMismatch
            | Self::TimeTooSkewed
            | Self::NotYetValid
            | Self::Expired
            | Self::AccessDenied(_) => 403,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        assert_eq!(AuthError::SignatureMismatch.code(), "SignatureDoesNotMatch");
        assert_eq!(AuthError::SignatureMismatch.status(), 403);
        assert_eq!(AuthError::Expired.code(), "AccessDenied");
        assert_eq!(AuthError::Expired.to_string(), "Request has expired");
        assert_eq!(AuthError::QueryMalformed(String::new()).status(), 400);
        assert_eq!(
            AuthError::ContentSha256Mismatch.code(),
            "XAmzContentSHA256Mismatch"
        );
        assert_eq!(AuthError::NotImplemented("x").status(), 501);
        assert_eq!(
            AuthError::HeaderMalformed(String::new()).oss_code(),
            "InvalidArgument"
        );
        assert_eq!(AuthError::Expired.oss_code(), "AccessDenied");
        assert_eq!(AuthError::UnknownAccessKey.oss_code(), "InvalidAccessKeyId");
        assert_eq!(AuthError::TimeTooSkewed.oss_code(), "RequestTimeTooSkewed");
        assert_eq!(
            AuthError::SignatureMismatch.oss_code(),
            "SignatureDoesNotMatch"
        );
    }
}
