//! Identity policies: the policy documents attached to users (`coffer user policy put`),
//! evaluated together with the bucket policy (S3 actions) and with key policies (KMS actions);
//! and the caller as every policy names it (ARN, `aws:userid`, `aws:username`).
//!
//! A user's document is stored as written, after [`parse`] accepted it; it is read from the
//! user's record when a request needs it. Root and anonymous never have one: root is the
//! account itself, and an unsigned request has no identity.

use coffer_policy::{Caller, Kind, Policy, PolicyError, Service};

use crate::error::ApiResult;
use crate::state::{AppState, Principal};

/// The one account every Coffer principal belongs to (AWS account ids are 12 digits).
pub const ACCOUNT_ID: &str = crate::kms_api::ACCOUNT_ID;

/// A user's policy, parsed for each kind of request it can speak about. A document names
/// S3 (or OSS) actions, or KMS actions; the half it does not speak about is `None`.
#[derive(Debug, Clone, Default)]
pub struct UserPolicy {
    /// For S3 and OSS requests, in S3 terms (an OSS/RAM document is translated).
    pub storage: Option<Policy>,
    /// For KMS requests (`kms:` actions, key ARNs as resources).
    pub kms: Option<Policy>,
}

/// Validates a user policy: it must parse as an identity policy of S3, OSS or KMS. A
/// document none of them accepts is refused with the S3 parser's message (or, for a document
/// that names only `kms:` actions, the KMS parser's).
pub fn parse(document: &str) -> Result<UserPolicy, PolicyError> {
    let storage = Policy::parse(document, Service::S3, Kind::Identity)
        .or_else(|s3| Policy::parse(document, Service::Oss, Kind::Identity).map_err(|_| s3));
    let kms = Policy::parse(document, Service::Kms, Kind::Identity);
    match (storage, kms) {
        (Err(s3), Err(kms)) => Err(if names_only_kms_actions(document) {
            kms
        } else {
            s3
        }),
        (storage, kms) => Ok(UserPolicy {
            storage: storage.ok(),
            kms: kms.ok(),
        }),
    }
}

/// Whether every action the document names is a `kms:` one (to choose which parser's
/// complaint a refused document gets).
fn names_only_kms_actions(document: &str) -> bool {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(document) else {
        return false;
    };
    let statements = match &json["Statement"] {
        serde_json::Value::Array(list) => list.clone(),
        single @ serde_json::Value::Object(_) => vec![single.clone()],
        _ => return false,
    };
    let mut actions = statements.iter().flat_map(|statement| {
        let action = &statement["Action"];
        match action {
            serde_json::Value::Array(list) => list.clone(),
            other => vec![other.clone()],
        }
    });
    actions.all(|a| {
        a.as_str()
            .is_some_and(|a| a.to_ascii_lowercase().starts_with("kms:"))
    })
}

/// The policy attached to `principal`, if any (root and anonymous never have one), for S3
/// and OSS requests.
pub async fn policy_of(state: &AppState, principal: &Principal) -> ApiResult<Option<Policy>> {
    Ok(user_policy_of(state, principal).await?.storage)
}

/// The policy attached to `principal` as it speaks about KMS actions.
pub async fn kms_policy_of(state: &AppState, principal: &Principal) -> ApiResult<Option<Policy>> {
    Ok(user_policy_of(state, principal).await?.kms)
}

/// The user's stored document, parsed. A stored document that no longer parses (stored by a
/// version that understood more) speaks for nothing and is logged: it can only have granted,
/// and what the server cannot read it does not grant.
async fn user_policy_of(state: &AppState, principal: &Principal) -> ApiResult<UserPolicy> {
    let Principal::User(name) = principal else {
        return Ok(UserPolicy::default());
    };
    let Some(document) = state.meta.user_by_name(name).await?.and_then(|u| u.policy) else {
        return Ok(UserPolicy::default());
    };
    Ok(parse(&document).unwrap_or_else(|error| {
        tracing::error!(user = %name, %error, "stored user policy does not parse; ignored");
        UserPolicy::default()
    }))
}

/// A signed caller as policies see it.
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
            arn: format!("arn:aws:iam::{ACCOUNT_ID}:root"),
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
                arn: format!("arn:aws:iam::{ACCOUNT_ID}:user/{name}"),
                user_id: format!("AIDA{}", &principal.owner_id()[..17]).to_ascii_uppercase(),
                name: name.clone(),
            }),
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

    #[test]
    fn only_kms_documents_are_told_so() {
        let kms = r#"{"Statement":[{"Effect":"Allow","Action":["kms:Decrypt"],"Resource":"*"}]}"#;
        let s3 = r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#;
        assert!(names_only_kms_actions(kms));
        assert!(!names_only_kms_actions(s3));
        assert!(!names_only_kms_actions("not json"));
    }
}
