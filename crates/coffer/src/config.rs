//! Server settings: command-line flags, `COFFER_*` environment variables and
//! an optional TOML file, in that order of precedence, over embedded defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use coffer_api::ConnectionLimits;
use coffer_api::tls::{CertificateFiles, TlsOptions, TlsVersion};
use coffer_keying::DefaultProtection;
use serde::Deserialize;

pub const DEFAULT_DATA_DIR: &str = "./coffer-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9000";
pub const DEFAULT_REGION: &str = "us-east-1";
/// Seconds between two lifecycle passes unless configured.
const DEFAULT_LIFECYCLE_INTERVAL_SECS: u64 = 3600;

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// TOML file with a key for every flag but this one and --test-clock, named as the flag
    /// with `_` for `-` (`--tls-listen` is `tls_listen`; `--domain` is `domains`, a list);
    /// packaging/coffer.toml shows them all.
    #[arg(long, env = "COFFER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where metadata, object blobs and keys live [default: ./coffer-data].
    #[arg(long, env = "COFFER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address, or `off` for HTTPS only [default: 127.0.0.1:9000].
    #[arg(long, env = "COFFER_LISTEN")]
    pub listen: Option<String>,
    /// HTTPS listen address [default: no HTTPS listener].
    #[arg(long, env = "COFFER_TLS_LISTEN")]
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate chain, leaf first; reloaded on SIGHUP and when it
    /// changes [default: a self-signed one generated in DATA_DIR/tls].
    #[arg(long, env = "COFFER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "COFFER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Lowest TLS version accepted: 1.2 or 1.3 [default: 1.2].
    #[arg(long, env = "COFFER_TLS_MIN_VERSION")]
    pub tls_min_version: Option<String>,
    /// Highest TLS version accepted: 1.2 or 1.3 [default: 1.3].
    #[arg(long, env = "COFFER_TLS_MAX_VERSION")]
    pub tls_max_version: Option<String>,
    /// Allowed cipher suites, by IANA name, comma-separated
    /// (e.g. TLS_AES_256_GCM_SHA384) [default: rustls's defaults].
    #[arg(long, env = "COFFER_TLS_CIPHER_SUITES", value_delimiter = ',')]
    pub tls_cipher_suites: Vec<String>,
    /// Offer hybrid post-quantum key exchange (X25519MLKEM768): true or
    /// false [default: true].
    #[arg(long, env = "COFFER_TLS_PQ", action = clap::ArgAction::Set)]
    pub tls_pq: Option<bool>,
    /// PEM bundle of CAs: clients must present a certificate they issued
    /// (mutual TLS) [default: no client certificates].
    #[arg(long, env = "COFFER_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Web console listen address (HTTP): the console's page, and the API for the
    /// requests it signs (docs/console.md) [default: no console].
    #[arg(long, env = "COFFER_CONSOLE_LISTEN")]
    pub console_listen: Option<SocketAddr>,
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
    /// How objects written without encryption headers or a bucket rule are
    /// sealed: AES256, SM4, aws:kms, or aws:kms:KEY-ID (id, ARN or alias).
    /// Never plaintext: a bucket opts out with the rule SSEAlgorithm `none`
    /// [default: AES256].
    #[arg(long, env = "COFFER_DEFAULT_SSE")]
    pub default_sse: Option<String>,
    /// Accept SSE-C (customer-provided keys) over plain HTTP. For tests only:
    /// the key then crosses the network in the clear.
    #[arg(long, env = "COFFER_ALLOW_INSECURE_SSE_C")]
    pub allow_insecure_sse_c: bool,
    /// Derive the root key from the passphrase in this file (Argon2id)
    /// instead of keeping a root key file; `COFFER_ROOT_PASSPHRASE` works too.
    #[arg(long, env = "COFFER_ROOT_PASSPHRASE_FILE")]
    pub root_passphrase_file: Option<PathBuf>,
    /// Where the root key is kept: `file` (the data dir's root.key, or the passphrase's
    /// derivation) or wrapped by an AES key in a PKCS#11 token (an HSM):
    /// `pkcs11:token=…;object=LABEL?module-path=…&pin-source=file:…` (docs/kms.md)
    /// [default: file].
    #[arg(long, env = "COFFER_ROOT_KEY")]
    pub root_key: Option<String>,
    /// Connections served at once per listener; more wait until one closes
    /// [default: 1024].
    #[arg(long, env = "COFFER_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a request head; also how long an idle
    /// keep-alive connection stays open [default: 30].
    #[arg(long, env = "COFFER_HEADER_READ_TIMEOUT")]
    pub header_read_timeout: Option<u64>,
    /// Seconds a request body may stall before the request fails with
    /// RequestTimeout [default: 60].
    #[arg(long, env = "COFFER_BODY_READ_TIMEOUT")]
    pub body_read_timeout: Option<u64>,
    /// Seconds a response may wait on a client that does not read it before
    /// the connection is dropped [default: 60].
    #[arg(long, env = "COFFER_SEND_TIMEOUT")]
    pub send_timeout: Option<u64>,
    /// Seconds between two passes of the lifecycle worker (expiration, noncurrent version
    /// expiration, abort of incomplete uploads); 0 turns it off [default: 3600].
    #[arg(long, env = "COFFER_LIFECYCLE_INTERVAL")]
    pub lifecycle_interval: Option<u64>,
    /// Seconds between two passes of the blob sweeper, which deletes the blobs of stale
    /// pending rows (writes that never committed, blobs a commit released); 0 turns it off.
    /// Only stores with pending rows (--meta postgres://…) need it [default: 600].
    #[arg(long, env = "COFFER_SWEEP_INTERVAL")]
    pub sweep_interval: Option<u64>,
    /// Seconds a pending row must age before the sweeper deletes its blob: longer than any
    /// write takes from its first byte to its commit [default: 3600].
    #[arg(long, env = "COFFER_SWEEP_GRACE")]
    pub sweep_grace: Option<u64>,
    /// MiB of the embedded metadata database's pages kept in memory. Small objects live in
    /// that database, so this bounds most of what they add to the server's memory; a larger
    /// cache serves more of them from memory. Unused with --meta postgres://… [default: an
    /// eighth of the memory the server may use (the host's, or its cgroup's limit), from 16 to
    /// 1024].
    #[arg(long, env = "COFFER_METADATA_CACHE")]
    pub metadata_cache: Option<u64>,
    /// Where metadata, users and (with it) the KMS keystore live: `embedded` (redb in the data
    /// dir) or `postgres://USER:PASSWORD@HOST:PORT/DATABASE`, shared by every gateway
    /// (docs/deploy.md). Needs --blobs s3://… [default: embedded].
    #[arg(long, env = "COFFER_META")]
    pub meta: Option<String>,
    /// Where sealed object bodies live: `embedded` (files in the data dir) or
    /// `s3://BUCKET/PREFIX?endpoint=URL&region=R`, an existing S3-compatible bucket; its
    /// credentials come from COFFER_BLOBS_ACCESS_KEY_ID / COFFER_BLOBS_SECRET_ACCESS_KEY.
    /// Needs --meta postgres://… [default: embedded].
    #[arg(long, env = "COFFER_BLOBS")]
    pub blobs: Option<String>,
    /// Where the KMS's master keys live: `embedded` (Coffer's keystore) or an external
    /// system that keeps them (docs/kms.md) [default: embedded].
    #[arg(long, env = "COFFER_KMS_BACKEND")]
    pub kms_backend: Option<String>,
    /// TEST ONLY: let the admin API move the object clock forward (POST
    /// /_coffer/admin/clock), to drive lifecycle and retention in tests.
    #[arg(long, env = "COFFER_TEST_CLOCK", hide = true)]
    pub test_clock: bool,
    /// The admin listener, metrics and the access log (boxed: `coffer`'s command enum stays
    /// small).
    #[command(flatten)]
    pub observability: Box<ObservabilityArgs>,
}

