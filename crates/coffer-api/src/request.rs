//! Turning an HTTP request into what the S3 operations work on: which
//! bucket, which key, which query parameters, who asked.

use std::sync::{Arc, Mutex};

use coffer_store::BucketRecord;
use http::{HeaderMap, Method};
use percent_encoding::percent_decode_str;

use crate::error::{ApiError, ApiResult};
use crate::state::Principal;

/// Decoded query parameters, in the order they came.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Decodes a raw query string with form rules (`+` is a space), which is
    /// what S3 itself does and what the OSS SDKs rely on.
    pub fn parse(raw: &str) -> ApiResult<Self> {
        let mut params = Vec::new();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            params.push((form_decode(name)?, form_decode(value)?));
        }
        Ok(Self(params))
    }

    /// The first value of parameter `name`, empty if it came without one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether parameter `name` is present, with or without a value (`?uploads`).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// A parameter that must be an integer in `range` when present.
    pub fn number(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> ApiResult<Option<i64>> {
        // An empty value means absent: the OSS SDKs send `part-number-marker=`.
        let Some(text) = self.get(name).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        match text.parse::<i64>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::invalid_argument(format!(
                "Argument {name} must be an integer between {} and {}",
                range.start(),
                range.end()
            ))),
        }
    }

    /// Every parameter name, in request order, repeats included.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// Every (name, value) pair, decoded, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

fn form_decode(text: &str) -> ApiResult<String> {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::invalid_argument("Query parameters must be valid UTF-8"))
}

/// A percent-decoded path component. Keys are arbitrary UTF-8.
pub fn path_decode(text: &str) -> ApiResult<String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::invalid_argument("Object keys must be valid UTF-8"))
}

/// Where the request points: the bucket and key, from the path (path style)
/// or from the Host header (virtual-host style).
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    /// The bucket, decoded; `None` for the service (ListBuckets).
    pub bucket: Option<String>,
    /// The key, decoded; `None` for the bucket itself.
    pub key: Option<String>,
}

/// The target of a request for `raw_path` with `host`: virtual-host style when `host` is
/// `<bucket>.<domain>` for one of `domains`, path style otherwise.
pub fn resolve_target(raw_path: &str, host: Option<&str>, domains: &[String]) -> ApiResult<Target> {
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    if let Some(bucket) = host.and_then(|h| virtual_host_bucket(h, domains)) {
        let key = (!path.is_empty()).then(|| path_decode(path)).transpose()?;
        return Ok(Target {
            bucket: Some(bucket),
            key,
        });
    }
    if path.is_empty() {
        return Ok(Target {
            bucket: None,
            key: None,
        });
    }
    let (bucket, key) = match path.split_once('/') {
        Some((bucket, key)) => (bucket, (!key.is_empty()).then_some(key)),
        None => (path, None),
    };
    Ok(Target {
        bucket: Some(path_decode(bucket)?),
        key: key.map(path_decode).transpose()?,
    })
}

fn virtual_host_bucket(host: &str, domains: &[String]) -> Option<String> {
    let name = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    domains.iter().find_map(|domain| {
        let bucket = name.strip_suffix(domain.as_str())?.strip_suffix('.')?;
        (!bucket.is_empty()).then(|| bucket.to_ascii_lowercase())
    })
}

/// The protocol dialect a request speaks; its response speaks the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Amazon S3: `x-amz-*` headers, SigV4, S3 error XML.
    S3,
    /// Alibaba OSS: `x-oss-*` headers, OSS V1/V4 signatures, OSS error XML.
    Oss,
}

impl Dialect {
    /// The vendor prefix of this dialect's headers.
    pub fn prefix(self) -> &'static str {
        match self {
            Dialect::S3 => "x-amz-",
            Dialect::Oss => "x-oss-",
        }
    }

    /// The smallest size of every part but the last of a multipart upload:
    /// 5 MiB on S3, 100 KB on OSS.
    pub fn min_part_size(self) -> u64 {
        match self {
            Dialect::S3 => 5 * 1024 * 1024,
            Dialect::Oss => 100 * 1024,
        }
    }

    /// `x-amz-<suffix>` or `x-oss-<suffix>`.
    pub fn header(self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix())
    }

    /// The code of `error` as this dialect names it.
    pub fn error_code(self, error: &ApiError) -> &'static str {
        match self {
            Dialect::S3 => error.code.s3_code(),
            Dialect::Oss => error.code.oss_code(),
        }
    }
}

/// An authenticated request, ready for its operation.
pub struct ApiRequest {
    /// The id sent back in `x-amz-request-id` / `x-oss-request-id` and error documents.
    pub request_id: String,
    /// S3 or OSS: how the request is read and the response written.
    pub dialect: Dialect,
    /// The HTTP method.
    pub method: Method,
    /// The target bucket, if any.
    pub bucket: Option<String>,
    /// The target key, if any.
    pub key: Option<String>,
    /// The decoded query parameters.
    pub query: Query,
    /// The request's headers.
    pub headers: HeaderMap,
    /// Who signed the request.
    pub principal: Principal,
    /// How it was signed; `None` when unsigned.
    pub scheme: Option<coffer_auth::Scheme>,
    /// A browser form upload: signed (if at all) in its body, `s3:authType` POST.
    pub form_upload: bool,
    /// What `authz` authorized (set by `ops::dispatch` before the operation runs).
    pub authorized: Option<Authorized>,
    /// The authorization decisions taken, for the access log.
    pub decisions: DecisionLog,
    /// The client's address (`aws:SourceIp`).
    pub peer: std::net::SocketAddr,
    /// What the connection negotiated; `None` over plain HTTP.
    pub tls: Option<crate::tls::TlsInfo>,
    /// Longest silence allowed in the middle of its body.
    pub body_read_timeout: std::time::Duration,
}

