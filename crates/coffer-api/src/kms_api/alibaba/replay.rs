//! Replay protection: a signature nonce is accepted once per access key
//! while its request time is within the skew window; after that the
//! timestamp check refuses the request anyway, so the entry is dropped.
//!
//! The cache is per process (a stateless gateway behind a load balancer
//! catches replays sent to the same gateway only).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use coffer_auth::acs::{AcsVerified, MAX_SKEW};
use time::OffsetDateTime;

/// At most this many nonces are remembered; past it, the oldest half is
/// dropped (a flood of valid signed requests is needed to get there).
const MAX_ENTRIES: usize = 200_000;

type Seen = HashMap<(String, String), OffsetDateTime>;

fn seen() -> &'static Mutex<Seen> {
    static SEEN: OnceLock<Mutex<Seen>> = OnceLock::new();
    SEEN.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Records the request's nonce; false if it was already used.
pub(super) fn first_use(verified: &AcsVerified, now: OffsetDateTime) -> bool {
    // A poisoned lock only means another request panicked mid-insert; the
    // map is still usable.
    let mut seen = seen().lock().unwrap_or_else(|p| p.into_inner());
    let key = (verified.access_key.clone(), verified.nonce.clone());
    if seen.contains_key(&key) {
        return false;
    }
    if seen.len() >= MAX_ENTRIES {
        // A request signed before `now - MAX_SKEW` fails the time check.
        seen.retain(|_, at| now - *at <= MAX_SKEW);
        if seen.len() >= MAX_ENTRIES {
            let mut times: Vec<OffsetDateTime> = seen.values().copied().collect();
            times.sort_unstable();
            let cut = times[times.len() / 2];
            seen.retain(|_, at| *at > cut);
        }
    }
    seen.insert(key, verified.time);
    true
}
