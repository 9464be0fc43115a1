//! The actions a document may name: every S3 action AWS accepts (including the ones Coffer
//! does not implement: AWS accepts any valid action, and a policy written for AWS must load),
//! the KMS actions of AWS and Alibaba Cloud, and OSS's actions with their S3 equivalents.
//!
//! Actions compare case-insensitively; a pattern (`s3:Get*`) must match at least one known
//! action, so a typo is refused rather than stored as a statement that never applies.

use crate::pattern::{Pattern, Syntax};

/// Every S3 action of the IAM service authorization reference.
pub(crate) const S3_ACTIONS: &[&str] = &[
    "AbortMultipartUpload",
    "AssociateAccessGrantsIdentityCenter",
    "BypassGovernanceRetention",
    "CreateAccessGrant",
    "CreateAccessGrantsInstance",
    "CreateAccessGrantsLocation",
    "CreateAccessPoint",
    "CreateAccessPointForObjectLambda",
    "CreateBucket",
    "CreateBucketMetadataTableConfiguration",
    "CreateJob",
    "CreateMultiRegionAccessPoint",
    "CreateSession",
    "CreateStorageLensGroup",
    "DeleteAccessGrant",
    "DeleteAccessGrantsInstance",
    "DeleteAccessGrantsInstanceResourcePolicy",
    "DeleteAccessGrantsLocation",
    "DeleteAccessPoint",
    "DeleteAccessPointForObjectLambda",
    "DeleteAccessPointPolicy",
    "DeleteAccessPointPolicyForObjectLambda",
    "DeleteBucket",
    "DeleteBucketMetadataTableConfiguration",
    "DeleteBucketOwnershipControls",
    "DeleteBucketPolicy",
    "DeleteBucketWebsite",
    "DeleteJobTagging",
    "DeleteMultiRegionAccessPoint",
    "DeleteObject",
    "DeleteObjectTagging",
    "DeleteObjectVersion",
    "DeleteObjectVersionTagging",
    "DeleteStorageLensConfiguration",
    "DeleteStorageLensConfigurationTagging",
    "DeleteStorageLensGroup",
    "DescribeJob",
    "DescribeMultiRegionAccessPointOperation",
    "DissociateAccessGrantsIdentityCenter",
    "GetAccelerateConfiguration",
    "GetAccessGrant",
    "GetAccessGrantsInstance",
    "GetAccessGrantsInstanceForPrefix",
    "GetAccessGrantsInstanceResourcePolicy",
    "GetAccessGrantsLocation",
    "GetAccessPoint",
    "GetAccessPointConfigurationForObjectLambda",
    "GetAccessPointForObjectLambda",
    "GetAccessPointPolicy",
    "GetAccessPointPolicyForObjectLambda",
    "GetAccessPointPolicyStatus",
    "GetAccessPointPolicyStatusForObjectLambda",
    "GetAccountPublicAccessBlock",
    "GetAnalyticsConfiguration",
    "GetBucketAcl",
    "GetBucketCORS",
    "GetBucketLocation",
    "GetBucketLogging",
    "GetBucketMetadataTableConfiguration",
    "GetBucketNotification",
    "GetBucketObjectLockConfiguration",
    "GetBucketOwnershipControls",
    "GetBucketPolicy",
    "GetBucketPolicyStatus",
    "GetBucketPublicAccessBlock",
    "GetBucketRequestPayment",
    "GetBucketTagging",
    "GetBucketVersioning",
    "GetBucketWebsite",
    "GetDataAccess",
    "GetEncryptionConfiguration",
    "GetIntelligentTieringConfiguration",
    "GetInventoryConfiguration",
    "GetJobTagging",
    "GetLifecycleConfiguration",
    "GetMetricsConfiguration",
    "GetMultiRegionAccessPoint",
    "GetMultiRegionAccessPointPolicy",
    "GetMultiRegionAccessPointPolicyStatus",
    "GetMultiRegionAccessPointRoutes",
    "GetObject",
    "GetObjectAcl",
    "GetObjectAttributes",
    "GetObjectLegalHold",
    "GetObjectRetention",
    "GetObjectTagging",
    "GetObjectTorrent",
    "GetObjectVersion",
    "GetObjectVersionAcl",
    "GetObjectVersionAttributes",
    "GetObjectVersionForReplication",
    "GetObjectVersionTagging",
    "GetObjectVersionTorrent",
    "GetReplicationConfiguration",
    "GetStorageLensConfiguration",
    "GetStorageLensConfigurationTagging",
    "GetStorageLensDashboard",
    "GetStorageLensGroup",
    "InitiateReplication",
    "ListAccessGrants",
    "ListAccessGrantsInstances",
    "ListAccessGrantsLocations",
    "ListAccessPoints",
    "ListAccessPointsForObjectLambda",
    "ListAllMyBuckets",
    "ListBucket",
    "ListBucketMultipartUploads",
    "ListBucketVersions",
    "ListCallerAccessGrants",
    "ListJobs",
    "ListMultiRegionAccessPoints",
    "ListMultipartUploadParts",
    "ListStorageLensConfigurations",
    "ListStorageLensGroups",
    "ListTagsForResource",
    "ObjectOwnerOverrideToBucketOwner",
    "PauseReplication",
    "PutAccelerateConfiguration",
    "PutAccessGrantsInstanceResourcePolicy",
    "PutAccessPointConfigurationForObjectLambda",
    "PutAccessPointPolicy",
    "PutAccessPointPolicyForObjectLambda",
    "PutAccessPointPublicAccessBlock",
    "PutAccountPublicAccessBlock",
    "PutAnalyticsConfiguration",
    "PutBucketAcl",
    "PutBucketCORS",
    "PutBucketLogging",
    "PutBucketNotification",
    "PutBucketObjectLockConfiguration",
    "PutBucketOwnershipControls",
    "PutBucketPolicy",
    "PutBucketPublicAccessBlock",
    "PutBucketRequestPayment",
    "PutBucketTagging",
    "PutBucketVersioning",
    "PutBucketWebsite",
    "PutEncryptionConfiguration",
    "PutIntelligentTieringConfiguration",
    "PutInventoryConfiguration",
    "PutJobTagging",
    "PutLifecycleConfiguration",
    "PutMetricsConfiguration",
    "PutMultiRegionAccessPointPolicy",
    "PutObject",
    "PutObjectAcl",
    "PutObjectLegalHold",
    "PutObjectRetention",
    "PutObjectTagging",
    "PutObjectVersionAcl",
    "PutObjectVersionTagging",
    "PutReplicationConfiguration",
    "PutStorageLensConfiguration",
    "PutStorageLensConfigurationTagging",
    "ReplicateDelete",
    "ReplicateObject",
    "ReplicateTags",
    "RestoreObject",
    "SubmitMultiRegionAccessPointRoutes",
    "TagResource",
    "UntagResource",
    "UpdateAccessGrantsLocation",
    "UpdateBucketMetadataInventoryTableConfiguration",
    "UpdateBucketMetadataJournalTableConfiguration",
    "UpdateJobPriority",
    "UpdateJobStatus",
    "UpdateStorageLensGroup",
];

