//! `s3://bucket/key` locations on the command line.

/// `s3://bucket/key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUrl {
    pub bucket: String,
    pub key: String,
}

impl ObjectUrl {
    /// Parses `s3://bucket` or `s3://bucket/key` (the key may be empty).
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{text:?} is not an s3://bucket/key URL"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{text:?} names no bucket"));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
    }

    /// Whether `text` is an `s3://` URL rather than a local path.
    pub fn is(text: &str) -> bool {
        text.starts_with("s3://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        assert_eq!(
            ObjectUrl::parse("s3://b/a/b c").expect("a URL with a key parses"),
            ObjectUrl {
                bucket: "b".into(),
                key: "a/b c".into()
            }
        );
        assert_eq!(
            ObjectUrl::parse("s3://b").expect("a bucket URL parses").key,
            ""
        );
        assert!(ObjectUrl::parse("/tmp/x").is_err());
        assert!(ObjectUrl::parse("s3:///k").is_err());
    }
}
