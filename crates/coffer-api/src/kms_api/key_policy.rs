//! Key policies enforced: whether a caller may run a KMS action on a key, as AWS KMS
//! decides it — on the AWS and Alibaba KMS APIs, and when S3 uses a key on the caller's
//! behalf (SSE-KMS: `kms:GenerateDataKey` to write, `kms:Decrypt` to read).
//!
//! The key policy is the authority. An explicit Deny in it, or in the caller's identity
//! policy, refuses. Otherwise the call is allowed when the key policy allows the caller
//! itself, or when it allows the account (`arn:aws:iam::000000000000:root`: AWS's "Enable
//! IAM User Permissions" statement, in every default policy) and the caller's identity policy
//! allows the action on the key. Root is the account, so the account statement allows it;
//! root may always read and replace a key's policy and describe the key, so that a policy
//! that locks everyone out can be repaired.

use std::sync::Arc;

use coffer_kms::key_policy::{self, KeyPolicy};
use coffer_kms::{Kms, KmsError};
use coffer_policy::{Context, Evaluation, Kind, Policy, Request, Service};

use super::Operation;
use crate::error::ApiResult;
use crate::identity::{self, ACCOUNT_ID, CallerIdentity};
use crate::policy_cache;
use crate::state::{AppState, Principal};

/// The actions root may always take on a key, whatever its policy says.
const LOCKOUT_RECOVERY: [&str; 3] = ["kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:DescribeKey"];

/// Who asks the KMS, with what a key policy decision needs to know about them.
#[derive(Debug, Clone)]
pub struct KmsCaller {
    principal: Principal,
    identity: Option<CallerIdentity>,
    /// The caller's identity policy (its `kms:` statements speak here).
    user_policy: Option<Arc<Policy>>,
    /// `kms:ViaService` when S3 uses the key on the caller's behalf.
    via_service: Option<String>,
}

/// Why a call is not allowed.
#[derive(Debug)]
pub enum Refusal {
    /// The policies do not allow it; the message names caller, action and key as AWS does.
    Denied(String),
    /// The key could not be looked up (no such key, a KMS failure).
    Kms(KmsError),
}

impl KmsCaller {
    /// `principal` calling the KMS API.
    pub async fn direct(state: &AppState, principal: &Principal) -> ApiResult<Self> {
        Ok(Self::with_policy(
            principal.clone(),
            identity::policy_of(state, principal).await?,
            None,
        ))
    }

    /// `principal`'s request to S3, which uses a key on their behalf.
    pub async fn via_s3(state: &AppState, principal: &Principal) -> ApiResult<Self> {
        Ok(Self::with_policy(
            principal.clone(),
            identity::policy_of(state, principal).await?,
            Some(key_policy::via_s3(&state.settings.region)),
        ))
    }

    /// `principal`'s request to S3 when there is no identity policy to read (root and
    /// anonymous callers have none, see [`identity::policy_of`]), so nothing waits on the
    /// store; `None` for a user.
    pub fn via_s3_now(state: &AppState, principal: &Principal) -> Option<Self> {
        (!matches!(principal, Principal::User(_))).then(|| {
            Self::with_policy(
                principal.clone(),
                None,
                Some(key_policy::via_s3(&state.settings.region)),
            )
        })
    }

    /// A caller with the identity policy given (tests, and callers that already have it).
    pub fn with_policy(
        principal: Principal,
        user_policy: Option<Arc<Policy>>,
        via_service: Option<String>,
    ) -> Self {
        KmsCaller {
            identity: CallerIdentity::of(&principal),
            principal,
            user_policy,
            via_service,
        }
    }

    /// The principal.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Whether the caller may take `action` (`kms:Encrypt`…) on `key` (id, ARN or alias).
    /// Blocking: it reads the key's policy from `kms`.
    pub fn authorize(&self, kms: &dyn Kms, action: &str, key: &str) -> Result<(), Refusal> {
        let policy = policy_of(kms, key)?;
        self.decide(&policy, action)
    }

    /// [`authorize`](Self::authorize) when the KMS knows the key's policy without blocking
    /// (so it may run on an async task); `None`: ask [`authorize`](Self::authorize) off the
    /// async threads.
    pub fn authorize_now(
        &self,
        kms: &dyn Kms,
        action: &str,
        key: &str,
    ) -> Option<Result<(), Refusal>> {
        match kms.key_policy_now(key)? {
            Ok(Some(policy)) => Some(self.decide(&policy, action)),
            // The backend keeps no policies: `authorize` describes the key.
            Ok(None) => None,
            Err(error) => Some(Err(Refusal::Kms(error))),
        }
    }

