//! The lifecycle worker: applies every bucket's lifecycle rules to its versions and
//! in-progress uploads, on a timer and on demand (the admin API's `lifecycle/run`).
//!
//! A pass walks each bucket with rules through ListObjectVersions, one key at a time with its
//! versions newest first, asks `bucket_config::lifecycle::action_for_version` what is due for
//! each, and applies it through the same store calls a client's delete makes, so the store's
//! rules hold here too: a locked version is never removed (it is counted and skipped), and an
//! expiration races no writer — it deletes the current object only if it is still the one that
//! was judged (`Condition::IfEtag`). Then it aborts the uploads whose
//! `AbortIncompleteMultipartUpload` has come. Time is the server's object clock
//! ([`crate::clock`]), which tests can move forward.
//!
//! Each pass runs under the lease [`LIFECYCLE_LEASE`]:
//! of several gateways over one database, one runs it at a time; a timer whose lease another
//! gateway holds skips its pass, and a pass that loses its lease stops before the next bucket.

use std::time::Duration;

use coffer_store::{
    BucketRecord, Condition, Deleter, Lease, ListedVersion, StoreError, UploadListQuery, Version,
    VersionListQuery, VersionRef,
};
use serde::Serialize;

use crate::background::{self, LIFECYCLE_LEASE};
use crate::bucket_config::lifecycle::{
    LIFECYCLE_KEY, LifecycleAction, LifecycleConfiguration, UploadFacts, VersionFacts,
    action_for_version, upload_due_for_abort,
};
use crate::bucket_config::stored;
use crate::clock;
use crate::error::ApiResult;
use crate::state::{AppState, SharedState};

/// Versions and uploads read per store call.
const PAGE: usize = 1000;

/// What one pass did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct PassReport {
    /// Buckets with lifecycle rules that were walked.
    pub buckets: u64,
    /// Versions (objects and delete markers) looked at.
    pub versions_scanned: u64,
    /// Current objects expired: removed (unversioned bucket) or hidden behind a new marker.
    pub expired: u64,
    /// Noncurrent versions and delete markers removed for good.
    pub noncurrent_deleted: u64,
    /// Expired object delete markers (a key's last version) removed.
    pub delete_markers_removed: u64,
    /// Incomplete multipart uploads aborted.
    pub uploads_aborted: u64,
    /// Due actions refused because object lock protects the version.
    pub locked_skipped: u64,
    /// Due actions that lost a race with a client (the version changed meanwhile).
    pub raced: u64,
}

/// Runs a pass every `interval` until the process ends, each under the lifecycle lease
/// (skipped while another gateway holds it); a failed pass is logged and the next one tries
/// again.
pub fn spawn(state: SharedState, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let outcome = match background::for_timer(&state, LIFECYCLE_LEASE).await {
                Ok(Some(lease)) => run_pass(&state, lease.as_ref()).await,
                Ok(None) => continue,
                Err(error) => Err(error),
            };
            match outcome {
                Ok(report) if report != PassReport::default() => {
                    tracing::info!(?report, "lifecycle pass");
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(code = %error.code, message = %error.message, "lifecycle pass failed")
                }
            }
        }
    })
}

/// One pass over every bucket that has lifecycle rules, while `lease` (the lifecycle one) is
/// held: it is checked before each bucket.
pub async fn run_pass(state: &AppState, lease: &dyn Lease) -> ApiResult<PassReport> {
    let mut report = PassReport::default();
    for bucket in state.meta.list_buckets().await? {
        let Some(config) = stored::<LifecycleConfiguration>(&bucket, LIFECYCLE_KEY)? else {
            continue;
        };
        background::ensure_held(lease).await?;
        report.buckets += 1;
        expire_versions(state, &bucket, &config, &mut report).await?;
        abort_uploads(state, &bucket, &config, &mut report).await?;
    }
    Ok(report)
}

/// Walks the bucket's versions key by key (a key's versions may straddle two pages).
async fn expire_versions(
    state: &AppState,
    bucket: &BucketRecord,
    config: &LifecycleConfiguration,
    report: &mut PassReport,
) -> ApiResult<()> {
    let mut query = VersionListQuery {
        max_keys: PAGE,
        ..Default::default()
    };
    let mut key_versions: Vec<ListedVersion> = Vec::new();
    loop {
        let page = state.meta.list_versions(&bucket.name, &query).await?;
        for listed in page.versions {
            if key_versions.first().is_some_and(|v| v.key != listed.key) {
                let done = std::mem::take(&mut key_versions);
                apply_to_key(state, bucket, config, &done, report).await?;
            }
            key_versions.push(listed);
        }
        if !page.is_truncated {
            break;
        }
        query.key_marker = page.next_key_marker;
        query.version_id_marker = page.next_version_id_marker;
    }
    apply_to_key(state, bucket, config, &key_versions, report).await
}

