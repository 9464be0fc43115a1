//! Fuzz targets for Coffer's parsers of client input and stored bytes.
//!
//! Each target is a `fn(&[u8])` that drives the real parser and asserts its
//! invariants: no panic, and where cheap a property that ties the result to
//! the input (an envelope re-encodes to the same bytes, a range lies inside
//! the object, a verified request stops verifying under another secret…).
//! A broken invariant panics, which is what a fuzzer reports.
//!
//! The targets run two ways:
//! * `fuzz/` (cargo-fuzz, libFuzzer): `fuzz_targets/<name>.rs` calls the
//!   function of the same name; see `docs/reliability.md` § Fuzzing.
//! * `tests/replay.rs` on the stable toolchain, in `cargo test`: every file
//!   of `fuzz/corpus/<name>/` and `fuzz/regressions/<name>/`, then a few
//!   thousand deterministic mutations of them ([`mutate`]).
#![forbid(unsafe_code)]

pub mod auth;
pub mod bodies;
pub mod chunked;
pub mod mutate;
pub mod policy;
pub mod sealed;

/// A fuzz target: any bytes in, a panic if an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target by name; the name is also its corpus directory and its
/// cargo-fuzz binary.
pub const TARGETS: &[(&str, Target)] = &[
    ("sigv4", auth::sigv4),
    ("oss_v1", auth::oss_v1),
    ("oss_v4", auth::oss_v4),
    ("aws_chunked", chunked::aws_chunked),
    ("xml_body", bodies::xml_body),
    ("bucket_policy", bodies::bucket_policy),
    ("policy", policy::policy),
    ("sse_context", bodies::sse_context),
    ("range", bodies::range),
    ("envelope", sealed::envelope),
    ("sealed_chunk", sealed::sealed_chunk),
];
