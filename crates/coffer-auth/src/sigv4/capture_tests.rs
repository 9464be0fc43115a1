//! Every `aws-v4` block of the boto3 wire captures in
//! `shared/vectors/sdk-captures.txt` must verify, and fail once changed.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::*;
use crate::canonical::canonical_query_string;

const CAPTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/sdk-captures.txt"
);

struct Capture {
    title: String,
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    /// The canonical request the capturing server computed.
    canonical: String,
}

/// Undoes Python's `repr()` of a str: `'…'` with `\n`, `\\`, `\'`, `\xNN`.
fn unrepr(s: &str) -> String {
    let inner = s
        .trim()
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .expect("a quoted repr");
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(char::from(
                    u8::from_str_radix(&hex, 16).expect("\\x escape"),
                ));
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn load_captures() -> Vec<Capture> {
    let text = std::fs::read_to_string(CAPTURES).unwrap_or_else(|e| {
        panic!("cannot read the SDK captures at {CAPTURES}: {e}. The repository must sit beside `shared/`.")
    });
    let mut captures = Vec::new();
    for block in text.split("\n=====").skip(1) {
        let mut lines = block.lines();
        let title = lines.next().expect("block title").trim().to_owned();
        let tokens: Vec<&str> = title.split_whitespace().collect();
        if tokens.first() != Some(&"aws-v4") {
            continue;
        }
        let (method, target) = (tokens[2].to_owned(), tokens[3]);
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut headers = HeaderMap::new();
        let mut canonical = None;
        for line in lines {
            let line = line.trim_start();
            if let Some(rest) = line.strip_prefix("CANONICAL/STRING-TO-SIGN (server-computed):") {
                canonical = Some(unrepr(rest));
                continue;
            }
            if line.starts_with("BODY(head):") || line.starts_with("AWS-CHUNKED:") {
                continue;
            }
            let Some((name, value)) = line.split_once(": ") else {
                continue;
            };
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("captured header name"),
                HeaderValue::from_str(value).expect("captured header value"),
            );
        }
        captures.push(Capture {
            title: title.clone(),
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            canonical: canonical.unwrap_or_else(|| panic!("no canonical request in {title}")),
        });
    }
    captures
}

fn lookup(access_key: &str) -> Option<Secret> {
    (access_key == "AKIDEXAMPLE").then(|| Secret::new("SECRETEXAMPLE"))
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

fn mutate(b: u8) -> u8 {
    match b {
        b'z' | b'Z' | b'9' => b - 1,
        b if b.is_ascii_alphanumeric() => b + 1,
        _ => b'X',
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
