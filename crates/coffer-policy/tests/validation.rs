//! Refused documents: each refusal starts with AWS's message and names the statement and
//! field; valid documents of every shape load.

mod common;

use coffer_policy::{Kind, Policy, Service};
use common::{bucket_policy, doc, refusal};

const READ: &str =
    r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"}"#;

fn bucket_refusal(json: &str) -> String {
    refusal(json, Service::S3, Kind::Resource)
}

#[test]
fn syntax() {
    assert!(bucket_refusal("not json").starts_with("Invalid policy syntax."));
    assert!(bucket_refusal("[]").starts_with("Invalid policy syntax."));
    assert!(
        bucket_refusal(r#"{"Version":"2012-10-17"}"#)
            .starts_with("Missing required field Statement")
    );
    assert!(bucket_refusal(r#"{"Statement":[]}"#).starts_with("Invalid policy syntax."));
    assert!(bucket_refusal(r#"{"Statement":"x"}"#).starts_with("Invalid policy syntax."));
    assert!(bucket_refusal(r#"{"Statement":[1]}"#).starts_with("Invalid policy syntax."));
    assert_eq!(
        bucket_refusal(&format!(r#"{{"Statement":[{READ}],"Extra":1}}"#)),
        "Unknown field Extra"
    );
    assert!(
        bucket_refusal(&format!(
            r#"{{"Version":"2020-01-01","Statement":[{READ}]}}"#
        ))
        .starts_with("The policy must contain a valid version string")
    );
    assert!(
        bucket_refusal(&format!(r#"{{"Id":5,"Statement":[{READ}]}}"#))
            .starts_with("Invalid policy syntax.")
    );
}

#[test]
fn statement_fields() {
    let m = bucket_refusal(&doc(
        r#"{"Sid":"A","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*","Actions":"x"}"#,
    ));
    assert_eq!(m, "Unknown field Actions (statement 0 (A), Actions)");
    let m = bucket_refusal(&doc(
        r#"{"Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"}"#,
    ));
    assert_eq!(m, "Missing required field Effect (statement 0, Effect)");
    let m = bucket_refusal(&doc(
        r#"{"Effect":"Permit","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"}"#,
    ));
    assert!(m.starts_with("Invalid effect: Permit"), "{m}");
    let m = bucket_refusal(&doc(
        r#"{"Effect":"Allow","Principal":"*","Resource":"arn:aws:s3:::bkt/*"}"#,
    ));
    assert!(m.starts_with("Missing required field Action"), "{m}");
    let m = bucket_refusal(&doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}"#,
    ));
    assert!(m.starts_with("Missing required field Resource"), "{m}");
    let m = bucket_refusal(&doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","NotAction":"s3:PutObject","Resource":"arn:aws:s3:::bkt/*"}"#,
    ));
    assert!(m.starts_with("Invalid policy syntax."), "{m}");
    let m = bucket_refusal(&doc(
        r#"{"Effect":"Allow","Principal":"*","Action":[],"Resource":"arn:aws:s3:::bkt/*"}"#,
    ));
    assert!(m.starts_with("Invalid policy syntax."), "{m}");
    let with_sid = READ.replacen('{', r#"{"Sid":"S","#, 1);
    let m = bucket_refusal(&doc(&format!("{with_sid},{with_sid}")));
    assert!(
        m.starts_with("Statement IDs (SID) in a single policy must be unique"),
        "{m}"
    );
}

#[test]
fn principals() {
    let m = bucket_refusal(&doc(
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"}"#,
    ));
    assert!(m.starts_with("Missing required field Principal"), "{m}");
    for principal in [
        r#""alice""#,
        r#"{"AWS":"alice"}"#,
        r#"{"AWS":"arn:aws:iam::000000000000:user/*"}"#,
        r#"{"AWS":"arn:aws:iam::0000:user/alice"}"#,
        r#"{"Everyone":"*"}"#,
        r#"{}"#,
        r#"5"#,
    ] {
        let m = bucket_refusal(&doc(&format!(
            r#"{{"Effect":"Allow","Principal":{principal},"Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"}}"#
        )));
        assert!(
            m.starts_with("Invalid principal in policy (statement 0, Principal"),
            "{principal}: {m}"
        );
    }
    // Identity policies name no principal.
    let m = refusal(&doc(READ), Service::S3, Kind::Identity);
    assert!(
        m.starts_with("Policy document should not specify a principal"),
        "{m}"
    );
    assert!(
        Policy::parse(
            &doc(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#),
            Service::S3,
            Kind::Identity
        )
        .is_ok()
    );
    // Other AWS principal types load (and never match a Coffer caller).
    bucket_policy(&doc(
        r#"{"Effect":"Allow","Principal":{"Service":"logging.s3.amazonaws.com","CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::bkt/*"}"#,
    ));
}

#[test]
fn actions() {
    for action in [
        r#""s3:GetObjekt""#,
        r#""s3:Foo*""#,
        r#""GetObject""#,
        r#""kms:Decrypt""#,
        r#"["s3:GetObject","iam:CreateUser"]"#,
        "5",
    ] {
        let m = bucket_refusal(&doc(&format!(
            r#"{{"Effect":"Allow","Principal":"*","Action":{action},"Resource":"arn:aws:s3:::bkt/*"}}"#
        )));
        let expected = if action == "5" {
            "Invalid policy syntax."
        } else {
            "Policy has invalid action"
        };
        assert!(m.starts_with(expected), "{action}: {m}");
    }
    // Valid S3 actions Coffer does not implement still load, as on AWS.
    bucket_policy(&doc(
        r#"{"Effect":"Deny","Principal":"*","Action":["s3:PutBucketWebsite","s3:GetObjectTorrent","s3:*Replication*"],"Resource":["arn:aws:s3:::bkt","arn:aws:s3:::bkt/*"]}"#,
    ));
    // Identity policies may grant KMS use next to S3.
    Policy::parse(
        &doc(r#"{"Effect":"Allow","Action":["s3:PutObject","kms:GenerateDataKey","kms:Decrypt"],"Resource":["arn:aws:s3:::bkt/*","arn:aws:kms:us-east-1:000000000000:key/*"]}"#),
        Service::S3,
        Kind::Identity,
    )
    .expect("identity policy with KMS actions");
}

#[test]
fn resources() {
    for resource in [
        r#""bkt/*""#,
        r#""arn:aws:s3:::""#,
        r#""arn:aws:sqs:us-east-1:000000000000:q""#,
        r#""arn:aws:kms:us-east-1:000000000000:key/k""#,
    ] {
        let m = bucket_refusal(&doc(&format!(
            r#"{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":{resource}}}"#
        )));
        assert!(
            m.starts_with("Policy has invalid resource (statement 0, Resource"),
            "{resource}: {m}"
        );
    }
    // Object actions on a bucket ARN, bucket actions on object ARNs.
    for (action, resource) in [
        ("s3:PutObject", "arn:aws:s3:::bkt"),
        ("s3:ListBucket", "arn:aws:s3:::bkt/*"),
    ] {
        let m = bucket_refusal(&doc(&format!(
            r#"{{"Effect":"Allow","Principal":"*","Action":"{action}","Resource":"{resource}"}}"#
        )));
        assert!(
            m.starts_with("Action does not apply to any resource(s) in statement"),
            "{m}"
        );
    }
    // One applicable pair is enough, and wildcards may apply to either.
    bucket_policy(&doc(
        r#"{"Effect":"Allow","Principal":"*","Action":["s3:ListBucket","s3:GetObject"],"Resource":"arn:aws:s3:::bkt/*"}"#,
    ));
    bucket_policy(&doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt*"}"#,
    ));
    bucket_policy(&doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:List*","Resource":"arn:aws:s3:::bkt/*"}"#,
    ));
}

#[test]
fn check_bucket_keeps_resources_in_the_bucket() {
    let p = bucket_policy(&doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":["arn:aws:s3:::bkt/*","arn:aws:s3:::b?t/x"]}"#,
    ));
    assert!(p.check_bucket("bkt").is_ok());
    let m = p.check_bucket("other").expect_err("other bucket").message;
    assert!(m.starts_with("Policy has invalid resource"), "{m}");
    let star = bucket_policy(&doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}"#,
    ));
    assert!(star.check_bucket("bkt").is_err());
    // NotResource names what is excluded: any bucket may be named.
    let not = bucket_policy(&doc(
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","NotResource":"arn:aws:s3:::elsewhere/*"}"#,
    ));
    assert!(not.check_bucket("bkt").is_ok());
}

#[test]
fn conditions() {
    let with = |condition: &str| bucket_refusal(&common::with_condition("Allow", condition));
    let m = with(r#"{"StringEqual":{"s3:prefix":"a"}}"#);
    assert!(
        m.starts_with("Policy has an invalid condition operator"),
        "{m}"
    );
    let m = with(r#"{"StringEquals":{"s3:prefixx":"a"}}"#);
    assert!(m.starts_with("Policy has an invalid condition key (statement 0, Condition: unknown condition key \"s3:prefixx\")"), "{m}");
    let m = with(r#"{"StringEquals":{"ec2:Region":"a"}}"#);
    assert!(m.starts_with("Policy has an invalid condition key"), "{m}");
    let m = with(r#"{"StringEquals":{"kms:ViaService":"a"}}"#);
    assert!(m.starts_with("Policy has an invalid condition key"), "{m}");
    for bad in [
        r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}"#,
        r#"{"IpAddress":{"aws:SourceIp":"example.com"}}"#,
        r#"{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}"#,
        r#"{"NumericLessThan":{"s3:max-keys":"ten"}}"#,
        r#"{"Bool":{"aws:SecureTransport":"yes"}}"#,
        r#"{"Null":{"s3:prefix":"maybe"}}"#,
        r#"{"StringEquals":{"s3:prefix":{"nested":1}}}"#,
        r#"{"StringEquals":{"s3:prefix":[]}}"#,
        r#"{"StringEquals":{"s3:prefix":null}}"#,
        r#"{"StringEquals":{}}"#,
        r#"{"StringEquals":"x"}"#,
        r#"[]"#,
    ] {
        let m = with(bad);
        assert!(
            m.starts_with("Invalid policy syntax. (statement 0, Condition"),
            "{bad}: {m}"
        );
    }
    let m = with(r#"{"NullIfExists":{"s3:prefix":"true"}}"#);
    assert!(
        m.starts_with("Policy has an invalid condition operator"),
        "{m}"
    );
}

#[test]
fn every_shape_loads() {
    // Statement as a single object, no Version, Id, Sid, NotPrincipal, NotAction, NotResource.
    bucket_policy(
        r#"{"Id":"P1","Statement":{"Sid":"1","Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::000000000000:user/alice","000000000000"]},"NotAction":"s3:Get*","NotResource":"arn:aws:s3:::bkt/public/*"}}"#,
    );
    bucket_policy(
        r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"*","Resource":"arn:aws:s3:::bkt/*"}]}"#,
    );
}

#[test]
fn kms_key_policies() {
    let kms = |json: &str| Policy::parse(json, Service::Kms, Kind::Resource);
    kms(&doc(
        r#"{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kms:*","Resource":"*"}"#,
    ))
    .expect("the default key policy");
    // Resource may be left out in a key policy: the key itself.
    kms(&doc(r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*"]}"#))
        .expect("no Resource");
    let m = kms(&doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}"#,
    ))
    .expect_err("s3 action in a key policy")
    .message;
    assert!(m.starts_with("Policy has invalid action"), "{m}");
    let m = kms(&doc(r#"{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"arn:aws:s3:::bkt"}"#))
        .expect_err("s3 resource in a key policy")
        .message;
    assert!(m.starts_with("Policy has invalid resource"), "{m}");
    kms(&doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"s3.us-east-1.amazonaws.com","kms:EncryptionContext:aws:s3:arn":"arn:aws:s3:::bkt/k"}}}"#,
    ))
    .expect("kms condition keys");
}
