//! OSS bucket WORM retention policy: InitiateBucketWorm (`POST ?worm`),
//! AbortBucketWorm (`DELETE ?worm`), CompleteBucketWorm
//! (`POST ?wormId=ID`), ExtendBucketWorm (`POST ?wormId=ID&wormExtend`),
//! GetBucketWorm (`GET ?worm`). The state machine is
//! `bucket_config::worm`; these handlers read the stored policy, apply one
//! transition and write it back. While a policy is in force, [`guard_current`] and
//! [`guard_version_delete`] keep object writes and deletes (both dialects) from replacing or
//! removing an object younger than its retention period (`FileImmutable`, 409).

use coffer_auth::sigv4::Payload;
use coffer_store::{BucketRecord, Condition, Version, VersionRef, Versioning};
use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::{
    authorized_bucket, empty_response, now_ms, save_bucket_config, small_body, xml_response,
};
use crate::body::ResponseBody;
use crate::bucket_config::worm::{self, WORM_KEY, WormConfig};
use crate::bucket_config::{DAY_MS, stored, to_json};
use crate::error::{ApiError, ApiResult};
use crate::request::{ApiRequest, Dialect};
use crate::state::AppState;

fn oss_only(req: &ApiRequest) -> ApiResult<()> {
    match req.dialect {
        Dialect::Oss => Ok(()),
        Dialect::S3 => Err(ApiError::not_implemented(
            "The WORM retention policy in the S3 dialect (S3 uses ?object-lock)",
        )),
    }
}

fn worm_id(req: &ApiRequest) -> ApiResult<&str> {
    req.param("wormId")
        .ok_or_else(|| ApiError::invalid_argument("wormId is required."))
}

/// `POST /<bucket>?worm`: answers the new policy's id in `x-oss-worm-id`.
pub async fn initiate(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    oss_only(req)?;
    let bucket = authorized_bucket(state, req).await?;
    let body = small_body(req, body, payload).await?;
    let days = worm::parse_period(&body)?;
    let existing = stored::<WormConfig>(&bucket, WORM_KEY)?;
    let config = worm::initiate(existing, days, worm::new_worm_id()?, now_ms())?;
    let id = config.worm_id.clone();
    save_bucket_config(state, bucket, WORM_KEY, to_json(&config)?).await?;
    let mut response = empty_response(StatusCode::OK)?;
    let value =
        http::HeaderValue::from_str(&id).map_err(|e| ApiError::internal("x-oss-worm-id", e))?;
    response.headers_mut().insert("x-oss-worm-id", value);
    Ok(response)
}

/// `DELETE /<bucket>?worm`: removes a policy that is not locked.
pub async fn abort(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    oss_only(req)?;
    let bucket = authorized_bucket(state, req).await?;
    worm::abort(stored(&bucket, WORM_KEY)?, now_ms())?;
    state
        .meta
        .set_bucket_config(&bucket.name, WORM_KEY, None)
        .await?;
    empty_response(StatusCode::NO_CONTENT)
}

/// `POST /<bucket>?wormId=ID`: locks the policy.
pub async fn complete(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    oss_only(req)?;
    let bucket = authorized_bucket(state, req).await?;
    let config = worm::complete(stored(&bucket, WORM_KEY)?, worm_id(req)?, now_ms())?;
    save_bucket_config(state, bucket, WORM_KEY, to_json(&config)?).await?;
    empty_response(StatusCode::OK)
}

/// `POST /<bucket>?wormId=ID&wormExtend`: a longer retention period.
pub async fn extend(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    oss_only(req)?;
    let bucket = authorized_bucket(state, req).await?;
    let body = small_body(req, body, payload).await?;
    let days = worm::parse_period(&body)?;
    let config = worm::extend(stored(&bucket, WORM_KEY)?, worm_id(req)?, days, now_ms())?;
    save_bucket_config(state, bucket, WORM_KEY, to_json(&config)?).await?;
    empty_response(StatusCode::OK)
}

/// `GET /<bucket>?worm`.
pub async fn get(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    oss_only(req)?;
    let bucket = authorized_bucket(state, req).await?;
    let config = worm::current(stored(&bucket, WORM_KEY)?, now_ms())?;
    xml_response(StatusCode::OK, worm::render(&config))
}

// ---- Enforcement on objects ----

/// `FileImmutable`: the bucket's WORM policy still protects the object.
fn immutable() -> ApiError {
    ApiError::new(
        crate::error::ErrorCode::FileImmutable,
        "The object you specified is immutable.",
    )
}

/// The newest last-modification time an object may have and still be replaced or removed
/// under `bucket`'s WORM policy at `now_ms`; `None` when no policy is in force.
fn cutoff(bucket: &BucketRecord, now_ms: i64) -> ApiResult<Option<i64>> {
    let Some(config) = stored::<WormConfig>(bucket, WORM_KEY)? else {
        return Ok(None);
    };
    Ok(worm::worm_retention(&config, now_ms)
        .map(|days| now_ms.saturating_sub(i64::from(days).saturating_mul(DAY_MS))))
}

/// What a write or delete of a key's current object must be conditioned on so that the
/// bucket's WORM policy holds: an object younger than the retention period is neither
/// replaced nor removed, in either dialect.
#[derive(Debug)]
pub struct WormGuard {
    condition: Condition,
    /// Whether the guard added the age condition (a `PreconditionFailed` is then the policy's
    /// refusal, not the client's condition failing).
    imposed: bool,
}

