//! An in-memory KMS data plane: customer master keys that live only in this
//! process, with states, aliases and rotation, and nothing on disk.
//!
//! It is the reference backend the [contract suite](crate::contract) is
//! written against, and the KMS of the keying layer's unit tests, which
//! need a KMS whose keys they can disable, rotate and count calls to
//! without a keystore. It never holds a server's keys: a restart loses
//! every key and with it every object sealed under one.
//!
//! Like the embedded KMS, answers name keys by id, not ARN. Ciphertext
//! blobs name their key and version and seal the plaintext with
//! the [secret box](coffer_crypto::secret_box) under that version's
//! material, bound to the encryption context:
//!
//! ```text
//! "coffer-memory-kms-1" ‖ u16 key id length ‖ key id ‖ u32 version ‖ secret box
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use coffer_crypto::{SymmetricKey, secret_box};
use time::OffsetDateTime;

use crate::CallContext;
use crate::kms::{
    Ciphertext, EncryptionContext, GeneratedDataKey, KeyMetadata, KeyRef, KeySpec, KeyState,
    KmsDataPlane, KmsError, Origin, Plaintext,
};

const BLOB_LABEL: &[u8] = b"coffer-memory-kms-1";
const ACCOUNT: &str = "000000000000";
/// The alias SSE-KMS falls back to, created on first use as AWS does.
const DEFAULT_SSE_ALIAS: &str = "alias/aws/s3";

/// A customer master key: its versions' material (version `n` at `n - 1`).
struct MemoryKey {
    metadata: KeyMetadata,
    versions: Vec<SymmetricKey>,
}

#[derive(Default)]
struct Keys {
    by_id: HashMap<String, MemoryKey>,
    aliases: BTreeMap<String, String>,
    /// Every data-plane call, by name, for tests that count KMS requests.
    calls: Vec<&'static str>,
}

/// Keys in memory, behind [`KmsDataPlane`].
pub struct MemoryKms {
    region: String,
    keys: Mutex<Keys>,
}

