//! HTTPS: the rustls server configuration (protocol versions, cipher
//! suites, key-exchange groups, client certificates), a certificate that is
//! reloaded without a restart, the self-signed certificate of the embedded
//! default, and what each connection negotiated.
//!
//! One crypto provider only: rustls on aws-lc-rs, the same library that
//! seals objects. TLS 1.0 and 1.1 do not exist here (rustls implements 1.2
//! and 1.3 only, and RFC 8996 deprecates both); asking for them is refused
//! at start.

mod certificate;
mod config;
mod connection;
mod self_signed;

pub use certificate::{CertificateFiles, ReloadingCertificate};
pub use config::{TlsOptions, TlsVersion, server_config, supported_cipher_suites};
pub use connection::TlsInfo;
pub use rustls::ServerConfig;
pub use self_signed::{SelfSigned, ensure_self_signed};

/// Why a TLS setting or certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "TLS {0} is not supported: Coffer speaks TLS 1.2 and 1.3 only (rustls does not implement 1.0 or 1.1, which RFC 8996 deprecates); use 1.2 or 1.3"
    )]
    ObsoleteVersion(String),
    #[error("unknown TLS version {0:?}: use 1.2 or 1.3")]
    UnknownVersion(String),
    #[error("the TLS minimum version ({min}) is above the maximum ({max})")]
    VersionRange { min: String, max: String },
    #[error("unknown cipher suite {name:?}; supported (IANA names): {supported}")]
    UnknownCipherSuite { name: String, supported: String },
    #[error(
        "no allowed cipher suite can be used with {versions}: allow one, or narrow --tls-min-version/--tls-max-version"
    )]
    NoUsableCipherSuite { versions: String },
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    ClientVerifier(String),
    #[error("generating the self-signed certificate: {0}")]
    Generate(String),
}

impl TlsError {
    fn file(path: &std::path::Path, message: impl std::fmt::Display) -> Self {
        TlsError::File {
            path: path.display().to_string(),
            message: message.to_string(),
        }
    }
}
