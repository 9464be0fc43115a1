//! The ciphertext blob: what Encrypt, GenerateDataKey and ReEncrypt return
//! and Decrypt takes back. It names its key and version, so Decrypt needs no
//! key reference.
//!
//! Layout, version 1 (all integers big-endian):
//!
//! ```text
//! "CKMS" (4 bytes) ‖ 0x01 ‖ key id length (u8) ‖ key id (UTF-8)
//!   ‖ key version (u32) ‖ nonce (12 bytes, random)
//!   ‖ AES-256-GCM(plaintext) ‖ tag (16 bytes)
//! ```
//!
//! The AAD is the header (everything before the nonce) followed by the
//! canonical encryption context: the pair count (u32), then for each pair in
//! byte order of the keys, `len(key) (u32) ‖ key ‖ len(value) (u32) ‖ value`.
//! The lengths make the encoding injective, so `{"a": "b=c"}` and
//! `{"a=b": "c"}` are different contexts. A blob therefore opens only under
//! its own key id, version and the exact context it was made with.

use coffer_crypto::SymmetricKey;
use coffer_crypto::secret_box::{self, NONCE_LEN, TAG_LEN};
use zeroize::Zeroizing;

use crate::kms::{EncryptionContext, KmsError};

/// The first bytes of every ciphertext blob.
pub const MAGIC: &[u8; 4] = b"CKMS";
/// The blob format's version byte, after the magic.
pub const FORMAT_VERSION: u8 = 1;

/// A blob split into its parts; nothing is authenticated until [`open`].
pub struct ParsedBlob<'a> {
    pub key_id: &'a str,
    pub key_version: u32,
    header: &'a [u8],
    /// `nonce ‖ ciphertext ‖ tag`.
    nonce_and_sealed: &'a [u8],
}

/// Encrypts `plaintext` under `key` (the material of `key_id` version
/// `key_version`), bound to `context`.
pub fn seal(
    key: &SymmetricKey,
    key_id: &str,
    key_version: u32,
    plaintext: &[u8],
    context: &EncryptionContext,
) -> Result<Vec<u8>, KmsError> {
    let mut nonce = [0u8; NONCE_LEN];
    coffer_crypto::random::fill(&mut nonce).map_err(|e| KmsError::Internal(e.to_string()))?;
    seal_with_nonce(key, key_id, key_version, plaintext, context, nonce)
}

fn seal_with_nonce(
    key: &SymmetricKey,
    key_id: &str,
    key_version: u32,
    plaintext: &[u8],
    context: &EncryptionContext,
    nonce: [u8; NONCE_LEN],
) -> Result<Vec<u8>, KmsError> {
    let id_len = u8::try_from(key_id.len())
        .map_err(|_| KmsError::Internal("key id longer than 255 bytes".into()))?;
    let mut out = Vec::with_capacity(10 + key_id.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT_VERSION);
    out.push(id_len);
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(&key_version.to_be_bytes());
    let aad = aad(&out, context);
    secret_box::seal_append_with_nonce(key, nonce, &aad, plaintext, &mut out);
    Ok(out)
}

/// Splits a blob; any malformation is [`KmsError::InvalidCiphertext`].
pub fn parse(blob: &[u8]) -> Result<ParsedBlob<'_>, KmsError> {
    let bad = || KmsError::InvalidCiphertext;
    let rest = blob.strip_prefix(MAGIC.as_slice()).ok_or_else(bad)?;
    let (&version, rest) = rest.split_first().ok_or_else(bad)?;
    if version != FORMAT_VERSION {
        return Err(bad());
    }
    let (&id_len, rest) = rest.split_first().ok_or_else(bad)?;
    let id_len = usize::from(id_len);
    if id_len == 0 || rest.len() < id_len + 4 + NONCE_LEN + TAG_LEN {
        return Err(bad());
    }
    let (id, rest) = rest.split_at(id_len);
    let key_id = std::str::from_utf8(id).map_err(|_| bad())?;
    let (version_bytes, rest) = rest.split_at(4);
    let key_version = u32::from_be_bytes(version_bytes.try_into().map_err(|_| bad())?);
    let header_len = MAGIC.len() + 2 + id_len + 4;
    Ok(ParsedBlob {
        key_id,
        key_version,
        header: &blob[..header_len],
        nonce_and_sealed: rest,
    })
}

