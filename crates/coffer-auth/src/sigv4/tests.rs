use http::{HeaderMap, HeaderName, HeaderValue};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::chunked::{ChunkMode, ChunkedDecoder};
use crate::mac::sha256_hex;

const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const S3_DOC_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const S3_DOC_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const S3_DOC_TIME: OffsetDateTime = datetime!(2013-05-24 00:00:00 UTC);

pub(super) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("test header name"),
            HeaderValue::from_str(value).expect("test header value"),
        );
    }
    map
}

fn s3_doc_lookup(access_key: &str) -> Option<Secret> {
    (access_key == S3_DOC_KEY).then(|| Secret::new(S3_DOC_SECRET))
}

/// Signs with the aws-sig-v4-test-suite parameters and returns the hex signature.
fn suite_signature(
    method: &str,
    path: &str,
    query: &str,
    pairs: &[(&str, &str)],
    payload: &[u8],
) -> String {
    let map = headers(pairs);
    let mut names: Vec<&str> = map.keys().map(HeaderName::as_str).collect();
    names.sort_unstable();
    names.dedup();
    let signed = names.join(";");
    let canonical = canonical_request(
        method,
        path,
        &crate::canonical::canonical_query_string(query, None),
        &map,
        &signed,
        &sha256_hex(payload),
    )
    .expect("all signed headers present");
    let scope = scope("20150830", "us-east-1", "service");
    let key = signing_key(
        &Secret::new(SUITE_SECRET),
        "20150830",
        "us-east-1",
        "service",
    );
    hex::encode(hmac_sha256(
        &key.0,
        string_to_sign("20150830T123600Z", &scope, &canonical).as_bytes(),
    ))
}

const SUITE_HEADERS: [(&str, &str); 2] = [
    ("host", "example.amazonaws.com"),
    ("x-amz-date", "20150830T123600Z"),
];

#[test]
fn aws_test_suite_get_vanilla() {
    assert_eq!(
        suite_signature("GET", "/", "", &SUITE_HEADERS, b""),
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
}

#[test]
fn aws_test_suite_get_vanilla_query_order_key_case() {
    assert_eq!(
        suite_signature(
            "GET",
            "/",
            "Param2=value2&Param1=value1",
            &SUITE_HEADERS,
            b""
        ),
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
    );
}

#[test]
fn aws_test_suite_post_vanilla() {
    assert_eq!(
        suite_signature("POST", "/", "", &SUITE_HEADERS, b""),
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
    );
}

#[test]
fn aws_test_suite_post_x_www_form_urlencoded() {
    let pairs = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("host", "example.amazonaws.com"),
        ("x-amz-date", "20150830T123600Z"),
    ];
    assert_eq!(
        suite_signature("POST", "/", "", &pairs, b"Param1=value1"),
        "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
    );
}

/// S3 documentation, "Examples: Signature Calculations in AWS Signature
/// Version 4" — GET Object with a Range header.
#[test]
fn s3_doc_get_object_range() {
    let map = headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("range", "bytes=0-9"),
        ("x-amz-content-sha256", crate::mac::EMPTY_SHA256_HEX),
        ("x-amz-date", "20130524T000000Z"),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        ),
    ]);
    let req = SignedRequest {
        method: "GET",
        raw_path: "/test.txt",
        raw_query: "",
        headers: &map,
    };
    let verified = verify(&req, S3_DOC_TIME, "s3", &s3_doc_lookup).expect("doc example verifies");
    assert_eq!(verified.access_key, S3_DOC_KEY);
    assert_eq!(verified.region, "us-east-1");
    assert!(!verified.presigned);
    assert!(matches!(verified.payload, Payload::Sha256(_)));
    assert!(
        verified
            .payload
            .check_sha256(&crate::mac::sha256(b""))
            .is_ok()
    );
    assert_eq!(
        verified.payload.check_sha256(&crate::mac::sha256(b"x")),
        Err(AuthError::ContentSha256Mismatch)
    );
}

