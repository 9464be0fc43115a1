//! The AWS KMS JSON protocol in front of a [`Kms`]: `POST /` with
//! `X-Amz-Target: TrentService.<Operation>` and a JSON body, signed with
//! SigV4 for service `kms`, so `aws kms …` and boto3 work unchanged.
//!
//! Layout: this file authenticates, routes an operation and renders errors;
//! `keys` holds the key administration operations (lifecycle, aliases,
//! rotation, BYOK import) and `data` the data plane (data keys, Encrypt,
//! Decrypt, ReEncrypt). `alibaba` serves the Alibaba Cloud KMS API
//! (RPC style) over the same [`Kms`].
//!
//! Authorization: every call on a key is decided by the key's policy together with the
//! caller's identity policy (`key_policy`, as AWS KMS decides it), before the KMS runs it.
//! CreateKey needs root or an identity policy allowing `kms:CreateKey`; ListKeys and
//! ListAliases are open to every user (they show ids and names, never use a key).
//!
//! Secrets: request and response bodies are never logged; decoded
//! plaintexts and their base64 forms sit in [`Zeroizing`] buffers. The
//! response body itself (a `Bytes` handed to hyper) cannot be wiped.

pub mod alibaba;
mod data;
pub mod key_policy;
mod keys;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use coffer_auth::{AuthError, Payload, SecretLookup, SignedRequest};
use coffer_kms::kms::{KeyMetadata, KeySpec, KeyState, Origin};
use coffer_kms::{CallContext, Kms, KmsError};
use http::{Method, Response, StatusCode};
use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use self::key_policy::{KmsCaller, Refusal};
use crate::body::ResponseBody;
use crate::state::{AppState, Principal};

/// The `X-Amz-Target` prefix of every KMS operation.
const TARGET_PREFIX: &str = "TrentService.";
/// The media type of requests and responses.
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The largest request body read (KMS requests are a few KiB at most).
const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// The account every key ARN and `AWSAccountId` names.
pub use crate::identity::ACCOUNT_ID;

/// Whether a request speaks the KMS JSON protocol rather than S3: `POST /`
/// with a `TrentService.*` target. The server routes these to [`serve`]
/// before any S3 routing or authentication.
pub fn is_kms_request(parts: &http::request::Parts) -> bool {
    parts.method == Method::POST
        && parts.uri.path() == "/"
        && target_of(parts).is_some_and(|t| t.starts_with(TARGET_PREFIX))
}

/// The KMS operation a KMS request names; `None` for a target this KMS
/// does not know.
pub fn operation_of(parts: &http::request::Parts) -> Option<Operation> {
    target_of(parts).and_then(Operation::from_target)
}

fn target_of(parts: &http::request::Parts) -> Option<&str> {
    parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
}

/// Serves one KMS request end to end: reads the (small) body, verifies its
/// SigV4 signature for service `kms`, names the principal and runs the
/// operation. Every failure, authentication included, is a KMS JSON error.
pub async fn serve(
    state: &AppState,
    parts: &http::request::Parts,
    body: hyper::body::Incoming,
) -> Response<ResponseBody> {
    use http_body_util::BodyExt;
    let Some(kms) = state.kms.clone() else {
        return KmsApiError::new(
            StatusCode::BAD_REQUEST,
            "UnsupportedOperationException",
            "The KMS is not enabled on this server.",
        )
        .response();
    };
    let body = match http_body_util::Limited::new(body, MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return KmsApiError::validation("The request body is too large or incomplete.")
                .response();
        }
    };
    let principal = match authenticate(state, parts, &body) {
        Ok(principal) => principal,
        Err(error) => return error.response(),
    };
    let caller = match KmsCaller::direct(state, &principal).await {
        Ok(caller) => caller,
        Err(error) => return KmsApiError::internal("user policy lookup", error.message).response(),
    };
    let target = target_of(parts).unwrap_or_default().to_owned();
    handle(kms, caller, &target, body).await
}

