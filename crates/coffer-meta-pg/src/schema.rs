//! The schema and its versioned migrations, applied by [`crate::PgMetadata::connect`].
//!
//! `schema_migrations` holds one row per applied migration. A migration runs in one
//! transaction that first inserts its row: two gateways starting together both try, the
//! second waits on the first's row (primary key), fails, re-reads and finds nothing left to do.
//! A database whose newest migration is newer than [`LATEST`] was written by a newer build:
//! connecting refuses it rather than guess at tables it does not know.

use coffer_store::StoreError;
use deadpool_postgres::Pool;
use tokio_postgres::error::SqlState;

use crate::error::Error;
use coffer_store::rules::epoch_ms;

/// One migration: its number (1, 2, … in order, never reused), a name, and its SQL.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration this build knows, oldest first. Append only: a shipped migration never
/// changes.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "buckets, objects, versions, uploads, parts, blob references, pending blobs, users",
        sql: include_str!("migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "KMS keystore, KMS audit, service master key ring, root-key check",
        sql: include_str!("migrations/0002_kms_keystore.sql"),
    },
    Migration {
        version: 3,
        name: "gateway settings: the passphrase salt, the sealed root credentials",
        sql: include_str!("migrations/0003_gateway_settings.sql"),
    },
];

/// The schema version this build reads and writes.
pub const LATEST: i64 = 3;

const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version bigint PRIMARY KEY,
    name text NOT NULL,
    applied_ms bigint NOT NULL
)";

/// Brings the database's schema to [`LATEST`]; refuses a newer one.
pub(crate) async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    for _ in 0..10 {
        match migrate_once(pool).await {
            Err(e) if e.is_retryable() => continue,
            result => return result.map_err(Error::into_store),
        }
    }
    Err(StoreError::Io(std::io::Error::other(
        "postgres: could not migrate the schema: other gateways kept racing",
    )))
}

/// The schema version of the database (0 before any migration).
pub(crate) async fn current_version(pool: &Pool) -> Result<i64, Error> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0)::bigint FROM schema_migrations",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

async fn migrate_once(pool: &Pool) -> Result<(), Error> {
    {
        let client = pool.get().await?;
        if let Err(e) = client.batch_execute(CREATE_MIGRATIONS_TABLE).await {
            // Two first starts racing on CREATE TABLE IF NOT EXISTS: the loser sees a unique
            // violation in the catalog; the table exists either way.
            if e.code() != Some(&SqlState::UNIQUE_VIOLATION) {
                return Err(e.into());
            }
        }
    }
    let current = current_version(pool).await?;
    if current > LATEST {
        return Err(Error::Store(StoreError::Corrupt(format!(
            "the PostgreSQL schema is at version {current}, newer than this build knows \
             ({LATEST}): a newer coffer migrated this database; run that version or newer"
        ))));
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, $3)",
            &[
                &migration.version,
                &migration.name,
                &epoch_ms(std::time::SystemTime::now()),
            ],
        )
        .await?;
        tx.batch_execute(migration.sql).await?;
        tx.commit().await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied a PostgreSQL schema migration"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_up_to_latest() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(LATEST));
    }
}
