//! The S3 operations, one module per family, and the router that picks one.

mod acl;
mod attributes;
mod bucket;
mod bucket_policy;
mod checksum;
mod conditional;
mod copy;
mod cors;
mod delete;
mod encryption;
#[doc(hidden)]
pub mod fuzzing;
mod get;
mod lifecycle;
mod list;
mod multipart;
mod object;
mod object_lock;
mod object_tagging;
mod ownership_controls;
pub mod post_object;
mod public_access_block;
mod put;
mod retention;
mod tagging;
mod tls_policy;
pub mod versioning;
mod worm;

use coffer_auth::sigv4::Payload;
use coffer_store::BucketRecord;

use http::{Response, StatusCode};
use hyper::body::Incoming;

use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::ApiRequest;
use crate::router::Operation;
use crate::state::AppState;

/// Authorizes the S3 (or OSS) operation the router named (`authz`), then runs it.
pub async fn dispatch(
    state: &AppState,
    operation: Operation,
    mut req: ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    req.authorized = crate::authz::authorize(state, &req, &operation).await?;
    use Operation::*;
    match operation {
        ListBuckets => bucket::list_buckets(state, &req).await,

        // Bucket default encryption.
        PutBucketEncryption => encryption::put(state, &req, body, payload).await,
        GetBucketEncryption => encryption::get(state, &req).await,
        DeleteBucketEncryption => encryption::delete(state, &req).await,

        // Access: the bucket policy, its status, the public access block; OSS httpsConfig.
        PutBucketPolicy => bucket_policy::put(state, &req, body, payload).await,
        GetBucketPolicy => bucket_policy::get(state, &req).await,
        DeleteBucketPolicy => bucket_policy::delete(state, &req).await,
        GetBucketPolicyStatus => bucket_policy::status(state, &req).await,
        PutBucketPublicAccessBlock => public_access_block::put(state, &req, body, payload).await,
        GetBucketPublicAccessBlock => public_access_block::get(state, &req).await,
        DeleteBucketPublicAccessBlock => public_access_block::delete(state, &req).await,
        PutBucketHttpsConfig => tls_policy::put_https_config(state, &req, body, payload).await,
        GetBucketHttpsConfig => tls_policy::get_https_config(state, &req).await,

        // Versioning.
        PutBucketVersioning => versioning::put_versioning(state, &req, body, payload).await,
        GetBucketVersioning => versioning::get_versioning(state, &req).await,
        ListObjectVersions => versioning::list_versions(state, &req).await,
        // Bucket data protection: lifecycle, object lock, WORM, tags.
        PutBucketLifecycleConfiguration => lifecycle::put(state, &req, body, payload).await,
        GetBucketLifecycleConfiguration => lifecycle::get(state, &req).await,
        DeleteBucketLifecycle => lifecycle::delete(state, &req).await,
        PutObjectLockConfiguration => object_lock::put(state, &req, body, payload).await,
        GetObjectLockConfiguration => object_lock::get(state, &req).await,
        InitiateBucketWorm => worm::initiate(state, &req, body, payload).await,
        AbortBucketWorm => worm::abort(state, &req).await,
        CompleteBucketWorm => worm::complete(state, &req).await,
        ExtendBucketWorm => worm::extend(state, &req, body, payload).await,
        GetBucketWorm => worm::get(state, &req).await,
        PutBucketTagging => tagging::put(state, &req, body, payload).await,
        GetBucketTagging => tagging::get(state, &req).await,
        DeleteBucketTagging => tagging::delete(state, &req).await,
        PutBucketCors => cors::put(state, &req, body, payload).await,
        GetBucketCors => cors::get(state, &req).await,
        DeleteBucketCors => cors::delete(state, &req).await,

        // ACLs and object ownership.
        PutBucketAcl => acl::put_bucket(state, &req, body, payload).await,
        GetBucketAcl => acl::get_bucket(state, &req).await,
        PutObjectAcl => acl::put_object(state, &req, body, payload).await,
        GetObjectAcl => acl::get_object(state, &req).await,
        PutBucketOwnershipControls => ownership_controls::put(state, &req, body, payload).await,
        GetBucketOwnershipControls => ownership_controls::get(state, &req).await,
        DeleteBucketOwnershipControls => ownership_controls::delete(state, &req).await,

        // Bucket operations.
        CreateBucket => bucket::create_bucket(state, &req, body, payload).await,
        HeadBucket => bucket::head_bucket(state, &req).await,
        DeleteBucket => bucket::delete_bucket(state, &req).await,
        GetBucketLocation => bucket::get_bucket_location(state, &req).await,
        ListMultipartUploads => multipart::list_uploads(state, &req).await,
        DeleteObjects => delete::delete_objects(state, &req, body, payload).await,
        ListObjectsV2 => list::list_objects(state, &req, list::Version::V2).await,
        ListObjects => list::list_objects(state, &req, list::Version::V1).await,

        // Multipart operations.
        CreateMultipartUpload => multipart::create_upload(state, &req).await,
        UploadPartCopy => multipart::upload_part_copy(state, &req).await,
        UploadPart => multipart::upload_part(state, &req, body, payload).await,
        CompleteMultipartUpload => multipart::complete_upload(state, &req, body, payload).await,
        AbortMultipartUpload => multipart::abort_upload(state, &req).await,
        ListParts => multipart::list_parts(state, &req).await,

        // Object operations.
        CopyObject => copy::copy_object(state, &req).await,
        PutObject => put::put_object(state, &req, body, payload).await,
        GetObject => get::get_object(state, &req, false).await,
        GetObjectAttributes => attributes::get_object_attributes(state, &req).await,
        PutObjectTagging => object_tagging::put(state, &req, body, payload).await,
        GetObjectTagging => object_tagging::get(state, &req).await,
        DeleteObjectTagging => object_tagging::delete(state, &req).await,
        HeadObject => get::get_object(state, &req, true).await,
        DeleteObject => delete::delete_object(state, &req).await,
        PutObjectRetention => retention::put_retention(state, &req, body, payload).await,
        GetObjectRetention => retention::get_retention(state, &req).await,
        PutObjectLegalHold => retention::put_legal_hold(state, &req, body, payload).await,
        GetObjectLegalHold => retention::get_legal_hold(state, &req).await,

        UnsupportedObjectSubresource => Err(ApiError::not_implemented("This object sub-resource")),
        UnsupportedBucketSubresource => Err(ApiError::not_implemented("This bucket sub-resource")),
        MethodNotAllowed => Err(ApiError::method_not_allowed()),
        Admin(_) | Kms(_) | Health(_) | CorsPreflight | PostObject => Err(ApiError::internal(
            "dispatch",
            "admin, KMS, preflight and form-upload requests are served before authentication",
        )),
    }
}

