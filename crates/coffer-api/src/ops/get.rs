//! GetObject and HeadObject: ranges, part numbers and conditional
//! headers (which CopyObject shares).

use coffer_auth::amz_time::{format_http_date, parse_conditional_date};
use coffer_crypto::sealed::{Envelope, WrapKind};
use coffer_store::ObjectRecord;
use http::{Response, StatusCode};

use super::checksum::checksum_headers;
use super::object::{CRC64_HEADER, USER_META_PREFIX, header_value, object_type};
use super::object_tagging;
use super::{authorized_bucket, quoted, utc_of_ms, versioning};
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::object_io::{self, BodySource};
use crate::request::{ApiRequest, Dialect};
use crate::sse::{self, ResponseHeaders};
use crate::state::AppState;

/// A byte range of an object, resolved against its size.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// The whole object (no `Range`, or one the object's size makes whole).
    Whole,
    /// These plaintext bytes: a `206 Partial Content`.
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
        parse_conditional_date(text)
            .map(|since| record.last_modified_ms / 1000 > since.unix_timestamp())
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
    let which = versioning::requested_version(req)?;
    let record = versioning::read_version(state, req, &bucket, &key, which).await?;
    let name = coffer_keying::ObjectName {
        bucket: &bucket.name,
        key: &key,
        stored: &record.headers,
    };
    let protection =
        StoredProtection::read(state, req, record.envelope.as_deref(), name, head_only)?;
    if protection
        .envelope()
        .is_some_and(|envelope| envelope.plain_size() != record.size)
    {
        return Err(ApiError::integrity_check_failed());
    }

    let part_number = req
        .query
        .number("partNumber", 1..=10_000)?
        .map(|n| n as u32);
    let range = match part_number {
        None => parse_range(req.header("range"), record.size)?,
        Some(_) if req.header("range").is_some() => {
            return Err(ApiError::invalid_request(
                "Cannot specify both Range header and partNumber query parameter",
            ));
        }
        Some(n) => part_range(
            &part_sizes(&record, protection.envelope()),
            n,
            object_type(&record) == "Multipart",
        )?,
    };
    let mut response = Response::builder();
    for (name, value) in protection.headers(req.dialect) {
        response = response.header(name, value);
    }
    let meta_prefix = req.dialect.header("meta-");
    for (name, value) in &record.headers {
        let Some(value) = header_value(value) else {
            continue;
        };
        match name.strip_prefix(USER_META_PREFIX) {
            Some(suffix) => response = response.header(format!("{meta_prefix}{suffix}"), value),
            None => response = response.header(name.as_str(), value),
        }
    }
    response = response
        .header(http::header::ETAG, quoted(&record.etag))
        .header(
            http::header::LAST_MODIFIED,
            format_http_date(utc_of_ms(record.last_modified_ms)),
        )
        .header(http::header::ACCEPT_RANGES, "bytes");
    if let Some((name, value)) = object_tagging::count_header(req, &record) {
        response = response.header(name, value);
    }
    if let Some((name, value)) =
        versioning::version_header(req, &bucket, record.version_id.as_deref())
    {
        response = response.header(name, value);
    }
    for (name, value) in super::retention::response_headers(req, &bucket, &record) {
        response = response.header(name, value);
    }
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
    if req.header("x-amz-checksum-mode") == Some("ENABLED") {
        for (name, value) in answered_checksum(&record, part_number, status) {
            response = response.header(name, value);
        }
    }
    let length = span.end - span.start;
    response = response
        .status(status)
        .header(http::header::CONTENT_LENGTH, length);
    let body = if head_only {
        ResponseBody::Empty
    } else {
        let opening = match protection {
            StoredProtection::Plain => None,
            StoredProtection::Opened(opening) => Some(opening),
            StoredProtection::Described { .. } => {
                return Err(ApiError::internal(
                    "GetObject",
                    "an SSE-KMS object was described, not opened, for a GET",
                ));
            }
        };
        let source = BodySource {
            extents: record.extents,
            opening,
        };
        object_io::stream_range(state, source, span).await?
    };
    response
        .body(body)
        .map_err(|e| ApiError::internal("building a response", e))
}

/// What a GET or HEAD knows of how a stored object is protected.
enum StoredProtection {
    Plain,
    /// Its data key at hand: every GET, and HEAD of all but SSE-KMS objects (the service
    /// key is local; SSE-C needs the customer's key on HEAD too, as S3 requires).
    Opened(coffer_keying::Opening),
    /// HEAD of an SSE-KMS object, answered from the stored envelope without asking the KMS,
    /// as AWS answers HeadObject (it needs s3:GetObject, not kms:Decrypt): a disabled or
    /// deleted key then shows up in the GET that needs it, as `KMS.DisabledException` and
    /// friends in an error body clients print, rather than as a bare 403 on HEAD (HEAD
    /// answers carry no body). GET still fails closed.
    Described {
        envelope: Envelope,
        headers: Vec<(String, String)>,
    },
}

