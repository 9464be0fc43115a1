//! OSS's `?lifecycle` XML (PutBucketLifecycle / GetBucketLifecycle) to and
//! from the canonical model: a rule's `Prefix` and `Tag`s sit on the rule,
//! `Filter` holds size bounds and `Not` exclusions, and dates are
//! `CreatedBeforeDate` (objects or uploads older than that midnight).

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::s3::boolean;
use super::{
    AbortUpload, Expiration, LifecycleConfiguration, LifecycleRule, NoncurrentExpiration,
    NotFilter, RuleFilter, midnight_date, number, positive_days, rule_enabled, size_bound,
};
use crate::bucket_config::tags::TagXml;
use crate::error::{ApiError, ApiResult};
use crate::xml::{self, XmlWriter};

#[derive(Debug, Deserialize)]
struct ConfigXml {
    #[serde(rename = "Rule", default)]
    rules: Vec<RuleXml>,
}

#[derive(Debug, Deserialize)]
struct RuleXml {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "Prefix")]
    prefix: Option<String>,
    #[serde(rename = "Status")]
    status: Option<String>,
    #[serde(rename = "Expiration")]
    expiration: Option<ExpirationXml>,
    #[serde(rename = "AbortMultipartUpload")]
    abort: Option<AbortXml>,
    #[serde(rename = "Tag", default)]
    tags: Vec<TagXml>,
    #[serde(rename = "NoncurrentVersionExpiration")]
    noncurrent: Option<NoncurrentXml>,
    #[serde(rename = "Filter")]
    filter: Option<FilterXml>,
    #[serde(rename = "Transition", default)]
    transitions: Vec<IgnoredAny>,
    #[serde(rename = "NoncurrentVersionTransition", default)]
    noncurrent_transitions: Vec<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct ExpirationXml {
    #[serde(rename = "Days")]
    days: Option<String>,
    #[serde(rename = "CreatedBeforeDate")]
    created_before: Option<String>,
    #[serde(rename = "Date")]
    date: Option<String>,
    #[serde(rename = "ExpiredObjectDeleteMarker")]
    delete_marker: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AbortXml {
    #[serde(rename = "Days")]
    days: Option<String>,
    #[serde(rename = "CreatedBeforeDate")]
    created_before: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NoncurrentXml {
    #[serde(rename = "NoncurrentDays")]
    days: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct FilterXml {
    #[serde(rename = "ObjectSizeGreaterThan")]
    greater: Option<String>,
    #[serde(rename = "ObjectSizeLessThan")]
    less: Option<String>,
    #[serde(rename = "Not", default)]
    not: Vec<NotXml>,
}

#[derive(Debug, Deserialize)]
struct NotXml {
    #[serde(rename = "Prefix")]
    prefix: Option<String>,
    #[serde(rename = "Tag")]
    tag: Option<TagXml>,
}

/// InvalidArgument with OSS's EC for the site.
fn invalid(ec: &'static str, message: &str) -> ApiError {
    ApiError::invalid_argument(message.to_owned()).with_ec(ec)
}

/// Parses and validates a PutBucketLifecycle body.
pub fn parse_oss(body: &[u8]) -> ApiResult<LifecycleConfiguration> {
    let doc: ConfigXml = xml::parse(body)?;
    let rules = doc
        .rules
        .into_iter()
        .map(rule)
        .collect::<ApiResult<Vec<_>>>()?;
    LifecycleConfiguration { rules }.validate()
}

fn rule(r: RuleXml) -> ApiResult<LifecycleRule> {
    let has_transitions = !r.transitions.is_empty() || !r.noncurrent_transitions.is_empty();
    let enabled = rule_enabled(r.status.as_deref(), has_transitions)?;
    let tags = r
        .tags
        .into_iter()
        .map(TagXml::pair)
        .collect::<ApiResult<Vec<_>>>()?;
    let filter = r.filter.unwrap_or_default();
    let not = filter
        .not
        .into_iter()
        .map(|n| {
            Ok(NotFilter {
                prefix: n.prefix.unwrap_or_default(),
                tag: n.tag.map(TagXml::pair).transpose()?,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let expiration = r.expiration.map(expiration).transpose()?.flatten();
    let noncurrent_expiration = match r.noncurrent {
        None => None,
        Some(n) => {
            let days = n.days.as_deref().ok_or_else(ApiError::malformed_xml)?;
            Some(NoncurrentExpiration {
                noncurrent_days: positive_days(
                    number(days)?,
                    "NoncurrentDays",
                    "NoncurrentVersionExpiration",
                )?,
                newer_noncurrent_versions: None,
            })
        }
    };
    let abort_upload = match r.abort {
        None => None,
        Some(AbortXml {
            days: Some(_),
            created_before: Some(_),
        }) => {
            return Err(invalid(
                "0014-00000061",
                "Days and CreatedBeforeDate cannot both be given in AbortMultipartUpload",
            ));
        }
        Some(AbortXml {
            days: Some(days),
            created_before: None,
        }) => Some(AbortUpload::DaysAfterInitiation(positive_days(
            number(&days)?,
            "Days",
            "AbortMultipartUpload",
        )?)),
        Some(AbortXml {
            days: None,
            created_before: Some(date),
        }) => Some(AbortUpload::CreatedBeforeDate(midnight_date(
            &date,
            "CreatedBeforeDate",
        )?)),
        Some(_) => {
            return Err(invalid(
                "0014-00000060",
                "AbortMultipartUpload needs Days or CreatedBeforeDate",
            ));
        }
    };
    Ok(LifecycleRule {
        id: r.id.unwrap_or_default().trim().to_owned(),
        enabled,
        filter: RuleFilter {
            prefix: r.prefix.unwrap_or_default(),
            tags,
            size_greater_than: filter
                .greater
                .as_deref()
                .map(|s| size_bound(s, "ObjectSizeGreaterThan"))
                .transpose()?,
            size_less_than: filter
                .less
                .as_deref()
                .map(|s| size_bound(s, "ObjectSizeLessThan"))
                .transpose()?,
            not,
        },
        legacy_prefix: true,
        expiration,
        noncurrent_expiration,
        abort_upload,
    })
}

fn expiration(e: ExpirationXml) -> ApiResult<Option<Expiration>> {
    let marker = e.delete_marker.as_deref().map(boolean).transpose()?;
    let given = usize::from(e.days.is_some())
        + usize::from(e.created_before.is_some())
        + usize::from(e.date.is_some())
        + usize::from(marker == Some(true));
    if given > 1 {
        return Err(invalid(
            "0014-00000061",
            "Expiration takes one of Days, CreatedBeforeDate and ExpiredObjectDeleteMarker",
        ));
    }
    if given == 0 && marker.is_none() {
        return Err(invalid(
            "0014-00000060",
            "Expiration needs Days, CreatedBeforeDate or ExpiredObjectDeleteMarker",
        ));
    }
    Ok(if let Some(days) = e.days {
        Some(Expiration::Days(positive_days(
            number(&days)?,
            "Days",
            "Expiration",
        )?))
    } else if let Some(date) = e.created_before {
        Some(Expiration::CreatedBeforeDate(midnight_date(
            &date,
            "CreatedBeforeDate",
        )?))
    } else if let Some(date) = e.date {
        Some(Expiration::Date(midnight_date(&date, "Date")?))
    } else if marker == Some(true) {
        Some(Expiration::ExpiredObjectDeleteMarker)
    } else {
        None
    })
}

/// GetBucketLifecycle's document. `ID`, `Prefix` and `Status` are always
/// written (oss2 requires them); S3-only parts (`NewerNoncurrentVersions`)
/// have no OSS form and are left out.
pub fn render_oss(config: &LifecycleConfiguration) -> String {
    let mut w = XmlWriter::bare("LifecycleConfiguration");
    for rule in &config.rules {
        w.start("Rule")
            .elem("ID", &rule.id)
            .elem("Prefix", &rule.filter.prefix)
            .elem("Status", if rule.enabled { "Enabled" } else { "Disabled" });
        if let Some(e) = &rule.expiration {
            w.start("Expiration");
            match e {
                Expiration::Days(days) => w.elem("Days", days.to_string()),
                Expiration::Date(ms) => w.elem("Date", crate::clock::iso8601(*ms)),
                Expiration::CreatedBeforeDate(ms) => {
                    w.elem("CreatedBeforeDate", crate::clock::iso8601(*ms))
                }
                Expiration::ExpiredObjectDeleteMarker => {
                    w.elem("ExpiredObjectDeleteMarker", "true")
                }
            };
            w.end();
        }
        if let Some(abort) = &rule.abort_upload {
            w.start("AbortMultipartUpload");
            match abort {
                AbortUpload::DaysAfterInitiation(days) => w.elem("Days", days.to_string()),
                AbortUpload::CreatedBeforeDate(ms) => {
                    w.elem("CreatedBeforeDate", crate::clock::iso8601(*ms))
                }
            };
            w.end();
        }
        for (key, value) in &rule.filter.tags {
            w.start("Tag").elem("Key", key).elem("Value", value).end();
        }
        if let Some(n) = &rule.noncurrent_expiration {
            w.start("NoncurrentVersionExpiration")
                .elem("NoncurrentDays", n.noncurrent_days.to_string())
                .end();
        }
        let f = &rule.filter;
        if f.size_greater_than.is_some() || f.size_less_than.is_some() || !f.not.is_empty() {
            w.start("Filter");
            w.elem_opt(
                "ObjectSizeGreaterThan",
                f.size_greater_than.map(|v| v.to_string()),
            );
            w.elem_opt(
                "ObjectSizeLessThan",
                f.size_less_than.map(|v| v.to_string()),
            );
            for not in &f.not {
                w.start("Not").elem("Prefix", &not.prefix);
                if let Some((key, value)) = &not.tag {
                    w.start("Tag").elem("Key", key).elem("Value", value).end();
                }
                w.end();
            }
            w.end();
        }
        w.end();
    }
    w.finish()
}
