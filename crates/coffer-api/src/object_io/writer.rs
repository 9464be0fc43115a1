//! Writing one blob: hashing the plaintext (MD5 for the ETag, CRC-64 for
//! OSS clients), sealing it when the object is encrypted, and staging the
//! result; plus the commit that makes staged blobs visible.
//!
//! [`BodyEncoder`] is the CPU half, shared by the streaming [`BodyWriter`]
//! (a blocking thread) and small bodies staged from the connection's task
//! ([`stage_encoded`]). It copies each byte once: from the request's frame
//! into its place in a page-aligned batch, where it is hashed while still in
//! cache and, when sealed, sealed in place with its chunk.

use coffer_auth::checksum::{ChecksumAlgorithm, Checksummer, Crc64Xz};
use coffer_auth::md5::Md5;
use coffer_crypto::sealed::{CHUNK_SIZE, PartSealer, TAG_LEN};
use coffer_keying::{SINGLE_PART, Sealing};
use std::future::Future;
use std::time::SystemTime;

use bytes::Bytes;
use coffer_store::{BlobId, BlobStore, Extent, MetadataStore};
use tokio::runtime::Handle;
use zeroize::Zeroize;

use super::buffers::{BATCH, BatchBuffer, PAGE};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

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

/// What hashing a whole body gave.
pub(super) struct Digests {
    size: u64,
    md5: [u8; 16],
    crc64: u64,
    checksum: Option<(ChecksumAlgorithm, String)>,
}

/// Where an encoder's finished batches go.
type Emit<'a> = dyn FnMut(Bytes) -> ApiResult<()> + 'a;

/// The CPU half of storing a body: hashes the plaintext and lays out the
/// blob's bytes (sealed in place, or as given) in page-aligned batches of
/// [`BATCH`] bytes or a little more, each a multiple of [`PAGE`] bytes but
/// the last, so the blob store can write them with `O_DIRECT` as they are.
pub(super) struct BodyEncoder {
    sealer: Option<PartSealer>,
    md5: Md5,
    crc64: Crc64Xz,
    /// A flexible checksum computed for the record, when asked for.
    checksum: Option<Checksummer>,
    size: u64,
    /// Bytes of the blob not yet handed on. Sealed, its last `open` bytes
    /// are the plaintext of the chunk being filled.
    batch: BatchBuffer,
    open: usize,
}

impl BodyEncoder {
    /// An encoder for `target`; `expected` is the body's size when known
    /// (a small body gets a buffer of its size rather than a batch's).
    pub(super) fn new(target: BlobTarget, expected: Option<u64>) -> Self {
        let sealer = match target {
            BlobTarget::Plain => None,
            BlobTarget::Sealed(sealer) => Some(sealer),
        };
        let batch = match expected.and_then(|size| usize::try_from(size).ok()) {
            Some(size) if size < BATCH => {
                BatchBuffer::for_bytes(coffer_crypto::sealed::sealed_size(size as u64) as usize)
            }
            _ => BatchBuffer::take(),
        };
        Self {
            sealer,
            md5: Md5::new(),
            crc64: Crc64Xz::new(),
            checksum: None,
            size: 0,
            batch,
            open: 0,
        }
    }

