//! The embedded KMS: customer master keys kept in `<data-dir>/kms/`, sealed
//! by the root key, behind the [`KmsDataPlane`] and [`KmsAdmin`] traits.
//!
//! - `keystore`: the in-memory state, and the sealed records the
//!   [`KeyStore`] holds (one per key, one per alias).
//! - `lifecycle`: key references, states, deletion windows, BYOK expiry,
//!   automatic rotation (applied lazily at the start of every call).
//! - `blob`: the ciphertext blob format (`CKMS` ‖ 1 ‖ key id ‖ version ‖
//!   nonce ‖ AES-256-GCM, AAD = header ‖ canonical context).
//! - `byok`: RSA-OAEP wrapping keys for imported material.
//! - `audit`: `audit.log`, one JSON line per call.
//! - [`backup`]: the keystore and the service key ring sealed to an offline recovery key,
//!   and restored from it.
//!
//! The KMS reads from an in-memory copy of the keystore. Every change is a
//! compare-and-swap of each changed record in the [`KeyStore`], durable
//! before the call returns; memory is only updated once every swap has
//! succeeded. A swap that loses (another writer changed the record) fails
//! the call with [`KmsError::Internal`] and reloads the copy: nothing is
//! silently overwritten. Changes made by other writers sharing the keystore
//! reach the copy through `refresh` (see that module), which can also make
//! key use fail closed while the copy is not known to be current.

mod audit;
pub mod backup;
mod blob;
mod byok;
mod keystore;
mod lifecycle;
mod policy;
mod refresh;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use time::{Duration, OffsetDateTime};

use self::audit::AuditDetails;
use self::keystore::{Cmk, ImportToken, MaterialVersion, Rotation, State};
use self::lifecycle::{
    check_usable, current_material, invalid_state, material, metadata, new_key_id, validate_tags,
};
use crate::RootKey;
use crate::keystore::file::FileKeyStore;
use crate::keystore::{AuditEntry, Cas, KeyRecord, KeyStore, Revision, Versioned};
use crate::kms::{
    AliasEntry, CallContext, Ciphertext, CreateKey, EncryptionContext, GeneratedDataKey,
    ImportParameters, KeyMetadata, KeyPolicy, KeyRef, KeyState, KmsAdmin, KmsDataPlane, KmsError,
    Origin, Plaintext, RotationEntry, RotationStatus, WrappingAlgorithm, WrappingKeySpec,
};

pub use self::blob::{FORMAT_VERSION as BLOB_FORMAT_VERSION, MAGIC as BLOB_MAGIC};
pub use self::keystore::RootIntegrity;
// For external backends, which read references and bind contexts the same way.
pub use self::blob::canonical_context;
pub use self::lifecycle::{ACCOUNT, Target, key_arn, parse_key_ref, random_key_id, validate_alias};

/// The alias of the service's default SSE-KMS key.
pub const DEFAULT_SSE_ALIAS: &str = "alias/aws/s3";
/// Encrypt's plaintext limit, as in AWS KMS.
pub const MAX_PLAINTEXT_LEN: usize = 4096;
const MAX_DESCRIPTION_LEN: usize = 8192;
const DEFAULT_ROTATION_DAYS: u32 = 365;
const ROTATION_DAYS: std::ops::RangeInclusive<u32> = 90..=2560;
const DELETION_WINDOW_DAYS: std::ops::RangeInclusive<u32> = 7..=30;
const IMPORT_PARAMETERS_LIFETIME: Duration = Duration::hours(24);

/// The time source; tests replace it to jump past windows and expiries.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The embedded KMS. Safe to share between threads; every call takes one
/// lock over the whole state.
pub struct EmbeddedKms {
    region: String,
    root: Arc<RootKey>,
    store: Arc<dyn KeyStore>,
    state: Mutex<Cache>,
    clock: Clock,
    /// Set when the KMS shares its keystore with other writers and must
    /// refuse key use while its copy is not known to be current.
    lease: Mutex<Option<refresh::Lease>>,
}

/// The keystore's records as last read or written, opened, with each
/// record's revision in the keystore.
struct Cache {
    state: State,
    revisions: BTreeMap<String, Revision>,
    /// A failed write could not be followed by a reload: reload before the
    /// next call.
    stale: bool,
}

