//! `to_json` is canonical: for generated documents, parse → to_json → parse gives an equal
//! policy that decides every generated request the same way, and serialising again gives the
//! same text.

mod common;

use coffer_policy::{Caller, Context, Kind, Policy, Request, Service};
use proptest::prelude::*;

const PRINCIPALS: &[&str] = &[
    r#""*""#,
    r#"{"AWS":"*"}"#,
    r#"{"AWS":"000000000000"}"#,
    r#"{"AWS":["arn:aws:iam::000000000000:user/alice","arn:aws:iam::111122223333:root"]}"#,
    r#"{"AWS":"arn:aws:iam::000000000000:user/bob","Service":"logging.s3.amazonaws.com"}"#,
];
const ACTIONS: &[&str] = &[
    r#""s3:GetObject""#,
    r#""s3:*""#,
    r#"["s3:Get*","s3:ListBucket"]"#,
    r#""*""#,
    r#"["s3:PutObject","s3:DeleteObject"]"#,
    r#""S3:getobject""#,
];
const RESOURCES: &[&str] = &[
    r#""arn:aws:s3:::bkt/*""#,
    r#"["arn:aws:s3:::bkt","arn:aws:s3:::bkt/*"]"#,
    r#""arn:aws:s3:::bkt/home/${aws:username}/*""#,
    r#""arn:aws:s3:::bkt/docs/??.txt""#,
    r#""*""#,
];
const CONDITIONS: &[&str] = &[
    r#""StringEquals":{"s3:x-amz-server-side-encryption":"aws:kms"}"#,
    r#""StringNotEquals":{"s3:x-amz-server-side-encryption":["aws:kms","AES256"]}"#,
    r#""StringLike":{"s3:prefix":["home/${aws:username}/*","a?"]}"#,
    r#""Bool":{"aws:SecureTransport":false}"#,
    r#""NumericLessThan":{"s3:TlsVersion":1.3}"#,
    r#""IpAddress":{"aws:SourceIp":["192.0.2.0/24","2001:db8::/32"]}"#,
    r#""NotIpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}"#,
    r#""Null":{"s3:x-amz-server-side-encryption":"true"}"#,
    r#""DateLessThan":{"aws:CurrentTime":"2026-06-01T00:00:00Z"}"#,
    r#""ForAllValues:StringEquals":{"s3:RequestObjectTagKeys":["team","cost"]}"#,
    r#""ForAnyValue:StringLike":{"s3:RequestObjectTagKeys":"t*"}"#,
    r#""ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/a*"}"#,
    r#""StringEqualsIgnoreCase":{"aws:username":"ALICE"}"#,
];

