//! From command-line TLS options to a rustls [`ServerConfig`].

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls::{NamedGroup, RootCertStore, ServerConfig, SupportedCipherSuite};

use super::TlsError;

/// A TLS protocol version Coffer can negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl TlsVersion {
    /// The name OSS and OpenSSL use: `TLSv1.2`, `TLSv1.3`.
    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }

    /// The number policies compare against (`s3:TlsVersion`): 1.2, 1.3.
    pub fn number(self) -> f64 {
        match self {
            TlsVersion::Tls12 => 1.2,
            TlsVersion::Tls13 => 1.3,
        }
    }

    fn rustls(self) -> &'static rustls::SupportedProtocolVersion {
        match self {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        }
    }

    pub(super) fn from_rustls(version: rustls::ProtocolVersion) -> Option<Self> {
        match version {
            rustls::ProtocolVersion::TLSv1_2 => Some(TlsVersion::Tls12),
            rustls::ProtocolVersion::TLSv1_3 => Some(TlsVersion::Tls13),
            _ => None,
        }
    }
}

impl FromStr for TlsVersion {
    type Err = TlsError;

    /// `1.2`, `1.3`, or the same with a `TLSv`/`TLS` prefix.
    fn from_str(text: &str) -> Result<Self, TlsError> {
        let lower = text.trim().to_ascii_lowercase();
        let number = lower
            .strip_prefix("tlsv")
            .or_else(|| lower.strip_prefix("tls"))
            .unwrap_or(&lower);
        match number {
            "1.2" => Ok(TlsVersion::Tls12),
            "1.3" => Ok(TlsVersion::Tls13),
            "1.0" | "1" | "1.1" => Err(TlsError::ObsoleteVersion(number.to_owned())),
            _ => Err(TlsError::UnknownVersion(text.to_owned())),
        }
    }
}

/// What the HTTPS listener negotiates.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// The oldest version accepted.
    pub min_version: TlsVersion,
    /// The newest version offered.
    pub max_version: TlsVersion,
    /// Allowed cipher suites by IANA name; empty means rustls's defaults.
    pub cipher_suites: Vec<String>,
    /// Offer hybrid post-quantum key exchange (X25519MLKEM768), preferred.
    pub post_quantum: bool,
    /// PEM bundle of CAs whose client certificates are required (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self {
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            cipher_suites: Vec::new(),
            post_quantum: true,
            client_ca: None,
        }
    }
}

/// The IANA name of a suite. rustls writes TLS 1.3 suites as `TLS13_…`;
/// IANA (and OpenSSL's `-ciphersuites`) as `TLS_…`.
pub(super) fn iana_name(suite: SupportedCipherSuite) -> String {
    let name = format!("{:?}", suite.suite());
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

/// Every suite the provider implements, by IANA name.
pub fn supported_cipher_suites() -> Vec<String> {
    aws_lc_rs::ALL_CIPHER_SUITES
        .iter()
        .map(|s| iana_name(*s))
        .collect()
}

fn suite_version(suite: SupportedCipherSuite) -> TlsVersion {
    match suite {
        SupportedCipherSuite::Tls12(_) => TlsVersion::Tls12,
        SupportedCipherSuite::Tls13(_) => TlsVersion::Tls13,
    }
}

/// The provider narrowed to the options: allowed suites of the allowed
/// versions, in the provider's order of preference, and the key-exchange
/// groups (post-quantum hybrid first, unless switched off).
fn provider(options: &TlsOptions) -> Result<CryptoProvider, TlsError> {
    let mut provider = aws_lc_rs::default_provider();
    let in_range = |v: TlsVersion| v >= options.min_version && v <= options.max_version;
    let mut suites: Vec<SupportedCipherSuite> = if options.cipher_suites.is_empty() {
        provider.cipher_suites.clone()
    } else {
        for name in &options.cipher_suites {
            let known = aws_lc_rs::ALL_CIPHER_SUITES.iter().any(|s| {
                iana_name(*s).eq_ignore_ascii_case(name.trim())
                    || format!("{:?}", s.suite()).eq_ignore_ascii_case(name.trim())
            });
            if !known {
                return Err(TlsError::UnknownCipherSuite {
                    name: name.clone(),
                    supported: supported_cipher_suites().join(", "),
                });
            }
        }
        aws_lc_rs::ALL_CIPHER_SUITES
            .iter()
            .copied()
            .filter(|s| {
                options.cipher_suites.iter().any(|name| {
                    iana_name(*s).eq_ignore_ascii_case(name.trim())
                        || format!("{:?}", s.suite()).eq_ignore_ascii_case(name.trim())
                })
            })
            .collect()
    };
    suites.retain(|s| in_range(suite_version(*s)));
    // Each allowed version needs a suite, or a client offering only that
    // version would fail the handshake with a confusing error.
    for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
        if in_range(version) && !suites.iter().any(|s| suite_version(*s) == version) {
            return Err(TlsError::NoUsableCipherSuite {
                versions: version.name().to_owned(),
            });
        }
    }
    provider.cipher_suites = suites;
    if !options.post_quantum {
        provider
            .kx_groups
            .retain(|g| g.name() != NamedGroup::X25519MLKEM768);
    }
    Ok(provider)
}

