//! Health probes for load balancers and orchestrators, on the S3 listeners, without
//! authentication: `GET /health/live` (200 while the process serves) and `GET
//! /health/ready` (200 when the metadata store is writable, the blob store answers, the
//! service keyring is usable and the KMS ready; 503 naming the part that is not). HEAD answers the same statuses without a body.
//!
//! They never shadow S3: a probe is exactly `/health/live` or `/health/ready` addressed
//! path-style, without a query string and unsigned. A bucket named `health` keeps its objects
//! `live` and `ready`: S3 requests to them are signed (Coffer refuses anonymous requests
//! anyway), and virtual-host requests (`health.localhost/live`) never look like a probe.
//!
//! The answer names each part `ok` or `failed`, never why: the reason, which may name paths,
//! goes to the server's log.

use http::{Method, Response, StatusCode};
use serde::Serialize;

use crate::body::ResponseBody;
use crate::request::Target;
use crate::state::AppState;

/// The bucket that probes look like, path-style.
const PROBE_BUCKET: &str = "health";

/// Which probe a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `/health/live`: the process serves.
    Live,
    /// `/health/ready`: the store, the keys and the KMS are usable.
    Ready,
}

impl Probe {
    /// The probe's name in request logs.
    pub fn name(self) -> &'static str {
        match self {
            Probe::Live => "HealthLive",
            Probe::Ready => "HealthReady",
        }
    }
}

/// The probe a request is, if it is one: GET or HEAD of exactly `/health/live` or
/// `/health/ready` (path-style: `target` came from the path), no query, no signature.
pub fn probe_of(parts: &http::request::Parts, target: &Target) -> Option<Probe> {
    if !matches!(parts.method, Method::GET | Method::HEAD) || parts.uri.query().is_some() {
        return None;
    }
    let probe = match (
        parts.uri.path(),
        target.bucket.as_deref(),
        target.key.as_deref(),
    ) {
        ("/health/live", Some(PROBE_BUCKET), Some("live")) => Probe::Live,
        ("/health/ready", Some(PROBE_BUCKET), Some("ready")) => Probe::Ready,
        _ => return None,
    };
    coffer_auth::detect(&parts.headers, "")
        .is_none()
        .then_some(probe)
}

#[derive(Serialize)]
struct Checks {
    store: &'static str,
    blobs: &'static str,
    keystore: &'static str,
    kms: &'static str,
}

#[derive(Serialize)]
struct Answer {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<Checks>,
}

fn verdict<E: std::fmt::Display>(part: &'static str, result: Result<(), E>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(error) => {
            tracing::warn!(part, %error, "readiness check failed");
            "failed"
        }
    }
}

fn probe_blob_id() -> Result<String, coffer_store::StoreError> {
    Ok(coffer_crypto::random::hex_id(16)
        .map_err(|e| coffer_store::StoreError::Io(std::io::Error::other(e.to_string())))?
        .to_ascii_lowercase())
}

/// The metadata store takes a write: a pending-blob row is written and removed (two
/// committed transactions).
async fn store_writable(state: &AppState) -> Result<(), coffer_store::StoreError> {
    let probe = probe_blob_id()?;
    state
        .meta
        .add_pending_blob(&probe, std::time::SystemTime::now())
        .await?;
    state.meta.remove_pending_blob(&probe).await?;
    Ok(())
}

/// The blob store answers: a new blob can be started (and is dropped unfinished), and the
/// length of a blob that does not exist is asked — "no such blob" is the healthy answer (an
/// upstream S3 that answers 404 is reachable and accepts the credentials).
async fn blobs_reachable(state: &AppState) -> Result<(), coffer_store::StoreError> {
    drop(state.blobs.create().await?);
    match state.blobs.len(&probe_blob_id()?).await {
        Ok(_) | Err(coffer_store::StoreError::NoSuchBlob) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn kms_ready(state: &AppState) -> Result<(), String> {
    let Some(kms) = state.kms.clone() else {
        return Ok(());
    };
    tokio::task::spawn_blocking(move || kms.check_ready())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// Answers a probe.
pub async fn answer(state: &AppState, probe: Probe, head: bool) -> Response<ResponseBody> {
    let (status, answer) = match probe {
        Probe::Live => (
            StatusCode::OK,
            Answer {
                status: "live",
                checks: None,
            },
        ),
        Probe::Ready => {
            let checks = Checks {
                store: verdict("store", store_writable(state).await),
                blobs: verdict("blobs", blobs_reachable(state).await),
                keystore: verdict("keystore", state.keys.service_key_versions().map(|_| ())),
                kms: verdict("kms", kms_ready(state).await),
            };
            let ready = [checks.store, checks.blobs, checks.keystore, checks.kms]
                .iter()
                .all(|v| *v == "ok");
            (
                if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                },
                Answer {
                    status: if ready { "ready" } else { "not ready" },
                    checks: Some(checks),
                },
            )
        }
    };
    let json = serde_json::to_vec(&answer).unwrap_or_default();
    uncached(status, "application/json", json, head)
}

/// A probe's or scrape's answer: never cached (it is a reading of now), the
/// body left out for HEAD but its length kept.
pub(crate) fn uncached(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<bytes::Bytes>,
    head: bool,
) -> Response<ResponseBody> {
    let body = body.into();
    let length = body.len();
    let mut response = Response::new(if head {
        ResponseBody::Empty
    } else {
        ResponseBody::full(body)
    });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    headers.insert(http::header::CONTENT_LENGTH, length.into());
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(method: &str, uri: &str, host: &str, auth: bool) -> Option<Probe> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("host", host);
        if auth {
            builder = builder.header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
            );
        }
        let (parts, ()) = builder.body(()).expect("request").into_parts();
        let domains = ["localhost".to_owned()];
        let target =
            crate::request::resolve_target(parts.uri.path(), Some(host), &domains).expect("target");
        probe_of(&parts, &target)
    }

    #[test]
    fn only_exact_unsigned_path_style_probes() {
        let host = "127.0.0.1:9000";
        assert_eq!(probe("GET", "/health/live", host, false), Some(Probe::Live));
        assert_eq!(
            probe("HEAD", "/health/ready", host, false),
            Some(Probe::Ready)
        );
        assert_eq!(probe("GET", "/health/live", host, true), None, "signed: S3");
        assert_eq!(probe("GET", "/health/live?x=1", host, false), None);
        assert_eq!(probe("GET", "/health/live/", host, false), None);
        assert_eq!(probe("GET", "/health/other", host, false), None);
        assert_eq!(probe("PUT", "/health/live", host, false), None);
        assert_eq!(
            probe("GET", "/live", "health.localhost:9000", false),
            None,
            "virtual-host style names the bucket in the host: S3"
        );
        assert_eq!(
            probe("GET", "/health/live", "b.localhost:9000", false),
            None,
            "key health/live of bucket b"
        );
    }
}
