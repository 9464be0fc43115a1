//! Where the blobs go: `s3://BUCKET/PREFIX?endpoint=URL&region=R`, parsed into
//! [`S3BlobConfig`], plus the tuning a URL does not carry (part size, timeouts).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Bytes per part of a multipart upload: a blob longer than this goes up as a
/// multipart upload of parts this size (the last one shorter), a shorter one as
/// one PUT. Coffer writes bodies in 1 MiB batches, so a part is eight batches;
/// S3 wants parts of at least 5 MiB, and at 8 MiB its 10 000 parts hold 78 GiB,
/// far more than one blob (an object body or a part, at most 5 GiB) ever needs.
pub const DEFAULT_PART_SIZE: usize = 8 << 20;
/// The smallest part S3 accepts (all but the last).
pub const MIN_PART_SIZE: usize = 5 << 20;
/// The TCP connect to the upstream. A refused connection fails at once.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// From a request sent (an 8 MiB part included) to the upstream's answer, and
/// between two reads of a GET body.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// The region signed into requests when the URL names none.
pub const DEFAULT_REGION: &str = "us-east-1";

/// An upstream bucket and prefix, and how to reach it. Credentials are passed
/// separately (they never sit in a URL that might be logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3BlobConfig {
    /// The upstream bucket; it must exist.
    pub bucket: String,
    /// The key prefix, without leading or trailing `/` (empty: the bucket's
    /// top level). Blob `ID` is the object `PREFIX/ID`.
    pub prefix: String,
    /// `http://host:port` or `https://host:port` (path-style requests).
    pub endpoint: String,
    /// The SigV4 region.
    pub region: String,
    /// See [`DEFAULT_PART_SIZE`]; at least [`MIN_PART_SIZE`].
    pub part_size: usize,
    /// See [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// See [`DEFAULT_RESPONSE_TIMEOUT`].
    pub response_timeout: Duration,
    /// Keys per ListObjectsV2 page (`None`: the upstream's own cap, 1000 on S3).
    pub list_page_size: Option<u32>,
}

/// Why a blob store URL or configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum S3ConfigError {
    /// The URL does not have the documented form.
    #[error(
        "invalid blob store URL {url:?}: {reason} (expected s3://BUCKET/PREFIX?endpoint=URL&region=R)"
    )]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting is out of range.
    #[error("invalid blob store setting: {0}")]
    Setting(String),
    /// The client for the endpoint could not be built (bad URL, TLS set-up).
    #[error(transparent)]
    Client(#[from] coffer_client::ClientError),
}

impl S3BlobConfig {
    /// Parses `s3://BUCKET/PREFIX?endpoint=URL&region=R`: the prefix may be
    /// empty or have several segments; `region` defaults to `us-east-1`; query
    /// values may be percent-encoded. Anything else in the query is refused, so
    /// that a misspelt setting is not silently ignored.
    pub fn parse(url: &str) -> Result<Self, S3ConfigError> {
        let bad = |reason: &str| S3ConfigError::Url {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("the scheme must be s3://"))?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        if !is_bucket_name(bucket) {
            return Err(bad(
                "the bucket name must be 3-63 characters of a-z, 0-9, '.' and '-'",
            ));
        }
        let prefix = decode(prefix).ok_or_else(|| bad("the prefix is not valid UTF-8"))?;
        let prefix = prefix.trim_matches('/').to_owned();
        if prefix.split('/').any(str::is_empty) && !prefix.is_empty() {
            return Err(bad("the prefix has an empty segment ('//')"));
        }
        let (mut endpoint, mut region) = (None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode(value).ok_or_else(|| bad("a query value is not valid UTF-8"))?;
            let slot = match name {
                "endpoint" => &mut endpoint,
                "region" => &mut region,
                _ => return Err(bad(&format!("unknown setting {name:?}"))),
            };
            if slot.replace(value).is_some() {
                return Err(bad(&format!("{name} is given twice")));
            }
        }
        let endpoint = endpoint.ok_or_else(|| bad("endpoint=URL is required"))?;
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(bad("the endpoint must be an http:// or https:// URL"));
        }
        let region = region.unwrap_or_else(|| DEFAULT_REGION.to_owned());
        if region.is_empty() {
            return Err(bad("the region is empty"));
        }
        Ok(S3BlobConfig {
            bucket: bucket.to_owned(),
            prefix,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            region,
            part_size: DEFAULT_PART_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            list_page_size: None,
        })
    }

    /// Refuses settings the upstream would refuse later, mid-upload.
    pub(crate) fn validate(&self) -> Result<(), S3ConfigError> {
        if self.part_size < MIN_PART_SIZE {
            return Err(S3ConfigError::Setting(format!(
                "part size {} is below S3's minimum of {MIN_PART_SIZE} bytes",
                self.part_size
            )));
        }
        if self.list_page_size == Some(0) {
            return Err(S3ConfigError::Setting("list page size 0".into()));
        }
        Ok(())
    }

    /// The upstream key prefix blob ids follow: `PREFIX/`, or nothing.
    pub(crate) fn key_prefix(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }
}

