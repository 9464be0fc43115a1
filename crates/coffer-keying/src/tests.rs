//! The keying layer over the whole protection matrix, against the
//! in-memory KMS: seal, open, ranges, multipart completion, rewrap,
//! disabled keys, and how often the KMS is asked.

use std::sync::Arc;

use coffer_crypto::sealed::{Envelope, WrapKind};
use coffer_crypto::{Algorithm, SymmetricKey};
use coffer_kms::kms::{KeySpec, KeyState, KmsError};
use coffer_kms::memory::MemoryKms;
use coffer_kms::{KmsDataPlane, RootKey, ServiceKeyring};

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    root: RootKey,
    memory: Arc<MemoryKms>,
    keys: ObjectKeys,
    cmk: String,
}

/// Keying over a fresh root key, service keyring and in-memory KMS with one
/// key; `kms` chooses the data plane the keying layer sees (given the
/// in-memory KMS; `None`: no KMS at all).
fn fixture_with(kms: impl FnOnce(&Arc<MemoryKms>) -> Option<Arc<dyn KmsDataPlane>>) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, _) = RootKey::load_or_create(dir.path()).expect("root key");
    let service = ServiceKeyring::load_or_create(dir.path(), &root).expect("service keys");
    let memory = Arc::new(MemoryKms::new("us-east-1"));
    let cmk = memory
        .create_key(KeySpec::SymmetricDefault)
        .expect("create")
        .key_id;
    Fixture {
        _dir: dir,
        root,
        keys: ObjectKeys::new(service, kms(&memory), false),
        memory,
        cmk,
    }
}

fn fixture() -> Fixture {
    fixture_with(|memory| Some(memory.clone()))
}

const TLS: Caller<'static> = Caller {
    principal: "alice",
    over_tls: true,
};
const PLAIN_HTTP: Caller<'static> = Caller {
    principal: "alice",
    over_tls: false,
};

fn name<'a>(bucket: &'a str, key: &'a str, stored: &'a [(String, String)]) -> ObjectName<'a> {
    ObjectName {
        bucket,
        key,
        stored,
    }
}

fn customer(byte: u8) -> CustomerKey {
    CustomerKey::new(SymmetricKey::from_slice(&[byte; 32]).expect("32 bytes"))
}

