//! The policy document of a browser form upload: base64 JSON with an
//! `expiration` and `conditions` that the form's fields must meet (AWS's
//! "Creating a POST policy"; OSS PostObject uses the same document).
//!
//! Conditions: `{"field": "value"}` and `["eq", "$field", "value"]` (exact
//! match), `["starts-with", "$field", "prefix"]` (an empty prefix allows
//! anything; for `Content-Type`, every comma-separated value must start
//! with it), `["content-length-range", min, max]` (the file's size). Field
//! names are case-insensitive; `bucket` is the target bucket.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

use crate::bucket_config::parse_timestamp;
use crate::error::{ApiError, ApiResult, ErrorCode};

/// One condition of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// The field must equal the value.
    Eq { field: String, value: String },
    /// The field must start with the prefix.
    StartsWith { field: String, prefix: String },
    /// The file's size must be within the range, inclusive.
    ContentLengthRange { min: u64, max: u64 },
}

/// A decoded, well-formed policy document.
#[derive(Debug, Clone)]
pub struct PostPolicy {
    expiration_ms: i64,
    conditions: Vec<Condition>,
}

/// InvalidPolicyDocument with AWS's `Invalid Policy: …` message.
fn invalid(detail: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidPolicyDocument,
        format!("Invalid Policy: {detail}"),
    )
}

/// AccessDenied with AWS's `Invalid according to Policy: …` message.
pub fn refused(detail: &str) -> ApiError {
    ApiError::access_denied(format!("Invalid according to Policy: {detail}"))
}

impl PostPolicy {
    /// Decodes the `policy` field (base64 of the JSON document).
    pub fn parse(field: &str) -> ApiResult<Self> {
        let json = BASE64
            .decode(field.trim())
            .map_err(|_| invalid("Invalid 'Policy' field: not base64."))?;
        let doc: Value = serde_json::from_slice(&json).map_err(|_| invalid("Invalid JSON."))?;
        let doc = doc.as_object().ok_or_else(|| invalid("Invalid JSON."))?;
        let expiration = doc
            .get("expiration")
            .ok_or_else(|| invalid("Policy missing expiration."))?;
        let expiration_ms = expiration
            .as_str()
            .and_then(parse_timestamp)
            .ok_or_else(|| invalid("Invalid 'expiration' value."))?;
        let conditions = doc
            .get("conditions")
            .ok_or_else(|| invalid("Policy missing conditions."))?
            .as_array()
            .ok_or_else(|| invalid("Invalid 'conditions' value: must be a list."))?
            .iter()
            .map(Condition::parse)
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(Self {
            expiration_ms,
            conditions,
        })
    }

    /// Checks the expiration at `now_ms` and every field condition against
    /// the form's fields (`field` looks up a lower-case name; `bucket` the
    /// target bucket). The file's size is checked as it is read
    /// ([`Self::length_range`]).
    pub fn check<'a>(&self, now_ms: i64, field: impl Fn(&str) -> Option<&'a str>) -> ApiResult<()> {
        if now_ms > self.expiration_ms {
            return Err(refused("Policy expired."));
        }
        for condition in &self.conditions {
            let holds = match condition {
                Condition::Eq { field: name, value } => field(name) == Some(value.as_str()),
                Condition::StartsWith {
                    field: name,
                    prefix,
                } => match field(name) {
                    Some(value) if name == "content-type" => value
                        .split(',')
                        .all(|v| v.trim().starts_with(prefix.as_str())),
                    Some(value) => value.starts_with(prefix.as_str()),
                    // An empty prefix allows anything, absent included.
                    None => prefix.is_empty(),
                },
                Condition::ContentLengthRange { .. } => true,
            };
            if !holds {
                return Err(refused(&format!(
                    "Policy Condition failed: {}",
                    condition.describe()
                )));
            }
        }
        Ok(())
    }

    /// Whether a condition names field `name` (lower case): every form field
    /// of an S3 upload must be covered by one.
    pub fn covers(&self, name: &str) -> bool {
        self.conditions.iter().any(|c| match c {
            Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => field == name,
            Condition::ContentLengthRange { .. } => false,
        })
    }

    /// The allowed file sizes, from the last `content-length-range`.
    pub fn length_range(&self) -> Option<(u64, u64)> {
        self.conditions.iter().rev().find_map(|c| match c {
            Condition::ContentLengthRange { min, max } => Some((*min, *max)),
            _ => None,
        })
    }
}