/// Decrypts a parsed blob with its key's material and the context the
/// caller claims; any failure is [`KmsError::InvalidCiphertext`].
pub fn open(
    key: &SymmetricKey,
    blob: &ParsedBlob<'_>,
    context: &EncryptionContext,
) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    secret_box::open_prefixed(key, &aad(blob.header, context), blob.nonce_and_sealed)
        .map_err(|_| KmsError::InvalidCiphertext)
}

fn aad(header: &[u8], context: &EncryptionContext) -> Vec<u8> {
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(&canonical_context(context));
    bytes
}

/// The injective encoding of an encryption context (see the module doc).
pub fn canonical_context(context: &EncryptionContext) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&len_u32(context.len()).to_be_bytes());
    for (key, value) in context {
        for part in [key, value] {
            out.extend_from_slice(&len_u32(part.len()).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
    }
    out
}

fn len_u32(len: usize) -> u32 {
    // Contexts come from HTTP requests whose bodies are bounded far below
    // 4 GiB; saturating keeps the function total without a panic path.
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SymmetricKey {
        SymmetricKey::from_slice(&[7u8; 32]).expect("32 bytes")
    }

    fn context() -> EncryptionContext {
        [("bucket", "b"), ("key", "k")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    /// Fixed vector: pins magic, version, header, nonce position and the AAD
    /// (header ‖ canonical context).
    #[test]
    fn fixed_vector() {
        let blob =
            seal_with_nonce(&key(), KEY_ID, 3, b"coffer", &context(), [1u8; 12]).expect("seal");
        assert_eq!(hex(&blob), FIXED_BLOB);
        let parsed = parse(&blob).expect("parse");
        assert_eq!(parsed.key_id, KEY_ID);
        assert_eq!(parsed.key_version, 3);
        assert_eq!(
            open(&key(), &parsed, &context()).expect("open").as_slice(),
            b"coffer"
        );
    }

    /// Cross-checked with Python `cryptography`'s AESGCM on the same inputs.
    const FIXED_BLOB: &str = concat!(
        "434b4d53",                                                                 // "CKMS"
        "01",                                                                       // format 1
        "24", // key id length 36
        "31323334616263642d313261622d333463642d353665662d313233343536373839306162", // key id
        "00000003", // key version 3
        "010101010101010101010101", // nonce
        "158eefd1f5cd", // ciphertext
        "b11468a6e78aa40be4405855f1796ed1", // tag
    );

    #[test]
    fn canonical_context_is_injective_on_separators() {
        let a: EncryptionContext = [("a".to_owned(), "b=c".to_owned())].into();
        let b: EncryptionContext = [("a=b".to_owned(), "c".to_owned())].into();
        assert_ne!(canonical_context(&a), canonical_context(&b));
        assert_eq!(
            canonical_context(&EncryptionContext::new()),
            vec![0, 0, 0, 0]
        );
    }

    #[test]
    fn wrong_context_or_key_or_any_flip_fails() {
        let blob = seal(&key(), KEY_ID, 1, b"secret", &context()).expect("seal");
        let parsed = parse(&blob).expect("parse");
        assert!(matches!(
            open(&key(), &parsed, &EncryptionContext::new()),
            Err(KmsError::InvalidCiphertext)
        ));
        let other = SymmetricKey::from_slice(&[8u8; 32]).expect("32 bytes");
        assert!(open(&other, &parsed, &context()).is_err());
        for i in 0..blob.len() {
            let mut tampered = blob.clone();
            tampered[i] ^= 0x01;
            let result = parse(&tampered).and_then(|p| open(&key(), &p, &context()));
            assert!(result.is_err(), "byte {i} flipped");
        }
        for len in 0..blob.len() {
            let result = parse(&blob[..len]).and_then(|p| open(&key(), &p, &context()));
            assert!(result.is_err(), "truncated to {len}");
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
