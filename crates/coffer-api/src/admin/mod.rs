//! The admin API under `/_coffer/admin/` (a path no bucket can have, since
//! bucket names cannot contain `_`), root only, JSON: user management, every
//! bucket with its owner (`buckets.rs`), service keys, rewrap and the sealing
//! of plaintext objects (`plaintext.rs`), how one object is sealed
//! (`protection.rs`), the KMS audit log (`audit.rs`), which objects a KMS key
//! protects (`kms_usage.rs`), users' identity policies (`user_policy.rs`), and background
//! passes run now (lifecycle,
//! sweeper: under their leases, 409 `PassInProgress` while another gateway
//! runs one).

mod audit;
mod buckets;
mod kms_usage;
mod plaintext;
mod protection;
mod user_policy;

use std::time::Duration;

use coffer_auth::sigv4::Payload;
use coffer_store::{StoreError, UserRecord};
use http::{Response, StatusCode};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::background;
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::ops::{now_ms, small_body};
use crate::request::ApiRequest;
use crate::router::AdminOperation;
use crate::state::{AppState, ROOT_NAME, user_secret_context};

#[derive(Deserialize)]
struct AddUser {
    name: String,
    access_key: Option<String>,
    secret_key: Option<String>,
}

#[derive(Serialize)]
struct UserCreated<'a> {
    name: &'a str,
    access_key: &'a str,
    secret_key: &'a str,
}

#[derive(Serialize)]
struct UserListed {
    name: String,
    access_key: String,
    created_ms: i64,
}

pub async fn handle(
    state: &AppState,
    req: &ApiRequest,
    operation: AdminOperation,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    if !req.principal.is_root() {
        return Err(ApiError::access_denied(
            "Only the root credentials may use the admin API.",
        ));
    }
    match operation {
        AdminOperation::ListUsers => list_users(state).await,
        AdminOperation::ListBuckets => json(StatusCode::OK, &buckets::list(state).await?),
        AdminOperation::ListServiceKeys => service_key_versions(state),
        AdminOperation::RotateServiceKey => rotate_service_key(state),
        AdminOperation::RewrapAll => rewrap_all(state).await,
        AdminOperation::PlaintextStatus => json(StatusCode::OK, &plaintext::status(state).await?),
        AdminOperation::SealPlaintext => {
            json(StatusCode::OK, &plaintext::seal_all(state, req).await?)
        }
        AdminOperation::RunLifecycle => {
            let lease = background::for_admin(state, background::LIFECYCLE_LEASE).await?;
            let report = crate::lifecycle_worker::run_pass(state, lease.as_ref()).await?;
            json(StatusCode::OK, &report)
        }
        AdminOperation::RunSweeper => run_sweeper(state, req, body, payload).await,
        AdminOperation::AdvanceClock => advance_clock(req, body, payload).await,
        AdminOperation::ObjectProtection { object } => json(
            StatusCode::OK,
            &protection::describe(state, req, &object).await?,
        ),
        AdminOperation::KmsAudit => json(StatusCode::OK, &audit::page(state, req).await?),
        AdminOperation::KmsUsage => json(StatusCode::OK, &kms_usage::of_key(state, req).await?),
        AdminOperation::AddUser => add_user(state, req, body, payload).await,
        AdminOperation::GetUserPolicy { name } => user_policy::get(state, &name).await,
        AdminOperation::PutUserPolicy { name } => {
            user_policy::put(state, req, &name, body, payload).await
        }
        AdminOperation::DeleteUserPolicy { name } => user_policy::delete(state, &name).await,
        AdminOperation::DeleteUser { name } => {
            let name = crate::request::path_decode(&name)?;
            if state.meta.remove_user(&name).await? {
                json(StatusCode::NO_CONTENT, &serde_json::json!({}))
            } else {
                Err(ApiError::new(
                    ErrorCode::NoSuchUser,
                    "The user does not exist.",
                ))
            }
        }
        AdminOperation::Unknown => Err(ApiError::new(
            ErrorCode::NoSuchAdminEndpoint,
            "Unknown admin endpoint.",
        )),
    }
}

async fn list_users(state: &AppState) -> ApiResult<Response<ResponseBody>> {
    let users = state.meta.list_users().await?;
    let listed: Vec<UserListed> = users
        .into_iter()
        .map(|u| UserListed {
            name: u.name,
            access_key: u.access_key,
            created_ms: u.created_ms,
        })
        .collect();
    json(StatusCode::OK, &listed)
}

async fn add_user(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let body = small_body(req, body, payload).await?;
    let request: AddUser = serde_json::from_slice(&body).map_err(|_| {
        ApiError::invalid_argument(
            "Expected JSON {\"name\": …, \"access_key\"?: …, \"secret_key\"?: …}",
        )
    })?;
    let valid_name = (1..=64).contains(&request.name.len())
        && request
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && request.name != ROOT_NAME;
    if !valid_name {
        return Err(ApiError::invalid_argument(
            "A user name is 1–64 letters, digits, '-', '_' or '.', and not 'root'.",
        ));
    }
    let random = |n| coffer_crypto::random::hex_id(n).map_err(|e| ApiError::internal("random", e));
    let access_key = match request.access_key {
        Some(ak) => ak,
        None => format!("CF{}", random(9)?),
    };
    let secret_key = match request.secret_key {
        Some(sk) => Zeroizing::new(sk),
        None => Zeroizing::new(random(20)?.to_ascii_lowercase()),
    };
    let valid_ak = (3..=128).contains(&access_key.len())
        && access_key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid_ak || access_key == state.root.access_key {
        return Err(ApiError::invalid_argument(
            "An access key is 3–128 letters, digits, '-' or '_', distinct from the root access key.",
        ));
    }
    if !(8..=128).contains(&secret_key.len()) || !secret_key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid_argument(
            "A secret key is 8–128 printable ASCII characters without spaces.",
        ));
    }
    let sealed_secret = state
        .root_key
        .seal(&user_secret_context(&access_key), secret_key.as_bytes())
        .map_err(|e| ApiError::internal("sealing a user secret", e))?;
    let user = UserRecord {
        name: request.name.clone(),
        access_key: access_key.clone(),
        sealed_secret,
        created_ms: now_ms(),
        policy: None,
    };
    match state.meta.add_user(user).await {
        Ok(()) => {}
        Err(StoreError::UserExists) => {
            return Err(ApiError::new(
                ErrorCode::UserAlreadyExists,
                "A user with this name or access key already exists.",
            ));
        }
        Err(other) => return Err(other.into()),
    }
    tracing::info!(user = %request.name, %access_key, "user added");
    json(
        StatusCode::OK,
        &UserCreated {
            name: &request.name,
            access_key: &access_key,
            secret_key: &secret_key,
        },
    )
}

