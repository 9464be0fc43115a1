//! Multipart uploads: Create, UploadPart, UploadPartCopy, Abort, ListParts,
//! ListMultipartUploads; Complete in [`complete`].

mod complete;

pub use complete::complete_upload;

use coffer_auth::sigv4::Payload;
use coffer_store::{PartRecord, UploadListQuery, UploadRecord};
use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::checksum::{UploadChecksum, checksum_element};
use super::conditional;
use super::copy::copy_source;
use super::object::{stored_headers, validate_key};
use super::object_tagging;
use super::put::upload_response;
use super::{
    authorized_bucket, empty_response, insert_headers, iso8601, now_ms, quoted, xml_response,
    xml_with_etag,
};
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult};
use crate::object_io::{self, BlobTarget, BodyRules, StagedBody};
use crate::request::ApiRequest;
use crate::sse::{self, ResponseHeaders};
use crate::state::{AppState, owner_id};
use crate::xml::{self, XmlWriter};

const MAX_PARTS: i64 = 10_000;

fn upload_id(req: &ApiRequest) -> ApiResult<String> {
    req.query
        .get("uploadId")
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(ApiError::no_such_upload)
}

fn part_number(req: &ApiRequest) -> ApiResult<u32> {
    match req.query.get("partNumber").map(str::parse::<i64>) {
        Some(Ok(n)) if (1..=MAX_PARTS).contains(&n) => Ok(n as u32),
        _ => Err(ApiError::invalid_argument(
            "Part number must be an integer between 1 and 10000, inclusive",
        )),
    }
}

pub async fn create_upload(
    state: &AppState,
    req: &ApiRequest,
) -> ApiResult<Response<ResponseBody>> {
    let key = req.key()?.to_owned();
    validate_key(req.dialect, &key)?;
    let bucket = authorized_bucket(state, req).await?;
    // OSS checks x-oss-forbid-overwrite here as well as on completion, so that a long upload
    // to a key that exists is refused before it starts.
    if conditional::forbids_overwrite(req, bucket.versioning)? {
        let forbidden = conditional::WriteCondition::NO_OVERWRITE;
        conditional::check_now(state, &bucket.name, &key, &forbidden).await?;
    }
    let checksum = UploadChecksum::declared(req)?;
    // One data key and object id for the whole upload; each part is
    // sealed independently under them with its own part number.
    let sealing = sse::seal_new(state, req, &bucket, &key)?;
    let lock = super::retention::for_new_version(req, &bucket, now_ms())?;
    let access = super::acl::for_new_object(state, req, &bucket).await?;
    let upload = UploadRecord {
        upload_id: String::new(),
        key: key.clone(),
        initiated_ms: now_ms(),
        owner: access.owner,
        acl: access.acl,
        headers: {
            let mut headers = stored_headers(&req.headers, req.dialect)?;
            if let Some(sealing) = &sealing {
                headers.extend_from_slice(sealing.stored_attributes());
            }
            headers
        },
        checksum_algorithm: checksum.map(|c| c.algorithm.name().to_owned()),
        checksum_type: checksum.map(|c| c.kind.name().to_owned()),
        envelope: sealing.as_ref().map(|s| s.upload_envelope()).transpose()?,
        tags: object_tagging::request_tags(req)?,
        retention: lock.retention,
        legal_hold: lock.legal_hold,
    };
    let id = state.meta.create_upload(&bucket.name, &key, upload).await?;
    let mut w = req.xml("InitiateMultipartUploadResult");
    w.elem("Bucket", &bucket.name)
        .elem("Key", &key)
        .elem("UploadId", &id);
    let mut response = xml_response(StatusCode::OK, w.finish())?;
    insert_headers(
        &mut response,
        sealing.iter().flat_map(|s| s.headers(req.dialect)),
    );
    if let Some(checksum) = checksum {
        insert_headers(
            &mut response,
            [
                ("x-amz-checksum-algorithm", checksum.algorithm.name()),
                ("x-amz-checksum-type", checksum.kind.name()),
            ]
            .map(|(name, value)| (name.to_owned(), value.to_owned())),
        );
    }
    Ok(response)
}

/// An upload the request names, checked to exist before any body is read.
struct Upload {
    bucket: String,
    key: String,
    id: String,
    record: UploadRecord,
}

