//! End-to-end tests of the embedded KMS through the [`Kms`] trait.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPublicEncryptingKey,
    PublicEncryptingKey,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::kms::KeySpec;

struct Fixture {
    dir: tempfile::TempDir,
    root: Arc<RootKey>,
    now: Arc<Mutex<OffsetDateTime>>,
    kms: EmbeddedKms,
}

const REGION: &str = "us-east-1";

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, _) = RootKey::load_or_create(dir.path()).expect("root key");
    let root = Arc::new(root);
    let now = Arc::new(Mutex::new(datetime!(2025-01-01 00:00 UTC)));
    let kms = open_with(&dir, &root, &now);
    Fixture {
        dir,
        root,
        now,
        kms,
    }
}

fn open_with(
    dir: &tempfile::TempDir,
    root: &Arc<RootKey>,
    now: &Arc<Mutex<OffsetDateTime>>,
) -> EmbeddedKms {
    let clock_now = Arc::clone(now);
    EmbeddedKms::open(dir.path(), Arc::clone(root), REGION)
        .expect("open")
        .with_clock(Arc::new(move || *clock_now.lock().expect("clock lock")))
}

impl Fixture {
    fn advance(&self, by: Duration) {
        *self.now.lock().expect("clock lock") += by;
    }

    fn reopen(&self) -> EmbeddedKms {
        open_with(&self.dir, &self.root, &self.now)
    }

    fn keystore_path(&self) -> PathBuf {
        self.dir.path().join("kms").join(keystore::FILE_NAME)
    }

    fn keystore_text(&self) -> String {
        std::fs::read_to_string(self.keystore_path()).expect("keystore")
    }

    fn audit_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kms").join(audit::FILE_NAME))
            .expect("audit log")
    }

    fn create(&self, origin: Origin) -> KeyMetadata {
        self.kms
            .create_key(
                &ctx(),
                CreateKey {
                    description: "test key".into(),
                    key_spec: KeySpec::SymmetricDefault,
                    origin,
                    tags: vec![("team".into(), "storage".into())],
                    policy: None,
                },
            )
            .expect("create key")
    }

    /// The CMK material of `version`, read from inside the KMS.
    fn material(&self, key_id: &str, version: u32) -> Vec<u8> {
        let state = self.kms.lock().expect("state");
        state.keys[key_id].versions[&version].key.expose().to_vec()
    }

    fn encrypt(&self, key: &str, plaintext: &[u8]) -> Result<Ciphertext, KmsError> {
        self.kms.encrypt(&ctx(), key, plaintext, &context())
    }

    fn decrypt(&self, blob: &[u8]) -> Result<Plaintext, KmsError> {
        self.kms.decrypt(&ctx(), blob, &context(), None)
    }
}

fn ctx() -> CallContext {
    CallContext {
        principal: "alice".into(),
        resource: Some("bucket/object".into()),
    }
}

fn context() -> EncryptionContext {
    [("bucket".to_owned(), "photos".to_owned())].into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Asserts that no representation of `secret` appears in `text`.
fn assert_absent(text: &str, secret: &[u8], what: &str) {
    assert!(!text.contains(&hex(secret)), "{what}: hex found");
    assert!(
        !text.contains(&hex(secret).to_uppercase()),
        "{what}: HEX found"
    );
    assert!(
        !text.contains(&BASE64.encode(secret)),
        "{what}: base64 found"
    );
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    assert!(!text.contains(&url), "{what}: base64url found");
    assert!(
        !text.as_bytes().windows(secret.len()).any(|w| w == secret),
        "{what}: raw bytes found"
    );
}

fn wrap(params: &ImportParameters, algorithm: &'static OaepAlgorithm, material: &[u8]) -> Vec<u8> {
    let public = OaepPublicEncryptingKey::new(
        PublicEncryptingKey::from_der(&params.public_key_der).expect("SPKI parses"),
    )
    .expect("OAEP key");
    let mut out = vec![0u8; public.ciphertext_size()];
    public
        .encrypt(algorithm, material, &mut out, None)
        .expect("wrap")
        .to_vec()
}

#[test]
fn create_describe_list() {
    let f = fixture();
    let generated = f.create(Origin::Generated);
    assert_eq!(generated.state, KeyState::Enabled);
    assert_eq!(generated.current_version, 1);
    assert!(!generated.managed);
    assert_eq!(
        generated.arn,
        format!(
            "arn:aws:kms:us-east-1:000000000000:key/{}",
            generated.key_id
        )
    );
    let id = &generated.key_id;
    let groups: Vec<usize> = id.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12]);
    assert!(id.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()));

    let external = f.create(Origin::External);
    assert_eq!(external.state, KeyState::PendingImport);
    assert!(matches!(
        f.encrypt(&external.key_id, b"x"),
        Err(KmsError::InvalidState { .. })
    ));

    let described = f.kms.describe_key(&ctx(), id).expect("describe");
    assert_eq!(described.description, "test key");
    assert_eq!(described.created, datetime!(2025-01-01 00:00 UTC));
    let mut listed: Vec<String> = f
        .kms
        .list_keys(&ctx())
        .expect("list")
        .into_iter()
        .map(|m| m.key_id)
        .collect();
    listed.sort();
    let mut expected = vec![generated.key_id.clone(), external.key_id.clone()];
    expected.sort();
    assert_eq!(listed, expected);
    assert!(matches!(
        f.kms
            .describe_key(&ctx(), "00000000-0000-4000-8000-000000000000"),
        Err(KmsError::NotFound(_))
    ));

    f.kms
        .tag_resource(&ctx(), id, vec![("env".into(), "prod".into())])
        .expect("tag");
    assert_eq!(
        f.kms.list_resource_tags(&ctx(), id).expect("tags"),
        vec![
            ("env".to_owned(), "prod".to_owned()),
            ("team".to_owned(), "storage".to_owned())
        ]
    );
}

