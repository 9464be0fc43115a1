//! Request → operation: which operation a request names, decided once
//! from its method, path, query and headers, before anything runs. The
//! handlers are then picked by `ops::dispatch` (S3 and OSS),
//! `admin::handle` and `kms_api::serve`.

use http::Method;
use http::request::Parts;

use crate::kms_api::Operation as KmsOperation;
use crate::request::{Dialect, Query, Target};

/// The admin API's path prefix (a path no bucket can have, since bucket
/// names cannot contain `_`).
pub const ADMIN_PREFIX: &str = "/_coffer/admin/";

/// Every operation Coffer routes to, S3 (and OSS) by their AWS names,
/// plus the admin and KMS APIs that share the listeners, plus the requests
/// that are answered NotImplemented or MethodNotAllowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    ListBuckets,
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    ListObjects,
    ListObjectsV2,
    ListMultipartUploads,
    DeleteObjects,
    PutBucketEncryption,
    GetBucketEncryption,
    DeleteBucketEncryption,
    /// OSS `PUT ?httpsConfig`: the bucket's TLS policy.
    PutBucketHttpsConfig,
    /// OSS `GET ?httpsConfig`.
    GetBucketHttpsConfig,
    PutBucketPolicy,
    GetBucketPolicy,
    DeleteBucketPolicy,
    /// `GET ?policyStatus`: whether the bucket policy is public.
    GetBucketPolicyStatus,
    /// `PUT ?publicAccessBlock` (S3 PutPublicAccessBlock).
    PutBucketPublicAccessBlock,
    /// `GET ?publicAccessBlock` (S3 GetPublicAccessBlock).
    GetBucketPublicAccessBlock,
    /// `DELETE ?publicAccessBlock` (S3 DeletePublicAccessBlock).
    DeleteBucketPublicAccessBlock,
    PutBucketVersioning,
    GetBucketVersioning,
    ListObjectVersions,
    /// `PUT ?lifecycle` (OSS: PutBucketLifecycle).
    PutBucketLifecycleConfiguration,
    /// `GET ?lifecycle` (OSS: GetBucketLifecycle).
    GetBucketLifecycleConfiguration,
    /// `DELETE ?lifecycle`.
    DeleteBucketLifecycle,
    /// S3 `PUT ?object-lock`.
    PutObjectLockConfiguration,
    /// S3 `GET ?object-lock`.
    GetObjectLockConfiguration,
    /// OSS `POST ?worm`.
    InitiateBucketWorm,
    /// OSS `DELETE ?worm`.
    AbortBucketWorm,
    /// OSS `POST ?wormId=ID`.
    CompleteBucketWorm,
    /// OSS `POST ?wormId=ID&wormExtend`.
    ExtendBucketWorm,
    /// OSS `GET ?worm`.
    GetBucketWorm,
    /// `PUT ?tagging` on a bucket (OSS: PutBucketTags).
    PutBucketTagging,
    /// `GET ?tagging` on a bucket (OSS: GetBucketTags).
    GetBucketTagging,
    /// `DELETE ?tagging` on a bucket (OSS: DeleteBucketTags).
    DeleteBucketTagging,
    /// `PUT ?acl` on a bucket.
    PutBucketAcl,
    /// `GET ?acl` on a bucket.
    GetBucketAcl,
    /// S3 `PUT ?ownershipControls`.
    PutBucketOwnershipControls,
    /// S3 `GET ?ownershipControls`.
    GetBucketOwnershipControls,
    /// S3 `DELETE ?ownershipControls`.
    DeleteBucketOwnershipControls,

    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,

    PutObject,
    CopyObject,
    GetObject,
    /// `GET ?attributes`: an object's ETag, checksum, parts and size.
    GetObjectAttributes,
    PutObjectTagging,
    GetObjectTagging,
    DeleteObjectTagging,
    HeadObject,
    DeleteObject,
    /// `PUT ?retention` on an object.
    PutObjectRetention,
    /// `GET ?retention` on an object.
    GetObjectRetention,
    /// `PUT ?legal-hold` on an object.
    PutObjectLegalHold,
    /// `GET ?legal-hold` on an object.
    GetObjectLegalHold,
    /// `PUT ?acl` on an object.
    PutObjectAcl,
    /// `GET ?acl` on an object.
    GetObjectAcl,

    /// An object sub-resource Coffer does not implement (`?restore`,
    /// `?torrent`, …): NotImplemented.
    UnsupportedObjectSubresource,
    /// A bucket sub-resource Coffer does not implement: NotImplemented.
    UnsupportedBucketSubresource,
    /// A method the resource does not have: MethodNotAllowed.
    MethodNotAllowed,

    /// The admin API under [`ADMIN_PREFIX`].
    Admin(AdminOperation),
    /// The KMS API (AWS KMS JSON protocol); `None` for an `X-Amz-Target`
    /// it does not know (UnknownOperationException).
    Kms(Option<KmsOperation>),
    /// An unauthenticated health probe (`/health/live`, `/health/ready`).
    Health(crate::health::Probe),
}

