//! Condition operators, one or more cases each, with AWS's documented semantics: keys in a
//! block AND, values of a key OR, a missing key fails positive operators and satisfies
//! negated ones, `…IfExists` passes a missing key, `Null` tests presence, and
//! `ForAnyValue`/`ForAllValues` over multivalued keys (empty sets included).

mod common;

use common::holds;

#[test]
fn string_equals_is_exact_and_case_sensitive() {
    let c = r#"{"StringEquals":{"s3:x-amz-server-side-encryption":"aws:kms"}}"#;
    assert!(holds(
        c,
        &[("s3:x-amz-server-side-encryption", &["aws:kms"])]
    ));
    assert!(!holds(
        c,
        &[("s3:x-amz-server-side-encryption", &["AWS:KMS"])]
    ));
    assert!(!holds(
        c,
        &[("s3:x-amz-server-side-encryption", &["AES256"])]
    ));
    assert!(!holds(c, &[]));
    // `*` is literal for StringEquals.
    let star = r#"{"StringEquals":{"s3:prefix":"a*"}}"#;
    assert!(holds(star, &[("s3:prefix", &["a*"])]));
    assert!(!holds(star, &[("s3:prefix", &["ab"])]));
}

#[test]
fn string_not_equals_and_missing_key() {
    let c = r#"{"StringNotEquals":{"s3:x-amz-server-side-encryption":"aws:kms"}}"#;
    assert!(holds(
        c,
        &[("s3:x-amz-server-side-encryption", &["AES256"])]
    ));
    assert!(!holds(
        c,
        &[("s3:x-amz-server-side-encryption", &["aws:kms"])]
    ));
    // A negated operator is true when the key is missing.
    assert!(holds(c, &[]));
}

#[test]
fn string_ignore_case_forms() {
    let eq = r#"{"StringEqualsIgnoreCase":{"aws:username":"ALICE"}}"#;
    assert!(holds(eq, &[]), "aws:username comes from the caller");
    assert!(!holds(eq, &[("aws:username", &["bob"])]));
    let ne = r#"{"StringNotEqualsIgnoreCase":{"s3:x-amz-acl":"PRIVATE"}}"#;
    assert!(!holds(ne, &[("s3:x-amz-acl", &["private"])]));
    assert!(holds(ne, &[("s3:x-amz-acl", &["public-read"])]));
    assert!(holds(ne, &[]));
}

#[test]
fn string_like_and_not_like() {
    let like = r#"{"StringLike":{"s3:prefix":["home/*","shared/?"]}}"#;
    assert!(holds(like, &[("s3:prefix", &["home/alice/x"])]));
    assert!(holds(like, &[("s3:prefix", &["shared/a"])]));
    assert!(!holds(like, &[("s3:prefix", &["shared/ab"])]));
    assert!(!holds(like, &[("s3:prefix", &["Home/x"])]));
    assert!(!holds(like, &[]));
    let not_like = r#"{"StringNotLike":{"s3:prefix":"private/*"}}"#;
    assert!(holds(not_like, &[("s3:prefix", &["public/x"])]));
    assert!(!holds(not_like, &[("s3:prefix", &["private/x"])]));
    assert!(holds(not_like, &[]));
}

