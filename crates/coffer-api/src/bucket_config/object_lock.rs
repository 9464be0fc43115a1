//! S3 object-lock configuration (`?object-lock`): whether the bucket has
//! object lock, and its default retention for new object versions.
//!
//! A bucket becomes object-lock enabled either at creation
//! (`x-amz-bucket-object-lock-enabled: true`) or by a
//! PutObjectLockConfiguration on a bucket whose versioning is enabled.
//! Once enabled it cannot be disabled. The put path asks
//! [`default_retention`] for the retention a new version gets when its
//! request names none.

use coffer_store::{BucketRecord, RetentionMode};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::xml::{self, XmlWriter};

/// Bucket config key of the object-lock configuration (JSON of [`ObjectLockConfig`]).
pub const OBJECT_LOCK_KEY: &str = "object-lock";
/// Longest default retention in days (100 years of 365 days).
pub const MAX_DAYS: u32 = 36_500;
/// Longest default retention in years.
pub const MAX_YEARS: u32 = 100;

/// A bucket's object-lock configuration, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLockConfig {
    /// Always true once stored: object lock cannot be turned off.
    pub enabled: bool,
    /// The retention new versions get when their request names none.
    pub default_retention: Option<DefaultRetention>,
}

/// `Rule/DefaultRetention`: a mode and a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    /// GOVERNANCE or COMPLIANCE.
    pub mode: RetentionMode,
    /// Days or years.
    pub period: RetentionPeriod,
}

/// A default retention period: `Days` xor `Years` (a year is 365 days, as in S3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionPeriod {
    /// A number of days.
    Days(u32),
    /// A number of years.
    Years(u32),
}

impl RetentionPeriod {
    /// The period as a duration.
    pub fn duration(self) -> time::Duration {
        match self {
            RetentionPeriod::Days(d) => time::Duration::days(i64::from(d)),
            RetentionPeriod::Years(y) => time::Duration::days(365 * i64::from(y)),
        }
    }
}

impl ObjectLockConfig {
    /// What CreateBucket with `x-amz-bucket-object-lock-enabled: true` stores.
    pub fn enabled_without_default() -> Self {
        Self {
            enabled: true,
            default_retention: None,
        }
    }

    /// The bucket's configuration, if it has object lock.
    pub fn of(bucket: &BucketRecord) -> ApiResult<Option<Self>> {
        super::stored(bucket, OBJECT_LOCK_KEY)
    }
}

/// The default retention of a bucket's object-lock configuration: the
/// mode and the duration to add to a new version's creation time to get
/// its retain-until date. `None` when the bucket has no default.
pub fn default_retention(doc: &ObjectLockConfig) -> Option<(RetentionMode, time::Duration)> {
    if !doc.enabled {
        return None;
    }
    doc.default_retention.map(|d| (d.mode, d.period.duration()))
}

#[derive(Debug, Deserialize)]
struct ConfigXml {
    #[serde(rename = "ObjectLockEnabled")]
    enabled: Option<String>,
    #[serde(rename = "Rule")]
    rule: Option<RuleXml>,
}

#[derive(Debug, Deserialize)]
struct RuleXml {
    #[serde(rename = "DefaultRetention")]
    default_retention: Option<DefaultRetentionXml>,
}

#[derive(Debug, Deserialize)]
struct DefaultRetentionXml {
    #[serde(rename = "Mode")]
    mode: Option<String>,
    #[serde(rename = "Days")]
    days: Option<String>,
    #[serde(rename = "Years")]
    years: Option<String>,
}

/// The mode as S3 writes it.
pub fn mode_name(mode: RetentionMode) -> &'static str {
    match mode {
        RetentionMode::Governance => "GOVERNANCE",
        RetentionMode::Compliance => "COMPLIANCE",
    }
}

/// Parses a mode as S3 writes it; anything else is `None`.
pub fn parse_mode(text: &str) -> Option<RetentionMode> {
    match text.trim() {
        "GOVERNANCE" => Some(RetentionMode::Governance),
        "COMPLIANCE" => Some(RetentionMode::Compliance),
        _ => None,
    }
}

fn period_value(text: &str, max: u32, unit: &str) -> ApiResult<u32> {
    let value: i64 = text.trim().parse().map_err(|_| ApiError::malformed_xml())?;
    if value <= 0 {
        return Err(ApiError::invalid_argument(
            "Default retention period must be a positive integer value",
        ));
    }
    match u32::try_from(value) {
        Ok(v) if v <= max => Ok(v),
        _ => Err(ApiError::invalid_argument(format!(
            "Default retention period is too large: at most {max} {unit}"
        ))),
    }
}

