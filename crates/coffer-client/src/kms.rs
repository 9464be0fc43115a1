//! The KMS API client behind `coffer kms …` and the `aws-kms:` KMS backend: AWS KMS JSON
//! protocol calls (`X-Amz-Target: TrentService.<Operation>`, SigV4 service `kms`).

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::Value;

use crate::transport::{ClientError, SignedClient};

/// Why a KMS call failed: the KMS refused it with an exception, or it never got an answer.
#[derive(Debug, thiserror::Error)]
pub enum KmsCallError {
    /// The KMS answered with an exception (`__type`), which a caller may map to its own errors.
    #[error("the KMS answered {status}: {kind}: {message}")]
    Exception {
        /// The HTTP status.
        status: StatusCode,
        /// The exception name without its namespace (`NotFoundException`).
        kind: String,
        /// The exception's message.
        message: String,
    },
    /// No answer, or one that did not decode.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Calls KMS operation `operation` with a JSON request; returns the JSON
/// answer, or the KMS error (`__type: message`).
pub async fn call(
    client: &SignedClient,
    operation: &str,
    request: &Value,
) -> Result<Value, ClientError> {
    call_typed(client, operation, request)
        .await
        .map_err(|error| match error {
            KmsCallError::Exception {
                status,
                kind,
                message,
            } => ClientError::Server {
                status,
                message: format!("{kind}: {message}"),
            },
            KmsCallError::Client(error) => error,
        })
}

/// [`call`], with the KMS's exception name kept apart from its message.
pub async fn call_typed(
    client: &SignedClient,
    operation: &str,
    request: &Value,
) -> Result<Value, KmsCallError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    headers.insert(
        "x-amz-target",
        HeaderValue::from_str(&format!("TrentService.{operation}"))
            .map_err(|_| ClientError::BadResponse(format!("bad operation name {operation:?}")))?,
    );
    let body = serde_json::to_vec(request).map_err(|e| ClientError::BadResponse(e.to_string()))?;
    let response = client
        .request_for("kms", Method::POST, "/", headers, body, true)
        .await?;
    let answer: Value = if response.body.is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(&response.body)
            .map_err(|e| ClientError::BadResponse(e.to_string()))?
    };
    if response.status.is_success() {
        return Ok(answer);
    }
    // AWS may qualify the name (`com.amazonaws.kms#NotFoundException`).
    let kind = answer["__type"].as_str().unwrap_or("KMS error");
    let kind = kind.rsplit_once('#').map_or(kind, |(_, name)| name);
    let message = answer["message"]
        .as_str()
        .or(answer["Message"].as_str())
        .unwrap_or_default();
    Err(KmsCallError::Exception {
        status: response.status,
        kind: kind.to_owned(),
        message: message.to_owned(),
    })
}
