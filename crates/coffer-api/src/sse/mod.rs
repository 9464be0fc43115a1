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
//! - SSE-KMS: a data key from the KMS under a customer master key (named,
//!   or the default `alias/aws/s3`), with the encryption context
//!   `{"aws:s3:arn": "arn:aws:s3:::<bucket>/<key>"}` plus the client's; with
//!   bucket keys, data keys are wrapped by a cached per-bucket key that the
//!   KMS wrapped, so small writes do not call the KMS each time. A disabled,
//!   pending or missing key fails the request: never plaintext.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use coffer_crypto::SymmetricKey;
use coffer_crypto::sealed::{
    Algorithm, Envelope, KeyReference, ObjectId, PartLayout, PartOpener, PartSealer, WrapKind,
};
use coffer_store::BucketRecord;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

mod bucket_keys;

pub use bucket_keys::BucketKeyCache;

use std::sync::Arc;

use coffer_kms::Kms;
use coffer_kms::kms::{CallContext, EncryptionContext, KmsError};

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::object_io::BlobTarget;
use crate::request::{ApiRequest, Dialect};
use crate::state::AppState;

/// The part number a single PUT (or copy) is sealed as (format.md: part 0).
pub const SINGLE_PART: u32 = 0;

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
    Kms(KmsChoice),
}

/// SSE-KMS as requested: which CMK (None: the default key), which data
/// cipher, the client's encryption context and whether to use bucket keys.
#[derive(Debug, Default)]
pub struct KmsChoice {
    key_id: Option<String>,
    sm4: bool,
    context: EncryptionContext,
    bucket_key: bool,
}

/// The header that stores (and returns) a client's SSE-KMS encryption
/// context: base64 of a JSON object, as S3 defines it.
pub const CONTEXT_HEADER: &str = "x-amz-server-side-encryption-context";

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
        Dialect::Oss => ApiError::new(ErrorCode::InvalidEncryptionAlgorithmError, message),
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
    match algorithm {
        Some("AES256") => {}
        // S3 names an algorithm it does not know apart from a missing one.
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidEncryptionAlgorithmError,
                "The Encryption request you specified is not valid. Supported value: AES256.",
            ));
        }
        None => {
            return Err(invalid(
                "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm (AES256).",
            ));
        }
    }
    let key = key
        .and_then(|k| BASE64.decode(k.trim()).ok().map(zeroize::Zeroizing::new))
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
    // KMS parameters without an explicit KMS request are refused, never
    // silently dropped (the object would be stored without the KMS).
    let asks_kms = header.is_some_and(|v| matches!(v.trim(), "KMS" | "aws:kms" | "aws:kms:dsse"));
    let kms_only = [
        "server-side-data-encryption",
        "server-side-encryption-aws-kms-key-id",
        "server-side-encryption-key-id",
        "server-side-encryption-context",
        "server-side-encryption-bucket-key-enabled",
    ];
    if !asks_kms && let Some(name) = kms_only.iter().find(|h| req.vendor_header(h).is_some()) {
        return Err(ApiError::invalid_argument(format!(
            "{} requires {}: {}",
            req.dialect.header(name),
            req.dialect.header("server-side-encryption"),
            if req.dialect == Dialect::S3 {
                "aws:kms"
            } else {
                "KMS"
            }
        )));
    }
    let (algorithm, data_encryption, key_id, bucket_key) = match header {
        Some(value) => (
            value.trim().to_owned(),
            req.vendor_header("server-side-data-encryption")
                .map(str::to_owned),
            req.vendor_header(match req.dialect {
                Dialect::S3 => "server-side-encryption-aws-kms-key-id",
                Dialect::Oss => "server-side-encryption-key-id",
            })
            .map(str::to_owned),
            req.vendor_header("server-side-encryption-bucket-key-enabled") == Some("true"),
        ),
        None => match BucketDefault::of(bucket) {
            Some(default) => (
                default.algorithm,
                default.kms_data_encryption,
                default.kms_key_id,
                default.bucket_key_enabled,
            ),
            None => return Ok(SseChoice::None),
        },
    };
    match algorithm.as_str() {
        "AES256" => Ok(SseChoice::Service(Algorithm::Aes256Gcm)),
        "SM4" => Ok(SseChoice::Service(Algorithm::Sm4Gcm)),
        "KMS" | "aws:kms" | "aws:kms:dsse" => {
            if let Some(data) = data_encryption.as_deref().filter(|d| *d != "SM4") {
                return Err(unsupported(req.dialect, data));
            }
            let context = match req.vendor_header("server-side-encryption-context") {
                Some(encoded) => parse_context(encoded)?,
                None => EncryptionContext::new(),
            };
            Ok(SseChoice::Kms(KmsChoice {
                key_id: key_id.filter(|k| !k.trim().is_empty()),
                sm4: data_encryption.is_some(),
                context,
                bucket_key,
            }))
        }
        other => Err(unsupported(req.dialect, other)),
    }
}

