//! Who signs a request, and the SigV4 credential scope and signing key
//! derived from it. Shared by the request signers, the verifiers and the
//! aws-chunked [`ChunkSigner`](crate::ChunkSigner), so none of them needs
//! another's module.

use time::OffsetDateTime;

use crate::secret::{Secret, SigningKey};

/// Who signs, for which region and service, and when.
#[derive(Debug, Clone, Copy)]
pub struct SigningParams<'a> {
    /// The access key id.
    pub access_key: &'a str,
    /// The secret access key.
    pub secret: &'a Secret,
    /// The region of the credential scope, e.g. `us-east-1`.
    pub region: &'a str,
    /// The service of the credential scope, e.g. `s3`.
    pub service: &'a str,
    /// The signing time.
    pub now: OffsetDateTime,
}

/// `date/region/service/aws4_request`.
pub(crate) fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub(crate) fn signing_key(secret: &Secret, date: &str, region: &str, service: &str) -> SigningKey {
    SigningKey::derive("AWS4", secret, date, region, service, "aws4_request")
}