impl Deref for Cache {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl DerefMut for Cache {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

/// Reads and opens every record of `store`.
fn load(store: &dyn KeyStore, root: &RootKey) -> Result<Cache, KmsError> {
    let mut state = State::default();
    let mut revisions = BTreeMap::new();
    for (id, Versioned { revision, value }) in store.list()? {
        match value {
            KeyRecord::Key(sealed) => {
                if sealed.key_id != id {
                    return Err(KmsError::Internal(format!(
                        "the KMS keystore is malformed: record '{id}' holds another key"
                    )));
                }
                let (cmk, tokens) = keystore::open_key(*sealed, root)?;
                state.keys.insert(id.clone(), cmk);
                state.import_tokens.extend(tokens);
            }
            KeyRecord::Alias { target_key_id } => {
                state.aliases.insert(id.clone(), target_key_id);
            }
        }
        revisions.insert(id, revision);
    }
    Ok(Cache {
        state,
        revisions,
        stale: false,
    })
}

/// The records that differ between `old` and `new`, sealed, in the order
/// they are swapped: new and changed keys, then aliases, then deleted keys,
/// so an alias never names a key that is not yet (or no longer) stored.
fn changes(
    old: &State,
    new: &State,
    root: &RootKey,
) -> Result<Vec<(String, Option<KeyRecord>)>, KmsError> {
    type Tokens<'a> = BTreeMap<&'a str, Vec<(&'a String, &'a ImportToken)>>;
    fn by_key(tokens: &BTreeMap<String, ImportToken>) -> Tokens<'_> {
        let mut out: Tokens<'_> = BTreeMap::new();
        for (hash, token) in tokens {
            out.entry(token.key_id.as_str())
                .or_default()
                .push((hash, token));
        }
        out
    }
    let (old_tokens, new_tokens) = (by_key(&old.import_tokens), by_key(&new.import_tokens));
    let mut out = Vec::new();
    for (id, cmk) in &new.keys {
        let tokens = new_tokens.get(id.as_str());
        let unchanged = old.keys.get(id) == Some(cmk) && old_tokens.get(id.as_str()) == tokens;
        if !unchanged {
            let sealed = keystore::seal_key(cmk, tokens.into_iter().flatten().copied(), root)?;
            out.push((id.clone(), Some(KeyRecord::Key(Box::new(sealed)))));
        }
    }
    for (name, target) in &new.aliases {
        if old.aliases.get(name) != Some(target) {
            let record = KeyRecord::Alias {
                target_key_id: target.clone(),
            };
            out.push((name.clone(), Some(record)));
        }
    }
    for name in old.aliases.keys() {
        if !new.aliases.contains_key(name) {
            out.push((name.clone(), None));
        }
    }
    for id in old.keys.keys() {
        if !new.keys.contains_key(id) {
            out.push((id.clone(), None));
        }
    }
    Ok(out)
}

impl std::fmt::Debug for EmbeddedKms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedKms")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl EmbeddedKms {
    /// CreateAlias (`exists` false: the alias must be new) and UpdateAlias
    /// (`exists` true: it must already exist) point an alias at a key.
    fn set_alias(
        &self,
        ctx: &CallContext,
        operation: &'static str,
        alias: &str,
        target: KeyRef,
        exists: bool,
    ) -> Result<(), KmsError> {
        self.call(ctx, operation, |audit| {
            audit.alias = Some(alias.to_owned());
            validate_alias(alias, false)?;
            self.write(|state, _| {
                match (state.aliases.contains_key(alias), exists) {
                    (true, false) => return Err(KmsError::AlreadyExists(alias.to_owned())),
                    (false, true) => return Err(KmsError::NotFound(alias.to_owned())),
                    _ => {}
                }
                let cmk = state.resolve(target, &self.region)?;
                describe(audit, cmk);
                Self::not_managed(cmk)?;
                if cmk.state == KeyState::PendingDeletion {
                    return Err(invalid_state(cmk, cmk.state));
                }
                let id = cmk.key_id.clone();
                state.aliases.insert(alias.to_owned(), id);
                Ok(())
            })
        })
    }

    /// Opens (or creates, empty) the file keystore in `<data_dir>/kms/`
    /// ([`FileKeyStore`]). A keystore that does not open with `root` (wrong
    /// root key, damaged or edited file) is [`KmsError::Internal`] and is
    /// left untouched.
    pub fn open(data_dir: &Path, root: Arc<RootKey>, region: &str) -> Result<Self, KmsError> {
        check_region(region)?;
        let dir = data_dir.join("kms");
        create_private_dir(&dir)
            .map_err(|e| KmsError::Internal(format!("{}: {e}", dir.display())))?;
        let integrity = Arc::new(RootIntegrity::new(Arc::clone(&root)));
        let store = FileKeyStore::open(&dir, integrity)?;
        Self::with_keystore(Arc::new(store), root, region)
    }

    /// The embedded KMS over any [`KeyStore`]: reads and opens every record
    /// with `root`. A record that does not open is [`KmsError::Internal`].
    pub fn with_keystore(
        store: Arc<dyn KeyStore>,
        root: Arc<RootKey>,
        region: &str,
    ) -> Result<Self, KmsError> {
        check_region(region)?;
        let cache = load(store.as_ref(), &root)?;
        Ok(Self {
            region: region.to_owned(),
            root,
            store,
            state: Mutex::new(cache),
            clock: Arc::new(OffsetDateTime::now_utc),
            lease: Mutex::new(None),
        })
    }

    /// Replaces the clock (tests: jump past deletion windows, rotation
    /// periods and BYOK ValidTo).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The ARN of a key id in this KMS's region.
    pub fn key_arn(&self, key_id: &str) -> String {
        key_arn(&self.region, key_id)
    }

    /// The ARN of an alias (`alias/name`) in this KMS's region.
    pub fn alias_arn(&self, alias: &str) -> String {
        format!("arn:aws:kms:{}:{}:{alias}", self.region, lifecycle::ACCOUNT)
    }

    /// ListResourceTags: the key's tags, sorted by tag key.
    pub fn list_resource_tags(
        &self,
        ctx: &CallContext,
        key: KeyRef,
    ) -> Result<Vec<(String, String)>, KmsError> {
        self.call(ctx, "ListResourceTags", |audit| {
            self.read(|state, _| {
                let cmk = state.resolve(key, &self.region)?;
                audit.key_id = Some(cmk.key_id.clone());
                Ok(cmk
                    .tags
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect())
            })
        })
    }

    fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// Runs `f` and writes its audit line.
    fn call<T>(
        &self,
        ctx: &CallContext,
        operation: &'static str,
        f: impl FnOnce(&mut AuditDetails) -> Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        let mut details = AuditDetails::default();
        let result = f(&mut details);
        crate::observe::call_finished(operation, &result);
        let time = keystore::format_time(self.now()).unwrap_or_default();
        let line = audit::line(
            &time,
            &ctx.principal,
            ctx.resource.as_deref(),
            operation,
            &details,
            result.as_ref().map(|_| ()),
        );
        // A failure to write is logged, not returned: the call it records
        // has already happened (and was persisted).
        if let Some(line) = line
            && let Err(e) = self.store.append_audit(&line)
        {
            tracing::error!(error = %e, operation, "KMS audit log write failed");
        }
        result
    }

    /// The state, reloaded first if a failed write left it stale.
    fn lock(&self) -> Result<MutexGuard<'_, Cache>, KmsError> {
        let mut guard = self
            .state
            .lock()
            .map_err(|_| KmsError::Internal("the KMS state lock is poisoned".into()))?;
        if guard.stale {
            *guard = load(self.store.as_ref(), &self.root)?;
        }
        Ok(guard)
    }

    /// `f` of the key `key` names, from the state in memory, without waiting: `None` when a
    /// write holds the lock (it persists the keystore meanwhile), the state is stale, a timer
    /// is due (running it persists), or the key is not found in a keystore other gateways
    /// share (perhaps created there a moment ago) — the cases a full call handles.
    fn resolve_now<T>(
        &self,
        key: KeyRef,
        f: impl FnOnce(&Cmk) -> Result<T, KmsError>,
    ) -> Option<Result<T, KmsError>> {
        let guard = self.state.try_lock().ok()?;
        if guard.stale || guard.timers_due(self.now()) {
            return None;
        }
        match guard.resolve(key, &self.region) {
            Err(KmsError::NotFound(_)) if self.is_shared() => None,
            resolved => Some(resolved.and_then(f)),
        }
    }

    /// Swaps every record that differs between the cache and `next` into the
    /// keystore, then makes `next` current. A lost swap or a failed write
    /// reloads the cache from the keystore and fails the call.
    fn commit(&self, cache: &mut Cache, next: State) -> Result<(), KmsError> {
        for (id, record) in changes(&cache.state, &next, &self.root)? {
            let swapped =
                self.store
                    .compare_and_swap(&id, cache.revisions.get(&id), record.as_ref());
            let error = match swapped {
                Ok(Cas::Swapped(Some(revision))) => {
                    cache.revisions.insert(id, revision);
                    continue;
                }
                Ok(Cas::Swapped(None)) => {
                    cache.revisions.remove(&id);
                    continue;
                }
                Ok(Cas::Lost) => KmsError::Internal(format!(
                    "the KMS keystore record '{id}' was changed by another writer, so this \
                     call was not completed; the KMS reloaded the keystore: retry the call"
                )),
                Err(e) => e,
            };
            match load(self.store.as_ref(), &self.root) {
                Ok(fresh) => *cache = fresh,
                Err(e) => {
                    tracing::error!(error = %e, "KMS keystore reload failed");
                    cache.stale = true;
                }
            }
            return Err(error);
        }
        cache.state = next;
        Ok(())
    }

    /// Applies due timers (persisting them), then reads. On a shared keystore
    /// a key or alias not found is looked for again after one re-read of the
    /// keystore ([`EmbeddedKms::retry_on_miss`]).
    fn read<T>(
        &self,
        mut f: impl FnMut(&State, OffsetDateTime) -> Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        self.retry_on_miss(|| {
            let mut guard = self.lock()?;
            let now = self.now();
            self.run_timers(&mut guard, now)?;
            f(&guard, now)
        })
    }

    /// Applies due timers, then changes a copy of the state, persists it and
    /// only then makes it current. An `Err` from `f` changes nothing. Misses
    /// are retried as in [`EmbeddedKms::read`].
    fn write<T>(
        &self,
        mut f: impl FnMut(&mut State, OffsetDateTime) -> Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        self.retry_on_miss(|| {
            let mut guard = self.lock()?;
            let now = self.now();
            self.run_timers(&mut guard, now)?;
            let mut next = guard.state.clone();
            let out = f(&mut next, now)?;
            self.commit(&mut guard, next)?;
            Ok(out)
        })
    }

    /// Runs `attempt`; when it finds no such key or alias and the keystore is
    /// shared with other gateways (a watcher keeps this copy current), re-reads
    /// the keystore and runs it once more. A key created through another
    /// gateway a moment ago is then found even before its notification
    /// arrives; a key that does not exist costs one listing of the keystore.
    fn retry_on_miss<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        match attempt() {
            Err(KmsError::NotFound(_)) if self.is_shared() => {
                self.refresh_all()?;
                attempt()
            }
            other => other,
        }
    }

    fn run_timers(&self, cache: &mut Cache, now: OffsetDateTime) -> Result<(), KmsError> {
        if !cache.timers_due(now) {
            return Ok(());
        }
        let mut next = cache.state.clone();
        next.fire_timers(now)?;
        self.commit(cache, next)
    }

    /// Decrypts a blob inside a read; shared by Decrypt and ReEncrypt.
    fn decrypt_in(
        &self,
        state: &State,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
        key: Option<KeyRef>,
    ) -> Result<Plaintext, KmsError> {
        self.check_current()?;
        let parsed = blob::parse(ciphertext_blob)?;
        if let Some(key) = key
            && state.resolve_id(key, &self.region)? != parsed.key_id
        {
            return Err(KmsError::IncorrectKey);
        }
        let cmk = state
            .keys
            .get(parsed.key_id)
            .ok_or_else(|| KmsError::NotFound(parsed.key_id.to_owned()))?;
        check_usable(cmk)?;
        let plaintext = blob::open(material(cmk, parsed.key_version)?, &parsed, context)?;
        Ok(Plaintext {
            key_id: cmk.key_id.clone(),
            key_version: parsed.key_version,
            plaintext,
        })
    }

    fn encrypt_in(
        &self,
        state: &State,
        key: KeyRef,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Ciphertext, KmsError> {
        self.check_current()?;
        let cmk = state.resolve(key, &self.region)?;
        check_usable(cmk)?;
        let (version, material) = current_material(cmk)?;
        Ok(Ciphertext {
            key_id: cmk.key_id.clone(),
            key_version: version,
            ciphertext_blob: blob::seal(material, &cmk.key_id, version, plaintext, context)?,
        })
    }

    fn new_cmk(
        &self,
        state: &State,
        now: OffsetDateTime,
        request: &CreateKey,
        managed: bool,
        creator: Option<&str>,
    ) -> Result<Cmk, KmsError> {
        let key_id = new_key_id(state)?;
        let mut cmk = Cmk {
            key_id,
            description: request.description.clone(),
            state: KeyState::Enabled,
            origin: request.origin,
            key_spec: request.key_spec,
            created: now,
            deletion_date: None,
            valid_to: None,
            managed,
            tags: request.tags.iter().cloned().collect(),
            current_version: 1,
            versions: Default::default(),
            rotation: Rotation {
                enabled: false,
                period_days: DEFAULT_ROTATION_DAYS,
                anchor: None,
            },
            import_commitment: None,
            creator: creator.map(str::to_owned),
            policy: request.policy.clone(),
        };
        match request.origin {
            Origin::Generated => {
                cmk.versions.insert(
                    1,
                    MaterialVersion {
                        created: now,
                        rotation_type: None,
                        key: lifecycle::generate_material()?,
                    },
                );
            }
            Origin::External => cmk.state = KeyState::PendingImport,
        }
        Ok(cmk)
    }

    fn not_managed(cmk: &Cmk) -> Result<(), KmsError> {
        if cmk.managed {
            return Err(KmsError::Validation(format!(
                "key '{}' is managed by the service and cannot be changed this way",
                cmk.key_id
            )));
        }
        Ok(())
    }

    fn not_external(cmk: &Cmk) -> Result<(), KmsError> {
        if cmk.origin == Origin::External {
            return Err(KmsError::Validation(format!(
                "key '{}' has imported key material, which Coffer cannot rotate",
                cmk.key_id
            )));
        }
        Ok(())
    }
}

