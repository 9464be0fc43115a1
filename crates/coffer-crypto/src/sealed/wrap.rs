//! How an envelope's data key is wrapped (format.md §5, "wrapped key"):
//! the context that binds a wrapped data key to its object, and the byte
//! layout of wrap kind 4. Kinds 1 (service master key) and 4 (bucket key)
//! wrap the DEK with the [secret box](crate::secret_box) under this
//! context; kind 2's wrapped key is the KMS's own ciphertext, and kind 3
//! stores only a fingerprint ([`customer_fingerprint`](super::customer_fingerprint)).

use zeroize::Zeroizing;

use super::ObjectId;
use crate::{CryptoError, SymmetricKey, secret_box};

/// The secret-box context of a wrapped data key,
/// `object-dek:<hex object id>:<bucket>/<key>`: a wrapped key copied onto
/// another object, bucket or key does not open.
pub fn data_key_context(bucket: &str, key: &str, object_id: &ObjectId) -> String {
    let mut context = String::with_capacity(11 + 32 + 2 + bucket.len() + key.len());
    context.push_str("object-dek:");
    for byte in object_id.0 {
        context.push_str(&format!("{byte:02x}"));
    }
    context.push(':');
    context.push_str(bucket);
    context.push('/');
    context.push_str(key);
    context
}

/// Where a wrapped data key belongs: the names its context binds.
#[derive(Clone, Copy, Debug)]
pub struct DataKeyOwner<'a> {
    /// The object's bucket.
    pub bucket: &'a str,
    /// The object's key.
    pub key: &'a str,
    /// The envelope's object id.
    pub object_id: &'a ObjectId,
}

impl DataKeyOwner<'_> {
    fn context(&self) -> String {
        data_key_context(self.bucket, self.key, self.object_id)
    }

    /// `dek` wrapped under `wrapping_key` (a service master key version or
    /// a bucket key) for this object.
    pub fn wrap(
        &self,
        wrapping_key: &SymmetricKey,
        dek: &SymmetricKey,
    ) -> Result<Vec<u8>, CryptoError> {
        secret_box::seal(wrapping_key, &self.context(), dek.expose())
    }

    /// The data key inside `wrapped`; any mismatch (another key, object or
    /// name, edited bytes) is [`CryptoError::Decryption`].
    pub fn unwrap(
        &self,
        wrapping_key: &SymmetricKey,
        wrapped: &[u8],
    ) -> Result<SymmetricKey, CryptoError> {
        let opened: Zeroizing<Vec<u8>> = secret_box::open(wrapping_key, &self.context(), wrapped)?;
        SymmetricKey::from_slice(&opened).map_err(|_| CryptoError::Decryption)
    }
}

/// The wrapped-key field of wrap kind 4:
/// `bucket-key blob length (u16) ‖ bucket-key blob ‖ wrapped DEK`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketKeyWrap<'a> {
    /// The KMS ciphertext of the bucket key (opaque here).
    pub bucket_key_blob: &'a [u8],
    /// The DEK wrapped by the bucket key ([`DataKeyOwner::wrap`]).
    pub wrapped_dek: &'a [u8],
}

impl<'a> BucketKeyWrap<'a> {
    /// The field's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, CryptoError> {
        let blob_len = u16::try_from(self.bucket_key_blob.len())
            .map_err(|_| CryptoError::Envelope("bucket key blob too long"))?;
        let mut out = Vec::with_capacity(2 + self.bucket_key_blob.len() + self.wrapped_dek.len());
        out.extend_from_slice(&blob_len.to_be_bytes());
        out.extend_from_slice(self.bucket_key_blob);
        out.extend_from_slice(self.wrapped_dek);
        Ok(out)
    }

    /// Splits a kind-4 wrapped-key field; a length that overruns it is
    /// [`CryptoError::Envelope`].
    pub fn decode(field: &'a [u8]) -> Result<Self, CryptoError> {
        let (len, rest) = field
            .split_first_chunk::<2>()
            .ok_or(CryptoError::Envelope("truncated bucket key wrap"))?;
        let (bucket_key_blob, wrapped_dek) = rest
            .split_at_checked(usize::from(u16::from_be_bytes(*len)))
            .ok_or(CryptoError::Envelope("truncated bucket key wrap"))?;
        Ok(BucketKeyWrap {
            bucket_key_blob,
            wrapped_dek,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OBJECT_ID: ObjectId = ObjectId([
        0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae,
        0xaf,
    ]);

    fn key(byte: u8) -> SymmetricKey {
        SymmetricKey::from_slice(&[byte; 32]).expect("32 bytes")
    }

    fn owner<'a>(bucket: &'a str, key: &'a str) -> DataKeyOwner<'a> {
        DataKeyOwner {
            bucket,
            key,
            object_id: &OBJECT_ID,
        }
    }

    /// format.md §7, V7: the context string, and a wrapped DEK made by an
    /// earlier build, which must keep opening.
    #[test]
    fn fixed_vector_v7() {
        assert_eq!(
            data_key_context("photos", "2026/holiday.jpg", &OBJECT_ID),
            "object-dek:a0a1a2a3a4a5a6a7a8a9aaabacadaeaf:photos/2026/holiday.jpg"
        );
        let wrapped = unhex(V7_WRAPPED);
        let dek = owner("photos", "2026/holiday.jpg")
            .unwrap(&key(0x11), &wrapped)
            .expect("the fixed vector opens");
        assert_eq!(dek.expose(), &[0x22; 32]);
        for (bucket, name, wrapping) in [
            ("photos", "2026/holiday.jpg", key(0x12)),
            ("photos", "2026/holiday.jpeg", key(0x11)),
            ("photo", "s/2026/holiday.jpg", key(0x11)),
        ] {
            assert_eq!(
                owner(bucket, name).unwrap(&wrapping, &wrapped).err(),
                Some(CryptoError::Decryption),
                "opened under {bucket}/{name}"
            );
        }
    }

    /// `01 ‖ nonce 000102…0b ‖ AES-256-GCM` under key `11…11`, computed with
    /// Python's `cryptography` (an independent AES-GCM) from format.md's rules.
    const V7_WRAPPED: &str = "01000102030405060708090a0b31c19431598117d6369af1bde68dd504eb83224a3757700d8bc29d5ddf62410ca8a24f8ea764276cd4f6165f720c6db6";

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn wrap_round_trip() {
        let wrapped = owner("b", "k").wrap(&key(1), &key(2)).expect("wrap");
        let dek = owner("b", "k").unwrap(&key(1), &wrapped).expect("unwrap");
        assert_eq!(dek.expose(), key(2).expose());
    }

    #[test]
    fn bucket_key_wrap_layout() {
        let field = BucketKeyWrap {
            bucket_key_blob: b"blob",
            wrapped_dek: b"dek",
        }
        .encode()
        .expect("encode");
        assert_eq!(field, b"\x00\x04blobdek");
        assert_eq!(
            BucketKeyWrap::decode(&field),
            Ok(BucketKeyWrap {
                bucket_key_blob: b"blob",
                wrapped_dek: b"dek",
            })
        );
        for cut in [&field[..0], &field[..1], &field[..5]] {
            assert!(BucketKeyWrap::decode(cut).is_err(), "{cut:?} decoded");
        }
    }
}