/// Every protection a write can ask for, with the customer key that opens
/// it (SSE-C only).
fn matrix(f: &Fixture) -> Vec<(&'static str, Protection, Option<u8>)> {
    let kms = |bucket_key: bool, sm4: bool, context: &[(&str, &str)]| {
        Protection::Kms(KmsProtection {
            key_id: Some(f.cmk.clone()),
            sm4,
            context: context
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            bucket_key,
        })
    };
    vec![
        ("AES256", Protection::Service(Algorithm::Aes256Gcm), None),
        ("SM4", Protection::Service(Algorithm::Sm4Gcm), None),
        ("SSE-C", Protection::Customer(customer(7)), Some(7)),
        ("SSE-KMS", kms(false, false, &[]), None),
        ("SSE-KMS context", kms(false, false, &[("app", "x")]), None),
        ("SSE-KMS SM4", kms(false, true, &[]), None),
        ("SSE-KMS bucket key", kms(true, false, &[]), None),
        (
            "SSE-KMS default key",
            Protection::Kms(KmsProtection::default()),
            None,
        ),
    ]
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A sealed single-part object: its blob, envelope and stored attributes.
type SealedObject = (Vec<u8>, Vec<u8>, Vec<(String, String)>);

/// Seals `body` as a single-part object.
fn seal_object(
    keys: &ObjectKeys,
    protection: Protection,
    bucket: &str,
    key: &str,
    body: &[u8],
) -> KeyingResult<SealedObject> {
    let sealing = keys
        .seal_new(&TLS, protection, name(bucket, key, &[]))?
        .expect("encrypted");
    let mut sealer = sealing.sealer(SINGLE_PART);
    let mut blob = Vec::new();
    sealer.push(body, &mut blob).expect("seal");
    let size = sealer.finish(&mut blob);
    let envelope = sealing.single_part_envelope(size)?;
    Ok((blob, envelope, sealing.stored_attributes().to_vec()))
}

/// Reads plaintext `range` through the envelope's planner, as the server does.
fn read(opening: &Opening, blobs: &[&[u8]], range: std::ops::Range<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    let parts = &opening.envelope().parts;
    for piece in opening.envelope().plan_range(range).expect("plan") {
        let index = parts
            .iter()
            .position(|p| p.part_number == piece.part_number)
            .expect("a planned part exists");
        let sealed =
            &blobs[index][piece.plan.sealed.start as usize..piece.plan.sealed.end as usize];
        opening
            .opener(piece.part_number)
            .open_range(&piece.plan, sealed, &mut out)
            .expect("open");
    }
    out
}

#[test]
fn every_protection_seals_and_opens_any_range() {
    let f = fixture();
    let body = plaintext(200_000);
    for (label, protection, customer_byte) in matrix(&f) {
        let (blob, envelope, stored) =
            seal_object(&f.keys, protection, "photos", "a.jpg", &body).expect(label);
        let opening = f
            .keys
            .open(
                &TLS,
                &envelope,
                name("photos", "a.jpg", &stored),
                customer_byte.map(customer),
            )
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        for range in [
            0..200_000u64,
            0..1,
            65_535..65_537,
            131_072..200_000,
            199_999..200_000,
        ] {
            assert_eq!(
                read(&opening, &[&blob], range.clone()),
                body[range.start as usize..range.end as usize],
                "{label} range {range:?}"
            );
        }
        assert_eq!(
            Envelope::decode(&envelope).expect("decodes").version(),
            2,
            "{label}: a finished object's envelope is version 2"
        );
    }
}

#[test]
fn a_wrapped_key_moved_to_another_object_does_not_open() {
    let f = fixture();
    for (label, protection, customer_byte) in matrix(&f) {
        if customer_byte.is_some() {
            continue; // SSE-C stores no wrapped key
        }
        let (_, envelope, stored) =
            seal_object(&f.keys, protection, "photos", "a.jpg", b"x").expect(label);
        let moved = f
            .keys
            .open(&TLS, &envelope, name("photos", "b.jpg", &stored), None);
        assert!(
            matches!(
                moved,
                Err(KeyingError::Integrity | KeyingError::Kms(KmsError::InvalidCiphertext))
            ),
            "{label}: opened under another key: {:?}",
            moved.err()
        );
    }
}

#[test]
fn customer_keys_are_checked() {
    let f = fixture();
    let (_, envelope, _) =
        seal_object(&f.keys, Protection::Customer(customer(7)), "b", "k", b"x").expect("seal");
    let open = |caller: &Caller<'_>, key: Option<u8>| {
        f.keys
            .open(caller, &envelope, name("b", "k", &[]), key.map(customer))
            .map(|opening| opening.applied().customer_key_md5.map(str::to_owned))
    };
    assert_eq!(
        open(&TLS, Some(7)).expect("the right key").as_deref(),
        Some(customer(7).md5_base64())
    );
    assert!(matches!(
        open(&TLS, Some(8)),
        Err(KeyingError::CustomerKeyMismatch)
    ));
    assert!(matches!(
        open(&TLS, None),
        Err(KeyingError::CustomerKeyRequired)
    ));
    assert!(matches!(
        open(&PLAIN_HTTP, Some(7)),
        Err(KeyingError::CustomerKeyOverPlainHttp)
    ));
    assert!(matches!(
        f.keys.seal_new(
            &PLAIN_HTTP,
            Protection::Customer(customer(7)),
            name("b", "k", &[])
        ),
        Err(KeyingError::CustomerKeyOverPlainHttp)
    ));
    let (_, service, _) = seal_object(
        &f.keys,
        Protection::Service(Algorithm::Aes256Gcm),
        "b",
        "k",
        b"x",
    )
    .expect("seal");
    assert!(matches!(
        f.keys
            .open(&TLS, &service, name("b", "k", &[]), Some(customer(7))),
        Err(KeyingError::CustomerKeyNotApplicable)
    ));
    assert!(matches!(
        f.keys
            .open_stored(&TLS, None, name("b", "k", &[]), Some(customer(7))),
        Err(KeyingError::CustomerKeyNotApplicable)
    ));
    assert!(
        f.keys
            .open_stored(&TLS, None, name("b", "k", &[]), None)
            .expect("plaintext")
            .is_none()
    );
}

