//! The OSS `?httpsConfig` document, the per-bucket TLS rule of the OSS dialect, as plain data:
//! `HttpsConfiguration/TLS/{Enable,TLSVersion*}`. When enabled, plain HTTP and versions not
//! listed are refused (`authz` asks [`https_config_refusal`] before every operation on the
//! bucket), with `403 AccessDenied` whose message names the rule. S3's equivalent is a bucket
//! policy conditioned on `aws:SecureTransport` / `s3:TlsVersion`: ordinary condition keys of
//! the policy evaluation. The handlers are `ops/tls_policy.rs`.

use coffer_store::BucketRecord;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::tls::TlsInfo;
use crate::xml;

/// Bucket config key of the OSS httpsConfig (JSON of [`HttpsConfig`]).
pub const HTTPS_CONFIG_KEY: &str = "httpsConfig";
/// The versions OSS lets a bucket list.
const OSS_VERSIONS: [&str; 4] = ["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"];

// ---------------------------------------------------------------- httpsConfig

#[derive(Debug, Deserialize)]
struct HttpsConfigurationXml {
    #[serde(rename = "TLS")]
    tls: TlsXml,
    #[serde(rename = "CipherSuite")]
    cipher_suite: Option<CipherSuiteXml>,
}

#[derive(Debug, Deserialize)]
struct TlsXml {
    #[serde(rename = "Enable")]
    enable: bool,
    #[serde(rename = "TLSVersion", default)]
    versions: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct CipherSuiteXml {
    #[serde(rename = "Enable")]
    enable: Option<bool>,
    #[serde(rename = "StrongCipherSuite")]
    strong: Option<bool>,
    #[serde(rename = "CustomCipherSuite", default)]
    custom: Vec<String>,
    #[serde(rename = "TLS13CustomCipherSuite", default)]
    tls13_custom: Vec<String>,
}

/// A bucket's httpsConfig as stored. The cipher-suite part is kept and
/// returned, not enforced (the listener's own allow-list governs suites).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpsConfig {
    /// Whether the bucket refuses requests over other TLS versions (and plain HTTP).
    pub enable: bool,
    /// The TLS versions allowed, as OSS names them (`TLSv1.2`, `TLSv1.3`).
    pub versions: Vec<String>,
    /// The `CipherSuite` part, as the client sent it.
    #[serde(default)]
    pub cipher_suite: Option<StoredCipherSuite>,
}

/// The `CipherSuite` part of an httpsConfig, kept to be returned by a GET.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCipherSuite {
    /// `Enable`.
    pub enable: Option<bool>,
    /// `StrongCipherSuite`.
    pub strong: Option<bool>,
    /// `CustomCipherSuite` entries (TLS 1.2 and below).
    pub custom: Vec<String>,
    /// `TLS13CustomCipherSuite` entries.
    pub tls13_custom: Vec<String>,
}

impl HttpsConfig {
    /// The bucket's stored httpsConfig, if any (a damaged one requires TLS 1.3).
    pub fn of(bucket: &BucketRecord) -> Option<Self> {
        let json = bucket.config.get(HTTPS_CONFIG_KEY)?;
        match serde_json::from_str(json) {
            Ok(config) => Some(config),
            Err(error) => {
                // Written by this module only; unreadable means damaged.
                // Fail closed: require TLS 1.3 rather than nothing.
                tracing::error!(%error, bucket = %bucket.name, "stored httpsConfig unreadable");
                Some(HttpsConfig {
                    enable: true,
                    versions: vec!["TLSv1.3".into()],
                    cipher_suite: None,
                })
            }
        }
    }

    /// Reads a PutBucketHttpsConfig body: `InvalidArgument` for a TLS version OSS does not
    /// name, or for `Enable` without TLSv1.2 or TLSv1.3 among the versions.
    pub fn parse(body: &[u8]) -> ApiResult<Self> {
        let doc: HttpsConfigurationXml = xml::parse(body)?;
        let mut versions = Vec::new();
        for version in doc.tls.versions {
            let version = version.trim().to_owned();
            if !OSS_VERSIONS.contains(&version.as_str()) {
                return Err(ApiError::invalid_argument(format!(
                    "TLSVersion {version:?} is not one of {}.",
                    OSS_VERSIONS.join(", ")
                )));
            }
            if !versions.contains(&version) {
                versions.push(version);
            }
        }
        if doc.tls.enable && !versions.iter().any(|v| v == "TLSv1.2" || v == "TLSv1.3") {
            return Err(ApiError::invalid_argument(
                "With TLS Enable=true, TLSVersion must list TLSv1.2 or TLSv1.3: Coffer speaks TLS 1.2 and 1.3 only (TLS 1.0 and 1.1 are not supported).",
            ));
        }
        Ok(HttpsConfig {
            enable: doc.tls.enable,
            versions,
            cipher_suite: doc.cipher_suite.map(|c| StoredCipherSuite {
                enable: c.enable,
                strong: c.strong,
                custom: c.custom,
                tls13_custom: c.tls13_custom,
            }),
        })
    }

