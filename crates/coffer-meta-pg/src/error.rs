//! The crate's internal error: a store error decided by the code, or a PostgreSQL error whose
//! SQLSTATE decides whether the transaction is retried.

use coffer_store::StoreError;
use tokio_postgres::error::SqlState;

/// What a transaction body fails with.
#[derive(Debug)]
pub(crate) enum Error {
    /// A domain error (`NoSuchKey`, `PreconditionFailed`, …) or a decoding failure: final.
    Store(StoreError),
    /// PostgreSQL refused or failed a statement; serialization failures are retried.
    Pg(tokio_postgres::Error),
    /// No connection could be had from the pool.
    Pool(String),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Pg(e)
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => Error::Pg(e),
            other => Error::Pool(other.to_string()),
        }
    }
}

impl Error {
    /// Whether running the whole transaction again may succeed: a serialization failure or a
    /// deadlock (SERIALIZABLE transactions that lost a race), or a unique violation caused by
    /// a concurrent commit (every insert is checked first, so only a race reaches one).
    pub(crate) fn is_retryable(&self) -> bool {
        let Error::Pg(e) = self else {
            return false;
        };
        matches!(
            e.code(),
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::UNIQUE_VIOLATION
        )
    }

    /// The store error the trait returns. PostgreSQL and pool failures become `Io` errors
    /// (`StoreError::Database` is the embedded backend's redb error); a lost connection is
    /// `NotConnected`, so callers can tell "the database is down" from a refused statement.
    pub(crate) fn into_store(self) -> StoreError {
        match self {
            Error::Store(e) => e,
            Error::Pg(e) => {
                let kind = if e.is_closed() || e.code().is_none() {
                    std::io::ErrorKind::NotConnected
                } else {
                    std::io::ErrorKind::Other
                };
                StoreError::Io(std::io::Error::new(kind, format!("postgres: {e}")))
            }
            Error::Pool(message) => StoreError::Io(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                format!("postgres pool: {message}"),
            )),
        }
    }
}
