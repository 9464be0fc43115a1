//! The HTTP and HTTPS listeners: accept connections (completing the TLS
//! handshake on HTTPS), turn each request into an operation, render errors,
//! and shut down gracefully.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::body::ResponseBody;
use crate::error::ApiError;
use crate::limits::ConnectionLimits;
use crate::request::{ApiRequest, Dialect, Query, Target, resolve_target};
use crate::router::Operation;
use crate::stall::StallGuard;
use crate::state::SharedState;
use crate::tls::TlsInfo;
use crate::xml::XmlWriter;
use crate::{admin, auth, ops};

/// A client must complete the TLS handshake within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests may run on after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Largest request head (request line and headers), in bytes; a larger one
/// is answered 431 and the connection closed. S3 allows 8 KiB of headers;
/// this leaves room for long presigned URLs. It also bounds what a client
/// that never finishes its head can make the server buffer.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Answers some unsigned GET and HEAD requests before the API sees them, on a
/// listener that has one: the web console's assets on `--console-listen`.
/// Signed requests, and those it passes on (`None`), go to the API, so a page
/// it serves can call the API on its own origin.
pub type Frontend = Arc<dyn Fn(&Method, &str) -> Option<Response<&'static [u8]>> + Send + Sync>;

/// Serves plain HTTP on `listener` until `shutdown` completes, then lets
/// in-flight requests finish (within a grace period).
pub async fn serve(
    listener: TcpListener,
    state: SharedState,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_listener(listener, state, None, None, shutdown).await
}

/// Serves plain HTTP like [`serve`], with `frontend` answering first.
pub async fn serve_with_frontend(
    listener: TcpListener,
    state: SharedState,
    frontend: Frontend,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_listener(listener, state, None, Some(frontend), shutdown).await
}

/// Serves HTTPS on `listener` with `tls`, like [`serve`]. Each request
/// carries what its connection negotiated ([`TlsInfo`]).
pub async fn serve_tls(
    listener: TcpListener,
    state: SharedState,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    serve_listener(listener, state, Some(acceptor), None, shutdown).await
}

