//! S3's `LifecycleConfiguration` XML (PutBucketLifecycleConfiguration /
//! GetBucketLifecycleConfiguration) to and from the canonical model.

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{
    AbortUpload, Expiration, LifecycleConfiguration, LifecycleRule, NoncurrentExpiration,
    RuleFilter, midnight_date, number, positive_days, rule_enabled, size_bound,
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
    #[serde(rename = "Status")]
    status: Option<String>,
    #[serde(rename = "Prefix")]
    prefix: Option<String>,
    #[serde(rename = "Filter")]
    filter: Option<FilterXml>,
    #[serde(rename = "Expiration")]
    expiration: Option<ExpirationXml>,
    #[serde(rename = "NoncurrentVersionExpiration")]
    noncurrent: Option<NoncurrentXml>,
    #[serde(rename = "AbortIncompleteMultipartUpload")]
    abort: Option<AbortXml>,
    #[serde(rename = "Transition", default)]
    transitions: Vec<IgnoredAny>,
    #[serde(rename = "NoncurrentVersionTransition", default)]
    noncurrent_transitions: Vec<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
struct FilterXml {
    #[serde(rename = "Prefix")]
    prefix: Option<String>,
    #[serde(rename = "Tag")]
    tag: Option<TagXml>,
    #[serde(rename = "ObjectSizeGreaterThan")]
    greater: Option<String>,
    #[serde(rename = "ObjectSizeLessThan")]
    less: Option<String>,
    #[serde(rename = "And")]
    and: Option<AndXml>,
}

#[derive(Debug, Default, Deserialize)]
struct AndXml {
    #[serde(rename = "Prefix")]
    prefix: Option<String>,
    #[serde(rename = "Tag", default)]
    tags: Vec<TagXml>,
    #[serde(rename = "ObjectSizeGreaterThan")]
    greater: Option<String>,
    #[serde(rename = "ObjectSizeLessThan")]
    less: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ExpirationXml {
    #[serde(rename = "Days")]
    days: Option<String>,
    #[serde(rename = "Date")]
    date: Option<String>,
    #[serde(rename = "ExpiredObjectDeleteMarker")]
    delete_marker: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NoncurrentXml {
    #[serde(rename = "NoncurrentDays")]
    days: Option<String>,
    #[serde(rename = "NewerNoncurrentVersions")]
    newer: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AbortXml {
    #[serde(rename = "DaysAfterInitiation")]
    days: Option<String>,
}

/// `true`/`false` as XML Schema writes booleans; anything else is MalformedXML.
pub(super) fn boolean(text: &str) -> ApiResult<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::malformed_xml()),
    }
}

/// Parses and validates a PutBucketLifecycleConfiguration body.
pub fn parse_s3(body: &[u8]) -> ApiResult<LifecycleConfiguration> {
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
    let (filter, legacy_prefix) = match (r.prefix, r.filter) {
        (Some(prefix), None) => (
            RuleFilter {
                prefix,
                ..RuleFilter::default()
            },
            true,
        ),
        (None, Some(filter)) => (rule_filter(filter)?, false),
        // Exactly one of the two, as S3's schema says.
        _ => return Err(ApiError::malformed_xml()),
    };
    let expiration = match r.expiration {
        None => None,
        Some(e) => expiration(e)?,
    };
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
                newer_noncurrent_versions: match n.newer.as_deref() {
                    None => None,
                    Some(v) => Some(u32::try_from(number(v)?).unwrap_or(0)),
                },
            })
        }
    };
    let abort_upload = match r.abort {
        None => None,
        Some(a) => {
            let days = a.days.as_deref().ok_or_else(ApiError::malformed_xml)?;
            Some(AbortUpload::DaysAfterInitiation(positive_days(
                number(days)?,
                "DaysAfterInitiation",
                "AbortIncompleteMultipartUpload",
            )?))
        }
    };
    Ok(LifecycleRule {
        id: r.id.unwrap_or_default().trim().to_owned(),
        enabled,
        filter,
        legacy_prefix,
        expiration,
        noncurrent_expiration,
        abort_upload,
    })
}

