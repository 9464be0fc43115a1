//! A stateless gateway's backends (`--meta postgres://… --blobs s3://…`, docs/deploy.md):
//! metadata and the KMS keystore in PostgreSQL, sealed blobs in an upstream S3 bucket, and
//! the root key on the gateway (its file in the data dir, or a passphrase whose salt the
//! gateways share through PostgreSQL). Every gateway opened on one database must hold the
//! same root key; the keystore's root-key check refuses any other before anything is written.

use std::sync::Arc;

use coffer_auth::Secret;
use coffer_blobs_s3::{S3BlobConfig, S3BlobStore};
use coffer_kms::RootKey;
use coffer_kms::root_key::Origin;
use coffer_meta_pg::{PgKeyStore, PgMetadata};

use super::{Opened, passphrase, root_key_wrapper};
use crate::config::Settings;
use crate::credentials;

/// The gateway setting holding the Argon2id salt of a passphrase-derived root key.
const SALT_SETTING: &str = "root-salt";
/// The gateway setting holding the root key wrapped by a PKCS#11 token key (hex).
const WRAPPED_SETTING: &str = "root-key-pkcs11-wrapped";

/// Connects to PostgreSQL and the upstream bucket and opens the shared keystore.
pub async fn open(
    settings: &Settings,
    meta_url: &str,
    blobs: &S3BlobConfig,
) -> Result<Opened, String> {
    let shown = redacted(meta_url);
    let (access_key, secret_key) = upstream_credentials()?;
    let blob_store = S3BlobStore::new(blobs, access_key, Secret::new(secret_key.as_str()))
        .map_err(|e| format!("--blobs: {e}"))?;
    blob_store.check().await.map_err(|e| {
        format!(
            "cannot use the upstream bucket {} at {}: {e}; check --blobs and the \
             COFFER_BLOBS_ACCESS_KEY_ID / COFFER_BLOBS_SECRET_ACCESS_KEY credentials",
            blobs.bucket, blobs.endpoint
        )
    })?;
    let meta = PgMetadata::connect(meta_url)
        .await
        .map_err(|e| format!("cannot use the PostgreSQL database {shown}: {e}"))?;
    let keystore = PgKeyStore::connect(meta_url)
        .map_err(|e| format!("cannot open the KMS keystore in {shown}: {e}"))?;

    let root_key = Arc::new(root_key(settings, &keystore)?);
    keystore
        .check_root_key(&root_key)
        .map_err(|e| format!("{e}; refusing to start"))?;
    let service_keys =
        coffer_kms::ServiceKeyring::load_or_create_in(Arc::new(keystore.service_keys()), &root_key)
            .map_err(|e| format!("{e}; refusing to start"))?;
    let kms = Arc::new(
        coffer_kms::EmbeddedKms::with_keystore(
            Arc::new(keystore.clone()),
            Arc::clone(&root_key),
            &settings.region,
        )
        .map_err(|e| format!("cannot open the KMS keystore in {shown}: {e}; refusing to start"))?,
    );
    let (root, source) = credentials::load_shared(&settings.data_dir, &keystore, &root_key)?;
    tracing::info!(
        meta = %shown,
        blobs = %format!("s3://{}/{} at {}", blobs.bucket, blobs.prefix, blobs.endpoint),
        "gateway: metadata and keystore in PostgreSQL, blobs upstream"
    );
    Ok(Opened {
        meta: Arc::new(meta),
        blobs: Arc::new(blob_store),
        root_key,
        service_keys,
        kms: kms.clone(),
        root,
        source,
        shared_keys: Some(SharedKeys { keystore, kms }),
    })
}

/// The KMS over the shared keystore, to be kept current with the other gateways.
pub struct SharedKeys {
    keystore: PgKeyStore,
    kms: Arc<coffer_kms::EmbeddedKms>,
}

