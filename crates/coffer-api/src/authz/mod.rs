//! Authorization: whether the request's principal may run its operation on its target, as
//! AWS evaluates it ("Policy evaluation logic", "How Amazon S3 authorizes a request"):
//!
//! 1. an explicit Deny in the bucket policy or the caller's own (identity) policy refuses —
//!    root included, except that root and the bucket owner may always get, put and delete the
//!    bucket policy (AWS keeps those open to recover from a lock-out);
//! 2. otherwise root, the resource's owner, an Allow of the bucket policy (ignored for an
//!    anonymous caller when RestrictPublicBuckets is on and the policy is public), an Allow
//!    of the identity policy, or an ACL grant (public grants ignored under IgnorePublicAcls)
//!    allows;
//! 3. otherwise the request is refused.
//!
//! [`authorize`] runs once per request from `ops::dispatch` with the operation the router
//! named; copy sources ([`authorize_copy_source`]) and each key of a DeleteObjects request
//! ([`authorize_delete`]) are checked where the operation learns them. Decisions that are
//! not "owner or root" are noted for the request's access-log line.
//!
//! Layout: this module holds the evaluation order; [`action`] the operation → IAM action
//! table; [`context`] the caller's identity and the condition keys; [`bucket_policy`] the
//! stored policy, parsed once per document; [`acl`] the access control lists; [`identity`]
//! the policies attached to users; [`public_access_block`] the bucket's four switches. The
//! policy documents themselves are parsed and evaluated by `coffer-policy`.

pub mod acl;
pub mod action;
pub mod bucket_policy;
pub mod context;
pub mod public_access_block;

use std::sync::Arc;

use coffer_policy::{Evaluation, Policy, Request};
use coffer_store::{BucketRecord, ObjectRecord, VersionRef};

use self::acl::Acl;
use self::action::{Action, Scope};
use self::public_access_block::PublicAccessBlock;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::identity::{self, CallerIdentity};
use crate::request::ApiRequest;
use crate::router::Operation;
use crate::state::{AppState, Principal};

pub use crate::request::{Authorized, DecisionLog};

/// Authorizes `req` for `operation`: `Ok(Some(_))` with the bucket for a bucket or object
/// operation, `Ok(None)` for a service operation (ListBuckets, CreateBucket) or one with
/// nothing to authorize; `AccessDenied` when refused.
pub async fn authorize(
    state: &AppState,
    req: &ApiRequest,
    operation: &Operation,
) -> ApiResult<Option<Authorized>> {
    let Some(action) = action::of(operation, req) else {
        // Nothing a policy or an ACL could open (NotImplemented, MethodNotAllowed): an
        // unsigned request learns nothing more than AccessDenied.
        if req.principal == Principal::Anonymous {
            Verdict::implicit_deny().enforce(req)?;
        }
        return Ok(None);
    };
    if action.scope == Scope::Service {
        authorize_service(state, req, &action).await?;
        return Ok(None);
    }
    let bucket = load_bucket(state, req, req.bucket()?).await?;
    let repair = action::repairs_policy(operation);
    let owner = req.principal.is_root() || req.principal.is(&bucket.owner);
    // Root and the owner can always repair the OSS TLS rule itself.
    let repairs_https = matches!(
        operation,
        Operation::PutBucketHttpsConfig | Operation::GetBucketHttpsConfig
    );
    if !(owner && (repair || repairs_https)) {
        transport(&bucket, req)?;
    }
    if *operation == Operation::DeleteObjects {
        // Each key is checked as the body names it.
        return Ok(Some(Authorized {
            bucket,
            bypass_governance: false,
        }));
    }
    let resource = Resource {
        bucket: &bucket,
        key: req.key.as_deref(),
        version: req.query.get("versionId"),
    };
    decide(state, req, &resource, &action, repair)
        .await?
        .enforce(req)?;
    let bypass_governance = asks_bypass(req)
        && matches!(
            operation,
            Operation::DeleteObject | Operation::PutObjectRetention
        )
        && decide(state, req, &resource, &action::BYPASS_GOVERNANCE, false)
            .await?
            .allowed(req);
    Ok(Some(Authorized {
        bucket,
        bypass_governance,
    }))
}