#[test]
fn a_disabled_key_fails_closed_cached_or_not() {
    let f = fixture();
    let mut sealed = Vec::new();
    for bucket_key in [false, true] {
        let cmk = f.cmk.clone();
        let protection = move || {
            Protection::Kms(KmsProtection {
                key_id: Some(cmk.clone()),
                bucket_key,
                ..KmsProtection::default()
            })
        };
        let (_, envelope, stored) =
            seal_object(&f.keys, protection(), "b", "k", b"x").expect("seal");
        // Opened once, so that a bucket key is cached.
        f.keys
            .open(&TLS, &envelope, name("b", "k", &stored), None)
            .expect("open");
        sealed.push((bucket_key, protection, envelope, stored));
    }
    f.memory
        .set_state(&f.cmk, KeyState::Disabled)
        .expect("disable");
    for (bucket_key, protection, envelope, stored) in &sealed {
        let refused = |result: KeyingResult<()>, what: &str| {
            assert!(
                matches!(result, Err(KeyingError::Kms(KmsError::Disabled(_)))),
                "bucket key {bucket_key}: {what} under a disabled key: {result:?}"
            );
        };
        refused(
            f.keys
                .open(&TLS, envelope, name("b", "k", stored), None)
                .map(drop),
            "open",
        );
        refused(
            f.keys
                .seal_new(&TLS, protection(), name("b", "k", &[]))
                .map(drop),
            "seal",
        );
    }
    f.memory
        .set_state(&f.cmk, KeyState::Enabled)
        .expect("enable");
    for (_, _, envelope, stored) in &sealed {
        f.keys
            .open(&TLS, envelope, name("b", "k", stored), None)
            .expect("opens again once enabled");
    }
}

#[test]
fn bucket_keys_ask_the_kms_once_per_miss() {
    let f = fixture();
    let protection = || {
        Protection::Kms(KmsProtection {
            key_id: Some(f.cmk.clone()),
            bucket_key: true,
            ..KmsProtection::default()
        })
    };
    let objects: Vec<_> = (0..3)
        .map(|i| {
            let key = format!("k{i}");
            let (_, envelope, stored) =
                seal_object(&f.keys, protection(), "b", &key, b"x").expect("seal");
            (key, envelope, stored)
        })
        .collect();
    for (key, envelope, stored) in &objects {
        let opening = f
            .keys
            .open(&TLS, envelope, name("b", key, stored), None)
            .expect("open");
        assert_eq!(opening.applied().key.kind, WrapKind::KmsBucketKey);
    }
    assert_eq!(
        f.memory.calls(),
        ["generate_data_key", "decrypt"],
        "three objects sealed and opened: one GenerateDataKey and one Decrypt"
    );
}

/// A backend that cannot tell a key's state from memory (an HSM, a remote
/// KMS): every cached bucket key is checked with DescribeKey.
struct NoCheapState(Arc<MemoryKms>);

impl KmsDataPlane for NoCheapState {
    fn describe_key(
        &self,
        ctx: &coffer_kms::CallContext,
        key: &str,
    ) -> Result<coffer_kms::kms::KeyMetadata, KmsError> {
        self.0.describe_key(ctx, key)
    }
    fn generate_data_key(
        &self,
        ctx: &coffer_kms::CallContext,
        key: &str,
        context: &coffer_kms::EncryptionContext,
    ) -> Result<coffer_kms::kms::GeneratedDataKey, KmsError> {
        self.0.generate_data_key(ctx, key, context)
    }
    fn encrypt(
        &self,
        ctx: &coffer_kms::CallContext,
        key: &str,
        plaintext: &[u8],
        context: &coffer_kms::EncryptionContext,
    ) -> Result<coffer_kms::kms::Ciphertext, KmsError> {
        self.0.encrypt(ctx, key, plaintext, context)
    }
    fn decrypt(
        &self,
        ctx: &coffer_kms::CallContext,
        blob: &[u8],
        context: &coffer_kms::EncryptionContext,
        key: Option<&str>,
    ) -> Result<coffer_kms::kms::Plaintext, KmsError> {
        self.0.decrypt(ctx, blob, context, key)
    }
    fn re_encrypt(
        &self,
        ctx: &coffer_kms::CallContext,
        blob: &[u8],
        source: &coffer_kms::EncryptionContext,
        key: &str,
        destination: &coffer_kms::EncryptionContext,
    ) -> Result<coffer_kms::kms::Ciphertext, KmsError> {
        self.0.re_encrypt(ctx, blob, source, key, destination)
    }
    fn default_sse_key(
        &self,
        ctx: &coffer_kms::CallContext,
    ) -> Result<coffer_kms::kms::KeyMetadata, KmsError> {
        self.0.default_sse_key(ctx)
    }
}