/// The KMS actions of AWS KMS and Alibaba Cloud KMS (both write `kms:`).
pub(crate) const KMS_ACTIONS: &[&str] = &[
    // AWS KMS.
    "CancelKeyDeletion",
    "ConnectCustomKeyStore",
    "CreateAlias",
    "CreateCustomKeyStore",
    "CreateGrant",
    "CreateKey",
    "Decrypt",
    "DeleteAlias",
    "DeleteCustomKeyStore",
    "DeleteImportedKeyMaterial",
    "DeriveSharedSecret",
    "DescribeCustomKeyStores",
    "DescribeKey",
    "DisableKey",
    "DisableKeyRotation",
    "DisconnectCustomKeyStore",
    "EnableKey",
    "EnableKeyRotation",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GenerateRandom",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "GetParametersForImport",
    "GetPublicKey",
    "ImportKeyMaterial",
    "ListAliases",
    "ListGrants",
    "ListKeyPolicies",
    "ListKeyRotations",
    "ListKeys",
    "ListResourceTags",
    "ListRetirableGrants",
    "PutKeyPolicy",
    "ReEncryptFrom",
    "ReEncryptTo",
    "ReplicateKey",
    "RetireGrant",
    "RevokeGrant",
    "RotateKeyOnDemand",
    "ScheduleKeyDeletion",
    "Sign",
    "SynchronizeMultiRegionKey",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
    "UpdateCustomKeyStore",
    "UpdateKeyDescription",
    "UpdatePrimaryRegion",
    "Verify",
    "VerifyMac",
    // Alibaba Cloud KMS.
    "AsymmetricDecrypt",
    "AsymmetricEncrypt",
    "AsymmetricSign",
    "AsymmetricVerify",
    "CreateKeyVersion",
    "DescribeKeyVersion",
    "DescribeRegions",
    "ExportDataKey",
    "GenerateAndExportDataKey",
    "GetParametersForImport",
    "ListKeyVersions",
    "ReEncrypt",
    "UpdateRotationPolicy",
];