/// Judges each version of one key (newest first) and applies what is due.
async fn apply_to_key(
    state: &AppState,
    bucket: &BucketRecord,
    config: &LifecycleConfiguration,
    versions: &[ListedVersion],
    report: &mut PassReport,
) -> ApiResult<()> {
    let now_ms = clock::now_ms();
    for (i, listed) in versions.iter().enumerate() {
        report.versions_scanned += 1;
        let (size, tags, marker) = match &listed.version {
            Version::Object(record) => (record.size, record.tags.as_slice(), false),
            Version::DeleteMarker(_) => (0, &[][..], true),
        };
        let facts = VersionFacts {
            key: &listed.key,
            size,
            tags,
            last_modified_ms: listed.version.last_modified_ms(),
            is_latest: listed.is_latest,
            is_delete_marker: marker,
            // A version became noncurrent when the next newer one was written.
            noncurrent_since_ms: i
                .checked_sub(1)
                .and_then(|newer| versions.get(newer))
                .map(|newer| newer.version.last_modified_ms()),
            newer_noncurrent_versions: i.saturating_sub(1) as u32,
            only_version: versions.len() == 1,
        };
        let Some(due) = action_for_version(config, bucket.versioning, now_ms, &facts) else {
            continue;
        };
        let outcome = match (due.action, &listed.version) {
            (LifecycleAction::ExpireCurrent { .. }, Version::Object(record)) => {
                let by = Deleter {
                    owner: &bucket.owner,
                    now_ms,
                };
                let condition = Condition::IfEtag(record.etag.clone());
                state
                    .meta
                    .delete_object(&bucket.name, &listed.key, condition, by)
                    .await
                    .map(|_| &mut report.expired)
            }
            (LifecycleAction::ExpireCurrent { .. }, Version::DeleteMarker(_)) => continue,
            (action, version) => {
                let which = VersionRef::exactly(version.version_id());
                let counter = if action == LifecycleAction::RemoveExpiredDeleteMarker {
                    &mut report.delete_markers_removed
                } else {
                    &mut report.noncurrent_deleted
                };
                state
                    .meta
                    .delete_version(&bucket.name, &listed.key, which, false, now_ms)
                    .await
                    .map(|_| counter)
            }
        };
        match outcome {
            Ok(counter) => {
                *counter += 1;
                tracing::debug!(bucket = %bucket.name, rule = due.rule_id, action = ?due.action, "lifecycle");
            }
            Err(StoreError::ObjectLocked) => report.locked_skipped += 1,
            Err(StoreError::PreconditionFailed | StoreError::NoSuchKey) => report.raced += 1,
            Err(other) => return Err(other.into()),
        }
    }
    Ok(())
}

/// Aborts the bucket's uploads whose abort rule has come.
async fn abort_uploads(
    state: &AppState,
    bucket: &BucketRecord,
    config: &LifecycleConfiguration,
    report: &mut PassReport,
) -> ApiResult<()> {
    let mut query = UploadListQuery {
        max_uploads: PAGE,
        ..Default::default()
    };
    let now_ms = clock::now_ms();
    loop {
        let page = state.meta.list_uploads(&bucket.name, &query).await?;
        for upload in &page.uploads {
            let facts = UploadFacts {
                key: &upload.key,
                initiated_ms: upload.initiated_ms,
            };
            if upload_due_for_abort(config, now_ms, &facts).is_none() {
                continue;
            }
            match state
                .meta
                .abort_upload(&bucket.name, &upload.key, &upload.upload_id)
                .await
            {
                Ok(()) => report.uploads_aborted += 1,
                // Completed or aborted by a client meanwhile.
                Err(StoreError::NoSuchUpload) => report.raced += 1,
                Err(other) => return Err(other.into()),
            }
        }
        if !page.is_truncated {
            return Ok(());
        }
        query.key_marker = page.next_key_marker;
        query.upload_id_marker = page.next_upload_id_marker;
    }
}
