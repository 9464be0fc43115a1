//! The Alibaba Cloud KMS API (RPC style, `Version=2016-01-20`) on the same
//! listeners and the same [`Kms`] as the AWS JSON protocol: same keys, same
//! states, same audit log. `aliyunsdkcore` (and so oss2's `AliKMSProvider`)
//! sends `?Action=…&Version=…` signed with POP V1; the `alibabacloud_*`
//! SDKs send `x-acs-action` / `x-acs-version` headers signed with
//! `ACS3-HMAC-SHA256`. Parameters come from the query and a form body.
//!
//! Layout: this file tells, authenticates and answers requests (errors in
//! Alibaba's `{Code, Message, RequestId}` shape); `actions` runs them;
//! `replay` refuses a signature nonce seen twice.

mod actions;
mod replay;

use std::sync::Arc;

use coffer_auth::AuthError;
use coffer_auth::acs::{self, AcsVerified};
use coffer_auth::canonical::decoded_form_query_pairs;
use coffer_kms::{CallContext, Kms, KmsError};
use http::{Method, Response, StatusCode};
use time::OffsetDateTime;

use super::{MAX_REQUEST_BYTES, Operation};
use crate::body::ResponseBody;
use crate::state::{AppState, Principal};

/// The API version every request must name.
pub const VERSION: &str = "2016-01-20";
const CONTENT_TYPE: &str = "application/json;charset=utf-8";

/// Whether a request is an Alibaba KMS RPC call: `/` with the action and
/// version `2016-01-20` in the query (V1) or in `x-acs-*` headers (V3).
/// Parameters may also come in a form body, but the action and version must
/// be readable before the body is.
pub fn is_alibaba_request(parts: &http::request::Parts) -> bool {
    parts.uri.path() == "/"
        && matches!(parts.method, Method::GET | Method::POST)
        && action_of(parts).is_some()
}

/// The AWS-protocol operation an Alibaba action runs, for the request log;
/// `None` for an action this KMS does not serve.
pub fn operation_of(parts: &http::request::Parts) -> Option<Operation> {
    action_of(parts).and_then(|action| actions::operation(&action))
}

/// The action when the version is 2016-01-20: headers first, as the V3 SDKs
/// send them, else the query.
fn action_of(parts: &http::request::Parts) -> Option<String> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if header("x-acs-version") == Some(VERSION) {
        return header("x-acs-action").map(str::to_owned);
    }
    let query = decoded_form_query_pairs(parts.uri.query().unwrap_or_default());
    let get = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    };
    if get("Version") != Some(VERSION.as_bytes()) {
        return None;
    }
    get("Action").and_then(|a| String::from_utf8(a.to_vec()).ok())
}

/// Serves one Alibaba KMS request end to end. Never fails: every error,
/// authentication included, is an Alibaba JSON error carrying `request_id`.
pub async fn serve(
    state: &AppState,
    parts: &http::request::Parts,
    body: hyper::body::Incoming,
    request_id: &str,
) -> Response<ResponseBody> {
    match run(state, parts, body).await {
        Ok(mut json) => {
            json.insert("RequestId".into(), request_id.into());
            respond(StatusCode::OK, serde_json::Value::Object(json))
        }
        Err(error) => {
            tracing::debug!(code = error.code, "alibaba kms request failed");
            error.response(request_id)
        }
    }
}

type Json = serde_json::Map<String, serde_json::Value>;

