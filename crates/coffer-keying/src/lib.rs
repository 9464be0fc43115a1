//! Server-side keying: which data key seals a new object, and which opens
//! a stored one. No HTTP and no dialect lives here: the API edge decodes a
//! request into a [`Protection`] and a [`Caller`], and maps a
//! [`KeyingError`] to its S3 or OSS error.
//!
//! Every route (PUT, multipart, copies, GET, HEAD, rewrap) goes through
//! [`ObjectKeys`], so there is one sealing path and one opening path
//! (DESIGN.md §1.5). Modes:
//!
//! - service keys (`AES256`, and OSS's `SM4`): a fresh data key per object,
//!   wrapped by the current version of the service master key, bound to the
//!   bucket, key and object id ([`DataKeyOwner`]);
//! - SSE-C: the customer's key is the data key; it is never stored, and the
//!   envelope's key commitment rejects a wrong one before any chunk is opened;
//! - SSE-KMS: a data key from the KMS under a customer master key (named,
//!   or the default `alias/aws/s3`), with the encryption context
//!   `{"aws:s3:arn": "arn:aws:s3:::<bucket>/<key>"}` plus the client's; with
//!   bucket keys, data keys are wrapped by a cached per-bucket key that the
//!   KMS wrapped, so small writes do not call the KMS each time. A disabled,
//!   pending or missing key fails the request: never plaintext.
//!
//! The KMS is synchronous; calls that may reach it run in
//! `tokio::task::block_in_place` when on a multi-threaded runtime, so
//! callers may call from async tasks. The fast path of opening with a
//! cached bucket key never blocks.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bucket_keys;
mod error;
mod kms_rewrap;
pub mod observe;
mod protection;
mod sealing;
#[cfg(test)]
mod tests;

use std::sync::{Arc, RwLock};

use coffer_crypto::sealed::{
    BucketKeyWrap, DataKeyOwner, Envelope, KeyReference, PartLayout, WrapKind,
};
use coffer_crypto::{Algorithm, ObjectId, SymmetricKey};
use coffer_kms::embedded::DEFAULT_SSE_ALIAS;
use coffer_kms::kms::{CallContext, EncryptionContext, KmsDataPlane};
use coffer_kms::{KeyringError, RootKey, ServiceKeyring};

use bucket_keys::{BucketKey, BucketKeyCache};
pub use error::{KeyingError, KeyingResult};
pub use kms_rewrap::KmsRewrap;
pub use protection::{
    CONTEXT_ATTRIBUTE, CustomerKey, DefaultProtection, KmsProtection, Protection,
    UnsupportedAlgorithm, decode_context, is_kms_name,
};
pub use sealing::{Applied, Opening, SINGLE_PART, Sealing};

/// The key id recorded for data keys wrapped by the service master key.
const SERVICE_KEY_ID: &str = "coffer-service-master-key";

/// Who asks, and how the request arrived.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    /// The principal's name, for the KMS audit log.
    pub principal: &'a str,
    /// Whether the request came over TLS (SSE-C keys must).
    pub over_tls: bool,
}

/// Which object a key belongs to: its name, and the attributes stored with
/// it (where SSE-KMS keeps the client's encryption context).
#[derive(Clone, Copy, Debug)]
pub struct ObjectName<'a> {
    /// The bucket.
    pub bucket: &'a str,
    /// The object's key.
    pub key: &'a str,
    /// The object's (or upload's) stored attributes.
    pub stored: &'a [(String, String)],
}

