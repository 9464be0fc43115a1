//! Keeping the in-memory copy current when other writers share the keystore
//! (gateways over one PostgreSQL): re-reading records someone else changed,
//! and, for a KMS told to, refusing key use while it cannot confirm that its
//! copy is current.
//!
//! The KMS serves every call from its copy, so a key disabled through another
//! gateway stays usable here until the copy learns of it. Whoever watches the
//! keystore (`coffer_meta_pg::keystore::spawn_invalidation`: LISTEN/NOTIFY,
//! with polling while the notification connection is down) calls
//! [`EmbeddedKms::refresh`] with the ids it was told changed,
//! [`EmbeddedKms::refresh_all`] when it may have missed some, and
//! [`EmbeddedKms::confirm_current`] each time it has established that
//! nothing committed before a given instant is missing from the copy. With
//! [`EmbeddedKms::require_current_within`], key use (data keys, Encrypt,
//! Decrypt, ReEncrypt, `usable_now`) fails closed once the last confirmation
//! is older than the bound: a gateway cut off from the keystore cannot keep
//! serving a key that was disabled meanwhile.

use std::time::{Duration, Instant};

use super::keystore::{self as records, Cmk};
use super::{Cache, EmbeddedKms};
use crate::RootKey;
use crate::keystore::{KeyRecord, Versioned};
use crate::kms::KmsError;

/// Key use is refused while the copy is older than this (a confirmation
/// lease); `None` until [`EmbeddedKms::require_current_within`] is called.
#[derive(Clone, Copy)]
pub(super) struct Lease {
    bound: Duration,
    confirmed: Instant,
}

impl Lease {
    fn check(&self) -> Result<(), KmsError> {
        if self.confirmed.elapsed() <= self.bound {
            Ok(())
        } else {
            Err(KmsError::Internal(format!(
                "the KMS has not confirmed for {} ms that its keys are current with the shared \
                 keystore (PostgreSQL unreachable or too slow); key use is refused until it does",
                self.bound.as_millis()
            )))
        }
    }
}

/// Replaces what the copy holds under `id` with `stored` (the record as the
/// keystore has it now; `None`: there is none). Returns whether anything
/// changed; an unchanged revision costs nothing (nothing is opened).
fn apply(
    cache: &mut Cache,
    id: &str,
    stored: Option<Versioned<KeyRecord>>,
    root: &RootKey,
) -> Result<bool, KmsError> {
    let Some(Versioned { revision, value }) = stored else {
        let known = cache.revisions.remove(id).is_some();
        let key = cache.state.keys.remove(id).is_some();
        let alias = cache.state.aliases.remove(id).is_some();
        cache.state.import_tokens.retain(|_, t| t.key_id != id);
        return Ok(known || key || alias);
    };
    if cache.revisions.get(id) == Some(&revision) {
        return Ok(false);
    }
    match value {
        KeyRecord::Key(sealed) => {
            if sealed.key_id != id {
                return Err(KmsError::Internal(format!(
                    "the KMS keystore is malformed: record '{id}' holds another key"
                )));
            }
            let (cmk, tokens): (Cmk, _) = records::open_key(*sealed, root)?;
            cache.state.import_tokens.retain(|_, t| t.key_id != id);
            cache.state.import_tokens.extend(tokens);
            cache.state.keys.insert(id.to_owned(), cmk);
        }
        KeyRecord::Alias { target_key_id } => {
            cache.state.aliases.insert(id.to_owned(), target_key_id);
        }
    }
    cache.revisions.insert(id.to_owned(), revision);
    Ok(true)
}

impl EmbeddedKms {
    /// Re-reads the records under `ids` (key ids and `alias/…` names) from
    /// the keystore and replaces the copy's version of each that changed:
    /// another writer (gateway) changed, created or deleted them. Returns the
    /// ids whose record had changed. A record still at the revision the copy
    /// holds costs one keystore `get` and nothing else.
    ///
    /// Safe under concurrent use: it takes the KMS's lock, so it runs between
    /// calls, never inside one. If the keystore cannot be read, the copy is
    /// marked stale (the next call reloads it whole, or fails) and the error
    /// is returned.
    pub fn refresh(&self, ids: &[String]) -> Result<Vec<String>, KmsError> {
        let mut guard = self.lock()?;
        let mut changed = Vec::new();
        for id in ids {
            let applied = self
                .store
                .get(id)
                .and_then(|stored| apply(&mut guard, id, stored, &self.root));
            match applied {
                Ok(true) => changed.push(id.clone()),
                Ok(false) => {}
                Err(e) => {
                    guard.stale = true;
                    return Err(e);
                }
            }
        }
        Ok(changed)
    }

    /// Brings the whole copy up to the keystore: one `list`, then every
    /// record whose revision differs is opened and replaced, and every record
    /// gone is removed. Returns the ids that changed. When nothing changed it
    /// costs the `list` alone. For a watcher that may have missed changes (a
    /// notification connection that was down). Errors as
    /// [`refresh`](Self::refresh).
    pub fn refresh_all(&self) -> Result<Vec<String>, KmsError> {
        let mut guard = self.lock()?;
        let synced = self.store.list().and_then(|listed| {
            let mut changed = Vec::new();
            let gone: Vec<String> = guard
                .revisions
                .keys()
                .filter(|id| !listed.contains_key(*id))
                .cloned()
                .collect();
            for id in gone {
                if apply(&mut guard, &id, None, &self.root)? {
                    changed.push(id);
                }
            }
            for (id, stored) in listed {
                if apply(&mut guard, &id, Some(stored), &self.root)? {
                    changed.push(id);
                }
            }
            Ok(changed)
        });
        if synced.is_err() {
            guard.stale = true;
        }
        synced
    }

    /// From now on, refuses key use (GenerateDataKey, Encrypt, Decrypt,
    /// ReEncrypt, and `usable_now`, so cached bucket keys too) whenever the
    /// copy was last confirmed current ([`confirm_current`](Self::confirm_current))
    /// more than `bound` ago; `as_of` is the first confirmation. Key
    /// administration and DescribeKey are not refused: changes are
    /// compare-and-swaps, never lost to a stale copy.
    pub fn require_current_within(&self, bound: Duration, as_of: Instant) {
        if let Ok(mut lease) = self.lease.lock() {
            *lease = Some(Lease {
                bound,
                confirmed: as_of,
            });
        }
    }

    /// Whether a watcher keeps this copy current with other writers of the
    /// keystore ([`EmbeddedKms::require_current_within`] was called).
    pub(super) fn is_shared(&self) -> bool {
        self.lease
            .lock()
            .map(|lease| lease.is_some())
            .unwrap_or(false)
    }

    /// Records that every change committed to the keystore before `as_of`
    /// is in the copy (the watcher refreshed what it was told of up to
    /// then). Earlier instants than the last confirmation are ignored.
    pub fn confirm_current(&self, as_of: Instant) {
        if let Ok(mut lease) = self.lease.lock()
            && let Some(lease) = lease.as_mut()
            && as_of > lease.confirmed
        {
            lease.confirmed = as_of;
        }
    }

    /// `Ok` unless a lease is required and has run out.
    pub(super) fn check_current(&self) -> Result<(), KmsError> {
        match self.lease.lock() {
            Ok(lease) => lease.as_ref().map_or(Ok(()), Lease::check),
            Err(_) => Err(KmsError::Internal("the KMS lease lock is poisoned".into())),
        }
    }
}
