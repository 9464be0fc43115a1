//! coffer-cse through its public API: fixed vectors written by the real OSS
//! SDKs (see `vectors/generate.py`), round trips, tampering, wrong keys,
//! missing metadata and rewrap. No network: KMS paths are covered by the
//! interop suite against a real Coffer KMS.

use std::collections::BTreeMap;

use coffer_crypto::SymmetricKey;
use coffer_cse::{
    CseError, Format, MasterKey, Metadata, MultipartLayout, ObjectDecryption, ObjectEncryption,
    PlaintextInfo, RsaPadding, rewrap,
};

const PRIVATE_PKCS1: &str = include_str!("data/rsa2048.pkcs1.pem");
const PUBLIC_SPKI: &str = include_str!("data/rsa2048.spki.pem");
const OTHER_PRIVATE: &str = include_str!("data/other-rsa2048.pkcs8.pem");

fn vectors() -> serde_json::Value {
    serde_json::from_str(include_str!("data/vectors.json")).expect("vectors.json")
}

fn hex_field(v: &serde_json::Value, name: &str) -> Vec<u8> {
    hex::decode(v[name].as_str().expect("hex string")).expect("hex")
}

fn metadata_of(v: &serde_json::Value) -> Metadata {
    v["metadata"]
        .as_object()
        .expect("metadata")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_owned()))
        .collect()
}

fn rsa_key() -> MasterKey {
    MasterKey::rsa_pem(None, Some(PRIVATE_PKCS1)).expect("rsa key")
}

fn aes_key(byte: u8) -> MasterKey {
    MasterKey::aes(SymmetricKey::from_slice(&[byte; 32]).expect("32 bytes"))
}

fn run<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// Decrypts a whole stored object in pieces of `piece` bytes.
fn decrypt(
    metadata: &Metadata,
    keys: &[MasterKey],
    stored: &[u8],
    piece: usize,
) -> Result<Vec<u8>, CseError> {
    let object = run(ObjectDecryption::open(metadata, keys))?;
    let mut decryptor = object.decryptor()?;
    let mut out = Vec::new();
    for chunk in stored.chunks(piece) {
        decryptor.update(chunk, &mut out)?;
    }
    decryptor.finish()?;
    Ok(out)
}

/// Encrypts `plaintext` as one object in pieces of `piece` bytes.
fn encrypt(format: Format, key: &MasterKey, plaintext: &[u8], piece: usize) -> (Metadata, Vec<u8>) {
    let object = run(ObjectEncryption::new(format, key)).expect("new object");
    let metadata = object
        .metadata(&PlaintextInfo {
            length: Some(plaintext.len() as u64),
            ..Default::default()
        })
        .expect("metadata");
    let mut encryptor = object.encryptor().expect("encryptor");
    let mut stored = Vec::new();
    for chunk in plaintext.chunks(piece) {
        let mut buf = chunk.to_vec();
        encryptor.update(&mut buf).expect("update");
        stored.extend_from_slice(&buf);
    }
    stored.extend_from_slice(&encryptor.finish());
    assert_eq!(
        stored.len() as u64,
        object.ciphertext_len(plaintext.len() as u64)
    );
    (metadata, stored)
}

fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 + 1) as u8).collect()
}

#[test]
fn reads_oss2_rsa_pkcs1_objects() {
    // oss2 2.19.1 RsaProvider (wrap RSA/NONE/PKCS1Padding), matdesc demo-key-1.
    let v = vectors();
    let case = &v["oss2_rsa_pkcs1"];
    let metadata = metadata_of(case);
    assert_eq!(
        decrypt(&metadata, &[rsa_key()], &hex_field(case, "ciphertext"), 77).expect("decrypt"),
        hex_field(&v, "plaintext")
    );
    let object = run(ObjectDecryption::open(&metadata, &[rsa_key()])).expect("open");
    assert_eq!(object.format(), Format::Oss);
    assert!(!object.is_authenticated());
    assert_eq!(object.recorded_plaintext_len(), Some(1000));
}

#[test]
fn reads_oss2_local_rsa_oaep_objects_across_a_counter_carry() {
    // oss2 LocalRsaProvider (RSA-OAEP), IV 0102…08 fffffffffffffff0: the
    // counter carries from the low into the high 64 bits after 16 blocks.
    let v = vectors();
    let case = &v["oss2_rsa_oaep"];
    assert_eq!(
        decrypt(
            &metadata_of(case),
            &[rsa_key()],
            &hex_field(case, "ciphertext"),
            1000
        )
        .expect("decrypt"),
        hex_field(&v, "plaintext")
    );
}

