//! The admin API client behind `coffer user …`.

use http::Method;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use crate::transport::{ClientError, SignedClient};

const USERS: &str = "/_coffer/admin/users";

#[derive(Debug, Serialize)]
pub struct NewUser<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<&'a str>,
}

/// A user as the admin API returns it on creation (with its secret, the
/// only time it is ever shown).
#[derive(Serialize, Deserialize)]
pub struct CreatedUser {
    pub name: String,
    pub access_key: String,
    pub secret_key: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ListedUser {
    pub name: String,
    pub access_key: String,
    pub created_ms: i64,
}

pub async fn add_user(
    client: &SignedClient,
    user: &NewUser<'_>,
) -> Result<CreatedUser, ClientError> {
    let body = serde_json::to_vec(user).map_err(|e| ClientError::BadResponse(e.to_string()))?;
    let (_, response) = client.send(Method::POST, USERS, body).await?;
    serde_json::from_slice(&response).map_err(|e| ClientError::BadResponse(e.to_string()))
}

pub async fn list_users(client: &SignedClient) -> Result<Vec<ListedUser>, ClientError> {
    let (_, response) = client.send(Method::GET, USERS, Vec::new()).await?;
    serde_json::from_slice(&response).map_err(|e| ClientError::BadResponse(e.to_string()))
}

pub async fn remove_user(client: &SignedClient, name: &str) -> Result<(), ClientError> {
    let path = format!("{USERS}/{}", utf8_percent_encode(name, NON_ALPHANUMERIC));
    client.send(Method::DELETE, &path, Vec::new()).await?;
    Ok(())
}

const SSE: &str = "/_coffer/admin/sse";

async fn json_call(
    client: &SignedClient,
    method: Method,
    path: &str,
) -> Result<serde_json::Value, ClientError> {
    let (_, response) = client.send(method, path, Vec::new()).await?;
    serde_json::from_slice(&response).map_err(|e| ClientError::BadResponse(e.to_string()))
}

/// The service master key's versions and which one is current.
pub async fn service_keys(client: &SignedClient) -> Result<serde_json::Value, ClientError> {
    json_call(client, Method::GET, &format!("{SSE}/keys")).await
}

/// Adds a service master key version and makes it current.
pub async fn rotate_service_key(client: &SignedClient) -> Result<serde_json::Value, ClientError> {
    json_call(client, Method::POST, &format!("{SSE}/rotate")).await
}

/// Re-wraps every object's data key under the current version.
pub async fn rewrap_objects(client: &SignedClient) -> Result<serde_json::Value, ClientError> {
    json_call(client, Method::POST, &format!("{SSE}/rewrap")).await
}
