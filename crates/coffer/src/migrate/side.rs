//! The two ends of a migration, opened: an embedded data dir, or a gateway's PostgreSQL
//! database and upstream bucket. Each end gives the same handles: metadata, blobs, the KMS
//! keystore, the service key ring's document and the audit log.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use coffer_auth::Secret;
use coffer_blobs_s3::{S3BlobConfig, S3BlobStore};
use coffer_kms::embedded::RootIntegrity;
use coffer_kms::keystore::KeyStore;
use coffer_kms::keystore::file::{AUDIT_FILE_NAME, FileKeyStore};
use coffer_kms::{FileServiceKeyStore, RootKey, ServiceKeyStore};
use coffer_meta_pg::{PgKeyStore, PgMetadata};
use coffer_store::{BlobStore, MetadataStore};

use crate::backends::{redacted, upstream_credentials};

/// Where one end of a migration is.
#[derive(Clone, Debug)]
pub enum Place {
    /// An embedded store: everything in one data dir.
    Embedded(PathBuf),
    /// Gateways' backends: PostgreSQL (metadata and keystore) and an upstream S3 bucket.
    Gateway {
        /// `postgres://…`
        meta_url: String,
        /// The upstream bucket.
        blobs: S3BlobConfig,
    },
}

impl Place {
    /// The place for messages: a path, or the database (without its password) and bucket.
    pub fn shown(&self) -> String {
        match self {
            Place::Embedded(dir) => format!("data dir {}", dir.display()),
            Place::Gateway { meta_url, blobs } => format!(
                "{} + s3://{}/{} at {}",
                redacted(meta_url),
                blobs.bucket,
                blobs.prefix,
                blobs.endpoint
            ),
        }
    }
}

/// The stores of one end, connected. The KMS handles are opened once the root key is known
/// ([`Side::open_keystore`]).
pub struct Side {
    pub place: Place,
    pub meta: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// The gateway's keystore (root-key check, settings, audit); `None` for a data dir.
    pub pg: Option<PgKeyStore>,
}

/// An embedded store open elsewhere (a running server holds `meta.redb`'s lock) fails here.
pub async fn open(place: &Place) -> Result<Side, String> {
    match place {
        Place::Embedded(dir) => {
            let data_dir = dir.clone();
            let opened =
                tokio::task::spawn_blocking(move || coffer_store::open_embedded(&data_dir))
                    .await
                    .map_err(|e| e.to_string())?;
            let (meta, blobs) = opened.map_err(|e| {
                format!(
                    "cannot open the store in {}: {e} (is a server running on it? stop it \
                     first: a migration needs the store to itself)",
                    dir.display()
                )
            })?;
            Ok(Side {
                place: place.clone(),
                meta: Arc::new(meta),
                blobs: Arc::new(blobs),
                pg: None,
            })
        }
        Place::Gateway { meta_url, blobs } => {
            let shown = redacted(meta_url);
            let (access_key, secret_key) = upstream_credentials()?;
            let blob_store = S3BlobStore::new(blobs, access_key, Secret::new(secret_key.as_str()))
                .map_err(|e| format!("blobs: {e}"))?;
            blob_store.check().await.map_err(|e| {
                format!(
                    "cannot use the upstream bucket {} at {}: {e}",
                    blobs.bucket, blobs.endpoint
                )
            })?;
            let meta = PgMetadata::connect(meta_url)
                .await
                .map_err(|e| format!("cannot use the PostgreSQL database {shown}: {e}"))?;
            let url = meta_url.clone();
            let keystore = tokio::task::spawn_blocking(move || PgKeyStore::connect(&url))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("cannot open the KMS keystore in {shown}: {e}"))?;
            Ok(Side {
                place: place.clone(),
                meta: Arc::new(meta),
                blobs: Arc::new(blob_store),
                pg: Some(keystore),
            })
        }
    }
}

impl Side {
    /// The KMS keystore: `<dir>/kms/keystore.json` (created empty if absent; its integrity
    /// seal opens only with `root`), or PostgreSQL's `kms_keys`.
    pub fn open_keystore(&self, root: &Arc<RootKey>) -> Result<Arc<dyn KeyStore>, String> {
        match (&self.place, &self.pg) {
            (_, Some(pg)) => Ok(Arc::new(pg.clone())),
            (Place::Embedded(dir), None) => {
                let kms_dir = dir.join("kms");
                private_dir(&kms_dir)?;
                let integrity = Arc::new(RootIntegrity::new(Arc::clone(root)));
                let store = FileKeyStore::open(&kms_dir, integrity).map_err(|e| {
                    format!("cannot open the KMS keystore in {}: {e}", dir.display())
                })?;
                Ok(Arc::new(store))
            }
            (Place::Gateway { .. }, None) => Err("a gateway side without its keystore".into()),
        }
    }

    /// The service key ring's document store.
    pub fn ring(&self) -> Arc<dyn ServiceKeyStore> {
        match (&self.place, &self.pg) {
            (_, Some(pg)) => Arc::new(pg.service_keys()),
            (Place::Embedded(dir), None) => Arc::new(FileServiceKeyStore::new(dir)),
            (Place::Gateway { .. }, None) => unreachable!("a gateway side always has its keystore"),
        }
    }

    /// Calls `each` with every audit line, oldest first; stops at its first error.
    pub fn for_each_audit_line(
        &self,
        mut each: impl FnMut(&str) -> Result<(), String>,
    ) -> Result<(), String> {
        match (&self.place, &self.pg) {
            (_, Some(pg)) => {
                let mut after = 0;
                loop {
                    let batch = pg.audit_lines(after, 1000).map_err(|e| e.to_string())?;
                    let Some((last, _)) = batch.last() else {
                        return Ok(());
                    };
                    after = *last;
                    for (_, line) in &batch {
                        each(line)?;
                    }
                }
            }
            (Place::Embedded(dir), None) => {
                let path = audit_path(dir);
                let file = match std::fs::File::open(&path) {
                    Ok(file) => file,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                    Err(e) => return Err(format!("{}: {e}", path.display())),
                };
                for line in std::io::BufReader::new(file).lines() {
                    let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
                    if !line.is_empty() {
                        each(&line)?;
                    }
                }
                Ok(())
            }
            (Place::Gateway { .. }, None) => Err("a gateway side without its keystore".into()),
        }
    }
}

fn audit_path(dir: &Path) -> PathBuf {
    dir.join("kms").join(AUDIT_FILE_NAME)
}

/// Creates `dir` (mode 0700) if absent.
fn private_dir(dir: &Path) -> Result<(), String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}