/// S3 documentation — presigned GET of /test.txt, valid for 86400 seconds.
#[test]
fn s3_doc_presigned_get() {
    let map = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
    let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
    let req = SignedRequest {
        method: "GET",
        raw_path: "/test.txt",
        raw_query: query,
        headers: &map,
    };
    let verified =
        verify(&req, S3_DOC_TIME + Duration::hours(1), "s3", &s3_doc_lookup).expect("verifies");
    assert!(verified.presigned);
    assert!(matches!(verified.payload, Payload::Unsigned));
    // Our presign produces the same URL.
    let params = SigningParams {
        access_key: S3_DOC_KEY,
        secret: &Secret::new(S3_DOC_SECRET),
        region: "us-east-1",
        service: "s3",
        now: S3_DOC_TIME,
    };
    assert_eq!(
        presign("GET", "/test.txt", "", &map, 86_400, &params).expect("presign"),
        query
    );
    // Expiry: valid at the last second, expired one second later.
    let last = S3_DOC_TIME + Duration::seconds(86_400);
    assert!(verify(&req, last, "s3", &s3_doc_lookup).is_ok());
    assert_eq!(
        verify(&req, last + Duration::seconds(1), "s3", &s3_doc_lookup).err(),
        Some(AuthError::Expired)
    );
    assert_eq!(
        verify(
            &req,
            S3_DOC_TIME - Duration::minutes(16),
            "s3",
            &s3_doc_lookup
        )
        .err(),
        Some(AuthError::NotYetValid)
    );
}

/// S3 documentation, "Transferring Payload in Multiple Chunks": the seed
/// request, then the whole signed body through the decoder.
#[test]
fn s3_doc_streaming_seed_and_body() {
    let map = headers(&[
        ("host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
        ),
        ("x-amz-content-sha256", STREAMING_SIGNED),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("content-length", "66824"),
    ]);
    let req = SignedRequest {
        method: "PUT",
        raw_path: "/examplebucket/chunkObject.txt",
        raw_query: "",
        headers: &map,
    };
    let verified = verify(&req, S3_DOC_TIME, "s3", &s3_doc_lookup).expect("seed verifies");
    let Payload::StreamingSigned(signer) = verified.payload else {
        panic!("expected signed streaming")
    };

    let data = vec![b'a'; 66_560];
    let mut body = Vec::new();
    for (chunk, sig) in [
        (
            &data[..65_536],
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        ),
        (
            &data[65_536..],
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        ),
        (
            &data[..0],
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ),
    ] {
        body.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        if !chunk.is_empty() {
            body.extend_from_slice(b"\r\n");
        }
    }
    body.extend_from_slice(b"\r\n");
    assert_eq!(body.len(), 66_824);
    let mut decoder = ChunkedDecoder::new(ChunkMode::Signed(signer), false);
    let mut out = Vec::new();
    decoder.push(&body, &mut out).expect("chunks verify");
    decoder.finish().expect("complete");
    assert_eq!(out, data);
}

fn test_params(secret: &Secret) -> SigningParams<'_> {
    SigningParams {
        access_key: "AKIDEXAMPLE",
        secret,
        region: "eu-west-3",
        service: "s3",
        now: datetime!(2026-11-29 11:25:34 UTC),
    }
}

fn test_lookup(access_key: &str) -> Option<Secret> {
    (access_key == "AKIDEXAMPLE").then(|| Secret::new("SECRETEXAMPLE"))
}

/// A byte that differs from `b` and keeps the string valid and printable.
fn mutate(b: u8) -> u8 {
    match b {
        b'z' => b'y',
        b'Z' => b'Y',
        b'9' => b'8',
        b if b.is_ascii_alphanumeric() => b + 1,
        b'X' => b'Y',
        _ => b'X',
    }
}

fn mutated(s: &str, i: usize) -> String {
    let mut bytes = s.as_bytes().to_vec();
    bytes[i] = mutate(bytes[i]);
    String::from_utf8(bytes).expect("ascii stays ascii")
}

