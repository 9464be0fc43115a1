//! The KMS API client behind `coffer kms …`: AWS KMS JSON protocol calls
//! (`X-Amz-Target: TrentService.<Operation>`, SigV4 service `kms`).

use http::{HeaderMap, HeaderValue, Method};
use serde_json::Value;

use crate::transport::{ClientError, SignedClient};

/// Calls KMS operation `operation` with a JSON request; returns the JSON
/// answer, or the KMS error (`__type: message`).
pub async fn call(
    client: &SignedClient,
    operation: &str,
    request: &Value,
) -> Result<Value, ClientError> {
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
    let kind = answer["__type"].as_str().unwrap_or("KMS error");
    let message = answer["message"].as_str().unwrap_or_default();
    Err(ClientError::Server {
        status: response.status,
        message: format!("{kind}: {message}"),
    })
}