/// OSS actions with the S3 action Coffer evaluates them as. OSS-only actions (no S3
/// equivalent) are accepted and never match a request.
const OSS_ACTIONS: &[(&str, Option<&str>)] = &[
    ("AbortMultipartUpload", Some("AbortMultipartUpload")),
    ("AppendObject", Some("PutObject")),
    ("CompleteMultipartUpload", Some("PutObject")),
    ("CopyObject", Some("PutObject")),
    ("DeleteBucket", Some("DeleteBucket")),
    ("DeleteBucketCors", Some("PutBucketCORS")),
    ("DeleteBucketEncryption", Some("PutEncryptionConfiguration")),
    ("DeleteBucketLifecycle", Some("PutLifecycleConfiguration")),
    ("DeleteBucketPolicy", Some("DeleteBucketPolicy")),
    (
        "DeleteBucketPublicAccessBlock",
        Some("PutBucketPublicAccessBlock"),
    ),
    ("DeleteBucketTagging", Some("PutBucketTagging")),
    ("DeleteBucketWebsite", Some("DeleteBucketWebsite")),
    ("DeleteMultipleObjects", Some("DeleteObject")),
    ("DeleteObject", Some("DeleteObject")),
    ("DeleteObjectTagging", Some("DeleteObjectTagging")),
    ("DeleteObjectVersion", Some("DeleteObjectVersion")),
    (
        "DeleteObjectVersionTagging",
        Some("DeleteObjectVersionTagging"),
    ),
    ("AbortBucketWorm", Some("PutBucketObjectLockConfiguration")),
    (
        "CompleteBucketWorm",
        Some("PutBucketObjectLockConfiguration"),
    ),
    ("ExtendBucketWorm", Some("PutBucketObjectLockConfiguration")),
    (
        "InitiateBucketWorm",
        Some("PutBucketObjectLockConfiguration"),
    ),
    ("GetBucketWorm", Some("GetBucketObjectLockConfiguration")),
    ("GetBucketAcl", Some("GetBucketAcl")),
    ("GetBucketCors", Some("GetBucketCORS")),
    ("GetBucketEncryption", Some("GetEncryptionConfiguration")),
    ("GetBucketInfo", Some("GetBucketLocation")),
    ("GetBucketLifecycle", Some("GetLifecycleConfiguration")),
    ("GetBucketLocation", Some("GetBucketLocation")),
    ("GetBucketLogging", Some("GetBucketLogging")),
    ("GetBucketPolicy", Some("GetBucketPolicy")),
    ("GetBucketPolicyStatus", Some("GetBucketPolicyStatus")),
    (
        "GetBucketPublicAccessBlock",
        Some("GetBucketPublicAccessBlock"),
    ),
    ("GetBucketReferer", None),
    ("GetBucketStat", None),
    ("GetBucketTagging", Some("GetBucketTagging")),
    ("GetBucketVersioning", Some("GetBucketVersioning")),
    ("GetBucketWebsite", Some("GetBucketWebsite")),
    ("GetObject", Some("GetObject")),
    ("GetObjectAcl", Some("GetObjectAcl")),
    ("GetObjectMeta", Some("GetObject")),
    ("GetObjectTagging", Some("GetObjectTagging")),
    ("GetObjectVersion", Some("GetObjectVersion")),
    ("GetObjectVersionAcl", Some("GetObjectVersionAcl")),
    ("GetObjectVersionTagging", Some("GetObjectVersionTagging")),
    ("GetSymlink", Some("GetObject")),
    ("InitiateMultipartUpload", Some("PutObject")),
    ("ListBuckets", Some("ListAllMyBuckets")),
    ("ListMultipartUploads", Some("ListBucketMultipartUploads")),
    ("ListObjectVersions", Some("ListBucketVersions")),
    ("ListObjects", Some("ListBucket")),
    ("ListParts", Some("ListMultipartUploadParts")),
    ("PostObject", Some("PutObject")),
    ("PutBucket", Some("CreateBucket")),
    ("PutBucketAcl", Some("PutBucketAcl")),
    ("PutBucketCors", Some("PutBucketCORS")),
    ("PutBucketEncryption", Some("PutEncryptionConfiguration")),
    ("PutBucketLifecycle", Some("PutLifecycleConfiguration")),
    ("PutBucketLogging", Some("PutBucketLogging")),
    ("PutBucketPolicy", Some("PutBucketPolicy")),
    (
        "PutBucketPublicAccessBlock",
        Some("PutBucketPublicAccessBlock"),
    ),
    ("PutBucketReferer", None),
    ("PutBucketTagging", Some("PutBucketTagging")),
    ("PutBucketVersioning", Some("PutBucketVersioning")),
    ("PutBucketWebsite", Some("PutBucketWebsite")),
    ("PutObject", Some("PutObject")),
    ("PutObjectAcl", Some("PutObjectAcl")),
    ("PutObjectTagging", Some("PutObjectTagging")),
    ("PutObjectVersionAcl", Some("PutObjectVersionAcl")),
    ("PutObjectVersionTagging", Some("PutObjectVersionTagging")),
    ("PutSymlink", Some("PutObject")),
    ("RestoreObject", Some("RestoreObject")),
    ("UploadPart", Some("PutObject")),
    ("UploadPartCopy", Some("PutObject")),
];

