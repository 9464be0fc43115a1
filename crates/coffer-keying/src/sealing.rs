//! The keys of one object in use: a [`Sealing`] for bytes being written,
//! an [`Opening`] for bytes being read. Both hold the data key, which never
//! leaves them except into a part's cipher.

use coffer_crypto::sealed::{self, Envelope, KeyReference, PartLayout, PartOpener, PartSealer};
use coffer_crypto::{Algorithm, ObjectId, SymmetricKey};

use crate::error::{KeyingError, KeyingResult};

/// The part number a single PUT (or copy) is sealed as (format.md: part 0).
pub const SINGLE_PART: u32 = 0;

/// What protects an object, for the headers that describe it.
#[derive(Clone, Copy, Debug)]
pub struct Applied<'a> {
    /// The data cipher.
    pub algorithm: Algorithm,
    /// How the data key is wrapped, and under which key and version.
    pub key: &'a KeyReference,
    /// SSE-C: the MD5 of the customer's key, when the request brought it.
    pub customer_key_md5: Option<&'a str>,
}

/// Everything needed to seal the parts of one new object.
pub struct Sealing {
    pub(crate) algorithm: Algorithm,
    pub(crate) dek: SymmetricKey,
    pub(crate) object_id: ObjectId,
    pub(crate) key: KeyReference,
    pub(crate) customer_md5: Option<String>,
    /// Attributes to store with the object (the client's KMS context).
    pub(crate) stored: Vec<(String, String)>,
}

impl Sealing {
    /// Attributes to keep with the object or upload so that its data key
    /// can be opened again (SSE-KMS: the client's encryption context).
    pub fn stored_attributes(&self) -> &[(String, String)] {
        &self.stored
    }

    /// The sealer of part `part_number` ([`SINGLE_PART`] for a single PUT).
    pub fn sealer(&self, part_number: u32) -> PartSealer {
        PartSealer::new(self.algorithm, &self.dek, &self.object_id, part_number)
    }

    /// What protects the object.
    pub fn applied(&self) -> Applied<'_> {
        Applied {
            algorithm: self.algorithm,
            key: &self.key,
            customer_key_md5: self.customer_md5.as_deref(),
        }
    }

    /// The envelope recording this sealing and the parts' plaintext sizes:
    /// version 2 (layout tag) when `parts` is final, version 1 for an
    /// upload, whose parts are only known at completion.
    fn envelope(&self, parts: Vec<PartLayout>, is_final: bool) -> KeyingResult<Vec<u8>> {
        let mut envelope = Envelope {
            algorithm: self.algorithm,
            object_id: self.object_id,
            commitment: sealed::commitment(&self.dek, &self.object_id),
            key: self.key.clone(),
            parts,
            layout_tag: None,
        };
        if is_final {
            envelope
                .authenticate(&self.dek)
                .map_err(|e| KeyingError::internal("authenticating an envelope", e))?;
        }
        envelope
            .encode()
            .map_err(|e| KeyingError::internal("encoding an envelope", e))
    }

    /// The envelope of a single-part object of `plain_size` bytes.
    pub fn single_part_envelope(&self, plain_size: u64) -> KeyingResult<Vec<u8>> {
        self.envelope(
            vec![PartLayout {
                part_number: SINGLE_PART,
                plain_size,
            }],
            true,
        )
    }

    /// The envelope of an object whose parts, `(part number, plaintext
    /// size)` in order, are all written (version 2, its layout tagged):
    /// what sealing a stored plaintext object in place ends with.
    pub fn final_envelope(&self, parts: &[(u32, u64)]) -> KeyingResult<Vec<u8>> {
        let layout = parts
            .iter()
            .map(|&(part_number, plain_size)| PartLayout {
                part_number,
                plain_size,
            })
            .collect();
        self.envelope(layout, true)
    }

    /// The envelope of a multipart upload before its parts are known: one
    /// placeholder part, replaced by the real layout at completion.
    pub fn upload_envelope(&self) -> KeyingResult<Vec<u8>> {
        self.envelope(
            vec![PartLayout {
                part_number: 1,
                plain_size: 0,
            }],
            false,
        )
    }
}

/// An opened envelope: the object's layout and its data key, checked
/// against the envelope's key commitment (and layout tag) already.
pub struct Opening {
    pub(crate) envelope: Envelope,
    pub(crate) dek: SymmetricKey,
    pub(crate) customer_md5: Option<String>,
    pub(crate) stored: Vec<(String, String)>,
}

impl Opening {
    /// The decoded envelope: the object's algorithm, key reference and part
    /// layout (what [`Envelope::plan_range`] plans reads over).
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The opener of part `part_number`.
    pub fn opener(&self, part_number: u32) -> PartOpener {
        PartOpener::new(
            self.envelope.algorithm,
            &self.dek,
            &self.envelope.object_id,
            part_number,
        )
    }

    /// What protects the object.
    pub fn applied(&self) -> Applied<'_> {
        Applied {
            algorithm: self.envelope.algorithm,
            key: &self.envelope.key,
            customer_key_md5: self.customer_md5.as_deref(),
        }
    }

    /// Continues sealing new parts of the same object (UploadPart).
    pub fn into_sealing(self) -> Sealing {
        Sealing {
            algorithm: self.envelope.algorithm,
            dek: self.dek,
            object_id: self.envelope.object_id,
            key: self.envelope.key,
            customer_md5: self.customer_md5,
            stored: self.stored,
        }
    }
}
