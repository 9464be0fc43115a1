//! Coffer key ids on KMIP objects, and what Coffer remembers about them.
//!
//! A Coffer key is a KMIP symmetric key whose Name attribute is its key id (a UUID for keys
//! Coffer creates; whatever name an administrator gave a key made in the KMIP server). An
//! alias is one more Name (`alias/…`) on the same object. So Coffer's disk holds no mapping
//! and no state: a key reference is resolved with Locate, and the state is the server's.
//!
//! Two things are kept in memory: the Unique Identifier a name resolved to (an object's
//! identifier never changes), and each key's last seen state for [`STATE_TTL`], which is how
//! long a revoked key may still pass [`KeyDirectory::usable_now`] (the check that guards
//! cached bucket keys). Every Encrypt and Decrypt asks the server itself.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use coffer_kms::KmsError;
use coffer_kms::kms::KeyRef;
use coffer_kms::kms::{KeyMetadata, KeySpec, KeyState, Origin};
use time::OffsetDateTime;

use crate::client::{CallError, KmipClient};
use crate::protocol::{self, ObjectAttributes, ObjectState, Operation, Reply, reason};

/// How long a key's state seen from the server answers `usable_now`: the documented bound
/// on how long a key revoked in the KMIP server still opens cached bucket keys.
pub const STATE_TTL: Duration = Duration::from_secs(5);
/// The account in the ARNs Coffer shows (the embedded KMS's too).
const ACCOUNT: &str = "000000000000";
/// Resolved names kept at most (beyond it, the cache starts over).
const MAX_CACHED: usize = 4096;

/// A key reference resolved: the KMIP object and Coffer's key id for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub unique_id: String,
    pub key_id: String,
}

/// Resolves key references and remembers states.
pub struct KeyDirectory {
    region: String,
    names: Mutex<HashMap<String, Resolved>>,
    states: Mutex<HashMap<String, (KeyMetadata, Instant)>>,
}

impl KeyDirectory {
    pub fn new(region: String) -> Self {
        Self {
            region,
            names: Mutex::new(HashMap::new()),
            states: Mutex::new(HashMap::new()),
        }
    }

    /// The key's ARN in Coffer's region.
    pub fn arn(&self, key_id: &str) -> String {
        format!("arn:aws:kms:{}:{ACCOUNT}:key/{key_id}", self.region)
    }

    /// The KMIP object and key id of a key id, key ARN, alias or alias ARN.
    pub fn resolve(&self, client: &KmipClient, key: KeyRef) -> Result<Resolved, KmsError> {
        let name = name_of(key).ok_or_else(|| KmsError::NotFound(key.to_owned()))?;
        if let Some(found) = lock(&self.names).get(name) {
            return Ok(found.clone());
        }
        let mut located = locate(client, Some(name))?;
        // Two gateways creating the default key at once may leave two: all agree on the first.
        located.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
        let unique_id = located
            .into_iter()
            .next()
            .ok_or_else(|| KmsError::NotFound(key.to_owned()))?;
        let key_id = if name.starts_with("alias/") {
            let attributes = get_attributes(client, &unique_id)?
                .ok_or_else(|| KmsError::NotFound(key.to_owned()))?;
            key_id_of(&attributes).ok_or_else(|| KmsError::NotFound(key.to_owned()))?
        } else {
            name.to_owned()
        };
        let resolved = Resolved { unique_id, key_id };
        let mut names = lock(&self.names);
        if names.len() >= MAX_CACHED {
            names.clear();
        }
        names.insert(name.to_owned(), resolved.clone());
        Ok(resolved)
    }

    /// Asks the server for the key's attributes; remembers and returns its metadata.
    pub fn describe(&self, client: &KmipClient, key: &Resolved) -> Result<KeyMetadata, KmsError> {
        let Some(attributes) = get_attributes(client, &key.unique_id)? else {
            self.forget(key);
            return Err(KmsError::NotFound(key.key_id.clone()));
        };
        let meta = self.metadata(&key.key_id, &attributes);
        self.remember(&meta);
        Ok(meta)
    }

