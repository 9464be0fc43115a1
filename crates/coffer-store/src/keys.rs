//! Table key layouts.
//!
//! - objects: `bucket 0x00 key` — bucket names never contain NUL, so byte order of the table is
//!   byte order of the object keys within a bucket.
//! - uploads: `bucket 0x00 escape(key) 0x00 0x01 upload_id`, where `escape` turns each NUL of the
//!   key into `0x00 0xFF`. The escaping keeps byte order of keys (the terminator `00 01` sorts
//!   before any continuation of the key), so uploads sort by (key, upload id) even for keys
//!   containing NUL.
//! - parts: `upload_id (32 bytes) ‖ part number (u32 big-endian)`.

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

pub(crate) fn part_key(upload_id: &str, part_number: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(upload_id.len() + 4);
    out.extend_from_slice(upload_id.as_bytes());
    out.extend_from_slice(&part_number.to_be_bytes());
    out
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
