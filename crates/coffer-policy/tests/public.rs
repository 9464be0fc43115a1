//! The public test of S3's block public access ("The meaning of public").

mod common;

use coffer_policy::{Kind, Policy, Service};
use common::{bucket_policy, doc, identity_policy};

fn public(statement: &str) -> bool {
    bucket_policy(&doc(statement)).is_public()
}

fn allow_all_with(condition: &str) -> String {
    format!(
        r#"{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*","Condition":{condition}}}"#
    )
}

#[test]
fn everyone_is_public() {
    assert!(public(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"}"#
    ));
    assert!(public(
        r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"}"#
    ));
    assert!(public(
        r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::000000000000:user/alice","*"]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"}"#
    ));
    // NotPrincipal with Allow reaches everyone else.
    assert!(public(
        r#"{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"}"#
    ));
}

#[test]
fn fixed_principals_and_denies_are_not_public() {
    assert!(!public(
        r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::000000000000:user/alice","111122223333"]},"Action":"s3:*","Resource":"arn:aws:s3:::bkt/*"}"#
    ));
    assert!(!public(
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::bkt/*"}"#
    ));
    let identity = identity_policy(&doc(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"}"#));
    assert!(!identity.is_public());
}

#[test]
fn fixed_narrowing_conditions_make_it_non_public() {
    for condition in [
        r#"{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#,
        r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}"#,
        r#"{"StringEquals":{"aws:SourceVpce":"vpce-1a2b3c4d"}}"#,
        r#"{"StringEquals":{"aws:SourceVpc":"vpc-111"}}"#,
        r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:cloudtrail:us-east-1:000000000000:trail/t"}}"#,
        r#"{"StringEquals":{"aws:SourceAccount":"000000000000"}}"#,
        r#"{"StringEquals":{"aws:SourceOwner":"000000000000"}}"#,
        r#"{"StringEquals":{"aws:PrincipalOrgID":"o-123"}}"#,
        r#"{"StringEquals":{"aws:userid":"AIDAALICE"}}"#,
        r#"{"StringEquals":{"s3:x-amz-server-side-encryption-aws-kms-key-id":"arn:aws:kms:us-east-1:000000000000:key/k"}}"#,
        // One narrowing key is enough, whatever else the block says.
        r#"{"StringEquals":{"aws:SourceVpce":"vpce-1"},"Bool":{"aws:SecureTransport":"true"}}"#,
    ] {
        assert!(!public(&allow_all_with(condition)), "{condition}");
    }
}

#[test]
fn conditions_that_do_not_narrow_stay_public() {
    for condition in [
        r#"{"Bool":{"aws:SecureTransport":"true"}}"#,
        r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#,
        r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/1"}}"#,
        r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","::/0"]}}"#,
        r#"{"NotIpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#,
        r#"{"StringLike":{"aws:SourceVpce":"vpce-*"}}"#,
        r#"{"StringNotEquals":{"aws:SourceAccount":"000000000000"}}"#,
        r#"{"StringEqualsIfExists":{"aws:SourceAccount":"000000000000"}}"#,
        r#"{"StringEquals":{"aws:userid":"${aws:username}"}}"#,
        r#"{"StringLike":{"aws:userid":"AROLEID:*"}}"#,
        r#"{"StringEquals":{"s3:prefix":"docs/"}}"#,
    ] {
        assert!(public(&allow_all_with(condition)), "{condition}");
    }
}

#[test]
fn a_public_statement_among_private_ones_makes_the_policy_public() {
    let p = bucket_policy(&doc(
        r#"{"Effect":"Allow","Principal":{"AWS":"000000000000"},"Action":"s3:*","Resource":"arn:aws:s3:::bkt/*"},
           {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/pub/*"}"#,
    ));
    assert!(p.is_public());
    let oss = Policy::parse(
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":["*"],"Action":"oss:GetObject","Resource":"acs:oss:*:*:bkt/*"}]}"#,
        Service::Oss,
        Kind::Resource,
    )
    .expect("oss policy");
    assert!(oss.is_public());
}
