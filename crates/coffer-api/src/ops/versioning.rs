//! Versioning: the bucket's `?versioning` state, ListObjectVersions (`?versions`), and the
//! version rules every object operation shares — which version a request names
//! (`versionId`), how a delete marker answers, and the `x-amz-version-id` header.

use coffer_auth::sigv4::Payload;
use coffer_store::{BucketRecord, StoreError, Version, VersionListQuery, VersionRef, Versioning};
use http::{Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;

use super::object::object_type;
use super::{authorized_bucket, empty_response, iso8601, quoted, small_body, xml_response};
use crate::body::ResponseBody;
use crate::bucket_config::object_lock::OBJECT_LOCK_KEY;
use crate::error::{ApiError, ApiResult, ErrorCode};
pub use crate::object_io::version::{read_version, wire_version_id};
use crate::request::{ApiRequest, Dialect};
use crate::state::{AppState, owner_id};
use crate::xml::{self, encode_key};

/// The `versionId` a request names: `None` when it names none (the current object).
pub fn requested_version(req: &ApiRequest) -> ApiResult<Option<VersionRef>> {
    match req.query.get("versionId") {
        None => Ok(None),
        Some("") => Err(ApiError::invalid_argument(
            "Version id cannot be the empty string",
        )),
        Some(id) => Ok(Some(VersionRef::from_query(id))),
    }
}

/// The version-id header of a response about `version_id` in `bucket`: present once the
/// bucket has had versioning enabled (`null` for a null version), absent before.
pub fn version_header(
    req: &ApiRequest,
    bucket: &BucketRecord,
    version_id: Option<&str>,
) -> Option<(String, String)> {
    if bucket.versioning == Versioning::Unversioned && version_id.is_none() {
        return None;
    }
    Some((
        req.dialect.header("version-id"),
        wire_version_id(version_id).to_owned(),
    ))
}

/// `<VersioningConfiguration>`, as both dialects send it.
#[derive(Debug, Deserialize)]
struct VersioningConfiguration {
    #[serde(rename = "Status")]
    status: Option<String>,
    #[serde(rename = "MfaDelete")]
    mfa_delete: Option<String>,
}

/// PutBucketVersioning (`PUT ?versioning`).
pub async fn put_versioning(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let body = small_body(req, body, payload).await?;
    let config: VersioningConfiguration = xml::parse(&body)?;
    if config.mfa_delete.as_deref() == Some("Enabled") {
        return Err(ApiError::not_implemented("MFA delete"));
    }
    let versioning = match config.status.as_deref() {
        Some("Enabled") => Versioning::Enabled,
        Some("Suspended") => Versioning::Suspended,
        _ => return Err(ApiError::malformed_xml()),
    };
    if versioning == Versioning::Suspended && bucket.config.contains_key(OBJECT_LOCK_KEY) {
        return Err(ApiError::new(
            ErrorCode::InvalidBucketState,
            "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.",
        ));
    }
    state
        .meta
        .set_bucket_versioning(&bucket.name, versioning)
        .await?;
    empty_response(StatusCode::OK)
}

/// GetBucketVersioning (`GET ?versioning`): no `Status` until versioning was first enabled.
pub async fn get_versioning(
    state: &AppState,
    req: &ApiRequest,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let mut w = req.xml("VersioningConfiguration");
    match bucket.versioning {
        Versioning::Unversioned => {}
        Versioning::Enabled => {
            w.elem("Status", "Enabled");
        }
        Versioning::Suspended => {
            w.elem("Status", "Suspended");
        }
    }
    xml_response(StatusCode::OK, w.finish())
}

/// ListObjectVersions (`GET ?versions`): versions and delete markers by key, newest first.
pub async fn list_versions(
    state: &AppState,
    req: &ApiRequest,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let url_encoded = req.url_encoding()?;
    let max_keys = super::list::max_keys(req)?;
    let key_marker = req.param("key-marker").filter(|m| !m.is_empty());
    let version_id_marker = req.param("version-id-marker").filter(|m| !m.is_empty());
    if version_id_marker.is_some() && key_marker.is_none() {
        return Err(ApiError::invalid_argument(
            "A version-id marker cannot be specified without a key marker.",
        ));
    }
    let query = VersionListQuery {
        prefix: req.param("prefix").unwrap_or_default().to_owned(),
        delimiter: req.param("delimiter").map(str::to_owned),
        key_marker: key_marker.map(str::to_owned),
        version_id_marker: version_id_marker.map(str::to_owned),
        max_keys,
    };
    let page = match state.meta.list_versions(&bucket.name, &query).await {
        Err(StoreError::InvalidArgument(_)) => {
            return Err(ApiError::invalid_argument("Invalid version id specified"));
        }
        other => other?,
    };

    let enc = |s: &str| encode_key(s, url_encoded);
    let mut w = req.xml("ListVersionsResult");
    w.elem("Name", &bucket.name)
        .elem("Prefix", enc(&query.prefix))
        .elem("KeyMarker", enc(key_marker.unwrap_or_default()))
        .elem("VersionIdMarker", version_id_marker.unwrap_or_default());
    if page.is_truncated {
        w.elem_opt("NextKeyMarker", page.next_key_marker.as_deref().map(enc));
        w.elem_opt(
            "NextVersionIdMarker",
            page.next_version_id_marker.as_deref(),
        );
    }
    w.elem("MaxKeys", max_keys.to_string());
    match (req.dialect, query.delimiter.as_deref()) {
        (_, Some(delimiter)) => {
            w.elem("Delimiter", enc(delimiter));
        }
        // oss2 requires the element, empty when there is no delimiter.
        (Dialect::Oss, None) => {
            w.elem("Delimiter", "");
        }
        (Dialect::S3, None) => {}
    }
    if url_encoded {
        w.elem("EncodingType", "url");
    }
    w.elem("IsTruncated", page.is_truncated.to_string());
    for listed in &page.versions {
        let version_id = wire_version_id(listed.version.version_id());
        match &listed.version {
            Version::Object(object) => {
                w.start("Version")
                    .elem("Key", enc(&listed.key))
                    .elem("VersionId", version_id)
                    .elem("IsLatest", listed.is_latest.to_string())
                    .elem("LastModified", iso8601(object.last_modified_ms))
                    .elem("ETag", quoted(&object.etag));
                if req.dialect == Dialect::Oss {
                    w.elem("Type", object_type(object));
                }
                w.elem("Size", object.size.to_string())
                    .elem("StorageClass", req.storage_class());
                owner(&mut w, &object.owner);
                w.end();
            }
            Version::DeleteMarker(marker) => {
                w.start("DeleteMarker")
                    .elem("Key", enc(&listed.key))
                    .elem("VersionId", version_id)
                    .elem("IsLatest", listed.is_latest.to_string())
                    .elem("LastModified", iso8601(marker.last_modified_ms));
                owner(&mut w, &marker.owner);
                w.end();
            }
        }
    }
    for prefix in &page.common_prefixes {
        w.start("CommonPrefixes").elem("Prefix", enc(prefix)).end();
    }
    xml_response(StatusCode::OK, w.finish())
}

fn owner(w: &mut crate::xml::XmlWriter, name: &str) {
    w.start("Owner")
        .elem("ID", owner_id(name))
        .elem("DisplayName", name)
        .end();
}
