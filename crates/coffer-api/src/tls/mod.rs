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
    /// TLS 1.0 or 1.1 was asked for.
    ObsoleteVersion(String),
    #[error("unknown TLS version {0:?}: use 1.2 or 1.3")]
    /// A version name Coffer does not recognise.
    UnknownVersion(String),
    #[error("the TLS minimum version ({min}) is above the maximum ({max})")]
    /// The minimum version is above the maximum.
    VersionRange {
        /// The minimum asked for.
        min: String,
        /// The maximum asked for.
        max: String,
    },
    #[error("unknown cipher suite {name:?}; supported (IANA names): {supported}")]
    /// A cipher suite name rustls does not know.
    UnknownCipherSuite {
        /// The name given.
        name: String,
        /// The names that would do, for the message.
        supported: String,
    },
    #[error(
        "no allowed cipher suite can be used with {versions}: allow one, or narrow --tls-min-version/--tls-max-version"
    )]
    /// None of the allowed suites works with the allowed versions.
    NoUsableCipherSuite {
        /// The allowed versions, for the message.
        versions: String,
    },
    #[error("{path}: {message}")]
    /// A certificate or key file that cannot be read or used.
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    #[error("TLS configuration: {0}")]
    /// rustls refused the configuration.
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    /// The client-certificate verifier could not be built.
    ClientVerifier(String),
    #[error("generating the self-signed certificate: {0}")]
    /// The self-signed certificate could not be generated.
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
