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
    /// A PKCS#11 token (an HSM): `pkcs11:token=…?module-path=…&pin-source=file:…`.
    Pkcs11(coffer_kms_pkcs11::TokenUri),
    /// A KMIP 1.4 server over mutual TLS (`kmip://HOST:PORT?ca=…&cert=…&key=…`).
    Kmip(coffer_kms_kmip::KmipConfig),
    /// An AWS-KMS-protocol endpoint (`aws-kms:https://host:port?region=R`).
    AwsKms(coffer_kms_aws::AwsKmsSettings),
}

/// The schemes `--kms-backend` accepts, for error messages.
const SCHEMES: &str = "embedded, pkcs11, kmip, aws-kms";

impl KmsBackend {
    /// Parses `embedded` or `SCHEME:…`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let scheme = text.split_once(':').map_or(text, |(scheme, _)| scheme);
        match scheme {
            "" | "embedded" if !text.contains(':') => Ok(KmsBackend::Embedded),
            "pkcs11" => coffer_kms_pkcs11::TokenUri::parse(text)
                .map(KmsBackend::Pkcs11)
                .map_err(|e| format!("invalid --kms-backend: {e}")),
            "kmip" => {
                coffer_kms_kmip::KmipConfig::parse(&text["kmip:".len()..]).map(KmsBackend::Kmip)
            }
            "aws-kms" => Ok(KmsBackend::AwsKms(coffer_kms_aws::AwsKmsSettings::parse(
                &text["aws-kms:".len()..],
            )?)),
            _ => Err(format!(
                "invalid --kms-backend {scheme:?}: expected one of {SCHEMES} (docs/kms.md)"
            )),
        }
    }

    /// The KMS the server uses: `embedded` itself for [`KmsBackend::Embedded`], else the
    /// external backend, connected and checked before the server starts.
    pub async fn open(&self, embedded: Arc<dyn Kms>, region: &str) -> Result<Arc<dyn Kms>, String> {
        match self {
            KmsBackend::Embedded => Ok(embedded),
            KmsBackend::Pkcs11(uri) => open_pkcs11(uri.clone(), region).await,
            KmsBackend::Kmip(config) => open_kmip(config.clone(), region).await,
            KmsBackend::AwsKms(settings) => Ok(Arc::new(coffer_kms_aws::AwsKms::open(settings)?)),
        }
    }
}

/// Connects to the token (PKCS#11 blocks: off the async threads).
async fn open_pkcs11(
    uri: coffer_kms_pkcs11::TokenUri,
    region: &str,
) -> Result<Arc<dyn Kms>, String> {
    let region = region.to_owned();
    let kms = tokio::task::spawn_blocking(move || coffer_kms_pkcs11::Pkcs11Kms::open(uri, &region))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot open --kms-backend pkcs11: {e}; refusing to start"))?;
    Ok(Arc::new(kms))
}

/// Connects to the KMIP server and asks it once (blocking I/O: off the async threads).
async fn open_kmip(
    mut config: coffer_kms_kmip::KmipConfig,
    region: &str,
) -> Result<Arc<dyn Kms>, String> {
    config.region = region.to_owned();
    let kms = tokio::task::spawn_blocking(move || coffer_kms_kmip::KmipKms::connect(config))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot open --kms-backend kmip: {e}; refusing to start"))?;
    Ok(Arc::new(kms))
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

    #[test]
    fn parses_pkcs11_uris_without_a_pin() {
        let parsed = KmsBackend::parse(
            "pkcs11:token=coffer?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/p",
        )
        .expect("a pkcs11 URI");
        assert!(matches!(&parsed, KmsBackend::Pkcs11(uri) if uri.token == "coffer"));
        let error = KmsBackend::parse("pkcs11:token=coffer?module-path=/m&pin-value=1234")
            .expect_err("no PIN in the setting");
        assert!(error.contains("pin-value"), "{error}");
    }

    #[test]
    fn parses_aws_kms_endpoints() {
        let Ok(KmsBackend::AwsKms(settings)) =
            KmsBackend::parse("aws-kms:https://kms.example:443?region=eu-west-1")
        else {
            panic!("aws-kms: is a backend");
        };
        assert_eq!(settings.url, "https://kms.example:443");
        assert_eq!(settings.region, "eu-west-1");
        assert!(KmsBackend::parse("aws-kms:kms.example").is_err());
    }
}