#[test]
fn numeric_operators() {
    let key = "s3:max-keys";
    let cases: &[(&str, &str, bool)] = &[
        ("NumericEquals", "10", true),
        ("NumericEquals", "11", false),
        ("NumericNotEquals", "11", true),
        ("NumericNotEquals", "10", false),
        ("NumericLessThan", "11", true),
        ("NumericLessThan", "10", false),
        ("NumericLessThanEquals", "10", true),
        ("NumericLessThanEquals", "9", false),
        ("NumericGreaterThan", "9", true),
        ("NumericGreaterThan", "10", false),
        ("NumericGreaterThanEquals", "10", true),
        ("NumericGreaterThanEquals", "11", false),
    ];
    for (op, policy_value, expected) in cases {
        let c = format!(r#"{{"{op}":{{"{key}":"{policy_value}"}}}}"#);
        assert_eq!(
            holds(&c, &[(key, &["10"])]),
            *expected,
            "10 {op} {policy_value}"
        );
    }
    // JSON numbers and decimals: the TLS version policy.
    let tls = r#"{"NumericLessThan":{"s3:TlsVersion":1.3}}"#;
    assert!(holds(tls, &[("s3:TlsVersion", &["1.2"])]));
    assert!(!holds(tls, &[("s3:TlsVersion", &["1.3"])]));
    // A request value that is not a number matches nothing.
    assert!(!holds(tls, &[("s3:TlsVersion", &["new"])]));
    assert!(!holds(tls, &[]));
    assert!(holds(r#"{"NumericNotEquals":{"s3:max-keys":"5"}}"#, &[]));
}

#[test]
fn date_operators_take_iso_8601_and_epoch_seconds() {
    let key = "aws:CurrentTime";
    let now = "2026-06-01T12:00:00Z";
    let cases: &[(&str, &str, bool)] = &[
        ("DateEquals", "2026-06-01T12:00:00Z", true),
        ("DateEquals", "2026-06-01T14:00:00+02:00", true),
        ("DateEquals", "2026-06-01T12:00:01Z", false),
        ("DateNotEquals", "2026-06-01T12:00:01Z", true),
        ("DateNotEquals", "1780315200", false),
        ("DateLessThan", "2027-01-01", true),
        ("DateLessThan", "2026-06-01T12:00:00Z", false),
        ("DateLessThanEquals", "2026-06-01T12:00:00Z", true),
        ("DateLessThanEquals", "2026-01-01", false),
        ("DateGreaterThan", "2026-01-01", true),
        ("DateGreaterThan", "1780315200", false),
        ("DateGreaterThanEquals", "1780315200", true),
        ("DateGreaterThanEquals", "2027-01-01T00:00:00Z", false),
    ];
    for (op, policy_value, expected) in cases {
        let c = format!(r#"{{"{op}":{{"{key}":"{policy_value}"}}}}"#);
        assert_eq!(
            holds(&c, &[(key, &[now])]),
            *expected,
            "{now} {op} {policy_value}"
        );
    }
    // aws:EpochTime in the request, an ISO date in the policy.
    let c = r#"{"DateGreaterThan":{"aws:EpochTime":"2026-01-01T00:00:00Z"}}"#;
    assert!(holds(c, &[("aws:EpochTime", &["1780315200"])]));
    assert!(!holds(c, &[("aws:EpochTime", &["1700000000"])]));
}

#[test]
fn bool_is_case_insensitive_and_takes_json_booleans() {
    let c = r#"{"Bool":{"aws:SecureTransport":false}}"#;
    assert!(holds(c, &[("aws:SecureTransport", &["false"])]));
    assert!(holds(c, &[("aws:SecureTransport", &["FALSE"])]));
    assert!(!holds(c, &[("aws:SecureTransport", &["true"])]));
    assert!(!holds(c, &[]));
    let s = r#"{"Bool":{"aws:SecureTransport":"True"}}"#;
    assert!(holds(s, &[("aws:SecureTransport", &["true"])]));
}

#[test]
fn binary_equals_compares_base64() {
    let c = r#"{"BinaryEquals":{"s3:x-amz-content-sha256":"QmluYXJ5VmFsdWU="}}"#;
    assert!(holds(
        c,
        &[("s3:x-amz-content-sha256", &["QmluYXJ5VmFsdWU="])]
    ));
    assert!(!holds(
        c,
        &[("s3:x-amz-content-sha256", &["QmluYXJ5VmFsdWF="])]
    ));
}

#[test]
fn ip_address_and_not_ip_address() {
    let c = r#"{"IpAddress":{"aws:SourceIp":["192.0.2.0/24","2001:db8::/32","203.0.113.9"]}}"#;
    assert!(holds(c, &[("aws:SourceIp", &["192.0.2.77"])]));
    assert!(holds(c, &[("aws:SourceIp", &["2001:db8:5::1"])]));
    assert!(holds(c, &[("aws:SourceIp", &["203.0.113.9"])]));
    assert!(holds(c, &[("aws:SourceIp", &["::ffff:192.0.2.1"])]));
    assert!(!holds(c, &[("aws:SourceIp", &["192.0.3.1"])]));
    assert!(!holds(c, &[("aws:SourceIp", &["not-an-ip"])]));
    assert!(!holds(c, &[]));
    let not = r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#;
    assert!(holds(not, &[("aws:SourceIp", &["192.0.2.1"])]));
    assert!(!holds(not, &[("aws:SourceIp", &["10.1.2.3"])]));
    assert!(holds(not, &[]));
}

#[test]
fn arn_operators_match_component_by_component() {
    let key = "aws:PrincipalArn";
    let like = r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/a*"}}"#;
    assert!(holds(
        like,
        &[(key, &["arn:aws:iam::000000000000:user/alice"])]
    ));
    assert!(!holds(
        like,
        &[(key, &["arn:aws:iam::000000000000:user/bob"])]
    ));
    // The `*` in the account field does not reach across colons.
    let narrow = r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:*:user/alice"}}"#;
    assert!(!holds(
        narrow,
        &[(key, &["arn:aws:iam::000000000000:user/alice"])]
    ));
    let equals = r#"{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::000000000000:user/alice"}}"#;
    assert!(holds(equals, &[]), "aws:PrincipalArn comes from the caller");
    assert!(!holds(
        equals,
        &[(key, &["arn:aws:iam::000000000000:user/ALICE"])]
    ));
    assert!(!holds(equals, &[(key, &["not-an-arn"])]));
    let not_equals = r#"{"ArnNotEquals":{"aws:SourceArn":"arn:aws:s3:::bkt"}}"#;
    assert!(holds(
        not_equals,
        &[("aws:SourceArn", &["arn:aws:s3:::other"])]
    ));
    assert!(!holds(
        not_equals,
        &[("aws:SourceArn", &["arn:aws:s3:::bkt"])]
    ));
    assert!(holds(not_equals, &[]));
    let not_like = r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:s3:::logs-*"}}"#;
    assert!(holds(not_like, &[("aws:SourceArn", &["arn:aws:s3:::bkt"])]));
    assert!(!holds(
        not_like,
        &[("aws:SourceArn", &["arn:aws:s3:::logs-1"])]
    ));
}

#[test]
fn null_tests_presence() {
    let absent = r#"{"Null":{"s3:x-amz-server-side-encryption":"true"}}"#;
    assert!(holds(absent, &[]));
    assert!(!holds(
        absent,
        &[("s3:x-amz-server-side-encryption", &["AES256"])]
    ));
    let present = r#"{"Null":{"s3:x-amz-server-side-encryption":false}}"#;
    assert!(holds(
        present,
        &[("s3:x-amz-server-side-encryption", &["AES256"])]
    ));
    assert!(!holds(present, &[]));
    // An empty set is no value.
    assert!(holds(absent, &[("s3:x-amz-server-side-encryption", &[])]));
}

#[test]
fn if_exists_passes_a_missing_key() {
    let c = r#"{"StringEqualsIfExists":{"s3:x-amz-server-side-encryption":"aws:kms"}}"#;
    assert!(holds(c, &[]));
    assert!(holds(
        c,
        &[("s3:x-amz-server-side-encryption", &["aws:kms"])]
    ));
    assert!(!holds(
        c,
        &[("s3:x-amz-server-side-encryption", &["AES256"])]
    ));
    let n = r#"{"NumericLessThanIfExists":{"s3:max-keys":"100"}}"#;
    assert!(holds(n, &[]));
    assert!(!holds(n, &[("s3:max-keys", &["1000"])]));
    let ip = r#"{"NotIpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}"#;
    assert!(holds(ip, &[]));
    assert!(!holds(ip, &[("aws:SourceIp", &["10.0.0.1"])]));
    let b = r#"{"BoolIfExists":{"aws:MultiFactorAuthPresent":"true"}}"#;
    assert!(holds(b, &[]));
    assert!(!holds(b, &[("aws:MultiFactorAuthPresent", &["false"])]));
}

#[test]
fn keys_of_a_block_and_and_values_or() {
    let c = r#"{"StringEquals":{"s3:x-amz-server-side-encryption":"aws:kms","s3:x-amz-server-side-encryption-aws-kms-key-id":["k1","k2"]},"Bool":{"aws:SecureTransport":"true"}}"#;
    let sse = ("s3:x-amz-server-side-encryption", &["aws:kms"][..]);
    let tls = ("aws:SecureTransport", &["true"][..]);
    assert!(holds(
        c,
        &[
            sse,
            ("s3:x-amz-server-side-encryption-aws-kms-key-id", &["k2"]),
            tls
        ]
    ));
    assert!(!holds(
        c,
        &[
            sse,
            ("s3:x-amz-server-side-encryption-aws-kms-key-id", &["k3"]),
            tls
        ]
    ));
    assert!(!holds(
        c,
        &[
            sse,
            ("s3:x-amz-server-side-encryption-aws-kms-key-id", &["k1"])
        ]
    ));
}

#[test]
fn condition_keys_are_case_insensitive() {
    let c = r#"{"StringEquals":{"S3:X-AMZ-ACL":"private"}}"#;
    assert!(holds(c, &[("s3:x-amz-acl", &["private"])]));
}

#[test]
fn for_any_value() {
    let key = "s3:RequestObjectTagKeys";
    let c = r#"{"ForAnyValue:StringEquals":{"s3:RequestObjectTagKeys":["team","project"]}}"#;
    assert!(holds(c, &[(key, &["cost", "team"])]));
    assert!(!holds(c, &[(key, &["cost", "owner"])]));
    // Missing or empty: no value matches.
    assert!(!holds(c, &[]));
    assert!(!holds(c, &[(key, &[])]));
    let if_exists = r#"{"ForAnyValue:StringEqualsIfExists":{"s3:RequestObjectTagKeys":"team"}}"#;
    assert!(holds(if_exists, &[]));
    // Negated: some request value is none of the policy values.
    let not = r#"{"ForAnyValue:StringNotEquals":{"s3:RequestObjectTagKeys":["team","project"]}}"#;
    assert!(holds(not, &[(key, &["team", "cost"])]));
    assert!(!holds(not, &[(key, &["team", "project"])]));
    assert!(!holds(not, &[]));
}

#[test]
fn for_all_values() {
    let key = "s3:RequestObjectTagKeys";
    let c = r#"{"ForAllValues:StringLike":{"s3:RequestObjectTagKeys":["team","proj*"]}}"#;
    assert!(holds(c, &[(key, &["team", "project"])]));
    assert!(!holds(c, &[(key, &["team", "cost"])]));
    // Vacuously true for a missing key or an empty set (AWS's documented trap).
    assert!(holds(c, &[]));
    assert!(holds(c, &[(key, &[])]));
    let not = r#"{"ForAllValues:StringNotEquals":{"s3:RequestObjectTagKeys":["secret"]}}"#;
    assert!(holds(not, &[(key, &["team", "cost"])]));
    assert!(!holds(not, &[(key, &["team", "secret"])]));
    assert!(holds(not, &[]));
}

#[test]
fn a_multivalued_key_under_a_single_valued_operator() {
    let key = "s3:RequestObjectTagKeys";
    assert!(holds(
        r#"{"StringEquals":{"s3:RequestObjectTagKeys":"a"}}"#,
        &[(key, &["b", "a"])]
    ));
    // Negated: no request value may match.
    assert!(!holds(
        r#"{"StringNotEquals":{"s3:RequestObjectTagKeys":"a"}}"#,
        &[(key, &["b", "a"])]
    ));
}

#[test]
fn policy_variables_in_condition_values() {
    let c = r#"{"StringLike":{"s3:prefix":["home/${aws:username}/*","home/${aws:username}"]}}"#;
    assert!(holds(c, &[("s3:prefix", &["home/alice/docs"])]));
    assert!(!holds(c, &[("s3:prefix", &["home/bob/docs"])]));
    // In a document without Version (2008 semantics) the text is literal.
    let policy = common::bucket_policy(
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::bkt","Condition":{"StringEquals":{"s3:prefix":"${aws:username}"}}}]}"#,
    );
    let decide = |prefix: &str| {
        common::decide(
            &policy,
            common::alice(),
            "s3:ListBucket",
            "arn:aws:s3:::bkt",
            &common::context(&[("s3:prefix", &[prefix])]),
        )
    };
    assert_eq!(decide("alice"), "NotApplicable");
    assert_eq!(decide("${aws:username}"), "Allow");
}
