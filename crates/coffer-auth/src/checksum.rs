//! Payload checksums: the `x-amz-checksum-*` algorithms (base64 of the
//! big-endian digest) and CRC-64/XZ for OSS's `x-oss-hash-crc64ecma`.
//!
//! The CRCs come from `crc-fast`, which folds with carry-less multiply
//! (PCLMULQDQ, VPCLMULQDQ on AVX-512, PMULL on ARM; chosen at run time,
//! with a table fallback): tens of GB/s a core where a table CRC-64 runs
//! at about 1 GB/s, so the CRC-64 every PUT keeps costs next to nothing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crc_fast::CrcAlgorithm;
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

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
    Crc32(crc_fast::Digest),
    Crc32c(crc_fast::Digest),
    Crc64Nvme(crc_fast::Digest),
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
            ChecksumAlgorithm::Crc32 => {
                State::Crc32(crc_fast::Digest::new(CrcAlgorithm::Crc32IsoHdlc))
            }
            ChecksumAlgorithm::Crc32c => {
                State::Crc32c(crc_fast::Digest::new(CrcAlgorithm::Crc32Iscsi))
            }
            ChecksumAlgorithm::Crc64Nvme => {
                State::Crc64Nvme(crc_fast::Digest::new(CrcAlgorithm::Crc64Nvme))
            }
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
            State::Crc32(d) | State::Crc32c(d) | State::Crc64Nvme(d) => d.update(data),
            State::Sha1(d) => d.update(data),
            State::Sha256(d) => d.update(data),
        }
    }

    /// The big-endian digest bytes.
    pub fn finish_bytes(self) -> Vec<u8> {
        match self.0 {
            // A CRC-32's value is the low half of crc-fast's u64.
            State::Crc32(d) | State::Crc32c(d) => (d.finalize() as u32).to_be_bytes().to_vec(),
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
    crc_fast::checksum(CrcAlgorithm::Crc64Xz, data)
}

/// Incremental CRC-64/XZ.
#[derive(Clone)]
pub struct Crc64Xz(crc_fast::Digest);

impl Default for Crc64Xz {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc64Xz {
    /// A fresh CRC-64/XZ.
    pub fn new() -> Self {
        Self(crc_fast::Digest::new(CrcAlgorithm::Crc64Xz))
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
    crc_fast::checksum_combine(CrcAlgorithm::Crc64Xz, crc_a, crc_b, len_b)
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
        let algorithm = match self {
            Self::Crc32 => CrcAlgorithm::Crc32IsoHdlc,
            Self::Crc32c => CrcAlgorithm::Crc32Iscsi,
            Self::Crc64Nvme => CrcAlgorithm::Crc64Nvme,
            Self::Sha1 | Self::Sha256 => return None,
        };
        if a.len() != self.digest_len() || b.len() != self.digest_len() {
            return None;
        }
        let crc = crc_fast::checksum_combine(algorithm, number(a), number(b), len_b);
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

    /// Values of the table-driven `crc` crate this module used before
    /// `crc-fast` (CRC-32 and MD5 rows checked against Python's zlib and
    /// hashlib too): lengths on each side of the SIMD paths' 16-, 64-, 128-
    /// and 256-byte folds, from an unaligned start, fed whole and in uneven
    /// pieces. A CRC swap must give the same values.
    #[test]
    fn fixed_vectors_across_simd_boundaries() {
        #[rustfmt::skip]
        const VECTORS: [(usize, u32, u32, u64, u64); 18] = [
        (0, 0x0000_0000, 0x0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000),
        (1, 0xc7d8_c2c4, 0xbc70_c551, 0x6a70_8cce_dd5c_0445, 0x39df_23b2_dda1_638b),
        (7, 0x3dab_1b09, 0x2b66_311d, 0xd611_f5cd_d5f5_b95c, 0xd7e6_26f4_eefe_a323),
        (15, 0xa386_daff, 0xfe3f_a56e, 0xcbad_da92_b6f2_6ba1, 0xa914_f5f6_7668_9d91),
        (16, 0xd7a1_3e44, 0x2507_51cf, 0xeeef_8df3_018e_a47b, 0x69d0_6bd4_1b49_771d),
        (17, 0x566b_0f6d, 0x4a29_f0d8, 0x4b8b_487a_fdc4_9e74, 0x7857_eb8c_0ce1_edb2),
        (63, 0x4cf6_a813, 0x935e_53a0, 0xbcf9_d8a5_388a_92a7, 0x6746_5a06_e930_a8e9),
        (64, 0x84fd_dd06, 0xf6b9_d192, 0x3064_ca7e_d6aa_4d76, 0x79cb_a512_f5bc_9a73),
        (65, 0x3d53_027a, 0x5592_6fc0, 0xdd78_2499_58a6_066d, 0x162c_7c4d_d208_d770),
        (127, 0xa24e_9838, 0xb483_0344, 0xe88c_1a14_f31a_18c3, 0x4edf_4702_ce12_9413),
        (128, 0x1d1a_348c, 0x7850_e5d6, 0x8814_6cc6_ed5a_b869, 0x5d27_d73f_34ac_f6be),
        (129, 0x73ce_66c7, 0x38e2_c7fa, 0xcb6a_7be5_cb2e_4670, 0xecad_0ae0_7600_0590),
        (255, 0xfd71_38fc, 0xd3ed_5e8f, 0xb776_cb10_6a56_efab, 0xc7a1_2c0f_b080_45e3),
        (256, 0x99fb_4af2, 0x252a_8334, 0x75cb_1ced_7c41_5ed9, 0x9ae3_5249_cfdc_09fa),
        (257, 0x324e_fdd9, 0xdc96_90c6, 0x5b00_95e4_23d9_900d, 0xebb3_7476_85e8_430b),
        (4_097, 0x5bcd_64cb, 0xb128_9f8b, 0x0930_a74d_4e6b_8411, 0xa429_6b91_e303_b4e6),
        (65_537, 0x128e_fcf4, 0xb7f1_bc31, 0xd7c9_442d_24e7_0699, 0x4c35_91c0_fbfc_b9d3),
        (1_048_579, 0x452a_33f9, 0xa60f_9df1, 0xb07e_91ef_e13a_d4a3, 0xeeeb_a5f7_0f7d_9ee8),
        ];
        let data: Vec<u8> = (0..1_100_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for (len, crc32, crc32c, crc64_nvme, crc64_xz_value) in VECTORS {
            let input = &data[3..3 + len];
            let expected = [
                (ChecksumAlgorithm::Crc32, u64::from(crc32)),
                (ChecksumAlgorithm::Crc32c, u64::from(crc32c)),
                (ChecksumAlgorithm::Crc64Nvme, crc64_nvme),
            ];
            for (alg, value) in expected {
                let bytes = value.to_be_bytes()[8 - alg.digest_len()..].to_vec();
                assert_eq!(
                    hex_of(alg, input),
                    hex::encode(&bytes),
                    "{alg:?} of {len} bytes"
                );
                let mut pieces = alg.checksummer();
                input.chunks(1_000).for_each(|piece| pieces.update(piece));
                assert_eq!(pieces.finish(), BASE64.encode(&bytes), "{alg:?} in pieces");
            }
            assert_eq!(crc64_xz(input), crc64_xz_value, "CRC-64/XZ of {len} bytes");
            let mut pieces = Crc64Xz::new();
            input.chunks(333).for_each(|piece| pieces.update(piece));
            assert_eq!(pieces.finish(), crc64_xz_value, "CRC-64/XZ in pieces");
        }
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
