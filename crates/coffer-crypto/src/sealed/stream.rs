//! STREAM over one part: [`PartSealer`] (streaming) and [`PartOpener`] (per chunk).

use zeroize::{Zeroize, Zeroizing};

use super::cipher::{ChunkCipher, PartKey};
use super::range::RangePlan;
use super::{
    AAD_LABEL, Algorithm, CHUNK_SIZE, MAX_CHUNKS_PER_PART, NONCE_PREFIX_LEN, ObjectId,
    SEALED_CHUNK_SIZE, TAG_LEN,
};
use crate::{CryptoError, SymmetricKey};

const AAD_LEN: usize = 9 + 16 + 4 + 8 + 1;
const AAD_INDEX_AT: usize = 9 + 16 + 4;

/// The keyed state shared by sealing and opening one part.
struct PartCipher {
    cipher: ChunkCipher,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    /// The AAD with a zero chunk index, patched per chunk.
    aad: [u8; AAD_LEN],
}

impl PartCipher {
    fn new(
        algorithm: Algorithm,
        dek: &SymmetricKey,
        object_id: &ObjectId,
        part_number: u32,
    ) -> Self {
        let part_key = PartKey::derive(algorithm, dek, object_id, part_number);
        let mut aad = [0u8; AAD_LEN];
        aad[..9].copy_from_slice(AAD_LABEL);
        aad[9..25].copy_from_slice(&object_id.0);
        aad[25..29].copy_from_slice(&part_number.to_be_bytes());
        aad[AAD_LEN - 1] = algorithm.id();
        PartCipher {
            cipher: ChunkCipher::new(algorithm, &part_key),
            nonce_prefix: part_key.nonce_prefix,
            aad,
        }
    }

    /// Nonce and AAD of chunk `index`; `None` past the 32-bit counter.
    fn nonce_and_aad(&self, index: u64, last: bool) -> Option<([u8; 12], [u8; AAD_LEN])> {
        let counter = u32::try_from(index).ok()?;
        let mut nonce = [0u8; 12];
        nonce[..NONCE_PREFIX_LEN].copy_from_slice(&self.nonce_prefix);
        nonce[NONCE_PREFIX_LEN..11].copy_from_slice(&counter.to_be_bytes());
        nonce[11] = u8::from(last);
        let mut aad = self.aad;
        aad[AAD_INDEX_AT..AAD_INDEX_AT + 8].copy_from_slice(&index.to_be_bytes());
        Some((nonce, aad))
    }

    /// Seals `slot[..len - TAG_LEN]` (plaintext) in place and writes the tag
    /// into the last `TAG_LEN` bytes of `slot`.
    fn seal_slot(&self, index: u64, last: bool, slot: &mut [u8]) {
        let (nonce, aad) = self
            .nonce_and_aad(index, last)
            .expect("the sealer checks the chunk counter before sealing");
        let split = slot.len() - TAG_LEN;
        let (body, tag) = slot.split_at_mut(split);
        tag.copy_from_slice(&self.cipher.seal_in_place(nonce, &aad, body));
    }

    fn seal_chunk(&self, index: u64, last: bool, plaintext: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(plaintext);
        out.extend_from_slice(&[0u8; TAG_LEN]);
        self.seal_slot(index, last, &mut out[start..]);
    }

