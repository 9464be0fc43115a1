//! The embedded KMS's keystore in PostgreSQL: [`PgKeyStore`] implements
//! [`coffer_kms::keystore::KeyStore`] over the tables of migration 2, so that every gateway
//! serves the same keys. It stores, compares and returns sealed records; the root key and all
//! sealing stay in the KMS (docs/kms.md, "The PostgreSQL keystore").
//!
//! - `kms_keys (id, revision, record)`: one row per record, the record's serde JSON; a deleted
//!   record is a tombstone (`record` NULL) with a fresh revision.
//! - `kms_audit (seq, at_ms, line)`: the audit log, one row per line.
//! - Revisions come from the `kms_revision_seq` SEQUENCE, shared by every record, so none is
//!   ever handed out twice (a record deleted and created again never matches a revision read
//!   before the delete).
//!
//! # Compare-and-swap
//! Each swap is one SQL statement, committed on its own, with the expected revision in its
//! `WHERE` clause (`UPDATE … WHERE id = $1 AND revision = $2`; a create is `INSERT … ON
//! CONFLICT … DO UPDATE … WHERE kms_keys.record IS NULL`). PostgreSQL takes the row's lock
//! and, when another transaction changed the row meanwhile, re-checks the `WHERE` clause
//! against the row as that transaction left it: of any number of gateways swapping from one
//! revision, exactly one matches, the others change no row and get [`Cas::Lost`]. No
//! transaction stays open across calls, and READ COMMITTED is enough for one statement.
//! With PostgreSQL's default `synchronous_commit = on`, a swap is durable when it returns.
//!
//! # Seeing other gateways' changes
//! The KMS serves from its in-memory copy and reloads when one of its swaps loses. Every swap
//! also notifies (`pg_notify('coffer_kms', id)`, or `'coffer_service_keys'` for the ring) in
//! its own statement, so the notification goes out exactly when the change commits. A watcher
//! ([`PgKeyStore::watch`]; [`spawn_invalidation`] for an `EmbeddedKms`) listens on a dedicated
//! connection, refreshes the KMS within milliseconds, polls while it cannot listen, and makes
//! the KMS refuse key use when its copy was not confirmed current within a bound (1 s): see
//! the `watch` module. [`PgKeyStore::changed_since`] lists the records whose revision is above
//! a mark, for tools and tests.

mod bridge;
mod root_check;
mod service_keys;
mod settings;
mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;

use coffer_kms::KmsError;
use coffer_kms::keystore::{
    AuditEntry, Cas, KeyRecord, KeyStore, Revision, Versioned, check_record_id,
};

use self::bridge::{Bridge, internal};
use crate::error::Error;

pub use self::root_check::ROOT_MISMATCH;
pub use self::service_keys::PgServiceKeyStore;
pub use self::watch::{
    KMS_CHANNEL, KeystoreListener, SERVICE_KEYS_CHANNEL, WatchHandle, WatchTiming,
    spawn_invalidation, spawn_invalidation_with,
};

/// Connections a [`PgKeyStore`] keeps open at most, unless told otherwise: the KMS calls its
/// keystore under one lock, so a few suffice.
pub const DEFAULT_KEYSTORE_CONNECTIONS: usize = 4;

/// The KMS keystore in PostgreSQL. Cheap to clone (the runtime and pool are shared); one per
/// gateway, shared by its KMS and its service key ring ([`PgKeyStore::service_keys`]).
#[derive(Clone)]
pub struct PgKeyStore {
    bridge: Arc<Bridge>,
    /// For the watcher's own connection ([`PgKeyStore::watch`]); may hold a password.
    url: Arc<str>,
}

impl std::fmt::Debug for PgKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgKeyStore").finish_non_exhaustive()
    }
}

impl PgKeyStore {
    /// Connects to `url` (as [`crate::PgMetadata::connect`] takes it) with up to
    /// [`DEFAULT_KEYSTORE_CONNECTIONS`] connections, and creates or migrates the schema (one
    /// migration chain for metadata and keystore; a newer schema is refused). Blocking, like
    /// every method here; callable from any thread, async workers included.
    pub fn connect(url: &str) -> Result<PgKeyStore, KmsError> {
        Self::connect_with(url, DEFAULT_KEYSTORE_CONNECTIONS)
    }

    /// [`PgKeyStore::connect`] with at most `max_connections` connections.
    pub fn connect_with(url: &str, max_connections: usize) -> Result<PgKeyStore, KmsError> {
        Ok(PgKeyStore {
            bridge: Arc::new(Bridge::connect(url, max_connections)?),
            url: Arc::from(url),
        })
    }

    /// The service master key ring's storage (`service_keys`), on this keystore's
    /// connections: pass it to `coffer_kms::ServiceKeyring::load_or_create_in`.
    pub fn service_keys(&self) -> PgServiceKeyStore {
        PgServiceKeyStore::new(Arc::clone(&self.bridge))
    }

    /// Every record id whose revision is above `mark`, deleted records included, with its
    /// revision, lowest revision first; pass the highest revision seen as the next mark.
    ///
    /// Revisions are taken from the sequence when a swap runs and become visible when it
    /// commits, so two swaps racing may become visible out of order: a poller keeps its mark
    /// a little behind (or re-lists now and then). The KMS's own watcher
    /// ([`PgKeyStore::watch`]) does not poll with marks: it listens, and re-lists when it
    /// may have missed something.
    pub fn changed_since(&self, mark: i64) -> Result<Vec<(String, i64)>, KmsError> {
        self.bridge.run(|pool| async move {
            let client = pool.get().await?;
            let statement = client
                .prepare_cached(
                    "SELECT id, revision FROM kms_keys WHERE revision > $1 ORDER BY revision",
                )
                .await?;
            let rows = client.query(&statement, &[&mark]).await?;
            Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
        })
    }

