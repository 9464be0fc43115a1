//! `coffer server`: opens the data directory, loads keys and credentials,
//! and serves HTTP and/or HTTPS until SIGTERM or ctrl-c. SIGHUP reloads
//! the HTTPS certificate and reopens the access log.

use std::path::Path;
use std::sync::Arc;

use coffer_api::access_log::AccessLog;
use coffer_api::monitoring::MetricsAccess;
use coffer_api::tls::{ReloadingCertificate, ServerConfig, ensure_self_signed, server_config};
use coffer_api::{AppState, ServerSettings};
use tracing_subscriber::EnvFilter;

use crate::backends::{self, Opened};
use crate::config::{Backends, ServerArgs, Settings, TlsSettings};
use crate::credentials::Source;

pub async fn run(args: ServerArgs) -> Result<(), String> {
    let settings = args.resolve()?;
    let filter =
        EnvFilter::try_new(&settings.log).map_err(|e| format!("invalid log filter: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let fresh = !settings.data_dir.exists();
    let narrowed = coffer_files::ensure_private_dir(&settings.data_dir).map_err(|e| {
        format!(
            "cannot create data dir {}: {e}",
            settings.data_dir.display()
        )
    })?;
    if narrowed {
        tracing::warn!(
            data_dir = %settings.data_dir.display(),
            "the data dir was open to other users: narrowed it to owner-only (0700)"
        );
    }
    if settings.allow_insecure_sse_c {
        tracing::warn!(
            "SSE-C is accepted over plain HTTP (--allow-insecure-sse-c): for tests only"
        );
    }
    let Opened {
        meta,
        blobs,
        root_key,
        service_keys,
        kms,
        root,
        source,
        shared_keys,
    } = backends::open(&settings, fresh).await?;
    let observed = Observed::open(&settings)?;
    let listeners = match Listeners::bind(&settings).await {
        Ok(listeners) => listeners,
        Err(e) => {
            // A first embedded start removes the data dir it made (see backends/embedded.rs);
            // it still holds the store's lock here, so no other server is using it.
            if fresh && settings.backends == Backends::Embedded {
                let _ = std::fs::remove_dir_all(&settings.data_dir);
            }
            return Err(e);
        }
    };
    match source {
        Source::Environment => {
            tracing::info!("root credentials from COFFER_ROOT_ACCESS_KEY / COFFER_ROOT_SECRET_KEY")
        }
        Source::File(path) => tracing::info!(path = %path.display(), "root credentials from file"),
        Source::Generated(path) => tracing::warn!(
            path = %path.display(),
            access_key = %root.access_key,
            "generated root credentials (the secret is in the file only)"
        ),
        Source::Shared => tracing::info!(
            access_key = %root.access_key,
            "root credentials shared by the gateways (sealed in the PostgreSQL keystore)"
        ),
    }
    let mut keys = coffer_keying::ObjectKeys::new(
        service_keys,
        Some(kms.clone()),
        settings.allow_insecure_sse_c,
    );
    if shared_keys.is_some() {
        keys = keys.with_shared_service_keys(root_key.clone());
    }
    let state = Arc::new(AppState {
        meta,
        blobs,
        root_key,
        keys,
        kms: Some(kms),
        root,
        settings: ServerSettings {
            region: settings.region.clone(),
            domains: settings.domains.clone(),
            limits: settings.limits,
            default_protection: settings.default_protection.clone(),
        },
        access_log: observed.access_log,
    });
    if settings.test_clock {
        coffer_api::clock::make_adjustable();
        tracing::warn!(
            "the object clock can be moved through the admin API (--test-clock): for tests only"
        );
    }
    // Kept for as long as the server serves: dropping it stops the watcher.
    let _keystore_watch = match shared_keys {
        Some(shared) => Some(shared.watch(state.clone()).await?),
        None => None,
    };
    reopen_access_log_on_sighup(&state)?;
    if let Some(interval) = settings.lifecycle_interval {
        coffer_api::lifecycle_worker::spawn(state.clone(), interval);
    }
    if let Some(interval) = settings.sweep_interval {
        coffer_api::sweeper::spawn(state.clone(), interval, settings.sweep_grace);
    }
    tracing::info!(
        data_dir = %settings.data_dir.display(),
        region = %settings.region,
        default_sse = %settings.default_protection,
        "serving"
    );
    listeners.serve(state, observed.metrics).await?;
    tracing::info!("stopped");
    Ok(())
}

/// What the server reports on itself through: the metrics (counting from
/// the start), `/metrics`'s guard and the access log.
struct Observed {
    metrics: MetricsAccess,
    access_log: Option<AccessLog>,
}

impl Observed {
    fn open(settings: &Settings) -> Result<Self, String> {
        let observability = &settings.observability;
        coffer_api::metrics::observe_keys();
        let token = match &observability.metrics_token_file {
            None => None,
            Some(path) => {
                let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    format!("cannot read the metrics token file {}: {e}", path.display())
                })?);
                let token = text.trim();
                if token.is_empty() {
                    return Err(format!(
                        "the metrics token file {} is empty",
                        path.display()
                    ));
                }
                Some(zeroize::Zeroizing::new(token.to_owned()))
            }
        };
        let access_log = match &observability.access_log {
            None => None,
            Some(target) => Some(
                AccessLog::open(target)
                    .map_err(|e| format!("cannot open the access log {target:?}: {e}"))?,
            ),
        };
        Ok(Self {
            metrics: MetricsAccess::new(token),
            access_log,
        })
    }
}

