//! The object rules that PutObject, CopyObject and the multipart
//! operations share: key length, stored headers and metadata limits, the
//! OSS object type and CRC-64 header.

use coffer_store::ObjectRecord;
use http::HeaderMap;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::Dialect;

/// Longest key S3 accepts, in UTF-8 bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// Longest key OSS accepts, in UTF-8 bytes.
const OSS_MAX_KEY_LEN: usize = 1023;
/// Largest total of user metadata names and values, in bytes (S3).
pub const MAX_USER_METADATA: usize = 2048;
/// The same for OSS, which allows 8 KB.
const OSS_MAX_USER_METADATA: usize = 8 * 1024;
pub const USER_META_PREFIX: &str = "x-amz-meta-";

/// Standard headers stored with an object and returned on GET/HEAD.
const STORED_HEADERS: &[&str] = &[
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
    "x-amz-website-redirect-location",
];

/// Refuses a key longer than the dialect allows for a new object (OSS
/// calls the error InvalidObjectName, see [`ErrorCode::oss_code`]).
pub fn validate_key(dialect: Dialect, key: &str) -> ApiResult<()> {
    let limit = match dialect {
        Dialect::S3 => MAX_KEY_LEN,
        Dialect::Oss => OSS_MAX_KEY_LEN,
    };
    if key.len() > limit {
        return Err(ApiError::new(
            ErrorCode::KeyTooLongError,
            "Your key is too long",
        ));
    }
    Ok(())
}

/// The headers of a request that become part of the object: the standard
/// content headers and `x-amz-meta-*`, within S3's metadata size limit.
/// User metadata is stored under its S3 name (`x-amz-meta-*`) whatever
/// the dialect that wrote it, and returned under the reader's dialect.
pub fn stored_headers(headers: &HeaderMap, dialect: Dialect) -> ApiResult<Vec<(String, String)>> {
    let meta_prefix = dialect.header("meta-");
    let mut stored = Vec::new();
    let mut user_bytes = 0usize;
    for (name, value) in headers {
        let meta_name = name
            .as_str()
            .strip_prefix(meta_prefix.as_str())
            .map(|suffix| format!("{USER_META_PREFIX}{suffix}"));
        let is_meta = meta_name.is_some();
        let name = meta_name.as_deref().unwrap_or(name.as_str());
        if !is_meta && !STORED_HEADERS.contains(&name) {
            continue;
        }
        if is_meta {
            user_bytes += name.len() - USER_META_PREFIX.len() + value.len();
        }
        let value = stored_value(value.as_bytes());
        let value = if name == "content-encoding" {
            // aws-chunked is transport framing, never part of the object.
            let kept: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("aws-chunked"))
                .collect();
            if kept.is_empty() {
                continue;
            }
            kept.join(",")
        } else {
            value
        };
        stored.push((name.to_owned(), value));
    }
    let limit = match dialect {
        Dialect::S3 => MAX_USER_METADATA,
        Dialect::Oss => OSS_MAX_USER_METADATA,
    };
    if user_bytes > limit {
        return Err(ApiError::new(
            ErrorCode::MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size.",
        ));
    }
    Ok(stored)
}

/// Marks a stored header value kept as Latin-1 characters, one per byte
/// (NUL never occurs in a header value, so it cannot begin a UTF-8 one).
const RAW_BYTES_MARK: char = '\0';

/// A header value as an object record keeps it, so that it is answered
/// byte for byte as it came: UTF-8 (what botocore sends for non-ASCII
/// metadata) is kept as the text it is; any other bytes (what `http.client`
/// sends for Latin-1 text, as oss2 and the OSS v2 SDK do) are kept one
/// character per byte behind [`RAW_BYTES_MARK`].
pub fn stored_value(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => std::iter::once(RAW_BYTES_MARK)
            .chain(bytes.iter().map(|&b| char::from(b)))
            .collect(),
    }
}

/// The bytes of a stored header value ([`stored_value`]'s inverse).
pub fn value_bytes(stored: &str) -> Vec<u8> {
    match stored.strip_prefix(RAW_BYTES_MARK) {
        // Every char after the mark came from one byte, so fits in a u8.
        Some(raw) => raw.chars().map(|c| c as u32 as u8).collect(),
        None => stored.as_bytes().to_vec(),
    }
}

/// A stored header value as the response header that carries it back;
/// `None` for one no header can carry (never stored by Coffer itself).
pub fn header_value(stored: &str) -> Option<http::HeaderValue> {
    http::HeaderValue::from_bytes(&value_bytes(stored)).ok()
}

/// OSS's object type: `Multipart` for objects assembled from parts.
pub fn object_type(record: &ObjectRecord) -> &'static str {
    if record.extents.iter().any(|e| e.part_number.is_some()) {
        "Multipart"
    } else {
        "Normal"
    }
}

/// The OSS SDKs' end-to-end integrity header: the body's CRC-64/XZ in decimal.
pub const CRC64_HEADER: &str = "x-oss-hash-crc64ecma";

#[cfg(test)]
mod tests {
    use super::*;

    /// Header values come back byte for byte: UTF-8 as botocore sends it,
    /// Latin-1 bytes as `http.client` (oss2, the OSS v2 SDK) sends them.
    #[test]
    fn header_bytes_round_trip() {
        for bytes in [
            &b"Hello World"[..],
            "Hello World\u{e9}".as_bytes(),
            b"Hello World\xe9",
            b"\xff\xfe \x80",
            "\u{65e5}\u{672c} attachment; filename=\"\u{e9}.txt\"".as_bytes(),
        ] {
            let stored = stored_value(bytes);
            assert_eq!(value_bytes(&stored), bytes, "{bytes:?}");
            assert_eq!(
                header_value(&stored).expect("a header value").as_bytes(),
                bytes
            );
        }
        assert_eq!(stored_value(b"plain"), "plain");
        assert_eq!(stored_value("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(stored_value(b"caf\xe9"), "\0caf\u{e9}");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-oss-meta-x",
            http::HeaderValue::from_bytes(b"Hello World\xe9").expect("obs-text"),
        );
        let stored = stored_headers(&headers, Dialect::Oss).expect("within limits");
        assert_eq!(value_bytes(&stored[0].1), b"Hello World\xe9");
    }

    #[test]
    fn metadata_limit_and_aws_chunked_stripped() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-meta-a", "x".repeat(100).parse().expect("valid"));
        headers.insert(
            "content-encoding",
            "aws-chunked,gzip".parse().expect("valid"),
        );
        headers.insert("x-amz-date", "20260101T000000Z".parse().expect("valid"));
        let stored = stored_headers(&headers, Dialect::S3).expect("within limits");
        assert!(stored.contains(&("content-encoding".into(), "gzip".into())));
        assert_eq!(stored.len(), 2);
        headers.insert("x-amz-meta-big", "y".repeat(2048).parse().expect("valid"));
        assert_eq!(
            stored_headers(&headers, Dialect::S3).err().map(|e| e.code),
            Some(ErrorCode::MetadataTooLarge)
        );
        // OSS allows 8 KB.
        let mut headers = HeaderMap::new();
        headers.insert("x-oss-meta-big", "y".repeat(4096).parse().expect("valid"));
        assert!(stored_headers(&headers, Dialect::Oss).is_ok());
        headers.insert("x-oss-meta-more", "z".repeat(4096).parse().expect("valid"));
        assert_eq!(
            stored_headers(&headers, Dialect::Oss)
                .err()
                .map(|e| e.oss_ec()),
            Some("0011-00000002")
        );
    }
}