fn signed_request_fixture() -> (HeaderMap, String) {
    let secret = Secret::new("SECRETEXAMPLE");
    let mut map = headers(&[
        ("host", "127.0.0.1:9000"),
        ("x-amz-meta-note", "  a   b\tc "),
        ("content-type", "text/plain"),
    ]);
    let payload = sha256_hex(b"body");
    let sig = sign(
        "PUT",
        "/bkt/dir%2Fa%20b",
        "uploadId=X%2B1&partNumber=2&tagging",
        &mut map,
        &payload,
        &test_params(&secret),
    )
    .expect("sign");
    (map, sig)
}

#[test]
fn sign_then_verify_and_every_single_byte_change_fails() {
    let (map, sig) = signed_request_fixture();
    let (path, query) = ("/bkt/dir%2Fa%20b", "uploadId=X%2B1&partNumber=2&tagging");
    let now = datetime!(2026-11-29 11:30:00 UTC);
    let req = SignedRequest {
        method: "PUT",
        raw_path: path,
        raw_query: query,
        headers: &map,
    };
    let verified = verify(&req, now, "s3", &test_lookup).expect("round trip");
    assert_eq!(verified.region, "eu-west-3");
    assert_eq!(
        verified.payload.check_sha256(&crate::mac::sha256(b"body")),
        Ok(())
    );
    assert!(
        verified
            .signed_headers
            .contains(&"x-amz-meta-note".to_owned())
    );
    assert!(
        map[http::header::AUTHORIZATION]
            .to_str()
            .expect("ascii")
            .ends_with(&sig)
    );

    assert!(
        verify(
            &SignedRequest {
                method: "POST",
                ..req
            },
            now,
            "s3",
            &test_lookup
        )
        .is_err()
    );
    for i in 0..path.len() {
        let p = mutated(path, i);
        assert!(
            verify(
                &SignedRequest {
                    raw_path: &p,
                    ..req
                },
                now,
                "s3",
                &test_lookup
            )
            .is_err(),
            "path {p}"
        );
    }
    for i in 0..query.len() {
        let q = mutated(query, i);
        assert!(
            verify(
                &SignedRequest {
                    raw_query: &q,
                    ..req
                },
                now,
                "s3",
                &test_lookup
            )
            .is_err(),
            "query {q}"
        );
    }
    for (name, value) in &map {
        let value = value.to_str().expect("ascii");
        for i in 0..value.len() {
            let mut changed = map.clone();
            changed.insert(
                name.clone(),
                HeaderValue::from_str(&mutated(value, i)).expect("valid"),
            );
            let r = SignedRequest {
                headers: &changed,
                ..req
            };
            assert!(
                verify(&r, now, "s3", &test_lookup).is_err(),
                "{name}: {}",
                mutated(value, i)
            );
        }
    }
    // Whitespace the canonical form ignores does not matter.
    let mut spaced = map.clone();
    spaced.insert("x-amz-meta-note", HeaderValue::from_static("a b  c"));
    assert!(
        verify(
            &SignedRequest {
                headers: &spaced,
                ..req
            },
            now,
            "s3",
            &test_lookup
        )
        .is_ok()
    );
    // A removed signed header fails; an added unsigned header does not.
    let mut removed = map.clone();
    removed.remove("content-type");
    assert_eq!(
        verify(
            &SignedRequest {
                headers: &removed,
                ..req
            },
            now,
            "s3",
            &test_lookup
        )
        .err(),
        Some(AuthError::SignatureMismatch)
    );
    let mut added = map.clone();
    added.insert("user-agent", HeaderValue::from_static("x"));
    assert!(
        verify(
            &SignedRequest {
                headers: &added,
                ..req
            },
            now,
            "s3",
            &test_lookup
        )
        .is_ok()
    );
}

