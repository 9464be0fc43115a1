//! What the two Alibaba Cloud OSS signature schemes ([`crate::oss_v1`],
//! [`crate::oss_v4`]) share: the request view and the header helpers.
//!
//! Both sign the bucket even when it is not in the path (virtual-host or
//! CNAME addressing), so the caller resolves the addressing first and hands
//! over the bucket and the decoded key.

use http::HeaderMap;

/// The parts of a request that the OSS schemes cover.
#[derive(Debug, Clone, Copy)]
pub struct OssRequest<'a> {
    /// The HTTP method, e.g. `PUT`.
    pub method: &'a str,
    /// The bucket, from the path (path style) or the host (virtual host,
    /// CNAME); `None` for service operations such as ListBuckets.
    pub bucket: Option<&'a str>,
    /// The object key, percent-decoded (`dir/a b+c.txt`); `None` or `""` for
    /// bucket operations. Ignored without a bucket.
    pub key: Option<&'a str>,
    /// The query string as received, without the `?`.
    pub raw_query: &'a str,
    /// The request headers.
    pub headers: &'a HeaderMap,
}

impl OssRequest<'_> {
    /// The resource path both schemes sign, unencoded: `/bucket/key`,
    /// `/bucket/` for a bucket operation, `/` without a bucket.
    pub(crate) fn resource_path(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(b'/');
        if let Some(bucket) = self.bucket {
            out.extend_from_slice(bucket.as_bytes());
            out.push(b'/');
            out.extend_from_slice(self.key.unwrap_or("").as_bytes());
        }
        out
    }
}

/// Appends every value of `name`, each with leading and trailing spaces and
/// tabs removed, joined by `,`. Returns whether the header is present.
pub(crate) fn push_trimmed_values(headers: &HeaderMap, name: &str, out: &mut Vec<u8>) -> bool {
    let mut present = false;
    for value in headers.get_all(name) {
        if present {
            out.push(b',');
        }
        present = true;
        out.extend_from_slice(&signed_value(trim(value.as_bytes())));
    }
    present
}

/// A header value as a client signed it. Python clients (oss2, the OSS v2
/// SDK) sign the text's UTF-8 but send it through `http.client`, which
/// writes Latin-1: a value that is not UTF-8 is read back as the Latin-1
/// text it was and signed as that text's UTF-8. UTF-8 values (botocore
/// sends non-ASCII as UTF-8) are signed as they came.
pub(crate) fn signed_value(value: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match std::str::from_utf8(value) {
        Ok(_) => std::borrow::Cow::Borrowed(value),
        Err(_) => std::borrow::Cow::Owned(
            value
                .iter()
                .map(|&b| char::from(b))
                .collect::<String>()
                .into_bytes(),
        ),
    }
}

pub(crate) fn trim(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_values_are_signed_as_their_text() {
        assert_eq!(
            &*signed_value(b"Hello World\xe9"),
            "Hello World\u{e9}".as_bytes()
        );
        assert_eq!(
            &*signed_value("caf\u{e9}".as_bytes()),
            "caf\u{e9}".as_bytes()
        );
        assert_eq!(&*signed_value(b"ascii"), b"ascii");
    }

    #[test]
    fn resource_paths() {
        let headers = HeaderMap::new();
        let mut req = OssRequest {
            method: "GET",
            bucket: None,
            key: Some("ignored"),
            raw_query: "",
            headers: &headers,
        };
        assert_eq!(req.resource_path(), b"/");
        req.bucket = Some("bkt");
        req.key = None;
        assert_eq!(req.resource_path(), b"/bkt/");
        req.key = Some("dir/a b+c.txt");
        assert_eq!(req.resource_path(), b"/bkt/dir/a b+c.txt");
    }

    #[test]
    fn trimming() {
        assert_eq!(trim(b" \t a b \t"), b"a b");
        assert_eq!(trim(b"   "), b"");
        assert_eq!(trim(b""), b"");
    }
}
