//! Access control lists of buckets and objects (S3 `AccessControlPolicy`, OSS `x-oss-acl` /
//! `x-oss-object-acl`) and the bucket's object ownership (S3 `?ownershipControls`), as plain
//! data: what a stored ACL grants, to whom, and whether ACLs count at all.
//!
//! A bucket's ACL is its config key [`CONFIG_KEY`]; an object's is `ObjectRecord::acl` (`None`:
//! the default, private). Both hold a [`StoredAcl`] as JSON. Under `BucketOwnerEnforced`
//! ownership, stored ACLs are ignored: the bucket owner owns every object and nobody else is
//! granted anything. The HTTP forms (headers, XML of both dialects) are `ops::acl`'s.

use coffer_store::{BucketRecord, ObjectRecord};
use serde::{Deserialize, Serialize};

use super::public_access_block::PublicAccessBlock;
use crate::state::{Principal, owner_id};

/// Bucket config key of the bucket's ACL (JSON of [`StoredAcl`]).
pub const CONFIG_KEY: &str = "acl";

/// Bucket config key of the bucket's object ownership (the [`ObjectOwnership`] name).
pub const OWNERSHIP_CONFIG_KEY: &str = "ownershipControls";

/// The group URI of everybody, signed or not.
pub const ALL_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
/// The group URI of every signed request (any Coffer user, and root).
pub const AUTHENTICATED_USERS_URI: &str =
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
/// The group URI of S3's log delivery: accepted and kept, grants nobody in Coffer.
pub const LOG_DELIVERY_URI: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// What an ACL grant gives (S3's permission names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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

impl Permission {
    /// Every permission, in S3's order.
    pub const ALL: [Permission; 5] = [
        Permission::Read,
        Permission::Write,
        Permission::ReadAcp,
        Permission::WriteAcp,
        Permission::FullControl,
    ];

    /// S3's name (`READ`, `FULL_CONTROL`, …).
    pub fn name(self) -> &'static str {
        match self {
            Permission::Read => "READ",
            Permission::Write => "WRITE",
            Permission::ReadAcp => "READ_ACP",
            Permission::WriteAcp => "WRITE_ACP",
            Permission::FullControl => "FULL_CONTROL",
        }
    }

    /// The permission S3 names `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether a grant of `self` gives `wanted`.
    fn covers(self, wanted: Permission) -> bool {
        self == Permission::FullControl || self == wanted
    }
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grantee {
    /// One principal, by canonical id ([`Principal::owner_id`]).
    CanonicalUser(String),
    /// Everybody, anonymous requests included.
    AllUsers,
    /// Every signed request.
    AuthenticatedUsers,
    /// S3's log delivery group: kept as granted, matches no Coffer principal.
    LogDelivery,
}

impl Grantee {
    /// The grantee of the group `uri`, if it is one S3 defines.
    pub fn group(uri: &str) -> Option<Self> {
        match uri {
            ALL_USERS_URI => Some(Grantee::AllUsers),
            AUTHENTICATED_USERS_URI => Some(Grantee::AuthenticatedUsers),
            LOG_DELIVERY_URI => Some(Grantee::LogDelivery),
            _ => None,
        }
    }

    /// The group's URI (`None` for a user).
    pub fn uri(&self) -> Option<&'static str> {
        match self {
            Grantee::CanonicalUser(_) => None,
            Grantee::AllUsers => Some(ALL_USERS_URI),
            Grantee::AuthenticatedUsers => Some(AUTHENTICATED_USERS_URI),
            Grantee::LogDelivery => Some(LOG_DELIVERY_URI),
        }
    }

    /// The principal of a user's name.
    fn user(name: &str) -> Self {
        Grantee::CanonicalUser(owner_id(name))
    }

    /// Whether the grantee is public: everybody, or every signed request (AWS counts both).
    pub fn is_public(&self) -> bool {
        matches!(self, Grantee::AllUsers | Grantee::AuthenticatedUsers)
    }

    fn includes(&self, principal: &Principal) -> bool {
        match self {
            Grantee::CanonicalUser(id) => {
                !matches!(principal, Principal::Anonymous) && principal.owner_id() == *id
            }
            Grantee::AllUsers => true,
            Grantee::AuthenticatedUsers => !matches!(principal, Principal::Anonymous),
            Grantee::LogDelivery => false,
        }
    }
}

