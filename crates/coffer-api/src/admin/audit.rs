//! `GET kms/audit?key=&operation=&principal=&outcome=&since=&until=&after=&limit=`: the KMS
//! audit log, filtered, a page at a time (`coffer kms audit`, the console's Audit page).
//!
//! Lines come back as the KMS stored them (`coffer-kms/src/embedded/audit.rs`: names, key
//! ids and versions, encryption contexts, outcome; never plaintext, key material or
//! ciphertext), parsed to JSON objects, each with its sequence number `seq`. Pages follow
//! the sequence: pass the answer's `next_after` as `after` while `truncated` is true. One
//! request reads at most [`MAX_SCANNED`] lines, so a filter that matches little over a long
//! log answers a short (even empty) page with `truncated` set rather than reading it all.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::ApiRequest;
use crate::state::AppState;

/// Lines per page when `limit` is not given, and the most a page may ask for.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
/// Lines read from the keystore per batch (large: the file keystore re-reads the log up to
/// `after` for each), and per request at most.
const BATCH: usize = 5000;
const MAX_SCANNED: usize = 100_000;

#[derive(Serialize)]
pub struct AuditPage {
    /// Matching lines, oldest first, each a JSON object with `seq` added.
    lines: Vec<Value>,
    /// The sequence number of the last line read (matching or not): the next page's `after`.
    next_after: u64,
    /// Whether lines after `next_after` may remain.
    truncated: bool,
}

/// Which lines a request wants; every filter given must match.
struct AuditFilter {
    /// A key id, ARN or alias name: matches `key_id`, `source_key_id` or `alias`.
    key: Option<String>,
    operation: Option<String>,
    principal: Option<String>,
    /// `ok`, `error` (any failure), or an exception name (`DisabledException`).
    outcome: Option<String>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
}

