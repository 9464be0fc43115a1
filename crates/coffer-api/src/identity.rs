//! Identity policies: the policy documents attached to users (`coffer user policy put`),
//! evaluated together with the bucket policy (S3 actions) and with key policies (`kms:`
//! actions); and the caller as every policy names it (ARN, `aws:userid`, `aws:username`).
//!
//! A user's document is stored as written, after [`parse`] accepted it; it is read from the
//! user's record when a request needs it. Root and anonymous never have one: root is the
//! account itself, and an unsigned request has no identity.

use std::sync::Arc;

use coffer_policy::{Caller, Kind, Policy, PolicyError, Service};

use crate::error::ApiResult;
use crate::state::{AppState, Principal};

/// Coffer's one account (AWS account ids are 12 digits), the KMS API's too.
pub const ACCOUNT_ID: &str = coffer_kms::key_policy::ACCOUNT;

/// The account root's ARN: what the root credentials are.
pub fn root_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:root")
}

/// A user's ARN: `arn:aws:iam::000000000000:user/NAME`.
pub fn user_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:user/{name}")
}

/// A user's `aws:userid`: `AIDA` and the first 17 hex digits of its canonical owner id,
/// upper case — 21 characters like AWS's unique ids, and stable for the name.
pub fn user_id(name: &str) -> String {
    let canonical = crate::state::owner_id(name);
    format!("AIDA{}", canonical[..17].to_ascii_uppercase())
}

/// Validates a user policy: an identity policy of S3 (or, failing that, of OSS, translated to
/// S3 terms), whose statements may also name `kms:` actions on key ARNs. A document neither
/// accepts is refused with the S3 parser's reason. Parsed once per distinct document.
pub fn parse(document: &str) -> Result<Arc<Policy>, PolicyError> {
    use crate::policy_cache::parsed;
    parsed(document, Service::S3, Kind::Identity)
        .or_else(|s3| parsed(document, Service::Oss, Kind::Identity).map_err(|_| s3))
}

/// The policy attached to `principal`, if any (root and anonymous never have one), for S3,
/// OSS and KMS requests alike. A stored document that no longer parses (stored by a version
/// that understood more) is logged and grants nothing: what the server cannot read, it does
/// not grant.
pub async fn policy_of(state: &AppState, principal: &Principal) -> ApiResult<Option<Arc<Policy>>> {
    let Principal::User(name) = principal else {
        return Ok(None);
    };
    let Some(document) = state.meta.user_by_name(name).await?.and_then(|u| u.policy) else {
        return Ok(None);
    };
    Ok(parse(&document)
        .map_err(|error| {
            tracing::error!(user = %name, %error, "stored user policy does not parse; ignored");
        })
        .ok())
}

/// A signed caller as policies see it (the names `authz::context` gives), with what KMS
/// decisions also need: the ARN for AWS's refusal messages, and the caller seen from outside
/// the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    /// `arn:aws:iam::000000000000:root` or `arn:aws:iam::000000000000:user/NAME`.
    pub arn: String,
    /// `aws:userid`: the account id for root, `AIDA` + 17 hex digits of the canonical owner
    /// id (uppercased) for a user — stable, and the same on every server.
    pub user_id: String,
    /// `aws:username`: the user's name (`root` for root).
    pub name: String,
}

impl CallerIdentity {
    /// The account root (root's identity; also what a key policy's account statement names).
    pub fn root() -> Self {
        CallerIdentity {
            arn: root_arn(),
            user_id: ACCOUNT_ID.to_owned(),
            name: crate::state::ROOT_NAME.to_owned(),
        }
    }

    /// The identity of a signed principal; `None` for an anonymous one.
    pub fn of(principal: &Principal) -> Option<Self> {
        match principal {
            Principal::Anonymous => None,
            Principal::Root => Some(Self::root()),
            Principal::User(name) => Some(CallerIdentity {
                arn: user_arn(name),
                user_id: user_id(name),
                name: name.clone(),
            }),
        }
    }

    /// The caller as if it belonged to no account: a statement naming the account no longer
    /// matches, one naming the caller's ARN or everyone still does. For KMS, where a key
    /// policy's account statement only delegates to identity policies.
    pub fn caller_outside_account(&self) -> Caller<'_> {
        Caller::Principal {
            arn: &self.arn,
            account: "",
            user_id: &self.user_id,
            name: &self.name,
        }
    }

    /// As `coffer-policy` names a caller.
    pub fn caller(&self) -> Caller<'_> {
        Caller::Principal {
            arn: &self.arn,
            account: ACCOUNT_ID,
            user_id: &self.user_id,
            name: &self.name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_are_named_as_iam_names_them() {
        let root = CallerIdentity::of(&Principal::Root).expect("root is signed");
        assert_eq!(root.arn, "arn:aws:iam::000000000000:root");
        assert_eq!(root.user_id, "000000000000");
        let alice = CallerIdentity::of(&Principal::User("alice".into())).expect("signed");
        assert_eq!(alice.arn, "arn:aws:iam::000000000000:user/alice");
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.user_id.len(), 21);
        assert!(alice.user_id.starts_with("AIDA"), "{}", alice.user_id);
        assert_ne!(
            alice.user_id,
            CallerIdentity::of(&Principal::User("bob".into()))
                .expect("signed")
                .user_id
        );
        assert_eq!(CallerIdentity::of(&Principal::Anonymous), None);
    }
}