impl MemoryKms {
    /// An empty KMS in `region` (used in the keys' ARNs).
    pub fn new(region: &str) -> Self {
        MemoryKms {
            region: region.to_owned(),
            keys: Mutex::new(Keys::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Keys> {
        // A panic while holding the lock leaves the map consistent (every
        // change is one insert or one field write), so a poisoned lock is
        // still safe to use.
        self.keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates an enabled key and returns its metadata.
    pub fn create_key(&self, spec: KeySpec) -> Result<KeyMetadata, KmsError> {
        let key_id = uuid_like()?;
        let metadata = KeyMetadata {
            arn: format!("arn:aws:kms:{}:{ACCOUNT}:key/{key_id}", self.region),
            key_id: key_id.clone(),
            description: String::new(),
            state: KeyState::Enabled,
            origin: Origin::Generated,
            key_spec: spec,
            created: OffsetDateTime::now_utc(),
            deletion_date: None,
            valid_to: None,
            current_version: 1,
            managed: false,
        };
        let material = SymmetricKey::generate().map_err(internal)?;
        self.lock().by_id.insert(
            key_id,
            MemoryKey {
                metadata: metadata.clone(),
                versions: vec![material],
            },
        );
        Ok(metadata)
    }

    /// Points `alias` (`alias/…`) at `key`.
    pub fn set_alias(&self, alias: &str, key: KeyRef) -> Result<(), KmsError> {
        let mut keys = self.lock();
        let key_id = resolve(&keys, key)?.metadata.key_id.clone();
        keys.aliases.insert(alias.to_owned(), key_id);
        Ok(())
    }

    /// Sets a key's state (Enabled, Disabled, PendingDeletion …).
    pub fn set_state(&self, key: KeyRef, state: KeyState) -> Result<(), KmsError> {
        let mut keys = self.lock();
        let key_id = resolve(&keys, key)?.metadata.key_id.clone();
        let entry = keys.by_id.get_mut(&key_id).ok_or_else(|| not_found(key))?;
        entry.metadata.state = state;
        Ok(())
    }

    /// Adds a version of `key`'s material; new data keys use it, old
    /// ciphertexts keep decrypting. Returns the new version.
    pub fn rotate(&self, key: KeyRef) -> Result<u32, KmsError> {
        let material = SymmetricKey::generate().map_err(internal)?;
        let mut keys = self.lock();
        let key_id = resolve(&keys, key)?.metadata.key_id.clone();
        let entry = keys.by_id.get_mut(&key_id).ok_or_else(|| not_found(key))?;
        entry.versions.push(material);
        entry.metadata.current_version += 1;
        Ok(entry.metadata.current_version)
    }

    /// The data-plane calls made so far, by method name, in order.
    pub fn calls(&self) -> Vec<&'static str> {
        self.lock().calls.clone()
    }

    fn record(&self, call: &'static str) -> MutexGuard<'_, Keys> {
        let mut keys = self.lock();
        keys.calls.push(call);
        keys
    }

    fn seal(
        keys: &Keys,
        key: KeyRef,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Ciphertext, KmsError> {
        let entry = usable(keys, key)?;
        let version = entry.metadata.current_version;
        let sealed = secret_box::seal(
            current_material(entry),
            &context_binding(context),
            plaintext,
        )
        .map_err(internal)?;
        let id = entry.metadata.key_id.as_bytes();
        let id_len = u16::try_from(id.len()).map_err(|_| internal("key id too long"))?;
        let mut blob = BLOB_LABEL.to_vec();
        blob.extend_from_slice(&id_len.to_be_bytes());
        blob.extend_from_slice(id);
        blob.extend_from_slice(&version.to_be_bytes());
        blob.extend_from_slice(&sealed);
        Ok(Ciphertext {
            key_id: entry.metadata.key_id.clone(),
            key_version: version,
            ciphertext_blob: blob,
        })
    }

    fn open(
        keys: &Keys,
        blob: &[u8],
        context: &EncryptionContext,
        key: Option<KeyRef>,
    ) -> Result<Plaintext, KmsError> {
        let (key_id, version, sealed) = parse_blob(blob).ok_or(KmsError::InvalidCiphertext)?;
        let entry = keys.by_id.get(key_id).ok_or(KmsError::InvalidCiphertext)?;
        if let Some(expected) = key
            && resolve(keys, expected)?.metadata.key_id != entry.metadata.key_id
        {
            return Err(KmsError::IncorrectKey);
        }
        check_enabled(&entry.metadata)?;
        let material = version
            .checked_sub(1)
            .and_then(|at| entry.versions.get(at as usize))
            .ok_or(KmsError::InvalidCiphertext)?;
        let plaintext = secret_box::open(material, &context_binding(context), sealed)
            .map_err(|_| KmsError::InvalidCiphertext)?;
        Ok(Plaintext {
            key_id: entry.metadata.key_id.clone(),
            key_version: version,
            plaintext,
        })
    }
}

impl KmsDataPlane for MemoryKms {
    fn describe_key(&self, _ctx: &CallContext, key: KeyRef) -> Result<KeyMetadata, KmsError> {
        let keys = self.record("describe_key");
        Ok(resolve(&keys, key)?.metadata.clone())
    }

    fn usable_now(&self, key: KeyRef) -> Option<Result<String, KmsError>> {
        let keys = self.lock();
        Some(usable(&keys, key).map(|entry| entry.metadata.arn.clone()))
    }

    fn generate_data_key(
        &self,
        _ctx: &CallContext,
        key: KeyRef,
        context: &EncryptionContext,
    ) -> Result<GeneratedDataKey, KmsError> {
        let keys = self.record("generate_data_key");
        let plaintext = SymmetricKey::generate().map_err(internal)?;
        let sealed = Self::seal(&keys, key, plaintext.expose(), context)?;
        Ok(GeneratedDataKey {
            key_id: sealed.key_id,
            key_version: sealed.key_version,
            plaintext,
            ciphertext_blob: sealed.ciphertext_blob,
        })
    }

    fn encrypt(
        &self,
        _ctx: &CallContext,
        key: KeyRef,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Ciphertext, KmsError> {
        let keys = self.record("encrypt");
        Self::seal(&keys, key, plaintext, context)
    }

    fn decrypt(
        &self,
        _ctx: &CallContext,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
        key: Option<KeyRef>,
    ) -> Result<Plaintext, KmsError> {
        let keys = self.record("decrypt");
        Self::open(&keys, ciphertext_blob, context, key)
    }

    fn re_encrypt(
        &self,
        _ctx: &CallContext,
        ciphertext_blob: &[u8],
        source_context: &EncryptionContext,
        destination_key: KeyRef,
        destination_context: &EncryptionContext,
    ) -> Result<Ciphertext, KmsError> {
        let keys = self.record("re_encrypt");
        let opened = Self::open(&keys, ciphertext_blob, source_context, None)?;
        Self::seal(
            &keys,
            destination_key,
            &opened.plaintext,
            destination_context,
        )
    }

    fn default_sse_key(&self, _ctx: &CallContext) -> Result<KeyMetadata, KmsError> {
        if let Ok(existing) = resolve(&self.record("default_sse_key"), DEFAULT_SSE_ALIAS) {
            return Ok(existing.metadata.clone());
        }
        let mut created = self.create_key(KeySpec::SymmetricDefault)?;
        created.managed = true;
        let mut keys = self.lock();
        keys.aliases
            .insert(DEFAULT_SSE_ALIAS.to_owned(), created.key_id.clone());
        if let Some(entry) = keys.by_id.get_mut(&created.key_id) {
            entry.metadata.managed = true;
        }
        Ok(created)
    }
}

/// A key by id, ARN or alias.
fn resolve<'k>(keys: &'k Keys, key: KeyRef) -> Result<&'k MemoryKey, KmsError> {
    let id = match keys.aliases.get(key) {
        Some(target) => target.as_str(),
        None => key.rsplit_once(":key/").map_or(key, |(_, id)| id),
    };
    keys.by_id.get(id).ok_or_else(|| not_found(key))
}

/// A key that may be used now, or the error its use gets.
fn usable<'k>(keys: &'k Keys, key: KeyRef) -> Result<&'k MemoryKey, KmsError> {
    let entry = resolve(keys, key)?;
    check_enabled(&entry.metadata)?;
    Ok(entry)
}

fn check_enabled(metadata: &KeyMetadata) -> Result<(), KmsError> {
    match metadata.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(KmsError::Disabled(metadata.key_id.clone())),
        state => Err(KmsError::InvalidState {
            key: metadata.key_id.clone(),
            state: state.as_str(),
        }),
    }
}

fn current_material(entry: &MemoryKey) -> &SymmetricKey {
    entry
        .versions
        .last()
        .expect("a key is created with its first version and never loses one")
}

/// The secret box context of an encryption context: its JSON, whose keys a
/// `BTreeMap` keeps sorted, so equal contexts bind equally.
fn context_binding(context: &EncryptionContext) -> String {
    serde_json::to_string(context).expect("a map of strings serialises")
}

fn parse_blob(blob: &[u8]) -> Option<(&str, u32, &[u8])> {
    let rest = blob.strip_prefix(BLOB_LABEL)?;
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let (id, rest) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
    let (version, sealed) = rest.split_first_chunk::<4>()?;
    Some((
        std::str::from_utf8(id).ok()?,
        u32::from_be_bytes(*version),
        sealed,
    ))
}

fn uuid_like() -> Result<String, KmsError> {
    let hex = coffer_crypto::random::hex_id(16).map_err(internal)?;
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

fn not_found(key: KeyRef) -> KmsError {
    KmsError::NotFound(key.to_owned())
}

fn internal(error: impl std::fmt::Display) -> KmsError {
    KmsError::Internal(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Memory(MemoryKms);

    impl crate::contract::Harness for Memory {
        fn kms(&self) -> &dyn KmsDataPlane {
            &self.0
        }
        fn create_key(&self) -> String {
            self.0
                .create_key(KeySpec::SymmetricDefault)
                .expect("create")
                .key_id
        }
        fn set_enabled(&self, key: &str, enabled: bool) {
            let state = if enabled {
                KeyState::Enabled
            } else {
                KeyState::Disabled
            };
            self.0.set_state(key, state).expect("set state");
        }
        fn rotate(&self, key: &str) {
            self.0.rotate(key).expect("rotate");
        }
    }

    #[test]
    fn passes_the_kms_contract() {
        crate::contract::run(&Memory(MemoryKms::new("us-east-1")));
    }

    #[test]
    fn counts_calls() {
        let kms = MemoryKms::new("us-east-1");
        let key = kms.create_key(KeySpec::SymmetricDefault).expect("create");
        let ctx = CallContext::default();
        let context = EncryptionContext::new();
        let generated = kms
            .generate_data_key(&ctx, &key.key_id, &context)
            .expect("generate");
        kms.decrypt(&ctx, &generated.ciphertext_blob, &context, None)
            .expect("decrypt");
        assert!(kms.usable_now(&key.arn).is_some_and(|r| r.is_ok()));
        assert_eq!(kms.calls(), ["generate_data_key", "decrypt"]);
    }
}