/// Observability flags (docs/operations.md): the admin listener, metrics and the access log.
#[derive(Args, Debug, Default)]
pub struct ObservabilityArgs {
    /// Plain-HTTP listener for /health/live, /health/ready and /metrics only, e.g.
    /// 127.0.0.1:9100; keep it on loopback or a management network [default: none].
    #[arg(long, env = "COFFER_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// File holding the bearer token that GET /metrics requires (`Authorization: Bearer
    /// TOKEN`); needs --admin-listen [default: /metrics open to whoever reaches the listener].
    #[arg(long, env = "COFFER_METRICS_TOKEN_FILE")]
    pub metrics_token_file: Option<PathBuf>,
    /// Write a JSON access log, one object per request and line, to PATH (appended, 0600) or
    /// `-` (standard output) [default: none].
    #[arg(long, env = "COFFER_ACCESS_LOG")]
    pub access_log: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    region: Option<String>,
    #[serde(default)]
    domains: Vec<String>,
    log: Option<String>,
    tls_listen: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_min_version: Option<String>,
    tls_max_version: Option<String>,
    #[serde(default)]
    tls_cipher_suites: Vec<String>,
    tls_pq: Option<bool>,
    tls_client_ca: Option<PathBuf>,
    console_listen: Option<SocketAddr>,
    max_connections: Option<usize>,
    header_read_timeout: Option<u64>,
    body_read_timeout: Option<u64>,
    send_timeout: Option<u64>,
    lifecycle_interval: Option<u64>,
    default_sse: Option<String>,
    meta: Option<String>,
    blobs: Option<String>,
    kms_backend: Option<String>,
    sweep_interval: Option<u64>,
    sweep_grace: Option<u64>,
    metadata_cache: Option<u64>,
    allow_insecure_sse_c: Option<bool>,
    root_passphrase_file: Option<PathBuf>,
    root_key: Option<String>,
    // Observability.
    admin_listen: Option<SocketAddr>,
    metrics_token_file: Option<PathBuf>,
    access_log: Option<String>,
}