/// A client's encryption context: base64 of a JSON object of strings.
pub(crate) fn parse_context(encoded: &str) -> ApiResult<EncryptionContext> {
    BASE64
        .decode(encoded.trim())
        .ok()
        .and_then(|json| serde_json::from_slice::<EncryptionContext>(&json).ok())
        .filter(|context| !context.contains_key(S3_ARN_CONTEXT))
        .ok_or_else(|| {
            ApiError::invalid_argument(
                "The encryption context must be base64 of a JSON object of strings (and may not set aws:s3:arn).",
            )
        })
}

/// The context key S3 binds every SSE-KMS data key to.
const S3_ARN_CONTEXT: &str = "aws:s3:arn";

/// The full encryption context of an object's data key.
fn object_context(client: &EncryptionContext, bucket: &str, key: &str) -> EncryptionContext {
    let mut context = client.clone();
    context.insert(
        S3_ARN_CONTEXT.to_owned(),
        format!("arn:aws:s3:::{bucket}/{key}"),
    );
    context
}

/// The KMS failure a request sees: the KMS's own exception name with the
/// `KMS.` prefix S3 uses; the request fails and nothing is written.
pub fn kms_error(error: KmsError) -> ApiError {
    ApiError::from(error)
}

fn kms(state: &AppState) -> ApiResult<&Arc<dyn Kms>> {
    state.kms.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotImplemented,
            "This server runs without a KMS: SSE-KMS is unavailable and nothing was stored.",
        )
    })
}

