//! Fixed vectors (docs/format.md §7), round trips, ranges, tampering, envelope.

use aws_lc_rs::digest::{SHA256, digest};
use proptest::prelude::*;

use super::cipher::PartKey;
use super::*;

fn dek() -> SymmetricKey {
    let bytes: Vec<u8> = (0u8..32).collect();
    SymmetricKey::from_slice(&bytes).expect("32 bytes")
}

fn object_id() -> ObjectId {
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = 0xa0 + i as u8;
    }
    ObjectId(id)
}

/// Plaintext byte `i` is `i % 251`.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn seal_all(
    algorithm: Algorithm,
    dek: &SymmetricKey,
    id: &ObjectId,
    part: u32,
    plaintext: &[u8],
) -> Vec<u8> {
    let mut sealer = PartSealer::new(algorithm, dek, id, part);
    let mut out = Vec::new();
    sealer.push(plaintext, &mut out).expect("small part");
    assert_eq!(sealer.finish(&mut out), plaintext.len() as u64);
    out
}

fn open_all(
    algorithm: Algorithm,
    dek: &SymmetricKey,
    id: &ObjectId,
    part: u32,
    plain_size: u64,
    sealed: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let plan = plan_range(plain_size, 0..plain_size)
        .or_else(|_| plan_range(plain_size, 0..0))
        .expect("valid size");
    let mut out = Vec::new();
    PartOpener::new(algorithm, dek, id, part).open_range(&plan, sealed, &mut out)?;
    Ok(out)
}

const ALGORITHMS: [Algorithm; 2] = [Algorithm::Aes256Gcm, Algorithm::Sm4Gcm];

struct Vector {
    algorithm: Algorithm,
    part: u32,
    plain_len: usize,
    content_key: &'static str,
    nonce_prefix: &'static str,
    sealed_sha256: &'static str,
    sealed_hex: Option<&'static str>,
}

const COMMITMENT: &str = "827e5b646b48fe5a26f14960f85eaffa78b7b5ed45962c99b0ee8485701003f0";

const VECTORS: [Vector; 5] = [
    Vector {
        algorithm: Algorithm::Aes256Gcm,
        part: 0,
        plain_len: 0,
        content_key: "dc16aed00fbb9c2da6127c8cb591690b1ecda8356111983748b5bd5968cba657",
        nonce_prefix: "68cdee506cd3cd",
        sealed_sha256: "bf9877e366ef682265e12edbce45daf1fce30de9a3c82f7fa57cc5664639e1d8",
        sealed_hex: Some("4680a3ba6f77d2b88eee4f786cb57e70"),
    },
    Vector {
        algorithm: Algorithm::Aes256Gcm,
        part: 0,
        plain_len: 100,
        content_key: "dc16aed00fbb9c2da6127c8cb591690b1ecda8356111983748b5bd5968cba657",
        nonce_prefix: "68cdee506cd3cd",
        sealed_sha256: "066384c86ab158a15a242450fa1c7e98d17753010762bb1c9a81534162e3f207",
        sealed_hex: Some(concat!(
            "e1251f06b40dd901425afd711e8d2fbcfda5d2db70fef38861ec6c657e37ef92",
            "fa059bca96f9378e2181ab3dbda914e752aca02539ddec14d1103d84009ced05",
            "e82a55a28cbf7dbed331bf48823ebca2070c2a623177ca2db1dbd710cba67c0a",
            "5fff1ec438817254a6cb1e19ef40a33bacb272a2"
        )),
    },
    Vector {
        algorithm: Algorithm::Aes256Gcm,
        part: 7,
        plain_len: CHUNK_SIZE + 1000,
        content_key: "4d5f53f02345a55af64a400e4cdd834e10b1c3ab79d0dc8affd7d71cb00c9e8a",
        nonce_prefix: "c9875640ea673b",
        sealed_sha256: "dc188c94d0cf8418c2e89695f879f7239fda0f81ee74ef5feacdbcdeebb9c7c9",
        sealed_hex: None,
    },
    Vector {
        algorithm: Algorithm::Sm4Gcm,
        part: 0,
        plain_len: 100,
        content_key: "3b9bfadc0e97bb92aae9dae3d3281585358d681a2f6a6d314521cb43b5de207d",
        nonce_prefix: "1ea254d244f003",
        sealed_sha256: "11c426fee9bbc2c821c285fc46be771b3a7a3ca0adab45c9166392877dfbd965",
        sealed_hex: Some(concat!(
            "725ddb92a0824226cbc67802ee99deae796039eab793070cd413d3c2e3a3999c",
            "162621e91b59fb5acb67d48e313670c6b0a36da815a3f4b4f3c1283508b5c437",
            "5efc739a74021012729c77f1e29bc4f6241b2cdc4a3e3a48a00abd1eb1486c1d",
            "6b91fb2fbfada4cad69be0d050cd929d7c6f2447"
        )),
    },
    Vector {
        algorithm: Algorithm::Sm4Gcm,
        part: 2,
        plain_len: CHUNK_SIZE + 1000,
        content_key: "d33d9a0c11ea9dbbf15e7e39d67e935e4077335872d525b0d72dfbbc0a58f0da",
        nonce_prefix: "361bd81de14712",
        sealed_sha256: "2df0b7c05b2914f0557b7ab80c2baa751c7bb561d3b086b9fdbdb92df0a76716",
        sealed_hex: None,
    },
];

