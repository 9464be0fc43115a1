use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::canonical::decoded_form_query_pairs;
use crate::test_captures::{Capture, load_captures, lookup, mutate, split_path};

const NOW: OffsetDateTime = datetime!(2026-11-29 11:25:32 UTC);

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("test header name"),
            HeaderValue::from_str(value).expect("test header value"),
        );
    }
    map
}

/// Verifies a request given as a raw path (path-style addressing).
fn verify_raw(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> Result<Verified, AuthError> {
    let (bucket, key) = split_path(path).ok_or(AuthError::SignatureMismatch)?;
    let req = OssRequest {
        method,
        bucket: bucket.as_deref(),
        key: key.as_deref(),
        raw_query: query,
        headers,
    };
    verify(&req, now, &lookup)
}

fn is_presigned(c: &Capture) -> bool {
    c.query.contains("OSSAccessKeyId=")
}

/// The request time: the Date header, or a minute before `Expires`.
fn capture_now(c: &Capture) -> OffsetDateTime {
    if is_presigned(c) {
        let expires = decoded_form_query_pairs(&c.query)
            .into_iter()
            .find(|(name, _)| name == b"Expires")
            .map(|(_, value)| String::from_utf8(value).expect("ascii"))
            .expect("Expires");
        let expires: i64 = expires.parse().expect("unix seconds");
        OffsetDateTime::from_unix_timestamp(expires - 60).expect("a valid time")
    } else {
        let date = c.headers["date"].to_str().expect("ascii");
        parse_http_date(date).expect("captured Date")
    }
}

fn all_v1_captures() -> Vec<Capture> {
    let mut captures = load_captures("oss-v1");
    captures.extend(load_captures("oss-v1-presign"));
    captures
}

#[test]
fn captures_file_has_oss_v1_blocks() {
    let header = load_captures("oss-v1").len();
    let presigned = load_captures("oss-v1-presign").len();
    assert!(header >= 24, "expected 24 oss-v1 blocks, found {header}");
    assert!(
        presigned >= 2,
        "expected 2 oss-v1-presign blocks, found {presigned}"
    );
}

#[test]
fn every_v1_capture_computes_the_same_string_to_sign() {
    for c in all_v1_captures() {
        let (bucket, key) = split_path(&c.path).expect("captured path");
        let req = OssRequest {
            method: &c.method,
            bucket: bucket.as_deref(),
            key: key.as_deref(),
            raw_query: &c.query,
            headers: &c.headers,
        };
        let date = if is_presigned(&c) {
            (capture_now(&c) + Duration::seconds(60))
                .unix_timestamp()
                .to_string()
        } else {
            c.headers["date"].to_str().expect("ascii").to_owned()
        };
        assert_eq!(
            String::from_utf8_lossy(&string_to_sign(&req, &date)),
            c.canonical,
            "{}",
            c.title
        );
    }
}

#[test]
fn every_v1_capture_verifies() {
    for c in all_v1_captures() {
        let verified = verify_raw(&c.method, &c.path, &c.query, &c.headers, capture_now(&c))
            .unwrap_or_else(|e| panic!("{}: {e} ({})", c.title, e.oss_code()));
        assert_eq!(verified.access_key, "AKIDEXAMPLE");
        assert_eq!(verified.scope_region(), None);
        assert!(matches!(verified.payload, Payload::Unsigned));
        assert_eq!(verified.presigned, is_presigned(&c), "{}", c.title);
        let scheme = crate::detect(&c.headers, &c.query);
        assert_eq!(scheme, Some(verified.scheme), "{}", c.title);
        assert!(verified.scheme.is_oss());
    }
}

#[test]
fn every_v1_capture_fails_after_any_single_change() {
    for c in all_v1_captures() {
        let now = capture_now(&c);
        let fails = |path: &str, query: &str, headers: &HeaderMap| {
            verify_raw(&c.method, path, query, headers, now).is_err()
        };
        // The path: bucket and key.
        for i in 0..c.path.len() {
            let mut p = c.path.clone().into_bytes();
            p[i] = mutate(p[i]);
            let p = String::from_utf8(p).expect("ascii");
            assert!(fails(&p, &c.query, &c.headers), "{}: path {p}", c.title);
        }
        // The signed query parameters: sub-resources, Expires, the key id.
        let mut offset = 0;
        for segment in c.query.split('&') {
            let name = segment.split('=').next().unwrap_or("");
            let signed = is_subresource(name.as_bytes()) || name == "Expires";
            if signed || name == "OSSAccessKeyId" {
                for i in offset..offset + segment.len() {
                    let mut q = c.query.clone().into_bytes();
                    q[i] = mutate(q[i]);
                    let q = String::from_utf8(q).expect("ascii");
                    assert!(fails(&c.path, &q, &c.headers), "{}: query {q}", c.title);
                }
            }
            offset += segment.len() + 1;
        }
        // The signed headers.
        let names: Vec<String> = c
            .headers
            .keys()
            .map(|n| n.as_str().to_owned())
            .filter(|n| {
                n.starts_with("x-oss-") || ["content-md5", "content-type", "date"].contains(&&**n)
            })
            .collect();
        for name in names {
            let value = c.headers[name.as_str()].as_bytes().to_vec();
            for i in 0..value.len() {
                let mut v = value.clone();
                v[i] = mutate(v[i]);
                let mut changed = c.headers.clone();
                changed.insert(
                    HeaderName::from_bytes(name.as_bytes()).expect("name"),
                    HeaderValue::from_bytes(&v).expect("value"),
                );
                assert!(
                    fails(&c.path, &c.query, &changed),
                    "{}: {name} byte {i}",
                    c.title
                );
            }
        }
        // The signature.
        if is_presigned(&c) {
            let start = c.query.find("Signature=").expect("Signature") + "Signature=".len();
            let end = c.query[start..]
                .find('&')
                .map_or(c.query.len(), |e| start + e);
            for i in start..end {
                let mut q = c.query.clone().into_bytes();
                q[i] = mutate(q[i]);
                let q = String::from_utf8(q).expect("ascii");
                assert!(fails(&c.path, &q, &c.headers), "{}: {q}", c.title);
            }
        } else {
            let auth = c.headers["authorization"]
                .to_str()
                .expect("ascii")
                .to_owned();
            let start = auth.find(':').expect("OSS ak:sig") + 1;
            for i in start..auth.len() {
                let mut a = auth.clone().into_bytes();
                a[i] = mutate(a[i]);
                let mut changed = c.headers.clone();
                changed.insert("authorization", HeaderValue::from_bytes(&a).expect("value"));
                assert!(
                    fails(&c.path, &c.query, &changed),
                    "{}: signature byte {i}",
                    c.title
                );
            }
        }
        // Another secret.
        let (bucket, key) = split_path(&c.path).expect("path");
        let req = OssRequest {
            method: &c.method,
            bucket: bucket.as_deref(),
            key: key.as_deref(),
            raw_query: &c.query,
            headers: &c.headers,
        };
        let other = |_: &str| Some(Secret::new("SECRETEXAMPLF"));
        assert_eq!(
            verify(&req, now, &other).err(),
            Some(AuthError::SignatureMismatch),
            "{}",
            c.title
        );
    }
}

fn params(secret: &Secret) -> SigningParams<'_> {
    SigningParams {
        access_key: "AKIDEXAMPLE",
        secret,
        region: "",
        service: "oss",
        now: NOW,
    }
}

