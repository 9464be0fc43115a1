//! Tag sets: the `<Tagging><TagSet><Tag><Key/><Value/></Tag>…` document
//! and the `x-amz-tagging` / `x-oss-tagging` header form
//! (`k1=v1&k2=v2`, URL-query encoded), with AWS's limits. Bucket tagging
//! uses it now; object tagging is meant to use the same module.
//!
//! Limits (AWS's, applied in both dialects): at most
//! [`MAX_OBJECT_TAGS`] tags on an object and [`MAX_BUCKET_TAGS`] on a
//! bucket, keys of 1 to [`MAX_KEY_CHARS`] and values of at most
//! [`MAX_VALUE_CHARS`] Unicode characters, no key twice, and no user tag
//! whose key starts with `aws:` (AWS reserves it). A breach is `InvalidTag`.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::Query;
use crate::xml::{self, XmlWriter};

/// Bucket config key of the bucket's tag set (JSON of [`TagSet`]).
pub const BUCKET_TAGGING_KEY: &str = "tagging";
/// Most tags one object may carry.
pub const MAX_OBJECT_TAGS: usize = 10;
/// Most tags one bucket may carry.
pub const MAX_BUCKET_TAGS: usize = 50;
/// Longest tag key, in Unicode characters.
pub const MAX_KEY_CHARS: usize = 128;
/// Longest tag value, in Unicode characters.
pub const MAX_VALUE_CHARS: usize = 256;
/// The key prefix AWS reserves for its own tags.
const RESERVED_PREFIX: &str = "aws:";

/// What a tag set is attached to: it decides the count limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagTarget {
    /// An object (version): at most [`MAX_OBJECT_TAGS`].
    Object,
    /// A bucket: at most [`MAX_BUCKET_TAGS`].
    Bucket,
}

/// A validated tag set: (key, value) pairs in the order given, keys unique.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagSet {
    /// The tags, in the order the client gave them.
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Deserialize)]
struct TaggingXml {
    #[serde(rename = "TagSet")]
    tag_set: Option<TagSetXml>,
}

#[derive(Debug, Default, Deserialize)]
struct TagSetXml {
    #[serde(rename = "Tag", default)]
    tags: Vec<TagXml>,
}

/// One `<Tag>`: also what lifecycle filters use.
#[derive(Debug, Deserialize)]
pub(crate) struct TagXml {
    #[serde(rename = "Key")]
    pub key: Option<String>,
    #[serde(rename = "Value")]
    pub value: Option<String>,
}

impl TagXml {
    /// The pair; a tag without `Key` is MalformedXML, a missing `Value` is empty.
    pub(crate) fn pair(self) -> ApiResult<(String, String)> {
        let key = self.key.ok_or_else(ApiError::malformed_xml)?;
        Ok((key, self.value.unwrap_or_default()))
    }
}

/// `InvalidTag` with `message`; OSS's EC for an invalid tag.
pub fn invalid_tag(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidTag, message).with_ec("0010-00000217")
}

impl TagSet {
    /// Checks `tags` against the limits for `target`.
    pub fn new(tags: Vec<(String, String)>, target: TagTarget) -> ApiResult<Self> {
        let (limit, what) = match target {
            TagTarget::Object => (MAX_OBJECT_TAGS, "Object tags"),
            TagTarget::Bucket => (MAX_BUCKET_TAGS, "Bucket tag count"),
        };
        if tags.len() > limit {
            return Err(invalid_tag(format!(
                "{what} cannot be greater than {limit}"
            )));
        }
        for (i, (key, value)) in tags.iter().enumerate() {
            check_pair(key, value)?;
            if tags[..i].iter().any(|(k, _)| k == key) {
                return Err(invalid_tag(
                    "Cannot provide multiple Tags with the same key",
                ));
            }
        }
        Ok(Self { tags })
    }

