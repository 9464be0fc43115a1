//! Stored bytes: the envelope decoder and the sealed-chunk opener.
//!
//! An envelope that decodes must re-encode to the same bytes and plan every
//! valid range; a version-2 envelope that passes the layout check under the
//! fixed DEK must be one the encoder wrote. The opener, fed any bytes under a fixed key, must fail, or
//! return exactly the plaintext that the sealer turns back into the same
//! sealed bytes: nothing unauthenticated ever comes out.

use coffer_crypto::sealed::{
    CHUNK_SIZE, Envelope, SEALED_CHUNK_SIZE, TAG_LEN, plan_range, sealed_size,
};
use coffer_crypto::{Algorithm, ObjectId, PartOpener, PartSealer, SymmetricKey};

/// The fixed key, object and part the sealed-chunk seeds were sealed with.
pub const DEK: [u8; 32] = [7; 32];
pub const OBJECT_ID: ObjectId = ObjectId([9; 16]);
pub const PART_NUMBER: u32 = 1;

/// Decodes; on success re-encodes and plans ranges across the object.
pub fn envelope(data: &[u8]) {
    let Ok(envelope) = Envelope::decode(data) else {
        return;
    };
    let encoded = envelope.encode().expect("a decoded envelope encodes");
    assert_eq!(encoded, data, "encode(decode(x)) != x");
    // A version-2 envelope that passes the key and layout check under the
    // seeds' DEK must be exactly what authenticating its fields gives.
    if envelope.layout_tag.is_some() && envelope.verify_key(&key()).is_ok() {
        let mut again = envelope.clone();
        again
            .authenticate(&key())
            .expect("a decoded envelope authenticates");
        assert_eq!(
            again, envelope,
            "a layout tag passed that authenticate() would not write"
        );
    }
    let total = envelope.plain_size();
    // `0..0` is the one range of an empty object (it still authenticates it).
    let ranges = [
        0..total,
        0..1,
        total.saturating_sub(1)..total,
        total / 3..total - total / 3,
    ];
    for range in ranges
        .into_iter()
        .filter(|r| r.end <= total && (r.start < r.end || total == 0))
    {
        let pieces = envelope
            .plan_range(range.clone())
            .unwrap_or_else(|_| panic!("range {range:?} of {total} bytes not planned"));
        let planned: u64 = pieces.iter().map(|p| p.plan.len).sum();
        assert_eq!(planned, range.end - range.start, "planned length");
        for piece in &pieces {
            let part = envelope
                .parts
                .iter()
                .find(|p| p.part_number == piece.part_number)
                .expect("a piece names a part of the envelope");
            assert!(
                piece.plan.sealed.start <= piece.plan.sealed.end
                    && piece.plan.sealed.end <= sealed_size(part.plain_size),
                "sealed range {:?} outside part {}",
                piece.plan.sealed,
                part.part_number
            );
        }
    }
}

fn key() -> SymmetricKey {
    SymmetricKey::from_slice(&DEK).expect("DEK is 32 bytes")
}

fn opener(algorithm: Algorithm) -> PartOpener {
    PartOpener::new(algorithm, &key(), &OBJECT_ID, PART_NUMBER)
}

/// The sealed form of chunk `index` holding `plaintext`, from the sealer:
/// earlier chunks are zeros, and a non-final chunk gets one more byte after it.
pub fn seal_chunk(algorithm: Algorithm, index: usize, last: bool, plaintext: &[u8]) -> Vec<u8> {
    let mut sealer = PartSealer::new(algorithm, &key(), &OBJECT_ID, PART_NUMBER).threads(1);
    let mut out = Vec::new();
    let zeros = vec![0; index * CHUNK_SIZE];
    let after: &[u8] = if last { &[] } else { &[0] };
    let pushes = [&zeros[..], plaintext, after];
    for piece in pushes {
        sealer.push(piece, &mut out).expect("a small part seals");
    }
    sealer.finish(&mut out);
    let start = index * SEALED_CHUNK_SIZE;
    out[start..(start + plaintext.len() + TAG_LEN).min(out.len())].to_vec()
}

/// Input: a mode byte (bit 0: SM4-GCM else AES-256-GCM; bit 1: final chunk;
/// bits 2–3: chunk index; bit 4: range mode), then in chunk mode the sealed
/// chunk, in range mode three 24-bit numbers (part size, range start, range
/// length) and the sealed bytes of the planned chunks.
pub fn sealed_chunk(data: &[u8]) {
    let [mode, rest @ ..] = data else {
        return;
    };
    let algorithm = if mode & 1 != 0 {
        Algorithm::Sm4Gcm
    } else {
        Algorithm::Aes256Gcm
    };
    if mode & 0x10 != 0 {
        open_range(algorithm, rest);
        return;
    }
    let (last, index) = (mode & 2 != 0, usize::from((mode >> 2) & 3));
    let mut out = b"prefix".to_vec();
    match opener(algorithm).open_chunk(index as u64, last, rest, &mut out) {
        Err(_) => assert_eq!(out, b"prefix", "a failed open changed the output"),
        Ok(()) => {
            let plaintext = &out[6..];
            assert_eq!(
                seal_chunk(algorithm, index, last, plaintext),
                rest,
                "opened bytes the sealer did not produce"
            );
        }
    }
}

fn open_range(algorithm: Algorithm, data: &[u8]) {
    let Some((numbers, sealed)) = data.split_at_checked(9) else {
        return;
    };
    let u24 = |b: &[u8]| u64::from(b[0]) << 16 | u64::from(b[1]) << 8 | u64::from(b[2]);
    let size = u24(&numbers[0..3]) % (4 * CHUNK_SIZE as u64 + 1);
    let start = u24(&numbers[3..6]);
    let range = start..start.saturating_add(u24(&numbers[6..9]));
    let Ok(plan) = plan_range(size, range) else {
        return;
    };
    let opener = opener(algorithm);
    let mut out = b"prefix".to_vec();
    match opener.open_range(&plan, sealed, &mut out) {
        Err(_) => assert_eq!(out, b"prefix", "a failed open changed the output"),
        Ok(()) => {
            assert_eq!(out.len() as u64 - 6, plan.len, "opened length");
            // Chunk by chunk, the same bytes must open to the same plaintext.
            let mut whole = Vec::new();
            for (i, chunk) in sealed.chunks(SEALED_CHUNK_SIZE).enumerate() {
                let index = plan.first_chunk + i as u64;
                opener
                    .open_chunk(index, plan.is_final(index), chunk, &mut whole)
                    .expect("a chunk of an opened range opens");
            }
            let skip = plan.skip as usize;
            assert_eq!(
                &out[6..],
                &whole[skip..skip + plan.len as usize],
                "range plaintext"
            );
        }
    }
}
