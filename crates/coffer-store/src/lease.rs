//! Leases: at most one holder at a time of a named piece of background work (the lifecycle
//! pass, the pending-blob sweeper) among every process sharing one metadata store.
//!
//! A lease is taken with [`crate::MetadataStore::try_lease`] before each pass and held until
//! the [`Lease`] value is dropped. The embedded store grants it within its one process
//! ([`LocalLeases`]: a data directory has one process); a shared store holds it in the shared
//! database (PostgreSQL: a session-level advisory lock on a connection of its own), so that
//! it is released when the holder drops it *or* dies.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::BoxFuture;

/// The future [`Lease::still_held`] returns.
pub type LeaseFuture<'a> = BoxFuture<'a, bool>;

/// A held lease; dropping it releases it.
pub trait Lease: Send + Sync {
    /// The name it was taken under.
    fn name(&self) -> &str;

    /// Whether the lease is still held. A lease in a shared database is lost with the
    /// connection holding it (the database releases it, and another process may take it):
    /// a holder asks this between steps of a long pass and stops when it answers `false`.
    /// Cheap (one round trip at most); never errors: a failure to ask is `false`.
    fn still_held(&self) -> LeaseFuture<'_>;
}

/// Leases held within this process: what a store with one process per data directory grants.
#[derive(Clone, Default)]
pub(crate) struct LocalLeases {
    held: Arc<Mutex<BTreeSet<String>>>,
}

impl LocalLeases {
    /// `name`, unless this process holds it already.
    pub(crate) fn try_lease(&self, name: &str) -> Option<Box<dyn Lease>> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if !held.insert(name.to_owned()) {
            return None;
        }
        Some(Box::new(LocalLease {
            name: name.to_owned(),
            held: Arc::clone(&self.held),
        }))
    }
}

struct LocalLease {
    name: String,
    held: Arc<Mutex<BTreeSet<String>>>,
}

impl Lease for LocalLease {
    fn name(&self) -> &str {
        &self.name
    }

    fn still_held(&self) -> LeaseFuture<'_> {
        Box::pin(async { true })
    }
}

impl Drop for LocalLease {
    fn drop(&mut self) {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.name);
    }
}