/// The listeners, bound before anything is served: HTTPS first, so that
/// once the HTTP port accepts, both do; the admin listener last.
struct Listeners {
    http: Option<tokio::net::TcpListener>,
    https: Option<(tokio::net::TcpListener, Arc<ServerConfig>)>,
    admin: Option<tokio::net::TcpListener>,
    /// The web console: its page, and the API for what the page signs.
    console: Option<tokio::net::TcpListener>,
}

impl Listeners {
    async fn bind(settings: &Settings) -> Result<Self, String> {
        let https = match &settings.tls {
            None => None,
            Some(tls) => {
                let config = tls_config(tls, &settings.data_dir)?;
                let listener = tokio::net::TcpListener::bind(tls.listen)
                    .await
                    .map_err(|e| format!("cannot listen on {} (HTTPS): {e}", tls.listen))?;
                let local = listener.local_addr().map_err(|e| e.to_string())?;
                tracing::info!("listening on https://{local}");
                Some((listener, config))
            }
        };
        let http = match settings.listen {
            None => None,
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
                let local = listener.local_addr().map_err(|e| e.to_string())?;
                tracing::info!("listening on http://{local}");
                Some(listener)
            }
        };
        let admin = match settings.observability.admin_listen {
            None => None,
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr} (--admin-listen): {e}"))?;
                let local = listener.local_addr().map_err(|e| e.to_string())?;
                tracing::info!("admin listener (health, metrics) on http://{local}");
                Some(listener)
            }
        };
        let console = match settings.console_listen {
            None => None,
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr} (console): {e}"))?;
                let local = listener.local_addr().map_err(|e| e.to_string())?;
                tracing::info!("web console on http://{local}{}", coffer_console::PREFIX);
                Some(listener)
            }
        };
        Ok(Self {
            http,
            https,
            admin,
            console,
        })
    }

    /// Serves every listener until SIGTERM or ctrl-c, then drains them all.
    async fn serve(self, state: Arc<AppState>, metrics: MetricsAccess) -> Result<(), String> {
        let (stop, stopped) = tokio::sync::watch::channel(());
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop.send(());
        });
        let until_stopped = |mut stopped: tokio::sync::watch::Receiver<()>| async move {
            let _ = stopped.changed().await;
        };
        let http = async {
            match self.http {
                Some(listener) => {
                    coffer_api::serve(listener, state.clone(), until_stopped(stopped.clone())).await
                }
                None => Ok(()),
            }
        };
        let https = async {
            match self.https {
                Some((listener, config)) => {
                    coffer_api::serve_tls(
                        listener,
                        state.clone(),
                        config,
                        until_stopped(stopped.clone()),
                    )
                    .await
                }
                None => Ok(()),
            }
        };
        let admin = async {
            match self.admin {
                Some(listener) => {
                    coffer_api::monitoring::serve_admin(
                        listener,
                        state.clone(),
                        metrics,
                        until_stopped(stopped.clone()),
                    )
                    .await
                }
                None => Ok(()),
            }
        };
        let console = async {
            match self.console {
                Some(listener) => {
                    let frontend: coffer_api::Frontend = Arc::new(coffer_console::respond);
                    coffer_api::serve_with_frontend(
                        listener,
                        state.clone(),
                        frontend,
                        until_stopped(stopped.clone()),
                    )
                    .await
                }
                None => Ok(()),
            }
        };
        tokio::try_join!(http, https, admin, console)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// The HTTPS configuration: the certificate (given, or the data dir's
