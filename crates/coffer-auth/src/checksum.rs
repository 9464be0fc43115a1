//! Payload checksums: the `x-amz-checksum-*` algorithms (base64 of the
//! big-endian digest) and CRC-64/XZ for OSS's `x-oss-hash-crc64ecma`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crc::{CRC_32_ISCSI, CRC_32_ISO_HDLC, CRC_64_NVME, CRC_64_XZ, Crc, Digest, Table};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

static CRC32: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISO_HDLC);
static CRC32C: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISCSI);
static CRC64_NVME: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_NVME);
static CRC64_XZ: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_XZ);

/// A checksum algorithm of the S3 flexible-checksum family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    /// CRC-32/ISO-HDLC (the zlib CRC).
    Crc32,
    /// CRC-32C (Castagnoli).
    Crc32c,
    /// CRC-64/NVME.
    Crc64Nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl ChecksumAlgorithm {
    /// All algorithms, in a stable order.
    pub const ALL: [Self; 5] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Crc64Nvme,
        Self::Sha1,
        Self::Sha256,
    ];

    /// From an `x-amz-checksum-algorithm` value such as `CRC32` (any case).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name.trim()))
    }

    /// From a header name such as `x-amz-checksum-crc32` (any case).
    pub fn from_header_name(header: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.header_name().eq_ignore_ascii_case(header.trim()))
    }

    /// The name used in `x-amz-checksum-algorithm`, e.g. `CRC32`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    /// The checksum header, e.g. `x-amz-checksum-crc32`.
    pub fn header_name(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64Nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    /// A fresh incremental checksummer.
    pub fn checksummer(self) -> Checksummer {
        Checksummer::new(self)
    }

    /// The base64 checksum of `data` in one call.
    pub fn checksum(self, data: &[u8]) -> String {
        let mut c = self.checksummer();
        c.update(data);
        c.finish()
    }
}

/// An incremental checksum; [`Checksummer::finish`] gives the header value.
#[derive(Clone)]
pub struct Checksummer(State);

#[derive(Clone)]
enum State {
    Crc32(Digest<'static, u32, Table<16>>),
    Crc32c(Digest<'static, u32, Table<16>>),
    Crc64Nvme(Digest<'static, u64, Table<16>>),
    Sha1(Sha1),
    Sha256(Sha256),
}

impl std::fmt::Debug for Checksummer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Checksummer")
            .field(&self.algorithm())
            .finish()
    }
}

impl Checksummer {
    /// A fresh checksummer for `algorithm`.
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        Self(match algorithm {
            ChecksumAlgorithm::Crc32 => State::Crc32(CRC32.digest()),
            ChecksumAlgorithm::Crc32c => State::Crc32c(CRC32C.digest()),
            ChecksumAlgorithm::Crc64Nvme => State::Crc64Nvme(CRC64_NVME.digest()),
            ChecksumAlgorithm::Sha1 => State::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => State::Sha256(Sha256::new()),
        })
    }

    /// The algorithm being computed.
    pub fn algorithm(&self) -> ChecksumAlgorithm {
        match self.0 {
            State::Crc32(_) => ChecksumAlgorithm::Crc32,
            State::Crc32c(_) => ChecksumAlgorithm::Crc32c,
            State::Crc64Nvme(_) => ChecksumAlgorithm::Crc64Nvme,
            State::Sha1(_) => ChecksumAlgorithm::Sha1,
            State::Sha256(_) => ChecksumAlgorithm::Sha256,
        }
    }

    /// Feeds more data.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            State::Crc32(d) | State::Crc32c(d) => d.update(data),
            State::Crc64Nvme(d) => d.update(data),
            State::Sha1(d) => d.update(data),
            State::Sha256(d) => d.update(data),
        }
    }

    /// The big-endian digest bytes.
    pub fn finish_bytes(self) -> Vec<u8> {
        match self.0 {
            State::Crc32(d) | State::Crc32c(d) => d.finalize().to_be_bytes().to_vec(),
            State::Crc64Nvme(d) => d.finalize().to_be_bytes().to_vec(),
            State::Sha1(d) => d.finalize().to_vec(),
            State::Sha256(d) => d.finalize().to_vec(),
        }
    }

    /// The digest as base64, the form of the `x-amz-checksum-*` headers.
    pub fn finish(self) -> String {
        BASE64.encode(self.finish_bytes())
    }
}

