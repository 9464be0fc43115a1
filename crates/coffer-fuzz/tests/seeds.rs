//! Writes the seed corpus `fuzz/corpus/<target>/` (run by hand, then
//! commit the files):
//!
//! ```text
//! cargo test -p coffer-fuzz --test seeds -- --ignored
//! ```
//!
//! Signed requests come from the SDK captures in
//! `tests/vectors/sdk-captures.txt` plus requests
//! the crate's own signers make (presigned URLs, SigV2, streaming); bodies
//! are the ones the SDKs send; envelopes and sealed chunks come from the
//! real encoder and sealer.

use std::path::{Path, PathBuf};

use coffer_auth::sigv4::{ChunkSigner, SigningParams};
use coffer_auth::{Secret, oss_v1, oss_v4, sigv2, sigv4};
use coffer_crypto::sealed::{CHUNK_SIZE, plan_range};
use coffer_crypto::{
    Algorithm, Envelope, KeyReference, ObjectId, PartLayout, PartSealer, SymmetricKey, WrapKind,
};
use coffer_fuzz::auth::{ACCESS_KEY, NOW, SECRET_KEY};
use coffer_fuzz::chunked::seed_signer;
use coffer_fuzz::sealed::{DEK, OBJECT_ID, PART_NUMBER, seal_chunk};
use http::{HeaderMap, HeaderValue};

const CAPTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/sdk-captures.txt"
);

struct Corpus(PathBuf);