    /// Appends plaintext, handing each finished batch to `emit`.
    pub(super) fn write(&mut self, mut data: &[u8], emit: &mut Emit<'_>) -> ApiResult<()> {
        self.size += data.len() as u64;
        while !data.is_empty() {
            let room = if self.sealer.is_some() {
                if self.open == CHUNK_SIZE {
                    // A byte follows the full chunk: it is not the final one.
                    self.seal_open_chunk()?;
                    if self.batch.len() >= BATCH {
                        self.cut(emit)?;
                    }
                }
                CHUNK_SIZE - self.open
            } else {
                if self.batch.len() >= BATCH {
                    self.cut(emit)?;
                }
                // Pieces of a chunk's size: hashed while the copy is in cache.
                (BATCH - self.batch.len()).min(CHUNK_SIZE)
            };
            let (now, rest) = data.split_at(room.min(data.len()));
            if self.batch.spare() < now.len() {
                // A small body's exact buffer, outgrown (it was larger than announced).
                self.grow();
            }
            let copied = self.batch.push(now);
            self.md5.update(copied);
            // Every body, whatever its dialect: one bucket serves S3 and OSS
            // clients alike, and OSS answers any GET of any object, and every
            // multipart completion, with the CRC-64 (SIMD: ~0.1 s/GiB).
            self.crc64.update(copied);
            if let Some(checksum) = self.checksum.as_mut() {
                checksum.update(copied);
            }
            if self.sealer.is_some() {
                self.open += now.len();
            }
            data = rest;
        }
        Ok(())
    }

    /// Seals the full chunk at the end of `batch` in place, after its tag's room.
    fn seal_open_chunk(&mut self) -> ApiResult<()> {
        let start = self.batch.len() - self.open;
        if self.batch.spare() < TAG_LEN {
            self.grow();
        }
        self.batch.push(&[0; TAG_LEN]);
        let sealer = self
            .sealer
            .as_mut()
            .expect("only sealed bodies have chunks");
        sealer
            .seal_chunk_in_place(&mut self.batch.as_mut_slice()[start..])
            .map_err(|e| ApiError::internal("sealing", e))?;
        self.open = 0;
        Ok(())
    }

    /// Hands on the batch's whole pages; the rest (less than a page, all of
    /// it sealed or plain bytes, never an open chunk) starts the next batch.
    fn cut(&mut self, emit: &mut Emit<'_>) -> ApiResult<()> {
        debug_assert_eq!(self.open, 0);
        let pages = self.batch.len() / PAGE * PAGE;
        let mut next = BatchBuffer::take();
        next.push(&self.batch.as_mut_slice()[pages..]);
        let mut full = std::mem::replace(&mut self.batch, next);
        full.truncate(pages);
        emit(full.into_bytes())
    }

    /// Moves the bytes of an outgrown small buffer into a batch buffer.
    fn grow(&mut self) {
        let mut bigger = BatchBuffer::take();
        bigger.push(self.batch.as_mut_slice());
        let mut small = std::mem::replace(&mut self.batch, bigger);
        small.as_mut_slice().zeroize();
    }

    /// Plaintext bytes written so far.
    pub(super) fn size(&self) -> u64 {
        self.size
    }

    /// MD5 of the plaintext so far.
    pub(super) fn md5(&self) -> [u8; 16] {
        self.md5.clone().finish()
    }

    /// CRC-64/XZ of the plaintext so far.
    pub(super) fn crc64(&self) -> u64 {
        self.crc64.clone().finish()
    }

    /// Seals the final chunk (if sealed) and hands on the last batch.
    pub(super) fn finish(mut self, emit: &mut Emit<'_>) -> ApiResult<Digests> {
        if let Some(sealer) = self.sealer.take() {
            let start = self.batch.len() - self.open;
            if self.batch.spare() < TAG_LEN {
                self.grow();
            }
            self.batch.push(&[0; TAG_LEN]);
            crate::metrics::sealed(sealer.algorithm(), self.size);
            sealer.finish_in_place(&mut self.batch.as_mut_slice()[start..]);
            self.open = 0;
        }
        let last = std::mem::replace(&mut self.batch, BatchBuffer::for_bytes(0));
        if !last.is_empty() {
            emit(last.into_bytes())?;
        }
        Ok(Digests {
            size: self.size,
            md5: self.md5(),
            crc64: self.crc64(),
            checksum: self.checksum.take().map(|c| (c.algorithm(), c.finish())),
        })
    }
}

impl Drop for BodyEncoder {
    /// An unfinished body's last plaintext is wiped before its buffer is reused.
    fn drop(&mut self) {
        if self.sealer.is_some() && self.open > 0 {
            let len = self.batch.len();
            self.batch.as_mut_slice()[len - self.open..].zeroize();
        }
    }
}