/// The request's bucket, as `dispatch` authorized the operation on it (`authz::authorize`
/// read it once for the decision).
pub async fn authorized_bucket(_state: &AppState, req: &ApiRequest) -> ApiResult<BucketRecord> {
    match &req.authorized {
        Some(authorized) => Ok(authorized.bucket.clone()),
        None => Err(ApiError::internal(
            "authorized_bucket",
            "an operation on a bucket ran without its authorization",
        )),
    }
}

/// Stores one bucket sub-resource document (`?encryption`, `?httpsConfig`,
/// `?policy`, `?lifecycle`, `?object-lock`, `?worm`, `?tagging`) under `key` in the bucket's config and writes the bucket back.
pub async fn save_bucket_config(
    state: &AppState,
    bucket: BucketRecord,
    key: &str,
    document: String,
) -> ApiResult<()> {
    Ok(state
        .meta
        .set_bucket_config(&bucket.name, key, Some(document))
        .await?)
}

/// `DELETE` of bucket sub-resource documents (`?cors`, `?encryption`, `?lifecycle`,
/// `?policy`, …): removes those stored under `keys` and answers 204 whether or not there
/// were any, as S3 and OSS do.
pub async fn delete_bucket_configs(
    state: &AppState,
    req: &ApiRequest,
    keys: &[&str],
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    for key in keys {
        if bucket.config.contains_key(*key) {
            state
                .meta
                .set_bucket_config(&bucket.name, key, None)
                .await?;
        }
    }
    empty_response(StatusCode::NO_CONTENT)
}

