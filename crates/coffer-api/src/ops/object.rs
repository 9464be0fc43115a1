//! PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, and the
//! object metadata rules they share with copies and multipart uploads.

use coffer_auth::sigv4::Payload;
use coffer_store::ObjectRecord;
use http::{HeaderMap, Response, StatusCode};
use hyper::body::Incoming;

use super::{
    authorized_bucket, blocking, empty_response, http_date, now_ms, parse_http_date, quoted,
    small_body, xml_response,
};
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::object_io::{self, BodyRules, BodySource, StagedBody};
use crate::request::{ApiRequest, Dialect};
use crate::sse;
use crate::state::AppState;
use crate::xml;

/// Longest key S3 accepts, in UTF-8 bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// Longest key OSS accepts, in UTF-8 bytes.
const OSS_MAX_KEY_LEN: usize = 1023;
/// Largest total of user metadata names and values, in bytes (S3).
pub const MAX_USER_METADATA: usize = 2048;
/// The same for OSS, which allows 8 KB.
const OSS_MAX_USER_METADATA: usize = 8 * 1024;
const USER_META_PREFIX: &str = "x-amz-meta-";

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

pub async fn put_object(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let key = req.key()?.to_owned();
    validate_key(req.dialect, &key)?;
    let bucket = authorized_bucket(state, req).await?;
    let mut headers = stored_headers(&req.headers, req.dialect)?;
    let rules = BodyRules::from_headers(&req.headers, payload)?;
    let sealing = sse::seal_new(
        state,
        req,
        sse::requested(req, &bucket)?,
        &bucket.name,
        &key,
    )?;
    if let Some(sealing) = &sealing {
        headers.extend_from_slice(sealing.stored_headers());
    }
    let target = sse::Sealing::single_part_target(sealing.as_ref());
    let staged =
        object_io::ingest(&state.store, body, rules, target, req.body_read_timeout).await?;
    let envelope = sealing
        .as_ref()
        .map(|s| s.single_part_envelope(staged.size))
        .transpose()?;
    let etag = staged.etag();
    let checksum = staged
        .checksum
        .as_ref()
        .map(|(algorithm, value)| (algorithm.name().to_owned(), value.clone()));
    let record = ObjectRecord {
        size: staged.size,
        etag: etag.clone(),
        last_modified_ms: now_ms(),
        owner: req.principal.name().to_owned(),
        headers,
        checksum: checksum.clone(),
        extents: vec![staged.extent(None)],
        envelope,
        crc64: Some(staged.crc64),
    };
    object_io::commit_staged(&state.store, vec![staged.blob.clone()], move |store| {
        store.put_object(&bucket.name, &key, record)
    })
    .await?;

    let sse_headers = sealing.map(|s| s.headers(req.dialect)).unwrap_or_default();
    upload_response(req, &staged, sse_headers)
}

/// The answer to a body upload (PutObject, UploadPart): the ETag and the
/// integrity values the client may check.
pub fn upload_response(
    req: &ApiRequest,
    staged: &StagedBody,
    sse_headers: Vec<(String, String)>,
) -> ApiResult<Response<ResponseBody>> {
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header(http::header::ETAG, quoted(&staged.etag()));
    for (name, value) in sse_headers {
        response = response.header(name, value);
    }
    if let Some((algorithm, value)) = &staged.checksum {
        response = response.header(algorithm.header_name(), value);
    }
    if req.dialect == Dialect::Oss {
        response = response.header(CRC64_HEADER, staged.crc64.to_string());
    }
    response
        .body(ResponseBody::Empty)
        .map_err(|e| ApiError::internal("building a response", e))
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

/// A byte range of an object, resolved against its size.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    Whole,
    Part(std::ops::Range<u64>),
}

/// Parses a `Range` header against an object of `size` bytes. A header
/// that is not a single `bytes=` range is ignored, as S3 does; a range
/// that cannot be satisfied is InvalidRange.
pub fn parse_range(header: Option<&str>, size: u64) -> ApiResult<RangeRequest> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(RangeRequest::Whole);
    };
    if spec.contains(',') {
        return Ok(RangeRequest::Whole);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(RangeRequest::Whole);
    };
    let unsatisfiable = || {
        ApiError::new(
            ErrorCode::InvalidRange,
            "The requested range is not satisfiable",
        )
    };
    let (first, last) = (first.trim(), last.trim());
    let range = match (first.is_empty(), last.is_empty()) {
        (true, true) => return Ok(RangeRequest::Whole),
        (true, false) => {
            let Ok(suffix) = last.parse::<u64>() else {
                return Ok(RangeRequest::Whole);
            };
            if suffix == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            size.saturating_sub(suffix)..size
        }
        (false, _) => {
            let Ok(start) = first.parse::<u64>() else {
                return Ok(RangeRequest::Whole);
            };
            let end = if last.is_empty() {
                size
            } else {
                match last.parse::<u64>() {
                    Ok(end) if end >= start => end.saturating_add(1).min(size),
                    _ => return Ok(RangeRequest::Whole),
                }
            };
            if start >= size {
                return Err(unsatisfiable());
            }
            start..end
        }
    };
    Ok(RangeRequest::Part(range))
}