/// Authorizes reading the source of a copy (`s3:GetObject` on it, its bucket's transport
/// rules): the bucket, if allowed.
pub async fn authorize_copy_source(
    state: &AppState,
    req: &ApiRequest,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> ApiResult<BucketRecord> {
    let source = load_bucket(state, req, bucket).await?;
    transport(&source, req)?;
    let resource = Resource {
        bucket: &source,
        key: Some(key),
        version,
    };
    decide(
        state,
        req,
        &resource,
        &action::read_source(version.is_some()),
        false,
    )
    .await?
    .enforce(req)?;
    Ok(source)
}

/// Authorizes deleting one key of a DeleteObjects request: whether GOVERNANCE retention may be
/// bypassed for it, or `AccessDenied` for that key.
pub async fn authorize_delete(
    state: &AppState,
    req: &ApiRequest,
    bucket: &BucketRecord,
    key: &str,
    version: Option<&str>,
) -> ApiResult<bool> {
    let resource = Resource {
        bucket,
        key: Some(key),
        version,
    };
    decide(
        state,
        req,
        &resource,
        &action::delete_object(version.is_some()),
        false,
    )
    .await?
    .enforce(req)?;
    Ok(asks_bypass(req)
        && decide(state, req, &resource, &action::BYPASS_GOVERNANCE, false)
            .await?
            .allowed(req))
}

/// Whether the request asks to bypass GOVERNANCE retention.
fn asks_bypass(req: &ApiRequest) -> bool {
    req.header("x-amz-bypass-governance-retention")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The bucket `name`; for an anonymous caller a missing bucket is AccessDenied like a private
/// one, so that unsigned requests cannot tell which names exist.
pub async fn load_bucket(
    state: &AppState,
    req: &ApiRequest,
    name: &str,
) -> ApiResult<BucketRecord> {
    match state.meta.get_bucket(name).await {
        Ok(bucket) => Ok(bucket),
        Err(error) => {
            let error = ApiError::from(error);
            if req.principal == Principal::Anonymous && error.code == ErrorCode::NoSuchBucket {
                Err(ApiError::access_denied("Access Denied"))
            } else {
                Err(error)
            }
        }
    }
}

/// The OSS httpsConfig's refusal of this request's transport, if any. (TLS conditions in
/// bucket policies are ordinary condition keys.)
fn transport(bucket: &BucketRecord, req: &ApiRequest) -> ApiResult<()> {
    match crate::bucket_config::https_config::https_config_refusal(bucket, req.tls.as_ref()) {
        Some(refusal) => Err(ApiError::access_denied(refusal)),
        None => Ok(()),
    }
}

/// ListBuckets and CreateBucket: any signed caller, unless its own policy denies.
async fn authorize_service(state: &AppState, req: &ApiRequest, action: &Action) -> ApiResult<()> {
    if req.principal == Principal::Anonymous {
        return Verdict::implicit_deny().enforce(req);
    }
    let Some(policy) = identity::policy_of(state, &req.principal).await? else {
        return Ok(());
    };
    let identity = CallerIdentity::of(&req.principal);
    let context = context::of_request(req, &req.principal);
    let resource = match (action.name, req.bucket.as_deref()) {
        ("s3:CreateBucket", Some(bucket)) => arn(bucket, None),
        _ => "*".to_owned(),
    };
    let request = Request {
        caller: context::caller(identity.as_ref()),
        action: action.name,
        resource: &resource,
        context: &context,
    };
    match policy.evaluate(&request) {
        Evaluation::Deny(statement) => Verdict::Denied {
            message: format!("Access denied by your user policy: {statement} denies it."),
            note: format!("denied by user policy {statement}"),
        }
        .enforce(req),
        _ => Ok(()),
    }
}

/// What a decision is about.
struct Resource<'a> {
    bucket: &'a BucketRecord,
    key: Option<&'a str>,
    /// The version the request names (`versionId`, a copy source's version).
    version: Option<&'a str>,
}

/// One decision.
enum Verdict {
    /// Allowed; the note says by what, unless by ownership (or root).
    Allowed(Option<String>),
    /// Refused: the error's message and the note.
    Denied { message: String, note: String },
}

impl Verdict {
    fn implicit_deny() -> Self {
        Verdict::Denied {
            message: "Access Denied".to_owned(),
            note: "denied: no policy or ACL allows it".to_owned(),
        }
    }

    /// Notes the decision and turns a refusal into `AccessDenied`.
    fn enforce(self, req: &ApiRequest) -> ApiResult<()> {
        match self {
            Verdict::Allowed(note) => {
                if let Some(note) = note {
                    req.decisions.note(&req.request_id, note);
                }
                Ok(())
            }
            Verdict::Denied { message, note } => {
                req.decisions.note(&req.request_id, note);
                Err(ApiError::access_denied(message))
            }
        }
    }

    /// Notes an allowing decision (a second action's, like the bypass of retention).
    fn allowed(self, req: &ApiRequest) -> bool {
        match self {
            Verdict::Allowed(note) => {
                if let Some(note) = note {
                    req.decisions.note(&req.request_id, note);
                }
                true
            }
            Verdict::Denied { .. } => false,
        }
    }
}

/// The S3 ARN of a bucket or an object.
fn arn(bucket: &str, key: Option<&str>) -> String {
    match key {
        Some(key) => format!("arn:aws:s3:::{bucket}/{key}"),
        None => format!("arn:aws:s3:::{bucket}"),
    }
}

/// Whether the bucket owner owns every object of the bucket (ObjectOwnership
/// BucketOwnerEnforced, the default): then the writer's name on a record does not matter.
fn bucket_owner_owns_objects(bucket: &BucketRecord) -> bool {
    acl::ObjectOwnership::of(bucket) == acl::ObjectOwnership::BucketOwnerEnforced
}

/// Whether a policy's conditions read an object's existing tags (then the object record is
/// loaded even for its owner).
fn reads_existing_tags(text: &str) -> bool {
    text.to_ascii_lowercase().contains("existingobjecttag")
}

/// The facts one decision reads: the caller, the policies and the object.
struct Facts<'a> {
    req: &'a ApiRequest,
    bucket: &'a BucketRecord,
    policy: Option<Arc<Policy>>,
    user_policy: Option<Arc<Policy>>,
    record: Option<ObjectRecord>,
    context: coffer_policy::Context,
    identity: Option<CallerIdentity>,
}