/// Reads a small request body (XML documents) into memory, verifying the
/// signed payload hash, Content-MD5 and `x-amz-checksum-*` when given.
pub async fn small_body(
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<bytes::Bytes> {
    let bytes = read_small_body(req, body).await?;
    crate::body_checks::verify_small_body(&req.headers, payload, bytes)
}

/// [`small_body`] for a request whose `x-amz-checksum-*` headers describe
/// something else than its body (CompleteMultipartUpload: the object).
pub async fn small_body_without_checksums(
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<bytes::Bytes> {
    let bytes = read_small_body(req, body).await?;
    let mut headers = req.headers.clone();
    for algorithm in coffer_auth::ChecksumAlgorithm::ALL {
        headers.remove(algorithm.header_name());
    }
    crate::body_checks::verify_small_body(&headers, payload, bytes)
}

async fn read_small_body(req: &ApiRequest, mut body: Incoming) -> ApiResult<bytes::Bytes> {
    const LIMIT: usize = 2 * 1024 * 1024;
    let mut bytes = bytes::BytesMut::new();
    while let Some(frame) = crate::object_io::next_frame(&mut body, req.body_read_timeout).await? {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if bytes.len() + data.len() > LIMIT {
            return Err(ApiError::new(
                ErrorCode::MaxMessageLengthExceeded,
                "Your request was too big.",
            ));
        }
        bytes.extend_from_slice(&data);
    }
    Ok(bytes.freeze())
}

pub fn xml_response(status: StatusCode, xml: String) -> ApiResult<Response<ResponseBody>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(ResponseBody::full(xml))
        .map_err(|e| ApiError::internal("building a response", e))
}

/// An XML answer that also carries the ETag as a header: oss2 reads the
/// ETag of copies and completed uploads from the header, botocore and the
/// OSS v2 SDK from the body.
pub fn xml_with_etag(xml: String, etag: &str) -> ApiResult<Response<ResponseBody>> {
    let mut response = xml_response(StatusCode::OK, xml)?;
    let value = http::HeaderValue::from_str(&quoted(etag))
        .map_err(|e| ApiError::internal("ETag header", e))?;
    response.headers_mut().insert(http::header::ETAG, value);
    Ok(response)
}

/// Adds `headers` to `response`; a name or value that cannot be a header is left out (they
/// are Coffer's own names and stored values, already checked on the way in).
pub fn insert_headers(
    response: &mut Response<ResponseBody>,
    headers: impl IntoIterator<Item = (String, String)>,
) {
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(name),
            http::HeaderValue::try_from(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
}

pub fn empty_response(status: StatusCode) -> ApiResult<Response<ResponseBody>> {
    Response::builder()
        .status(status)
        .body(ResponseBody::Empty)
        .map_err(|e| ApiError::internal("building a response", e))
}

pub use crate::clock::{iso8601, now_ms, utc_of_ms};

/// Quoted ETag as S3 returns it.
pub fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_auth::amz_time::format_http_date;

    #[test]
    fn dates_format() {
        let ms = 1_795_951_593_123;
        assert_eq!(iso8601(ms), "2026-11-29T11:26:33.000Z");
        assert_eq!(
            format_http_date(utc_of_ms(ms)),
            "Sun, 29 Nov 2026 11:26:33 GMT"
        );
        assert_eq!(utc_of_ms(-1).unix_timestamp(), -1);
    }
}
