//! CopyObject, and the copy-source resolution it shares with UploadPartCopy.

use coffer_store::ObjectRecord;
use http::Response;

use super::checksum::ChecksumType;
use super::conditional;
use super::get::{Precondition, check_preconditions};
use super::object::CRC64_HEADER;
use super::object::{stored_headers, validate_key};
use super::object_tagging;
use super::{insert_headers, iso8601, now_ms, quoted, retention, versioning, worm, xml_with_etag};
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::object_io::{self, BodySource};
use crate::request::Dialect;
use crate::request::{ApiRequest, path_decode};
use crate::sse::{self, ResponseHeaders};
use crate::state::AppState;

/// The object a copy reads from.
pub struct CopySource {
    pub bucket: String,
    pub key: String,
    pub record: ObjectRecord,
    /// `x-amz-copy-source-version-id` of the answer, when the source bucket is versioned.
    pub version_header: Option<(String, String)>,
}

/// Resolves `x-amz-copy-source` (`[/]bucket/key[?versionId=…]`, URL-encoded),
/// checks the principal may read it and evaluates the copy-source
/// conditions.
pub async fn copy_source(state: &AppState, req: &ApiRequest) -> ApiResult<CopySource> {
    let raw = req.vendor_header("copy-source").ok_or_else(|| {
        ApiError::invalid_argument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        )
    })?;
    let (raw, version_id) = match raw.split_once("?versionId=") {
        Some((path, id)) => (path, Some(id)),
        None => (raw, None),
    };
    let version = match version_id {
        Some("") => return Err(ApiError::invalid_argument("Invalid version id specified")),
        Some(id) => Some(path_decode(id)?),
        None => None,
    };
    let which = version.as_deref().map(coffer_store::VersionRef::from_query);
    let decoded = path_decode(raw.trim_start_matches('/'))?;
    let (bucket, key) = decoded
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| {
            ApiError::invalid_argument(
                "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            )
        })?;
    let (bucket, key) = (bucket.to_owned(), key.to_owned());

    // `s3:GetObject` on the source, under the source bucket's policy and transport rules.
    let source_bucket =
        crate::authz::authorize_copy_source(state, req, &bucket, &key, version.as_deref()).await?;
    let record = versioning::read_version(state, req, &source_bucket, &key, which).await?;
    let version_header =
        versioning::version_header(req, &source_bucket, record.version_id.as_deref())
            .map(|(_, value)| (req.dialect.header("copy-source-version-id"), value));

    // A copy source that "was not modified" is a failed copy, not a 304.
    let copy_header = |name: &str| req.vendor_header(&format!("copy-source-{name}"));
    if check_preconditions(copy_header, &record)? == Precondition::NotModified {
        return Err(ApiError::new(
            ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        ));
    }
    Ok(CopySource {
        bucket,
        key,
        record,
        version_header,
    })
}

impl CopySource {
    /// The source's body, opened with the copy-source SSE-C key if needed.
    pub fn body(&self, state: &AppState, req: &ApiRequest) -> ApiResult<BodySource> {
        let name = coffer_keying::ObjectName {
            bucket: &self.bucket,
            key: &self.key,
            stored: &self.record.headers,
        };
        let opening = sse::open_stored(state, req, self.record.envelope.as_deref(), name, true)?;
        Ok(BodySource {
            extents: self.record.extents.clone(),
            opening,
        })
    }
}

/// The source's checksum if it covers its whole body (a single PUT, or a
/// FULL_OBJECT multipart checksum).
fn whole_body_checksum(record: &ObjectRecord) -> Option<(String, String)> {
    let whole = record.extents.len() <= 1
        || record.checksum_type.as_deref() == Some(ChecksumType::FullObject.name());
    record.checksum.clone().filter(|_| whole)
}