/// Runs the KMS operation `target` (the `X-Amz-Target` value) for an
/// authenticated `caller`. Never fails: errors become KMS JSON errors.
pub async fn handle(
    kms: Arc<dyn Kms>,
    caller: KmsCaller,
    target: &str,
    body: Bytes,
) -> Response<ResponseBody> {
    let result = match Operation::from_target(target) {
        Some(operation) => run(kms, caller, operation, &body).await,
        None => Err(KmsApiError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            "The operation is not supported by this KMS.",
        )),
    };
    match result {
        Ok(json) => json_response(StatusCode::OK, json),
        Err(error) => {
            tracing::debug!(
                operation = target,
                kind = error.aws_type,
                "kms request failed"
            );
            error.response()
        }
    }
}

async fn run(
    kms: Arc<dyn Kms>,
    caller: KmsCaller,
    operation: Operation,
    body: &[u8],
) -> KmsResult<Vec<u8>> {
    let call = Call {
        kms,
        ctx: CallContext {
            principal: caller.principal().name().to_owned(),
            resource: None,
        },
    };
    // A body that is not a JSON object names no key; the operation then refuses it.
    let fields: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    call.blocking(move |kms, _| {
        let field = |name: &str| {
            fields
                .get(name)
                .and_then(serde_json::Value::as_str)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        authorize(kms, &caller, operation, &field).map_err(KmsApiError::from)
    })
    .await?;
    use Operation as Op;
    match operation {
        Op::CreateKey => keys::create_key(&call, body).await,
        Op::DescribeKey => keys::describe_key(&call, body).await,
        Op::ListKeys => keys::list_keys(&call, body).await,
        Op::EnableKey => keys::enable_key(&call, body).await,
        Op::DisableKey => keys::disable_key(&call, body).await,
        Op::ScheduleKeyDeletion => keys::schedule_key_deletion(&call, body).await,
        Op::CancelKeyDeletion => keys::cancel_key_deletion(&call, body).await,
        Op::TagResource => keys::tag_resource(&call, body).await,
        Op::CreateAlias => keys::create_alias(&call, body, false).await,
        Op::UpdateAlias => keys::create_alias(&call, body, true).await,
        Op::DeleteAlias => keys::delete_alias(&call, body).await,
        Op::ListAliases => keys::list_aliases(&call, body).await,
        Op::EnableKeyRotation => keys::enable_key_rotation(&call, body).await,
        Op::DisableKeyRotation => keys::disable_key_rotation(&call, body).await,
        Op::GetKeyRotationStatus => keys::get_key_rotation_status(&call, body).await,
        Op::RotateKeyOnDemand => keys::rotate_key_on_demand(&call, body).await,
        Op::ListKeyRotations => keys::list_key_rotations(&call, body).await,
        Op::GetParametersForImport => keys::get_parameters_for_import(&call, body).await,
        Op::ImportKeyMaterial => keys::import_key_material(&call, body).await,
        Op::DeleteImportedKeyMaterial => keys::delete_imported_key_material(&call, body).await,
        Op::GenerateDataKey => data::generate_data_key(&call, body, true).await,
        Op::GenerateDataKeyWithoutPlaintext => data::generate_data_key(&call, body, false).await,
        Op::Encrypt => data::encrypt(&call, body).await,
        Op::Decrypt => data::decrypt(&call, body).await,
        Op::ReEncrypt => data::re_encrypt(&call, body).await,
        Op::GetKeyPolicy => keys::get_key_policy(&call, body).await,
        Op::PutKeyPolicy => keys::put_key_policy(&call, body).await,
        Op::ListKeyPolicies => keys::list_key_policies(&call, body).await,
    }
}

/// Whether `caller` may run `operation` on the keys its request names (`field`), as their
/// key policies decide; blocking (it reads the policies).
fn authorize(
    kms: &dyn Kms,
    caller: &KmsCaller,
    operation: Operation,
    field: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Refusal> {
    match key_policy::keys_of(kms, operation, field)? {
        Some(keys) => keys
            .iter()
            .try_for_each(|(action, key)| caller.authorize(kms, action, key)),
        None if operation == Operation::CreateKey => caller.authorize_without_key("kms:CreateKey"),
        None => Ok(()),
    }
}

/// Declares the operations once: the enum, and its wire names.
macro_rules! operations {
    ($($name:ident),+ $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        /// A KMS API operation, by its AWS name.
        pub enum Operation { $(#[doc = concat!("`TrentService.", stringify!($name), "`.")] $name),+ }

        impl Operation {
            /// The AWS name (`X-Amz-Target: TrentService.<name>`).
            pub fn name(self) -> &'static str {
                match self { $(Operation::$name => stringify!($name)),+ }
            }

            fn from_name(name: &str) -> Option<Self> {
                match name { $(stringify!($name) => Some(Operation::$name),)+ _ => None }
            }
        }
    };
}

operations!(
    CreateKey,
    DescribeKey,
    ListKeys,
    EnableKey,
    DisableKey,
    ScheduleKeyDeletion,
    CancelKeyDeletion,
    TagResource,
    CreateAlias,
    UpdateAlias,
    DeleteAlias,
    ListAliases,
    EnableKeyRotation,
    DisableKeyRotation,
    GetKeyRotationStatus,
    RotateKeyOnDemand,
    ListKeyRotations,
    GetParametersForImport,
    ImportKeyMaterial,
    DeleteImportedKeyMaterial,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    Encrypt,
    Decrypt,
    ReEncrypt,
    GetKeyPolicy,
    PutKeyPolicy,
    ListKeyPolicies,
);

impl Operation {
    fn from_target(target: &str) -> Option<Self> {
        target
            .strip_prefix(TARGET_PREFIX)
            .and_then(Operation::from_name)
    }
}

// ------------------------------------------------------------------ errors

/// A failed KMS call as the client sees it: the AWS exception name
/// (`__type`), the HTTP status and a message.
#[derive(Debug)]
struct KmsApiError {
    status: StatusCode,
    aws_type: &'static str,
    message: String,
}

type KmsResult<T> = Result<T, KmsApiError>;

impl KmsApiError {
    fn new(status: StatusCode, aws_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            aws_type,
            message: message.into(),
        }
    }

    fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }

    /// AWS KMS answers AccessDeniedException with 400.
    fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "AccessDeniedException", message)
    }

    fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "kms internal error: {context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "KMSInternalException",
            "The KMS encountered an internal error. Please try again.",
        )
    }

    /// A rejected signature, with the exception AWS KMS uses for it.
    fn from_auth(error: AuthError) -> Self {
        let (status, aws_type) = match &error {
            AuthError::Missing => (StatusCode::FORBIDDEN, "MissingAuthenticationTokenException"),
            AuthError::HeaderMalformed(_)
            | AuthError::QueryMalformed(_)
            | AuthError::MissingSecurityHeader(_)
            | AuthError::InvalidArgument(_) => {
                (StatusCode::BAD_REQUEST, "IncompleteSignatureException")
            }
            AuthError::UnknownAccessKey => (StatusCode::BAD_REQUEST, "UnrecognizedClientException"),
            AuthError::AccessDenied(_) => (StatusCode::BAD_REQUEST, "AccessDeniedException"),
            AuthError::SignatureMismatch
            | AuthError::ContentSha256Mismatch
            | AuthError::TimeTooSkewed
            | AuthError::NotYetValid
            | AuthError::Expired
            | AuthError::NotImplemented(_) => {
                (StatusCode::BAD_REQUEST, "InvalidSignatureException")
            }
        };
        Self::new(status, aws_type, error.to_string())
    }

    fn response(&self) -> Response<ResponseBody> {
        let body = serde_json::json!({"__type": self.aws_type, "message": self.message});
        json_response(self.status, body.to_string().into_bytes())
    }
}