#[test]
fn reads_keys_wrapped_by_alibabacloud_oss_v2_master_rsa_cipher() {
    // alibabacloud-oss-v2 1.4.1 MasterRsaCipher wrapped the same CEK and IV
    // as the oss2 PKCS#1 object; the headers are the v2 SDK's.
    let v = vectors();
    let wrapped = &v["v2_master_rsa_cipher"];
    let metadata = Metadata::from([
        (
            "client-side-encryption-key".into(),
            wrapped["wrapped_key"].as_str().expect("key").into(),
        ),
        (
            "client-side-encryption-start".into(),
            wrapped["wrapped_iv"].as_str().expect("iv").into(),
        ),
        (
            "client-side-encryption-cek-alg".into(),
            "AES/CTR/NoPadding".into(),
        ),
        (
            "client-side-encryption-wrap-alg".into(),
            "RSA/NONE/PKCS1Padding".into(),
        ),
        (
            "client-side-encryption-matdesc".into(),
            wrapped["matdesc"].as_str().expect("matdesc").into(),
        ),
    ]);
    let stored = hex_field(&v["oss2_rsa_pkcs1"], "ciphertext");
    assert_eq!(
        decrypt(&metadata, &[rsa_key()], &stored, 4096).expect("decrypt"),
        hex_field(&v, "plaintext")
    );
}

#[test]
fn multipart_parts_match_oss2_at_their_counter_offsets() {
    // oss2 encrypted part n with counter IV + (n-1)*part_size/16; the parts
    // put together are the single-PUT ciphertext of the same key and IV.
    let v = vectors();
    let parts = &v["oss2_multipart_parts"];
    let part_size = parts["part_size"].as_u64().expect("part size");
    let whole = hex_field(&v["oss2_rsa_oaep"], "ciphertext");
    let object = run(ObjectDecryption::open(
        &metadata_of(&v["oss2_rsa_oaep"]),
        &[rsa_key()],
    ))
    .expect("open");
    let plaintext = hex_field(&v, "plaintext");
    let mut joined = Vec::new();
    for (n, part) in parts["parts"].as_array().expect("parts").iter().enumerate() {
        let part = hex::decode(part.as_str().expect("hex")).expect("hex");
        let first = n as u64 * part_size;
        let mut range = object
            .range(first, first + part.len() as u64 - 1)
            .expect("range");
        let mut out = Vec::new();
        range.update(&part, &mut out).expect("decrypt part");
        assert_eq!(out, plaintext[first as usize..first as usize + part.len()]);
        joined.extend_from_slice(&part);
    }
    assert_eq!(joined, whole);
}

#[test]
fn oss_parts_encrypted_independently_equal_one_stream() {
    let key = MasterKey::rsa_pem(Some(PUBLIC_SPKI), None).expect("public key");
    let object = run(ObjectEncryption::new(Format::Oss, &key)).expect("new");
    let layout = MultipartLayout {
        data_size: 1000,
        part_size: 256,
    };
    let metadata = object
        .metadata(&PlaintextInfo {
            multipart: Some(layout),
            ..Default::default()
        })
        .expect("metadata");
    assert_eq!(metadata["client-side-encryption-data-size"], "1000");
    assert_eq!(metadata["client-side-encryption-part-size"], "256");
    let plaintext = sample(1000);
    let seekable = object.seekable().expect("CTR is seekable");
    let mut parts = Vec::new();
    for (n, chunk) in plaintext.chunks(256).enumerate().rev() {
        let mut buf = chunk.to_vec();
        seekable.apply_at(n as u64 * 256, &mut buf).expect("part");
        parts.insert(0, buf);
    }
    let mut whole = plaintext.clone();
    object
        .encryptor()
        .expect("encryptor")
        .update(&mut whole)
        .expect("stream");
    assert_eq!(parts.concat(), whole);
    assert_eq!(
        decrypt(&metadata, &[rsa_key()], &whole, 100).expect("decrypt"),
        plaintext
    );

    let bad = PlaintextInfo {
        multipart: Some(MultipartLayout {
            data_size: 1000,
            part_size: 100,
        }),
        ..Default::default()
    };
    assert!(
        object.metadata(&bad).is_err(),
        "part size must be a multiple of 16"
    );
}