impl Corpus {
    fn write(&self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.0.join(target);
        std::fs::create_dir_all(&dir).expect("create corpus dir");
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}

/// Undoes Python's `repr()` of a str (the captures' BODY lines).
fn unrepr(s: &str) -> Vec<u8> {
    let inner = s.trim().trim_matches('\'');
    let mut out = Vec::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        let c = if c == '\\' {
            match chars.next() {
                Some('n') => '\n',
                Some('r') => '\r',
                Some('t') => '\t',
                Some('x') => {
                    let hex: String = chars.by_ref().take(2).collect();
                    char::from(u8::from_str_radix(&hex, 16).expect("\\x escape"))
                }
                Some(other) => other,
                None => '\\',
            }
        } else {
            c
        };
        let mut buf = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    out
}

fn request_text(method: &str, target: &str, headers: &HeaderMap) -> Vec<u8> {
    let mut out = format!("{method} {target}\n").into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out
}

fn captures(corpus: &Corpus) {
    let text = std::fs::read_to_string(CAPTURES).expect("the SDK captures beside the repository");
    for (i, block) in text.split("\n=====").skip(1).enumerate() {
        let mut lines = block.lines();
        let title: Vec<&str> = lines.next().expect("title").split_whitespace().collect();
        let target = match title[0] {
            "aws-v4" => "sigv4",
            "oss-v1" | "oss-v1-presign" => "oss_v1",
            "oss-v4" | "oss-v4-presign" => "oss_v4",
            _ => continue,
        };
        let mut request = format!("{} {}\n", title[2], title[3]).into_bytes();
        for line in lines.map(str::trim_start) {
            if let Some(body) = line.strip_prefix("BODY(head):") {
                let body = unrepr(body);
                if body.starts_with(b"<") {
                    corpus.write("xml_body", &format!("capture-{i:02}.xml"), &body);
                }
            } else if !line.starts_with("CANONICAL") && !line.starts_with("AWS-CHUNKED") {
                request.extend_from_slice(line.as_bytes());
                request.push(b'\n');
            }
        }
        corpus.write(
            target,
            &format!("capture-{i:02}-{}.txt", title[0]),
            &request,
        );
    }
}

fn signed_requests(corpus: &Corpus) {
    let secret = Secret::new(SECRET_KEY);
    let params = SigningParams {
        access_key: ACCESS_KEY,
        secret: &secret,
        region: "us-east-1",
        service: "s3",
        now: NOW,
    };
    let mut host = HeaderMap::new();
    host.insert("host", HeaderValue::from_static("127.0.0.1:9000"));

    let query = sigv4::presign("GET", "/bkt/a%20b.txt", "versionId=1", &host, 900, &params)
        .expect("presign");
    let text = request_text("GET", &format!("/bkt/a%20b.txt?{query}"), &host);
    corpus.write("sigv4", "presigned-get.txt", &text);

    let mut headers = host.clone();
    headers.insert(
        "x-amz-decoded-content-length",
        HeaderValue::from_static("5"),
    );
    headers.insert("content-encoding", HeaderValue::from_static("aws-chunked"));
    sigv4::sign(
        "PUT",
        "/bkt/stream",
        "",
        &mut headers,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        &params,
    )
    .expect("sign");
    corpus.write(
        "sigv4",
        "streaming-put.txt",
        &request_text("PUT", "/bkt/stream", &headers),
    );

    let mut headers = host.clone();
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    headers.insert("x-amz-meta-a", HeaderValue::from_static("b"));
    sigv2::sign("PUT", None, "/bkt/k", "acl", &mut headers, &params).expect("sign");
    corpus.write(
        "oss_v1",
        "sigv2-put.txt",
        &request_text("PUT", "/bkt/k?acl", &headers),
    );
    let query = sigv2::presign("GET", None, "/bkt/k", "", &host, 900, &params).expect("presign");
    corpus.write(
        "oss_v1",
        "sigv2-presigned.txt",
        &request_text("GET", &format!("/bkt/k?{query}"), &host),
    );

    let query = oss_v1::presign(
        "GET",
        Some("bkt"),
        Some("d/k"),
        "",
        &HeaderMap::new(),
        900,
        &params,
    )
    .expect("presign");
    corpus.write(
        "oss_v1",
        "oss-v1-presigned.txt",
        &request_text("GET", &format!("/bkt/d%2Fk?{query}"), &host),
    );

    let oss_params = SigningParams {
        region: "cn-hangzhou",
        service: "oss",
        ..params
    };
    let query = oss_v4::presign(
        "GET",
        Some("bkt"),
        Some("k"),
        "",
        &HeaderMap::new(),
        900,
        &oss_params,
    )
    .expect("presign");
    corpus.write(
        "oss_v4",
        "oss-v4-presigned.txt",
        &request_text("GET", &format!("/bkt/k?{query}"), &host),
    );
}

fn chunked(corpus: &Corpus) {
    // Mode byte: bit 0 signed, bit 1 trailer; then the split seed.
    let mut body = b"\x00\x05".to_vec();
    body.extend_from_slice(b"5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n");
    corpus.write("aws_chunked", "unsigned.txt", &body);
    let mut body = b"\x02\x11".to_vec();
    body.extend_from_slice(b"4\r\ndata\r\n0\r\nx-amz-checksum-crc32:wkipZw==\r\n\r\n");
    corpus.write("aws_chunked", "unsigned-trailer.txt", &body);

    for (trailer, name) in [(false, "signed.txt"), (true, "signed-trailer.txt")] {
        let mut signer: ChunkSigner = seed_signer();
        let mut body = vec![1 | u8::from(trailer) << 1, 0x23];
        for chunk in [&b"hello world"[..], b"x", b""] {
            let signature = signer.sign_chunk(chunk);
            body.extend_from_slice(
                format!("{:x};chunk-signature={signature}\r\n", chunk.len()).as_bytes(),
            );
            body.extend_from_slice(chunk);
            if !chunk.is_empty() {
                body.extend_from_slice(b"\r\n");
            }
        }
        if trailer {
            let trailers = [("x-amz-checksum-crc32", "DUoRhQ==")];
            let signature = signer.sign_trailer(&trailers);
            body.extend_from_slice(
                format!("x-amz-checksum-crc32:DUoRhQ==\r\nx-amz-trailer-signature:{signature}\r\n")
                    .as_bytes(),
            );
        }
        body.extend_from_slice(b"\r\n");
        corpus.write("aws_chunked", name, &body);
    }
}

fn bodies(corpus: &Corpus) {
    let xml: [(&str, &str); 12] = [
        (
            "delete.xml",
            "<Delete><Quiet>true</Quiet><Object><Key>a b.txt</Key></Object><Object><Key>dir/&lt;x&gt;</Key><VersionId>null</VersionId></Object></Delete>",
        ),
        (
            "complete.xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Part><ETag>\"0cc175b9c0f1b6a831c399e269772661\"</ETag><PartNumber>1</PartNumber></Part><Part><ETag>\"92eb5ffee6ae2fec3ad71c777531578f\"</ETag><PartNumber>2</PartNumber></Part></CompleteMultipartUpload>",
        ),
        (
            "create-bucket.xml",
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>",
        ),
        (
            "s3-encryption.xml",
            "<ServerSideEncryptionConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>alias/k</KMSMasterKeyID></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>",
        ),
        (
            "oss-encryption.xml",
            "<ServerSideEncryptionRule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>SM4</SSEAlgorithm></ApplyServerSideEncryptionByDefault></ServerSideEncryptionRule>",
        ),
        (
            "https-config.xml",
            "<HttpsConfiguration><TLS><Enable>true</Enable><TLSVersion>TLSv1.2</TLSVersion><TLSVersion>TLSv1.3</TLSVersion></TLS><CipherSuite><Enable>true</Enable><StrongCipherSuite>false</StrongCipherSuite><CustomCipherSuite>ECDHE-ECDSA-AES128-SHA256</CustomCipherSuite><TLS13CustomCipherSuite>TLS_AES_256_GCM_SHA384</TLS13CustomCipherSuite></CipherSuite></HttpsConfiguration>",
        ),
        (
            "lifecycle-s3.xml",
            "<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule><ID>a</ID><Filter><And><Prefix>p/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag><ObjectSizeGreaterThan>1</ObjectSizeGreaterThan></And></Filter><Status>Enabled</Status><Expiration><Days>3</Days></Expiration><NoncurrentVersionExpiration><NoncurrentDays>2</NoncurrentDays><NewerNoncurrentVersions>1</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule><Rule><Prefix>x</Prefix><Status>Disabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>",
        ),
        (
            "lifecycle-oss.xml",
            "<LifecycleConfiguration><Rule><ID>o</ID><Prefix>logs/</Prefix><Status>Enabled</Status><Expiration><CreatedBeforeDate>2024-01-01T00:00:00.000Z</CreatedBeforeDate></Expiration><Tag><Key>k</Key><Value>v</Value></Tag><Filter><ObjectSizeLessThan>9</ObjectSizeLessThan><Not><Prefix>logs/keep</Prefix><Tag><Key>a</Key><Value>b</Value></Tag></Not></Filter></Rule></LifecycleConfiguration>",
        ),
        (
            "object-lock.xml",
            "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>",
        ),
        (
            "worm.xml",
            "<InitiateWormConfiguration><RetentionPeriodInDays>30</RetentionPeriodInDays></InitiateWormConfiguration>",
        ),
        (
            "tagging.xml",
            "<Tagging><TagSet><Tag><Key>env</Key><Value>prod</Value></Tag><Tag><Key>a b</Key><Value></Value></Tag></TagSet></Tagging>",
        ),
        (
            "entities.xml",
            "<Delete><Object><Key>&#x41;&#66;&quot;<![CDATA[<x>]]></Key></Object></Delete>",
        ),
    ];
    for (name, body) in xml {
        corpus.write("xml_body", name, body.as_bytes());
    }
    let policies = [
        (
            "tls.json",
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"tls","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::bkt","arn:aws:s3:::bkt/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"},"NumericLessThan":{"s3:TlsVersion":["1.3"]}}}]}"#,
        ),
        (
            "one.json",
            r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"}}"#,
        ),
        (
            "numeric.json",
            r#"{"Statement":[{"Effect":"Deny","Condition":{"NumericLessThan":{"s3:TlsVersion":1.2}}},{"Effect":"Deny","Condition":{"Bool":{"aws:SecureTransport":false}}}]}"#,
        ),
    ];
    for (name, body) in policies {
        corpus.write("bucket_policy", name, body.as_bytes());
    }
    corpus.write("sse_context", "kv.txt", b"eyJrIjogInYifQ==");
    corpus.write("sse_context", "arn.txt", b"eyJhd3M6czM6YXJuIjoieCJ9");
    corpus.write("sse_context", "empty.txt", b"e30=");
    let ranges = [
        "1000\nbytes=0-99",
        "1000\nbytes=-100",
        "1000\nbytes=900-",
        "0\nbytes=0-0",
        "200000\nbytes=65530-65545",
        "1000\nbytes=5-1",
        "1000\nbytes=0-1,5-6",
        "18446744073709551615\nbytes=18446744073709551614-",
    ];
    for (i, range) in ranges.iter().enumerate() {
        corpus.write("range", &format!("range-{i}.txt"), range.as_bytes());
    }
}

