//! Resources: S3 ARNs (`arn:aws:s3:::bucket`, `arn:aws:s3:::bucket/key`), KMS key ARNs, and
//! OSS's `acs:oss:REGION:ACCOUNT:bucket/key`, translated to the S3 form. Resources compare
//! case-sensitively, with `*`/`?` wildcards and, in 2012-10-17 documents, policy variables.

use crate::Service;
use crate::document::Matcher;
use crate::pattern::{Pattern, Syntax};

const S3_PREFIX: &str = "arn:aws:s3:::";

/// The ARN (S3 terms) an entry stands for, or `None` when it is not a resource of `service`.
/// `kms` allows KMS key ARNs too (identity policies that grant `kms:` actions).
pub(crate) fn translate(entry: &str, service: Service, kms: bool) -> Option<String> {
    if entry == "*" {
        return Some(entry.to_owned());
    }
    match service {
        Service::S3 => {
            if let Some(rest) = entry.strip_prefix(S3_PREFIX) {
                return (!rest.is_empty()).then(|| entry.to_owned());
            }
            (kms && is_kms_arn(entry)).then(|| entry.to_owned())
        }
        Service::Kms => is_kms_arn(entry).then(|| entry.to_owned()),
        Service::Oss => {
            let rest = entry.strip_prefix("acs:oss:")?;
            let mut fields = rest.splitn(3, ':');
            let (_region, account, resource) = (fields.next()?, fields.next()?, fields.next()?);
            let account_ok = account == "*" || account.chars().all(|c| c.is_ascii_digit());
            (account_ok && !resource.is_empty()).then(|| format!("{S3_PREFIX}{resource}"))
        }
    }
}

/// `arn:aws:kms:REGION:ACCOUNT:key/ID` or `…:alias/NAME` (wildcards allowed), or Alibaba's
/// `acs:kms:REGION:ACCOUNT:key/ID`.
fn is_kms_arn(entry: &str) -> bool {
    let Some(rest) = entry
        .strip_prefix("arn:aws:kms:")
        .or_else(|| entry.strip_prefix("acs:kms:"))
    else {
        return false;
    };
    let fields: Vec<&str> = rest.splitn(3, ':').collect();
    fields.len() == 3 && !fields[2].is_empty()
}

/// Compiles a translated resource.
pub(crate) fn compile(arn: &str, variables: bool) -> Pattern {
    Pattern::new(
        arn,
        Syntax {
            wildcards: true,
            variables,
        },
    )
}

/// Whether the translated resource `arn` may belong to `bucket`'s policy: `*` never does; an
/// S3 ARN does when its bucket part (before the first `/`) matches the bucket name.
pub(crate) fn in_bucket(arn: &str, bucket: &str) -> bool {
    let Some(rest) = arn.strip_prefix(S3_PREFIX) else {
        return false;
    };
    let bucket_part = rest.split('/').next().unwrap_or(rest);
    let pattern = Pattern::new(
        bucket_part,
        Syntax {
            wildcards: true,
            variables: false,
        },
    );
    // `arn:aws:s3:::*` and `arn:aws:s3:::bk*/…` cover the bucket too.
    pattern.matches_plain(bucket, false)
}

/// What an S3 action acts on, as far as AWS's "Action does not apply to any resource(s) in
/// statement" check goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Bucket,
    Object,
}

fn action_target(action: &str) -> Option<Target> {
    let (service, name) = action.split_once(':')?;
    if !service.eq_ignore_ascii_case("s3") {
        return None;
    }
    let name = *crate::actions::S3_ACTIONS
        .iter()
        .find(|a| a.eq_ignore_ascii_case(name))?;
    const OBJECT: &[&str] = &[
        "AbortMultipartUpload",
        "BypassGovernanceRetention",
        "InitiateReplication",
        "ListMultipartUploadParts",
        "ObjectOwnerOverrideToBucketOwner",
        "ReplicateDelete",
        "ReplicateObject",
        "ReplicateTags",
        "RestoreObject",
    ];
    const BUCKET_CONFIGURATION: &[&str] = &[
        "AccelerateConfiguration",
        "AnalyticsConfiguration",
        "EncryptionConfiguration",
        "IntelligentTieringConfiguration",
        "InventoryConfiguration",
        "LifecycleConfiguration",
        "MetricsConfiguration",
        "ReplicationConfiguration",
    ];
    if OBJECT.contains(&name)
        || ["GetObject", "PutObject", "DeleteObject"]
            .iter()
            .any(|p| name.starts_with(p))
    {
        Some(Target::Object)
    } else if name.contains("Bucket") && name != "ListAllMyBuckets"
        || BUCKET_CONFIGURATION.iter().any(|c| name.ends_with(c))
    {
        Some(Target::Bucket)
    } else {
        None
    }
}

/// Whether some action of the statement can apply to some resource of it. Only literal S3
/// actions of known target and S3 resources are judged; anything else may apply.
pub(crate) fn any_applies(action: &Matcher, resource: &Matcher) -> bool {
    if action.negated || resource.negated {
        return true;
    }
    let mut targets = Vec::new();
    for pattern in &action.patterns {
        let Some(literal) = pattern.literal() else {
            return true;
        };
        match action_target(&literal) {
            Some(target) => targets.push(target),
            None => return true,
        }
    }
    resource.arns.iter().any(|arn| {
        let Some(rest) = arn.strip_prefix(S3_PREFIX) else {
            return true;
        };
        // Bucket names have no `/`: a `/` makes an object ARN; a `*` with no `/` may be either.
        let object = rest.contains('/') || rest.contains(['*', '?']);
        let bucket = !rest.contains('/');
        targets
            .iter()
            .any(|t| (*t == Target::Object && object) || (*t == Target::Bucket && bucket))
    }) || targets.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_resources() {
        assert!(translate("arn:aws:s3:::bkt/*", Service::S3, false).is_some());
        assert!(translate("*", Service::S3, false).is_some());
        assert!(translate("arn:aws:s3:::", Service::S3, false).is_none());
        assert!(translate("bkt/*", Service::S3, false).is_none());
        assert!(
            translate(
                "arn:aws:kms:us-east-1:000000000000:key/k",
                Service::S3,
                false
            )
            .is_none()
        );
        assert!(
            translate(
                "arn:aws:kms:us-east-1:000000000000:key/k",
                Service::S3,
                true
            )
            .is_some()
        );
    }

    #[test]
    fn oss_resources_translate() {
        assert_eq!(
            translate("acs:oss:*:*:bkt/docs/*", Service::Oss, false).as_deref(),
            Some("arn:aws:s3:::bkt/docs/*")
        );
        assert_eq!(
            translate("acs:oss:*:000000000000:bkt", Service::Oss, false).as_deref(),
            Some("arn:aws:s3:::bkt")
        );
        assert!(translate("acs:oss:*:abc:bkt", Service::Oss, false).is_none());
        assert!(translate("arn:aws:s3:::bkt", Service::Oss, false).is_none());
    }

    #[test]
    fn bucket_membership() {
        assert!(in_bucket("arn:aws:s3:::bkt", "bkt"));
        assert!(in_bucket("arn:aws:s3:::bkt/*", "bkt"));
        assert!(in_bucket("arn:aws:s3:::bk?/x", "bkt"));
        assert!(!in_bucket("arn:aws:s3:::other/*", "bkt"));
        assert!(!in_bucket("arn:aws:s3:::bktx", "bkt"));
        assert!(!in_bucket("*", "bkt"));
    }
}