#[test]
fn presign_then_verify_and_every_single_byte_change_fails() {
    let secret = Secret::new("SECRETEXAMPLE");
    let map = headers(&[("host", "127.0.0.1:9000")]);
    let query = presign(
        "GET",
        "/bkt/a%20b",
        "versionId=3",
        &map,
        300,
        &test_params(&secret),
    )
    .expect("presign");
    let now = datetime!(2026-11-29 11:26:00 UTC);
    let req = SignedRequest {
        method: "GET",
        raw_path: "/bkt/a%20b",
        raw_query: &query,
        headers: &map,
    };
    let verified = verify(&req, now, "s3", &test_lookup).expect("round trip");
    assert!(verified.presigned);
    assert!(matches!(verified.payload, Payload::Unsigned));
    for i in 0..query.len() {
        let q = mutated(&query, i);
        assert!(
            verify(
                &SignedRequest {
                    raw_query: &q,
                    ..req
                },
                now,
                "s3",
                &test_lookup
            )
            .is_err(),
            "query {q}"
        );
    }
    for i in 0..req.raw_path.len() {
        let p = mutated(req.raw_path, i);
        assert!(
            verify(
                &SignedRequest {
                    raw_path: &p,
                    ..req
                },
                now,
                "s3",
                &test_lookup
            )
            .is_err(),
            "path {p}"
        );
    }
    let other_host = headers(&[("host", "127.0.0.1:9001")]);
    assert!(
        verify(
            &SignedRequest {
                headers: &other_host,
                ..req
            },
            now,
            "s3",
            &test_lookup
        )
        .is_err()
    );
    assert!(verify(&req, now + Duration::seconds(300), "s3", &test_lookup).is_err());
    assert!(presign("GET", "/", "", &map, 0, &test_params(&secret)).is_err());
    assert!(presign("GET", "/", "", &map, 604_801, &test_params(&secret)).is_err());
    assert!(presign("GET", "/", "", &HeaderMap::new(), 60, &test_params(&secret)).is_err());
}

#[test]
fn client_chunk_signer_matches_server() {
    let secret = Secret::new("SECRETEXAMPLE");
    let params = test_params(&secret);
    let mut map = headers(&[("host", "h"), ("content-encoding", "aws-chunked")]);
    let seed = sign(
        "PUT",
        "/b/k",
        "",
        &mut map,
        STREAMING_SIGNED_TRAILER,
        &params,
    )
    .expect("sign");
    let mut client = ChunkSigner::new(&params, &seed).expect("seed is hex");
    let req = SignedRequest {
        method: "PUT",
        raw_path: "/b/k",
        raw_query: "",
        headers: &map,
    };
    let verified = verify(&req, params.now, "s3", &test_lookup).expect("verifies");
    let Payload::StreamingSignedTrailer(server) = verified.payload else {
        panic!("expected trailer kind")
    };
    let mut body = format!(
        "5;chunk-signature={}\r\nhello\r\n",
        client.sign_chunk(b"hello")
    );
    body.push_str(&format!("0;chunk-signature={}\r\n", client.sign_chunk(b"")));
    body.push_str("x-amz-checksum-crc32:NhCmhg==\r\n");
    let trailer_sig = client.sign_trailer(&[("x-amz-checksum-crc32", "NhCmhg==")]);
    body.push_str(&format!("x-amz-trailer-signature:{trailer_sig}\r\n\r\n"));
    let mut decoder = ChunkedDecoder::new(ChunkMode::Signed(server), true);
    let mut out = Vec::new();
    decoder.push(body.as_bytes(), &mut out).expect("valid");
    assert_eq!(
        decoder
            .finish()
            .expect("complete")
            .get("x-amz-checksum-crc32"),
        Some("NhCmhg==")
    );
    assert_eq!(out, b"hello");
    assert!(ChunkSigner::new(&params, "zz").is_none());
}

fn header_auth(auth: &str, extra: &[(&str, &str)]) -> HeaderMap {
    let mut pairs = vec![
        ("host", "h"),
        ("x-amz-date", "20261129T112534Z"),
        ("x-amz-content-sha256", crate::mac::EMPTY_SHA256_HEX),
        ("authorization", auth),
    ];
    pairs.extend_from_slice(extra);
    headers(&pairs)
}

