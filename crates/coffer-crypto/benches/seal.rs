//! Throughput of the sealed-object format against the raw ciphers
//! (criterion): `cargo bench -p coffer-crypto`.
//!
//! - `raw/<algorithm>/<size>`: the bare AEAD sealing a buffer in place
//!   (aws-lc-rs `LessSafeKey` for AES-256-GCM; for SM4-GCM, RustCrypto's
//!   `AesGcm` over [`coffer_crypto::sm4_simd::Sm4`] once per SM4 backend this
//!   CPU runs, `SM4-GCM-<sm4 backend>` (the old way, one GHASH reduction per
//!   block), and the composed [`Sm4Gcm`] as `SM4-GCM-<sm4>+<ghash backend>`:
//!   every SM4 backend with the fastest GHASH, and the fastest SM4 with every
//!   GHASH), the ceiling for everything else; `raw-open/…` the same opening
//!   (tag checked, then deciphered);
//! - `block/SM4-<backend>/64KiB`: the bare SM4 block cipher over 4096
//!   blocks (`encrypt_blocks`), so that the cipher's share of SM4-GCM shows
//!   beside GHASH's;
//! - `seal/<algorithm>/<size>`: a whole part through [`PartSealer`] (key
//!   derivation, 64 KiB chunks, the copy into the output), one thread;
//! - `seal-parallel/<algorithm>/<size>`: the same across all cores;
//! - `open/<algorithm>/<size>`: that part back through [`PartOpener`]
//!   (`open_range` over the whole part, as a GET does).
//!
//! `seal` and `open` run SM4 on the backend the CPU detection picks.
//!
//! Throughput is in plaintext bytes. The measurement times are short so
//! that the run takes about a minute on a small machine.

use std::hint::black_box;
use std::time::Duration;

use aes_gcm::AesGcm;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::consts::U12;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use coffer_crypto::SymmetricKey;
use coffer_crypto::sealed::{Algorithm, ObjectId, PartOpener, PartSealer, plan_range};
use coffer_crypto::sm4_simd::{Backend, GhashBackend, Sm4, Sm4Gcm};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sm4::cipher::BlockEncrypt;

/// Part sizes: a small object, one chunk, a typical GET batch, a large part.
const SIZES: [usize; 4] = [4 << 10, 64 << 10, 1 << 20, 16 << 20];
const ALGORITHMS: [(&str, Algorithm); 2] = [
    ("AES-256-GCM", Algorithm::Aes256Gcm),
    ("SM4-GCM", Algorithm::Sm4Gcm),
];

fn label(size: usize) -> String {
    match size {
        s if s >= 1 << 20 => format!("{}MiB", s >> 20),
        s => format!("{}KiB", s >> 10),
    }
}