/// Parses and validates a PutObjectLockConfiguration body.
pub fn parse(body: &[u8]) -> ApiResult<ObjectLockConfig> {
    let doc: ConfigXml = xml::parse(body)?;
    if doc.enabled.as_deref().map(str::trim) != Some("Enabled") {
        return Err(ApiError::malformed_xml());
    }
    let default_retention = match doc.rule {
        None => None,
        Some(RuleXml {
            default_retention: None,
        }) => return Err(ApiError::malformed_xml()),
        Some(RuleXml {
            default_retention: Some(d),
        }) => {
            let mode = d
                .mode
                .as_deref()
                .and_then(parse_mode)
                .ok_or_else(ApiError::malformed_xml)?;
            let period = match (d.days, d.years) {
                (Some(days), None) => RetentionPeriod::Days(period_value(&days, MAX_DAYS, "days")?),
                (None, Some(years)) => {
                    RetentionPeriod::Years(period_value(&years, MAX_YEARS, "years")?)
                }
                // Days xor Years.
                _ => return Err(ApiError::malformed_xml()),
            };
            Some(DefaultRetention { mode, period })
        }
    };
    Ok(ObjectLockConfig {
        enabled: true,
        default_retention,
    })
}

/// GetObjectLockConfiguration's document.
pub fn render(config: &ObjectLockConfig) -> String {
    let mut w = XmlWriter::new("ObjectLockConfiguration");
    if config.enabled {
        w.elem("ObjectLockEnabled", "Enabled");
    }
    if let Some(d) = &config.default_retention {
        w.start("Rule")
            .start("DefaultRetention")
            .elem("Mode", mode_name(d.mode));
        match d.period {
            RetentionPeriod::Days(days) => w.elem("Days", days.to_string()),
            RetentionPeriod::Years(years) => w.elem("Years", years.to_string()),
        };
        w.end().end();
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn code(body: &str) -> Option<ErrorCode> {
        parse(body.as_bytes()).err().map(|e| e.code)
    }

    #[test]
    fn parses_and_renders_default_retention() {
        let body = "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Years>2</Years></DefaultRetention></Rule></ObjectLockConfiguration>";
        let config = parse(body.as_bytes()).expect("valid");
        assert_eq!(
            config.default_retention,
            Some(DefaultRetention {
                mode: RetentionMode::Compliance,
                period: RetentionPeriod::Years(2)
            })
        );
        let (mode, duration) = default_retention(&config).expect("a default");
        assert_eq!(mode, RetentionMode::Compliance);
        assert_eq!(duration, time::Duration::days(730));
        let xml = render(&config);
        assert!(xml.contains("<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Years>2</Years></DefaultRetention></Rule>"), "{xml}");
        assert_eq!(parse(xml.as_bytes()).expect("round trip"), config);
        // Stored as JSON and back.
        let json = serde_json::to_string(&config).expect("json");
        assert_eq!(
            serde_json::from_str::<ObjectLockConfig>(&json).expect("back"),
            config
        );
    }

    #[test]
    fn enabled_without_rule_has_no_default() {
        let config =
            parse(b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>")
                .expect("valid");
        assert_eq!(config, ObjectLockConfig::enabled_without_default());
        assert_eq!(default_retention(&config), None);
        assert!(!render(&config).contains("<Rule>"));
    }

    #[test]
    fn refuses_what_s3_refuses() {
        let wrap = |inner: &str| {
            format!(
                "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention>{inner}</DefaultRetention></Rule></ObjectLockConfiguration>"
            )
        };
        let malformed = Some(ErrorCode::MalformedXML);
        let invalid = Some(ErrorCode::InvalidArgument);
        assert_eq!(
            code(&wrap(
                "<Mode>GOVERNANCE</Mode><Days>1</Days><Years>1</Years>"
            )),
            malformed
        );
        assert_eq!(code(&wrap("<Mode>GOVERNANCE</Mode>")), malformed);
        assert_eq!(code(&wrap("<Mode>LOOSE</Mode><Days>1</Days>")), malformed);
        assert_eq!(code(&wrap("<Days>1</Days>")), malformed);
        assert_eq!(
            code(&wrap("<Mode>GOVERNANCE</Mode><Days>0</Days>")),
            invalid
        );
        assert_eq!(
            code(&wrap("<Mode>GOVERNANCE</Mode><Days>-3</Days>")),
            invalid
        );
        assert_eq!(
            code(&wrap("<Mode>GOVERNANCE</Mode><Years>101</Years>")),
            invalid
        );
        assert_eq!(
            code(&wrap("<Mode>GOVERNANCE</Mode><Days>x</Days>")),
            malformed
        );
        assert_eq!(
            code(
                "<ObjectLockConfiguration><ObjectLockEnabled>Disabled</ObjectLockEnabled></ObjectLockConfiguration>"
            ),
            malformed
        );
        assert_eq!(
            code(
                "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule></Rule></ObjectLockConfiguration>"
            ),
            malformed
        );
    }
}