#[test]
fn aliases_resolve_in_all_four_forms() {
    let f = fixture();
    let key = f.create(Origin::Generated);
    let other = f.create(Origin::Generated);
    f.kms
        .create_alias(&ctx(), "alias/photos", &key.key_id)
        .expect("alias");
    let forms = [
        key.key_id.clone(),
        key.arn.clone(),
        "alias/photos".to_owned(),
        "arn:aws:kms:us-east-1:000000000000:alias/photos".to_owned(),
    ];
    assert_eq!(forms[3], f.kms.alias_arn("alias/photos"));
    for form in &forms {
        assert_eq!(
            f.kms.describe_key(&ctx(), form).expect(form).key_id,
            key.key_id
        );
        let sealed = f.encrypt(form, b"hello").expect("encrypt");
        assert_eq!(sealed.key_id, key.key_id);
        let opened = f
            .kms
            .decrypt(&ctx(), &sealed.ciphertext_blob, &context(), Some(form))
            .expect("decrypt with key given");
        assert_eq!(opened.plaintext.as_slice(), b"hello");
    }
    for wrong in [
        format!("arn:aws:kms:eu-west-1:000000000000:key/{}", key.key_id),
        format!("arn:aws:kms:us-east-1:111111111111:key/{}", key.key_id),
        "alias/nothing".to_owned(),
        "arn:aws:kms:us-east-1:000000000000:alias/nothing".to_owned(),
    ] {
        assert!(
            matches!(
                f.kms.describe_key(&ctx(), &wrong),
                Err(KmsError::NotFound(_))
            ),
            "{wrong}"
        );
    }

    // Rules: duplicates, reserved and malformed names.
    assert!(matches!(
        f.kms.create_alias(&ctx(), "alias/photos", &other.key_id),
        Err(KmsError::AlreadyExists(_))
    ));
    for bad in [
        "photos",
        "alias/",
        "alias/aws/s3",
        "alias/aws/mine",
        "alias/sp ace",
    ] {
        assert!(
            matches!(
                f.kms.create_alias(&ctx(), bad, &key.key_id),
                Err(KmsError::Validation(_))
            ),
            "{bad}"
        );
    }

    // Update retargets; list filters; delete removes.
    f.kms
        .create_alias(&ctx(), "alias/backup", &key.key_id)
        .expect("second alias");
    f.kms
        .update_alias(&ctx(), "alias/photos", &other.key_id)
        .expect("update");
    assert_eq!(
        f.kms
            .describe_key(&ctx(), "alias/photos")
            .expect("describe")
            .key_id,
        other.key_id
    );
    let for_key = f
        .kms
        .list_aliases(&ctx(), Some(&key.key_id))
        .expect("list by key");
    assert_eq!(for_key.len(), 1);
    assert_eq!(for_key[0].name, "alias/backup");
    assert_eq!(f.kms.list_aliases(&ctx(), None).expect("list").len(), 2);
    assert!(matches!(
        f.kms.update_alias(&ctx(), "alias/missing", &key.key_id),
        Err(KmsError::NotFound(_))
    ));
    f.kms
        .delete_alias(&ctx(), "alias/photos")
        .expect("delete alias");
    assert!(matches!(
        f.kms.describe_key(&ctx(), "alias/photos"),
        Err(KmsError::NotFound(_))
    ));
    assert!(matches!(
        f.kms.delete_alias(&ctx(), "alias/photos"),
        Err(KmsError::NotFound(_))
    ));
}

#[test]
fn disabled_keys_neither_encrypt_nor_decrypt_until_enabled() {
    let f = fixture();
    let key = f.create(Origin::Generated);
    let sealed = f.encrypt(&key.key_id, b"payload").expect("encrypt");
    f.kms.disable_key(&ctx(), &key.key_id).expect("disable");
    assert_eq!(
        f.kms.describe_key(&ctx(), &key.key_id).expect("d").state,
        KeyState::Disabled
    );
    assert!(matches!(
        f.encrypt(&key.key_id, b"payload"),
        Err(KmsError::Disabled(_))
    ));
    assert!(matches!(
        f.decrypt(&sealed.ciphertext_blob),
        Err(KmsError::Disabled(_))
    ));
    assert!(matches!(
        f.kms.generate_data_key(&ctx(), &key.key_id, &context()),
        Err(KmsError::Disabled(_))
    ));
    f.kms.enable_key(&ctx(), &key.key_id).expect("enable");
    assert_eq!(
        f.decrypt(&sealed.ciphertext_blob)
            .expect("decrypt")
            .plaintext
            .as_slice(),
        b"payload"
    );
    f.encrypt(&key.key_id, b"payload").expect("encrypt again");
}

#[test]
fn deletion_is_bounded_cancellable_and_final() {
    let f = fixture();
    let key = f.create(Origin::Generated);
    let id = key.key_id.clone();
    f.kms
        .create_alias(&ctx(), "alias/doomed", &id)
        .expect("alias");
    let sealed = f.encrypt(&id, b"payload").expect("encrypt");
    for days in [0, 6, 31, 365] {
        assert!(matches!(
            f.kms.schedule_key_deletion(&ctx(), &id, days),
            Err(KmsError::Validation(_))
        ));
    }

    let scheduled = f
        .kms
        .schedule_key_deletion(&ctx(), &id, 7)
        .expect("schedule");
    assert_eq!(scheduled.state, KeyState::PendingDeletion);
    assert_eq!(
        scheduled.deletion_date,
        Some(datetime!(2025-01-08 00:00 UTC))
    );
    assert!(matches!(
        f.decrypt(&sealed.ciphertext_blob),
        Err(KmsError::InvalidState { .. })
    ));
    assert!(matches!(
        f.kms.enable_key(&ctx(), &id),
        Err(KmsError::InvalidState { .. })
    ));
    let cancelled = f.kms.cancel_key_deletion(&ctx(), &id).expect("cancel");
    assert_eq!(cancelled.state, KeyState::Disabled);
    assert_eq!(cancelled.deletion_date, None);
    assert!(matches!(
        f.kms.cancel_key_deletion(&ctx(), &id),
        Err(KmsError::InvalidState { .. })
    ));
    f.kms.enable_key(&ctx(), &id).expect("enable");

    let material = f.material(&id, 1);
    f.kms
        .schedule_key_deletion(&ctx(), &id, 30)
        .expect("schedule");
    f.advance(Duration::days(29));
    assert_eq!(
        f.kms.describe_key(&ctx(), &id).expect("still there").state,
        KeyState::PendingDeletion
    );
    assert!(f.keystore_text().contains(&id));
    f.advance(Duration::days(1));
    assert!(matches!(
        f.kms.describe_key(&ctx(), &id),
        Err(KmsError::NotFound(_))
    ));
    assert!(matches!(
        f.decrypt(&sealed.ciphertext_blob),
        Err(KmsError::NotFound(_))
    ));
    assert!(matches!(
        f.kms.describe_key(&ctx(), "alias/doomed"),
        Err(KmsError::NotFound(_))
    ));
    let text = f.keystore_text();
    assert!(!text.contains(&id), "the deleted key is gone from disk");
    assert!(!text.contains("alias/doomed"));
    assert_absent(&text, &material, "deleted material");
    assert!(matches!(
        f.reopen().describe_key(&ctx(), &id),
        Err(KmsError::NotFound(_))
    ));
}

