//! A blocking KMIP client over mutual TLS: one request message, one response message, on
//! connections kept open between calls. The KMS traits are synchronous and called from
//! blocking threads (never from async tasks, except `usable_now`, which this crate answers
//! from memory), so plain `std::net` sockets with timeouts are the honest fit: no runtime of
//! its own, as the PostgreSQL keystore needs, and a dead server costs at most the timeout.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use zeroize::Zeroizing;

use crate::config::KmipConfig;
use crate::protocol::{self, Operation, Reply};
use crate::ttlv::{self, Item};

/// Idle connections kept for reuse (more concurrent calls open more, then close them).
const MAX_IDLE: usize = 8;
/// The largest reply accepted (a Locate of every key is the biggest Coffer asks for).
const MAX_REPLY: usize = 4 << 20;

type Connection = StreamOwned<ClientConnection, TcpStream>;

/// Why a call got no reply.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The server could not be reached or the TLS session failed; the message names it.
    #[error("{0}")]
    Unreachable(String),
    /// The server answered something that is not a KMIP reply to the request.
    #[error("{0}")]
    Protocol(String),
}

/// The client: where the server is, the TLS settings, and idle connections.
pub struct KmipClient {
    config: KmipConfig,
    tls: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    idle: Mutex<Vec<Connection>>,
}

impl KmipClient {
    /// Reads the CA, certificate and key files; connects on the first call.
    pub fn new(config: KmipConfig) -> Result<Self, String> {
        let tls = Arc::new(tls_config(&config)?);
        let server_name = ServerName::try_from(config.server_name.clone()).map_err(|_| {
            format!(
                "invalid KMIP server name {:?} (server-name=)",
                config.server_name
            )
        })?;
        Ok(Self {
            config,
            tls,
            server_name,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// `HOST:PORT`, for messages.
    pub fn endpoint(&self) -> &str {
        &self.config.endpoint
    }

    /// The settings the client was made with.
    pub fn config(&self) -> &KmipConfig {
        &self.config
    }

    /// Sends one operation and reads its reply. A kept connection the server has closed
    /// meanwhile is replaced once; a timeout is not retried (the server may have acted).
    pub fn call(&self, operation: Operation, payload: Vec<Item>) -> Result<Reply, CallError> {
        let request = protocol::request(operation, payload).encode();
        let reused = self.take_idle();
        let was_reused = reused.is_some();
        let mut connection = match reused {
            Some(connection) => connection,
            None => self.connect()?,
        };
        let response = match exchange(&mut connection, &request) {
            Ok(response) => response,
            Err(error) if was_reused && closed_by_peer(&error) => {
                connection = self.connect()?;
                exchange(&mut connection, &request).map_err(|e| self.unreachable(e))?
            }
            Err(error) => return Err(self.unreachable(error)),
        };
        let message = Item::decode(&response).map_err(|error| {
            CallError::Protocol(format!(
                "KMIP server {} sent a malformed reply: {error}",
                self.endpoint()
            ))
        })?;
        let reply = protocol::reply(message, operation).map_err(|error| {
            CallError::Protocol(format!("KMIP server {}: {error}", self.endpoint()))
        })?;
        self.keep_idle(connection);
        Ok(reply)
    }

    fn connect(&self) -> Result<Connection, CallError> {
        let timeout = self.config.timeout;
        let addresses = self
            .config
            .endpoint
            .to_socket_addrs()
            .map_err(|e| self.unreachable(e))?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for address in addresses {
            match TcpStream::connect_timeout(&address, timeout) {
                Ok(socket) => {
                    socket
                        .set_read_timeout(Some(timeout))
                        .map_err(|e| self.unreachable(e))?;
                    socket
                        .set_write_timeout(Some(timeout))
                        .map_err(|e| self.unreachable(e))?;
                    socket.set_nodelay(true).map_err(|e| self.unreachable(e))?;
                    let session = ClientConnection::new(self.tls.clone(), self.server_name.clone())
                        .map_err(|e| self.unreachable(io::Error::other(e)))?;
                    return Ok(StreamOwned::new(session, socket));
                }
                Err(error) => last = error,
            }
        }
        Err(self.unreachable(last))
    }

    fn unreachable(&self, error: io::Error) -> CallError {
        CallError::Unreachable(format!(
            "KMIP server {} is unreachable: {error}",
            self.endpoint()
        ))
    }

    fn take_idle(&self) -> Option<Connection> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn keep_idle(&self, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
    }
}

/// Whether an error says the other side closed the connection (an idle one, typically).
fn closed_by_peer(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

/// Writes a request and reads one whole TTLV reply (zeroized: it may hold a data key).
fn exchange(connection: &mut Connection, request: &[u8]) -> io::Result<Zeroizing<Vec<u8>>> {
    connection.write_all(request)?;
    connection.flush()?;
    let mut header = [0u8; ttlv::HEADER_LEN];
    connection.read_exact(&mut header)?;
    let length = ttlv::announced_len(&header);
    if length > MAX_REPLY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a reply of {length} bytes (at most {MAX_REPLY})"),
        ));
    }
    let mut reply = Zeroizing::new(vec![0u8; ttlv::HEADER_LEN + length]);
    reply[..ttlv::HEADER_LEN].copy_from_slice(&header);
    connection.read_exact(&mut reply[ttlv::HEADER_LEN..])?;
    Ok(reply)
}

/// rustls on aws-lc-rs, TLS 1.2 and 1.3, trusting only `ca`, presenting `cert` and `key`.
fn tls_config(config: &KmipConfig) -> Result<ClientConfig, String> {
    let read_error = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        format!("cannot read the KMIP {what} {}: {e}", path.display())
    };
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(&config.ca)
        .map_err(|e| read_error("CA file", &config.ca, &e))?
    {
        let certificate = certificate.map_err(|e| read_error("CA file", &config.ca, &e))?;
        roots
            .add(certificate)
            .map_err(|e| read_error("CA file", &config.ca, &e))?;
    }
    if roots.is_empty() {
        return Err(format!("{} holds no CA certificate", config.ca.display()));
    }
    let chain = CertificateDer::pem_file_iter(&config.cert)
        .map_err(|e| read_error("client certificate", &config.cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error("client certificate", &config.cert, &e))?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", config.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&config.key)
        .map_err(|e| read_error("client key", &config.key, &e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("unusable KMIP client certificate or key: {e}"))
}
