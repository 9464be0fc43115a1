//! The records the store keeps, and their on-disk encoding.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::StoreError;

/// Blob identifier: 128 random bits as 32 lower-case hex characters.
pub type BlobId = String;

/// First byte of every stored record: the encoding version (1 = JSON follows).
const RECORD_FORMAT_V1: u8 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BucketRecord {
    pub name: String,
    pub owner: String,
    pub region: String,
    pub created_ms: i64,
    /// Opaque per-bucket configuration documents (encryption, policy, …), by name.
    pub config: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ObjectRecord {
    pub size: u64,
    /// Without quotes.
    pub etag: String,
    pub last_modified_ms: i64,
    pub owner: String,
    /// Opaque headers with lower-case names (content-type, x-amz-meta-*, …).
    pub headers: Vec<(String, String)>,
    /// (algorithm, base64 value), opaque.
    pub checksum: Option<(String, String)>,
    /// The body is the concatenation of these blobs, in order.
    pub extents: Vec<Extent>,
    /// Opaque encryption envelope.
    pub envelope: Option<Vec<u8>>,
    /// CRC-64/XZ of the body (OSS `x-oss-hash-crc64ecma`), when known.
    #[serde(default)]
    pub crc64: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Extent {
    pub blob: BlobId,
    /// Stored bytes.
    pub size: u64,
    pub part_number: Option<u32>,
    pub etag: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UploadRecord {
    /// Filled in by `Store::create_upload`.
    pub upload_id: String,
    pub key: String,
    pub initiated_ms: i64,
    pub owner: String,
    pub headers: Vec<(String, String)>,
    pub checksum_algorithm: Option<String>,
    pub envelope: Option<Vec<u8>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PartRecord {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    pub last_modified_ms: i64,
    pub blob: BlobId,
    pub checksum: Option<(String, String)>,
    pub envelope: Option<Vec<u8>>,
    /// CRC-64/XZ of the part's body.
    #[serde(default)]
    pub crc64: Option<u64>,
}

#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct UserRecord {
    pub name: String,
    pub access_key: String,
    /// Already sealed by the caller; opaque here.
    pub sealed_secret: Vec<u8>,
    pub created_ms: i64,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("name", &self.name)
            .field("access_key", &self.access_key)
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

/// The condition of a conditional object write or delete, checked in the same transaction as
/// the write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Condition {
    /// Unconditional.
    #[default]
    Always,
    /// Only if no record exists under the key (S3 `If-None-Match: *`); `PreconditionFailed`
    /// otherwise.
    IfAbsent,
    /// Only if a record exists and its ETag (without quotes) equals this (S3 `If-Match`);
    /// `NoSuchKey` when absent, `PreconditionFailed` when the ETag differs.
    IfEtag(String),
}

/// A blob recorded as pending: named before its bytes were written, not yet referenced by a
/// committed record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingBlob {
    pub blob: BlobId,
    /// When the pending row was written, in milliseconds since the Unix epoch.
    pub since_ms: i64,
}

/// A ListObjects request, already decoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Exclusive: keys (and common prefixes) up to and including this are skipped.
    pub start_after: Option<String>,
    pub max_keys: usize,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListPage {
    pub objects: Vec<(String, ObjectRecord)>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key or common prefix returned, when truncated.
    pub next_marker: Option<String>,
}

/// A ListMultipartUploads request, already decoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UploadListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    /// Only meaningful with `key_marker`: uploads of that key with a greater id are listed too.
    pub upload_id_marker: Option<String>,
    pub max_uploads: usize,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct UploadListPage {
    pub uploads: Vec<UploadRecord>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// When truncated: the key of the last upload, or the last common prefix, returned.
    pub next_key_marker: Option<String>,
    /// When truncated and the last entry was an upload: its id.
    pub next_upload_id_marker: Option<String>,
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![RECORD_FORMAT_V1];
    serde_json::to_writer(&mut out, value)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode record: {e}")))?;
    Ok(out)
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&RECORD_FORMAT_V1, json)) => serde_json::from_slice(json)
            .map_err(|e| StoreError::Corrupt(format!("cannot decode record: {e}"))),
        Some((v, _)) => Err(StoreError::Corrupt(format!("unknown record format {v}"))),
        None => Err(StoreError::Corrupt("empty record".into())),
    }
}