async fn run(
    state: &AppState,
    parts: &http::request::Parts,
    body: hyper::body::Incoming,
) -> Result<Json, AliError> {
    use http_body_util::BodyExt;
    let Some(kms) = state.kms.clone() else {
        return Err(AliError::new(
            StatusCode::BAD_REQUEST,
            "UnsupportedOperation",
            "The KMS is not enabled on this server.",
        ));
    };
    let body = http_body_util::Limited::new(body, MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|_| AliError::invalid("The request body is too large or incomplete."))?
        .to_bytes();
    let params = Params::of(parts, &body)?;
    let principal = authenticate(state, parts, &params, &body)?;
    let action = action_of(parts).unwrap_or_default();
    let Some(operation) = actions::operation(&action) else {
        return Err(AliError::new(
            StatusCode::NOT_FOUND,
            "InvalidAction.NotFound",
            format!("Specified api is not found, please check your url and method: {action}"),
        ));
    };
    let caller = super::KmsCaller::direct(state, &principal)
        .await
        .map_err(|e| AliError::internal("user policy lookup", e.message))?;
    let call = AliCall {
        kms,
        ctx: CallContext {
            principal: principal.name().to_owned(),
            resource: None,
        },
    };
    // Key policies decide, as on the AWS protocol (the same parameter names).
    let params = Arc::new(params);
    let fields = Arc::clone(&params);
    call.blocking(move |kms, _| {
        let field = |name: &str| fields.get(name).map(str::to_owned);
        super::authorize(kms, &caller, operation, &field).map_err(AliError::from)
    })
    .await?;
    actions::run(&call, &action, &params).await
}

// ------------------------------------------------------------- parameters

/// The request's parameters: the query's, then a form body's.
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    fn of(parts: &http::request::Parts, body: &[u8]) -> Result<Self, AliError> {
        let mut pairs = decoded_form_query_pairs(parts.uri.query().unwrap_or_default());
        let form = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if form && !body.is_empty() {
            let text = std::str::from_utf8(body)
                .map_err(|_| AliError::invalid("The form body is not UTF-8."))?;
            pairs.extend(decoded_form_query_pairs(text));
        }
        pairs
            .into_iter()
            .map(|(name, value)| Ok((String::from_utf8(name)?, String::from_utf8(value)?)))
            .collect::<Result<Vec<_>, std::string::FromUtf8Error>>()
            .map(Params)
            .map_err(|_| AliError::invalid("A parameter is not UTF-8."))
    }

    /// A parameter's value; an empty value counts as absent.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn required(&self, name: &str) -> Result<&str, AliError> {
        self.get(name).ok_or_else(|| {
            AliError::new(
                StatusCode::BAD_REQUEST,
                "MissingParameter",
                format!("The input parameter \"{name}\" that is mandatory for processing this request is not supplied."),
            )
        })
    }
}

// ------------------------------------------------------------- authentication

/// Verifies the V3 `Authorization` header when there is one, else the V1
/// query signature; then refuses a nonce seen before and names the user.
fn authenticate(
    state: &AppState,
    parts: &http::request::Parts,
    params: &Params,
    body: &[u8],
) -> Result<Principal, AliError> {
    let now = OffsetDateTime::now_utc();
    let v3 = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(acs::v3::is_v3);
    let verified: AcsVerified = if v3 {
        acs::v3::verify(
            parts.method.as_str(),
            parts.uri.path(),
            parts.uri.query().unwrap_or_default(),
            &parts.headers,
            body,
            now,
            state,
        )
    } else {
        acs::v1::verify(parts.method.as_str(), &params.0, now, state)
    }
    .map_err(AliError::from_auth)?;
    // Coffer has no STS: a token would name a temporary identity it cannot
    // check, so the request is refused rather than run as the key's owner.
    if params.get("SecurityToken").is_some() || parts.headers.contains_key("x-acs-security-token") {
        return Err(AliError::new(
            StatusCode::BAD_REQUEST,
            "UnsupportedOperation",
            "Security tokens (STS) are not supported: sign with an AccessKey pair.",
        ));
    }
    if !replay::first_use(&verified, now) {
        return Err(AliError::new(
            StatusCode::BAD_REQUEST,
            "SignatureNonceUsed",
            "The request signature nonce has been used.",
        ));
    }
    state
        .principal_for(&verified.access_key)
        .ok_or_else(|| AliError::from_auth(AuthError::UnknownAccessKey))
}

// ------------------------------------------------------------- calls

/// A KMS call in flight: the backend and who calls it.
pub(super) struct AliCall {
    kms: Arc<dyn Kms>,
    ctx: CallContext,
}

