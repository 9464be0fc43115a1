//! Bucket keys for SSE-KMS: a per-bucket intermediate key that the KMS
//! generated (and wrapped) once, cached for a bounded time, so that small
//! writes wrap their data keys locally instead of calling the KMS each time.
//!
//! Fail closed still holds: every use first asks the KMS whether the CMK is
//! usable ([`Kms::usable_now`]: for the embedded KMS a read of its state in
//! memory, no audit line, as reusing a bucket key is no KMS request in AWS
//! either), so a disabled or deleted key stops reads and writes at once,
//! cache or not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer_crypto::SymmetricKey;
use coffer_kms::Kms;
use coffer_kms::kms::{CallContext, EncryptionContext, KeyState, KmsError};

use super::kms_error;
use crate::error::{ApiError, ApiResult};

/// How long one bucket key seals new objects, and how long an opened one
/// stays in memory.
const LIFETIME: Duration = Duration::from_secs(300);
/// Opened bucket keys kept at most (beyond it, the oldest are dropped).
const MAX_OPENED: usize = 4096;

/// A bucket key in use for sealing.
pub struct BucketKey {
    pub plaintext: SymmetricKey,
    /// The KMS ciphertext of `plaintext`, stored in every envelope it wraps.
    pub blob: Vec<u8>,
    /// The CMK (ARN) and version the blob is under.
    pub key_id: String,
    pub key_version: u32,
    created: Instant,
}

#[derive(Default)]
pub struct BucketKeyCache {
    sealing: Mutex<HashMap<(String, String), Arc<BucketKey>>>,
    opened: Mutex<HashMap<Vec<u8>, (SymmetricKey, Instant)>>,
}

/// The encryption context of a bucket key.
fn bucket_context(bucket: &str) -> EncryptionContext {
    EncryptionContext::from([("aws:s3:arn".to_owned(), format!("arn:aws:s3:::{bucket}"))])
}

/// Refuses unless the CMK is enabled, with the KMS's own error.
fn require_usable(kms: &dyn Kms, ctx: &CallContext, cmk: &str) -> ApiResult<String> {
    if let Some(answer) = kms.usable_now(cmk) {
        return answer.map_err(kms_error);
    }
    let meta = kms.describe_key(ctx, cmk).map_err(kms_error)?;
    match meta.state {
        KeyState::Enabled => Ok(meta.arn),
        KeyState::Disabled => Err(kms_error(KmsError::Disabled(meta.key_id))),
        state => Err(kms_error(KmsError::InvalidState {
            key: meta.key_id,
            state: state.as_str(),
        })),
    }
}

fn poisoned() -> ApiError {
    ApiError::internal("bucket key cache", "lock poisoned")
}

impl BucketKeyCache {
    /// The bucket key to seal a new object in `bucket` under `cmk` with.
    pub fn for_sealing(
        &self,
        kms: &dyn Kms,
        ctx: &CallContext,
        bucket: &str,
        cmk: &str,
    ) -> ApiResult<Arc<BucketKey>> {
        let arn = require_usable(kms, ctx, cmk)?;
        let slot = (bucket.to_owned(), arn.clone());
        if let Some(key) = self.sealing.lock().map_err(|_| poisoned())?.get(&slot)
            && key.created.elapsed() < LIFETIME
        {
            return Ok(key.clone());
        }
        let generated = kms
            .generate_data_key(ctx, &arn, &bucket_context(bucket))
            .map_err(kms_error)?;
        let key = Arc::new(BucketKey {
            plaintext: generated.plaintext,
            blob: generated.ciphertext_blob,
            key_id: generated.key_id,
            key_version: generated.key_version,
            created: Instant::now(),
        });
        self.sealing
            .lock()
            .map_err(|_| poisoned())?
            .insert(slot, key.clone());
        Ok(key)
    }

    /// The bucket key inside an envelope (its KMS ciphertext `blob`) if it
    /// is cached and the KMS can tell at once whether the CMK is usable:
    /// nothing blocks, so async tasks try this before
    /// [`for_opening`](Self::for_opening). `None`: not known that cheaply.
    pub fn cached_for_opening(
        &self,
        kms: &dyn Kms,
        cmk: &str,
        blob: &[u8],
    ) -> Option<ApiResult<SymmetricKey>> {
        if let Err(error) = kms.usable_now(cmk)? {
            return Some(Err(kms_error(error)));
        }
        let opened = self.opened.lock().ok()?;
        let (key, at) = opened.get(blob)?;
        (at.elapsed() < LIFETIME).then(|| Ok(key.clone()))
    }

    /// The bucket key inside an envelope (its KMS ciphertext `blob`).
    pub fn for_opening(
        &self,
        kms: &dyn Kms,
        ctx: &CallContext,
        bucket: &str,
        cmk: &str,
        blob: &[u8],
    ) -> ApiResult<SymmetricKey> {
        require_usable(kms, ctx, cmk)?;
        {
            let opened = self.opened.lock().map_err(|_| poisoned())?;
            if let Some((key, at)) = opened.get(blob)
                && at.elapsed() < LIFETIME
            {
                return Ok(key.clone());
            }
        }
        let plaintext = kms
            .decrypt(ctx, blob, &bucket_context(bucket), Some(cmk))
            .map_err(kms_error)?;
        let key =
            SymmetricKey::from_slice(&plaintext.plaintext).map_err(|_| super::integrity_error())?;
        let mut opened = self.opened.lock().map_err(|_| poisoned())?;
        opened.retain(|_, (_, at)| at.elapsed() < LIFETIME);
        if opened.len() >= MAX_OPENED {
            opened.clear();
        }
        opened.insert(blob.to_vec(), (key.clone(), Instant::now()));
        Ok(key)
    }
}
