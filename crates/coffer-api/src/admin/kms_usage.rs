//! `GET kms/usage?key=KEY`: which objects a KMS key protects (`coffer kms usage`, the
//! console's key page, the warning before scheduling a key's deletion).
//!
//! A full walk: every version (current and noncurrent) of every object of every bucket, its
//! envelope decoded (never opened: no key is unwrapped, so it answers while the key is
//! disabled or pending deletion). An object counts when its envelope is SSE-KMS under the
//! key, directly or through a bucket key wrapped by it, and is counted under the key
//! version that wrapped its data key (or its bucket key). Cost grows with the number of
//! object versions; it reads metadata only.

use std::collections::BTreeMap;

use coffer_crypto::sealed::{Envelope, WrapKind};
use coffer_kms::{CallContext, KmsError};
use serde::Serialize;

use super::audit::same_key;
use super::plaintext::VersionWalk;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::ApiRequest;
use crate::state::{AppState, ROOT_NAME};

#[derive(Serialize, Default, Clone)]
struct Count {
    /// Object versions (current and noncurrent).
    objects: u64,
    /// Their plaintext bytes.
    bytes: u64,
}

impl Count {
    fn add(&mut self, size: u64) {
        self.objects += 1;
        self.bytes += size;
    }
}

#[derive(Serialize)]
struct BucketUsage {
    bucket: String,
    #[serde(flatten)]
    count: Count,
}

#[derive(Serialize)]
struct VersionUsage {
    key_version: u32,
    #[serde(flatten)]
    count: Count,
    buckets: Vec<BucketUsage>,
}

#[derive(Serialize)]
pub struct KeyUsage {
    key_id: String,
    /// `null` when the key no longer exists in the KMS (objects may still name it).
    arn: Option<String>,
    #[serde(flatten)]
    total: Count,
    /// Per bucket, every key version together.
    buckets: Vec<BucketUsage>,
    /// Per key version, then per bucket; versions that protect nothing are left out.
    key_versions: Vec<VersionUsage>,
    object_versions_scanned: u64,
}

fn by_bucket(counts: BTreeMap<String, Count>) -> Vec<BucketUsage> {
    counts
        .into_iter()
        .map(|(bucket, count)| BucketUsage { bucket, count })
        .collect()
}

/// The usage of the key the request's `key` names (id, ARN or alias).
pub async fn of_key(state: &AppState, req: &ApiRequest) -> ApiResult<KeyUsage> {
    let Some(kms) = state.kms.clone() else {
        return Err(ApiError::new(
            ErrorCode::NotImplemented,
            "This server runs without a KMS: no object is protected by a KMS key.",
        ));
    };
    let Some(key) = req.query.get("key").filter(|k| !k.is_empty()) else {
        return Err(ApiError::invalid_argument(
            "Expected /_coffer/admin/kms/usage?key=<key id, ARN or alias>.",
        ));
    };
    let reference = key.to_owned();
    let described = tokio::task::spawn_blocking(move || {
        let ctx = CallContext {
            principal: ROOT_NAME.to_owned(),
            resource: None,
        };
        kms.describe_key(&ctx, &reference)
    })
    .await
    .map_err(|e| ApiError::internal("describing a KMS key", e))?;
    // A deleted key's objects still name it: count them under the id given.
    let (key_id, arn) = match described {
        Ok(metadata) => (metadata.key_id, Some(metadata.arn)),
        Err(KmsError::NotFound(_)) if !key.starts_with("alias/") => (key.to_owned(), None),
        Err(error) => return Err(error.into()),
    };

    let mut per_version: BTreeMap<u32, BTreeMap<String, Count>> = BTreeMap::new();
    let mut scanned = 0u64;
    let mut walk = VersionWalk::new(state).await?;
    while let Some((bucket, objects)) = walk.next_page(state).await? {
        for (object_key, record) in objects {
            scanned += 1;
            let Some(bytes) = record.envelope.as_deref() else {
                continue;
            };
            let Ok(envelope) = Envelope::decode(bytes) else {
                tracing::warn!(bucket = %bucket.name, key = %object_key, "an object's envelope does not decode; not counted");
                continue;
            };
            let under_kms = matches!(envelope.key.kind, WrapKind::Kms | WrapKind::KmsBucketKey);
            if under_kms && same_key(&envelope.key.key_id, &key_id) {
                per_version
                    .entry(envelope.key.key_version)
                    .or_default()
                    .entry(bucket.name.clone())
                    .or_default()
                    .add(record.size);
            }
        }
    }

    let mut total = Count::default();
    let mut per_bucket: BTreeMap<String, Count> = BTreeMap::new();
    let key_versions = per_version
        .into_iter()
        .map(|(key_version, buckets)| {
            let mut count = Count::default();
            for (bucket, c) in &buckets {
                count.objects += c.objects;
                count.bytes += c.bytes;
                let all = per_bucket.entry(bucket.clone()).or_default();
                all.objects += c.objects;
                all.bytes += c.bytes;
            }
            total.objects += count.objects;
            total.bytes += count.bytes;
            VersionUsage {
                key_version,
                count,
                buckets: by_bucket(buckets),
            }
        })
        .collect();
    Ok(KeyUsage {
        key_id,
        arn,
        total,
        buckets: by_bucket(per_bucket),
        key_versions,
        object_versions_scanned: scanned,
    })
}