impl Upload {
    fn name(&self) -> coffer_keying::ObjectName<'_> {
        coffer_keying::ObjectName {
            bucket: &self.bucket,
            key: &self.key,
            stored: &self.record.headers,
        }
    }

    /// Where a part's bytes go: sealed under the upload's data key (SSE-C:
    /// the key must come with every part) or plain.
    fn part_target(
        &self,
        state: &AppState,
        req: &ApiRequest,
        number: u32,
    ) -> ApiResult<(BlobTarget, Vec<(String, String)>)> {
        match &self.record.envelope {
            None => Ok((BlobTarget::Plain, Vec::new())),
            Some(envelope) => {
                let sealing = sse::open(state, req, envelope, self.name(), false)?.into_sealing();
                Ok((
                    BlobTarget::Sealed(sealing.sealer(number)),
                    sealing.headers(req.dialect),
                ))
            }
        }
    }
}

async fn existing_upload(state: &AppState, req: &ApiRequest) -> ApiResult<Upload> {
    let key = req.key()?.to_owned();
    let bucket = authorized_bucket(state, req).await?;
    let id = upload_id(req)?;
    let record = state.meta.get_upload(&bucket.name, &key, &id).await?;
    Ok(Upload {
        bucket: bucket.name,
        key,
        id,
        record,
    })
}

async fn commit_part(
    state: &AppState,
    upload: &Upload,
    number: u32,
    staged: &StagedBody,
) -> ApiResult<i64> {
    let (bucket, key, id) = (upload.bucket.clone(), upload.key.clone(), upload.id.clone());
    let part = PartRecord {
        part_number: number,
        etag: staged.etag(),
        size: staged.size,
        last_modified_ms: now_ms(),
        blob: staged.blob.clone(),
        checksum: staged
            .checksum
            .as_ref()
            .map(|(a, v)| (a.name().to_owned(), v.clone())),
        envelope: None,
        crc64: Some(staged.crc64),
    };
    let modified = part.last_modified_ms;
    let commit = async { Ok(state.meta.put_part(&bucket, &key, &id, part).await?) };
    object_io::commit_staged(state, std::slice::from_ref(&staged.blob), commit).await?;
    Ok(modified)
}

pub async fn upload_part(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let number = part_number(req)?;
    let upload = existing_upload(state, req).await?;
    super::retention::require_part_integrity(req, &upload.record)?;
    let mut rules = BodyRules::from_headers(&req.headers, payload)?;
    if let Some(declared) = UploadChecksum::of_upload(&upload.record) {
        rules = rules.with_checksum(declared.algorithm)?;
    }
    let (target, sse_headers) = upload.part_target(state, req, number)?;
    let staged = object_io::ingest(state, body, rules, target, req.body_read_timeout).await?;
    commit_part(state, &upload, number, &staged).await?;
    upload_response(req, &staged, sse_headers)
}

pub async fn upload_part_copy(
    state: &AppState,
    req: &ApiRequest,
) -> ApiResult<Response<ResponseBody>> {
    let number = part_number(req)?;
    let upload = existing_upload(state, req).await?;
    let source = copy_source(state, req).await?;
    let size = source.record.size;
    let range = match req.vendor_header("copy-source-range") {
        None => 0..size,
        Some(header) => copy_source_range(header, size)?,
    };
    let body = source.body(state, req)?;
    let (target, sse_headers) = upload.part_target(state, req, number)?;
    let checksum = UploadChecksum::of_upload(&upload.record).map(|c| c.algorithm);
    let staged = object_io::copy_range(state, body, range, target, checksum).await?;
    let modified = commit_part(state, &upload, number, &staged).await?;
    let mut w = req.xml("CopyPartResult");
    w.elem("LastModified", iso8601(modified))
        .elem("ETag", quoted(&staged.etag()));
    let mut response = xml_with_etag(w.finish(), &staged.etag())?;
    insert_headers(&mut response, sse_headers);
    insert_headers(&mut response, source.version_header.clone());
    Ok(response)
}

pub async fn abort_upload(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let Upload {
        bucket, key, id, ..
    } = existing_upload(state, req).await?;
    state.meta.abort_upload(&bucket, &key, &id).await?;
    empty_response(StatusCode::NO_CONTENT)
}

