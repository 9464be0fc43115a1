//! Server settings: command-line flags, `COFFER_*` environment variables and
//! an optional TOML file, in that order of precedence, over embedded defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

pub const DEFAULT_DATA_DIR: &str = "./coffer-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9000";
pub const DEFAULT_REGION: &str = "us-east-1";

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// TOML file with any of: data_dir, listen, region, domains, log.
    #[arg(long, env = "COFFER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where metadata, object blobs and keys live [default: ./coffer-data].
    #[arg(long, env = "COFFER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address [default: 127.0.0.1:9000].
    #[arg(long, env = "COFFER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Region the server answers for [default: us-east-1].
    #[arg(long, env = "COFFER_REGION")]
    pub region: Option<String>,
    /// Domain for virtual-host-style requests (bucket.DOMAIN); repeatable.
    /// `localhost` is always one.
    #[arg(long = "domain", env = "COFFER_DOMAINS", value_delimiter = ',')]
    pub domains: Vec<String>,
    /// Log filter (tracing syntax), e.g. `info` or `coffer_api=debug`.
    #[arg(long, env = "COFFER_LOG")]
    pub log: Option<String>,
    /// Accept SSE-C (customer-provided keys) over plain HTTP. For tests only:
    /// the key then crosses the network in the clear.
    #[arg(long, env = "COFFER_ALLOW_INSECURE_SSE_C")]
    pub allow_insecure_sse_c: bool,
    /// Derive the root key from the passphrase in this file (Argon2id)
    /// instead of keeping a root key file; `COFFER_ROOT_PASSPHRASE` works too.
    #[arg(long, env = "COFFER_ROOT_PASSPHRASE_FILE")]
    pub root_passphrase_file: Option<PathBuf>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    region: Option<String>,
    #[serde(default)]
    domains: Vec<String>,
    log: Option<String>,
}

/// Settings after merging every source.
#[derive(Debug)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub region: String,
    pub domains: Vec<String>,
    pub log: String,
    pub allow_insecure_sse_c: bool,
    pub root_passphrase_file: Option<PathBuf>,
}

impl ServerArgs {
    pub fn resolve(self) -> Result<Settings, String> {
        let file = match &self.config {
            Some(path) => read_config(path)?,
            None => ConfigFile::default(),
        };
        let listen = match self.listen.or(file.listen) {
            Some(addr) => addr,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|e| format!("default listen address: {e}"))?,
        };
        let mut domains = vec!["localhost".to_owned()];
        for domain in self.domains.into_iter().chain(file.domains) {
            let domain = domain.trim().trim_matches('.').to_ascii_lowercase();
            if !domain.is_empty() && !domains.contains(&domain) {
                domains.push(domain);
            }
        }
        let region = self
            .region
            .or(file.region)
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!("invalid region {region:?}"));
        }
        Ok(Settings {
            data_dir: self
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            listen,
            region,
            domains,
            log: self.log.or(file.log).unwrap_or_else(|| "info".to_owned()),
            allow_insecure_sse_c: self.allow_insecure_sse_c,
            root_passphrase_file: self.root_passphrase_file,
        })
    }
}

fn read_config(path: &Path) -> Result<ConfigFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ServerArgs {
        ServerArgs {
            config: None,
            data_dir: None,
            listen: None,
            region: None,
            domains: vec![],
            log: None,
            allow_insecure_sse_c: false,
            root_passphrase_file: None,
        }
    }

    #[test]
    fn defaults() {
        let s = args().resolve().expect("defaults resolve");
        assert_eq!(s.data_dir, PathBuf::from("./coffer-data"));
        assert_eq!(s.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(s.region, "us-east-1");
        assert_eq!(s.domains, vec!["localhost".to_owned()]);
    }

    #[test]
    fn flags_beat_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("coffer.toml");
        std::fs::write(
            &path,
            "region = \"eu-west-1\"\nlisten = \"127.0.0.1:9100\"\ndomains = [\"s3.example.com\"]\n",
        )
        .expect("write");
        let mut a = args();
        a.config = Some(path.clone());
        a.listen = Some("127.0.0.1:9200".parse().expect("addr"));
        let s = a.resolve().expect("resolves");
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.listen.port(), 9200);
        assert!(s.domains.contains(&"s3.example.com".to_owned()));
        std::fs::write(&path, "bogus = 1\n").expect("write");
        let mut a = args();
        a.config = Some(path);
        assert!(a.resolve().is_err(), "unknown keys are refused");
    }
}
