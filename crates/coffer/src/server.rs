//! `coffer server`: opens the data directory, loads keys and credentials,
//! and serves until SIGTERM or ctrl-c.

use std::sync::Arc;

use coffer_api::{AppState, ServerSettings};
use coffer_kms::RootKey;
use coffer_kms::root_key::Origin;
use coffer_store::Store;
use tracing_subscriber::EnvFilter;

use crate::config::ServerArgs;
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

    std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
        format!(
            "cannot create data dir {}: {e}",
            settings.data_dir.display()
        )
    })?;
    let root_key = load_root_key(&settings)?;
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
    let store = tokio::task::spawn_blocking(move || Store::open(&data_dir))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| {
            format!(
                "cannot open the store in {}: {e}",
                settings.data_dir.display()
            )
        })?;

    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let state = Arc::new(AppState {
        store,
        root_key,
        service_keys: std::sync::RwLock::new(service_keys),
        root,
        settings: ServerSettings {
            region: settings.region.clone(),
            domains: settings.domains.clone(),
            allow_insecure_sse_c: settings.allow_insecure_sse_c,
        },
    });
    tracing::info!(
        data_dir = %settings.data_dir.display(),
        region = %settings.region,
        "listening on http://{local}"
    );
    coffer_api::serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
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
    let (key, origin) = RootKey::load_or_create(&settings.data_dir).map_err(|e| e.to_string())?;
    if origin == Origin::Created {
        tracing::warn!(
            path = %RootKey::path(&settings.data_dir).display(),
            "created a new root key file: it seals every secret Coffer keeps; back it up and keep it private"
        );
    }
    Ok(key)
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