fn signed_put() -> HeaderMap {
    let secret = Secret::new("SECRETEXAMPLE");
    let mut map = headers(&[
        ("host", "127.0.0.1:9000"),
        ("content-type", "text/plain"),
        ("content-md5", "XrY7u+Ae7tCTyyK7j1rNww=="),
        ("x-oss-server-side-encryption", " KMS "),
        ("x-oss-meta-a", "1"),
    ]);
    sign(
        "PUT",
        Some("bkt"),
        Some("dir/a b+c.txt"),
        "uploadId=U1&partNumber=3&prefix=ignored",
        &mut map,
        &params(&secret),
    )
    .expect("sign");
    map
}

fn put_request(map: &HeaderMap) -> OssRequest<'_> {
    OssRequest {
        method: "PUT",
        bucket: Some("bkt"),
        key: Some("dir/a b+c.txt"),
        raw_query: "uploadId=U1&partNumber=3&prefix=ignored",
        headers: map,
    }
}

#[test]
fn sign_then_verify() {
    let map = signed_put();
    assert_eq!(map["date"], "Sun, 29 Nov 2026 11:25:32 GMT");
    assert!(
        map["authorization"]
            .to_str()
            .expect("ascii")
            .starts_with("OSS AKIDEXAMPLE:")
    );
    let req = put_request(&map);
    assert_eq!(
        String::from_utf8_lossy(&string_to_sign(&req, "Sun, 29 Nov 2026 11:25:32 GMT")),
        "PUT\nXrY7u+Ae7tCTyyK7j1rNww==\ntext/plain\nSun, 29 Nov 2026 11:25:32 GMT\n\
         x-oss-meta-a:1\nx-oss-server-side-encryption:KMS\n\
         /bkt/dir/a b+c.txt?partNumber=3&uploadId=U1"
    );
    let verified = verify(&req, NOW, &lookup).expect("verifies");
    assert_eq!(verified.scheme, Scheme::OssV1);
    assert!(!verified.presigned);
    assert_eq!(
        verified.signed_headers,
        [
            "content-md5",
            "content-type",
            "date",
            "x-oss-meta-a",
            "x-oss-server-side-encryption"
        ]
    );
    // Unsigned parameters may change; signed sub-resources may not.
    let other = OssRequest {
        raw_query: "uploadId=U1&partNumber=3&prefix=other&max-keys=1",
        ..req
    };
    assert!(verify(&other, NOW, &lookup).is_ok());
    for query in [
        "uploadId=U1&partNumber=4&prefix=ignored",
        "uploadId=U1&partNumber=3&acl",
        "uploadId=U1",
    ] {
        let other = OssRequest {
            raw_query: query,
            ..req
        };
        assert_eq!(
            verify(&other, NOW, &lookup).err(),
            Some(AuthError::SignatureMismatch),
            "{query}"
        );
    }
    // A bucket from a virtual host signs the same as one from the path.
    let no_key = OssRequest { key: None, ..req };
    assert!(verify(&no_key, NOW, &lookup).is_err());
    // An added x-oss-* header is signed.
    let mut added = map.clone();
    added.insert("x-oss-meta-b", HeaderValue::from_static("2"));
    assert_eq!(
        verify(&put_request(&added), NOW, &lookup).err(),
        Some(AuthError::SignatureMismatch)
    );
}