    /// Parses a `<Tagging>` body (either dialect) and checks it for `target`.
    pub fn parse_xml(body: &[u8], target: TagTarget) -> ApiResult<Self> {
        let doc: TaggingXml = xml::parse(body)?;
        let tags = doc
            .tag_set
            .ok_or_else(ApiError::malformed_xml)?
            .tags
            .into_iter()
            .map(TagXml::pair)
            .collect::<ApiResult<Vec<_>>>()?;
        Self::new(tags, target)
    }

    /// Parses the `x-amz-tagging` / `x-oss-tagging` header: `k1=v1&k2`,
    /// URL-query encoded (`+` is a space); a key without `=` has an empty
    /// value. More than one `=` in a pair is InvalidArgument.
    pub fn parse_header(value: &str, target: TagTarget) -> ApiResult<Self> {
        if value
            .split('&')
            .any(|pair| pair.bytes().filter(|b| *b == b'=').count() > 1)
        {
            return Err(ApiError::invalid_argument(
                "The tagging header must be key=value pairs joined by '&', URL-encoded.",
            )
            .with_ec("0010-00000219"));
        }
        let query = Query::parse(value)?;
        let tags = query
            .pairs()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self::new(tags, target)
    }

    /// The header form: `k1=v1&k2=v2`, each side percent-encoded.
    pub fn to_header(&self) -> String {
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
        const KEEP: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'~');
        self.tags
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, KEEP),
                    utf8_percent_encode(v, KEEP)
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    /// Writes `<TagSet><Tag>…</Tag></TagSet>` into `w` (the caller opened
    /// `<Tagging>` in its dialect).
    pub fn write_xml(&self, w: &mut XmlWriter) {
        w.start("TagSet");
        for (key, value) in &self.tags {
            w.start("Tag").elem("Key", key).elem("Value", value).end();
        }
        w.end();
    }

    /// Whether every tag of `wanted` is in this set with the same value.
    pub fn contains_all(&self, wanted: &[(String, String)]) -> bool {
        wanted.iter().all(|w| self.tags.contains(w))
    }
}