/// The bare cipher, sealing `buf` in place under a fixed nonce per call
/// (fine for a benchmark, never for data).
fn raw(c: &mut Criterion) {
    let aad = [0u8; 38];
    let nonce = [0u8; 12];
    let mut group = c.benchmark_group("raw");
    for size in [4 << 10, 64 << 10] {
        let mut buf = vec![0x42u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        let aes = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).expect("32 bytes"));
        group.bench_function(BenchmarkId::new("AES-256-GCM", label(size)), |b| {
            b.iter(|| {
                aes.seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&aad),
                    &mut buf,
                )
                .expect("the buffer is far below the GCM limit")
            })
        });
        for backend in Backend::ALL {
            let Some(cipher) = Sm4::with_backend(&[7; 16], backend) else {
                continue;
            };
            let sm4 = AesGcm::<Sm4, U12>::from(cipher);
            let name = format!("SM4-GCM-{backend:?}");
            group.bench_function(BenchmarkId::new(name, label(size)), |b| {
                b.iter(|| {
                    sm4.encrypt_in_place_detached(&nonce.into(), &aad, &mut buf)
                        .expect("the buffer is far below the GCM limit")
                })
            });
        }
        for (sm4, ghash) in composed_pairs() {
            let gcm = Sm4Gcm::with_backends(&[7; 16], sm4, ghash).expect("available");
            let name = format!("SM4-GCM-{sm4:?}+{ghash:?}");
            group.bench_function(BenchmarkId::new(name, label(size)), |b| {
                b.iter(|| {
                    gcm.seal_in_place(&nonce, &aad, &mut buf)
                        .expect("the buffer is far below the GCM limit")
                })
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("raw-open");
    let size = 64 << 10;
    group.throughput(Throughput::Bytes(size as u64));
    let old = AesGcm::<Sm4, U12>::from(
        Sm4::with_backend(&[7; 16], Backend::detect()).expect("available"),
    );
    let mut sealed = vec![0x42u8; size];
    let tag = old
        .encrypt_in_place_detached(&nonce.into(), &aad, &mut sealed)
        .expect("the buffer is far below the GCM limit");
    let mut buf = sealed.clone();
    group.bench_function(
        BenchmarkId::new(format!("SM4-GCM-{:?}", Backend::detect()), label(size)),
        |b| {
            b.iter(|| {
                buf.copy_from_slice(&sealed);
                old.decrypt_in_place_detached(&nonce.into(), &aad, &mut buf, &tag)
                    .expect("sealed above")
            })
        },
    );
    let gcm = Sm4Gcm::new(&[7; 16]);
    let (sm4, ghash) = gcm.backends();
    group.bench_function(
        BenchmarkId::new(format!("SM4-GCM-{sm4:?}+{ghash:?}"), label(size)),
        |b| {
            b.iter(|| {
                buf.copy_from_slice(&sealed);
                gcm.open_in_place(&nonce, &aad, &mut buf, &tag.into())
                    .expect("sealed above")
            })
        },
    );
    group.finish();
}

/// The composed SM4-GCM's backend pairs worth timing: every SM4 backend
/// with the fastest GHASH, and the fastest SM4 with every CLMUL GHASH.
fn composed_pairs() -> Vec<(Backend, GhashBackend)> {
    let clmul: Vec<_> = GhashBackend::ALL
        .into_iter()
        .filter(|g| *g != GhashBackend::Portable && g.is_available())
        .collect();
    let Some(&fastest) = clmul.first() else {
        return Vec::new();
    };
    let mut pairs: Vec<_> = Backend::ALL
        .into_iter()
        .filter(|b| b.is_available())
        .map(|sm4| (sm4, fastest))
        .collect();
    pairs.extend(clmul.into_iter().skip(1).map(|g| (Backend::detect(), g)));
    pairs
}

/// The bare SM4 block cipher, per backend.
fn block(c: &mut Criterion) {
    let mut group = c.benchmark_group("block");
    let mut blocks = vec![[0x42u8; 16].into(); 4096];
    group.throughput(Throughput::Bytes(4096 * 16));
    for backend in Backend::ALL {
        let Some(cipher) = Sm4::with_backend(&[7; 16], backend) else {
            continue;
        };
        let name = format!("SM4-{backend:?}");
        group.bench_function(BenchmarkId::new(name, "64KiB"), |b| {
            b.iter(|| cipher.encrypt_blocks(black_box(&mut blocks)))
        });
    }
    group.finish();
}

fn seal_part(
    algorithm: Algorithm,
    dek: &SymmetricKey,
    id: &ObjectId,
    plain: &[u8],
    threads: usize,
    out: &mut Vec<u8>,
) -> u64 {
    out.clear();
    let mut sealer = PartSealer::new(algorithm, dek, id, 1).threads(threads);
    // 1 MiB pieces, as the server feeds its sealer.
    for piece in plain.chunks(1 << 20) {
        sealer
            .push(piece, out)
            .expect("16 MiB is far below the part limit");
    }
    sealer.finish(out)
}

fn sealed_object(c: &mut Criterion) {
    let dek = SymmetricKey::from_slice(&[9; 32]).expect("32 bytes");
    let id = ObjectId([3; 16]);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (name, threads) in [("seal", 1), ("seal-parallel", cores)] {
        let mut group = c.benchmark_group(name);
        for (algorithm_name, algorithm) in ALGORITHMS {
            for size in SIZES {
                let plain = vec![0x5Au8; size];
                let mut out = Vec::with_capacity(size + size / 4096 + 64);
                group.throughput(Throughput::Bytes(size as u64));
                group.bench_function(BenchmarkId::new(algorithm_name, label(size)), |b| {
                    b.iter(|| seal_part(algorithm, &dek, &id, black_box(&plain), threads, &mut out))
                });
            }
        }
        group.finish();
    }
    let mut group = c.benchmark_group("open");
    for (algorithm_name, algorithm) in ALGORITHMS {
        for size in SIZES {
            let mut sealed = Vec::new();
            seal_part(algorithm, &dek, &id, &vec![0x5Au8; size], 1, &mut sealed);
            let plan = plan_range(size as u64, 0..size as u64).expect("the whole part");
            let mut out = Vec::with_capacity(size);
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_function(BenchmarkId::new(algorithm_name, label(size)), |b| {
                b.iter(|| {
                    out.clear();
                    let opener = PartOpener::new(algorithm, &dek, &id, 1);
                    opener
                        .open_range(&plan, black_box(&sealed), &mut out)
                        .expect("sealed above with the same key")
                })
            });
        }
    }
    group.finish();
}

fn short() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = short();
    targets = raw, block, sealed_object
}
criterion_main!(benches);