    /// Seals whole chunks `plaintext` (a multiple of [`CHUNK_SIZE`]) as
    /// non-final chunks `first_index..`, across up to `threads` threads. The
    /// output is the same for any number of threads.
    fn seal_full_chunks(
        &self,
        first_index: u64,
        plaintext: &[u8],
        out: &mut Vec<u8>,
        threads: usize,
    ) {
        debug_assert_eq!(plaintext.len() % CHUNK_SIZE, 0);
        let chunks = plaintext.len() / CHUNK_SIZE;
        if threads <= 1 || chunks < 2 {
            for (i, chunk) in plaintext.chunks(CHUNK_SIZE).enumerate() {
                self.seal_chunk(first_index + i as u64, false, chunk, out);
            }
            return;
        }
        let start = out.len();
        out.resize(start + chunks * SEALED_CHUNK_SIZE, 0);
        let per_thread = chunks.div_ceil(threads.min(chunks));
        let seal_group = |group: usize, slots: &mut [u8], plain: &[u8]| {
            let slots = slots.chunks_mut(SEALED_CHUNK_SIZE);
            for (j, (slot, chunk)) in slots.zip(plain.chunks(CHUNK_SIZE)).enumerate() {
                slot[..CHUNK_SIZE].copy_from_slice(chunk);
                let index = first_index + (group * per_thread + j) as u64;
                self.seal_slot(index, false, slot);
            }
        };
        std::thread::scope(|scope| {
            let mut groups = out[start..]
                .chunks_mut(per_thread * SEALED_CHUNK_SIZE)
                .zip(plaintext.chunks(per_thread * CHUNK_SIZE))
                .enumerate();
            // The calling thread takes the first group itself.
            let first = groups.next();
            for (group, (slots, plain)) in groups {
                scope.spawn(move || seal_group(group, slots, plain));
            }
            if let Some((group, (slots, plain))) = first {
                seal_group(group, slots, plain);
            }
        });
    }
}

/// Seals one part as a stream: push plaintext in pieces of any size, get
/// whole sealed chunks out, then [`finish`](Self::finish) seals the final
/// (possibly empty) chunk.
///
/// It buffers at most one chunk of plaintext (wiped on drop): a full chunk is
/// sealed only once a byte after it arrives, because until then it may be the
/// final chunk. With [`threads`](Self::threads) above one, the whole chunks
/// of one `push` are sealed across that many threads; by default one, for
/// both algorithms.
///
/// `key` must be the object's DEK; the part's key is derived from it, the
/// object id, the algorithm and `part_number`. Never seal two different
/// plaintexts under the same (DEK, object id, part number).
pub struct PartSealer {
    algorithm: Algorithm,
    part: PartCipher,
    pending: Zeroizing<Vec<u8>>,
    pub(super) next_index: u64,
    plain_len: u64,
    threads: usize,
}

impl PartSealer {
    /// A sealer for part `part_number` of the object `object_id`, whose DEK is
    /// `dek`; it seals on the calling thread.
    pub fn new(
        algorithm: Algorithm,
        dek: &SymmetricKey,
        object_id: &ObjectId,
        part_number: u32,
    ) -> Self {
        PartSealer {
            algorithm,
            part: PartCipher::new(algorithm, dek, object_id, part_number),
            pending: Zeroizing::new(Vec::with_capacity(CHUNK_SIZE)),
            next_index: 0,
            plain_len: 0,
            threads: 1,
        }
    }

    /// The chunk AEAD this sealer seals with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Sets how many threads may seal a batch of chunks (1, the default:
    /// never spawn). The sealed bytes do not depend on it. More pays only for
    /// long single pushes on idle cores: a server opening its 1 MiB SM4-GCM
    /// read batches on two cores used more CPU and served fewer MB/s than on
    /// one (docs/performance.md, session 8).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Appends the sealed form of every chunk `plaintext` completes to `out`.
    ///
    /// Fails only when the part would pass [`MAX_CHUNKS_PER_PART`] chunks
    /// (256 TiB); the sealer must then be dropped.
    pub fn push(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let mut input = plaintext;
        // Complete the buffered chunk.
        let take = (CHUNK_SIZE - self.pending.len()).min(input.len());
        self.pending.extend_from_slice(&input[..take]);
        input = &input[take..];
        if input.is_empty() {
            // The buffered chunk may still be the final one.
            self.plain_len += plaintext.len() as u64;
            return Ok(());
        }
        // The buffered chunk is full and more follows: it is not the final one.
        // Then whole chunks straight from the input, keeping 1..=CHUNK_SIZE
        // bytes back for the buffer.
        let direct = (input.len() - 1) / CHUNK_SIZE;
        // Non-final chunks must leave a counter value for the final chunk.
        if self.next_index + 1 + direct as u64 >= MAX_CHUNKS_PER_PART {
            return Err(CryptoError::PartTooLarge);
        }
        self.part
            .seal_chunk(self.next_index, false, &self.pending, out);
        self.pending.zeroize();
        self.next_index += 1;
        let (whole, rest) = input.split_at(direct * CHUNK_SIZE);
        self.part
            .seal_full_chunks(self.next_index, whole, out, self.threads);
        self.next_index += direct as u64;
        self.pending.extend_from_slice(rest);
        self.plain_len += plaintext.len() as u64;
        Ok(())
    }

