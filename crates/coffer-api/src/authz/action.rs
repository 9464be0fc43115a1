//! Which IAM action each operation is, on which resource, and which ACL permission grants it
//! — the table of AWS's "Actions, resources, and condition keys for Amazon S3" and "Mapping of
//! ACL permissions and access policy permissions". OSS policies name the same actions with
//! `oss:` (translated by `coffer-policy`); OSS-only operations keep their OSS names.

use super::acl::Permission;
use crate::request::ApiRequest;
use crate::router::Operation;

/// What an action is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The account: ListBuckets, CreateBucket (no bucket to load yet).
    Service,
    /// The bucket (`arn:aws:s3:::bucket`) or a write into it (PutObject: the object ARN, the
    /// bucket's ACL).
    Bucket,
    /// An existing object (`arn:aws:s3:::bucket/key`): its owner and ACL decide too.
    Object,
}

/// One operation as a policy and an ACL see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    /// The IAM action, e.g. `s3:GetObject`.
    pub name: &'static str,
    /// Where it applies.
    pub scope: Scope,
    /// Whether the resource ARN names the object (`bucket/key`) rather than the bucket.
    pub on_object: bool,
    /// The ACL permission that grants it (on the bucket for [`Scope::Bucket`], on the object
    /// for [`Scope::Object`]); `None`: no ACL grants it (only the owner and policies).
    pub acl: Option<Permission>,
}

const fn bucket(name: &'static str, acl: Option<Permission>) -> Action {
    Action {
        name,
        scope: Scope::Bucket,
        on_object: false,
        acl,
    }
}

/// A write of an object: the object's ARN, the bucket's WRITE.
const fn write(name: &'static str) -> Action {
    Action {
        name,
        scope: Scope::Bucket,
        on_object: true,
        acl: Some(Permission::Write),
    }
}

const fn object(name: &'static str, acl: Option<Permission>) -> Action {
    Action {
        name,
        scope: Scope::Object,
        on_object: true,
        acl,
    }
}

const fn service(name: &'static str) -> Action {
    Action {
        name,
        scope: Scope::Service,
        on_object: false,
        acl: None,
    }
}

/// Whether the request names a version (`?versionId=`), which turns `s3:GetObject` into
/// `s3:GetObjectVersion` and the like.
fn versioned(req: &ApiRequest) -> bool {
    req.query.has("versionId")
}