#[test]
fn rotation_on_demand_and_automatic_keep_old_versions_decrypting() {
    let f = fixture();
    let key = f.create(Origin::Generated);
    let id = key.key_id.clone();
    let v1 = f.encrypt(&id, b"first").expect("encrypt v1");
    assert_eq!(v1.key_version, 1);

    assert_eq!(f.kms.rotate_key_on_demand(&ctx(), &id).expect("rotate"), id);
    let v2 = f.encrypt(&id, b"second").expect("encrypt v2");
    assert_eq!(v2.key_version, 2);
    assert_ne!(f.material(&id, 1), f.material(&id, 2));

    for period in [89, 2561] {
        assert!(matches!(
            f.kms.enable_key_rotation(&ctx(), &id, Some(period)),
            Err(KmsError::Validation(_))
        ));
    }
    f.kms
        .enable_key_rotation(&ctx(), &id, Some(90))
        .expect("enable rotation");
    let status = f.kms.get_key_rotation_status(&ctx(), &id).expect("status");
    assert!(status.enabled);
    assert_eq!(status.period_days, 90);
    assert_eq!(status.next_rotation, Some(datetime!(2025-04-01 00:00 UTC)));
    f.advance(Duration::days(89));
    assert_eq!(f.encrypt(&id, b"x").expect("encrypt").key_version, 2);
    f.advance(Duration::days(1));
    let v3 = f.encrypt(&id, b"third").expect("encrypt v3");
    assert_eq!(v3.key_version, 3);
    assert_eq!(
        f.kms.describe_key(&ctx(), &id).expect("d").current_version,
        3
    );

    let rotations = f.kms.list_key_rotations(&ctx(), &id).expect("rotations");
    let summary: Vec<(u32, &str)> = rotations
        .iter()
        .map(|r| (r.version, r.rotation_type))
        .collect();
    assert_eq!(summary, [(2, "ON_DEMAND"), (3, "AUTOMATIC")]);
    assert_eq!(rotations[1].rotated, datetime!(2025-04-01 00:00 UTC));

    for (sealed, plaintext) in [
        (&v1, b"first".as_slice()),
        (&v2, b"second"),
        (&v3, b"third"),
    ] {
        assert_eq!(
            f.decrypt(&sealed.ciphertext_blob)
                .expect("decrypt")
                .plaintext
                .as_slice(),
            plaintext
        );
    }
    // Disabled keys cannot be rotated.
    f.kms.disable_key(&ctx(), &id).expect("disable");
    assert!(matches!(
        f.kms.rotate_key_on_demand(&ctx(), &id),
        Err(KmsError::InvalidState { .. })
    ));
    f.kms.enable_key(&ctx(), &id).expect("enable");
    f.kms
        .disable_key_rotation(&ctx(), &id)
        .expect("disable rotation");
    assert!(
        !f.kms
            .get_key_rotation_status(&ctx(), &id)
            .expect("status")
            .enabled
    );
}

fn byok_round_trip(algorithm: WrappingAlgorithm, oaep: &'static OaepAlgorithm) {
    let f = fixture();
    let key = f.create(Origin::External);
    let id = key.key_id.clone();
    let generated = f.create(Origin::Generated);
    assert!(matches!(
        f.kms.get_parameters_for_import(
            &ctx(),
            &generated.key_id,
            algorithm,
            WrappingKeySpec::Rsa2048
        ),
        Err(KmsError::Validation(_))
    ));
    assert!(matches!(
        f.kms.rotate_key_on_demand(&ctx(), &id),
        Err(KmsError::Validation(_))
    ));

    let material = [0x5au8; 32];
    let params = f
        .kms
        .get_parameters_for_import(&ctx(), &id, algorithm, WrappingKeySpec::Rsa2048)
        .expect("parameters");
    assert_eq!(params.key_id, id);
    assert_eq!(params.import_token.len(), 32);
    assert_eq!(params.parameters_valid_to, datetime!(2025-01-02 00:00 UTC));
    let valid_to = datetime!(2025-02-01 00:00 UTC);
    f.kms
        .import_key_material(
            &ctx(),
            &id,
            &params.import_token,
            &wrap(&params, oaep, &material),
            Some(valid_to),
        )
        .expect("import");
    let described = f.kms.describe_key(&ctx(), &id).expect("describe");
    assert_eq!(described.state, KeyState::Enabled);
    assert_eq!(described.valid_to, Some(valid_to));
    assert_eq!(f.material(&id, 1), material);
    let sealed = f.encrypt(&id, b"byok data").expect("encrypt");
    assert_eq!(
        f.decrypt(&sealed.ciphertext_blob)
            .expect("decrypt")
            .plaintext
            .as_slice(),
        b"byok data"
    );

    // A token is single-use.
    assert!(matches!(
        f.kms.import_key_material(
            &ctx(),
            &id,
            &params.import_token,
            &wrap(&params, oaep, &material),
            None
        ),
        Err(KmsError::InvalidImportToken)
    ));

    // ValidTo passes: material gone, PendingImport, decrypt fails.
    f.advance(Duration::days(31));
    assert_eq!(
        f.kms.describe_key(&ctx(), &id).expect("describe").state,
        KeyState::PendingImport
    );
    assert!(matches!(
        f.decrypt(&sealed.ciphertext_blob),
        Err(KmsError::InvalidState { .. })
    ));
    let on_disk = f.keystore_text();
    assert_absent(&on_disk, &material, "expired imported material");

    // Different material is refused (and uses the token up).
    let params = f
        .kms
        .get_parameters_for_import(&ctx(), &id, algorithm, WrappingKeySpec::Rsa2048)
        .expect("parameters");
    assert!(matches!(
        f.kms.import_key_material(
            &ctx(),
            &id,
            &params.import_token,
            &wrap(&params, oaep, &[0x33u8; 32]),
            None
        ),
        Err(KmsError::IncorrectKeyMaterial)
    ));
    assert!(matches!(
        f.kms.import_key_material(
            &ctx(),
            &id,
            &params.import_token,
            &wrap(&params, oaep, &material),
            None
        ),
        Err(KmsError::InvalidImportToken)
    ));
    // Wrong length is refused.
    let params = f
        .kms
        .get_parameters_for_import(&ctx(), &id, algorithm, WrappingKeySpec::Rsa2048)
        .expect("parameters");
    assert!(matches!(
        f.kms.import_key_material(
            &ctx(),
            &id,
            &params.import_token,
            &wrap(&params, oaep, &[0x5au8; 16]),
            None
        ),
        Err(KmsError::IncorrectKeyMaterial)
    ));

    // An expired token is refused as expired.
    let params = f
        .kms
        .get_parameters_for_import(&ctx(), &id, algorithm, WrappingKeySpec::Rsa2048)
        .expect("parameters");
    f.advance(Duration::hours(25));
    assert!(matches!(
        f.kms.import_key_material(
            &ctx(),
            &id,
            &params.import_token,
            &wrap(&params, oaep, &material),
            None
        ),
        Err(KmsError::ExpiredImportToken)
    ));
    // A random token is invalid.
    assert!(matches!(
        f.kms
            .import_key_material(&ctx(), &id, &[0u8; 32], &[0u8; 256], None),
        Err(KmsError::InvalidImportToken)
    ));

    // Re-importing the same material brings old ciphertexts back, across a
    // restart (the token and its sealed RSA key persist).
    let params = f
        .kms
        .get_parameters_for_import(&ctx(), &id, algorithm, WrappingKeySpec::Rsa2048)
        .expect("parameters");
    let kms = f.reopen();
    kms.import_key_material(
        &ctx(),
        &id,
        &params.import_token,
        &wrap(&params, oaep, &material),
        None,
    )
    .expect("re-import");
    assert_eq!(
        kms.decrypt(&ctx(), &sealed.ciphertext_blob, &context(), None)
            .expect("decrypt again")
            .plaintext
            .as_slice(),
        b"byok data"
    );
    assert_eq!(
        kms.describe_key(&ctx(), &id).expect("describe").valid_to,
        None
    );

    // DeleteImportedKeyMaterial: PendingImport at once.
    kms.delete_imported_key_material(&ctx(), &id)
        .expect("delete material");
    assert_eq!(
        kms.describe_key(&ctx(), &id).expect("describe").state,
        KeyState::PendingImport
    );
    assert!(matches!(
        kms.decrypt(&ctx(), &sealed.ciphertext_blob, &context(), None),
        Err(KmsError::InvalidState { .. })
    ));
    assert!(matches!(
        kms.delete_imported_key_material(&ctx(), &generated.key_id),
        Err(KmsError::Validation(_))
    ));
    assert_absent(&f.keystore_text(), &material, "imported material");
    assert_absent(&f.audit_text(), &material, "imported material");
}