#[test]
fn fixed_vectors() {
    assert_eq!(hex(&commitment(&dek(), &object_id())), COMMITMENT);
    for v in &VECTORS {
        let key = PartKey::derive(v.algorithm, &dek(), &object_id(), v.part);
        assert_eq!(hex(&key.key), v.content_key);
        assert_eq!(hex(&key.nonce_prefix), v.nonce_prefix);
        let plaintext = pattern(v.plain_len);
        let sealed = seal_all(v.algorithm, &dek(), &object_id(), v.part, &plaintext);
        assert_eq!(sealed.len() as u64, sealed_size(v.plain_len as u64));
        assert_eq!(hex(digest(&SHA256, &sealed).as_ref()), v.sealed_sha256);
        if let Some(full) = v.sealed_hex {
            assert_eq!(hex(&sealed), full);
        }
        let opened = open_all(
            v.algorithm,
            &dek(),
            &object_id(),
            v.part,
            v.plain_len as u64,
            &sealed,
        );
        assert_eq!(opened.expect("vector opens"), plaintext);
    }
}

#[test]
fn sizes() {
    let c = CHUNK_SIZE as u64;
    assert_eq!(chunk_count(0), 1);
    assert_eq!(chunk_count(1), 1);
    assert_eq!(chunk_count(c), 1);
    assert_eq!(chunk_count(c + 1), 2);
    assert_eq!(sealed_size(0), 16);
    assert_eq!(sealed_size(1), 17);
    assert_eq!(sealed_size(c), 65_552);
    assert_eq!(sealed_size(c + 1), 65_569);
    assert_eq!(sealed_size(5 << 30), (5 << 30) + 16 * 81_920);
}

#[test]
fn commitment_rejects_a_wrong_key() {
    let c = commitment(&dek(), &object_id());
    assert_eq!(verify_commitment(&dek(), &object_id(), &c), Ok(()));
    let other = SymmetricKey::from_slice(&[9u8; 32]).expect("32 bytes");
    assert_eq!(
        verify_commitment(&other, &object_id(), &c),
        Err(CryptoError::Decryption)
    );
    let other_id = ObjectId([0; 16]);
    assert_eq!(
        verify_commitment(&dek(), &other_id, &c),
        Err(CryptoError::Decryption)
    );
    assert_eq!(
        verify_commitment(&dek(), &object_id(), &c[..31]),
        Err(CryptoError::Decryption)
    );
}

