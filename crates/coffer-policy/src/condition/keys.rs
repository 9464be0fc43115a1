//! Condition keys: the ones each namespace defines (a key of a known namespace that does not
//! exist is a typo and refused), and OSS's `acs:`/`oss:` keys' S3 names.

/// `aws:` global condition keys.
const AWS: &[&str] = &[
    "aws:CalledVia",
    "aws:CalledViaFirst",
    "aws:CalledViaLast",
    "aws:CurrentTime",
    "aws:EpochTime",
    "aws:FederatedProvider",
    "aws:MultiFactorAuthAge",
    "aws:MultiFactorAuthPresent",
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:PrincipalIsAWSService",
    "aws:PrincipalOrgID",
    "aws:PrincipalOrgPaths",
    "aws:PrincipalServiceName",
    "aws:PrincipalServiceNamesList",
    "aws:PrincipalType",
    "aws:Referer",
    "aws:RequestedRegion",
    "aws:ResourceAccount",
    "aws:ResourceOrgID",
    "aws:ResourceOrgPaths",
    "aws:SecureTransport",
    "aws:SourceAccount",
    "aws:SourceArn",
    "aws:SourceIdentity",
    "aws:SourceIp",
    "aws:SourceOrgID",
    "aws:SourceOrgPaths",
    "aws:SourceOwner",
    "aws:SourceVpc",
    "aws:SourceVpcArn",
    "aws:SourceVpce",
    "aws:TagKeys",
    "aws:TokenIssueTime",
    "aws:UserAgent",
    "aws:userid",
    "aws:username",
    "aws:ViaAWSService",
    "aws:VpcSourceIp",
    "aws:VpceAccount",
    "aws:VpceOrgID",
    "aws:VpceOrgPaths",
    "aws:Ec2InstanceSourcePrivateIPv4",
    "aws:Ec2InstanceSourceVpc",
];

/// `s3:` condition keys.
const S3: &[&str] = &[
    "s3:AccessGrantsInstanceArn",
    "s3:AccessPointNetworkOrigin",
    "s3:authType",
    "s3:DataAccessPointAccount",
    "s3:DataAccessPointArn",
    "s3:delimiter",
    "s3:ExistingJobOperation",
    "s3:ExistingJobPriority",
    "s3:if-match",
    "s3:if-none-match",
    "s3:InventoryAccessibleOptionalFields",
    "s3:JobSuspendedCause",
    "s3:LocationConstraint",
    "s3:max-keys",
    "s3:object-lock-legal-hold",
    "s3:object-lock-mode",
    "s3:object-lock-remaining-retention-days",
    "s3:object-lock-retain-until-date",
    "s3:ObjectCreationOperation",
    "s3:prefix",
    "s3:RequestJobOperation",
    "s3:RequestJobPriority",
    "s3:RequestObjectTagKeys",
    "s3:ResourceAccount",
    "s3:signatureAge",
    "s3:signatureversion",
    "s3:TlsVersion",
    "s3:VersionId",
    "s3:x-amz-acl",
    "s3:x-amz-content-sha256",
    "s3:x-amz-copy-source",
    "s3:x-amz-grant-full-control",
    "s3:x-amz-grant-read",
    "s3:x-amz-grant-read-acp",
    "s3:x-amz-grant-write",
    "s3:x-amz-grant-write-acp",
    "s3:x-amz-metadata-directive",
    "s3:x-amz-object-ownership",
    "s3:x-amz-server-side-encryption",
    "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "s3:x-amz-server-side-encryption-customer-algorithm",
    "s3:x-amz-storage-class",
    "s3:x-amz-website-redirect-location",
];

/// `kms:` condition keys.
const KMS: &[&str] = &[
    "kms:BypassPolicyLockoutSafetyCheck",
    "kms:CallerAccount",
    "kms:CustomerMasterKeySpec",
    "kms:CustomerMasterKeyUsage",
    "kms:DataKeyPairSpec",
    "kms:EncryptionAlgorithm",
    "kms:EncryptionContextKeys",
    "kms:ExpirationModel",
    "kms:GrantConstraintType",
    "kms:GranteePrincipal",
    "kms:GrantIsForAWSResource",
    "kms:GrantOperations",
    "kms:KeyAgreementAlgorithm",
    "kms:KeyOrigin",
    "kms:KeySpec",
    "kms:KeyUsage",
    "kms:MacAlgorithm",
    "kms:MessageType",
    "kms:MultiRegion",
    "kms:MultiRegionKeyType",
    "kms:PrimaryRegion",
    "kms:ReEncryptOnSameKey",
    "kms:ReplicaRegion",
    "kms:RequestAlias",
    "kms:ResourceAliases",
    "kms:RetiringPrincipal",
    "kms:RotationPeriodInDays",
    "kms:ScheduleKeyDeletionPendingWindowInDays",
    "kms:SigningAlgorithm",
    "kms:ValidTo",
    "kms:ViaService",
    "kms:WrappingAlgorithm",
    "kms:WrappingKeySpec",
];

