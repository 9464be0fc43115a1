//! Access policy documents as AWS IAM writes them (bucket policies, identity policies attached
//! to users, KMS key policies) and their Alibaba Cloud form (OSS bucket policies, RAM
//! policies): parsed and validated whole, then evaluated against one request at a time.
//!
//! A document that does not parse, names an unknown action or condition operator, or uses a
//! condition key of a known namespace that does not exist is refused by [`Policy::parse`]:
//! nothing is ever stored half-understood. Evaluation speaks AWS's terms only: an OSS
//! document's `oss:` actions, `acs:` resources and `acs:`/`oss:` condition keys are translated
//! to their S3 equivalents when it is parsed.
//!
//! The modules follow the document: [`document`] (parse, validate, serialise), `actions`
//! (the action tables), `resource` (ARNs), `principal`, `condition` (operators, keys and
//! their values), `pattern` (wildcards and policy variables), `evaluate` and `public`.
#![forbid(unsafe_code)]

mod actions;
mod condition;
mod document;
mod evaluate;
mod pattern;
mod principal;
mod public;
mod request;
mod resource;

use std::collections::BTreeMap;
use std::fmt;

use document::Document;

/// Which service's actions, resources and condition keys a document may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Amazon S3: `s3:` actions, `arn:aws:s3:::` resources.
    S3,
    /// Alibaba OSS: `oss:` actions, `acs:oss:*:*:` resources (translated to S3 terms).
    Oss,
    /// A KMS key policy: `kms:` actions, the key as resource (`*`).
    Kms,
}

/// Where the document is attached, which decides whether it names principals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A resource's policy (bucket, key): every statement names a Principal or NotPrincipal.
    Resource,
    /// An identity policy attached to a user: no statement names a principal.
    Identity,
}

/// Why a document was refused, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// What is wrong and where (statement index or Sid, field).
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PolicyError {}

/// A parsed, validated policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    service: Service,
    kind: Kind,
    document: Document,
}

/// Who made the request, as policies name principals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller<'a> {
    /// An unsigned request: matches only `"Principal": "*"` (or `{"AWS": "*"}`).
    Anonymous,
    /// A signed request.
    Principal {
        /// `arn:aws:iam::ACCOUNT:user/NAME` or `arn:aws:iam::ACCOUNT:root`.
        arn: &'a str,
        /// The 12-digit account id (a bare account id in a policy names the account's root).
        account: &'a str,
        /// `aws:userid`.
        user_id: &'a str,
        /// `aws:username`.
        name: &'a str,
    },
}

/// The values of the request's condition keys, by key (compared case-insensitively, as AWS
/// compares key names). A key absent from the context is what `Null` and `…IfExists` test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    values: BTreeMap<String, Vec<String>>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to one value.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.values
            .insert(key.to_ascii_lowercase(), vec![value.into()]);
        self
    }

    /// Sets `key` to several values (a multivalued key, for `ForAnyValue:`/`ForAllValues:`).
    pub fn set_all(&mut self, key: &str, values: Vec<String>) -> &mut Self {
        self.values.insert(key.to_ascii_lowercase(), values);
        self
    }

    /// The values of `key`, if the request has it.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.values
            .get(&key.to_ascii_lowercase())
            .map(Vec::as_slice)
    }
}

/// One request as a policy sees it, in S3 terms.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Who asks.
    pub caller: Caller<'a>,
    /// The IAM action, e.g. `s3:GetObject`, `kms:Decrypt`.
    pub action: &'a str,
    /// The resource ARN, e.g. `arn:aws:s3:::bucket/key`, `arn:aws:s3:::bucket`, or the key's ARN.
    pub resource: &'a str,
    /// The condition keys' values.
    pub context: &'a Context,
}

/// Which statement decided, for the request's log line ("denied by statement 2 (DenyHttp)").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    /// Its position in the document, from 0.
    pub index: usize,
    /// Its `Sid`, if it has one.
    pub sid: Option<String>,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sid {
            Some(sid) => write!(f, "statement {} ({sid})", self.index),
            None => write!(f, "statement {}", self.index),
        }
    }
}

/// What one document says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evaluation {
    /// A matching Deny statement: the request is refused whatever else allows it.
    Deny(StatementRef),
    /// A matching Allow statement and no matching Deny.
    Allow(StatementRef),
    /// No statement matches.
    NotApplicable,
}

impl Policy {
    /// Parses and validates `json` as a `kind` policy of `service`.
    pub fn parse(json: &str, service: Service, kind: Kind) -> Result<Policy, PolicyError> {
        let document = Document::parse(json, service, kind)?;
        Ok(Policy {
            service,
            kind,
            document,
        })
    }

    /// Refuses a bucket policy that names a resource outside `bucket` (AWS's "Policy has
    /// invalid resource" at PutBucketPolicy). `NotResource` is exempt: it names what the
    /// statement does not cover.
    pub fn check_bucket(&self, bucket: &str) -> Result<(), PolicyError> {
        for (index, statement) in self.document.statements.iter().enumerate() {
            let Some(resource) = statement.resource.as_ref().filter(|r| !r.negated) else {
                continue;
            };
            for (written, translated) in resource.source.values.iter().zip(&resource.arns) {
                if !resource::in_bucket(translated, bucket) {
                    return Err(PolicyError {
                        message: format!(
                            "Policy has invalid resource (statement {index}, Resource: \
                             {written:?} is not in bucket {bucket:?})"
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// The service the document was written for.
    pub fn service(&self) -> Service {
        self.service
    }

    /// Where the document is attached.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The document, re-serialised canonically: parsing it again gives a policy that decides
    /// every request the same way.
    pub fn to_json(&self) -> String {
        self.document.to_json()
    }

    /// What the document says about `request`.
    pub fn evaluate(&self, request: &Request<'_>) -> Evaluation {
        evaluate::evaluate(&self.document, self.kind, request)
    }

    /// Whether the document is public as AWS defines it for the public access block and
    /// `?policyStatus`: an Allow to `*` (or to every principal of another account) not narrowed
    /// by a condition on a fixed value of `aws:SourceIp`, `aws:SourceArn`, `aws:SourceVpc`,
    /// `aws:SourceVpce`, `aws:SourceOwner`, `aws:SourceAccount`, `aws:PrincipalOrgID`, `aws:userid`…
    pub fn is_public(&self) -> bool {
        self.kind == Kind::Resource && self.document.statements.iter().any(public::is_public)
    }
}