    /// Notes that the server just used the key (so it is Active).
    pub fn saw_active(&self, client: &KmipClient, key: &Resolved) {
        let mut states = lock(&self.states);
        match states.get_mut(&key.key_id) {
            Some((meta, seen)) if meta.state == KeyState::Enabled => *seen = Instant::now(),
            _ => {
                drop(states);
                // Unknown or last seen unusable: ask once, so usable_now has the whole picture.
                let _ = self.describe(client, key);
            }
        }
    }

    /// The key's usability from memory if seen within [`STATE_TTL`]; `None` otherwise.
    pub fn usable_now(&self, key: KeyRef) -> Option<Result<String, KmsError>> {
        let name = name_of(key)?;
        let key_id = lock(&self.names).get(name)?.key_id.clone();
        let states = lock(&self.states);
        let (meta, seen) = states.get(&key_id)?;
        (seen.elapsed() < STATE_TTL).then(|| usable(meta))
    }

    /// Why a key the server refused to use is unusable: its state if it is not Active, else
    /// `active` (the server's own refusal).
    pub fn explain(
        &self,
        client: &KmipClient,
        key: &Resolved,
        reason_code: u32,
        active: KmsError,
    ) -> KmsError {
        if reason_code == reason::ITEM_NOT_FOUND {
            self.forget(key);
            return KmsError::NotFound(key.key_id.clone());
        }
        match self.describe(client, key) {
            Ok(meta) => match usable(&meta) {
                Err(error) => error,
                Ok(_) => active,
            },
            Err(error) => error,
        }
    }

    /// Forgets a key the server no longer has: its names may be given to a new key (the
    /// default key is created again on its next use).
    fn forget(&self, key: &Resolved) {
        lock(&self.names).retain(|_, resolved| resolved.unique_id != key.unique_id);
        lock(&self.states).remove(&key.key_id);
    }

    pub fn forget_state(&self, key_id: &str) {
        lock(&self.states).remove(key_id);
    }

    pub fn metadata(&self, key_id: &str, attributes: &ObjectAttributes) -> KeyMetadata {
        let state = match attributes.state {
            Some(ObjectState::Active) => KeyState::Enabled,
            Some(ObjectState::Destroyed | ObjectState::DestroyedCompromised) => {
                KeyState::PendingDeletion
            }
            _ => KeyState::Disabled,
        };
        KeyMetadata {
            key_id: key_id.to_owned(),
            arn: self.arn(key_id),
            description: String::new(),
            state,
            origin: Origin::Generated,
            key_spec: KeySpec::SymmetricDefault,
            created: attributes
                .initial_date
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            deletion_date: None,
            valid_to: None,
            current_version: 1,
            managed: attributes
                .names
                .iter()
                .any(|n| n == crate::DEFAULT_SSE_ALIAS),
        }
    }

    fn remember(&self, meta: &KeyMetadata) {
        let mut states = lock(&self.states);
        if states.len() >= MAX_CACHED {
            states.clear();
        }
        states.insert(meta.key_id.clone(), (meta.clone(), Instant::now()));
    }
}

/// The ARN if the key is Enabled, else the error a use of it gets.
pub fn usable(meta: &KeyMetadata) -> Result<String, KmsError> {
    match meta.state {
        KeyState::Enabled => Ok(meta.arn.clone()),
        KeyState::Disabled => Err(KmsError::Disabled(meta.key_id.clone())),
        state => Err(KmsError::InvalidState {
            key: meta.key_id.clone(),
            state: state.as_str(),
        }),
    }
}

