//! Writing one blob: hashing the plaintext (MD5 for the ETag, CRC-64 for
//! OSS clients), sealing it when the object is encrypted, and staging the
//! result; plus the commit that makes staged blobs visible.

use coffer_auth::checksum::{ChecksumAlgorithm, Checksummer, Crc64Xz};
use coffer_crypto::sealed::PartSealer;
use coffer_keying::{SINGLE_PART, Sealing};
use std::future::Future;
use std::time::SystemTime;

use bytes::Bytes;
use coffer_store::{BlobId, BlobStore, Extent, MetadataStore};
use md5::{Digest as _, Md5};
use tokio::runtime::Handle;
use zeroize::Zeroize;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

/// Bytes gathered before each write to the blob file (and, sealed, before
/// each batch given to the sealer). Batches are exactly this size, so the
/// buffers below never grow past their first allocation, and each written
/// batch is replaced by one of the same size: an upload holds about 2 MiB
/// (plus the batch the store is writing) however large the object.
const WRITE_BUFFER: usize = 1024 * 1024;
/// Room in `buffer` for one sealed batch: its tags and the chunk the sealer
/// may hold back from the previous batch.
const SEALED_BATCH_ROOM: usize = WRITE_BUFFER + 64 * 1024;

/// How a blob's bytes are stored: as given, or sealed as one part of an
/// encrypted object.
pub enum BlobTarget {
    /// The bytes as given (an object without server-side encryption).
    Plain,
    /// Sealed by this part's sealer.
    Sealed(PartSealer),
}

impl BlobTarget {
    /// How a single-part object's bytes are stored: sealed as part 0 with
    /// `sealing`, or plain without one.
    pub fn single_part(sealing: Option<&Sealing>) -> Self {
        match sealing {
            Some(sealing) => BlobTarget::Sealed(sealing.sealer(SINGLE_PART)),
            None => BlobTarget::Plain,
        }
    }
}

/// A body written to a staged blob and verified; not yet visible.
pub struct StagedBody {
    /// The finished blob holding the stored bytes.
    pub blob: BlobId,
    /// Plaintext bytes.
    pub size: u64,
    /// Bytes in the blob (larger than `size` when sealed).
    pub stored_size: u64,
    /// MD5 of the plaintext: the ETag, and what `Content-MD5` is checked against.
    pub md5: [u8; 16],
    /// The checksum the client asked for (algorithm, base64 value), verified.
    pub checksum: Option<(ChecksumAlgorithm, String)>,
    /// CRC-64/XZ, kept for every object so OSS clients can check any of them.
    pub crc64: u64,
}

impl StagedBody {
    /// The ETag (without quotes) of a body stored in one PUT or part: its MD5 in hex.
    pub fn etag(&self) -> String {
        hex::encode(self.md5)
    }

    /// The extent this body becomes in an object record; `part_number` for a part of a
    /// multipart upload.
    pub fn extent(&self, part_number: Option<u32>) -> Extent {
        Extent {
            blob: self.blob.clone(),
            size: self.stored_size,
            part_number,
            etag: Some(self.etag()),
            ..Default::default()
        }
    }
}

/// Streams plaintext into a new blob of the [`BlobStore`]. It runs on a
/// blocking thread (hashing and sealing are CPU work) and hands each batch
/// to the store's async writer there. Dropped unfinished, it leaves
/// nothing visible; its pending row, if it wrote one
/// ([`BodyWriter::pending_row`]), is for the caller to [`discard`].
pub struct BodyWriter {
    blob: Box<dyn coffer_store::BlobWriter>,
    /// Whether a pending row names the blob (step 2 of the commit order).
    pending_row: bool,
    runtime: Handle,
    sealer: Option<PartSealer>,
    /// Plaintext gathered for the sealer: it seals a whole batch of chunks
    /// at once (across cores for SM4), so it is fed 1 MiB at a time.
    plain: Vec<u8>,
    /// Bytes ready for the blob file.
    buffer: Vec<u8>,
    md5: Md5,
    crc64: Crc64Xz,
    /// A flexible checksum computed for the record, when asked for.
    checksum: Option<Checksummer>,
    size: u64,
    stored: u64,
}

impl BodyWriter {
    /// A writer into a new blob of `blobs`, named by a pending row in
    /// `meta` first when `meta` needs one (steps 1 and 2 of the commit
    /// order, `coffer_store::MetadataStore`). Call it from a blocking thread
    /// of `runtime` (it waits on the stores there).
    pub fn new(
        runtime: Handle,
        blobs: &dyn BlobStore,
        meta: &dyn MetadataStore,
        target: BlobTarget,
    ) -> ApiResult<Self> {
        let sealer = match target {
            BlobTarget::Plain => None,
            BlobTarget::Sealed(sealer) => Some(sealer),
        };
        let blob = runtime.block_on(blobs.create())?;
        let pending_row = meta.needs_pending_rows();
        if pending_row {
            // Nothing is written yet: a failure here leaves nothing to clean up.
            runtime.block_on(meta.add_pending_blob(blob.id(), SystemTime::now()))?;
        }
        Ok(Self {
            blob,
            pending_row,
            runtime,
            plain: Vec::with_capacity(if sealer.is_some() { WRITE_BUFFER } else { 0 }),
            sealer,
            buffer: Vec::with_capacity(SEALED_BATCH_ROOM),
            md5: Md5::new(),
            crc64: Crc64Xz::new(),
            checksum: None,
            size: 0,
            stored: 0,
        })
    }

    /// The blob, if a pending row names it: what [`discard`] must clean up
    /// should the write not be committed.
    pub fn pending_row(&self) -> Option<&BlobId> {
        self.pending_row.then(|| self.blob.id())
    }