fn verify_headers(map: &HeaderMap, query: &str) -> Result<Verified, AuthError> {
    let req = SignedRequest {
        method: "GET",
        raw_path: "/",
        raw_query: query,
        headers: map,
    };
    verify(&req, datetime!(2026-11-29 11:25:34 UTC), "s3", &test_lookup)
}

#[test]
fn authorization_header_variants() {
    let secret = Secret::new("SECRETEXAMPLE");
    let mut map = headers(&[("host", "h")]);
    let sig = sign(
        "GET",
        "/",
        "",
        &mut map,
        crate::mac::EMPTY_SHA256_HEX,
        &test_params(&secret),
    )
    .expect("sign");
    assert!(verify_headers(&map, "").is_ok());
    let cred = "Credential=AKIDEXAMPLE/20261129/eu-west-3/s3/aws4_request";
    let sh = "SignedHeaders=host;x-amz-content-sha256;x-amz-date";
    // Without spaces after the commas, and in another field order.
    for auth in [
        format!("AWS4-HMAC-SHA256 {cred},{sh},Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Signature={sig}, {sh}, {cred}"),
        format!(
            "AWS4-HMAC-SHA256  {cred} , {sh} , Signature={}",
            sig.to_uppercase()
        ),
    ] {
        assert!(
            verify_headers(&header_auth(&auth, &[]), "").is_ok(),
            "{auth}"
        );
    }
    let malformed = [
        format!("AWS4-HMAC-SHA256{cred},{sh},Signature={sig}"),
        format!("AWS4-HMAC-SHA1 {cred},{sh},Signature={sig}"),
        format!("AWS4-HMAC-SHA256 {cred},{sh}"),
        format!("AWS4-HMAC-SHA256 {cred},{sh},Signature={sig},Signature={sig}"),
        format!("AWS4-HMAC-SHA256 {cred},{sh},Signature={sig},Foo=bar"),
        format!("AWS4-HMAC-SHA256 {cred},{sh},Signature={}", &sig[1..]),
        format!("AWS4-HMAC-SHA256 {cred},{sh},Signature"),
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129/eu-west-3/s3,{sh},Signature={sig}"
        ),
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129/eu-west-3/s3/aws5_request,{sh},Signature={sig}"
        ),
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2026112/eu-west-3/s3/aws4_request,{sh},Signature={sig}"
        ),
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/eu-west-3/s3/aws4_request,{sh},Signature={sig}"
        ),
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129/eu-west-3/sts/aws4_request,{sh},Signature={sig}"
        ),
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129//s3/aws4_request,{sh},Signature={sig}"
        ),
        format!("AWS4-HMAC-SHA256 {cred},SignedHeaders=x-amz-date,Signature={sig}"),
        format!("AWS4-HMAC-SHA256 {cred},SignedHeaders=host;;x-amz-date,Signature={sig}"),
        "AWS4-HMAC-SHA256".to_owned(),
        String::new(),
    ];
    for auth in malformed {
        let err = verify_headers(&header_auth(&auth, &[]), "").expect_err(&auth);
        assert_eq!(err.code(), "AuthorizationHeaderMalformed", "{auth}: {err}");
    }
    let unknown = format!(
        "AWS4-HMAC-SHA256 Credential=NOPE/20261129/eu-west-3/s3/aws4_request,{sh},Signature={sig}"
    );
    assert_eq!(
        verify_headers(&header_auth(&unknown, &[]), "").err(),
        Some(AuthError::UnknownAccessKey)
    );
    let wrong = format!("AWS4-HMAC-SHA256 {cred},{sh},Signature={}", "0".repeat(64));
    assert_eq!(
        verify_headers(&header_auth(&wrong, &[]), "").err(),
        Some(AuthError::SignatureMismatch)
    );
    let ok = format!("AWS4-HMAC-SHA256 {cred},{sh},Signature={sig}");
    // Two auth mechanisms at once.
    assert_eq!(
        verify_headers(&header_auth(&ok, &[]), "X-Amz-Algorithm=AWS4-HMAC-SHA256")
            .err()
            .map(|e| e.code()),
        Some("InvalidArgument")
    );
    // Two Authorization headers.
    assert!(verify_headers(&header_auth(&ok, &[("authorization", &ok)]), "").is_err());
    assert_eq!(
        verify_headers(&headers(&[("host", "h")]), "").err(),
        Some(AuthError::Missing)
    );
}