/// The admin API's endpoints (root only, JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOperation {
    ListUsers,
    /// `GET buckets`: every bucket with its owner and creation date.
    ListBuckets,
    AddUser,
    /// `DELETE users/<name>`, the name still percent-encoded.
    DeleteUser {
        name: String,
    },
    /// `GET users/<name>/policy`: the user's identity policy (name still percent-encoded).
    GetUserPolicy {
        name: String,
    },
    /// `PUT users/<name>/policy`: attach or replace it.
    PutUserPolicy {
        name: String,
    },
    /// `DELETE users/<name>/policy`: detach it.
    DeleteUserPolicy {
        name: String,
    },
    ListServiceKeys,
    RotateServiceKey,
    RewrapAll,
    /// `GET sse/status`: the server's default encryption, opted-out buckets, plaintext objects.
    PlaintextStatus,
    /// `POST sse/seal-plaintext`: seal every plaintext object version in place.
    SealPlaintext,
    /// `POST lifecycle/run`: one lifecycle pass now, its report as the answer.
    RunLifecycle,
    /// `POST sweeper/run`: one pending-blob sweeper pass now (`{"grace_seconds": N}`
    /// optional), its report as the answer.
    RunSweeper,
    /// `POST clock`: move the object clock forward (only a `--test-clock` server).
    AdvanceClock,
    /// `GET protection/<bucket>/<key>`: how an object is sealed (its envelope, not opened);
    /// the rest of the path still percent-encoded.
    ObjectProtection {
        object: String,
    },
    /// `GET kms/audit`: the KMS audit log, filtered, a page at a time.
    KmsAudit,
    /// `GET kms/usage?key=…`: the object versions a KMS key protects.
    KmsUsage,
    /// NoSuchAdminEndpoint.
    Unknown,
}

impl Operation {
    /// The operation of a request that is not a KMS API one
    /// (`kms_api::is_kms_request` is asked first), once its target
    /// and query are known: an admin endpoint, or an S3 (or OSS) operation.
    pub fn of(parts: &Parts, target: &Target, query: &Query, dialect: Dialect) -> Self {
        let path = parts.uri.path();
        if path.starts_with(ADMIN_PREFIX) {
            return Operation::Admin(AdminOperation::of(&parts.method, path));
        }
        // Read as `ApiRequest::vendor_header` reads it: a value that is not
        // text counts as absent.
        let copy_source = parts
            .headers
            .get(dialect.header("copy-source"))
            .is_some_and(|v| v.to_str().is_ok());
        Operation::s3(&parts.method, target, query, copy_source)
    }

