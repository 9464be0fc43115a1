//! The envelope: everything needed to open an object except the key itself,
//! in a compact, strictly decoded binary encoding (format.md §5).
//!
//! Version 1 authenticates the DEK (the key commitment) but not the rest of
//! the envelope. Version 2 adds a layout tag: an HMAC under a key derived
//! from the DEK over the whole encoding, so that the part list, sizes and
//! key reference cannot be edited either (format.md §5.1). Both are read;
//! version 2 is written whenever the DEK is at hand.

use std::ops::Range;

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use super::range::{PartRange, plan_range};
use super::{
    Algorithm, CHUNK_SIZE, COMMITMENT_LEN, FORMAT_VERSION, FORMAT_VERSION_2, LAYOUT_TAG_LEN,
    MAX_PART_SIZE, MAX_PARTS, ObjectId, cipher,
};
use crate::{CryptoError, SymmetricKey};

/// HKDF `info` of a version-2 key commitment: not version 1's, so that a
/// version-2 envelope stripped of its tag and relabelled version 1 fails
/// the version-1 commitment check.
const COMMIT_LABEL_V2: &[u8] = b"coffer/v2/commit";
/// HKDF `info` of the layout tag's HMAC key.
const LAYOUT_LABEL: &[u8] = b"coffer/v2/layout";

/// Longest key id (a CMK id or ARN, or the service key's id).
pub const MAX_KEY_ID_LEN: usize = 2048;
/// Longest wrapped DEK.
pub const MAX_WRAPPED_KEY_LEN: usize = 2048;
/// Length of an SSE-C key fingerprint.
pub const FINGERPRINT_LEN: usize = 32;

/// How the DEK is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WrapKind {
    /// Wrapped by the service master key (SSE-S3 / SSE-OSS). Id 1.
    ServiceKey,
    /// Wrapped by a KMS customer master key (SSE-KMS). Id 2.
    Kms,
    /// Not stored: the client brings it with each request (SSE-C). The
    /// envelope holds only a keyed fingerprint of it. Id 3.
    CustomerKey,
    /// Wrapped by a per-bucket intermediate key, itself wrapped by a KMS
    /// customer master key (SSE-KMS with bucket keys). The wrapped-key field
    /// holds both (format.md §5). Id 4.
    KmsBucketKey,
}

impl WrapKind {
    /// The id stored in the envelope's key reference.
    pub fn id(self) -> u8 {
        match self {
            WrapKind::ServiceKey => 1,
            WrapKind::Kms => 2,
            WrapKind::CustomerKey => 3,
            WrapKind::KmsBucketKey => 4,
        }
    }

    /// Its name for people (`coffer inspect`, the admin API, the console).
    pub fn name(self) -> &'static str {
        match self {
            WrapKind::ServiceKey => "service-key",
            WrapKind::Kms => "kms",
            WrapKind::CustomerKey => "customer-key",
            WrapKind::KmsBucketKey => "kms-bucket-key",
        }
    }

    /// The wrap kind an envelope's id names; `None` for an unknown id.
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(WrapKind::ServiceKey),
            2 => Some(WrapKind::Kms),
            3 => Some(WrapKind::CustomerKey),
            4 => Some(WrapKind::KmsBucketKey),
            _ => None,
        }
    }
}

/// Where the DEK comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyReference {
    /// How the DEK is wrapped, and so who can unwrap it.
    pub kind: WrapKind,
    /// The wrapping key's id; empty for [`WrapKind::CustomerKey`].
    pub key_id: String,
    /// The wrapping key's material version; 0 for [`WrapKind::CustomerKey`].
    pub key_version: u32,
    /// The wrapped DEK, or for [`WrapKind::CustomerKey`] the 32-byte keyed
    /// fingerprint of the customer key.
    pub wrapped_key: Vec<u8>,
}