#[test]
fn bucket_keys_check_state_without_a_second_request_per_miss() {
    let f = fixture_with(|memory| Some(Arc::new(NoCheapState(memory.clone()))));
    let (keys, memory, cmk) = (&f.keys, &f.memory, f.cmk.clone());
    let protection = || {
        Protection::Kms(KmsProtection {
            key_id: Some(cmk.clone()),
            bucket_key: true,
            ..KmsProtection::default()
        })
    };
    let objects: Vec<_> = (0..3)
        .map(|i| seal_object(keys, protection(), "b", &format!("k{i}"), b"x").expect("seal"))
        .collect();
    for (i, (_, envelope, stored)) in objects.iter().enumerate() {
        keys.open(&TLS, envelope, name("b", &format!("k{i}"), stored), None)
            .expect("open");
    }
    assert_eq!(
        memory.calls(),
        [
            "generate_data_key",
            "describe_key",
            "describe_key",
            "decrypt",
            "describe_key",
            "describe_key"
        ],
        "a miss is one request (which checks the key itself); a hit one state check"
    );
}

#[test]
fn kms_requests_carry_the_caller_and_the_object() {
    let f = fixture();
    let (_, envelope, stored) = seal_object(
        &f.keys,
        Protection::Kms(KmsProtection {
            key_id: Some(f.cmk.clone()),
            context: [("app".to_owned(), "x".to_owned())].into(),
            ..KmsProtection::default()
        }),
        "b",
        "k",
        b"x",
    )
    .expect("seal");
    assert_eq!(stored.len(), 1, "the client's context is stored");
    assert_eq!(stored[0].0, CONTEXT_ATTRIBUTE);
    assert!(
        f.keys
            .open(&TLS, &envelope, name("b", "k", &[]), None)
            .is_err(),
        "without its stored context the data key does not open"
    );
}

#[test]
fn multipart_completion_tags_the_layout() {
    let f = fixture();
    for (label, protection, customer_byte) in matrix(&f) {
        let upload = f
            .keys
            .seal_new(&TLS, protection, name("b", "big", &[]))
            .expect(label)
            .expect("encrypted");
        let upload_envelope = upload.upload_envelope().expect(label);
        let stored = upload.stored_attributes().to_vec();
        let object = name("b", "big", &stored);
        // Each part is sealed under the upload's key, as UploadPart does.
        let bodies = [plaintext(70_000), plaintext(10)];
        let mut blobs = Vec::new();
        for (number, body) in (1u32..).zip(&bodies) {
            let sealing = f
                .keys
                .open(&TLS, &upload_envelope, object, customer_byte.map(customer))
                .expect(label)
                .into_sealing();
            let mut sealer = sealing.sealer(number);
            let mut blob = Vec::new();
            sealer.push(body, &mut blob).expect("seal");
            sealer.finish(&mut blob);
            blobs.push(blob);
        }
        let layout = [(1, 70_000), (2, 10)];
        let completed = f
            .keys
            .complete_upload(
                &TLS,
                &upload_envelope,
                object,
                customer_byte.map(customer),
                &layout,
            )
            .expect(label);
        assert_eq!(Envelope::decode(&completed).expect("decodes").version(), 2);
        let opening = f
            .keys
            .open(&TLS, &completed, object, customer_byte.map(customer))
            .expect(label);
        let whole: Vec<u8> = bodies.concat();
        let blob_refs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
        assert_eq!(
            read(&opening, &blob_refs, 69_999..70_005),
            whole[69_999..70_005]
        );
    }
    // SSE-C without the key at completion (S3 allows it): version 1.
    let upload = f
        .keys
        .seal_new(&TLS, Protection::Customer(customer(3)), name("b", "c", &[]))
        .expect("seal")
        .expect("encrypted");
    let completed = f
        .keys
        .complete_upload(
            &TLS,
            &upload.upload_envelope().expect("envelope"),
            name("b", "c", &[]),
            None,
            &[(1, 5)],
        )
        .expect("complete");
    assert_eq!(Envelope::decode(&completed).expect("decodes").version(), 1);
}

