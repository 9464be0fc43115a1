//! Encrypting and decrypting one object: the API the CLI uses.

use super::format::{ContentKey, Format, Metadata, aws, oss};
use crate::CseError;
use crate::content::ctr::CtrCipher;
use crate::content::gcm::{GcmDecryptor, GcmEncryptor, TAG_LEN};
use crate::master_key::MasterKey;

/// What the writer knows about the plaintext, recorded in `oss` metadata
/// (the S3EC formats record none of it).
#[derive(Clone, Debug, Default)]
pub struct PlaintextInfo {
    /// Plaintext length (`…-unencrypted-content-length`).
    pub length: Option<u64>,
    /// Base64 MD5 of the plaintext (`…-unencrypted-content-md5`).
    pub md5_base64: Option<String>,
    /// Multipart layout (`…-data-size`, `…-part-size`).
    pub multipart: Option<MultipartLayout>,
}

/// Total size and part size of an `oss` multipart upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MultipartLayout {
    /// The whole object's plaintext size.
    pub data_size: u64,
    /// A multiple of 16, so that every part starts on a counter block.
    pub part_size: u64,
}

/// A new object's content key and metadata, ready to encrypt.
pub struct ObjectEncryption {
    format: Format,
    content: ContentKey,
    metadata: Metadata,
}

impl ObjectEncryption {
    /// Makes a fresh content key for one object and wraps it with `master`
    /// (KMS keys generate it through the KMS).
    pub async fn new(format: Format, master: &MasterKey) -> Result<Self, CseError> {
        let (content, metadata) = match format {
            Format::Oss => oss::new_object(master).await?,
            Format::Aws => aws::new_object(master, aws::Version::V3).await?,
            Format::AwsV2 => aws::new_object(master, aws::Version::V2).await?,
        };
        Ok(Self {
            format,
            content,
            metadata,
        })
    }

    /// The object's client-side encryption format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The user metadata to store with the object (keys without the
    /// `x-amz-meta-`/`x-oss-meta-` prefix). For `oss` it includes what
    /// `info` knows; a multipart part size that is not a multiple of 16 is
    /// refused.
    pub fn metadata(&self, info: &PlaintextInfo) -> Result<Metadata, CseError> {
        let mut metadata = self.metadata.clone();
        if self.format == Format::Oss {
            if let Some(length) = info.length {
                metadata.insert(oss::UNENCRYPTED_LENGTH.into(), length.to_string());
            }
            if let Some(md5) = &info.md5_base64 {
                metadata.insert(oss::UNENCRYPTED_MD5.into(), md5.clone());
            }
            if let Some(layout) = info.multipart {
                if layout.part_size == 0 || layout.part_size % 16 != 0 {
                    return Err(CseError::Invalid(format!(
                        "the part size must be a positive multiple of 16 for client-side encryption (got {})",
                        layout.part_size
                    )));
                }
                metadata.insert(oss::DATA_SIZE.into(), layout.data_size.to_string());
                metadata.insert(oss::PART_SIZE.into(), layout.part_size.to_string());
            }
        }
        Ok(metadata)
    }

    /// Stored size for a plaintext of `plaintext_len` bytes (+16 for GCM).
    pub fn ciphertext_len(&self, plaintext_len: u64) -> u64 {
        match self.content {
            ContentKey::Ctr { .. } => plaintext_len,
            ContentKey::Gcm(_) => plaintext_len + TAG_LEN as u64,
        }
    }

    /// A sequential encryptor over the whole plaintext.
    pub fn encryptor(&self) -> Result<ContentEncryptor, CseError> {
        Ok(match &self.content {
            ContentKey::Ctr { key, iv } => ContentEncryptor::Ctr {
                cipher: CtrCipher::new(key, *iv),
                offset: 0,
            },
            ContentKey::Gcm(params) => ContentEncryptor::Gcm(params.encryptor()?),
        })
    }