#[test]
fn byok_end_to_end_rsaes_oaep_sha256() {
    byok_round_trip(WrappingAlgorithm::RsaesOaepSha256, &OAEP_SHA256_MGF1SHA256);
}

#[test]
fn byok_end_to_end_rsaes_oaep_sha1() {
    byok_round_trip(WrappingAlgorithm::RsaesOaepSha1, &OAEP_SHA1_MGF1SHA1);
}

#[test]
fn byok_wrong_wrapping_algorithm_is_incorrect_material() {
    let f = fixture();
    let id = f.create(Origin::External).key_id;
    let params = f
        .kms
        .get_parameters_for_import(
            &ctx(),
            &id,
            WrappingAlgorithm::RsaesOaepSha256,
            WrappingKeySpec::Rsa2048,
        )
        .expect("parameters");
    assert!(matches!(
        f.kms.import_key_material(
            &ctx(),
            &id,
            &params.import_token,
            &wrap(&params, &OAEP_SHA1_MGF1SHA1, &[1u8; 32]),
            None
        ),
        Err(KmsError::IncorrectKeyMaterial)
    ));
}

#[test]
fn context_and_key_binding() {
    let f = fixture();
    let key = f.create(Origin::Generated);
    let other = f.create(Origin::Generated);
    let sealed = f.encrypt(&key.key_id, b"bound").expect("encrypt");
    let mut wrong = context();
    wrong.insert("bucket".into(), "videos".into());
    assert!(matches!(
        f.kms.decrypt(&ctx(), &sealed.ciphertext_blob, &wrong, None),
        Err(KmsError::InvalidCiphertext)
    ));
    assert!(matches!(
        f.kms.decrypt(
            &ctx(),
            &sealed.ciphertext_blob,
            &EncryptionContext::new(),
            None
        ),
        Err(KmsError::InvalidCiphertext)
    ));
    assert!(matches!(
        f.kms.decrypt(
            &ctx(),
            &sealed.ciphertext_blob,
            &context(),
            Some(&other.key_id)
        ),
        Err(KmsError::IncorrectKey)
    ));
    assert!(matches!(
        f.decrypt(b"not a blob"),
        Err(KmsError::InvalidCiphertext)
    ));

    // Plaintext limits.
    assert!(matches!(
        f.encrypt(&key.key_id, &[0u8; MAX_PLAINTEXT_LEN + 1]),
        Err(KmsError::Validation(_))
    ));
    assert!(matches!(
        f.encrypt(&key.key_id, b""),
        Err(KmsError::Validation(_))
    ));
    f.encrypt(&key.key_id, &[0u8; MAX_PLAINTEXT_LEN])
        .expect("4096 bytes");

    // ReEncrypt moves a blob to another key and context.
    let moved = f
        .kms
        .re_encrypt(
            &ctx(),
            &sealed.ciphertext_blob,
            &context(),
            &other.key_id,
            &EncryptionContext::new(),
        )
        .expect("re-encrypt");
    assert_eq!(moved.key_id, other.key_id);
    assert_eq!(
        f.kms
            .decrypt(
                &ctx(),
                &moved.ciphertext_blob,
                &EncryptionContext::new(),
                None
            )
            .expect("decrypt moved")
            .plaintext
            .as_slice(),
        b"bound"
    );
}

#[test]
fn every_single_byte_flip_of_a_blob_is_refused() {
    let f = fixture();
    let key = f.create(Origin::Generated);
    let data_key = f
        .kms
        .generate_data_key(&ctx(), &key.key_id, &context())
        .expect("data key");
    let blob = &data_key.ciphertext_blob;
    assert_eq!(
        f.decrypt(blob).expect("decrypt").plaintext.as_slice(),
        data_key.plaintext.expose()
    );
    for i in 0..blob.len() {
        for bit in [0x01u8, 0x80] {
            let mut tampered = blob.clone();
            tampered[i] ^= bit;
            assert!(f.decrypt(&tampered).is_err(), "byte {i} ^ {bit:#x}");
        }
    }
    for len in 0..blob.len() {
        assert!(f.decrypt(&blob[..len]).is_err(), "truncated to {len}");
    }
    let mut extended = blob.clone();
    extended.push(0);
    assert!(f.decrypt(&extended).is_err());
}

