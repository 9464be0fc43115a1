//! The `aws-kms:` KMS backend: customer master keys kept by an AWS-KMS-protocol endpoint
//! (AWS KMS itself, another Coffer, moto's server in tests), reached with Coffer's own SigV4
//! client (`coffer-client`) over the AWS KMS JSON protocol (`X-Amz-Target: TrentService.*`).
//!
//! - [`settings`]: `aws-kms:https://host:port?region=R`, credentials from the environment.
//! - `wire`: the blocking call over a runtime of the backend's own, and the exceptions mapped
//!   back to [`KmsError`].
//! - `metadata`: the JSON of key metadata, blobs and contexts.
//! - `admin`: [`KmsAdmin`](coffer_kms::KmsAdmin), forwarded call for call.
//!
//! Ciphertext blobs are the backend's own, opaque to Coffer; the envelope keeps them as it
//! keeps the embedded KMS's. Nothing is cached: every data-key use (bucket keys included, see
//! `coffer-keying`'s `bucket_keys.rs`) asks the backend, so a key disabled there, or the
//! backend gone, stops reads and writes within one call's timeout ([`CONNECT_TIMEOUT`] +
//! [`RESPONSE_TIMEOUT`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod metadata;
pub mod settings;
mod wire;

use coffer_crypto::SymmetricKey;
use coffer_kms::kms::{Ciphertext, GeneratedDataKey, KeyMetadata, KeyRef, KmsDataPlane, Plaintext};
use coffer_kms::{CallContext, EncryptionContext, KmsError};
use serde_json::json;
use zeroize::Zeroizing;

pub use settings::AwsKmsSettings;
pub use wire::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT};

use metadata::{
    BACKEND_VERSION, base64, bytes, context, key_id_of, key_metadata, require_enabled, text,
};
use wire::Wire;

/// A KMS whose keys an AWS-KMS-protocol endpoint keeps.
pub struct AwsKms {
    wire: Wire,
    default_key: String,
}

impl AwsKms {
    /// Connects to the endpoint `settings` names, with the credentials of the environment
    /// ([`settings::ACCESS_KEY_VAR`], [`settings::SECRET_KEY_VAR`]), and checks that it
    /// answers and accepts them.
    pub fn open(settings: &AwsKmsSettings) -> Result<AwsKms, String> {
        let kms = AwsKms {
            wire: Wire::connect(settings)?,
            default_key: settings.default_key.clone(),
        };
        kms.check_ready()
            .map_err(|e| format!("the aws-kms backend does not answer: {e}"))?;
        tracing::info!(endpoint = %settings.url, region = %settings.region, "KMS backend: aws-kms");
        Ok(kms)
    }

    /// The key's metadata, refused unless it is enabled.
    fn enabled(&self, key: KeyRef) -> Result<KeyMetadata, KmsError> {
        let meta = self.describe(key)?;
        require_enabled(&meta)?;
        Ok(meta)
    }

    fn describe(&self, key: KeyRef) -> Result<KeyMetadata, KmsError> {
        key_metadata(&self.wire.call("DescribeKey", json!({"KeyId": key}), key)?)
    }
}

impl KmsDataPlane for AwsKms {
    fn describe_key(&self, _ctx: &CallContext, key: KeyRef) -> Result<KeyMetadata, KmsError> {
        self.describe(key)
    }

    fn check_ready(&self) -> Result<(), KmsError> {
        match self.describe(&self.default_key) {
            Ok(_) | Err(KmsError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    fn generate_data_key(
        &self,
        _ctx: &CallContext,
        key: KeyRef,
        encryption_context: &EncryptionContext,
    ) -> Result<GeneratedDataKey, KmsError> {
        let meta = self.enabled(key)?;
        let answer = self.wire.call(
            "GenerateDataKey",
            json!({"KeyId": meta.key_id, "KeySpec": "AES_256",
                   "EncryptionContext": context(encryption_context)}),
            key,
        )?;
        let plaintext = Zeroizing::new(bytes(&answer, "Plaintext")?);
        Ok(GeneratedDataKey {
            key_id: key_id_of(text(&answer, "KeyId")?).to_owned(),
            key_version: BACKEND_VERSION,
            plaintext: SymmetricKey::from_slice(&plaintext)
                .map_err(|_| metadata::malformed("a data key that is not 256 bits"))?,
            ciphertext_blob: bytes(&answer, "CiphertextBlob")?,
        })
    }

    fn encrypt(
        &self,
        _ctx: &CallContext,
        key: KeyRef,
        plaintext: &[u8],
        encryption_context: &EncryptionContext,
    ) -> Result<Ciphertext, KmsError> {
        let meta = self.enabled(key)?;
        let answer = self.wire.call(
            "Encrypt",
            json!({"KeyId": meta.key_id, "Plaintext": base64(plaintext),
                   "EncryptionContext": context(encryption_context)}),
            key,
        )?;
        Ok(Ciphertext {
            key_id: key_id_of(text(&answer, "KeyId")?).to_owned(),
            key_version: BACKEND_VERSION,
            ciphertext_blob: bytes(&answer, "CiphertextBlob")?,
        })
    }

    fn decrypt(
        &self,
        _ctx: &CallContext,
        ciphertext_blob: &[u8],
        encryption_context: &EncryptionContext,
        key: Option<KeyRef>,
    ) -> Result<Plaintext, KmsError> {
        let mut request = json!({"CiphertextBlob": base64(ciphertext_blob),
                                 "EncryptionContext": context(encryption_context)});
        if let Some(key) = key {
            request["KeyId"] = json!(key);
        }
        let answer = self
            .wire
            .call("Decrypt", request, key.unwrap_or("the ciphertext's key"))?;
        let plaintext = Zeroizing::new(bytes(&answer, "Plaintext")?);
        // The key the blob names, checked after the fact: the blob alone says which it is.
        let key_id = key_id_of(text(&answer, "KeyId")?).to_owned();
        self.enabled(&key_id)?;
        Ok(Plaintext {
            key_id,
            key_version: BACKEND_VERSION,
            plaintext,
        })
    }

    fn re_encrypt(
        &self,
        _ctx: &CallContext,
        ciphertext_blob: &[u8],
        source_context: &EncryptionContext,
        destination_key: KeyRef,
        destination_context: &EncryptionContext,
    ) -> Result<Ciphertext, KmsError> {
        let destination = self.enabled(destination_key)?;
        let answer = self.wire.call(
            "ReEncrypt",
            json!({"CiphertextBlob": base64(ciphertext_blob),
                   "SourceEncryptionContext": context(source_context),
                   "DestinationKeyId": destination.key_id,
                   "DestinationEncryptionContext": context(destination_context)}),
            destination_key,
        )?;
        if let Some(source) = answer["SourceKeyId"].as_str() {
            self.enabled(key_id_of(source))?;
        }
        Ok(Ciphertext {
            key_id: key_id_of(text(&answer, "KeyId")?).to_owned(),
            key_version: BACKEND_VERSION,
            ciphertext_blob: bytes(&answer, "CiphertextBlob")?,
        })
    }

    fn default_sse_key(&self, _ctx: &CallContext) -> Result<KeyMetadata, KmsError> {
        self.enabled(&self.default_key)
    }
}
