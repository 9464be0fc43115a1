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

#[test]
fn not_principal_matches_everyone_else_including_anonymous() {
    let p = bucket_policy(&doc(
        r#"{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":"s3:*","Resource":"arn:aws:s3:::bkt/*"}"#,
    ));
    let none = Context::new();
    assert_eq!(
        decide(&p, alice(), "s3:GetObject", OBJ, &none),
        "NotApplicable"
    );
    assert_eq!(decide(&p, bob(), "s3:GetObject", OBJ, &none), "Deny");
    assert_eq!(
        decide(&p, Caller::Anonymous, "s3:GetObject", OBJ, &none),
        "Deny"
    );
    assert_eq!(decide(&p, root(), "s3:GetObject", OBJ, &none), "Deny");
}

#[test]
fn not_action_matches_every_other_action() {
    let p = bucket_policy(&doc(
        r#"{"Effect":"Deny","Principal":"*","NotAction":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::bkt","arn:aws:s3:::bkt/*"]}"#,
    ));
    let none = Context::new();
    assert_eq!(
        decide(&p, alice(), "s3:GetObject", OBJ, &none),
        "NotApplicable"
    );
    assert_eq!(decide(&p, alice(), "s3:PutObject", OBJ, &none), "Deny");
    assert_eq!(
        decide(&p, alice(), "s3:DeleteBucket", "arn:aws:s3:::bkt", &none),
        "Deny"
    );
}

