//! The parsers of client input that live in private modules, reachable for
//! the fuzz targets (`crates/coffer-fuzz`). Not an API: nothing else may
//! depend on it.

use coffer_kms::kms::EncryptionContext;

use crate::error::ApiResult;

pub use super::bucket_policy::validate as validate_bucket_policy;
pub use super::encryption::parse_rule as parse_bucket_encryption;
pub use super::get::{RangeRequest, parse_range};
pub use super::tls_policy::HttpsConfig;

/// The `x-amz-server-side-encryption-context` header's parser.
pub fn parse_encryption_context(encoded: &str) -> ApiResult<EncryptionContext> {
    crate::sse::parse_context(encoded)
}
