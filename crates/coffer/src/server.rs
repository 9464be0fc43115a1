//! `coffer server`: opens the data directory, loads keys and credentials,
//! and serves HTTP and/or HTTPS until SIGTERM or ctrl-c. SIGHUP reloads
//! the HTTPS certificate.

use std::path::Path;
use std::sync::Arc;

use coffer_api::tls::{ReloadingCertificate, ServerConfig, ensure_self_signed, server_config};
use coffer_api::{AppState, ServerSettings};
use coffer_kms::RootKey;
use coffer_kms::root_key::Origin;
use tracing_subscriber::EnvFilter;

use crate::config::{ServerArgs, Settings, TlsSettings};
use crate::credentials::{self, Source};

pub async fn run(args: ServerArgs) -> Result<(), String> {
    let settings = args.resolve()?;
    let filter =
        EnvFilter::try_new(&settings.log).map_err(|e| format!("invalid log filter: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

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
    let root_key = Arc::new(load_root_key(&settings)?);
    if settings.allow_insecure_sse_c {
        tracing::warn!(
            "SSE-C is accepted over plain HTTP (--allow-insecure-sse-c): for tests only"
        );
    }
    let service_keys = coffer_kms::ServiceKeyring::load_or_create(&settings.data_dir, &root_key)
        .map_err(|e| format!("{e}; refusing to start"))?;
    let (root, source) = credentials::load(&settings.data_dir)?;
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
    }
    let data_dir = settings.data_dir.clone();
    let (meta, blobs) = tokio::task::spawn_blocking(move || coffer_store::open_embedded(&data_dir))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| {
            format!(
                "cannot open the store in {}: {e}",
                settings.data_dir.display()
            )
        })?;

    let listeners = Listeners::bind(&settings).await?;
    let kms_dir = settings.data_dir.clone();
    let kms_root = root_key.clone();
    let kms_region = settings.region.clone();
    let kms: Arc<dyn coffer_kms::Kms> = Arc::new(
        tokio::task::spawn_blocking(move || {
            coffer_kms::EmbeddedKms::open(&kms_dir, kms_root, &kms_region)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot open the embedded KMS: {e}; refusing to start"))?,
    );
    let keys = coffer_keying::ObjectKeys::new(
        service_keys,
        Some(kms.clone()),
        settings.allow_insecure_sse_c,
    );
    let state = Arc::new(AppState {
        meta: Arc::new(meta),
        blobs: Arc::new(blobs),
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
    });
    if settings.test_clock {
        coffer_api::clock::make_adjustable();
        tracing::warn!(
            "the object clock can be moved through the admin API (--test-clock): for tests only"
        );
    }
    if let Some(interval) = settings.lifecycle_interval {
        coffer_api::lifecycle_worker::spawn(state.clone(), interval);
    }
    tracing::info!(
        data_dir = %settings.data_dir.display(),
        region = %settings.region,
        default_sse = %settings.default_protection,
        "serving"
    );
    listeners.serve(state).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The root key: derived from a passphrase when one is given, else the
/// key file (created on first start).
fn load_root_key(settings: &crate::config::Settings) -> Result<RootKey, String> {
    let passphrase = match (
        &settings.root_passphrase_file,
        std::env::var("COFFER_ROOT_PASSPHRASE"),
    ) {
        (Some(path), _) => Some(zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| {
                    format!(
                        "cannot read the root passphrase file {}: {e}",
                        path.display()
                    )
                })?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        )),
        (None, Ok(passphrase)) if !passphrase.is_empty() => {
            Some(zeroize::Zeroizing::new(passphrase))
        }
        _ => None,
    };
    if let Some(passphrase) = passphrase {
        let (key, origin) = RootKey::from_passphrase(&settings.data_dir, passphrase.as_bytes())
            .map_err(|e| e.to_string())?;
        if origin == Origin::Created {
            tracing::warn!(
                "root key derived from a new passphrase: without it this data dir cannot be opened"
            );
        }
        return Ok(key);
    }
    // A keystore without its root key file is a lost or misplaced key, not a
    // first start: creating a new key would only leave a useless file behind.
    let root_key_path = RootKey::path(&settings.data_dir);
    if !root_key_path.exists() && settings.data_dir.join("service-keys.json").exists() {
        return Err(format!(
            "the root key file {} is missing but this data dir has a keystore sealed by it; \
             restore the file from your backup (or pass --root-passphrase-file if it used one)",
            root_key_path.display()
        ));
    }
    let (key, origin) = RootKey::load_or_create(&settings.data_dir).map_err(|e| e.to_string())?;
    if origin == Origin::Created {
        tracing::warn!(
            path = %RootKey::path(&settings.data_dir).display(),
            "created a new root key file: it seals every secret Coffer keeps; back it up and keep it private"
        );
    }
    Ok(key)
}

/// The listeners, bound before anything is served: HTTPS first, so that
/// once the HTTP port accepts, both do.
struct Listeners {
    http: Option<tokio::net::TcpListener>,
    https: Option<(tokio::net::TcpListener, Arc<ServerConfig>)>,
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
        Ok(Self { http, https })
    }

    /// Serves every listener until SIGTERM or ctrl-c, then drains them all.
    async fn serve(self, state: Arc<AppState>) -> Result<(), String> {
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
        tokio::try_join!(http, https)
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