    /// The refusal for a request on `tls`, if this config refuses it.
    fn refusal(&self, tls: Option<&TlsInfo>) -> Option<String> {
        if !self.enable {
            return None;
        }
        let allowed = self.versions.join(", ");
        match tls {
            None => Some(format!(
                "Access denied by the bucket's httpsConfig (TLS Enable=true, TLSVersion {allowed}): this request came over plain HTTP; use HTTPS."
            )),
            Some(tls) if !self.versions.iter().any(|v| v == tls.version.name()) => Some(format!(
                "Access denied by the bucket's httpsConfig (TLS Enable=true, TLSVersion {allowed}): this connection negotiated {}.",
                tls.version.name()
            )),
            Some(_) => None,
        }
    }
}
// ---------------------------------------------------------------- enforcement

/// Why the bucket's httpsConfig refuses a request over `tls` (`None`: plain HTTP), if it does.
/// `authz` asks before every operation on the bucket (and on a copy's source bucket).
pub fn https_config_refusal(bucket: &BucketRecord, tls: Option<&TlsInfo>) -> Option<String> {
    HttpsConfig::of(bucket).and_then(|c| c.refusal(tls))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::TlsVersion;

    fn tls(version: TlsVersion) -> TlsInfo {
        TlsInfo {
            version,
            cipher: "TLS_AES_256_GCM_SHA384".into(),
        }
    }

    #[test]
    fn https_config_parses_both_sdks_documents() {
        let oss2 = b"<HttpsConfiguration><TLS><Enable>true</Enable><TLSVersion>TLSv1.2</TLSVersion><TLSVersion>TLSv1.3</TLSVersion></TLS></HttpsConfiguration>";
        let config = HttpsConfig::parse(oss2).expect("valid");
        assert!(config.enable);
        assert_eq!(config.versions, ["TLSv1.2", "TLSv1.3"]);
        let v2 = b"<HttpsConfiguration><TLS><Enable>true</Enable><TLSVersion>TLSv1.3</TLSVersion></TLS><CipherSuite><Enable>true</Enable><StrongCipherSuite>false</StrongCipherSuite><CustomCipherSuite>ECDHE-ECDSA-AES128-SHA256</CustomCipherSuite><TLS13CustomCipherSuite>TLS_AES_256_GCM_SHA384</TLS13CustomCipherSuite></CipherSuite></HttpsConfiguration>";
        let config = HttpsConfig::parse(v2).expect("valid");
        let suite = config.cipher_suite.expect("kept");
        assert_eq!(suite.tls13_custom, ["TLS_AES_256_GCM_SHA384"]);
        let old_only = b"<HttpsConfiguration><TLS><Enable>true</Enable><TLSVersion>TLSv1.1</TLSVersion></TLS></HttpsConfiguration>";
        assert!(HttpsConfig::parse(old_only).is_err());
        let bogus = b"<HttpsConfiguration><TLS><Enable>true</Enable><TLSVersion>SSLv3</TLSVersion></TLS></HttpsConfiguration>";
        assert!(HttpsConfig::parse(bogus).is_err());
        let off = b"<HttpsConfiguration><TLS><Enable>false</Enable></TLS></HttpsConfiguration>";
        assert!(!HttpsConfig::parse(off).expect("valid").enable);
    }

    #[test]
    fn https_config_refuses_plain_http_and_unlisted_versions() {
        let config = HttpsConfig {
            enable: true,
            versions: vec!["TLSv1.3".into()],
            cipher_suite: None,
        };
        assert!(
            config
                .refusal(None)
                .expect("refused")
                .contains("plain HTTP")
        );
        let refusal = config
            .refusal(Some(&tls(TlsVersion::Tls12)))
            .expect("refused");
        assert!(refusal.contains("httpsConfig") && refusal.contains("TLSv1.2"));
        assert!(config.refusal(Some(&tls(TlsVersion::Tls13))).is_none());
        let disabled = HttpsConfig {
            enable: false,
            ..config
        };
        assert!(disabled.refusal(None).is_none());
    }
}