#[test]
fn reopening_from_disk_keeps_everything() {
    let f = fixture();
    let key = f.create(Origin::Generated);
    let id = key.key_id.clone();
    f.kms
        .create_alias(&ctx(), "alias/keep", &id)
        .expect("alias");
    let v1 = f.encrypt(&id, b"v1").expect("encrypt");
    f.kms.rotate_key_on_demand(&ctx(), &id).expect("rotate");
    f.kms
        .enable_key_rotation(&ctx(), &id, Some(180))
        .expect("rotation");
    let disabled = f.create(Origin::Generated).key_id;
    f.kms.disable_key(&ctx(), &disabled).expect("disable");
    let doomed = f.create(Origin::Generated).key_id;
    f.kms
        .schedule_key_deletion(&ctx(), &doomed, 10)
        .expect("schedule");
    let sse = f.kms.default_sse_key(&ctx()).expect("sse key");
    let (m1, m2) = (f.material(&id, 1), f.material(&id, 2));

    let kms = f.reopen();
    let again = kms.describe_key(&ctx(), "alias/keep").expect("alias kept");
    assert_eq!(again.key_id, id);
    assert_eq!(again.current_version, 2);
    assert_eq!(again.created, key.created);
    let status = kms.get_key_rotation_status(&ctx(), &id).expect("status");
    assert!(status.enabled);
    assert_eq!(status.period_days, 180);
    assert_eq!(
        kms.decrypt(&ctx(), &v1.ciphertext_blob, &context(), None)
            .expect("old blob")
            .plaintext
            .as_slice(),
        b"v1"
    );
    assert_eq!(
        kms.describe_key(&ctx(), &disabled).expect("d").state,
        KeyState::Disabled
    );
    let doomed_meta = kms.describe_key(&ctx(), &doomed).expect("d");
    assert_eq!(doomed_meta.state, KeyState::PendingDeletion);
    assert_eq!(
        doomed_meta.deletion_date,
        Some(datetime!(2025-01-11 00:00 UTC))
    );
    assert_eq!(kms.default_sse_key(&ctx()).expect("sse").key_id, sse.key_id);
    assert_eq!(
        kms.list_resource_tags(&ctx(), &id).expect("tags"),
        vec![("team".to_owned(), "storage".to_owned())]
    );
    let state = kms.lock().expect("state");
    assert_eq!(state.keys[&id].versions[&1].key.expose().as_slice(), m1);
    assert_eq!(state.keys[&id].versions[&2].key.expose().as_slice(), m2);
}

#[test]
fn another_root_key_is_refused_and_nothing_is_replaced() {
    let f = fixture();
    f.create(Origin::Generated);
    let before = std::fs::read(f.keystore_path()).expect("read");
    let other_dir = tempfile::tempdir().expect("tempdir");
    let (other_root, _) = RootKey::load_or_create(other_dir.path()).expect("other root");
    let result = EmbeddedKms::open(f.dir.path(), Arc::new(other_root), REGION);
    assert!(matches!(result, Err(KmsError::Internal(_))));
    assert_eq!(std::fs::read(f.keystore_path()).expect("read"), before);
}

#[test]
fn an_edited_keystore_is_refused() {
    let f = fixture();
    let id = f.create(Origin::Generated).key_id;
    f.kms.disable_key(&ctx(), &id).expect("disable");
    let text = f.keystore_text();
    let edited = text.replace("\"Disabled\"", "\"Enabled\"");
    assert_ne!(edited, text);
    std::fs::write(f.keystore_path(), &edited).expect("write");
    assert!(matches!(
        EmbeddedKms::open(f.dir.path(), Arc::clone(&f.root), REGION),
        Err(KmsError::Internal(_))
    ));
    std::fs::write(f.keystore_path(), b"{not json").expect("write");
    assert!(matches!(
        EmbeddedKms::open(f.dir.path(), Arc::clone(&f.root), REGION),
        Err(KmsError::Internal(_))
    ));
}

#[test]
fn no_key_material_in_keystore_or_audit_log() {
    let f = fixture();
    let key = f.create(Origin::Generated);
    let id = key.key_id.clone();
    f.kms.rotate_key_on_demand(&ctx(), &id).expect("rotate");
    let data_key = f
        .kms
        .generate_data_key(&ctx(), &id, &context())
        .expect("data key");
    let secret_plaintext = b"a very secret plaintext value";
    let sealed = f.encrypt(&id, secret_plaintext).expect("encrypt");
    f.decrypt(&data_key.ciphertext_blob).expect("decrypt");
    let sse = f.kms.default_sse_key(&ctx()).expect("sse");
    f.kms
        .generate_data_key(&ctx(), &sse.key_id, &context())
        .expect("sse data key");

    let mut secrets: Vec<(String, Vec<u8>)> = vec![
        ("data key".into(), data_key.plaintext.expose().to_vec()),
        ("cmk v1".into(), f.material(&id, 1)),
        ("cmk v2".into(), f.material(&id, 2)),
        ("sse cmk".into(), f.material(&sse.key_id, 1)),
        ("plaintext".into(), secret_plaintext.to_vec()),
    ];
    // Ciphertexts do not belong in the audit log either.
    let audit_only = [
        ("data key blob", data_key.ciphertext_blob.clone()),
        ("blob", sealed.ciphertext_blob.clone()),
    ];
    let keystore = f.keystore_text();
    let audit = f.audit_text();
    for (what, secret) in &secrets {
        assert_absent(&keystore, secret, what);
        assert_absent(&audit, secret, what);
    }
    for (what, blob) in &audit_only {
        assert_absent(&audit, blob, what);
    }
    secrets.clear();

    // The audit log has one JSON line per call, with names and outcomes.
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let ops: Vec<&str> = lines
        .iter()
        .map(|l| l["operation"].as_str().expect("operation"))
        .collect();
    assert_eq!(
        ops,
        [
            "CreateKey",
            "RotateKeyOnDemand",
            "GenerateDataKey",
            "Encrypt",
            "Decrypt",
            "DescribeKey",
            "GenerateDataKey"
        ]
    );
    let gdk = &lines[2];
    assert_eq!(gdk["principal"], "alice");
    assert_eq!(gdk["resource"], "bucket/object");
    assert_eq!(gdk["key_id"], id.as_str());
    assert_eq!(gdk["key_version"], 2);
    assert_eq!(gdk["encryption_context"]["bucket"], "photos");
    assert_eq!(gdk["outcome"], "ok");
    assert_eq!(gdk["time"], "2025-01-01T00:00:00Z");

    let _ = f.decrypt(b"garbage");
    let last = f.audit_text();
    let last: serde_json::Value =
        serde_json::from_str(last.lines().last().expect("a line")).expect("JSON");
    assert_eq!(last["outcome"], "InvalidCiphertextException");
}

