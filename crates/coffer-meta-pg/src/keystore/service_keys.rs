//! The service master key ring's document in PostgreSQL: [`PgServiceKeyStore`] implements
//! [`coffer_kms::ServiceKeyStore`] over one row of `service_keys`, holding the same JSON
//! document as `<data-dir>/service-keys.json` (each version sealed by the root key) and a
//! revision from `kms_revision_seq`. A swap is one statement with the expected revision in
//! its `WHERE` clause (or `INSERT … ON CONFLICT DO NOTHING` for the first document), so of two
//! gateways rotating from one revision exactly one writes; the other reloads and rotates on
//! top (`ServiceKeyring::rotate`).

use std::sync::Arc;

use coffer_kms::keystore::{Cas, Revision, Versioned};
use coffer_kms::{KeyringError, ServiceKeyStore};

use super::bridge::Bridge;
use super::revision;

/// The row's name: one service key ring per database.
const NAME: &str = "service-master-key";
const LOCATION: &str = "PostgreSQL table service_keys";

/// The service key ring's storage in PostgreSQL; from [`super::PgKeyStore::service_keys`].
pub struct PgServiceKeyStore {
    bridge: Arc<Bridge>,
}

impl PgServiceKeyStore {
    pub(super) fn new(bridge: Arc<Bridge>) -> Self {
        Self { bridge }
    }
}

fn io(message: impl std::fmt::Display) -> KeyringError {
    KeyringError::Io {
        location: LOCATION.to_owned(),
        message: message.to_string(),
    }
}

impl ServiceKeyStore for PgServiceKeyStore {
    fn location(&self) -> String {
        LOCATION.to_owned()
    }

    fn load(&self) -> Result<Option<Versioned<Vec<u8>>>, KeyringError> {
        self.bridge
            .run(|pool| async move {
                let client = pool.get().await?;
                let statement = client
                    .prepare_cached("SELECT revision, document FROM service_keys WHERE name = $1")
                    .await?;
                Ok(client
                    .query_opt(&statement, &[&NAME])
                    .await?
                    .map(|row| Versioned {
                        revision: revision(row.get(0)),
                        value: row.get::<_, String>(1).into_bytes(),
                    }))
            })
            .map_err(io)
    }

    fn compare_and_swap(
        &self,
        expected: Option<&Revision>,
        document: &[u8],
    ) -> Result<Cas, KeyringError> {
        let document = String::from_utf8(document.to_vec())
            .map_err(|_| io("the keyring document is not UTF-8 JSON"))?;
        let expected = match expected {
            Some(text) => match text.as_str().parse::<i64>() {
                Ok(value) => Some(value),
                Err(_) => return Ok(Cas::Lost),
            },
            None => None,
        };
        self.bridge
            .run(|pool| async move {
                let client = pool.get().await?;
                let row = match expected {
                    None => {
                        let statement = client
                            .prepare_cached(
                                "WITH swapped AS (
                                   INSERT INTO service_keys (name, revision, document)
                                   VALUES ($1, nextval('kms_revision_seq'), $2)
                                   ON CONFLICT (name) DO NOTHING
                                   RETURNING name, revision)
                                 SELECT revision, pg_notify('coffer_service_keys', name)
                                 FROM swapped",
                            )
                            .await?;
                        client.query_opt(&statement, &[&NAME, &document]).await?
                    }
                    Some(at) => {
                        let statement = client
                            .prepare_cached(
                                "WITH swapped AS (
                                   UPDATE service_keys
                                   SET revision = nextval('kms_revision_seq'), document = $2
                                   WHERE name = $1 AND revision = $3
                                   RETURNING name, revision)
                                 SELECT revision, pg_notify('coffer_service_keys', name)
                                 FROM swapped",
                            )
                            .await?;
                        client
                            .query_opt(&statement, &[&NAME, &document, &at])
                            .await?
                    }
                };
                Ok(match row {
                    Some(row) => Cas::Swapped(Some(revision(row.get(0)))),
                    None => Cas::Lost,
                })
            })
            .map_err(io)
    }
}
