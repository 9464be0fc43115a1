//! Every `aws-v4` block of the boto3 wire captures in
//! `tests/vectors/sdk-captures.txt` must verify, and fail once changed.

use http::{HeaderName, HeaderValue};

use super::*;
use crate::canonical::canonical_query_string;
use crate::test_captures::{Capture, lookup, mutate};

fn load_captures() -> Vec<Capture> {
    crate::test_captures::load_captures("aws-v4")
}

impl Capture {
    fn request(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: &self.method,
            raw_path: &self.path,
            raw_query: &self.query,
            headers: &self.headers,
        }
    }

    fn now(&self) -> OffsetDateTime {
        let date = self.headers["x-amz-date"].to_str().expect("ascii date");
        parse_amz_date(date).expect("captured x-amz-date")
    }

    fn signed_headers(&self) -> String {
        let auth = self.headers["authorization"].to_str().expect("ascii");
        let start = auth.find("SignedHeaders=").expect("SignedHeaders") + "SignedHeaders=".len();
        auth[start..].split(',').next().expect("list").to_owned()
    }
}

#[test]
fn captures_file_has_aws_v4_blocks() {
    let captures = load_captures();
    assert!(
        captures.len() >= 14,
        "expected the 14 boto3 blocks, found {}",
        captures.len()
    );
}

#[test]
fn every_boto3_capture_computes_the_same_canonical_request() {
    for c in load_captures() {
        let payload = c.headers["x-amz-content-sha256"].to_str().expect("ascii");
        let canonical = canonical_request(
            &c.method,
            &c.path,
            &canonical_query_string(&c.query, None),
            &c.headers,
            &c.signed_headers(),
            payload,
        )
        .expect("signed headers present");
        assert_eq!(
            String::from_utf8_lossy(&canonical),
            c.canonical,
            "{}",
            c.title
        );
    }
}

#[test]
fn every_boto3_capture_verifies() {
    for c in load_captures() {
        let verified = verify(&c.request(), c.now(), "s3", &lookup)
            .unwrap_or_else(|e| panic!("{}: {e} ({})", c.title, e.code()));
        assert_eq!(verified.access_key, "AKIDEXAMPLE");
        assert_eq!(verified.region, "us-east-1");
        assert!(!verified.presigned);
        let streaming = c.headers.get("content-encoding").is_some();
        assert_eq!(verified.payload.is_streaming(), streaming, "{}", c.title);
        if streaming {
            assert!(
                matches!(verified.payload, Payload::StreamingUnsignedTrailer),
                "{}",
                c.title
            );
        }
    }
}

#[test]
fn every_boto3_capture_fails_after_any_single_change() {
    for c in load_captures() {
        let req = c.request();
        let now = c.now();
        for i in 0..c.path.len() {
            let mut p = c.path.clone().into_bytes();
            p[i] = mutate(p[i]);
            let p = String::from_utf8(p).expect("ascii");
            assert!(
                verify(
                    &SignedRequest {
                        raw_path: &p,
                        ..req
                    },
                    now,
                    "s3",
                    &lookup
                )
                .is_err(),
                "{}: {p}",
                c.title
            );
        }
        if !c.query.is_empty() {
            let q = format!("{}&x=1", c.query);
            assert!(
                verify(
                    &SignedRequest {
                        raw_query: &q,
                        ..req
                    },
                    now,
                    "s3",
                    &lookup
                )
                .is_err(),
                "{}",
                c.title
            );
        }
        for name in c.signed_headers().split(';') {
            let value = c.headers[name].as_bytes().to_vec();
            for i in 0..value.len() {
                let mut v = value.clone();
                v[i] = mutate(v[i]);
                let mut changed = c.headers.clone();
                changed.insert(
                    HeaderName::from_bytes(name.as_bytes()).expect("name"),
                    HeaderValue::from_bytes(&v).expect("value"),
                );
                let r = SignedRequest {
                    headers: &changed,
                    ..req
                };
                assert!(
                    verify(&r, now, "s3", &lookup).is_err(),
                    "{}: {name} byte {i}",
                    c.title
                );
            }
        }
        let auth = c.headers["authorization"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let sig_start = auth.find("Signature=").expect("signature") + "Signature=".len();
        for i in sig_start..auth.len() {
            let mut a = auth.clone().into_bytes();
            a[i] = mutate(a[i]);
            let mut changed = c.headers.clone();
            changed.insert("authorization", HeaderValue::from_bytes(&a).expect("value"));
            let r = SignedRequest {
                headers: &changed,
                ..req
            };
            assert!(
                verify(&r, now, "s3", &lookup).is_err(),
                "{}: signature byte {i}",
                c.title
            );
        }
        assert!(
            verify(&req, now, "s3", &|_: &str| Some(Secret::new(
                "SECRETEXAMPLF"
            )))
            .is_err()
        );
    }
}
