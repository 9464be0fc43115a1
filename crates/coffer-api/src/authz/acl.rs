//! Access control lists of buckets and objects (S3 `AccessControlPolicy`, OSS `x-oss-acl`).
//!
//! Today (the seam): every bucket and object is private — its owner has FULL_CONTROL, nobody
//! else anything.

use coffer_store::{BucketRecord, ObjectRecord};

use crate::state::Principal;

/// What an ACL grant gives (S3's permission names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// READ: list a bucket, read an object.
    Read,
    /// WRITE: create, overwrite and delete objects in a bucket.
    Write,
    /// READ_ACP: read the ACL.
    ReadAcp,
    /// WRITE_ACP: replace the ACL.
    WriteAcp,
    /// FULL_CONTROL: all of the above.
    FullControl,
}

/// A bucket's or an object's ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// The owner's name: the owner always has FULL_CONTROL.
    owner: String,
}

impl Acl {
    /// The bucket's ACL.
    pub fn of_bucket(bucket: &BucketRecord) -> Self {
        Acl {
            owner: bucket.owner.clone(),
        }
    }

    /// The object's ACL (`bucket` decides who owns objects under BucketOwnerEnforced).
    pub fn of_object(_bucket: &BucketRecord, record: &ObjectRecord) -> Self {
        Acl {
            owner: record.owner.clone(),
        }
    }

    /// Whether the ACL gives `principal` `permission`.
    pub fn allows(&self, principal: &Principal, _permission: Permission) -> bool {
        principal.is(&self.owner)
    }

    /// Whether the ACL grants anything to AllUsers or AuthenticatedUsers.
    pub fn is_public(&self) -> bool {
        false
    }
}
