//! The HTTP listener: accepts connections, turns each request into an
//! operation, renders errors, and shuts down gracefully.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::body::ResponseBody;
use crate::error::ApiError;
use crate::request::{ApiRequest, Dialect, Query, resolve_target};
use crate::state::SharedState;
use crate::xml::XmlWriter;
use crate::{admin, auth, ops};

/// Most connections served at once; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 1024;
/// A client must send its request head within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight requests may run on after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `listener` until `shutdown` completes, then lets in-flight
/// requests finish (within a grace period).
pub async fn serve(
    listener: TcpListener,
    state: SharedState,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Without it small responses stall for the delayed-ACK timer.
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let service = service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, std::convert::Infallible>(handle(&state, req).await) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: waiting for in-flight requests");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within the grace period");
    }
    Ok(())
}

async fn handle(state: &SharedState, req: Request<Incoming>) -> Response<ResponseBody> {
    let started = Instant::now();
    let request_id = coffer_crypto::random::hex_id(8).unwrap_or_else(|_| "0".repeat(16));
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut response = match route(state, req, &request_id).await {
        Ok(response) => response,
        Err(error) => error_response(&error, &path, &request_id, method == Method::HEAD),
    };
    let headers = response.headers_mut();
    if let Ok(value) = request_id.parse() {
        headers.insert("x-amz-request-id", value);
    }
    headers.insert(
        http::header::SERVER,
        http::HeaderValue::from_static("Coffer"),
    );
    tracing::info!(
        request_id,
        %method,
        path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

async fn route(
    state: &SharedState,
    req: Request<Incoming>,
    request_id: &str,
) -> Result<Response<ResponseBody>, ApiError> {
    let (parts, body) = req.into_parts();
    let raw_path = parts.uri.path();
    let raw_query = parts.uri.query().unwrap_or_default();
    let (principal, payload) = auth::authenticate(
        state,
        parts.method.as_str(),
        raw_path,
        raw_query,
        &parts.headers,
        "s3",
    )?;
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let query = Query::parse(raw_query)?;
    if raw_path.starts_with(admin::PREFIX) {
        let req = ApiRequest {
            request_id: request_id.to_owned(),
            dialect: Dialect::S3,
            method: parts.method.clone(),
            bucket: None,
            key: None,
            query,
            headers: parts.headers.clone(),
            principal,
        };
        return admin::handle(state, &req, raw_path, body, payload).await;
    }
    let target = resolve_target(raw_path, host, &state.settings.domains)?;
    let req = ApiRequest {
        request_id: request_id.to_owned(),
        dialect: Dialect::S3,
        method: parts.method,
        bucket: target.bucket,
        key: target.key,
        query,
        headers: parts.headers,
        principal,
    };
    ops::dispatch(state, req, body, payload).await
}

/// S3 error XML; HEAD responses carry the status and headers only.
fn error_response(
    error: &ApiError,
    resource: &str,
    request_id: &str,
    head: bool,
) -> Response<ResponseBody> {
    if error.status.is_server_error() {
        tracing::warn!(code = error.code, request_id, "request failed");
    }
    let mut w = XmlWriter::bare("Error");
    w.elem("Code", error.code)
        .elem("Message", &error.message)
        .elem("Resource", resource)
        .elem("RequestId", request_id);
    let body = if head {
        ResponseBody::Empty
    } else {
        ResponseBody::full(w.finish())
    };
    let mut response = Response::new(body);
    *response.status_mut() = error.status;
    if !head {
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/xml"),
        );
    }
    if error.status == StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().insert(
            http::header::ALLOW,
            http::HeaderValue::from_static("GET, PUT, POST, DELETE, HEAD"),
        );
    }
    response
}