impl WormGuard {
    /// The condition to hand the store.
    pub fn condition(&self) -> Condition {
        self.condition.clone()
    }

    /// The answer to a failed write or delete under this guard: `FileImmutable` when the age
    /// condition it added failed (an object was written meanwhile), else `error`.
    pub fn refusal(&self, error: ApiError) -> ApiError {
        if self.imposed && error.code == crate::error::ErrorCode::PreconditionFailed {
            immutable()
        } else {
            error
        }
    }
}

/// The guard of a PutObject, CopyObject (its target), CompleteMultipartUpload, DeleteObject
/// or DeleteObjects entry without a version id, on `key` in `bucket`, whose client asked for
/// `requested`.
///
/// - No policy in force, or versioning enabled (the write or delete adds a version and
///   removes none): `requested` as it is.
/// - Unversioned: the store checks the current object's age in the write's own transaction
///   (`IfNotModifiedAfter`), so an object written between this check and the write is never
///   replaced; with a client condition, that condition goes to the store and the age is
///   checked here first.
/// - Suspended: the null version, which the write replaces, is checked here.
pub async fn guard_current(
    state: &AppState,
    bucket: &BucketRecord,
    key: &str,
    requested: Condition,
) -> ApiResult<WormGuard> {
    let pass = |condition| WormGuard {
        condition,
        imposed: false,
    };
    let Some(cutoff) = cutoff(bucket, now_ms())? else {
        return Ok(pass(requested));
    };
    let replaced = match bucket.versioning {
        Versioning::Enabled => return Ok(pass(requested)),
        Versioning::Unversioned if requested == Condition::Always => {
            return Ok(WormGuard {
                condition: Condition::IfNotModifiedAfter(cutoff),
                imposed: true,
            });
        }
        Versioning::Unversioned => VersionRef::Latest,
        Versioning::Suspended => VersionRef::Null,
    };
    check_age(state, bucket, key, replaced, cutoff).await?;
    Ok(pass(requested))
}

/// Refuses a DeleteObject with a version id of an object version younger than the bucket's
/// WORM retention. A version id names one version for good, so checking before the delete
/// is exact (the null version of a suspended bucket aside, which a write could replace in
/// between).
pub async fn guard_version_delete(
    state: &AppState,
    bucket: &BucketRecord,
    key: &str,
    which: &VersionRef,
) -> ApiResult<()> {
    match cutoff(bucket, now_ms())? {
        None => Ok(()),
        Some(cutoff) => check_age(state, bucket, key, which.clone(), cutoff).await,
    }
}

/// `FileImmutable` if the object version `which` exists and was last modified after
/// `cutoff`; anything else (no such version, a delete marker) is for the caller's own
/// operation to answer.
async fn check_age(
    state: &AppState,
    bucket: &BucketRecord,
    key: &str,
    which: VersionRef,
    cutoff: i64,
) -> ApiResult<()> {
    match state.meta.get_version(&bucket.name, key, which).await {
        Ok(found) => match found.version {
            Version::Object(record) if record.last_modified_ms > cutoff => Err(immutable()),
            _ => Ok(()),
        },
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    const T0: i64 = 1_700_000_000_000;

    fn bucket_with(config: Option<WormConfig>) -> BucketRecord {
        let mut bucket = BucketRecord {
            name: "b".into(),
            ..Default::default()
        };
        if let Some(config) = config {
            bucket
                .config
                .insert(WORM_KEY.into(), to_json(&config).expect("json"));
        }
        bucket
    }

    #[test]
    fn the_cutoff_is_the_retention_before_now() {
        assert_eq!(cutoff(&bucket_with(None), T0).expect("ok"), None);
        let policy = worm::initiate(None, 3, "ID".into(), T0).expect("initiate");
        let bucket = bucket_with(Some(policy.clone()));
        assert_eq!(
            cutoff(&bucket, T0 + 1).expect("ok"),
            Some(T0 + 1 - 3 * DAY_MS)
        );
        // An in-progress policy lapses after 24 hours; a locked one never does.
        assert_eq!(cutoff(&bucket, T0 + DAY_MS).expect("ok"), None);
        let locked = worm::complete(Some(policy), "ID", T0).expect("lock");
        let later = T0 + 400 * DAY_MS;
        assert_eq!(
            cutoff(&bucket_with(Some(locked)), later).expect("ok"),
            Some(later - 3 * DAY_MS)
        );
    }

    #[test]
    fn only_the_imposed_condition_becomes_file_immutable() {
        let failed = || ApiError::from(coffer_store::StoreError::PreconditionFailed);
        let imposed = WormGuard {
            condition: Condition::IfNotModifiedAfter(T0),
            imposed: true,
        };
        let refusal = imposed.refusal(failed());
        assert_eq!(refusal.code, ErrorCode::FileImmutable);
        assert_eq!(refusal.status(), StatusCode::CONFLICT);
        assert_eq!(refusal.oss_ec(), "0026-00000005");
        let client = WormGuard {
            condition: Condition::IfAbsent,
            imposed: false,
        };
        assert_eq!(client.refusal(failed()).code, ErrorCode::PreconditionFailed);
    }
}