type PayloadCheck = fn(&Payload) -> bool;

#[test]
fn time_and_payload_rules() {
    let secret = Secret::new("SECRETEXAMPLE");
    let mut map = headers(&[("host", "h")]);
    sign(
        "GET",
        "/",
        "",
        &mut map,
        crate::mac::EMPTY_SHA256_HEX,
        &test_params(&secret),
    )
    .expect("sign");
    let req = SignedRequest {
        method: "GET",
        raw_path: "/",
        raw_query: "",
        headers: &map,
    };
    let signed_at = datetime!(2026-11-29 11:25:34 UTC);
    for skew in [Duration::minutes(15), -Duration::minutes(15)] {
        assert!(verify(&req, signed_at + skew, "s3", &test_lookup).is_ok());
    }
    for skew in [Duration::minutes(16), -Duration::minutes(16)] {
        assert_eq!(
            verify(&req, signed_at + skew, "s3", &test_lookup).err(),
            Some(AuthError::TimeTooSkewed)
        );
    }
    assert_eq!(
        verify(&req, signed_at, "sts", &test_lookup)
            .err()
            .map(|e| e.code()),
        Some("AuthorizationHeaderMalformed")
    );

    // Every x-amz-content-sha256 kind, each correctly signed.
    let kinds: [(&str, PayloadCheck); 5] = [
        (UNSIGNED_PAYLOAD, |p| matches!(p, Payload::Unsigned)),
        (STREAMING_SIGNED, |p| {
            matches!(p, Payload::StreamingSigned(_))
        }),
        (STREAMING_SIGNED_TRAILER, |p| {
            matches!(p, Payload::StreamingSignedTrailer(_))
        }),
        (STREAMING_UNSIGNED_TRAILER, |p| {
            matches!(p, Payload::StreamingUnsignedTrailer)
        }),
        (crate::mac::EMPTY_SHA256_HEX, |p| {
            matches!(p, Payload::Sha256(_))
        }),
    ];
    for (value, is_kind) in kinds {
        let mut map = headers(&[("host", "h")]);
        sign("PUT", "/", "", &mut map, value, &test_params(&secret)).expect("sign");
        let req = SignedRequest {
            method: "PUT",
            raw_path: "/",
            raw_query: "",
            headers: &map,
        };
        let verified = verify(&req, signed_at, "s3", &test_lookup).expect(value);
        assert!(is_kind(&verified.payload), "{value}");
        assert_eq!(
            verified.payload.is_streaming(),
            value.starts_with("STREAMING")
        );
    }
    for (value, code) in [
        ("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "NotImplemented"),
        ("abc", "InvalidArgument"),
        (&"g".repeat(64), "InvalidArgument"),
    ] {
        let mut map = headers(&[("host", "h")]);
        sign("PUT", "/", "", &mut map, value, &test_params(&secret)).expect("sign");
        let req = SignedRequest {
            method: "PUT",
            raw_path: "/",
            raw_query: "",
            headers: &map,
        };
        assert_eq!(
            verify(&req, signed_at, "s3", &test_lookup)
                .err()
                .map(|e| e.code()),
            Some(code)
        );
    }
    let mut missing = map.clone();
    missing.remove("x-amz-content-sha256");
    assert_eq!(
        verify(
            &SignedRequest {
                headers: &missing,
                ..req
            },
            signed_at,
            "s3",
            &test_lookup
        )
        .err(),
        Some(AuthError::MissingSecurityHeader("x-amz-content-sha256"))
    );
    let mut no_date = map.clone();
    no_date.remove("x-amz-date");
    assert_eq!(
        verify(
            &SignedRequest {
                headers: &no_date,
                ..req
            },
            signed_at,
            "s3",
            &test_lookup
        )
        .err()
        .map(|e| e.code()),
        Some("AccessDenied")
    );
}

#[test]
fn date_header_fallback() {
    // Sign with a Date header and no x-amz-date, as some clients do.
    let signed_at = datetime!(2026-11-29 11:25:34 UTC);
    let map = headers(&[
        ("host", "h"),
        ("date", "Sun, 29 Nov 2026 11:25:34 GMT"),
        ("x-amz-content-sha256", UNSIGNED_PAYLOAD),
    ]);
    let canonical = canonical_request(
        "GET",
        "/",
        "",
        &map,
        "date;host;x-amz-content-sha256",
        UNSIGNED_PAYLOAD,
    )
    .expect("present");
    let scope = scope("20261129", "eu-west-3", "s3");
    let key = signing_key(&Secret::new("SECRETEXAMPLE"), "20261129", "eu-west-3", "s3");
    let sig = hex::encode(hmac_sha256(
        &key.0,
        string_to_sign("20261129T112534Z", &scope, &canonical).as_bytes(),
    ));
    let mut map = map;
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{scope}, SignedHeaders=date;host;x-amz-content-sha256, Signature={sig}"
    );
    map.insert(
        "authorization",
        HeaderValue::from_str(&auth).expect("ascii"),
    );
    let req = SignedRequest {
        method: "GET",
        raw_path: "/",
        raw_query: "",
        headers: &map,
    };
    assert!(verify(&req, signed_at, "s3", &test_lookup).is_ok());
}

