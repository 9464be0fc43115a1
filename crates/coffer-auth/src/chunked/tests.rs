use proptest::prelude::*;

use super::*;
use crate::checksum::ChecksumAlgorithm;
use crate::secret::Secret;
use crate::signing::{scope, signing_key};

/// The signer of AWS's "Transferring Payload in Multiple Chunks" example.
fn aws_example_signer() -> ChunkSigner {
    let secret = Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    let seed = decode_hex32(b"4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
        .expect("fixed hex");
    ChunkSigner::from_parts(
        signing_key(&secret, "20130524", "us-east-1", "s3"),
        "20130524T000000Z".into(),
        scope("20130524", "us-east-1", "s3"),
        seed,
    )
}

/// Encodes `chunks` (plus the final empty chunk and `trailers`).
fn encode(
    chunks: &[&[u8]],
    mut signer: Option<&mut ChunkSigner>,
    trailers: &[(&str, &str)],
) -> Vec<u8> {
    let mut body = Vec::new();
    for data in chunks.iter().copied().chain([&b""[..]]) {
        body.extend_from_slice(format!("{:x}", data.len()).as_bytes());
        if let Some(s) = signer.as_deref_mut() {
            body.extend_from_slice(format!(";chunk-signature={}", s.sign_chunk(data)).as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        if !data.is_empty() {
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
    }
    for (name, value) in trailers {
        body.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
    }
    if let Some(s) = signer.filter(|_| !trailers.is_empty()) {
        body.extend_from_slice(
            format!("{TRAILER_SIGNATURE}:{}\r\n", s.sign_trailer(trailers)).as_bytes(),
        );
    }
    body.extend_from_slice(b"\r\n");
    body
}

/// Decodes `body` pushed in the given pieces.
fn decode_pieces(
    mode: ChunkMode,
    trailer: bool,
    pieces: &[&[u8]],
) -> Result<(Vec<u8>, Trailers), ChunkError> {
    let mut decoder = ChunkedDecoder::new(mode, trailer);
    let mut out = Vec::new();
    for piece in pieces {
        decoder.push(piece, &mut out)?;
    }
    assert_eq!(decoder.decoded_len(), out.len() as u64);
    decoder.finish().map(|t| (out, t))
}

fn decode(mode: ChunkMode, trailer: bool, body: &[u8]) -> Result<(Vec<u8>, Trailers), ChunkError> {
    decode_pieces(mode, trailer, &[body])
}

#[test]
fn boto3_capture_70000_z() {
    let mut body = b"11170\r\n".to_vec();
    body.extend_from_slice(&[b'z'; 70_000]);
    body.extend_from_slice(b"\r\n0\r\nx-amz-checksum-crc32:VZtM0w==\r\n\r\n");
    assert_eq!(body.len(), 70_045, "raw_body of the capture");
    for piece in [1, 7, 1000, 65_536, body.len()] {
        let pieces: Vec<&[u8]> = body.chunks(piece).collect();
        let (data, trailers) =
            decode_pieces(ChunkMode::Unsigned, true, &pieces).expect("valid body");
        assert_eq!(data.len(), 70_000);
        assert!(data.iter().all(|&b| b == b'z'));
        assert_eq!(trailers.get("x-amz-checksum-crc32"), Some("VZtM0w=="));
        assert_eq!(ChecksumAlgorithm::Crc32.checksum(&data), "VZtM0w==");
    }
}

#[test]
fn boto3_small_captures_at_every_split() {
    let cases: [(&[u8], &[u8], &str); 2] = [
        (
            b"4\r\nssec\r\n0\r\nx-amz-checksum-crc32:wkipZw==\r\n\r\n",
            b"ssec",
            "wkipZw==",
        ),
        (
            b"3\r\nkms\r\n0\r\nx-amz-checksum-crc32:opzIvw==\r\n\r\n",
            b"kms",
            "opzIvw==",
        ),
    ];
    for (body, data, crc) in cases {
        for i in 0..=body.len() {
            for j in i..=body.len() {
                let pieces = [&body[..i], &body[i..j], &body[j..]];
                let (out, trailers) =
                    decode_pieces(ChunkMode::Unsigned, true, &pieces).expect("valid body");
                assert_eq!(out, data);
                assert_eq!(
                    trailers.0,
                    vec![("x-amz-checksum-crc32".to_owned(), crc.to_owned())]
                );
            }
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert!(decode_pieces(ChunkMode::Unsigned, true, &bytes).is_ok());
    }
}

#[test]
fn aws_published_signed_chunk_example() {
    // 66560 bytes of 'a' in chunks of 65536 and 1024, then the final chunk.
    let data = vec![b'a'; 66_560];
    let mut signer = aws_example_signer();
    assert_eq!(
        signer.sign_chunk(&data[..65_536]),
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
    );
    assert_eq!(
        signer.sign_chunk(&data[65_536..]),
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
    );
    assert_eq!(
        signer.sign_chunk(b""),
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
    );

    let body = encode(
        &[&data[..65_536], &data[65_536..]],
        Some(&mut aws_example_signer()),
        &[],
    );
    // The example's Content-Length is 66824.
    assert_eq!(body.len(), 66_824);
    for piece in [1, 100, 8192, body.len()] {
        let pieces: Vec<&[u8]> = body.chunks(piece).collect();
        let (out, trailers) =
            decode_pieces(ChunkMode::Signed(aws_example_signer()), false, &pieces)
                .expect("valid body");
        assert_eq!(out, data);
        assert!(trailers.is_empty());
    }
}

#[test]
fn signed_chunks_detect_any_change() {
    let data = b"hello world, this is signed";
    let body = encode(
        &[&data[..10], &data[10..]],
        Some(&mut aws_example_signer()),
        &[],
    );
    assert!(decode(ChunkMode::Signed(aws_example_signer()), false, &body).is_ok());
    for i in 0..body.len() {
        let mut tampered = body.clone();
        tampered[i] ^= 0x01;
        let result = decode(ChunkMode::Signed(aws_example_signer()), false, &tampered);
        assert!(result.is_err(), "byte {i} changed yet accepted");
    }
    // Reordered chunks fail too.
    let swapped = encode(
        &[&data[10..], &data[..10]],
        Some(&mut aws_example_signer()),
        &[],
    );
    let mut signer = aws_example_signer();
    signer.sign_chunk(&data[..10]);
    assert_eq!(
        decode(ChunkMode::Signed(signer), false, &swapped).err(),
        Some(ChunkError::SignatureMismatch)
    );
}

#[test]
fn signed_trailer_round_trip_and_tampering() {
    let data = b"trailer test data";
    let crc = ChecksumAlgorithm::Crc32c.checksum(data);
    let trailers = [("x-amz-checksum-crc32c", crc.as_str())];
    let body = encode(&[data], Some(&mut aws_example_signer()), &trailers);
    let (out, got) = decode(ChunkMode::Signed(aws_example_signer()), true, &body).expect("valid");
    assert_eq!(out, data);
    assert_eq!(got.get("X-Amz-Checksum-Crc32c"), Some(crc.as_str()));

    let text = String::from_utf8(body.clone()).expect("ascii body");
    let wrong_value = text.replace(&crc, "AAAAAA==");
    assert_eq!(
        decode(
            ChunkMode::Signed(aws_example_signer()),
            true,
            wrong_value.as_bytes()
        )
        .err(),
        Some(ChunkError::SignatureMismatch)
    );
    let sig_start = text.find(TRAILER_SIGNATURE).expect("signature line");
    let without_sig = format!("{}\r\n", &text[..sig_start]);
    assert!(
        decode(
            ChunkMode::Signed(aws_example_signer()),
            true,
            without_sig.as_bytes()
        )
        .is_err()
    );
    // Unsigned decoders refuse a trailer signature line.
    assert!(decode(ChunkMode::Unsigned, true, &body).is_err());
}

#[test]
fn unsigned_without_trailer_and_extensions() {
    let (out, t) =
        decode(ChunkMode::Unsigned, false, b"3;foo=bar\r\nabc\r\n0\r\n\r\n").expect("valid");
    assert_eq!(out, b"abc");
    assert!(t.is_empty());
    let (out, _) = decode(ChunkMode::Unsigned, true, b"0\r\n\r\n").expect("empty body");
    assert!(out.is_empty());
    let (out, _) =
        decode(ChunkMode::Unsigned, false, b"A\r\n0123456789\r\n0\r\n\r\n").expect("upper hex");
    assert_eq!(out, b"0123456789");
}

#[test]
fn malformed_framings_are_errors() {
    let long_ext = format!("4;{}\r\nabcd\r\n0\r\n\r\n", "x".repeat(MAX_LINE));
    let many = format!(
        "0\r\n{}\r\n",
        (0..=MAX_TRAILERS)
            .map(|i| format!("x-t{i}:v\r\n"))
            .collect::<String>()
    );
    let cases: Vec<(&[u8], bool)> = vec![
        (b"", true),
        (b"4\r\nabc", true),
        (b"4\r\nabcd", true),
        (b"4\r\nabcd\r\n", true),
        (b"4\r\nabcd\r\n0\r\n", true),
        (b"4\r\nabcd\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n", true),
        (b"zz\r\nabcd\r\n0\r\n\r\n", true),
        (b"\r\nabcd\r\n0\r\n\r\n", true),
        (b"+4\r\nabcd\r\n0\r\n\r\n", true),
        (b"-4\r\nabcd\r\n0\r\n\r\n", true),
        (b" 4\r\nabcd\r\n0\r\n\r\n", true),
        (b"0x4\r\nabcd\r\n0\r\n\r\n", true),
        (b"4\nabcd\r\n0\r\n\r\n", true),
        (b"4\r\nabcde\r\n0\r\n\r\n", true),
        (b"4\r\nabcd\n0\r\n\r\n", true),
        (b"4\r\nabcd\r\r\n0\r\n\r\n", true),
        (b"4\r\nabcd\r\n\r\n", true),
        (b"4\r\nabcd\r\n0\r\n\r\nX", true),
        (b"4\r\nabcd\r\n0\r\n\r\n\r\n", true),
        (b"4\r\nabcd\r\n0\r\nno-colon\r\n\r\n", true),
        (b"4\r\nabcd\r\n0\r\n:empty-name\r\n\r\n", true),
        (b"4\r\nabcd\r\n0\r\nbad name:v\r\n\r\n", true),
        (b"4\r\nabcd\r\n0\r\na:1\r\na:2\r\n\r\n", true),
        (b"4\r\nabcd\r\n0\r\na:\xff\r\n\r\n", true),
        (b"4\r\nabcd\r\n0\r\na:1\r\n\r\n", false),
        (b"4\r\nabcd\r\n0\r\na:1\rb\r\n\r\n", true),
        (b"ffffffffffffffff\r\n", true),
        (b"10000000000000000\r\n", true),
        (b"4000001\r\n", true),
        (long_ext.as_bytes(), true),
        (many.as_bytes(), true),
    ];
    for (body, trailer) in cases {
        let shown = String::from_utf8_lossy(body);
        assert!(
            decode(ChunkMode::Unsigned, trailer, body).is_err(),
            "accepted {shown:?}"
        );
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert!(
            decode_pieces(ChunkMode::Unsigned, trailer, &bytes).is_err(),
            "accepted bytewise {shown:?}"
        );
    }
    assert_eq!(
        decode(ChunkMode::Unsigned, true, b"4\r\nab").err(),
        Some(ChunkError::Incomplete)
    );
    assert_eq!(
        decode(ChunkMode::Unsigned, true, b"4000001\r\n").err(),
        Some(ChunkError::ChunkTooLarge)
    );
    assert_eq!(
        decode(ChunkMode::Unsigned, true, long_ext.as_bytes()).err(),
        Some(ChunkError::LineTooLong)
    );
}

#[test]
fn signed_framing_errors() {
    let sig = "0".repeat(64);
    let cases = [
        "4\r\nabcd\r\n0\r\n\r\n".to_owned(),
        format!("4;chunk-signature={}\r\nabcd\r\n", &sig[1..]),
        format!("4;chunk-signature={sig}x\r\nabcd\r\n"),
        format!("4;chunk-sig={sig}\r\nabcd\r\n"),
        format!("4;chunk-signature={sig}\r\nabcd\r\n"),
    ];
    for body in cases {
        let result = decode(
            ChunkMode::Signed(aws_example_signer()),
            false,
            body.as_bytes(),
        );
        assert!(result.is_err(), "accepted {body:?}");
    }
}

#[test]
fn errors_are_sticky() {
    let mut decoder = ChunkedDecoder::new(ChunkMode::Unsigned, false);
    let mut out = Vec::new();
    assert!(decoder.push(b"zz\r\n", &mut out).is_err());
    assert!(decoder.push(b"0\r\n\r\n", &mut out).is_err());
    assert!(decoder.finish().is_err());
}

#[test]
fn error_codes() {
    assert_eq!(
        ChunkError::SignatureMismatch.code(),
        "SignatureDoesNotMatch"
    );
    assert_eq!(ChunkError::SignatureMismatch.status(), 403);
    assert_eq!(ChunkError::Incomplete.code(), "IncompleteBody");
    assert_eq!(ChunkError::Malformed("x").status(), 400);
}

fn split_at_points<'a>(body: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (body.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([body.len()]) {
        pieces.push(&body[start..cut]);
        start = cut;
    }
    pieces
}

proptest! {
    #[test]
    fn round_trip_any_chunking_and_split(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        chunk in 1usize..200,
        points in proptest::collection::vec(any::<usize>(), 0..8),
        signed in any::<bool>(),
        trailer in any::<bool>(),
    ) {
        let chunks: Vec<&[u8]> = data.chunks(chunk).collect();
        let crc = ChecksumAlgorithm::Crc32.checksum(&data);
        let trailers: Vec<(&str, &str)> = if trailer { vec![("x-amz-checksum-crc32", crc.as_str())] } else { vec![] };
        let mut signer = aws_example_signer();
        let body = encode(&chunks, signed.then_some(&mut signer), &trailers);
        let mode = if signed { ChunkMode::Signed(aws_example_signer()) } else { ChunkMode::Unsigned };
        let pieces = split_at_points(&body, &points);
        let (out, got) = decode_pieces(mode, trailer, &pieces).expect("round trip");
        prop_assert_eq!(&out, &data);
        prop_assert_eq!(got.get("x-amz-checksum-crc32"), trailer.then_some(crc.as_str()));
    }

    #[test]
    fn arbitrary_input_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        points in proptest::collection::vec(any::<usize>(), 0..6),
        signed in any::<bool>(),
        trailer in any::<bool>(),
    ) {
        let mode = if signed { ChunkMode::Signed(aws_example_signer()) } else { ChunkMode::Unsigned };
        let _ = decode_pieces(mode, trailer, &split_at_points(&body, &points));
    }

    #[test]
    fn near_valid_input_never_panics(
        data in proptest::collection::vec(any::<u8>(), 0..100),
        index in any::<usize>(),
        byte in any::<u8>(),
    ) {
        let mut body = encode(&[&data], None, &[("x-amz-checksum-crc32", "AAAAAA==")]);
        let i = index % body.len();
        body[i] = byte;
        let _ = decode(ChunkMode::Unsigned, true, &body);
    }
}