impl Condition {
    fn parse(value: &Value) -> ApiResult<Self> {
        if let Some(object) = value.as_object() {
            let [(name, value)] = object.iter().collect::<Vec<_>>()[..] else {
                return Err(invalid(
                    "Invalid Policy Condition: an object condition names one field.",
                ));
            };
            let value = value
                .as_str()
                .ok_or_else(|| invalid("Invalid Policy Condition: the value must be a string."))?;
            return Ok(Self::Eq {
                field: field_name(name),
                value: value.to_owned(),
            });
        }
        let list = value
            .as_array()
            .ok_or_else(|| invalid("Invalid Policy Condition: not an object or a list."))?;
        let [operator, first, second] = &list[..] else {
            return Err(invalid(
                "Invalid Policy Condition: a list has three elements.",
            ));
        };
        let operator = operator
            .as_str()
            .ok_or_else(|| invalid("Invalid Policy Condition: unknown operator."))?;
        match operator.to_ascii_lowercase().as_str() {
            "content-length-range" => {
                let (min, max) = (length(first)?, length(second)?);
                if min > max {
                    return Err(invalid(
                        "Invalid content-length-range: the minimum exceeds the maximum.",
                    ));
                }
                Ok(Self::ContentLengthRange { min, max })
            }
            op @ ("eq" | "starts-with") => {
                let name = first
                    .as_str()
                    .and_then(|n| n.strip_prefix('$'))
                    .ok_or_else(|| {
                        invalid("Invalid Policy Condition: the field must be \"$name\".")
                    })?;
                let text = second.as_str().ok_or_else(|| {
                    invalid("Invalid Policy Condition: the value must be a string.")
                })?;
                let field = field_name(name);
                let text = text.to_owned();
                Ok(if op == "eq" {
                    Self::Eq { field, value: text }
                } else {
                    Self::StartsWith {
                        field,
                        prefix: text,
                    }
                })
            }
            other => Err(invalid(&format!(
                "Invalid Policy Condition: unknown operator \"{other}\"."
            ))),
        }
    }

    /// The condition as AWS's error message quotes it.
    fn describe(&self) -> String {
        match self {
            Self::Eq { field, value } => format!("[\"eq\", \"${field}\", \"{value}\"]"),
            Self::StartsWith { field, prefix } => {
                format!("[\"starts-with\", \"${field}\", \"{prefix}\"]")
            }
            Self::ContentLengthRange { min, max } => {
                format!("[\"content-length-range\", {min}, {max}]")
            }
        }
    }
}

fn field_name(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// A size bound: a non-negative integer, as a number or a string.
fn length(value: &Value) -> ApiResult<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| invalid("Invalid content-length-range: the bounds must be integers."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> ApiResult<PostPolicy> {
        PostPolicy::parse(&BASE64.encode(json))
    }

    const DOC: &str = r#"{"expiration": "2030-01-01T00:00:00.000Z", "conditions": [
        {"bucket": "photos"}, ["starts-with", "$key", "user/"], ["eq", "$Content-Type", "image/png"],
        ["content-length-range", 1, "1048576"], ["starts-with", "$x-amz-meta-tag", ""]]}"#;

    fn fields<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    #[test]
    fn conditions_hold_or_name_the_one_that_failed() {
        let policy = policy(DOC).expect("valid");
        let now = parse_timestamp("2029-12-31T00:00:00Z").expect("time");
        let good = [
            ("bucket", "photos"),
            ("key", "user/a.png"),
            ("content-type", "image/png"),
        ];
        policy.check(now, fields(&good)).expect("allowed");
        assert_eq!(policy.length_range(), Some((1, 1_048_576)));
        assert!(policy.covers("content-type") && policy.covers("x-amz-meta-tag"));
        assert!(!policy.covers("success_action_status"));
        let bad_key = [
            ("bucket", "photos"),
            ("key", "other/a.png"),
            ("content-type", "image/png"),
        ];
        let error = policy.check(now, fields(&bad_key)).expect_err("refused");
        assert_eq!(error.code, ErrorCode::AccessDenied);
        assert_eq!(
            error.message,
            "Invalid according to Policy: Policy Condition failed: [\"starts-with\", \"$key\", \"user/\"]"
        );
        let later = parse_timestamp("2030-01-01T00:00:01Z").expect("time");
        assert_eq!(
            policy
                .check(later, fields(&good))
                .expect_err("expired")
                .message,
            "Invalid according to Policy: Policy expired."
        );
    }

    #[test]
    fn malformed_documents_are_invalid_policy_documents() {
        for doc in [
            "not json",
            "[]",
            r#"{"conditions": []}"#,
            r#"{"expiration": "tomorrow", "conditions": []}"#,
            r#"{"expiration": "2030-01-01T00:00:00Z"}"#,
            r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["in", "$key", "a"]]}"#,
            r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["eq", "key", "a"]]}"#,
            r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["content-length-range", 5, 1]]}"#,
            r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [{"a": "1", "b": "2"}]}"#,
        ] {
            let error = policy(doc).expect_err(doc);
            assert_eq!(error.code, ErrorCode::InvalidPolicyDocument, "{doc}");
        }
        let error = PostPolicy::parse("%%%").expect_err("not base64");
        assert_eq!(error.code, ErrorCode::InvalidPolicyDocument);
    }
}
