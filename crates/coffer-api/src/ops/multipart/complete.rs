//! CompleteMultipartUpload: the parts checked against the request (ETags,
//! per-part checksums, sizes), the object's ETag, CRC-64 and checksum made
//! from them, the conditional write, and the answer a retried completion
//! gets once the upload is gone.

use coffer_auth::checksum::ChecksumAlgorithm;
use coffer_auth::sigv4::Payload;
use coffer_store::{Extent, ObjectRecord, PartRecord, StoreError};
use http::Response;
use hyper::body::Incoming;
use md5::{Digest, Md5};

use super::{MAX_PARTS, Upload, existing_upload, upload_id};
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::ops::checksum::{ChecksumType, UploadChecksum, checksum_element, stored_digest};
use crate::ops::insert_headers;
use crate::ops::object::CRC64_HEADER;
use crate::ops::{
    authorized_bucket, conditional, now_ms, quoted, small_body_without_checksums, worm,
    xml_with_etag,
};
use crate::request::{ApiRequest, Dialect};
use crate::sse;
use crate::state::AppState;
use crate::xml;

pub async fn complete_upload(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let upload = match existing_upload(state, req).await {
        Ok(upload) => upload,
        Err(error) if error.code == ErrorCode::NoSuchUpload => {
            return completed_before(state, req, error).await;
        }
        Err(error) => return Err(error),
    };
    let target = state.meta.get_bucket(&upload.bucket).await?;
    let condition = conditional::requested(req, target.versioning)?;
    let body = small_body_without_checksums(req, body, payload).await?;
    let request: xml::CompleteRequest = xml::parse(&body)?;
    if request.parts.is_empty() {
        return Err(ApiError::malformed_xml());
    }
    if request
        .parts
        .windows(2)
        .any(|pair| pair[0].part_number >= pair[1].part_number)
    {
        return Err(ApiError::new(
            ErrorCode::InvalidPartOrder,
            "The list of parts was not in ascending order. The parts list must be specified in order by part number.",
        ));
    }
    let Upload {
        bucket,
        key,
        id,
        record: upload,
    } = upload;
    let (uploaded, _) = state
        .meta
        .list_parts(&bucket, &key, &id, 0, MAX_PARTS as usize)
        .await?;
    let declared = UploadChecksum::of_upload(&upload);
    let chosen = chosen_parts(&request.parts, &uploaded, declared)?;

    let floor = req.dialect.min_part_size();
    if let Some((_, all_but_last)) = chosen.split_last()
        && let Some(small) = all_but_last.iter().find(|p| p.size < floor)
    {
        return Err(ApiError::new(
            ErrorCode::EntityTooSmall,
            format!(
                "Your proposed upload is smaller than the minimum allowed size (part {} is {} bytes; every part but the last must be at least {floor} bytes).",
                small.part_number, small.size
            ),
        ));
    }
    let size = chosen.iter().map(|p| p.size).sum();
    let checksum = match declared {
        Some(declared) => Some(object_checksum(req, declared, &chosen)?),
        None => None,
    };
    if let Some(text) = req.header("x-amz-mp-object-size")
        && text.trim().parse::<u64>().ok() != Some(size)
    {
        return Err(ApiError::invalid_request(format!(
            "The provided 'x-amz-mp-object-size' header value {text} does not match what was computed: {size}"
        )));
    }
    conditional::check_now(state, &bucket, &key, &condition).await?;

    let record = ObjectRecord {
        size,
        etag: multipart_etag(&chosen)?,
        last_modified_ms: now_ms(),
        owner: upload.owner.clone(),
        headers: upload.headers.clone(),
        checksum: checksum.map(|(algorithm, value)| (algorithm.name().to_owned(), value)),
        checksum_type: declared.map(|d| d.kind.name().to_owned()),
        extents: chosen
            .iter()
            .map(|p| Extent {
                blob: p.blob.clone(),
                size: if upload.envelope.is_some() {
                    coffer_crypto::sealed::sealed_size(p.size)
                } else {
                    p.size
                },
                part_number: Some(p.part_number),
                etag: Some(p.etag.clone()),
                checksum: p.checksum.clone(),
                plain_size: Some(p.size),
            })
            .collect(),
        envelope: upload
            .envelope
            .as_deref()
            .map(|envelope| {
                let name = coffer_keying::ObjectName {
                    bucket: &bucket,
                    key: &key,
                    stored: &upload.headers,
                };
                let layout: Vec<_> = chosen.iter().map(|p| (p.part_number, p.size)).collect();
                sse::completed_envelope(state, req, envelope, name, &layout)
            })
            .transpose()?,
        crc64: combined_crc64(&chosen),
        tags: upload.tags.clone(),
        retention: upload.retention.clone(),
        legal_hold: upload.legal_hold,
        acl: upload.acl.clone(),
        upload_id: Some(id.clone()),
        ..Default::default()
    };
    let mut answered = record.clone();
    let guard = worm::guard_current(state, &target, &key, condition.condition().clone()).await?;
    match state
        .meta
        .complete_upload(&bucket, &key, &id, record, guard.condition())
        .await
    {
        Ok(written) => {
            answered.version_id = written.version_id;
            completion_response(req, &bucket, &key, &answered)
        }
        // A completion of the same upload committed first.
        Err(StoreError::NoSuchUpload) => {
            completed_before(state, req, ApiError::no_such_upload()).await
        }
        Err(error) => Err(guard.refusal(conditional::write_error(&condition, error.into()))),
    }
}

