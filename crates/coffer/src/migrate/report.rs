//! The count and digest report: what one end holds, counted and hashed the same way on both
//! ends, so that equal reports mean the migration carried everything as is.
//!
//! Two digests (SHA-256):
//! - **objects**: for every bucket (by name), every key (in listing order) and every version
//!   (newest first): the bucket, the key, the version id (`null`), the ETag (`marker` for a
//!   delete marker), the SHA-256 of the version's record as JSON with its blob ids blanked
//!   (headers, tags, lock, envelope…: everything but where the bytes lie), and the SHA-256 of
//!   its blobs' bytes, read back, in extent order;
//! - **settings**: every bucket record (configuration documents and versioning included),
//!   every user record, every KMS keystore record by id, the service key ring's document and
//!   the audit log's lines.
//!
//! Fields are length-prefixed, so no two different inputs hash alike by concatenation.

use coffer_kms::keystore::{KeyRecord, KeyStore};
use coffer_store::{BlobStore, ObjectRecord, Version};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::side::Side;
use super::walk::KeyWalk;

/// What one end holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub buckets: u64,
    pub users: u64,
    /// Keys whose newest version is an object.
    pub objects: u64,
    /// Object versions, current ones included.
    pub versions: u64,
    pub delete_markers: u64,
    /// Extents of multipart-completed versions (one per part).
    pub parts: u64,
    /// Blobs referenced by object versions.
    pub blobs: u64,
    /// Their stored (sealed) bytes, as read back.
    pub bytes: u64,
    pub kms_keys: u64,
    pub kms_aliases: u64,
    pub audit_lines: u64,
    pub objects_digest: String,
    pub settings_digest: String,
}

/// Feeds length-prefixed fields into a SHA-256.
struct Framed(Sha256);

impl Framed {
    fn new() -> Self {
        Self(Sha256::new())
    }

    fn field(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
    }

    fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| format!("encoding a record: {e}"))
}

/// `record` as JSON without its blob ids: what must be equal on both ends.
pub fn placeless(version: &Version) -> Version {
    let mut version = version.clone();
    if let Version::Object(record) = &mut version {
        for extent in &mut record.extents {
            extent.blob.clear();
        }
    }
    version
}

/// Counts and hashes everything `side` holds; `keystore` is its KMS keystore.
pub async fn census(side: &Side, keystore: &dyn KeyStore) -> Result<Census, String> {
    let mut census = Census::default();
    let mut settings = Framed::new();
    let mut objects = Framed::new();

    let buckets = side
        .meta
        .list_buckets()
        .await
        .map_err(|e| format!("listing buckets: {e}"))?;
    for bucket in &buckets {
        census.buckets += 1;
        settings.field(b"bucket");
        settings.field(&json(bucket)?);
    }
    for user in side
        .meta
        .list_users()
        .await
        .map_err(|e| format!("listing users: {e}"))?
    {
        census.users += 1;
        settings.field(b"user");
        settings.field(&json(&user)?);
    }
    let records = keystore
        .list()
        .map_err(|e| format!("listing KMS keystore records: {e}"))?;
    for (id, record) in &records {
        match record.value {
            KeyRecord::Key(_) => census.kms_keys += 1,
            KeyRecord::Alias { .. } => census.kms_aliases += 1,
        }
        settings.field(b"kms");
        settings.field(id.as_bytes());
        settings.field(&json(&record.value)?);
    }
    let ring = side
        .ring()
        .load()
        .map_err(|e| format!("reading the service key ring: {e}"))?;
    settings.field(b"ring");
    settings.field(ring.as_ref().map_or(&[][..], |r| r.value.as_slice()));
    side.for_each_audit_line(|line| {
        census.audit_lines += 1;
        settings.field(b"audit");
        settings.field(line.as_bytes());
        Ok(())
    })?;

    for bucket in &buckets {
        let mut walk = KeyWalk::new(side.meta.as_ref(), &bucket.name);
        while let Some(key) = walk.next_key().await? {
            if matches!(key.versions.first(), Some(Version::Object(_))) {
                census.objects += 1;
            }
            for version in &key.versions {
                objects.field(bucket.name.as_bytes());
                objects.field(key.key.as_bytes());
                objects.field(version.version_id().unwrap_or("null").as_bytes());
                objects.field(&sha256(&json(&placeless(version))?));
                match version {
                    Version::DeleteMarker(_) => {
                        census.delete_markers += 1;
                        objects.field(b"marker");
                    }
                    Version::Object(record) => {
                        census.versions += 1;
                        objects.field(record.etag.as_bytes());
                        let body = body_digest(side.blobs.as_ref(), record, &mut census)
                            .await
                            .map_err(|e| {
                                format!(
                                    "{}/{} (version {}): {e}",
                                    bucket.name,
                                    key.key,
                                    version.version_id().unwrap_or("null")
                                )
                            })?;
                        objects.field(&body);
                    }
                }
            }
        }
    }
    census.objects_digest = objects.finish();
    census.settings_digest = settings.finish();
    Ok(census)
}

/// SHA-256 of a version's blobs' bytes, in extent order, each read back whole.
async fn body_digest(
    blobs: &dyn BlobStore,
    record: &ObjectRecord,
    census: &mut Census,
) -> Result<[u8; 32], String> {
    let mut hasher = Sha256::new();
    for extent in &record.extents {
        census.blobs += 1;
        if extent.part_number.is_some() {
            census.parts += 1;
        }
        let len = blobs
            .len(&extent.blob)
            .await
            .map_err(|e| format!("blob {}: {e}", extent.blob))?;
        let mut stream = blobs
            .read(&extent.blob, 0..len)
            .await
            .map_err(|e| format!("blob {}: {e}", extent.blob))?;
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| format!("blob {}: {e}", extent.blob))?;
            census.bytes += piece.len() as u64;
            hasher.update(&piece);
        }
    }
    Ok(hasher.finalize().into())
}

/// The report, source beside target, and whether they agree.
pub fn render(source: &Census, target: &Census) -> (String, bool) {
    let rows: [(&str, u64, u64); 11] = [
        ("buckets", source.buckets, target.buckets),
        ("users", source.users, target.users),
        ("objects", source.objects, target.objects),
        ("versions", source.versions, target.versions),
        (
            "delete markers",
            source.delete_markers,
            target.delete_markers,
        ),
        ("parts", source.parts, target.parts),
        ("blobs", source.blobs, target.blobs),
        ("bytes", source.bytes, target.bytes),
        ("kms keys", source.kms_keys, target.kms_keys),
        ("kms aliases", source.kms_aliases, target.kms_aliases),
        ("audit lines", source.audit_lines, target.audit_lines),
    ];
    let mut out = format!("{:<16} {:>20} {:>20}\n", "", "source", "target");
    for (name, s, t) in rows {
        let mark = if s == t { "" } else { "  DIFFERENT" };
        out.push_str(&format!("{name:<16} {s:>20} {t:>20}{mark}\n"));
    }
    for (name, s, t) in [
        (
            "objects digest",
            &source.objects_digest,
            &target.objects_digest,
        ),
        (
            "settings digest",
            &source.settings_digest,
            &target.settings_digest,
        ),
    ] {
        let mark = if s == t { "same" } else { "DIFFERENT" };
        out.push_str(&format!(
            "{name:<16} source {s}\n{:<16} target {t}  {mark}\n",
            ""
        ));
    }
    let same = source == target;
    out.push_str(if same {
        "report: source and target agree\n"
    } else {
        "report: source and target DIFFER\n"
    });
    (out, same)
}