#[test]
fn presigned_parameter_errors() {
    let secret = Secret::new("SECRETEXAMPLE");
    let map = headers(&[("host", "h")]);
    let good = presign("GET", "/", "", &map, 60, &test_params(&secret)).expect("presign");
    let now = datetime!(2026-11-29 11:25:40 UTC);
    let check = |query: &str| {
        let req = SignedRequest {
            method: "GET",
            raw_path: "/",
            raw_query: query,
            headers: &map,
        };
        verify(&req, now, "s3", &test_lookup)
    };
    assert!(check(&good).is_ok());
    for (from, to) in [
        ("X-Amz-Expires=60", "X-Amz-Expires=0"),
        ("X-Amz-Expires=60", "X-Amz-Expires=604801"),
        ("X-Amz-Expires=60", "X-Amz-Expires=-1"),
        ("X-Amz-Expires=60", "X-Amz-Expires=99999999999999999999"),
        ("X-Amz-Expires=60", "X-Amz-Expires="),
        ("X-Amz-Expires=60&", ""),
        (
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Algorithm=AWS4-HMAC-SHA512",
        ),
        (
            "X-Amz-Date=20261129T112534Z",
            "X-Amz-Date=2026-11-29T11:25:34Z",
        ),
        ("X-Amz-Date=20261129T112534Z", "X-Amz-Date=20261130T112534Z"),
        ("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-amz-date"),
        (
            "X-Amz-Credential=AKIDEXAMPLE",
            "X-Amz-Credential=AKIDEXAMPLE%2Fx",
        ),
        ("X-Amz-Signature=", "X-Amz-Signature=00&X-Amz-Signature="),
    ] {
        assert!(good.contains(from), "{from}");
        let query = good.replacen(from, to, 1);
        let err = check(&query).expect_err(&query);
        assert_eq!(
            err.code(),
            "AuthorizationQueryParametersError",
            "{query}: {err}"
        );
    }
    let unknown = good.replacen("X-Amz-Credential=AKIDEXAMPLE", "X-Amz-Credential=NOPE", 1);
    assert_eq!(check(&unknown).err(), Some(AuthError::UnknownAccessKey));
}

