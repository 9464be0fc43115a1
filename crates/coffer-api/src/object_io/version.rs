//! Finding the object version a request names (GET, HEAD, a copy source, and `authz` when a
//! decision needs the object's ACL or tags): the record, or S3's answer for a delete marker.

use coffer_auth::amz_time::format_http_date;
use coffer_store::{BucketRecord, ObjectRecord, StoreError, Version, VersionRef, Versioning};

use crate::clock::utc_of_ms;
use crate::error::{ApiError, ApiResult};
use crate::request::ApiRequest;
use crate::state::AppState;

/// A version id as the wire writes it: `null` for the null version.
pub fn wire_version_id(version_id: Option<&str>) -> &str {
    version_id.unwrap_or("null")
}

/// The object version a GET, HEAD or copy source reads: the one `which` names, or the
/// current object. A delete marker answers as S3 does: 404 `NoSuchKey` when it is the
/// newest version and no version was named, 405 `MethodNotAllowed` when named; both with
/// the marker's headers.
pub async fn read_version(
    state: &AppState,
    req: &ApiRequest,
    bucket: &BucketRecord,
    key: &str,
    which: Option<VersionRef>,
) -> ApiResult<ObjectRecord> {
    let named = which.is_some();
    let found = match which {
        None => match state.meta.get_object(&bucket.name, key).await {
            Err(StoreError::NoSuchKey) if bucket.versioning != Versioning::Unversioned => {
                state
                    .meta
                    .get_version(&bucket.name, key, VersionRef::Latest)
                    .await
            }
            other => return Ok(other?),
        },
        Some(which) => state.meta.get_version(&bucket.name, key, which).await,
    };
    match found?.version {
        Version::Object(record) => Ok(record),
        Version::DeleteMarker(marker) => {
            let error = if named {
                ApiError::method_not_allowed().with_header(
                    http::header::LAST_MODIFIED.as_str(),
                    format_http_date(utc_of_ms(marker.last_modified_ms)),
                )
            } else {
                ApiError::no_such_key()
            };
            Err(error
                .with_header(req.dialect.header("delete-marker"), "true")
                .with_header(
                    req.dialect.header("version-id"),
                    wire_version_id(marker.version_id.as_deref()),
                ))
        }
    }
}
