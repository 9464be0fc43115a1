//! What a connection negotiated, carried into each of its requests.

use std::future::Future;

use rustls::ServerConnection;

use super::TlsVersion;
use super::config::iana_name;

/// The TLS parameters of the connection a request came on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    pub version: TlsVersion,
    /// IANA name, e.g. `TLS_AES_256_GCM_SHA384`.
    pub cipher: String,
}

impl TlsInfo {
    /// After the handshake: `None` only if it has not completed.
    pub fn of(connection: &ServerConnection) -> Option<Self> {
        Some(TlsInfo {
            version: TlsVersion::from_rustls(connection.protocol_version()?)?,
            cipher: iana_name(connection.negotiated_cipher_suite()?),
        })
    }
}

tokio::task_local! {
    /// The request's connection, for the few checks far from the request
    /// itself (SSE-C must not cross plain HTTP).
    static CONNECTION: Option<TlsInfo>;
}

/// Runs a request's handling with its connection's TLS parameters in scope.
pub async fn scope<F: Future>(tls: Option<TlsInfo>, request: F) -> F::Output {
    CONNECTION.scope(tls, request).await
}

/// Whether the request being handled came over TLS. Outside [`scope`] (a
/// spawned task, a test) the answer is no: the check fails closed.
pub fn over_tls() -> bool {
    CONNECTION.try_with(Option::is_some).unwrap_or(false)
}
