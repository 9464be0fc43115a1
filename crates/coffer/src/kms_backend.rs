//! Where the KMS's master keys live (`--kms-backend`): in Coffer's own keystore (`embedded`,
//! the default) or with an external system that keeps them — a PKCS#11 token, a KMIP server,
//! an AWS-KMS-protocol endpoint. Each external backend is its own module; this one parses the
//! setting and opens the backend it names in place of the embedded KMS.

use std::sync::Arc;

use coffer_kms::Kms;

/// The parsed `--kms-backend` setting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KmsBackend {
    /// Coffer's own keystore (the data dir's files, or PostgreSQL for gateways).
    #[default]
    Embedded,
    /// A KMIP 1.4 server over mutual TLS (`kmip://HOST:PORT?ca=…&cert=…&key=…`).
    Kmip(coffer_kms_kmip::KmipConfig),
}

/// The schemes `--kms-backend` accepts, for error messages.
const SCHEMES: &str = "embedded, kmip";

impl KmsBackend {
    /// Parses `embedded` or `SCHEME:…`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let scheme = text.split_once(':').map_or(text, |(scheme, _)| scheme);
        match scheme {
            "" | "embedded" if !text.contains(':') => Ok(KmsBackend::Embedded),
            "kmip" => {
                coffer_kms_kmip::KmipConfig::parse(&text["kmip:".len()..]).map(KmsBackend::Kmip)
            }
            _ => Err(format!(
                "invalid --kms-backend {scheme:?}: expected one of {SCHEMES} (docs/kms.md)"
            )),
        }
    }

    /// The KMS the server uses: `embedded` itself for [`KmsBackend::Embedded`], else the
    /// external backend, connected and checked before the server starts.
    pub async fn open(&self, embedded: Arc<dyn Kms>) -> Result<Arc<dyn Kms>, String> {
        match self {
            KmsBackend::Embedded => Ok(embedded),
            KmsBackend::Kmip(config) => {
                let config = config.clone();
                let kms =
                    tokio::task::spawn_blocking(move || coffer_kms_kmip::KmipKms::connect(config))
                        .await
                        .map_err(|e| format!("the kmip backend did not open: {e}"))??;
                Ok(Arc::new(kms))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_embedded_and_refuses_unknown_schemes() {
        assert_eq!(KmsBackend::parse("embedded"), Ok(KmsBackend::Embedded));
        assert_eq!(KmsBackend::parse(" embedded "), Ok(KmsBackend::Embedded));
        let error = KmsBackend::parse("vault:https://v").expect_err("vault is not a backend yet");
        assert!(
            error.contains("\"vault\"") && error.contains("embedded"),
            "{error}"
        );
    }
}