#[test]
fn x_oss_date_takes_the_place_of_date() {
    let secret = Secret::new("SECRETEXAMPLE");
    let mut map = headers(&[("x-oss-date", "Sun, 29 Nov 2026 11:20:00 GMT")]);
    sign("GET", None, None, "", &mut map, &params(&secret)).expect("sign");
    let req = OssRequest {
        method: "GET",
        bucket: None,
        key: None,
        raw_query: "",
        headers: &map,
    };
    let verified = verify(&req, NOW, &lookup).expect("verifies");
    assert!(verified.signed_headers.contains(&"x-oss-date".to_owned()));
    // The skew is measured from x-oss-date, not Date.
    assert_eq!(
        verify(&req, NOW + Duration::minutes(11), &lookup).err(),
        Some(AuthError::TimeTooSkewed)
    );
}

#[test]
fn skew_unknown_key_and_missing_date() {
    let map = signed_put();
    let req = put_request(&map);
    for ok in [Duration::minutes(15), Duration::minutes(-15)] {
        assert!(verify(&req, NOW + ok, &lookup).is_ok());
    }
    for late in [Duration::minutes(16), Duration::minutes(-16)] {
        let err = verify(&req, NOW + late, &lookup).expect_err("skewed");
        assert_eq!(err, AuthError::TimeTooSkewed);
        assert_eq!(err.oss_code(), "RequestTimeTooSkewed");
    }
    let nobody = |_: &str| None;
    let err = verify(&req, NOW, &nobody).expect_err("unknown key");
    assert_eq!(err.oss_code(), "InvalidAccessKeyId");
    let mut no_date = map.clone();
    no_date.remove("date");
    let err = verify(&put_request(&no_date), NOW, &lookup).expect_err("no date");
    assert_eq!(err.oss_code(), "AccessDenied");
    let mut bad_date = map.clone();
    bad_date.insert("date", HeaderValue::from_static("yesterday"));
    assert!(matches!(
        verify(&put_request(&bad_date), NOW, &lookup),
        Err(AuthError::AccessDenied(_))
    ));
}

#[test]
fn presign_then_verify_and_expire() {
    let secret = Secret::new("SECRETEXAMPLE");
    let map = headers(&[("host", "127.0.0.1:9000")]);
    let query = presign(
        "GET",
        Some("bkt"),
        Some("v2/x y/z.txt"),
        "response-content-type=text%2Fplain",
        &map,
        600,
        &params(&secret),
    )
    .expect("presign");
    assert!(
        query.starts_with("response-content-type=text%2Fplain&OSSAccessKeyId=AKIDEXAMPLE&Expires=")
    );
    let req = OssRequest {
        method: "GET",
        bucket: Some("bkt"),
        key: Some("v2/x y/z.txt"),
        raw_query: &query,
        headers: &map,
    };
    let verified = verify(&req, NOW, &lookup).expect("verifies");
    assert!(verified.presigned);
    assert_eq!(verified.scheme, Scheme::OssV1Presigned);
    assert!(verify(&req, NOW + Duration::seconds(600), &lookup).is_ok());
    let err = verify(&req, NOW + Duration::seconds(601), &lookup).expect_err("expired");
    assert_eq!(err, AuthError::Expired);
    assert_eq!(
        (err.oss_code(), err.to_string().as_str()),
        ("AccessDenied", "Request has expired")
    );
    // A signed sub-resource cannot be changed.
    let changed = query.replace("text%2Fplain", "text%2Fhtml");
    let other = OssRequest {
        raw_query: &changed,
        ..req
    };
    assert_eq!(
        verify(&other, NOW, &lookup).err(),
        Some(AuthError::SignatureMismatch)
    );
}