impl ObjectName<'_> {
    fn kms_call(&self, caller: &Caller<'_>) -> CallContext {
        CallContext {
            principal: caller.principal.to_owned(),
            resource: Some(format!("{}/{}", self.bucket, self.key)),
        }
    }

    fn data_key_owner<'a>(&'a self, object_id: &'a ObjectId) -> DataKeyOwner<'a> {
        DataKeyOwner {
            bucket: self.bucket,
            key: self.key,
            object_id,
        }
    }

    /// The full KMS encryption context of the object's data key.
    fn kms_context(&self, client: &EncryptionContext) -> EncryptionContext {
        let mut context = client.clone();
        context.insert(
            protection::S3_ARN_CONTEXT.to_owned(),
            format!("arn:aws:s3:::{}/{}", self.bucket, self.key),
        );
        context
    }

    /// The client's encryption context stored with the object.
    fn stored_context(&self) -> KeyingResult<EncryptionContext> {
        match self
            .stored
            .iter()
            .find(|(name, _)| name == CONTEXT_ATTRIBUTE)
        {
            Some((_, encoded)) => decode_context(encoded).ok_or(KeyingError::Integrity),
            None => Ok(EncryptionContext::new()),
        }
    }
}

/// The keys of every object: the service master keyring, the KMS data
/// plane, and the bucket-key cache, with the one sealing and one opening
/// path over them.
pub struct ObjectKeys {
    service_keys: RwLock<ServiceKeyring>,
    /// Set when the ring is shared with other gateways: an envelope under a
    /// version this ring does not have reloads the ring once before it is
    /// refused ([`ObjectKeys::with_shared_service_keys`]).
    shared_root: Option<Arc<RootKey>>,
    kms: Option<Arc<dyn KmsDataPlane>>,
    bucket_keys: BucketKeyCache,
    allow_insecure_sse_c: bool,
}

/// Runs work that may call the KMS: in `block_in_place` on a
/// multi-threaded runtime (so the async worker's other tasks move on),
/// directly anywhere else.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// `dek` if it is the key `envelope` commits to (and, version 2, its
/// layout tag holds); a wrapped key that opened to another key is damage.
fn committed(envelope: &Envelope, dek: SymmetricKey) -> KeyingResult<SymmetricKey> {
    envelope
        .verify_key(&dek)
        .map_err(|_| KeyingError::Integrity)?;
    Ok(dek)
}

fn crypto_failure(context: &'static str) -> impl Fn(coffer_crypto::CryptoError) -> KeyingError {
    move |e| KeyingError::internal(context, e)
}

impl ObjectKeys {
    /// Keying over the service keyring and, when the server has one, a KMS
    /// (without, SSE-KMS is refused). `allow_insecure_sse_c` accepts SSE-C
    /// keys over plain HTTP (tests only).
    pub fn new(
        service_keys: ServiceKeyring,
        kms: Option<Arc<dyn KmsDataPlane>>,
        allow_insecure_sse_c: bool,
    ) -> Self {
        ObjectKeys {
            service_keys: RwLock::new(service_keys),
            shared_root: None,
            kms,
            bucket_keys: BucketKeyCache::default(),
            allow_insecure_sse_c,
        }
    }

    /// The service key ring is shared with other gateways (in PostgreSQL):
    /// an object sealed under a version another gateway made since this
    /// ring was read reloads the ring (sealed by `root`) and opens, instead
    /// of being refused. The keystore's watcher also calls
    /// [`refresh_service_keys`](Self::refresh_service_keys) on every change,
    /// so new objects use the current version everywhere.
    pub fn with_shared_service_keys(mut self, root: Arc<RootKey>) -> Self {
        self.shared_root = Some(root);
        self
    }