impl From<Refusal> for KmsApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Denied(message) => KmsApiError::access_denied(message),
            Refusal::Kms(error) => error.into(),
        }
    }
}

impl From<KmsError> for KmsApiError {
    fn from(error: KmsError) -> Self {
        match error {
            // The store's own words may name paths; the client gets none.
            KmsError::Internal(detail) => KmsApiError::internal("key store", detail),
            other => {
                let status =
                    StatusCode::from_u16(other.status()).unwrap_or(StatusCode::BAD_REQUEST);
                KmsApiError::new(status, other.aws_type(), other.to_string())
            }
        }
    }
}

fn json_response(status: StatusCode, json: Vec<u8>) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(json));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(CONTENT_TYPE),
    );
    response
}

// ------------------------------------------------------------- authentication

fn authenticate(
    state: &AppState,
    parts: &http::request::Parts,
    body: &[u8],
) -> KmsResult<Principal> {
    let access_key = verify_signature(parts, body, OffsetDateTime::now_utc(), state)
        .map_err(KmsApiError::from_auth)?;
    state
        .principal_for(&access_key)
        .ok_or_else(|| KmsApiError::from_auth(AuthError::UnknownAccessKey))
}

/// Verifies a KMS request's SigV4 header signature (scope service `kms`)
/// and returns its access key. Unlike S3 clients, botocore signs KMS
/// requests without an `x-amz-content-sha256` header: the canonical request
/// ends with the body's SHA-256, which is computed here and supplied to the
/// verifier (unsigned, so it only feeds the canonical request). A header the
/// client did send must match the body.
fn verify_signature(
    parts: &http::request::Parts,
    body: &[u8],
    now: OffsetDateTime,
    lookup: &impl SecretLookup,
) -> Result<String, AuthError> {
    if !parts.headers.contains_key(http::header::AUTHORIZATION) {
        // Presigned KMS calls do not exist; anonymous ones are refused.
        return Err(AuthError::Missing);
    }
    let digest = coffer_auth::mac::sha256(body);
    let mut headers = parts.headers.clone();
    if !headers.contains_key("x-amz-content-sha256") {
        let value = http::HeaderValue::from_str(&hex::encode(digest))
            .expect("a hex digest is a valid header value");
        headers.insert("x-amz-content-sha256", value);
    }
    let request = SignedRequest {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or_default(),
        headers: &headers,
    };
    let verified = coffer_auth::verify(&request, now, "kms", lookup)?;
    match verified.payload {
        Payload::Sha256(signed) if signed == digest => Ok(verified.access_key),
        Payload::Sha256(_) => Err(AuthError::ContentSha256Mismatch),
        _ => Err(AuthError::InvalidArgument(
            "KMS requests must sign the SHA-256 of their body".into(),
        )),
    }
}

