//! Policies as the Amazon S3 user guide writes them ("Bucket policy examples using condition
//! keys", "Policy evaluation logic"), with the decisions AWS documents for them.

mod common;

use coffer_policy::Caller;
use common::*;

const OBJ: &str = "arn:aws:s3:::bkt/k";
const BUCKET: &str = "arn:aws:s3:::bkt";

#[test]
fn grant_put_only_with_bucket_owner_full_control() {
    let p = bucket_policy(&doc(
        r#"{"Sid":"AllowPut","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/eve"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::bkt/*","Condition":{"StringEquals":{"s3:x-amz-acl":"bucket-owner-full-control"}}}"#,
    ));
    let put = |acl: &[&str]| {
        let pairs: Vec<(&str, &[&str])> = if acl.is_empty() {
            vec![]
        } else {
            vec![("s3:x-amz-acl", acl)]
        };
        decide(&p, stranger(), "s3:PutObject", OBJ, &context(&pairs))
    };
    assert_eq!(put(&["bucket-owner-full-control"]), "Allow");
    assert_eq!(put(&["public-read"]), "NotApplicable");
    assert_eq!(put(&[]), "NotApplicable");
}

#[test]
fn list_only_a_home_prefix_with_a_delimiter() {
    let p = identity_policy(&doc(
        r#"{"Sid":"ListHome","Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::bkt","Condition":{"StringEquals":{"s3:prefix":["","home/","home/${aws:username}/"],"s3:delimiter":["/"]}}},
           {"Sid":"ListOwnTree","Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::bkt","Condition":{"StringLike":{"s3:prefix":["home/${aws:username}/*"]}}},
           {"Sid":"OwnObjects","Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::bkt/home/${aws:username}/*"}"#,
    ));
    let list = |prefix: &str, delimiter: Option<&str>| {
        let mut pairs: Vec<(&str, &[&str])> = Vec::new();
        let prefix = [prefix];
        pairs.push(("s3:prefix", &prefix));
        let delimiter_values;
        if let Some(d) = delimiter {
            delimiter_values = [d];
            pairs.push(("s3:delimiter", &delimiter_values));
        }
        decide(&p, alice(), "s3:ListBucket", BUCKET, &context(&pairs))
    };
    assert_eq!(list("", Some("/")), "Allow");
    assert_eq!(list("home/", Some("/")), "Allow");
    assert_eq!(list("home/alice/", Some("/")), "Allow");
    assert_eq!(list("home/alice/photos/", None), "Allow");
    assert_eq!(list("home/", None), "NotApplicable");
    assert_eq!(list("home/bob/", Some("/")), "NotApplicable");
    assert_eq!(
        decide(
            &p,
            alice(),
            "s3:GetObject",
            "arn:aws:s3:::bkt/home/alice/a.txt",
            &context(&[])
        ),
        "Allow"
    );
    assert_eq!(
        decide(
            &p,
            bob(),
            "s3:GetObject",
            "arn:aws:s3:::bkt/home/alice/a.txt",
            &context(&[])
        ),
        "NotApplicable"
    );
}

#[test]
fn limit_max_keys() {
    let p = bucket_policy(&doc(
        r#"{"Effect":"Allow","Principal":{"AWS":"000000000000"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::bkt","Condition":{"NumericLessThanEquals":{"s3:max-keys":"10"}}}"#,
    ));
    let list = |keys: &str| {
        decide(
            &p,
            bob(),
            "s3:ListBucket",
            BUCKET,
            &context(&[("s3:max-keys", &[keys])]),
        )
    };
    assert_eq!(list("10"), "Allow");
    assert_eq!(list("3"), "Allow");
    assert_eq!(list("11"), "NotApplicable");
    // No max-keys: the key is missing and the positive operator is false.
    assert_eq!(
        decide(&p, bob(), "s3:ListBucket", BUCKET, &context(&[])),
        "NotApplicable"
    );
}

#[test]
fn read_only_objects_tagged_public() {
    let p = bucket_policy(&doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*","Condition":{"StringEquals":{"s3:ExistingObjectTag/classification":"public"}}}"#,
    ));
    let get = |pairs: &[(&str, &[&str])]| {
        decide(&p, Caller::Anonymous, "s3:GetObject", OBJ, &context(pairs))
    };
    assert_eq!(
        get(&[("s3:ExistingObjectTag/classification", &["public"])]),
        "Allow"
    );
    assert_eq!(
        get(&[("s3:ExistingObjectTag/classification", &["secret"])]),
        "NotApplicable"
    );
    assert_eq!(get(&[]), "NotApplicable");
}

