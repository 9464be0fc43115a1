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

use coffer_kms::key_policy::{self, KeyPolicy};
use coffer_kms::{Kms, KmsError};
use coffer_policy::{Context, Evaluation, Kind, Policy, Request, Service};

use super::Operation;
use crate::authz::identity::{self, ACCOUNT_ID, CallerIdentity};
use crate::error::ApiResult;
use crate::state::{AppState, Principal};

/// The actions root may always take on a key, whatever its policy says.
const LOCKOUT_RECOVERY: [&str; 3] = ["kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:DescribeKey"];

/// Who asks the KMS, with what a key policy decision needs to know about them.
#[derive(Debug, Clone)]
pub struct KmsCaller {
    principal: Principal,
    identity: Option<CallerIdentity>,
    /// The KMS half of the caller's identity policy.
    user_policy: Option<Policy>,
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
            identity::kms_policy_of(state, principal).await?,
            None,
        ))
    }

    /// `principal`'s request to S3, which uses a key on their behalf.
    pub async fn via_s3(state: &AppState, principal: &Principal) -> ApiResult<Self> {
        Ok(Self::with_policy(
            principal.clone(),
            identity::kms_policy_of(state, principal).await?,
            Some(key_policy::via_s3(&state.settings.region)),
        ))
    }

    /// A caller with the identity policy given (tests, and callers that already have it).
    pub fn with_policy(
        principal: Principal,
        user_policy: Option<Policy>,
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
        let key_policy = match Policy::parse(&policy.document, Service::Kms, Kind::Resource) {
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
                tracing::debug!(key = %policy.key_id, action, authz = %format!("denied by key policy {statement}"));
                return Err(denied("with an explicit deny in a resource-based policy"));
            }
            (_, Evaluation::Deny(statement)) => {
                tracing::debug!(key = %policy.key_id, action, authz = %format!("denied by identity policy {statement}"));
                return Err(denied("with an explicit deny in an identity-based policy"));
            }
            (Evaluation::Allow(_), _) => return Ok(()),
            _ => {}
        }
        if let Evaluation::Allow(statement) = by_identity {
            // The account statement delegates to identity policies: does the key policy
            // allow the account itself (its root) this action?
            let root = CallerIdentity::root();
            let as_account = Request {
                caller: root.caller(),
                ..request
            };
            if matches!(key_policy.evaluate(&as_account), Evaluation::Allow(_)) {
                tracing::debug!(key = %policy.key_id, action, authz = %format!("allowed by identity policy {statement}"));
                return Ok(());
            }
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

/// Validates a key policy document before CreateKey or PutKeyPolicy stores it.
pub fn validate(document: &str) -> Result<(), String> {
    key_policy::check_document(None, document).map_err(|e| e.to_string())?;
    Policy::parse(document, Service::Kms, Kind::Resource)
        .map(|_| ())
        .map_err(|e| e.message)
}
