//! [`KmipKms`]: Coffer's KMS traits on a KMIP server. Data keys are drawn by Coffer and
//! encrypted by the server with AES-256-GCM under the key it keeps (KMIP Encrypt/Decrypt), so
//! the key material never leaves the server; Coffer holds only ciphertext blobs.

use coffer_crypto::SymmetricKey;
use coffer_kms::kms::{
    AliasEntry, CallContext, Ciphertext, CreateKey, EncryptionContext, GeneratedDataKey,
    ImportParameters, KeyMetadata, KeyRef, KeySpec, KmsAdmin, KmsDataPlane, KmsError, Origin,
    Plaintext, RotationEntry, RotationStatus, WrappingAlgorithm, WrappingKeySpec,
};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::blob::{self, Blob, NONCE_LEN, TAG_LEN};
use crate::client::KmipClient;
use crate::config::KmipConfig;
use crate::keys::{self, KeyDirectory, Resolved, get_attributes, locate, refused, unavailable};
use crate::protocol::{self, ObjectState, Operation, Reply, reason, tag};

/// The largest plaintext Encrypt takes, as in AWS KMS.
const MAX_PLAINTEXT: usize = 4096;

/// A KMS whose keys live in a KMIP server.
pub struct KmipKms {
    client: KmipClient,
    keys: KeyDirectory,
}

impl KmipKms {
    /// Reads the TLS files; connects on first use ([`KmipKms::connect`] checks at once).
    pub fn new(config: KmipConfig) -> Result<Self, String> {
        let keys = KeyDirectory::new(config.region.clone());
        Ok(Self {
            client: KmipClient::new(config)?,
            keys,
        })
    }

    /// [`KmipKms::new`], then one Locate so that a wrong address, certificate or key fails
    /// now, with the endpoint named, rather than at the first object written.
    pub fn connect(config: KmipConfig) -> Result<Self, String> {
        let kms = Self::new(config)?;
        locate(&kms.client, Some(crate::DEFAULT_SSE_ALIAS)).map_err(|e| e.to_string())?;
        Ok(kms)
    }

    /// The settings the KMS was opened with.
    pub fn config(&self) -> &KmipConfig {
        self.client.config()
    }

