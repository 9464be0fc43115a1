//! Bucket keys for SSE-KMS: a per-bucket intermediate key that the KMS
//! generated (and wrapped) once, cached for a bounded time, so that small
//! writes wrap their data keys locally instead of calling the KMS each time.
//!
//! A miss costs one KMS request (GenerateDataKey to seal, Decrypt to open),
//! which itself refuses a disabled key. A hit costs none, but fail closed
//! still holds: it first asks whether the CMK is usable
//! ([`KmsDataPlane::usable_now`]: for the embedded KMS a read of its state
//! in memory, no audit line, as reusing a bucket key is no KMS request in
//! AWS either; a backend that cannot answer that cheaply is asked
//! DescribeKey), so a disabled or deleted key stops reads and writes at
//! once, cache or not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use coffer_crypto::SymmetricKey;
use coffer_kms::kms::{CallContext, EncryptionContext, KeyState, KmsDataPlane, KmsError};

use crate::error::{KeyingError, KeyingResult};
use crate::observe;
use crate::protection::S3_ARN_CONTEXT;

/// How long one bucket key seals new objects, and how long an opened one
/// stays in memory.
const LIFETIME: Duration = Duration::from_secs(300);
/// Opened bucket keys kept at most (beyond it, the cache starts over).
const MAX_OPENED: usize = 4096;

/// A bucket key in use for sealing.
pub(crate) struct BucketKey {
    pub(crate) plaintext: SymmetricKey,
    /// The KMS ciphertext of `plaintext`, stored in every envelope it wraps.
    pub(crate) blob: Vec<u8>,
    /// The CMK and version the blob is under, as the KMS named them.
    pub(crate) key_id: String,
    pub(crate) key_version: u32,
    created: Instant,
}

/// Bucket keys being sealed with, per (bucket, CMK as requested), and
/// bucket keys opened, per KMS ciphertext.
#[derive(Default)]
pub(crate) struct BucketKeyCache {
    sealing: Mutex<HashMap<(String, String), Arc<BucketKey>>>,
    opened: Mutex<HashMap<Vec<u8>, (SymmetricKey, Instant)>>,
}

/// The encryption context of a bucket key.
pub(crate) fn bucket_context(bucket: &str) -> EncryptionContext {
    EncryptionContext::from([(S3_ARN_CONTEXT.to_owned(), format!("arn:aws:s3:::{bucket}"))])
}

/// The CMK's ARN if it is enabled, else the KMS's own error: from memory
/// when the KMS can tell, else with DescribeKey.
fn require_usable(
    kms: &dyn KmsDataPlane,
    ctx: &CallContext,
    cmk: &str,
) -> Result<String, KmsError> {
    if let Some(answer) = kms.usable_now(cmk) {
        return answer;
    }
    let meta = kms.describe_key(ctx, cmk)?;
    match meta.state {
        KeyState::Enabled => Ok(meta.arn),
        KeyState::Disabled => Err(KmsError::Disabled(meta.key_id)),
        state => Err(KmsError::InvalidState {
            key: meta.key_id,
            state: state.as_str(),
        }),
    }
}

/// `key`, cached, if the CMK it was made under is still the usable key
/// `usable` names (the KMS's answer for the CMK as requested); `None` when an
/// alias moved since, and a new bucket key is due.
fn reuse(
    key: Arc<BucketKey>,
    usable: Result<String, KmsError>,
) -> Option<KeyingResult<Arc<BucketKey>>> {
    match usable {
        Err(error) => {
            observe::lookup(true, Some(&error));
            Some(Err(error.into()))
        }
        Ok(arn) if same_key(&arn, &key.key_id) => {
            observe::lookup(true, None);
            Some(Ok(key))
        }
        Ok(_) => None,
    }
}

/// Whether `arn` names the key a cached bucket key was made under (an
/// alias may have moved since).
pub(crate) fn same_key(arn: &str, key_id: &str) -> bool {
    arn == key_id || arn.rsplit_once('/').is_some_and(|(_, id)| id == key_id)
}

fn poisoned() -> KeyingError {
    KeyingError::internal("bucket key cache", "lock poisoned")
}

fn lock<T>(mutex: &Mutex<T>) -> KeyingResult<MutexGuard<'_, T>> {
    mutex.lock().map_err(|_| poisoned())
}

