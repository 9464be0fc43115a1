//! The root-key check: gateways sharing one database must share one root key, and a gateway
//! started with another one must stop before it reads or writes anything sealed.
//!
//! `kms_root_check` holds one value: 32 random bytes sealed by the root key (context
//! `coffer-root-check:v1`) of the first gateway that ran the check. Every later gateway opens
//! it; one whose root key does not is refused with [`ROOT_MISMATCH`]. In a database whose
//! keystore or service key ring was written before the check existed, the first check also
//! opens those (the KMS's records, the ring's versions) before it stores its value, so a
//! wrong root key cannot claim the check first.

use std::sync::Arc;

use coffer_kms::keystore::{KeyStore, is_alias_id};
use coffer_kms::{EmbeddedKms, KeyringError, KmsError, RootKey, ServiceKeyStore, ServiceKeyring};

use super::PgKeyStore;

/// How a refused gateway's error begins.
pub const ROOT_MISMATCH: &str = "this PostgreSQL keystore was sealed with another root key";

const CONTEXT: &str = "coffer-root-check:v1";
const NAME: &str = "root-key";

fn mismatch(what: &str) -> KmsError {
    KmsError::Internal(format!(
        "{ROOT_MISMATCH}: {what} does not open with this gateway's root key. Start every \
         gateway with the same root key (the same key file, or the same passphrase and salt); \
         this gateway refuses to start rather than write anything under another key"
    ))
}

impl PgKeyStore {
    /// Checks that `root` is the root key this database's sealed records were sealed with;
    /// the server calls it at start, before opening the KMS or the service key ring. The
    /// first check on a database stores the check value (see the module documentation).
    /// A different root key is [`KmsError::Internal`] starting with [`ROOT_MISMATCH`].
    pub fn check_root_key(&self, root: &Arc<RootKey>) -> Result<(), KmsError> {
        for _ in 0..3 {
            if let Some(sealed) = self.root_check()? {
                let sealed = hex::decode(sealed)
                    .map_err(|_| KmsError::Internal("kms_root_check is not hex".into()))?;
                return match root.open(CONTEXT, &sealed) {
                    Ok(_) => Ok(()),
                    Err(_) => Err(mismatch("the root-key check value in kms_root_check")),
                };
            }
            self.open_existing(root)?;
            let mut value = [0u8; 32];
            getrandom::fill(&mut value).map_err(|e| {
                KmsError::Internal(format!("no randomness for the root check: {e}"))
            })?;
            let sealed = root
                .seal(CONTEXT, &value)
                .map_err(|e| KmsError::Internal(format!("sealing the root check: {e}")))?;
            self.store_root_check(hex::encode(sealed))?;
            // Read back what won: ours, or a value another gateway stored at the same time.
        }
        Err(KmsError::Internal(
            "the root-key check value could not be stored".into(),
        ))
    }

    /// Whether a root key has claimed this database (the first [`PgKeyStore::check_root_key`]
    /// ran): a gateway without its root key must then be given that one, not a new one.
    pub fn has_root_key(&self) -> Result<bool, KmsError> {
        Ok(self.root_check()?.is_some())
    }

    /// Opens whatever the database already holds sealed, before the first check value is
    /// stored.
    fn open_existing(&self, root: &Arc<RootKey>) -> Result<(), KmsError> {
        let service_keys = self.service_keys();
        if service_keys.load().map_err(keyring_error)?.is_some() {
            match ServiceKeyring::load_or_create_in(Arc::new(service_keys), root) {
                Err(KeyringError::WrongRootKey { .. }) => {
                    return Err(mismatch("the service master key ring in service_keys"));
                }
                Err(e) => return Err(keyring_error(e)),
                Ok(_) => {}
            }
        }
        if self.list()?.keys().any(|id| !is_alias_id(id)) {
            let opened =
                EmbeddedKms::with_keystore(Arc::new(self.clone()), Arc::clone(root), "us-east-1");
            if let Err(e) = opened {
                return Err(match &e {
                    KmsError::Internal(m) if m.contains("root key") => {
                        mismatch("the KMS keystore in kms_keys")
                    }
                    _ => e,
                });
            }
        }
        Ok(())
    }

    fn root_check(&self) -> Result<Option<String>, KmsError> {
        self.bridge.run(|pool| async move {
            let client = pool.get().await?;
            let statement = client
                .prepare_cached("SELECT sealed FROM kms_root_check WHERE name = $1")
                .await?;
            Ok(client
                .query_opt(&statement, &[&NAME])
                .await?
                .map(|row| row.get(0)))
        })
    }

    fn store_root_check(&self, sealed: String) -> Result<(), KmsError> {
        let created_ms = coffer_store::rules::epoch_ms(std::time::SystemTime::now());
        self.bridge.run(|pool| async move {
            let client = pool.get().await?;
            let statement = client
                .prepare_cached(
                    "INSERT INTO kms_root_check (name, sealed, created_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO NOTHING",
                )
                .await?;
            client
                .execute(&statement, &[&NAME, &sealed, &created_ms])
                .await?;
            Ok(())
        })
    }
}

fn keyring_error(e: KeyringError) -> KmsError {
    KmsError::Internal(e.to_string())
}