/// The server configuration for the HTTPS listener. Certificates come from
/// `certificates` at each handshake, so a reload needs no new config.
pub fn server_config(
    options: &TlsOptions,
    certificates: Arc<dyn ResolvesServerCert>,
) -> Result<Arc<ServerConfig>, TlsError> {
    if options.min_version > options.max_version {
        return Err(TlsError::VersionRange {
            min: options.min_version.name().to_owned(),
            max: options.max_version.name().to_owned(),
        });
    }
    let provider = Arc::new(provider(options)?);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [TlsVersion::Tls12, TlsVersion::Tls13]
            .into_iter()
            .filter(|v| *v >= options.min_version && *v <= options.max_version)
            .map(TlsVersion::rustls)
            .collect();
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let builder = match &options.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| TlsError::file(path, e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TlsError::file(path, e))?;
            if certs.is_empty() {
                return Err(TlsError::file(path, "no certificate in the client CA file"));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| TlsError::file(path, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .map_err(|e| TlsError::ClientVerifier(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(certificates);
    // The server's order of preference wins: AES-256-GCM first.
    config.ignore_client_order = true;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_old_ones_are_refused() {
        assert_eq!("1.2".parse::<TlsVersion>().ok(), Some(TlsVersion::Tls12));
        assert_eq!(
            "TLSv1.3".parse::<TlsVersion>().ok(),
            Some(TlsVersion::Tls13)
        );
        for old in ["1.0", "1.1", "TLSv1.1"] {
            let error = old.parse::<TlsVersion>().expect_err("refused");
            assert!(error.to_string().contains("not supported"), "{error}");
        }
        assert!(matches!(
            "2.0".parse::<TlsVersion>(),
            Err(TlsError::UnknownVersion(_))
        ));
    }

    #[test]
    fn cipher_suites_by_iana_name() {
        let names = supported_cipher_suites();
        assert!(names.contains(&"TLS_AES_256_GCM_SHA384".to_owned()));
        assert!(names.contains(&"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".to_owned()));
        let options = TlsOptions {
            min_version: TlsVersion::Tls13,
            cipher_suites: vec!["TLS_AES_256_GCM_SHA384".into()],
            ..TlsOptions::default()
        };
        let p = provider(&options).expect("valid");
        assert_eq!(p.cipher_suites.len(), 1);
        let unknown = TlsOptions {
            cipher_suites: vec!["TLS_RSA_WITH_RC4_128_MD5".into()],
            ..TlsOptions::default()
        };
        let error = provider(&unknown).expect_err("unknown suite refused");
        assert!(
            error.to_string().contains("TLS_AES_128_GCM_SHA256"),
            "{error}"
        );
        // Only 1.3 suites while 1.2 is allowed: refused, not a silent 1.2 outage.
        let only13 = TlsOptions {
            cipher_suites: vec!["TLS_AES_256_GCM_SHA384".into()],
            ..TlsOptions::default()
        };
        assert!(matches!(
            provider(&only13),
            Err(TlsError::NoUsableCipherSuite { .. })
        ));
    }

    #[test]
    fn post_quantum_is_offered_first_and_can_be_switched_off() {
        let on = provider(&TlsOptions::default()).expect("valid");
        assert_eq!(on.kx_groups[0].name(), NamedGroup::X25519MLKEM768);
        let off = provider(&TlsOptions {
            post_quantum: false,
            ..TlsOptions::default()
        })
        .expect("valid");
        assert!(
            off.kx_groups
                .iter()
                .all(|g| g.name() != NamedGroup::X25519MLKEM768)
        );
        assert!(!off.kx_groups.is_empty());
    }

    #[test]
    fn min_above_max_is_refused() {
        let options = TlsOptions {
            min_version: TlsVersion::Tls13,
            max_version: TlsVersion::Tls12,
            ..TlsOptions::default()
        };
        #[derive(Debug)]
        struct NoCert;
        impl ResolvesServerCert for NoCert {
            fn resolve(
                &self,
                _: rustls::server::ClientHello<'_>,
            ) -> Option<Arc<rustls::sign::CertifiedKey>> {
                None
            }
        }
        assert!(matches!(
            server_config(&options, Arc::new(NoCert)),
            Err(TlsError::VersionRange { .. })
        ));
    }
}