    /// Whether the caller may take an action that names no key (`kms:CreateKey`): root, or
    /// an identity policy that allows it on `*`.
    pub fn authorize_without_key(&self, action: &str) -> Result<(), Refusal> {
        if self.principal.is_root() {
            return Ok(());
        }
        let context = self.context();
        let allowed = match (&self.identity, &self.user_policy) {
            (Some(identity), Some(policy)) => {
                let request = Request {
                    caller: identity.caller(),
                    action,
                    resource: "*",
                    context: &context,
                };
                matches!(policy.evaluate(&request), Evaluation::Allow(_))
            }
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(Refusal::Denied(format!(
                "User: {} is not authorized to perform: {action} because no identity-based \
                 policy allows the {action} action",
                self.arn()
            )))
        }
    }

    /// The decision on a key whose policy is `policy`.
    pub fn decide(&self, policy: &KeyPolicy, action: &str) -> Result<(), Refusal> {
        if self.principal.is_root() && LOCKOUT_RECOVERY.contains(&action) {
            return Ok(());
        }
        let denied = |why: &str| {
            Refusal::Denied(format!(
                "User: {} is not authorized to perform: {action} on resource: {} {why}",
                self.arn(),
                policy.arn
            ))
        };
        let Some(identity) = &self.identity else {
            return Err(denied("because anonymous requests cannot use KMS keys"));
        };
        let key_policy = match policy_cache::parsed(&policy.document, Service::Kms, Kind::Resource)
        {
            Ok(parsed) => parsed,
            Err(error) => {
                // Fail closed: a policy the server cannot read allows nothing.
                tracing::error!(key = %policy.key_id, %error, "key policy does not parse");
                return Err(denied("because the key policy cannot be evaluated"));
            }
        };
        let context = self.context();
        let request = Request {
            caller: identity.caller(),
            action,
            resource: &policy.arn,
            context: &context,
        };
        let by_key = key_policy.evaluate(&request);
        let by_identity = self
            .user_policy
            .as_ref()
            .map_or(Evaluation::NotApplicable, |p| p.evaluate(&request));
        match (&by_key, &by_identity) {
            (Evaluation::Deny(statement), _) => {
                audit(
                    policy,
                    action,
                    format_args!("denied by key policy {statement}"),
                );
                return Err(denied("with an explicit deny in a resource-based policy"));
            }
            (_, Evaluation::Deny(statement)) => {
                audit(
                    policy,
                    action,
                    format_args!("denied by identity policy {statement}"),
                );
                return Err(denied("with an explicit deny in an identity-based policy"));
            }
            _ => {}
        }
        // A statement naming the account (`arn:aws:iam::000000000000:root`, or the bare id)
        // matches every principal of it; for a user it only delegates to the identity policy.
        // So the key policy allows a user directly only when it allows them as seen from no
        // account: by their ARN, or as `*`.
        let directly = if self.principal.is_root() {
            by_key.clone()
        } else {
            key_policy.evaluate(&Request {
                caller: identity.caller_outside_account(),
                ..request
            })
        };
        if let Evaluation::Allow(statement) = directly {
            audit(
                policy,
                action,
                format_args!("allowed by key policy {statement}"),
            );
            return Ok(());
        }
        if let (Evaluation::Allow(statement), Evaluation::Allow(_)) = (&by_identity, &by_key) {
            audit(
                policy,
                action,
                format_args!("allowed by identity policy {statement}"),
            );
            return Ok(());
        }
        Err(denied(&format!(
            "because no resource-based policy allows the {action} action"
        )))
    }

    fn arn(&self) -> String {
        self.identity
            .as_ref()
            .map_or_else(|| "anonymous".to_owned(), |i| i.arn.clone())
    }

    /// The condition keys a KMS decision can test.
    fn context(&self) -> Context {
        let mut context = Context::new();
        if let Some(identity) = &self.identity {
            context
                .set("kms:CallerAccount", ACCOUNT_ID)
                .set("aws:PrincipalAccount", ACCOUNT_ID)
                .set("aws:PrincipalArn", identity.arn.clone())
                .set("aws:username", identity.name.clone())
                .set("aws:userid", identity.user_id.clone());
        }
        if let Some(via) = &self.via_service {
            context.set("kms:ViaService", via.clone());
        }
        context
    }
}