/// Settings after merging every source.
#[derive(Debug)]
pub struct Settings {
    pub data_dir: PathBuf,
    /// HTTP listener; `None` when switched off.
    pub listen: Option<SocketAddr>,
    /// HTTPS listener; `None` unless `--tls-listen` is given.
    pub tls: Option<TlsSettings>,
    /// The web console's listener; `None` unless `--console-listen` is given.
    pub console_listen: Option<SocketAddr>,
    pub region: String,
    pub domains: Vec<String>,
    pub log: String,
    pub allow_insecure_sse_c: bool,
    /// What seals objects that name no encryption (`--default-sse`).
    pub default_protection: DefaultProtection,
    pub root_passphrase_file: Option<PathBuf>,
    /// The token key that wraps the root key (`--root-key pkcs11:…`).
    pub root_key: Option<coffer_kms_pkcs11::TokenUri>,
    pub limits: ConnectionLimits,
    /// Between two lifecycle passes; `None` when switched off.
    pub lifecycle_interval: Option<std::time::Duration>,
    pub test_clock: bool,
    /// Where metadata and blobs live.
    pub backends: Backends,
    /// Where the KMS's master keys live.
    pub kms_backend: crate::kms_backend::KmsBackend,
    /// Between two sweeper passes; `None` when switched off.
    pub sweep_interval: Option<Duration>,
    /// How old a pending row must be before its blob is deleted.
    pub sweep_grace: Duration,
    /// Bytes of `meta.redb`'s pages the embedded store caches; `None`: sized to the memory
    /// the server may use, when it opens the store.
    pub metadata_cache_bytes: Option<usize>,
    /// The admin listener, metrics token and access log.
    pub observability: Observability,
}

