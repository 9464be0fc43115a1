//! Other gateways' changes, as they happen: every compare-and-swap notifies (`pg_notify`, in
//! the swap's own statement, so the notification is sent exactly when the change commits), and
//! a watcher on each gateway listens and refreshes its KMS.
//!
//! - Channels: `coffer_kms` (payload: the record id, a key id or `alias/…`) for `kms_keys`,
//!   `coffer_service_keys` (payload: the row's name) for the service key ring.
//! - The watcher ([`PgKeyStore::watch`]) runs on a thread of its own with a current-thread
//!   runtime: one dedicated connection (not from the pool) runs `LISTEN` on both channels and
//!   hands notifications to a [`KeystoreListener`], whose methods run on blocking threads.
//! - **Heartbeats.** Every [`WatchTiming::heartbeat`] the watcher runs `SELECT 1` on the
//!   listening connection. PostgreSQL delivers a session's notifications before it answers its
//!   next query, so when the answer arrives, every change committed before the query was sent
//!   has been received; once those are handed over, the watcher reports the send instant to
//!   [`KeystoreListener::confirmed`]. A heartbeat unanswered within
//!   [`WatchTiming::heartbeat_timeout`] counts as a lost connection.
//! - **Reconnecting.** A lost connection is reopened with backoff (100 ms, doubling, at most
//!   5 s). After each `LISTEN` the watcher calls [`KeystoreListener::resync`] (with
//!   [`spawn_invalidation`]: `EmbeddedKms::refresh_all`, one `list` that re-opens only records
//!   whose revision changed) and [`KeystoreListener::service_keys_changed`]: whatever
//!   committed while it was not listening is caught up, and whatever commits after is
//!   notified. (A full resync rather than `changed_since(mark)`: revisions come from a
//!   sequence when a swap runs but become visible when it commits, so a mark can pass a change
//!   that commits late; one `list` that skips unchanged revisions costs about the same.)
//! - **Polling fallback.** While no confirmation has arrived for
//!   [`WatchTiming::poll_interval`] (the listener is down, reconnecting, or stuck), a poller
//!   resyncs through the keystore's pool every `poll_interval` and confirms each success.
//!
//! [`spawn_invalidation`] wires this to an [`EmbeddedKms`]: it also requires the KMS to have
//! been confirmed current within [`WatchTiming::stale_after`] (default 1 s) for any key use
//! (`EmbeddedKms::require_current_within`), so a disable made through another gateway is
//! refused here within that bound even when this gateway cannot hear of it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer_kms::{EmbeddedKms, KmsError};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{AsyncMessage, NoTls};

use super::PgKeyStore;
use super::bridge::internal;

/// The channel `kms_keys` swaps notify on; the payload is the record's id.
pub const KMS_CHANNEL: &str = "coffer_kms";
/// The channel `service_keys` swaps notify on; the payload is the row's name.
pub const SERVICE_KEYS_CHANNEL: &str = "coffer_service_keys";

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long [`PgKeyStore::watch`] waits for the first `LISTEN` and resync.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What a watcher tells its owner. Every method is called from a blocking thread of the
/// watcher's runtime, one at a time, in the order the watcher learnt things.
pub trait KeystoreListener: Send + Sync + 'static {
    /// These `kms_keys` records (ids) changed: created, swapped or deleted by some gateway,
    /// this one included.
    fn records_changed(&self, ids: &[String]) -> Result<(), KmsError>;
    /// Changes may have been missed (the watcher was not listening): re-read everything.
    fn resync(&self) -> Result<(), KmsError>;
    /// The service key ring's document changed, or may have.
    fn service_keys_changed(&self);
    /// Every change committed before `as_of` has been passed to the methods above.
    fn confirmed(&self, as_of: Instant);
}

/// The watcher's clocks.
#[derive(Clone, Copy, Debug)]
pub struct WatchTiming {
    /// How often the listening connection is checked (`SELECT 1`) and the listener confirmed.
    pub heartbeat: Duration,
    /// A heartbeat not answered within this long drops the connection and reconnects.
    pub heartbeat_timeout: Duration,
    /// Without a confirmation for this long, the poller resyncs through the pool, this often.
    pub poll_interval: Duration,
    /// [`spawn_invalidation`]: key use is refused when the KMS was last confirmed current
    /// longer ago than this.
    pub stale_after: Duration,
}