    /// Also computes the `algorithm` checksum of the plaintext, for the
    /// staged body's record (a copied part of an upload that declared one).
    pub fn compute_checksum(&mut self, algorithm: ChecksumAlgorithm) {
        self.checksum = Some(algorithm.checksummer());
    }

    /// Appends plaintext.
    pub fn write(&mut self, mut data: &[u8]) -> ApiResult<()> {
        self.size += data.len() as u64;
        self.md5.update(data);
        // Every body, whatever its dialect: one bucket serves S3 and OSS
        // clients alike, and OSS answers any GET of any object, and every
        // multipart completion, with the CRC-64 (SIMD: ~0.1 s/GiB).
        self.crc64.update(data);
        if let Some(checksum) = self.checksum.as_mut() {
            checksum.update(data);
        }
        if self.sealer.is_none() && self.buffer.is_empty() && data.len() >= WRITE_BUFFER {
            return self.write_out(data);
        }
        while !data.is_empty() {
            let staging = match self.sealer {
                Some(_) => &mut self.plain,
                None => &mut self.buffer,
            };
            let take = (WRITE_BUFFER - staging.len()).min(data.len());
            staging.extend_from_slice(&data[..take]);
            data = &data[take..];
            if staging.len() == WRITE_BUFFER {
                self.write_batch()?;
            }
        }
        Ok(())
    }

    /// Seals the gathered plaintext batch (if sealed) and writes it out.
    fn write_batch(&mut self) -> ApiResult<()> {
        if let Some(sealer) = self.sealer.as_mut() {
            sealer
                .push(&self.plain, &mut self.buffer)
                .map_err(|e| ApiError::internal("sealing", e))?;
            self.plain.zeroize();
        }
        self.flush()
    }

    /// Plaintext bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// MD5 of the plaintext so far.
    pub fn md5(&self) -> [u8; 16] {
        self.md5.clone().finalize().into()
    }

    /// CRC-64/XZ of the plaintext so far.
    pub fn crc64(&self) -> u64 {
        self.crc64.clone().finish()
    }

    /// Hands the gathered batch to the store whole (no copy); a buffer of
    /// the same size takes its place, which the allocator serves from the
    /// one the store just released, so an upload's memory stays flat.
    fn flush(&mut self) -> ApiResult<()> {
        let batch = std::mem::replace(&mut self.buffer, Vec::with_capacity(SEALED_BATCH_ROOM));
        self.send(Bytes::from(batch))
    }

    fn write_out(&mut self, bytes: &[u8]) -> ApiResult<()> {
        self.send(Bytes::copy_from_slice(bytes))
    }

    fn send(&mut self, batch: Bytes) -> ApiResult<()> {
        self.stored += batch.len() as u64;
        Ok(self.runtime.block_on(self.blob.write(batch))?)
    }

    /// Seals the final chunk, fsyncs and stages the blob.
    pub fn finish(mut self) -> ApiResult<StagedBody> {
        if let Some(mut sealer) = self.sealer.take() {
            sealer
                .push(&self.plain, &mut self.buffer)
                .map_err(|e| ApiError::internal("sealing", e))?;
            self.plain.zeroize();
            crate::metrics::sealed(sealer.algorithm(), self.size());
            sealer.finish(&mut self.buffer);
        }
        self.flush()?;
        let md5 = self.md5();
        let crc64 = self.crc64();
        let checksum = self.checksum.take().map(|c| (c.algorithm(), c.finish()));
        let blob = self.runtime.block_on(self.blob.finish())?;
        Ok(StagedBody {
            blob,
            size: self.size,
            stored_size: self.stored,
            md5,
            checksum,
            crc64,
        })
    }
}

/// Commits staged blobs with `commit` (the metadata write that references
/// them, and whatever the operation checks between staging and that
/// write); if it fails, the blobs are discarded at once
/// ([`discard_uncommitted`]).
pub async fn commit_staged<T>(
    state: &AppState,
    blobs: &[BlobId],
    commit: impl Future<Output = ApiResult<T>>,
) -> ApiResult<T> {
    let committed = commit.await;
    if let Err(error) = &committed {
        discard_uncommitted(state, blobs, error).await;
    }
    committed
}

/// Step 5 of the commit order after a commit of `blobs` failed with
/// `error`: [`discard`] them, unless the failure leaves the commit's outcome
/// unknown. A metadata store that needs pending rows and was unavailable may
/// have committed all the same (the connection dropped during `COMMIT`):
/// then the blobs stay, and their rows with them. If the commit happened its
/// rows are gone and the blobs are referenced; if not, the sweeper deletes
/// them after its grace period. Never deletes a blob a record may reference.
pub async fn discard_uncommitted(state: &AppState, blobs: &[BlobId], error: &ApiError) {
    if error.code == ErrorCode::ServiceUnavailable && state.meta.needs_pending_rows() {
        tracing::warn!(
            blobs = blobs.len(),
            "a commit's outcome is unknown: its blobs are left to the sweeper"
        );
        return;
    }
    discard(state, blobs).await;
}

/// Deletes blobs that no commit references (a failed or lost commit, a
/// staging that failed), then their pending rows, if the metadata store
/// keeps them. A blob whose delete fails keeps its row, so the sweeper
/// tries again.
pub async fn discard(state: &AppState, blobs: &[BlobId]) {
    let rows = state.meta.needs_pending_rows();
    for blob in blobs {
        if let Err(error) = state.blobs.delete(blob).await {
            tracing::warn!(%error, blob, "could not discard an uncommitted blob");
            continue;
        }
        if rows && let Err(error) = state.meta.remove_pending_blob(blob).await {
            tracing::warn!(%error, blob, "could not remove a discarded blob's pending row");
        }
    }
}
