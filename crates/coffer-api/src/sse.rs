//! Server-side encryption at the API edge: which protection a request asks
//! for (its headers, else the bucket's default), the data key a new object
//! is sealed with, and the key that opens an existing one.
//!
//! Every route (PUT, multipart, copies, GET, HEAD) goes through here and
//! through [`crate::object_io`], so there is one sealing path and one
//! opening path (DESIGN.md §1.5). Modes:
//!
//! - service keys (`AES256`, and OSS's `SM4`): a fresh data key per object,
//!   wrapped by the current version of the service master key, bound to the
//!   bucket, key and object id;
//! - SSE-C: the customer's key is the data key; it is never stored, and the
//!   envelope's key commitment rejects a wrong one before any chunk is opened;
//! - SSE-KMS: refused with a clear error until the embedded KMS lands, never
//!   stored in plaintext instead.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use coffer_crypto::SymmetricKey;
use coffer_crypto::sealed::{
    Algorithm, Envelope, KeyReference, ObjectId, PartLayout, PartOpener, PartSealer, WrapKind,
};
use coffer_store::BucketRecord;
use http::StatusCode;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::request::{ApiRequest, Dialect};
use crate::state::AppState;

/// The bucket config key under which the default encryption is kept.
pub const BUCKET_CONFIG_KEY: &str = "encryption";
/// The key id recorded for data keys wrapped by the service master key.
const SERVICE_KEY_ID: &str = "coffer-service-master-key";

/// The protection a write asks for.
#[derive(Debug)]
pub enum SseChoice {
    None,
    Service(Algorithm),
    Customer(CustomerKey),
    Kms,
}

/// An SSE-C key from the request headers, checked against its MD5.
pub struct CustomerKey {
    key: SymmetricKey,
    md5_base64: String,
}

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomerKey(<redacted>)")
    }
}

/// A bucket's default encryption (`?encryption`), in a dialect-neutral form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketDefault {
    /// `AES256`, `SM4` or `KMS`.
    pub algorithm: String,
    #[serde(default)]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub kms_data_encryption: Option<String>,
    #[serde(default)]
    pub bucket_key_enabled: bool,
}

impl BucketDefault {
    pub fn of(bucket: &BucketRecord) -> Option<BucketDefault> {
        bucket
            .config
            .get(BUCKET_CONFIG_KEY)
            .and_then(|json| serde_json::from_str(json).ok())
    }
}

fn unsupported(dialect: Dialect, value: &str) -> ApiError {
    let message = format!("The encryption method {value:?} is not supported.");
    match dialect {
        Dialect::S3 => ApiError::invalid_argument(message),
        Dialect::Oss => ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidEncryptionAlgorithmError",
            message,
        ),
    }
}

/// Reads the SSE-C headers (`…-customer-algorithm`, `-key`, `-key-MD5`,
/// or their `x-amz-copy-source-` variants for a copy's source).
pub fn customer_key(req: &ApiRequest, copy_source: bool) -> ApiResult<Option<CustomerKey>> {
    let prefix = if copy_source {
        "x-amz-copy-source-server-side-encryption-customer-"
    } else {
        "x-amz-server-side-encryption-customer-"
    };
    let get = |suffix: &str| req.header(&format!("{prefix}{suffix}"));
    let (algorithm, key, md5) = (get("algorithm"), get("key"), get("key-md5"));
    if algorithm.is_none() && key.is_none() && md5.is_none() {
        return Ok(None);
    }
    let invalid = |m: &str| ApiError::invalid_argument(m.to_owned());
    if algorithm != Some("AES256") {
        return Err(invalid(
            "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm (AES256).",
        ));
    }
    let key = key
        .and_then(|k| BASE64.decode(k.trim()).ok())
        .and_then(|bytes| SymmetricKey::from_slice(&bytes).ok())
        .ok_or_else(|| {
            invalid("The secret key was invalid for the specified algorithm: it must be 256 bits, base64-encoded.")
        })?;
    let md5_base64 = BASE64.encode(Md5::digest(key.expose()));
    if md5.map(str::trim) != Some(md5_base64.as_str()) {
        return Err(invalid(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
        ));
    }
    Ok(Some(CustomerKey { key, md5_base64 }))
}

