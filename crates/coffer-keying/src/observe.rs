//! A hook that tells an observer (the server's metrics) how the bucket-key
//! cache answered: `hit` or `miss`, and the state the CMK was found in. Never
//! a bucket, key id or key. Lock-free once set.

use std::sync::OnceLock;

use coffer_kms::KmsError;
use coffer_kms::kms::KeyState;

/// Receives `(result, key_state)`: `hit` or `miss`, and `Enabled`,
/// `Disabled`, `PendingDeletion`, `PendingImport` or `Unknown` (the KMS
/// failed for another reason than the key's state).
pub type CacheObserver = fn(result: &'static str, key_state: &'static str);

static OBSERVER: OnceLock<CacheObserver> = OnceLock::new();

/// Registers the process's observer of the bucket-key cache; a second
/// registration is ignored.
pub fn observe_bucket_key_cache(observer: CacheObserver) {
    let _ = OBSERVER.set(observer);
}

/// The key state a KMS answer shows: its refusal, or none (enabled).
fn key_state(refusal: Option<&KmsError>) -> &'static str {
    match refusal {
        None => KeyState::Enabled.as_str(),
        Some(KmsError::Disabled(_)) => KeyState::Disabled.as_str(),
        Some(KmsError::InvalidState { state, .. }) => state,
        Some(_) => "Unknown",
    }
}

/// Reports one lookup: `hit` says whether a cached bucket key was found,
/// `refusal` is the KMS's refusal of its CMK (on a miss: of the KMS call).
pub(crate) fn lookup(hit: bool, refusal: Option<&KmsError>) {
    if let Some(observer) = OBSERVER.get() {
        observer(if hit { "hit" } else { "miss" }, key_state(refusal));
    }
}
