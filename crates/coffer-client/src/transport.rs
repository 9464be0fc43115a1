//! A small HTTP/1 client that signs every request with SigV4.

use std::time::Duration;

use bytes::Bytes;
use coffer_auth::{Secret, sigv4};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};

use crate::connector::{CA_FILE_VARS, Connector, tls_config};

/// Why a request to the server did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint URL is not `http://` or `https://` with a host.
    #[error("invalid endpoint URL {0:?}: expected http://host:port or https://host:port")]
    BadEndpoint(String),
    /// The request never got an answer (connection refused, reset, …).
    #[error("{}", describe_transport(endpoint, message, *refused))]
    Transport {
        /// The endpoint URL.
        endpoint: String,
        /// What went wrong.
        message: String,
        /// Nothing listens at the endpoint: `message` already says what to check.
        refused: bool,
    },
    /// The server did not answer within the client's response timeout.
    #[error("request to {endpoint} timed out: no answer within {waited:?}")]
    Timeout {
        /// The endpoint URL.
        endpoint: String,
        /// How long the client waited.
        waited: Duration,
    },
    /// The server answered with an error status.
    #[error("the server answered {status}: {message}")]
    Server {
        /// The HTTP status.
        status: StatusCode,
        /// `Code: Message` from the error body.
        message: String,
    },
    /// The answer did not decode (XML, JSON, or a broken body).
    #[error("the server's answer could not be read: {0}")]
    BadResponse(String),
    /// TLS could not be set up (CA file missing or unreadable).
    #[error("TLS: {0}")]
    Tls(String),
}

/// Where the server is and who signs.
pub struct Endpoint {
    /// `http://host:port` or `https://host:port`.
    pub url: String,
    /// The access key id to sign with.
    pub access_key: String,
    /// The secret access key to sign with.
    pub secret_key: Secret,
    /// The region of the SigV4 credential scope.
    pub region: String,
}

/// A transport error's text: a refused connection's message already names the endpoint and
/// what to check.
fn describe_transport(endpoint: &str, message: &str, refused: bool) -> String {
    if refused {
        message.to_owned()
    } else {
        format!("request to {endpoint} failed: {message}")
    }
}

/// How long a client waits. `None` waits as long as the system does:
/// interactive commands keep the defaults; a server calling another server
/// (an upstream blob store) bounds both, so that a dead peer is an error,
/// not a hang.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    /// The TCP connect (a refused connection fails at once whatever this is).
    pub connect: Option<Duration>,
    /// From sending a request (body included) to the answer's status line
    /// and headers. The body is not bounded here: a streaming reader bounds
    /// each of its reads itself ([`SignedClient::timeouts`]).
    pub response: Option<Duration>,
}

/// An HTTP/1 client for one endpoint that signs every request with SigV4.
pub struct SignedClient {
    endpoint: Endpoint,
    base: Uri,
    http: Client<Connector, Full<Bytes>>,
    timeouts: Timeouts,
    /// Sent as `x-amz-security-token` (temporary credentials), and signed.
    session_token: Option<Secret>,
    /// Appended to "connection refused — is the server at URL running?".
    refused_hint: Option<String>,
}

impl SignedClient {
    /// A client for `endpoint`, without timeouts. An `https` endpoint trusts
    /// only the CA certificate named by `COFFER_CA_FILE` or `AWS_CA_BUNDLE`.
    pub fn new(endpoint: Endpoint) -> Result<Self, ClientError> {
        Self::with_timeouts(endpoint, Timeouts::default())
    }

    /// [`SignedClient::new`] with bounded waits.
    pub fn with_timeouts(endpoint: Endpoint, timeouts: Timeouts) -> Result<Self, ClientError> {
        let ca_file = CA_FILE_VARS
            .iter()
            .find_map(|name| std::env::var_os(name).filter(|v| !v.is_empty()));
        Self::with_ca_file(
            endpoint,
            timeouts,
            ca_file.as_deref().map(std::path::Path::new),
        )
    }

    /// [`SignedClient::with_timeouts`], an `https` endpoint checked against the CA
    /// certificates of `ca_file` (PEM) rather than the environment's.
    pub fn with_ca_file(
        endpoint: Endpoint,
        timeouts: Timeouts,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self, ClientError> {
        let base: Uri = endpoint
            .url
            .trim_end_matches('/')
            .parse()
            .map_err(|_| ClientError::BadEndpoint(endpoint.url.clone()))?;
        let https = match base.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(ClientError::BadEndpoint(endpoint.url.clone())),
        };
        if base.authority().is_none() {
            return Err(ClientError::BadEndpoint(endpoint.url.clone()));
        }
        // https trusts only the CA file given: a self-hosted server's certificate is rarely
        // in a public store.
        let tls = match (https, ca_file) {
            (false, _) => None,
            (true, Some(ca_file)) => Some(tls_config(ca_file).map_err(ClientError::Tls)?),
            (true, None) => {
                return Err(ClientError::Tls(format!(
                    "an https endpoint needs the server's CA certificate (PEM): pass --ca-bundle \
                     or set {} or {}",
                    CA_FILE_VARS[1], CA_FILE_VARS[0]
                )));
            }
        };
        let http =
            Client::builder(TokioExecutor::new()).build(Connector::new(tls, timeouts.connect));
        Ok(Self {
            endpoint,
            base,
            http,
            timeouts,
            session_token: None,
            refused_hint: None,
        })
    }

    /// Sends `token` as `x-amz-security-token` with every request, as the AWS SDKs do with
    /// temporary credentials (`AWS_SESSION_TOKEN`).
    pub fn with_session_token(mut self, token: Secret) -> Self {
        self.session_token = Some(token);
        self
    }