/// The policy of `key`: as the backend keeps it, or — for a backend that keeps none — the
/// default of a key whose creator is unknown (the account statement alone).
fn policy_of(kms: &dyn Kms, key: &str) -> Result<KeyPolicy, Refusal> {
    match kms.key_policy(key) {
        Ok(Some(policy)) => Ok(policy),
        Ok(None) => {
            let ctx = coffer_kms::CallContext {
                principal: "coffer-authz".to_owned(),
                resource: None,
            };
            let metadata = kms.describe_key(&ctx, key).map_err(Refusal::Kms)?;
            let document = if metadata.managed {
                // The region is the ARN's fourth field.
                let region = metadata.arn.split(':').nth(3).unwrap_or_default();
                key_policy::managed_policy(region)
            } else {
                key_policy::default_policy(None)
            };
            Ok(KeyPolicy {
                key_id: metadata.key_id,
                arn: metadata.arn,
                document,
                explicit: false,
            })
        }
        Err(error) => Err(Refusal::Kms(error)),
    }
}

/// The keys `operation` acts on, each with the action checked on it, read from the
/// request's fields (`field`: a parameter by its AWS name; the Alibaba API uses the same
/// names, with `KeyId` for an alias's target). `None`: the operation names no key (CreateKey,
/// ListKeys, ListAliases). A key the operation needs but the request does not name is a
/// validation error, so that no call runs unchecked.
pub fn keys_of(
    kms: &dyn Kms,
    operation: Operation,
    field: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Vec<(String, String)>>, Refusal> {
    use Operation as Op;
    let action = |name: &str| format!("kms:{name}");
    let required = |names: &[&str]| {
        names.iter().find_map(|name| field(name)).ok_or_else(|| {
            Refusal::Kms(KmsError::Validation(format!(
                "{} is required for {}",
                names[0],
                operation.name()
            )))
        })
    };
    // Decrypt and ReEncrypt need not name their key: the ciphertext does.
    let key_of_blob = |key_field: &str| -> Result<String, Refusal> {
        if let Some(key) = field(key_field) {
            return Ok(key);
        }
        let blob = required(&["CiphertextBlob"])?;
        let blob = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, blob.trim())
            .map_err(|_| {
                Refusal::Kms(KmsError::Validation(
                    "CiphertextBlob is not valid base64".into(),
                ))
            })?;
        match kms.key_id_of_ciphertext(&blob) {
            Ok(Some(key)) => Ok(key),
            Ok(None) => Err(Refusal::Denied(format!(
                "This KMS cannot tell which key a ciphertext names before decrypting it:                  pass {key_field} to {}.",
                operation.name()
            ))),
            Err(error) => Err(Refusal::Kms(error)),
        }
    };
    let keys = match operation {
        Op::CreateKey | Op::ListKeys | Op::ListAliases => return Ok(None),
        Op::Decrypt => vec![(action("Decrypt"), key_of_blob("KeyId")?)],
        Op::ReEncrypt => vec![
            (action("ReEncryptFrom"), key_of_blob("SourceKeyId")?),
            (action("ReEncryptTo"), required(&["DestinationKeyId"])?),
        ],
        Op::CreateAlias | Op::UpdateAlias => {
            vec![(
                action(operation.name()),
                required(&["TargetKeyId", "KeyId"])?,
            )]
        }
        // The alias resolves to the key whose policy decides.
        Op::DeleteAlias => vec![(action("DeleteAlias"), required(&["AliasName"])?)],
        _ => vec![(action(operation.name()), required(&["KeyId"])?)],
    };
    Ok(Some(keys))
}

/// Writes a decision to the debug log, as the access log names bucket-policy decisions.
fn audit(policy: &KeyPolicy, action: &str, decision: std::fmt::Arguments<'_>) {
    tracing::debug!(key = %policy.key_id, action, authz = %decision, "key policy decision");
}

