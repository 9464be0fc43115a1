//! Throughput of the sealed-object format against the raw ciphers.
//!
//! `cargo bench -p coffer-crypto --bench seal` (no criterion: a plain main).
//! Prints MB/s (10^6 bytes per second of plaintext), best of three runs.

use std::hint::black_box;
use std::time::Instant;

use aes_gcm::AesGcm;
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use coffer_crypto::SymmetricKey;
use coffer_crypto::sealed::{
    Algorithm, CHUNK_SIZE, ObjectId, PartOpener, PartSealer, SEALED_CHUNK_SIZE,
};
use sm4::Sm4;

const STREAM: usize = 256 << 20;
const PIECE: usize = 1 << 20;
const RUNS: usize = 3;

/// Best MB/s of `RUNS` runs of `f`, which processes `bytes` bytes.
fn best(bytes: usize, mut f: impl FnMut()) -> f64 {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            bytes as f64 / start.elapsed().as_secs_f64() / 1e6
        })
        .fold(0.0, f64::max)
}

fn raw(algorithm: Algorithm) -> f64 {
    let mut buf = vec![0x42u8; CHUNK_SIZE];
    let aad = [0u8; 38];
    match algorithm {
        Algorithm::Aes256Gcm => {
            let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).expect("32 bytes"));
            best(STREAM, || {
                for i in 0..(STREAM / CHUNK_SIZE) as u32 {
                    let mut nonce = [0u8; 12];
                    nonce[7..11].copy_from_slice(&i.to_be_bytes());
                    let tag = key
                        .seal_in_place_separate_tag(
                            Nonce::assume_unique_for_key(nonce),
                            Aad::from(&aad),
                            &mut buf,
                        )
                        .expect("64 KiB");
                    let _ = black_box(tag);
                }
            })
        }
        Algorithm::Sm4Gcm => {
            let key = AesGcm::<Sm4, U12>::new_from_slice(&[7; 16]).expect("16 bytes");
            best(STREAM, || {
                for i in 0..(STREAM / CHUNK_SIZE) as u32 {
                    let mut nonce = [0u8; 12];
                    nonce[7..11].copy_from_slice(&i.to_be_bytes());
                    let tag = key
                        .encrypt_in_place_detached(&nonce.into(), &aad, &mut buf)
                        .expect("64 KiB");
                    let _ = black_box(tag);
                }
            })
        }
    }
}

fn seal(
    algorithm: Algorithm,
    dek: &SymmetricKey,
    id: &ObjectId,
    plain: &[u8],
    threads: usize,
) -> (f64, Vec<u8>) {
    let mut sealed = Vec::with_capacity(STREAM + STREAM / 4096 + SEALED_CHUNK_SIZE);
    let speed = best(plain.len(), || {
        sealed.clear();
        let mut sealer = PartSealer::new(algorithm, dek, id, 1).threads(threads);
        for piece in plain.chunks(PIECE) {
            sealer
                .push(piece, &mut sealed)
                .expect("256 MiB is far below the limit");
        }
        black_box(sealer.finish(&mut sealed));
    });
    (speed, sealed)
}

fn open(algorithm: Algorithm, dek: &SymmetricKey, id: &ObjectId, sealed: &[u8]) -> f64 {
    let opener = PartOpener::new(algorithm, dek, id, 1);
    let chunks = sealed.len().div_ceil(SEALED_CHUNK_SIZE);
    let mut out = Vec::with_capacity(SEALED_CHUNK_SIZE);
    best(STREAM, || {
        for (i, chunk) in sealed.chunks(SEALED_CHUNK_SIZE).enumerate() {
            out.clear();
            opener
                .open_chunk(i as u64, i + 1 == chunks, chunk, &mut out)
                .expect("sealed above");
            black_box(&out);
        }
    })
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dek = SymmetricKey::from_slice(&[9; 32]).expect("32 bytes");
    let id = ObjectId([3; 16]);
    let plain: Vec<u8> = (0..STREAM).map(|i| (i % 251) as u8).collect();
    println!(
        "stream {} MiB in {} KiB pieces, best of {RUNS}, {cores} cores available",
        STREAM >> 20,
        PIECE >> 10
    );
    println!(
        "| algorithm | raw cipher MB/s | PartSealer MB/s | PartOpener MB/s | seal/raw | open/raw | parallel seal MB/s ({cores} threads) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, algorithm) in [
        ("AES-256-GCM", Algorithm::Aes256Gcm),
        ("SM4-GCM", Algorithm::Sm4Gcm),
    ] {
        let raw = raw(algorithm);
        let (sealed_speed, sealed) = seal(algorithm, &dek, &id, &plain, 1);
        let opened = open(algorithm, &dek, &id, &sealed);
        let parallel = seal(algorithm, &dek, &id, &plain, cores).0;
        println!(
            "| {name} | {raw:.0} | {sealed_speed:.0} | {opened:.0} | {:.2} | {:.2} | {parallel:.0} |",
            sealed_speed / raw,
            opened / raw
        );
    }
}
