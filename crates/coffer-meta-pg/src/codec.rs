//! Records as JSON text, and ids and keys as PostgreSQL holds them (the rules themselves are
//! `coffer_store::rules`, shared with the embedded store).
//!
//! Records are stored as the JSON their serde derives give (what the embedded store keeps
//! after its one-byte format tag), in `text` columns: JSON escapes every control character,
//! U+0000 included, so any record fits in `text`.

use coffer_store::{StoreError, rules};
use serde::{Serialize, de::DeserializeOwned};

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode record: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("cannot decode record: {e}")))
}

/// The id of the version at PostgreSQL sequence number `seq` (`rules::version_id`).
pub(crate) fn version_id(seq: i64) -> Result<String, StoreError> {
    let seq = u64::try_from(seq)
        .map_err(|_| StoreError::Corrupt(format!("negative version sequence {seq}")))?;
    rules::version_id(seq)
}

/// The sequence number a version id names, as PostgreSQL stores it (`rules::seq_of`).
pub(crate) fn seq_of(version_id: &str) -> Option<i64> {
    rules::seq_of(version_id).and_then(|seq| i64::try_from(seq).ok())
}

/// The smallest byte string greater than `key`: `key ‖ 0x00` (an exclusive bound made
/// inclusive).
pub(crate) fn key_successor(key: &[u8]) -> Vec<u8> {
    let mut out = key.to_vec();
    out.push(0);
    out
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
        assert_eq!(key_successor(b"a"), b"a\0".to_vec());
    }
}