    /// Seals the final chunk (empty if nothing was pushed) and returns the
    /// number of plaintext bytes sealed, the size to record in the envelope.
    pub fn finish(self, out: &mut Vec<u8>) -> u64 {
        // push() leaves the counter at most MAX_CHUNKS_PER_PART - 1.
        self.part
            .seal_chunk(self.next_index, true, &self.pending, out);
        self.plain_len
    }
}

impl PartSealer {
    /// Seals the next chunk where the caller laid it out, for a writer that
    /// builds the sealed stream in its own buffers (no copy through the
    /// sealer's): `slot` holds one whole chunk of plaintext ([`CHUNK_SIZE`]
    /// bytes) followed by [`TAG_LEN`] bytes for its tag, and becomes the
    /// chunk's sealed form. Seal a chunk only once a byte after it exists:
    /// until then it may be the final one
    /// ([`finish_in_place`](Self::finish_in_place)). The bytes are those
    /// [`push`](Self::push) would give.
    ///
    /// Fails like `push` when the part would pass [`MAX_CHUNKS_PER_PART`]
    /// chunks. Panics on a slot of another length, or on a sealer that
    /// `push` has buffered bytes in (both bugs of the caller).
    pub fn seal_chunk_in_place(&mut self, slot: &mut [u8]) -> Result<(), CryptoError> {
        assert_eq!(slot.len(), SEALED_CHUNK_SIZE, "a whole chunk and its tag");
        assert!(self.pending.is_empty(), "not mixed with push");
        if self.next_index + 1 >= MAX_CHUNKS_PER_PART {
            return Err(CryptoError::PartTooLarge);
        }
        self.part.seal_slot(self.next_index, false, slot);
        self.next_index += 1;
        self.plain_len += CHUNK_SIZE as u64;
        Ok(())
    }

    /// Seals the final chunk in place: `slot` holds its plaintext (at most
    /// [`CHUNK_SIZE`] bytes, empty only when it is the part's only chunk)
    /// followed by [`TAG_LEN`] bytes for its tag. Returns the number of
    /// plaintext bytes sealed, as [`finish`](Self::finish) does. Panics on
    /// a slot that breaks those rules, or on a sealer that `push` has
    /// buffered bytes in.
    pub fn finish_in_place(self, slot: &mut [u8]) -> u64 {
        let plain = slot.len().checked_sub(TAG_LEN).expect("room for the tag");
        assert!(plain <= CHUNK_SIZE, "at most one chunk");
        assert!(plain > 0 || self.next_index == 0, "only chunk 0 is empty");
        assert!(self.pending.is_empty(), "not mixed with push");
        // seal_chunk_in_place leaves the counter at most MAX_CHUNKS_PER_PART - 1.
        self.part.seal_slot(self.next_index, true, slot);
        self.plain_len + plain as u64
    }
}

impl std::fmt::Debug for PartSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartSealer")
            .field("plain_len", &self.plain_len)
            .finish_non_exhaustive()
    }
}

/// Opens the chunks of one part, in any order and any subset.
///
/// A range of several chunks may be opened across threads (see
/// [`threads`](Self::threads)); the plaintext does not depend on it.
pub struct PartOpener {
    part: PartCipher,
    threads: usize,
}

impl PartOpener {
    /// Verify the DEK against the envelope's commitment first
    /// ([`Envelope::verify_key`](super::Envelope::verify_key)).
    pub fn new(
        algorithm: Algorithm,
        dek: &SymmetricKey,
        object_id: &ObjectId,
        part_number: u32,
    ) -> Self {
        PartOpener {
            part: PartCipher::new(algorithm, dek, object_id, part_number),
            threads: 1,
        }
    }

