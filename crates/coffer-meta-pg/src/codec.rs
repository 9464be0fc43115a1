//! Records as JSON text, ids, clocks and the argument checks the embedded store makes.
//!
//! Records are stored as the JSON their serde derives give (what the embedded store keeps
//! after its one-byte format tag), in `text` columns: JSON escapes every control character,
//! U+0000 included, so any record fits in `text`.

use std::time::{SystemTime, UNIX_EPOCH};

use coffer_store::{MAX_KEY_LEN, StoreError};
use serde::{Serialize, de::DeserializeOwned};

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode record: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("cannot decode record: {e}")))
}

/// 128 random bits as 32 lower-case hex characters.
pub(crate) fn random_hex() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Io(std::io::Error::other(format!("no randomness: {e}"))))?;
    Ok(hex::encode(bytes))
}

/// Milliseconds since the Unix epoch (negative before it), saturating.
pub(crate) fn epoch_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// Blob ids are 32 lower-case hex characters (what every `BlobStore` hands out).
pub(crate) fn is_valid_blob_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Upload ids are ours: 32 upper-case hex characters. Anything else names no upload.
pub(crate) fn is_valid_upload_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

pub(crate) fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(StoreError::InvalidArgument(format!(
            "object key must be 1 to {MAX_KEY_LEN} bytes"
        )));
    }
    Ok(())
}

pub(crate) fn check_bucket_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.contains('\0') {
        return Err(StoreError::InvalidArgument(
            "bucket name must be non-empty and without NUL".into(),
        ));
    }
    Ok(())
}

/// A version id: the sequence number as 16 hex digits, then 64 random bits (the embedded
/// store's rule, so ids sort by age and a lookup by id is one primary-key read).
pub(crate) fn version_id(seq: i64) -> Result<String, StoreError> {
    let random = random_hex()?;
    Ok(format!("{:016x}{}", seq_bits(seq), &random[..16]))
}

/// The sequence number a version id starts with; `None` for a string that is not one of ours.
pub(crate) fn seq_of(version_id: &str) -> Option<i64> {
    if version_id.len() != 32 || !version_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let seq = u64::from_str_radix(version_id.get(..16)?, 16).ok()?;
    i64::try_from(seq).ok()
}

fn seq_bits(seq: i64) -> u64 {
    u64::try_from(seq).expect("sequence numbers start at 1")
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < 0xFF {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

/// The smallest byte string greater than `key`: `key ‖ 0x00` (an exclusive bound made
/// inclusive).
pub(crate) fn key_successor(key: &[u8]) -> Vec<u8> {
    let mut out = key.to_vec();
    out.push(0);
    out
}

/// The smallest common prefix `key` rolls up into: the prefix up to and including the first
/// delimiter after `prefix`.
pub(crate) fn common_prefix<'k>(key: &'k str, prefix: &str, delimiter: &str) -> Option<&'k str> {
    if delimiter.is_empty() {
        return None;
    }
    let rest = key.strip_prefix(prefix)?;
    let at = rest.find(delimiter)?;
    key.get(..prefix.len() + at + delimiter.len())
}

pub(crate) fn key_string(bytes: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(bytes).map_err(|_| StoreError::Corrupt("object key is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ids_carry_their_sequence() {
        let id = version_id(0x1234).unwrap_or_default();
        assert_eq!(id.len(), 32);
        assert!(id.starts_with("0000000000001234"));
        assert_eq!(seq_of(&id), Some(0x1234));
        assert_eq!(seq_of("null"), None);
    }

    #[test]
    fn successors() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff"), None);
        assert_eq!(key_successor(b"a"), b"a\0".to_vec());
    }
}