// ------------------------------------------------------------- shared helpers

/// A KMS call in flight: the backend and who calls it.
struct Call {
    kms: Arc<dyn Kms>,
    ctx: CallContext,
}

impl Call {
    /// Runs blocking KMS work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn Kms, &CallContext) -> KmsResult<T> + Send + 'static,
    ) -> KmsResult<T> {
        let kms = Arc::clone(&self.kms);
        let ctx = self.ctx.clone();
        tokio::task::spawn_blocking(move || work(kms.as_ref(), &ctx))
            .await
            .map_err(|e| KmsApiError::internal("blocking task", e))?
    }
}

/// Parses a request body; an empty body is `{}` (ListKeys, ListAliases).
fn parse<T: DeserializeOwned>(body: &[u8]) -> KmsResult<T> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| KmsApiError::validation(format!("The request is not valid: {e}")))
}

/// Serializes a response body into one buffer of the right size, so that a
/// secret it holds is not left behind in reallocated memory.
fn to_json(value: &impl Serialize, size_hint: usize) -> KmsResult<Vec<u8>> {
    let mut out = Vec::with_capacity(size_hint + 1024);
    serde_json::to_writer(&mut out, value).map_err(|e| KmsApiError::internal("JSON", e))?;
    Ok(out)
}

/// A key reference as the client gave it: 1–2048 characters.
fn key_ref(key: &str) -> KmsResult<&str> {
    if key.is_empty() || key.len() > 2048 {
        return Err(KmsApiError::validation(
            "KeyId must be a key id, key ARN, alias name or alias ARN (1 to 2048 characters).",
        ));
    }
    Ok(key)
}

/// The ARN of a key the backend named by id (data-plane answers carry ARNs).
fn key_arn(kms: &dyn Kms, ctx: &CallContext, key_id: &str) -> String {
    if key_id.starts_with("arn:") {
        return key_id.to_owned();
    }
    kms.describe_key(ctx, key_id)
        .map(|m| m.arn)
        .unwrap_or_else(|_| key_id.to_owned())
}

