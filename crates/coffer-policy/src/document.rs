//! The document: parsing with validation (every refusal names the statement and the field,
//! and starts with the message AWS gives), the statement model, and the canonical JSON.

use serde_json::{Map, Value};

use crate::condition::{self, Condition};
use crate::pattern::Pattern;
use crate::principal::{PrincipalSource, Principals};
use crate::{Kind, PolicyError, Service, actions, resource};

/// A string or a list of strings, remembering which (so `to_json` writes it back the same way).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Strings {
    pub values: Vec<String>,
    pub single: bool,
}

impl Strings {
    /// A string or a non-empty list of strings.
    pub fn parse(value: &Value) -> Option<Strings> {
        match value {
            Value::String(s) => Some(Strings {
                values: vec![s.clone()],
                single: true,
            }),
            Value::Array(items) if !items.is_empty() => Some(Strings {
                values: items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<_>>()?,
                single: false,
            }),
            _ => None,
        }
    }

    /// Like [`Strings::parse`], also taking numbers and booleans (condition values), as text.
    pub fn parse_scalars(value: &Value) -> Option<Strings> {
        let scalar = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        match value {
            Value::Array(items) => Some(Strings {
                values: items.iter().map(scalar).collect::<Option<_>>()?,
                single: false,
            }),
            other => Some(Strings {
                values: vec![scalar(other)?],
                single: true,
            }),
        }
    }

    pub fn to_value(&self) -> Value {
        if self.single && self.values.len() == 1 {
            Value::String(self.values[0].clone())
        } else {
            Value::Array(self.values.iter().cloned().map(Value::String).collect())
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// `Action`/`NotAction` or `Resource`/`NotResource`: what was written and the S3-term
/// patterns it compiles to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Matcher {
    pub negated: bool,
    pub source: Strings,
    pub patterns: Vec<Pattern>,
    /// Resources only: each entry translated to S3 terms, for [`crate::Policy::check_bucket`].
    pub arns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PrincipalElement {
    pub negated: bool,
    pub principals: Principals,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Option<PrincipalElement>,
    pub action: Matcher,
    /// `None` only in KMS key policies, where it means every key (the policy's own).
    pub resource: Option<Matcher>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Document {
    pub version: Option<String>,
    pub id: Option<String>,
    /// `Statement` was one object rather than a list.
    pub single_statement: bool,
    pub statements: Vec<Statement>,
}

/// AWS's two versions; Alibaba Cloud (OSS bucket policies, RAM and KMS key policies) writes "1".
fn known_version(version: &str, service: Service) -> bool {
    matches!(version, "2012-10-17" | "2008-10-17")
        || (version == "1" && matches!(service, Service::Oss | Service::Kms))
}
const TOP_FIELDS: &[&str] = &["Version", "Id", "Statement"];
const STATEMENT_FIELDS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

fn refuse(message: &str, detail: impl std::fmt::Display) -> PolicyError {
    PolicyError {
        message: format!("{message} ({detail})"),
    }
}

/// The namespaces (of actions and of condition keys) a document may use.
struct Namespaces {
    actions: &'static [&'static str],
    keys: &'static [&'static str],
}

fn namespaces(service: Service, kind: Kind) -> Namespaces {
    // An identity policy also governs the user's use of KMS keys (SSE-KMS needs
    // kms:GenerateDataKey and kms:Decrypt), as an IAM policy does on AWS.
    match (service, kind) {
        (Service::S3, Kind::Resource) => Namespaces {
            actions: &["s3"],
            keys: &["aws", "s3"],
        },
        (Service::S3, Kind::Identity) => Namespaces {
            actions: &["s3", "kms"],
            keys: &["aws", "s3", "kms"],
        },
        (Service::Oss, Kind::Resource) => Namespaces {
            actions: &["oss"],
            keys: &["acs", "oss"],
        },
        (Service::Oss, Kind::Identity) => Namespaces {
            actions: &["oss", "kms"],
            keys: &["acs", "oss", "kms"],
        },
        (Service::Kms, _) => Namespaces {
            actions: &["kms"],
            keys: &["aws", "acs", "kms"],
        },
    }
}

impl Document {
    pub fn parse(json: &str, service: Service, kind: Kind) -> Result<Document, PolicyError> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| refuse("Invalid policy syntax.", format!("not JSON: {e}")))?;
        let Value::Object(top) = value else {
            return Err(refuse(
                "Invalid policy syntax.",
                "the document must be a JSON object",
            ));
        };
        for field in top.keys() {
            if !TOP_FIELDS.contains(&field.as_str()) {
                return Err(PolicyError {
                    message: format!("Unknown field {field}"),
                });
            }
        }
        let version = match top.get("Version") {
            None => None,
            Some(Value::String(v)) if known_version(v, service) => Some(v.clone()),
            Some(other) => {
                return Err(refuse(
                    "The policy must contain a valid version string",
                    format!("Version {other}: use \"2012-10-17\" or \"2008-10-17\""),
                ));
            }
        };
        let id = match top.get("Id") {
            None => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(_) => return Err(refuse("Invalid policy syntax.", "Id must be a string")),
        };
        let (single_statement, raw): (bool, Vec<&Value>) = match top.get("Statement") {
            None => {
                return Err(PolicyError {
                    message: "Missing required field Statement".into(),
                });
            }
            Some(Value::Object(_)) => (true, vec![&top["Statement"]]),
            Some(Value::Array(items)) if !items.is_empty() => (false, items.iter().collect()),
            Some(_) => {
                return Err(refuse(
                    "Invalid policy syntax.",
                    "Statement must be an object or a non-empty list of objects",
                ));
            }
        };
        let variables = version.as_deref() == Some("2012-10-17");
        let context = Parsing {
            service,
            kind,
            namespaces: namespaces(service, kind),
            variables,
        };
        let mut statements = Vec::with_capacity(raw.len());
        for (index, value) in raw.into_iter().enumerate() {
            let statement = context.statement(index, value)?;
            if let Some(sid) = &statement.sid
                && statements
                    .iter()
                    .any(|s: &Statement| s.sid.as_ref() == Some(sid))
            {
                return Err(refuse(
                    "Statement IDs (SID) in a single policy must be unique",
                    format!("statement {index}: Sid {sid:?} is used twice"),
                ));
            }
            statements.push(statement);
        }
        Ok(Document {
            version,
            id,
            single_statement,
            statements,
        })
    }
}