fn check_region(region: &str) -> Result<(), KmsError> {
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(KmsError::Validation(format!("invalid region '{region}'")));
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    builder.create(dir)?;
    Ok(())
}

fn describe(audit: &mut AuditDetails, cmk: &Cmk) {
    audit.key_id = Some(cmk.key_id.clone());
}

impl KmsDataPlane for EmbeddedKms {
    fn describe_key(&self, ctx: &CallContext, key: KeyRef) -> Result<KeyMetadata, KmsError> {
        self.call(ctx, "DescribeKey", |audit| {
            self.read(|state, _| {
                let cmk = state.resolve(key, &self.region)?;
                describe(audit, cmk);
                Ok(metadata(cmk, &self.region))
            })
        })
    }

    /// The state loads (a cache left stale by a failed write reloads from
    /// the keystore), and the keystore itself reads and passes its
    /// integrity check now: a keystore file gone, unreadable or edited
    /// fails the probe before it fails a request.
    fn check_ready(&self) -> Result<(), KmsError> {
        drop(self.lock()?);
        self.store.get(DEFAULT_SSE_ALIAS).map(|_| ())
    }

    fn usable_now(&self, key: KeyRef) -> Option<Result<String, KmsError>> {
        // A copy not confirmed current within its bound refuses at once (not
        // `None`: DescribeKey would answer from the same stale copy).
        if let Err(e) = self.check_current() {
            return Some(Err(e));
        }
        self.resolve_now(key, |cmk| {
            check_usable(cmk)?;
            Ok(key_arn(&self.region, &cmk.key_id))
        })
    }

    fn generate_data_key(
        &self,
        ctx: &CallContext,
        key: KeyRef,
        context: &EncryptionContext,
    ) -> Result<GeneratedDataKey, KmsError> {
        self.call(ctx, "GenerateDataKey", |audit| {
            audit.encryption_context = Some(context.clone());
            let plaintext = lifecycle::generate_material()?;
            let sealed =
                self.read(|state, _| self.encrypt_in(state, key, plaintext.expose(), context))?;
            audit.key_id = Some(sealed.key_id.clone());
            audit.key_version = Some(sealed.key_version);
            Ok(GeneratedDataKey {
                key_id: sealed.key_id,
                key_version: sealed.key_version,
                plaintext,
                ciphertext_blob: sealed.ciphertext_blob,
            })
        })
    }

