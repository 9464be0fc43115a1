//! DeleteObject and DeleteObjects: without a version id, the current object goes (or, in a
//! versioned bucket, a delete marker goes on top); with one, that version goes for good.

use coffer_auth::sigv4::Payload;
use coffer_store::{BucketRecord, Condition, Deleted, Deleter, Version, VersionRef};
use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::object::MAX_KEY_LEN;
use super::versioning::{requested_version, wire_version_id};
use super::{
    authorized_bucket, empty_response, insert_headers, now_ms, retention, small_body, worm,
    xml_response,
};
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::ApiRequest;
use crate::state::AppState;
use crate::xml;

/// What one delete did, as the response reports it.
struct Outcome {
    /// The version the response names (`x-amz-version-id` / `<VersionId>` or
    /// `<DeleteMarkerVersionId>`), if any.
    version_id: Option<String>,
    /// Whether that version is a delete marker (one written now, or one removed).
    delete_marker: bool,
}

/// Deletes `key` (the version `which`, if named) in `bucket`; `bypass`: GOVERNANCE retention
/// yields (the request asked and `authz` allowed it).
async fn delete_one(
    state: &AppState,
    req: &ApiRequest,
    bucket: &BucketRecord,
    key: &str,
    which: Option<VersionRef>,
    bypass: bool,
) -> ApiResult<Outcome> {
    let Some(which) = which else {
        let by = Deleter {
            owner: req.principal.name(),
            now_ms: now_ms(),
        };
        let guard = worm::guard_current(state, bucket, key, Condition::Always).await?;
        return Ok(
            match state
                .meta
                .delete_object(&bucket.name, key, guard.condition(), by)
                .await
                .map_err(|e| guard.refusal(e.into()))?
            {
                Deleted::Absent | Deleted::Removed => Outcome {
                    version_id: None,
                    delete_marker: false,
                },
                Deleted::Marker { version_id } => Outcome {
                    version_id: Some(wire_version_id(version_id.as_deref()).to_owned()),
                    delete_marker: true,
                },
            },
        );
    };
    worm::guard_version_delete(state, bucket, key, &which).await?;
    let named = match &which {
        VersionRef::Id(id) => id.clone(),
        _ => "null".to_owned(),
    };
    let removed = match state
        .meta
        .delete_version(&bucket.name, key, which, bypass, now_ms())
        .await
    {
        // An id that cannot be one of ours names no version: nothing to delete.
        Err(coffer_store::StoreError::InvalidArgument(_)) => {
            return Err(ApiError::invalid_argument("Invalid version id specified"));
        }
        other => other?,
    };
    Ok(Outcome {
        version_id: Some(named),
        delete_marker: matches!(removed, Some(Version::DeleteMarker(_))),
    })
}

/// One key of a DeleteObjects request: authorized on its own (`s3:DeleteObject`, or
/// `s3:DeleteObjectVersion` with a version), then deleted.
async fn delete_key(
    state: &AppState,
    req: &ApiRequest,
    bucket: &BucketRecord,
    key: &str,
    which: Option<VersionRef>,
    version: Option<&str>,
) -> ApiResult<Outcome> {
    let bypass = crate::authz::authorize_delete(state, req, bucket, key, version).await?;
    delete_one(state, req, bucket, key, which, bypass).await
}

pub async fn delete_object(
    state: &AppState,
    req: &ApiRequest,
) -> ApiResult<Response<ResponseBody>> {
    let key = req.key()?.to_owned();
    let bucket = authorized_bucket(state, req).await?;
    let bypass = retention::may_bypass_governance(req);
    let outcome = delete_one(state, req, &bucket, &key, requested_version(req)?, bypass).await?;
    let mut response = empty_response(StatusCode::NO_CONTENT)?;
    let version = outcome
        .version_id
        .map(|id| (req.dialect.header("version-id"), id));
    let marker = outcome
        .delete_marker
        .then(|| (req.dialect.header("delete-marker"), "true".to_owned()));
    insert_headers(&mut response, version.into_iter().chain(marker));
    Ok(response)
}

pub async fn delete_objects(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let body = small_body(req, body, payload).await?;
    let request: xml::DeleteRequest = xml::parse(&body)?;
    if request.objects.len() > 1000 {
        return Err(ApiError::malformed_xml());
    }
    let mut outcomes = Vec::with_capacity(request.objects.len());
    for entry in request.objects {
        let which = match entry.version_id.as_deref() {
            None => Ok(None),
            Some("") => Err(ApiError::invalid_argument("Invalid version id specified")),
            Some(id) => Ok(Some(VersionRef::from_query(id))),
        };
        let outcome = if entry.key.len() > MAX_KEY_LEN {
            Err(ApiError::new(
                ErrorCode::KeyTooLongError,
                "Your key is too long",
            ))
        } else {
            match which {
                Ok(which) => {
                    delete_key(
                        state,
                        req,
                        &bucket,
                        &entry.key,
                        which,
                        entry.version_id.as_deref(),
                    )
                    .await
                }
                Err(e) => Err(e),
            }
        };
        outcomes.push((entry, outcome));
    }
    let url_encoded = req.url_encoding()?;
    let mut w = req.xml("DeleteResult");
    if url_encoded {
        w.elem("EncodingType", "url");
    }
    for (entry, outcome) in outcomes {
        let key = xml::encode_key(&entry.key, url_encoded);
        match outcome {
            Ok(_) if request.quiet => {}
            Ok(outcome) => {
                w.start("Deleted").elem("Key", key);
                match (&entry.version_id, outcome.delete_marker) {
                    // A named version was removed; a marker among them says so.
                    (Some(named), marker) => {
                        w.elem("VersionId", named);
                        if marker {
                            w.elem("DeleteMarker", "true");
                        }
                    }
                    // A marker was written on top.
                    (None, true) => {
                        w.elem("DeleteMarker", "true");
                        w.elem_opt("DeleteMarkerVersionId", outcome.version_id.as_deref());
                    }
                    (None, false) => {}
                }
                w.end();
            }
            Err(error) => {
                w.start("Error").elem("Key", key);
                w.elem_opt("VersionId", entry.version_id.as_deref());
                w.elem("Code", req.dialect.error_code(&error))
                    .elem("Message", &error.message)
                    .end();
            }
        }
    }
    xml_response(StatusCode::OK, w.finish())
}
