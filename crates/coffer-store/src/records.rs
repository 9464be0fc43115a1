//! The records the store keeps, and their on-disk encoding.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::StoreError;

/// Blob identifier: 128 random bits as 32 lower-case hex characters.
pub type BlobId = String;

/// First byte of every stored record: the encoding version (1 = JSON follows).
const RECORD_FORMAT_V1: u8 = 1;

/// A bucket: its name, owner and configuration documents.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct BucketRecord {
    /// The bucket's name, unique in the store.
    pub name: String,
    /// The user who created it; only they may use it.
    pub owner: String,
    /// The region the bucket reports (`GetBucketLocation`, `x-amz-bucket-region`).
    pub region: String,
    /// Creation time, in milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// Opaque per-bucket configuration documents (encryption, policy, …), by name.
    pub config: BTreeMap<String, String>,
    /// Whether writes create versions; the store reads it in each write's transaction.
    #[serde(default, skip_serializing_if = "Versioning::is_unversioned")]
    pub versioning: Versioning,
}

/// A bucket's versioning state (S3's `VersioningConfiguration` Status).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum Versioning {
    /// Never enabled: each key holds one object, the null version, replaced by each write.
    #[default]
    Unversioned,
    /// Each write and each delete adds a version with a new id; nothing is replaced.
    Enabled,
    /// Writes and deletes replace the null version; older versions are kept.
    Suspended,
}

impl Versioning {
    fn is_unversioned(&self) -> bool {
        *self == Versioning::Unversioned
    }
}

/// Which version of a key a read, update or delete names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionRef {
    /// The newest version (an object or a delete marker).
    Latest,
    /// The null version (S3 `versionId=null`).
    Null,
    /// The version with this id.
    Id(String),
}

impl VersionRef {
    /// The reference to exactly this version id (`None` is the null version), as a stored
    /// record or a listing names it.
    pub fn exactly(version_id: Option<&str>) -> Self {
        match version_id {
            Some(id) => VersionRef::Id(id.to_owned()),
            None => VersionRef::Null,
        }
    }

    /// The version a request's `versionId` names: `null` is the null version.
    pub fn from_query(version_id: &str) -> Self {
        if version_id == "null" {
            VersionRef::Null
        } else {
            VersionRef::Id(version_id.to_owned())
        }
    }
}

/// A delete marker: a version saying "deleted here", with no body.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DeleteMarker {
    /// `None` is the null version.
    pub version_id: Option<String>,
    /// The user who deleted.
    pub owner: String,
    /// When, in milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
}

/// One version of a key: an object or a delete marker.
// Markers are rare and short-lived next to objects: boxing the common variant would cost an
// allocation per version read for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum Version {
    /// A stored object.
    Object(ObjectRecord),
    /// A delete marker.
    DeleteMarker(DeleteMarker),
}

impl Version {
    /// The version's id; `None` is the null version.
    pub fn version_id(&self) -> Option<&str> {
        match self {
            Version::Object(o) => o.version_id.as_deref(),
            Version::DeleteMarker(m) => m.version_id.as_deref(),
        }
    }

    /// When the version was written, in milliseconds since the Unix epoch.
    pub fn last_modified_ms(&self) -> i64 {
        match self {
            Version::Object(o) => o.last_modified_ms,
            Version::DeleteMarker(m) => m.last_modified_ms,
        }
    }
}

/// A version found by [`crate::MetadataStore::get_version`].
#[derive(Clone, Debug, PartialEq)]
pub struct FoundVersion {
    /// The version.
    pub version: Version,
    /// Whether it is the newest version of its key.
    pub is_latest: bool,
}

/// A change to one object version that leaves its body and envelope alone.
#[derive(Clone, Debug, PartialEq)]
pub enum VersionChange {
    /// Replaces the version's tags.
    Tags(Vec<(String, String)>),
    /// Sets or removes the legal hold.
    LegalHold(bool),
    /// Replaces the version's access control list (opaque; `None`: the default ACL).
    Acl(Option<String>),
    /// Sets (`Some`) or removes (`None`) the retention. An active COMPLIANCE retention can
    /// only be extended; an active GOVERNANCE one can be extended or made COMPLIANCE, and
    /// shortened or removed only with `bypass_governance`. `ObjectLocked` otherwise.
    Retention {
        /// The new retention.
        retention: Option<Retention>,
        /// The caller may bypass GOVERNANCE retention.
        bypass_governance: bool,
        /// The time the rules are checked at, in milliseconds since the Unix epoch.
        now_ms: i64,
    },
}

/// A ListObjectVersions request, already decoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VersionListQuery {
    /// Only keys starting with this are listed.
    pub prefix: String,
    /// Keys with this after the prefix roll up into one common prefix.
    pub delimiter: Option<String>,
    /// Exclusive: versions of keys before this are skipped, and of this key too unless
    /// `version_id_marker` names one of them (then the versions after it are listed).
    pub key_marker: Option<String>,
    /// Only meaningful with `key_marker`: a version id, or `null`.
    pub version_id_marker: Option<String>,
    /// At most this many versions and common prefixes together.
    pub max_keys: usize,
}

