//! The pending-blob sweeper: deletes the blobs that pending rows name once the rows are older
//! than a grace period, then the rows (the metadata store's module docs, "Commit order" and
//! "The sweeper"). A row names either a blob a writer began and never committed (the gateway
//! died, the commit's outcome was unknown, a discard failed) or a blob a commit stopped
//! referencing (an overwrite, a delete, an abort).
//!
//! The grace period ([`DEFAULT_GRACE`], an hour, unless the server passes another to
//! [`spawn`]) must exceed the longest time between a writer's pending row and its commit: the
//! whole upload of one body, 5 GiB at most (S3's limit for a PUT or a part), which at a slow
//! client's 2 MB/s takes about 45 minutes. It also covers a GET still reading a body that a
//! commit released (its row is written at the release). Gateways' clocks must agree to well
//! within it, since rows carry the writer's wall-clock time.
//!
//! Each pass runs under the lease [`SWEEPER_LEASE`]: one
//! gateway at a time. For each stale row: a blob some record references (which a correct
//! commit never leaves with a row) loses only its row; any other is deleted, then its row
//! goes; a delete that fails keeps the row for the next pass. `POST
//! /_coffer/admin/sweeper/run` runs a pass now, optionally with `{"grace_seconds": N}` (0
//! sweeps every row, including those of writes in progress: for tests and for an idle
//! cluster only).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use coffer_store::{BlobStore, Lease, MetadataStore};
use serde::Serialize;

use crate::background::{self, SWEEPER_LEASE};
use crate::error::ApiResult;
use crate::state::AppState;

/// The grace period unless the server passes another to [`spawn`].
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);
/// Between two passes, as the server should schedule them unless configured otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);
/// Rows handled between two checks that the lease is still held.
const LEASE_CHECK_EVERY: usize = 100;

/// The grace period of the running sweeper (seconds), which admin passes without their own
/// use: the one given to [`spawn`], else [`DEFAULT_GRACE`].
static CONFIGURED_GRACE_SECS: AtomicU64 = AtomicU64::new(DEFAULT_GRACE.as_secs());

/// What one pass did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    /// The grace period of the pass: rows older than this were swept.
    pub grace_seconds: u64,
    /// Stale pending rows found.
    pub pending: u64,
    /// Blobs deleted and their rows removed.
    pub deleted: u64,
    /// Rows whose blob a record references: the row removed, the blob kept.
    pub referenced: u64,
    /// Blobs whose delete failed: their rows stay for the next pass.
    pub failed: u64,
}

/// Runs a pass every `interval` (the first one at once) until the process ends, sweeping rows
/// older than `grace`, each under the sweeper lease (skipped while another gateway holds it);
/// a failed pass is logged and the next one tries again. `grace` is also what admin passes use
/// unless they give their own.
pub fn spawn(
    state: Arc<AppState>,
    interval: Duration,
    grace: Duration,
) -> tokio::task::JoinHandle<()> {
    CONFIGURED_GRACE_SECS.store(grace.as_secs(), Ordering::Relaxed);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let outcome = match background::for_timer(&state, SWEEPER_LEASE).await {
                Ok(Some(lease)) => run_pass(&state, grace, lease.as_ref()).await,
                Ok(None) => continue,
                Err(error) => Err(error),
            };
            match outcome {
                Ok(report) if report.pending > 0 => tracing::info!(?report, "sweeper pass"),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(code = %error.code, message = %error.message, "sweeper pass failed")
                }
            }
        }
    })
}

/// The grace period admin passes use unless they give their own.
pub fn configured_grace() -> Duration {
    Duration::from_secs(CONFIGURED_GRACE_SECS.load(Ordering::Relaxed))
}

/// One pass over the rows older than `grace`, while `lease` (the sweeper's) is held.
pub async fn run_pass(
    state: &AppState,
    grace: Duration,
    lease: &dyn Lease,
) -> ApiResult<SweepReport> {
    sweep(state.meta.as_ref(), state.blobs.as_ref(), grace, lease).await
}