fn service_key_versions(state: &AppState) -> ApiResult<Response<ResponseBody>> {
    let (current, versions) = state
        .keys
        .service_key_versions()
        .map_err(crate::sse::keying_error)?;
    let versions: Vec<_> = versions
        .into_iter()
        .map(|(version, created_ms)| serde_json::json!({"version": version, "created_ms": created_ms}))
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({"current": current, "versions": versions}),
    )
}

/// Adds a service master key version; new objects use it from now on, old
/// ones keep opening with theirs until a rewrap.
fn rotate_service_key(state: &AppState) -> ApiResult<Response<ResponseBody>> {
    let version = state
        .keys
        .rotate_service_key(&state.root_key)
        .map_err(crate::sse::keying_error)?;
    tracing::info!(version, "service master key rotated");
    json(StatusCode::OK, &serde_json::json!({"current": version}))
}

#[derive(Deserialize)]
struct SweeperRun {
    grace_seconds: Option<u64>,
}

/// One sweeper pass now, under the sweeper lease; `{"grace_seconds": N}` (optional) replaces
/// the configured grace period.
async fn run_sweeper(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let body = small_body(req, body, payload).await?;
    let grace = if body.iter().all(u8::is_ascii_whitespace) {
        crate::sweeper::configured_grace()
    } else {
        let run: SweeperRun = serde_json::from_slice(&body).map_err(|e| {
            ApiError::invalid_argument(format!("expected {{\"grace_seconds\": N}}: {e}"))
        })?;
        run.grace_seconds
            .map_or_else(crate::sweeper::configured_grace, Duration::from_secs)
    };
    let lease = background::for_admin(state, background::SWEEPER_LEASE).await?;
    let report = crate::sweeper::run_pass(state, grace, lease.as_ref()).await?;
    json(StatusCode::OK, &report)
}

#[derive(Deserialize)]
struct ClockAdvance {
    seconds: i64,
}

/// Moves the object clock forward (`{"seconds": N}`), on a server started with the test
/// clock only; answers the new offset.
async fn advance_clock(
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    if !crate::clock::is_adjustable() {
        return Err(ApiError::new(
            ErrorCode::NoSuchAdminEndpoint,
            "The clock can only be moved on a server started with --test-clock.",
        ));
    }
    let body = small_body(req, body, payload).await?;
    let advance: ClockAdvance = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid_argument(format!("expected {{\"seconds\": N}}: {e}")))?;
    let offset_ms = advance
        .seconds
        .checked_mul(1000)
        .and_then(crate::clock::advance)
        .ok_or_else(|| ApiError::invalid_argument("seconds must be a positive number"))?;
    json(
        StatusCode::OK,
        &serde_json::json!({"offset_seconds": offset_ms / 1000}),
    )
}

/// Moves the data key of every object version to the current service master
/// key version (metadata only: bodies are not read or rewritten).
async fn rewrap_all(state: &AppState) -> ApiResult<Response<ResponseBody>> {
    let buckets = state.meta.list_buckets().await?;
    let (mut scanned, mut rewrapped) = (0u64, 0u64);
    for bucket in buckets {
        let mut query = coffer_store::VersionListQuery {
            max_keys: 1000,
            ..Default::default()
        };
        loop {
            let page = state.meta.list_versions(&bucket.name, &query).await?;
            let mut updates = Vec::new();
            for listed in &page.versions {
                let coffer_store::Version::Object(record) = &listed.version else {
                    continue;
                };
                scanned += 1;
                if let Some(old) = &record.envelope
                    && let Some(new) = crate::sse::rewrap(state, old, &bucket.name, &listed.key)?
                {
                    let which = coffer_store::VersionRef::exactly(record.version_id.as_deref());
                    updates.push((listed.key.clone(), which, old.clone(), new));
                }
            }
            for (key, which, old, new) in updates {
                // A concurrent overwrite or delete already settled this version.
                if state
                    .meta
                    .replace_envelope(&bucket.name, &key, which, old, new)
                    .await?
                {
                    rewrapped += 1;
                }
            }
            if !page.is_truncated {
                break;
            }
            query.key_marker = page.next_key_marker;
            query.version_id_marker = page.next_version_id_marker;
        }
    }
    tracing::info!(scanned, rewrapped, "rewrap finished");
    json(
        StatusCode::OK,
        &serde_json::json!({"objects_scanned": scanned, "objects_rewrapped": rewrapped}),
    )
}

fn json(status: StatusCode, value: &impl Serialize) -> ApiResult<Response<ResponseBody>> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::internal("JSON", e))?;
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(if status == StatusCode::NO_CONTENT {
            ResponseBody::Empty
        } else {
            ResponseBody::full(body)
        })
        .map_err(|e| ApiError::internal("building a response", e))
}