/// One version in a ListObjectVersions page.
#[derive(Clone, Debug, PartialEq)]
pub struct ListedVersion {
    /// The version's key.
    pub key: String,
    /// The version.
    pub version: Version,
    /// Whether it is the newest version of its key.
    pub is_latest: bool,
}

/// One page of a ListObjectVersions answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VersionListPage {
    /// Versions by key, newest first within a key.
    pub versions: Vec<ListedVersion>,
    /// The common prefixes listed, in order.
    pub common_prefixes: Vec<String>,
    /// Whether more follow this page.
    pub is_truncated: bool,
    /// When truncated: the key (or common prefix) of the last entry returned.
    pub next_key_marker: Option<String>,
    /// When truncated and the last entry was a version: its id (`null` for the null version).
    pub next_version_id_marker: Option<String>,
}

/// An object's metadata (one version of it): what a HEAD answers from, and where its body lies.
///
/// Fields added after the first release carry `#[serde(default)]`, so records written before
/// them still decode.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ObjectRecord {
    /// The body's length as clients see it (plaintext bytes).
    pub size: u64,
    /// Without quotes.
    pub etag: String,
    /// Last write, in milliseconds since the Unix epoch (`Last-Modified`).
    pub last_modified_ms: i64,
    /// The user who wrote the object.
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
    /// The version's id; `None` is the null version (every object of a bucket that never had
    /// versioning enabled). Assigned by the store when the record is written: whatever the
    /// caller puts here is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Object tags (key, value), in the order they were given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// Object-lock retention of this version, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Object-lock legal hold of this version.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
    /// The multipart upload this version was completed from (a retried completion of that
    /// upload answers with this version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// How `checksum` covers the body: `COMPOSITE` (a checksum of the parts' checksums, with a
    /// `-N` suffix) or `FULL_OBJECT`; opaque here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<String>,
    /// The version's access control list, opaque here; `None` is the default ACL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<String>,
}

/// Where one object version's bytes are stored and what opens them: its extents and its
/// envelope. [`crate::MetadataStore::replace_body`] swaps one for another.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredBody {
    /// The body's blobs, in order.
    pub extents: Vec<Extent>,
    /// The opaque encryption envelope; `None` for a body stored as sent.
    pub envelope: Option<Vec<u8>>,
}

/// Object-lock retention of one version: until when, and how strictly.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Retention {
    /// GOVERNANCE (removable by principals allowed to bypass it) or COMPLIANCE (by nobody).
    pub mode: RetentionMode,
    /// The version may not be deleted before this instant (milliseconds since the epoch).
    pub until_ms: i64,
}

/// The two object-lock retention modes.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum RetentionMode {
    /// Principals allowed to may shorten or remove it (`x-amz-bypass-governance-retention`).
    Governance,
    /// Nobody may shorten or remove it, nor delete the version, until it ends.
    Compliance,
}

/// One blob of an object's body.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Extent {
    /// The blob holding these bytes.
    pub blob: BlobId,
    /// Stored bytes.
    pub size: u64,
    /// The upload part this extent was, for an object completed from a multipart upload.
    pub part_number: Option<u32>,
    /// That part's ETag (without quotes), for an object completed from a multipart upload.
    pub etag: Option<String>,
    /// That part's checksum (algorithm, base64 value), opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<(String, String)>,
    /// That part's plaintext length, for an object completed from a multipart upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain_size: Option<u64>,
}

/// A multipart upload in progress: what its completed object will carry.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct UploadRecord {
    /// Filled in by `Store::create_upload`.
    pub upload_id: String,
    /// The key the completed object will have.
    pub key: String,
    /// Creation time, in milliseconds since the Unix epoch.
    pub initiated_ms: i64,
    /// The user who created the upload.
    pub owner: String,
    /// Opaque headers for the completed object, with lower-case names.
    pub headers: Vec<(String, String)>,
    /// The checksum algorithm the client declared at creation, opaque.
    pub checksum_algorithm: Option<String>,
    /// Opaque encryption envelope the parts are sealed under.
    pub envelope: Option<Vec<u8>>,
    /// The checksum type the client declared at creation (`COMPOSITE`, `FULL_OBJECT`), opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<String>,
    /// Tags for the completed object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// Object-lock retention for the completed object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Object-lock legal hold for the completed object.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
    /// The access control list for the completed object, opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<String>,
}

