//! `GET protection/<bucket>/<key>[?versionId=…]`: how one object version is sealed, read from
//! its envelope without opening it (no key is unwrapped, so it answers even while the
//! object's KMS key is disabled): the format version, algorithm, wrap kind, key id and key
//! version, whether a bucket key wraps it, and its parts. HEAD's encryption headers name the
//! mode and the KMS key; the format and key versions are only here (the web console shows
//! them; `coffer inspect object` shows the same offline).

use coffer_crypto::sealed::{Envelope, WrapKind};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::ops::versioning::{read_version, requested_version};
use crate::request::{ApiRequest, path_decode};
use crate::state::AppState;

#[derive(Serialize)]
pub struct ObjectProtection {
    bucket: String,
    key: String,
    version_id: Option<String>,
    size: u64,
    /// `None` for a plaintext object (a bucket that opted out of encryption).
    envelope: Option<EnvelopeView>,
}

#[derive(Serialize)]
struct EnvelopeView {
    format_version: u8,
    algorithm: &'static str,
    wrap_kind: &'static str,
    /// Empty for SSE-C (the customer's key is never stored).
    key_id: String,
    key_version: u32,
    bucket_key: bool,
    parts: usize,
    plain_size: u64,
}

/// `object` is `<bucket>/<key>`, percent-encoded as in the request path.
pub async fn describe(
    state: &AppState,
    req: &ApiRequest,
    object: &str,
) -> ApiResult<ObjectProtection> {
    let Some((bucket, key)) = object
        .split_once('/')
        .filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty())
    else {
        return Err(ApiError::invalid_argument(
            "Expected /_coffer/admin/protection/<bucket>/<key>.",
        ));
    };
    let (bucket, key) = (path_decode(bucket)?, path_decode(key)?);
    let bucket_record = state.meta.get_bucket(&bucket).await?;
    let record = read_version(state, req, &bucket_record, &key, requested_version(req)?).await?;
    let envelope = match record.envelope.as_deref() {
        None => None,
        Some(bytes) => {
            let envelope = Envelope::decode(bytes)
                .map_err(|e| ApiError::internal("decoding a stored envelope", e))?;
            Some(EnvelopeView {
                format_version: envelope.version(),
                algorithm: envelope.algorithm.name(),
                wrap_kind: envelope.key.kind.name(),
                key_id: envelope.key.key_id.clone(),
                key_version: envelope.key.key_version,
                bucket_key: envelope.key.kind == WrapKind::KmsBucketKey,
                parts: envelope.parts.len(),
                plain_size: envelope.plain_size(),
            })
        }
    };
    Ok(ObjectProtection {
        bucket,
        key,
        version_id: record.version_id,
        size: record.size,
        envelope,
    })
}