#[test]
fn parallel_sealing_gives_the_same_bytes() {
    let plaintext = pattern(9 * CHUNK_SIZE + 123);
    for algorithm in ALGORITHMS {
        let serial = {
            let mut sealer = PartSealer::new(algorithm, &dek(), &object_id(), 4).threads(1);
            let mut out = Vec::new();
            sealer.push(&plaintext, &mut out).expect("small part");
            sealer.finish(&mut out);
            out
        };
        for threads in [2, 3, 4, 16] {
            let mut sealer = PartSealer::new(algorithm, &dek(), &object_id(), 4).threads(threads);
            let mut out = Vec::new();
            // Pieces that straddle chunk boundaries exercise both paths.
            for piece in plaintext.chunks(3 * CHUNK_SIZE + 17) {
                sealer.push(piece, &mut out).expect("small part");
            }
            sealer.finish(&mut out);
            assert_eq!(out, serial, "{algorithm:?} with {threads} threads");
        }
    }
}

#[test]
fn parallel_opening_in_place_gives_the_same_plaintext_and_detects_tampering() {
    let size = 9 * CHUNK_SIZE as u64 + 123;
    let plaintext = pattern(size as usize);
    for algorithm in ALGORITHMS {
        let sealed = seal_all(algorithm, &dek(), &object_id(), 4, &plaintext);
        for range in [0..size, 5..size - 7, 3 * CHUNK_SIZE as u64 + 1..size] {
            let plan = plan_range(size, range.clone()).expect("inside the part");
            let read = &sealed[plan.sealed.start as usize..plan.sealed.end as usize];
            for threads in [1, 2, 3, 16] {
                let opener = PartOpener::new(algorithm, &dek(), &object_id(), 4).threads(threads);
                let mut buf = read.to_vec();
                opener.open_range_in_place(&plan, &mut buf).expect("opens");
                assert_eq!(buf, &plaintext[range.start as usize..range.end as usize]);
                // A flipped byte in the last chunk (another thread's group).
                let mut buf = read.to_vec();
                let at = buf.len() - 3;
                buf[at] ^= 1;
                assert_eq!(
                    opener.open_range_in_place(&plan, &mut buf),
                    Err(CryptoError::Decryption)
                );
                assert!(buf.is_empty(), "a failed open leaves nothing");
            }
        }
    }
}

#[test]
fn the_chunk_counter_limit_is_enforced() {
    let mut sealer = PartSealer::new(Algorithm::Aes256Gcm, &dek(), &object_id(), 0);
    sealer.next_index = MAX_CHUNKS_PER_PART - 2;
    let mut out = Vec::new();
    // Chunk 2^32 - 2 (non-final) and the final chunk 2^32 - 1 still fit.
    sealer
        .push(&pattern(CHUNK_SIZE + 1), &mut out)
        .expect("fits");
    assert_eq!(
        sealer.push(&pattern(CHUNK_SIZE), &mut out),
        Err(CryptoError::PartTooLarge)
    );
    let opener = PartOpener::new(Algorithm::Aes256Gcm, &dek(), &object_id(), 0);
    let mut plain = Vec::new();
    assert_eq!(
        opener.open_chunk(MAX_CHUNKS_PER_PART, true, &out[..17], &mut plain),
        Err(CryptoError::Decryption)
    );
}

