//! A bucket's policy as the evaluation reads it: the stored document (kept as sent, for
//! GetBucketPolicy) parsed once per distinct document and shared (`policy_cache`), and the
//! words that say why a statement denied a request.

use std::sync::Arc;

use coffer_policy::{Kind, Policy, PolicyError, Service};
use coffer_store::BucketRecord;
use serde_json::Value;

/// Bucket config key of the bucket policy (the document as sent).
pub const POLICY_KEY: &str = "policy";
/// Bucket config key saying the policy is an OSS document (`oss`); absent for S3's.
pub const POLICY_SERVICE_KEY: &str = "policyService";
/// AWS's limit on a bucket policy's size.
pub const POLICY_MAX_BYTES: usize = 20 * 1024;

/// The service a bucket's stored policy was written for.
pub fn service_of(bucket: &BucketRecord) -> Service {
    match bucket.config.get(POLICY_SERVICE_KEY).map(String::as_str) {
        Some("oss") => Service::Oss,
        _ => Service::S3,
    }
}

/// Parses `text` as a bucket policy of `service` (through the cache).
pub fn parse(text: &str, service: Service) -> Result<Arc<Policy>, PolicyError> {
    crate::policy_cache::parsed(text, service, Kind::Resource)
}

/// The bucket's policy: `Ok(None)` without one; `Err` when the stored document no longer
/// parses (written by an older Coffer that stored documents it did not understand) — the
/// caller fails closed.
pub fn of(bucket: &BucketRecord) -> Result<Option<Arc<Policy>>, PolicyError> {
    match bucket.config.get(POLICY_KEY) {
        None => Ok(None),
        Some(text) => parse(text, service_of(bucket)).map(Some),
    }
}

/// Statement `index` of the document `text` (a lone statement object is statement 0).
fn statement(doc: &Value, index: usize) -> Option<&Value> {
    match doc.get("Statement") {
        Some(Value::Array(list)) => list.get(index),
        Some(one @ Value::Object(_)) if index == 0 => Some(one),
        _ => None,
    }
}

/// The condition keys of statement `index` of `text`, for the refusal's message ("denies
/// requests where aws:SecureTransport…"): names only, never values.
pub fn condition_keys(text: &str, index: usize) -> Vec<String> {
    let Ok(doc) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let Some(Value::Object(operators)) = statement(&doc, index).and_then(|s| s.get("Condition"))
    else {
        return Vec::new();
    };
    let mut keys: Vec<String> = operators
        .values()
        .filter_map(Value::as_object)
        .flat_map(|keys| keys.keys().cloned())
        .collect();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_keys_of_a_statement() {
        let doc = r#"{"Statement":[{"Effect":"Allow"},{"Effect":"Deny",
            "Condition":{"Bool":{"aws:SecureTransport":"false"},
                         "NumericLessThan":{"s3:TlsVersion":"1.3"}}}]}"#;
        assert!(condition_keys(doc, 0).is_empty());
        let mut keys = condition_keys(doc, 1);
        keys.sort();
        assert_eq!(keys, ["aws:SecureTransport", "s3:TlsVersion"]);
        let single = r#"{"Statement":{"Effect":"Deny","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}"#;
        assert_eq!(condition_keys(single, 0), ["aws:SourceIp"]);
        assert!(condition_keys("not json", 0).is_empty());
    }
}
