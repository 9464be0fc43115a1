//! Table key layouts.
//!
//! - objects: `bucket 0x00 key` — bucket names never contain NUL, so byte order of the table is
//!   byte order of the object keys within a bucket.
//! - uploads: `bucket 0x00 escape(key) 0x00 0x01 upload_id`, where `escape` turns each NUL of the
//!   key into `0x00 0xFF`. The escaping keeps byte order of keys (the terminator `00 01` sorts
//!   before any continuation of the key), so uploads sort by (key, upload id) even for keys
//!   containing NUL.
//! - parts: `upload_id (32 bytes) ‖ part number (u32 big-endian)`.
//! - versions (every version of a key but its current object): `bucket 0x00 escape(key) 0x00
//!   0x01 ‖ !seq (u64 big-endian)`, the same key escaping as uploads, so versions sort by key,
//!   then newest (highest sequence number) first.

const KEY_TERMINATOR: [u8; 2] = [0x00, 0x01];
/// Sorts after `KEY_TERMINATOR ‖ any upload id` and before any longer key.
const AFTER_KEY_UPLOADS: [u8; 2] = [0x00, 0x02];

pub(crate) fn bucket_prefix(bucket: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(bucket.len() + 1);
    out.extend_from_slice(bucket.as_bytes());
    out.push(0);
    out
}

pub(crate) fn object_key(bucket: &str, key: &str) -> Vec<u8> {
    let mut out = bucket_prefix(bucket);
    out.extend_from_slice(key.as_bytes());
    out
}

/// Prefix shared by the uploads of every key starting with `key_prefix`.
pub(crate) fn upload_prefix(bucket: &str, key_prefix: &str) -> Vec<u8> {
    let mut out = bucket_prefix(bucket);
    for &b in key_prefix.as_bytes() {
        if b == 0 {
            out.extend_from_slice(&[0x00, 0xFF]);
        } else {
            out.push(b);
        }
    }
    out
}

pub(crate) fn upload_key(bucket: &str, key: &str, upload_id: &str) -> Vec<u8> {
    let mut out = upload_prefix(bucket, key);
    out.extend_from_slice(&KEY_TERMINATOR);
    out.extend_from_slice(upload_id.as_bytes());
    out
}

/// A bound just past every upload of exactly `key` (and before uploads of longer keys).
pub(crate) fn after_key_uploads(bucket: &str, key: &str) -> Vec<u8> {
    let mut out = upload_prefix(bucket, key);
    out.extend_from_slice(&AFTER_KEY_UPLOADS);
    out
}

pub(crate) fn version_key(bucket: &str, key: &str, seq: u64) -> Vec<u8> {
    let mut out = versions_of_key(bucket, key);
    out.extend_from_slice(&(!seq).to_be_bytes());
    out
}

/// The prefix every version of exactly `key` starts with.
pub(crate) fn versions_of_key(bucket: &str, key: &str) -> Vec<u8> {
    let mut out = upload_prefix(bucket, key);
    out.extend_from_slice(&KEY_TERMINATOR);
    out
}

/// Splits a versions-table key (without its `bucket 0x00` prefix) into the object key and the
/// version's sequence number.
pub(crate) fn split_version_key(encoded: &[u8]) -> Option<(String, u64)> {
    let mut key = Vec::with_capacity(encoded.len());
    let mut bytes = encoded.iter().copied().enumerate();
    while let Some((i, b)) = bytes.next() {
        if b != 0 {
            key.push(b);
            continue;
        }
        match bytes.next() {
            Some((_, 0xFF)) => key.push(0),
            Some((_, 0x01)) => {
                let seq: [u8; 8] = encoded.get(i + 2..)?.try_into().ok()?;
                return Some((String::from_utf8(key).ok()?, !u64::from_be_bytes(seq)));
            }
            _ => return None,
        }
    }
    None
}

pub(crate) fn part_key(upload_id: &str, part_number: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(upload_id.len() + 4);
    out.extend_from_slice(upload_id.as_bytes());
    out.extend_from_slice(&part_number.to_be_bytes());
    out
}

pub(crate) use crate::rules::prefix_successor;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff"), None);
    }

    #[test]
    fn version_keys_sort_by_key_then_newest_and_split_back() {
        let keys = ["a", "a\0", "a\0!", "a!", "a/b", "b"];
        let mut encoded = Vec::new();
        for k in keys {
            for seq in [u64::MAX - 1, 7, 0] {
                let one = version_key("bk", k, seq);
                let rest = one.get("bk\0".len()..).expect("longer than the bucket");
                assert_eq!(split_version_key(rest), Some((k.to_owned(), seq)));
                assert!(one.starts_with(&versions_of_key("bk", k)));
                encoded.push(one);
            }
        }
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(sorted, encoded);
        assert_eq!(split_version_key(b"a\0\x02"), None);
    }

    #[test]
    fn upload_keys_sort_by_key_then_id() {
        let keys = ["a", "a\0", "a\0!", "a!", "a/b", "b"];
        let mut encoded: Vec<(Vec<u8>, &str)> = Vec::new();
        for k in keys {
            for id in ["0000", "FFFF"] {
                encoded.push((upload_key("bk", k, id), k));
            }
        }
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(sorted, encoded);
        for k in keys {
            assert!(upload_key("bk", k, "FFFF") < after_key_uploads("bk", k));
        }
        assert!(after_key_uploads("bk", "a") < upload_key("bk", "a\0", "0000"));
    }
}
