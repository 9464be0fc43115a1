//! The `aws-chunked` decoder, signed and unsigned, fed in random pieces.
//!
//! Input: a mode byte (bit 0: chunk signatures; bit 1: a trailer is
//! expected), a byte that seeds the split points, then the body. Signed
//! bodies are checked against [`seed_signer`], so generated seeds carry
//! valid chunk signatures and the fuzzer starts past the signature check.

use coffer_auth::sigv4::{ChunkSigner, SigningParams};
use coffer_auth::{ChunkMode, ChunkedDecoder, Secret, Trailers};

use crate::auth::{ACCESS_KEY, NOW, SECRET_KEY};
use crate::mutate::Rng;

/// The seed (header) signature the signed seeds chain on.
pub const SEED_SIGNATURE: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

/// The chunk signer of a request signed at [`NOW`] with the captures'
/// credential whose header signature was [`SEED_SIGNATURE`].
pub fn seed_signer() -> ChunkSigner {
    let secret = Secret::new(SECRET_KEY);
    let params = SigningParams {
        access_key: ACCESS_KEY,
        secret: &secret,
        region: "us-east-1",
        service: "s3",
        now: NOW,
    };
    ChunkSigner::new(&params, SEED_SIGNATURE).expect("SEED_SIGNATURE is 64 hex digits")
}

fn decoder(signed: bool, expect_trailer: bool) -> ChunkedDecoder {
    let mode = if signed {
        ChunkMode::Signed(seed_signer())
    } else {
        ChunkMode::Unsigned
    };
    ChunkedDecoder::new(mode, expect_trailer)
}

/// Decodes `body` pushed in `pieces`, checking the output bound as it goes.
fn decode<'a>(
    mut decoder: ChunkedDecoder,
    pieces: impl Iterator<Item = &'a [u8]>,
) -> Result<(Vec<u8>, Trailers), coffer_auth::ChunkError> {
    let mut out = Vec::new();
    let mut pushed = 0;
    for piece in pieces {
        pushed += piece.len();
        let result = decoder.push(piece, &mut out);
        assert!(out.len() <= pushed, "decoded more bytes than were pushed");
        result?;
        assert_eq!(
            decoder.decoded_len(),
            out.len() as u64,
            "decoded_len is off"
        );
    }
    let trailers = decoder.finish()?;
    Ok((out, trailers))
}

pub fn aws_chunked(data: &[u8]) {
    let [mode, split_seed, body @ ..] = data else {
        return;
    };
    let (signed, expect_trailer) = (mode & 1 != 0, mode & 2 != 0);
    let whole = decode(decoder(signed, expect_trailer), std::iter::once(body));
    // The same body in random pieces (some empty) must decode the same way:
    // the decoder is a state machine over bytes, not over pushes.
    let mut rng = Rng::new(u64::from(*split_seed) + 1);
    let mut rest = body;
    let mut pieces = Vec::new();
    while !rest.is_empty() {
        let (piece, tail) = rest.split_at(rng.below(rest.len().min(64) + 1));
        pieces.push(piece);
        rest = tail;
    }
    let split = decode(decoder(signed, expect_trailer), pieces.into_iter());
    assert_eq!(
        whole, split,
        "the outcome depends on how the body was split"
    );
}