pub async fn copy_object(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let key = req.key()?.to_owned();
    validate_key(req.dialect, &key)?;
    let target = super::authorized_bucket(state, req).await?;
    let condition = conditional::requested(req, target.versioning)?;
    let source = copy_source(state, req).await?;
    conditional::check_now(state, &target.name, &key, &condition).await?;
    let lock = retention::for_new_version(req, &target, now_ms())?;
    // A copy gets the ACL its request asks for, never its source's (as on S3).
    let access = super::acl::for_new_object(state, req, &target).await?;
    let replace = match req.vendor_header("metadata-directive") {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(_) => {
            return Err(ApiError::invalid_argument(
                "Unknown metadata directive: expected COPY or REPLACE.",
            ));
        }
    };
    // Re-encrypting in place is a change; so is a copy that the target's
    // rule (or the server's default) protects otherwise than its source.
    let changes_encryption = req.vendor_header("server-side-encryption").is_some()
        || sse::customer_key(req, false)?.is_some()
        || sse::copy_changes_protection(state, req, &target, source.record.envelope.as_deref())?;
    if source.bucket == target.name && source.key == key && !replace && !changes_encryption {
        return Err(ApiError::invalid_request(
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let mut headers = if replace {
        stored_headers(&req.headers, req.dialect)?
    } else {
        source.record.headers.clone()
    };
    // The source's KMS context belongs to its data key, not to the copy.
    headers.retain(|(name, _)| name != coffer_keying::CONTEXT_ATTRIBUTE);
    let size = source.record.size;
    let body = source.body(state, req)?;
    // The copy is a new object: sealed (or not) as this request and the
    // target bucket's default say, whatever the source's encryption was.
    let sealing = sse::seal_new(state, req, &target, &key)?;
    let blob_target = object_io::BlobTarget::single_part(sealing.as_ref());
    if let Some(sealing) = &sealing {
        headers.extend_from_slice(sealing.stored_attributes());
    }
    let staged = object_io::copy_range(state, body, 0..size, blob_target, None).await?;
    let (etag, staged_crc64) = (staged.etag(), staged.crc64);
    let modified = now_ms();
    // From here to the commit, a failure discards the staged blob.
    let commit = async {
        let envelope = sealing
            .as_ref()
            .map(|s| s.single_part_envelope(staged.size))
            .transpose()?;
        // A copy is a new single-part object: its ETag is the MD5 of its bytes.
        let record = ObjectRecord {
            size: staged.size,
            etag: etag.clone(),
            last_modified_ms: modified,
            owner: access.owner,
            acl: access.acl,
            headers,
            // A checksum of the whole body still holds for the copy; one made
            // of parts' checksums belongs to the source's parts.
            checksum: whole_body_checksum(&source.record),
            checksum_type: whole_body_checksum(&source.record)
                .map(|_| ChecksumType::FullObject.name().to_owned()),
            extents: vec![staged.extent(None)],
            envelope,
            crc64: Some(staged.crc64),
            tags: object_tagging::copy_tags(req, &source.record)?,
            retention: lock.retention,
            legal_hold: lock.legal_hold,
            ..Default::default()
        };
        let guard =
            worm::guard_current(state, &target, &key, condition.condition().clone()).await?;
        state
            .meta
            .put_object(&target.name, &key, record, guard.condition())
            .await
            .map_err(|e| guard.refusal(conditional::write_error(&condition, e.into())))
    };
    let written =
        object_io::commit_staged(state, std::slice::from_ref(&staged.blob), commit).await?;
    let mut w = req.xml("CopyObjectResult");
    w.elem("LastModified", iso8601(modified))
        .elem("ETag", quoted(&etag));
    let mut response = xml_with_etag(w.finish(), &etag)?;
    let version_headers = source
        .version_header
        .iter()
        .cloned()
        .chain(versioning::version_header(
            req,
            &target,
            written.version_id.as_deref(),
        ));
    insert_headers(
        &mut response,
        sealing
            .iter()
            .flat_map(|s| s.headers(req.dialect))
            .chain(version_headers),
    );
    if req.dialect == Dialect::Oss {
        response
            .headers_mut()
            .insert(CRC64_HEADER, staged_crc64.into());
    }
    Ok(response)
}