impl SharedKeys {
    /// Watches the keystore (LISTEN/NOTIFY, polling while it cannot listen): the KMS re-reads
    /// what another gateway changed, and `state`'s service key ring reloads when another
    /// gateway rotated it. Key use fails closed when the keystore cannot be confirmed current
    /// for a second (docs/kms.md). Keep the handle while serving.
    pub async fn watch(
        self,
        state: Arc<coffer_api::AppState>,
    ) -> Result<coffer_meta_pg::keystore::WatchHandle, String> {
        let root = Arc::clone(&state.root_key);
        let on_service_keys = Arc::new(move || {
            if let Err(e) = state.keys.refresh_service_keys(&root) {
                tracing::warn!(error = %e, "reloading the service key ring failed");
            }
        });
        tokio::task::spawn_blocking(move || {
            coffer_meta_pg::keystore::spawn_invalidation(&self.keystore, self.kms, on_service_keys)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot watch the shared KMS keystore: {e}; refusing to start"))
    }
}

/// The root key: from the passphrase and the shared salt (stored by the first gateway), else
/// the data dir's key file — created only for the first gateway of a database.
fn root_key(settings: &Settings, keystore: &PgKeyStore) -> Result<RootKey, String> {
    // Wrapped by a token key: the first gateway's wrapped key is shared through the database,
    // so every gateway with the same token key unwraps the same root key.
    if let Some(wrapper) = root_key_wrapper(settings)? {
        let (_, new_wrapped) = RootKey::new_wrapped(&wrapper).map_err(|e| e.to_string())?;
        let stored = keystore
            .setting_or_insert(WRAPPED_SETTING, hex::encode(new_wrapped))
            .map_err(|e| e.to_string())?;
        let wrapped = hex::decode(stored.trim())
            .map_err(|_| format!("gateway setting {WRAPPED_SETTING} is not hex"))?;
        return RootKey::from_wrapped(&wrapped, &wrapper)
            .map_err(|e| format!("{e} (gateway setting {WRAPPED_SETTING}); refusing to start"));
    }
    if let Some(passphrase) = passphrase(settings)? {
        let new_salt = RootKey::new_salt().map_err(|e| e.to_string())?;
        let salt = keystore
            .setting_or_insert(SALT_SETTING, new_salt)
            .map_err(|e| e.to_string())?;
        return RootKey::from_passphrase_and_salt(passphrase.as_bytes(), &salt)
            .map_err(|e| format!("{e} (gateway setting {SALT_SETTING})"));
    }
    let path = RootKey::path(&settings.data_dir);
    if !path.exists() && keystore.has_root_key().map_err(|e| e.to_string())? {
        return Err(format!(
            "the root key file {} is missing, and this PostgreSQL keystore is sealed by the root \
             key of the gateways already using it: copy that root.key here (mode 0600), or \
             start with the same --root-passphrase-file",
            path.display()
        ));
    }
    let (key, origin) = RootKey::load_or_create(&settings.data_dir).map_err(|e| e.to_string())?;
    if origin == Origin::Created {
        tracing::warn!(
            path = %path.display(),
            "created a new root key file for this database: every other gateway needs a copy; back it up and keep it private"
        );
    }
    Ok(key)
}

pub fn upstream_credentials() -> Result<(String, zeroize::Zeroizing<String>), String> {
    let value = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        value("COFFER_BLOBS_ACCESS_KEY_ID"),
        value("COFFER_BLOBS_SECRET_ACCESS_KEY").map(zeroize::Zeroizing::new),
    ) {
        (Some(access_key), Some(secret_key)) => Ok((access_key, secret_key)),
        _ => Err(
            "--blobs s3://… needs the upstream bucket's credentials: set \
             COFFER_BLOBS_ACCESS_KEY_ID and COFFER_BLOBS_SECRET_ACCESS_KEY"
                .into(),
        ),
    }
}

/// `url` without its password, for messages and logs.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a PostgreSQL URL)".into();
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(name, _)| name);
            format!("{user}@{host}")
        }
        None => authority.to_owned(),
    };
    let database = path.split_once('?').map_or(path, |(db, _)| db);
    format!("{scheme}://{host}/{database}")
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redacted("postgres://coffer:s3cret@db.example:5432/coffer?sslmode=disable&password=x"),
            "postgres://coffer@db.example:5432/coffer"
        );
        assert_eq!(
            redacted("postgres://127.0.0.1:5432/coffer"),
            "postgres://127.0.0.1:5432/coffer"
        );
        assert_eq!(redacted("host=x password=y"), "(a PostgreSQL URL)");
    }
}