/// Loads what deciding `action` on `resource` needs, then decides (the evaluation order of
/// the module's documentation).
async fn decide(
    state: &AppState,
    req: &ApiRequest,
    resource: &Resource<'_>,
    action: &Action,
    repair: bool,
) -> ApiResult<Verdict> {
    let principal = &req.principal;
    let bucket = resource.bucket;
    let bucket_owner = principal.is_root() || principal.is(&bucket.owner);
    let policy = match bucket_policy::of(bucket) {
        Ok(policy) => policy,
        Err(error) if !(repair && bucket_owner) => {
            tracing::error!(bucket = %bucket.name, %error, "stored bucket policy does not parse");
            return Ok(Verdict::Denied {
                message: "Access denied: the bucket policy cannot be evaluated; its owner may replace or delete it.".to_owned(),
                note: "denied: the stored bucket policy does not parse".to_owned(),
            });
        }
        Err(_) => None,
    };
    let user_policy = identity::policy_of(state, principal).await?;
    // Root and the owner of a bucket without policies: nothing can deny or needs reading.
    if policy.is_none() && user_policy.is_none() && bucket_owner && action.scope == Scope::Bucket {
        return Ok(Verdict::Allowed(None));
    }
    let record = match (action.scope, resource.key) {
        (Scope::Object, Some(key)) => {
            let tags_read = bucket
                .config
                .get(bucket_policy::POLICY_KEY)
                .is_some_and(|text| reads_existing_tags(text))
                || user_policy
                    .as_ref()
                    .is_some_and(|p| reads_existing_tags(&p.to_json()));
            let owner_decides =
                bucket_owner && (principal.is_root() || bucket_owner_owns_objects(bucket));
            if tags_read || !owner_decides {
                object_record(state, req, bucket, key, resource.version).await?
            } else {
                None
            }
        }
        _ => None,
    };
    let mut context = context::of_request(req, principal);
    if let Some(record) = &record {
        context::existing_tags(record, &mut context);
    }
    let facts = Facts {
        req,
        bucket,
        policy,
        user_policy,
        record,
        context,
        identity: CallerIdentity::of(principal),
    };
    let verdict = facts.evaluate(action, resource.key, repair);
    // A caller that may read objects but not list the bucket does not learn that a key is
    // absent: 403, not 404 (S3's GetObject and HeadObject).
    let reads_missing = matches!(action.name, "s3:GetObject" | "s3:GetObjectVersion")
        && facts.record.is_none()
        && !bucket_owner;
    if reads_missing && matches!(verdict, Verdict::Allowed(_)) {
        let list = action::of_list();
        if let Verdict::Denied { .. } = facts.evaluate(&list, None, false) {
            return Ok(Verdict::Denied {
                message: "Access Denied".to_owned(),
                note: "denied: the object does not exist and s3:ListBucket is not allowed"
                    .to_owned(),
            });
        }
    }
    Ok(verdict)
}

