//! The contract every KMS data plane keeps, as one test suite that each
//! backend runs (as rustls runs one suite over every crypto provider): the
//! in-memory KMS and the embedded KMS today, PKCS#11, KMIP and AWS-KMS
//! protocol backends later.
//!
//! A backend's test implements [`Harness`] (how to create, disable and
//! rotate a key there: administration is not part of the data plane) and
//! calls [`run`]. Every check panics with what the backend did wrong.

pub mod keystore;

use crate::kms::{CallContext, EncryptionContext, KeyState, KmsDataPlane, KmsError};

/// What the suite needs beyond the data plane.
pub trait Harness {
    /// The backend under test.
    fn kms(&self) -> &dyn KmsDataPlane;
    /// Creates an enabled symmetric key and returns its id (or ARN).
    fn create_key(&self) -> String;
    /// Enables or disables `key`.
    fn set_enabled(&self, key: &str, enabled: bool);
    /// Adds a version of `key`'s material.
    fn rotate(&self, key: &str);
    /// Whether a disabled key can be enabled again (KMIP's revocation is final).
    fn can_reenable(&self) -> bool {
        true
    }
    /// Whether a key has material versions (KMIP's Re-key makes another object instead).
    fn can_rotate(&self) -> bool {
        true
    }
}

/// Runs every check against the harness's backend.
pub fn run(harness: &dyn Harness) {
    data_keys_round_trip(harness);
    context_is_bound(harness);
    blob_names_its_key(harness);
    tampered_blobs_are_refused(harness);
    encrypt_and_re_encrypt(harness);
    disabled_keys_fail_closed(harness);
    if harness.can_rotate() {
        rotation_keeps_old_versions(harness);
    }
    unknown_keys_are_not_found(harness);
    default_sse_key_is_stable(harness);
}

fn ctx() -> CallContext {
    CallContext {
        principal: "contract".to_owned(),
        resource: Some("bucket/key".to_owned()),
    }
}

