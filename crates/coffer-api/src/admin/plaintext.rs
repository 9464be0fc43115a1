//! Objects stored in plaintext: listed (`coffer sse status`) and sealed in place (`coffer sse
//! rewrap --seal-plaintext`).
//!
//! Sealing in place keeps everything a client can see: each plaintext version is read, its
//! bytes are checked against its own ETag (and CRC-64), sealed into new blobs as the same
//! parts, and swapped in with [`MetadataStore::replace_body`]: a compare-and-swap on the
//! version's extents and envelope, so the version id, ETag, size, metadata, checksums, tags,
//! lock and last-modified time stay, and a version overwritten, deleted or changed meanwhile
//! is left to the writer who won (its new blobs deleted). Each version commits on its own:
//! an interrupted run has sealed what it sealed, and the next run seals the rest (a sealed
//! version has an envelope and is skipped), so running it again when nothing is left is a
//! no-op.
//!
//! [`MetadataStore::replace_body`]: coffer_store::MetadataStore::replace_body

use coffer_keying::SINGLE_PART;
use coffer_store::{
    BlobId, BucketRecord, Extent, ObjectRecord, StoredBody, Version, VersionListQuery, VersionRef,
};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::object_io::{self, BlobTarget, BodySource, copy_range};
use crate::request::ApiRequest;
use crate::sse::{self, BucketDefault};
use crate::state::AppState;

/// One plaintext object version, as `coffer sse status` lists it.
#[derive(Serialize)]
pub struct PlaintextVersion {
    bucket: String,
    key: String,
    /// `null` for the null version, as S3 names it.
    version_id: String,
    size: u64,
}

/// What `coffer sse status` shows.
#[derive(Serialize)]
pub struct Status {
    /// What seals objects that name no encryption.
    default_sse: String,
    /// Buckets whose owner opted out of encryption at rest.
    opted_out_buckets: Vec<String>,
    plaintext_objects: Vec<PlaintextVersion>,
    plaintext_bytes: u64,
}

/// What a `--seal-plaintext` run did.
#[derive(Serialize, Default)]
pub struct SealReport {
    versions_scanned: u64,
    versions_sealed: u64,
    bytes_sealed: u64,
    /// Overwritten, deleted or changed while being sealed: the other writer won.
    versions_changed_meanwhile: u64,
    /// Whose stored bytes no longer match their ETag: left as they are, logged.
    versions_damaged: u64,
}

/// Every object version (delete markers aside) of every bucket, a page at a time (also
/// `kms_usage.rs`'s walk).
pub(super) struct VersionWalk {
    buckets: std::vec::IntoIter<BucketRecord>,
    bucket: Option<BucketRecord>,
    query: VersionListQuery,
}

impl VersionWalk {
    pub(super) async fn new(state: &AppState) -> ApiResult<Self> {
        Self::of_buckets(state, None).await
    }

    /// The walk over one bucket (`Some(name)`; none if there is no such bucket) or all.
    pub(super) async fn of_buckets(state: &AppState, only: Option<&str>) -> ApiResult<Self> {
        let mut buckets = state.meta.list_buckets().await?;
        buckets.retain(|bucket| only.is_none_or(|name| bucket.name == name));
        let mut buckets = buckets.into_iter();
        Ok(VersionWalk {
            bucket: buckets.next(),
            buckets,
            query: Self::first_page(),
        })
    }

    fn first_page() -> VersionListQuery {
        VersionListQuery {
            max_keys: 1000,
            ..Default::default()
        }
    }

    /// The next page's bucket and its object versions (key, record); `None` when done.
    pub(super) async fn next_page(
        &mut self,
        state: &AppState,
    ) -> ApiResult<Option<(BucketRecord, Vec<(String, ObjectRecord)>)>> {
        let Some(bucket) = self.bucket.clone() else {
            return Ok(None);
        };
        let page = state.meta.list_versions(&bucket.name, &self.query).await?;
        if page.is_truncated {
            self.query.key_marker = page.next_key_marker;
            self.query.version_id_marker = page.next_version_id_marker;
        } else {
            self.bucket = self.buckets.next();
            self.query = Self::first_page();
        }
        let objects = page
            .versions
            .into_iter()
            .filter_map(|listed| match listed.version {
                Version::Object(record) => Some((listed.key, record)),
                Version::DeleteMarker(_) => None,
            })
            .collect();
        Ok(Some((bucket, objects)))
    }
}

/// Every plaintext object version and every bucket that opted out.
pub async fn status(state: &AppState) -> ApiResult<Status> {
    let mut status = Status {
        default_sse: state.settings.default_protection.to_string(),
        opted_out_buckets: Vec::new(),
        plaintext_objects: Vec::new(),
        plaintext_bytes: 0,
    };
    for bucket in state.meta.list_buckets().await? {
        if BucketDefault::of(&bucket).is_some_and(|rule| rule.is_plaintext_opt_out()) {
            status.opted_out_buckets.push(bucket.name);
        }
    }
    let mut walk = VersionWalk::new(state).await?;
    while let Some((bucket, objects)) = walk.next_page(state).await? {
        for (key, record) in objects {
            if record.envelope.is_none() {
                status.plaintext_bytes += record.size;
                status.plaintext_objects.push(PlaintextVersion {
                    bucket: bucket.name.clone(),
                    key,
                    version_id: record.version_id.unwrap_or_else(|| "null".into()),
                    size: record.size,
                });
            }
        }
    }
    Ok(status)
}

