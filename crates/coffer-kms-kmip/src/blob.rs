//! The ciphertext blob of the KMIP backend: what the KMIP server's AES-256-GCM returned, and
//! enough to decrypt it without a key reference.
//!
//! ```text
//! "coffer-kmip" 0x01 | u16 len | unique id | u16 len | key id | nonce (12) | tag (16) | ciphertext
//! ```
//!
//! The additional authenticated data is the blob's header (label, unique id, key id) followed
//! by the encryption context, so a blob whose header is edited, or opened under another
//! context, fails the server's tag check: the server, not Coffer, holds the key that decides.

use coffer_kms::EncryptionContext;

/// The label and format version every blob starts with.
const LABEL: &[u8] = b"coffer-kmip\x01";
/// The GCM nonce Coffer draws for each Encrypt.
pub const NONCE_LEN: usize = 12;
/// The GCM tag the server returns.
pub const TAG_LEN: usize = crate::protocol::GCM_TAG_LEN;

/// A parsed blob, borrowing from its bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Blob<'a> {
    /// The KMIP Unique Identifier of the key.
    pub unique_id: &'a str,
    /// Coffer's key id (the key's Name in the KMIP server).
    pub key_id: &'a str,
    pub nonce: &'a [u8; NONCE_LEN],
    pub tag: &'a [u8; TAG_LEN],
    pub ciphertext: &'a [u8],
}

/// The blob's header: label, unique id and key id, length-prefixed.
pub fn header(unique_id: &str, key_id: &str) -> Option<Vec<u8>> {
    let mut out = LABEL.to_vec();
    for field in [unique_id, key_id] {
        out.extend_from_slice(&u16::try_from(field.len()).ok()?.to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    Some(out)
}

/// The additional authenticated data: the header, then each context pair (in the map's
/// sorted order), every field length-prefixed so that no two contexts encode alike.
pub fn aad(header: &[u8], context: &EncryptionContext) -> Vec<u8> {
    let mut out = header.to_vec();
    out.extend_from_slice(&(context.len() as u64).to_be_bytes());
    for (name, value) in context {
        for field in [name, value] {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
    }
    out
}

/// The whole blob.
pub fn encode(header: &[u8], nonce: &[u8; NONCE_LEN], tag: &[u8], ciphertext: &[u8]) -> Vec<u8> {
    [header, nonce, tag, ciphertext].concat()
}

impl<'a> Blob<'a> {
    /// Parses a blob; `None` for anything this backend did not make.
    pub fn parse(bytes: &'a [u8]) -> Option<(Self, &'a [u8])> {
        let rest = bytes.strip_prefix(LABEL)?;
        let (unique_id, rest) = field(rest)?;
        let (key_id, rest) = field(rest)?;
        let header = &bytes[..bytes.len() - rest.len()];
        let (nonce, rest) = rest.split_first_chunk::<NONCE_LEN>()?;
        let (tag, ciphertext) = rest.split_first_chunk::<TAG_LEN>()?;
        if unique_id.is_empty() || key_id.is_empty() || ciphertext.is_empty() {
            return None;
        }
        Some((
            Blob {
                unique_id,
                key_id,
                nonce,
                tag,
                ciphertext,
            },
            header,
        ))
    }
}

fn field(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<2>()?;
    let (text, rest) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
    Some((std::str::from_utf8(text).ok()?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let header = header("17", "key-id").expect("short fields");
        let blob = encode(&header, &[7; NONCE_LEN], &[9; TAG_LEN], b"ciphertext");
        let (parsed, parsed_header) = Blob::parse(&blob).expect("a blob");
        assert_eq!(parsed_header, header.as_slice());
        assert_eq!(
            parsed,
            Blob {
                unique_id: "17",
                key_id: "key-id",
                nonce: &[7; NONCE_LEN],
                tag: &[9; TAG_LEN],
                ciphertext: b"ciphertext",
            }
        );
        for len in 0..header.len() + NONCE_LEN + TAG_LEN + 1 {
            assert!(Blob::parse(&blob[..len]).is_none(), "cut to {len}");
        }
        assert!(Blob::parse(b"not a blob").is_none());
    }

    #[test]
    fn contexts_encode_apart() {
        let context = |pairs: &[(&str, &str)]| -> EncryptionContext {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let a = aad(b"h", &context(&[("ab", "c")]));
        let b = aad(b"h", &context(&[("a", "bc")]));
        let empty = aad(b"h", &EncryptionContext::new());
        assert_ne!(a, b);
        assert_ne!(a, empty);
        assert_eq!(a, aad(b"h", &context(&[("ab", "c")])));
    }
}