    /// The S3 (or OSS) operation that `method` on `target` names, given
    /// its query and whether it carries a copy-source header in its
    /// dialect. The arms are tried in order: the first match wins.
    pub fn s3(method: &Method, target: &Target, query: &Query, copy_source: bool) -> Self {
        use Operation::*;
        let q = query;
        let copy = copy_source;
        match (method, &target.bucket, &target.key) {
            (&Method::GET, None, None) => ListBuckets,
            (_, None, _) => MethodNotAllowed,

            // Bucket default encryption.
            (&Method::PUT, Some(_), None) if q.has("encryption") => PutBucketEncryption,
            (&Method::GET, Some(_), None) if q.has("encryption") => GetBucketEncryption,
            (&Method::DELETE, Some(_), None) if q.has("encryption") => DeleteBucketEncryption,

            // Access: OSS httpsConfig, the bucket policy and its status, the public access block.
            (&Method::PUT, Some(_), None) if q.has("httpsConfig") => PutBucketHttpsConfig,
            (&Method::GET, Some(_), None) if q.has("httpsConfig") => GetBucketHttpsConfig,
            (&Method::PUT, Some(_), None) if q.has("policy") => PutBucketPolicy,
            (&Method::GET, Some(_), None) if q.has("policy") => GetBucketPolicy,
            (&Method::DELETE, Some(_), None) if q.has("policy") => DeleteBucketPolicy,
            (&Method::GET, Some(_), None) if q.has("policyStatus") => GetBucketPolicyStatus,
            (&Method::PUT, Some(_), None) if q.has("publicAccessBlock") => {
                PutBucketPublicAccessBlock
            }
            (&Method::GET, Some(_), None) if q.has("publicAccessBlock") => {
                GetBucketPublicAccessBlock
            }
            (&Method::DELETE, Some(_), None) if q.has("publicAccessBlock") => {
                DeleteBucketPublicAccessBlock
            }

            // Versioning.
            (&Method::PUT, Some(_), None) if q.has("versioning") => PutBucketVersioning,
            (&Method::GET, Some(_), None) if q.has("versioning") => GetBucketVersioning,
            (&Method::GET, Some(_), None) if q.has("versions") => ListObjectVersions,
            // Bucket data protection: lifecycle, object lock, WORM, tags.
            (&Method::PUT, Some(_), None) if q.has("lifecycle") => PutBucketLifecycleConfiguration,
            (&Method::GET, Some(_), None) if q.has("lifecycle") => GetBucketLifecycleConfiguration,
            (&Method::DELETE, Some(_), None) if q.has("lifecycle") => DeleteBucketLifecycle,
            (&Method::PUT, Some(_), None) if q.has("object-lock") => PutObjectLockConfiguration,
            (&Method::GET, Some(_), None) if q.has("object-lock") => GetObjectLockConfiguration,
            (&Method::POST, Some(_), None) if q.has("wormId") && q.has("wormExtend") => {
                ExtendBucketWorm
            }
            (&Method::POST, Some(_), None) if q.has("wormId") => CompleteBucketWorm,
            (&Method::POST, Some(_), None) if q.has("worm") => InitiateBucketWorm,
            (&Method::DELETE, Some(_), None) if q.has("worm") => AbortBucketWorm,
            (&Method::GET, Some(_), None) if q.has("worm") => GetBucketWorm,
            (&Method::PUT, Some(_), None) if q.has("tagging") => PutBucketTagging,
            (&Method::GET, Some(_), None) if q.has("tagging") => GetBucketTagging,
            (&Method::DELETE, Some(_), None) if q.has("tagging") => DeleteBucketTagging,
            (&Method::PUT, Some(_), None) if q.has("ownershipControls") => {
                PutBucketOwnershipControls
            }
            (&Method::GET, Some(_), None) if q.has("ownershipControls") => {
                GetBucketOwnershipControls
            }
            (&Method::DELETE, Some(_), None) if q.has("ownershipControls") => {
                DeleteBucketOwnershipControls
            }

            // Bucket operations.
            (&Method::PUT, Some(_), None) if q.names().next().is_none() => CreateBucket,
            (&Method::HEAD, Some(_), None) => HeadBucket,
            (&Method::DELETE, Some(_), None) if q.names().next().is_none() => DeleteBucket,
            (&Method::GET, Some(_), None) if q.has("location") => GetBucketLocation,
            (&Method::GET, Some(_), None) if q.has("uploads") => ListMultipartUploads,
            (&Method::POST, Some(_), None) if q.has("delete") => DeleteObjects,
            (&Method::GET, Some(_), None) if q.get("list-type") == Some("2") => ListObjectsV2,
            (&Method::PUT, Some(_), None) if q.has("acl") => PutBucketAcl,
            (&Method::GET, Some(_), None) if q.has("acl") => GetBucketAcl,
            (&Method::GET, Some(_), None) if !has_subresource(q) => ListObjects,

            // Multipart operations.
            (&Method::POST, Some(_), Some(_)) if q.has("uploads") => CreateMultipartUpload,
            (&Method::PUT, Some(_), Some(_)) if q.has("uploadId") && copy => UploadPartCopy,
            (&Method::PUT, Some(_), Some(_)) if q.has("uploadId") => UploadPart,
            (&Method::POST, Some(_), Some(_)) if q.has("uploadId") => CompleteMultipartUpload,
            (&Method::DELETE, Some(_), Some(_)) if q.has("uploadId") => AbortMultipartUpload,
            (&Method::GET, Some(_), Some(_)) if q.has("uploadId") => ListParts,

            // Object lock on one version.
            (&Method::PUT, Some(_), Some(_)) if q.has("retention") => PutObjectRetention,
            (&Method::GET, Some(_), Some(_)) if q.has("retention") => GetObjectRetention,
            (&Method::PUT, Some(_), Some(_)) if q.has("legal-hold") => PutObjectLegalHold,
            (&Method::GET, Some(_), Some(_)) if q.has("legal-hold") => GetObjectLegalHold,

            // Object ACLs.
            (&Method::PUT, Some(_), Some(_)) if q.has("acl") => PutObjectAcl,
            (&Method::GET, Some(_), Some(_)) if q.has("acl") => GetObjectAcl,

            // Object operations.
            (&Method::GET, Some(_), Some(_)) if q.has("attributes") => GetObjectAttributes,
            (&Method::PUT, Some(_), Some(_)) if q.has("tagging") => PutObjectTagging,
            (&Method::GET, Some(_), Some(_)) if q.has("tagging") => GetObjectTagging,
            (&Method::DELETE, Some(_), Some(_)) if q.has("tagging") => DeleteObjectTagging,
            (_, Some(_), Some(_)) if has_subresource(q) => UnsupportedObjectSubresource,
            (&Method::PUT, Some(_), Some(_)) if copy => CopyObject,
            (&Method::PUT, Some(_), Some(_)) => PutObject,
            (&Method::GET, Some(_), Some(_)) => GetObject,
            (&Method::HEAD, Some(_), Some(_)) => HeadObject,
            (&Method::DELETE, Some(_), Some(_)) => DeleteObject,

            (&Method::GET | &Method::PUT | &Method::DELETE, Some(_), None) => {
                UnsupportedBucketSubresource
            }
            _ => MethodNotAllowed,
        }
    }