/// One tag's key and value against the length and prefix rules.
pub fn check_pair(key: &str, value: &str) -> ApiResult<()> {
    if key.is_empty() {
        return Err(invalid_tag("The TagKey you have provided is invalid"));
    }
    if key.chars().count() > MAX_KEY_CHARS {
        return Err(invalid_tag(format!(
            "The TagKey you have provided is too long, max {MAX_KEY_CHARS}"
        )));
    }
    if value.chars().count() > MAX_VALUE_CHARS {
        return Err(invalid_tag(format!(
            "The TagValue you have provided is too long, max {MAX_VALUE_CHARS}"
        )));
    }
    if key.starts_with(RESERVED_PREFIX) {
        return Err(invalid_tag(
            "System tags (keys starting with aws:) cannot be added or updated by requester",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(n: usize) -> Vec<(String, String)> {
        (0..n).map(|i| (format!("k{i}"), format!("v{i}"))).collect()
    }

    fn code(result: ApiResult<TagSet>) -> Option<ErrorCode> {
        result.err().map(|e| e.code)
    }

    #[test]
    fn count_limits_depend_on_the_target() {
        assert!(TagSet::new(pairs(10), TagTarget::Object).is_ok());
        assert_eq!(
            code(TagSet::new(pairs(11), TagTarget::Object)),
            Some(ErrorCode::InvalidTag)
        );
        assert!(TagSet::new(pairs(50), TagTarget::Bucket).is_ok());
        assert_eq!(
            code(TagSet::new(pairs(51), TagTarget::Bucket)),
            Some(ErrorCode::InvalidTag)
        );
        assert!(TagSet::new(Vec::new(), TagTarget::Bucket).is_ok());
    }

    #[test]
    fn length_limits_count_characters_not_bytes() {
        let ok_key = "é".repeat(128);
        let ok_value = "ü".repeat(256);
        assert!(TagSet::new(vec![(ok_key.clone(), ok_value.clone())], TagTarget::Object).is_ok());
        let long_key = format!("{ok_key}a");
        let long_value = format!("{ok_value}a");
        for (k, v) in [(long_key, "v".to_owned()), ("k".to_owned(), long_value)] {
            assert_eq!(
                code(TagSet::new(vec![(k, v)], TagTarget::Object)),
                Some(ErrorCode::InvalidTag)
            );
        }
    }

    #[test]
    fn duplicates_reserved_and_empty_keys_are_refused() {
        let dup = vec![("a".into(), "1".into()), ("a".into(), "2".into())];
        assert_eq!(
            code(TagSet::new(dup, TagTarget::Bucket)),
            Some(ErrorCode::InvalidTag)
        );
        let reserved = vec![("aws:cloudformation".into(), "x".into())];
        assert_eq!(
            code(TagSet::new(reserved, TagTarget::Bucket)),
            Some(ErrorCode::InvalidTag)
        );
        let empty = vec![(String::new(), "x".into())];
        assert_eq!(
            code(TagSet::new(empty, TagTarget::Bucket)),
            Some(ErrorCode::InvalidTag)
        );
        // "aws" without the colon, and an empty value, are fine.
        let fine = vec![("awsome".into(), String::new())];
        assert!(TagSet::new(fine, TagTarget::Bucket).is_ok());
    }

    #[test]
    fn xml_round_trips() {
        let body = br#"<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><Tag><Key>env</Key><Value>prod &amp; test</Value></Tag><Tag><Key>empty</Key><Value></Value></Tag></TagSet></Tagging>"#;
        let set = TagSet::parse_xml(body, TagTarget::Bucket).expect("valid");
        assert_eq!(
            set.tags,
            vec![
                ("env".to_owned(), "prod & test".to_owned()),
                ("empty".to_owned(), String::new())
            ]
        );
        let mut w = XmlWriter::bare("Tagging");
        set.write_xml(&mut w);
        let xml = w.finish();
        assert!(xml.contains("<Tag><Key>env</Key><Value>prod &amp; test</Value></Tag>"));
        assert_eq!(
            TagSet::parse_xml(xml.as_bytes(), TagTarget::Bucket).expect("again"),
            set
        );
    }

    #[test]
    fn xml_without_tag_set_or_key_is_malformed() {
        assert_eq!(
            code(TagSet::parse_xml(b"<Tagging></Tagging>", TagTarget::Bucket)),
            Some(ErrorCode::MalformedXML)
        );
        assert_eq!(
            code(TagSet::parse_xml(
                b"<Tagging><TagSet><Tag><Value>v</Value></Tag></TagSet></Tagging>",
                TagTarget::Bucket
            )),
            Some(ErrorCode::MalformedXML)
        );
        let empty = TagSet::parse_xml(b"<Tagging><TagSet/></Tagging>", TagTarget::Bucket);
        assert_eq!(empty.expect("an empty set is valid").tags, Vec::new());
    }

    #[test]
    fn header_form_decodes_and_encodes() {
        let set = TagSet::parse_header("a=1&b%20c=x+y&flag", TagTarget::Object).expect("valid");
        assert_eq!(
            set.tags,
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b c".to_owned(), "x y".to_owned()),
                ("flag".to_owned(), String::new())
            ]
        );
        assert_eq!(set.to_header(), "a=1&b%20c=x%20y&flag=");
        let again = TagSet::parse_header(&set.to_header(), TagTarget::Object).expect("again");
        assert_eq!(again, set);
        assert_eq!(
            code(TagSet::parse_header("aa=bb=cc", TagTarget::Object)),
            Some(ErrorCode::InvalidArgument)
        );
        let eleven = (0..11)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(
            code(TagSet::parse_header(&eleven, TagTarget::Object)),
            Some(ErrorCode::InvalidTag)
        );
    }
}