/// self-signed one), reloaded on SIGHUP and when its files change.
fn tls_config(tls: &TlsSettings, data_dir: &Path) -> Result<Arc<ServerConfig>, String> {
    let files = match &tls.cert {
        Some(files) => files.clone(),
        None => {
            let generated = ensure_self_signed(data_dir)
                .map_err(|e| format!("self-signed certificate: {e}"))?;
            if generated.created {
                tracing::warn!(
                    cert = %generated.files.cert.display(),
                    "generated a self-signed certificate for localhost, 127.0.0.1 and ::1: clients must be given this file to trust (use --tls-cert/--tls-key for a real one)"
                );
            }
            generated.files
        }
    };
    let certificate =
        Arc::new(ReloadingCertificate::load(files).map_err(|e| format!("TLS certificate: {e}"))?);
    let config = server_config(&tls.options, certificate.clone()).map_err(|e| e.to_string())?;
    let options = &tls.options;
    tracing::info!(
        cert = %certificate.files().cert.display(),
        sha256 = %certificate.fingerprint(),
        min_version = options.min_version.name(),
        max_version = options.max_version.name(),
        post_quantum = options.post_quantum,
        cipher_suites = %if options.cipher_suites.is_empty() { "default".to_owned() } else { options.cipher_suites.join(",") },
        client_certificates = options.client_ca.is_some(),
        "HTTPS certificate SHA-256 fingerprint {}",
        certificate.fingerprint()
    );
    certificate.spawn_watcher();
    reload_on_sighup(certificate)?;
    Ok(config)
}

#[cfg(unix)]
fn reload_on_sighup(certificate: Arc<ReloadingCertificate>) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup =
        signal(SignalKind::hangup()).map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            let certificate = certificate.clone();
            let _ = tokio::task::spawn_blocking(move || certificate.reload_and_log("SIGHUP")).await;
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn reload_on_sighup(_: Arc<ReloadingCertificate>) -> Result<(), String> {
    Ok(())
}

/// SIGHUP reopens the access log file, for logrotate (`ExecReload`). Installed
/// even without an access log or HTTPS (whose certificate reload listens too):
/// SIGHUP's default action would kill the server on `systemctl reload`.
#[cfg(unix)]
fn reopen_access_log_on_sighup(state: &Arc<AppState>) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup =
        signal(SignalKind::hangup()).map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    let state = state.clone();
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            if let Some(log) = &state.access_log {
                log.reopen();
                tracing::info!("SIGHUP: access log reopened");
            }
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn reopen_access_log_on_sighup(_: &Arc<AppState>) -> Result<(), String> {
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