#[test]
fn default_sse_key_is_managed_and_protected() {
    let f = fixture();
    let sse = f.kms.default_sse_key(&ctx()).expect("sse key");
    assert!(sse.managed);
    assert_eq!(sse.state, KeyState::Enabled);
    assert_eq!(
        f.kms.default_sse_key(&ctx()).expect("again").key_id,
        sse.key_id
    );
    assert_eq!(
        f.kms
            .describe_key(&ctx(), DEFAULT_SSE_ALIAS)
            .expect("alias")
            .key_id,
        sse.key_id
    );
    assert!(matches!(
        f.kms.schedule_key_deletion(&ctx(), &sse.key_id, 30),
        Err(KmsError::Validation(_))
    ));
    assert!(matches!(
        f.kms.disable_key(&ctx(), &sse.key_id),
        Err(KmsError::Validation(_))
    ));
    assert!(matches!(
        f.kms.delete_alias(&ctx(), DEFAULT_SSE_ALIAS),
        Err(KmsError::Validation(_))
    ));
    assert!(matches!(
        f.kms.create_alias(&ctx(), "alias/mine", &sse.key_id),
        Err(KmsError::Validation(_))
    ));
    // Rotated yearly by the service.
    let status = f
        .kms
        .get_key_rotation_status(&ctx(), &sse.key_id)
        .expect("status");
    assert!(status.enabled);
    assert_eq!(status.period_days, 365);
}

#[cfg(unix)]
#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    f.create(Origin::Generated);
    let mode = |p: PathBuf| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(f.dir.path().join("kms")), 0o700);
    assert_eq!(mode(f.keystore_path()), 0o600);
    assert_eq!(mode(f.dir.path().join("kms").join(audit::FILE_NAME)), 0o600);
}

#[test]
fn a_key_from_another_kms_is_not_found() {
    let f = fixture();
    let g = fixture();
    let key = g.create(Origin::Generated);
    let sealed = g.encrypt(&key.key_id, b"elsewhere").expect("encrypt");
    assert!(matches!(
        f.decrypt(&sealed.ciphertext_blob),
        Err(KmsError::NotFound(_))
    ));
}

#[test]
fn usable_now_follows_the_key_state_without_an_audit_line() {
    let f = fixture();
    let key = f.create(Origin::Generated);
    let audit_before = f.audit_text();
    let arn = f.kms.usable_now(&key.key_id).expect("known from memory");
    assert_eq!(arn.expect("enabled"), key.arn);
    assert_eq!(f.audit_text(), audit_before, "reuse is not a KMS request");
    f.kms.disable_key(&ctx(), &key.key_id).expect("disable");
    assert!(matches!(
        f.kms.usable_now(&key.key_id),
        Some(Err(KmsError::Disabled(_)))
    ));
    f.kms.enable_key(&ctx(), &key.key_id).expect("enable");
    assert!(matches!(f.kms.usable_now(&key.arn), Some(Ok(_))));
    assert!(matches!(
        f.kms.usable_now("no-such-key"),
        Some(Err(KmsError::NotFound(_)))
    ));
    // A deletion that falls due is left to a full call, which applies it.
    f.kms
        .schedule_key_deletion(&ctx(), &key.key_id, 7)
        .expect("schedule");
    assert!(matches!(
        f.kms.usable_now(&key.key_id),
        Some(Err(KmsError::InvalidState { .. }))
    ));
    f.advance(Duration::days(8));
    assert!(f.kms.usable_now(&key.key_id).is_none());
}

#[test]
fn key_policy_now_is_the_key_policy_from_memory_until_a_timer_is_due() {
    let f = fixture();
    let key = f.create(Origin::Generated);
    let audit_before = f.audit_text();
    let now = f.kms.key_policy_now(&key.arn).expect("known from memory");
    assert_eq!(
        now.expect("found"),
        f.kms.key_policy(&key.key_id).expect("policy")
    );
    assert!(matches!(
        f.kms.key_policy_now("no-such-key"),
        Some(Err(KmsError::NotFound(_)))
    ));
    assert_eq!(f.audit_text(), audit_before, "not a KMS request");
    let document = r#"{"Version":"2012-10-17","Statement":[]}"#;
    f.kms
        .put_key_policy(&ctx(), &key.key_id, document)
        .expect("put policy");
    let set = f
        .kms
        .key_policy_now(&key.key_id)
        .expect("known")
        .expect("no error")
        .expect("a policy");
    assert!(
        set.explicit && set.document == document,
        "a policy set is seen at once"
    );
    f.kms
        .schedule_key_deletion(&ctx(), &key.key_id, 7)
        .expect("schedule");
    f.advance(Duration::days(8));
    assert!(
        f.kms.key_policy_now(&key.key_id).is_none(),
        "a due deletion is left to a full call"
    );
}

/// The embedded KMS through the contract every data plane keeps.
struct Embedded(Fixture);

impl crate::contract::Harness for Embedded {
    fn kms(&self) -> &dyn KmsDataPlane {
        &self.0.kms
    }
    fn create_key(&self) -> String {
        self.0
            .kms
            .create_key(
                &ctx(),
                CreateKey {
                    description: "contract".into(),
                    key_spec: KeySpec::SymmetricDefault,
                    origin: Origin::Generated,
                    tags: Vec::new(),
                    policy: None,
                },
            )
            .expect("create")
            .key_id
    }
    fn set_enabled(&self, key: &str, enabled: bool) {
        let result = if enabled {
            self.0.kms.enable_key(&ctx(), key)
        } else {
            self.0.kms.disable_key(&ctx(), key)
        };
        result.expect("set state");
    }
    fn rotate(&self, key: &str) {
        self.0
            .kms
            .rotate_key_on_demand(&ctx(), key)
            .expect("rotate");
    }
}

#[test]
fn passes_the_kms_contract() {
    crate::contract::run(&Embedded(fixture()));
}

/// An embedded KMS over an in-memory keystore, sharing `store`.
fn over_memory(store: &Arc<crate::memory_keystore::MemoryKeyStore>) -> EmbeddedKms {
    let (root, _) =
        RootKey::load_or_create(tempfile::tempdir().expect("tempdir").path()).expect("root key");
    EmbeddedKms::with_keystore(store.clone(), Arc::new(root), REGION).expect("open")
}

struct OverMemory(EmbeddedKms);

impl crate::contract::Harness for OverMemory {
    fn kms(&self) -> &dyn KmsDataPlane {
        &self.0
    }
    fn create_key(&self) -> String {
        self.0
            .create_key(
                &ctx(),
                CreateKey {
                    description: "contract".into(),
                    key_spec: KeySpec::SymmetricDefault,
                    origin: Origin::Generated,
                    tags: Vec::new(),
                    policy: None,
                },
            )
            .expect("create")
            .key_id
    }
    fn set_enabled(&self, key: &str, enabled: bool) {
        let result = if enabled {
            self.0.enable_key(&ctx(), key)
        } else {
            self.0.disable_key(&ctx(), key)
        };
        result.expect("set state");
    }
    fn rotate(&self, key: &str) {
        self.0.rotate_key_on_demand(&ctx(), key).expect("rotate");
    }
}