/// A new blob of the [`BlobStore`] written from a blocking thread: the
/// blob half of [`BodyWriter`], fed finished batches. Dropped unfinished, it
/// leaves nothing visible; its pending row, if it wrote one
/// ([`BlobSink::pending_row`]), is for the caller to [`discard`].
pub(super) struct BlobSink {
    blob: Box<dyn coffer_store::BlobWriter>,
    /// Whether a pending row names the blob (step 2 of the commit order).
    pending_row: bool,
    runtime: Handle,
    stored: u64,
}

impl BlobSink {
    /// A new blob of `blobs`, named by a pending row in `meta` first when
    /// `meta` needs one (steps 1 and 2 of the commit order,
    /// `coffer_store::MetadataStore`). Call it from a blocking thread of
    /// `runtime` (it waits on the stores there).
    pub(super) fn new(
        runtime: Handle,
        blobs: &dyn BlobStore,
        meta: &dyn MetadataStore,
    ) -> ApiResult<Self> {
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
            stored: 0,
        })
    }

    /// The blob, if a pending row names it.
    pub(super) fn pending_row(&self) -> Option<&BlobId> {
        self.pending_row.then(|| self.blob.id())
    }

    /// Appends a batch of the blob's bytes.
    pub(super) fn write(&mut self, batch: Bytes) -> ApiResult<()> {
        self.stored += batch.len() as u64;
        Ok(self.runtime.block_on(self.blob.write(batch))?)
    }

    /// Fsyncs and stages the blob; its id and length.
    pub(super) fn finish(self) -> ApiResult<(BlobId, u64)> {
        let blob = self.runtime.block_on(self.blob.finish())?;
        Ok((blob, self.stored))
    }
}

/// Streams plaintext into a new blob of the [`BlobStore`]. It runs on a
/// blocking thread (hashing and sealing are CPU work) and hands each batch
/// to the store's async writer there. Dropped unfinished, it leaves
/// nothing visible; its pending row, if it wrote one
/// ([`BodyWriter::pending_row`]), is for the caller to [`discard`].
pub struct BodyWriter {
    sink: BlobSink,
    encoder: BodyEncoder,
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
        Ok(Self {
            sink: BlobSink::new(runtime, blobs, meta)?,
            encoder: BodyEncoder::new(target, None),
        })
    }

    /// The blob, if a pending row names it: what [`discard`] must clean up
    /// should the write not be committed.
    pub fn pending_row(&self) -> Option<&BlobId> {
        self.sink.pending_row()
    }

    /// Also computes the `algorithm` checksum of the plaintext, for the
    /// staged body's record (a copied part of an upload that declared one).
    pub fn compute_checksum(&mut self, algorithm: ChecksumAlgorithm) {
        self.encoder.checksum = Some(algorithm.checksummer());
    }

    /// Appends plaintext.
    pub fn write(&mut self, data: &[u8]) -> ApiResult<()> {
        let sink = &mut self.sink;
        self.encoder.write(data, &mut |batch| sink.write(batch))
    }

    /// Plaintext bytes written so far.
    pub fn size(&self) -> u64 {
        self.encoder.size()
    }

    /// MD5 of the plaintext so far.
    pub fn md5(&self) -> [u8; 16] {
        self.encoder.md5()
    }

    /// CRC-64/XZ of the plaintext so far.
    pub fn crc64(&self) -> u64 {
        self.encoder.crc64()
    }

    /// Seals the final chunk, fsyncs and stages the blob.
    pub fn finish(self) -> ApiResult<StagedBody> {
        let Self { mut sink, encoder } = self;
        let digests = encoder.finish(&mut |batch| sink.write(batch))?;
        let (blob, stored) = sink.finish()?;
        Ok(staged(blob, stored, digests))
    }
}

