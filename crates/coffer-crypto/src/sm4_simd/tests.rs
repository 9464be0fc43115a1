#![forbid(unsafe_code)]

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{AesGcm, Tag};
use proptest::prelude::*;
use sm4::cipher::BlockEncrypt;

use super::derivation::{Derived, SBOX, derive};
use super::{Backend, Sm4};

/// GB/T 32907 Appendix A: key and plaintext.
const STANDARD: [u8; 16] = [
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
];

/// The backends this CPU runs: every one is tested, however it would be
/// picked (on a GFNI machine the AES-NI kernel runs here too).
fn available() -> Vec<Backend> {
    Backend::ALL
        .into_iter()
        .filter(|backend| backend.is_available())
        .collect()
}

fn keyed(key: &[u8; 16], backend: Backend) -> Sm4 {
    Sm4::with_backend(key, backend).expect("only available backends are asked for")
}

fn portable_gcm(key: &[u8; 16]) -> AesGcm<sm4::Sm4, U12> {
    AesGcm::new_from_slice(key).expect("16 bytes")
}

#[test]
fn detection_picks_the_first_available_backend_and_key_init_uses_it() {
    let detected = Backend::detect();
    assert_eq!(Some(&detected), available().first());
    assert_eq!(<Sm4 as KeyInit>::new(&STANDARD.into()).backend(), detected);
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("aes") {
        assert!(Backend::Avx2AesNi.is_available());
    }
    // Every x86-64 CPU with AES-NI has SSSE3: there the constant-time kernel is always
    // available, and the table-based portable cipher is never picked.
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("aes") {
        assert!(Backend::Ssse3AesNi.is_available());
        assert_ne!(detected, Backend::Portable);
    }
}

#[test]
fn standard_vector_on_every_backend() {
    let expected = [
        0x68, 0x1e, 0xdf, 0x34, 0xd2, 0x06, 0x96, 0x5e, 0x86, 0xb3, 0xe9, 0x4f, 0x53, 0x6e, 0x42,
        0x46,
    ];
    for backend in available() {
        let mut block = STANDARD.into();
        keyed(&STANDARD, backend).encrypt_block(&mut block);
        assert_eq!(block.as_slice(), expected, "{backend:?}");
    }
}

#[test]
fn million_iterations_vector_on_every_backend() {
    let expected = [
        0x59, 0x52, 0x98, 0xc7, 0xc6, 0xfd, 0x27, 0x1f, 0x04, 0x02, 0xf8, 0x04, 0xc3, 0x3d, 0x3f,
        0x66,
    ];
    for backend in available() {
        let cipher = keyed(&STANDARD, backend);
        let mut block = STANDARD.into();
        for _ in 0..1_000_000 {
            cipher.encrypt_block(&mut block);
        }
        assert_eq!(block.as_slice(), expected, "{backend:?}");
    }
}

#[test]
fn the_kernel_constants_are_the_derived_ones() {
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        derive(),
        Derived {
            gfni_pre: super::x86::GFNI_PRE,
            gfni_post: super::x86::GFNI_POST,
            aesni_pre: super::x86::AESNI_PRE,
            aesni_post: super::x86::AESNI_POST,
        }
    );
    #[cfg(not(target_arch = "x86_64"))]
    let _: Derived = derive();
}

#[cfg(target_arch = "x86_64")]
#[test]
fn every_simd_sbox_is_the_table_on_all_256_inputs() {
    for backend in available() {
        let Some(kernel) = super::x86::Kernel::detect(backend) else {
            continue;
        };
        for (inputs, outputs) in (0..=255u8)
            .collect::<Vec<_>>()
            .chunks_exact(4)
            .zip(SBOX.chunks_exact(4))
        {
            let word = u32::from_le_bytes(inputs.try_into().expect("4 bytes"));
            let expected = u32::from_le_bytes(outputs.try_into().expect("4 bytes"));
            assert_eq!(kernel.tau(word), expected, "{backend:?} on {inputs:02x?}");
        }
    }
}

#[test]
fn debug_names_the_backend_and_nothing_else() {
    for backend in available() {
        assert_eq!(
            format!("{:?}", keyed(&STANDARD, backend)),
            format!("Sm4 {{ backend: {backend:?}, .. }}")
        );
    }
}

#[test]
fn a_full_chunk_with_a_tail_seals_alike_on_every_backend() {
    let key = [0x42; 16];
    let nonce = [7u8; 12];
    let plain: Vec<u8> = (0..65_536 + 21).map(|i| (i * 31 % 251) as u8).collect();
    let mut expected = plain.clone();
    let expected_tag = portable_gcm(&key)
        .encrypt_in_place_detached(&nonce.into(), b"aad", &mut expected)
        .expect("far below the GCM limit");
    for backend in available() {
        let mut sealed = plain.clone();
        let tag = AesGcm::<Sm4, U12>::from(keyed(&key, backend))
            .encrypt_in_place_detached(&nonce.into(), b"aad", &mut sealed)
            .expect("far below the GCM limit");
        assert!(sealed == expected && tag == expected_tag, "{backend:?}");
    }
}

proptest! {
    #[test]
    fn blocks_match_the_portable_cipher(
        key in any::<[u8; 16]>(),
        blocks in prop::collection::vec(any::<[u8; 16]>(), 0..40),
    ) {
        let mut expected: Vec<_> = blocks.iter().map(|&b| b.into()).collect();
        sm4::Sm4::new(&key.into()).encrypt_blocks(&mut expected);
        for backend in available() {
            let mut got: Vec<_> = blocks.iter().map(|&b| b.into()).collect();
            keyed(&key, backend).encrypt_blocks(&mut got);
            prop_assert_eq!(&got, &expected, "{:?}", backend);
        }
    }

    #[test]
    fn gcm_matches_the_portable_cipher_and_opens_across_backends(
        key in any::<[u8; 16]>(),
        nonce in any::<[u8; 12]>(),
        aad in prop::collection::vec(any::<u8>(), 0..48),
        plain in prop::collection::vec(any::<u8>(), 0..1200),
    ) {
        let mut expected = plain.clone();
        let expected_tag = portable_gcm(&key)
            .encrypt_in_place_detached(&nonce.into(), &aad, &mut expected)
            .expect("far below the GCM limit");
        let backends = available();
        for (i, &backend) in backends.iter().enumerate() {
            let mut sealed = plain.clone();
            let tag = AesGcm::<Sm4, U12>::from(keyed(&key, backend))
                .encrypt_in_place_detached(&nonce.into(), &aad, &mut sealed)
                .expect("far below the GCM limit");
            prop_assert_eq!(&sealed, &expected, "{:?}", backend);
            prop_assert_eq!(tag, expected_tag, "{:?}", backend);

            // Opened by the next backend; a flipped tag bit is refused.
            let opener = AesGcm::<Sm4, U12>::from(keyed(&key, backends[(i + 1) % backends.len()]));
            let mut opened = sealed.clone();
            opener
                .decrypt_in_place_detached(&nonce.into(), &aad, &mut opened, &tag)
                .expect("sealed above under the same key");
            prop_assert_eq!(&opened, &plain);
            let mut forged: Tag = tag;
            forged[0] ^= 1;
            prop_assert!(opener
                .decrypt_in_place_detached(&nonce.into(), &aad, &mut sealed, &forged)
                .is_err());
        }
    }
}