impl Default for WatchTiming {
    /// Heartbeats every 250 ms (timeout 750 ms), polling every 500 ms while unconfirmed, key
    /// use refused after 1 s without a confirmation.
    fn default() -> Self {
        WatchTiming {
            heartbeat: Duration::from_millis(250),
            heartbeat_timeout: Duration::from_millis(750),
            poll_interval: Duration::from_millis(500),
            stale_after: Duration::from_secs(1),
        }
    }
}

/// A running watcher; dropping it stops the watcher (in the background, without waiting).
pub struct WatchHandle {
    stop: Option<oneshot::Sender<()>>,
    listener_pid: Arc<Mutex<Option<i32>>>,
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHandle").finish_non_exhaustive()
    }
}

impl WatchHandle {
    /// The PostgreSQL backend process id of the listening connection, while it is connected
    /// (for operators and tests: `pg_terminate_backend` of it exercises the reconnect).
    pub fn listener_pid(&self) -> Option<i32> {
        self.listener_pid.lock().ok().and_then(|pid| *pid)
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The listener [`spawn_invalidation`] installs: the KMS refreshes; the service key ring's
/// owner is called back.
struct KmsInvalidation {
    kms: Arc<EmbeddedKms>,
    on_service_keys: Arc<dyn Fn() + Send + Sync>,
}

impl KeystoreListener for KmsInvalidation {
    fn records_changed(&self, ids: &[String]) -> Result<(), KmsError> {
        self.kms.refresh(ids).map(drop)
    }
    fn resync(&self) -> Result<(), KmsError> {
        self.kms.refresh_all().map(drop)
    }
    fn service_keys_changed(&self) {
        (self.on_service_keys)();
    }
    fn confirmed(&self, as_of: Instant) {
        self.kms.confirm_current(as_of);
    }
}

/// Keeps `kms` (built with `EmbeddedKms::with_keystore` over `keystore` or a clone of it)
/// current with the other gateways sharing `keystore`'s database, and makes its key use fail
/// closed after [`WatchTiming::stale_after`] without a confirmation (see the module
/// documentation). `on_service_keys` is called whenever the service key ring's document may
/// have changed: the server refreshes its ring there
/// (`coffer_keying::ObjectKeys::refresh_service_keys`). Blocks until the first `LISTEN` and
/// resync are done (an error if PostgreSQL cannot be reached within 30 s, after which `kms`
/// refuses key use: it is never left serving unwatched); keep the handle for as long as the
/// KMS serves.
pub fn spawn_invalidation(
    keystore: &PgKeyStore,
    kms: Arc<EmbeddedKms>,
    on_service_keys: Arc<dyn Fn() + Send + Sync>,
) -> Result<WatchHandle, KmsError> {
    spawn_invalidation_with(keystore, kms, on_service_keys, WatchTiming::default())
}

/// [`spawn_invalidation`] with other clocks.
pub fn spawn_invalidation_with(
    keystore: &PgKeyStore,
    kms: Arc<EmbeddedKms>,
    on_service_keys: Arc<dyn Fn() + Send + Sync>,
    timing: WatchTiming,
) -> Result<WatchHandle, KmsError> {
    let listener = Arc::new(KmsInvalidation {
        kms: Arc::clone(&kms),
        on_service_keys,
    });
    // The lease starts now, before the first resync confirms it: a watcher that fails to
    // start leaves the KMS refusing key use after the bound, never serving unwatched.
    kms.require_current_within(timing.stale_after, Instant::now());
    keystore.watch(listener, timing)
}

impl PgKeyStore {
    /// Starts a watcher that tells `listener` of every change to this database's keystore (see
    /// the module documentation). Blocks until the first `LISTEN` and resync are done.
    pub fn watch(
        &self,
        listener: Arc<dyn KeystoreListener>,
        timing: WatchTiming,
    ) -> Result<WatchHandle, KmsError> {
        let config: tokio_postgres::Config = self
            .url
            .parse()
            .map_err(|e| internal(format!("not a PostgreSQL connection string: {e}")))?;
        let (stop, stopped) = oneshot::channel();
        let (ready, is_ready) = std::sync::mpsc::sync_channel(1);
        let listener_pid = Arc::new(Mutex::new(None));
        let watcher = Watcher {
            config,
            listener,
            timing,
            confirmed: Arc::new(Mutex::new(Instant::now())),
            listener_pid: Arc::clone(&listener_pid),
        };
        std::thread::Builder::new()
            .name("coffer-pg-keystore-watch".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(internal(format!(
                            "cannot start the keystore watcher's runtime: {e}"
                        ))));
                        return;
                    }
                };
                runtime.block_on(async move {
                    tokio::select! {
                        _ = stopped => {}
                        _ = watcher.run(ready) => {}
                    }
                });
                // Blocking callbacks still running finish on their own threads.
                runtime.shutdown_background();
            })
            .map_err(|e| internal(format!("cannot start the keystore watcher: {e}")))?;
        let handle = WatchHandle {
            stop: Some(stop),
            listener_pid,
        };
        match is_ready.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => Ok(handle),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(internal(format!(
                "the keystore watcher did not start listening within {} s",
                START_TIMEOUT.as_secs()
            ))),
        }
    }
}