impl BucketKeyCache {
    /// The bucket key to seal a new object in `bucket` under `cmk` with.
    /// May call the KMS: run it off async threads.
    pub(crate) fn for_sealing(
        &self,
        kms: &dyn KmsDataPlane,
        ctx: &CallContext,
        bucket: &str,
        cmk: &str,
    ) -> KeyingResult<Arc<BucketKey>> {
        let cached = self.fresh_sealing(bucket, cmk)?;
        if let Some(key) = cached
            && let Some(reused) = reuse(key, require_usable(kms, ctx, cmk))
        {
            return reused;
        }
        let generated = kms.generate_data_key(ctx, cmk, &bucket_context(bucket));
        observe::lookup(false, generated.as_ref().err());
        let generated = generated?;
        let key = Arc::new(BucketKey {
            plaintext: generated.plaintext,
            blob: generated.ciphertext_blob,
            key_id: generated.key_id,
            key_version: generated.key_version,
            created: Instant::now(),
        });
        lock(&self.sealing)?.insert((bucket.to_owned(), cmk.to_owned()), key.clone());
        Ok(key)
    }

    /// The cached bucket key to seal with in `bucket` under `cmk` if there is
    /// one and the KMS can tell at once whether `cmk` is usable: nothing
    /// blocks, so async tasks try this before [`for_sealing`](Self::for_sealing).
    /// `None`: not known that cheaply.
    pub(crate) fn cached_for_sealing(
        &self,
        kms: &dyn KmsDataPlane,
        bucket: &str,
        cmk: &str,
    ) -> Option<KeyingResult<Arc<BucketKey>>> {
        let cached = match self.fresh_sealing(bucket, cmk) {
            Ok(cached) => cached?,
            Err(error) => return Some(Err(error)),
        };
        reuse(cached, kms.usable_now(cmk)?)
    }

    fn fresh_sealing(&self, bucket: &str, cmk: &str) -> KeyingResult<Option<Arc<BucketKey>>> {
        let slot = (bucket.to_owned(), cmk.to_owned());
        Ok(lock(&self.sealing)?
            .get(&slot)
            .filter(|key| key.created.elapsed() < LIFETIME)
            .cloned())
    }

    /// The opened bucket key of `blob` if it is cached and the KMS can tell
    /// at once whether `cmk` is usable: nothing blocks, so async tasks try
    /// this before [`for_opening`](Self::for_opening). `None`: not known
    /// that cheaply.
    pub(crate) fn cached_for_opening(
        &self,
        kms: &dyn KmsDataPlane,
        cmk: &str,
        blob: &[u8],
    ) -> Option<KeyingResult<SymmetricKey>> {
        let usable = kms.usable_now(cmk)?;
        let cached = self.fresh_opened(blob).transpose();
        match (&usable, &cached) {
            // Refused whatever the cache holds: this lookup is final.
            (Err(error), _) => observe::lookup(cached.is_some(), Some(error)),
            (Ok(_), Some(_)) => observe::lookup(true, None),
            // A miss is counted by `for_opening`, which the caller tries next.
            (Ok(_), None) => {}
        }
        if let Err(error) = usable {
            return Some(Err(error.into()));
        }
        cached
    }

    fn fresh_opened(&self, blob: &[u8]) -> KeyingResult<Option<SymmetricKey>> {
        let opened = lock(&self.opened)?;
        Ok(opened
            .get(blob)
            .filter(|(_, at)| at.elapsed() < LIFETIME)
            .map(|(key, _)| key.clone()))
    }

    /// The bucket key inside an envelope (its KMS ciphertext `blob`). May
    /// call the KMS: run it off async threads.
    pub(crate) fn for_opening(
        &self,
        kms: &dyn KmsDataPlane,
        ctx: &CallContext,
        bucket: &str,
        cmk: &str,
        blob: &[u8],
    ) -> KeyingResult<SymmetricKey> {
        if let Some(key) = self.fresh_opened(blob)? {
            let usable = require_usable(kms, ctx, cmk);
            observe::lookup(true, usable.as_ref().err());
            usable?;
            return Ok(key);
        }
        let plaintext = kms.decrypt(ctx, blob, &bucket_context(bucket), Some(cmk));
        observe::lookup(false, plaintext.as_ref().err());
        let plaintext = plaintext?;
        let key =
            SymmetricKey::from_slice(&plaintext.plaintext).map_err(|_| KeyingError::Integrity)?;
        let mut opened = lock(&self.opened)?;
        opened.retain(|_, (_, at)| at.elapsed() < LIFETIME);
        if opened.len() >= MAX_OPENED {
            opened.clear();
        }
        opened.insert(blob.to_vec(), (key.clone(), Instant::now()));
        Ok(key)
    }
}