impl FromStr for S3BlobConfig {
    type Err = S3ConfigError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        S3BlobConfig::parse(url)
    }
}

/// The URL form, as [`S3BlobConfig::parse`] reads it (for logs: it holds no secret).
impl fmt::Display for S3BlobConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let encode = |text: &str| utf8_percent_encode(text, NON_ALPHANUMERIC).to_string();
        write!(f, "s3://{}", self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        write!(
            f,
            "?endpoint={}&region={}",
            encode(&self.endpoint),
            encode(&self.region)
        )
    }
}

fn decode(text: &str) -> Option<String> {
    percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(|t| t.into_owned())
}

/// S3's bucket naming rule, loosely: 3-63 of lower-case letters, digits, `.`
/// and `-`, starting and ending with a letter or digit.
fn is_bucket_name(name: &str) -> bool {
    let edge_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && edge_ok(name.bytes().next())
        && edge_ok(name.bytes().last())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_form_parses() {
        let config = S3BlobConfig::parse(
            "s3://coffer-blobs/site-a/blobs?endpoint=http://10.0.0.5:9000&region=eu-west-3",
        )
        .expect("the documented form parses");
        assert_eq!(config.bucket, "coffer-blobs");
        assert_eq!(config.prefix, "site-a/blobs");
        assert_eq!(config.endpoint, "http://10.0.0.5:9000");
        assert_eq!(config.region, "eu-west-3");
        assert_eq!(config.part_size, DEFAULT_PART_SIZE);
        assert_eq!(config.key_prefix(), "site-a/blobs/");
    }

    #[test]
    fn defaults_and_encodings() {
        let config = S3BlobConfig::parse("s3://bkt?endpoint=https%3A%2F%2Fs3.example.net%2F")
            .expect("a bare bucket with an encoded endpoint parses");
        assert_eq!(config.prefix, "");
        assert_eq!(config.key_prefix(), "");
        assert_eq!(config.endpoint, "https://s3.example.net");
        assert_eq!(config.region, DEFAULT_REGION);
        let trailing = S3BlobConfig::parse("s3://bkt/p/?endpoint=http://h:1")
            .expect("a trailing slash on the prefix is dropped");
        assert_eq!(trailing.prefix, "p");
    }

    #[test]
    fn display_round_trips() {
        let config = S3BlobConfig::parse("s3://bkt/a/b?endpoint=http://127.0.0.1:9000&region=r1")
            .expect("parses");
        let again = S3BlobConfig::parse(&config.to_string()).expect("its display parses");
        assert_eq!(again, config);
    }

    #[test]
    fn malformed_urls_are_refused_with_a_reason() {
        for (url, reason) in [
            ("http://bkt?endpoint=http://h", "scheme"),
            ("s3://Bad_Bucket?endpoint=http://h", "bucket name"),
            ("s3://ab?endpoint=http://h", "bucket name"),
            ("s3://bkt/a//b?endpoint=http://h", "empty segment"),
            ("s3://bkt/p", "endpoint=URL is required"),
            ("s3://bkt/p?endpoint=ftp://h", "http://"),
            ("s3://bkt/p?endpoint=http://h&regoin=x", "unknown setting"),
            ("s3://bkt/p?endpoint=http://h&endpoint=http://i", "twice"),
            ("s3://bkt/p?endpoint=http://h&region=", "region is empty"),
        ] {
            let error = S3BlobConfig::parse(url).expect_err(url).to_string();
            assert!(error.contains(reason), "{url}: {error}");
        }
    }

    #[test]
    fn small_parts_are_refused() {
        let mut config = S3BlobConfig::parse("s3://bkt?endpoint=http://h").expect("parses");
        config.part_size = MIN_PART_SIZE - 1;
        assert!(config.validate().is_err());
        config.part_size = MIN_PART_SIZE;
        assert!(config.validate().is_ok());
    }
}
