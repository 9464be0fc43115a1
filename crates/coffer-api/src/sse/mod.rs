//! Server-side encryption at the API edge: the request's SSE headers (or
//! the bucket's default) become a [`Protection`](coffer_keying::Protection) (`request.rs`), the keying
//! layer (`coffer-keying`) turns it into a [`Sealing`] or an [`Opening`],
//! and its answers become response headers (`response.rs`) and S3/OSS
//! errors ([`keying_error`]). Every route (PUT, multipart, copies, GET,
//! HEAD, rewrap) goes through the wrappers here, so there is one sealing
//! path and one opening path (DESIGN.md §1.5).

mod key_access;
mod request;
mod response;

use coffer_keying::{Caller, KeyingError, ObjectName, Opening, Sealing};
use coffer_store::BucketRecord;

pub(crate) use request::parse_context;
pub use request::{
    BUCKET_CONFIG_KEY, BucketDefault, PLAINTEXT_OPT_OUT, customer_key, requested,
    stored_plaintext_protection,
};
pub use response::{ResponseHeaders, describe_stored};

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::ApiRequest;
use crate::state::AppState;

/// Who asks, and whether over TLS (the request's own connection).
fn caller(req: &ApiRequest) -> Caller<'_> {
    Caller {
        principal: req.principal.name(),
        over_tls: req.tls.is_some(),
    }
}

/// The sealing for a new object `key` in `bucket` (PutObject, CopyObject
/// target, a new multipart upload) as the request's SSE headers, else the
/// bucket's default, else the server's default ask; `None` only when the
/// bucket opted out of encryption at rest.
pub fn seal_new(
    state: &AppState,
    req: &ApiRequest,
    bucket: &BucketRecord,
    key: &str,
) -> ApiResult<Option<Sealing>> {
    let protection = requested(req, bucket, &state.settings.default_protection)?;
    key_access::check_sealing(state, req, &protection)?;
    let object = ObjectName {
        bucket: &bucket.name,
        key,
        stored: &[],
    };
    state
        .keys
        .seal_new(&caller(req), protection, object)
        .map_err(keying_error)
}

/// The sealing for an object already stored in plaintext under `key` in
/// `bucket`, to seal it in place (`coffer sse rewrap --seal-plaintext`):
/// see [`stored_plaintext_protection`]. Asked by `req`'s principal (root).
pub fn seal_existing(
    state: &AppState,
    req: &ApiRequest,
    bucket: &BucketRecord,
    key: &str,
) -> ApiResult<Sealing> {
    let protection = stored_plaintext_protection(bucket, &state.settings.default_protection);
    let object = ObjectName {
        bucket: &bucket.name,
        key,
        stored: &[],
    };
    state
        .keys
        .seal_new(&caller(req), protection, object)
        .map_err(keying_error)?
        .ok_or_else(|| ApiError::internal("sealing in place", "no sealing for a sealing mode"))
}

/// Whether a copy to `bucket` would protect the object differently from
/// its source's `envelope` (what a copy of an object onto itself must
/// change, among other things): plaintext to sealed, sealed to plaintext,
/// another mode or cipher. A copy that gets the service key with the
/// source's cipher changes nothing here (re-keying alone, as S3 sees it).
pub fn copy_changes_protection(
    state: &AppState,
    req: &ApiRequest,
    bucket: &BucketRecord,
    envelope: Option<&[u8]>,
) -> ApiResult<bool> {
    use coffer_crypto::sealed::{Envelope, WrapKind};
    use coffer_keying::Protection;
    let protection = requested(req, bucket, &state.settings.default_protection)?;
    let source = envelope.map(Envelope::decode);
    Ok(match (protection, source) {
        (Protection::None, None) => false,
        (Protection::Service(algorithm), Some(Ok(source))) => {
            source.key.kind != WrapKind::ServiceKey || source.algorithm != algorithm
        }
        _ => true,
    })
}

/// Opens the envelope of an object (or upload) with the request's SSE-C
/// key (`copy_source`: the copy-source one) if the object needs one.
pub fn open(
    state: &AppState,
    req: &ApiRequest,
    envelope: &[u8],
    object: ObjectName<'_>,
    copy_source: bool,
) -> ApiResult<Opening> {
    let customer = customer_key(req, copy_source)?;
    key_access::check_opening(state, req, envelope)?;
    state
        .keys
        .open(&caller(req), envelope, object, customer)
        .map_err(keying_error)
}

/// Opens an object's envelope if it has one. A plaintext object read with
/// SSE-C headers is refused (400), as S3 does: the key would not apply.
pub fn open_stored(
    state: &AppState,
    req: &ApiRequest,
    envelope: Option<&[u8]>,
    object: ObjectName<'_>,
    copy_source: bool,
) -> ApiResult<Option<Opening>> {
    let customer = customer_key(req, copy_source)?;
    if let Some(envelope) = envelope {
        key_access::check_opening(state, req, envelope)?;
    }
    state
        .keys
        .open_stored(&caller(req), envelope, object, customer)
        .map_err(keying_error)
}

/// A multipart upload's envelope with its real part layout (number,
/// plaintext size), at completion.
pub fn completed_envelope(
    state: &AppState,
    req: &ApiRequest,
    upload_envelope: &[u8],
    object: ObjectName<'_>,
    parts: &[(u32, u64)],
) -> ApiResult<Vec<u8>> {
    let customer = customer_key(req, false)?;
    key_access::check_opening(state, req, upload_envelope)?;
    state
        .keys
        .complete_upload(&caller(req), upload_envelope, object, customer, parts)
        .map_err(keying_error)
}

/// The envelope re-wrapped under the current service master key version,
/// or `None` when it already is (or is not a service-key envelope).
pub fn rewrap(
    state: &AppState,
    envelope: &[u8],
    bucket: &str,
    key: &str,
) -> ApiResult<Option<Vec<u8>>> {
    state
        .keys
        .rewrap(envelope, bucket, key)
        .map_err(keying_error)
}

impl From<KeyingError> for ApiError {
    fn from(error: KeyingError) -> Self {
        keying_error(error)
    }
}

/// The S3/OSS error of a keying failure.
pub fn keying_error(error: KeyingError) -> ApiError {
    match error {
        KeyingError::Kms(error) => ApiError::from(error),
        KeyingError::NoKms => ApiError::new(
            ErrorCode::NotImplemented,
            "This server runs without a KMS: SSE-KMS is unavailable and nothing was stored.",
        ),
        KeyingError::Integrity => ApiError::integrity_check_failed(),
        KeyingError::CustomerKeyRequired => ApiError::invalid_request(
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
        ),
        KeyingError::CustomerKeyNotApplicable => ApiError::invalid_request(
            "The encryption parameters are not applicable to this object: it is not encrypted with a customer-provided key.",
        ),
        KeyingError::CustomerKeyMismatch => ApiError::access_denied(
            "The provided customer key does not match the key the object was encrypted with.",
        ),
        KeyingError::CustomerKeyOverPlainHttp => ApiError::invalid_request(
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection: send them to the server's https:// endpoint (a server started with --tls-listen; see docs/tls.md). --allow-insecure-sse-c accepts them over plain HTTP, for tests only.",
        ),
        KeyingError::Internal { context, message } => ApiError::internal(context, message),
    }
}