/// The outcome of conditional headers (RFC 7232 order: If-Match, else
/// If-Unmodified-Since; then If-None-Match, else If-Modified-Since).
#[derive(Debug, PartialEq, Eq)]
pub enum Precondition {
    Proceed,
    NotModified,
}

/// Evaluates the four conditional headers, read through `header` (plain
/// names for GET/HEAD, or their `copy-source-` variants for copies).
pub fn check_preconditions<'a>(
    header: impl Fn(&str) -> Option<&'a str>,
    record: &ObjectRecord,
) -> ApiResult<Precondition> {
    let etag_matches = |list: &str| {
        list.split(',')
            .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
            .any(|t| t == "*" || t == record.etag)
    };
    let modified_after = |text: &str| {
        parse_http_date(text).map(|since| record.last_modified_ms / 1000 > since / 1000)
    };
    let failed = || {
        ApiError::new(
            ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        )
    };
    if let Some(list) = header("if-match") {
        if !etag_matches(list) {
            return Err(failed());
        }
    } else if let Some(since) = header("if-unmodified-since")
        && modified_after(since) == Some(true)
    {
        return Err(failed());
    }
    if let Some(list) = header("if-none-match") {
        if etag_matches(list) {
            return Ok(Precondition::NotModified);
        }
    } else if let Some(since) = header("if-modified-since")
        && modified_after(since) == Some(false)
    {
        return Ok(Precondition::NotModified);
    }
    Ok(Precondition::Proceed)
}

pub async fn get_object(
    state: &AppState,
    req: &ApiRequest,
    head_only: bool,
) -> ApiResult<Response<ResponseBody>> {
    let key = req.key()?.to_owned();
    let bucket = authorized_bucket(state, req).await?;
    let store = state.store.clone();
    let (bucket_name, key_name) = (bucket.name.clone(), key.clone());
    let record = blocking(move || store.object(&bucket_name, &key_name)).await?;
    let name = sse::ObjectName {
        bucket: &bucket.name,
        key: &key,
        headers: &record.headers,
    };
    let opening = sse::open_stored(state, req, record.envelope.as_deref(), name, false)?;
    if opening
        .as_ref()
        .is_some_and(|o| o.envelope.plain_size() != record.size)
    {
        return Err(sse::integrity_error());
    }

    let part_number = req.query.number("partNumber", 1..=10_000)?;
    let mut range = parse_range(req.header("range"), record.size)?;
    if let Some(n) = part_number {
        range = part_range(&part_sizes(&record, opening.as_ref()), n as u32)?;
    }
    let mut response = Response::builder();
    for (name, value) in opening.iter().flat_map(|o| o.headers(req.dialect)) {
        response = response.header(name, value);
    }
    let meta_prefix = req.dialect.header("meta-");
    for (name, value) in &record.headers {
        match name.strip_prefix(USER_META_PREFIX) {
            Some(suffix) => {
                response = response.header(format!("{meta_prefix}{suffix}"), value.as_str())
            }
            None => response = response.header(name.as_str(), value.as_str()),
        }
    }
    response = response
        .header(http::header::ETAG, quoted(&record.etag))
        .header(
            http::header::LAST_MODIFIED,
            http_date(record.last_modified_ms),
        )
        .header(http::header::ACCEPT_RANGES, "bytes");
    if !record.headers.iter().any(|(n, _)| n == "content-type") {
        response = response.header(http::header::CONTENT_TYPE, "binary/octet-stream");
    }
    match req.dialect {
        Dialect::S3 => {
            if object_type(&record) == "Multipart" {
                response = response.header("x-amz-mp-parts-count", record.extents.len());
            }
        }
        Dialect::Oss => {
            response = response
                .header("x-oss-object-type", object_type(&record))
                .header("x-oss-storage-class", req.storage_class());
        }
    }
    for (param, header) in [
        ("response-content-type", "content-type"),
        ("response-content-language", "content-language"),
        ("response-expires", "expires"),
        ("response-cache-control", "cache-control"),
        ("response-content-disposition", "content-disposition"),
        ("response-content-encoding", "content-encoding"),
    ] {
        if let Some(value) = req.query.get(param)
            && let Some(headers) = response.headers_mut()
            && let Ok(value) = http::HeaderValue::from_str(value)
        {
            headers.insert(header, value);
        }
    }

    match check_preconditions(|name| req.header(name), &record)? {
        Precondition::Proceed => {}
        Precondition::NotModified => {
            return response
                .status(StatusCode::NOT_MODIFIED)
                .body(ResponseBody::Empty)
                .map_err(|e| ApiError::internal("building a response", e));
        }
    }

    let (status, span) = match range {
        RangeRequest::Whole => (StatusCode::OK, 0..record.size),
        RangeRequest::Part(span) => {
            response = response.header(
                http::header::CONTENT_RANGE,
                format!(
                    "bytes {}-{}/{}",
                    span.start,
                    span.end.saturating_sub(1),
                    record.size
                ),
            );
            (StatusCode::PARTIAL_CONTENT, span)
        }
    };
    if status == StatusCode::OK
        && req.dialect == Dialect::Oss
        && let Some(crc64) = record.crc64
    {
        response = response.header(CRC64_HEADER, crc64.to_string());
    }
    if status == StatusCode::OK
        && req.header("x-amz-checksum-mode") == Some("ENABLED")
        && let Some((algorithm, value)) = &record.checksum
    {
        response = response.header(
            format!("x-amz-checksum-{}", algorithm.to_ascii_lowercase()),
            value,
        );
    }
    let length = span.end - span.start;
    response = response
        .status(status)
        .header(http::header::CONTENT_LENGTH, length);
    let body = if head_only {
        ResponseBody::Empty
    } else {
        let source = BodySource {
            extents: record.extents,
            opening,
        };
        object_io::stream_range(&state.store, source, span).await?
    };
    response
        .body(body)
        .map_err(|e| ApiError::internal("building a response", e))
}