/// Seals every plaintext object version in place.
pub async fn seal_all(state: &AppState, req: &ApiRequest) -> ApiResult<SealReport> {
    let mut report = SealReport::default();
    let mut walk = VersionWalk::new(state).await?;
    while let Some((bucket, objects)) = walk.next_page(state).await? {
        for (key, record) in objects {
            report.versions_scanned += 1;
            if record.envelope.is_some() {
                continue;
            }
            match seal_version(state, req, &bucket, &key, &record).await? {
                Sealed::Yes => {
                    report.versions_sealed += 1;
                    report.bytes_sealed += record.size;
                }
                Sealed::ChangedMeanwhile => report.versions_changed_meanwhile += 1,
                Sealed::Damaged => report.versions_damaged += 1,
            }
        }
    }
    tracing::info!(
        scanned = report.versions_scanned,
        sealed = report.versions_sealed,
        changed = report.versions_changed_meanwhile,
        damaged = report.versions_damaged,
        "sealing plaintext objects finished"
    );
    Ok(report)
}

enum Sealed {
    Yes,
    ChangedMeanwhile,
    Damaged,
}

/// The part each extent is sealed as: part 0 for a single-part body (one extent, or none
/// for an empty body), each extent's own part number for a body completed from a multipart
/// upload. `None` for a layout no write produces.
fn part_numbers(record: &ObjectRecord) -> Option<Vec<u32>> {
    match record.extents.as_slice() {
        [] => Some(vec![SINGLE_PART]),
        [only] if only.part_number.is_none() => Some(vec![SINGLE_PART]),
        extents => extents.iter().map(|e| e.part_number).collect(),
    }
}

async fn seal_version(
    state: &AppState,
    req: &ApiRequest,
    bucket: &BucketRecord,
    key: &str,
    record: &ObjectRecord,
) -> ApiResult<Sealed> {
    let version = record.version_id.as_deref().unwrap_or("null");
    let Some(parts) = part_numbers(record) else {
        tracing::error!(bucket = %bucket.name, key, version, "a plaintext version with an unknown part layout was left as it is");
        return Ok(Sealed::Damaged);
    };
    let sealing = sse::seal_existing(state, req, bucket, key)?;
    if !sealing.stored_attributes().is_empty() {
        return Err(ApiError::internal(
            "sealing in place",
            "a sealing that needs stored attributes",
        ));
    }
    let single = record.extents.len() <= 1 && parts == [SINGLE_PART];
    let sources: Vec<Vec<Extent>> = if record.extents.is_empty() {
        vec![Vec::new()]
    } else {
        record.extents.iter().map(|e| vec![e.clone()]).collect()
    };
    let mut new_extents = Vec::with_capacity(sources.len());
    let mut layout = Vec::with_capacity(sources.len());
    let mut damaged = false;
    for (source, &part_number) in sources.into_iter().zip(&parts) {
        let plain_size: u64 = source.iter().map(|e| e.size).sum();
        let old = source.first().cloned();
        let staged = copy_range(
            state,
            BodySource {
                extents: source,
                opening: None,
            },
            0..plain_size,
            BlobTarget::Sealed(sealing.sealer(part_number)),
            None,
        )
        .await;
        let staged = match staged {
            Ok(staged) => staged,
            Err(error) => {
                discard(state, &new_extents).await;
                return Err(error);
            }
        };
        // The bytes must still be what the client wrote: a plaintext blob altered on disk is
        // not sealed (that would make the alteration authentic).
        let expected_etag = match (&old, single) {
            (_, true) => Some(record.etag.as_str()),
            (Some(old), false) => old.etag.as_deref(),
            (None, false) => None,
        };
        damaged |= expected_etag.is_some_and(|etag| etag != staged.etag())
            || (single && record.crc64.is_some_and(|crc| crc != staged.crc64));
        new_extents.push(Extent {
            blob: staged.blob.clone(),
            size: staged.stored_size,
            part_number: old.as_ref().and_then(|e| e.part_number),
            etag: old.as_ref().map_or(Some(staged.etag()), |e| e.etag.clone()),
            checksum: old.as_ref().and_then(|e| e.checksum.clone()),
            plain_size: if single {
                old.as_ref().and_then(|e| e.plain_size)
            } else {
                Some(plain_size)
            },
        });
        layout.push((part_number, plain_size));
    }
    if damaged {
        discard(state, &new_extents).await;
        tracing::error!(bucket = %bucket.name, key, version, "a plaintext version whose bytes no longer match its ETag was left as it is");
        return Ok(Sealed::Damaged);
    }
    let envelope = match sealing.final_envelope(&layout) {
        Ok(envelope) => envelope,
        Err(error) => {
            discard(state, &new_extents).await;
            return Err(sse::keying_error(error));
        }
    };
    let which = VersionRef::exactly(record.version_id.as_deref());
    let expected = StoredBody {
        extents: record.extents.clone(),
        envelope: None,
    };
    let new = StoredBody {
        extents: new_extents.clone(),
        envelope: Some(envelope),
    };
    let swapped = state
        .meta
        .replace_body(&bucket.name, key, which, expected, new)
        .await;
    match swapped {
        Ok(true) => Ok(Sealed::Yes),
        Ok(false) => {
            discard(state, &new_extents).await;
            Ok(Sealed::ChangedMeanwhile)
        }
        Err(error) => {
            let error = ApiError::from(error);
            object_io::discard_uncommitted(state, &blobs_of(&new_extents), &error).await;
            Err(error)
        }
    }
}

/// Deletes blobs staged for a swap that did not happen, and their pending rows.
async fn discard(state: &AppState, extents: &[Extent]) {
    object_io::discard(state, &blobs_of(extents)).await;
}

fn blobs_of(extents: &[Extent]) -> Vec<BlobId> {
    extents.iter().map(|e| e.blob.clone()).collect()
}