    /// The operation's name for logs and metrics: the AWS name for S3 and
    /// KMS operations (OSS's own names are not used), Coffer's own for the
    /// admin API and the unsupported cases.
    pub fn name(&self) -> &'static str {
        use Operation::*;
        match self {
            ListBuckets => "ListBuckets",
            CreateBucket => "CreateBucket",
            HeadBucket => "HeadBucket",
            DeleteBucket => "DeleteBucket",
            GetBucketLocation => "GetBucketLocation",
            ListObjects => "ListObjects",
            ListObjectsV2 => "ListObjectsV2",
            ListMultipartUploads => "ListMultipartUploads",
            DeleteObjects => "DeleteObjects",
            PutBucketEncryption => "PutBucketEncryption",
            GetBucketEncryption => "GetBucketEncryption",
            DeleteBucketEncryption => "DeleteBucketEncryption",
            PutBucketHttpsConfig => "PutBucketHttpsConfig",
            GetBucketHttpsConfig => "GetBucketHttpsConfig",
            PutBucketPolicy => "PutBucketPolicy",
            GetBucketPolicy => "GetBucketPolicy",
            DeleteBucketPolicy => "DeleteBucketPolicy",
            GetBucketPolicyStatus => "GetBucketPolicyStatus",
            PutBucketPublicAccessBlock => "PutPublicAccessBlock",
            GetBucketPublicAccessBlock => "GetPublicAccessBlock",
            DeleteBucketPublicAccessBlock => "DeletePublicAccessBlock",
            PutBucketVersioning => "PutBucketVersioning",
            GetBucketVersioning => "GetBucketVersioning",
            ListObjectVersions => "ListObjectVersions",
            PutBucketLifecycleConfiguration => "PutBucketLifecycleConfiguration",
            GetBucketLifecycleConfiguration => "GetBucketLifecycleConfiguration",
            DeleteBucketLifecycle => "DeleteBucketLifecycle",
            PutObjectLockConfiguration => "PutObjectLockConfiguration",
            GetObjectLockConfiguration => "GetObjectLockConfiguration",
            InitiateBucketWorm => "InitiateBucketWorm",
            AbortBucketWorm => "AbortBucketWorm",
            CompleteBucketWorm => "CompleteBucketWorm",
            ExtendBucketWorm => "ExtendBucketWorm",
            GetBucketWorm => "GetBucketWorm",
            PutBucketTagging => "PutBucketTagging",
            GetBucketTagging => "GetBucketTagging",
            DeleteBucketTagging => "DeleteBucketTagging",
            PutBucketAcl => "PutBucketAcl",
            GetBucketAcl => "GetBucketAcl",
            PutBucketOwnershipControls => "PutBucketOwnershipControls",
            GetBucketOwnershipControls => "GetBucketOwnershipControls",
            DeleteBucketOwnershipControls => "DeleteBucketOwnershipControls",
            CreateMultipartUpload => "CreateMultipartUpload",
            UploadPart => "UploadPart",
            UploadPartCopy => "UploadPartCopy",
            CompleteMultipartUpload => "CompleteMultipartUpload",
            AbortMultipartUpload => "AbortMultipartUpload",
            ListParts => "ListParts",
            PutObject => "PutObject",
            CopyObject => "CopyObject",
            GetObject => "GetObject",
            GetObjectAttributes => "GetObjectAttributes",
            PutObjectTagging => "PutObjectTagging",
            GetObjectTagging => "GetObjectTagging",
            DeleteObjectTagging => "DeleteObjectTagging",
            HeadObject => "HeadObject",
            DeleteObject => "DeleteObject",
            PutObjectRetention => "PutObjectRetention",
            GetObjectRetention => "GetObjectRetention",
            PutObjectLegalHold => "PutObjectLegalHold",
            GetObjectLegalHold => "GetObjectLegalHold",
            PutObjectAcl => "PutObjectAcl",
            GetObjectAcl => "GetObjectAcl",
            UnsupportedObjectSubresource => "UnsupportedObjectSubresource",
            UnsupportedBucketSubresource => "UnsupportedBucketSubresource",
            MethodNotAllowed => "MethodNotAllowed",
            Admin(admin) => admin.name(),
            Kms(Some(kms)) => kms.name(),
            Kms(None) => "KmsUnknownOperation",
            Health(probe) => probe.name(),
        }
    }
}