#[test]
fn writes_the_metadata_oss2_writes() {
    // Same fields and constant values as oss2's RsaProvider object.
    let v = vectors();
    let theirs = metadata_of(&v["oss2_rsa_pkcs1"]);
    let key = rsa_key()
        .with_oss_rsa_padding(RsaPadding::Pkcs1v15)
        .with_description(BTreeMap::from([("desc".into(), "demo-key-1".into())]));
    let object = run(ObjectEncryption::new(Format::Oss, &key)).expect("new");
    let plaintext = hex_field(&v, "plaintext");
    let ours = object
        .metadata(&PlaintextInfo {
            length: Some(plaintext.len() as u64),
            md5_base64: Some(theirs["client-side-encryption-unencrypted-content-md5"].clone()),
            multipart: None,
        })
        .expect("metadata");
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for field in [
        "client-side-encryption-cek-alg",
        "client-side-encryption-wrap-alg",
        "client-side-encryption-matdesc",
        "client-side-encryption-unencrypted-content-length",
    ] {
        assert_eq!(ours[field], theirs[field], "{field}");
    }
    assert_eq!(
        ours["client-side-encryption-key"].len(),
        344,
        "base64 of one RSA-2048 block"
    );
    let mut stored = plaintext.clone();
    object
        .encryptor()
        .expect("encryptor")
        .update(&mut stored)
        .expect("encrypt");
    assert_eq!(
        decrypt(&ours, &[rsa_key()], &stored, 333).expect("decrypt"),
        plaintext
    );
}

#[test]
fn round_trips_every_format_and_key_kind() {
    let plaintext = sample(70_001);
    for format in [Format::Aws, Format::AwsV2, Format::Oss] {
        for (writer, reader) in [
            (aes_key(1), aes_key(1)),
            (
                MasterKey::rsa_pem(Some(PUBLIC_SPKI), None).expect("public"),
                rsa_key(),
            ),
            (
                rsa_key().with_oss_rsa_padding(RsaPadding::Pkcs1v15),
                rsa_key(),
            ),
        ] {
            let (metadata, stored) = encrypt(format, &writer, &plaintext, 8191);
            assert_eq!(Format::detect(&metadata), Some(format));
            assert_eq!(
                decrypt(&metadata, &[reader], &stored, 4096).expect("decrypt"),
                plaintext,
                "{format}"
            );
        }
    }
}

#[test]
fn v3_metadata_has_the_python_client_shape() {
    let (metadata, _) = encrypt(Format::Aws, &aes_key(1), b"x", 1);
    let keys: Vec<&str> = metadata.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["x-amz-3", "x-amz-c", "x-amz-d", "x-amz-i", "x-amz-w"]
    );
    assert_eq!(metadata["x-amz-c"], "115");
    assert_eq!(metadata["x-amz-w"], "02");
    let (metadata, _) = encrypt(
        Format::Aws,
        &rsa_key().with_description(BTreeMap::from([("k".into(), "v".into())])),
        b"x",
        1,
    );
    assert_eq!(metadata["x-amz-w"], "22");
    assert_eq!(metadata["x-amz-m"], r#"{"k": "v"}"#);
}

#[test]
fn any_flipped_or_cut_byte_of_gcm_content_is_refused() {
    let plaintext = sample(5000);
    for format in [Format::Aws, Format::AwsV2] {
        let (metadata, stored) = encrypt(format, &aes_key(3), &plaintext, 1000);
        for at in [
            0,
            1,
            2500,
            stored.len() - 17,
            stored.len() - 16,
            stored.len() - 1,
        ] {
            let mut tampered = stored.clone();
            tampered[at] ^= 0x01;
            assert_eq!(
                decrypt(&metadata, &[aes_key(3)], &tampered, 512),
                Err(CseError::TagMismatch),
                "{format} at {at}"
            );
        }
        for cut in [0, 15, stored.len() - 16, stored.len() - 1] {
            assert_eq!(
                decrypt(&metadata, &[aes_key(3)], &stored[..cut], 512),
                Err(CseError::TagMismatch),
                "{format} cut {cut}"
            );
        }
        let mut extended = stored.clone();
        extended.push(0);
        assert_eq!(
            decrypt(&metadata, &[aes_key(3)], &extended, 512),
            Err(CseError::TagMismatch)
        );
    }
}

