//! Reading the protection a request asks for from its SSE headers (in
//! either dialect), else from the bucket's default encryption, else the
//! server's default: the one place where a new object's protection is
//! decided, for every route that writes one.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use coffer_crypto::{Algorithm, SymmetricKey};
use coffer_keying::{
    CustomerKey, DefaultProtection, KmsProtection, Protection, decode_context, is_kms_name,
};
use coffer_kms::EncryptionContext;
use coffer_store::BucketRecord;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::{ApiRequest, Dialect};

/// The bucket config key under which the default encryption is kept.
pub const BUCKET_CONFIG_KEY: &str = "encryption";

/// The `SSEAlgorithm` of a bucket rule that opts the bucket out of
/// encryption at rest (a Coffer extension; AWS has no way to): new objects
/// written without encryption headers are stored in plaintext.
pub const PLAINTEXT_OPT_OUT: &str = "none";

/// A bucket's default encryption (`?encryption`), in a dialect-neutral form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketDefault {
    /// `AES256`, `SM4`, `KMS`, or [`PLAINTEXT_OPT_OUT`].
    pub algorithm: String,
    /// The KMS key for `KMS`; `None`: the KMS's default SSE key.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// OSS `KMSDataEncryption`: `SM4` to seal the data with SM4 under a KMS key.
    #[serde(default)]
    pub kms_data_encryption: Option<String>,
    /// Whether SSE-KMS uses a bucket key (fewer KMS calls).
    #[serde(default)]
    pub bucket_key_enabled: bool,
}

impl BucketDefault {
    /// The bucket's stored default, if it has one (an unreadable one counts as none).
    pub fn of(bucket: &BucketRecord) -> Option<BucketDefault> {
        bucket
            .config
            .get(BUCKET_CONFIG_KEY)
            .and_then(|json| serde_json::from_str(json).ok())
    }

    /// The rule a bucket without one is sealed under: the server's default
    /// protection, spelled as a stored rule.
    pub fn server_default(protection: &DefaultProtection) -> BucketDefault {
        let (algorithm, kms_key_id) = match protection {
            DefaultProtection::Service(Algorithm::Aes256Gcm) => ("AES256", None),
            DefaultProtection::Service(Algorithm::Sm4Gcm) => ("SM4", None),
            DefaultProtection::Kms { key_id } => ("KMS", key_id.clone()),
        };
        BucketDefault {
            algorithm: algorithm.into(),
            kms_key_id,
            kms_data_encryption: None,
            bucket_key_enabled: false,
        }
    }

    /// Whether this rule opts its bucket out of encryption at rest.
    pub fn is_plaintext_opt_out(&self) -> bool {
        self.algorithm == PLAINTEXT_OPT_OUT
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
        .map(CustomerKey::new)
        .ok_or_else(|| {
            invalid("The secret key was invalid for the specified algorithm: it must be 256 bits, base64-encoded.")
        })?;
    if md5.map(str::trim) != Some(key.md5_base64()) {
        return Err(invalid(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
        ));
    }
    Ok(Some(key))
}

/// The protection the request asks for: its SSE headers, else the bucket's
/// default encryption, else the server's `default` — never plaintext unless
/// the bucket opted out ([`PLAINTEXT_OPT_OUT`]). Bad values are errors,
/// never ignored.
pub fn requested(
    req: &ApiRequest,
    bucket: &BucketRecord,
    default: &DefaultProtection,
) -> ApiResult<Protection> {
    let customer = customer_key(req, false)?;
    let header = req.vendor_header("server-side-encryption");
    if let Some(customer) = customer {
        if header.is_some() {
            return Err(ApiError::invalid_argument(
                "Server Side Encryption with Customer provided keys cannot be combined with another server-side encryption.",
            ));
        }
        return Ok(Protection::Customer(customer));
    }
    // KMS parameters without an explicit KMS request are refused, never
    // silently dropped (the object would be stored without the KMS).
    let asks_kms = header.is_some_and(is_kms_name);
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
            value.to_owned(),
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
            Some(rule) if rule.is_plaintext_opt_out() => return Ok(Protection::None),
            Some(rule) => (
                rule.algorithm,
                rule.kms_data_encryption,
                rule.kms_key_id,
                rule.bucket_key_enabled,
            ),
            None => return Ok(default.protection()),
        },
    };
    // Only a request that asked for KMS can carry a context (checked above).
    let context = match req.vendor_header("server-side-encryption-context") {
        Some(encoded) if asks_kms => parse_context(encoded)?,
        _ => EncryptionContext::new(),
    };
    Protection::named(&algorithm, data_encryption.as_deref(), || KmsProtection {
        key_id: key_id.filter(|k| !k.trim().is_empty()),
        sm4: false,
        context,
        bucket_key,
    })
    .map_err(|unsupported_name| unsupported(req.dialect, &unsupported_name.0))
}

/// What seals an object that is already stored in `bucket` without
/// encryption (`coffer sse rewrap --seal-plaintext`): the bucket's rule if
/// it names a mode, else the server's `default` — also in a bucket that
/// opted out, whose owner keeps the opt-out for new writes only.
pub fn stored_plaintext_protection(
    bucket: &BucketRecord,
    default: &DefaultProtection,
) -> Protection {
    let rule = BucketDefault::of(bucket).filter(|rule| !rule.is_plaintext_opt_out());
    let Some(rule) = rule else {
        return default.protection();
    };
    let (key_id, bucket_key) = (rule.kms_key_id, rule.bucket_key_enabled);
    Protection::named(&rule.algorithm, rule.kms_data_encryption.as_deref(), || {
        KmsProtection {
            key_id,
            bucket_key,
            ..KmsProtection::default()
        }
    })
    // A stored rule was checked when it was set; one that no longer reads
    // yields to the server's default rather than to plaintext.
    .unwrap_or_else(|_| default.protection())
}

/// A client's encryption context: base64 of a JSON object of strings.
pub(crate) fn parse_context(encoded: &str) -> ApiResult<EncryptionContext> {
    decode_context(encoded).ok_or_else(|| {
        ApiError::invalid_argument(
            "The encryption context must be base64 of a JSON object of strings (and may not set aws:s3:arn).",
        )
    })
}
