//! Conditional writes (PutObject, CopyObject, CompleteMultipartUpload):
//! `If-None-Match: *` and `If-Match: "<etag>"`, checked by the store in the
//! same transaction as the write. (OSS's `x-oss-forbid-overwrite`, answered
//! with its own 409 FileAlreadyExists, is not implemented.)
//!
//! The condition is also looked at before the body is read. If it held then
//! but the store refuses the write, another writer changed the key while
//! this request was in flight: that is S3's 409 ConditionalRequestConflict
//! (retry), where a condition that never held is 412 PreconditionFailed.

use coffer_store::{Condition, StoreError};

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::ApiRequest;
use crate::state::AppState;

/// The condition a write request puts on the key it writes.
pub fn requested(req: &ApiRequest) -> ApiResult<Condition> {
    let if_match = req.header("if-match");
    let if_none_match = req.header("if-none-match");
    match (if_match, if_none_match) {
        (Some(_), Some(_)) => Err(ApiError::not_implemented(
            "If-Match together with If-None-Match on a write",
        )),
        (None, Some(value)) if value.trim() == "*" => Ok(Condition::IfAbsent),
        (None, Some(_)) => Err(ApiError::not_implemented(
            "If-None-Match with a value other than * on a write",
        )),
        (Some(value), None) => {
            let etag = value.trim().trim_start_matches("W/").trim_matches('"');
            if etag == "*" || etag.is_empty() {
                return Err(ApiError::not_implemented("If-Match: * on a write"));
            }
            Ok(Condition::IfEtag(etag.to_owned()))
        }
        (None, None) => Ok(Condition::Always),
    }
}

/// Checks `condition` against the key as it is now, before any body is
/// read: NoSuchKey or PreconditionFailed if it does not hold.
pub async fn check_now(
    state: &AppState,
    bucket: &str,
    key: &str,
    condition: &Condition,
) -> ApiResult<()> {
    if *condition == Condition::Always {
        return Ok(());
    }
    let current = match state.meta.get_object(bucket, key).await {
        Ok(record) => Some(record),
        Err(StoreError::NoSuchKey) => None,
        Err(other) => return Err(other.into()),
    };
    match (condition, current) {
        (Condition::IfAbsent, Some(_)) => Err(precondition_failed()),
        (Condition::IfEtag(_), None) => Err(ApiError::no_such_key()),
        (Condition::IfEtag(etag), Some(record)) if record.etag != *etag => {
            Err(precondition_failed())
        }
        _ => Ok(()),
    }
}

/// The error of a conditional write the store refused after
/// [`check_now`] passed: another writer got there in between.
pub fn write_error(condition: &Condition, error: ApiError) -> ApiError {
    let conflicted = *condition != Condition::Always
        && matches!(
            error.code,
            ErrorCode::PreconditionFailed | ErrorCode::NoSuchKey
        );
    if conflicted {
        ApiError::new(
            ErrorCode::ConditionalRequestConflict,
            "A conflicting operation occurred. If using PutObject you can retry the request. If using multipart upload you should initiate another CreateMultipartUpload request and re-upload each part.",
        )
    } else {
        error
    }
}

/// `PreconditionFailed`, with S3's message.
pub fn precondition_failed() -> ApiError {
    ApiError::new(
        ErrorCode::PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold",
    )
}