    /// Sets how many threads may open the chunks of one range (1, the
    /// default: never spawn; see [`PartSealer::threads`]).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Opens sealed chunk `index` (ciphertext ‖ tag) in place after checking
    /// its length; on success its first `len - TAG_LEN` bytes are plaintext.
    fn open_slot(&self, index: u64, last: bool, slot: &mut [u8]) -> Result<(), CryptoError> {
        let length_ok = if last {
            // Only chunk 0 of an empty part is an empty final chunk.
            let min = if index == 0 { TAG_LEN } else { TAG_LEN + 1 };
            (min..=SEALED_CHUNK_SIZE).contains(&slot.len())
        } else {
            slot.len() == SEALED_CHUNK_SIZE
        };
        let (nonce, aad) = self
            .part
            .nonce_and_aad(index, last)
            .filter(|_| length_ok)
            .ok_or(CryptoError::Decryption)?;
        self.part.cipher.open_in_place(nonce, &aad, slot)
    }

    /// Opens the consecutive sealed chunks in `sealed`, the first being
    /// `plan.first_chunk`, in place, across up to `self.threads` threads.
    fn open_slots(&self, plan: &RangePlan, sealed: &mut [u8]) -> Result<(), CryptoError> {
        let open_group = |first: u64, group: &mut [u8]| -> Result<(), CryptoError> {
            for (j, slot) in group.chunks_mut(SEALED_CHUNK_SIZE).enumerate() {
                let index = first + j as u64;
                self.open_slot(index, plan.is_final(index), slot)?;
            }
            Ok(())
        };
        let chunks = sealed.len().div_ceil(SEALED_CHUNK_SIZE);
        let threads = self.threads.min(chunks);
        if threads <= 1 {
            return open_group(plan.first_chunk, sealed);
        }
        let per_thread = chunks.div_ceil(threads);
        std::thread::scope(|scope| {
            let mut groups = sealed
                .chunks_mut(per_thread * SEALED_CHUNK_SIZE)
                .enumerate()
                .map(|(g, group)| (plan.first_chunk + (g * per_thread) as u64, group));
            // The calling thread takes the first group itself.
            let first = groups.next();
            let others: Vec<_> = groups
                .map(|(index, group)| scope.spawn(move || open_group(index, group)))
                .collect();
            let mut result = first.map_or(Ok(()), |(index, group)| open_group(index, group));
            for other in others {
                result = result.and(other.join().unwrap_or(Err(CryptoError::Decryption)));
            }
            result
        })
    }

    /// Opens chunk `index` (`last`: whether it is the part's final chunk, as
    /// the recorded size says) and appends its plaintext to `out`. On any
    /// failure `out` is left as it was and the error is only
    /// [`CryptoError::Decryption`].
    pub fn open_chunk(
        &self,
        index: u64,
        last: bool,
        sealed: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let start = out.len();
        out.extend_from_slice(sealed);
        match self.open_slot(index, last, &mut out[start..]) {
            Ok(()) => {
                out.truncate(out.len() - TAG_LEN);
                Ok(())
            }
            Err(error) => {
                out[start..].zeroize();
                out.truncate(start);
                Err(error)
            }
        }
    }

    /// Opens the sealed bytes `plan.sealed` of a part (read by the caller)
    /// and appends exactly the planned plaintext range to `out`. On failure
    /// `out` is left as it was.
    pub fn open_range(
        &self,
        plan: &RangePlan,
        sealed: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let mut buf = Zeroizing::new(sealed.to_vec());
        self.open_range_in_place(plan, &mut buf)?;
        out.extend_from_slice(&buf);
        Ok(())
    }

    /// [`open_range`](Self::open_range) where the sealed bytes lie: `buf`
    /// holds `plan.sealed` as read and is left holding exactly the planned
    /// plaintext range. No second buffer; the only copy is the move that
    /// closes the gaps the tags leave. On failure `buf` is wiped and emptied.
    pub fn open_range_in_place(
        &self,
        plan: &RangePlan,
        buf: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        match self.open_range_in_slice(plan, buf) {
            Ok(kept) => {
                buf.truncate(kept);
                Ok(())
            }
            Err(error) => {
                buf.clear();
                Err(error)
            }
        }
    }