#[test]
fn aws_test_suite_more_vectors() {
    let unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    assert_eq!(
        suite_signature(
            "GET",
            "/",
            &format!("{unreserved}={unreserved}"),
            &SUITE_HEADERS,
            b""
        ),
        "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"
    );
    assert_eq!(
        suite_signature("GET", "/", "%E1%88%B4=bar", &SUITE_HEADERS, b""),
        "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"
    );
    assert_eq!(
        suite_signature("GET", "/%E1%88%B4", "", &SUITE_HEADERS, b""),
        "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"
    );
    assert_eq!(
        suite_signature("GET", "/example%20space/", "", &SUITE_HEADERS, b""),
        "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"
    );
    assert_eq!(
        suite_signature("GET", "/", "Param1=value1", &SUITE_HEADERS, b""),
        "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"
    );
}

#[test]
fn s3_doc_more_examples() {
    let lifecycle = headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("x-amz-content-sha256", crate::mac::EMPTY_SHA256_HEX),
        ("x-amz-date", "20130524T000000Z"),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        ),
    ]);
    let req = SignedRequest {
        method: "GET",
        raw_path: "/",
        raw_query: "lifecycle",
        headers: &lifecycle,
    };
    verify(&req, S3_DOC_TIME, "s3", &s3_doc_lookup).expect("lifecycle");
    let list = headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("x-amz-content-sha256", crate::mac::EMPTY_SHA256_HEX),
        ("x-amz-date", "20130524T000000Z"),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ]);
    let req = SignedRequest {
        method: "GET",
        raw_path: "/",
        raw_query: "max-keys=2&prefix=J",
        headers: &list,
    };
    verify(&req, S3_DOC_TIME, "s3", &s3_doc_lookup).expect("list");
    let put = headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("date", "Fri, 24 May 2013 00:00:00 GMT"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        (
            "x-amz-content-sha256",
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
        ),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        ),
    ]);
    let req = SignedRequest {
        method: "PUT",
        raw_path: "/test%24file.text",
        raw_query: "",
        headers: &put,
    };
    let v = verify(&req, S3_DOC_TIME, "s3", &s3_doc_lookup).expect("put");
    assert!(
        v.payload
            .check_sha256(&crate::mac::sha256(b"Welcome to Amazon S3."))
            .is_ok()
    );
}

mod never_panics {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn arbitrary_authorization_and_query(
            auth in "AWS4-HMAC-SHA256 [ -~]{0,200}",
            query in "[ -~]{0,200}",
            date in "[0-9TZ]{14,17}",
        ) {
            let mut map = headers(&[("host", "h"), ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")]);
            map.insert("authorization", HeaderValue::from_str(&auth).expect("printable"));
            if let Ok(v) = HeaderValue::from_str(&date) {
                map.insert("x-amz-date", v);
            }
            let req = SignedRequest { method: "GET", raw_path: "/", raw_query: &query, headers: &map };
            let _ = verify(&req, datetime!(9999-12-31 23:59:59 UTC), "s3", &test_lookup);
            map.remove("authorization");
            let req = SignedRequest { method: "GET", raw_path: "/", raw_query: &query, headers: &map };
            let _ = verify(&req, OffsetDateTime::UNIX_EPOCH, "s3", &test_lookup);
        }

        #[test]
        fn arbitrary_presigned_values(
            date in "[0-9]{8}T[0-9]{6}Z",
            expires in "[0-9]{1,8}",
            cred in "[A-Za-z0-9%/]{0,60}",
        ) {
            let map = headers(&[("host", "h")]);
            let query = format!(
                "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={cred}&X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature={}",
                "0".repeat(64)
            );
            let req = SignedRequest { method: "GET", raw_path: "/", raw_query: &query, headers: &map };
            for now in [datetime!(9999-12-31 23:59:59 UTC), OffsetDateTime::UNIX_EPOCH] {
                let _ = verify(&req, now, "s3", &test_lookup);
            }
        }
    }

    #[test]
    fn presigned_at_the_end_of_time() {
        let map = headers(&[("host", "h")]);
        let query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F99991231%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=99991231T235959Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-Signature={}",
            "0".repeat(64)
        );
        let req = SignedRequest {
            method: "GET",
            raw_path: "/",
            raw_query: &query,
            headers: &map,
        };
        assert!(verify(&req, datetime!(9999-12-31 23:59:59 UTC), "s3", &test_lookup).is_err());
    }
}