    /// Encrypts `plaintext` in the server under `key`, bound to `context`.
    fn seal(
        &self,
        key: &Resolved,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>, KmsError> {
        let header = blob::header(&key.unique_id, &key.key_id)
            .ok_or_else(|| KmsError::Validation("the key name is too long".into()))?;
        let mut nonce = [0u8; NONCE_LEN];
        coffer_crypto::random::fill(&mut nonce).map_err(|e| KmsError::Internal(e.to_string()))?;
        let aad = blob::aad(&header, context);
        let payload = protocol::encrypt(&key.unique_id, plaintext, &nonce, &aad);
        match self.client.call(Operation::Encrypt, payload) {
            Ok(Reply::Success(answer)) => {
                let (Some(ciphertext), Some(gcm_tag)) = (
                    answer.bytes(tag::DATA),
                    answer.bytes(tag::AUTHENTICATED_ENCRYPTION_TAG),
                ) else {
                    return Err(refused(&self.client, "Encrypt", "no ciphertext or tag"));
                };
                if gcm_tag.len() != TAG_LEN || ciphertext.len() != plaintext.len() {
                    return Err(refused(&self.client, "Encrypt", "not AES-GCM's output"));
                }
                self.keys.saw_active(&self.client, key);
                Ok(blob::encode(&header, &nonce, gcm_tag, ciphertext))
            }
            Ok(Reply::Failure { reason, message }) => {
                let active = refused(&self.client, "Encrypt", &message);
                Err(self.keys.explain(&self.client, key, reason, active))
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Decrypts a blob in the server; `expected`, if given, must be the key the blob names.
    fn open(
        &self,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
        expected: Option<KeyRef>,
    ) -> Result<(Resolved, Zeroizing<Vec<u8>>), KmsError> {
        let (parsed, header) = Blob::parse(ciphertext_blob).ok_or(KmsError::InvalidCiphertext)?;
        let key = Resolved {
            unique_id: parsed.unique_id.to_owned(),
            key_id: parsed.key_id.to_owned(),
        };
        // The same KMIP object, whichever of its Names the caller used.
        if let Some(expected) = expected
            && self.keys.resolve(&self.client, expected)?.unique_id != key.unique_id
        {
            return Err(KmsError::IncorrectKey);
        }
        let aad = blob::aad(header, context);
        let payload = protocol::decrypt(
            &key.unique_id,
            parsed.ciphertext,
            parsed.nonce,
            &aad,
            parsed.tag,
        );
        match self.client.call(Operation::Decrypt, payload) {
            Ok(Reply::Success(answer)) => {
                let plaintext = answer
                    .bytes(tag::DATA)
                    .ok_or_else(|| refused(&self.client, "Decrypt", "no plaintext"))?;
                let plaintext = Zeroizing::new(plaintext.to_vec());
                self.keys.saw_active(&self.client, &key);
                Ok((key, plaintext))
            }
            Ok(Reply::Failure { reason, .. }) if reason == reason::CRYPTOGRAPHIC_FAILURE => {
                Err(KmsError::InvalidCiphertext)
            }
            Ok(Reply::Failure { reason, message }) => {
                // An Active key that does not decrypt: the tag did not verify. The
                // specification says Cryptographic Failure; PyKMIP answers General Failure.
                tracing::debug!(endpoint = self.client.endpoint(), %message, "KMIP Decrypt refused");
                let active = KmsError::InvalidCiphertext;
                Err(self.keys.explain(&self.client, &key, reason, active))
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    fn create(&self, names: &[&str]) -> Result<Resolved, KmsError> {
        let key_id = names
            .first()
            .map(|name| (*name).to_owned())
            .ok_or_else(|| KmsError::Validation("a key needs a name".into()))?;
        let unique_id = match self
            .client
            .call(Operation::Create, protocol::create_aes_key(names))
        {
            Ok(Reply::Success(answer)) => answer
                .text(tag::UNIQUE_IDENTIFIER)
                .map(str::to_owned)
                .ok_or_else(|| refused(&self.client, "Create", "no unique identifier"))?,
            Ok(Reply::Failure { message, .. }) => {
                return Err(refused(&self.client, "Create", &message));
            }
            Err(error) => return Err(unavailable(error)),
        };
        self.call_on(Operation::Activate, "Activate", &unique_id)?;
        Ok(Resolved { unique_id, key_id })
    }

    fn call_on(&self, operation: Operation, name: &str, unique_id: &str) -> Result<(), KmsError> {
        let payload = match operation {
            Operation::Revoke => protocol::revoke(unique_id),
            _ => protocol::object(unique_id),
        };
        match self.client.call(operation, payload) {
            Ok(Reply::Success(_)) => Ok(()),
            Ok(Reply::Failure { message, .. }) => Err(refused(&self.client, name, &message)),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Every symmetric key the server has that carries a Name, with its attributes.
    fn all_keys(&self) -> Result<Vec<(String, protocol::ObjectAttributes)>, KmsError> {
        let mut found = Vec::new();
        for unique_id in locate(&self.client, None)? {
            if let Some(attributes) = get_attributes(&self.client, &unique_id)?
                && keys::key_id_of(&attributes).is_some()
            {
                found.push((unique_id, attributes));
            }
        }
        Ok(found)
    }
}

fn new_key_id() -> Result<String, KmsError> {
    let hex = coffer_crypto::random::hex_id(16).map_err(|e| KmsError::Internal(e.to_string()))?;
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// One log line per data-plane call (target `coffer::kms::audit`, level info): who, which
/// operation and key, for which object, and the outcome. Never plaintext, material or
/// ciphertext; the KMIP server's own log records the same calls on its side.
fn audit<T>(ctx: &CallContext, operation: &str, key: &str, result: &Result<T, KmsError>) {
    let outcome = result.as_ref().map_or_else(KmsError::aws_type, |_| "ok");
    tracing::info!(
        target: "coffer::kms::audit",
        principal = %ctx.principal,
        operation,
        key,
        resource = ctx.resource.as_deref().unwrap_or(""),
        outcome,
        "KMIP KMS call"
    );
}

/// The key id a blob names, for the audit line ("" for what is no blob of ours).
fn blob_key(ciphertext_blob: &[u8]) -> &str {
    Blob::parse(ciphertext_blob).map_or("", |(blob, _)| blob.key_id)
}

/// What the KMIP backend leaves to the KMIP server's own administration.
fn unsupported(what: &str) -> KmsError {
    KmsError::Validation(format!(
        "{what} is not available with the kmip KMS backend: manage it in the KMIP server (docs/kms.md)"
    ))
}

impl KmsDataPlane for KmipKms {
    fn describe_key(&self, _ctx: &CallContext, key: KeyRef) -> Result<KeyMetadata, KmsError> {
        let resolved = self.keys.resolve(&self.client, key)?;
        self.keys.describe(&self.client, &resolved)
    }

    fn usable_now(&self, key: KeyRef) -> Option<Result<String, KmsError>> {
        self.keys.usable_now(key)
    }

    fn generate_data_key(
        &self,
        ctx: &CallContext,
        key: KeyRef,
        context: &EncryptionContext,
    ) -> Result<GeneratedDataKey, KmsError> {
        let result = (|| {
            let resolved = self.keys.resolve(&self.client, key)?;
            let plaintext =
                SymmetricKey::generate().map_err(|e| KmsError::Internal(e.to_string()))?;
            let ciphertext_blob = self.seal(&resolved, plaintext.expose(), context)?;
            Ok(GeneratedDataKey {
                key_id: resolved.key_id,
                key_version: 1,
                plaintext,
                ciphertext_blob,
            })
        })();
        audit(ctx, "GenerateDataKey", key, &result);
        result
    }

    fn encrypt(
        &self,
        ctx: &CallContext,
        key: KeyRef,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Ciphertext, KmsError> {
        let result = (|| {
            if plaintext.is_empty() || plaintext.len() > MAX_PLAINTEXT {
                return Err(KmsError::Validation(format!(
                    "the plaintext must be 1 to {MAX_PLAINTEXT} bytes"
                )));
            }
            let resolved = self.keys.resolve(&self.client, key)?;
            let ciphertext_blob = self.seal(&resolved, plaintext, context)?;
            Ok(Ciphertext {
                key_id: resolved.key_id,
                key_version: 1,
                ciphertext_blob,
            })
        })();
        audit(ctx, "Encrypt", key, &result);
        result
    }

    fn decrypt(
        &self,
        ctx: &CallContext,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
        key: Option<KeyRef>,
    ) -> Result<Plaintext, KmsError> {
        let result = self
            .open(ciphertext_blob, context, key)
            .map(|(resolved, plaintext)| Plaintext {
                key_id: resolved.key_id,
                key_version: 1,
                plaintext,
            });
        audit(ctx, "Decrypt", blob_key(ciphertext_blob), &result);
        result
    }

    fn re_encrypt(
        &self,
        ctx: &CallContext,
        ciphertext_blob: &[u8],
        source_context: &EncryptionContext,
        destination_key: KeyRef,
        destination_context: &EncryptionContext,
    ) -> Result<Ciphertext, KmsError> {
        let result = (|| {
            // KMIP has no ReEncrypt: the plaintext passes through Coffer's memory (zeroized).
            let (_, plaintext) = self.open(ciphertext_blob, source_context, None)?;
            let destination = self.keys.resolve(&self.client, destination_key)?;
            let sealed = self.seal(&destination, &plaintext, destination_context)?;
            Ok(Ciphertext {
                key_id: destination.key_id,
                key_version: 1,
                ciphertext_blob: sealed,
            })
        })();
        audit(ctx, "ReEncrypt", destination_key, &result);
        result
    }

    fn key_id_of_ciphertext(&self, ciphertext_blob: &[u8]) -> Result<Option<String>, KmsError> {
        Blob::parse(ciphertext_blob)
            .map(|(blob, _)| Some(blob.key_id.to_owned()))
            .ok_or(KmsError::InvalidCiphertext)
    }

    fn default_sse_key(&self, _ctx: &CallContext) -> Result<KeyMetadata, KmsError> {
        let resolved = match self.keys.resolve(&self.client, crate::DEFAULT_SSE_ALIAS) {
            Ok(resolved) => resolved,
            Err(KmsError::NotFound(_)) => {
                let key_id = new_key_id()?;
                self.create(&[&key_id, crate::DEFAULT_SSE_ALIAS])?;
                // Resolve again rather than use the new key: if another gateway created one
                // at the same time, every gateway settles on the same (the first) object.
                self.keys.resolve(&self.client, crate::DEFAULT_SSE_ALIAS)?
            }
            Err(error) => return Err(error),
        };
        self.keys.describe(&self.client, &resolved)
    }
}

impl KmsAdmin for KmipKms {
    fn create_key(&self, _ctx: &CallContext, request: CreateKey) -> Result<KeyMetadata, KmsError> {
        if request.key_spec != KeySpec::SymmetricDefault || request.origin != Origin::Generated {
            return Err(unsupported(
                "a key other than SYMMETRIC_DEFAULT made by the KMS",
            ));
        }
        let key_id = new_key_id()?;
        let created = self.create(&[&key_id])?;
        let mut meta = self.keys.describe(&self.client, &created)?;
        // KMIP 1.4 has no free-text attribute PyKMIP keeps: the description is not stored.
        meta.description = request.description;
        Ok(meta)
    }

    fn list_keys(&self, _ctx: &CallContext) -> Result<Vec<KeyMetadata>, KmsError> {
        Ok(self
            .all_keys()?
            .iter()
            .filter_map(|(_, attributes)| {
                let key_id = keys::key_id_of(attributes)?;
                Some(self.keys.metadata(&key_id, attributes))
            })
            .collect())
    }

    fn enable_key(&self, _ctx: &CallContext, key: KeyRef) -> Result<(), KmsError> {
        let resolved = self.keys.resolve(&self.client, key)?;
        let attributes = get_attributes(&self.client, &resolved.unique_id)?
            .ok_or_else(|| KmsError::NotFound(key.to_owned()))?;
        self.keys.forget_state(&resolved.key_id);
        match attributes.state {
            Some(ObjectState::Active) => Ok(()),
            Some(ObjectState::PreActive) => {
                self.call_on(Operation::Activate, "Activate", &resolved.unique_id)
            }
            _ => Err(KmsError::Validation(format!(
                "key '{}' was revoked in the KMIP server, and KMIP has no way back to Active: \
                 create a new key",
                resolved.key_id
            ))),
        }
    }

    fn disable_key(&self, _ctx: &CallContext, key: KeyRef) -> Result<(), KmsError> {
        let resolved = self.keys.resolve(&self.client, key)?;
        let attributes = get_attributes(&self.client, &resolved.unique_id)?
            .ok_or_else(|| KmsError::NotFound(key.to_owned()))?;
        self.keys.forget_state(&resolved.key_id);
        match attributes.state {
            Some(ObjectState::Active) => {
                self.call_on(Operation::Revoke, "Revoke", &resolved.unique_id)
            }
            // Not Active: already unusable.
            _ => Ok(()),
        }
    }

    fn schedule_key_deletion(
        &self,
        _ctx: &CallContext,
        _key: KeyRef,
        _pending_days: u32,
    ) -> Result<KeyMetadata, KmsError> {
        Err(unsupported("ScheduleKeyDeletion (KMIP Destroy)"))
    }

    fn cancel_key_deletion(
        &self,
        _ctx: &CallContext,
        _key: KeyRef,
    ) -> Result<KeyMetadata, KmsError> {
        Err(unsupported("CancelKeyDeletion"))
    }

    fn tag_resource(
        &self,
        _ctx: &CallContext,
        _key: KeyRef,
        _tags: Vec<(String, String)>,
    ) -> Result<(), KmsError> {
        Err(unsupported("TagResource"))
    }

    fn create_alias(
        &self,
        _ctx: &CallContext,
        _alias: &str,
        _target: KeyRef,
    ) -> Result<(), KmsError> {
        Err(unsupported(
            "CreateAlias (a Name attribute on the KMIP key)",
        ))
    }

    fn update_alias(
        &self,
        _ctx: &CallContext,
        _alias: &str,
        _target: KeyRef,
    ) -> Result<(), KmsError> {
        Err(unsupported("UpdateAlias"))
    }

    fn delete_alias(&self, _ctx: &CallContext, _alias: &str) -> Result<(), KmsError> {
        Err(unsupported("DeleteAlias"))
    }

    fn list_aliases(
        &self,
        _ctx: &CallContext,
        key: Option<KeyRef>,
    ) -> Result<Vec<AliasEntry>, KmsError> {
        let only = key
            .map(|key| self.keys.resolve(&self.client, key))
            .transpose()?;
        let mut aliases = Vec::new();
        for (_, attributes) in self.all_keys()? {
            let Some(key_id) = keys::key_id_of(&attributes) else {
                continue;
            };
            if only.as_ref().is_some_and(|only| only.key_id != key_id) {
                continue;
            }
            aliases.extend(
                attributes
                    .names
                    .iter()
                    .filter(|name| name.starts_with("alias/"))
                    .map(|name| AliasEntry {
                        name: name.clone(),
                        target_key_id: key_id.clone(),
                    }),
            );
        }
        Ok(aliases)
    }

    fn enable_key_rotation(
        &self,
        _ctx: &CallContext,
        _key: KeyRef,
        _period_days: Option<u32>,
    ) -> Result<(), KmsError> {
        Err(unsupported("key rotation (KMIP Re-key)"))
    }

    fn disable_key_rotation(&self, _ctx: &CallContext, _key: KeyRef) -> Result<(), KmsError> {
        Err(unsupported("key rotation (KMIP Re-key)"))
    }

    fn get_key_rotation_status(
        &self,
        ctx: &CallContext,
        key: KeyRef,
    ) -> Result<RotationStatus, KmsError> {
        self.describe_key(ctx, key)?;
        Ok(RotationStatus {
            enabled: false,
            period_days: 365,
            next_rotation: None,
        })
    }

    fn rotate_key_on_demand(&self, _ctx: &CallContext, _key: KeyRef) -> Result<String, KmsError> {
        Err(unsupported("key rotation (KMIP Re-key)"))
    }

    fn list_key_rotations(
        &self,
        ctx: &CallContext,
        key: KeyRef,
    ) -> Result<Vec<RotationEntry>, KmsError> {
        self.describe_key(ctx, key)?;
        Ok(Vec::new())
    }

    fn get_parameters_for_import(
        &self,
        _ctx: &CallContext,
        _key: KeyRef,
        _algorithm: WrappingAlgorithm,
        _spec: WrappingKeySpec,
    ) -> Result<ImportParameters, KmsError> {
        Err(unsupported("key import (KMIP Register)"))
    }

    fn import_key_material(
        &self,
        _ctx: &CallContext,
        _key: KeyRef,
        _import_token: &[u8],
        _encrypted_material: &[u8],
        _valid_to: Option<OffsetDateTime>,
    ) -> Result<(), KmsError> {
        Err(unsupported("key import (KMIP Register)"))
    }

    fn delete_imported_key_material(
        &self,
        _ctx: &CallContext,
        _key: KeyRef,
    ) -> Result<(), KmsError> {
        Err(unsupported("key import (KMIP Register)"))
    }
}
