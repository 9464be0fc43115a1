//! [`Pkcs11Kms`]: the KMS traits over a token's keys ([`crate::objects`]).
//! Every call is one pass on the token's session: resolve the reference,
//! read the key's versions and state, let the token encrypt or decrypt.
//! Data keys come from the token's generator and are wrapped by it with
//! AES-256-GCM ([`crate::blob`]); the CMK never leaves the token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use coffer_crypto::SymmetricKey;
use coffer_kms::embedded::{
    DEFAULT_SSE_ALIAS, Target, key_arn, parse_key_ref, random_key_id, validate_alias,
};
use coffer_kms::kms::{
    AliasEntry, Ciphertext, CreateKey, GeneratedDataKey, ImportParameters, KeyMetadata, KeyRef,
    KeySpec, KeyState, Origin, Plaintext, RotationEntry, RotationStatus, WrappingAlgorithm,
    WrappingKeySpec,
};
use coffer_kms::{CallContext, EncryptionContext, KmsAdmin, KmsDataPlane, KmsError};
use cryptoki::session::Session;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::blob::{self, IV_LEN};
use crate::objects::{self, Key};
use crate::token::Token;
use crate::uri::TokenUri;

/// How long a key's state read from the token answers
/// [`KmsDataPlane::usable_now`] (bucket-key reuse) without asking again: a
/// key disabled or deleted in the token stops reuse of cached bucket keys
/// within this bound, and every KMS call at once.
pub const STATE_CACHE: Duration = Duration::from_secs(5);
/// Encrypt's plaintext limit, as AWS KMS.
const MAX_PLAINTEXT: usize = 4096;
const PENDING_DAYS: std::ops::RangeInclusive<u32> = 7..=30;

/// The KMS on a PKCS#11 token.
pub struct Pkcs11Kms {
    token: Token,
    region: String,
    /// Key reference → (state, ARN, when read), for [`KmsDataPlane::usable_now`].
    states: Mutex<HashMap<String, (KeyState, String, String, Instant)>>,
}

impl Pkcs11Kms {
    /// Connects to the token (blocking: call it off async threads).
    pub fn open(uri: TokenUri, region: &str) -> Result<Pkcs11Kms, String> {
        Ok(Pkcs11Kms {
            token: Token::open(uri)?,
            region: region.to_owned(),
            states: Mutex::new(HashMap::new()),
        })
    }

    fn arn(&self, key_id: &str) -> String {
        key_arn(&self.region, key_id)
    }

    /// The key id `key_ref` names (a key id, key ARN, alias or alias ARN).
    fn resolve(&self, session: &Session, key_ref: KeyRef) -> Result<String, KmsError> {
        let not_found = || KmsError::NotFound(key_ref.to_owned());
        match parse_key_ref(key_ref, &self.region).ok_or_else(not_found)? {
            Target::Id(id) => Ok(id.to_owned()),
            Target::Alias(alias) => objects::aliases(session, Some(alias))?
                .into_iter()
                .next()
                .map(|alias| alias.value)
                .ok_or_else(not_found),
        }
    }

    /// The key `key_ref` names; a key whose deletion day has come is
    /// destroyed now and is not found.
    fn key(&self, session: &Session, key_ref: KeyRef) -> Result<Key, KmsError> {
        let id = self.resolve(session, key_ref)?;
        let key = objects::key(session, &id)?;
        if key
            .deletion_day
            .is_some_and(|day| day <= OffsetDateTime::now_utc().date())
        {
            objects::destroy(session, &key)?;
            tracing::info!(key_id = %id, "destroyed a PKCS#11 key whose deletion day has come");
            return Err(KmsError::NotFound(key_ref.to_owned()));
        }
        Ok(key)
    }

    fn metadata(&self, key: &Key) -> KeyMetadata {
        KeyMetadata {
            key_id: key.id.clone(),
            arn: self.arn(&key.id),
            description: String::new(),
            state: key.state(),
            origin: Origin::Generated,
            key_spec: KeySpec::SymmetricDefault,
            created: OffsetDateTime::UNIX_EPOCH,
            deletion_date: key.deletion_day.map(|day| day.midnight().assume_utc()),
            valid_to: None,
            current_version: key.current().number,
            managed: false,
        }
    }

