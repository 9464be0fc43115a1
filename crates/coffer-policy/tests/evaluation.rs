//! Evaluation of whole statements: principals, actions, resources, NotX forms, deny-wins.

mod common;

use coffer_policy::{Caller, Context, Evaluation, Request, StatementRef};
use common::*;

const OBJ: &str = "arn:aws:s3:::bkt/docs/a.txt";

#[test]
fn public_read_allows_everyone_including_anonymous() {
    let p = bucket_policy(&doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"}"#,
    ));
    let none = Context::new();
    assert_eq!(
        decide(&p, Caller::Anonymous, "s3:GetObject", OBJ, &none),
        "Allow"
    );
    assert_eq!(decide(&p, alice(), "s3:GetObject", OBJ, &none), "Allow");
    assert_eq!(
        decide(&p, alice(), "s3:PutObject", OBJ, &none),
        "NotApplicable"
    );
    assert_eq!(
        decide(&p, alice(), "s3:GetObject", "arn:aws:s3:::other/x", &none),
        "NotApplicable"
    );
    // The bucket ARN itself is not an object of the bucket.
    assert_eq!(
        decide(&p, alice(), "s3:GetObject", "arn:aws:s3:::bkt", &none),
        "NotApplicable"
    );
}

#[test]
fn principals_by_arn_account_and_aws_star() {
    let p = bucket_policy(&doc(
        r#"{"Sid":"Alice","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":"s3:*","Resource":"arn:aws:s3:::bkt/*"},
           {"Sid":"Account","Effect":"Allow","Principal":{"AWS":["111122223333"]},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::bkt"},
           {"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"s3:GetBucketPolicy","Resource":"arn:aws:s3:::bkt"}"#,
    ));
    let none = Context::new();
    assert_eq!(decide(&p, alice(), "s3:PutObject", OBJ, &none), "Allow");
    assert_eq!(
        decide(&p, bob(), "s3:PutObject", OBJ, &none),
        "NotApplicable"
    );
    assert_eq!(
        decide(&p, Caller::Anonymous, "s3:PutObject", OBJ, &none),
        "NotApplicable"
    );
    assert_eq!(
        decide(&p, stranger(), "s3:ListBucket", "arn:aws:s3:::bkt", &none),
        "Allow"
    );
    assert_eq!(
        decide(&p, alice(), "s3:ListBucket", "arn:aws:s3:::bkt", &none),
        "NotApplicable"
    );
    // The account principal names every principal of the account, users included.
    assert_eq!(
        decide(&p, bob(), "s3:GetBucketPolicy", "arn:aws:s3:::bkt", &none),
        "Allow"
    );
    assert_eq!(
        decide(&p, root(), "s3:GetBucketPolicy", "arn:aws:s3:::bkt", &none),
        "Allow"
    );
    let star = bucket_policy(&doc(
        r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"}"#,
    ));
    assert_eq!(
        decide(&star, Caller::Anonymous, "s3:GetObject", OBJ, &none),
        "Allow"
    );
}

#[test]
fn explicit_deny_wins_and_is_reported() {
    let p = bucket_policy(&doc(
        r#"{"Sid":"Read","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"},
           {"Sid":"NoSecrets","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::bkt/secret/*"}"#,
    ));
    let none = Context::new();
    let request = Request {
        caller: alice(),
        action: "s3:GetObject",
        resource: "arn:aws:s3:::bkt/secret/k",
        context: &none,
    };
    assert_eq!(
        p.evaluate(&request),
        Evaluation::Deny(StatementRef {
            index: 1,
            sid: Some("NoSecrets".into())
        })
    );
    let request = Request {
        resource: OBJ,
        ..request
    };
    assert_eq!(
        p.evaluate(&request),
        Evaluation::Allow(StatementRef {
            index: 0,
            sid: Some("Read".into())
        })
    );
}

#[test]
fn actions_are_case_insensitive_with_wildcards() {
    let p = bucket_policy(&doc(
        r#"{"Effect":"Allow","Principal":"*","Action":["s3:get*","S3:List?ucket"],"Resource":["arn:aws:s3:::bkt","arn:aws:s3:::bkt/*"]}"#,
    ));
    let none = Context::new();
    assert_eq!(decide(&p, alice(), "s3:GetObject", OBJ, &none), "Allow");
    assert_eq!(decide(&p, alice(), "s3:GetObjectAcl", OBJ, &none), "Allow");
    assert_eq!(
        decide(&p, alice(), "s3:ListBucket", "arn:aws:s3:::bkt", &none),
        "Allow"
    );
    assert_eq!(
        decide(
            &p,
            alice(),
            "s3:ListBucketVersions",
            "arn:aws:s3:::bkt",
            &none
        ),
        "NotApplicable"
    );
    assert_eq!(
        decide(&p, alice(), "s3:PutObject", OBJ, &none),
        "NotApplicable"
    );
}

#[test]
fn resources_are_case_sensitive_with_wildcards() {
    let p = bucket_policy(&doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/docs/??.txt"}"#,
    ));
    let none = Context::new();
    assert_eq!(
        decide(
            &p,
            alice(),
            "s3:GetObject",
            "arn:aws:s3:::bkt/docs/ab.txt",
            &none
        ),
        "Allow"
    );
    assert_eq!(
        decide(
            &p,
            alice(),
            "s3:GetObject",
            "arn:aws:s3:::bkt/DOCS/ab.txt",
            &none
        ),
        "NotApplicable"
    );
    assert_eq!(
        decide(
            &p,
            alice(),
            "s3:GetObject",
            "arn:aws:s3:::bkt/docs/abc.txt",
            &none
        ),
        "NotApplicable"
    );
}
