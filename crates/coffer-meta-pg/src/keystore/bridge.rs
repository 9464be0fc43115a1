//! The synchronous face of an async client: the KMS's `KeyStore` trait is blocking (the KMS
//! calls it under its own lock, from async workers and blocking threads alike), tokio-postgres
//! is async. A [`Bridge`] owns a small tokio runtime of its own (one worker thread) that owns
//! the connection pool; each call is spawned there and the calling thread waits for its answer
//! on a channel.
//!
//! Why not the caller's runtime (`block_in_place` + `Handle::block_on`, as the embedded store
//! bridges the other direction): a call made on a current-thread runtime, or from inside a
//! `block_on`, would have to drive the very runtime it blocks, and `block_in_place` panics
//! there. Why not the `postgres` crate: it is this same construction (a private current-thread
//! runtime per connection, `block_on` per call, which panics when called on an async worker),
//! without a pool, and one more crate. With a runtime of its own the keystore works from any
//! thread: on a multi-thread runtime's worker the wait runs inside `block_in_place`, so that
//! worker's other tasks move on; elsewhere the thread simply waits. The hand-off costs one
//! cross-thread wake-up per call, small beside the round trip to PostgreSQL
//! (`keystore_calls_cost` in the tests prints both).

use std::future::Future;
use std::time::Duration;

use coffer_kms::KmsError;
use deadpool_postgres::Pool;
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

use crate::error::Error;

/// How long one keystore call may take before it fails (PostgreSQL down or unreachable).
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A runtime of the keystore's own and the pool it drives.
pub(crate) struct Bridge {
    /// `Some` until dropped; shut down in the background, never blocking the dropping thread.
    runtime: Option<Runtime>,
    pool: Pool,
}

impl Bridge {
    /// A runtime and a pool over `url` with at most `max_connections` connections, and the
    /// schema brought to this build's version.
    pub(crate) fn connect(url: &str, max_connections: usize) -> Result<Bridge, KmsError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("coffer-pg-keystore")
            .enable_all()
            .build()
            .map_err(|e| internal(format!("cannot start the keystore's runtime: {e}")))?;
        // The pool connects lazily, from the futures `run` spawns: its connections' tasks live
        // on this runtime.
        let config = crate::db::config(url).map_err(internal)?;
        let pool = crate::db::pool(config, max_connections).map_err(internal)?;
        let bridge = Bridge {
            runtime: Some(runtime),
            pool,
        };
        bridge
            .run(|pool| async move { crate::schema::migrate(&pool).await.map_err(Error::Store) })?;
        Ok(bridge)
    }

    /// Runs the future `call` makes from the pool on the keystore's runtime and waits for it,
    /// at most [`CALL_TIMEOUT`].
    pub(crate) fn run<T, F>(&self, call: impl FnOnce(Pool) -> F) -> Result<T, KmsError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime is only taken when the bridge is dropped");
        let future = call(self.pool.clone());
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let result = tokio::time::timeout(CALL_TIMEOUT, future).await;
            // The caller may have given up (it cannot: it waits without a timeout).
            let _ = answer.send(result);
        });
        let wait = move || answered.recv();
        let received = match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        };
        match received {
            Ok(Ok(result)) => result.map_err(describe),
            Ok(Err(_elapsed)) => Err(internal(format!(
                "PostgreSQL did not answer within {} s",
                CALL_TIMEOUT.as_secs()
            ))),
            Err(_) => Err(internal("the keystore's runtime stopped")),
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Dropping a runtime blocks, which panics on an async worker.
            runtime.shutdown_background();
        }
    }
}

/// A keystore failure as the KMS reports it (`KMSInternalException`), naming PostgreSQL.
pub(crate) fn internal(message: impl std::fmt::Display) -> KmsError {
    KmsError::Internal(format!("PostgreSQL keystore: {message}"))
}

fn describe(error: Error) -> KmsError {
    match error {
        Error::Store(e) => internal(e),
        other => internal(other.into_store()),
    }
}
