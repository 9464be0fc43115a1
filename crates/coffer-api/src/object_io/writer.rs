//! Writing one blob: hashing the plaintext (MD5 for the ETag, CRC-64 for
//! OSS clients), sealing it when the object is encrypted, and staging the
//! result; plus the commit that makes staged blobs visible.

use coffer_auth::checksum::{ChecksumAlgorithm, Checksummer, Crc64Xz};
use coffer_crypto::sealed::PartSealer;
use coffer_keying::{SINGLE_PART, Sealing};
use std::future::Future;

use bytes::Bytes;
use coffer_store::{BlobId, BlobStore, Extent, StoreError};
use md5::{Digest as _, Md5};
use tokio::runtime::Handle;
use zeroize::Zeroize;

use crate::error::{ApiError, ApiResult};

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
/// nothing visible.
pub struct BodyWriter {
    blob: Box<dyn coffer_store::BlobWriter>,
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
    /// A writer into a new blob of `blobs`. Call it from a blocking thread
    /// of `runtime` (it waits on the store there).
    pub fn new(runtime: Handle, blobs: &dyn BlobStore, target: BlobTarget) -> ApiResult<Self> {
        let sealer = match target {
            BlobTarget::Plain => None,
            BlobTarget::Sealed(sealer) => Some(sealer),
        };
        Ok(Self {
            blob: runtime.block_on(blobs.create())?,
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

    /// Also computes the `algorithm` checksum of the plaintext, for the
    /// staged body's record (a copied part of an upload that declared one).
    pub fn compute_checksum(&mut self, algorithm: ChecksumAlgorithm) {
        self.checksum = Some(algorithm.checksummer());
    }

    /// Appends plaintext.
    pub fn write(&mut self, mut data: &[u8]) -> ApiResult<()> {
        self.size += data.len() as u64;
        self.md5.update(data);
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
/// them); if it fails, the blobs are deleted at once.
pub async fn commit_staged<T>(
    blob_store: &dyn BlobStore,
    blobs: Vec<BlobId>,
    commit: impl Future<Output = Result<T, StoreError>>,
) -> ApiResult<T> {
    let committed = commit.await;
    if committed.is_err() {
        for blob in &blobs {
            if let Err(error) = blob_store.delete(blob).await {
                tracing::warn!(%error, blob, "could not discard an uncommitted blob");
            }
        }
    }
    Ok(committed?)
}