/// One part of an object: its number and plaintext size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartLayout {
    /// 0 for a single PUT, the client's part number (1..=10000) for a multipart upload;
    /// the part's key is derived from it.
    pub part_number: u32,
    /// The part's plaintext length; its sealed length follows from it.
    pub plain_size: u64,
}

/// The sealed object's envelope, version 1. Chunk size is fixed at
/// [`CHUNK_SIZE`] in this version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The AEAD every chunk is sealed with.
    pub algorithm: Algorithm,
    /// The object's identity, mixed into every part key and the commitment.
    pub object_id: ObjectId,
    /// The key commitment (format.md §4): checked before any chunk is opened, so
    /// one ciphertext cannot open under two keys.
    pub commitment: [u8; COMMITMENT_LEN],
    /// Where the DEK comes from.
    pub key: KeyReference,
    /// Parts in increasing part-number order: `[part 0]` for a single PUT,
    /// numbers in 1..=10000 for a multipart upload.
    pub parts: Vec<PartLayout>,
    /// `None`: a version-1 envelope. `Some`: version 2, whose commitment uses
    /// the version-2 label and whose encoding this tag authenticates. Set by
    /// [`authenticate`](Self::authenticate).
    pub layout_tag: Option<[u8; LAYOUT_TAG_LEN]>,
}

impl Envelope {
    /// The encoding of format.md §5. Fails if the envelope breaks a rule that
    /// [`decode`](Self::decode) enforces, so that nothing unreadable is stored.
    pub fn encode(&self) -> Result<Vec<u8>, CryptoError> {
        let mut out = self.encode_untagged()?;
        if let Some(tag) = &self.layout_tag {
            out.extend_from_slice(tag);
        }
        Ok(out)
    }

    /// The encoding without the layout tag: what the tag authenticates.
    fn encode_untagged(&self) -> Result<Vec<u8>, CryptoError> {
        self.validate()?;
        let key_id = self.key.key_id.as_bytes();
        let mut out = Vec::with_capacity(
            96 + key_id.len() + self.key.wrapped_key.len() + 12 * self.parts.len(),
        );
        out.push(self.version());
        out.push(self.algorithm.id());
        out.extend_from_slice(&self.object_id.0);
        out.extend_from_slice(&(CHUNK_SIZE as u32).to_be_bytes());
        out.extend_from_slice(&self.commitment);
        out.push(self.key.kind.id());
        put_bytes(&mut out, key_id);
        out.extend_from_slice(&self.key.key_version.to_be_bytes());
        put_bytes(&mut out, &self.key.wrapped_key);
        out.extend_from_slice(&(self.parts.len() as u16).to_be_bytes());
        for part in &self.parts {
            out.extend_from_slice(&part.part_number.to_be_bytes());
            out.extend_from_slice(&part.plain_size.to_be_bytes());
        }
        Ok(out)
    }

    /// Decodes an envelope, refusing anything [`encode`](Self::encode) would
    /// not have written (so `encode(decode(x)) == x`).
    pub fn decode(bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut r = Reader(bytes);
        let version = r.u8()?;
        if version != FORMAT_VERSION && version != FORMAT_VERSION_2 {
            return Err(CryptoError::UnsupportedVersion(version));
        }
        let algorithm =
            Algorithm::from_id(r.u8()?).ok_or(CryptoError::Envelope("unknown algorithm"))?;
        let object_id = ObjectId(r.array()?);
        if r.u32()? != CHUNK_SIZE as u32 {
            return Err(CryptoError::Envelope("unsupported chunk size"));
        }
        let commitment = r.array()?;
        let kind = WrapKind::from_id(r.u8()?).ok_or(CryptoError::Envelope("unknown wrap kind"))?;
        let key_id = std::str::from_utf8(r.bytes()?)
            .map_err(|_| CryptoError::Envelope("key id is not UTF-8"))?
            .to_owned();
        let key_version = r.u32()?;
        let wrapped_key = r.bytes()?.to_vec();
        let count = usize::from(r.u16()?);
        if count == 0 || count > MAX_PARTS {
            return Err(CryptoError::Envelope("part count out of range"));
        }
        let mut parts = Vec::with_capacity(count);
        for _ in 0..count {
            parts.push(PartLayout {
                part_number: r.u32()?,
                plain_size: r.u64()?,
            });
        }
        let layout_tag = match version {
            FORMAT_VERSION_2 => Some(r.array()?),
            _ => None,
        };
        if !r.0.is_empty() {
            return Err(CryptoError::Envelope("trailing bytes"));
        }
        let envelope = Envelope {
            algorithm,
            object_id,
            commitment,
            key: KeyReference {
                kind,
                key_id,
                key_version,
                wrapped_key,
            },
            parts,
            layout_tag,
        };
        envelope.validate()?;
        Ok(envelope)
    }