/// One grant: a permission for a grantee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Who.
    pub grantee: Grantee,
    /// What.
    pub permission: Permission,
}

impl Grant {
    fn new(grantee: Grantee, permission: Permission) -> Self {
        Grant {
            grantee,
            permission,
        }
    }
}

/// An ACL as stored with its bucket or object version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAcl {
    /// The grants, the owner's own included (an ACL may leave the owner out, as on S3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<Grant>,
    /// OSS `x-oss-object-acl: default`: the object has the bucket's ACL, whatever it becomes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inherit_bucket: bool,
}

impl StoredAcl {
    /// The stored form of `grants`: `None` when they are exactly the default (the owner's
    /// FULL_CONTROL), so that a private resource carries nothing.
    pub fn of_grants(owner: &str, grants: Vec<Grant>) -> Option<Self> {
        (grants != private_grants(owner)).then_some(StoredAcl {
            grants,
            inherit_bucket: false,
        })
    }

    /// The document as stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an ACL of plain strings and enums serialises")
    }

    /// A stored document; `None` (with an error logged) if it cannot be read: only this
    /// module writes them, so the caller fails closed.
    fn parse(json: &str, what: &str) -> Option<Self> {
        serde_json::from_str(json)
            .map_err(|error| tracing::error!(%error, "stored ACL of {what} unreadable"))
            .ok()
    }

    /// Whether any grant is public (AllUsers or AuthenticatedUsers).
    pub fn is_public(&self) -> bool {
        self.grants.iter().any(|g| g.grantee.is_public())
    }
}

/// The owner's FULL_CONTROL: the default ACL of every bucket and object.
fn private_grants(owner: &str) -> Vec<Grant> {
    vec![Grant::new(Grantee::user(owner), Permission::FullControl)]
}

/// S3's canned ACLs (`x-amz-acl`); OSS's three (`x-oss-acl`) are among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CannedAcl {
    /// The owner alone.
    Private,
    /// Everybody may read.
    PublicRead,
    /// Everybody may read and write.
    PublicReadWrite,
    /// Every signed request may read.
    AuthenticatedRead,
    /// AWS: EC2 may read bundles. Coffer has no EC2: the same as private.
    AwsExecRead,
    /// Objects: the bucket owner may read. Buckets: the same as private.
    BucketOwnerRead,
    /// Objects: the bucket owner has FULL_CONTROL. Buckets: the same as private.
    BucketOwnerFullControl,
    /// Buckets: the log delivery group may write and read the ACL.
    LogDeliveryWrite,
}

impl CannedAcl {
    /// Every canned ACL, with its S3 name.
    const NAMES: [(&'static str, CannedAcl); 8] = [
        ("private", CannedAcl::Private),
        ("public-read", CannedAcl::PublicRead),
        ("public-read-write", CannedAcl::PublicReadWrite),
        ("authenticated-read", CannedAcl::AuthenticatedRead),
        ("aws-exec-read", CannedAcl::AwsExecRead),
        ("bucket-owner-read", CannedAcl::BucketOwnerRead),
        (
            "bucket-owner-full-control",
            CannedAcl::BucketOwnerFullControl,
        ),
        ("log-delivery-write", CannedAcl::LogDeliveryWrite),
    ];

    /// The canned ACL S3 names `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, canned)| *canned)
    }

