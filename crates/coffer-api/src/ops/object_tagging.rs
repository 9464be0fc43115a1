//! Object tags: `?tagging` on an object (Put/Get/DeleteObjectTagging, both dialects, any
//! version), the `x-amz-tagging` / `x-oss-tagging` header of writes, the copy's tagging
//! directive, and `x-amz-tagging-count` on reads. Tags belong to one version; the tag set and
//! its limits are `bucket_config::tags`.

use coffer_auth::sigv4::Payload;
use coffer_store::{BucketRecord, ObjectRecord, StoreError, VersionChange, VersionRef};
use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::versioning::{read_version, requested_version, version_header};
use super::{authorized_bucket, empty_response, insert_headers, small_body, xml_response};
use crate::body::ResponseBody;
use crate::bucket_config::tags::{TagSet, TagTarget};
use crate::error::{ApiError, ApiResult};
use crate::request::ApiRequest;
use crate::state::AppState;

/// The tags a write asks for in its tagging header (none without one).
pub fn request_tags(req: &ApiRequest) -> ApiResult<Vec<(String, String)>> {
    match req.vendor_header("tagging") {
        Some(value) => Ok(TagSet::parse_header(value, TagTarget::Object)?.tags),
        None => Ok(Vec::new()),
    }
}

/// The tags of a copy: the source's (directive `COPY`, the default) or the request's
/// (`REPLACE`).
pub fn copy_tags(req: &ApiRequest, source: &ObjectRecord) -> ApiResult<Vec<(String, String)>> {
    match req.vendor_header("tagging-directive") {
        None | Some("COPY" | "Copy") => Ok(source.tags.clone()),
        Some("REPLACE" | "Replace") => request_tags(req),
        Some(other) => Err(ApiError::invalid_argument(format!(
            "Unknown tagging directive: {other}"
        ))),
    }
}

/// The `x-amz-tagging-count` header of a read, when the version has tags.
pub fn count_header(req: &ApiRequest, record: &ObjectRecord) -> Option<(String, String)> {
    (!record.tags.is_empty()).then(|| {
        (
            req.dialect.header("tagging-count"),
            record.tags.len().to_string(),
        )
    })
}

/// `PUT ?tagging` on an object: replaces the tags of the named (or current) version.
pub async fn put(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let key = req.key()?.to_owned();
    let bucket = authorized_bucket(state, req).await?;
    let body = small_body(req, body, payload).await?;
    let tags = TagSet::parse_xml(&body, TagTarget::Object)?;
    let record = update_tags(state, req, &bucket, &key, tags.tags).await?;
    answer(req, &bucket, &record, StatusCode::OK)
}

/// `GET ?tagging` on an object.
pub async fn get(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let key = req.key()?.to_owned();
    let bucket = authorized_bucket(state, req).await?;
    let record = read_version(state, req, &bucket, &key, requested_version(req)?).await?;
    let mut w = req.xml("Tagging");
    TagSet {
        tags: record.tags.clone(),
    }
    .write_xml(&mut w);
    let mut response = xml_response(StatusCode::OK, w.finish())?;
    add_version_header(&mut response, req, &bucket, &record);
    Ok(response)
}

/// `DELETE ?tagging` on an object: removes every tag of the version.
pub async fn delete(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let key = req.key()?.to_owned();
    let bucket = authorized_bucket(state, req).await?;
    let record = update_tags(state, req, &bucket, &key, Vec::new()).await?;
    answer(req, &bucket, &record, StatusCode::NO_CONTENT)
}

async fn update_tags(
    state: &AppState,
    req: &ApiRequest,
    bucket: &BucketRecord,
    key: &str,
    tags: Vec<(String, String)>,
) -> ApiResult<ObjectRecord> {
    let named = requested_version(req)?;
    let which = named.clone().unwrap_or(VersionRef::Latest);
    match state
        .meta
        .update_version(&bucket.name, key, which, VersionChange::Tags(tags))
        .await
    {
        // The key's newest version is a delete marker: the key reads as absent.
        Err(StoreError::DeleteMarker) if named.is_none() => Err(ApiError::no_such_key()),
        other => Ok(other?),
    }
}

fn answer(
    req: &ApiRequest,
    bucket: &BucketRecord,
    record: &ObjectRecord,
    status: StatusCode,
) -> ApiResult<Response<ResponseBody>> {
    let mut response = empty_response(status)?;
    add_version_header(&mut response, req, bucket, record);
    Ok(response)
}

fn add_version_header(
    response: &mut Response<ResponseBody>,
    req: &ApiRequest,
    bucket: &BucketRecord,
    record: &ObjectRecord,
) {
    insert_headers(
        response,
        version_header(req, bucket, record.version_id.as_deref()),
    );
}