/// Where the server reports on itself, besides its log.
#[derive(Debug, Default)]
pub struct Observability {
    /// The admin listener (probes and `/metrics`); `None`: none.
    pub admin_listen: Option<SocketAddr>,
    /// The file holding `/metrics`'s bearer token.
    pub metrics_token_file: Option<PathBuf>,
    /// Where the JSON access log goes; `None`: no access log.
    pub access_log: Option<coffer_api::access_log::AccessLogTarget>,
}

/// Where metadata, the keystore and blobs live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backends {
    /// Everything in the data dir (redb, blob files, keystore files): one server.
    Embedded,
    /// Stateless gateways: metadata and the keystore in PostgreSQL, blobs upstream.
    Gateway {
        /// The PostgreSQL URL (it may carry a password: never logged).
        meta_url: String,
        /// The upstream bucket, prefix and endpoint.
        blobs: coffer_blobs_s3::S3BlobConfig,
    },
}

/// The HTTPS listener's settings.
#[derive(Debug)]
pub struct TlsSettings {
    pub listen: SocketAddr,
    /// `None`: the self-signed pair in the data dir.
    pub cert: Option<CertificateFiles>,
    pub options: TlsOptions,
}

impl ServerArgs {
    pub fn resolve(mut self) -> Result<Settings, String> {
        let mut file = match &self.config {
            Some(path) => read_config(path)?,
            None => ConfigFile::default(),
        };
        let listen = match self.listen.take().or(file.listen.take()) {
            Some(text) if matches!(text.trim(), "off" | "none" | "") => None,
            Some(text) => Some(
                text.trim()
                    .parse()
                    .map_err(|e| format!("invalid --listen address {text:?}: {e}"))?,
            ),
            None => Some(
                DEFAULT_LISTEN
                    .parse()
                    .map_err(|e| format!("default listen address: {e}"))?,
            ),
        };
        let tls = self.resolve_tls(&mut file)?;
        let observability = self.resolve_observability(&mut file)?;
        let limits = self.resolve_limits(&file)?;
        if listen.is_none() && tls.is_none() {
            return Err("nothing to serve: --listen is off and there is no --tls-listen".into());
        }
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
        let default_protection = match self.default_sse.take().or(file.default_sse.take()) {
            None => DefaultProtection::default(),
            Some(text) => DefaultProtection::parse(&text).map_err(|_| {
                format!(
                    "invalid --default-sse {text:?}: expected AES256, SM4, aws:kms or aws:kms:KEY-ID \
                     (plaintext is a per-bucket opt-out, not a server default)"
                )
            })?,
        };
        let backends = resolve_backends(
            self.meta.take().or(file.meta.take()),
            self.blobs.take().or(file.blobs.take()),
        )?;
        let metadata_cache_bytes =
            metadata_cache_bytes(self.metadata_cache.or(file.metadata_cache))?;
        Ok(Settings {
            data_dir: self
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            listen,
            tls,
            console_listen: self.console_listen.or(file.console_listen),
            region,
            domains,
            log: self.log.or(file.log).unwrap_or_else(|| "info".to_owned()),
            allow_insecure_sse_c: self.allow_insecure_sse_c
                || file.allow_insecure_sse_c.unwrap_or(false),
            default_protection,
            root_key: match self.root_key.take().or(file.root_key.take()) {
                Some(text) if text.trim() == "file" => None,
                Some(text) => Some(
                    coffer_kms_pkcs11::TokenUri::parse(&text)
                        .map_err(|e| format!("invalid --root-key: {e}"))?,
                ),
                None => None,
            },
            root_passphrase_file: self.root_passphrase_file.or(file.root_passphrase_file),
            limits,
            lifecycle_interval: match self
                .lifecycle_interval
                .or(file.lifecycle_interval)
                .unwrap_or(DEFAULT_LIFECYCLE_INTERVAL_SECS)
            {
                0 => None,
                secs => Some(std::time::Duration::from_secs(secs)),
            },
            test_clock: self.test_clock,
            backends,
            metadata_cache_bytes,
            kms_backend: match self.kms_backend.take().or(file.kms_backend.take()) {
                Some(text) => crate::kms_backend::KmsBackend::parse(&text)?,
                None => Default::default(),
            },
            sweep_interval: match self.sweep_interval.or(file.sweep_interval) {
                None => Some(coffer_api::sweeper::DEFAULT_INTERVAL),
                Some(0) => None,
                Some(secs) => Some(Duration::from_secs(secs)),
            },
            sweep_grace: match self.sweep_grace.or(file.sweep_grace) {
                None => coffer_api::sweeper::DEFAULT_GRACE,
                Some(0) => return Err("--sweep-grace must be at least 1 second".into()),
                Some(secs) => Duration::from_secs(secs),
            },
            observability,
        })
    }

