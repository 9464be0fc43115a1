//! Object checksums beyond a single body's: what CreateMultipartUpload
//! declares (algorithm and type), the object checksum a completion builds
//! from its parts' (`COMPOSITE` or `FULL_OBJECT`), and how GET, HEAD and
//! GetObjectAttributes answer them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use coffer_auth::checksum::ChecksumAlgorithm;
use coffer_store::UploadRecord;

use crate::error::{ApiError, ApiResult};
use crate::request::ApiRequest;
use crate::xml::XmlWriter;

/// How an object's checksum covers its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumType {
    /// A checksum of the parts' checksums, with a `-N` suffix (N parts).
    Composite,
    /// A checksum of the whole body, as if uploaded at once (CRCs only).
    FullObject,
}

impl ChecksumType {
    /// The name S3 uses (`x-amz-checksum-type`, `<ChecksumType>`).
    pub const fn name(self) -> &'static str {
        match self {
            ChecksumType::Composite => "COMPOSITE",
            ChecksumType::FullObject => "FULL_OBJECT",
        }
    }

    fn parse(text: &str) -> ApiResult<Self> {
        match text.trim().to_ascii_uppercase().as_str() {
            "COMPOSITE" => Ok(ChecksumType::Composite),
            "FULL_OBJECT" => Ok(ChecksumType::FullObject),
            _ => Err(ApiError::invalid_request(format!(
                "Value for x-amz-checksum-type header is invalid: {text}"
            ))),
        }
    }
}

/// The checksum a multipart upload declared at its creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadChecksum {
    /// Every part is checksummed with it.
    pub algorithm: ChecksumAlgorithm,
    /// How the object's checksum is made from the parts'.
    pub kind: ChecksumType,
}

impl UploadChecksum {
    /// The checksum a CreateMultipartUpload request declares, checked as
    /// S3 checks it: a type needs an algorithm; FULL_OBJECT is for CRCs
    /// only and CRC-64/NVME is FULL_OBJECT only (its default), the other
    /// algorithms default to COMPOSITE.
    pub fn declared(req: &ApiRequest) -> ApiResult<Option<Self>> {
        let algorithm = req
            .header("x-amz-checksum-algorithm")
            .map(|name| {
                ChecksumAlgorithm::from_name(name).ok_or_else(|| {
                    ApiError::invalid_request(format!("Checksum algorithm {name} is not supported"))
                })
            })
            .transpose()?;
        let kind = req
            .header("x-amz-checksum-type")
            .map(ChecksumType::parse)
            .transpose()?;
        let Some(algorithm) = algorithm else {
            return match kind {
                None => Ok(None),
                Some(_) => Err(ApiError::invalid_request(
                    "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
                )),
            };
        };
        let kind = kind.unwrap_or(match algorithm {
            ChecksumAlgorithm::Crc64Nvme => ChecksumType::FullObject,
            _ => ChecksumType::Composite,
        });
        let allowed = match kind {
            ChecksumType::FullObject => algorithm.is_crc(),
            ChecksumType::Composite => algorithm != ChecksumAlgorithm::Crc64Nvme,
        };
        if !allowed {
            return Err(ApiError::invalid_request(format!(
                "The {} checksum type cannot be used with the {} checksum algorithm.",
                kind.name(),
                algorithm.name().to_ascii_lowercase()
            )));
        }
        Ok(Some(Self { algorithm, kind }))
    }

    /// What an upload record says it declared (records written before the
    /// type was kept are COMPOSITE, the only type there was).
    pub fn of_upload(upload: &UploadRecord) -> Option<Self> {
        let algorithm = ChecksumAlgorithm::from_name(upload.checksum_algorithm.as_deref()?)?;
        let kind = match upload.checksum_type.as_deref() {
            Some("FULL_OBJECT") => ChecksumType::FullObject,
            _ => ChecksumType::Composite,
        };
        Some(Self { algorithm, kind })
    }

    /// The object's checksum (base64, with `-N` for COMPOSITE) from its
    /// parts' digests (raw bytes) and plaintext sizes, in order; `None` if a
    /// digest is not one of this algorithm.
    pub fn object_checksum(&self, parts: &[(Vec<u8>, u64)]) -> Option<String> {
        let algorithm = self.algorithm;
        if parts
            .iter()
            .any(|(digest, _)| digest.len() != algorithm.digest_len())
        {
            return None;
        }
        match self.kind {
            ChecksumType::Composite => {
                let mut of_digests = algorithm.checksummer();
                for (digest, _) in parts {
                    of_digests.update(digest);
                }
                Some(format!("{}-{}", of_digests.finish(), parts.len()))
            }
            ChecksumType::FullObject => {
                let empty = algorithm.checksummer().finish_bytes();
                parts
                    .iter()
                    .try_fold(empty, |whole, (digest, size)| {
                        algorithm.combine(&whole, digest, *size)
                    })
                    .map(|digest| BASE64.encode(digest))
            }
        }
    }
}