fn statement() -> impl Strategy<Value = String> {
    (
        prop::bool::ANY,
        prop::option::of(0..100u32),
        (0..PRINCIPALS.len(), prop::bool::weighted(0.2)),
        (0..ACTIONS.len(), prop::bool::weighted(0.2)),
        (0..RESOURCES.len(), prop::bool::weighted(0.2)),
        prop::collection::vec(0..CONDITIONS.len(), 0..3),
    )
        .prop_map(|(allow, sid, principal, action, resource, conditions)| {
            let mut fields = Vec::new();
            if let Some(sid) = sid {
                fields.push(format!(r#""Sid":"S{sid}""#));
            }
            fields.push(format!(
                r#""Effect":"{}""#,
                if allow { "Allow" } else { "Deny" }
            ));
            let not = |negated: bool| if negated { "Not" } else { "" };
            fields.push(format!(
                r#""{}Principal":{}"#,
                not(principal.1),
                PRINCIPALS[principal.0]
            ));
            fields.push(format!(
                r#""{}Action":{}"#,
                not(action.1),
                ACTIONS[action.0]
            ));
            fields.push(format!(
                r#""{}Resource":{}"#,
                not(resource.1),
                RESOURCES[resource.0]
            ));
            let mut conditions = conditions;
            conditions.sort_unstable();
            conditions.dedup();
            if !conditions.is_empty() {
                let block: Vec<&str> = conditions.iter().map(|i| CONDITIONS[*i]).collect();
                fields.push(format!(r#""Condition":{{{}}}"#, block.join(",")));
            }
            format!("{{{}}}", fields.join(","))
        })
}

fn document() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "",
            r#""Version":"2012-10-17","#,
            r#""Version":"2008-10-17","#,
        ]),
        prop::collection::vec(statement(), 1..4),
        prop::bool::ANY,
    )
        .prop_map(|(version, statements, single)| {
            let statement = if single && statements.len() == 1 {
                statements[0].clone()
            } else {
                format!("[{}]", statements.join(","))
            };
            format!(r#"{{{version}"Statement":{statement}}}"#)
        })
}

const CONTEXT_VALUES: &[(&str, &[&str])] = &[
    ("s3:x-amz-server-side-encryption", &["aws:kms"]),
    ("s3:x-amz-server-side-encryption", &["AES256"]),
    ("s3:prefix", &["home/alice/x"]),
    ("s3:prefix", &["ab"]),
    ("aws:SecureTransport", &["true"]),
    ("aws:SecureTransport", &["false"]),
    ("s3:TlsVersion", &["1.2"]),
    ("aws:SourceIp", &["192.0.2.9"]),
    ("aws:SourceIp", &["10.1.1.1"]),
    ("aws:CurrentTime", &["2026-01-01T00:00:00Z"]),
    ("s3:RequestObjectTagKeys", &["team"]),
    ("s3:RequestObjectTagKeys", &["team", "secret"]),
    ("s3:RequestObjectTagKeys", &[]),
];

fn request_parts() -> impl Strategy<Value = (usize, usize, usize, Vec<usize>)> {
    (
        0..5usize,
        0..4usize,
        0..5usize,
        prop::collection::vec(0..CONTEXT_VALUES.len(), 0..5),
    )
}

fn caller(i: usize) -> Caller<'static> {
    match i {
        0 => Caller::Anonymous,
        1 => common::alice(),
        2 => common::bob(),
        3 => common::root(),
        _ => common::stranger(),
    }
}

fn decisions(policy: &Policy, requests: &[(usize, usize, usize, Vec<usize>)]) -> Vec<String> {
    const ACTS: &[&str] = &[
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
        "s3:DeleteObject",
    ];
    const RES: &[&str] = &[
        "arn:aws:s3:::bkt/k",
        "arn:aws:s3:::bkt",
        "arn:aws:s3:::bkt/home/alice/x",
        "arn:aws:s3:::bkt/docs/ab.txt",
        "arn:aws:s3:::other/k",
    ];
    requests
        .iter()
        .map(|(c, a, r, keys)| {
            let mut context = Context::new();
            for k in keys {
                let (key, values) = CONTEXT_VALUES[*k];
                context.set_all(key, values.iter().map(|v| v.to_string()).collect());
            }
            let request = Request {
                caller: caller(*c),
                action: ACTS[*a],
                resource: RES[*r],
                context: &context,
            };
            format!("{:?}", policy.evaluate(&request))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn to_json_round_trips(json in document(), requests in prop::collection::vec(request_parts(), 1..12)) {
        let Ok(policy) = Policy::parse(&json, Service::S3, Kind::Resource) else {
            // Duplicate Sids or a bucket action with object resources: refused, fine.
            return Ok(());
        };
        let text = policy.to_json();
        let again = Policy::parse(&text, Service::S3, Kind::Resource)
            .unwrap_or_else(|e| panic!("to_json output refused: {e}\n{text}"));
        prop_assert_eq!(&again, &policy);
        prop_assert_eq!(again.to_json(), text);
        prop_assert_eq!(again.is_public(), policy.is_public());
        prop_assert_eq!(decisions(&again, &requests), decisions(&policy, &requests));
    }
}

#[test]
fn to_json_keeps_shape_and_spells_operators_canonically() {
    let policy = common::bucket_policy(
        r#"{ "Version": "2012-10-17", "Id": "x", "Statement": { "Resource": "arn:aws:s3:::bkt/*", "Action": ["s3:GetObject"], "Principal": {"AWS": "*"}, "Effect": "Allow", "Sid": "Read", "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.3}} } }"#,
    );
    assert_eq!(
        policy.to_json(),
        r#"{"Version":"2012-10-17","Id":"x","Statement":{"Sid":"Read","Effect":"Allow","Principal":{"AWS":"*"},"Action":["s3:GetObject"],"Resource":"arn:aws:s3:::bkt/*","Condition":{"NumericLessThan":{"s3:TlsVersion":"1.3"}}}}"#
    );
}
