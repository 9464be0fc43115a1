//! The sealed-object format, version 1: object bodies as chunked AEAD.
//!
//! Each part of an object (a single PUT is part 0) is sealed with the
//! [STREAM] construction of Hoang, Reyhanitabar, Rogaway and Vizár: 64 KiB
//! plaintext chunks, each sealed with AES-256-GCM or SM4-GCM under a key
//! derived from the object's data key (DEK), the object id, the algorithm and
//! the part number, with a nonce of `prefix ‖ counter ‖ last flag` and an AAD
//! naming the object, part and chunk index. A key commitment stored in the
//! [`Envelope`] refuses a wrong DEK before any chunk is opened.
//!
//! The byte-level specification, with test vectors, is `docs/format.md`.
//!
//! Sealing is streaming ([`PartSealer`]: push body bytes as they arrive, get
//! whole sealed chunks out); opening is per chunk ([`PartOpener`]), so a range
//! read opens only the chunks [`plan_range`] names.
//!
//! [STREAM]: https://eprint.iacr.org/2015/189
#![forbid(unsafe_code)]

mod cipher;
mod envelope;
mod range;
mod stream;
#[cfg(test)]
mod tests;
mod wrap;

pub use envelope::{Envelope, KeyReference, PartLayout, WrapKind};
pub use range::{PartRange, RangePlan, chunk_count, plan_range, sealed_size};
pub use stream::{PartOpener, PartSealer};
pub use wrap::{BucketKeyWrap, DataKeyOwner, data_key_context};

use crate::{CryptoError, SymmetricKey};

/// Plaintext bytes per chunk (the last chunk of a part may be shorter).
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Bytes of GCM tag after each chunk's ciphertext.
pub const TAG_LEN: usize = 16;
/// Bytes of one full sealed chunk.
pub const SEALED_CHUNK_SIZE: usize = CHUNK_SIZE + TAG_LEN;
/// Most chunks in one part: the nonce counter is 32 bits.
pub const MAX_CHUNKS_PER_PART: u64 = 1 << 32;
/// Most plaintext bytes in one part (256 TiB), from the counter limit.
pub const MAX_PART_SIZE: u64 = MAX_CHUNKS_PER_PART * CHUNK_SIZE as u64;
/// Most parts in one object (the S3 limit).
pub const MAX_PARTS: usize = 10_000;
/// Length of the nonce prefix derived per part.
pub const NONCE_PREFIX_LEN: usize = 7;
/// Length of the key commitment.
pub const COMMITMENT_LEN: usize = 32;

/// The format version of envelopes without a layout tag (format.md §5).
pub const FORMAT_VERSION: u8 = 1;
/// The format version of envelopes with a layout tag (format.md §5.1).
pub const FORMAT_VERSION_2: u8 = 2;
/// Length of a version-2 envelope's layout tag.
pub const LAYOUT_TAG_LEN: usize = 32;

const COMMIT_LABEL: &[u8] = b"coffer/v1/commit";
const AAD_LABEL: &[u8] = b"coffer/v1";

/// The chunk AEAD of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// AES-256-GCM (aws-lc-rs). Id 1.
    Aes256Gcm,
    /// SM4-GCM (RustCrypto `sm4` in `aes-gcm`'s generic GCM), 128-bit key. Id 2.
    Sm4Gcm,
}

impl Algorithm {
    /// The id stored in the envelope and mixed into keys and AAD.
    pub fn id(self) -> u8 {
        match self {
            Algorithm::Aes256Gcm => 1,
            Algorithm::Sm4Gcm => 2,
        }
    }

    /// Its name for people (`coffer inspect`, the admin API, the console).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Aes256Gcm => "AES-256-GCM",
            Algorithm::Sm4Gcm => "SM4-GCM",
        }
    }

    /// The algorithm an envelope's id names; `None` for an unknown id.
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Algorithm::Aes256Gcm),
            2 => Some(Algorithm::Sm4Gcm),
            _ => None,
        }
    }
}

/// The random 128-bit identity of a sealed object (of a multipart upload).
/// Not secret; never reused, not even by a copy of the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectId(pub [u8; 16]);

impl ObjectId {
    /// A fresh id from the system CSPRNG, for each new object or upload.
    pub fn random() -> Result<Self, CryptoError> {
        let mut bytes = [0u8; 16];
        crate::random::fill(&mut bytes)?;
        Ok(Self(bytes))
    }
}

/// The key commitment of a DEK for an object (format.md §4).
pub fn commitment(dek: &SymmetricKey, object_id: &ObjectId) -> [u8; COMMITMENT_LEN] {
    let mut out = [0u8; COMMITMENT_LEN];
    cipher::hkdf_sha256(dek, &object_id.0, &[COMMIT_LABEL], &mut out);
    out
}

/// The key field of an SSE-C envelope (format.md §5): a keyed fingerprint
/// of the customer's key for this object, so the key itself is never
/// stored. HKDF-SHA256(ikm = key, salt = object id, info =
/// "coffer/v1/sse-c-fingerprint"), 32 bytes.
pub fn customer_fingerprint(key: &SymmetricKey, object_id: &ObjectId) -> [u8; COMMITMENT_LEN] {
    let mut out = [0u8; COMMITMENT_LEN];
    cipher::hkdf_sha256(
        key,
        &object_id.0,
        &[b"coffer/v1/sse-c-fingerprint"],
        &mut out,
    );
    out
}

/// Checks, in constant time, that `dek` is the key `expected` commits to.
/// A mismatch is a plain [`CryptoError::Decryption`].
pub fn verify_commitment(
    dek: &SymmetricKey,
    object_id: &ObjectId,
    expected: &[u8],
) -> Result<(), CryptoError> {
    aws_lc_rs::constant_time::verify_slices_are_equal(&commitment(dek, object_id), expected)
        .map_err(|_| CryptoError::Decryption)
}