/// The plaintext size of each part of an object, in order.
fn part_sizes(record: &ObjectRecord, opening: Option<&sse::Opening>) -> Vec<u64> {
    match opening {
        Some(opening) => opening
            .envelope
            .parts
            .iter()
            .map(|p| p.plain_size)
            .collect(),
        None => record.extents.iter().map(|e| e.size).collect(),
    }
}

/// The byte range of part `n` of a multipart object (`?partNumber=`).
fn part_range(sizes: &[u64], n: u32) -> ApiResult<RangeRequest> {
    if sizes.len() <= 1 && n == 1 {
        return Ok(RangeRequest::Whole);
    }
    let mut start = 0;
    for (i, size) in sizes.iter().enumerate() {
        if i + 1 == n as usize {
            return Ok(RangeRequest::Part(start..start + size));
        }
        start += size;
    }
    Err(ApiError::new(
        ErrorCode::InvalidPartNumber,
        "The requested partnumber is not satisfiable",
    ))
}

pub async fn delete_object(
    state: &AppState,
    req: &ApiRequest,
) -> ApiResult<Response<ResponseBody>> {
    let key = req.key()?.to_owned();
    let bucket = authorized_bucket(state, req).await?;
    let store = state.store.clone();
    blocking(move || store.delete_object(&bucket.name, &key)).await?;
    empty_response(StatusCode::NO_CONTENT)
}

pub async fn delete_objects(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let body = small_body(req, body, payload).await?;
    let request: xml::DeleteRequest = xml::parse(&body)?;
    if request.objects.len() > 1000 {
        return Err(ApiError::malformed_xml());
    }
    let store = state.store.clone();
    let keys: Vec<String> = request.objects.into_iter().map(|o| o.key).collect();
    let outcomes = blocking(move || {
        Ok(keys
            .into_iter()
            .map(|key| {
                let outcome = if key.len() > MAX_KEY_LEN {
                    Err(ErrorCode::KeyTooLongError)
                } else {
                    store
                        .delete_object(&bucket.name, &key)
                        .map(|_| ())
                        .map_err(|_| ErrorCode::InternalError)
                };
                (key, outcome)
            })
            .collect::<Vec<_>>())
    })
    .await?;
    let url_encoded = xml::url_encoding(req)?;
    let mut w = req.xml("DeleteResult");
    if url_encoded {
        w.elem("EncodingType", "url");
    }
    for (key, outcome) in outcomes {
        match outcome {
            Ok(()) if request.quiet => {}
            Ok(()) => {
                w.start("Deleted")
                    .elem("Key", xml::encode_key(&key, url_encoded))
                    .end();
            }
            Err(code) => {
                w.start("Error")
                    .elem("Key", xml::encode_key(&key, url_encoded))
                    .elem("Code", code.s3_code())
                    .elem("Message", "The object could not be deleted")
                    .end();
            }
        }
    }
    xml_response(StatusCode::OK, w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range(Some("bytes=0-9"), 100).ok(), Some(Part(0..10)));
        assert_eq!(
            parse_range(Some("bytes=90-200"), 100).ok(),
            Some(Part(90..100))
        );
        assert_eq!(parse_range(Some("bytes=5-"), 100).ok(), Some(Part(5..100)));
        assert_eq!(parse_range(Some("bytes=-5"), 100).ok(), Some(Part(95..100)));
        assert_eq!(
            parse_range(Some("bytes=-500"), 100).ok(),
            Some(Part(0..100))
        );
        assert_eq!(parse_range(None, 100).ok(), Some(Whole));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100).ok(), Some(Whole));
        assert_eq!(parse_range(Some("bytes=9-3"), 100).ok(), Some(Whole));
        assert_eq!(parse_range(Some("items=0-1"), 100).ok(), Some(Whole));
        assert_eq!(parse_range(Some("bytes=x-y"), 100).ok(), Some(Whole));
        assert!(parse_range(Some("bytes=100-"), 100).is_err());
        assert!(parse_range(Some("bytes=0-0"), 0).is_err());
        assert!(parse_range(Some("bytes=-0"), 100).is_err());
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
