//! OSS bucket WORM retention policy (`?worm`, `?wormId`): a policy is
//! initiated `InProgress`, must be locked (`Locked`) within 24 hours or it
//! lapses, can then only be extended, never shortened or removed. While
//! it is in force (locked, or in progress and not yet lapsed) objects in
//! the bucket may not be deleted or overwritten before they are
//! [`worm_retention`] days old.
//!
//! The state changes are pure functions of the stored policy and the
//! clock ([`initiate`], [`complete`], [`extend`], [`abort`]); the
//! handlers in `ops/worm.rs` read and write the document around them.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::xml::{self, XmlWriter};

/// Bucket config key of the WORM policy (JSON of [`WormConfig`]).
pub const WORM_KEY: &str = "worm";
/// How long an unlocked policy stays in force (24 hours, in ms).
pub const IN_PROGRESS_TTL_MS: i64 = 24 * 3_600_000;
/// Longest retention period OSS allows, in days (70 years).
pub const MAX_RETENTION_DAYS: u32 = 25_550;

/// A bucket's WORM policy, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WormConfig {
    /// The id InitiateBucketWorm answered (`x-oss-worm-id`).
    pub worm_id: String,
    /// InProgress or Locked.
    pub state: WormState,
    /// Objects are retained this many days after their last modification.
    pub retention_days: u32,
    /// When the policy was initiated (ms since the epoch).
    pub created_ms: i64,
}

/// The two states of a WORM policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WormState {
    /// Initiated, not locked: in force for 24 hours, removable.
    InProgress,
    /// Locked: in force for good, only extendable.
    Locked,
}

impl WormState {
    /// The state as OSS writes it.
    pub fn name(self) -> &'static str {
        match self {
            WormState::InProgress => "InProgress",
            WormState::Locked => "Locked",
        }
    }
}

impl WormConfig {
    /// Whether the policy is in force at `now_ms`: locked, or in progress
    /// for less than 24 hours. A lapsed policy counts as absent.
    pub fn in_force(&self, now_ms: i64) -> bool {
        match self.state {
            WormState::Locked => true,
            WormState::InProgress => now_ms < self.created_ms.saturating_add(IN_PROGRESS_TTL_MS),
        }
    }
}

/// The retention, in days after an object's last modification, that the
/// bucket's policy imposes at `now_ms`; `None` when there is none in force.
/// The object-delete (and overwrite) path refuses while an object is
/// younger than that.
pub fn worm_retention(doc: &WormConfig, now_ms: i64) -> Option<u32> {
    doc.in_force(now_ms).then_some(doc.retention_days)
}

/// `NoSuchWORMConfiguration`.
pub fn no_such_worm() -> ApiError {
    ApiError::new(
        ErrorCode::NoSuchWORMConfiguration,
        "The WORM configuration does not exist.",
    )
}

fn locked() -> ApiError {
    ApiError::new(
        ErrorCode::WORMConfigurationLocked,
        "The WORM configuration is locked: it cannot be removed, shortened or replaced.",
    )
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidWORMConfiguration, message)
}

/// The policy in force, if any (a lapsed in-progress one is none).
fn live(existing: Option<WormConfig>, now_ms: i64) -> Option<WormConfig> {
    existing.filter(|w| w.in_force(now_ms))
}

/// The policy `id` names, if it is in force.
fn named(existing: Option<WormConfig>, id: &str, now_ms: i64) -> ApiResult<WormConfig> {
    live(existing, now_ms)
        .filter(|w| w.worm_id == id)
        .ok_or_else(no_such_worm)
}

fn check_days(days: u32) -> ApiResult<u32> {
    if (1..=MAX_RETENTION_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(invalid(format!(
            "RetentionPeriodInDays must be between 1 and {MAX_RETENTION_DAYS}."
        )))
    }
}

