//! The PKCS#11 backend's ciphertext blob. It names its key and version, so
//! Decrypt needs no key reference; the token encrypts with AES-256-GCM
//! (`CKM_AES_GCM`) under that key version.
//!
//! Layout, version 1 (integers big-endian), the embedded KMS's layout under
//! its own magic, so neither backend mistakes the other's blobs for its own:
//!
//! ```text
//! "CP11" ‖ 0x01 ‖ key id length (u8) ‖ key id (UTF-8) ‖ key version (u32)
//!   ‖ IV (12 bytes, random) ‖ AES-256-GCM ciphertext ‖ tag (16 bytes)
//! ```
//!
//! The AAD is the header (everything before the IV) followed by the
//! embedded KMS's canonical encryption context
//! ([`coffer_kms::embedded::canonical_context`]), so a blob opens only under
//! its own key version and exactly its context.

use coffer_kms::embedded::canonical_context;
use coffer_kms::{EncryptionContext, KmsError};

/// The first bytes of every blob this backend makes.
pub const MAGIC: &[u8; 4] = b"CP11";
/// The format's version byte.
pub const FORMAT_VERSION: u8 = 1;
/// GCM IV length: 96 bits, the size GCM is made for.
pub const IV_LEN: usize = 12;
/// GCM tag length.
pub const TAG_LEN: usize = 16;

/// The header of a blob under `key_id` version `key_version`.
pub fn header(key_id: &str, key_version: u32) -> Result<Vec<u8>, KmsError> {
    let id_len = u8::try_from(key_id.len())
        .map_err(|_| KmsError::Validation("key id longer than 255 bytes".into()))?;
    let mut out = Vec::with_capacity(10 + key_id.len());
    out.extend_from_slice(MAGIC);
    out.push(FORMAT_VERSION);
    out.push(id_len);
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(&key_version.to_be_bytes());
    Ok(out)
}

/// What the token authenticates besides the plaintext: header ‖ context.
pub fn aad(header: &[u8], context: &EncryptionContext) -> Vec<u8> {
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(&canonical_context(context));
    bytes
}

/// A blob split into its parts; nothing is authenticated until the token
/// decrypts it.
pub struct ParsedBlob<'a> {
    pub key_id: &'a str,
    pub key_version: u32,
    pub header: &'a [u8],
    pub iv: [u8; IV_LEN],
    /// Ciphertext ‖ tag, as `CKM_AES_GCM` takes it.
    pub sealed: &'a [u8],
}

/// Splits a blob; any malformation is [`KmsError::InvalidCiphertext`].
pub fn parse(blob: &[u8]) -> Result<ParsedBlob<'_>, KmsError> {
    let bad = || KmsError::InvalidCiphertext;
    let rest = blob.strip_prefix(MAGIC.as_slice()).ok_or_else(bad)?;
    let (&version, rest) = rest.split_first().ok_or_else(bad)?;
    let (&id_len, rest) = rest.split_first().ok_or_else(bad)?;
    let id_len = usize::from(id_len);
    if version != FORMAT_VERSION || id_len == 0 || rest.len() < id_len + 4 + IV_LEN + TAG_LEN {
        return Err(bad());
    }
    let (id, rest) = rest.split_at(id_len);
    let (version_bytes, rest) = rest.split_at(4);
    let (iv, sealed) = rest.split_at(IV_LEN);
    Ok(ParsedBlob {
        key_id: std::str::from_utf8(id).map_err(|_| bad())?,
        key_version: u32::from_be_bytes(version_bytes.try_into().map_err(|_| bad())?),
        header: &blob[..MAGIC.len() + 2 + id_len + 4],
        iv: iv.try_into().map_err(|_| bad())?,
        sealed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_what_header_wrote_and_refuses_short_or_foreign_blobs() {
        let mut blob = header("key-1", 7).expect("header");
        let header_len = blob.len();
        blob.extend_from_slice(&[9u8; IV_LEN]);
        blob.extend_from_slice(&[1u8; TAG_LEN + 3]);
        let parsed = parse(&blob).expect("parse");
        assert_eq!((parsed.key_id, parsed.key_version), ("key-1", 7));
        assert_eq!(parsed.header.len(), header_len);
        assert_eq!(parsed.iv, [9u8; IV_LEN]);
        assert_eq!(parsed.sealed.len(), TAG_LEN + 3);
        for len in 0..header_len + IV_LEN + TAG_LEN {
            assert!(parse(&blob[..len]).is_err(), "cut to {len}");
        }
        let mut embedded = blob.clone();
        embedded[..4].copy_from_slice(b"CKMS");
        assert!(
            parse(&embedded).is_err(),
            "the embedded KMS's blobs are not ours"
        );
    }
}