pub async fn list_parts(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let Upload {
        bucket, key, id, ..
    } = existing_upload(state, req).await?;
    let marker = req
        .query
        .number("part-number-marker", 0..=MAX_PARTS)?
        .unwrap_or(0) as u32;
    let max_parts = req
        .query
        .number("max-parts", 0..=i64::MAX)?
        .unwrap_or(1000)
        .min(1000) as usize;
    let upload = state.meta.get_upload(&bucket, &key, &id).await?;
    let (parts, truncated) = state
        .meta
        .list_parts(&bucket, &key, &id, marker, max_parts)
        .await?;
    let mut w = req.xml("ListPartsResult");
    w.elem("Bucket", &bucket)
        .elem("Key", &key)
        .elem("UploadId", &id);
    person(&mut w, "Initiator", &upload.owner);
    person(&mut w, "Owner", &upload.owner);
    // oss2 requires NextPartNumberMarker even on the last page.
    let next_marker = parts.last().map_or(marker, |p| p.part_number);
    w.elem("StorageClass", req.storage_class())
        .elem("PartNumberMarker", marker.to_string())
        .elem("NextPartNumberMarker", next_marker.to_string());
    w.elem("MaxParts", max_parts.to_string())
        .elem("IsTruncated", truncated.to_string());
    if let Some(declared) = UploadChecksum::of_upload(&upload) {
        w.elem("ChecksumAlgorithm", declared.algorithm.name())
            .elem("ChecksumType", declared.kind.name());
    }
    for part in &parts {
        w.start("Part")
            .elem("PartNumber", part.part_number.to_string())
            .elem("LastModified", iso8601(part.last_modified_ms))
            .elem("ETag", quoted(&part.etag))
            .elem("Size", part.size.to_string());
        if let Some(checksum) = &part.checksum {
            checksum_element(&mut w, checksum);
        }
        w.end();
    }
    xml_response(StatusCode::OK, w.finish())
}

pub async fn list_uploads(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let q = &req.query;
    let query = UploadListQuery {
        prefix: q.get("prefix").unwrap_or_default().to_owned(),
        delimiter: q
            .get("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        key_marker: q
            .get("key-marker")
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        upload_id_marker: q
            .get("upload-id-marker")
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        max_uploads: q
            .number("max-uploads", 0..=i64::MAX)?
            .unwrap_or(1000)
            .min(1000) as usize,
    };
    let max_uploads = query.max_uploads;
    let url_encoded = req.url_encoding()?;
    let enc = |s: &str| xml::encode_key(s, url_encoded);
    let page = state.meta.list_uploads(&bucket.name, &query).await?;
    let mut w = req.xml("ListMultipartUploadsResult");
    w.elem("Bucket", &bucket.name)
        .elem("KeyMarker", q.get("key-marker").unwrap_or_default())
        .elem(
            "UploadIdMarker",
            q.get("upload-id-marker").unwrap_or_default(),
        );
    // oss2 requires both Next… markers, empty on the last page.
    w.elem(
        "NextKeyMarker",
        enc(page.next_key_marker.as_deref().unwrap_or_default()),
    )
    .elem(
        "NextUploadIdMarker",
        page.next_upload_id_marker.as_deref().unwrap_or_default(),
    )
    .elem("Prefix", enc(req.param("prefix").unwrap_or_default()));
    w.elem_opt("Delimiter", req.param("delimiter").map(enc));
    if url_encoded {
        w.elem("EncodingType", "url");
    }
    w.elem("MaxUploads", max_uploads.to_string())
        .elem("IsTruncated", page.is_truncated.to_string());
    for upload in &page.uploads {
        w.start("Upload")
            .elem("Key", enc(&upload.key))
            .elem("UploadId", &upload.upload_id);
        person(&mut w, "Initiator", &upload.owner);
        person(&mut w, "Owner", &upload.owner);
        w.elem("StorageClass", req.storage_class())
            .elem("Initiated", iso8601(upload.initiated_ms))
            .end();
    }
    for prefix in &page.common_prefixes {
        w.start("CommonPrefixes").elem("Prefix", enc(prefix)).end();
    }
    xml_response(StatusCode::OK, w.finish())
}

fn person(w: &mut XmlWriter, element: &'static str, name: &str) {
    w.start(element)
        .elem("ID", owner_id(name))
        .elem("DisplayName", name)
        .end();
}

/// `x-amz-copy-source-range: bytes=first-last`, both ends required and
/// inside the source object.
fn copy_source_range(header: &str, size: u64) -> ApiResult<std::ops::Range<u64>> {
    let invalid = || {
        ApiError::invalid_argument(format!(
            "Range specified is not valid for source object of size: {size}"
        ))
    };
    let (first, last) = header
        .trim()
        .strip_prefix("bytes=")
        .and_then(|s| s.split_once('-'))
        .ok_or_else(invalid)?;
    let first: u64 = first.trim().parse().map_err(|_| invalid())?;
    let last: u64 = last.trim().parse().map_err(|_| invalid())?;
    if first > last || last >= size {
        return Err(invalid());
    }
    Ok(first..last + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_ranges() {
        assert_eq!(copy_source_range("bytes=0-9", 100).ok(), Some(0..10));
        assert_eq!(copy_source_range("bytes=99-99", 100).ok(), Some(99..100));
        for bad in [
            "bytes=0-100",
            "bytes=5-",
            "bytes=-5",
            "bytes=9-3",
            "0-9",
            "bytes=a-b",
        ] {
            assert!(copy_source_range(bad, 100).is_err(), "{bad}");
        }
    }
}