/// InitiateBucketWorm: a new InProgress policy with id `new_id`. Refused
/// while another is in force: `WORMConfigurationLocked` for a locked one,
/// `InvalidWORMConfiguration` for one in progress (abort it first).
pub fn initiate(
    existing: Option<WormConfig>,
    days: u32,
    new_id: String,
    now_ms: i64,
) -> ApiResult<WormConfig> {
    match live(existing, now_ms) {
        Some(w) if w.state == WormState::Locked => return Err(locked()),
        Some(_) => {
            return Err(invalid(
                "A WORM configuration is already in progress for this bucket; lock or abort it first.",
            ));
        }
        None => {}
    }
    Ok(WormConfig {
        worm_id: new_id,
        state: WormState::InProgress,
        retention_days: check_days(days)?,
        created_ms: now_ms,
    })
}

/// CompleteBucketWorm: locks the in-progress policy `id`. Locking a policy
/// that is already locked changes nothing and succeeds.
pub fn complete(existing: Option<WormConfig>, id: &str, now_ms: i64) -> ApiResult<WormConfig> {
    let mut w = named(existing, id, now_ms)?;
    w.state = WormState::Locked;
    Ok(w)
}

/// ExtendBucketWorm: a longer period for the locked policy `id`. An
/// in-progress policy cannot be extended, and the period can only grow.
pub fn extend(
    existing: Option<WormConfig>,
    id: &str,
    days: u32,
    now_ms: i64,
) -> ApiResult<WormConfig> {
    let mut w = named(existing, id, now_ms)?;
    if w.state != WormState::Locked {
        return Err(invalid(
            "Only a Locked WORM configuration can be extended; lock it first.",
        ));
    }
    let days = check_days(days)?;
    if days <= w.retention_days {
        return Err(invalid(format!(
            "RetentionPeriodInDays can only be extended: it is {} days, {days} is not longer.",
            w.retention_days
        )));
    }
    w.retention_days = days;
    Ok(w)
}

/// AbortBucketWorm: only an in-progress policy can be removed.
pub fn abort(existing: Option<WormConfig>, now_ms: i64) -> ApiResult<()> {
    match live(existing, now_ms) {
        None => Err(no_such_worm()),
        Some(w) if w.state == WormState::Locked => Err(locked()),
        Some(_) => Ok(()),
    }
}

/// The policy in force at `now_ms`, or `NoSuchWORMConfiguration`.
pub fn current(existing: Option<WormConfig>, now_ms: i64) -> ApiResult<WormConfig> {
    live(existing, now_ms).ok_or_else(no_such_worm)
}

#[derive(Debug, Deserialize)]
struct PeriodXml {
    #[serde(rename = "RetentionPeriodInDays")]
    days: Option<String>,
}

/// `RetentionPeriodInDays` of an `InitiateWormConfiguration` or
/// `ExtendWormConfiguration` body: MalformedXML if absent or not a
/// number, InvalidWORMConfiguration if out of range.
pub fn parse_period(body: &[u8]) -> ApiResult<u32> {
    let doc: PeriodXml = xml::parse(body)?;
    let days: i64 = doc
        .days
        .as_deref()
        .and_then(|d| d.trim().parse().ok())
        .ok_or_else(ApiError::malformed_xml)?;
    check_days(u32::try_from(days).unwrap_or(0))
}

/// GetBucketWorm's document (`CreationDate` as OSS writes it, without zone).
pub fn render(config: &WormConfig) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(config.created_ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let created = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let mut w = XmlWriter::bare("WormConfiguration");
    w.elem("WormId", &config.worm_id)
        .elem("State", config.state.name())
        .elem("RetentionPeriodInDays", config.retention_days.to_string())
        .elem("CreationDate", created);
    w.finish()
}