/// CRC-64/XZ of `data` (what OSS calls crc64ecma).
pub fn crc64_xz(data: &[u8]) -> u64 {
    CRC64_XZ.checksum(data)
}

/// Incremental CRC-64/XZ.
#[derive(Clone)]
pub struct Crc64Xz(Digest<'static, u64, Table<16>>);

impl Default for Crc64Xz {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc64Xz {
    /// A fresh CRC-64/XZ.
    pub fn new() -> Self {
        Self(CRC64_XZ.digest())
    }

    /// Feeds more data.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The CRC value (OSS sends it as an unsigned decimal).
    pub fn finish(self) -> u64 {
        self.0.finalize()
    }
}

/// CRC-64/XZ of `a ‖ b` from the CRCs of `a` and `b` and the length of `b`,
/// without the data: how a multipart object's CRC is made from its parts'.
pub fn crc64_xz_combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    /// CRC-64/XZ's polynomial, bit-reflected.
    const POLY_REFLECTED: u64 = 0xC96C_5795_D787_0F42;
    combine_reflected(POLY_REFLECTED, 64, crc_a, crc_b, len_b)
}

/// The CRC of `a ‖ b` from the CRCs of `a` and `b` and the length of `b`,
/// for a reflected CRC of `width` bits (at most 64) with polynomial `poly`
/// (bit-reflected) whose initial value equals its final XOR (true of
/// CRC-32, CRC-32C, CRC-64/NVME and CRC-64/XZ).
///
/// This is zlib's `crc32_combine` method over GF(2): appending `len_b`
/// zero bytes to `a` is a linear map, applied by repeated squaring.
fn combine_reflected(poly: u64, width: usize, crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    type Matrix = [u64; 64];
    if len_b == 0 {
        return crc_a;
    }
    fn times(matrix: &Matrix, mut vector: u64) -> u64 {
        let mut sum = 0;
        let mut row = 0;
        while vector != 0 {
            if vector & 1 == 1 {
                sum ^= matrix[row];
            }
            vector >>= 1;
            row += 1;
        }
        sum
    }
    let square = |matrix: &Matrix| -> Matrix {
        std::array::from_fn(|n| {
            if n < width {
                times(matrix, matrix[n])
            } else {
                0
            }
        })
    };
    // The operator for one zero bit, then two, then four.
    let mut odd: Matrix = [0; 64];
    odd[0] = poly;
    for (n, row) in odd.iter_mut().enumerate().take(width).skip(1) {
        *row = 1 << (n - 1);
    }
    let mut even = square(&odd);
    odd = square(&even);
    let mut crc = crc_a;
    let mut len = len_b;
    loop {
        // Each squaring doubles the number of zero bytes the operator appends.
        even = square(&odd);
        if len & 1 == 1 {
            crc = times(&even, crc);
        }
        len >>= 1;
        if len == 0 {
            break;
        }
        odd = square(&even);
        if len & 1 == 1 {
            crc = times(&odd, crc);
        }
        len >>= 1;
        if len == 0 {
            break;
        }
    }
    crc ^ crc_b
}

impl ChecksumAlgorithm {
    /// Whether the algorithm is a CRC, whose value for a whole object can be
    /// combined from its parts' ([`ChecksumAlgorithm::combine`]).
    pub fn is_crc(self) -> bool {
        matches!(self, Self::Crc32 | Self::Crc32c | Self::Crc64Nvme)
    }

    /// The digest of `a ‖ b` from the digests (big-endian bytes) of `a` and
    /// `b` and the length of `b`; `None` for the SHA algorithms (which cannot
    /// be combined) or digests of the wrong length.
    pub fn combine(self, a: &[u8], b: &[u8], len_b: u64) -> Option<Vec<u8>> {
        fn number(bytes: &[u8]) -> u64 {
            bytes.iter().fold(0, |n, &b| (n << 8) | u64::from(b))
        }
        let (poly, width) = match self {
            Self::Crc32 => (0xEDB8_8320, 32),
            Self::Crc32c => (0x82F6_3B78, 32),
            Self::Crc64Nvme => (0x9A6C_9329_AC4B_C9B5, 64),
            Self::Sha1 | Self::Sha256 => return None,
        };
        if a.len() != self.digest_len() || b.len() != self.digest_len() {
            return None;
        }
        let crc = combine_reflected(poly, width, number(a), number(b), len_b);
        Some(crc.to_be_bytes()[8 - self.digest_len()..].to_vec())
    }
}

#[cfg(test)]
mod combine_tests {
    use super::*;

    #[test]
    fn combining_equals_hashing_the_concatenation() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for split in [0, 1, 7, 8, 4096, 65_535, 65_536, 69_999, 70_000] {
            let (a, b) = data.split_at(split);
            assert_eq!(
                crc64_xz_combine(crc64_xz(a), crc64_xz(b), b.len() as u64),
                crc64_xz(&data),
                "split at {split}"
            );
        }
        let parts: Vec<&[u8]> = data.chunks(9_999).collect();
        let combined = parts.iter().fold(crc64_xz(&[]), |acc, part| {
            crc64_xz_combine(acc, crc64_xz(part), part.len() as u64)
        });
        assert_eq!(combined, crc64_xz(&data));
    }

    /// The flexible-checksum CRCs combine too; SHA digests do not.
    #[test]
    fn flexible_crcs_combine() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for alg in ChecksumAlgorithm::ALL {
            let digest = |bytes: &[u8]| {
                let mut c = alg.checksummer();
                c.update(bytes);
                c.finish_bytes()
            };
            for split in [0, 1, 4096, 65_537, 70_000] {
                let (a, b) = data.split_at(split);
                let combined = alg.combine(&digest(a), &digest(b), b.len() as u64);
                match alg.is_crc() {
                    true => assert_eq!(combined, Some(digest(&data)), "{alg:?} at {split}"),
                    false => assert_eq!(combined, None),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_of(alg: ChecksumAlgorithm, data: &[u8]) -> String {
        let mut c = alg.checksummer();
        c.update(data);
        hex::encode(c.finish_bytes())
    }

    #[test]
    fn standard_check_values() {
        assert_eq!(hex_of(ChecksumAlgorithm::Crc32, b"123456789"), "cbf43926");
        assert_eq!(hex_of(ChecksumAlgorithm::Crc32c, b"123456789"), "e3069283");
        assert_eq!(
            hex_of(ChecksumAlgorithm::Crc64Nvme, b"123456789"),
            "ae8b14860a799888"
        );
        assert_eq!(
            hex_of(ChecksumAlgorithm::Sha1, b"abc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex_of(ChecksumAlgorithm::Sha256, b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(crc64_xz(b"123456789"), 0x995D_C9BB_DF19_39FA);
        let mut x = Crc64Xz::new();
        x.update(b"1234");
        x.update(b"56789");
        assert_eq!(x.finish(), 0x995D_C9BB_DF19_39FA);
    }

    #[test]
    fn captured_boto3_values() {
        assert_eq!(ChecksumAlgorithm::Crc32.checksum(b"hello-s3"), "dEQrjQ==");
        assert_eq!(ChecksumAlgorithm::Crc32.checksum(b"ssec"), "wkipZw==");
        assert_eq!(ChecksumAlgorithm::Crc32.checksum(b"kms"), "opzIvw==");
        assert_eq!(
            ChecksumAlgorithm::Crc32.checksum(&[b'z'; 70_000]),
            "VZtM0w=="
        );
        assert_eq!(
            ChecksumAlgorithm::Crc32.checksum(&b"hello-s3-tls".repeat(1000)),
            "eEQRVQ=="
        );
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        for alg in ChecksumAlgorithm::ALL {
            let mut c = alg.checksummer();
            for part in data.chunks(77) {
                c.update(part);
            }
            assert_eq!(c.finish(), alg.checksum(&data), "{alg:?}");
            assert_eq!(alg.checksummer().finish_bytes().len(), alg.digest_len());
        }
    }

    #[test]
    fn names() {
        for alg in ChecksumAlgorithm::ALL {
            assert_eq!(ChecksumAlgorithm::from_name(alg.name()), Some(alg));
            assert_eq!(
                ChecksumAlgorithm::from_header_name(alg.header_name()),
                Some(alg)
            );
        }
        assert_eq!(
            ChecksumAlgorithm::from_name("crc32c"),
            Some(ChecksumAlgorithm::Crc32c)
        );
        assert_eq!(
            ChecksumAlgorithm::from_header_name("X-Amz-Checksum-CRC64NVME"),
            Some(ChecksumAlgorithm::Crc64Nvme)
        );
        assert_eq!(ChecksumAlgorithm::from_name("MD5"), None);
        assert_eq!(ChecksumAlgorithm::from_header_name("x-amz-checksum-"), None);
    }
}