#[test]
fn uploads_only_with_allowed_tag_keys() {
    // ForAllValues alone lets an untagged upload through; the Null check closes that.
    let p = bucket_policy(&doc(
        r#"{"Effect":"Allow","Principal":{"AWS":"000000000000"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::bkt/*","Condition":{"ForAllValues:StringEquals":{"s3:RequestObjectTagKeys":["Owner","CreationDate"]},"Null":{"s3:RequestObjectTagKeys":"false"}}}"#,
    ));
    let put = |keys: &[&str]| {
        let pairs: Vec<(&str, &[&str])> = if keys.is_empty() {
            vec![]
        } else {
            vec![("s3:RequestObjectTagKeys", keys)]
        };
        decide(&p, alice(), "s3:PutObject", OBJ, &context(&pairs))
    };
    assert_eq!(put(&["Owner"]), "Allow");
    assert_eq!(put(&["Owner", "CreationDate"]), "Allow");
    assert_eq!(put(&["Owner", "Project"]), "NotApplicable");
    assert_eq!(put(&[]), "NotApplicable");
}

#[test]
fn deny_without_mfa_and_outside_an_ip_range() {
    let p = bucket_policy(&doc(
        r#"{"Sid":"RequireMfa","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::bkt/taxdocuments/*","Condition":{"Null":{"aws:MultiFactorAuthAge":true}}},
           {"Sid":"OfficeOnly","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::bkt","arn:aws:s3:::bkt/*"],"Condition":{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","2001:DB8:1234:5678::/64"]}}},
           {"Sid":"Read","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"}"#,
    ));
    let get = |key: &str, pairs: &[(&str, &[&str])]| {
        decide(
            &p,
            alice(),
            "s3:GetObject",
            &format!("arn:aws:s3:::bkt/{key}"),
            &context(pairs),
        )
    };
    let office = ("aws:SourceIp", &["192.0.2.44"][..]);
    let office6 = ("aws:SourceIp", &["2001:db8:1234:5678::9"][..]);
    let home = ("aws:SourceIp", &["198.51.100.7"][..]);
    assert_eq!(get("a", &[office]), "Allow");
    assert_eq!(get("a", &[office6]), "Allow");
    assert_eq!(get("a", &[home]), "Deny");
    assert_eq!(get("taxdocuments/2025.pdf", &[office]), "Deny");
    assert_eq!(
        get(
            "taxdocuments/2025.pdf",
            &[office, ("aws:MultiFactorAuthAge", &["30"])]
        ),
        "Allow"
    );
}

#[test]
fn deny_unencrypted_uploads_two_ways() {
    // The user guide's pair: a wrong header, or no header at all (Null).
    let p = bucket_policy(&doc(
        r#"{"Sid":"DenyIncorrectEncryptionHeader","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::bkt/*","Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption":"AES256"}}},
           {"Sid":"DenyUnEncryptedObjectUploads","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::bkt/*","Condition":{"Null":{"s3:x-amz-server-side-encryption":"true"}}}"#,
    ));
    let put = |pairs: &[(&str, &[&str])]| decide(&p, alice(), "s3:PutObject", OBJ, &context(pairs));
    assert_eq!(
        put(&[("s3:x-amz-server-side-encryption", &["AES256"])]),
        "NotApplicable"
    );
    assert_eq!(
        put(&[("s3:x-amz-server-side-encryption", &["aws:kms"])]),
        "Deny"
    );
    assert_eq!(put(&[]), "Deny");
}

#[test]
fn time_window() {
    let p = bucket_policy(&doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2026-12-31T23:59:59Z"}}}"#,
    ));
    let at = |time: &str| {
        decide(
            &p,
            Caller::Anonymous,
            "s3:GetObject",
            OBJ,
            &context(&[("aws:CurrentTime", &[time])]),
        )
    };
    assert_eq!(at("2026-06-15T08:00:00Z"), "Allow");
    assert_eq!(at("2025-12-31T23:59:59Z"), "NotApplicable");
    assert_eq!(at("2027-01-01T00:00:00Z"), "NotApplicable");
}