/// A fresh policy id: 16 random bytes in upper-case hex.
pub fn new_worm_id() -> ApiResult<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal("random WORM id", e))?;
    Ok(hex::encode_upper(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;
    const HOUR: i64 = 3_600_000;

    fn code<T: std::fmt::Debug>(r: ApiResult<T>) -> Option<ErrorCode> {
        r.err().map(|e| e.code)
    }

    #[test]
    fn full_life_of_a_policy() {
        let w = initiate(None, 1, "ID1".into(), T0).expect("initiate");
        assert_eq!(w.state, WormState::InProgress);
        assert_eq!(worm_retention(&w, T0 + HOUR), Some(1));
        let w = complete(Some(w), "ID1", T0 + HOUR).expect("lock");
        assert_eq!(w.state, WormState::Locked);
        // Locked policies never lapse.
        assert_eq!(worm_retention(&w, T0 + 1000 * 24 * HOUR), Some(1));
        let w = extend(Some(w), "ID1", 30, T0 + 2 * HOUR).expect("extend");
        assert_eq!(w.retention_days, 30);
        assert_eq!(
            code(extend(Some(w.clone()), "ID1", 30, T0)),
            Some(ErrorCode::InvalidWORMConfiguration),
            "not longer"
        );
        assert_eq!(
            code(abort(Some(w.clone()), T0)),
            Some(ErrorCode::WORMConfigurationLocked)
        );
        assert_eq!(
            code(initiate(Some(w.clone()), 5, "ID2".into(), T0)),
            Some(ErrorCode::WORMConfigurationLocked)
        );
        // Locking again is a no-op.
        assert_eq!(complete(Some(w.clone()), "ID1", T0).expect("again"), w);
        let xml = render(&w);
        assert!(xml.contains("<WormId>ID1</WormId><State>Locked</State><RetentionPeriodInDays>30</RetentionPeriodInDays><CreationDate>2023-11-14T22:13:20</CreationDate>"), "{xml}");
    }

    #[test]
    fn in_progress_lapses_after_24_hours() {
        let w = initiate(None, 3, "A".into(), T0).expect("initiate");
        let lapsed = T0 + 24 * HOUR;
        assert_eq!(worm_retention(&w, lapsed - 1), Some(3));
        assert_eq!(worm_retention(&w, lapsed), None);
        assert_eq!(
            code(current(Some(w.clone()), lapsed)),
            Some(ErrorCode::NoSuchWORMConfiguration)
        );
        assert_eq!(
            code(complete(Some(w.clone()), "A", lapsed)),
            Some(ErrorCode::NoSuchWORMConfiguration)
        );
        assert_eq!(
            code(abort(Some(w.clone()), lapsed)),
            Some(ErrorCode::NoSuchWORMConfiguration)
        );
        // A new one may be initiated once the old one lapsed, not before.
        assert_eq!(
            code(initiate(Some(w.clone()), 3, "B".into(), lapsed - 1)),
            Some(ErrorCode::InvalidWORMConfiguration)
        );
        assert_eq!(
            initiate(Some(w), 3, "B".into(), lapsed)
                .expect("new")
                .worm_id,
            "B"
        );
    }

    #[test]
    fn wrong_ids_states_and_periods_are_refused() {
        let w = initiate(None, 3, "A".into(), T0).expect("initiate");
        assert_eq!(
            code(complete(Some(w.clone()), "B", T0)),
            Some(ErrorCode::NoSuchWORMConfiguration)
        );
        assert_eq!(
            code(extend(Some(w.clone()), "A", 10, T0)),
            Some(ErrorCode::InvalidWORMConfiguration),
            "in progress cannot be extended"
        );
        assert!(abort(Some(w), T0).is_ok());
        assert_eq!(
            code(abort(None, T0)),
            Some(ErrorCode::NoSuchWORMConfiguration)
        );
        assert_eq!(
            code(initiate(None, 0, "A".into(), T0)),
            Some(ErrorCode::InvalidWORMConfiguration)
        );
        assert_eq!(
            code(initiate(None, 25_551, "A".into(), T0)),
            Some(ErrorCode::InvalidWORMConfiguration)
        );
    }

    #[test]
    fn parses_periods() {
        let body = b"<InitiateWormConfiguration><RetentionPeriodInDays>365</RetentionPeriodInDays></InitiateWormConfiguration>";
        assert_eq!(parse_period(body).expect("valid"), 365);
        let body = b"<ExtendWormConfiguration><RetentionPeriodInDays>-1</RetentionPeriodInDays></ExtendWormConfiguration>";
        assert_eq!(
            code(parse_period(body)),
            Some(ErrorCode::InvalidWORMConfiguration)
        );
        assert_eq!(
            code(parse_period(b"<InitiateWormConfiguration/>")),
            Some(ErrorCode::MalformedXML)
        );
        assert_eq!(new_worm_id().expect("id").len(), 32);
    }
}