struct Parsing {
    service: Service,
    kind: Kind,
    namespaces: Namespaces,
    variables: bool,
}

impl Parsing {
    fn statement(&self, index: usize, value: &Value) -> Result<Statement, PolicyError> {
        let Value::Object(fields) = value else {
            return Err(refuse(
                "Invalid policy syntax.",
                format!("statement {index} must be an object"),
            ));
        };
        let sid = match fields.get("Sid") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(refuse(
                    "Invalid policy syntax.",
                    format!("statement {index}: Sid must be a string"),
                ));
            }
        };
        let at = |field: &str| match &sid {
            Some(sid) => format!("statement {index} ({sid}), {field}"),
            None => format!("statement {index}, {field}"),
        };
        for field in fields.keys() {
            if !STATEMENT_FIELDS.contains(&field.as_str()) {
                return Err(PolicyError {
                    message: format!("Unknown field {field} ({})", at(field)),
                });
            }
        }
        let effect = match fields.get("Effect") {
            Some(Value::String(e)) if e == "Allow" => Effect::Allow,
            Some(Value::String(e)) if e == "Deny" => Effect::Deny,
            Some(other) => {
                let shown = other
                    .as_str()
                    .map_or_else(|| other.to_string(), str::to_owned);
                return Err(refuse(
                    &format!("Invalid effect: {shown}"),
                    format!("{}: use \"Allow\" or \"Deny\"", at("Effect")),
                ));
            }
            None => {
                return Err(refuse("Missing required field Effect", at("Effect")));
            }
        };
        let principal = self.principal(fields, &at)?;
        let action = self
            .action(fields, &at)?
            .ok_or_else(|| refuse("Missing required field Action", at("Action")))?;
        let resource = self.resource(fields, &at, &action)?;
        if resource.is_none() && self.service != Service::Kms {
            return Err(refuse("Missing required field Resource", at("Resource")));
        }
        if self.kind == Kind::Resource
            && let Some(resource) = &resource
            && !resource::any_applies(&action, resource)
        {
            return Err(refuse(
                "Action does not apply to any resource(s) in statement",
                format!(
                    "{}: bucket actions need arn:aws:s3:::BUCKET, object actions arn:aws:s3:::BUCKET/KEY",
                    at("Resource")
                ),
            ));
        }
        let conditions = match fields.get("Condition") {
            None => Vec::new(),
            Some(block) => condition::parse_block(block, self.namespaces.keys, self.variables)
                .map_err(|e| refuse(e.message, format!("{}: {}", at("Condition"), e.detail)))?,
        };
        Ok(Statement {
            sid,
            effect,
            principal,
            action,
            resource,
            conditions,
        })
    }

    fn principal(
        &self,
        fields: &Map<String, Value>,
        at: &dyn Fn(&str) -> String,
    ) -> Result<Option<PrincipalElement>, PolicyError> {
        let (field, negated) = match (fields.get("Principal"), fields.get("NotPrincipal")) {
            (Some(_), Some(_)) => {
                return Err(refuse(
                    "Invalid policy syntax.",
                    format!(
                        "{}: use Principal or NotPrincipal, not both",
                        at("Principal")
                    ),
                ));
            }
            (Some(_), None) => ("Principal", false),
            (None, Some(_)) => ("NotPrincipal", true),
            (None, None) => {
                if self.kind == Kind::Resource {
                    return Err(refuse("Missing required field Principal", at("Principal")));
                }
                return Ok(None);
            }
        };
        if self.kind == Kind::Identity {
            return Err(refuse(
                "Policy document should not specify a principal",
                format!("{}: an identity policy applies to its user", at(field)),
            ));
        }
        let principals = Principals::parse(&fields[field], self.service).map_err(|detail| {
            refuse(
                "Invalid principal in policy",
                format!("{}: {detail}", at(field)),
            )
        })?;
        Ok(Some(PrincipalElement {
            negated,
            principals,
        }))
    }

    fn action(
        &self,
        fields: &Map<String, Value>,
        at: &dyn Fn(&str) -> String,
    ) -> Result<Option<Matcher>, PolicyError> {
        let Some((field, negated, value)) = one_of(fields, "Action", "NotAction", at)? else {
            return Ok(None);
        };
        let source = Strings::parse(value).ok_or_else(|| {
            refuse(
                "Invalid policy syntax.",
                format!("{}: expected a string or a list of strings", at(field)),
            )
        })?;
        let mut patterns = Vec::new();
        for entry in &source.values {
            let compiled = actions::compile(entry, self.namespaces.actions).map_err(|_| {
                refuse(
                    "Policy has invalid action",
                    format!("{}: {entry:?} is not a known action", at(field)),
                )
            })?;
            patterns.extend(compiled);
        }
        Ok(Some(Matcher {
            negated,
            source,
            patterns,
            arns: Vec::new(),
        }))
    }

    fn resource(
        &self,
        fields: &Map<String, Value>,
        at: &dyn Fn(&str) -> String,
        action: &Matcher,
    ) -> Result<Option<Matcher>, PolicyError> {
        let Some((field, negated, value)) = one_of(fields, "Resource", "NotResource", at)? else {
            return Ok(None);
        };
        let source = Strings::parse(value).ok_or_else(|| {
            refuse(
                "Invalid policy syntax.",
                format!("{}: expected a string or a list of strings", at(field)),
            )
        })?;
        let kms =
            self.namespaces.actions.contains(&"kms")
                && action.source.values.iter().any(|a| {
                    a == "*" || a.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("kms:"))
                });
        let mut patterns = Vec::new();
        let mut arns = Vec::new();
        for entry in &source.values {
            let arn = resource::translate(entry, self.service, kms).ok_or_else(|| {
                refuse(
                    "Policy has invalid resource",
                    format!("{}: {entry:?} is not a resource of this service", at(field)),
                )
            })?;
            patterns.push(resource::compile(&arn, self.variables));
            arns.push(arn);
        }
        Ok(Some(Matcher {
            negated,
            source,
            patterns,
            arns,
        }))
    }
}