impl Facts<'_> {
    /// The stored bucket policy's text (empty without one).
    fn policy_text(&self) -> &str {
        self.bucket
            .config
            .get(bucket_policy::POLICY_KEY)
            .map_or("", String::as_str)
    }

    fn evaluate(&self, action: &Action, key: Option<&str>, repair: bool) -> Verdict {
        let req = self.req;
        let principal = &req.principal;
        let bucket = self.bucket;
        let bucket_owner = principal.is_root() || principal.is(&bucket.owner);
        let target = arn(&bucket.name, key.filter(|_| action.on_object));
        let request = Request {
            caller: context::caller(self.identity.as_ref()),
            action: action.name,
            resource: &target,
            context: &self.context,
        };
        let by_bucket = self.policy.as_ref().map(|p| p.evaluate(&request));
        let by_user = self.user_policy.as_ref().map(|p| p.evaluate(&request));

        // 1. An explicit Deny wins.
        if let Some(Evaluation::Deny(statement)) = &by_bucket
            && !(repair && bucket_owner)
        {
            let keys = bucket_policy::condition_keys(self.policy_text(), statement.index);
            let conditions = if keys.is_empty() {
                String::new()
            } else {
                format!(" when its conditions on {} hold", keys.join(", "))
            };
            return Verdict::Denied {
                message: format!(
                    "Access denied by the bucket policy: {statement} denies {}{conditions}; this request came over {}.",
                    action.name,
                    transport_name(req)
                ),
                note: format!("denied by bucket policy {statement}"),
            };
        }
        if let Some(Evaluation::Deny(statement)) = &by_user {
            return Verdict::Denied {
                message: format!(
                    "Access denied by your user policy: {statement} denies {}.",
                    action.name
                ),
                note: format!("denied by user policy {statement}"),
            };
        }

        // 2. Anything that allows.
        if principal.is_root() || owns(principal, bucket, action, self.record.as_ref()) {
            return Verdict::Allowed(None);
        }
        let block = PublicAccessBlock::of(bucket);
        if let Some(Evaluation::Allow(statement)) = &by_bucket {
            let restricted = block.restrict_public_buckets
                && *principal == Principal::Anonymous
                && self.policy.as_ref().is_some_and(|p| p.is_public());
            // A statement that names only the account delegates to the account's own
            // policies: it allows a user only as one named directly (by ARN or `*`) would be.
            let delegated = match (principal, &self.identity) {
                (Principal::User(_), Some(identity)) => !matches!(
                    self.policy.as_ref().map(|p| p.evaluate(&Request {
                        caller: identity.caller_outside_account(),
                        ..request
                    })),
                    Some(Evaluation::Allow(_))
                ),
                _ => false,
            };
            if !restricted && !delegated {
                return Verdict::Allowed(Some(format!("allowed by bucket policy {statement}")));
            }
        }
        if let Some(Evaluation::Allow(statement)) = &by_user {
            return Verdict::Allowed(Some(format!("allowed by user policy {statement}")));
        }
        if let Some(permission) = action.acl {
            let (acl, what) = match action.scope {
                Scope::Object => (
                    self.record.as_ref().map(|r| Acl::of_object(bucket, r)),
                    "object",
                ),
                _ => (Some(Acl::of_bucket(bucket)), "bucket"),
            };
            // (The ACL itself ignores public grants under IgnorePublicAcls.)
            if let Some(acl) = acl
                && acl.allows(principal, permission)
            {
                return Verdict::Allowed(Some(format!(
                    "allowed by the {what} ACL ({permission:?})"
                )));
            }
        }
        // 3. Nothing allows.
        Verdict::implicit_deny()
    }
}