fn call_context(req: &ApiRequest, bucket: &str, key: &str) -> CallContext {
    CallContext {
        principal: req.principal.name().to_owned(),
        resource: Some(format!("{bucket}/{key}")),
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
    /// Headers to store with the object (the client's KMS context).
    stored: Vec<(String, String)>,
}

impl Sealing {
    /// Headers to keep with the object or upload so that its data key can be
    /// opened again (SSE-KMS: the client's encryption context).
    pub fn stored_headers(&self) -> &[(String, String)] {
        &self.stored
    }

    pub fn sealer(&self, part_number: u32) -> PartSealer {
        PartSealer::new(self.algorithm, &self.dek, &self.object_id, part_number)
    }

    /// The envelope recording this sealing and the parts' plaintext sizes:
    /// version 2 (layout tag) when `parts` is final, version 1 for an
    /// upload, whose parts are only known at completion.
    fn envelope(&self, parts: Vec<PartLayout>, is_final: bool) -> ApiResult<Vec<u8>> {
        let mut envelope = Envelope {
            algorithm: self.algorithm,
            object_id: self.object_id,
            commitment: coffer_crypto::sealed::commitment(&self.dek, &self.object_id),
            key: self.key.clone(),
            parts,
            layout_tag: None,
        };
        if is_final {
            envelope
                .authenticate(&self.dek)
                .map_err(|e| ApiError::internal("authenticating an envelope", e))?;
        }
        envelope
            .encode()
            .map_err(|e| ApiError::internal("encoding an envelope", e))
    }

    /// How a single-part object's bytes are stored: sealed as part 0 with
    /// this sealing, or plain without one.
    pub fn single_part_target(sealing: Option<&Sealing>) -> BlobTarget {
        match sealing {
            Some(sealing) => BlobTarget::Sealed(sealing.sealer(SINGLE_PART)),
            None => BlobTarget::Plain,
        }
    }

    /// The envelope of a single-part object of `plain_size` bytes.
    pub fn single_part_envelope(&self, plain_size: u64) -> ApiResult<Vec<u8>> {
        self.envelope(
            vec![PartLayout {
                part_number: SINGLE_PART,
                plain_size,
            }],
            true,
        )
    }

    /// The envelope of a multipart upload before its parts are known: one
    /// placeholder part, replaced by the real layout at completion.
    pub fn upload_envelope(&self) -> ApiResult<Vec<u8>> {
        self.envelope(
            vec![PartLayout {
                part_number: 1,
                plain_size: 0,
            }],
            false,
        )
    }

    pub fn headers(&self, dialect: Dialect) -> Vec<(String, String)> {
        describe(
            dialect,
            self.algorithm,
            &self.key,
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

/// SSE-C keys cross the network with each request: only over TLS (the
/// request's connection, see [`crate::tls::over_tls`]), unless the test-only
/// flag allows plain HTTP.
fn sse_c_over_http_refused(state: &AppState) -> ApiResult<()> {
    if crate::tls::over_tls() || state.settings.allow_insecure_sse_c {
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
    req: &ApiRequest,
    choice: SseChoice,
    bucket: &str,
    key: &str,
) -> ApiResult<Option<Sealing>> {
    let object_id = ObjectId::random().map_err(crypto_failure("object id"))?;
    match choice {
        SseChoice::None => Ok(None),
        SseChoice::Kms(choice) => {
            seal_with_kms(state, req, choice, bucket, key, object_id).map(Some)
        }
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
                stored: Vec::new(),
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
                stored: Vec::new(),
            }))
        }
    }
}

/// SSE-KMS sealing: the data key comes from the KMS (directly, or wrapped
/// by a cached bucket key that the KMS wrapped).
fn seal_with_kms(
    state: &AppState,
    req: &ApiRequest,
    choice: KmsChoice,
    bucket: &str,
    key: &str,
    object_id: ObjectId,
) -> ApiResult<Sealing> {
    let kms = kms(state)?;
    let ctx = call_context(req, bucket, key);
    let algorithm = if choice.sm4 {
        Algorithm::Sm4Gcm
    } else {
        Algorithm::Aes256Gcm
    };
    let stored = if choice.context.is_empty() {
        Vec::new()
    } else {
        let json =
            serde_json::to_vec(&choice.context).map_err(|e| ApiError::internal("JSON", e))?;
        vec![(CONTEXT_HEADER.to_owned(), BASE64.encode(json))]
    };
    let (dek, key_ref) = tokio::task::block_in_place(|| -> ApiResult<_> {
        let cmk = match &choice.key_id {
            Some(id) => id.clone(),
            None => kms.default_sse_key(&ctx).map_err(kms_error)?.arn,
        };
        if choice.bucket_key {
            let bucket_key = state
                .bucket_keys
                .for_sealing(kms.as_ref(), &ctx, bucket, &cmk)?;
            let dek = SymmetricKey::generate().map_err(crypto_failure("data key"))?;
            let wrapped_dek = coffer_crypto::secret_box::seal(
                &bucket_key.plaintext,
                &wrap_context(bucket, key, &object_id),
                dek.expose(),
            )
            .map_err(crypto_failure("wrapping a data key"))?;
            let blob_len = u16::try_from(bucket_key.blob.len())
                .map_err(|_| ApiError::internal("bucket key", "KMS ciphertext too long"))?;
            let mut wrapped_key = blob_len.to_be_bytes().to_vec();
            wrapped_key.extend_from_slice(&bucket_key.blob);
            wrapped_key.extend_from_slice(&wrapped_dek);
            Ok((
                dek,
                KeyReference {
                    kind: WrapKind::KmsBucketKey,
                    key_id: bucket_key.key_id.clone(),
                    key_version: bucket_key.key_version,
                    wrapped_key,
                },
            ))
        } else {
            let context = object_context(&choice.context, bucket, key);
            let generated = kms
                .generate_data_key(&ctx, &cmk, &context)
                .map_err(kms_error)?;
            Ok((
                generated.plaintext,
                KeyReference {
                    kind: WrapKind::Kms,
                    key_id: generated.key_id,
                    key_version: generated.key_version,
                    wrapped_key: generated.ciphertext_blob,
                },
            ))
        }
    })?;
    Ok(Sealing {
        algorithm,
        dek,
        object_id,
        key: key_ref,
        customer_md5: None,
        stored,
    })
}

fn customer_fingerprint(key: &SymmetricKey, object_id: &ObjectId) -> Vec<u8> {
    coffer_crypto::sealed::customer_fingerprint(key, object_id).to_vec()
}

/// An opened envelope: the object's layout and its data key.
pub struct Opening {
    pub envelope: Envelope,
    dek: SymmetricKey,
    customer_md5: Option<String>,
    stored: Vec<(String, String)>,
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
            &self.envelope.key,
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
            stored: self.stored,
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
    let opened = coffer_crypto::secret_box::open(old_key, &context, &envelope.key.wrapped_key)
        .map_err(|_| integrity_error())?;
    let dek = SymmetricKey::from_slice(&opened).map_err(|_| integrity_error())?;
    // Only an authentic envelope is re-tagged; a version-1 one becomes
    // version 2 on the way (format.md §5.1).
    envelope.verify_key(&dek).map_err(|_| integrity_error())?;
    envelope.key.wrapped_key = coffer_crypto::secret_box::seal(current_key, &context, &opened)
        .map_err(crypto_failure("wrapping a data key"))?;
    envelope.key.key_version = current;
    envelope
        .authenticate(&dek)
        .map_err(|e| ApiError::internal("authenticating an envelope", e))?;
    envelope
        .encode()
        .map(Some)
        .map_err(|e| ApiError::internal("encoding an envelope", e))
}

/// A multipart upload's envelope with its real part layout (number,
/// plaintext size), at completion. The data key is opened (through the KMS
/// for SSE-KMS, so that completing fails closed like every other step) and
/// the envelope written as version 2, its layout tagged. SSE-C is the
/// exception when the request does not bring the key again (S3 does not
/// require it at completion): that envelope stays version 1, its part list
/// unauthenticated (format.md §6).
pub fn completed_envelope(
    state: &AppState,
    req: &ApiRequest,
    upload_envelope: &[u8],
    object: ObjectName<'_>,
    parts: &[(u32, u64)],
) -> ApiResult<Vec<u8>> {
    let layout = parts
        .iter()
        .map(|&(part_number, plain_size)| PartLayout {
            part_number,
            plain_size,
        })
        .collect();
    let decoded = Envelope::decode(upload_envelope).map_err(|_| integrity_error())?;
    let without_key =
        decoded.key.kind == WrapKind::CustomerKey && customer_key(req, false)?.is_none();
    let envelope = if without_key {
        Envelope {
            parts: layout,
            ..decoded
        }
    } else {
        let opening = open(state, req, upload_envelope, object, false)?;
        let mut envelope = Envelope {
            parts: layout,
            ..opening.envelope
        };
        envelope
            .authenticate(&opening.dek)
            .map_err(|e| ApiError::internal("authenticating an envelope", e))?;
        envelope
    };
    envelope
        .encode()
        .map_err(|e| ApiError::internal("encoding an envelope", e))
}

/// The error for stored data or metadata that fails authentication: never
/// served, and reported without detail.
pub fn integrity_error() -> ApiError {
    tracing::error!("an object failed its integrity check");
    ApiError::new(
        ErrorCode::IntegrityCheckFailed,
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
    object: ObjectName<'_>,
    copy_source: bool,
) -> ApiResult<Opening> {
    let ObjectName {
        bucket,
        key,
        headers,
    } = object;
    let envelope = Envelope::decode(envelope).map_err(|_| integrity_error())?;
    if envelope.key.kind != WrapKind::CustomerKey && customer_key(req, copy_source)?.is_some() {
        return Err(ApiError::invalid_request(
            "The encryption parameters are not applicable to this object: it is not encrypted with a customer-provided key.",
        ));
    }
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
        WrapKind::Kms | WrapKind::KmsBucketKey => {
            let dek = open_with_kms(state, req, &envelope, object)?;
            envelope.verify_key(&dek).map_err(|_| integrity_error())?;
            (dek, None)
        }
    };
    let stored = headers
        .iter()
        .filter(|(name, _)| name == CONTEXT_HEADER)
        .cloned()
        .collect();
    Ok(Opening {
        envelope,
        dek,
        customer_md5,
        stored,
    })
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
    match envelope {
        Some(envelope) => open(state, req, envelope, object, copy_source).map(Some),
        None if customer_key(req, copy_source)?.is_some() => Err(ApiError::invalid_request(
            "The encryption parameters are not applicable to this object: it is not encrypted with a customer-provided key.",
        )),
        None => Ok(None),
    }
}

/// Where an envelope belongs: its object's name and stored headers.
#[derive(Clone, Copy)]
pub struct ObjectName<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub headers: &'a [(String, String)],
}

