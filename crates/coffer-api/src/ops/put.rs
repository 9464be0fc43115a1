//! PutObject, and the answer every body upload (PutObject, UploadPart)
//! gives.

use coffer_auth::sigv4::Payload;
use coffer_store::{BucketRecord, ObjectRecord};
use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::checksum::ChecksumType;
use super::conditional;
use super::object::{CRC64_HEADER, stored_headers, validate_key};
use super::object_tagging;
use super::{authorized_bucket, now_ms, quoted, retention, versioning, worm};
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult};
use crate::object_io::{self, BlobTarget, BodyRules, BodyStream, StagedBody};
use crate::request::{ApiRequest, Dialect};
use crate::sse::{self, ResponseHeaders};
use crate::state::AppState;

/// The checksum type of a body checksummed whole (a single PUT or copy).
const FULL_OBJECT: &str = ChecksumType::FullObject.name();

pub async fn put_object(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let key = req.key()?.to_owned();
    validate_key(req.dialect, &key)?;
    let bucket = authorized_bucket(state, req).await?;
    let (staged, headers) = store_body(state, req, &bucket, &key, body, payload).await?;
    upload_response(req, &staged, headers)
}

/// Stores `body` as a new version of `key` in `bucket`, as the request's
/// headers ask (conditions, lock, metadata, encryption), once the caller has
/// authorized it: PutObject's body, or a form upload's file part. Returns
/// the staged body and the response headers (encryption, version id).
pub async fn store_body(
    state: &AppState,
    req: &ApiRequest,
    bucket: &BucketRecord,
    key: &str,
    body: impl BodyStream,
    payload: Payload,
) -> ApiResult<(StagedBody, Vec<(String, String)>)> {
    let condition = conditional::requested(req, bucket.versioning)?;
    conditional::check_now(state, &bucket.name, key, &condition).await?;
    let lock = retention::for_new_version(req, bucket, now_ms())?;
    retention::require_integrity(req, &lock)?;
    let mut headers = stored_headers(&req.headers, req.dialect)?;
    let rules = BodyRules::from_headers(&req.headers, payload)?;
    let access = super::acl::for_new_object(state, req, bucket).await?;
    let sealing = sse::seal_new(state, req, bucket, key)?;
    if let Some(sealing) = &sealing {
        headers.extend_from_slice(sealing.stored_attributes());
    }
    let target = BlobTarget::single_part(sealing.as_ref());
    let staged = object_io::ingest(state, body, rules, target, req.body_read_timeout).await?;
    // From here to the commit, a failure discards the staged blob.
    let commit = async {
        let envelope = sealing
            .as_ref()
            .map(|s| s.single_part_envelope(staged.size))
            .transpose()?;
        let checksum = staged
            .checksum
            .as_ref()
            .map(|(algorithm, value)| (algorithm.name().to_owned(), value.clone()));
        let record = ObjectRecord {
            size: staged.size,
            etag: staged.etag(),
            last_modified_ms: now_ms(),
            owner: access.owner,
            acl: access.acl,
            headers,
            checksum_type: checksum.as_ref().map(|_| FULL_OBJECT.to_owned()),
            checksum,
            extents: vec![staged.extent(None)],
            envelope,
            crc64: Some(staged.crc64),
            tags: object_tagging::request_tags(req)?,
            retention: lock.retention,
            legal_hold: lock.legal_hold,
            ..Default::default()
        };
        let guard = worm::guard_current(state, bucket, key, condition.condition().clone()).await?;
        state
            .meta
            .put_object(&bucket.name, key, record, guard.condition())
            .await
            .map_err(|e| guard.refusal(conditional::write_error(&condition, e.into())))
    };
    let written =
        object_io::commit_staged(state, std::slice::from_ref(&staged.blob), commit).await?;

    let mut headers = sealing.map(|s| s.headers(req.dialect)).unwrap_or_default();
    headers.extend(versioning::version_header(
        req,
        bucket,
        written.version_id.as_deref(),
    ));
    Ok((staged, headers))
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