#[test]
fn malformed_credentials() {
    let map = signed_put();
    let req = put_request(&map);
    let with_auth = |value: &str| {
        let mut changed = map.clone();
        changed.insert(
            "authorization",
            HeaderValue::from_str(value).expect("test value"),
        );
        changed
    };
    for bad in [
        "OSS",
        "OSS ",
        "OSS AKIDEXAMPLE",
        "OSS :sig",
        "OSSAKIDEXAMPLE:x",
        "OSS a b:c",
    ] {
        let changed = with_auth(bad);
        let err = verify(&put_request(&changed), NOW, &lookup).expect_err(bad);
        assert!(
            matches!(err, AuthError::HeaderMalformed(_)),
            "{bad}: {err:?}"
        );
        assert_eq!(err.oss_code(), "InvalidArgument");
    }
    for wrong in [
        "OSS AKIDEXAMPLE:!!!",
        "OSS AKIDEXAMPLE:",
        "OSS AKIDEXAMPLE:AAAA",
    ] {
        let changed = with_auth(wrong);
        assert_eq!(
            verify(&put_request(&changed), NOW, &lookup).err(),
            Some(AuthError::SignatureMismatch),
            "{wrong}"
        );
    }
    let mut twice = map.clone();
    twice.append("authorization", HeaderValue::from_static("OSS a:b"));
    assert!(matches!(
        verify(&put_request(&twice), NOW, &lookup),
        Err(AuthError::HeaderMalformed(_))
    ));
    let mixed = OssRequest {
        raw_query: "OSSAccessKeyId=AKIDEXAMPLE&Expires=1&Signature=x",
        ..req
    };
    assert!(matches!(
        verify(&mixed, NOW, &lookup),
        Err(AuthError::InvalidArgument(_))
    ));
    let empty = HeaderMap::new();
    let anonymous = OssRequest {
        headers: &empty,
        raw_query: "",
        ..req
    };
    assert_eq!(
        verify(&anonymous, NOW, &lookup).err(),
        Some(AuthError::Missing)
    );
    for query in [
        "OSSAccessKeyId=AKIDEXAMPLE&Expires=1795951593",
        "OSSAccessKeyId=AKIDEXAMPLE&Expires=soon&Signature=x",
        "OSSAccessKeyId=AKIDEXAMPLE&Expires=-1&Signature=x",
        "OSSAccessKeyId=&Expires=1795951593&Signature=x",
        "OSSAccessKeyId=A&OSSAccessKeyId=B&Expires=1795951593&Signature=x",
    ] {
        let presigned = OssRequest {
            headers: &empty,
            raw_query: query,
            ..req
        };
        let err = verify(&presigned, NOW, &lookup).expect_err(query);
        assert!(
            matches!(err, AuthError::QueryMalformed(_)),
            "{query}: {err:?}"
        );
    }
}

proptest! {
    #[test]
    fn random_authorization_never_panics(
        prefix in prop::sample::select(vec!["", "OSS ", "OSS", "OSS4-HMAC-SHA256 "]),
        value in "[ -~]{0,80}",
        query in "[ -~]{0,60}",
    ) {
        let map = signed_put();
        let mut changed = map.clone();
        if let Ok(value) = HeaderValue::from_str(&format!("{prefix}{value}")) {
            changed.insert("authorization", value);
        }
        let req = OssRequest { raw_query: &query, ..put_request(&changed) };
        let _ = verify(&req, NOW, &lookup);
        let _ = crate::detect(&changed, &query);
        let mut no_auth = map.clone();
        no_auth.remove("authorization");
        let presigned = OssRequest {
            raw_query: &format!("OSSAccessKeyId=AKIDEXAMPLE&{query}"),
            ..put_request(&no_auth)
        };
        let _ = verify(&presigned, NOW, &lookup);
    }
}
