//! OSS documents: `oss:` actions, `acs:oss` resources, `acs:`/`oss:` condition keys and OSS
//! principals are translated to S3 terms when parsed; `to_json` gives back the OSS form.

mod common;

use coffer_policy::{Caller, Context, Kind, Policy, Service};
use common::*;

fn oss_policy(json: &str) -> Policy {
    Policy::parse(json, Service::Oss, Kind::Resource).unwrap_or_else(|e| panic!("{e}: {json}"))
}

#[test]
fn a_typical_oss_bucket_policy() {
    let json = r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":["*"],"Action":["oss:GetObject","oss:ListObjects"],"Resource":["acs:oss:*:000000000000:bkt","acs:oss:*:000000000000:bkt/*"],"Condition":{"IpAddress":{"acs:SourceIp":["192.0.2.0/24"]},"StringLike":{"oss:Prefix":["docs/*"]}}}]}"#;
    // OSS writes Version "1".
    let p = oss_policy(json);
    let ctx = context(&[("aws:SourceIp", &["192.0.2.5"]), ("s3:prefix", &["docs/a"])]);
    assert_eq!(
        decide(
            &p,
            Caller::Anonymous,
            "s3:ListBucket",
            "arn:aws:s3:::bkt",
            &ctx
        ),
        "Allow"
    );
    assert_eq!(
        decide(
            &p,
            Caller::Anonymous,
            "s3:GetObject",
            "arn:aws:s3:::bkt/docs/a",
            &ctx
        ),
        "Allow"
    );
    assert_eq!(
        decide(
            &p,
            Caller::Anonymous,
            "s3:PutObject",
            "arn:aws:s3:::bkt/docs/a",
            &ctx
        ),
        "NotApplicable"
    );
    let elsewhere = context(&[
        ("aws:SourceIp", &["198.51.100.1"]),
        ("s3:prefix", &["docs/a"]),
    ]);
    assert_eq!(
        decide(
            &p,
            Caller::Anonymous,
            "s3:ListBucket",
            "arn:aws:s3:::bkt",
            &elsewhere
        ),
        "NotApplicable"
    );
    assert!(!p.is_public(), "narrowed by acs:SourceIp");
    assert!(p.check_bucket("bkt").is_ok());
    assert!(p.check_bucket("other").is_err());
    // Re-serialised in OSS terms: parses again as an OSS document.
    let again = oss_policy(&p.to_json());
    assert_eq!(again, p);
}

#[test]
fn oss_principals() {
    let p = oss_policy(
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":["alice","acs:ram::000000000000:user/bob","111122223333"],"Action":"oss:PutObject","Resource":"acs:oss:*:*:bkt/*"}]}"#,
    );
    let none = Context::new();
    let obj = "arn:aws:s3:::bkt/k";
    assert_eq!(decide(&p, alice(), "s3:PutObject", obj, &none), "Allow");
    assert_eq!(decide(&p, bob(), "s3:PutObject", obj, &none), "Allow");
    assert_eq!(decide(&p, stranger(), "s3:PutObject", obj, &none), "Allow");
    assert_eq!(
        decide(&p, root(), "s3:PutObject", obj, &none),
        "NotApplicable"
    );
    assert_eq!(
        decide(&p, Caller::Anonymous, "s3:PutObject", obj, &none),
        "NotApplicable"
    );
    // Multipart and copy are PutObject in S3 terms.
    let mp = oss_policy(
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":["alice"],"Action":"oss:InitiateMultipartUpload","Resource":"acs:oss:*:*:bkt/*"}]}"#,
    );
    assert_eq!(decide(&mp, alice(), "s3:PutObject", obj, &none), "Allow");
}

#[test]
fn oss_conditions_translate() {
    let p = oss_policy(
        r#"{"Version":"1","Statement":[{"Effect":"Deny","Principal":["*"],"Action":"oss:*","Resource":"acs:oss:*:*:bkt/*","Condition":{"Bool":{"acs:SecureTransport":"false"}}}]}"#,
    );
    let http = context(&[("aws:SecureTransport", &["false"])]);
    let https = context(&[("aws:SecureTransport", &["true"])]);
    assert_eq!(
        decide(&p, alice(), "s3:GetObject", "arn:aws:s3:::bkt/k", &http),
        "Deny"
    );
    assert_eq!(
        decide(&p, alice(), "s3:GetObject", "arn:aws:s3:::bkt/k", &https),
        "NotApplicable"
    );
}

#[test]
fn oss_refusals() {
    let refuse = |json: &str| refusal(json, Service::Oss, Kind::Resource);
    let base = |action: &str, resource: &str| {
        format!(
            r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Principal":["*"],"Action":"{action}","Resource":"{resource}"}}]}}"#
        )
    };
    assert!(
        refuse(&base("oss:GetObjekt", "acs:oss:*:*:bkt/*"))
            .starts_with("Policy has invalid action")
    );
    assert!(
        refuse(&base("s3:GetObject", "acs:oss:*:*:bkt/*")).starts_with("Policy has invalid action")
    );
    assert!(
        refuse(&base("oss:GetObject", "arn:aws:s3:::bkt/*"))
            .starts_with("Policy has invalid resource")
    );
    assert!(
        refuse(&base("oss:GetObject", "acs:oss:*:notanaccount:bkt/*"))
            .starts_with("Policy has invalid resource")
    );
    let key = r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":["*"],"Action":"oss:GetObject","Resource":"acs:oss:*:*:bkt/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#;
    assert!(refuse(key).starts_with("Policy has an invalid condition key"));
}