#[test]
fn altered_v3_commitment_or_message_id_is_refused() {
    let (metadata, stored) = encrypt(Format::Aws, &aes_key(3), b"committed", 4);
    for field in ["x-amz-d", "x-amz-i"] {
        let mut altered = metadata.clone();
        let mut bytes = base64_decode(&altered[field]);
        bytes[0] ^= 1;
        altered.insert(field.into(), base64_encode(&bytes));
        let err = decrypt(&altered, &[aes_key(3)], &stored, 4).expect_err("altered");
        assert!(
            matches!(&err, CseError::InvalidField { field: f, .. } if f == "x-amz-d"),
            "{field}: {err}"
        );
    }
}

#[test]
fn a_wrong_master_key_is_named_never_garbage() {
    let plaintext = sample(300);
    let other_rsa = MasterKey::rsa_pem(None, Some(OTHER_PRIVATE)).expect("other key");
    for format in [Format::Aws, Format::AwsV2, Format::Oss] {
        let (metadata, stored) = encrypt(format, &aes_key(1), &plaintext, 300);
        let err = decrypt(&metadata, &[aes_key(2)], &stored, 300).expect_err("wrong AES key");
        assert!(
            matches!(err, CseError::WrongMasterKey(_)),
            "{format}: {err}"
        );
        let err = decrypt(&metadata, &[rsa_key()], &stored, 300).expect_err("wrong kind");
        assert!(
            matches!(&err, CseError::WrongMasterKey(m) if m.contains("needs an AES key")),
            "{format}: {err}"
        );
        // With the right key among several, it is found.
        assert_eq!(
            decrypt(
                &metadata,
                &[aes_key(2), rsa_key(), aes_key(1)],
                &stored,
                300
            )
            .expect("found"),
            plaintext
        );

        for padding in [RsaPadding::OaepSha1, RsaPadding::Pkcs1v15] {
            let (metadata, stored) = encrypt(
                format,
                &rsa_key().with_oss_rsa_padding(padding),
                &plaintext,
                300,
            );
            let err = decrypt(&metadata, std::slice::from_ref(&other_rsa), &stored, 300)
                .expect_err("wrong RSA key");
            assert!(
                matches!(err, CseError::WrongMasterKey(_)),
                "{format} {padding:?}: {err}"
            );
        }
    }
}

