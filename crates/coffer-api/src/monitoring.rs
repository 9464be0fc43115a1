//! The admin listener (`--admin-listen`): plain HTTP for probes and
//! scrapers, apart from the S3 listeners. It serves `GET`/`HEAD`
//! `/health/live` and `/health/ready` (as the S3 listeners do) and
//! `GET /metrics` (Prometheus text format), guarded by a bearer token when
//! one is configured; anything else is 404. Bind it to loopback or a
//! management network: the probes are unauthenticated by design.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use zeroize::Zeroizing;

use crate::body::ResponseBody;
use crate::health::{self, Probe};
use crate::state::SharedState;

/// How long a scrape or probe in flight may run on after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What guards `/metrics`: nothing, or `Authorization: Bearer <token>`.
pub struct MetricsAccess {
    token: Option<Zeroizing<String>>,
}

impl MetricsAccess {
    /// `token`: the bearer token scrapers must send; `None` for none.
    pub fn new(token: Option<Zeroizing<String>>) -> Self {
        Self { token }
    }

    fn allows(&self, req: &Request<Incoming>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let presented = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        coffer_auth::mac::constant_time_eq(presented.trim().as_bytes(), token.as_bytes())
    }
}

/// Serves the admin listener until `shutdown` completes.
pub async fn serve_admin(
    listener: TcpListener,
    state: SharedState,
    access: MetricsAccess,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let access = Arc::new(access);
    let graceful = GracefulShutdown::new();
    let header_read_timeout = state.settings.limits.header_read_timeout;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "admin listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (state, access) = (state.clone(), access.clone());
        let service = service_fn(move |req| {
            let (state, access) = (state.clone(), access.clone());
            async move { Ok::<_, std::convert::Infallible>(answer(&state, &access, req).await) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "admin connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    Ok(())
}

async fn answer(
    state: &SharedState,
    access: &MetricsAccess,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let head = req.method() == Method::HEAD;
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n", head);
    }
    match req.uri().path() {
        "/health/live" => health::answer(state, Probe::Live, head).await,
        "/health/ready" => health::answer(state, Probe::Ready, head).await,
        "/metrics" if !access.allows(&req) => {
            let mut response = plain(StatusCode::UNAUTHORIZED, "bearer token required\n", head);
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer realm=\"coffer-metrics\""),
            );
            response
        }
        "/metrics" => {
            let mut response = plain(StatusCode::OK, crate::metrics::render(), head);
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            response
        }
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found: /health/live, /health/ready or /metrics\n",
            head,
        ),
    }
}

fn plain(status: StatusCode, text: impl Into<String>, head: bool) -> Response<ResponseBody> {
    health::uncached(status, "text/plain; charset=utf-8", text.into(), head)
}
