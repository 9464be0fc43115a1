//! The `aws-kms:` setting: `aws-kms:https://host:port?region=R[&default-key=REF][&ca-file=PEM]`,
//! and the credentials it signs with, read from the environment when the backend opens.

use std::path::PathBuf;

use coffer_auth::Secret;
use percent_encoding::percent_decode_str;

/// The region the credential scope names when the setting gives none.
const DEFAULT_REGION: &str = "us-east-1";
/// The key SSE-KMS uses when a request names none: the S3 default key, which AWS KMS (and
/// moto) create on first use.
const DEFAULT_SSE_KEY: &str = "alias/aws/s3";
/// The environment variables holding the credentials (never part of the setting, so that
/// they appear in no config file, command line or log).
pub const ACCESS_KEY_VAR: &str = "COFFER_KMS_ACCESS_KEY_ID";
/// See [`ACCESS_KEY_VAR`].
pub const SECRET_KEY_VAR: &str = "COFFER_KMS_SECRET_ACCESS_KEY";
/// Optional: temporary credentials' session token.
pub const SESSION_TOKEN_VAR: &str = "COFFER_KMS_SESSION_TOKEN";

/// Where the AWS-KMS-protocol endpoint is and how to reach it. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsKmsSettings {
    /// `http://host:port` or `https://host:port`.
    pub url: String,
    /// The SigV4 region.
    pub region: String,
    /// The key SSE-KMS uses when a request names none.
    pub default_key: String,
    /// The CA certificate (PEM) an `https` endpoint is checked against; `None`: the
    /// environment's (`COFFER_CA_FILE`, `AWS_CA_BUNDLE`).
    pub ca_file: Option<PathBuf>,
}

impl AwsKmsSettings {
    /// Parses what follows `aws-kms:`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (url, query) = text.split_once('?').unwrap_or((text, ""));
        let url = url.trim_end_matches('/');
        let Some((scheme, authority)) = url.split_once("://") else {
            return Err(format!(
                "invalid aws-kms endpoint {url:?}: expected aws-kms:https://host:port?region=R"
            ));
        };
        if !matches!(scheme, "http" | "https") || authority.is_empty() || authority.contains('/') {
            return Err(format!(
                "invalid aws-kms endpoint {url:?}: expected http(s)://host:port, without a path"
            ));
        }
        let mut settings = AwsKmsSettings {
            url: url.to_owned(),
            region: DEFAULT_REGION.to_owned(),
            default_key: DEFAULT_SSE_KEY.to_owned(),
            ca_file: None,
        };
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| format!("aws-kms setting {name:?} is not UTF-8"))?
                .into_owned();
            if value.is_empty() {
                return Err(format!("aws-kms setting {name:?} needs a value"));
            }
            match name {
                "region" => settings.region = value,
                "default-key" => settings.default_key = value,
                "ca-file" => settings.ca_file = Some(PathBuf::from(value)),
                _ => {
                    return Err(format!(
                        "unknown aws-kms setting {name:?}: expected region, default-key or ca-file"
                    ));
                }
            }
        }
        Ok(settings)
    }
}

/// The access key pair the backend signs with.
pub(crate) struct Credentials {
    pub(crate) access_key: String,
    pub(crate) secret_key: Secret,
    pub(crate) session_token: Option<Secret>,
}

impl Credentials {
    /// From [`ACCESS_KEY_VAR`] and [`SECRET_KEY_VAR`] (both required).
    pub(crate) fn from_env() -> Result<Self, String> {
        let read = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        match (read(ACCESS_KEY_VAR), read(SECRET_KEY_VAR)) {
            (Some(access_key), Some(secret_key)) => Ok(Credentials {
                access_key,
                secret_key: Secret::new(secret_key),
                session_token: read(SESSION_TOKEN_VAR).map(Secret::new),
            }),
            _ => Err(format!(
                "the aws-kms backend signs with {ACCESS_KEY_VAR} and {SECRET_KEY_VAR}: set both"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoint_region_and_options() {
        let settings = AwsKmsSettings::parse(
            "https://kms.example:4443/?region=eu-west-1&default-key=alias%2Fsse&ca-file=/etc/ca.pem",
        )
        .expect("valid");
        assert_eq!(settings.url, "https://kms.example:4443");
        assert_eq!(settings.region, "eu-west-1");
        assert_eq!(settings.default_key, "alias/sse");
        assert_eq!(settings.ca_file, Some(PathBuf::from("/etc/ca.pem")));

        let plain = AwsKmsSettings::parse("http://127.0.0.1:5000").expect("valid");
        assert_eq!(plain.region, DEFAULT_REGION);
        assert_eq!(plain.default_key, DEFAULT_SSE_KEY);
    }

    #[test]
    fn refuses_malformed_settings() {
        for bad in [
            "kms.example:443",
            "ftp://kms.example",
            "https://",
            "https://kms.example/path",
            "https://kms.example?region=",
            "https://kms.example?colour=blue",
        ] {
            assert!(AwsKmsSettings::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
