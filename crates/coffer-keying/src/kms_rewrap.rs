//! Moving SSE-KMS envelopes to their key's newest version (`coffer sse rewrap --kms-key`), so
//! that an older material version stops protecting anything. The object's data key and body
//! are unchanged: the KMS decrypts the wrapped data key (or the bucket key that wraps it) and
//! encrypts it again under the key's current version, with the same encryption context, and
//! the envelope is authenticated again with the data key.

use std::collections::HashMap;

use coffer_crypto::SymmetricKey;
use coffer_crypto::sealed::{BucketKeyWrap, Envelope, WrapKind};

use crate::bucket_keys::{bucket_context, same_key};
use crate::error::{KeyingError, KeyingResult};
use crate::{Caller, ObjectKeys, ObjectName, blocking, committed};

/// One rewrap pass over many objects under one key: bucket keys re-encrypted once each, so
/// that objects sharing a bucket key still share it afterwards.
pub struct KmsRewrap {
    key_id: String,
    current: u32,
    /// Old bucket-key blob → (its re-encryption, the version it is under).
    bucket_keys: HashMap<Vec<u8>, (Vec<u8>, u32)>,
}

impl KmsRewrap {
    /// A pass moving envelopes under `key_id` to its version `current` (DescribeKey's).
    pub fn new(key_id: impl Into<String>, current: u32) -> Self {
        KmsRewrap {
            key_id: key_id.into(),
            current,
            bucket_keys: HashMap::new(),
        }
    }

    /// Whether `envelope` is SSE-KMS under this pass's key at an older version: the cheap
    /// test before [`ObjectKeys::rewrap_kms`] (no KMS call).
    pub fn applies_to(&self, envelope: &Envelope) -> bool {
        matches!(envelope.key.kind, WrapKind::Kms | WrapKind::KmsBucketKey)
            && same_key(&envelope.key.key_id, &self.key_id)
            && envelope.key.key_version < self.current
    }
}

impl ObjectKeys {
    /// `envelope` with its data key (or bucket key) encrypted again under the pass's key's
    /// current version, or `None` when the envelope is not under that key or already current.
    /// Calls the KMS: run it off async threads (it uses `block_in_place` otherwise).
    pub fn rewrap_kms(
        &self,
        caller: &Caller<'_>,
        pass: &mut KmsRewrap,
        envelope: &[u8],
        object: ObjectName<'_>,
    ) -> KeyingResult<Option<Vec<u8>>> {
        let mut envelope = Envelope::decode(envelope).map_err(|_| KeyingError::Integrity)?;
        if !pass.applies_to(&envelope) {
            return Ok(None);
        }
        let kms = self.kms()?;
        let ctx = object.kms_call(caller);
        let cmk = envelope.key.key_id.clone();
        let (wrapped_key, version, dek) = if envelope.key.kind == WrapKind::Kms {
            let context = object.kms_context(&object.stored_context()?);
            let opened =
                blocking(|| kms.decrypt(&ctx, &envelope.key.wrapped_key, &context, Some(&cmk)))?;
            let dek =
                SymmetricKey::from_slice(&opened.plaintext).map_err(|_| KeyingError::Integrity)?;
            let dek = committed(&envelope, dek)?;
            let again = blocking(|| kms.encrypt(&ctx, &cmk, dek.expose(), &context))?;
            (again.ciphertext_blob, again.key_version, dek)
        } else {
            let wrap = BucketKeyWrap::decode(&envelope.key.wrapped_key)
                .map_err(|_| KeyingError::Integrity)?;
            let context = bucket_context(object.bucket);
            let opened =
                blocking(|| kms.decrypt(&ctx, wrap.bucket_key_blob, &context, Some(&cmk)))?;
            let bucket_key =
                SymmetricKey::from_slice(&opened.plaintext).map_err(|_| KeyingError::Integrity)?;
            let dek = object
                .data_key_owner(&envelope.object_id)
                .unwrap(&bucket_key, wrap.wrapped_dek)
                .map_err(|_| KeyingError::Integrity)?;
            let dek = committed(&envelope, dek)?;
            let (blob, version) = match pass.bucket_keys.get(wrap.bucket_key_blob) {
                Some(done) => done.clone(),
                None => {
                    let again =
                        blocking(|| kms.encrypt(&ctx, &cmk, bucket_key.expose(), &context))?;
                    let done = (again.ciphertext_blob, again.key_version);
                    pass.bucket_keys
                        .insert(wrap.bucket_key_blob.to_vec(), done.clone());
                    done
                }
            };
            let field = BucketKeyWrap {
                bucket_key_blob: &blob,
                wrapped_dek: wrap.wrapped_dek,
            }
            .encode()
            .map_err(|e| KeyingError::internal("encoding a bucket key wrap", e))?;
            (field, version, dek)
        };
        envelope.key.wrapped_key = wrapped_key;
        envelope.key.key_version = version;
        envelope
            .authenticate(&dek)
            .map_err(|e| KeyingError::internal("authenticating an envelope", e))?;
        envelope
            .encode()
            .map(Some)
            .map_err(|e| KeyingError::internal("encoding an envelope", e))
    }
}