    /// The canned ACL's S3 name.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, c)| *c == self)
            .map(|(n, _)| *n)
            .expect("every canned ACL is in NAMES")
    }

    /// The grants of the canned ACL on a resource `owner` owns in a bucket `bucket_owner`
    /// owns (for a bucket, both are its owner), as AWS expands them.
    pub fn grants(self, owner: &str, bucket_owner: &str) -> Vec<Grant> {
        use Permission::*;
        let mut grants = private_grants(owner);
        let mut add = |grantee, permission| {
            let grant = Grant::new(grantee, permission);
            if !grants.contains(&grant) && !(grant.grantee == Grantee::user(owner)) {
                grants.push(grant);
            }
        };
        match self {
            CannedAcl::Private | CannedAcl::AwsExecRead => {}
            CannedAcl::PublicRead => add(Grantee::AllUsers, Read),
            CannedAcl::PublicReadWrite => {
                add(Grantee::AllUsers, Read);
                add(Grantee::AllUsers, Write);
            }
            CannedAcl::AuthenticatedRead => add(Grantee::AuthenticatedUsers, Read),
            CannedAcl::BucketOwnerRead => add(Grantee::user(bucket_owner), Read),
            CannedAcl::BucketOwnerFullControl => add(Grantee::user(bucket_owner), FullControl),
            CannedAcl::LogDeliveryWrite => {
                add(Grantee::LogDelivery, Write);
                add(Grantee::LogDelivery, ReadAcp);
            }
        }
        grants
    }

    /// Whether the canned ACL grants anything public.
    pub fn is_public(self) -> bool {
        matches!(
            self,
            CannedAcl::PublicRead | CannedAcl::PublicReadWrite | CannedAcl::AuthenticatedRead
        )
    }

    /// Whether a bucket whose ACLs are disabled (`BucketOwnerEnforced`) accepts it: only the
    /// ones that give the bucket owner everything and nobody else anything, as on AWS.
    pub fn allowed_when_enforced(self) -> bool {
        matches!(self, CannedAcl::Private | CannedAcl::BucketOwnerFullControl)
    }
}

/// The OSS canned ACL the grants amount to (OSS has no grant lists): `public-read-write`,
/// `public-read` or `private`, by what AllUsers may do.
pub fn oss_canned_name(grants: &[Grant]) -> &'static str {
    let everybody = |p| {
        grants
            .iter()
            .any(|g| g.grantee == Grantee::AllUsers && g.permission.covers(p))
    };
    match (everybody(Permission::Read), everybody(Permission::Write)) {
        (true, true) => "public-read-write",
        (true, false) => "public-read",
        _ => "private",
    }
}

/// Who owns the objects of a bucket, and whether ACLs count (S3 `ObjectOwnership`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectOwnership {
    /// ACLs are disabled: the bucket owner owns every object; only the bucket policy and
    /// identity policies grant access. AWS's default for new buckets, and Coffer's for
    /// buckets that have no setting (made before ACLs existed).
    BucketOwnerEnforced,
    /// The writer owns an object, unless it gives the bucket owner `bucket-owner-full-control`,
    /// which makes the bucket owner the object's owner.
    BucketOwnerPreferred,
    /// The writer owns the objects it writes; ACLs apply. Every bucket created through the
    /// OSS dialect (OSS has no ownership controls, ACLs always apply there).
    ObjectWriter,
}

impl ObjectOwnership {
    const NAMES: [(&'static str, ObjectOwnership); 3] = [
        ("BucketOwnerEnforced", ObjectOwnership::BucketOwnerEnforced),
        (
            "BucketOwnerPreferred",
            ObjectOwnership::BucketOwnerPreferred,
        ),
        ("ObjectWriter", ObjectOwnership::ObjectWriter),
    ];

    /// The bucket's setting; [`ObjectOwnership::BucketOwnerEnforced`] without one.
    pub fn of(bucket: &BucketRecord) -> Self {
        Self::stored(bucket).unwrap_or(ObjectOwnership::BucketOwnerEnforced)
    }

    /// The bucket's setting as stored, if it has one. A stored name that cannot be read
    /// counts as BucketOwnerEnforced (fail closed: only this module writes it).
    pub fn stored(bucket: &BucketRecord) -> Option<Self> {
        let name = bucket.config.get(OWNERSHIP_CONFIG_KEY)?;
        Some(Self::parse(name).unwrap_or_else(|| {
            tracing::error!(bucket = %bucket.name, "stored ownershipControls unreadable");
            ObjectOwnership::BucketOwnerEnforced
        }))
    }

    /// The setting S3 names `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, o)| *o)
    }