/// The protection the request asks for: its SSE headers, else the bucket's
/// default encryption, else none. Bad values are errors, never ignored.
pub fn requested(req: &ApiRequest, bucket: &BucketRecord) -> ApiResult<SseChoice> {
    let customer = customer_key(req, false)?;
    let header = req.vendor_header("server-side-encryption");
    if let Some(customer) = customer {
        if header.is_some() {
            return Err(ApiError::invalid_argument(
                "Server Side Encryption with Customer provided keys cannot be combined with another server-side encryption.",
            ));
        }
        return Ok(SseChoice::Customer(customer));
    }
    match header {
        Some(value) => parse_algorithm(
            req.dialect,
            value.trim(),
            req.vendor_header("server-side-data-encryption"),
        ),
        None => match BucketDefault::of(bucket) {
            Some(default) => parse_algorithm(
                req.dialect,
                &default.algorithm,
                default.kms_data_encryption.as_deref(),
            ),
            None => Ok(SseChoice::None),
        },
    }
}

fn parse_algorithm(
    dialect: Dialect,
    value: &str,
    data_encryption: Option<&str>,
) -> ApiResult<SseChoice> {
    match value {
        "AES256" => Ok(SseChoice::Service(Algorithm::Aes256Gcm)),
        "SM4" => Ok(SseChoice::Service(Algorithm::Sm4Gcm)),
        "KMS" | "aws:kms" | "aws:kms:dsse" => {
            if let Some(data) = data_encryption.filter(|d| *d != "SM4") {
                return Err(unsupported(dialect, data));
            }
            Ok(SseChoice::Kms)
        }
        other => Err(unsupported(dialect, other)),
    }
}

/// Everything needed to seal the parts of one new object.
pub struct Sealing {
    pub algorithm: Algorithm,
    dek: SymmetricKey,
    pub object_id: ObjectId,
    key: KeyReference,
    /// The SSE-C key's MD5, echoed in responses.
    customer_md5: Option<String>,
}

impl Sealing {
    pub fn sealer(&self, part_number: u32) -> PartSealer {
        PartSealer::new(self.algorithm, &self.dek, &self.object_id, part_number)
    }

    /// The envelope recording this sealing and the parts' plaintext sizes.
    pub fn envelope(&self, parts: Vec<PartLayout>) -> ApiResult<Vec<u8>> {
        Envelope {
            algorithm: self.algorithm,
            object_id: self.object_id,
            commitment: coffer_crypto::sealed::commitment(&self.dek, &self.object_id),
            key: self.key.clone(),
            parts,
        }
        .encode()
        .map_err(|e| ApiError::internal("encoding an envelope", e))
    }

    /// The envelope of a multipart upload before its parts are known: one
    /// placeholder part, replaced by the real layout at completion.
    pub fn upload_envelope(&self) -> ApiResult<Vec<u8>> {
        self.envelope(vec![PartLayout {
            part_number: 1,
            plain_size: 0,
        }])
    }

    pub fn headers(&self, dialect: Dialect) -> Vec<(String, String)> {
        describe(
            dialect,
            self.algorithm,
            self.key.kind,
            self.customer_md5.as_deref(),
        )
    }
}

/// The context a data key is wrapped under: it binds the wrapped key to its
/// bucket, key and object id, so a wrapped key moved elsewhere does not open.
fn wrap_context(bucket: &str, key: &str, object_id: &ObjectId) -> String {
    format!("object-dek:{}:{bucket}/{key}", hex::encode(object_id.0))
}

fn crypto_failure(context: &str) -> impl Fn(coffer_crypto::CryptoError) -> ApiError + '_ {
    move |e| ApiError::internal(context, e)
}

fn sse_c_over_http_refused(state: &AppState) -> ApiResult<()> {
    if state.settings.allow_insecure_sse_c {
        Ok(())
    } else {
        Err(ApiError::invalid_request(
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection (start the server with --allow-insecure-sse-c for tests only).",
        ))
    }
}