/// Every way of presenting tampered or misattributed sealed bytes fails.
fn assert_every_tamper_fails(algorithm: Algorithm, plain_len: usize) {
    let plaintext = pattern(plain_len);
    let (id, part) = (object_id(), 3);
    let sealed = seal_all(algorithm, &dek(), &id, part, &plaintext);
    let size = plain_len as u64;
    let open = |bytes: &[u8]| open_all(algorithm, &dek(), &id, part, size, bytes);
    assert_eq!(open(&sealed).expect("untouched opens"), plaintext);

    // Single-byte flips: first and last byte of every chunk, its tag, and a
    // spread of positions in between.
    let mut positions = vec![0, sealed.len() - 1];
    for start in (0..sealed.len()).step_by(SEALED_CHUNK_SIZE) {
        let end = (start + SEALED_CHUNK_SIZE).min(sealed.len());
        positions.extend([
            start,
            start + 1,
            end - TAG_LEN,
            (end - TAG_LEN).saturating_sub(1),
            end - 1,
        ]);
    }
    positions.extend((0..sealed.len()).step_by(997));
    for &pos in positions.iter().filter(|&&p| p < sealed.len()) {
        for flip in [0x01, 0x80] {
            let mut bad = sealed.clone();
            bad[pos] ^= flip;
            assert_eq!(open(&bad), Err(CryptoError::Decryption), "flip at {pos}");
        }
    }

    // Truncation: drop the last byte, cut inside the first chunk, drop the last chunk.
    assert!(open(&sealed[..sealed.len() - 1]).is_err());
    assert!(open(&sealed[..sealed.len() / 2]).is_err());
    let chunks = chunk_count(size) as usize;
    if chunks > 1 {
        let kept = (chunks - 1) * SEALED_CHUNK_SIZE;
        // The envelope's size is edited to match: the new final chunk was
        // sealed as non-final.
        let opened = open_all(
            algorithm,
            &dek(),
            &id,
            part,
            (kept - (chunks - 1) * TAG_LEN) as u64,
            &sealed[..kept],
        );
        assert_eq!(opened, Err(CryptoError::Decryption));
        if chunks > 2 {
            // Swap chunks 0 and 1 (both full).
            let mut swapped = sealed[SEALED_CHUNK_SIZE..2 * SEALED_CHUNK_SIZE].to_vec();
            swapped.extend_from_slice(&sealed[..SEALED_CHUNK_SIZE]);
            swapped.extend_from_slice(&sealed[2 * SEALED_CHUNK_SIZE..]);
            assert_eq!(open(&swapped), Err(CryptoError::Decryption));
        }
        // A non-final chunk presented as the final one.
        let opener = PartOpener::new(algorithm, &dek(), &id, part);
        let mut out = Vec::new();
        assert_eq!(
            opener.open_chunk(0, true, &sealed[..SEALED_CHUNK_SIZE], &mut out),
            Err(CryptoError::Decryption)
        );
        // Chunk 1 opened at index 0.
        let one = &sealed[SEALED_CHUNK_SIZE..(2 * SEALED_CHUNK_SIZE).min(sealed.len())];
        assert!(opener.open_chunk(0, chunks == 2, one, &mut out).is_err());
        assert!(out.is_empty(), "nothing leaks into the output");
    } else {
        // Extending a final chunk with a copy of itself is no longer a part.
        let mut doubled = sealed.clone();
        doubled.extend_from_slice(&sealed);
        assert!(open(&doubled).is_err());
    }

    // Misattribution: other part, other object, other key, other algorithm.
    let other_key = SymmetricKey::from_slice(&[1u8; 32]).expect("32 bytes");
    let other_alg = match algorithm {
        Algorithm::Aes256Gcm => Algorithm::Sm4Gcm,
        Algorithm::Sm4Gcm => Algorithm::Aes256Gcm,
    };
    let cases = [
        (algorithm, dek(), id, part + 1),
        (algorithm, dek(), id, 0),
        (algorithm, dek(), ObjectId([0xa0; 16]), part),
        (algorithm, other_key, id, part),
        (other_alg, dek(), id, part),
    ];
    for (alg, key, oid, p) in cases {
        assert_eq!(
            open_all(alg, &key, &oid, p, size, &sealed),
            Err(CryptoError::Decryption)
        );
    }
}

#[test]
fn tampering_is_detected() {
    let c = CHUNK_SIZE;
    for algorithm in ALGORITHMS {
        for len in [0, 1, c - 1, c, c + 1, 3 * c + 5] {
            assert_every_tamper_fails(algorithm, len);
        }
    }
}

#[test]
fn an_empty_final_chunk_after_data_is_refused() {
    let opener = PartOpener::new(Algorithm::Aes256Gcm, &dek(), &object_id(), 0);
    let mut out = Vec::new();
    assert_eq!(
        opener.open_chunk(1, true, &[0u8; TAG_LEN], &mut out),
        Err(CryptoError::Decryption)
    );
    assert_eq!(
        opener.open_chunk(0, false, &[0u8; SEALED_CHUNK_SIZE - 1], &mut out),
        Err(CryptoError::Decryption)
    );
    assert_eq!(
        opener.open_chunk(0, true, &[0u8; SEALED_CHUNK_SIZE + 1], &mut out),
        Err(CryptoError::Decryption)
    );
}