/// The Name a key reference looks up: the id of a key ARN, the alias of an alias ARN.
fn name_of(key: &str) -> Option<&str> {
    let name = match key.strip_prefix("arn:") {
        Some(arn) => {
            // aws:kms:REGION:ACCOUNT:key/ID or …:alias/NAME
            let resource = arn.splitn(5, ':').nth(4)?;
            resource.strip_prefix("key/").unwrap_or(resource)
        }
        None => key,
    };
    (!name.is_empty() && name != "alias/").then_some(name)
}

/// Coffer's key id for an object: its first Name that is not an alias.
pub fn key_id_of(attributes: &ObjectAttributes) -> Option<String> {
    attributes
        .names
        .iter()
        .find(|name| !name.starts_with("alias/"))
        .cloned()
}

/// The symmetric keys named `name` (every symmetric key for `None`).
pub fn locate(client: &KmipClient, name: Option<&str>) -> Result<Vec<String>, KmsError> {
    match client.call(Operation::Locate, protocol::locate(name)) {
        Ok(Reply::Success(payload)) => Ok(protocol::located(&payload)),
        Ok(Reply::Failure { reason, .. }) if reason == reason::ITEM_NOT_FOUND => Ok(Vec::new()),
        Ok(Reply::Failure { message, .. }) => Err(refused(client, "Locate", &message)),
        Err(error) => Err(unavailable(error)),
    }
}

/// An object's Names, State and Initial Date; `None` if it does not exist.
pub fn get_attributes(
    client: &KmipClient,
    unique_id: &str,
) -> Result<Option<ObjectAttributes>, KmsError> {
    match client.call(
        Operation::GetAttributes,
        protocol::get_attributes(unique_id),
    ) {
        Ok(Reply::Success(payload)) => Ok(Some(protocol::attributes(&payload))),
        Ok(Reply::Failure { reason, .. }) if reason == reason::ITEM_NOT_FOUND => Ok(None),
        Ok(Reply::Failure { message, .. }) => Err(refused(client, "Get Attributes", &message)),
        Err(error) => Err(unavailable(error)),
    }
}

/// A server that cannot be asked: the KMS is unavailable, and Coffer fails closed.
pub fn unavailable(error: CallError) -> KmsError {
    KmsError::Internal(error.to_string())
}

/// An operation the server refused for a reason other than the key's state.
pub fn refused(client: &KmipClient, operation: &str, message: &str) -> KmsError {
    KmsError::Internal(format!(
        "KMIP server {} refused {operation}: {message}",
        client.endpoint()
    ))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_key_references() {
        assert_eq!(name_of("1234-abcd"), Some("1234-abcd"));
        assert_eq!(name_of("alias/aws/s3"), Some("alias/aws/s3"));
        assert_eq!(
            name_of("arn:aws:kms:us-east-1:000000000000:key/1234-abcd"),
            Some("1234-abcd")
        );
        assert_eq!(
            name_of("arn:aws:kms:eu-west-1:000000000000:alias/app"),
            Some("alias/app")
        );
        assert_eq!(name_of(""), None);
        assert_eq!(name_of("arn:aws:kms"), None);
    }

    #[test]
    fn states_map_to_kms_states() {
        let directory = KeyDirectory::new("us-east-1".into());
        let attributes = |state| ObjectAttributes {
            names: vec!["k".into()],
            state: Some(state),
            initial_date: Some(0),
        };
        for (state, expected) in [
            (ObjectState::Active, KeyState::Enabled),
            (ObjectState::PreActive, KeyState::Disabled),
            (ObjectState::Deactivated, KeyState::Disabled),
            (ObjectState::Compromised, KeyState::Disabled),
            (ObjectState::Destroyed, KeyState::PendingDeletion),
        ] {
            let meta = directory.metadata("k", &attributes(state));
            assert_eq!(meta.state, expected, "{state:?}");
            assert_eq!(meta.arn, "arn:aws:kms:us-east-1:000000000000:key/k");
        }
        assert!(matches!(
            usable(&directory.metadata("k", &attributes(ObjectState::Deactivated))),
            Err(KmsError::Disabled(_))
        ));
    }
}
