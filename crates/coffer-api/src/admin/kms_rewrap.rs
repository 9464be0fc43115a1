//! `POST sse/rewrap?kms-key=KEY[&bucket=NAME]` (`coffer sse rewrap --kms-key`): every object
//! version whose data key (or bucket key) is under an older version of KEY moved to KEY's
//! current version, through the KMS (coffer-keying's `kms_rewrap.rs`); metadata only. The
//! same walk as `kms_usage.rs`; an object already current is skipped, so a pass interrupted
//! and run again carries on where it stopped. `bucket` limits a pass to one bucket, which is
//! how the CLI shows progress.

use coffer_keying::{Caller, KmsRewrap, ObjectName};
use coffer_kms::CallContext;
use serde::Serialize;

use super::plaintext::VersionWalk;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::ApiRequest;
use crate::state::{AppState, ROOT_NAME};

#[derive(Serialize)]
pub struct KmsRewrapReport {
    key_id: String,
    /// The version every rewrapped object is now under.
    key_version: u32,
    objects_scanned: u64,
    objects_rewrapped: u64,
}

/// Rewraps what `key` (id, ARN or alias) protects, in the request's `bucket` or everywhere.
pub async fn run(state: &AppState, req: &ApiRequest, key: &str) -> ApiResult<KmsRewrapReport> {
    let Some(kms) = state.kms.clone() else {
        return Err(ApiError::new(
            ErrorCode::NotImplemented,
            "This server runs without a KMS: no object is protected by a KMS key.",
        ));
    };
    let reference = key.to_owned();
    let metadata = tokio::task::spawn_blocking(move || {
        let ctx = CallContext {
            principal: ROOT_NAME.to_owned(),
            resource: None,
        };
        kms.describe_key(&ctx, &reference)
    })
    .await
    .map_err(|e| ApiError::internal("describing a KMS key", e))??;
    let mut pass = KmsRewrap::new(&metadata.key_id, metadata.current_version);
    let caller = Caller {
        principal: ROOT_NAME,
        over_tls: req.tls.is_some(),
    };
    let only = req.query.get("bucket").filter(|name| !name.is_empty());
    let (mut scanned, mut rewrapped) = (0u64, 0u64);
    let mut walk = VersionWalk::of_buckets(state, only).await?;
    while let Some((bucket, objects)) = walk.next_page(state).await? {
        for (key, record) in objects {
            scanned += 1;
            let Some(old) = &record.envelope else {
                continue;
            };
            let object = ObjectName {
                bucket: &bucket.name,
                key: &key,
                stored: &record.headers,
            };
            let Some(new) = state
                .keys
                .rewrap_kms(&caller, &mut pass, old, object)
                .map_err(crate::sse::keying_error)?
            else {
                continue;
            };
            let which = coffer_store::VersionRef::exactly(record.version_id.as_deref());
            // A concurrent overwrite or delete already settled this version.
            if state
                .meta
                .replace_envelope(&bucket.name, &key, which, old.clone(), new)
                .await?
            {
                rewrapped += 1;
            }
        }
    }
    tracing::info!(key_id = %metadata.key_id, to_version = metadata.current_version, scanned, rewrapped, "KMS rewrap finished");
    Ok(KmsRewrapReport {
        key_id: metadata.key_id,
        key_version: metadata.current_version,
        objects_scanned: scanned,
        objects_rewrapped: rewrapped,
    })
}