impl AdminOperation {
    /// The admin endpoint that `method` on `path` (which starts with
    /// [`ADMIN_PREFIX`]) names.
    pub fn of(method: &Method, path: &str) -> Self {
        use AdminOperation::*;
        let rest = path.strip_prefix(ADMIN_PREFIX).unwrap_or_default();
        match (method, rest.split_once('/')) {
            (&Method::GET, None) if rest == "users" => ListUsers,
            (&Method::GET, None) if rest == "buckets" => ListBuckets,
            (&Method::GET, Some(("sse", "keys"))) => ListServiceKeys,
            (&Method::POST, Some(("sse", "rotate"))) => RotateServiceKey,
            (&Method::POST, Some(("sse", "rewrap"))) => RewrapAll,
            (&Method::GET, Some(("sse", "status"))) => PlaintextStatus,
            (&Method::POST, Some(("sse", "seal-plaintext"))) => SealPlaintext,
            (&Method::POST, Some(("lifecycle", "run"))) => RunLifecycle,
            (&Method::POST, Some(("sweeper", "run"))) => RunSweeper,
            (&Method::POST, None) if rest == "clock" => AdvanceClock,
            (&Method::POST, None) if rest == "users" => AddUser,
            (method, Some(("users", tail))) if tail.ends_with("/policy") => {
                let name = tail.trim_end_matches("/policy").to_owned();
                match *method {
                    _ if name.is_empty() || name.contains('/') => Unknown,
                    Method::GET => GetUserPolicy { name },
                    Method::PUT => PutUserPolicy { name },
                    Method::DELETE => DeleteUserPolicy { name },
                    _ => Unknown,
                }
            }
            (&Method::DELETE, Some(("users", name))) if !name.is_empty() => DeleteUser {
                name: name.to_owned(),
            },
            (&Method::GET, Some(("protection", object))) => ObjectProtection {
                object: object.to_owned(),
            },
            (&Method::GET, Some(("kms", "audit"))) => KmsAudit,
            (&Method::GET, Some(("kms", "usage"))) => KmsUsage,
            _ => Unknown,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            AdminOperation::ListUsers => "AdminListUsers",
            AdminOperation::ListBuckets => "AdminListBuckets",
            AdminOperation::AddUser => "AdminAddUser",
            AdminOperation::DeleteUser { .. } => "AdminDeleteUser",
            AdminOperation::GetUserPolicy { .. } => "AdminGetUserPolicy",
            AdminOperation::PutUserPolicy { .. } => "AdminPutUserPolicy",
            AdminOperation::DeleteUserPolicy { .. } => "AdminDeleteUserPolicy",
            AdminOperation::ListServiceKeys => "AdminListServiceKeys",
            AdminOperation::RotateServiceKey => "AdminRotateServiceKey",
            AdminOperation::RewrapAll => "AdminRewrapAll",
            AdminOperation::PlaintextStatus => "AdminPlaintextStatus",
            AdminOperation::SealPlaintext => "AdminSealPlaintext",
            AdminOperation::RunLifecycle => "AdminRunLifecycle",
            AdminOperation::RunSweeper => "AdminRunSweeper",
            AdminOperation::AdvanceClock => "AdminAdvanceClock",
            AdminOperation::ObjectProtection { .. } => "AdminObjectProtection",
            AdminOperation::KmsAudit => "AdminKmsAudit",
            AdminOperation::KmsUsage => "AdminKmsUsage",
            AdminOperation::Unknown => "AdminUnknownEndpoint",
        }
    }
}