/// The raw digest of a stored checksum of `algorithm` (base64); `None` if
/// it is of another algorithm or not base64.
pub fn stored_digest(stored: &(String, String), algorithm: ChecksumAlgorithm) -> Option<Vec<u8>> {
    let (name, value) = stored;
    if ChecksumAlgorithm::from_name(name)? != algorithm {
        return None;
    }
    BASE64.decode(value.trim()).ok()
}

/// `<ChecksumSHA256>…</ChecksumSHA256>` (and so on) for a stored checksum
/// (algorithm name, value).
pub fn checksum_element(w: &mut XmlWriter, stored: &(String, String)) {
    let (algorithm, value) = stored;
    w.elem(
        &format!("Checksum{}", algorithm.to_ascii_uppercase()),
        value,
    );
}

/// The headers that answer `x-amz-checksum-mode: ENABLED`: the checksum
/// under its algorithm's header and its type.
pub fn checksum_headers(stored: &(String, String), kind: Option<&str>) -> [(String, String); 2] {
    let (algorithm, value) = stored;
    [
        (
            format!("x-amz-checksum-{}", algorithm.to_ascii_lowercase()),
            value.clone(),
        ),
        (
            "x-amz-checksum-type".to_owned(),
            kind.unwrap_or(ChecksumType::FullObject.name()).to_owned(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts of the vectors below: bytes `i * 31 % 251` for i in
    /// 0..1000, split at 400 and 700.
    fn parts() -> Vec<Vec<u8>> {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        vec![
            data[..400].to_vec(),
            data[400..700].to_vec(),
            data[700..].to_vec(),
        ]
    }

    fn object_checksum(algorithm: ChecksumAlgorithm, kind: ChecksumType) -> Option<String> {
        let digests: Vec<(Vec<u8>, u64)> = parts()
            .iter()
            .map(|part| {
                let mut c = algorithm.checksummer();
                c.update(part);
                (c.finish_bytes(), part.len() as u64)
            })
            .collect();
        UploadChecksum { algorithm, kind }.object_checksum(&digests)
    }

    /// Fixed vectors computed independently with Python's hashlib, zlib and
    /// crcmod: COMPOSITE = base64(hash(concatenated part digests)) + "-3";
    /// FULL_OBJECT = the CRC of the whole body.
    #[test]
    fn composite_and_full_object_vectors() {
        use ChecksumAlgorithm::*;
        use ChecksumType::*;
        let cases = [
            (
                Sha256,
                Composite,
                "tMmjIDulwW39So4hmZqHjKXcEyNB8WkSoj2PGGnOSPE=-3",
            ),
            (Sha1, Composite, "9tH7kTfxp76AY8BQq6WSt/EjEGA=-3"),
            (Crc32, Composite, "tN5RHQ==-3"),
            (Crc32c, Composite, "VqZ3TA==-3"),
            (Crc32, FullObject, "tAOEHw=="),
            (Crc32c, FullObject, "lbX8FA=="),
            (Crc64Nvme, FullObject, "JxUZTuOgMSY="),
        ];
        for (algorithm, kind, expected) in cases {
            assert_eq!(
                object_checksum(algorithm, kind).as_deref(),
                Some(expected),
                "{algorithm:?} {kind:?}"
            );
        }
        assert_eq!(object_checksum(Sha256, FullObject), None);
    }

    #[test]
    fn digests_of_another_algorithm_are_refused() {
        let declared = UploadChecksum {
            algorithm: ChecksumAlgorithm::Sha256,
            kind: ChecksumType::Composite,
        };
        assert_eq!(declared.object_checksum(&[(vec![0; 4], 1)]), None);
        let stored = ("CRC32".to_owned(), "+2Aw7Q==".to_owned());
        assert_eq!(
            stored_digest(&stored, ChecksumAlgorithm::Crc32),
            Some(vec![0xfb, 0x60, 0x30, 0xed])
        );
        assert_eq!(stored_digest(&stored, ChecksumAlgorithm::Sha256), None);
    }
}
