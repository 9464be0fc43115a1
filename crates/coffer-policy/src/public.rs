//! The public test of S3's block public access ("The meaning of public"): a policy is public
//! when an Allow statement reaches everyone (`*`, or NotPrincipal) without a condition that
//! fixes one of the keys that narrow the caller to known parties.

use crate::document::{Effect, Statement};

/// Keys whose fixed values (no wildcard, no policy variable; for `aws:SourceIp`, a CIDR
/// block no wider than /8 for IPv4 or /32 for IPv6) make an Allow to everyone non-public.
const NARROWING_KEYS: &[&str] = &[
    "aws:SourceIp",
    "aws:SourceArn",
    "aws:SourceVpc",
    "aws:SourceVpce",
    "aws:SourceOwner",
    "aws:SourceAccount",
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:PrincipalOrgID",
    "aws:userid",
    "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "s3:DataAccessPointArn",
    "s3:DataAccessPointAccount",
];

/// Whether the statement grants something to the public.
pub(crate) fn is_public(statement: &Statement) -> bool {
    if statement.effect != Effect::Allow {
        return false;
    }
    let Some(principal) = &statement.principal else {
        return false;
    };
    if !principal.negated && !principal.principals.is_everyone() {
        return false;
    }
    !statement
        .conditions
        .iter()
        .any(|c| NARROWING_KEYS.iter().any(|key| c.fixes(key)))
}