    /// The admin listener, metrics token and access log: flags over the file.
    fn resolve_observability(&mut self, file: &mut ConfigFile) -> Result<Observability, String> {
        let flags = &mut self.observability;
        let admin_listen = flags.admin_listen.or(file.admin_listen);
        let metrics_token_file = flags
            .metrics_token_file
            .take()
            .or(file.metrics_token_file.take());
        if metrics_token_file.is_some() && admin_listen.is_none() {
            return Err(
                "--metrics-token-file needs --admin-listen (where /metrics is served)".into(),
            );
        }
        let access_log = match flags.access_log.take().or(file.access_log.take()) {
            Some(text) if text.trim().is_empty() => {
                return Err("--access-log needs a path, or - for standard output".into());
            }
            Some(text) => Some(coffer_api::access_log::AccessLogTarget::parse(&text)),
            None => None,
        };
        Ok(Observability {
            admin_listen,
            metrics_token_file,
            access_log,
        })
    }

    /// The connection limits: flags over the file over the defaults. Zero
    /// is refused (it would serve nobody, or time everyone out).
    fn resolve_limits(&self, file: &ConfigFile) -> Result<ConnectionLimits, String> {
        let defaults = ConnectionLimits::default();
        let seconds = |flag: &str, value: Option<u64>, default: Duration| match value {
            None => Ok(default),
            Some(0) => Err(format!("--{flag} must be at least 1 second")),
            Some(n) => Ok(Duration::from_secs(n)),
        };
        let max_connections = match self.max_connections.or(file.max_connections) {
            None => defaults.max_connections,
            Some(0) => return Err("--max-connections must be at least 1".into()),
            Some(n) => n,
        };
        Ok(ConnectionLimits {
            max_connections,
            header_read_timeout: seconds(
                "header-read-timeout",
                self.header_read_timeout.or(file.header_read_timeout),
                defaults.header_read_timeout,
            )?,
            body_read_timeout: seconds(
                "body-read-timeout",
                self.body_read_timeout.or(file.body_read_timeout),
                defaults.body_read_timeout,
            )?,
            send_timeout: seconds(
                "send-timeout",
                self.send_timeout.or(file.send_timeout),
                defaults.send_timeout,
            )?,
        })
    }
}

