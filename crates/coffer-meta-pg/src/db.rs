//! Connections and transactions: a deadpool pool of tokio-postgres clients, and the two ways a
//! method talks to PostgreSQL — a SERIALIZABLE transaction retried when it loses a race, or a
//! read-only REPEATABLE READ snapshot for reads of several statements.

use std::time::Duration;

use coffer_store::StoreError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Transaction};
use tokio_postgres::IsolationLevel;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::error::Error;

/// Attempts of one SERIALIZABLE transaction before its serialization failure is returned.
const MAX_ATTEMPTS: u32 = 30;
/// The first retry waits up to this long; each next one up to twice as long (capped at 16×).
const FIRST_BACKOFF: Duration = Duration::from_millis(2);

/// Longest wait for a pooled connection when every one is busy: past it the request fails
/// `Unavailable` (the pool is exhausted) instead of queueing for ever.
const POOL_WAIT: Duration = Duration::from_secs(30);
/// Longest wait for a new connection (TCP, authentication), unless the connection string sets
/// `connect_timeout`: an unreachable host fails `Unavailable` in this time, not the minutes
/// TCP would retry for.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for an idle connection's health check when it is taken from the pool.
const RECYCLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The transaction type every operation runs in.
pub(crate) type Tx<'a> = Transaction<'a>;

/// The connection settings in `url` (`postgres://user:password@host:port/database`, or
/// libpq's `key=value` form), with [`CONNECT_TIMEOUT`] unless it sets its own.
pub(crate) fn config(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
        StoreError::InvalidArgument(format!("not a PostgreSQL connection string: {e}"))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(config)
}

/// A pool of connections made with `config`, at most `max_connections` open at once.
/// Connects lazily.
pub(crate) fn pool(
    config: tokio_postgres::Config,
    max_connections: usize,
) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_connections.max(1))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(RECYCLE_TIMEOUT))
        .build()
        .map_err(|e| StoreError::InvalidArgument(format!("cannot build the connection pool: {e}")))
}

/// Runs `body` in one SERIALIZABLE transaction and commits it. A serialization failure (the
/// transaction raced another and PostgreSQL aborted it) runs the whole body again, from a
/// fresh snapshot, after a short random wait; so does a failed commit of that kind. Any other
/// error rolls back and is returned.
pub(crate) async fn serializable<T>(
    pool: &Pool,
    mut body: impl AsyncFnMut(&Tx<'_>) -> Result<T, Error>,
) -> Result<T, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match once(pool, IsolationLevel::Serializable, false, &mut body).await {
            Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                tracing::debug!(attempt, error = ?e, "retrying a serialization failure");
                tokio::time::sleep(backoff(attempt)).await;
            }
            result => return result.map_err(Error::into_store),
        }
    }
}

/// Runs `body` in one read-only REPEATABLE READ transaction: every statement sees the same
/// snapshot (listings that query in batches, version lookups of several statements).
pub(crate) async fn snapshot<T>(
    pool: &Pool,
    mut body: impl AsyncFnMut(&Tx<'_>) -> Result<T, Error>,
) -> Result<T, StoreError> {
    once(pool, IsolationLevel::RepeatableRead, true, &mut body)
        .await
        .map_err(Error::into_store)
}

async fn once<T>(
    pool: &Pool,
    isolation: IsolationLevel,
    read_only: bool,
    body: &mut impl AsyncFnMut(&Tx<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut client = pool.get().await?;
    let tx = client
        .build_transaction()
        .isolation_level(isolation)
        .read_only(read_only)
        .start()
        .await?;
    match body(&tx).await {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(e) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::debug!(error = %rollback, "rollback failed");
            }
            Err(e)
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    let ceiling = FIRST_BACKOFF * 2u32.pow(attempt.min(5));
    let mut byte = [0u8; 1];
    let fraction = match getrandom::fill(&mut byte) {
        Ok(()) => f64::from(byte[0]) / 255.0,
        Err(_) => 0.5,
    };
    ceiling.mul_f64(fraction)
}

/// One statement through the connection's statement cache; its rows.
pub(crate) async fn query(
    tx: &Tx<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, Error> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.query(&statement, params).await?)
}

/// One statement that returns at most one row.
pub(crate) async fn query_opt(
    tx: &Tx<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, Error> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.query_opt(&statement, params).await?)
}

/// One statement; the number of rows it changed.
pub(crate) async fn execute(
    tx: &Tx<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, Error> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.execute(&statement, params).await?)
}