/// Whether `principal` owns what `action` is about: the bucket for bucket actions and writes
/// into it; for an existing object, the bucket owner when it owns every object, else the
/// object's writer (and the bucket owner while the object does not exist, so that it learns
/// so).
fn owns(
    principal: &Principal,
    bucket: &BucketRecord,
    action: &Action,
    record: Option<&ObjectRecord>,
) -> bool {
    let bucket_owner = principal.is(&bucket.owner);
    match action.scope {
        Scope::Service => false,
        Scope::Bucket => bucket_owner,
        Scope::Object => match record {
            None => bucket_owner,
            Some(record) => {
                (bucket_owner && bucket_owner_owns_objects(bucket)) || principal.is(&record.owner)
            }
        },
    }
}

/// The object a decision is about, if it exists (a missing one leaves the decision to the
/// bucket's policies; the operation then answers 404 to a caller allowed to learn it).
async fn object_record(
    state: &AppState,
    req: &ApiRequest,
    bucket: &BucketRecord,
    key: &str,
    version: Option<&str>,
) -> ApiResult<Option<ObjectRecord>> {
    let which = version
        .filter(|v| !v.is_empty())
        .map(VersionRef::from_query);
    match crate::object_io::version::read_version(state, req, bucket, key, which).await {
        Ok(record) => Ok(Some(record)),
        Err(error)
            if matches!(
                error.code,
                ErrorCode::NoSuchKey | ErrorCode::NoSuchVersion | ErrorCode::MethodNotAllowed
            ) =>
        {
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// How the request came, for a refusal's message.
fn transport_name(req: &ApiRequest) -> String {
    match &req.tls {
        None => "plain HTTP".to_owned(),
        Some(tls) => format!("{} ({})", tls.version.name(), tls.cipher),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_and_tag_detection() {
        assert_eq!(arn("b", None), "arn:aws:s3:::b");
        assert_eq!(arn("b", Some("a/k")), "arn:aws:s3:::b/a/k");
        assert!(reads_existing_tags(
            r#"{"Condition":{"StringEquals":{"s3:existingObjectTag/x":"y"}}}"#
        ));
        assert!(!reads_existing_tags(r#"{"Action":"s3:GetObject"}"#));
    }

    #[test]
    fn decision_log_is_bounded() {
        let log = DecisionLog::default();
        assert_eq!(log.text(), None);
        for i in 0..20 {
            log.note("r", format!("n{i}"));
        }
        assert_eq!(log.text().expect("noted").split("; ").count(), 8);
    }
}
