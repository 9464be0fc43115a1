//! Leases as PostgreSQL session-level advisory locks, each on a connection of its own.
//!
//! `pg_try_advisory_lock(key)` on a fresh connection (not a pooled one: a session lock lives
//! as long as its session, and pooled sessions are shared and recycled). The lock is the
//! connection's until it closes: when the [`PgLease`] is dropped (the client goes, the
//! connection task ends, the server sees the session end) or when the gateway dies or loses
//! its network (the server ends the session when the socket fails). YugabyteDB implements
//! advisory locks in its recent releases; older ones refuse the function, and then no lease
//! is ever granted (the error is returned, not a grant).

use std::time::Duration;

use coffer_store::{Lease, LeaseFuture, StoreError};
use tokio_postgres::{Client, NoTls};

use crate::error::Error;

/// Longest wait for [`Lease::still_held`]'s round trip: slower than this, the lease counts as
/// lost.
const STILL_HELD_TIMEOUT: Duration = Duration::from_secs(5);

/// The advisory-lock key of lease `name`: FNV-1a (64 bits) of `coffer-lease:` and the name,
/// stable across builds and gateways. The prefix keeps Coffer's keys apart from another
/// application's in the same database.
pub(crate) fn lease_key(name: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = b"coffer-lease:"
        .iter()
        .chain(name.as_bytes())
        .fold(OFFSET, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
        });
    i64::from_be_bytes(hash.to_be_bytes())
}

/// Takes lease `name` on a new connection made with `config`; `None` if another session holds
/// it. `Unavailable` if PostgreSQL cannot be reached.
pub(crate) async fn try_lease(
    config: &tokio_postgres::Config,
    name: &str,
) -> Result<Option<Box<dyn Lease>>, StoreError> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| Error::Pg(e).into_store())?;
    let lease = name.to_owned();
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, lease, "the connection holding a lease ended");
        }
    });
    let row = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&lease_key(name)])
        .await
        .map_err(|e| Error::Pg(e).into_store())?;
    let granted: bool = row.try_get(0).map_err(|e| Error::Pg(e).into_store())?;
    // Refused: dropping the client closes the connection.
    Ok(granted.then(|| {
        Box::new(PgLease {
            name: name.to_owned(),
            client,
        }) as Box<dyn Lease>
    }))
}

/// A held advisory lock and the connection that holds it. Dropping it closes the connection,
/// which releases the lock.
struct PgLease {
    name: String,
    client: Client,
}

impl Lease for PgLease {
    fn name(&self) -> &str {
        &self.name
    }

    /// The session holding the lock still answers: while it lives the lock is its own (a
    /// session lock is only released by an unlock this code never sends, or the session's end).
    fn still_held(&self) -> LeaseFuture<'_> {
        Box::pin(async {
            if self.client.is_closed() {
                return false;
            }
            matches!(
                tokio::time::timeout(STILL_HELD_TIMEOUT, self.client.simple_query("SELECT 1"))
                    .await,
                Ok(Ok(_))
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of a name is fixed for ever: two gateways of different builds must agree.
    #[test]
    fn lease_keys_are_stable() {
        assert_eq!(lease_key("sweeper"), lease_key("sweeper"));
        assert_ne!(lease_key("sweeper"), lease_key("lifecycle"));
        let pinned = i64::from_be_bytes(0xa607_0d40_37cf_8052_u64.to_be_bytes());
        assert_eq!(lease_key("sweeper"), pinned);
    }
}
