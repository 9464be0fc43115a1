//! The server's clock for object times: Last-Modified, retention, lifecycle ages.
//!
//! It is the system clock, plus an offset that only a server started with the test clock
//! (`coffer server --test-clock`) lets the admin API move forward, so that tests can drive
//! lifecycle expiration and retention without waiting days. The offset is process-wide
//! because time is: every handler and the lifecycle worker must agree on "now". Request
//! signatures are checked against the real clock (coffer-auth), never this one.
//!
//! Object times are also written here: as XML timestamps and as `time` values.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

static OFFSET_MS: AtomicI64 = AtomicI64::new(0);
static ADJUSTABLE: AtomicBool = AtomicBool::new(false);

/// Milliseconds since the epoch, now (plus the test offset).
pub fn now_ms() -> i64 {
    let real = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    real.saturating_add(OFFSET_MS.load(Ordering::Relaxed))
}

/// Lets [`advance`] move the clock: only `coffer server --test-clock` calls this.
pub fn make_adjustable() {
    ADJUSTABLE.store(true, Ordering::Relaxed);
}

/// Whether the clock may be moved (the server runs with the test clock).
pub fn is_adjustable() -> bool {
    ADJUSTABLE.load(Ordering::Relaxed)
}

/// Moves the clock forward by `ms` (never back: object times must not run backwards);
/// returns the new offset, or `None` if the clock is not adjustable or `ms` is negative.
pub fn advance(ms: i64) -> Option<i64> {
    if !is_adjustable() || ms < 0 {
        return None;
    }
    Some(
        OFFSET_MS
            .fetch_add(ms, Ordering::Relaxed)
            .saturating_add(ms),
    )
}

/// The UTC time `ms` milliseconds after the epoch, whole seconds (the
/// epoch if out of range): what the XML and `Last-Modified` write.
pub fn utc_of_ms(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// `2009-10-12T17:50:30.000Z`, as S3 and OSS XML write times. Always
/// `.000`: the OSS SDKs accept nothing else, and S3 does the same.
pub fn iso8601(ms: i64) -> String {
    format!("{}.000Z", date_and_time(utc_of_ms(ms)))
}

/// `2009-10-12T17:50:30Z` (`t` in UTC, whole seconds), as Alibaba Cloud's
/// RPC APIs write times.
pub fn iso8601_seconds(t: time::OffsetDateTime) -> String {
    format!("{}Z", date_and_time(t.to_offset(time::UtcOffset::UTC)))
}

fn date_and_time(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )
}