/// Validates a key policy document before CreateKey or PutKeyPolicy stores it.
pub fn validate(document: &str) -> Result<(), String> {
    key_policy::check_document(None, document).map_err(|e| e.to_string())?;
    Policy::parse(document, Service::Kms, Kind::Resource)
        .map(|_| ())
        .map_err(|e| e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:us-east-1:000000000000:key/k";

    fn key(document: String) -> KeyPolicy {
        KeyPolicy {
            key_id: "k".into(),
            arn: ARN.into(),
            document,
            explicit: false,
        }
    }

    fn user(name: &str, identity: Option<&str>) -> KmsCaller {
        let policy = identity.map(|doc| identity::parse(doc).expect("a valid identity policy"));
        KmsCaller::with_policy(Principal::User(name.into()), policy, None)
    }

    fn allowed(caller: &KmsCaller, policy: &KeyPolicy, action: &str) -> bool {
        match caller.decide(policy, action) {
            Ok(()) => true,
            Err(Refusal::Denied(message)) => {
                assert!(message.contains(action), "{message}");
                false
            }
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_default_policy_allows_root_and_the_creator_only() {
        let policy = key(key_policy::default_policy(Some("alice")));
        let root = KmsCaller::with_policy(Principal::Root, None, None);
        assert!(allowed(&root, &policy, "kms:Decrypt"));
        assert!(allowed(
            &user("alice", None),
            &policy,
            "kms:ScheduleKeyDeletion"
        ));
        assert!(!allowed(&user("bob", None), &policy, "kms:Encrypt"));
        assert!(!allowed(&user("bob", None), &policy, "kms:DescribeKey"));
        let anonymous = KmsCaller::with_policy(Principal::Anonymous, None, None);
        assert!(!allowed(&anonymous, &policy, "kms:Encrypt"));
    }

    #[test]
    fn the_account_statement_delegates_to_identity_policies() {
        let grant = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Action":"kms:Encrypt","Resource":"{ARN}"}}]}}"#
        );
        let bob = user("bob", Some(&grant));
        assert!(allowed(
            &bob,
            &key(key_policy::default_policy(None)),
            "kms:Encrypt"
        ));
        assert!(!allowed(
            &bob,
            &key(key_policy::default_policy(None)),
            "kms:Decrypt"
        ));
        // Without the account statement, the identity policy reaches nothing.
        let alice_only = key(r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":"kms:*","Resource":"*"}]}"#.into());
        assert!(!allowed(&bob, &alice_only, "kms:Encrypt"));
        // …nor does root's own use go through it (lock-out recovery aside).
        let root = KmsCaller::with_policy(Principal::Root, None, None);
        assert!(!allowed(&root, &alice_only, "kms:Encrypt"));
        assert!(allowed(&root, &alice_only, "kms:PutKeyPolicy"));
    }

    #[test]
    fn an_explicit_deny_in_either_policy_wins() {
        let deny = r#"{"Statement":[{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}]}"#;
        let policy = key(key_policy::default_policy(Some("alice")));
        assert!(!allowed(&user("alice", Some(deny)), &policy, "kms:Decrypt"));
        assert!(allowed(&user("alice", Some(deny)), &policy, "kms:Encrypt"));
        let denying_key = key(r#"{"Statement":[
            {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kms:*","Resource":"*"},
            {"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*"}]}"#
            .into());
        let root = KmsCaller::with_policy(Principal::Root, None, None);
        assert!(!allowed(&root, &denying_key, "kms:Decrypt"));
        assert!(allowed(&root, &denying_key, "kms:Encrypt"));
    }

    #[test]
    fn the_managed_key_serves_the_account_through_s3_only() {
        let policy = key(key_policy::managed_policy("us-east-1"));
        let via_s3 = |principal| {
            KmsCaller::with_policy(principal, None, Some(key_policy::via_s3("us-east-1")))
        };
        assert!(allowed(
            &via_s3(Principal::User("bob".into())),
            &policy,
            "kms:GenerateDataKey"
        ));
        assert!(allowed(&via_s3(Principal::Root), &policy, "kms:Decrypt"));
        assert!(!allowed(
            &via_s3(Principal::Anonymous),
            &policy,
            "kms:Decrypt"
        ));
        assert!(!allowed(&user("bob", None), &policy, "kms:Encrypt"));
        let root = KmsCaller::with_policy(Principal::Root, None, None);
        assert!(allowed(&root, &policy, "kms:DescribeKey"));
    }

    #[test]
    fn key_policies_are_validated_whole() {
        assert!(validate(&key_policy::default_policy(Some("alice"))).is_ok());
        assert!(validate(&key_policy::managed_policy("us-east-1")).is_ok());
        assert!(validate("{}").is_err());
        let unknown = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:Frobnicate","Resource":"*"}]}"#;
        assert!(
            validate(unknown)
                .expect_err("unknown action")
                .contains("Frobnicate")
        );
    }
}