#[test]
fn range_plans() {
    let c = CHUNK_SIZE as u64;
    let s = SEALED_CHUNK_SIZE as u64;
    let plan = plan_range(3 * c + 5, c + 10..2 * c + 1).expect("valid");
    assert_eq!(
        (plan.first_chunk, plan.last_chunk, plan.chunk_count),
        (1, 2, 4)
    );
    assert_eq!(plan.sealed, s..3 * s);
    assert_eq!((plan.skip, plan.len), (10, c - 9));
    let tail = plan_range(3 * c + 5, 3 * c..3 * c + 5).expect("valid");
    assert_eq!(tail.sealed, 3 * s..3 * s + 21);
    assert!(tail.is_final(3));
    assert_eq!(plan_range(0, 0..0).expect("valid").sealed, 0..16);
    assert_eq!(plan_range(10, 5..5), Err(CryptoError::Range));
    assert_eq!(plan_range(10, 5..11), Err(CryptoError::Range));
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = 6..5;
    assert_eq!(plan_range(10, backwards), Err(CryptoError::Range));
    assert_eq!(plan_range(MAX_PART_SIZE + 1, 0..1), Err(CryptoError::Range));
}

fn envelope() -> Envelope {
    Envelope {
        algorithm: Algorithm::Sm4Gcm,
        object_id: object_id(),
        commitment: commitment(&dek(), &object_id()),
        key: KeyReference {
            kind: WrapKind::Kms,
            key_id: "arn:coffer:kms:us-east-1:key/1234".to_owned(),
            key_version: 3,
            wrapped_key: vec![0x5a; 60],
        },
        parts: vec![
            PartLayout {
                part_number: 1,
                plain_size: 5 << 20,
            },
            PartLayout {
                part_number: 2,
                plain_size: 0,
            },
            PartLayout {
                part_number: 9,
                plain_size: 1234,
            },
        ],
        layout_tag: None,
    }
}

#[test]
fn envelope_round_trip_and_layout() {
    let env = envelope();
    let bytes = env.encode().expect("valid");
    assert_eq!(
        bytes.len(),
        1 + 1 + 16 + 4 + 32 + 1 + 2 + 33 + 4 + 2 + 60 + 2 + 3 * 12
    );
    assert_eq!(&bytes[..2], &[1, 2]);
    assert_eq!(Envelope::decode(&bytes), Ok(env.clone()));
    assert_eq!(env.verify_key(&dek()), Ok(()));
    let wrong = SymmetricKey::from_slice(&[3u8; 32]).expect("32 bytes");
    assert_eq!(env.verify_key(&wrong), Err(CryptoError::Decryption));

    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        Envelope::decode(&trailing),
        Err(CryptoError::Envelope("trailing bytes"))
    );
    let mut v3 = bytes.clone();
    v3[0] = 3;
    assert_eq!(
        Envelope::decode(&v3),
        Err(CryptoError::UnsupportedVersion(3))
    );
    assert!(Envelope::decode(&[]).is_err());

    let mut bad = env.clone();
    bad.parts.swap(0, 2);
    assert!(bad.encode().is_err(), "parts out of order");
    bad = env.clone();
    bad.parts[0].part_number = 0;
    assert!(bad.encode().is_err(), "part 0 in a multipart object");
    bad.parts = vec![
        PartLayout {
            part_number: 1,
            plain_size: 0
        };
        MAX_PARTS + 1
    ];
    assert!(bad.encode().is_err(), "too many parts");
    bad = env.clone();
    bad.key = KeyReference {
        kind: WrapKind::CustomerKey,
        key_id: String::new(),
        key_version: 0,
        wrapped_key: vec![7; 31],
    };
    assert!(bad.encode().is_err(), "short fingerprint");
    bad.key.wrapped_key.push(7);
    assert_eq!(
        Envelope::decode(&bad.encode().expect("valid SSE-C")),
        Ok(bad.clone())
    );

    // 10 000 parts is the maximum and decodes.
    bad.parts = (1..=MAX_PARTS as u32)
        .map(|part_number| PartLayout {
            part_number,
            plain_size: 1,
        })
        .collect();
    assert_eq!(Envelope::decode(&bad.encode().expect("valid")), Ok(bad));
}