impl ServerArgs {
    /// The HTTPS settings, or `None` without `--tls-listen`. TLS 1.0/1.1,
    /// unknown suites and half-given certificate pairs are refused here.
    fn resolve_tls(&mut self, file: &mut ConfigFile) -> Result<Option<TlsSettings>, String> {
        let cert = self.tls_cert.take().or(file.tls_cert.take());
        let key = self.tls_key.take().or(file.tls_key.take());
        let min = self.tls_min_version.take().or(file.tls_min_version.take());
        let max = self.tls_max_version.take().or(file.tls_max_version.take());
        let suites = if self.tls_cipher_suites.is_empty() {
            std::mem::take(&mut file.tls_cipher_suites)
        } else {
            std::mem::take(&mut self.tls_cipher_suites)
        };
        let suites: Vec<String> = suites
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        let post_quantum = self.tls_pq.or(file.tls_pq).unwrap_or(true);
        let client_ca = self.tls_client_ca.take().or(file.tls_client_ca.take());
        let version = |flag: &str, text: Option<String>, default: TlsVersion| match text {
            None => Ok(default),
            Some(text) => text
                .parse::<TlsVersion>()
                .map_err(|e| format!("--{flag} {text}: {e}")),
        };
        let min_version = version("tls-min-version", min, TlsVersion::Tls12)?;
        let max_version = version("tls-max-version", max, TlsVersion::Tls13)?;
        let cert = match (cert, key) {
            (Some(cert), Some(key)) => Some(CertificateFiles { cert, key }),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together: give both or neither".into()),
        };
        let Some(listen) = self.tls_listen.or(file.tls_listen) else {
            if cert.is_some() || client_ca.is_some() {
                return Err(
                    "--tls-cert/--tls-client-ca need --tls-listen (the HTTPS address)".into(),
                );
            }
            return Ok(None);
        };
        Ok(Some(TlsSettings {
            listen,
            cert,
            options: TlsOptions {
                min_version,
                max_version,
                cipher_suites: suites,
                post_quantum,
                client_ca,
            },
        }))
    }
}

/// `--metadata-cache` (MiB) in bytes. Only the embedded metadata store has that cache; a
/// gateway (PostgreSQL) leaves it unused, as an embedded server does the sweeper's settings,
/// so that one configuration file serves both.
fn metadata_cache_bytes(mib: Option<u64>) -> Result<Option<usize>, String> {
    let Some(mib) = mib else {
        return Ok(None);
    };
    if mib == 0 {
        return Err("--metadata-cache must be at least 1 (MiB)".into());
    }
    mib.checked_mul(1 << 20)
        .and_then(|bytes| usize::try_from(bytes).ok())
        .map(Some)
        .ok_or_else(|| format!("--metadata-cache {mib} MiB is more than this machine can address"))
}