const WILDCARDS: Syntax = Syntax {
    wildcards: true,
    variables: false,
};

/// Why an action was refused.
pub(crate) enum ActionError {
    /// Not `service:name`, or a service the document may not name.
    UnknownService,
    /// Names (or, as a pattern, matches) no action of its service.
    UnknownAction,
}

/// The S3-term patterns an action entry stands for. `services` are the prefixes the document
/// may use (`s3`, `kms`, `oss`).
pub(crate) fn compile(entry: &str, services: &[&str]) -> Result<Vec<Pattern>, ActionError> {
    if entry == "*" {
        return Ok(vec![Pattern::new("*", WILDCARDS)]);
    }
    let Some((service, name)) = entry.split_once(':') else {
        return Err(ActionError::UnknownService);
    };
    let service = service.to_ascii_lowercase();
    if !services.contains(&service.as_str()) {
        return Err(ActionError::UnknownService);
    }
    let pattern = Pattern::new(name, WILDCARDS);
    match service.as_str() {
        "s3" | "kms" => {
            let table = if service == "s3" {
                S3_ACTIONS
            } else {
                KMS_ACTIONS
            };
            if !table.iter().any(|a| pattern.matches_plain(a, true)) {
                return Err(ActionError::UnknownAction);
            }
            Ok(vec![Pattern::new(&format!("{service}:{name}"), WILDCARDS)])
        }
        _ => {
            // OSS: `oss:*` stands for every action, including ones added later; any other
            // pattern becomes the S3 actions of the OSS actions it matches.
            if name == "*" {
                return Ok(vec![Pattern::new("s3:*", WILDCARDS)]);
            }
            let matched: Vec<_> = OSS_ACTIONS
                .iter()
                .filter(|(oss, _)| pattern.matches_plain(oss, true))
                .collect();
            if matched.is_empty() {
                return Err(ActionError::UnknownAction);
            }
            let mut s3: Vec<Pattern> = Vec::new();
            for (_, equivalent) in matched {
                if let Some(name) = equivalent {
                    let p = Pattern::new(&format!("s3:{name}"), WILDCARDS);
                    if !s3.contains(&p) {
                        s3.push(p);
                    }
                }
            }
            Ok(s3)
        }
    }
}

/// Whether `action` (e.g. `s3:GetObject`) matches one of `patterns`.
pub(crate) fn matches(patterns: &[Pattern], action: &str) -> bool {
    patterns.iter().any(|p| p.matches_plain(action, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(entry: &str) -> Result<Vec<Pattern>, ActionError> {
        compile(entry, &["s3"])
    }

    #[test]
    fn s3_actions_and_patterns() {
        let p = s3("s3:get*").ok().expect("valid pattern");
        assert!(matches(&p, "s3:GetObject"));
        assert!(matches(&p, "S3:GETOBJECTACL"));
        assert!(!matches(&p, "s3:PutObject"));
        assert!(s3("s3:GetObjekt").is_err());
        assert!(s3("s3:Foo*").is_err());
        assert!(s3("kms:Decrypt").is_err());
        assert!(s3("GetObject").is_err());
        // Valid on AWS though Coffer has no such operation.
        assert!(s3("s3:PutBucketWebsite").is_ok());
    }

    #[test]
    fn oss_actions_translate_to_s3() {
        let p = compile("oss:ListObjects", &["oss"]).ok().expect("valid");
        assert!(matches(&p, "s3:ListBucket"));
        assert!(!matches(&p, "s3:ListBucketVersions"));
        let all = compile("oss:*", &["oss"]).ok().expect("valid");
        assert!(matches(&all, "s3:GetObject"));
        let puts = compile("oss:Put*", &["oss"]).ok().expect("valid");
        assert!(matches(&puts, "s3:PutObject"));
        assert!(matches(&puts, "s3:CreateBucket"));
        assert!(!matches(&puts, "s3:GetObject"));
        let referer = compile("oss:PutBucketReferer", &["oss"])
            .ok()
            .expect("valid");
        assert!(referer.is_empty());
        assert!(compile("oss:Nope", &["oss"]).is_err());
        assert!(compile("s3:GetObject", &["oss"]).is_err());
    }
}
