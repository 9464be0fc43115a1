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
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if is_meta {
            user_bytes += name.len() - USER_META_PREFIX.len() + value.len();
        }
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
