//! S3 object transfer over the signed transport: PUT, multipart upload with
//! parallel parts, streaming (ranged) GET, HEAD, ListObjectsV2, DELETE and
//! CopyObject — what `coffer cp/cat/ls/rm` and client-side encryption need.
//!
//! Uploads read their source (a file, or a stream of unknown length such as
//! stdin) in part-sized chunks and pass each chunk through a [`BodyTransform`]
//! before it goes out (the identity for plain copies, an encryptor for
//! client-side encryption), so memory stays bounded by
//! `(concurrency + 2) × part_size` whatever the object's size.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::transport::{ClientError, SignedClient, error_message, read_body};

mod upload;
pub use upload::{UploadPlan, upload};

/// The prefix S3 gives user metadata on the wire.
pub const META_PREFIX: &str = "x-amz-meta-";
/// S3 accepts at most this many parts.
pub const MAX_PARTS: u64 = 10_000;
/// S3's smallest part (all but the last).
pub const MIN_PART_SIZE: usize = 5 << 20;

/// SigV4's URI encoding: everything but the unreserved characters.
const URI_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// The same for a path, where `/` separates segments.
const PATH_ENCODE: &AsciiSet = &URI_ENCODE.remove(b'/');

/// Why an object operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The request or the server's answer failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Reading the local source or writing the local destination failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The content transform (client-side encryption) refused the data.
    #[error("{0}")]
    Transform(String),
}

impl TransferError {
    /// The HTTP status of a server error, if that is what this is.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            TransferError::Client(ClientError::Server { status, .. }) => Some(*status),
            _ => None,
        }
    }
}

/// Turns the bytes read from the source into the bytes stored: applied to
/// each chunk in order. The last chunk may grow (an authentication tag).
pub trait BodyTransform: Send {
    /// Transforms `chunk` in place; `last` is true for the final chunk.
    fn apply(&mut self, chunk: &mut Vec<u8>, last: bool) -> Result<(), String>;
}

/// Stores the bytes as they are.
pub struct Identity;

impl BodyTransform for Identity {
    fn apply(&mut self, _chunk: &mut Vec<u8>, _last: bool) -> Result<(), String> {
        Ok(())
    }
}

/// `/bucket/key`, percent-encoded as SigV4 wants it.
pub fn object_path(bucket: &str, key: &str) -> String {
    format!(
        "/{}/{}",
        utf8_percent_encode(bucket, URI_ENCODE),
        utf8_percent_encode(key, PATH_ENCODE)
    )
}

fn query_value(value: &str) -> String {
    utf8_percent_encode(value, URI_ENCODE).to_string()
}

/// What HEAD (or GET) tells about an object.
#[derive(Debug, Clone, Default)]
pub struct ObjectHead {
    /// Bytes in this answer (the whole object, or the range asked for).
    pub content_length: u64,
    /// The object's full stored size.
    pub size: u64,
    /// The `ETag` header, quotes included.
    pub etag: String,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The `Last-Modified` header, as sent.
    pub last_modified: Option<String>,
    /// User metadata, names without the `x-amz-meta-` prefix, lower case.
    pub metadata: BTreeMap<String, String>,
    /// `Content-Range: bytes first-last/total` of a ranged answer.
    pub range: Option<(u64, u64)>,
}

impl ObjectHead {
    fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let content_length = text("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut head = ObjectHead {
            content_length,
            size: content_length,
            etag: text("etag").unwrap_or_default(),
            content_type: text("content-type"),
            last_modified: text("last-modified"),
            metadata: BTreeMap::new(),
            range: None,
        };
        if let Some((first, last, total)) = text("content-range")
            .as_deref()
            .and_then(parse_content_range)
        {
            head.range = Some((first, last));
            head.size = total;
        }
        for (name, value) in headers {
            if let Some(short) = name.as_str().strip_prefix(META_PREFIX) {
                head.metadata.insert(
                    short.to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                );
            }
        }
        head
    }
}

/// `bytes 0-99/1000` → (0, 99, 1000).
fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    Some((first.parse().ok()?, last.parse().ok()?, total.parse().ok()?))
}

/// A byte range to download: `first..=last`, or to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte.
    pub first: u64,
    /// The last byte, inclusive; `None` for the end of the object.
    pub last: Option<u64>,
}