#[test]
fn passes_the_kms_contract_over_an_in_memory_keystore() {
    let store = Arc::new(crate::memory_keystore::MemoryKeyStore::new());
    crate::contract::run(&OverMemory(over_memory(&store)));
    let lines = store.audit_lines();
    assert!(!lines.is_empty(), "audit lines go to the keystore");
    for line in &lines {
        let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        assert!(value["operation"].is_string() && value["outcome"].is_string());
    }
}

#[test]
fn a_lost_swap_fails_the_call_reloads_and_never_overwrites() {
    let store = Arc::new(crate::memory_keystore::MemoryKeyStore::new());
    let (root, _) =
        RootKey::load_or_create(tempfile::tempdir().expect("tempdir").path()).expect("root key");
    let root = Arc::new(root);
    let a = EmbeddedKms::with_keystore(store.clone(), Arc::clone(&root), REGION).expect("a");
    let request = || CreateKey {
        description: "shared".into(),
        key_spec: KeySpec::SymmetricDefault,
        origin: Origin::Generated,
        tags: Vec::new(),
        policy: None,
    };
    let id = a.create_key(&ctx(), request()).expect("create").key_id;
    // A second gateway reads the key, then the first disables it.
    let b = EmbeddedKms::with_keystore(store.clone(), Arc::clone(&root), REGION).expect("b");
    a.disable_key(&ctx(), &id).expect("disable on a");
    // b's cache still has it enabled: its change loses, and says so.
    let lost = b.tag_resource(&ctx(), &id, vec![("k".into(), "v".into())]);
    assert!(
        matches!(&lost, Err(KmsError::Internal(m)) if m.contains("another writer")),
        "{lost:?}"
    );
    // b reloaded: it sees the disabled state, and a retry applies on top of it.
    assert_eq!(
        b.describe_key(&ctx(), &id).expect("describe").state,
        KeyState::Disabled
    );
    b.tag_resource(&ctx(), &id, vec![("k".into(), "v".into())])
        .expect("retry");
    let c = EmbeddedKms::with_keystore(store.clone(), Arc::clone(&root), REGION).expect("c");
    assert_eq!(
        c.describe_key(&ctx(), &id).expect("describe").state,
        KeyState::Disabled,
        "the disable was not overwritten"
    );
    assert_eq!(
        c.list_resource_tags(&ctx(), &id).expect("tags"),
        vec![("k".to_owned(), "v".to_owned())]
    );
    // Aliases are records of their own: two gateways creating one alias,
    // only the first wins.
    let other = b.create_key(&ctx(), request()).expect("create").key_id;
    a.create_alias(&ctx(), "alias/one", &id)
        .expect("alias on a");
    assert!(b.create_alias(&ctx(), "alias/one", &other).is_err());
    // Reads come from each KMS's copy: a KMS opened now sees the keystore.
    let d = EmbeddedKms::with_keystore(store, root, REGION).expect("d");
    let aliases = d.list_aliases(&ctx(), None).expect("aliases");
    assert_eq!(aliases.len(), 1);
    assert_eq!(
        (aliases[0].name.as_str(), aliases[0].target_key_id.as_str()),
        ("alias/one", id.as_str()),
        "the first alias was not overwritten"
    );
}

/// The fixture's data directory, copied: root key and `kms/keystore.json`
/// as the code before the `KeyStore` trait wrote them.
fn previous_fixture() -> (tempfile::TempDir, Arc<RootKey>, Vec<String>) {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/keystore-v1");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("kms")).expect("kms dir");
    for name in ["root.key", "kms/keystore.json"] {
        std::fs::copy(src.join(name), dir.path().join(name)).expect("copy fixture");
    }
    let (root, _) = RootKey::load_or_create(dir.path()).expect("root key");
    let ids = std::fs::read_to_string(src.join("ids"))
        .expect("ids")
        .lines()
        .map(str::to_owned)
        .collect();
    (dir, Arc::new(root), ids)
}

#[test]
fn a_keystore_written_by_the_previous_code_loads() {
    let (dir, root, ids) = previous_fixture();
    let now = Arc::new(Mutex::new(datetime!(2025-01-01 00:00 UTC)));
    let kms = open_with(&dir, &root, &now);
    let (rotated, doomed, external) = (&ids[0], &ids[1], &ids[2]);
    let meta = kms.describe_key(&ctx(), "alias/fixture").expect("alias");
    assert_eq!(&meta.key_id, rotated);
    assert_eq!(meta.current_version, 2);
    assert_eq!(
        kms.get_key_rotation_status(&ctx(), rotated)
            .expect("rotation")
            .period_days,
        180
    );
    let doomed = kms.describe_key(&ctx(), doomed).expect("doomed");
    assert_eq!(doomed.state, KeyState::PendingDeletion);
    assert_eq!(doomed.deletion_date, Some(datetime!(2025-01-31 00:00 UTC)));
    assert_eq!(
        kms.describe_key(&ctx(), external).expect("external").state,
        KeyState::PendingImport
    );
    let sse = kms.default_sse_key(&ctx()).expect("sse");
    assert!(sse.managed);
    let state = kms.lock().expect("state");
    assert_eq!(state.keys.len(), 4);
    assert_eq!(state.import_tokens.len(), 2);
    assert!(state.import_tokens.values().all(|t| &t.key_id == external));
}

#[test]
fn readiness_follows_the_keystore_without_an_audit_line() {
    let f = fixture();
    f.create(Origin::Generated);
    let audited = f.audit_text();
    f.kms.check_ready().expect("ready");
    assert_eq!(f.audit_text(), audited, "a probe is not a KMS request");
    let aside = f.keystore_path().with_extension("aside");
    std::fs::rename(f.keystore_path(), &aside).expect("move the keystore away");
    assert!(
        f.kms.check_ready().is_err(),
        "a missing keystore is not ready"
    );
    std::fs::rename(&aside, f.keystore_path()).expect("put it back");
    f.kms.check_ready().expect("ready again");
}