    /// S3's name, which is also the stored form.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, o)| *o == self)
            .map(|(n, _)| *n)
            .expect("every ownership is in NAMES")
    }

    /// Whether ACLs grant anything in the bucket.
    pub fn acls_enabled(self) -> bool {
        self != ObjectOwnership::BucketOwnerEnforced
    }
}

/// A bucket's or an object's ACL, as it applies now: its owner, its grants, and whether the
/// bucket's public access block makes public grants count for nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// The owner's name: the owner may always do everything its ACL governs.
    owner: String,
    /// The grants, the owner's included.
    grants: Vec<Grant>,
    /// IgnorePublicAcls: public grants are shown but grant nothing.
    ignore_public: bool,
    /// OSS `default`: the object follows the bucket's ACL.
    inherits_bucket: bool,
}

impl Acl {
    /// The bucket's ACL.
    pub fn of_bucket(bucket: &BucketRecord) -> Self {
        let grants = ObjectOwnership::of(bucket)
            .acls_enabled()
            .then(|| stored_bucket_acl(bucket))
            .flatten()
            .map(|stored| stored.grants)
            .unwrap_or_else(|| private_grants(&bucket.owner));
        Acl {
            owner: bucket.owner.clone(),
            grants,
            ignore_public: PublicAccessBlock::of(bucket).ignore_public_acls,
            inherits_bucket: false,
        }
    }

    /// The object's ACL (`bucket` decides who owns objects under BucketOwnerEnforced, what an
    /// OSS `default` object inherits, and whether public grants count).
    pub fn of_object(bucket: &BucketRecord, record: &ObjectRecord) -> Self {
        let ignore_public = PublicAccessBlock::of(bucket).ignore_public_acls;
        if !ObjectOwnership::of(bucket).acls_enabled() {
            return Acl {
                owner: bucket.owner.clone(),
                grants: private_grants(&bucket.owner),
                ignore_public,
                inherits_bucket: false,
            };
        }
        let owner = record.owner.clone();
        // Unreadable: the owner alone (fail closed).
        let stored = record
            .acl
            .as_ref()
            .map(|json| StoredAcl::parse(json, "an object").unwrap_or_default());
        let (grants, inherits_bucket) = match stored {
            None => (private_grants(&owner), false),
            Some(stored) if stored.inherit_bucket => {
                let mut grants = private_grants(&owner);
                for grant in Acl::of_bucket(bucket).grants {
                    if !grants.contains(&grant) {
                        grants.push(grant);
                    }
                }
                (grants, true)
            }
            Some(stored) if stored.grants.is_empty() => (private_grants(&owner), false),
            Some(stored) => (stored.grants, false),
        };
        Acl {
            owner,
            grants,
            ignore_public,
            inherits_bucket,
        }
    }

    /// Whether the ACL gives `principal` `permission`. The owner may do everything; public
    /// grants count for nothing under IgnorePublicAcls.
    pub fn allows(&self, principal: &Principal, permission: Permission) -> bool {
        principal.is(&self.owner)
            || self.grants.iter().any(|grant| {
                grant.permission.covers(permission)
                    && !(self.ignore_public && grant.grantee.is_public())
                    && grant.grantee.includes(principal)
            })
    }

    /// Whether the ACL grants anything to AllUsers or AuthenticatedUsers (ignored or not).
    pub fn is_public(&self) -> bool {
        self.grants.iter().any(|g| g.grantee.is_public())
    }

    /// The owner's name.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The grants, in order, the owner's included.
    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// Whether this is an OSS `default` object ACL (the bucket's, followed).
    pub fn inherits_bucket(&self) -> bool {
        self.inherits_bucket
    }
}