    /// `oss` only: the seekable keystream, to encrypt parts independently
    /// (part *n* at offset `(n-1)·part_size`). `None` for GCM formats, whose
    /// parts must go through one [`ContentEncryptor`] in order.
    pub fn seekable(&self) -> Option<CtrCipher> {
        match &self.content {
            ContentKey::Ctr { key, iv } => Some(CtrCipher::new(key, *iv)),
            ContentKey::Gcm(_) => None,
        }
    }
}

/// Sequential content encryption (in place).
pub enum ContentEncryptor {
    /// AES-CTR (`oss`).
    Ctr {
        /// The keyed counter-mode cipher.
        cipher: CtrCipher,
        /// Bytes encrypted so far: where the keystream continues.
        offset: u64,
    },
    /// AES-GCM (`aws`, `aws-v2`): the tag follows the last byte.
    Gcm(GcmEncryptor),
}

impl ContentEncryptor {
    /// Encrypts the next piece of plaintext in place.
    pub fn update(&mut self, buf: &mut [u8]) -> Result<(), CseError> {
        match self {
            ContentEncryptor::Ctr { cipher, offset } => {
                cipher.apply_at(*offset, buf)?;
                *offset += buf.len() as u64;
                Ok(())
            }
            ContentEncryptor::Gcm(gcm) => gcm.update(buf),
        }
    }

    /// Bytes to append after the last piece: the GCM tag, or nothing.
    pub fn finish(self) -> Vec<u8> {
        match self {
            ContentEncryptor::Ctr { .. } => Vec::new(),
            ContentEncryptor::Gcm(gcm) => gcm.finish().to_vec(),
        }
    }
}

/// An object's recovered content key, ready to decrypt.
pub struct ObjectDecryption {
    format: Format,
    content: ContentKey,
    unencrypted_length: Option<u64>,
}

impl ObjectDecryption {
    /// Recovers the content key from the object's user metadata with one of
    /// `keys` (chosen by wrap algorithm, then by matching description).
    pub async fn open(metadata: &Metadata, keys: &[MasterKey]) -> Result<Self, CseError> {
        let format = detect_or_explain(metadata)?;
        let content = match format {
            Format::Oss => oss::open(metadata, keys).await?,
            Format::Aws | Format::AwsV2 => aws::open(metadata, keys).await?,
        };
        let unencrypted_length = match format {
            Format::Oss => oss::unencrypted_length(metadata),
            _ => None,
        };
        Ok(Self {
            format,
            content,
            unencrypted_length,
        })
    }

    /// The object's client-side encryption format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether [`ContentDecryptor::finish`] proves integrity (GCM formats).
    pub fn is_authenticated(&self) -> bool {
        self.format.is_authenticated()
    }

    /// Plaintext length of a stored object of `stored_len` bytes.
    pub fn plaintext_len(&self, stored_len: u64) -> Result<u64, CseError> {
        match self.content {
            ContentKey::Ctr { .. } => Ok(stored_len),
            ContentKey::Gcm(_) => stored_len
                .checked_sub(TAG_LEN as u64)
                .ok_or(CseError::TagMismatch),
        }
    }

    /// The plaintext length the writer recorded (`oss` only), if any.
    pub fn recorded_plaintext_len(&self) -> Option<u64> {
        self.unencrypted_length
    }

    /// A sequential decryptor over the whole stored object (content ‖ tag).
    pub fn decryptor(&self) -> Result<ContentDecryptor, CseError> {
        Ok(match &self.content {
            ContentKey::Ctr { key, iv } => ContentDecryptor::Ctr {
                cipher: CtrCipher::new(key, *iv),
                offset: 0,
            },
            ContentKey::Gcm(params) => ContentDecryptor::Gcm(params.decryptor()?),
        })
    }

    /// Decrypts plaintext bytes `first..=last` (which must lie inside the
    /// plaintext) from the same byte range of the stored object. **Never
    /// authenticated**, for any format: a GCM tag covers the whole object.
    pub fn range(&self, first: u64, last: u64) -> Result<RangeDecryptor, CseError> {
        if last < first {
            return Err(CseError::Invalid(format!("empty range {first}-{last}")));
        }
        let keystream = match &self.content {
            ContentKey::Ctr { key, iv } => CtrCipher::new(key, *iv),
            ContentKey::Gcm(params) => params.keystream(),
        };
        Ok(RangeDecryptor {
            keystream,
            first,
            last,
            offset: first,
        })
    }
}