/// A binary field: base64 in JSON, decoded into a buffer zeroized on drop.
struct Blob(Zeroizing<Vec<u8>>);

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(deserializer)?);
        BASE64
            .decode(text.trim().as_bytes())
            .map(|bytes| Blob(Zeroizing::new(bytes)))
            .map_err(|_| serde::de::Error::custom("a binary field is not valid base64"))
    }
}

/// Base64 of `bytes` in a buffer zeroized on drop (for plaintexts).
fn base64_secret(bytes: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(bytes.len().div_ceil(3) * 4));
    BASE64.encode_string(bytes, &mut out);
    out
}

fn base64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// A timestamp as botocore sends it (epoch seconds, maybe fractional), or
/// an RFC 3339 string from hand-written requests.
#[derive(Deserialize)]
#[serde(untagged)]
enum Timestamp {
    Seconds(f64),
    Text(String),
}

impl Timestamp {
    fn to_time(&self) -> KmsResult<OffsetDateTime> {
        let invalid =
            || KmsApiError::validation("A timestamp is not valid epoch seconds or RFC 3339.");
        match self {
            Timestamp::Seconds(s) if s.is_finite() => {
                // Millisecond precision: an f64 of epoch seconds holds no more.
                let whole = s.floor();
                let millis = ((s - whole) * 1000.0).round() as i64;
                OffsetDateTime::from_unix_timestamp(whole as i64)
                    .map(|t| t + time::Duration::milliseconds(millis))
                    .map_err(|_| invalid())
            }
            Timestamp::Seconds(_) => Err(invalid()),
            Timestamp::Text(text) => match text.parse::<f64>() {
                Ok(seconds) => Timestamp::Seconds(seconds).to_time(),
                Err(_) => {
                    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                        .map_err(|_| invalid())
                }
            },
        }
    }
}

/// Epoch seconds, as the KMS JSON protocol writes timestamps.
fn epoch(t: OffsetDateTime) -> serde_json::Value {
    let millis = t.unix_timestamp_nanos() / 1_000_000;
    if millis % 1000 == 0 {
        serde_json::Value::from((millis / 1000) as i64)
    } else {
        serde_json::Value::from(millis as f64 / 1000.0)
    }
}

fn key_spec_name(spec: KeySpec) -> &'static str {
    match spec {
        KeySpec::SymmetricDefault => "SYMMETRIC_DEFAULT",
        KeySpec::Sm4 => "SM4",
    }
}

fn origin_name(origin: Origin) -> &'static str {
    match origin {
        Origin::Generated => "AWS_KMS",
        Origin::External => "EXTERNAL",
    }
}

/// DescribeKey's `KeyMetadata`, as AWS spells it.
fn key_metadata_json(m: &KeyMetadata) -> serde_json::Value {
    let mut json = serde_json::json!({
        "AWSAccountId": ACCOUNT_ID,
        "KeyId": m.key_id,
        "Arn": m.arn,
        "CreationDate": epoch(m.created),
        "Enabled": m.state == KeyState::Enabled,
        "Description": m.description,
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": m.state.as_str(),
        "Origin": origin_name(m.origin),
        "KeyManager": if m.managed { "AWS" } else { "CUSTOMER" },
        "KeySpec": key_spec_name(m.key_spec),
        "CustomerMasterKeySpec": key_spec_name(m.key_spec),
        "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
        "MultiRegion": false,
    });
    let fields = json
        .as_object_mut()
        .expect("the metadata literal is an object");
    if let Some(date) = m.deletion_date {
        fields.insert("DeletionDate".into(), epoch(date));
    }
    if m.origin == Origin::External {
        match m.valid_to {
            Some(valid_to) => {
                fields.insert("ValidTo".into(), epoch(valid_to));
                fields.insert("ExpirationModel".into(), "KEY_MATERIAL_EXPIRES".into());
            }
            None if m.state != KeyState::PendingImport => {
                fields.insert(
                    "ExpirationModel".into(),
                    "KEY_MATERIAL_DOES_NOT_EXPIRE".into(),
                );
            }
            None => {}
        }
    }
    json
}