impl StoredProtection {
    fn read(
        state: &AppState,
        req: &ApiRequest,
        envelope: Option<&[u8]>,
        name: coffer_keying::ObjectName<'_>,
        head_only: bool,
    ) -> ApiResult<Self> {
        if head_only
            && let Some(stored) = envelope
            && sse::customer_key(req, false)?.is_none()
            && let Ok(decoded) = Envelope::decode(stored)
            && matches!(decoded.key.kind, WrapKind::Kms | WrapKind::KmsBucketKey)
        {
            return Ok(Self::Described {
                headers: sse::describe_stored(req.dialect, stored),
                envelope: decoded,
            });
        }
        Ok(match sse::open_stored(state, req, envelope, name, false)? {
            Some(opening) => Self::Opened(opening),
            None => Self::Plain,
        })
    }

    fn envelope(&self) -> Option<&Envelope> {
        match self {
            Self::Plain => None,
            Self::Opened(opening) => Some(opening.envelope()),
            Self::Described { envelope, .. } => Some(envelope),
        }
    }

    fn headers(&self, dialect: Dialect) -> Vec<(String, String)> {
        match self {
            Self::Plain => Vec::new(),
            Self::Opened(opening) => opening.headers(dialect),
            Self::Described { headers, .. } => headers.clone(),
        }
    }
}

/// The checksum headers a GET or HEAD with `x-amz-checksum-mode: ENABLED`
/// answers: the object's for the whole object, a part's own for
/// `?partNumber=` of a multipart object, none for other ranges (no stored
/// checksum covers them).
fn answered_checksum(
    record: &ObjectRecord,
    part_number: Option<u32>,
    status: StatusCode,
) -> Vec<(String, String)> {
    let stored = match part_number {
        Some(n) if status == StatusCode::PARTIAL_CONTENT => record
            .extents
            .get(n as usize - 1)
            .and_then(|e| e.checksum.as_ref())
            .map(|c| (c, None)),
        _ if status == StatusCode::OK => record
            .checksum
            .as_ref()
            .map(|c| (c, record.checksum_type.as_deref())),
        _ => None,
    };
    stored
        .map(|(checksum, kind)| checksum_headers(checksum, kind).to_vec())
        .unwrap_or_default()
}

/// The plaintext size of each part of an object, in order: recorded at
/// completion; for records older than that, from the envelope when it is
/// decoded, else from the stored sizes (sealed or plain).
pub fn part_sizes(record: &ObjectRecord, envelope: Option<&Envelope>) -> Vec<u64> {
    let envelope_parts = envelope.map(|e| e.parts.as_slice());
    record
        .extents
        .iter()
        .enumerate()
        .map(|(i, extent)| {
            extent
                .plain_size
                .unwrap_or_else(|| match (record.envelope.is_some(), envelope_parts) {
                    (false, _) => extent.size,
                    (true, Some(parts)) => parts.get(i).map_or(0, |p| p.plain_size),
                    (true, None) => plain_size_of_sealed(extent.size),
                })
        })
        .collect()
}

/// The plaintext length of a part whose sealed blob is `sealed` bytes:
/// every chunk of the sealed-object format carries one tag, and every
/// chunk but the last is full.
fn plain_size_of_sealed(sealed: u64) -> u64 {
    use coffer_crypto::sealed::{SEALED_CHUNK_SIZE, TAG_LEN};
    let chunks = sealed.div_ceil(SEALED_CHUNK_SIZE as u64).max(1);
    sealed.saturating_sub(chunks * TAG_LEN as u64)
}

/// The byte range of part `n` of a multipart object (`?partNumber=`).
/// A single-part object has one part, the whole object (a 200); a part of
/// a multipart object is a 206, even if it is the only part.
fn part_range(sizes: &[u64], n: u32, multipart: bool) -> ApiResult<RangeRequest> {
    if !multipart && n == 1 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_sizes_invert() {
        use coffer_crypto::sealed::{CHUNK_SIZE, sealed_size};
        let chunk = CHUNK_SIZE as u64;
        for plain in [
            0,
            1,
            chunk - 1,
            chunk,
            chunk + 1,
            5 * chunk,
            5 << 20,
            (5 << 20) + 7,
        ] {
            assert_eq!(plain_size_of_sealed(sealed_size(plain)), plain, "{plain}");
        }
    }

    #[test]
    fn part_ranges() {
        use RangeRequest::*;
        assert_eq!(part_range(&[10], 1, false).ok(), Some(Whole));
        assert_eq!(part_range(&[10], 1, true).ok(), Some(Part(0..10)));
        assert_eq!(part_range(&[10, 5, 3], 2, true).ok(), Some(Part(10..15)));
        assert_eq!(part_range(&[10, 5, 3], 3, true).ok(), Some(Part(15..18)));
        assert_eq!(
            part_range(&[10, 5], 3, true).err().map(|e| e.code),
            Some(ErrorCode::InvalidPartNumber)
        );
        assert!(part_range(&[10], 2, false).is_err());
    }

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
}
