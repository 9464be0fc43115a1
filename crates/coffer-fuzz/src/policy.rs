//! The policy language (`coffer-policy`): any bytes as a bucket, identity, OSS or KMS key
//! policy. Whatever parses must re-serialise to a document that parses again into an equal
//! policy, with the same text when serialised once more, and that decides a fixed set of
//! requests, the public test and the bucket check exactly as the original did.

use coffer_policy::{Caller, Context, Kind, Policy, Request, Service};

const KINDS: &[(Service, Kind)] = &[
    (Service::S3, Kind::Resource),
    (Service::S3, Kind::Identity),
    (Service::Oss, Kind::Resource),
    (Service::Kms, Kind::Resource),
];

const ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    "s3:DeleteObject",
    "kms:Decrypt",
];

const RESOURCES: &[&str] = &[
    "arn:aws:s3:::bkt/k",
    "arn:aws:s3:::bkt",
    "arn:aws:s3:::bkt/home/alice/x",
    "arn:aws:kms:us-east-1:000000000000:key/k",
];

fn callers() -> [Caller<'static>; 3] {
    [
        Caller::Anonymous,
        Caller::Principal {
            arn: "arn:aws:iam::000000000000:user/alice",
            account: "000000000000",
            user_id: "AIDAALICE",
            name: "alice",
        },
        Caller::Principal {
            arn: "arn:aws:iam::000000000000:root",
            account: "000000000000",
            user_id: "000000000000",
            name: "",
        },
    ]
}

fn contexts() -> Vec<Context> {
    let mut empty = Context::new();
    empty.set_all("s3:RequestObjectTagKeys", Vec::new());
    let mut full = Context::new();
    full.set("aws:SecureTransport", "true")
        .set("aws:SourceIp", "192.0.2.10")
        .set("aws:CurrentTime", "2026-06-01T12:00:00Z")
        .set("aws:EpochTime", "1780315200")
        .set("s3:TlsVersion", "1.3")
        .set("s3:prefix", "home/alice/")
        .set("s3:max-keys", "100")
        .set("s3:x-amz-server-side-encryption", "aws:kms")
        .set_all(
            "s3:RequestObjectTagKeys",
            vec!["team".to_owned(), "cost".to_owned()],
        );
    let mut plain = Context::new();
    plain
        .set("aws:SecureTransport", "false")
        .set("aws:SourceIp", "2001:db8::1");
    vec![empty, full, plain]
}

/// Every decision of `policy` over the fixed requests.
fn decisions(policy: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    for context in &contexts() {
        for caller in callers() {
            for action in ACTIONS {
                for resource in RESOURCES {
                    let request = Request {
                        caller,
                        action,
                        resource,
                        context,
                    };
                    out.push(format!("{:?}", policy.evaluate(&request)));
                }
            }
        }
    }
    out.push(format!("public {}", policy.is_public()));
    out.push(format!("bucket {:?}", policy.check_bucket("bkt").is_ok()));
    out
}

pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for &(service, kind) in KINDS {
        let Ok(parsed) = Policy::parse(text, service, kind) else {
            continue;
        };
        let json = parsed.to_json();
        let again = Policy::parse(&json, service, kind)
            .unwrap_or_else(|e| panic!("to_json output refused ({e}): {json}"));
        assert_eq!(again.to_json(), json, "to_json is not canonical");
        assert_eq!(again, parsed, "re-parsed policy differs");
        assert_eq!(decisions(&again), decisions(&parsed), "decisions differ");
    }
}
