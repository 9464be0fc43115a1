//! A tiny deterministic mutator, so that the replay test fuzzes a little on
//! the stable toolchain without libFuzzer: xorshift-driven byte flips,
//! insertions, deletions, duplications and splices of the seeds.

/// xorshift64*: fast, deterministic, good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Bytes that matter to the parsers under test: framing, separators and
/// the edges of number parsing.
const INTERESTING: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b";",
    b":",
    b",",
    b"=",
    b"&",
    b"-",
    b"/",
    b"%",
    b"%2",
    b"<",
    b"/>",
    b">",
    b"\"",
    b"0",
    b"ff",
    b"ffffffffffffffff",
    b"18446744073709551615",
    b"-1",
    b" ",
    b"\t",
    b"\0",
    b"\xff",
    b"\xc3",
    b"<![CDATA[",
    b"&amp;",
    b"&#0;",
    b"{",
    b"[",
    b"bytes=",
];

/// One to four random mutations of `seed`, sometimes spliced with `other`.
pub fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(8) {
            0 | 1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            2 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next_u64() as u8;
            }
            3 => {
                let token = INTERESTING[rng.below(INTERESTING.len())];
                out.splice(at..at, token.iter().copied());
            }
            4 if at < out.len() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
            5 if at < out.len() => {
                let end = (at + 1 + rng.below(32)).min(out.len());
                let copy = out[at..end].to_vec();
                out.splice(at..at, copy);
            }
            6 if !other.is_empty() => {
                let from = rng.below(other.len());
                let end = (from + 1 + rng.below(64)).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            _ => out.truncate(at),
        }
    }
    out
}