impl ByteRange {
    /// Parses `a-b` or `a-` (inclusive, as HTTP ranges are).
    pub fn parse(text: &str) -> Option<Self> {
        let (first, last) = text.split_once('-')?;
        let first = first.trim().parse().ok()?;
        let last = match last.trim() {
            "" => None,
            last => Some(last.parse().ok()?),
        };
        if last.is_some_and(|last| last < first) {
            return None;
        }
        Some(ByteRange { first, last })
    }

    fn header(&self) -> String {
        match self.last {
            Some(last) => format!("bytes={}-{last}", self.first),
            None => format!("bytes={}-", self.first),
        }
    }
}

async fn checked(
    response: http::Response<Incoming>,
) -> Result<http::Response<Incoming>, TransferError> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let message = if body.is_empty() {
        // HEAD answers carry no body: name the usual cases.
        match status {
            StatusCode::NOT_FOUND => "NoSuchKey: the object does not exist".to_owned(),
            StatusCode::FORBIDDEN => "AccessDenied".to_owned(),
            _ => format!(
                "{} (no details)",
                status.canonical_reason().unwrap_or("error")
            ),
        }
    } else {
        error_message(&body)
    };
    Err(ClientError::Server { status, message }.into())
}

async fn call(
    client: &SignedClient,
    method: Method,
    path: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(HeaderMap, Bytes), TransferError> {
    let response = checked(
        client
            .request_streaming("s3", method, path, headers, body, true)
            .await?,
    )
    .await?;
    let headers = response.headers().clone();
    let body = read_body(response).await?;
    Ok((headers, body))
}

fn xml<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, TransferError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ClientError::BadResponse("the answer is not UTF-8".into()))?;
    quick_xml::de::from_str(text).map_err(|e| {
        ClientError::BadResponse(format!(
            "unexpected XML answer ({e}): {}",
            error_message(body)
        ))
        .into()
    })
}

/// Headers that describe a new object: user metadata and content type.
#[derive(Debug, Clone, Default)]
pub struct NewObject {
    /// User metadata, names without the `x-amz-meta-` prefix.
    pub metadata: BTreeMap<String, String>,
    /// The `Content-Type` to store.
    pub content_type: Option<String>,
}

impl NewObject {
    fn headers(&self) -> Result<HeaderMap, TransferError> {
        let mut headers = HeaderMap::new();
        let bad = |what: &str| ClientError::BadEndpoint(format!("invalid header {what}"));
        for (name, value) in &self.metadata {
            let name =
                HeaderName::try_from(format!("{META_PREFIX}{name}")).map_err(|_| bad(name))?;
            let value = HeaderValue::from_str(value).map_err(|_| bad(name.as_str()))?;
            headers.insert(name, value);
        }
        if let Some(content_type) = &self.content_type {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_str(content_type).map_err(|_| bad("content-type"))?,
            );
        }
        Ok(headers)
    }
}

/// Stores `body` under `bucket/key` in one request; returns the ETag.
pub async fn put_object(
    client: &SignedClient,
    bucket: &str,
    key: &str,
    body: Bytes,
    object: &NewObject,
) -> Result<String, TransferError> {
    let (headers, _) = call(
        client,
        Method::PUT,
        &object_path(bucket, key),
        object.headers()?,
        body,
    )
    .await?;
    Ok(etag_of(&headers))
}