impl ApiRequest {
    /// Header `name`, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The dialect's variant of a vendor header: `vendor_header("copy-source")`
    /// reads `x-amz-copy-source` or `x-oss-copy-source`.
    pub fn vendor_header(&self, suffix: &str) -> Option<&str> {
        self.header(&self.dialect.header(suffix))
    }

    /// Whether the request asked for `encoding-type=url` (the only type
    /// there is) for the keys in a listing.
    pub fn url_encoding(&self) -> ApiResult<bool> {
        match self.param("encoding-type") {
            None => Ok(false),
            Some(t) if t.eq_ignore_ascii_case("url") => Ok(true),
            Some(_) => Err(ApiError::invalid_argument(
                "Invalid Encoding Method specified in Request",
            )),
        }
    }

    /// A response document in this request's dialect (S3 documents carry
    /// the S3 namespace; OSS documents carry none, and its SDKs expect none).
    pub fn xml(&self, root: &'static str) -> crate::xml::XmlWriter {
        match self.dialect {
            Dialect::S3 => crate::xml::XmlWriter::new(root),
            Dialect::Oss => crate::xml::XmlWriter::bare(root),
        }
    }

    /// The storage class as this dialect writes it.
    pub fn storage_class(&self) -> &'static str {
        match self.dialect {
            Dialect::S3 => "STANDARD",
            Dialect::Oss => "Standard",
        }
    }

    /// A query parameter, with an empty value treated as absent (the OSS
    /// SDKs send `marker=`, `delimiter=`… on every list request).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).filter(|v| !v.is_empty())
    }

    /// The target bucket; `NoSuchBucket` for a request to the service.
    pub fn bucket(&self) -> ApiResult<&str> {
        self.bucket.as_deref().ok_or_else(ApiError::no_such_bucket)
    }

    /// The target key; `NoSuchKey` for a request to a bucket.
    pub fn key(&self) -> ApiResult<&str> {
        self.key.as_deref().ok_or_else(ApiError::no_such_key)
    }

    /// The resource named in error responses.
    pub fn resource(&self) -> String {
        match (&self.bucket, &self.key) {
            (Some(b), Some(k)) => format!("/{b}/{k}"),
            (Some(b), None) => format!("/{b}"),
            _ => "/".to_owned(),
        }
    }
}

/// What an authorized request hands its operation.
#[derive(Debug, Clone)]
pub struct Authorized {
    /// The target bucket, as read for the decision.
    pub bucket: BucketRecord,
    /// Whether the request asked to bypass GOVERNANCE retention and may
    /// (`s3:BypassGovernanceRetention`).
    pub bypass_governance: bool,
}

/// The decisions taken for one request, for its access-log line: shared between the request
/// and the server's record of it.
#[derive(Debug, Clone, Default)]
pub struct DecisionLog(Arc<Mutex<Vec<String>>>);

impl DecisionLog {
    /// Records one decision (and logs it at debug level).
    pub(crate) fn note(&self, request_id: &str, decision: String) {
        tracing::debug!(request_id, authz = %decision, "authorization");
        if let Ok(mut notes) = self.0.lock() {
            // DeleteObjects notes one decision per key: keep the line bounded.
            if notes.len() < 8 {
                notes.push(decision);
            }
        }
    }

    /// The decisions, `; `-joined; `None` when every one was "owner or root".
    pub fn text(&self) -> Option<String> {
        let notes = self.0.lock().ok()?;
        (!notes.is_empty()).then(|| notes.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains() -> Vec<String> {
        vec!["localhost".into(), "s3.example.com".into()]
    }

    #[test]
    fn path_style() {
        let t = resolve_target(
            "/bkt/dir%2Fa%20b%2Bc.txt",
            Some("127.0.0.1:9000"),
            &domains(),
        )
        .expect("ok");
        assert_eq!(t.bucket.as_deref(), Some("bkt"));
        assert_eq!(t.key.as_deref(), Some("dir/a b+c.txt"));
        let t = resolve_target("/bkt/", Some("127.0.0.1"), &domains()).expect("ok");
        assert_eq!(
            t,
            Target {
                bucket: Some("bkt".into()),
                key: None
            }
        );
        let t = resolve_target("/bkt/a//b/", None, &domains()).expect("ok");
        assert_eq!(t.key.as_deref(), Some("a//b/"));
        let t = resolve_target("/", None, &domains()).expect("ok");
        assert_eq!(
            t,
            Target {
                bucket: None,
                key: None
            }
        );
    }

    #[test]
    fn virtual_host_style() {
        let t = resolve_target("/k%20y", Some("bkt.localhost:9000"), &domains()).expect("ok");
        assert_eq!(t.bucket.as_deref(), Some("bkt"));
        assert_eq!(t.key.as_deref(), Some("k y"));
        let t = resolve_target("/", Some("photos.s3.example.com"), &domains()).expect("ok");
        assert_eq!(
            t,
            Target {
                bucket: Some("photos".into()),
                key: None
            }
        );
        // The bare domain is path style.
        let t = resolve_target("/b/k", Some("localhost:9000"), &domains()).expect("ok");
        assert_eq!(t.bucket.as_deref(), Some("b"));
    }

    #[test]
    fn query_uses_form_decoding() {
        let q = Query::parse("prefix=v4%2Fx+y&uploads&max-keys=5").expect("ok");
        assert_eq!(q.get("prefix"), Some("v4/x y"));
        assert!(q.has("uploads"));
        assert_eq!(q.number("max-keys", 0..=1000).expect("ok"), Some(5));
        assert!(q.number("prefix", 0..=1).is_err());
        assert!(Query::parse("a=%ff").is_err());
    }
}