#[test]
fn envelope_every_single_byte_change_is_refused_or_visible() {
    let env = envelope();
    let bytes = env.encode().expect("valid");
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut changed = bytes.clone();
            changed[i] ^= flip;
            if let Ok(decoded) = Envelope::decode(&changed) {
                assert_ne!(decoded, env, "byte {i} ^ {flip:#x}");
                assert_eq!(decoded.encode().expect("decoded is valid"), changed);
            }
        }
        assert!(Envelope::decode(&bytes[..i]).is_err(), "truncated to {i}");
    }
}

#[test]
fn object_ranges_span_parts() {
    let env = envelope();
    let mib5 = 5u64 << 20;
    let pieces = env.plan_range(mib5 - 10..mib5 + 20).expect("valid");
    assert_eq!(
        pieces.len(),
        2,
        "the empty part 2 holds no byte of the range"
    );
    assert_eq!(
        (pieces[0].part_number, pieces[0].plain.clone()),
        (1, mib5 - 10..mib5)
    );
    assert_eq!((pieces[1].part_number, pieces[1].plain.clone()), (9, 0..20));
    assert_eq!(
        env.plan_range(0..env.plain_size() + 1),
        Err(CryptoError::Range)
    );

    // A multipart object sealed and read back through the envelope's plans.
    let plaintexts: Vec<Vec<u8>> = env
        .parts
        .iter()
        .map(|p| pattern(p.plain_size as usize))
        .collect();
    let blobs: Vec<Vec<u8>> = env
        .parts
        .iter()
        .zip(&plaintexts)
        .map(|(p, plain)| seal_all(env.algorithm, &dek(), &env.object_id, p.part_number, plain))
        .collect();
    let whole: Vec<u8> = plaintexts.concat();
    for range in [0..env.plain_size(), 3..mib5 + 1000, mib5 + 1..mib5 + 2] {
        let mut out = Vec::new();
        for piece in env.plan_range(range.clone()).expect("valid") {
            let index = env
                .parts
                .iter()
                .position(|p| p.part_number == piece.part_number)
                .expect("planned parts are in the layout");
            let sealed =
                &blobs[index][piece.plan.sealed.start as usize..piece.plan.sealed.end as usize];
            PartOpener::new(env.algorithm, &dek(), &env.object_id, piece.part_number)
                .open_range(&piece.plan, sealed, &mut out)
                .expect("opens");
        }
        assert_eq!(out, &whole[range.start as usize..range.end as usize]);
    }
}

#[test]
fn debug_output_shows_no_key_material() {
    let key = PartKey::derive(Algorithm::Aes256Gcm, &dek(), &object_id(), 0);
    assert_eq!(format!("{key:?}"), "PartKey(<redacted>)");
    let opener = PartOpener::new(Algorithm::Aes256Gcm, &dek(), &object_id(), 0);
    assert_eq!(format!("{opener:?}"), "PartOpener(<redacted>)");
    let sealer = PartSealer::new(Algorithm::Aes256Gcm, &dek(), &object_id(), 0);
    assert!(!format!("{sealer:?}").contains("dc16"));
}