/// The bucket's stored ACL, if it has one; an unreadable one is the owner alone.
fn stored_bucket_acl(bucket: &BucketRecord) -> Option<StoredAcl> {
    let json = bucket.config.get(CONFIG_KEY)?;
    Some(
        StoredAcl::parse(json, &bucket.name).unwrap_or_else(|| StoredAcl {
            grants: private_grants(&bucket.owner),
            inherit_bucket: false,
        }),
    )
}

/// Whether the bucket's own stored ACL grants anyone but its owner anything (S3 refuses to
/// turn ACLs off while it does).
pub fn bucket_grants_others(bucket: &BucketRecord) -> bool {
    stored_bucket_acl(bucket).is_some_and(|stored| {
        stored
            .grants
            .iter()
            .any(|g| g.grantee != Grantee::user(&bucket.owner))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn bucket(ownership: Option<ObjectOwnership>, acl: Option<StoredAcl>) -> BucketRecord {
        let mut config = BTreeMap::new();
        if let Some(o) = ownership {
            config.insert(OWNERSHIP_CONFIG_KEY.to_owned(), o.name().to_owned());
        }
        if let Some(acl) = acl {
            config.insert(CONFIG_KEY.to_owned(), acl.to_json());
        }
        BucketRecord {
            name: "b".into(),
            owner: "alice".into(),
            config,
            ..Default::default()
        }
    }

    fn object(owner: &str, acl: Option<StoredAcl>) -> ObjectRecord {
        ObjectRecord {
            owner: owner.into(),
            acl: acl.map(|a| a.to_json()),
            ..Default::default()
        }
    }

    fn canned(c: CannedAcl, owner: &str) -> Option<StoredAcl> {
        StoredAcl::of_grants(owner, c.grants(owner, "alice"))
    }

    const ALICE: fn() -> Principal = || Principal::User("alice".into());
    const BOB: fn() -> Principal = || Principal::User("bob".into());

    #[test]
    fn canned_acls_expand_as_aws_documents() {
        use Permission::*;
        assert_eq!(canned(CannedAcl::Private, "bob"), None);
        assert_eq!(canned(CannedAcl::AwsExecRead, "bob"), None);
        let grants = CannedAcl::PublicReadWrite.grants("bob", "alice");
        assert_eq!(
            grants,
            [
                Grant::new(Grantee::user("bob"), FullControl),
                Grant::new(Grantee::AllUsers, Read),
                Grant::new(Grantee::AllUsers, Write),
            ]
        );
        assert_eq!(
            CannedAcl::BucketOwnerFullControl.grants("bob", "alice")[1],
            Grant::new(Grantee::user("alice"), FullControl)
        );
        // The bucket's owner writing its own object: nothing to add.
        assert_eq!(
            CannedAcl::BucketOwnerRead.grants("alice", "alice"),
            private_grants("alice")
        );
        assert_eq!(CannedAcl::LogDeliveryWrite.grants("a", "a").len(), 3);
        for (name, c) in CannedAcl::NAMES {
            assert_eq!(CannedAcl::parse(name), Some(c));
            assert_eq!(c.name(), name);
        }
        assert_eq!(CannedAcl::parse("Private"), None);
    }

    #[test]
    fn grants_give_what_they_name_to_whom_they_name() {
        let b = bucket(
            Some(ObjectOwnership::ObjectWriter),
            canned(CannedAcl::AuthenticatedRead, "alice"),
        );
        let acl = Acl::of_bucket(&b);
        assert!(acl.is_public());
        assert!(acl.allows(&BOB(), Permission::Read));
        assert!(!acl.allows(&BOB(), Permission::Write));
        assert!(!acl.allows(&Principal::Anonymous, Permission::Read));
        assert!(acl.allows(&ALICE(), Permission::WriteAcp), "the owner");

        let grant = StoredAcl {
            grants: vec![Grant::new(Grantee::user("bob"), Permission::FullControl)],
            inherit_bucket: false,
        };
        let acl = Acl::of_object(&b, &object("alice", Some(grant)));
        assert!(!acl.is_public());
        assert!(
            acl.allows(&BOB(), Permission::ReadAcp),
            "FULL_CONTROL covers"
        );
        assert!(!acl.allows(&Principal::User("carol".into()), Permission::Read));
        assert!(!acl.allows(&Principal::Anonymous, Permission::Read));
        // Anonymous never matches a canonical id, even the one of its log name.
        let anon = StoredAcl {
            grants: vec![Grant::new(Grantee::user("anonymous"), Permission::Read)],
            inherit_bucket: false,
        };
        let acl = Acl::of_object(&b, &object("alice", Some(anon)));
        assert!(!acl.allows(&Principal::Anonymous, Permission::Read));
        assert!(!acl.allows(&Principal::User("x".into()), Permission::Read));
    }

    #[test]
    fn enforced_ownership_turns_acls_off() {
        for ownership in [None, Some(ObjectOwnership::BucketOwnerEnforced)] {
            let b = bucket(ownership, canned(CannedAcl::PublicRead, "alice"));
            assert!(!Acl::of_bucket(&b).allows(&Principal::Anonymous, Permission::Read));
            let o = object("bob", canned(CannedAcl::PublicRead, "bob"));
            let acl = Acl::of_object(&b, &o);
            assert_eq!(acl.owner(), "alice", "the bucket owner owns every object");
            assert!(!acl.allows(&Principal::Anonymous, Permission::Read));
            assert!(!acl.allows(&BOB(), Permission::Read), "the writer too");
        }
    }

    #[test]
    fn ignore_public_acls_keeps_grants_to_users() {
        let mut b = bucket(Some(ObjectOwnership::ObjectWriter), None);
        let mut grants = CannedAcl::PublicRead.grants("alice", "alice");
        grants.push(Grant::new(Grantee::user("bob"), Permission::Read));
        let o = object("alice", StoredAcl::of_grants("alice", grants));
        assert!(Acl::of_object(&b, &o).allows(&Principal::Anonymous, Permission::Read));
        b.config.insert(
            crate::authz::public_access_block::CONFIG_KEY.to_owned(),
            r#"{"block_public_acls":false,"ignore_public_acls":true,"block_public_policy":false,"restrict_public_buckets":false}"#.to_owned(),
        );
        let acl = Acl::of_object(&b, &o);
        assert!(acl.is_public(), "still shown");
        assert!(!acl.allows(&Principal::Anonymous, Permission::Read));
        assert!(!acl.allows(&Principal::User("carol".into()), Permission::Read));
        assert!(acl.allows(&BOB(), Permission::Read));
    }

    #[test]
    fn oss_default_objects_follow_the_bucket() {
        let inherit = StoredAcl {
            grants: Vec::new(),
            inherit_bucket: true,
        };
        let mut b = bucket(Some(ObjectOwnership::ObjectWriter), None);
        let o = object("alice", Some(inherit));
        assert!(!Acl::of_object(&b, &o).allows(&Principal::Anonymous, Permission::Read));
        b.config.insert(
            CONFIG_KEY.to_owned(),
            canned(CannedAcl::PublicRead, "alice")
                .expect("public-read is more than private")
                .to_json(),
        );
        let acl = Acl::of_object(&b, &o);
        assert!(acl.inherits_bucket());
        assert!(acl.allows(&Principal::Anonymous, Permission::Read));
        assert_eq!(oss_canned_name(acl.grants()), "public-read");
    }

    #[test]
    fn unreadable_documents_fail_closed() {
        let mut b = bucket(Some(ObjectOwnership::ObjectWriter), None);
        b.config.insert(CONFIG_KEY.to_owned(), "{not json".into());
        assert!(!Acl::of_bucket(&b).allows(&BOB(), Permission::Read));
        let o = ObjectRecord {
            owner: "alice".into(),
            acl: Some("[".into()),
            ..Default::default()
        };
        assert!(!Acl::of_object(&b, &o).allows(&BOB(), Permission::Read));
        b.config
            .insert(OWNERSHIP_CONFIG_KEY.to_owned(), "Whatever".into());
        assert_eq!(
            ObjectOwnership::of(&b),
            ObjectOwnership::BucketOwnerEnforced
        );
    }
}
