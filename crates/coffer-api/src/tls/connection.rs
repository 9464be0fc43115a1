//! What a connection negotiated, carried into each of its requests
//! ([`crate::request::ApiRequest::tls`]): the per-bucket TLS policy and
//! SSE-C's TLS requirement both ask the request, never ambient state.

use rustls::ServerConnection;

use super::TlsVersion;
use super::config::iana_name;

/// The TLS parameters of the connection a request came on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// The negotiated protocol version.
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