    fn remember(&self, key_ref: &str, meta: &KeyMetadata) {
        if let Ok(mut states) = self.states.lock() {
            states.insert(
                key_ref.to_owned(),
                (
                    meta.state,
                    meta.key_id.clone(),
                    meta.arn.clone(),
                    Instant::now(),
                ),
            );
        }
    }

    fn forget(&self) {
        if let Ok(mut states) = self.states.lock() {
            states.clear();
        }
    }

    /// Encrypts `plaintext` under the key's current version, bound to `context`.
    fn seal(
        &self,
        session: &Session,
        key: &Key,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Ciphertext, KmsError> {
        key.require_enabled()?;
        let version = key.current();
        let mut blob = blob::header(&key.id, version.number)?;
        let mut iv = [0u8; IV_LEN];
        coffer_crypto::random::fill(&mut iv).map_err(|e| KmsError::Internal(e.to_string()))?;
        let aad = blob::aad(&blob, context);
        let sealed = objects::encrypt(session, key, version, &mut iv, &aad, plaintext)?;
        blob.extend_from_slice(&iv);
        blob.extend_from_slice(&sealed);
        Ok(Ciphertext {
            key_id: self.arn(&key.id),
            key_version: version.number,
            ciphertext_blob: blob,
        })
    }

    /// Decrypts a blob this backend made; `expected`, if given, must be the
    /// key the blob names.
    fn open_blob(
        &self,
        session: &Session,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
        expected: Option<KeyRef>,
    ) -> Result<Plaintext, KmsError> {
        let parsed = blob::parse(ciphertext_blob)?;
        if let Some(expected) = expected
            && self.resolve(session, expected)? != parsed.key_id
        {
            return Err(KmsError::IncorrectKey);
        }
        let key = self.key(session, parsed.key_id)?;
        key.require_enabled()?;
        let version = key
            .version(parsed.key_version)
            .ok_or(KmsError::InvalidCiphertext)?;
        let mut iv = parsed.iv;
        let aad = blob::aad(parsed.header, context);
        let plaintext = objects::decrypt(session, &key, version, &mut iv, &aad, parsed.sealed)?;
        Ok(Plaintext {
            key_id: self.arn(&key.id),
            key_version: parsed.key_version,
            plaintext,
        })
    }

    /// A new enabled key (its first version) in the token.
    fn new_key(&self, session: &Session) -> Result<Key, KmsError> {
        let id = random_key_id()?;
        objects::generate(session, &id, 1, true)?;
        objects::key(session, &id)
    }

    /// Runs `operation` on the token's session and logs the call for audit
    /// (principal, operation, resource; never key material).
    fn call<T>(
        &self,
        ctx: &CallContext,
        operation: &'static str,
        key: Option<&str>,
        body: impl FnOnce(&Session) -> Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        let result = self.token.with_session(body);
        if let Err(KmsError::Internal(_)) = &result {
            // The token failed: states read before it are no longer known to hold.
            self.forget();
        }
        tracing::info!(
            target: "coffer::kms::audit",
            backend = "pkcs11",
            principal = %ctx.principal,
            operation,
            key = key.unwrap_or("-"),
            resource = ctx.resource.as_deref().unwrap_or("-"),
            outcome = result.as_ref().err().map_or("ok", KmsError::aws_type),
        );
        result
    }
}

fn unsupported(what: &str) -> KmsError {
    KmsError::Validation(format!(
        "{what} is not supported by the pkcs11 KMS backend (docs/kms.md#pkcs11-backend)"
    ))
}

impl KmsDataPlane for Pkcs11Kms {
    fn describe_key(&self, ctx: &CallContext, key: KeyRef) -> Result<KeyMetadata, KmsError> {
        let meta = self.call(ctx, "DescribeKey", Some(key), |session| {
            Ok(self.metadata(&self.key(session, key)?))
        })?;
        self.remember(key, &meta);
        Ok(meta)
    }