fn interesting_size() -> impl Strategy<Value = usize> {
    let c = CHUNK_SIZE;
    prop_oneof![
        prop::sample::select(vec![0, 1, c - 1, c, c + 1, 3 * c + 5]),
        0..=300 * 1024usize,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Seal in random pieces, open whole and in random ranges.
    #[test]
    fn round_trip_in_pieces_and_ranges(
        size in interesting_size(),
        sm4 in any::<bool>(),
        pieces in prop::collection::vec(0..150_000usize, 1..12),
        ranges in prop::collection::vec((any::<u64>(), any::<u64>()), 4),
    ) {
        let algorithm = if sm4 { Algorithm::Sm4Gcm } else { Algorithm::Aes256Gcm };
        let plaintext = pattern(size);
        let mut sealer = PartSealer::new(algorithm, &dek(), &object_id(), 42);
        let mut sealed = Vec::new();
        let mut rest = &plaintext[..];
        for piece in pieces.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (now, later) = rest.split_at((*piece).clamp(1, rest.len()));
            let before = sealed.len();
            sealer.push(now, &mut sealed).expect("small part");
            // Output comes in whole sealed chunks only.
            prop_assert_eq!((sealed.len() - before) % SEALED_CHUNK_SIZE, 0);
            rest = later;
        }
        prop_assert_eq!(sealer.finish(&mut sealed), size as u64);
        prop_assert_eq!(sealed.len() as u64, sealed_size(size as u64));
        prop_assert_eq!(&sealed, &seal_all(algorithm, &dek(), &object_id(), 42, &plaintext));
        let opened = open_all(algorithm, &dek(), &object_id(), 42, size as u64, &sealed);
        prop_assert_eq!(opened.expect("opens"), plaintext.clone());

        let opener = PartOpener::new(algorithm, &dek(), &object_id(), 42);
        for (a, b) in ranges {
            if size == 0 {
                break;
            }
            let (a, b) = (a % size as u64, b % size as u64);
            let range = a.min(b)..a.max(b) + 1;
            let plan = plan_range(size as u64, range.clone()).expect("valid range");
            let mut out = Vec::new();
            let read = &sealed[plan.sealed.start as usize..plan.sealed.end as usize];
            opener.open_range(&plan, read, &mut out).expect("opens");
            prop_assert_eq!(&out[..], &plaintext[range.start as usize..range.end as usize]);
        }
    }

    /// A plan split into batches is the planner's own plan of each batch's
    /// plaintext, and the batches tile the whole plan.
    #[test]
    fn batches_are_plans_of_their_pieces(
        size in 0..(40 * CHUNK_SIZE as u64),
        a in any::<u64>(),
        b in any::<u64>(),
        max_chunks in 0..6u64,
    ) {
        let range = if size == 0 { 0..0 } else {
            let (a, b) = (a % size, b % size);
            a.min(b)..a.max(b) + 1
        };
        let plan = plan_range(size, range.clone()).expect("valid range");
        let mut at = range.start;
        let mut sealed_at = plan.sealed.start;
        let mut count = 0;
        for batch in plan.batches(max_chunks) {
            count += 1;
            prop_assert!(batch.last_chunk - batch.first_chunk < max_chunks.max(1));
            prop_assert_eq!(batch.sealed.start, sealed_at);
            let piece = at..at + batch.len;
            prop_assert_eq!(&batch, &plan_range(size, piece.clone()).expect("a batch is a valid range"));
            at = piece.end;
            sealed_at = batch.sealed.end;
        }
        prop_assert!(count >= 1);
        prop_assert_eq!(at, range.end);
        prop_assert_eq!(sealed_at, plan.sealed.end);
    }

    /// Any byte flip in a small sealed part is detected.
    #[test]
    fn any_flip_is_detected(size in 0..2000usize, pos in any::<usize>(), flip in 1..=255u8, sm4 in any::<bool>()) {
        let algorithm = if sm4 { Algorithm::Sm4Gcm } else { Algorithm::Aes256Gcm };
        let mut sealed = seal_all(algorithm, &dek(), &object_id(), 1, &pattern(size));
        let pos = pos % sealed.len();
        sealed[pos] ^= flip;
        prop_assert_eq!(
            open_all(algorithm, &dek(), &object_id(), 1, size as u64, &sealed),
            Err(CryptoError::Decryption)
        );
    }

    /// Decoding arbitrary bytes never panics, and what decodes re-encodes to itself.
    #[test]
    fn envelope_decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(env) = Envelope::decode(&bytes) {
            prop_assert_eq!(env.encode().expect("decoded is valid"), bytes);
        }
    }

    /// Mutations of a valid envelope never panic either.
    #[test]
    fn envelope_mutations_never_panic(pos in any::<usize>(), value in any::<u8>(), cut in any::<usize>()) {
        let mut bytes = envelope().encode().expect("valid");
        let pos = pos % bytes.len();
        bytes[pos] = value;
        bytes.truncate(bytes.len() - cut % 8);
        if let Ok(env) = Envelope::decode(&bytes) {
            prop_assert_eq!(env.encode().expect("decoded is valid"), bytes);
        }
    }
}
