//! What a successful verification tells the server, for every scheme.

use crate::chunk_signer::ChunkSigner;
use crate::error::AuthError;
use crate::mac::constant_time_eq;
use crate::scheme::Scheme;

/// A request whose signature checked out (SigV4, OSS V1 or OSS V4).
#[derive(Debug)]
pub struct Verified {
    /// The access key id that signed the request.
    pub access_key: String,
    /// The region from the credential scope (not checked here). Empty when
    /// there is none: OSS V1 has no scope, and OSS V4 clients without a
    /// configured region sign with an empty one.
    pub region: String,
    /// How the body is protected; the caller must enforce it.
    pub payload: Payload,
    /// Whether the signature came from the query string (presigned URL).
    pub presigned: bool,
    /// The header names the signature covers, lower case: SigV4's
    /// `SignedHeaders` as listed by the client; for OSS, the headers that
    /// went into the string to sign.
    pub signed_headers: Vec<String>,
    /// The scheme that signed the request, and so the error dialect to
    /// answer in ([`Scheme::is_oss`]).
    pub scheme: Scheme,
}

impl Verified {
    /// The region of the credential scope, `None` if there is none.
    pub fn scope_region(&self) -> Option<&str> {
        (!self.region.is_empty()).then_some(self.region.as_str())
    }
}

/// How the request body is protected, from `x-amz-content-sha256` (SigV4)
/// or `x-oss-content-sha256` (OSS V4). OSS V1 never signs the body.
#[derive(Debug)]
pub enum Payload {
    /// `UNSIGNED-PAYLOAD` (and presigned URLs without the header, and OSS V1).
    Unsigned,
    /// A SHA-256 the body must hash to ([`Payload::check_sha256`]).
    Sha256([u8; 32]),
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: aws-chunked, every chunk signed.
    StreamingSigned(ChunkSigner),
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: signed chunks and trailer.
    StreamingSignedTrailer(ChunkSigner),
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: aws-chunked, unsigned trailer.
    StreamingUnsignedTrailer,
}

impl Payload {
    /// Checks the SHA-256 of the whole body against a signed hash, if any.
    pub fn check_sha256(&self, body_sha256: &[u8; 32]) -> Result<(), AuthError> {
        match self {
            Self::Sha256(expected) if !constant_time_eq(expected, body_sha256) => {
                Err(AuthError::ContentSha256Mismatch)
            }
            _ => Ok(()),
        }
    }

    /// Whether the body is aws-chunked encoded.
    pub fn is_streaming(&self) -> bool {
        matches!(
            self,
            Self::StreamingSigned(_)
                | Self::StreamingSignedTrailer(_)
                | Self::StreamingUnsignedTrailer
        )
    }
}