    /// Audit lines after sequence number `after` (0: from the start), oldest first, at most
    /// `limit`, each with its sequence number.
    pub fn audit_lines(&self, after: i64, limit: i64) -> Result<Vec<(i64, String)>, KmsError> {
        self.bridge.run(|pool| async move {
            let client = pool.get().await?;
            let statement = client
                .prepare_cached(
                    "SELECT seq, line FROM kms_audit WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .await?;
            let rows = client.query(&statement, &[&after, &limit]).await?;
            Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
        })
    }
}

fn decode(id: &str, text: &str) -> Result<KeyRecord, Error> {
    serde_json::from_str(text).map_err(|e| {
        Error::Store(coffer_store::StoreError::Corrupt(format!(
            "the KMS record '{id}' in kms_keys is not a record: {e}"
        )))
    })
}

fn revision(value: i64) -> Revision {
    Revision::new(value.to_string())
}

impl KeyStore for PgKeyStore {
    fn get(&self, id: &str) -> Result<Option<Versioned<KeyRecord>>, KmsError> {
        let id = id.to_owned();
        self.bridge.run(|pool| async move {
            let client = pool.get().await?;
            let statement = client
                .prepare_cached(
                    "SELECT revision, record FROM kms_keys WHERE id = $1 AND record IS NOT NULL",
                )
                .await?;
            match client.query_opt(&statement, &[&id]).await? {
                None => Ok(None),
                Some(row) => Ok(Some(Versioned {
                    revision: revision(row.get(0)),
                    value: decode(&id, row.get(1))?,
                })),
            }
        })
    }

    fn list(&self) -> Result<BTreeMap<String, Versioned<KeyRecord>>, KmsError> {
        self.bridge.run(|pool| async move {
            let client = pool.get().await?;
            // One statement: one snapshot.
            let statement = client
                .prepare_cached(
                    "SELECT id, revision, record FROM kms_keys WHERE record IS NOT NULL",
                )
                .await?;
            let mut records = BTreeMap::new();
            for row in client.query(&statement, &[]).await? {
                let id: String = row.get(0);
                let value = decode(&id, row.get(2))?;
                records.insert(
                    id,
                    Versioned {
                        revision: revision(row.get(1)),
                        value,
                    },
                );
            }
            Ok(records)
        })
    }

    fn compare_and_swap(
        &self,
        id: &str,
        expected: Option<&Revision>,
        new: Option<&KeyRecord>,
    ) -> Result<Cas, KmsError> {
        let record = match new {
            Some(record) => {
                check_record_id(id, record)?;
                Some(serde_json::to_string(record).map_err(internal)?)
            }
            None => None,
        };
        let expected = match expected {
            // A revision this store never handed out matches no row.
            Some(text) => match text.as_str().parse::<i64>() {
                Ok(value) => Some(value),
                Err(_) => return Ok(Cas::Lost),
            },
            None => None,
        };
        let id = id.to_owned();
        self.bridge.run(|pool| async move {
            let client = pool.get().await?;
            let (sql, swapped_to) = match (expected, &record) {
                (None, Some(_)) => (
                    "WITH swapped AS (
                       INSERT INTO kms_keys (id, revision, record)
                       VALUES ($1, nextval('kms_revision_seq'), $2)
                       ON CONFLICT (id) DO UPDATE
                         SET revision = excluded.revision, record = excluded.record
                         WHERE kms_keys.record IS NULL
                       RETURNING id, revision)
                     SELECT revision, pg_notify('coffer_kms', id) FROM swapped",
                    true,
                ),
                // Replace, or delete (`record` NULL: a tombstone), at the expected revision.
                (Some(_), _) => (
                    "WITH swapped AS (
                       UPDATE kms_keys SET revision = nextval('kms_revision_seq'), record = $2
                       WHERE id = $1 AND revision = $3 AND record IS NOT NULL
                       RETURNING id, revision)
                     SELECT revision, pg_notify('coffer_kms', id) FROM swapped",
                    record.is_some(),
                ),
                (None, None) => {
                    let statement = client
                        .prepare_cached(
                            "SELECT 1 FROM kms_keys WHERE id = $1 AND record IS NOT NULL",
                        )
                        .await?;
                    let exists = client.query_opt(&statement, &[&id]).await?.is_some();
                    return Ok(if exists {
                        Cas::Lost
                    } else {
                        Cas::Swapped(None)
                    });
                }
            };
            let statement = client.prepare_cached(sql).await?;
            let row = match expected {
                None => client.query_opt(&statement, &[&id, &record]).await?,
                Some(at) => client.query_opt(&statement, &[&id, &record, &at]).await?,
            };
            Ok(match row {
                None => Cas::Lost,
                Some(row) if swapped_to => Cas::Swapped(Some(revision(row.get(0)))),
                Some(_) => Cas::Swapped(None),
            })
        })
    }

    fn append_audit(&self, line: &str) -> Result<(), KmsError> {
        if line.contains('\n') {
            return Err(internal("an audit line may not contain a newline"));
        }
        let line = line.to_owned();
        let at_ms = coffer_store::rules::epoch_ms(std::time::SystemTime::now());
        self.bridge.run(|pool| async move {
            let client = pool.get().await?;
            let statement = client
                .prepare_cached("INSERT INTO kms_audit (at_ms, line) VALUES ($1, $2)")
                .await?;
            client.execute(&statement, &[&at_ms, &line]).await?;
            Ok(())
        })
    }
    fn read_audit(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, KmsError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .audit_lines(after, limit)?
            .into_iter()
            .map(|(seq, line)| AuditEntry {
                seq: u64::try_from(seq).unwrap_or_default(),
                line,
            })
            .collect())
    }
}