impl AuditFilter {
    fn of(req: &ApiRequest) -> ApiResult<Self> {
        let text = |name: &str| {
            req.query
                .get(name)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let time = |name: &str| -> ApiResult<Option<OffsetDateTime>> {
            text(name)
                .map(|t| {
                    OffsetDateTime::parse(&t, &Rfc3339).map_err(|_| {
                        ApiError::invalid_argument(format!(
                            "{name} must be an RFC 3339 time, such as 2026-01-31T12:00:00Z"
                        ))
                    })
                })
                .transpose()
        };
        Ok(Self {
            key: text("key"),
            operation: text("operation"),
            principal: text("principal"),
            outcome: text("outcome"),
            since: time("since")?,
            until: time("until")?,
        })
    }

    fn matches(&self, line: &Map<String, Value>) -> bool {
        let field = |name: &str| line.get(name).and_then(Value::as_str);
        let key_matches = |key: &str| {
            ["key_id", "source_key_id", "alias"]
                .iter()
                .filter_map(|name| field(name))
                .any(|value| same_key(value, key))
        };
        let outcome_matches = |wanted: &str| match (wanted, field("outcome")) {
            (_, None) => false,
            ("error", Some(outcome)) => outcome != "ok",
            (wanted, Some(outcome)) => outcome.eq_ignore_ascii_case(wanted),
        };
        let time = field("time").and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
        self.key.as_deref().is_none_or(key_matches)
            && self
                .operation
                .as_deref()
                .is_none_or(|op| field("operation").is_some_and(|o| o.eq_ignore_ascii_case(op)))
            && self
                .principal
                .as_deref()
                .is_none_or(|p| field("principal") == Some(p))
            && self.outcome.as_deref().is_none_or(outcome_matches)
            && self
                .since
                .is_none_or(|since| time.is_some_and(|t| t >= since))
            && self
                .until
                .is_none_or(|until| time.is_some_and(|t| t <= until))
    }
}

/// Whether two key references name the same key: equal, or one is the ARN of the other
/// (`arn:…:key/<id>`, `arn:…:alias/<name>`).
pub(super) fn same_key(a: &str, b: &str) -> bool {
    let bare = |r: &str| -> String {
        match r.strip_prefix("arn:") {
            Some(arn) => match arn.split_once(":key/") {
                Some((_, id)) => id.to_owned(),
                None => arn
                    .split_once(":alias/")
                    .map_or_else(|| r.to_owned(), |(_, name)| format!("alias/{name}")),
            },
            None => r.to_owned(),
        }
    };
    bare(a) == bare(b)
}

/// One filtered page of the audit log.
pub async fn page(state: &AppState, req: &ApiRequest) -> ApiResult<AuditPage> {
    let Some(kms) = state.kms.clone() else {
        return Err(ApiError::new(
            ErrorCode::NotImplemented,
            "This server runs without a KMS: there is no KMS audit log.",
        ));
    };
    let filter = AuditFilter::of(req)?;
    let after = req.query.number("after", 0..=i64::MAX)?.unwrap_or(0);
    let limit = req
        .query
        .number("limit", 1..=MAX_LIMIT)?
        .unwrap_or(DEFAULT_LIMIT);
    let (after, limit) = (after.unsigned_abs(), limit.unsigned_abs() as usize);
    tokio::task::spawn_blocking(move || scan(kms, &filter, after, limit))
        .await
        .map_err(|e| ApiError::internal("reading the KMS audit log", e))?
}

/// Reads batches after `after` until `limit` lines matched, the log ended or
/// [`MAX_SCANNED`] lines were read.
fn scan(
    kms: Arc<dyn coffer_kms::Kms>,
    filter: &AuditFilter,
    mut after: u64,
    limit: usize,
) -> ApiResult<AuditPage> {
    let mut lines = Vec::new();
    let mut scanned = 0;
    loop {
        let batch = kms.audit_log(after, BATCH)?;
        let ended = batch.len() < BATCH;
        for entry in batch {
            scanned += 1;
            after = entry.seq;
            let Ok(Value::Object(mut line)) = serde_json::from_str::<Value>(&entry.line) else {
                tracing::warn!(seq = entry.seq, "a KMS audit line is not a JSON object");
                continue;
            };
            if filter.matches(&line) {
                line.insert("seq".into(), entry.seq.into());
                lines.push(Value::Object(line));
                if lines.len() == limit {
                    // More may follow; the next page says.
                    return Ok(AuditPage {
                        lines,
                        next_after: after,
                        truncated: true,
                    });
                }
            }
        }
        if ended || scanned >= MAX_SCANNED {
            return Ok(AuditPage {
                lines,
                next_after: after,
                truncated: !ended,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> AuditFilter {
        AuditFilter {
            key: None,
            operation: None,
            principal: None,
            outcome: None,
            since: None,
            until: None,
        }
    }

    fn line(text: &str) -> Map<String, Value> {
        match serde_json::from_str(text).expect("JSON") {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn keys_match_by_id_arn_or_alias() {
        assert!(same_key("arn:aws:kms:r:1:key/abc", "abc"));
        assert!(same_key("abc", "arn:aws:kms:r:1:key/abc"));
        assert!(same_key("alias/x", "arn:aws:kms:r:1:alias/x"));
        assert!(!same_key("abc", "abd"));
        let mut f = filter();
        f.key = Some("alias/x".into());
        assert!(f.matches(&line(r#"{"alias":"alias/x","outcome":"ok"}"#)));
        assert!(!f.matches(&line(r#"{"key_id":"abc","outcome":"ok"}"#)));
    }

    #[test]
    fn outcome_error_matches_every_failure() {
        let mut f = filter();
        f.outcome = Some("error".into());
        assert!(f.matches(&line(r#"{"outcome":"DisabledException"}"#)));
        assert!(!f.matches(&line(r#"{"outcome":"ok"}"#)));
        f.outcome = Some("disabledexception".into());
        assert!(f.matches(&line(r#"{"outcome":"DisabledException"}"#)));
    }

    #[test]
    fn time_range_is_inclusive_and_needs_a_time() {
        let mut f = filter();
        f.since = OffsetDateTime::parse("2026-01-01T00:00:00Z", &Rfc3339).ok();
        f.until = OffsetDateTime::parse("2026-01-02T00:00:00Z", &Rfc3339).ok();
        assert!(f.matches(&line(r#"{"time":"2026-01-01T00:00:00Z"}"#)));
        assert!(f.matches(&line(r#"{"time":"2026-01-02T00:00:00Z"}"#)));
        assert!(!f.matches(&line(r#"{"time":"2026-01-02T00:00:01Z"}"#)));
        assert!(!f.matches(&line(r#"{"operation":"Decrypt"}"#)));
    }
}