/// The sealing for a new object (PutObject, CopyObject target, a new
/// multipart upload), or `None` when it is stored in plaintext.
pub fn seal_new(
    state: &AppState,
    choice: SseChoice,
    bucket: &str,
    key: &str,
) -> ApiResult<Option<Sealing>> {
    let object_id = ObjectId::random().map_err(crypto_failure("object id"))?;
    match choice {
        SseChoice::None => Ok(None),
        SseChoice::Kms => Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "SSE-KMS needs Coffer's embedded KMS, which this server does not have yet; nothing was stored.",
        )),
        SseChoice::Customer(customer) => {
            sse_c_over_http_refused(state)?;
            Ok(Some(Sealing {
                algorithm: Algorithm::Aes256Gcm,
                key: KeyReference {
                    kind: WrapKind::CustomerKey,
                    key_id: String::new(),
                    key_version: 0,
                    wrapped_key: customer_fingerprint(&customer.key, &object_id),
                },
                dek: customer.key,
                object_id,
                customer_md5: Some(customer.md5_base64),
            }))
        }
        SseChoice::Service(algorithm) => {
            let dek = SymmetricKey::generate().map_err(crypto_failure("data key"))?;
            let keyring = state
                .service_keys
                .read()
                .map_err(|_| ApiError::internal("service keyring", "lock poisoned"))?;
            let (version, master) = keyring.current();
            let wrapped_key = coffer_crypto::secret_box::seal(
                master,
                &wrap_context(bucket, key, &object_id),
                dek.expose(),
            )
            .map_err(crypto_failure("wrapping a data key"))?;
            Ok(Some(Sealing {
                algorithm,
                dek,
                object_id,
                key: KeyReference {
                    kind: WrapKind::ServiceKey,
                    key_id: SERVICE_KEY_ID.to_owned(),
                    key_version: version,
                    wrapped_key,
                },
                customer_md5: None,
            }))
        }
    }
}

fn customer_fingerprint(key: &SymmetricKey, object_id: &ObjectId) -> Vec<u8> {
    coffer_crypto::sealed::customer_fingerprint(key, object_id).to_vec()
}

/// An opened envelope: the object's layout and its data key.
pub struct Opening {
    pub envelope: Envelope,
    dek: SymmetricKey,
    customer_md5: Option<String>,
}

impl Opening {
    pub fn opener(&self, part_number: u32) -> PartOpener {
        PartOpener::new(
            self.envelope.algorithm,
            &self.dek,
            &self.envelope.object_id,
            part_number,
        )
    }

    pub fn headers(&self, dialect: Dialect) -> Vec<(String, String)> {
        describe(
            dialect,
            self.envelope.algorithm,
            self.envelope.key.kind,
            self.customer_md5.as_deref(),
        )
    }

    /// Continues sealing new parts of the same object (UploadPart).
    pub fn into_sealing(self) -> Sealing {
        Sealing {
            algorithm: self.envelope.algorithm,
            dek: self.dek,
            object_id: self.envelope.object_id,
            key: self.envelope.key,
            customer_md5: self.customer_md5,
        }
    }
}

/// The envelope re-wrapped under the current service master key version,
/// or `None` when it already is (or is not a service-key envelope). The
/// object's data key and body are unchanged.
pub fn rewrap(
    state: &AppState,
    envelope: &[u8],
    bucket: &str,
    key: &str,
) -> ApiResult<Option<Vec<u8>>> {
    let mut envelope = Envelope::decode(envelope).map_err(|_| integrity_error())?;
    if envelope.key.kind != WrapKind::ServiceKey {
        return Ok(None);
    }
    let keyring = state
        .service_keys
        .read()
        .map_err(|_| ApiError::internal("service keyring", "lock poisoned"))?;
    let (current, current_key) = keyring.current();
    if envelope.key.key_version == current {
        return Ok(None);
    }
    let context = wrap_context(bucket, key, &envelope.object_id);
    let old_key = keyring
        .version(envelope.key.key_version)
        .ok_or_else(integrity_error)?;
    let dek = coffer_crypto::secret_box::open(old_key, &context, &envelope.key.wrapped_key)
        .map_err(|_| integrity_error())?;
    envelope.key.wrapped_key = coffer_crypto::secret_box::seal(current_key, &context, &dek)
        .map_err(crypto_failure("wrapping a data key"))?;
    envelope.key.key_version = current;
    envelope
        .encode()
        .map(Some)
        .map_err(|e| ApiError::internal("encoding an envelope", e))
}