/// Sequential decryption of a whole stored object.
pub enum ContentDecryptor {
    /// AES-CTR (`oss`): no integrity beyond the transport's.
    Ctr {
        /// The keyed counter-mode cipher.
        cipher: CtrCipher,
        /// Bytes decrypted so far: where the keystream continues.
        offset: u64,
    },
    /// AES-GCM (`aws`, `aws-v2`): the trailing tag is held back and checked
    /// by `finish`.
    Gcm(GcmDecryptor),
}

impl ContentDecryptor {
    /// Decrypts the next stored bytes, appending plaintext to `out`. For GCM
    /// the plaintext is unauthenticated until [`ContentDecryptor::finish`]
    /// succeeds: write it somewhere temporary until then.
    pub fn update(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), CseError> {
        match self {
            ContentDecryptor::Ctr { cipher, offset } => {
                let start = out.len();
                out.extend_from_slice(chunk);
                cipher.apply_at(*offset, &mut out[start..])?;
                *offset += chunk.len() as u64;
                Ok(())
            }
            ContentDecryptor::Gcm(gcm) => gcm.update(chunk, out),
        }
    }

    /// GCM: verifies the tag (`Err(TagMismatch)` if altered or truncated).
    /// CTR: always `Ok` — the format cannot detect changes.
    pub fn finish(self) -> Result<(), CseError> {
        match self {
            ContentDecryptor::Ctr { .. } => Ok(()),
            ContentDecryptor::Gcm(gcm) => gcm.finish(),
        }
    }
}

/// Unauthenticated decryption of a byte range (see
/// [`ObjectDecryption::range`]).
pub struct RangeDecryptor {
    keystream: CtrCipher,
    first: u64,
    last: u64,
    offset: u64,
}

impl RangeDecryptor {
    /// The stored bytes to fetch, inclusive (`Range: bytes=first-last`).
    /// Both formats keep plaintext offsets, so it equals the plaintext range.
    pub fn stored_range(&self) -> (u64, u64) {
        (self.first, self.last)
    }

    /// Decrypts the next fetched bytes of the range, appending to `out`.
    pub fn update(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), CseError> {
        let start = out.len();
        out.extend_from_slice(chunk);
        self.keystream.apply_at(self.offset, &mut out[start..])?;
        self.offset += chunk.len() as u64;
        Ok(())
    }
}

/// The object's format, or why it cannot be opened.
fn detect_or_explain(metadata: &Metadata) -> Result<Format, CseError> {
    if let Some(error) = aws::unsupported_variant(metadata) {
        return Err(error);
    }
    Format::detect(metadata).ok_or(CseError::NotEncrypted)
}

/// Re-wraps an object's content key: unwraps it with one of `old_keys`,
/// wraps it with `new_key`, and returns the object's new metadata (the
/// content, and so the format, are unchanged; other metadata is kept).
pub async fn rewrap(
    metadata: &Metadata,
    old_keys: &[MasterKey],
    new_key: &MasterKey,
) -> Result<Metadata, CseError> {
    let format = detect_or_explain(metadata)?;
    let (replaced, fields) = match format {
        Format::Oss => {
            let ContentKey::Ctr { key, iv } = oss::open(metadata, old_keys).await? else {
                unreachable!("oss objects have CTR content keys")
            };
            (oss::WRAPPING_FIELDS, oss::wrap(new_key, &key, &iv).await?)
        }
        Format::Aws | Format::AwsV2 => {
            let (version, data_key) = aws::open_data_key(metadata, old_keys).await?;
            (
                aws::WRAPPING_FIELDS,
                aws::wrap(new_key, version, &data_key).await?,
            )
        }
    };
    let mut out: Metadata = metadata
        .iter()
        .filter(|(k, _)| !replaced.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.extend(fields);
    Ok(out)
}