fn envelopes(corpus: &Corpus) {
    let dek = SymmetricKey::from_slice(&DEK).expect("32 bytes");
    let object_id = ObjectId([3; 16]);
    let commitment = coffer_crypto::sealed::commitment(&dek, &object_id);
    let key = |kind, key_id: &str, key_version, wrapped: &[u8]| KeyReference {
        kind,
        key_id: key_id.to_owned(),
        key_version,
        wrapped_key: wrapped.to_vec(),
    };
    let cases = [
        (
            "service.bin",
            Algorithm::Aes256Gcm,
            key(WrapKind::ServiceKey, "service", 1, &[5; 60]),
            vec![(0, 5)],
        ),
        (
            "kms-multipart.bin",
            Algorithm::Sm4Gcm,
            key(
                WrapKind::Kms,
                "arn:aws:kms:us-east-1:000000000000:key/1234",
                3,
                &[6; 120],
            ),
            vec![(1, 5 << 20), (2, 70_000), (7, 0)],
        ),
        (
            "customer.bin",
            Algorithm::Aes256Gcm,
            key(WrapKind::CustomerKey, "", 0, &[7; 32]),
            vec![(0, 0)],
        ),
        (
            "bucket-key.bin",
            Algorithm::Aes256Gcm,
            key(WrapKind::KmsBucketKey, "k", 1, &[8; 200]),
            vec![(1, 65_536), (2, 1)],
        ),
    ];
    for (name, algorithm, key, parts) in cases {
        let envelope = Envelope {
            algorithm,
            object_id,
            commitment,
            key,
            parts: parts
                .into_iter()
                .map(|(part_number, plain_size)| PartLayout {
                    part_number,
                    plain_size,
                })
                .collect(),
            layout_tag: None,
        };
        corpus.write(
            "envelope",
            name,
            &envelope.encode().expect("valid envelope"),
        );
        // Version 2: the same, authenticated under the fuzz target's DEK.
        let mut v2 = envelope;
        v2.authenticate(&dek).expect("valid envelope");
        let name = name.replace(".bin", "-v2.bin");
        corpus.write("envelope", &name, &v2.encode().expect("valid envelope"));
    }
}

