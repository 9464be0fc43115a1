//! Sizes, and the mapping of plaintext ranges to the chunks that hold them.

use std::ops::Range;

use super::{CHUNK_SIZE, MAX_PART_SIZE, SEALED_CHUNK_SIZE, TAG_LEN};
use crate::CryptoError;

const CHUNK: u64 = CHUNK_SIZE as u64;
const SEALED_CHUNK: u64 = SEALED_CHUNK_SIZE as u64;

/// Chunks of a part of `plain` bytes: `max(1, ceil(plain / CHUNK_SIZE))`.
pub fn chunk_count(plain: u64) -> u64 {
    plain.div_ceil(CHUNK).max(1)
}

/// Bytes of the sealed blob of a part of `plain` bytes.
pub fn sealed_size(plain: u64) -> u64 {
    plain + TAG_LEN as u64 * chunk_count(plain)
}

/// The chunks to read and open for a plaintext range of one part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangePlan {
    /// Index of the first chunk to open.
    pub first_chunk: u64,
    /// Index of the last chunk to open (inclusive).
    pub last_chunk: u64,
    /// Number of chunks in the whole part; chunk `chunk_count - 1` is opened
    /// with the last flag.
    pub chunk_count: u64,
    /// Byte range of the part's sealed blob to read.
    pub sealed: Range<u64>,
    /// Plaintext bytes to drop from the start of the first opened chunk.
    pub skip: u64,
    /// Plaintext bytes to return.
    pub len: u64,
}

impl RangePlan {
    /// Whether chunk `index` is the part's final chunk (opened with the last flag).
    pub fn is_final(&self, index: u64) -> bool {
        index + 1 == self.chunk_count
    }

    /// The same read as consecutive plans of at most `max_chunks` chunks
    /// each (at least one), in order: a reader with a bounded buffer reads
    /// and opens them one at a time. Their plaintext, concatenated, is this
    /// plan's; their sealed ranges tile this plan's.
    pub fn batches(&self, max_chunks: u64) -> impl Iterator<Item = RangePlan> + '_ {
        let max_chunks = max_chunks.max(1);
        let plain_start = self.first_chunk * CHUNK + self.skip;
        let plain_end = plain_start + self.len;
        (self.first_chunk..=self.last_chunk)
            .step_by(usize::try_from(max_chunks).unwrap_or(usize::MAX))
            .map(move |first| {
                let last = (first + max_chunks - 1).min(self.last_chunk);
                let start = plain_start.max(first * CHUNK);
                let end = plain_end.min((last + 1) * CHUNK);
                let sealed_end = if last == self.last_chunk {
                    self.sealed.end
                } else {
                    (last + 1) * SEALED_CHUNK
                };
                RangePlan {
                    first_chunk: first,
                    last_chunk: last,
                    chunk_count: self.chunk_count,
                    sealed: first * SEALED_CHUNK..sealed_end,
                    skip: start - first * CHUNK,
                    len: end.saturating_sub(start),
                }
            })
    }
}

/// Plans the read of plaintext `range` of a part of `plain_size` bytes.
///
/// The range must be non-empty and inside the part, except `0..0` of an
/// empty part, which plans the one empty chunk (so that reading an empty
/// object still authenticates it). Anything else is [`CryptoError::Range`].
pub fn plan_range(plain_size: u64, range: Range<u64>) -> Result<RangePlan, CryptoError> {
    let valid = plain_size <= MAX_PART_SIZE
        && range.end <= plain_size
        && (range.start < range.end || (plain_size == 0 && range.start == 0 && range.end == 0));
    if !valid {
        return Err(CryptoError::Range);
    }
    let first_chunk = range.start / CHUNK;
    let last_chunk = range.end.saturating_sub(1) / CHUNK;
    let sealed_end = (last_chunk * SEALED_CHUNK + SEALED_CHUNK).min(sealed_size(plain_size));
    Ok(RangePlan {
        first_chunk,
        last_chunk,
        chunk_count: chunk_count(plain_size),
        sealed: first_chunk * SEALED_CHUNK..sealed_end,
        skip: range.start - first_chunk * CHUNK,
        len: range.end - range.start,
    })
}

/// The piece of an object range that falls in one part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartRange {
    /// The part's position in the envelope's part list (and of its blob
    /// among the object's stored blobs).
    pub index: usize,
    /// The part's number, from which its key is derived.
    pub part_number: u32,
    /// The piece's plaintext range within the part.
    pub plain: Range<u64>,
    /// The sealed chunks of the part to read and open for that range.
    pub plan: RangePlan,
}