/// Query parameters that name a sub-resource (`?acl`, `?tagging`, …) rather
/// than modify a plain operation. Coffer answers those it implements and
/// says NotImplemented for the rest instead of pretending.
fn has_subresource(query: &Query) -> bool {
    const PLAIN: &[&str] = &[
        "prefix",
        "delimiter",
        "objectMeta",
        "marker",
        "max-keys",
        "encoding-type",
        "list-type",
        "continuation-token",
        "start-after",
        "fetch-owner",
        "versionId",
        "partNumber",
        "key-marker",
        "version-id-marker",
        "response-content-type",
        "response-content-language",
        "response-expires",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "x-id",
    ];
    // Presigned-URL parameters of every scheme are authentication, not a
    // sub-resource.
    const PRESIGN: &[&str] = &["OSSAccessKeyId", "AWSAccessKeyId", "Expires", "Signature"];
    query.names().any(|n| {
        !PLAIN.contains(&n)
            && !PRESIGN.contains(&n)
            && !n.starts_with("X-Amz-")
            && !n.starts_with("x-amz-")
            && !n.starts_with("x-oss-")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::resolve_target;

    /// Routes a request as the server does: the KMS API first, then the
    /// admin API and S3 (path-style addressing).
    fn route(method: &str, uri: &str, headers: &[(&str, &str)]) -> Operation {
        let mut request = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (parts, ()) = request.body(()).expect("valid request").into_parts();
        if crate::kms_api::is_kms_request(&parts) {
            return Operation::Kms(crate::kms_api::operation_of(&parts));
        }
        if crate::kms_api::alibaba::is_alibaba_request(&parts) {
            return Operation::Kms(crate::kms_api::alibaba::operation_of(&parts));
        }
        let path = parts.uri.path();
        let target = if path.starts_with(ADMIN_PREFIX) {
            Target {
                bucket: None,
                key: None,
            }
        } else {
            resolve_target(path, None, &[]).expect("valid target")
        };
        let query = Query::parse(parts.uri.query().unwrap_or_default()).expect("valid query");
        let dialect = if headers.iter().any(|(n, _)| n.starts_with("x-oss-")) {
            Dialect::Oss
        } else {
            Dialect::S3
        };
        Operation::of(&parts, &target, &query, dialect)
    }

    #[test]
    fn every_arm_names_its_operation() {
        use Operation::*;
        let copy = [("x-amz-copy-source", "/src/key")];
        let oss_copy = [("x-oss-copy-source", "/src/key")];
        let kms = |action: &str| [("x-amz-target", format!("TrentService.{action}"))];
        // Method, URI (path-style), headers, operation.
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], Operation);
        let table: &[Case] = &[
            // The service.
            ("GET", "/", &[], ListBuckets),
            ("PUT", "/", &[], MethodNotAllowed),
            ("DELETE", "/", &[], MethodNotAllowed),
            ("POST", "/", &[], MethodNotAllowed),
            // Bucket sub-resources.
            ("PUT", "/b?encryption", &[], PutBucketEncryption),
            ("GET", "/b?encryption", &[], GetBucketEncryption),
            ("DELETE", "/b?encryption", &[], DeleteBucketEncryption),
            ("PUT", "/b?httpsConfig", &[], PutBucketHttpsConfig),
            ("GET", "/b?httpsConfig", &[], GetBucketHttpsConfig),
            (
                "DELETE",
                "/b?httpsConfig",
                &[],
                UnsupportedBucketSubresource,
            ),
            ("PUT", "/b?policy", &[], PutBucketPolicy),
            ("GET", "/b?policy", &[], GetBucketPolicy),
            ("DELETE", "/b?policy", &[], DeleteBucketPolicy),
            ("GET", "/b?policyStatus", &[], GetBucketPolicyStatus),
            (
                "PUT",
                "/b?publicAccessBlock",
                &[],
                PutBucketPublicAccessBlock,
            ),
            (
                "GET",
                "/b?publicAccessBlock",
                &[],
                GetBucketPublicAccessBlock,
            ),
            (
                "DELETE",
                "/b?publicAccessBlock",
                &[],
                DeleteBucketPublicAccessBlock,
            ),
            ("PUT", "/b?policyStatus", &[], UnsupportedBucketSubresource),
            ("PUT", "/b?lifecycle", &[], PutBucketLifecycleConfiguration),
            ("GET", "/b?lifecycle", &[], GetBucketLifecycleConfiguration),
            ("DELETE", "/b?lifecycle", &[], DeleteBucketLifecycle),
            ("POST", "/b?lifecycle", &[], MethodNotAllowed),
            ("PUT", "/b?object-lock", &[], PutObjectLockConfiguration),
            ("GET", "/b?object-lock", &[], GetObjectLockConfiguration),
            (
                "DELETE",
                "/b?object-lock",
                &[],
                UnsupportedBucketSubresource,
            ),
            ("POST", "/b?worm", &[], InitiateBucketWorm),
            ("DELETE", "/b?worm", &[], AbortBucketWorm),
            ("GET", "/b?worm", &[], GetBucketWorm),
            ("POST", "/b?wormId=abc", &[], CompleteBucketWorm),
            ("POST", "/b?wormId=abc&wormExtend", &[], ExtendBucketWorm),
            ("PUT", "/b?tagging", &[], PutBucketTagging),
            ("GET", "/b?tagging", &[], GetBucketTagging),
            ("DELETE", "/b?tagging", &[], DeleteBucketTagging),
            ("DELETE", "/b?tagging=k1,k2", &[], DeleteBucketTagging),
            // Encryption wins over policy when both are given.
            ("GET", "/b?policy&encryption", &[], GetBucketEncryption),
            // Buckets.
            ("PUT", "/b", &[], CreateBucket),
            ("PUT", "/b/", &[], CreateBucket),
            ("HEAD", "/b", &[], HeadBucket),
            ("HEAD", "/b?acl", &[], HeadBucket),
            ("DELETE", "/b", &[], DeleteBucket),
            ("GET", "/b?location", &[], GetBucketLocation),
            ("GET", "/b?uploads", &[], ListMultipartUploads),
            ("GET", "/b?uploads&prefix=a", &[], ListMultipartUploads),
            ("POST", "/b?delete", &[], DeleteObjects),
            ("GET", "/b?list-type=2", &[], ListObjectsV2),
            ("GET", "/b?list-type=2&acl", &[], ListObjectsV2),
            ("GET", "/b", &[], ListObjects),
            (
                "GET",
                "/b?prefix=a&max-keys=5&list-type=1",
                &[],
                ListObjects,
            ),
            ("GET", "/b?X-Amz-Signature=0&Expires=1", &[], ListObjects),
            ("GET", "/b?acl", &[], GetBucketAcl),
            ("PUT", "/b?acl", &[], PutBucketAcl),
            (
                "PUT",
                "/b?acl",
                &[("x-oss-acl", "public-read")],
                PutBucketAcl,
            ),
            ("DELETE", "/b?acl", &[], UnsupportedBucketSubresource),
            (
                "PUT",
                "/b?ownershipControls",
                &[],
                PutBucketOwnershipControls,
            ),
            (
                "GET",
                "/b?ownershipControls",
                &[],
                GetBucketOwnershipControls,
            ),
            (
                "DELETE",
                "/b?ownershipControls",
                &[],
                DeleteBucketOwnershipControls,
            ),
            ("POST", "/b", &[], MethodNotAllowed),
            ("POST", "/b?uploads", &[], MethodNotAllowed),
            ("PATCH", "/b", &[], MethodNotAllowed),
            // Multipart uploads.
            ("POST", "/b/k?uploads", &[], CreateMultipartUpload),
            ("PUT", "/b/k?uploadId=u&partNumber=1", &copy, UploadPartCopy),
            (
                "PUT",
                "/b/k?uploadId=u&partNumber=1",
                &oss_copy,
                UploadPartCopy,
            ),
            ("PUT", "/b/k?uploadId=u&partNumber=1", &[], UploadPart),
            ("POST", "/b/k?uploadId=u", &[], CompleteMultipartUpload),
            ("DELETE", "/b/k?uploadId=u", &[], AbortMultipartUpload),
            ("GET", "/b/k?uploadId=u", &[], ListParts),
            ("HEAD", "/b/k?uploadId=u", &[], UnsupportedObjectSubresource),
            // Objects.
            ("GET", "/b/k?acl", &[], GetObjectAcl),
            ("GET", "/b/k?acl&versionId=v", &[], GetObjectAcl),
            ("DELETE", "/b/k?acl", &[], UnsupportedObjectSubresource),
            ("PUT", "/b/k?retention", &[], PutObjectRetention),
            ("GET", "/b/k?retention&versionId=v", &[], GetObjectRetention),
            ("PUT", "/b/k?legal-hold", &[], PutObjectLegalHold),
            ("GET", "/b/k?legal-hold", &[], GetObjectLegalHold),
            (
                "DELETE",
                "/b/k?retention",
                &[],
                UnsupportedObjectSubresource,
            ),
            ("PUT", "/b/k?acl", &copy, PutObjectAcl),
            (
                "PUT",
                "/b/k?acl",
                &[("x-oss-object-acl", "default")],
                PutObjectAcl,
            ),
            ("POST", "/b/k?restore", &[], UnsupportedObjectSubresource),
            ("PUT", "/b/k", &copy, CopyObject),
            ("PUT", "/b/k", &oss_copy, CopyObject),
            // A copy source in the other dialect's header is not one.
            ("PUT", "/b/k", &[("x-oss-meta-a", "1"), copy[0]], PutObject),
            ("PUT", "/b/k", &[], PutObject),
            ("PUT", "/b/dir/k%20x", &[], PutObject),
            ("GET", "/b/k", &[], GetObject),
            ("GET", "/b/k?partNumber=1&versionId=null", &[], GetObject),
            ("GET", "/b/k?attributes", &[], GetObjectAttributes),
            ("PUT", "/b/k?tagging", &[], PutObjectTagging),
            ("GET", "/b/k?tagging&versionId=x", &[], GetObjectTagging),
            ("DELETE", "/b/k?tagging", &[], DeleteObjectTagging),
            ("GET", "/b?tagging", &[], GetBucketTagging),
            ("PUT", "/b/k?attributes", &[], UnsupportedObjectSubresource),
            (
                "GET",
                "/b/k?response-content-type=a&x-id=GetObject",
                &[],
                GetObject,
            ),
            ("HEAD", "/b/k", &[], HeadObject),
            ("DELETE", "/b/k", &[], DeleteObject),
            ("POST", "/b/k", &[], MethodNotAllowed),
            ("PATCH", "/b/k", &[], MethodNotAllowed),
            // The admin API.
            (
                "GET",
                "/_coffer/admin/users",
                &[],
                Admin(AdminOperation::ListUsers),
            ),
            (
                "POST",
                "/_coffer/admin/users",
                &[],
                Admin(AdminOperation::AddUser),
            ),
            (
                "DELETE",
                "/_coffer/admin/users/a%20b",
                &[],
                Admin(AdminOperation::DeleteUser {
                    name: "a%20b".to_owned(),
                }),
            ),
            (
                "DELETE",
                "/_coffer/admin/users/",
                &[],
                Admin(AdminOperation::Unknown),
            ),
            (
                "GET",
                "/_coffer/admin/users/a%2Fb/policy",
                &[],
                Admin(AdminOperation::GetUserPolicy {
                    name: "a%2Fb".to_owned(),
                }),
            ),
            (
                "PUT",
                "/_coffer/admin/users/bob/policy",
                &[],
                Admin(AdminOperation::PutUserPolicy {
                    name: "bob".to_owned(),
                }),
            ),
            (
                "DELETE",
                "/_coffer/admin/users/bob/policy",
                &[],
                Admin(AdminOperation::DeleteUserPolicy {
                    name: "bob".to_owned(),
                }),
            ),
            (
                "POST",
                "/_coffer/admin/users/bob/policy",
                &[],
                Admin(AdminOperation::Unknown),
            ),
            (
                "GET",
                "/_coffer/admin/users//policy",
                &[],
                Admin(AdminOperation::Unknown),
            ),
            (
                "GET",
                "/_coffer/admin/sse/keys",
                &[],
                Admin(AdminOperation::ListServiceKeys),
            ),
            (
                "POST",
                "/_coffer/admin/sse/rotate",
                &[],
                Admin(AdminOperation::RotateServiceKey),
            ),
            (
                "POST",
                "/_coffer/admin/sse/rewrap",
                &[],
                Admin(AdminOperation::RewrapAll),
            ),
            (
                "POST",
                "/_coffer/admin/sweeper/run",
                &[],
                Admin(AdminOperation::RunSweeper),
            ),
            (
                "GET",
                "/_coffer/admin/protection/b/dir/k%20x?versionId=v",
                &[],
                Admin(AdminOperation::ObjectProtection {
                    object: "b/dir/k%20x".to_owned(),
                }),
            ),
            (
                "GET",
                "/_coffer/admin/kms/audit?key=k",
                &[],
                Admin(AdminOperation::KmsAudit),
            ),
            (
                "GET",
                "/_coffer/admin/kms/usage?key=k",
                &[],
                Admin(AdminOperation::KmsUsage),
            ),
            (
                "GET",
                "/_coffer/admin/nothing",
                &[],
                Admin(AdminOperation::Unknown),
            ),
            (
                "PUT",
                "/_coffer/admin/users",
                &[],
                Admin(AdminOperation::Unknown),
            ),
        ];
        for (method, uri, headers, expected) in table {
            assert_eq!(
                &route(method, uri, headers),
                expected,
                "{method} {uri} {headers:?}"
            );
        }

        // The KMS API: a POST to `/` with a TrentService target.
        let encrypt = kms("Encrypt");
        let encrypt: Vec<(&str, &str)> = encrypt.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let op = route("POST", "/", &encrypt);
        assert_eq!(op.name(), "Encrypt");
        assert!(matches!(op, Kms(Some(_))));
        assert_eq!(
            route("POST", "/", &[("x-amz-target", "TrentService.Nope")]),
            Kms(None)
        );
        // Any other target, or another path, is S3.
        assert_eq!(
            route("POST", "/", &[("x-amz-target", "Other.Encrypt")]),
            MethodNotAllowed
        );
        assert_eq!(route("GET", "/", &encrypt), ListBuckets);

        // The Alibaba KMS API: the action and version 2016-01-20 in the
        // query (POP V1) or in x-acs-* headers (V3), named by the AWS
        // operation it runs.
        let op = route("POST", "/?Action=Decrypt&Version=2016-01-20", &[]);
        assert_eq!((op.name(), matches!(op, Kms(Some(_)))), ("Decrypt", true));
        let v3 = [
            ("x-acs-action", "UpdateRotationPolicy"),
            ("x-acs-version", "2016-01-20"),
        ];
        assert_eq!(route("POST", "/", &v3).name(), "EnableKeyRotation");
        assert_eq!(
            route("GET", "/?Action=Nope&Version=2016-01-20", &[]),
            Kms(None)
        );
        // Another version, or another path, is S3.
        assert_eq!(
            route("GET", "/?Action=Decrypt&Version=2014-01-01", &[]),
            ListBuckets
        );
        assert!(!matches!(
            route("GET", "/bucket?Action=Decrypt&Version=2016-01-20", &[]),
            Kms(_)
        ));
    }

    #[test]
    fn names_are_aws_operation_names() {
        assert_eq!(Operation::CopyObject.name(), "CopyObject");
        assert_eq!(Operation::ListObjectsV2.name(), "ListObjectsV2");
        assert_eq!(
            Operation::Admin(AdminOperation::ListUsers).name(),
            "AdminListUsers"
        );
    }
}