fn etag_of(headers: &HeaderMap) -> String {
    headers
        .get(http::header::ETAG)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// HEAD: the object's size, ETag and metadata.
pub async fn head_object(
    client: &SignedClient,
    bucket: &str,
    key: &str,
) -> Result<ObjectHead, TransferError> {
    let (headers, _) = call(
        client,
        Method::HEAD,
        &object_path(bucket, key),
        HeaderMap::new(),
        Bytes::new(),
    )
    .await?;
    Ok(ObjectHead::from_headers(&headers))
}

/// A GET answer whose body is read chunk by chunk.
pub struct ObjectStream {
    /// What the answer's headers say about the object.
    pub head: ObjectHead,
    body: Incoming,
    /// The client's response timeout, which bounds each read of the body;
    /// and the endpoint its error names.
    read_timeout: Option<(Duration, String)>,
}

impl ObjectStream {
    /// The next piece of the body, `None` at its end. With a client
    /// response timeout ([`crate::Timeouts`]), a server that sends nothing
    /// for that long is a [`ClientError::Timeout`].
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, TransferError> {
        loop {
            let frame = match &self.read_timeout {
                Some((waited, endpoint)) => tokio::time::timeout(*waited, self.body.frame())
                    .await
                    .map_err(|_| ClientError::Timeout {
                        endpoint: endpoint.clone(),
                        waited: *waited,
                    })?,
                None => self.body.frame().await,
            };
            let Some(frame) = frame else {
                return Ok(None);
            };
            let frame = frame.map_err(|e| ClientError::BadResponse(e.to_string()))?;
            if let Ok(data) = frame.into_data()
                && !data.is_empty()
            {
                return Ok(Some(data));
            }
        }
    }
}

/// GET, the whole object or `range`; the body is read with
/// [`ObjectStream::next_chunk`].
pub async fn get_object(
    client: &SignedClient,
    bucket: &str,
    key: &str,
    range: Option<ByteRange>,
) -> Result<ObjectStream, TransferError> {
    let mut headers = HeaderMap::new();
    if let Some(range) = range {
        let value = HeaderValue::from_str(&range.header())
            .map_err(|_| ClientError::BadEndpoint("invalid range".into()))?;
        headers.insert(http::header::RANGE, value);
    }
    let response = checked(
        client
            .request_streaming(
                "s3",
                Method::GET,
                &object_path(bucket, key),
                headers,
                Bytes::new(),
                true,
            )
            .await?,
    )
    .await?;
    let head = ObjectHead::from_headers(response.headers());
    Ok(ObjectStream {
        head,
        body: response.into_body(),
        read_timeout: client
            .timeouts()
            .response
            .map(|waited| (waited, client.url().to_owned())),
    })
}

/// DELETE of one object.
pub async fn delete_object(
    client: &SignedClient,
    bucket: &str,
    key: &str,
) -> Result<(), TransferError> {
    call(
        client,
        Method::DELETE,
        &object_path(bucket, key),
        HeaderMap::new(),
        Bytes::new(),
    )
    .await?;
    Ok(())
}

/// What a copy does with the source's metadata.
pub enum MetadataDirective {
    /// Keep it byte for byte (client-side encryption metadata included).
    Copy,
    /// Replace it with this (rewrap: new wrapped key, same content).
    Replace(NewObject),
}

/// The object a copy reads.
pub struct CopySource<'a> {
    /// The source bucket.
    pub bucket: &'a str,
    /// The source key.
    pub key: &'a str,
    /// Copy only if the source still has this ETag
    /// (`x-amz-copy-source-if-match`): a rewrap must not overwrite an
    /// object that changed since its metadata was read.
    pub if_match: Option<&'a str>,
}

/// Server-side copy; the content never passes through the client. Returns
/// the new ETag.
pub async fn copy_object(
    client: &SignedClient,
    source: &CopySource<'_>,
    target: (&str, &str),
    directive: MetadataDirective,
) -> Result<String, TransferError> {
    let mut headers = match &directive {
        MetadataDirective::Copy => HeaderMap::new(),
        MetadataDirective::Replace(object) => object.headers()?,
    };
    let bad = |_| ClientError::BadEndpoint("invalid copy source".into());
    headers.insert(
        "x-amz-copy-source",
        HeaderValue::from_str(&object_path(source.bucket, source.key)).map_err(bad)?,
    );
    if let Some(etag) = source.if_match {
        headers.insert(
            "x-amz-copy-source-if-match",
            HeaderValue::from_str(etag).map_err(bad)?,
        );
    }
    headers.insert(
        "x-amz-metadata-directive",
        HeaderValue::from_static(match directive {
            MetadataDirective::Copy => "COPY",
            MetadataDirective::Replace(_) => "REPLACE",
        }),
    );
    let (headers, body) = call(
        client,
        Method::PUT,
        &object_path(target.0, target.1),
        headers,
        Bytes::new(),
    )
    .await?;
    #[derive(Deserialize)]
    struct CopyObjectResult {
        #[serde(rename = "ETag", default)]
        etag: String,
    }
    // S3 may answer 200 with an <Error> body when a copy fails late.
    let result: CopyObjectResult = xml(&body)?;
    Ok(if result.etag.is_empty() {
        etag_of(&headers)
    } else {
        result.etag
    })
}