/// One uploaded part of a multipart upload; a later part with the same number replaces it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PartRecord {
    /// The client's part number.
    pub part_number: u32,
    /// Without quotes.
    pub etag: String,
    /// The part's length as the client sent it (plaintext bytes).
    pub size: u64,
    /// Upload time, in milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
    /// The blob holding the part's stored bytes.
    pub blob: BlobId,
    /// (algorithm, base64 value), opaque.
    pub checksum: Option<(String, String)>,
    /// Opaque encryption envelope of this part alone, if any (parts sealed under the
    /// upload's envelope carry none).
    pub envelope: Option<Vec<u8>>,
    /// CRC-64/XZ of the part's body.
    #[serde(default)]
    pub crc64: Option<u64>,
}

/// A user who can sign requests. Its `Debug` leaves the sealed secret out.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct UserRecord {
    /// The user's name, unique in the store; it owns buckets and objects.
    pub name: String,
    /// The access key id requests are signed with, unique in the store.
    pub access_key: String,
    /// Already sealed by the caller; opaque here.
    pub sealed_secret: Vec<u8>,
    /// Creation time, in milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// The identity policy attached to the user (an IAM JSON document, validated by the API
    /// before it is stored; opaque here). Absent in records written before user policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("name", &self.name)
            .field("access_key", &self.access_key)
            .field("created_ms", &self.created_ms)
            .field("policy", &self.policy)
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
    /// Only if no record exists under the key, or the one there was last modified at or
    /// before this instant (milliseconds since the Unix epoch); `PreconditionFailed`
    /// otherwise. A retention policy that protects each object for a while after its last
    /// modification (OSS WORM) writes and deletes under it, so that an object written
    /// meanwhile is never replaced or removed.
    IfNotModifiedAfter(i64),
}

/// What a write of an object version (put, copy, completion) created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// The new version's id; `None` is the null version (unversioned or suspended bucket).
    pub version_id: Option<String>,
}

/// What a delete of a key (without a version id) did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deleted {
    /// No current object was there; nothing changed (unversioned bucket).
    Absent,
    /// The current object was removed (unversioned bucket).
    Removed,
    /// A delete marker was written on top (versioned or suspended bucket); `None` is the null
    /// version.
    Marker {
        /// The marker's version id.
        version_id: Option<String>,
    },
}

impl Condition {
    /// Whether the condition holds for `current`, the key's current object (`None`: the key
    /// has none, or its newest version is a delete marker): `PreconditionFailed`, or
    /// `NoSuchKey` for `IfEtag` on an absent key. Every backend checks conditions with this,
    /// inside the transaction of the write it guards.
    pub fn check(&self, current: Option<&ObjectRecord>) -> Result<(), StoreError> {
        match (self, current) {
            (Condition::IfAbsent, Some(_)) => Err(StoreError::PreconditionFailed),
            (Condition::IfEtag(_), None) => Err(StoreError::NoSuchKey),
            (Condition::IfEtag(etag), Some(current)) if current.etag != *etag => {
                Err(StoreError::PreconditionFailed)
            }
            (Condition::IfNotModifiedAfter(cutoff), Some(current))
                if current.last_modified_ms > *cutoff =>
            {
                Err(StoreError::PreconditionFailed)
            }
            _ => Ok(()),
        }
    }
}

/// A blob recorded as pending: named before its bytes were written, not yet referenced by a
/// committed record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingBlob {
    /// The pending blob.
    pub blob: BlobId,
    /// When the pending row was written, in milliseconds since the Unix epoch.
    pub since_ms: i64,
}

/// A ListObjects request, already decoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListQuery {
    /// Only keys starting with this are listed.
    pub prefix: String,
    /// Keys with this after the prefix roll up into one common prefix.
    pub delimiter: Option<String>,
    /// Exclusive: keys (and common prefixes) up to and including this are skipped.
    pub start_after: Option<String>,
    /// At most this many objects and common prefixes together.
    pub max_keys: usize,
}

/// One page of a ListObjects answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListPage {
    /// The objects listed, by key, in key order.
    pub objects: Vec<(String, ObjectRecord)>,
    /// The common prefixes listed, in order.
    pub common_prefixes: Vec<String>,
    /// Whether more keys follow this page.
    pub is_truncated: bool,
    /// The last key or common prefix returned, when truncated.
    pub next_marker: Option<String>,
}

/// A ListMultipartUploads request, already decoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UploadListQuery {
    /// Only uploads of keys starting with this are listed.
    pub prefix: String,
    /// Keys with this after the prefix roll up into one common prefix.
    pub delimiter: Option<String>,
    /// Exclusive: uploads of keys up to and including this are skipped (but see
    /// `upload_id_marker`).
    pub key_marker: Option<String>,
    /// Only meaningful with `key_marker`: uploads of that key with a greater id are listed too.
    pub upload_id_marker: Option<String>,
    /// At most this many uploads and common prefixes together.
    pub max_uploads: usize,
}

/// One page of a ListMultipartUploads answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UploadListPage {
    /// The uploads listed, by key then upload id.
    pub uploads: Vec<UploadRecord>,
    /// The common prefixes listed, in order.
    pub common_prefixes: Vec<String>,
    /// Whether more uploads follow this page.
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
