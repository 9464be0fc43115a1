//! The `--kms-backend kmip://HOST:PORT?ca=…&cert=…&key=…` setting.

use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::percent_decode_str;

/// KMIP's registered port.
const DEFAULT_PORT: u16 = 5696;
/// How long a connect, a read or a write may take before the server counts as unreachable.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the KMIP server is and how Coffer proves who it is to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmipConfig {
    /// `HOST:PORT`, as given (for connecting and for error messages).
    pub endpoint: String,
    /// The name the server's certificate must carry (`server-name=`, else the host).
    pub server_name: String,
    /// PEM: the CA certificates that the server's certificate must chain to.
    pub ca: PathBuf,
    /// PEM: Coffer's client certificate chain.
    pub cert: PathBuf,
    /// PEM: its private key.
    pub key: PathBuf,
    /// Bound on connect, read and write (`timeout=` in seconds).
    pub timeout: Duration,
    /// The region in the key ARNs Coffer shows: the server's `--region`, set when it opens
    /// the backend (`us-east-1` until then).
    pub region: String,
}

impl KmipConfig {
    /// Parses the text after `kmip:` (`//HOST[:PORT]?ca=…&cert=…&key=…`).
    pub fn parse(rest: &str) -> Result<Self, String> {
        let usage = "expected kmip://HOST[:PORT]?ca=CA.pem&cert=CLIENT.pem&key=CLIENT.key \
                     [&server-name=NAME][&timeout=SECONDS]";
        let rest = rest
            .strip_prefix("//")
            .ok_or_else(|| format!("invalid --kms-backend kmip:{rest}: {usage}"))?;
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| format!("invalid KMIP server address {authority:?}: {usage}"))?;
        let mut config = KmipConfig {
            endpoint: format!("{host}:{port}"),
            server_name: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            ca: PathBuf::new(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
            timeout: DEFAULT_TIMEOUT,
            region: "us-east-1".to_owned(),
        };
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| format!("the kmip setting {name} is not UTF-8"))?
                .into_owned();
            match name {
                "ca" => config.ca = value.into(),
                "cert" => config.cert = value.into(),
                "key" => config.key = value.into(),
                "server-name" => config.server_name = value,
                "timeout" => {
                    let seconds: f64 = value
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 600.0)
                        .ok_or_else(|| {
                            format!("invalid kmip timeout {value:?}: seconds in (0, 600]")
                        })?;
                    config.timeout = Duration::from_secs_f64(seconds);
                }
                other => return Err(format!("unknown kmip setting {other:?}: {usage}")),
            }
        }
        for (name, path) in [
            ("ca", &config.ca),
            ("cert", &config.cert),
            ("key", &config.key),
        ] {
            if path.as_os_str().is_empty() {
                return Err(format!(
                    "the kmip backend needs {name}=… (mutual TLS): {usage}"
                ));
            }
        }
        Ok(config)
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        (host, rest.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(port) => port.parse().ok().filter(|&p| p != 0)?,
        None => DEFAULT_PORT,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_setting() {
        let config = KmipConfig::parse(
            "//kms.example:5697?ca=/etc/ca.pem&cert=/etc/c.pem&key=/etc/c%20k.key&timeout=2.5",
        )
        .expect("valid");
        assert_eq!(config.endpoint, "kms.example:5697");
        assert_eq!(config.server_name, "kms.example");
        assert_eq!(config.key, PathBuf::from("/etc/c k.key"));
        assert_eq!(config.timeout, Duration::from_millis(2500));
        let default_port =
            KmipConfig::parse("//[::1]?ca=a&cert=b&key=c&server-name=kmip").expect("valid");
        assert_eq!(default_port.endpoint, "[::1]:5696");
        assert_eq!(default_port.server_name, "kmip");
    }

    #[test]
    fn refuses_incomplete_settings() {
        for bad in [
            "host:5696?ca=a&cert=b&key=c",
            "//host:5696?ca=a&cert=b",
            "//host:0?ca=a&cert=b&key=c",
            "//:5696?ca=a&cert=b&key=c",
            "//host?ca=a&cert=b&key=c&colour=blue",
            "//host?ca=a&cert=b&key=c&timeout=0",
        ] {
            assert!(KmipConfig::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