#[test]
fn rewrap_moves_service_keys_to_the_current_version() {
    let f = fixture();
    let body = plaintext(1000);
    let (blob, envelope, _) = seal_object(
        &f.keys,
        Protection::Service(Algorithm::Sm4Gcm),
        "b",
        "k",
        &body,
    )
    .expect("seal");
    assert_eq!(f.keys.rewrap(&envelope, "b", "k").expect("rewrap"), None);
    let version = f.keys.rotate_service_key(&f.root).expect("rotate");
    assert_eq!(f.keys.service_key_versions().expect("versions").0, version);
    let rewrapped = f
        .keys
        .rewrap(&envelope, "b", "k")
        .expect("rewrap")
        .expect("an old version is rewrapped");
    let decoded = Envelope::decode(&rewrapped).expect("decodes");
    assert_eq!(decoded.key.key_version, version);
    let opening = f
        .keys
        .open(&TLS, &rewrapped, name("b", "k", &[]), None)
        .expect("the rewrapped envelope opens");
    assert_eq!(read(&opening, &[&blob], 0..1000), body, "same data key");
    assert_eq!(f.keys.rewrap(&rewrapped, "b", "k").expect("rewrap"), None);
    assert!(
        f.keys.rewrap(&envelope, "b", "other").is_err(),
        "a wrapped key under another name is damage, not rewrapped"
    );
    let (_, kms_envelope, _) = seal_object(
        &f.keys,
        Protection::Kms(KmsProtection {
            key_id: Some(f.cmk.clone()),
            ..KmsProtection::default()
        }),
        "b",
        "k",
        b"x",
    )
    .expect("seal");
    assert_eq!(
        f.keys.rewrap(&kms_envelope, "b", "k").expect("rewrap"),
        None
    );
}

#[test]
fn kms_rewrap_moves_data_keys_and_bucket_keys_to_the_newest_version() {
    let f = fixture();
    let body = plaintext(3000);
    let protection = |bucket_key: bool| {
        Protection::Kms(KmsProtection {
            key_id: Some(f.cmk.clone()),
            context: EncryptionContext::from([("team".to_owned(), "blue".to_owned())]),
            bucket_key,
            ..KmsProtection::default()
        })
    };
    let sealed: Vec<_> = [("direct", false), ("shared-1", true), ("shared-2", true)]
        .into_iter()
        .map(|(key, bucket_key)| {
            let object =
                seal_object(&f.keys, protection(bucket_key), "b", key, &body).expect("seal");
            (key, object)
        })
        .collect();
    let version = f.memory.rotate(&f.cmk).expect("rotate");
    let mut pass = KmsRewrap::new(&f.cmk, version);
    let mut bucket_key_blobs = Vec::new();
    for (key, (blob, envelope, stored)) in &sealed {
        let rewrapped = f
            .keys
            .rewrap_kms(&TLS, &mut pass, envelope, name("b", key, stored))
            .expect("rewrap")
            .expect("an older version is rewrapped");
        let decoded = Envelope::decode(&rewrapped).expect("decodes");
        assert_eq!(decoded.key.key_version, version);
        if decoded.key.kind == WrapKind::KmsBucketKey {
            let wrap = coffer_crypto::sealed::BucketKeyWrap::decode(&decoded.key.wrapped_key)
                .expect("bucket key wrap");
            bucket_key_blobs.push(wrap.bucket_key_blob.to_vec());
        }
        let opening = f
            .keys
            .open(&TLS, &rewrapped, name("b", key, stored), None)
            .expect("the rewrapped envelope opens");
        assert_eq!(read(&opening, &[blob], 0..3000), body, "same data key");
        let mut again = KmsRewrap::new(&f.cmk, version);
        assert_eq!(
            f.keys
                .rewrap_kms(&TLS, &mut again, &rewrapped, name("b", key, stored))
                .expect("rewrap"),
            None,
            "already current"
        );
        assert!(
            f.keys
                .rewrap_kms(&TLS, &mut pass, envelope, name("b", "elsewhere", stored))
                .is_err(),
            "a wrapped key under another name is damage, not rewrapped"
        );
    }
    assert_eq!(bucket_key_blobs.len(), 2);
    assert_eq!(
        bucket_key_blobs[0], bucket_key_blobs[1],
        "still one bucket key"
    );
}