fn rule_filter(f: FilterXml) -> ApiResult<RuleFilter> {
    let given = usize::from(f.prefix.is_some())
        + usize::from(f.tag.is_some())
        + usize::from(f.greater.is_some())
        + usize::from(f.less.is_some())
        + usize::from(f.and.is_some());
    if given > 1 {
        // More than one condition must be wrapped in <And>.
        return Err(ApiError::malformed_xml());
    }
    let (prefix, tags, greater, less) = match f.and {
        Some(and) => (
            and.prefix,
            and.tags
                .into_iter()
                .map(TagXml::pair)
                .collect::<ApiResult<Vec<_>>>()?,
            and.greater,
            and.less,
        ),
        None => (
            f.prefix,
            f.tag.map(TagXml::pair).transpose()?.into_iter().collect(),
            f.greater,
            f.less,
        ),
    };
    Ok(RuleFilter {
        prefix: prefix.unwrap_or_default(),
        tags,
        size_greater_than: greater
            .as_deref()
            .map(|s| size_bound(s, "ObjectSizeGreaterThan"))
            .transpose()?,
        size_less_than: less
            .as_deref()
            .map(|s| size_bound(s, "ObjectSizeLessThan"))
            .transpose()?,
        not: Vec::new(),
    })
}

fn expiration(e: ExpirationXml) -> ApiResult<Option<Expiration>> {
    let marker = e.delete_marker.as_deref().map(boolean).transpose()?;
    let given = usize::from(e.days.is_some())
        + usize::from(e.date.is_some())
        + usize::from(marker.is_some());
    if given != 1 {
        return Err(ApiError::malformed_xml());
    }
    Ok(match (e.days, e.date, marker) {
        (Some(days), _, _) => Some(Expiration::Days(positive_days(
            number(&days)?,
            "Days",
            "Expiration",
        )?)),
        (_, Some(date), _) => Some(Expiration::Date(midnight_date(&date, "Date")?)),
        (_, _, Some(true)) => Some(Expiration::ExpiredObjectDeleteMarker),
        _ => None,
    })
}

/// GetBucketLifecycleConfiguration's document. OSS-only parts (a
/// `CreatedBeforeDate`, `Not` filters) have no S3 form: a
/// `CreatedBeforeDate` is written as `Date`, and `Not` is left out.
pub fn render_s3(config: &LifecycleConfiguration) -> String {
    let mut w = XmlWriter::new("LifecycleConfiguration");
    for rule in &config.rules {
        w.start("Rule").elem("ID", &rule.id);
        if rule.legacy_prefix {
            w.elem("Prefix", &rule.filter.prefix);
        } else {
            write_filter(&mut w, &rule.filter);
        }
        w.elem("Status", if rule.enabled { "Enabled" } else { "Disabled" });
        if let Some(e) = &rule.expiration {
            w.start("Expiration");
            match e {
                Expiration::Days(days) => w.elem("Days", days.to_string()),
                Expiration::Date(ms) | Expiration::CreatedBeforeDate(ms) => {
                    w.elem("Date", crate::clock::iso8601(*ms))
                }
                Expiration::ExpiredObjectDeleteMarker => {
                    w.elem("ExpiredObjectDeleteMarker", "true")
                }
            };
            w.end();
        }
        if let Some(n) = &rule.noncurrent_expiration {
            w.start("NoncurrentVersionExpiration")
                .elem("NoncurrentDays", n.noncurrent_days.to_string());
            w.elem_opt(
                "NewerNoncurrentVersions",
                n.newer_noncurrent_versions.map(|v| v.to_string()),
            );
            w.end();
        }
        if let Some(AbortUpload::DaysAfterInitiation(days)) = &rule.abort_upload {
            w.start("AbortIncompleteMultipartUpload")
                .elem("DaysAfterInitiation", days.to_string())
                .end();
        }
        w.end();
    }
    w.finish()
}

fn write_filter(w: &mut XmlWriter, f: &RuleFilter) {
    let greater = f.size_greater_than.map(|v| v.to_string());
    let less = f.size_less_than.map(|v| v.to_string());
    let conditions = usize::from(!f.prefix.is_empty())
        + f.tags.len()
        + usize::from(greater.is_some())
        + usize::from(less.is_some());
    w.start("Filter");
    if conditions == 0 {
        w.elem("Prefix", "");
    } else {
        if conditions > 1 {
            w.start("And");
        }
        if !f.prefix.is_empty() {
            w.elem("Prefix", &f.prefix);
        }
        for (key, value) in &f.tags {
            w.start("Tag").elem("Key", key).elem("Value", value).end();
        }
        w.elem_opt("ObjectSizeGreaterThan", greater);
        w.elem_opt("ObjectSizeLessThan", less);
        if conditions > 1 {
            w.end();
        }
    }
    w.end();
}
