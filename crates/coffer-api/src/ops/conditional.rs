//! Conditional writes (PutObject, CopyObject, CompleteMultipartUpload):
//! `If-None-Match: *` and `If-Match: "<etag>"`, and OSS's
//! `x-oss-forbid-overwrite: true`, checked by the store in the same
//! transaction as the write.
//!
//! The condition is also looked at before the body is read. If it held then
//! but the store refuses the write, another writer changed the key while
//! this request was in flight: that is S3's 409 ConditionalRequestConflict
//! (retry), where a condition that never held is 412 PreconditionFailed.
//! OSS answers an existing key 409 FileAlreadyExists either way.

use coffer_store::{Condition, StoreError, Versioning};

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::{ApiRequest, Dialect};
use crate::state::AppState;

/// The condition a write request puts on the key it writes, and how the
/// write is refused when it does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteCondition {
    condition: Condition,
    /// OSS's `x-oss-forbid-overwrite: true`: refused with FileAlreadyExists.
    forbid_overwrite: bool,
}

impl WriteCondition {
    /// OSS's `x-oss-forbid-overwrite: true` alone.
    pub const NO_OVERWRITE: WriteCondition = WriteCondition {
        condition: Condition::IfAbsent,
        forbid_overwrite: true,
    };

    /// What the store checks in the write's transaction.
    pub fn condition(&self) -> &Condition {
        &self.condition
    }
}

/// The condition a write request puts on the key it writes, in a bucket
/// whose versioning is `versioning`.
pub fn requested(req: &ApiRequest, versioning: Versioning) -> ApiResult<WriteCondition> {
    let condition = s3_condition(req)?;
    if !forbids_overwrite(req, versioning)? {
        return Ok(WriteCondition {
            condition,
            forbid_overwrite: false,
        });
    }
    match condition {
        Condition::IfEtag(_) => Err(ApiError::not_implemented(
            "x-oss-forbid-overwrite together with If-Match",
        )),
        _ => Ok(WriteCondition::NO_OVERWRITE),
    }
}

/// Whether an OSS request says `x-oss-forbid-overwrite: true` to a bucket
/// that has never had versioning: in a versioned bucket a write adds a
/// version and overwrites nothing, and OSS ignores the header there.
pub fn forbids_overwrite(req: &ApiRequest, versioning: Versioning) -> ApiResult<bool> {
    if req.dialect != Dialect::Oss {
        return Ok(false);
    }
    let forbid = match req.header("x-oss-forbid-overwrite").map(str::trim) {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err(
                ApiError::invalid_argument("x-oss-forbid-overwrite must be true or false")
                    .with_ec("0017-00000279"),
            );
        }
    };
    Ok(forbid && versioning == Versioning::Unversioned)
}

/// S3's `If-None-Match: *` or `If-Match: "<etag>"` on a write.
fn s3_condition(req: &ApiRequest) -> ApiResult<Condition> {
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
    write: &WriteCondition,
) -> ApiResult<()> {
    let condition = &write.condition;
    if *condition == Condition::Always {
        return Ok(());
    }
    let current = match state.meta.get_object(bucket, key).await {
        Ok(record) => Some(record),
        Err(StoreError::NoSuchKey) => None,
        Err(other) => return Err(other.into()),
    };
    match (condition, current) {
        (Condition::IfAbsent, Some(_)) if write.forbid_overwrite => Err(file_already_exists()),
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
pub fn write_error(write: &WriteCondition, error: ApiError) -> ApiError {
    let conflicted = write.condition != Condition::Always
        && matches!(
            error.code,
            ErrorCode::PreconditionFailed | ErrorCode::NoSuchKey
        );
    if conflicted && write.forbid_overwrite {
        file_already_exists()
    } else if conflicted {
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

/// OSS's `FileAlreadyExists`, with its message and EC.
fn file_already_exists() -> ApiError {
    ApiError::new(
        ErrorCode::FileAlreadyExists,
        "The object you specified already exists and can not be overwritten.",
    )
    .with_ec("0026-00000201")
}