    fn usable_now(&self, key: KeyRef) -> Option<Result<String, KmsError>> {
        let states = self.states.lock().ok()?;
        let (state, key_id, arn, read) = states.get(key)?;
        if read.elapsed() > STATE_CACHE {
            return None;
        }
        Some(match state {
            KeyState::Enabled => Ok(arn.clone()),
            KeyState::Disabled => Err(KmsError::Disabled(key_id.clone())),
            state => Err(KmsError::InvalidState {
                key: key_id.clone(),
                state: state.as_str(),
            }),
        })
    }

    fn check_ready(&self) -> Result<(), KmsError> {
        self.token
            .with_session(|session| objects::aliases(session, Some(DEFAULT_SSE_ALIAS)).map(drop))
    }

    fn generate_data_key(
        &self,
        ctx: &CallContext,
        key: KeyRef,
        context: &EncryptionContext,
    ) -> Result<GeneratedDataKey, KmsError> {
        self.call(ctx, "GenerateDataKey", Some(key), |session| {
            let cmk = self.key(session, key)?;
            cmk.require_enabled()?;
            let mut data_key = Zeroizing::new([0u8; 32]);
            objects::random(session, data_key.as_mut_slice())?;
            let sealed = self.seal(session, &cmk, data_key.as_slice(), context)?;
            Ok(GeneratedDataKey {
                key_id: sealed.key_id,
                key_version: sealed.key_version,
                plaintext: SymmetricKey::from_slice(data_key.as_slice())
                    .map_err(|e| KmsError::Internal(e.to_string()))?,
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
        if plaintext.is_empty() || plaintext.len() > MAX_PLAINTEXT {
            return Err(KmsError::Validation(format!(
                "the plaintext must be 1 to {MAX_PLAINTEXT} bytes"
            )));
        }
        self.call(ctx, "Encrypt", Some(key), |session| {
            let cmk = self.key(session, key)?;
            self.seal(session, &cmk, plaintext, context)
        })
    }

    fn decrypt(
        &self,
        ctx: &CallContext,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
        key: Option<KeyRef>,
    ) -> Result<Plaintext, KmsError> {
        self.call(ctx, "Decrypt", key, |session| {
            self.open_blob(session, ciphertext_blob, context, key)
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
        self.call(ctx, "ReEncrypt", Some(destination_key), |session| {
            let opened = self.open_blob(session, ciphertext_blob, source_context, None)?;
            let destination = self.key(session, destination_key)?;
            self.seal(
                session,
                &destination,
                &opened.plaintext,
                destination_context,
            )
        })
    }

    fn key_id_of_ciphertext(&self, ciphertext_blob: &[u8]) -> Result<Option<String>, KmsError> {
        blob::parse(ciphertext_blob).map(|parsed| Some(parsed.key_id.to_owned()))
    }

    fn default_sse_key(&self, ctx: &CallContext) -> Result<KeyMetadata, KmsError> {
        self.call(ctx, "DescribeKey", Some(DEFAULT_SSE_ALIAS), |session| {
            if let Some(alias) = objects::aliases(session, Some(DEFAULT_SSE_ALIAS))?.first() {
                return Ok(self.metadata(&self.key(session, &alias.value)?));
            }
            let key = self.new_key(session)?;
            objects::create_alias(session, DEFAULT_SSE_ALIAS, &key.id)?;
            Ok(self.metadata(&key))
        })
    }
}

impl KmsAdmin for Pkcs11Kms {
    fn create_key(&self, ctx: &CallContext, request: CreateKey) -> Result<KeyMetadata, KmsError> {
        if request.origin == Origin::External {
            return Err(unsupported(
                "importing key material (import it with the token's own tools)",
            ));
        }
        if request.key_spec != KeySpec::SymmetricDefault {
            return Err(unsupported("a key spec other than SYMMETRIC_DEFAULT"));
        }
        if !request.tags.is_empty() {
            return Err(unsupported("tagging keys"));
        }
        self.call(ctx, "CreateKey", None, |session| {
            Ok(self.metadata(&self.new_key(session)?))
        })
    }

    fn list_keys(&self, ctx: &CallContext) -> Result<Vec<KeyMetadata>, KmsError> {
        self.call(ctx, "ListKeys", None, |session| {
            let mut keys = Vec::new();
            for id in objects::key_ids(session)? {
                keys.push(self.metadata(&objects::key(session, &id)?));
            }
            Ok(keys)
        })
    }

    fn enable_key(&self, ctx: &CallContext, key: KeyRef) -> Result<(), KmsError> {
        self.forget();
        self.call(ctx, "EnableKey", Some(key), |session| {
            let cmk = self.key(session, key)?;
            if cmk.state() == KeyState::PendingDeletion {
                cmk.require_enabled()?;
            }
            objects::set_usable(session, &cmk, true)
        })
    }

    fn disable_key(&self, ctx: &CallContext, key: KeyRef) -> Result<(), KmsError> {
        self.forget();
        self.call(ctx, "DisableKey", Some(key), |session| {
            let cmk = self.key(session, key)?;
            if cmk.state() == KeyState::PendingDeletion {
                cmk.require_enabled()?;
            }
            objects::set_usable(session, &cmk, false)
        })
    }

    fn schedule_key_deletion(
        &self,
        ctx: &CallContext,
        key: KeyRef,
        pending_days: u32,
    ) -> Result<KeyMetadata, KmsError> {
        if !PENDING_DAYS.contains(&pending_days) {
            return Err(KmsError::Validation(
                "PendingWindowInDays must be between 7 and 30".into(),
            ));
        }
        self.forget();
        self.call(ctx, "ScheduleKeyDeletion", Some(key), |session| {
            let cmk = self.key(session, key)?;
            let day = OffsetDateTime::now_utc().date() + time::Duration::days(pending_days.into());
            objects::set_usable(session, &cmk, false)?;
            objects::set_deletion_day(session, &cmk, Some(day))?;
            Ok(self.metadata(&objects::key(session, &cmk.id)?))
        })
    }

    fn cancel_key_deletion(&self, ctx: &CallContext, key: KeyRef) -> Result<KeyMetadata, KmsError> {
        self.forget();
        self.call(ctx, "CancelKeyDeletion", Some(key), |session| {
            let cmk = self.key(session, key)?;
            if cmk.state() != KeyState::PendingDeletion {
                return Err(KmsError::InvalidState {
                    key: cmk.id.clone(),
                    state: cmk.state().as_str(),
                });
            }
            objects::set_deletion_day(session, &cmk, None)?;
            Ok(self.metadata(&objects::key(session, &cmk.id)?))
        })
    }

    fn tag_resource(
        &self,
        _ctx: &CallContext,
        _key: KeyRef,
        _tags: Vec<(String, String)>,
    ) -> Result<(), KmsError> {
        Err(unsupported("tagging keys"))
    }

    fn create_alias(&self, ctx: &CallContext, alias: &str, target: KeyRef) -> Result<(), KmsError> {
        validate_alias(alias, false)?;
        self.call(ctx, "CreateAlias", Some(target), |session| {
            if !objects::aliases(session, Some(alias))?.is_empty() {
                return Err(KmsError::AlreadyExists(alias.to_owned()));
            }
            let key = self.key(session, target)?;
            objects::create_alias(session, alias, &key.id)
        })
    }

    fn update_alias(&self, ctx: &CallContext, alias: &str, target: KeyRef) -> Result<(), KmsError> {
        validate_alias(alias, false)?;
        self.forget();
        self.call(ctx, "UpdateAlias", Some(target), |session| {
            let existing = objects::aliases(session, Some(alias))?;
            let old = existing
                .first()
                .ok_or_else(|| KmsError::NotFound(alias.to_owned()))?;
            let key = self.key(session, target)?;
            objects::delete_alias(session, old)?;
            objects::create_alias(session, alias, &key.id)
        })
    }

    fn delete_alias(&self, ctx: &CallContext, alias: &str) -> Result<(), KmsError> {
        validate_alias(alias, false)?;
        self.forget();
        self.call(ctx, "DeleteAlias", None, |session| {
            let existing = objects::aliases(session, Some(alias))?;
            let old = existing
                .first()
                .ok_or_else(|| KmsError::NotFound(alias.to_owned()))?;
            objects::delete_alias(session, old)
        })
    }

    fn list_aliases(
        &self,
        ctx: &CallContext,
        key: Option<KeyRef>,
    ) -> Result<Vec<AliasEntry>, KmsError> {
        self.call(ctx, "ListAliases", key, |session| {
            let only = key.map(|key| self.resolve(session, key)).transpose()?;
            Ok(objects::aliases(session, None)?
                .into_iter()
                .filter(|alias| only.as_ref().is_none_or(|id| &alias.value == id))
                .map(|alias| AliasEntry {
                    name: alias.name,
                    target_key_id: alias.value,
                })
                .collect())
        })
    }

    fn enable_key_rotation(
        &self,
        _ctx: &CallContext,
        _key: KeyRef,
        _period_days: Option<u32>,
    ) -> Result<(), KmsError> {
        Err(unsupported(
            "automatic rotation (rotate with RotateKeyOnDemand)",
        ))
    }

    fn disable_key_rotation(&self, _ctx: &CallContext, _key: KeyRef) -> Result<(), KmsError> {
        Err(unsupported("automatic rotation"))
    }

    fn get_key_rotation_status(
        &self,
        ctx: &CallContext,
        key: KeyRef,
    ) -> Result<RotationStatus, KmsError> {
        self.call(ctx, "GetKeyRotationStatus", Some(key), |session| {
            self.key(session, key).map(|_| RotationStatus {
                enabled: false,
                period_days: 365,
                next_rotation: None,
            })
        })
    }

    fn rotate_key_on_demand(&self, ctx: &CallContext, key: KeyRef) -> Result<String, KmsError> {
        self.call(ctx, "RotateKeyOnDemand", Some(key), |session| {
            let cmk = self.key(session, key)?;
            cmk.require_enabled()?;
            let next =
                cmk.current().number.checked_add(1).ok_or_else(|| {
                    KmsError::Validation("the key has no version number left".into())
                })?;
            objects::generate(session, &cmk.id, next, true)?;
            Ok(cmk.id)
        })
    }

    fn list_key_rotations(
        &self,
        ctx: &CallContext,
        key: KeyRef,
    ) -> Result<Vec<RotationEntry>, KmsError> {
        self.call(ctx, "ListKeyRotations", Some(key), |session| {
            let cmk = self.key(session, key)?;
            Ok(cmk
                .versions
                .iter()
                .skip(1)
                .map(|version| RotationEntry {
                    key_id: cmk.id.clone(),
                    version: version.number,
                    rotated: OffsetDateTime::UNIX_EPOCH,
                    rotation_type: "ON_DEMAND",
                })
                .collect())
        })
    }

    fn get_parameters_for_import(
        &self,
        _ctx: &CallContext,
        _key: KeyRef,
        _algorithm: WrappingAlgorithm,
        _spec: WrappingKeySpec,
    ) -> Result<ImportParameters, KmsError> {
        Err(unsupported(
            "importing key material (import it with the token's own tools)",
        ))
    }

    fn import_key_material(
        &self,
        _ctx: &CallContext,
        _key: KeyRef,
        _import_token: &[u8],
        _encrypted_material: &[u8],
        _valid_to: Option<OffsetDateTime>,
    ) -> Result<(), KmsError> {
        Err(unsupported("importing key material"))
    }

    fn delete_imported_key_material(
        &self,
        _ctx: &CallContext,
        _key: KeyRef,
    ) -> Result<(), KmsError> {
        Err(unsupported("importing key material"))
    }
}
