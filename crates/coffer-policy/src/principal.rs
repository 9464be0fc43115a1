//! Principals: `"*"`, `{"AWS": …}` with account ids and IAM ARNs, the other AWS principal
//! types (never a Coffer caller), and OSS's list of user names, account ids and RAM ARNs.

use crate::document::Strings;
use crate::{Caller, Service};

/// How the element was written, kept for `to_json`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PrincipalSource {
    /// `"*"`.
    Star,
    /// OSS's plain list (`["*"]`, `["000000000000"]`).
    List(Strings),
    /// `{"AWS": …, "Service": …}`, by type name.
    Map(Vec<(String, Strings)>),
}

/// One principal, as evaluation compares it with the caller.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PrincipalId {
    /// Everyone, anonymous callers included.
    Everyone,
    /// Every principal of this account.
    Account(String),
    /// One IAM user (or role) by ARN.
    Arn(String),
    /// An OSS user name.
    UserName(String),
    /// A service, federated or canonical-user principal: no Coffer caller is one.
    Foreign,
}

/// The parsed element.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Principals {
    pub source: PrincipalSource,
    pub ids: Vec<PrincipalId>,
}

impl Principals {
    /// Parses a Principal / NotPrincipal value; the error is the detail for the message.
    pub fn parse(value: &serde_json::Value, service: Service) -> Result<Principals, String> {
        use serde_json::Value;
        match value {
            Value::String(s) if s == "*" => Ok(Principals {
                source: PrincipalSource::Star,
                ids: vec![PrincipalId::Everyone],
            }),
            Value::String(_) | Value::Array(_) if service == Service::Oss => {
                let list = Strings::parse(value).ok_or("expected a string or a list of strings")?;
                let ids = list
                    .values
                    .iter()
                    .map(|v| oss_id(v))
                    .collect::<Result<_, _>>()?;
                Ok(Principals {
                    source: PrincipalSource::List(list),
                    ids,
                })
            }
            Value::Object(map) if !map.is_empty() => {
                let mut ids = Vec::new();
                let mut source = Vec::new();
                for (kind, entries) in map {
                    let list = Strings::parse(entries)
                        .ok_or_else(|| format!("{kind}: expected a string or a list of strings"))?;
                    for entry in &list.values {
                        ids.push(typed_id(kind, entry, service)?);
                    }
                    source.push((kind.clone(), list));
                }
                source.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(Principals {
                    source: PrincipalSource::Map(source),
                    ids,
                })
            }
            _ => Err("expected \"*\" or an object such as {\"AWS\": \"…\"}".into()),
        }
    }

    /// Whether the caller is one of the principals.
    pub fn includes(&self, caller: &Caller<'_>) -> bool {
        self.ids.iter().any(|id| match (id, caller) {
            (PrincipalId::Everyone, _) => true,
            (_, Caller::Anonymous) => false,
            (PrincipalId::Account(a), Caller::Principal { account, .. }) => a == account,
            (PrincipalId::Arn(a), Caller::Principal { arn, .. }) => a == arn,
            (PrincipalId::UserName(n), Caller::Principal { name, arn, .. }) => {
                n == name && !arn.ends_with(":root")
            }
            (PrincipalId::Foreign, _) => false,
        })
    }

    /// Whether the element names everyone (`*`).
    pub fn is_everyone(&self) -> bool {
        self.ids.contains(&PrincipalId::Everyone)
    }
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn typed_id(kind: &str, entry: &str, service: Service) -> Result<PrincipalId, String> {
    match (kind, service) {
        ("AWS", Service::S3 | Service::Kms) => aws_id(entry),
        ("RAM", Service::Oss) => oss_id(entry),
        ("Service" | "Federated" | "CanonicalUser", Service::S3 | Service::Kms)
            if !entry.is_empty() =>
        {
            Ok(PrincipalId::Foreign)
        }
        _ => Err(format!("{kind}: {entry:?} is not a principal")),
    }
}

/// `*`, an account id, `arn:aws:iam::ACCOUNT:root`, or an IAM/STS ARN without wildcards.
fn aws_id(entry: &str) -> Result<PrincipalId, String> {
    if entry == "*" {
        return Ok(PrincipalId::Everyone);
    }
    if is_account_id(entry) {
        return Ok(PrincipalId::Account(entry.to_owned()));
    }
    let bad = || format!("{entry:?} is not an account id or IAM ARN");
    let rest = entry
        .strip_prefix("arn:aws:iam::")
        .or_else(|| entry.strip_prefix("arn:aws:sts::"))
        .ok_or_else(bad)?;
    let (account, resource) = rest.split_once(':').ok_or_else(bad)?;
    if !is_account_id(account) || resource.is_empty() || entry.contains(['*', '?']) {
        return Err(bad());
    }
    if resource == "root" {
        return Ok(PrincipalId::Account(account.to_owned()));
    }
    Ok(PrincipalId::Arn(entry.to_owned()))
}

/// OSS: `*`, an account uid, `acs:ram::ACCOUNT:root`, `acs:ram::ACCOUNT:user/NAME`, or a
/// user name.
fn oss_id(entry: &str) -> Result<PrincipalId, String> {
    if entry == "*" {
        return Ok(PrincipalId::Everyone);
    }
    if is_account_id(entry) {
        return Ok(PrincipalId::Account(entry.to_owned()));
    }
    if let Some(rest) = entry.strip_prefix("acs:ram::") {
        let bad = || format!("{entry:?} is not a RAM ARN");
        let (account, resource) = rest.split_once(':').ok_or_else(bad)?;
        if !is_account_id(account) || entry.contains(['*', '?']) {
            return Err(bad());
        }
        if resource == "root" {
            return Ok(PrincipalId::Account(account.to_owned()));
        }
        let name = resource.strip_prefix("user/").ok_or_else(bad)?;
        if name.is_empty() {
            return Err(bad());
        }
        return Ok(PrincipalId::Arn(format!(
            "arn:aws:iam::{account}:user/{name}"
        )));
    }
    if entry.is_empty() || entry.contains(['*', '?', ':', '/']) {
        return Err(format!("{entry:?} is not a user name, account or RAM ARN"));
    }
    Ok(PrincipalId::UserName(entry.to_owned()))
}
