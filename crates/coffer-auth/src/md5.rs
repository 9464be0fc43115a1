//! MD5 through aws-lc's assembly (`md5-x86_64`): the ETag of every stored
//! body and what `Content-MD5` is checked against. Measured on this project's
//! machine over 256 MiB: 790 MB/s a core, against 580 MB/s for RustCrypto's
//! `md-5` (soft) and 610 MB/s for its `asm` feature; MD5 was the largest
//! user-space cost of a PUT (issue 19). aws-lc is already built and linked
//! for AES-GCM, so this costs no compile time.
//!
//! The only unsafe code of this crate: three FFI calls. aws-lc-sys's default
//! bindings (without its `all-bindings` feature, which would rebuild
//! aws-lc) leave MD5 out, so they are declared here, as aws-lc's
//! `openssl/md5.h` declares them, under the version-prefixed names
//! aws-lc-sys links (the version is pinned with aws-lc-rs's in the
//! workspace manifest; another version fails to link, it cannot misbehave).
//! The safety argument:
//! - `Md5Ctx` is `MD5_CTX` field for field (`h[4]`, `Nl`, `Nh`,
//!   `data[64]`, `num`): plain integers and bytes, no pointers, so any bit
//!   pattern (all zeros before `MD5_Init`) is a valid value; cloning it is a
//!   byte copy, and it may move between threads.
//! - `MD5_Init`, `MD5_Update` and `MD5_Final` only read and write the
//!   context they are given (a `&mut` to a live value we own, so valid and
//!   exclusive for the call), `MD5_Update` reads exactly `len` bytes from
//!   `data` (a live `&[u8]` of that length), and `MD5_Final` writes exactly
//!   16 bytes to `out` (a live `[u8; 16]`). None keeps a pointer past the
//!   call. They always return 1 (they cannot fail), so the results are not
//!   checked.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_uint, c_void};

// Links aws-lc's static library, where the functions below live.
use aws_lc_sys as _;

/// aws-lc's `MD5_CTX` (`md5_state_st`).
#[repr(C)]
#[derive(Clone, Copy)]
struct Md5Ctx {
    h: [u32; 4],
    nl: u32,
    nh: u32,
    data: [u8; 64],
    num: c_uint,
}

unsafe extern "C" {
    #[link_name = "aws_lc_0_47_0_MD5_Init"]
    fn MD5_Init(md5: *mut Md5Ctx) -> c_int;
    #[link_name = "aws_lc_0_47_0_MD5_Update"]
    fn MD5_Update(md5: *mut Md5Ctx, data: *const c_void, len: usize) -> c_int;
    #[link_name = "aws_lc_0_47_0_MD5_Final"]
    fn MD5_Final(out: *mut u8, md5: *mut Md5Ctx) -> c_int;
}

/// An incremental MD5.
#[derive(Clone)]
pub struct Md5(Md5Ctx);

impl Md5 {
    /// A fresh hash.
    pub fn new() -> Self {
        let mut ctx = Md5Ctx {
            h: [0; 4],
            nl: 0,
            nh: 0,
            data: [0; 64],
            num: 0,
        };
        // SAFETY: see the module docs.
        unsafe { MD5_Init(&mut ctx) };
        Md5(ctx)
    }

    /// Hashes `data` next.
    pub fn update(&mut self, data: &[u8]) {
        // SAFETY: see the module docs.
        unsafe { MD5_Update(&mut self.0, data.as_ptr().cast(), data.len()) };
    }

    /// The digest of everything hashed so far.
    pub fn finish(mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        // SAFETY: see the module docs.
        unsafe { MD5_Final(out.as_mut_ptr(), &mut self.0) };
        out
    }

    /// The digest of `data`.
    pub fn digest(data: &[u8]) -> [u8; 16] {
        let mut md5 = Md5::new();
        md5.update(data);
        md5.finish()
    }
}

impl Default for Md5 {
    fn default() -> Self {
        Md5::new()
    }
}

impl std::fmt::Debug for Md5 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Md5")
    }
}

#[cfg(test)]
mod tests {
    use super::Md5;
    use md5::Digest as _;
    use proptest::prelude::*;

    /// RFC 1321's test suite.
    #[test]
    fn rfc_1321_vectors() {
        let cases: [(&[u8], &str); 4] = [
            (b"", "d41d8cd98f00b204e9800998ecf8427e"),
            (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
            (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(hex::encode(Md5::digest(input)), expected);
        }
    }

    proptest! {
        /// Any input, split anywhere, hashes as RustCrypto's MD5 does; a
        /// clone taken midway goes on independently.
        #[test]
        fn matches_rustcrypto_in_any_pieces(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            cuts in proptest::collection::vec(any::<usize>(), 0..5),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (data.len() + 1)).collect();
            cuts.sort_unstable();
            let mut ours = Md5::new();
            let mut at = 0;
            for cut in cuts {
                ours.update(&data[at..cut]);
                at = cut;
            }
            let midway = ours.clone();
            ours.update(&data[at..]);
            let expected: [u8; 16] = md5::Md5::digest(&data).into();
            prop_assert_eq!(ours.finish(), expected);
            let mut rest = midway;
            rest.update(&data[at..]);
            prop_assert_eq!(rest.finish(), expected);
        }
    }
}