/// The parts the request names, each checked against the uploaded one:
/// its ETag and, where the request gives one, its checksum (InvalidPart if
/// either differs). An upload that declared a COMPOSITE checksum needs each
/// part's checksum in the request, as S3 does.
fn chosen_parts<'a>(
    wanted: &[xml::CompletePart],
    uploaded: &'a [PartRecord],
    declared: Option<UploadChecksum>,
) -> ApiResult<Vec<&'a PartRecord>> {
    let invalid_part = || ApiError::from(StoreError::InvalidPart);
    let mut chosen = Vec::with_capacity(wanted.len());
    for wanted in wanted {
        let part = uploaded
            .iter()
            .find(|p| p.part_number == wanted.part_number)
            .ok_or_else(invalid_part)?;
        if wanted.etag.trim().trim_matches('"') != part.etag {
            return Err(invalid_part());
        }
        let mut named = false;
        for (algorithm, value) in wanted.checksums() {
            let matches = part.checksum.as_ref().is_some_and(|(name, stored)| {
                ChecksumAlgorithm::from_name(name) == Some(algorithm) && stored == value
            });
            if !matches {
                return Err(invalid_part());
            }
            named |= declared.is_some_and(|d| d.algorithm == algorithm);
        }
        if let Some(declared) = declared
            && declared.kind == ChecksumType::Composite
            && !named
        {
            return Err(ApiError::invalid_request(format!(
                "The upload was created using a {} checksum. The complete request must include the checksum for each part. It was missing for part {} in the request.",
                declared.algorithm.name().to_ascii_lowercase(),
                wanted.part_number
            )));
        }
        chosen.push(part);
    }
    Ok(chosen)
}