/// A multipart upload's envelope with its real part layout (number,
/// plaintext size), at completion. The data key is not needed.
pub fn with_parts(upload_envelope: &[u8], parts: &[(u32, u64)]) -> ApiResult<Vec<u8>> {
    let mut envelope = Envelope::decode(upload_envelope).map_err(|_| integrity_error())?;
    envelope.parts = parts
        .iter()
        .map(|&(part_number, plain_size)| PartLayout {
            part_number,
            plain_size,
        })
        .collect();
    envelope
        .encode()
        .map_err(|e| ApiError::internal("encoding an envelope", e))
}

/// The error for stored data or metadata that fails authentication: never
/// served, and reported without detail.
pub fn integrity_error() -> ApiError {
    tracing::error!("an object failed its integrity check");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "IntegrityCheckFailed",
        "The object's stored data failed its integrity check and is not served.",
    )
}

/// Opens the envelope of an object (or upload) at `bucket`/`key`: unwraps
/// its data key with the service key, or takes the SSE-C key from the
/// request (`copy_source`: from the copy-source headers), and checks it
/// against the key commitment before anything is opened.
pub fn open(
    state: &AppState,
    req: &ApiRequest,
    envelope: &[u8],
    bucket: &str,
    key: &str,
    copy_source: bool,
) -> ApiResult<Opening> {
    let envelope = Envelope::decode(envelope).map_err(|_| integrity_error())?;
    let (dek, customer_md5) = match envelope.key.kind {
        WrapKind::ServiceKey => {
            let keyring = state
                .service_keys
                .read()
                .map_err(|_| ApiError::internal("service keyring", "lock poisoned"))?;
            let master = keyring
                .version(envelope.key.key_version)
                .ok_or_else(integrity_error)?;
            let opened = coffer_crypto::secret_box::open(
                master,
                &wrap_context(bucket, key, &envelope.object_id),
                &envelope.key.wrapped_key,
            )
            .map_err(|_| integrity_error())?;
            let dek = SymmetricKey::from_slice(&opened).map_err(|_| integrity_error())?;
            envelope.verify_key(&dek).map_err(|_| integrity_error())?;
            (dek, None)
        }
        WrapKind::CustomerKey => {
            let customer = customer_key(req, copy_source)?.ok_or_else(|| {
                ApiError::invalid_request(
                    "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
                )
            })?;
            sse_c_over_http_refused(state)?;
            if envelope.verify_key(&customer.key).is_err()
                || customer_fingerprint(&customer.key, &envelope.object_id)
                    != envelope.key.wrapped_key
            {
                return Err(ApiError::access_denied(
                    "The provided customer key does not match the key the object was encrypted with.",
                ));
            }
            (customer.key, Some(customer.md5_base64))
        }
        WrapKind::Kms => {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                "This object is encrypted under a KMS key and this server has no KMS.",
            ));
        }
    };
    Ok(Opening {
        envelope,
        dek,
        customer_md5,
    })
}

/// The response headers that name an object's encryption, in `dialect`.
fn describe(
    dialect: Dialect,
    algorithm: Algorithm,
    kind: WrapKind,
    customer_md5: Option<&str>,
) -> Vec<(String, String)> {
    let name = match algorithm {
        Algorithm::Aes256Gcm => "AES256",
        Algorithm::Sm4Gcm => "SM4",
    };
    match kind {
        WrapKind::CustomerKey => vec![
            (
                "x-amz-server-side-encryption-customer-algorithm".to_owned(),
                "AES256".to_owned(),
            ),
            (
                "x-amz-server-side-encryption-customer-key-md5".to_owned(),
                customer_md5.unwrap_or_default().to_owned(),
            ),
        ],
        WrapKind::ServiceKey | WrapKind::Kms => {
            vec![(dialect.header("server-side-encryption"), name.to_owned())]
        }
    }
}