#[test]
fn not_resource_matches_every_other_resource() {
    let p = bucket_policy(&doc(
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","NotResource":"arn:aws:s3:::bkt/uploads/*"}"#,
    ));
    let none = Context::new();
    assert_eq!(
        decide(
            &p,
            alice(),
            "s3:PutObject",
            "arn:aws:s3:::bkt/uploads/a",
            &none
        ),
        "NotApplicable"
    );
    assert_eq!(decide(&p, alice(), "s3:PutObject", OBJ, &none), "Deny");
}

#[test]
fn deny_wins_whatever_the_order() {
    for statements in [
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::bkt/*"},{"Effect":"Deny","Principal":{"AWS":"000000000000"},"Action":"s3:DeleteObject","Resource":"arn:aws:s3:::bkt/*"}"#,
        r#"{"Effect":"Deny","Principal":{"AWS":"000000000000"},"Action":"s3:DeleteObject","Resource":"arn:aws:s3:::bkt/*"},{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::bkt/*"}"#,
    ] {
        let p = bucket_policy(&doc(statements));
        let none = Context::new();
        assert_eq!(decide(&p, alice(), "s3:DeleteObject", OBJ, &none), "Deny");
        assert_eq!(decide(&p, alice(), "s3:PutObject", OBJ, &none), "Allow");
        assert_eq!(
            decide(&p, Caller::Anonymous, "s3:DeleteObject", OBJ, &none),
            "Allow"
        );
    }
}

#[test]
fn the_encryption_policies_people_write() {
    // "Deny PutObject unless SSE-KMS with key X" and "deny any request without TLS".
    let p = bucket_policy(&doc(
        r#"{"Sid":"RequireKms","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::bkt/*","Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption":"aws:kms"}}},
           {"Sid":"RequireKey","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::bkt/*","Condition":{"StringNotEqualsIfExists":{"s3:x-amz-server-side-encryption-aws-kms-key-id":"arn:aws:kms:us-east-1:000000000000:key/k1"}}},
           {"Sid":"RequireTls","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::bkt","arn:aws:s3:::bkt/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#,
    ));
    let put = |pairs: &[(&str, &[&str])]| decide(&p, alice(), "s3:PutObject", OBJ, &context(pairs));
    let tls = ("aws:SecureTransport", &["true"][..]);
    assert_eq!(put(&[tls]), "Deny", "no SSE header");
    assert_eq!(
        put(&[tls, ("s3:x-amz-server-side-encryption", &["AES256"])]),
        "Deny"
    );
    // A missing key id: IfExists makes the negated test true, so the Deny applies.
    assert_eq!(
        put(&[tls, ("s3:x-amz-server-side-encryption", &["aws:kms"])]),
        "Deny"
    );
    assert_eq!(
        put(&[
            tls,
            ("s3:x-amz-server-side-encryption", &["aws:kms"]),
            (
                "s3:x-amz-server-side-encryption-aws-kms-key-id",
                &["arn:aws:kms:us-east-1:000000000000:key/k1"]
            ),
        ]),
        "NotApplicable"
    );
    assert_eq!(
        put(&[
            tls,
            ("s3:x-amz-server-side-encryption", &["aws:kms"]),
            (
                "s3:x-amz-server-side-encryption-aws-kms-key-id",
                &["arn:aws:kms:us-east-1:000000000000:key/k2"]
            ),
        ]),
        "Deny"
    );
    assert_eq!(
        put(&[
            ("aws:SecureTransport", &["false"]),
            ("s3:x-amz-server-side-encryption", &["aws:kms"]),
        ]),
        "Deny"
    );
}

#[test]
fn policy_variables_in_resources() {
    let p = identity_policy(&doc(
        r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::bkt/home/${aws:username}/*"}"#,
    ));
    let none = Context::new();
    assert_eq!(
        decide(
            &p,
            alice(),
            "s3:PutObject",
            "arn:aws:s3:::bkt/home/alice/x",
            &none
        ),
        "Allow"
    );
    assert_eq!(
        decide(
            &p,
            alice(),
            "s3:PutObject",
            "arn:aws:s3:::bkt/home/bob/x",
            &none
        ),
        "NotApplicable"
    );
    // No user name (anonymous): the resource matches nothing.
    assert_eq!(
        decide(
            &p,
            Caller::Anonymous,
            "s3:PutObject",
            "arn:aws:s3:::bkt/home//x",
            &none
        ),
        "NotApplicable"
    );
    // The context's value wins over the caller's.
    let ctx = context(&[("aws:username", &["carol"])]);
    assert_eq!(
        decide(
            &p,
            alice(),
            "s3:PutObject",
            "arn:aws:s3:::bkt/home/carol/x",
            &ctx
        ),
        "Allow"
    );
    // Without Version the variable is literal text.
    let old = identity_policy(
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::bkt/home/${aws:username}/*"}]}"#,
    );
    assert_eq!(
        decide(
            &old,
            alice(),
            "s3:PutObject",
            "arn:aws:s3:::bkt/home/alice/x",
            &none
        ),
        "NotApplicable"
    );
    assert_eq!(
        decide(
            &old,
            alice(),
            "s3:PutObject",
            "arn:aws:s3:::bkt/home/${aws:username}/x",
            &none
        ),
        "Allow"
    );
}

#[test]
fn identity_policies_apply_to_their_user() {
    let p = identity_policy(&doc(
        r#"{"Effect":"Allow","Action":["s3:GetObject","kms:Decrypt"],"Resource":["arn:aws:s3:::bkt/*","arn:aws:kms:*:000000000000:key/*"]},
           {"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}"#,
    ));
    let none = Context::new();
    assert_eq!(decide(&p, alice(), "s3:GetObject", OBJ, &none), "Allow");
    assert_eq!(
        decide(
            &p,
            alice(),
            "kms:Decrypt",
            "arn:aws:kms:us-east-1:000000000000:key/1234",
            &none
        ),
        "Allow"
    );
    assert_eq!(decide(&p, alice(), "s3:DeleteObject", OBJ, &none), "Deny");
    assert_eq!(
        decide(&p, alice(), "s3:PutObject", OBJ, &none),
        "NotApplicable"
    );
}

#[test]
fn kms_key_policy_without_resource_covers_the_key() {
    let p = coffer_policy::Policy::parse(
        &doc(
            r#"{"Sid":"Use","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*"]},
               {"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"000000000000"},"Action":"kms:Describe*","Resource":"*"}"#,
        ),
        coffer_policy::Service::Kms,
        coffer_policy::Kind::Resource,
    )
    .expect("key policy");
    let key = "arn:aws:kms:us-east-1:000000000000:key/1234";
    let none = Context::new();
    assert_eq!(
        decide(
            &p,
            alice(),
            "kms:GenerateDataKeyWithoutPlaintext",
            key,
            &none
        ),
        "Allow"
    );
    assert_eq!(
        decide(&p, bob(), "kms:Decrypt", key, &none),
        "NotApplicable"
    );
    assert_eq!(decide(&p, bob(), "kms:DescribeKey", key, &none), "Allow");
    assert_eq!(
        decide(&p, stranger(), "kms:DescribeKey", key, &none),
        "NotApplicable"
    );
}