/// One object of a listing.
#[derive(Debug, Clone, Deserialize)]
pub struct ListedObject {
    /// The object key.
    #[serde(rename = "Key")]
    pub key: String,
    /// The stored size in bytes.
    #[serde(rename = "Size", default)]
    pub size: u64,
    /// ISO 8601, as the listing gives it.
    #[serde(rename = "LastModified", default)]
    pub last_modified: String,
    /// The ETag, quotes included.
    #[serde(rename = "ETag", default)]
    pub etag: String,
}

/// One page of ListObjectsV2.
#[derive(Debug, Deserialize)]
pub struct ObjectPage {
    /// The objects of this page.
    #[serde(rename = "Contents", default)]
    pub objects: Vec<ListedObject>,
    /// With a delimiter: the "directories" rolled up under it.
    #[serde(rename = "CommonPrefixes", default)]
    pub prefixes: Vec<CommonPrefix>,
    /// Whether more pages follow.
    #[serde(rename = "IsTruncated", default)]
    pub truncated: bool,
    /// The token that asks for the next page.
    #[serde(rename = "NextContinuationToken", default)]
    pub next_token: Option<String>,
}

/// A key prefix that a delimiter rolled up in a listing.
#[derive(Debug, Deserialize)]
pub struct CommonPrefix {
    /// The prefix, delimiter included.
    #[serde(rename = "Prefix")]
    pub prefix: String,
}

/// One page of objects under `prefix`, continuing from `token`.
pub async fn list_objects_page(
    client: &SignedClient,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    token: Option<&str>,
) -> Result<ObjectPage, TransferError> {
    let request = ListRequest {
        prefix,
        delimiter,
        token,
        max_keys: None,
    };
    list_objects_v2(client, bucket, &request).await
}

/// What one ListObjectsV2 page asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListRequest<'a> {
    /// Only keys that start with this.
    pub prefix: &'a str,
    /// Roll keys up to the first of this after the prefix.
    pub delimiter: Option<&'a str>,
    /// The previous page's `NextContinuationToken`.
    pub token: Option<&'a str>,
    /// At most this many keys and prefixes (the server's own cap, 1000 for
    /// S3, when `None`).
    pub max_keys: Option<u32>,
}

/// One page of ListObjectsV2.
pub async fn list_objects_v2(
    client: &SignedClient,
    bucket: &str,
    request: &ListRequest<'_>,
) -> Result<ObjectPage, TransferError> {
    let mut query = format!("list-type=2&prefix={}", query_value(request.prefix));
    if let Some(delimiter) = request.delimiter {
        query.push_str(&format!("&delimiter={}", query_value(delimiter)));
    }
    if let Some(token) = request.token {
        query.push_str(&format!("&continuation-token={}", query_value(token)));
    }
    if let Some(max_keys) = request.max_keys {
        query.push_str(&format!("&max-keys={max_keys}"));
    }
    let path = format!("/{}?{query}", utf8_percent_encode(bucket, URI_ENCODE));
    let (_, body) = call(client, Method::GET, &path, HeaderMap::new(), Bytes::new()).await?;
    xml(&body)
}

