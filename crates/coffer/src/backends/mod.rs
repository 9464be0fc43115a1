//! What a server runs on: the embedded backends (everything in the data dir) or a gateway's
//! (PostgreSQL and an upstream S3 bucket, `gateway.rs`), opened with the root key, the
//! service key ring, the KMS and the root credentials.

mod embedded;
mod gateway;

pub use gateway::{redacted, upstream_credentials};

use std::sync::Arc;

use coffer_api::RootCredentials;
use coffer_kms::{Kms, RootKey, ServiceKeyring};
use coffer_store::{BlobStore, MetadataStore};

use crate::config::{Backends, Settings};
use crate::credentials::Source;

/// What a server runs on, opened: the stores, the keys, the root credentials.
pub struct Opened {
    pub meta: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub root_key: Arc<RootKey>,
    pub service_keys: ServiceKeyring,
    pub kms: Arc<dyn Kms>,
    pub root: RootCredentials,
    pub source: Source,
    /// A gateway's shared keystore, to keep its KMS current once the server's state exists.
    pub shared_keys: Option<gateway::SharedKeys>,
}

/// Opens the backends `settings` name. `fresh`: the data dir did not exist before this start.
pub async fn open(settings: &Settings, fresh: bool) -> Result<Opened, String> {
    let mut opened = match &settings.backends {
        Backends::Embedded => embedded::open(settings, fresh).await,
        Backends::Gateway { meta_url, blobs } => gateway::open(settings, meta_url, blobs).await,
    }?;
    opened.kms = settings
        .kms_backend
        .open(opened.kms, &settings.region)
        .await?;
    Ok(opened)
}

/// The token key that wraps the root key (`--root-key pkcs11:…`), connected and checked; refused
/// beside a root passphrase (two ways to keep one key).
pub fn root_key_wrapper(
    settings: &Settings,
) -> Result<Option<coffer_kms_pkcs11::TokenRootWrapper>, String> {
    let Some(uri) = &settings.root_key else {
        return Ok(None);
    };
    if passphrase(settings)?.is_some() {
        return Err(
            "--root-key and a root passphrase are two ways to keep the root key: give one".into(),
        );
    }
    coffer_kms_pkcs11::TokenRootWrapper::open(uri.clone())
        .map(Some)
        .map_err(|e| format!("{e}; refusing to start"))
}

/// The root passphrase, from `--root-passphrase-file` or `COFFER_ROOT_PASSPHRASE`.
pub fn passphrase(settings: &Settings) -> Result<Option<zeroize::Zeroizing<String>>, String> {
    Ok(
        match (
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
        },
    )
}