#[test]
fn without_a_kms_sse_kms_is_refused_and_others_work() {
    let f = fixture_with(|_| None);
    let keys = &f.keys;
    assert!(matches!(
        keys.seal_new(
            &TLS,
            Protection::Kms(KmsProtection::default()),
            name("b", "k", &[])
        ),
        Err(KeyingError::NoKms)
    ));
    assert!(
        keys.seal_new(&TLS, Protection::None, name("b", "k", &[]))
            .expect("plaintext")
            .is_none()
    );
    seal_object(
        keys,
        Protection::Service(Algorithm::Aes256Gcm),
        "b",
        "k",
        b"x",
    )
    .expect("service keys need no KMS");
}

#[test]
fn damaged_envelopes_are_integrity_errors() {
    let f = fixture();
    let (_, envelope, _) = seal_object(
        &f.keys,
        Protection::Service(Algorithm::Aes256Gcm),
        "b",
        "k",
        b"x",
    )
    .expect("seal");
    for at in [0, 1, 20, envelope.len() - 1] {
        let mut edited = envelope.clone();
        edited[at] ^= 1;
        assert!(
            matches!(
                f.keys.open(&TLS, &edited, name("b", "k", &[]), None),
                Err(KeyingError::Integrity)
            ),
            "byte {at} edited"
        );
    }
}

#[test]
fn protection_names() {
    let kms = KmsProtection::default;
    assert!(matches!(
        Protection::named(" AES256 ", None, kms),
        Ok(Protection::Service(Algorithm::Aes256Gcm))
    ));
    assert!(matches!(
        Protection::named("SM4", None, kms),
        Ok(Protection::Service(Algorithm::Sm4Gcm))
    ));
    for name in ["KMS", "aws:kms", "aws:kms:dsse"] {
        assert!(matches!(
            Protection::named(name, Some("SM4"), kms),
            Ok(Protection::Kms(KmsProtection { sm4: true, .. }))
        ));
    }
    assert!(Protection::named("KMS", Some("AES128"), kms).is_err());
    assert!(Protection::named("aes256", None, kms).is_err());
    assert_eq!(
        decode_context("eyJhIjoiYiJ9").expect("valid"),
        [("a".to_owned(), "b".to_owned())].into()
    );
    // {"aws:s3:arn":"x"}: reserved for the object's own ARN.
    assert!(decode_context("eyJhd3M6czM6YXJuIjoieCJ9").is_none());
    assert!(decode_context("not base64!").is_none());
}

/// Two gateways sharing one service key ring: an object sealed under a
/// version the other gateway made after this one read the ring opens here
/// (a shared ring reloads on an unknown version), and
/// `refresh_service_keys` moves new objects to the current version.
#[test]
fn a_shared_service_key_ring_follows_other_gateways_rotations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, _) = RootKey::load_or_create(dir.path()).expect("root key");
    let root = Arc::new(root);
    let ring = || ServiceKeyring::load_or_create(dir.path(), &root).expect("service keys");
    let a = ObjectKeys::new(ring(), None, false);
    let b = ObjectKeys::new(ring(), None, false).with_shared_service_keys(Arc::clone(&root));
    let unshared = ObjectKeys::new(ring(), None, false);
    assert!(!b.refresh_service_keys(&root).expect("nothing changed"));

    let version = a.rotate_service_key(&root).expect("rotate on a");
    let body = plaintext(300);
    let (blob, envelope, _) = seal_object(
        &a,
        Protection::Service(Algorithm::Aes256Gcm),
        "b",
        "k",
        &body,
    )
    .expect("seal on a");
    assert_eq!(
        Envelope::decode(&envelope)
            .expect("decodes")
            .key
            .key_version,
        version
    );
    assert!(
        matches!(
            unshared.open(&TLS, &envelope, name("b", "k", &[]), None),
            Err(KeyingError::Integrity)
        ),
        "a ring that is not shared does not reload"
    );
    let opening = b
        .open(&TLS, &envelope, name("b", "k", &[]), None)
        .expect("b reloads its ring and opens");
    assert_eq!(read(&opening, &[&blob], 0..300), body);
    assert_eq!(b.service_key_versions().expect("versions").0, version);

    assert!(unshared.refresh_service_keys(&root).expect("refresh"));
    assert_eq!(
        unshared.service_key_versions().expect("versions").0,
        version
    );
    unshared
        .open(&TLS, &envelope, name("b", "k", &[]), None)
        .expect("opens once refreshed");
}