pub(super) fn staged(blob: BlobId, stored_size: u64, digests: Digests) -> StagedBody {
    StagedBody {
        blob,
        size: digests.size,
        stored_size,
        md5: digests.md5,
        checksum: digests.checksum,
        crc64: digests.crc64,
    }
}

/// Stages a small body encoded in memory (`batches`, `digests`) from the
/// connection's task: no blocking thread or channel of its own, one
/// hand-off to the store per step. The same commit order as
/// [`BodyWriter::new`]; on failure nothing is left behind.
pub(super) async fn stage_encoded(
    state: &AppState,
    batches: Vec<Bytes>,
    digests: Digests,
) -> ApiResult<StagedBody> {
    let mut blob = state.blobs.create().await?;
    let id = blob.id().clone();
    let pending_row = state.meta.needs_pending_rows();
    if pending_row {
        // Nothing is written yet: a failure here leaves nothing to clean up.
        state.meta.add_pending_blob(&id, SystemTime::now()).await?;
    }
    let stored = batches.iter().map(|batch| batch.len() as u64).sum();
    let written = async {
        for batch in batches {
            blob.write(batch).await?;
        }
        blob.finish().await
    }
    .await;
    match written {
        Ok(blob) => Ok(staged(blob, stored, digests)),
        Err(error) => {
            if pending_row {
                discard(state, &[id]).await;
            }
            Err(error.into())
        }
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

#[cfg(test)]
mod tests {
    use coffer_crypto::sealed::{Algorithm, ObjectId};
    use coffer_crypto::{PartSealer, SymmetricKey};
    use proptest::prelude::*;

    use super::*;

    fn sealer() -> PartSealer {
        let dek = SymmetricKey::from_slice(&[5; 32]).expect("32 bytes");
        PartSealer::new(Algorithm::Aes256Gcm, &dek, &ObjectId([6; 16]), 0)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Whatever pieces the body comes in, the batches are the blob's
        /// bytes (sealed as `push` seals them, or as given), and every batch
        /// but the last starts on a page and is whole pages long: what an
        /// O_DIRECT blob writer takes without copying.
        #[test]
        fn batches_are_the_blob_in_whole_aligned_pages(
            size in prop_oneof![
                prop::sample::select(vec![0, 1, CHUNK_SIZE, BATCH, BATCH + 1, 3 * BATCH + 17]),
                0..4 * BATCH,
            ],
            pieces in prop::collection::vec(1..200_000usize, 1..8),
            sealed in any::<bool>(),
            announced in any::<bool>(),
        ) {
            let body: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
            let target = if sealed { BlobTarget::Sealed(sealer()) } else { BlobTarget::Plain };
            let mut encoder = BodyEncoder::new(target, announced.then_some(size as u64));
            let mut batches: Vec<Bytes> = Vec::new();
            let mut keep = |batch: Bytes| {
                batches.push(batch);
                Ok(())
            };
            let mut rest = &body[..];
            for piece in pieces.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (now, later) = rest.split_at((*piece).min(rest.len()));
                encoder.write(now, &mut keep).expect("writes");
                rest = later;
            }
            let digests = encoder.finish(&mut keep).expect("finishes");

            let expected = if sealed {
                let mut out = Vec::new();
                let mut sealer = sealer();
                sealer.push(&body, &mut out).expect("small part");
                sealer.finish(&mut out);
                out
            } else {
                body.clone()
            };
            prop_assert_eq!(batches.concat(), expected);
            if let Some((_, whole)) = batches.split_last() {
                for batch in whole {
                    prop_assert_eq!(batch.len() % PAGE, 0);
                    prop_assert_eq!(batch.as_ptr() as usize % PAGE, 0);
                    prop_assert!(batch.len() >= BATCH - PAGE);
                }
            }
            prop_assert_eq!(digests.size, size as u64);
            prop_assert_eq!(digests.md5, Md5::digest(&body));
        }
    }
}