    /// The format version this envelope encodes as.
    pub fn version(&self) -> u8 {
        match self.layout_tag {
            Some(_) => FORMAT_VERSION_2,
            None => FORMAT_VERSION,
        }
    }

    /// Makes this a version-2 envelope for `dek`: the version-2 commitment,
    /// and a layout tag over everything else. Call it after the last change
    /// to any field (parts, wrapped key, key version…) and before encoding.
    pub fn authenticate(&mut self, dek: &SymmetricKey) -> Result<(), CryptoError> {
        self.layout_tag = Some([0; LAYOUT_TAG_LEN]);
        self.commitment = commitment_v2(dek, &self.object_id);
        let tag = hmac::sign(&layout_key(dek, &self.object_id), &self.encode_untagged()?);
        let mut out = [0u8; LAYOUT_TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        self.layout_tag = Some(out);
        Ok(())
    }

    fn validate(&self) -> Result<(), CryptoError> {
        let key = &self.key;
        if key.key_id.len() > MAX_KEY_ID_LEN {
            return Err(CryptoError::Envelope("key id too long"));
        }
        if key.wrapped_key.is_empty() || key.wrapped_key.len() > MAX_WRAPPED_KEY_LEN {
            return Err(CryptoError::Envelope("wrapped key length out of range"));
        }
        match key.kind {
            WrapKind::ServiceKey | WrapKind::Kms | WrapKind::KmsBucketKey
                if key.key_id.is_empty() =>
            {
                return Err(CryptoError::Envelope("missing key id"));
            }
            WrapKind::CustomerKey
                if !key.key_id.is_empty()
                    || key.key_version != 0
                    || key.wrapped_key.len() != FINGERPRINT_LEN =>
            {
                return Err(CryptoError::Envelope("malformed customer key reference"));
            }
            _ => {}
        }
        if self.parts.is_empty() || self.parts.len() > MAX_PARTS {
            return Err(CryptoError::Envelope("part count out of range"));
        }
        let single_put = self.parts.len() == 1 && self.parts[0].part_number == 0;
        let numbers_ok = single_put
            || self
                .parts
                .iter()
                .all(|p| (1..=MAX_PARTS as u32).contains(&p.part_number));
        let increasing = self
            .parts
            .windows(2)
            .all(|w| w[0].part_number < w[1].part_number);
        if !numbers_ok || !increasing {
            return Err(CryptoError::Envelope("bad part numbers"));
        }
        if self.parts.iter().any(|p| p.plain_size > MAX_PART_SIZE) {
            return Err(CryptoError::Envelope("part too large"));
        }
        Ok(())
    }

    /// Checks `dek` against the stored key commitment and, for version 2,
    /// the layout tag against the whole envelope, both in constant time.
    /// Call it before opening any part; a mismatch is a plain
    /// [`CryptoError::Decryption`].
    pub fn verify_key(&self, dek: &SymmetricKey) -> Result<(), CryptoError> {
        let Some(tag) = &self.layout_tag else {
            return super::verify_commitment(dek, &self.object_id, &self.commitment);
        };
        aws_lc_rs::constant_time::verify_slices_are_equal(
            &commitment_v2(dek, &self.object_id),
            &self.commitment,
        )
        .map_err(|_| CryptoError::Decryption)?;
        hmac::verify(
            &layout_key(dek, &self.object_id),
            &self.encode_untagged()?,
            tag,
        )
        .map_err(|_| CryptoError::Decryption)
    }

    /// Plaintext size of the whole object.
    pub fn plain_size(&self) -> u64 {
        self.parts.iter().map(|p| p.plain_size).sum()
    }

    /// Maps a plaintext range of the whole object to the parts, chunks and
    /// sealed bytes to read, in part order. `0..0` of an empty object plans
    /// the empty chunk of every part, so that the read still authenticates.
    pub fn plan_range(&self, range: Range<u64>) -> Result<Vec<PartRange>, CryptoError> {
        let total = self.plain_size();
        if range.start > range.end || range.end > total || (range.is_empty() && total != 0) {
            return Err(CryptoError::Range);
        }
        let mut pieces = Vec::new();
        let mut part_start = 0u64;
        for (index, part) in self.parts.iter().enumerate() {
            let part_end = part_start + part.plain_size;
            let overlaps = range.start.max(part_start) < range.end.min(part_end);
            if overlaps || range.is_empty() {
                let plain =
                    range.start.max(part_start) - part_start..range.end.min(part_end) - part_start;
                pieces.push(PartRange {
                    index,
                    part_number: part.part_number,
                    plan: plan_range(part.plain_size, plain.clone())?,
                    plain,
                });
            }
            part_start = part_end;
        }
        Ok(pieces)
    }
}

/// The key commitment of a version-2 envelope (format.md §5.1).
fn commitment_v2(dek: &SymmetricKey, object_id: &ObjectId) -> [u8; COMMITMENT_LEN] {
    let mut out = [0u8; COMMITMENT_LEN];
    cipher::hkdf_sha256(dek, &object_id.0, &[COMMIT_LABEL_V2], &mut out);
    out
}

/// The HMAC-SHA256 key of a version-2 layout tag (format.md §5.1).
fn layout_key(dek: &SymmetricKey, object_id: &ObjectId) -> hmac::Key {
    let mut bytes = Zeroizing::new([0u8; 32]);
    cipher::hkdf_sha256(dek, &object_id.0, &[LAYOUT_LABEL], &mut bytes[..]);
    hmac::Key::new(hmac::HMAC_SHA256, &bytes[..])
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).expect("validate() bounds lengths to 2048");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A cursor over the bytes being decoded; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CryptoError> {
        if self.0.len() < n {
            return Err(CryptoError::Envelope("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CryptoError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, CryptoError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, CryptoError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, CryptoError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, CryptoError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A u16-length-prefixed byte string of at most 2048 bytes.
    fn bytes(&mut self) -> Result<&'a [u8], CryptoError> {
        let len = usize::from(self.u16()?);
        if len > MAX_KEY_ID_LEN.max(MAX_WRAPPED_KEY_LEN) {
            return Err(CryptoError::Envelope("length out of range"));
        }
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn dek() -> SymmetricKey {
        SymmetricKey::from_slice(&(0u8..32).collect::<Vec<_>>()).expect("32 bytes")
    }

    /// The envelope of format.md §7, "V6".
    fn v6() -> Envelope {
        let object_id = ObjectId(core::array::from_fn(|i| 0xa0 + i as u8));
        let mut envelope = Envelope {
            algorithm: Algorithm::Aes256Gcm,
            object_id,
            commitment: super::super::commitment(&dek(), &object_id),
            key: KeyReference {
                kind: WrapKind::ServiceKey,
                key_id: "service-key".to_owned(),
                key_version: 7,
                wrapped_key: vec![0x5a; 60],
            },
            parts: vec![
                PartLayout {
                    part_number: 1,
                    plain_size: 5 << 20,
                },
                PartLayout {
                    part_number: 2,
                    plain_size: 1000,
                },
            ],
            layout_tag: None,
        };
        envelope.authenticate(&dek()).expect("a valid envelope");
        envelope
    }

    #[test]
    fn version_2_fixed_vector() {
        let envelope = v6();
        let encoded = envelope.encode().expect("encodes");
        assert_eq!(encoded.len(), 192);
        assert_eq!(encoded[0], FORMAT_VERSION_2);
        assert_eq!(
            hex(&envelope.commitment),
            "e3507637a6b0a37098167014895c6198a54bad606c4aec4789ece06d5d924f84"
        );
        assert_eq!(
            hex(&envelope.layout_tag.expect("tagged")),
            "3c07e6db8aadee3a8a69f4e2ae7c060c6f264c950b4dc3dc4e68fc8746ee6993"
        );
        assert_eq!(
            hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &encoded).as_ref()),
            "8d6b9ca867c6ee305f49b5df1e9326a0232bd8467b47882a8ee0f457fdcc4367"
        );
        let decoded = Envelope::decode(&encoded).expect("decodes");
        assert_eq!(decoded, envelope);
        decoded.verify_key(&dek()).expect("authentic");
    }

    #[test]
    fn version_2_any_byte_change_is_refused() {
        let encoded = v6().encode().expect("encodes");
        for at in 0..encoded.len() {
            let mut edited = encoded.clone();
            edited[at] ^= 0x01;
            if let Ok(decoded) = Envelope::decode(&edited) {
                assert_eq!(
                    decoded.verify_key(&dek()),
                    Err(CryptoError::Decryption),
                    "byte {at} changed, still accepted"
                );
            }
        }
    }

    #[test]
    fn version_2_edits_of_the_layout_are_refused() {
        let edits: [fn(&mut Envelope); 5] = [
            |e| e.parts.truncate(1),
            |e| e.parts.remove(0).part_number = 0,
            |e| e.parts[1].plain_size = 0,
            |e| e.key.key_version = 1,
            |e| e.key.key_id = "other".to_owned(),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut envelope = v6();
            edit(&mut envelope);
            let decoded = Envelope::decode(&envelope.encode().expect("encodes")).expect("decodes");
            assert_eq!(
                decoded.verify_key(&dek()),
                Err(CryptoError::Decryption),
                "edit {i}"
            );
        }
    }

    #[test]
    fn version_2_cannot_pass_as_version_1() {
        let mut downgraded = v6();
        downgraded.layout_tag = None;
        let encoded = downgraded.encode().expect("encodes");
        assert_eq!(encoded[0], FORMAT_VERSION);
        let decoded = Envelope::decode(&encoded).expect("a well-formed version 1");
        // The version-2 commitment does not verify under version 1's label.
        assert_eq!(decoded.verify_key(&dek()), Err(CryptoError::Decryption));
        // A version-2 envelope without its tag is truncated.
        let mut cut = v6().encode().expect("encodes");
        cut.truncate(cut.len() - LAYOUT_TAG_LEN);
        assert!(Envelope::decode(&cut).is_err());
    }

    #[test]
    fn version_1_still_opens() {
        let mut v1 = v6();
        v1.layout_tag = None;
        v1.commitment = super::super::commitment(&dek(), &v1.object_id);
        let decoded = Envelope::decode(&v1.encode().expect("encodes")).expect("decodes");
        assert_eq!(decoded.version(), FORMAT_VERSION);
        decoded
            .verify_key(&dek())
            .expect("a version-1 envelope still opens");
        let other = SymmetricKey::from_slice(&[7; 32]).expect("32 bytes");
        assert_eq!(decoded.verify_key(&other), Err(CryptoError::Decryption));
    }
}