struct Watcher {
    config: tokio_postgres::Config,
    listener: Arc<dyn KeystoreListener>,
    timing: WatchTiming,
    /// The last instant confirmed to the listener: the poller acts when it is old.
    confirmed: Arc<Mutex<Instant>>,
    listener_pid: Arc<Mutex<Option<i32>>>,
}

/// One notification, as the listening connection received it.
enum Change {
    Record(String),
    ServiceKeys,
}

/// Runs a blocking listener call off the watcher's runtime and waits for it.
async fn blocking<T: Send + 'static>(call: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(call).await.ok()
}

impl Watcher {
    async fn run(self, ready: std::sync::mpsc::SyncSender<Result<(), KmsError>>) {
        let mut ready = Some(ready);
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.listen().await {
                Ok((client, changes, connection)) => {
                    backoff = FIRST_BACKOFF;
                    let caught_up = self.catch_up().await;
                    if let Some(ready) = ready.take() {
                        let failed = caught_up.is_err();
                        let _ = ready.send(caught_up);
                        if failed {
                            return;
                        }
                        // The poller starts once the first resync is done, and stops with the
                        // runtime.
                        tokio::spawn(self.poller());
                    } else if let Err(e) = caught_up {
                        tracing::warn!(error = %e, "KMS keystore resync after reconnecting failed");
                    }
                    self.serve(&client, changes).await;
                    connection.abort();
                    if let Ok(mut pid) = self.listener_pid.lock() {
                        *pid = None;
                    }
                    tracing::warn!(
                        "lost the KMS keystore's notification connection; polling until it \
                         is back"
                    );
                }
                Err(e) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Err(internal(format!(
                            "cannot listen for keystore changes: {e}"
                        ))));
                        return;
                    }
                    tracing::warn!(error = %e, "cannot reconnect to listen for KMS keystore changes");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Opens the listening connection: `LISTEN` on both channels, notifications forwarded to
    /// the returned receiver by the connection's task.
    async fn listen(
        &self,
    ) -> Result<
        (
            tokio_postgres::Client,
            mpsc::UnboundedReceiver<Change>,
            tokio::task::JoinHandle<()>,
        ),
        tokio_postgres::Error,
    > {
        let (client, mut connection) = self.config.connect(NoTls).await?;
        let (forward, changes) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(note))) => {
                        let change = if note.channel() == SERVICE_KEYS_CHANNEL {
                            Change::ServiceKeys
                        } else {
                            Change::Record(note.payload().to_owned())
                        };
                        if forward.send(change).is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "keystore notification connection failed");
                        return;
                    }
                    None => return,
                }
            }
        });
        let listening = client
            .batch_execute(&format!(
                "LISTEN {KMS_CHANNEL}; LISTEN {SERVICE_KEYS_CHANNEL}"
            ))
            .await;
        if let Err(e) = listening {
            task.abort();
            return Err(e);
        }
        if let Ok(row) = client.query_one("SELECT pg_backend_pid()", &[]).await
            && let Ok(mut pid) = self.listener_pid.lock()
        {
            *pid = Some(row.get(0));
        }
        Ok((client, changes, task))
    }

    /// After `LISTEN`: everything committed before it is re-read, everything after is notified.
    async fn catch_up(&self) -> Result<(), KmsError> {
        let as_of = Instant::now();
        let listener = Arc::clone(&self.listener);
        let resynced = blocking(move || {
            let resynced = listener.resync();
            listener.service_keys_changed();
            resynced
        })
        .await
        .unwrap_or_else(|| Err(internal("the keystore resync panicked")));
        if resynced.is_ok() {
            self.confirm(as_of).await;
        }
        resynced
    }

    /// Hands notifications to the listener and checks the connection with heartbeats, until
    /// the connection fails.
    async fn serve(
        &self,
        client: &tokio_postgres::Client,
        mut changes: mpsc::UnboundedReceiver<Change>,
    ) {
        let mut heartbeat = tokio::time::interval(self.timing.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Some(change) => self.deliver(change, &mut changes).await,
                    None => return,
                },
                _ = heartbeat.tick() => {
                    let sent = Instant::now();
                    let answer = tokio::time::timeout(
                        self.timing.heartbeat_timeout,
                        client.batch_execute("SELECT 1"),
                    )
                    .await;
                    if !matches!(answer, Ok(Ok(()))) {
                        return;
                    }
                    // Everything committed before `sent` is in `changes` now.
                    if let Ok(change) = changes.try_recv() {
                        self.deliver(change, &mut changes).await;
                    }
                    self.confirm(sent).await;
                }
            }
        }
    }

    /// Hands `first` and every change already queued behind it to the listener, deduplicated.
    async fn deliver(&self, first: Change, changes: &mut mpsc::UnboundedReceiver<Change>) {
        let mut ids = BTreeSet::new();
        let mut service_keys = false;
        let mut next = Some(first);
        while let Some(change) = next {
            match change {
                Change::Record(id) => {
                    ids.insert(id);
                }
                Change::ServiceKeys => service_keys = true,
            }
            next = changes.try_recv().ok();
        }
        let ids: Vec<String> = ids.into_iter().collect();
        let listener = Arc::clone(&self.listener);
        let done = blocking(move || {
            let refreshed = if ids.is_empty() {
                Ok(())
            } else {
                listener.records_changed(&ids)
            };
            if service_keys {
                listener.service_keys_changed();
            }
            refreshed
        })
        .await;
        if let Some(Err(e)) = done {
            tracing::warn!(error = %e, "refreshing changed KMS keys failed; the KMS reloads on its next call");
        }
    }

    async fn confirm(&self, as_of: Instant) {
        if let Ok(mut confirmed) = self.confirmed.lock()
            && as_of > *confirmed
        {
            *confirmed = as_of;
        }
        let listener = Arc::clone(&self.listener);
        blocking(move || listener.confirmed(as_of)).await;
    }

    /// The polling fallback: whenever a poll interval has passed since the last confirmation
    /// (from a heartbeat or a poll), resyncs through the pool and confirms the success. It
    /// sleeps until that deadline rather than ticking, so confirmations are never further
    /// apart than the interval plus one resync; a failed resync is retried after half an
    /// interval.
    fn poller(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let listener = Arc::clone(&self.listener);
        let confirmed = Arc::clone(&self.confirmed);
        let interval = self.timing.poll_interval;
        async move {
            loop {
                let last = confirmed
                    .lock()
                    .map(|c| *c)
                    .unwrap_or_else(|_| Instant::now());
                let due = last + interval;
                if Instant::now() < due {
                    tokio::time::sleep_until(due.into()).await;
                    continue;
                }
                let as_of = Instant::now();
                let listener = Arc::clone(&listener);
                let polled = blocking(move || {
                    let resynced = listener.resync();
                    if resynced.is_ok() {
                        listener.service_keys_changed();
                        listener.confirmed(as_of);
                    }
                    resynced
                })
                .await;
                match polled {
                    Some(Ok(())) => {
                        if let Ok(mut c) = confirmed.lock()
                            && as_of > *c
                        {
                            *c = as_of;
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "polling the KMS keystore failed");
                        tokio::time::sleep(interval / 2).await;
                    }
                    None => tokio::time::sleep(interval / 2).await,
                }
            }
        }
    }
}
