//! Reused batch buffers for blob bytes, written (PUT) and read (GET).
//!
//! A batch of about 1 MiB in a fresh allocation costs more than the work
//! done on it: glibc serves it with `mmap`, so every page faults and is
//! cleared by the kernel, and `munmap` follows (≈12 % of a GET's CPU in
//! issue 19's profile). These buffers are allocated and zeroed once, kept
//! at full length (so a read can fill one without zeroing it again, in safe
//! code), and go back to a small process-wide pool when the last handle to
//! their bytes drops: the [`Bytes`] handed to the blob store or to hyper
//! owns its buffer ([`Bytes::from_owner`]).
//!
//! Each buffer's bytes start at a page boundary, so a batch whose length is
//! a multiple of [`PAGE`] can be written with `O_DIRECT` as it is.

use std::sync::Mutex;

use bytes::Bytes;
use coffer_crypto::sealed::SEALED_CHUNK_SIZE;

/// The alignment (and the length granularity) `O_DIRECT` writes need.
pub const PAGE: usize = 4096;
/// Bytes gathered before a batch is handed on.
pub const BATCH: usize = 1024 * 1024;
/// Room in a buffer: a batch, plus one sealed chunk that may complete past
/// it (a writer cuts only between sealed chunks); the batches a reader reads
/// (16 sealed chunks) fit too.
const ROOM: usize = BATCH + SEALED_CHUNK_SIZE;
/// Idle buffers kept for reuse (about 17 MiB); more are freed.
const MAX_IDLE: usize = 16;

static IDLE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A batch buffer: `len` bytes in use from a page-aligned `start`.
pub struct BatchBuffer {
    /// Fully initialised: `vec.len()` is its whole allocation.
    vec: Vec<u8>,
    start: usize,
    len: usize,
    /// Whether it goes back to the pool when dropped.
    pooled: bool,
}

impl BatchBuffer {
    /// An empty buffer with room for [`BATCH`] bytes and one more sealed chunk, from the pool.
    pub fn take() -> Self {
        let idle = IDLE.lock().ok().and_then(|mut idle| idle.pop());
        let vec = idle.unwrap_or_else(|| vec![0; ROOM + PAGE]);
        let start = vec.as_ptr().align_offset(PAGE).min(PAGE);
        BatchBuffer {
            vec,
            start,
            len: 0,
            pooled: true,
        }
    }

    /// An empty buffer for at most `room` bytes: pooled when that is a batch's worth, an exact
    /// allocation (which malloc serves from its heap) for small bodies.
    pub fn for_bytes(room: usize) -> Self {
        if room > BATCH / 4 {
            return Self::take();
        }
        BatchBuffer {
            vec: vec![0; room],
            start: 0,
            len: 0,
            pooled: false,
        }
    }

    /// Bytes in use.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte is in use.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes that can still be appended.
    pub fn spare(&self) -> usize {
        self.vec.len() - self.start - self.len
    }

    /// Appends `data` and returns where it now lies. Panics past [`spare`](Self::spare).
    pub fn push(&mut self, data: &[u8]) -> &mut [u8] {
        let at = self.start + self.len;
        let slot = &mut self.vec[at..at + data.len()];
        slot.copy_from_slice(data);
        self.len += data.len();
        slot
    }

    /// The bytes in use.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.vec[self.start..self.start + self.len]
    }

    /// Keeps the first `len` bytes in use.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// The bytes in use as a [`Bytes`] that owns this buffer (no copy).
    pub fn into_bytes(self) -> Bytes {
        Bytes::from_owner(self)
    }

    /// A buffer holding `vec`'s first `len` bytes (a read's result), pooled if it came from
    /// the pool ([`into_vec`](Self::into_vec)).
    pub fn from_vec(vec: Vec<u8>, len: usize, pooled: bool) -> Self {
        assert!(len <= vec.len(), "within the buffer");
        BatchBuffer {
            vec,
            start: 0,
            len,
            pooled,
        }
    }

    /// The whole allocation, for a read to fill from its front, and whether it is pooled.
    pub fn into_vec(mut self) -> (Vec<u8>, bool) {
        let vec = std::mem::take(&mut self.vec);
        (vec, std::mem::replace(&mut self.pooled, false))
    }
}

impl AsRef<[u8]> for BatchBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.vec[self.start..self.start + self.len]
    }
}

impl Drop for BatchBuffer {
    fn drop(&mut self) {
        if !self.pooled || self.vec.len() != ROOM + PAGE {
            return;
        }
        if let Ok(mut idle) = IDLE.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(std::mem::take(&mut self.vec));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pooled_buffer_is_page_aligned_and_comes_back() {
        let mut buffer = BatchBuffer::take();
        assert_eq!(buffer.as_mut_slice().as_ptr() as usize % PAGE, 0);
        assert!(buffer.spare() >= BATCH + SEALED_CHUNK_SIZE);
        buffer.push(b"secret-free bytes");
        let bytes = buffer.into_bytes();
        assert_eq!(&bytes[..], b"secret-free bytes");
        drop(bytes);
        // Back in the pool (or, if another test took it, a fresh one): empty and aligned.
        let mut again = BatchBuffer::take();
        assert_eq!(again.len(), 0);
        again.push(&[0; PAGE]);
        assert_eq!(again.as_mut_slice().as_ptr() as usize % PAGE, 0);
    }

    #[test]
    fn a_small_buffer_is_exact_and_not_pooled() {
        let mut buffer = BatchBuffer::for_bytes(100);
        assert_eq!(buffer.spare(), 100);
        buffer.push(&[1; 60]);
        buffer.truncate(10);
        assert_eq!(buffer.as_mut_slice(), &[1; 10]);
        let (vec, pooled) = buffer.into_vec();
        assert_eq!((vec.len(), pooled), (100, false));
    }
}