/// The action of `operation`; `None` for requests that do nothing to authorize
/// (NotImplemented, MethodNotAllowed) and for the APIs with their own checks (admin, KMS,
/// probes). DeleteObjects is checked per key ([`delete_object`]), so its own action only
/// loads the bucket.
pub fn of(operation: &Operation, req: &ApiRequest) -> Option<Action> {
    use Operation::*;
    use Permission::{Read, ReadAcp, Write, WriteAcp};
    let v = versioned(req);
    Some(match operation {
        ListBuckets => service("s3:ListAllMyBuckets"),
        CreateBucket => service("s3:CreateBucket"),

        HeadBucket | ListObjects | ListObjectsV2 => bucket("s3:ListBucket", Some(Read)),
        ListObjectVersions => bucket("s3:ListBucketVersions", Some(Read)),
        ListMultipartUploads => bucket("s3:ListBucketMultipartUploads", Some(Read)),
        DeleteBucket => bucket("s3:DeleteBucket", None),
        GetBucketLocation => bucket("s3:GetBucketLocation", None),
        // Checked per key; the bucket itself needs no permission.
        DeleteObjects => bucket("s3:DeleteObject", Some(Write)),

        PutBucketEncryption | DeleteBucketEncryption => {
            bucket("s3:PutEncryptionConfiguration", None)
        }
        GetBucketEncryption => bucket("s3:GetEncryptionConfiguration", None),
        PutBucketPolicy => bucket("s3:PutBucketPolicy", None),
        GetBucketPolicy => bucket("s3:GetBucketPolicy", None),
        DeleteBucketPolicy => bucket("s3:DeleteBucketPolicy", None),
        PutBucketVersioning => bucket("s3:PutBucketVersioning", None),
        GetBucketVersioning => bucket("s3:GetBucketVersioning", None),
        PutBucketLifecycleConfiguration | DeleteBucketLifecycle => {
            bucket("s3:PutLifecycleConfiguration", None)
        }
        GetBucketLifecycleConfiguration => bucket("s3:GetLifecycleConfiguration", None),
        PutObjectLockConfiguration => bucket("s3:PutBucketObjectLockConfiguration", None),
        GetObjectLockConfiguration => bucket("s3:GetBucketObjectLockConfiguration", None),
        PutBucketTagging | DeleteBucketTagging => bucket("s3:PutBucketTagging", None),
        GetBucketTagging => bucket("s3:GetBucketTagging", None),
        PutBucketPublicAccessBlock | DeleteBucketPublicAccessBlock => {
            bucket("s3:PutBucketPublicAccessBlock", None)
        }
        GetBucketPublicAccessBlock => bucket("s3:GetBucketPublicAccessBlock", None),
        GetBucketPolicyStatus => bucket("s3:GetBucketPolicyStatus", None),
        PutBucketAcl => bucket("s3:PutBucketAcl", Some(WriteAcp)),
        GetBucketAcl => bucket("s3:GetBucketAcl", Some(ReadAcp)),
        PutBucketCors | DeleteBucketCors => bucket("s3:PutBucketCORS", None),
        GetBucketCors => bucket("s3:GetBucketCORS", None),
        PutBucketOwnershipControls | DeleteBucketOwnershipControls => {
            bucket("s3:PutBucketOwnershipControls", None)
        }
        GetBucketOwnershipControls => bucket("s3:GetBucketOwnershipControls", None),
        // OSS-only bucket settings: their OSS action names in S3's namespace (a policy reaches
        // them with `s3:*`/`oss:*` wildcards; the owner always may).
        PutBucketHttpsConfig => bucket("s3:PutBucketHttpsConfig", None),
        GetBucketHttpsConfig => bucket("s3:GetBucketHttpsConfig", None),
        InitiateBucketWorm => bucket("s3:InitiateBucketWorm", None),
        AbortBucketWorm => bucket("s3:AbortBucketWorm", None),
        CompleteBucketWorm => bucket("s3:CompleteBucketWorm", None),
        ExtendBucketWorm => bucket("s3:ExtendBucketWorm", None),
        GetBucketWorm => bucket("s3:GetBucketWorm", None),

        PutObject
        | CopyObject
        | CreateMultipartUpload
        | UploadPart
        | UploadPartCopy
        | CompleteMultipartUpload
        | PostObject => write("s3:PutObject"),
        AbortMultipartUpload => write("s3:AbortMultipartUpload"),
        ListParts => write("s3:ListMultipartUploadParts"),
        DeleteObject if v => write("s3:DeleteObjectVersion"),
        DeleteObject => write("s3:DeleteObject"),

        GetObject | HeadObject if v => object("s3:GetObjectVersion", Some(Read)),
        GetObject | HeadObject => object("s3:GetObject", Some(Read)),
        GetObjectAttributes if v => object("s3:GetObjectVersionAttributes", None),
        GetObjectAttributes => object("s3:GetObjectAttributes", None),
        PutObjectTagging if v => object("s3:PutObjectVersionTagging", None),
        PutObjectTagging => object("s3:PutObjectTagging", None),
        GetObjectTagging if v => object("s3:GetObjectVersionTagging", None),
        GetObjectTagging => object("s3:GetObjectTagging", None),
        DeleteObjectTagging if v => object("s3:DeleteObjectVersionTagging", None),
        DeleteObjectTagging => object("s3:DeleteObjectTagging", None),
        PutObjectAcl if v => object("s3:PutObjectVersionAcl", Some(WriteAcp)),
        PutObjectAcl => object("s3:PutObjectAcl", Some(WriteAcp)),
        GetObjectAcl if v => object("s3:GetObjectVersionAcl", Some(ReadAcp)),
        GetObjectAcl => object("s3:GetObjectAcl", Some(ReadAcp)),
        PutObjectRetention => object("s3:PutObjectRetention", None),
        GetObjectRetention => object("s3:GetObjectRetention", None),
        PutObjectLegalHold => object("s3:PutObjectLegalHold", None),
        GetObjectLegalHold => object("s3:GetObjectLegalHold", None),

        UnsupportedObjectSubresource
        | UnsupportedBucketSubresource
        | MethodNotAllowed
        // Answered before authentication, from the bucket's CORS rules.
        | CorsPreflight
        | Admin(_)
        | Kms(_)
        | Health(_) => return None,
    })
}

/// Reading a copy source (CopyObject, UploadPartCopy): `s3:GetObject` on the source.
pub fn read_source(version_named: bool) -> Action {
    if version_named {
        object("s3:GetObjectVersion", Some(Permission::Read))
    } else {
        object("s3:GetObject", Some(Permission::Read))
    }
}

/// Listing the bucket (`s3:ListBucket`), which decides whether a reader of a missing object
/// learns that it is missing.
pub fn of_list() -> Action {
    bucket("s3:ListBucket", Some(Permission::Read))
}

/// One key of a DeleteObjects request.
pub fn delete_object(version_named: bool) -> Action {
    if version_named {
        write("s3:DeleteObjectVersion")
    } else {
        write("s3:DeleteObject")
    }
}

/// Bypassing GOVERNANCE retention (`x-amz-bypass-governance-retention: true`), checked beside
/// the operation's own action.
pub const BYPASS_GOVERNANCE: Action = object("s3:BypassGovernanceRetention", None);

/// The three operations AWS keeps open to the bucket owner (and root) whatever the bucket
/// policy denies, so that a policy that locks everyone out can be repaired.
pub fn repairs_policy(operation: &Operation) -> bool {
    matches!(
        operation,
        Operation::PutBucketPolicy | Operation::GetBucketPolicy | Operation::DeleteBucketPolicy
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_name_the_object_and_need_bucket_write() {
        let put = write("s3:PutObject");
        assert!(put.on_object && put.scope == Scope::Bucket);
        assert_eq!(put.acl, Some(Permission::Write));
        assert_eq!(read_source(true).name, "s3:GetObjectVersion");
        assert_eq!(delete_object(false).name, "s3:DeleteObject");
        assert!(repairs_policy(&Operation::DeleteBucketPolicy));
        assert!(!repairs_policy(&Operation::PutBucketTagging));
    }
}