fn sealed_chunks(corpus: &Corpus) {
    for (algorithm, bit) in [(Algorithm::Aes256Gcm, 0u8), (Algorithm::Sm4Gcm, 1)] {
        let alg = if bit == 0 { "aes" } else { "sm4" };
        // Chunk mode: mode byte (bit 1 final, bits 2-3 index), sealed chunk.
        let cases: [(usize, bool, &[u8]); 3] =
            [(0, true, b"hello"), (0, true, b""), (2, true, b"tail")];
        for (index, last, plaintext) in cases {
            let mut input = vec![bit | u8::from(last) << 1 | (index as u8) << 2];
            input.extend(seal_chunk(algorithm, index, last, plaintext));
            corpus.write(
                "sealed_chunk",
                &format!("{alg}-chunk{index}-{}.bin", plaintext.len()),
                &input,
            );
        }
        // Range mode: part size, start, length (24 bits each), sealed part.
        let plaintext = b"the quick brown fox";
        let mut sealer = PartSealer::new(
            algorithm,
            &SymmetricKey::from_slice(&DEK).expect("32"),
            &OBJECT_ID,
            PART_NUMBER,
        );
        let mut sealed = Vec::new();
        sealer.push(plaintext, &mut sealed).expect("seal");
        sealer.finish(&mut sealed);
        let plan = plan_range(plaintext.len() as u64, 4..9).expect("plan");
        let mut input = vec![bit | 0x10, 0, 0, plaintext.len() as u8, 0, 0, 4, 0, 0, 5];
        input.extend_from_slice(&sealed[plan.sealed.start as usize..plan.sealed.end as usize]);
        corpus.write("sealed_chunk", &format!("{alg}-range.bin"), &input);
    }
    // One full (non-final) chunk, so that the fuzzer sees that length too.
    let mut input = vec![0];
    input.extend(seal_chunk(
        Algorithm::Aes256Gcm,
        0,
        false,
        &[0x61; CHUNK_SIZE],
    ));
    corpus.write("sealed_chunk", "aes-chunk0-full.bin", &input);
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_seed_corpus() {
    let corpus = Corpus(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus"));
    captures(&corpus);
    signed_requests(&corpus);
    chunked(&corpus);
    bodies(&corpus);
    envelopes(&corpus);
    sealed_chunks(&corpus);
}