    /// What a refused connection's error adds after "is the server at URL running?": how to
    /// point the client elsewhere (`set --endpoint-url or AWS_ENDPOINT_URL`).
    pub fn with_refused_hint(mut self, hint: impl Into<String>) -> Self {
        self.refused_hint = Some(hint.into());
        self
    }

    /// The endpoint URL, as given: what error messages name.
    pub fn url(&self) -> &str {
        &self.endpoint.url
    }

    /// The waits this client bounds.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Sends a signed request; `path` is already percent-encoded. Errors
    /// (non-2xx) come back as [`ClientError::Server`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let response = self
            .request(method, path, HeaderMap::new(), body, true)
            .await?;
        if !response.status.is_success() {
            return Err(ClientError::Server {
                status: response.status,
                message: error_message(&response.body),
            });
        }
        Ok((response.status, response.body))
    }

    /// Sends a signed request with extra headers and returns whatever the
    /// server answered. `sign_payload`: hash the body into the signature
    /// (else `UNSIGNED-PAYLOAD`, as load generators do to spare the CPU).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Vec<u8>,
        sign_payload: bool,
    ) -> Result<ClientResponse, ClientError> {
        self.request_for("s3", method, path, headers, body, sign_payload)
            .await
    }

    /// [`SignedClient::request`] signed for another service of the same
    /// endpoint (`kms` for the KMS API).
    pub async fn request_for(
        &self,
        service: &str,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Vec<u8>,
        sign_payload: bool,
    ) -> Result<ClientResponse, ClientError> {
        let response = self
            .request_streaming(service, method, path, headers, body, sign_payload)
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_body(response).await?;
        Ok(ClientResponse {
            status,
            headers,
            body,
        })
    }

    /// Sends a signed request and hands back the answer with its body still
    /// unread, so that large downloads stream. `path` may carry a query
    /// (`/bucket?list-type=2&prefix=a`), already percent-encoded.
    pub async fn request_streaming(
        &self,
        service: &str,
        method: Method,
        path: &str,
        mut headers: HeaderMap,
        body: impl Into<Bytes>,
        sign_payload: bool,
    ) -> Result<http::Response<Incoming>, ClientError> {
        let body = body.into();
        let authority = self
            .base
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        headers.insert(
            http::header::HOST,
            HeaderValue::from_str(&authority)
                .map_err(|_| ClientError::BadEndpoint(self.endpoint.url.clone()))?,
        );
        if let Some(token) = &self.session_token {
            let mut value = HeaderValue::from_str(token.expose_secret())
                .map_err(|_| ClientError::BadEndpoint("unusable session token".into()))?;
            value.set_sensitive(true);
            headers.insert("x-amz-security-token", value);
        }
        let payload_hash = if sign_payload {
            hex::encode(Sha256::digest(&body))
        } else {
            sigv4::UNSIGNED_PAYLOAD.to_owned()
        };
        let params = sigv4::SigningParams {
            access_key: &self.endpoint.access_key,
            secret: &self.endpoint.secret_key,
            region: &self.endpoint.region,
            service,
            now: time::OffsetDateTime::now_utc(),
        };
        let (raw_path, raw_query) = path.split_once('?').unwrap_or((path, ""));
        sigv4::sign(
            method.as_str(),
            raw_path,
            raw_query,
            &mut headers,
            &payload_hash,
            &params,
        )
        .map_err(|e| ClientError::BadEndpoint(e.to_string()))?;
        let uri = format!("{}{}", self.endpoint.url.trim_end_matches('/'), path);
        let mut request = Request::builder()
            .method(method)
            .uri(&uri)
            .body(Full::new(body))
            .map_err(|_| ClientError::BadEndpoint(uri.clone()))?;
        *request.headers_mut() = headers;
        let answer = self.http.request(request);
        let answer =
            match self.timeouts.response {
                Some(waited) => tokio::time::timeout(waited, answer).await.map_err(|_| {
                    ClientError::Timeout {
                        endpoint: self.endpoint.url.clone(),
                        waited,
                    }
                })?,
                None => answer.await,
            };
        answer.map_err(|e| self.transport_error(&e))
    }

    fn transport_error(&self, error: &(dyn std::error::Error + 'static)) -> ClientError {
        let endpoint = self.endpoint.url.clone();
        if !is_refused(error) {
            return ClientError::Transport {
                endpoint,
                message: error_chain(error),
                refused: false,
            };
        }
        let hint = self
            .refused_hint
            .as_deref()
            .map(|hint| format!(" ({hint})"))
            .unwrap_or_default();
        ClientError::Transport {
            message: format!("connection refused — is the server at {endpoint} running?{hint}"),
            endpoint,
            refused: true,
        }
    }
}

/// Whether `error` or one of its causes is a refused TCP connection: nothing listens there.
fn is_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(cause) = next {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        next = cause.source();
    }
    false
}

/// An error and its causes, `outer: inner: …`: hyper's own message alone
/// ("client error (Connect)") hides why a connection or handshake failed.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Reads a whole answer body (small answers only: XML, JSON, errors).
pub(crate) async fn read_body(response: http::Response<Incoming>) -> Result<Bytes, ClientError> {
    Ok(response
        .into_body()
        .collect()
        .await
        .map_err(|e| ClientError::BadResponse(e.to_string()))?
        .to_bytes())
}

/// A server's answer, whatever its status.
pub struct ClientResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole response body.
    pub body: Bytes,
}

impl ClientResponse {
    /// The `Code: Message` of an error answer.
    pub fn error_message(&self) -> String {
        error_message(&self.body)
    }
}

/// The `<Code>` and `<Message>` of an S3 error body, or the raw text.
pub(crate) fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let element = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].to_owned())
    };
    match (element("Code"), element("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => text.into_owned(),
    }
}