    /// Reloads the service key ring if another gateway changed it (rotated)
    /// since it was read; returns whether it did. Costs one read of the
    /// ring's storage when nothing changed. The ring is read without holding
    /// the lock that sealing and opening take, then swapped in, unless this
    /// gateway's ring meanwhile holds a version the reloaded one does not.
    pub fn refresh_service_keys(&self, root: &RootKey) -> KeyingResult<bool> {
        let reload = |e: KeyringError| KeyingError::internal("reloading the service key ring", e);
        let Some(fresh) = self.keyring()?.reloaded(root).map_err(reload)? else {
            return Ok(false);
        };
        let mut ring = self
            .service_keys
            .write()
            .map_err(|_| KeyingError::internal("service keyring", "lock poisoned"))?;
        if ring.versions().all(|(v, _)| fresh.version(v).is_some()) {
            *ring = fresh;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Runs `f` with the service key of `version`; a version this ring does
    /// not have reloads a shared ring once, then is damage.
    fn with_service_key<T>(
        &self,
        version: u32,
        f: impl FnOnce(&SymmetricKey) -> KeyingResult<T>,
    ) -> KeyingResult<T> {
        {
            let keyring = self.keyring()?;
            if let Some(key) = keyring.version(version) {
                return f(key);
            }
        }
        if let Some(root) = &self.shared_root
            && self.refresh_service_keys(root)?
            && let Some(key) = self.keyring()?.version(version)
        {
            return f(key);
        }
        Err(KeyingError::Integrity)
    }

    fn kms(&self) -> KeyingResult<&dyn KmsDataPlane> {
        self.kms.as_deref().ok_or(KeyingError::NoKms)
    }

    fn keyring(&self) -> KeyingResult<std::sync::RwLockReadGuard<'_, ServiceKeyring>> {
        self.service_keys
            .read()
            .map_err(|_| KeyingError::internal("service keyring", "lock poisoned"))
    }

    /// SSE-C keys cross the network with each request: only over TLS,
    /// unless the test-only setting allows plain HTTP.
    fn check_customer_transport(&self, caller: &Caller<'_>) -> KeyingResult<()> {
        if caller.over_tls || self.allow_insecure_sse_c {
            Ok(())
        } else {
            Err(KeyingError::CustomerKeyOverPlainHttp)
        }
    }

    /// The sealing for a new object (PutObject, a copy's target, a new
    /// multipart upload), or `None` when it is stored in plaintext.
    pub fn seal_new(
        &self,
        caller: &Caller<'_>,
        protection: Protection,
        object: ObjectName<'_>,
    ) -> KeyingResult<Option<Sealing>> {
        let object_id = ObjectId::random().map_err(crypto_failure("object id"))?;
        match protection {
            Protection::None => Ok(None),
            Protection::Kms(kms) => self.seal_with_kms(caller, kms, object, object_id).map(Some),
            Protection::Customer(customer) => {
                self.check_customer_transport(caller)?;
                let fingerprint =
                    coffer_crypto::sealed::customer_fingerprint(&customer.key, &object_id);
                Ok(Some(Sealing {
                    algorithm: Algorithm::Aes256Gcm,
                    key: KeyReference {
                        kind: WrapKind::CustomerKey,
                        key_id: String::new(),
                        key_version: 0,
                        wrapped_key: fingerprint.to_vec(),
                    },
                    customer_md5: Some(customer.md5_base64().to_owned()),
                    dek: customer.key,
                    object_id,
                    stored: Vec::new(),
                }))
            }
            Protection::Service(algorithm) => {
                let dek = SymmetricKey::generate().map_err(crypto_failure("data key"))?;
                let keyring = self.keyring()?;
                let (version, master) = keyring.current();
                let wrapped_key = object
                    .data_key_owner(&object_id)
                    .wrap(master, &dek)
                    .map_err(crypto_failure("wrapping a data key"))?;
                Ok(Some(Sealing {
                    algorithm,
                    dek,
                    object_id,
                    key: KeyReference {
                        kind: WrapKind::ServiceKey,
                        key_id: SERVICE_KEY_ID.to_owned(),
                        key_version: version,
                        wrapped_key,
                    },
                    customer_md5: None,
                    stored: Vec::new(),
                }))
            }
        }
    }

    /// SSE-KMS sealing: the data key comes from the KMS (directly, or
    /// wrapped by a cached bucket key that the KMS wrapped).
    fn seal_with_kms(
        &self,
        caller: &Caller<'_>,
        choice: KmsProtection,
        object: ObjectName<'_>,
        object_id: ObjectId,
    ) -> KeyingResult<Sealing> {
        let kms = self.kms()?;
        let ctx = object.kms_call(caller);
        let algorithm = if choice.sm4 {
            Algorithm::Sm4Gcm
        } else {
            Algorithm::Aes256Gcm
        };
        let stored = if choice.context.is_empty() {
            Vec::new()
        } else {
            vec![(
                CONTEXT_ATTRIBUTE.to_owned(),
                protection::encode_context(&choice.context),
            )]
        };
        let with_bucket_key = |bucket_key: &BucketKey| -> KeyingResult<_> {
            let dek = SymmetricKey::generate().map_err(crypto_failure("data key"))?;
            let wrapped_dek = object
                .data_key_owner(&object_id)
                .wrap(&bucket_key.plaintext, &dek)
                .map_err(crypto_failure("wrapping a data key"))?;
            let wrapped_key = BucketKeyWrap {
                bucket_key_blob: &bucket_key.blob,
                wrapped_dek: &wrapped_dek,
            }
            .encode()
            .map_err(crypto_failure("bucket key"))?;
            Ok((
                dek,
                KeyReference {
                    kind: WrapKind::KmsBucketKey,
                    key_id: bucket_key.key_id.clone(),
                    key_version: bucket_key.key_version,
                    wrapped_key,
                },
            ))
        };
        // The key asked for, or the default key's ARN when the KMS resolves
        // its alias from memory (no DescribeKey, which AWS S3 does not make
        // either); else `default_sse_key` below resolves it, creating it on
        // first use.
        let cmk_now = match &choice.key_id {
            Some(id) => Some(id.clone()),
            None => kms.usable_now(DEFAULT_SSE_ALIAS).and_then(Result::ok),
        };
        // A cached bucket key under a key the KMS knows to be usable needs
        // no KMS request and no blocking call (the small-object PUT path).
        let cached = match &cmk_now {
            Some(cmk) if choice.bucket_key => {
                self.bucket_keys.cached_for_sealing(kms, object.bucket, cmk)
            }
            _ => None,
        };
        let (dek, key) = match cached {
            Some(bucket_key) => with_bucket_key(bucket_key?.as_ref())?,
            None => blocking(|| -> KeyingResult<_> {
                let cmk = match cmk_now {
                    Some(cmk) => cmk,
                    None => kms.default_sse_key(&ctx)?.arn,
                };
                if !choice.bucket_key {
                    let generated =
                        kms.generate_data_key(&ctx, &cmk, &object.kms_context(&choice.context))?;
                    return Ok((
                        generated.plaintext,
                        KeyReference {
                            kind: WrapKind::Kms,
                            key_id: generated.key_id,
                            key_version: generated.key_version,
                            wrapped_key: generated.ciphertext_blob,
                        },
                    ));
                }
                let bucket_key = self
                    .bucket_keys
                    .for_sealing(kms, &ctx, object.bucket, &cmk)?;
                with_bucket_key(&bucket_key)
            })?,
        };
        Ok(Sealing {
            algorithm,
            dek,
            object_id,
            key,
            customer_md5: None,
            stored,
        })
    }

    /// Opens the envelope of an object (or upload): unwraps its data key
    /// with the service key or the KMS, or takes `customer`'s key (the
    /// request's SSE-C key for this object), and checks it against the key
    /// commitment before anything is opened.
    pub fn open(
        &self,
        caller: &Caller<'_>,
        envelope: &[u8],
        object: ObjectName<'_>,
        customer: Option<CustomerKey>,
    ) -> KeyingResult<Opening> {
        let envelope = Envelope::decode(envelope).map_err(|_| KeyingError::Integrity)?;
        if envelope.key.kind != WrapKind::CustomerKey && customer.is_some() {
            return Err(KeyingError::CustomerKeyNotApplicable);
        }
        let (dek, customer_md5) = match envelope.key.kind {
            WrapKind::ServiceKey => {
                let dek = self.with_service_key(envelope.key.key_version, |master| {
                    object
                        .data_key_owner(&envelope.object_id)
                        .unwrap(master, &envelope.key.wrapped_key)
                        .map_err(|_| KeyingError::Integrity)
                })?;
                (committed(&envelope, dek)?, None)
            }
            WrapKind::CustomerKey => {
                let customer = customer.ok_or(KeyingError::CustomerKeyRequired)?;
                self.check_customer_transport(caller)?;
                let fingerprint =
                    coffer_crypto::sealed::customer_fingerprint(&customer.key, &envelope.object_id);
                if envelope.verify_key(&customer.key).is_err()
                    || fingerprint[..] != envelope.key.wrapped_key[..]
                {
                    return Err(KeyingError::CustomerKeyMismatch);
                }
                let md5 = customer.md5_base64().to_owned();
                (customer.key, Some(md5))
            }
            WrapKind::Kms | WrapKind::KmsBucketKey => {
                let dek = self.open_with_kms(caller, &envelope, object)?;
                (committed(&envelope, dek)?, None)
            }
        };
        let stored = object
            .stored
            .iter()
            .filter(|(name, _)| name == CONTEXT_ATTRIBUTE)
            .cloned()
            .collect();
        Ok(Opening {
            envelope,
            dek,
            customer_md5,
            stored,
        })
    }

    /// Opens an object's envelope if it has one. A plaintext object read
    /// with a customer key is refused, as S3 does: the key would not apply.
    pub fn open_stored(
        &self,
        caller: &Caller<'_>,
        envelope: Option<&[u8]>,
        object: ObjectName<'_>,
        customer: Option<CustomerKey>,
    ) -> KeyingResult<Option<Opening>> {
        match envelope {
            Some(envelope) => self.open(caller, envelope, object, customer).map(Some),
            None if customer.is_some() => Err(KeyingError::CustomerKeyNotApplicable),
            None => Ok(None),
        }
    }

    fn open_with_kms(
        &self,
        caller: &Caller<'_>,
        envelope: &Envelope,
        object: ObjectName<'_>,
    ) -> KeyingResult<SymmetricKey> {
        let kms = self.kms()?;
        let ctx = object.kms_call(caller);
        let cmk = envelope.key.key_id.as_str();
        let wrapped = &envelope.key.wrapped_key;
        if envelope.key.kind == WrapKind::Kms {
            let context = object.kms_context(&object.stored_context()?);
            let opened = blocking(|| kms.decrypt(&ctx, wrapped, &context, Some(cmk)))?;
            return SymmetricKey::from_slice(&opened.plaintext).map_err(|_| KeyingError::Integrity);
        }
        let wrap = BucketKeyWrap::decode(wrapped).map_err(|_| KeyingError::Integrity)?;
        // A cached bucket key is reused without a KMS request or a blocking
        // call (the small-object GET path); otherwise ask the KMS off the
        // reactor.
        let bucket_key = match self
            .bucket_keys
            .cached_for_opening(kms, cmk, wrap.bucket_key_blob)
        {
            Some(cached) => cached?,
            None => blocking(|| {
                self.bucket_keys
                    .for_opening(kms, &ctx, object.bucket, cmk, wrap.bucket_key_blob)
            })?,
        };
        object
            .data_key_owner(&envelope.object_id)
            .unwrap(&bucket_key, wrap.wrapped_dek)
            .map_err(|_| KeyingError::Integrity)
    }

    /// A multipart upload's envelope with its real part layout (number,
    /// plaintext size), at completion. The data key is opened (through the
    /// KMS for SSE-KMS, so that completing fails closed like every other
    /// step) and the envelope written as version 2, its layout tagged.
    /// SSE-C is the exception when the request does not bring the key
    /// again (S3 does not require it at completion): that envelope stays
    /// version 1, its part list unauthenticated (format.md §6).
    pub fn complete_upload(
        &self,
        caller: &Caller<'_>,
        upload_envelope: &[u8],
        object: ObjectName<'_>,
        customer: Option<CustomerKey>,
        parts: &[(u32, u64)],
    ) -> KeyingResult<Vec<u8>> {
        let layout = parts
            .iter()
            .map(|&(part_number, plain_size)| PartLayout {
                part_number,
                plain_size,
            })
            .collect();
        let decoded = Envelope::decode(upload_envelope).map_err(|_| KeyingError::Integrity)?;
        let envelope = if decoded.key.kind == WrapKind::CustomerKey && customer.is_none() {
            Envelope {
                parts: layout,
                ..decoded
            }
        } else {
            let opening = self.open(caller, upload_envelope, object, customer)?;
            let mut envelope = Envelope {
                parts: layout,
                ..opening.envelope
            };
            envelope
                .authenticate(&opening.dek)
                .map_err(|e| KeyingError::internal("authenticating an envelope", e))?;
            envelope
        };
        envelope
            .encode()
            .map_err(|e| KeyingError::internal("encoding an envelope", e))
    }

    /// The envelope re-wrapped under the current service master key
    /// version, or `None` when it already is (or is not a service-key
    /// envelope). The object's data key and body are unchanged; a
    /// version-1 envelope becomes version 2 on the way (format.md §5.1).
    pub fn rewrap(
        &self,
        envelope: &[u8],
        bucket: &str,
        key: &str,
    ) -> KeyingResult<Option<Vec<u8>>> {
        let mut envelope = Envelope::decode(envelope).map_err(|_| KeyingError::Integrity)?;
        if envelope.key.kind != WrapKind::ServiceKey {
            return Ok(None);
        }
        let keyring = self.keyring()?;
        let (current, current_key) = keyring.current();
        if envelope.key.key_version == current {
            return Ok(None);
        }
        let object = ObjectName {
            bucket,
            key,
            stored: &[],
        };
        let owner = object.data_key_owner(&envelope.object_id);
        let old_key = keyring
            .version(envelope.key.key_version)
            .ok_or(KeyingError::Integrity)?;
        let dek = owner
            .unwrap(old_key, &envelope.key.wrapped_key)
            .map_err(|_| KeyingError::Integrity)?;
        // Only an authentic envelope is re-tagged.
        envelope
            .verify_key(&dek)
            .map_err(|_| KeyingError::Integrity)?;
        envelope.key.wrapped_key = owner
            .wrap(current_key, &dek)
            .map_err(crypto_failure("wrapping a data key"))?;
        envelope.key.key_version = current;
        envelope
            .authenticate(&dek)
            .map_err(|e| KeyingError::internal("authenticating an envelope", e))?;
        envelope
            .encode()
            .map(Some)
            .map_err(|e| KeyingError::internal("encoding an envelope", e))
    }

    /// The service master key's current version and every version with its
    /// creation time (ms since the epoch).
    pub fn service_key_versions(&self) -> KeyingResult<(u32, Vec<(u32, i64)>)> {
        let keyring = self.keyring()?;
        Ok((keyring.current().0, keyring.versions().collect()))
    }

    /// Adds a service master key version (sealed by `root` on disk); new
    /// objects use it from now on, old ones keep opening with theirs until
    /// a [`rewrap`](Self::rewrap).
    pub fn rotate_service_key(&self, root: &RootKey) -> KeyingResult<u32> {
        self.service_keys
            .write()
            .map_err(|_| KeyingError::internal("service keyring", "lock poisoned"))?
            .rotate(root)
            .map_err(|e: KeyringError| KeyingError::internal("rotating the service master key", e))
    }
}