/// Keys that take a suffix (a tag key, an encryption-context key).
const PREFIXED: &[&str] = &[
    "aws:PrincipalTag/",
    "aws:RequestTag/",
    "aws:ResourceTag/",
    "s3:BucketTag/",
    "s3:ExistingObjectTag/",
    "s3:RequestObjectTag/",
    "kms:EncryptionContext:",
    "kms:RecipientAttestation:",
    "acs:RequestTag/",
    "acs:ResourceTag/",
    "oss:ExistingObjectTag/",
    "oss:RequestObjectTag/",
];

/// `acs:` and `oss:` keys with the S3 key they are evaluated as (`None`: a key Coffer never
/// sets, accepted and always absent).
const OSS: &[(&str, Option<&str>)] = &[
    ("acs:AccessId", None),
    ("acs:CurrentTime", Some("aws:CurrentTime")),
    ("acs:MFAPresent", Some("aws:MultiFactorAuthPresent")),
    ("acs:PrincipalARN", Some("aws:PrincipalArn")),
    ("acs:PrincipalAccount", Some("aws:PrincipalAccount")),
    ("acs:PrincipalType", Some("aws:PrincipalType")),
    ("acs:Referer", Some("aws:Referer")),
    ("acs:SecureTransport", Some("aws:SecureTransport")),
    ("acs:SourceIp", Some("aws:SourceIp")),
    ("acs:SourceVpc", Some("aws:SourceVpc")),
    ("acs:SourceVpcId", Some("aws:SourceVpc")),
    ("acs:TagKeys", Some("aws:TagKeys")),
    ("acs:UserAgent", Some("aws:UserAgent")),
    ("oss:Delimiter", Some("s3:delimiter")),
    ("oss:MaxKeys", Some("s3:max-keys")),
    ("oss:Prefix", Some("s3:prefix")),
    ("oss:RequestObjectTagKeys", Some("s3:RequestObjectTagKeys")),
    ("oss:SignatureVersion", Some("s3:signatureversion")),
    ("oss:VersionId", Some("s3:VersionId")),
    ("oss:x-oss-acl", Some("s3:x-amz-acl")),
    ("oss:x-oss-content-sha256", Some("s3:x-amz-content-sha256")),
    ("oss:x-oss-forbid-overwrite", None),
    ("oss:x-oss-object-acl", Some("s3:x-amz-acl")),
    (
        "oss:x-oss-server-side-encryption",
        Some("s3:x-amz-server-side-encryption"),
    ),
    (
        "oss:x-oss-server-side-encryption-key-id",
        Some("s3:x-amz-server-side-encryption-aws-kms-key-id"),
    ),
    ("oss:x-oss-storage-class", Some("s3:x-amz-storage-class")),
];

/// A key that never appears in a request (the translation of an OSS key Coffer never sets).
pub(crate) const NEVER_SET: &str = "coffer:unset";

/// The S3-term key `key` stands for in a document whose keys may come from `namespaces`, or
/// `None` if it is unknown.
pub(crate) fn translate(key: &str, namespaces: &[&str]) -> Option<String> {
    let (namespace, _) = key.split_once(':')?;
    let namespace = namespace.to_ascii_lowercase();
    if !namespaces.contains(&namespace.as_str()) {
        return None;
    }
    for prefix in PREFIXED {
        if key.len() > prefix.len()
            && key.is_char_boundary(prefix.len())
            && key[..prefix.len()].eq_ignore_ascii_case(prefix)
        {
            let suffix = &key[prefix.len()..];
            return Some(match namespace.as_str() {
                "acs" => format!("aws:{}{suffix}", &prefix[4..]),
                "oss" => format!("s3:{}{suffix}", &prefix[4..]),
                _ => key.to_owned(),
            });
        }
    }
    match namespace.as_str() {
        "aws" | "s3" | "kms" => {
            let table = match namespace.as_str() {
                "aws" => AWS,
                "s3" => S3,
                _ => KMS,
            };
            table
                .iter()
                .any(|k| k.eq_ignore_ascii_case(key))
                .then(|| key.to_owned())
        }
        _ => OSS
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, s3)| s3.unwrap_or(NEVER_SET).to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys() {
        let s3 = ["aws", "s3"];
        assert_eq!(
            translate("aws:SourceIp", &s3).as_deref(),
            Some("aws:SourceIp")
        );
        assert_eq!(
            translate("AWS:SOURCEIP", &s3).as_deref(),
            Some("AWS:SOURCEIP")
        );
        assert!(translate("aws:SourceIpp", &s3).is_none());
        assert!(translate("s3:ExistingObjectTag/", &s3).is_none());
        assert!(translate("s3:ExistingObjectTag/team", &s3).is_some());
        assert!(translate("kms:ViaService", &s3).is_none());
        assert!(translate("ec2:Region", &s3).is_none());
        assert!(translate("nonamespace", &s3).is_none());
    }

    #[test]
    fn oss_keys_translate() {
        let oss = ["acs", "oss"];
        assert_eq!(
            translate("acs:SourceIp", &oss).as_deref(),
            Some("aws:SourceIp")
        );
        assert_eq!(translate("oss:Prefix", &oss).as_deref(), Some("s3:prefix"));
        assert_eq!(
            translate("oss:ExistingObjectTag/team", &oss).as_deref(),
            Some("s3:ExistingObjectTag/team")
        );
        assert_eq!(translate("acs:AccessId", &oss).as_deref(), Some(NEVER_SET));
        assert!(translate("aws:SourceIp", &oss).is_none());
    }
}