fn open_with_kms(
    state: &AppState,
    req: &ApiRequest,
    envelope: &Envelope,
    object: ObjectName<'_>,
) -> ApiResult<SymmetricKey> {
    let kms = kms(state)?;
    let ObjectName {
        bucket,
        key,
        headers,
    } = object;
    let ctx = call_context(req, bucket, key);
    let client_context = match headers.iter().find(|(name, _)| name == CONTEXT_HEADER) {
        Some((_, encoded)) => parse_context(encoded).map_err(|_| integrity_error())?,
        None => EncryptionContext::new(),
    };
    let wrapped = &envelope.key.wrapped_key;
    if envelope.key.kind == WrapKind::Kms {
        let context = object_context(&client_context, bucket, key);
        let opened = tokio::task::block_in_place(|| {
            kms.decrypt(&ctx, wrapped, &context, Some(&envelope.key.key_id))
        })
        .map_err(kms_error)?;
        return SymmetricKey::from_slice(&opened.plaintext).map_err(|_| integrity_error());
    }
    let (len, rest) = wrapped.split_at_checked(2).ok_or_else(integrity_error)?;
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    let (blob, wrapped_dek) = rest.split_at_checked(len).ok_or_else(integrity_error)?;
    let cmk = &envelope.key.key_id;
    // A cached bucket key is reused without a KMS request or a blocking call
    // (the small-object GET path); otherwise ask the KMS off the reactor.
    let bucket_key = match state
        .bucket_keys
        .cached_for_opening(kms.as_ref(), cmk, blob)
    {
        Some(cached) => cached?,
        None => tokio::task::block_in_place(|| {
            state
                .bucket_keys
                .for_opening(kms.as_ref(), &ctx, bucket, cmk, blob)
        })?,
    };
    let dek = coffer_crypto::secret_box::open(
        &bucket_key,
        &wrap_context(bucket, key, &envelope.object_id),
        wrapped_dek,
    )
    .map_err(|_| integrity_error())?;
    SymmetricKey::from_slice(&dek).map_err(|_| integrity_error())
}