fn context(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn data_keys_round_trip(h: &dyn Harness) {
    let kms = h.kms();
    let key = h.create_key();
    let meta = kms.describe_key(&ctx(), &key).expect("describe a new key");
    assert_eq!(meta.state, KeyState::Enabled, "a new key is enabled");
    let bound = context(&[("aws:s3:arn", "arn:aws:s3:::bucket/key")]);
    let generated = kms
        .generate_data_key(&ctx(), &key, &bound)
        .expect("generate a data key");
    let names_key = |id: &str| id == meta.key_id || id == meta.arn;
    assert!(
        names_key(&generated.key_id),
        "data keys name their key (id or ARN), not {}",
        generated.key_id
    );
    assert_eq!(generated.key_version, meta.current_version);
    let opened = kms
        .decrypt(&ctx(), &generated.ciphertext_blob, &bound, None)
        .expect("decrypt the data key");
    assert_eq!(opened.plaintext.as_slice(), generated.plaintext.expose());
    assert!(names_key(&opened.key_id), "decrypt names the key");
    assert_eq!(opened.key_version, generated.key_version);
    let again = kms
        .generate_data_key(&ctx(), &key, &bound)
        .expect("generate a second data key");
    assert_ne!(
        again.plaintext.expose(),
        generated.plaintext.expose(),
        "every data key is fresh"
    );
    if let Some(answer) = kms.usable_now(&key) {
        assert_eq!(answer.expect("an enabled key is usable"), meta.arn);
    }
}

fn context_is_bound(h: &dyn Harness) {
    let kms = h.kms();
    let key = h.create_key();
    let bound = context(&[("aws:s3:arn", "arn:aws:s3:::bucket/a")]);
    let generated = kms
        .generate_data_key(&ctx(), &key, &bound)
        .expect("generate");
    for other in [
        EncryptionContext::new(),
        context(&[("aws:s3:arn", "arn:aws:s3:::bucket/b")]),
        context(&[("aws:s3:arn", "arn:aws:s3:::bucket/a"), ("x", "y")]),
    ] {
        let result = kms.decrypt(&ctx(), &generated.ciphertext_blob, &other, None);
        assert!(
            matches!(result, Err(KmsError::InvalidCiphertext)),
            "a data key opened under another context ({other:?})"
        );
    }
}

fn blob_names_its_key(h: &dyn Harness) {
    let kms = h.kms();
    let (key, other) = (h.create_key(), h.create_key());
    let empty = EncryptionContext::new();
    let generated = kms
        .generate_data_key(&ctx(), &key, &empty)
        .expect("generate");
    kms.decrypt(&ctx(), &generated.ciphertext_blob, &empty, Some(&key))
        .expect("decrypt naming the right key");
    let result = kms.decrypt(&ctx(), &generated.ciphertext_blob, &empty, Some(&other));
    assert!(
        matches!(result, Err(KmsError::IncorrectKey)),
        "decrypt naming another key must be IncorrectKey, got {:?}",
        result.err()
    );
}

fn tampered_blobs_are_refused(h: &dyn Harness) {
    let kms = h.kms();
    let key = h.create_key();
    let empty = EncryptionContext::new();
    let blob = kms
        .generate_data_key(&ctx(), &key, &empty)
        .expect("generate")
        .ciphertext_blob;
    for at in 0..blob.len() {
        let mut edited = blob.clone();
        edited[at] ^= 0x01;
        assert!(
            kms.decrypt(&ctx(), &edited, &empty, None).is_err(),
            "a blob with byte {at} changed still decrypted"
        );
    }
    for len in [0, 1, blob.len() / 2, blob.len() - 1] {
        assert!(
            kms.decrypt(&ctx(), &blob[..len], &empty, None).is_err(),
            "a blob cut to {len} bytes still decrypted"
        );
    }
}

fn encrypt_and_re_encrypt(h: &dyn Harness) {
    let kms = h.kms();
    let (source, destination) = (h.create_key(), h.create_key());
    let (a, b) = (context(&[("purpose", "a")]), context(&[("purpose", "b")]));
    let sealed = kms
        .encrypt(&ctx(), &source, b"a small secret", &a)
        .expect("encrypt");
    let moved = kms
        .re_encrypt(&ctx(), &sealed.ciphertext_blob, &a, &destination, &b)
        .expect("re-encrypt");
    let destination_meta = kms.describe_key(&ctx(), &destination).expect("describe");
    assert!(
        [&destination_meta.key_id, &destination_meta.arn].contains(&&moved.key_id),
        "re-encrypt names the destination key"
    );
    let opened = kms
        .decrypt(&ctx(), &moved.ciphertext_blob, &b, Some(&destination))
        .expect("decrypt the re-encrypted blob");
    assert_eq!(opened.plaintext.as_slice(), b"a small secret");
    assert!(
        kms.re_encrypt(&ctx(), &sealed.ciphertext_blob, &b, &destination, &b)
            .is_err(),
        "re-encrypt must check the source context"
    );
}

fn disabled_keys_fail_closed(h: &dyn Harness) {
    let kms = h.kms();
    let key = h.create_key();
    let empty = EncryptionContext::new();
    let generated = kms
        .generate_data_key(&ctx(), &key, &empty)
        .expect("generate");
    h.set_enabled(&key, false);
    assert_eq!(
        kms.describe_key(&ctx(), &key).expect("describe").state,
        KeyState::Disabled
    );
    let refused = |result: Result<(), KmsError>, what: &str| {
        assert!(
            matches!(result, Err(KmsError::Disabled(_))),
            "{what} under a disabled key must be Disabled, got {result:?}"
        );
    };
    refused(
        kms.generate_data_key(&ctx(), &key, &empty).map(drop),
        "generate",
    );
    refused(
        kms.decrypt(&ctx(), &generated.ciphertext_blob, &empty, None)
            .map(drop),
        "decrypt",
    );
    refused(kms.encrypt(&ctx(), &key, b"x", &empty).map(drop), "encrypt");
    if let Some(answer) = kms.usable_now(&key) {
        refused(answer.map(drop), "usable_now");
    }
    if !h.can_reenable() {
        return;
    }
    h.set_enabled(&key, true);
    let opened = kms
        .decrypt(&ctx(), &generated.ciphertext_blob, &empty, None)
        .expect("decrypt after enabling again");
    assert_eq!(opened.plaintext.as_slice(), generated.plaintext.expose());
}

fn rotation_keeps_old_versions(h: &dyn Harness) {
    let kms = h.kms();
    let key = h.create_key();
    let empty = EncryptionContext::new();
    let before = kms
        .generate_data_key(&ctx(), &key, &empty)
        .expect("generate");
    h.rotate(&key);
    let after = kms
        .generate_data_key(&ctx(), &key, &empty)
        .expect("generate after rotation");
    assert!(
        after.key_version > before.key_version,
        "rotation must move new data keys to a newer version"
    );
    for generated in [&before, &after] {
        let opened = kms
            .decrypt(&ctx(), &generated.ciphertext_blob, &empty, None)
            .expect("every version keeps decrypting");
        assert_eq!(opened.key_version, generated.key_version);
        assert_eq!(opened.plaintext.as_slice(), generated.plaintext.expose());
    }
}

fn unknown_keys_are_not_found(h: &dyn Harness) {
    let kms = h.kms();
    let missing = "00000000-0000-0000-0000-000000000000";
    assert!(matches!(
        kms.describe_key(&ctx(), missing),
        Err(KmsError::NotFound(_))
    ));
    assert!(matches!(
        kms.generate_data_key(&ctx(), missing, &EncryptionContext::new()),
        Err(KmsError::NotFound(_))
    ));
    assert!(
        kms.decrypt(&ctx(), b"not a ciphertext", &EncryptionContext::new(), None)
            .is_err()
    );
}

fn default_sse_key_is_stable(h: &dyn Harness) {
    let kms = h.kms();
    let first = kms.default_sse_key(&ctx()).expect("the default SSE key");
    let second = kms.default_sse_key(&ctx()).expect("the default SSE key");
    assert_eq!(first.arn, second.arn, "one default key, created once");
    assert_eq!(first.state, KeyState::Enabled);
    kms.generate_data_key(&ctx(), &first.arn, &EncryptionContext::new())
        .expect("the default key makes data keys");
}