    fn encrypt(
        &self,
        ctx: &CallContext,
        key: KeyRef,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Ciphertext, KmsError> {
        self.call(ctx, "Encrypt", |audit| {
            audit.encryption_context = Some(context.clone());
            if plaintext.is_empty() || plaintext.len() > MAX_PLAINTEXT_LEN {
                return Err(KmsError::Validation(
                    "the plaintext must be 1 to 4096 bytes".into(),
                ));
            }
            let sealed = self.read(|state, _| self.encrypt_in(state, key, plaintext, context))?;
            audit.key_id = Some(sealed.key_id.clone());
            audit.key_version = Some(sealed.key_version);
            Ok(sealed)
        })
    }

    fn decrypt(
        &self,
        ctx: &CallContext,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
        key: Option<KeyRef>,
    ) -> Result<Plaintext, KmsError> {
        self.call(ctx, "Decrypt", |audit| {
            audit.encryption_context = Some(context.clone());
            // The key the blob names, so a refused call (a disabled key) still says which.
            if let Ok(parsed) = blob::parse(ciphertext_blob) {
                audit.key_id = Some(parsed.key_id.to_owned());
                audit.key_version = Some(parsed.key_version);
            }
            let opened =
                self.read(|state, _| self.decrypt_in(state, ciphertext_blob, context, key))?;
            audit.key_id = Some(opened.key_id.clone());
            audit.key_version = Some(opened.key_version);
            Ok(opened)
        })
    }

    fn re_encrypt(
        &self,
        ctx: &CallContext,
        ciphertext_blob: &[u8],
        source_context: &EncryptionContext,
        destination_key: KeyRef,
        destination_context: &EncryptionContext,
    ) -> Result<Ciphertext, KmsError> {
        self.call(ctx, "ReEncrypt", |audit| {
            audit.encryption_context = Some(source_context.clone());
            audit.destination_encryption_context = Some(destination_context.clone());
            if let Ok(parsed) = blob::parse(ciphertext_blob) {
                audit.source_key_id = Some(parsed.key_id.to_owned());
                audit.source_key_version = Some(parsed.key_version);
            }
            self.read(|state, _| {
                let opened = self.decrypt_in(state, ciphertext_blob, source_context, None)?;
                audit.source_key_id = Some(opened.key_id.clone());
                audit.source_key_version = Some(opened.key_version);
                let sealed = self.encrypt_in(
                    state,
                    destination_key,
                    &opened.plaintext,
                    destination_context,
                )?;
                audit.key_id = Some(sealed.key_id.clone());
                audit.key_version = Some(sealed.key_version);
                Ok(sealed)
            })
        })
    }

    fn key_id_of_ciphertext(&self, ciphertext_blob: &[u8]) -> Result<Option<String>, KmsError> {
        blob::parse(ciphertext_blob).map(|parsed| Some(parsed.key_id.to_owned()))
    }

    fn default_sse_key(&self, ctx: &CallContext) -> Result<KeyMetadata, KmsError> {
        self.call(ctx, "DescribeKey", |audit| {
            audit.alias = Some(DEFAULT_SSE_ALIAS.to_owned());
            let existing = self.read(|state, _| {
                Ok(state
                    .resolve(DEFAULT_SSE_ALIAS, &self.region)
                    .ok()
                    .map(|cmk| metadata(cmk, &self.region)))
            })?;
            let meta = match existing {
                Some(meta) => meta,
                None => self.write(|state, now| {
                    if let Ok(cmk) = state.resolve(DEFAULT_SSE_ALIAS, &self.region) {
                        return Ok(metadata(cmk, &self.region));
                    }
                    validate_alias(DEFAULT_SSE_ALIAS, true)?;
                    let request = CreateKey {
                        description:
                            "Default key that protects my S3 objects when no other key is defined"
                                .into(),
                        key_spec: crate::kms::KeySpec::SymmetricDefault,
                        origin: Origin::Generated,
                        tags: Vec::new(),
                        policy: None,
                    };
                    // A managed key's policy is the service's (`key_policy::managed_policy`).
                    let mut cmk = self.new_cmk(state, now, &request, true, None)?;
                    cmk.rotation = Rotation {
                        enabled: true,
                        period_days: DEFAULT_ROTATION_DAYS,
                        anchor: Some(now),
                    };
                    let meta = metadata(&cmk, &self.region);
                    state
                        .aliases
                        .insert(DEFAULT_SSE_ALIAS.to_owned(), cmk.key_id.clone());
                    state.keys.insert(cmk.key_id.clone(), cmk);
                    Ok(meta)
                })?,
            };
            audit.key_id = Some(meta.key_id.clone());
            Ok(meta)
        })
    }
}

impl KmsAdmin for EmbeddedKms {
    fn audit_log(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, KmsError> {
        self.store.read_audit(after, limit)
    }

    fn get_key_policy(
        &self,
        ctx: &CallContext,
        key: KeyRef,
    ) -> Result<Option<KeyPolicy>, KmsError> {
        self.call(ctx, "GetKeyPolicy", |audit| {
            let policy = self.policy_of(key)?;
            audit.key_id = Some(policy.key_id.clone());
            Ok(Some(policy))
        })
    }

    fn put_key_policy(
        &self,
        ctx: &CallContext,
        key: KeyRef,
        document: &str,
    ) -> Result<(), KmsError> {
        self.call(ctx, "PutKeyPolicy", |audit| {
            self.set_policy(audit, key, document)
        })
    }

    fn key_policy(&self, key: KeyRef) -> Result<Option<KeyPolicy>, KmsError> {
        self.policy_of(key).map(Some)
    }

    fn key_policy_now(&self, key: KeyRef) -> Option<Result<Option<KeyPolicy>, KmsError>> {
        self.resolve_now(key, |cmk| Ok(Some(policy::policy(cmk, &self.region))))
    }

    fn create_key(&self, ctx: &CallContext, request: CreateKey) -> Result<KeyMetadata, KmsError> {
        self.call(ctx, "CreateKey", |audit| {
            if request.description.len() > MAX_DESCRIPTION_LEN {
                return Err(KmsError::Validation(
                    "the description is longer than 8192 bytes".into(),
                ));
            }
            validate_tags(&request.tags)?;
            if let Some(policy) = &request.policy {
                crate::key_policy::check_document(None, policy)?;
            }
            let meta = self.write(|state, now| {
                let cmk = self.new_cmk(state, now, &request, false, Some(&ctx.principal))?;
                let meta = metadata(&cmk, &self.region);
                state.keys.insert(cmk.key_id.clone(), cmk);
                Ok(meta)
            })?;
            audit.key_id = Some(meta.key_id.clone());
            Ok(meta)
        })
    }

    fn list_keys(&self, ctx: &CallContext) -> Result<Vec<KeyMetadata>, KmsError> {
        self.call(ctx, "ListKeys", |_| {
            self.read(|state, _| {
                Ok(state
                    .keys
                    .values()
                    .map(|cmk| metadata(cmk, &self.region))
                    .collect())
            })
        })
    }

    fn enable_key(&self, ctx: &CallContext, key: KeyRef) -> Result<(), KmsError> {
        self.call(ctx, "EnableKey", |audit| {
            self.write(|state, _| {
                let cmk = state.resolve_mut(key, &self.region)?;
                describe(audit, cmk);
                match cmk.state {
                    KeyState::Enabled | KeyState::Disabled => {
                        cmk.state = KeyState::Enabled;
                        Ok(())
                    }
                    other => Err(invalid_state(cmk, other)),
                }
            })
        })
    }

    fn disable_key(&self, ctx: &CallContext, key: KeyRef) -> Result<(), KmsError> {
        self.call(ctx, "DisableKey", |audit| {
            self.write(|state, _| {
                let cmk = state.resolve_mut(key, &self.region)?;
                describe(audit, cmk);
                Self::not_managed(cmk)?;
                match cmk.state {
                    KeyState::Enabled | KeyState::Disabled => {
                        cmk.state = KeyState::Disabled;
                        Ok(())
                    }
                    other => Err(invalid_state(cmk, other)),
                }
            })
        })
    }

    fn schedule_key_deletion(
        &self,
        ctx: &CallContext,
        key: KeyRef,
        pending_days: u32,
    ) -> Result<KeyMetadata, KmsError> {
        self.call(ctx, "ScheduleKeyDeletion", |audit| {
            if !DELETION_WINDOW_DAYS.contains(&pending_days) {
                return Err(KmsError::Validation(format!(
                    "PendingWindowInDays must be between 7 and 30, not {pending_days}"
                )));
            }
            self.write(|state, now| {
                let cmk = state.resolve_mut(key, &self.region)?;
                describe(audit, cmk);
                Self::not_managed(cmk)?;
                if cmk.state == KeyState::PendingDeletion {
                    return Err(invalid_state(cmk, cmk.state));
                }
                cmk.state = KeyState::PendingDeletion;
                cmk.deletion_date = Some(now + Duration::days(i64::from(pending_days)));
                Ok(metadata(cmk, &self.region))
            })
        })
    }

    fn cancel_key_deletion(&self, ctx: &CallContext, key: KeyRef) -> Result<KeyMetadata, KmsError> {
        self.call(ctx, "CancelKeyDeletion", |audit| {
            self.write(|state, _| {
                let cmk = state.resolve_mut(key, &self.region)?;
                describe(audit, cmk);
                if cmk.state != KeyState::PendingDeletion {
                    return Err(invalid_state(cmk, cmk.state));
                }
                cmk.state = if cmk.versions.is_empty() {
                    KeyState::PendingImport
                } else {
                    KeyState::Disabled
                };
                cmk.deletion_date = None;
                Ok(metadata(cmk, &self.region))
            })
        })
    }

    fn tag_resource(
        &self,
        ctx: &CallContext,
        key: KeyRef,
        tags: Vec<(String, String)>,
    ) -> Result<(), KmsError> {
        self.call(ctx, "TagResource", |audit| {
            validate_tags(&tags)?;
            self.write(|state, _| {
                let cmk = state.resolve_mut(key, &self.region)?;
                describe(audit, cmk);
                if cmk.state == KeyState::PendingDeletion {
                    return Err(invalid_state(cmk, cmk.state));
                }
                cmk.tags.extend(tags.iter().cloned());
                Ok(())
            })
        })
    }

    fn create_alias(&self, ctx: &CallContext, alias: &str, target: KeyRef) -> Result<(), KmsError> {
        self.set_alias(ctx, "CreateAlias", alias, target, false)
    }

    fn update_alias(&self, ctx: &CallContext, alias: &str, target: KeyRef) -> Result<(), KmsError> {
        self.set_alias(ctx, "UpdateAlias", alias, target, true)
    }

    fn delete_alias(&self, ctx: &CallContext, alias: &str) -> Result<(), KmsError> {
        self.call(ctx, "DeleteAlias", |audit| {
            audit.alias = Some(alias.to_owned());
            validate_alias(alias, false)?;
            self.write(|state, _| {
                let id = state
                    .aliases
                    .remove(alias)
                    .ok_or_else(|| KmsError::NotFound(alias.to_owned()))?;
                audit.key_id = Some(id);
                Ok(())
            })
        })
    }

    fn list_aliases(
        &self,
        ctx: &CallContext,
        key: Option<KeyRef>,
    ) -> Result<Vec<AliasEntry>, KmsError> {
        self.call(ctx, "ListAliases", |audit| {
            self.read(|state, _| {
                let filter = key.map(|k| state.resolve_id(k, &self.region)).transpose()?;
                audit.key_id.clone_from(&filter);
                Ok(state
                    .aliases
                    .iter()
                    .filter(|(_, target)| filter.as_ref().is_none_or(|f| f == *target))
                    .map(|(name, target)| AliasEntry {
                        name: name.clone(),
                        target_key_id: target.clone(),
                    })
                    .collect())
            })
        })
    }

    fn enable_key_rotation(
        &self,
        ctx: &CallContext,
        key: KeyRef,
        period_days: Option<u32>,
    ) -> Result<(), KmsError> {
        self.call(ctx, "EnableKeyRotation", |audit| {
            let period = period_days.unwrap_or(DEFAULT_ROTATION_DAYS);
            if !ROTATION_DAYS.contains(&period) {
                return Err(KmsError::Validation(format!(
                    "RotationPeriodInDays must be between 90 and 2560, not {period}"
                )));
            }
            self.write(|state, now| {
                let cmk = state.resolve_mut(key, &self.region)?;
                describe(audit, cmk);
                Self::not_external(cmk)?;
                check_usable(cmk)?;
                if !cmk.rotation.enabled {
                    cmk.rotation.enabled = true;
                    cmk.rotation.anchor = Some(now);
                }
                cmk.rotation.period_days = period;
                Ok(())
            })
        })
    }

    fn disable_key_rotation(&self, ctx: &CallContext, key: KeyRef) -> Result<(), KmsError> {
        self.call(ctx, "DisableKeyRotation", |audit| {
            self.write(|state, _| {
                let cmk = state.resolve_mut(key, &self.region)?;
                describe(audit, cmk);
                Self::not_external(cmk)?;
                Self::not_managed(cmk)?;
                check_usable(cmk)?;
                cmk.rotation.enabled = false;
                cmk.rotation.anchor = None;
                Ok(())
            })
        })
    }

    fn get_key_rotation_status(
        &self,
        ctx: &CallContext,
        key: KeyRef,
    ) -> Result<RotationStatus, KmsError> {
        self.call(ctx, "GetKeyRotationStatus", |audit| {
            self.read(|state, _| {
                let cmk = state.resolve(key, &self.region)?;
                describe(audit, cmk);
                Ok(RotationStatus {
                    enabled: cmk.rotation.enabled,
                    period_days: cmk.rotation.period_days,
                    next_rotation: cmk.rotation.next(),
                })
            })
        })
    }

    fn rotate_key_on_demand(&self, ctx: &CallContext, key: KeyRef) -> Result<String, KmsError> {
        self.call(ctx, "RotateKeyOnDemand", |audit| {
            self.write(|state, now| {
                let cmk = state.resolve_mut(key, &self.region)?;
                describe(audit, cmk);
                Self::not_external(cmk)?;
                if cmk.state != KeyState::Enabled {
                    return Err(invalid_state(cmk, cmk.state));
                }
                let version = lifecycle::add_version(cmk, now, "ON_DEMAND")?;
                audit.key_version = Some(version);
                Ok(cmk.key_id.clone())
            })
        })
    }

    fn list_key_rotations(
        &self,
        ctx: &CallContext,
        key: KeyRef,
    ) -> Result<Vec<RotationEntry>, KmsError> {
        self.call(ctx, "ListKeyRotations", |audit| {
            self.read(|state, _| {
                let cmk = state.resolve(key, &self.region)?;
                describe(audit, cmk);
                Ok(cmk
                    .versions
                    .iter()
                    .filter(|(version, _)| **version > 1)
                    .map(|(version, m)| RotationEntry {
                        key_id: cmk.key_id.clone(),
                        version: *version,
                        rotated: m.created,
                        rotation_type: m.rotation_type.unwrap_or("ON_DEMAND"),
                    })
                    .collect())
            })
        })
    }

    fn get_parameters_for_import(
        &self,
        ctx: &CallContext,
        key: KeyRef,
        algorithm: WrappingAlgorithm,
        spec: WrappingKeySpec,
    ) -> Result<ImportParameters, KmsError> {
        self.call(ctx, "GetParametersForImport", |audit| {
            let check = |cmk: &Cmk| {
                if cmk.origin != Origin::External {
                    return Err(KmsError::Validation(format!(
                        "key '{}' was not created with Origin EXTERNAL",
                        cmk.key_id
                    )));
                }
                if cmk.state == KeyState::PendingDeletion {
                    return Err(invalid_state(cmk, cmk.state));
                }
                Ok(())
            };
            // Check first, so a refused call costs no RSA key generation,
            // and generate outside the lock.
            self.read(|state, _| {
                let cmk = state.resolve(key, &self.region)?;
                describe(audit, cmk);
                check(cmk)
            })?;
            let (pkcs8, public_key_der) = byok::generate_wrapping_key(spec)?;
            let mut token = vec![0u8; 32];
            coffer_crypto::random::fill(&mut token)
                .map_err(|e| KmsError::Internal(e.to_string()))?;
            self.write(|state, now| {
                let cmk = state.resolve(key, &self.region)?;
                check(cmk)?;
                let key_id = cmk.key_id.clone();
                let parameters_valid_to = now + IMPORT_PARAMETERS_LIFETIME;
                state.import_tokens.insert(
                    keystore::sha256_hex(&token),
                    ImportToken {
                        key_id: key_id.clone(),
                        algorithm,
                        expires: parameters_valid_to,
                        private_key_pkcs8: pkcs8.clone(),
                    },
                );
                Ok(ImportParameters {
                    key_id: key_id.clone(),
                    public_key_der: public_key_der.clone(),
                    import_token: token.clone(),
                    parameters_valid_to,
                })
            })
        })
    }

    fn import_key_material(
        &self,
        ctx: &CallContext,
        key: KeyRef,
        import_token: &[u8],
        encrypted_material: &[u8],
        valid_to: Option<OffsetDateTime>,
    ) -> Result<(), KmsError> {
        self.call(ctx, "ImportKeyMaterial", |audit| {
            // The outer Result refuses without consuming the token; the inner
            // one reports a failure after the token was used up (persisted).
            self.write(|state, now| {
                let token_hash = keystore::sha256_hex(import_token);
                let cmk = state.resolve(key, &self.region)?;
                describe(audit, cmk);
                if cmk.origin != Origin::External {
                    return Err(KmsError::Validation(format!(
                        "key '{}' was not created with Origin EXTERNAL",
                        cmk.key_id
                    )));
                }
                if cmk.state == KeyState::PendingDeletion {
                    return Err(invalid_state(cmk, cmk.state));
                }
                let valid_to = valid_to.map(|v| v.to_offset(time::UtcOffset::UTC));
                if valid_to.is_some_and(|v| v <= now) {
                    return Err(KmsError::Validation("ValidTo is in the past".into()));
                }
                let key_id = cmk.key_id.clone();
                match state.import_tokens.get(&token_hash) {
                    Some(token) if token.key_id == key_id => {}
                    _ => return Err(KmsError::InvalidImportToken),
                }
                let Some(token) = state.import_tokens.remove(&token_hash) else {
                    return Err(KmsError::InvalidImportToken);
                };
                if token.expires <= now {
                    return Ok(Err(KmsError::ExpiredImportToken));
                }
                let material = match byok::unwrap_material(
                    &token.private_key_pkcs8,
                    token.algorithm,
                    encrypted_material,
                ) {
                    Ok(material) => material,
                    Err(e) => return Ok(Err(e)),
                };
                let cmk = state
                    .keys
                    .get_mut(&key_id)
                    .ok_or_else(|| KmsError::NotFound(key_id.clone()))?;
                match &cmk.import_commitment {
                    Some(expected) => {
                        if !byok::matches_commitment(&key_id, &material, expected) {
                            return Ok(Err(KmsError::IncorrectKeyMaterial));
                        }
                    }
                    None => cmk.import_commitment = Some(byok::commitment(&key_id, &material)),
                }
                let created = cmk.versions.get(&1).map_or(now, |m| m.created);
                cmk.versions.clear();
                cmk.versions.insert(
                    1,
                    MaterialVersion {
                        created,
                        rotation_type: None,
                        key: material,
                    },
                );
                cmk.current_version = 1;
                cmk.valid_to = valid_to;
                if cmk.state == KeyState::PendingImport {
                    cmk.state = KeyState::Enabled;
                }
                audit.key_version = Some(1);
                Ok(Ok(()))
            })?
        })
    }

    fn delete_imported_key_material(&self, ctx: &CallContext, key: KeyRef) -> Result<(), KmsError> {
        self.call(ctx, "DeleteImportedKeyMaterial", |audit| {
            self.write(|state, _| {
                let cmk = state.resolve_mut(key, &self.region)?;
                describe(audit, cmk);
                if cmk.origin != Origin::External {
                    return Err(KmsError::Validation(format!(
                        "key '{}' was not created with Origin EXTERNAL",
                        cmk.key_id
                    )));
                }
                cmk.versions.clear();
                cmk.valid_to = None;
                if cmk.state != KeyState::PendingDeletion {
                    cmk.state = KeyState::PendingImport;
                }
                Ok(())
            })
        })
    }
}