/// The headers naming a stored envelope's encryption, without opening it
/// (CompleteMultipartUpload, where no key is presented).
pub fn describe_stored(dialect: Dialect, envelope: &[u8]) -> Vec<(String, String)> {
    match Envelope::decode(envelope) {
        Ok(envelope) => describe(dialect, envelope.algorithm, &envelope.key, None)
            .into_iter()
            .filter(|(name, value)| !(name.ends_with("-key-md5") && value.is_empty()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The response headers that name an object's encryption, in `dialect`.
fn describe(
    dialect: Dialect,
    algorithm: Algorithm,
    key: &KeyReference,
    customer_md5: Option<&str>,
) -> Vec<(String, String)> {
    let name = match algorithm {
        Algorithm::Aes256Gcm => "AES256",
        Algorithm::Sm4Gcm => "SM4",
    };
    match key.kind {
        WrapKind::Kms | WrapKind::KmsBucketKey => {
            let (value, key_id_header) = match dialect {
                Dialect::S3 => ("aws:kms", "server-side-encryption-aws-kms-key-id"),
                Dialect::Oss => ("KMS", "server-side-encryption-key-id"),
            };
            let mut headers = vec![
                (dialect.header("server-side-encryption"), value.to_owned()),
                (dialect.header(key_id_header), key.key_id.clone()),
            ];
            if algorithm == Algorithm::Sm4Gcm {
                headers.push((
                    dialect.header("server-side-data-encryption"),
                    "SM4".to_owned(),
                ));
            }
            if key.kind == WrapKind::KmsBucketKey {
                headers.push((
                    dialect.header("server-side-encryption-bucket-key-enabled"),
                    "true".to_owned(),
                ));
            }
            headers
        }
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
        WrapKind::ServiceKey => {
            vec![(dialect.header("server-side-encryption"), name.to_owned())]
        }
    }
}
