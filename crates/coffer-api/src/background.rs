//! Background work shared by gateways: each pass of the lifecycle worker and of the sweeper
//! runs under a lease of the metadata store ([`coffer_store::MetadataStore::try_lease`]), so
//! that of several gateways over one database one runs it at a time. A timer whose lease is
//! held elsewhere skips its pass (logged at debug); an admin "run now" waits a little for it
//! and then answers 409 `PassInProgress`; a pass that loses its lease (the connection holding
//! it died) stops between two steps, answering 503 like any call to an unavailable store.

use std::time::{Duration, Instant};

use coffer_store::{Backend, Lease};

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

/// The lease of the lifecycle worker's passes.
pub const LIFECYCLE_LEASE: &str = "lifecycle";
/// The lease of the sweeper's passes.
pub const SWEEPER_LEASE: &str = "sweeper";

/// How long an admin "run now" waits for a pass in progress (on this gateway or another) to
/// end before answering 409.
const ADMIN_WAIT: Duration = Duration::from_secs(10);
/// Between two tries of a held lease while an admin call waits.
const ADMIN_RETRY: Duration = Duration::from_millis(100);

/// The lease `name` for one timed pass, or `None` (logged at debug) when another holder has
/// it. A store that cannot be reached is an error: the pass is skipped as failed.
pub(crate) async fn for_timer(state: &AppState, name: &str) -> ApiResult<Option<Box<dyn Lease>>> {
    let lease = state.meta.try_lease(name).await?;
    if lease.is_none() {
        tracing::debug!(
            lease = name,
            "another gateway holds the lease: pass skipped"
        );
    }
    Ok(lease)
}

/// The lease `name` for a pass an admin asked for: waits up to [`ADMIN_WAIT`] for the
/// holder's pass to end, then answers 409 `PassInProgress`.
pub(crate) async fn for_admin(state: &AppState, name: &str) -> ApiResult<Box<dyn Lease>> {
    let started = Instant::now();
    loop {
        if let Some(lease) = state.meta.try_lease(name).await? {
            return Ok(lease);
        }
        if started.elapsed() >= ADMIN_WAIT {
            return Err(ApiError::new(
                ErrorCode::PassInProgress,
                format!("Another gateway is running a {name} pass; try again when it ends."),
            ));
        }
        tokio::time::sleep(ADMIN_RETRY).await;
    }
}

/// `Ok` while `lease` is held; once it is lost (the connection holding it died, and with it
/// most likely the database), 503 for the metadata store: the pass stops here, leaving the
/// rest to whichever gateway takes the lease next.
pub(crate) async fn ensure_held(lease: &dyn Lease) -> ApiResult<()> {
    if lease.still_held().await {
        return Ok(());
    }
    tracing::warn!(
        lease = lease.name(),
        "the lease was lost mid-pass: the pass stops"
    );
    Err(ApiError::unavailable(Backend::Metadata))
}