    /// [`open_range_in_place`](Self::open_range_in_place) over a buffer
    /// that cannot shrink (a reused one): `buf` holds `plan.sealed` as read;
    /// the planned plaintext range ends up at its front, and its length is
    /// returned. On failure `buf` is wiped.
    pub fn open_range_in_slice(
        &self,
        plan: &RangePlan,
        buf: &mut [u8],
    ) -> Result<usize, CryptoError> {
        let result = if buf.len() as u64 == plan.sealed.end - plan.sealed.start {
            self.open_slots(plan, buf)
                .and_then(|()| keep_planned_plaintext(plan, buf))
        } else {
            Err(CryptoError::Decryption)
        };
        if result.is_err() {
            buf.zeroize();
        }
        result
    }
}

/// Moves the planned plaintext of opened chunks (`buf`, each chunk still
/// followed by its tag) to the front of `buf`; returns its length.
fn keep_planned_plaintext(plan: &RangePlan, buf: &mut [u8]) -> Result<usize, CryptoError> {
    let mut kept = 0;
    let mut skip = plan.skip as usize;
    let mut remaining = plan.len as usize;
    for start in (0..buf.len()).step_by(SEALED_CHUNK_SIZE) {
        // open_slot checked that every chunk holds at least a tag.
        let plain_end = (start + SEALED_CHUNK_SIZE).min(buf.len()) - TAG_LEN;
        let from = start + skip.min(plain_end - start);
        skip -= from - start;
        let to = from + remaining.min(plain_end - from);
        if from != kept {
            buf.copy_within(from..to, kept);
        }
        kept += to - from;
        remaining -= to - from;
    }
    if remaining != 0 {
        return Err(CryptoError::Decryption);
    }
    Ok(kept)
}

impl std::fmt::Debug for PartOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PartOpener(<redacted>)")
    }
}

#[cfg(test)]
mod in_place_tests {
    use proptest::prelude::*;

    use super::*;
    use crate::SymmetricKey;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Chunks laid out and sealed in place are the bytes `push` gives.
        #[test]
        fn in_place_sealing_is_push_sealing(
            size in prop_oneof![
                prop::sample::select(vec![0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE]),
                0..=5 * CHUNK_SIZE,
            ],
            sm4 in any::<bool>(),
        ) {
            let algorithm = if sm4 { Algorithm::Sm4Gcm } else { Algorithm::Aes256Gcm };
            let dek = SymmetricKey::from_slice(&[7u8; 32]).expect("32 bytes");
            let id = ObjectId([9u8; 16]);
            let plaintext: Vec<u8> = (0..size).map(|i| (i * 131 % 251) as u8).collect();

            let mut pushed = Vec::new();
            let mut sealer = PartSealer::new(algorithm, &dek, &id, 3);
            sealer.push(&plaintext, &mut pushed).expect("small part");
            prop_assert_eq!(sealer.finish(&mut pushed), size as u64);

            let mut laid_out = Vec::new();
            let mut sealer = PartSealer::new(algorithm, &dek, &id, 3);
            let mut rest = &plaintext[..];
            while rest.len() > CHUNK_SIZE {
                let start = laid_out.len();
                laid_out.extend_from_slice(&rest[..CHUNK_SIZE]);
                laid_out.extend_from_slice(&[0; TAG_LEN]);
                sealer.seal_chunk_in_place(&mut laid_out[start..]).expect("small part");
                rest = &rest[CHUNK_SIZE..];
            }
            let start = laid_out.len();
            laid_out.extend_from_slice(rest);
            laid_out.extend_from_slice(&[0; TAG_LEN]);
            prop_assert_eq!(sealer.finish_in_place(&mut laid_out[start..]), size as u64);
            prop_assert_eq!(laid_out, pushed);
        }
    }
}
