//! Replays every file of `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` through its target, then a few thousand
//! deterministic mutations of them: a stable-toolchain mini-fuzz that runs
//! in `cargo test`, so CI exercises every target without libFuzzer.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};

use coffer_fuzz::mutate::{Rng, mutate};
use coffer_fuzz::{TARGETS, Target, auth};

/// Mutated inputs per target: under a second each in the test build.
const MUTATIONS: usize = 20_000;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted by name (none if missing).
fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable corpus directory").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).expect("readable corpus file");
            (p, bytes)
        })
        .collect()
}

fn target(name: &str) -> Target {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("no target {name}"))
}

/// Runs `target` on `input`; on a panic, names the input and shows it.
fn run_one(name: &str, target: Target, origin: &str, input: &[u8]) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(input))) {
        eprintln!(
            "fuzz target {name} failed on {origin}; input ({} bytes): {:?}",
            input.len(),
            String::from_utf8_lossy(&input[..input.len().min(2000)])
        );
        resume_unwind(panic);
    }
}

fn replay(name: &str) {
    let target = target(name);
    let seeds = inputs("corpus", name);
    assert!(!seeds.is_empty(), "fuzz/corpus/{name}/ has no seeds");
    let regressions = inputs("regressions", name);
    for (path, bytes) in seeds.iter().chain(&regressions) {
        run_one(name, target, &path.display().to_string(), bytes);
    }
    let all: Vec<&[u8]> = seeds
        .iter()
        .chain(&regressions)
        .map(|(_, b)| &b[..])
        .collect();
    let mut rng = Rng::new(name.bytes().fold(0x9e37_79b9, |h: u64, b| {
        h.wrapping_mul(31).wrapping_add(u64::from(b))
    }));
    for i in 0..MUTATIONS {
        let seed = all[rng.below(all.len())];
        let other = all[rng.below(all.len())];
        let input = mutate(&mut rng, seed, other);
        run_one(name, target, &format!("mutation {i}"), &input);
    }
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*

        /// The tests above, `TARGETS` and `fuzz/fuzz_targets/` name the same
        /// targets, so none is forgotten by CI or by cargo-fuzz.
        #[test]
        fn every_target_is_replayed_and_has_a_fuzz_binary() {
            let mut tested = vec![$(stringify!($name)),*];
            tested.sort_unstable();
            let mut listed: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
            listed.sort_unstable();
            assert_eq!(tested, listed, "replay tests vs TARGETS");
            let mut binaries: Vec<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
                .expect("fuzz/fuzz_targets exists")
                .map(|e| e.expect("readable").file_name().to_string_lossy().replace(".rs", ""))
                .collect();
            binaries.sort_unstable();
            assert_eq!(binaries, listed, "fuzz/fuzz_targets vs TARGETS");
        }
    };
}

replay_tests!(
    sigv4,
    oss_v1,
    oss_v4,
    aws_chunked,
    xml_body,
    bucket_policy,
    policy,
    sse_context,
    range,
    envelope,
    sealed_chunk,
);

/// The signature seeds are real signed requests: most of them verify, so
/// the fuzzer starts from inputs that reach the signature comparison.
#[test]
fn signature_seeds_verify() {
    for (name, verifies) in [
        ("sigv4", auth::sigv4_verifies as fn(&[u8]) -> bool),
        ("oss_v1", auth::oss_v1_verifies),
        ("oss_v4", auth::oss_v4_verifies),
    ] {
        let seeds = inputs("corpus", name);
        let verified = seeds.iter().filter(|(_, b)| verifies(b)).count();
        assert!(
            verified * 10 >= seeds.len() * 8,
            "only {verified} of {} {name} seeds verify",
            seeds.len()
        );
    }
}
