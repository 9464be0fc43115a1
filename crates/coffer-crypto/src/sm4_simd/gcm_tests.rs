//! The composed SM4-GCM against `aes_gcm::AesGcm<sm4::Sm4, U12>` and its
//! GHASH against the `ghash` crate, on every backend pair this CPU runs.
#![forbid(unsafe_code)]

use aes_gcm::AesGcm;
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use proptest::prelude::*;

use super::{Backend, GhashBackend, Sm4Gcm};

/// Every (SM4, GHASH) pair this CPU runs, forced whatever detection picks.
fn pairs() -> Vec<(Backend, GhashBackend)> {
    let mut pairs = Vec::new();
    for sm4 in Backend::ALL.into_iter().filter(|b| b.is_available()) {
        for ghash in GhashBackend::ALL.into_iter().filter(|b| b.is_available()) {
            pairs.push((sm4, ghash));
        }
    }
    pairs
}

fn keyed(key: &[u8; 16], (sm4, ghash): (Backend, GhashBackend)) -> Sm4Gcm {
    Sm4Gcm::with_backends(key, sm4, ghash).expect("only available backends are asked for")
}

/// The reference: today's portable SM4-GCM.
fn reference(key: &[u8; 16], nonce: &[u8; 12], aad: &[u8], plain: &[u8]) -> (Vec<u8>, [u8; 16]) {
    let mut sealed = plain.to_vec();
    let tag = AesGcm::<sm4::Sm4, U12>::new_from_slice(key)
        .expect("16 bytes")
        .encrypt_in_place_detached(nonce.into(), aad, &mut sealed)
        .expect("far below the GCM limit");
    (sealed, tag.into())
}

/// Seals on `pair`, checks against the reference, opens, and checks that
/// a flipped bit (`flip` indexes the bits of C ‖ tag ‖ AAD) is refused
/// with the buffer left as ciphertext.
fn check(
    pair: (Backend, GhashBackend),
    key: &[u8; 16],
    nonce: &[u8; 12],
    aad: &[u8],
    plain: &[u8],
    flip: usize,
) {
    let (expected, expected_tag) = reference(key, nonce, aad, plain);
    let gcm = keyed(key, pair);
    let mut buf = plain.to_vec();
    let tag = gcm
        .seal_in_place(nonce, aad, &mut buf)
        .expect("far below the GCM limit");
    assert!(
        buf == expected,
        "{pair:?}: ciphertext of {} bytes",
        plain.len()
    );
    assert_eq!(tag, expected_tag, "{pair:?}: tag, {} bytes", plain.len());

    let mut opened = buf.clone();
    gcm.open_in_place(nonce, aad, &mut opened, &tag)
        .expect("sealed above");
    assert!(opened == plain, "{pair:?}: opened");

    let (mut forged, mut forged_tag, mut forged_aad) = (buf.clone(), tag, aad.to_vec());
    let bit = flip % ((forged.len() + 16 + forged_aad.len()) * 8);
    let (byte, mask) = (bit / 8, 1u8 << (bit % 8));
    if byte < forged.len() {
        forged[byte] ^= mask;
    } else if byte < forged.len() + 16 {
        forged_tag[byte - forged.len()] ^= mask;
    } else {
        forged_aad[byte - forged.len() - 16] ^= mask;
    }
    let given = forged.clone();
    assert!(
        gcm.open_in_place(nonce, &forged_aad, &mut forged, &forged_tag)
            .is_err(),
        "{pair:?}: bit {bit}"
    );
    assert!(
        forged == given,
        "{pair:?}: a refused buffer still holds the ciphertext"
    );
}

#[test]
fn detection_picks_the_fastest_backends() {
    let gcm = Sm4Gcm::new(&[1; 16]);
    assert_eq!(gcm.backends(), (Backend::detect(), GhashBackend::detect()));
    assert_eq!(
        Some(&GhashBackend::detect()),
        GhashBackend::ALL.iter().find(|b| b.is_available())
    );
}

#[test]
fn debug_names_the_backends_and_nothing_else() {
    for pair in pairs() {
        assert_eq!(
            format!("{:?}", keyed(&[0x5a; 16], pair)),
            format!("Sm4Gcm {{ sm4: {:?}, ghash: {:?}, .. }}", pair.0, pair.1)
        );
    }
}

#[test]
fn whole_chunks_and_their_neighbours_seal_alike_on_every_pair() {
    let key = [0x42; 16];
    let nonce = [7u8; 12];
    let aad = [9u8; 38];
    for len in [
        0,
        1,
        15,
        16,
        17,
        495,
        496,
        497,
        511,
        512,
        513,
        65_535,
        65_536,
        65_537,
        65_536 + 21,
    ] {
        let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        for pair in pairs() {
            check(pair, &key, &nonce, &aad, &plain, len * 8 + 5);
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn reference_ghash(h: &[u8; 16], data: &[u8]) -> [u8; 16] {
    use ghash::universal_hash::{KeyInit, UniversalHash};
    let mut ghash = ghash::GHash::new(h.into());
    ghash.update_padded(data);
    ghash.finalize().into()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn composed_gcm_matches_the_portable_one(
        key in any::<[u8; 16]>(),
        nonce in any::<[u8; 12]>(),
        aad in prop::collection::vec(any::<u8>(), 0..=64),
        blocks in 0usize..=300,
        tail in 0usize..16,
        seed in any::<u8>(),
        flip in any::<usize>(),
    ) {
        let plain: Vec<u8> = (0..blocks * 16 + tail).map(|i| (i as u8).wrapping_mul(seed) ^ (i >> 8) as u8).collect();
        for pair in pairs() {
            check(pair, &key, &nonce, &aad, &plain, flip);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn clmul_ghash_matches_the_ghash_crate(
        h in any::<[u8; 16]>(),
        data in prop::collection::vec(any::<u8>(), 0..1200),
        split_blocks in 0usize..80,
    ) {
        let expected = reference_ghash(&h, &data);
        let split = (split_blocks * 16).min(data.len() / 16 * 16);
        for backend in GhashBackend::ALL {
            if let Some(got) = super::gcm::ghash(&h, backend, &[&data]) {
                prop_assert_eq!(got, expected, "{:?}", backend);
            }
            // Updates in two pieces cut at a block boundary: the same.
            if let Some(got) = super::gcm::ghash(&h, backend, &[&data[..split], &data[split..]]) {
                prop_assert_eq!(got, expected, "{:?} split at {}", backend, split);
            }
        }
    }
}