#[test]
fn missing_metadata_fields_are_named() {
    let cases = [
        (
            Format::Aws,
            vec!["x-amz-c", "x-amz-w", "x-amz-d", "x-amz-i"],
        ),
        (
            Format::AwsV2,
            vec!["x-amz-wrap-alg", "x-amz-cek-alg", "x-amz-iv"],
        ),
        (
            Format::Oss,
            vec![
                "client-side-encryption-start",
                "client-side-encryption-cek-alg",
                "client-side-encryption-wrap-alg",
            ],
        ),
    ];
    for (format, fields) in cases {
        let (metadata, stored) = encrypt(format, &aes_key(1), b"hello", 5);
        for field in fields {
            let mut partial = metadata.clone();
            partial.remove(field);
            let err = decrypt(&partial, &[aes_key(1)], &stored, 5).expect_err("missing");
            assert!(
                matches!(&err, CseError::MissingField(f) if f == field),
                "{format} without {field}: {err}"
            );
        }
    }
    assert_eq!(
        run(ObjectDecryption::open(&Metadata::new(), &[aes_key(1)])).err(),
        Some(CseError::NotEncrypted)
    );
    let v1 = Metadata::from([
        ("x-amz-key".into(), "AAAA".into()),
        ("x-amz-iv".into(), "AAAA".into()),
    ]);
    assert!(matches!(
        run(ObjectDecryption::open(&v1, &[aes_key(1)])),
        Err(CseError::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn deprecated_oss2_names_are_read() {
    let v = vectors();
    let case = &v["oss2_rsa_oaep"];
    let current = metadata_of(case);
    let renames = [
        ("client-side-encryption-key", "oss-crypto-key"),
        ("client-side-encryption-start", "oss-crypto-start"),
        ("client-side-encryption-cek-alg", "oss-cek-alg"),
        ("client-side-encryption-wrap-alg", "oss-wrap-alg"),
    ];
    let mut old = Metadata::new();
    for (new, deprecated) in renames {
        old.insert(deprecated.into(), current[new].clone());
    }
    // Old oss2 named the CTR cipher "AES/GCM/NoPadding" and any non-kms wrap is RSA-OAEP.
    old.insert("oss-cek-alg".into(), "AES/GCM/NoPadding".into());
    old.insert("oss-wrap-alg".into(), "rsa".into());
    assert_eq!(
        decrypt(&old, &[rsa_key()], &hex_field(case, "ciphertext"), 500).expect("decrypt"),
        hex_field(&v, "plaintext")
    );
}

#[test]
fn ranged_reads_decrypt_any_slice() {
    let plaintext = sample(1000);
    for format in [Format::Aws, Format::AwsV2, Format::Oss] {
        let (metadata, stored) = encrypt(format, &aes_key(5), &plaintext, 1000);
        let object = run(ObjectDecryption::open(&metadata, &[aes_key(5)])).expect("open");
        assert_eq!(
            object.plaintext_len(stored.len() as u64).expect("len"),
            1000
        );
        for (first, last) in [
            (0u64, 0u64),
            (1, 15),
            (16, 31),
            (17, 500),
            (999, 999),
            (0, 999),
        ] {
            let mut range = object.range(first, last).expect("range");
            let (a, b) = range.stored_range();
            let mut out = Vec::new();
            for chunk in stored[a as usize..=b as usize].chunks(7) {
                range.update(chunk, &mut out).expect("update");
            }
            assert_eq!(
                out,
                plaintext[first as usize..=last as usize],
                "{format} {first}-{last}"
            );
        }
    }
}

#[test]
fn rewrap_changes_only_the_key_fields() {
    let plaintext = sample(2000);
    let new_key = MasterKey::rsa_pem(Some(PUBLIC_SPKI), None).expect("public");
    for format in [Format::Aws, Format::AwsV2, Format::Oss] {
        let (mut metadata, stored) = encrypt(format, &aes_key(7), &plaintext, 2000);
        metadata.insert("user-field".into(), "kept".into());
        let rewrapped = run(rewrap(&metadata, &[aes_key(7)], &new_key)).expect("rewrap");
        assert_eq!(rewrapped["user-field"], "kept");
        assert_eq!(Format::detect(&rewrapped), Some(format));
        for field in [
            "x-amz-c",
            "x-amz-d",
            "x-amz-i",
            "x-amz-iv",
            "client-side-encryption-unencrypted-content-length",
        ] {
            assert_eq!(
                rewrapped.get(field),
                metadata.get(field),
                "{format} {field}"
            );
        }
        assert_eq!(
            decrypt(&rewrapped, &[rsa_key()], &stored, 999).expect("new key"),
            plaintext
        );
        assert!(matches!(
            decrypt(&rewrapped, &[aes_key(7)], &stored, 999),
            Err(CseError::WrongMasterKey(_))
        ));
        // And back, through the other wrap algorithms.
        let back = run(rewrap(&rewrapped, &[rsa_key()], &aes_key(8))).expect("rewrap back");
        assert_eq!(
            decrypt(&back, &[aes_key(8)], &stored, 999).expect("aes again"),
            plaintext
        );
        assert!(matches!(
            run(rewrap(&metadata, &[aes_key(9)], &new_key)),
            Err(CseError::WrongMasterKey(_))
        ));
    }
}

#[test]
fn debug_output_never_shows_key_bytes() {
    let key = aes_key(0xAB);
    let shown = format!("{key:?}");
    assert!(
        !shown.contains("171") && !shown.to_lowercase().contains("abab"),
        "{shown}"
    );
    let shown = format!("{:?}", rsa_key());
    assert!(!shown.contains("MII"), "{shown}");
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn keys_ciphers_and_futures_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<MasterKey>();
    send_sync::<ObjectEncryption>();
    send_sync::<ObjectDecryption>();
    send_sync::<coffer_cse::CtrCipher>();
    send::<coffer_cse::ContentEncryptor>(
        &run(ObjectEncryption::new(Format::Aws, &aes_key(1)))
            .expect("new")
            .encryptor()
            .expect("encryptor"),
    );
    // The CLI may run these on a multi-threaded runtime (tokio::spawn).
    let keys = [aes_key(1)];
    let metadata = Metadata::new();
    send(&ObjectEncryption::new(Format::Oss, &keys[0]));
    send(&ObjectDecryption::open(&metadata, &keys));
    send(&rewrap(&metadata, &keys, &keys[0]));
}