/// Every object under `prefix`, page after page.
pub async fn list_objects(
    client: &SignedClient,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<ListedObject>, TransferError> {
    let mut objects = Vec::new();
    let mut token = None;
    loop {
        let page = list_objects_page(client, bucket, prefix, None, token.as_deref()).await?;
        objects.extend(page.objects);
        match page.next_token {
            Some(next) if page.truncated => token = Some(next),
            _ => return Ok(objects),
        }
    }
}

/// One bucket of ListBuckets.
#[derive(Debug, Deserialize)]
pub struct ListedBucket {
    /// The bucket name.
    #[serde(rename = "Name")]
    pub name: String,
    /// ISO 8601, as the listing gives it.
    #[serde(rename = "CreationDate", default)]
    pub creation_date: String,
}

/// Every bucket the signer owns.
pub async fn list_buckets(client: &SignedClient) -> Result<Vec<ListedBucket>, TransferError> {
    #[derive(Deserialize)]
    struct Buckets {
        #[serde(rename = "Bucket", default)]
        buckets: Vec<ListedBucket>,
    }
    #[derive(Deserialize)]
    struct ListAllMyBucketsResult {
        #[serde(rename = "Buckets")]
        buckets: Option<Buckets>,
    }
    let (_, body) = call(client, Method::GET, "/", HeaderMap::new(), Bytes::new()).await?;
    let result: ListAllMyBucketsResult = xml(&body)?;
    Ok(result.buckets.map(|b| b.buckets).unwrap_or_default())
}

// ---------------------------------------------------------------- multipart

/// Starts a multipart upload; returns its upload id.
pub async fn create_multipart_upload(
    client: &SignedClient,
    bucket: &str,
    key: &str,
    object: &NewObject,
) -> Result<String, TransferError> {
    #[derive(Deserialize)]
    struct InitiateMultipartUploadResult {
        #[serde(rename = "UploadId")]
        upload_id: String,
    }
    let path = format!("{}?uploads", object_path(bucket, key));
    let (_, body) = call(client, Method::POST, &path, object.headers()?, Bytes::new()).await?;
    let result: InitiateMultipartUploadResult = xml(&body)?;
    Ok(result.upload_id)
}

/// Uploads one part; returns its ETag for the completion.
pub async fn upload_part(
    client: &SignedClient,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part_number: u32,
    body: Bytes,
) -> Result<String, TransferError> {
    let path = format!(
        "{}?partNumber={part_number}&uploadId={}",
        object_path(bucket, key),
        query_value(upload_id)
    );
    let (headers, _) = call(client, Method::PUT, &path, HeaderMap::new(), body).await?;
    Ok(etag_of(&headers))
}

/// Completes an upload from its `(part number, ETag)` list; returns the
/// object's ETag. A 200 answer that carries an `<Error>` is an error.
pub async fn complete_multipart_upload(
    client: &SignedClient,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: &[(u32, String)],
) -> Result<String, TransferError> {
    let mut document = String::from("<CompleteMultipartUpload>");
    for (number, etag) in parts {
        document.push_str(&format!(
            "<Part><PartNumber>{number}</PartNumber><ETag>{}</ETag></Part>",
            etag.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('"', "&quot;")
        ));
    }
    document.push_str("</CompleteMultipartUpload>");
    let path = format!(
        "{}?uploadId={}",
        object_path(bucket, key),
        query_value(upload_id)
    );
    let (_, body) = call(
        client,
        Method::POST,
        &path,
        HeaderMap::new(),
        Bytes::from(document),
    )
    .await?;
    #[derive(Deserialize)]
    struct CompleteMultipartUploadResult {
        #[serde(rename = "ETag", default)]
        etag: String,
    }
    // Complete can fail after a 200: the body is then an <Error>.
    if std::str::from_utf8(&body).is_ok_and(|t| t.contains("<Error>")) {
        return Err(ClientError::Server {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: error_message(&body),
        }
        .into());
    }
    let result: CompleteMultipartUploadResult = xml(&body)?;
    Ok(result.etag)
}

/// Aborts an upload and drops its parts.
pub async fn abort_multipart_upload(
    client: &SignedClient,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<(), TransferError> {
    let path = format!(
        "{}?uploadId={}",
        object_path(bucket, key),
        query_value(upload_id)
    );
    call(
        client,
        Method::DELETE,
        &path,
        HeaderMap::new(),
        Bytes::new(),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_as_sigv4_wants() {
        assert_eq!(object_path("b", "a b/c+d~é"), "/b/a%20b/c%2Bd~%C3%A9");
        assert_eq!(query_value("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn ranges_parse_and_format() {
        let range = ByteRange::parse("10-19").expect("a closed range parses");
        assert_eq!(range.header(), "bytes=10-19");
        assert_eq!(
            ByteRange::parse("5-").map(|r| r.header()).as_deref(),
            Some("bytes=5-")
        );
        assert!(ByteRange::parse("9-3").is_none());
        assert!(ByteRange::parse("-3").is_none());
        assert_eq!(parse_content_range("bytes 0-9/100"), Some((0, 9, 100)));
    }

    #[test]
    fn list_pages_parse_with_a_namespace() {
        let page: ObjectPage = xml(br#"<?xml version="1.0"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><IsTruncated>true</IsTruncated><NextContinuationToken>t1</NextContinuationToken><Contents><Key>a</Key><Size>3</Size><ETag>"x"</ETag><LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents><Contents><Key>b</Key><Size>4</Size></Contents></ListBucketResult>"#).expect("a listing parses");
        assert_eq!(page.objects.len(), 2);
        assert_eq!(page.objects[1].size, 4);
        assert!(page.truncated);
        assert_eq!(page.next_token.as_deref(), Some("t1"));
    }
}