impl AliCall {
    /// Runs blocking KMS work off the async threads.
    pub(super) async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn Kms, &CallContext) -> Result<T, AliError> + Send + 'static,
    ) -> Result<T, AliError> {
        let kms = Arc::clone(&self.kms);
        let ctx = self.ctx.clone();
        tokio::task::spawn_blocking(move || work(kms.as_ref(), &ctx))
            .await
            .map_err(|e| AliError::internal("blocking task", e))?
    }
}

// ------------------------------------------------------------------ errors

/// A failed call as Alibaba's clients read it: an HTTP status and a JSON
/// body `{RequestId, HostId, Code, Message}`.
#[derive(Debug)]
pub(super) struct AliError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl AliError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(super) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidParameter", message)
    }

    fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "alibaba kms internal error: {context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "The request processing has failed due to some unknown error.",
        )
    }

    fn from_auth(error: AuthError) -> Self {
        let (status, code) = match &error {
            AuthError::UnknownAccessKey => (StatusCode::NOT_FOUND, "InvalidAccessKeyId.NotFound"),
            AuthError::SignatureMismatch | AuthError::ContentSha256Mismatch => {
                (StatusCode::BAD_REQUEST, "SignatureDoesNotMatch")
            }
            AuthError::TimeTooSkewed | AuthError::NotYetValid | AuthError::Expired => {
                (StatusCode::BAD_REQUEST, "InvalidTimeStamp.Expired")
            }
            AuthError::Missing | AuthError::MissingSecurityHeader(_) => {
                (StatusCode::BAD_REQUEST, "MissingParameter")
            }
            _ => (StatusCode::BAD_REQUEST, "IncompleteSignature"),
        };
        let message = match error {
            // aliyunsdkcore reads the part after the first ':' of this
            // message; Alibaba puts its string to sign there. Coffer does
            // not echo the request back, so the client's comparison fails
            // and it reports the mismatch as it is.
            AuthError::SignatureMismatch => "Specified signature does not match our calculation: check the AccessKeySecret and the signing method.".to_owned(),
            other => other.to_string(),
        };
        Self::new(status, code, message)
    }

    fn response(&self, request_id: &str) -> Response<ResponseBody> {
        let body = serde_json::json!({
            "RequestId": request_id,
            "HostId": "coffer",
            "Code": self.code,
            "Message": self.message,
        });
        respond(self.status, body)
    }
}

impl From<super::Refusal> for AliError {
    fn from(refusal: super::Refusal) -> Self {
        match refusal {
            super::Refusal::Denied(message) => {
                AliError::new(StatusCode::FORBIDDEN, "Forbidden.RAM", message)
            }
            super::Refusal::Kms(error) => error.into(),
        }
    }
}

impl From<KmsError> for AliError {
    fn from(error: KmsError) -> Self {
        let (status, code) = match &error {
            KmsError::NotFound(name) if name.starts_with("alias/") => {
                (StatusCode::NOT_FOUND, "Forbidden.AliasNotFound")
            }
            KmsError::NotFound(_) => (StatusCode::NOT_FOUND, "Forbidden.KeyNotFound"),
            KmsError::Disabled(_) => (StatusCode::BAD_REQUEST, "Rejected.Disabled"),
            KmsError::InvalidState { .. } => (StatusCode::BAD_REQUEST, "Rejected.UnexpectedState"),
            KmsError::AlreadyExists(_) => (StatusCode::CONFLICT, "EntityAlreadyExists.Alias"),
            KmsError::Internal(detail) => return AliError::internal("key store", detail),
            KmsError::InvalidCiphertext
            | KmsError::IncorrectKey
            | KmsError::InvalidImportToken
            | KmsError::IncorrectKeyMaterial
            | KmsError::ExpiredImportToken
            | KmsError::Validation(_) => (StatusCode::BAD_REQUEST, "InvalidParameter"),
        };
        AliError::new(status, code, error.to_string())
    }
}

fn respond(status: StatusCode, json: serde_json::Value) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(json.to_string().into_bytes()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(CONTENT_TYPE),
    );
    response
}
