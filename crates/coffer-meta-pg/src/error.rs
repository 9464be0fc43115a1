//! The crate's internal error: a store error decided by the code, or a PostgreSQL error whose
//! SQLSTATE decides whether the transaction is retried.

use std::io::ErrorKind;

use coffer_store::{Backend, StoreError};
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

    /// The store error the trait returns. "PostgreSQL cannot be reached" is
    /// `StoreError::Unavailable` of the metadata store ([`is_unavailable`]): the connection
    /// refused, lost or timed out, no pooled connection to be had in time, or the server
    /// shutting down or refusing connections (SQLSTATE class 08, 57P01–57P03, 53300). Any other
    /// PostgreSQL failure is an `Io` error (`StoreError::Database` is the embedded backend's
    /// redb error).
    pub(crate) fn into_store(self) -> StoreError {
        match self {
            Error::Store(e) => e,
            Error::Pg(e) if is_unavailable(&e) => StoreError::unavailable(
                Backend::Metadata,
                std::io::Error::new(ErrorKind::NotConnected, format!("postgres: {e}")),
            ),
            Error::Pg(e) => StoreError::Io(std::io::Error::other(format!("postgres: {e}"))),
            Error::Pool(message) => StoreError::unavailable(
                Backend::Metadata,
                std::io::Error::new(ErrorKind::NotConnected, format!("postgres pool: {message}")),
            ),
        }
    }
}

/// Whether `e` says PostgreSQL is out of reach rather than that it refused a statement: the
/// connection is closed, or failed at the socket (no SQLSTATE, an I/O error underneath), or
/// the server answered with a connection exception (class 08), an operator intervention that
/// ends sessions (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now) or
/// too many connections (53300).
pub(crate) fn is_unavailable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::TOO_MANY_CONNECTIONS
        }
        None => {
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                if cause.is::<std::io::Error>() {
                    return true;
                }
                source = cause.source();
            }
            // tokio-postgres's own timeout ("timeout waiting for server") has no cause.
            e.to_string().starts_with("timeout")
        }
    }
}