/// The object's checksum from its parts', checked against the
/// completion's own `x-amz-checksum-*` and `x-amz-checksum-type` headers
/// when it sends them.
fn object_checksum(
    req: &ApiRequest,
    declared: UploadChecksum,
    chosen: &[&PartRecord],
) -> ApiResult<(ChecksumAlgorithm, String)> {
    let digests = chosen
        .iter()
        .map(|p| {
            let digest = p
                .checksum
                .as_ref()
                .and_then(|stored| stored_digest(stored, declared.algorithm));
            digest.map(|d| (d, p.size)).ok_or_else(|| {
                ApiError::invalid_request(format!(
                    "Part {} was uploaded without a {} checksum.",
                    p.part_number,
                    declared.algorithm.name().to_ascii_lowercase()
                ))
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let value = declared
        .object_checksum(&digests)
        .ok_or_else(|| ApiError::internal("object checksum", "stored part digests"))?;
    if let Some(kind) = req.header("x-amz-checksum-type")
        && !kind.trim().eq_ignore_ascii_case(declared.kind.name())
    {
        return Err(ApiError::invalid_request(format!(
            "The upload was created using the {} checksum mode. The complete request must use the same checksum mode.",
            declared.kind.name()
        )));
    }
    for algorithm in ChecksumAlgorithm::ALL {
        let Some(sent) = req.header(algorithm.header_name()) else {
            continue;
        };
        if algorithm != declared.algorithm {
            return Err(ApiError::invalid_request(format!(
                "The upload was created using a {} checksum; the complete request sent {}.",
                declared.algorithm.name().to_ascii_lowercase(),
                algorithm.header_name()
            )));
        }
        let bare = |v: &str| v.trim().split('-').next().unwrap_or_default().to_owned();
        if bare(sent) != bare(&value) {
            return Err(ApiError::bad_digest(format!(
                "The {} you specified did not match the calculated checksum.",
                algorithm.name()
            )));
        }
    }
    Ok((declared.algorithm, value))
}

/// The multipart ETag: the MD5 of the parts' MD5s, then `-N`.
fn multipart_etag(chosen: &[&PartRecord]) -> ApiResult<String> {
    let mut md5_of_md5s = Md5::new();
    for part in chosen {
        let digest =
            hex::decode(&part.etag).map_err(|e| ApiError::internal("stored part ETag", e))?;
        md5_of_md5s.update(&digest);
    }
    Ok(format!(
        "{}-{}",
        hex::encode(md5_of_md5s.finalize()),
        chosen.len()
    ))
}

/// The object's CRC-64 from its parts' (absent if any part lacks one).
fn combined_crc64(parts: &[&PartRecord]) -> Option<u64> {
    parts
        .iter()
        .try_fold(coffer_auth::crc64_xz(&[]), |crc, part| {
            Some(coffer_auth::checksum::crc64_xz_combine(
                crc,
                part.crc64?,
                part.size,
            ))
        })
}

/// A completion of an upload that no longer exists: if the key's current
/// object was completed from it, this is a retry (the first answer was
/// lost) and gets the first answer again, as S3 gives it; otherwise
/// `error` (NoSuchUpload).
async fn completed_before(
    state: &AppState,
    req: &ApiRequest,
    error: ApiError,
) -> ApiResult<Response<ResponseBody>> {
    let key = req.key()?;
    let bucket = authorized_bucket(state, req).await?;
    let id = upload_id(req)?;
    match state.meta.get_object(&bucket.name, key).await {
        Ok(record) if record.upload_id.as_deref() == Some(id.as_str()) => {
            completion_response(req, &bucket.name, key, &record)
        }
        Ok(_) | Err(StoreError::NoSuchKey) => Err(error),
        Err(other) => Err(other.into()),
    }
}

/// The answer to a completion that made `record`: the same for the first
/// completion and for its retries.
fn completion_response(
    req: &ApiRequest,
    bucket: &str,
    key: &str,
    record: &ObjectRecord,
) -> ApiResult<Response<ResponseBody>> {
    let mut w = req.xml("CompleteMultipartUploadResult");
    w.elem("Location", format!("/{bucket}/{key}"))
        .elem("Bucket", bucket)
        .elem("Key", key)
        .elem("ETag", quoted(&record.etag));
    if let Some(checksum) = &record.checksum {
        checksum_element(&mut w, checksum);
        w.elem_opt("ChecksumType", record.checksum_type.as_deref());
    }
    let mut response = xml_with_etag(w.finish(), &record.etag)?;
    let sse_headers = record
        .envelope
        .as_deref()
        .map(|envelope| sse::describe_stored(req.dialect, envelope))
        .unwrap_or_default();
    insert_headers(&mut response, sse_headers);
    if let Some(version_id) = &record.version_id {
        insert_headers(
            &mut response,
            [(req.dialect.header("version-id"), version_id.clone())],
        );
    }
    if let (Dialect::Oss, Some(crc64)) = (req.dialect, record.crc64) {
        response.headers_mut().insert(CRC64_HEADER, crc64.into());
    }
    Ok(response)
}