/// The field `positive` or `negative` (not both).
fn one_of<'v>(
    fields: &'v Map<String, Value>,
    positive: &'static str,
    negative: &'static str,
    at: &dyn Fn(&str) -> String,
) -> Result<Option<(&'static str, bool, &'v Value)>, PolicyError> {
    match (fields.get(positive), fields.get(negative)) {
        (Some(_), Some(_)) => Err(refuse(
            "Invalid policy syntax.",
            format!("{}: use {positive} or {negative}, not both", at(positive)),
        )),
        (Some(v), None) => Ok(Some((positive, false, v))),
        (None, Some(v)) => Ok(Some((negative, true, v))),
        (None, None) => Ok(None),
    }
}

impl Document {
    /// The canonical JSON: fields in AWS's order, values as written (a single string stays a
    /// string), condition operators in their canonical spelling, whitespace removed.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        let mut first = true;
        let mut field = |out: &mut String, name: &str, value: String| {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&json_string(name));
            out.push(':');
            out.push_str(&value);
        };
        if let Some(version) = &self.version {
            field(&mut out, "Version", json_string(version));
        }
        if let Some(id) = &self.id {
            field(&mut out, "Id", json_string(id));
        }
        let statements: Vec<String> = self.statements.iter().map(statement_json).collect();
        let statements = if self.single_statement && statements.len() == 1 {
            statements[0].clone()
        } else {
            format!("[{}]", statements.join(","))
        };
        field(&mut out, "Statement", statements);
        out.push('}');
        out
    }
}