async fn serve_listener(
    listener: TcpListener,
    state: SharedState,
    tls: Option<tokio_rustls::TlsAcceptor>,
    frontend: Option<Frontend>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let limits = state.settings.limits;
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        if permits.available_permits() == 0 {
            // Every permit taken: the next connection waits in the backlog.
            crate::metrics::connection_refused("max_connections");
        }
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
        let stream = StallGuard::new(stream, limits.send_timeout);
        let state = state.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let frontend = frontend.clone();
        tokio::spawn(async move {
            match tls {
                None => {
                    serve_connection(stream, state, None, frontend, watcher, peer, limits).await
                }
                Some(acceptor) => {
                    // In the connection's own task: a slow handshake holds
                    // its permit, never the accept loop.
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let info = TlsInfo::of(stream.get_ref().1);
                            let version = info.as_ref().map_or("none", |i| i.version.name());
                            crate::metrics::tls_handshake(version, "ok");
                            serve_connection(stream, state, info, frontend, watcher, peer, limits)
                                .await;
                        }
                        Ok(Err(error)) => {
                            crate::metrics::tls_handshake("none", "failed");
                            tracing::debug!(%error, %peer, "TLS handshake failed")
                        }
                        Err(_) => {
                            crate::metrics::tls_handshake("none", "timeout");
                            crate::metrics::connection_refused("tls_handshake_timeout");
                            tracing::debug!(%peer, "TLS handshake timed out")
                        }
                    }
                }
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

/// Serves HTTP/1.1 requests on one connection (plain, or after the TLS
/// handshake) until it closes.
async fn serve_connection<S>(
    stream: S,
    state: SharedState,
    tls: Option<TlsInfo>,
    frontend: Option<Frontend>,
    watcher: Watcher,
    peer: std::net::SocketAddr,
    limits: ConnectionLimits,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let state = state.clone();
        let tls = tls.clone();
        let frontend = frontend.clone();
        async move {
            Ok::<_, std::convert::Infallible>(
                handle(&state, req, tls, frontend.as_ref(), peer).await,
            )
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(error) = watcher.watch(connection).await {
        if let Some(limit) = limit_that_cut(&error) {
            crate::metrics::connection_refused(limit);
        }
        tracing::debug!(%error, %peer, "connection ended with an error");
    }
}

/// The limit that ended a connection, if one did: a head over
/// [`MAX_HEAD_BYTES`] (answered 431), or a client that stopped reading
/// (`StallGuard`'s send timeout).
fn limit_that_cut(error: &hyper::Error) -> Option<&'static str> {
    if error.is_parse_too_large() {
        return Some("head_too_large");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return Some("send_timeout");
        }
        source = cause.source();
    }
    None
}

async fn handle(
    state: &SharedState,
    req: Request<Incoming>,
    tls: Option<TlsInfo>,
    frontend: Option<&Frontend>,
    peer: std::net::SocketAddr,
) -> Response<ResponseBody> {
    if let Some(response) = frontend.and_then(|frontend| frontend_answer(frontend, &req)) {
        return response;
    }
    let in_flight = crate::metrics::InFlight::start();
    let started = Instant::now();
    let request_id = coffer_crypto::random::hex_id(12).unwrap_or_else(|_| "0".repeat(24));
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let dialect = dialect_of(&req);
    let may_leave_body_unread = has_body(&req);
    // botocore sends `Expect: 100-continue` on every PutObject. An empty body
    // is answered at once, without `100 Continue`; botocore then keeps that
    // answer's status on the connection and, if a later request on it meets
    // EOF (say the server died), reports that stale status: a success the
    // server never gave. Closing the connection clears that state.
    let empty_body_expecting_continue = req.headers().contains_key(http::header::EXPECT)
        && crate::object_io::content_length(req.headers()) == Some(0);
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let tls_version = tls.as_ref().map(|t| t.version.name());
    let bytes_in = crate::object_io::content_length(req.headers()).unwrap_or(0);
    let mut facts = RequestFacts::default();
    let routed = route(state, req, &request_id, dialect, tls, peer, &mut facts);
    let mut response = match routed.await {
        Ok(response) => response,
        Err(error) => {
            if error.code == crate::error::ErrorCode::RequestTimeout {
                crate::metrics::connection_refused("body_read_timeout");
            }
            let failure = Failure {
                error: &error,
                resource: &path,
                request_id: &request_id,
                host: &host,
                head: method == Method::HEAD,
            };
            match dialect {
                Dialect::S3 => failure.s3_response(),
                Dialect::Oss => failure.oss_response(),
            }
        }
    };
    // An error may be sent before the body was read (a refused
    // `Expect: 100-continue` upload, whose client then sends no body, or
    // a body cut short): the connection's next bytes cannot be trusted to
    // start a request, so it is closed rather than reused.
    let refused_with_body = may_leave_body_unread && !response.status().is_success();
    let headers = response.headers_mut();
    if refused_with_body || empty_body_expecting_continue {
        headers.insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    if let Ok(value) = request_id.parse() {
        headers.insert(
            match dialect {
                Dialect::S3 => "x-amz-request-id",
                Dialect::Oss => "x-oss-request-id",
            },
            value,
        );
    }
    headers.insert(
        http::header::SERVER,
        http::HeaderValue::from_static("Coffer"),
    );
    let elapsed = started.elapsed();
    let operation = facts.operation.as_ref().map_or("-", Operation::name);
    let status = response.status().as_u16();
    // HEAD and other bodiless answers are `ResponseBody::Empty`: 0.
    let bytes_out = http_body::Body::size_hint(response.body())
        .exact()
        .unwrap_or(0);
    let dialect_name = match dialect {
        Dialect::S3 => "s3",
        Dialect::Oss => "oss",
    };
    crate::metrics::request_answered(&crate::metrics::RequestOutcome {
        operation,
        dialect: dialect_name,
        status,
        elapsed,
        received: bytes_in,
        sent: bytes_out,
    });
    drop(in_flight);
    if let Some(log) = &state.access_log {
        let (sse, sse_key_id) = crate::access_log::sse_of(response.headers(), dialect.prefix());
        log.record(&crate::access_log::AccessEntry {
            time: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            request_id: &request_id,
            remote_addr: peer.to_string(),
            principal: facts.access_key.as_deref(),
            operation,
            dialect: dialect_name,
            bucket: facts.bucket.as_deref(),
            key: facts.key.as_deref(),
            sse,
            sse_key_id,
            status,
            bytes_in,
            bytes_out,
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            tls: tls_version,
            authz: facts.decisions.text(),
        });
    }
    tracing::info!(
        request_id,
        op = operation,
        %method,
        path,
        dialect = ?dialect,
        tls = tls_version.unwrap_or("none"),
        status,
        ms = elapsed.as_millis() as u64,
        "request"
    );
    response
}

/// What routing learnt of a request, for its metrics and access-log line:
/// each part as soon as it is known (a request refused early has fewer).
#[derive(Default)]
struct RequestFacts {
    operation: Option<Operation>,
    bucket: Option<String>,
    key: Option<String>,
    /// The access key id that signed it, once the signature checked out.
    access_key: Option<String>,
    /// The authorization decisions that were not "owner or root" (`authz`).
    decisions: crate::authz::DecisionLog,
}

/// The frontend's answer to an unsigned request, if it has one.
fn frontend_answer(frontend: &Frontend, req: &Request<Incoming>) -> Option<Response<ResponseBody>> {
    let query = req.uri().query().unwrap_or_default();
    if coffer_auth::detect(req.headers(), query).is_some() {
        return None;
    }
    let response = frontend(req.method(), req.uri().path())?;
    tracing::debug!(method = %req.method(), path = req.uri().path(), status = response.status().as_u16(), "frontend");
    Some(response.map(ResponseBody::full))
}

/// Whether the request announces a body (length, chunked or 100-continue).
fn has_body(req: &Request<Incoming>) -> bool {
    let headers = req.headers();
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers.contains_key(http::header::EXPECT)
        || crate::object_io::content_length(headers).is_some_and(|n| n > 0)
}

/// The dialect a request speaks: an OSS signature, or (unsigned) any
/// `x-oss-*` header, means OSS; everything else is S3.
fn dialect_of(req: &Request<Incoming>) -> Dialect {
    let query = req.uri().query().unwrap_or_default();
    match coffer_auth::detect(req.headers(), query) {
        Some(scheme) if scheme.is_oss() => Dialect::Oss,
        Some(_) => Dialect::S3,
        None if req
            .headers()
            .keys()
            .any(|n| n.as_str().starts_with("x-oss-")) =>
        {
            Dialect::Oss
        }
        None => Dialect::S3,
    }
}

/// Runs the request's operation, noting in `facts` its name, target and
/// signer as soon as each is known (a request whose target or query cannot
/// be read has no operation).
async fn route(
    state: &SharedState,
    req: Request<Incoming>,
    request_id: &str,
    dialect: Dialect,
    tls: Option<TlsInfo>,
    peer: std::net::SocketAddr,
    facts: &mut RequestFacts,
) -> Result<Response<ResponseBody>, ApiError> {
    let (parts, body) = req.into_parts();
    // The KMS API (AWS KMS JSON protocol) shares the listeners.
    if crate::kms_api::is_kms_request(&parts) {
        facts.operation = Some(Operation::Kms(crate::kms_api::operation_of(&parts)));
        return Ok(crate::kms_api::serve(state, &parts, body).await);
    }
    // The Alibaba Cloud KMS API (RPC style, `Version=2016-01-20`) too.
    if crate::kms_api::alibaba::is_alibaba_request(&parts) {
        facts.operation = Some(Operation::Kms(crate::kms_api::alibaba::operation_of(
            &parts,
        )));
        return Ok(crate::kms_api::alibaba::serve(state, &parts, body, request_id).await);
    }
    let raw_path = parts.uri.path();
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let admin = raw_path.starts_with(crate::router::ADMIN_PREFIX);
    let target = if admin {
        Target {
            bucket: None,
            key: None,
        }
    } else {
        resolve_target(raw_path, host, &state.settings.domains)?
    };
    // Before authentication: probes are unsigned (and a signed request to a
    // bucket named `health` is never one).
    if let Some(probe) = crate::health::probe_of(&parts, &target) {
        facts.operation = Some(Operation::Health(probe));
        return Ok(crate::health::answer(state, probe, parts.method == Method::HEAD).await);
    }
    facts.bucket.clone_from(&target.bucket);
    facts.key.clone_from(&target.key);
    // Parsed before authentication to name the operation; a bad query
    // still fails only once the request is authenticated.
    let query = Query::parse(parts.uri.query().unwrap_or_default());
    let named = query
        .as_ref()
        .map(|query| Operation::of(&parts, &target, query, dialect))
        .map_err(ApiError::clone);
    facts.operation = named.as_ref().ok().cloned();
    let authenticated = auth::authenticate(state, &parts, &target)?;
    facts.access_key = authenticated.access_key;
    let (query, named) = (query?, named?);
    let req = ApiRequest {
        request_id: request_id.to_owned(),
        dialect,
        method: parts.method,
        bucket: target.bucket,
        key: target.key,
        query,
        headers: parts.headers,
        principal: authenticated.principal,
        scheme: authenticated.scheme,
        authorized: None,
        decisions: facts.decisions.clone(),
        peer,
        tls,
        body_read_timeout: state.settings.limits.body_read_timeout,
    };
    let payload = authenticated.payload;
    match named {
        Operation::Admin(endpoint) => admin::handle(state, &req, endpoint, body, payload).await,
        operation => ops::dispatch(state, operation, req, body, payload).await,
    }
}

/// A failed request, rendered in its dialect's error format.
struct Failure<'a> {
    error: &'a ApiError,
    resource: &'a str,
    request_id: &'a str,
    host: &'a str,
    head: bool,
}

impl Failure<'_> {
    /// S3 error XML; HEAD responses carry the status and headers only.
    fn s3_response(&self) -> Response<ResponseBody> {
        let mut w = XmlWriter::bare("Error");
        w.elem("Code", self.error.code.s3_code())
            .elem("Message", &self.error.message)
            .elem("Resource", self.resource)
            .elem("RequestId", self.request_id);
        self.response(w.finish())
    }

    /// OSS error XML (with `HostId` and `EC`); for HEAD, where there is no
    /// body, the SDKs read the same document from `x-oss-err` (base64).
    fn oss_response(&self) -> Response<ResponseBody> {
        let ec = self.error.oss_ec();
        let mut w = XmlWriter::bare("Error");
        w.elem("Code", self.error.code.oss_code())
            .elem("Message", &self.error.message)
            .elem("RequestId", self.request_id)
            .elem("HostId", self.host)
            .elem("EC", ec);
        let xml = w.finish();
        let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &xml);
        let mut response = self.response(xml);
        let headers = response.headers_mut();
        headers.insert("x-oss-ec", http::HeaderValue::from_static(ec));
        if self.head
            && let Ok(value) = http::HeaderValue::from_str(&encoded)
        {
            headers.insert("x-oss-err", value);
        }
        response
    }

    fn response(&self, xml: String) -> Response<ResponseBody> {
        if self.error.status().is_server_error() {
            tracing::warn!(
                code = self.error.code.s3_code(),
                request_id = self.request_id,
                "request failed"
            );
        }
        let body = if self.head {
            ResponseBody::Empty
        } else {
            ResponseBody::full(xml)
        };
        let mut response = Response::new(body);
        *response.status_mut() = self.error.status();
        let headers = response.headers_mut();
        if !self.head {
            headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/xml"),
            );
        }
        for (name, value) in &self.error.headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        if self.error.status() == StatusCode::METHOD_NOT_ALLOWED {
            headers.insert(
                http::header::ALLOW,
                http::HeaderValue::from_static("GET, PUT, POST, DELETE, HEAD"),
            );
        }
        response
    }
}