/// [`run_pass`] over a store pair.
async fn sweep(
    meta: &dyn MetadataStore,
    blobs: &dyn BlobStore,
    grace: Duration,
    lease: &dyn Lease,
) -> ApiResult<SweepReport> {
    let mut report = SweepReport {
        grace_seconds: grace.as_secs(),
        ..Default::default()
    };
    let before = SystemTime::now()
        .checked_sub(grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let rows = meta.list_pending_blobs(before).await?;
    for (i, row) in rows.iter().enumerate() {
        if i > 0 && i % LEASE_CHECK_EVERY == 0 {
            background::ensure_held(lease).await?;
        }
        report.pending += 1;
        if meta.is_blob_referenced(&row.blob).await? {
            tracing::warn!(blob = %row.blob, "a pending row names a referenced blob: only the row is removed");
            meta.remove_pending_blob(&row.blob).await?;
            report.referenced += 1;
            continue;
        }
        match blobs.delete(&row.blob).await {
            Ok(()) => {
                meta.remove_pending_blob(&row.blob).await?;
                report.deleted += 1;
            }
            // The blob store is down: the rest would fail alike.
            Err(error) if error.is_unavailable() => return Err(error.into()),
            Err(error) => {
                tracing::warn!(%error, blob = %row.blob, "a pending blob could not be deleted: kept for the next pass");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use coffer_store::{BlobId, StoreError};

    use super::*;

    async fn pending_blob(
        meta: &dyn MetadataStore,
        blobs: &dyn BlobStore,
        age: Duration,
    ) -> BlobId {
        let mut writer = blobs.create().await.expect("a blob writer");
        let id = writer.id().clone();
        meta.add_pending_blob(&id, SystemTime::now() - age)
            .await
            .expect("a pending row for a new blob");
        writer
            .write(Bytes::from_static(b"sealed"))
            .await
            .expect("a write");
        writer.finish().await.expect("a finished blob");
        id
    }

    async fn rows(meta: &dyn MetadataStore) -> Vec<BlobId> {
        let later = SystemTime::now() + Duration::from_secs(3600);
        let rows = meta.list_pending_blobs(later).await.expect("a listing");
        rows.into_iter().map(|row| row.blob).collect()
    }

    /// A pass deletes the blobs of rows older than the grace period, then the rows, and leaves
    /// younger ones; a grace of zero sweeps them all; a pass holds the sweeper lease.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sweeps_stale_rows_and_their_blobs_only() {
        let dir = tempfile::TempDir::new().expect("a temp dir");
        let (meta, blobs) = coffer_store::open_embedded(dir.path()).expect("a new store");
        let hour = Duration::from_secs(3600);
        let stale = pending_blob(&meta, &blobs, 2 * hour).await;
        // A second old, not written this very millisecond: a grace of zero sweeps rows older
        // than now, and a row of the pass's own millisecond is not.
        let fresh = pending_blob(&meta, &blobs, Duration::from_secs(1)).await;

        let lease = meta
            .try_lease(crate::background::SWEEPER_LEASE)
            .await
            .expect("the embedded store grants leases")
            .expect("a free lease");
        assert!(
            meta.try_lease(crate::background::SWEEPER_LEASE)
                .await
                .expect("the embedded store grants leases")
                .is_none(),
            "one sweeper at a time"
        );
        let report = sweep(&meta, &blobs, hour, lease.as_ref())
            .await
            .expect("a pass");
        assert_eq!(
            report,
            SweepReport {
                grace_seconds: 3600,
                pending: 1,
                deleted: 1,
                ..Default::default()
            }
        );
        assert!(matches!(
            blobs.len(&stale).await,
            Err(StoreError::NoSuchBlob)
        ));
        assert_eq!(blobs.len(&fresh).await.expect("the young blob is kept"), 6);
        assert_eq!(rows(&meta).await, vec![fresh.clone()]);

        let report = sweep(&meta, &blobs, Duration::ZERO, lease.as_ref())
            .await
            .expect("a pass");
        assert_eq!(report.deleted, 1);
        assert!(matches!(
            blobs.len(&fresh).await,
            Err(StoreError::NoSuchBlob)
        ));
        assert!(rows(&meta).await.is_empty());
    }
}