fn json_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

fn statement_json(statement: &Statement) -> String {
    let mut fields: Vec<(&str, String)> = Vec::new();
    if let Some(sid) = &statement.sid {
        fields.push(("Sid", json_string(sid)));
    }
    let effect = match statement.effect {
        Effect::Allow => "Allow",
        Effect::Deny => "Deny",
    };
    fields.push(("Effect", json_string(effect)));
    if let Some(p) = &statement.principal {
        let name = if p.negated {
            "NotPrincipal"
        } else {
            "Principal"
        };
        let value = match &p.principals.source {
            PrincipalSource::Star => json_string("*"),
            PrincipalSource::List(list) => list.to_value().to_string(),
            PrincipalSource::Map(entries) => {
                let map: Map<String, Value> = entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect();
                Value::Object(map).to_string()
            }
        };
        fields.push((name, value));
    }
    let action = if statement.action.negated {
        "NotAction"
    } else {
        "Action"
    };
    fields.push((action, statement.action.source.to_value().to_string()));
    if let Some(r) = &statement.resource {
        let name = if r.negated { "NotResource" } else { "Resource" };
        fields.push((name, r.source.to_value().to_string()));
    }
    if !statement.conditions.is_empty() {
        let mut block: Map<String, Value> = Map::new();
        for condition in &statement.conditions {
            let (operator, key, values) = condition.parts();
            let keys = block
                .entry(operator)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(keys) = keys {
                keys.insert(key.to_owned(), values.to_value());
            }
        }
        fields.push(("Condition", Value::Object(block).to_string()));
    }
    let body: Vec<String> = fields
        .into_iter()
        .map(|(k, v)| format!("{}:{v}", json_string(k)))
        .collect();
    format!("{{{}}}", body.join(","))
}