/// Two KMSs over one keystore (two gateways): changes made through one reach
/// the other's copy by `refresh` (the ids named) or `refresh_all`, without a
/// lost swap; an unchanged record changes nothing.
#[test]
fn refresh_brings_in_other_writers_changes() {
    let store = Arc::new(crate::memory_keystore::MemoryKeyStore::new());
    let (root, _) =
        RootKey::load_or_create(tempfile::tempdir().expect("tempdir").path()).expect("root key");
    let root = Arc::new(root);
    let a = EmbeddedKms::with_keystore(store.clone(), Arc::clone(&root), REGION).expect("a");
    let request = CreateKey {
        description: "shared".into(),
        key_spec: KeySpec::SymmetricDefault,
        origin: Origin::Generated,
        tags: Vec::new(),
        policy: None,
    };
    let id = a.create_key(&ctx(), request).expect("create").key_id;
    let b = EmbeddedKms::with_keystore(store.clone(), Arc::clone(&root), REGION).expect("b");
    assert!(
        b.refresh(std::slice::from_ref(&id))
            .expect("refresh")
            .is_empty()
    );
    assert!(b.refresh_all().expect("refresh all").is_empty());

    a.disable_key(&ctx(), &id).expect("disable on a");
    assert!(
        b.usable_now(&id).expect("known").is_ok(),
        "b has not looked yet"
    );
    assert_eq!(
        b.refresh(std::slice::from_ref(&id)).expect("refresh"),
        std::slice::from_ref(&id)
    );
    assert!(matches!(
        b.usable_now(&id),
        Some(Err(KmsError::Disabled(_)))
    ));
    assert!(matches!(
        b.generate_data_key(&ctx(), &id, &context()),
        Err(KmsError::Disabled(_))
    ));

    // Rotation and an alias, caught up by refresh_all: b decrypts under the
    // new version and resolves the alias.
    a.enable_key(&ctx(), &id).expect("enable");
    a.rotate_key_on_demand(&ctx(), &id).expect("rotate");
    a.create_alias(&ctx(), "alias/shared", &id).expect("alias");
    let made = a
        .generate_data_key(&ctx(), "alias/shared", &context())
        .expect("data key on a");
    assert_eq!(made.key_version, 2);
    let mut changed = b.refresh_all().expect("refresh all");
    changed.sort();
    let mut expected = vec!["alias/shared".to_owned(), id.clone()];
    expected.sort();
    assert_eq!(changed, expected);
    let opened = b
        .decrypt(
            &ctx(),
            &made.ciphertext_blob,
            &context(),
            Some("alias/shared"),
        )
        .expect("b decrypts under version 2");
    assert_eq!(opened.plaintext.as_slice(), made.plaintext.expose());
    // b writes on top of what it refreshed: no lost swap.
    b.tag_resource(&ctx(), &id, vec![("k".into(), "v".into())])
        .expect("tag on b");

    // A deleted alias leaves b's copy too.
    a.delete_alias(&ctx(), "alias/shared")
        .expect("delete alias");
    assert_eq!(
        b.refresh_all().expect("refresh all"),
        ["alias/shared".to_owned()]
    );
    assert!(matches!(
        b.usable_now("alias/shared"),
        Some(Err(KmsError::NotFound(_)))
    ));
}

/// With a lease, key use fails closed once the copy was last confirmed
/// current longer ago than the bound; a confirmation restores it, and
/// administration is never refused.
#[test]
fn key_use_fails_closed_when_the_copy_is_not_confirmed_current() {
    let store = Arc::new(crate::memory_keystore::MemoryKeyStore::new());
    let kms = over_memory(&store);
    let id = kms
        .create_key(
            &ctx(),
            CreateKey {
                description: "leased".into(),
                key_spec: KeySpec::SymmetricDefault,
                origin: Origin::Generated,
                tags: Vec::new(),
                policy: None,
            },
        )
        .expect("create")
        .key_id;
    let made = kms
        .generate_data_key(&ctx(), &id, &context())
        .expect("no lease yet");
    let bound = std::time::Duration::from_millis(200);
    let start = std::time::Instant::now();
    kms.require_current_within(bound, start);
    kms.generate_data_key(&ctx(), &id, &context())
        .expect("within the bound");
    std::thread::sleep(bound + std::time::Duration::from_millis(50));
    let stale = |r: Result<(), KmsError>| matches!(&r, Err(KmsError::Internal(m)) if m.contains("not confirmed"));
    assert!(stale(
        kms.generate_data_key(&ctx(), &id, &context()).map(drop)
    ));
    assert!(stale(
        kms.decrypt(&ctx(), &made.ciphertext_blob, &context(), None)
            .map(drop)
    ));
    assert!(stale(
        kms.usable_now(&id).expect("answers at once").map(drop)
    ));
    kms.disable_key(&ctx(), &id)
        .expect("administration goes on");
    kms.enable_key(&ctx(), &id).expect("administration goes on");
    // An older confirmation does not extend the lease; a fresh one does.
    kms.confirm_current(start);
    assert!(stale(kms.usable_now(&id).expect("answers").map(drop)));
    kms.confirm_current(std::time::Instant::now());
    kms.decrypt(&ctx(), &made.ciphertext_blob, &context(), None)
        .expect("confirmed again");
}

/// On a shared keystore, a key or alias another gateway created a moment ago
/// is found at once (one re-read on the miss), before any notification; on
/// a keystore of its own, a miss is a miss.
#[test]
fn a_miss_on_a_shared_keystore_rereads_it_once() {
    let store = Arc::new(crate::memory_keystore::MemoryKeyStore::new());
    let (root, _) =
        RootKey::load_or_create(tempfile::tempdir().expect("tempdir").path()).expect("root key");
    let root = Arc::new(root);
    let a = EmbeddedKms::with_keystore(store.clone(), Arc::clone(&root), REGION).expect("a");
    let b = EmbeddedKms::with_keystore(store.clone(), Arc::clone(&root), REGION).expect("b");
    let alone = EmbeddedKms::with_keystore(store, Arc::clone(&root), REGION).expect("alone");
    b.require_current_within(
        std::time::Duration::from_secs(3600),
        std::time::Instant::now(),
    );
    let request = CreateKey {
        description: "made on a".into(),
        key_spec: KeySpec::SymmetricDefault,
        origin: Origin::Generated,
        tags: Vec::new(),
        policy: None,
    };
    let id = a.create_key(&ctx(), request).expect("create").key_id;
    a.create_alias(&ctx(), "alias/made-on-a", &id)
        .expect("alias");
    assert!(b.usable_now(&id).is_none(), "no answer from a stale copy");
    let made = b
        .generate_data_key(&ctx(), "alias/made-on-a", &context())
        .expect("b finds the alias and the key");
    assert_eq!(
        a.decrypt(&ctx(), &made.ciphertext_blob, &context(), None)
            .expect("a opens it")
            .plaintext
            .as_slice(),
        made.plaintext.expose().as_slice()
    );
    assert!(matches!(
        b.describe_key(&ctx(), "alias/never-made"),
        Err(KmsError::NotFound(_))
    ));
    assert!(matches!(
        alone.describe_key(&ctx(), &id),
        Err(KmsError::NotFound(_))
    ));
}