/// `--meta` and `--blobs` go together: a gateway keeps nothing local that another gateway would
/// need, and the embedded metadata store collects blob files it does not reference.
fn resolve_backends(meta: Option<String>, blobs: Option<String>) -> Result<Backends, String> {
    let embedded = |value: &Option<String>| {
        value
            .as_deref()
            .is_none_or(|v| matches!(v.trim(), "" | "embedded"))
    };
    match (embedded(&meta), embedded(&blobs)) {
        (true, true) => Ok(Backends::Embedded),
        (false, false) => {
            let meta_url = meta.unwrap_or_default().trim().to_owned();
            if !(meta_url.starts_with("postgres://") || meta_url.starts_with("postgresql://")) {
                return Err(
                    "invalid --meta: expected embedded or postgres://USER:PASSWORD@HOST:PORT/DATABASE"
                        .into(),
                );
            }
            let blobs = coffer_blobs_s3::S3BlobConfig::parse(blobs.unwrap_or_default().trim())
                .map_err(|e| format!("--blobs: {e}"))?;
            Ok(Backends::Gateway { meta_url, blobs })
        }
        (false, true) => Err(
            "--meta postgres://… needs --blobs s3://BUCKET/PREFIX?endpoint=URL: gateways share \
             their blobs through an S3-compatible bucket, never a local directory"
                .into(),
        ),
        (true, false) => Err(
            "--blobs s3://… needs --meta postgres://…: the embedded metadata store keeps its blobs \
             in the data dir"
                .into(),
        ),
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
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            tls_min_version: None,
            tls_max_version: None,
            tls_cipher_suites: vec![],
            tls_pq: None,
            tls_client_ca: None,
            console_listen: None,
            region: None,
            domains: vec![],
            log: None,
            allow_insecure_sse_c: false,
            default_sse: None,
            root_passphrase_file: None,
            root_key: None,
            max_connections: None,
            header_read_timeout: None,
            body_read_timeout: None,
            send_timeout: None,
            lifecycle_interval: None,
            test_clock: false,
            meta: None,
            blobs: None,
            kms_backend: None,
            sweep_interval: None,
            sweep_grace: None,
            metadata_cache: None,
            observability: Box::default(),
        }
    }

    #[test]
    fn metadata_cache_is_in_mib_and_at_least_one() {
        assert_eq!(
            args()
                .resolve()
                .expect("defaults resolve")
                .metadata_cache_bytes,
            None,
            "sized to the host when the store opens"
        );
        let mut a = args();
        a.metadata_cache = Some(64);
        assert_eq!(
            a.resolve().expect("64 MiB resolves").metadata_cache_bytes,
            Some(64 << 20)
        );
        let mut a = args();
        a.metadata_cache = Some(0);
        let refused = a.resolve().expect_err("zero is refused");
        assert!(refused.contains("at least 1"), "{refused}");
    }

    #[test]
    fn defaults() {
        let s = args().resolve().expect("defaults resolve");
        assert_eq!(s.data_dir, PathBuf::from("./coffer-data"));
        assert_eq!(
            s.listen.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:9000")
        );
        assert!(s.tls.is_none(), "no HTTPS unless asked");
        assert_eq!(s.region, "us-east-1");
        assert_eq!(s.domains, vec!["localhost".to_owned()]);
        assert_eq!(s.limits, ConnectionLimits::default());
        assert_eq!(
            s.default_protection,
            DefaultProtection::default(),
            "sealed by default"
        );
    }

    #[test]
    fn default_sse() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("coffer.toml");
        std::fs::write(&path, "default_sse = \"SM4\"\n").expect("write");
        let mut a = args();
        a.config = Some(path.clone());
        let s = a.resolve().expect("resolves");
        assert_eq!(s.default_protection.to_string(), "SM4");
        let mut a = args();
        a.config = Some(path);
        a.default_sse = Some("aws:kms:alias/backups".into());
        let s = a.resolve().expect("resolves");
        assert_eq!(s.default_protection.to_string(), "aws:kms:alias/backups");
        for refused in ["none", "plaintext", ""] {
            let mut a = args();
            a.default_sse = Some(refused.into());
            let error = a.resolve().expect_err(refused);
            assert!(error.contains("per-bucket opt-out"), "{error}");
        }
    }

    #[test]
    fn backends() {
        assert_eq!(
            args().resolve().expect("defaults").backends,
            Backends::Embedded
        );
        let mut a = args();
        a.meta = Some("postgres://coffer@127.0.0.1:5432/coffer".into());
        a.blobs = Some("s3://sealed/gw?endpoint=http://127.0.0.1:9100&region=eu-west-1".into());
        match a.resolve().expect("gateway").backends {
            Backends::Gateway { meta_url, blobs } => {
                assert_eq!(meta_url, "postgres://coffer@127.0.0.1:5432/coffer");
                assert_eq!(
                    (blobs.bucket.as_str(), blobs.prefix.as_str()),
                    ("sealed", "gw")
                );
                assert_eq!(blobs.region, "eu-west-1");
            }
            other => panic!("{other:?}"),
        }
        let mut a = args();
        a.meta = Some("postgres://coffer@127.0.0.1/coffer".into());
        let error = a.resolve().expect_err("meta without blobs");
        assert!(error.contains("needs --blobs"), "{error}");
        let mut a = args();
        a.blobs = Some("s3://sealed?endpoint=http://127.0.0.1:9100".into());
        let error = a.resolve().expect_err("blobs without meta");
        assert!(error.contains("needs --meta"), "{error}");
        let mut a = args();
        a.meta = Some("mysql://x".into());
        a.blobs = Some("s3://sealed?endpoint=http://127.0.0.1:9100".into());
        assert!(a.resolve().is_err(), "only PostgreSQL");
    }

    #[test]
    fn connection_limits() {
        let mut a = args();
        a.header_read_timeout = Some(2);
        a.max_connections = Some(16);
        let s = a.resolve().expect("resolves");
        assert_eq!(s.limits.header_read_timeout, Duration::from_secs(2));
        assert_eq!(s.limits.max_connections, 16);
        assert_eq!(
            s.limits.body_read_timeout,
            ConnectionLimits::default().body_read_timeout
        );
        let mut a = args();
        a.body_read_timeout = Some(0);
        assert!(a.resolve().is_err(), "a zero timeout is refused");
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
        assert_eq!(s.listen.map(|a| a.port()), Some(9200));
        assert!(s.domains.contains(&"s3.example.com".to_owned()));
        std::fs::write(&path, "bogus = 1\n").expect("write");
        let mut a = args();
        a.config = Some(path);
        assert!(a.resolve().is_err(), "unknown keys are refused");
    }

    #[test]
    fn observability_and_file_only_keys() {
        use coffer_api::access_log::AccessLogTarget;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("coffer.toml");
        std::fs::write(
            &path,
            "admin_listen = \"127.0.0.1:9100\"\nmetrics_token_file = \"/etc/t\"\n\
             access_log = \"-\"\nallow_insecure_sse_c = true\nroot_passphrase_file = \"/etc/p\"\n",
        )
        .expect("write");
        let mut a = args();
        a.config = Some(path);
        a.observability.access_log = Some("/var/log/coffer/access.log".into());
        let s = a.resolve().expect("resolves");
        let o = &s.observability;
        assert_eq!(o.admin_listen.map(|a| a.port()), Some(9100));
        assert_eq!(o.metrics_token_file, Some(PathBuf::from("/etc/t")));
        assert_eq!(
            o.access_log,
            Some(AccessLogTarget::File("/var/log/coffer/access.log".into())),
            "the flag wins"
        );
        assert!(s.allow_insecure_sse_c);
        assert_eq!(s.root_passphrase_file, Some(PathBuf::from("/etc/p")));

        let mut a = args();
        a.observability.access_log = Some("-".into());
        let s = a.resolve().expect("resolves");
        assert_eq!(s.observability.access_log, Some(AccessLogTarget::Stdout));
        assert!(
            s.observability.admin_listen.is_none(),
            "no admin listener by default"
        );

        let mut a = args();
        a.observability.metrics_token_file = Some("/etc/t".into());
        let error = a.resolve().expect_err("a token needs the admin listener");
        assert!(error.contains("--admin-listen"), "{error}");
    }

    #[test]
    fn console_listen_from_the_flag_or_the_file() {
        assert!(args().resolve().expect("resolves").console_listen.is_none());
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("coffer.toml");
        std::fs::write(&path, "console_listen = \"127.0.0.1:9300\"\n").expect("write");
        let mut a = args();
        a.config = Some(path);
        let s = a.resolve().expect("resolves");
        assert_eq!(s.console_listen.map(|a| a.port()), Some(9300));
    }

    #[test]
    fn tls_settings() {
        let mut a = args();
        a.tls_listen = Some("127.0.0.1:9443".parse().expect("addr"));
        a.listen = Some("off".into());
        a.tls_min_version = Some("1.3".into());
        a.tls_pq = Some(false);
        let s = a.resolve().expect("resolves");
        assert!(s.listen.is_none());
        let tls = s.tls.expect("https");
        assert_eq!(tls.options.min_version, TlsVersion::Tls13);
        assert!(!tls.options.post_quantum);
        assert!(tls.cert.is_none(), "self-signed by default");

        let mut a = args();
        a.tls_listen = Some("127.0.0.1:9443".parse().expect("addr"));
        a.tls_min_version = Some("1.0".into());
        let error = a.resolve().expect_err("TLS 1.0 refused");
        assert!(error.contains("not supported"), "{error}");

        let mut a = args();
        a.tls_listen = Some("127.0.0.1:9443".parse().expect("addr"));
        a.tls_cert = Some("cert.pem".into());
        assert!(a.resolve().is_err(), "a cert needs its key");

        let mut a = args();
        a.listen = Some("off".into());
        assert!(a.resolve().is_err(), "nothing to serve");
    }
}
