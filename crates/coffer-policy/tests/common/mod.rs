//! Shared helpers for the policy tests: a caller per kind of principal and a request builder.
#![allow(dead_code)]

use coffer_policy::{Caller, Context, Evaluation, Kind, Policy, Request, Service};

pub const ACCOUNT: &str = "000000000000";

pub fn alice() -> Caller<'static> {
    Caller::Principal {
        arn: "arn:aws:iam::000000000000:user/alice",
        account: ACCOUNT,
        user_id: "AIDAALICE",
        name: "alice",
    }
}

pub fn bob() -> Caller<'static> {
    Caller::Principal {
        arn: "arn:aws:iam::000000000000:user/bob",
        account: ACCOUNT,
        user_id: "AIDABOB",
        name: "bob",
    }
}

pub fn root() -> Caller<'static> {
    Caller::Principal {
        arn: "arn:aws:iam::000000000000:root",
        account: ACCOUNT,
        user_id: ACCOUNT,
        name: "",
    }
}

pub fn stranger() -> Caller<'static> {
    Caller::Principal {
        arn: "arn:aws:iam::111122223333:user/eve",
        account: "111122223333",
        user_id: "AIDAEVE",
        name: "eve",
    }
}

pub fn bucket_policy(json: &str) -> Policy {
    Policy::parse(json, Service::S3, Kind::Resource)
        .unwrap_or_else(|e| panic!("policy refused: {e}\n{json}"))
}

pub fn identity_policy(json: &str) -> Policy {
    Policy::parse(json, Service::S3, Kind::Identity)
        .unwrap_or_else(|e| panic!("policy refused: {e}\n{json}"))
}

/// The error message for a refused document.
pub fn refusal(json: &str, service: Service, kind: Kind) -> String {
    match Policy::parse(json, service, kind) {
        Ok(_) => panic!("accepted: {json}"),
        Err(e) => e.message,
    }
}

/// A context from `(key, values)` pairs.
pub fn context(pairs: &[(&str, &[&str])]) -> Context {
    let mut context = Context::new();
    for (key, values) in pairs {
        context.set_all(key, values.iter().map(|v| v.to_string()).collect());
    }
    context
}

/// Evaluates and reduces the answer to "Allow", "Deny" or "NotApplicable".
pub fn decide(
    policy: &Policy,
    caller: Caller<'_>,
    action: &str,
    resource: &str,
    context: &Context,
) -> &'static str {
    let request = Request {
        caller,
        action,
        resource,
        context,
    };
    match policy.evaluate(&request) {
        Evaluation::Allow(_) => "Allow",
        Evaluation::Deny(_) => "Deny",
        Evaluation::NotApplicable => "NotApplicable",
    }
}

/// A statement list wrapped in a 2012-10-17 document.
pub fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

/// One statement with `Principal: "*"`, the given action and resource, and a condition block.
pub fn with_condition(effect: &str, condition: &str) -> String {
    doc(&format!(
        r#"{{"Effect":"{effect}","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*","Condition":{condition}}}"#
    ))
}

/// Whether a statement with `condition` (a Condition element) applies to a signed GetObject
/// whose context has `pairs`.
pub fn holds(condition: &str, pairs: &[(&str, &[&str])]) -> bool {
    let policy = bucket_policy(&with_condition("Allow", condition));
    decide(
        &policy,
        alice(),
        "s3:GetObject",
        "arn:aws:s3:::bkt/k",
        &context(pairs),
    ) == "Allow"
}
