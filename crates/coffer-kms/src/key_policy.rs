//! Key policies: who may use and administer each customer master key, as an AWS KMS key
//! policy document (IAM JSON). The KMS stores and returns documents; the KMS API and the S3
//! layer parse and evaluate them (with `coffer-policy`), because a decision also needs the
//! caller's identity policy, which lives with the users.
//!
//! A key without a stored document has a default one, computed when asked:
//!
//! - a customer key: the account statement (root, and every user whose identity policy
//!   allows — AWS's "Enable IAM User Permissions") and, when the creator is known, the
//!   creator with `kms:*`;
//! - the service's managed key (`alias/aws/s3`): every principal of the account, through S3
//!   only, for the data plane; direct reads of its metadata by the account (AWS's policy for
//!   `aws/s3`). A managed key's policy cannot be changed.

/// The account every key belongs to (AWS account ids are 12 digits).
pub const ACCOUNT: &str = "000000000000";

/// The only policy name a key has (AWS: `default`).
pub const POLICY_NAME: &str = "default";

/// The largest document PutKeyPolicy accepts, in bytes (AWS's limit).
pub const MAX_POLICY_BYTES: usize = 32 * 1024;

/// A key's policy, with what evaluating it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPolicy {
    /// The key id (aliases resolved).
    pub key_id: String,
    /// The key's ARN: the resource its statements are evaluated against.
    pub arn: String,
    /// The document (JSON).
    pub document: String,
    /// Whether the document was set (CreateKey's `Policy`, PutKeyPolicy) rather than the
    /// default computed for the key.
    pub explicit: bool,
}

/// The IAM ARN of a principal the KMS names by its user name (`root` is the account root).
pub fn principal_arn(name: &str) -> String {
    if name == "root" {
        format!("arn:aws:iam::{ACCOUNT}:root")
    } else {
        format!("arn:aws:iam::{ACCOUNT}:user/{name}")
    }
}

/// The default policy of a customer key created by `creator` (`None`: a key created before
/// key policies, whose creator is not recorded: the account statement alone).
pub fn default_policy(creator: Option<&str>) -> String {
    let mut statements = vec![serde_json::json!({
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": principal_arn("root")},
        "Action": "kms:*",
        "Resource": "*",
    })];
    if let Some(creator) = creator.filter(|c| *c != "root") {
        statements.push(serde_json::json!({
            "Sid": "Allow the key's creator to use and administer it",
            "Effect": "Allow",
            "Principal": {"AWS": principal_arn(creator)},
            "Action": "kms:*",
            "Resource": "*",
        }));
    }
    serde_json::json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": statements,
    })
    .to_string()
}

/// The policy of the service's managed SSE key in `region` (AWS's `aws/s3` policy).
pub fn managed_policy(region: &str) -> String {
    // Built once for the server's region: every SSE-KMS object under the default key asks.
    static BUILT: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    let (built_for, document) =
        BUILT.get_or_init(|| (region.to_owned(), build_managed_policy(region)));
    if built_for == region {
        document.clone()
    } else {
        build_managed_policy(region)
    }
}

fn build_managed_policy(region: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Id": "auto-s3-2",
        "Statement": [
            {
                "Sid": "Allow access through S3 for all principals in the account that are authorized to use S3",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {
                    "kms:CallerAccount": ACCOUNT,
                    "kms:ViaService": via_s3(region),
                }},
            },
            {
                "Sid": "Allow direct access to key metadata to the account",
                "Effect": "Allow",
                "Principal": {"AWS": principal_arn("root")},
                "Action": ["kms:Describe*", "kms:Get*", "kms:List*"],
                "Resource": "*",
            },
        ],
    })
    .to_string()
}

/// `kms:ViaService` of a request S3 makes on a caller's behalf in `region`.
pub fn via_s3(region: &str) -> String {
    format!("s3.{region}.amazonaws.com")
}

/// Checks what PutKeyPolicy and CreateKey may store: the policy name, and a document that is
/// not empty and not too long. Whether it is a valid policy is the caller's to check, with the
/// policy parser.
pub fn check_document(name: Option<&str>, document: &str) -> Result<(), InvalidDocument> {
    if let Some(name) = name
        && name != POLICY_NAME
    {
        return Err(InvalidDocument(format!(
            "PolicyName must be '{POLICY_NAME}', not '{name}'"
        )));
    }
    if document.trim().is_empty() || document.len() > MAX_POLICY_BYTES {
        return Err(InvalidDocument(format!(
            "a key policy is 1 to {MAX_POLICY_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Why [`check_document`] refused a name or document (a `KmsError::Validation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDocument(pub String);

impl std::fmt::Display for InvalidDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_name_the_account_and_the_creator() {
        let policy: serde_json::Value =
            serde_json::from_str(&default_policy(Some("alice"))).expect("JSON");
        let statements = policy["Statement"].as_array().expect("statements");
        assert_eq!(statements.len(), 2);
        assert_eq!(
            statements[0]["Principal"]["AWS"],
            "arn:aws:iam::000000000000:root"
        );
        assert_eq!(
            statements[1]["Principal"]["AWS"],
            "arn:aws:iam::000000000000:user/alice"
        );
        let by_root: serde_json::Value =
            serde_json::from_str(&default_policy(Some("root"))).expect("JSON");
        assert_eq!(by_root["Statement"].as_array().map(Vec::len), Some(1));
        let unknown: serde_json::Value = serde_json::from_str(&default_policy(None)).expect("JSON");
        assert_eq!(unknown["Statement"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn documents_are_checked_for_name_and_size() {
        assert!(check_document(None, "{}").is_ok());
        assert!(check_document(Some("default"), "{}").is_ok());
        assert!(check_document(Some("other"), "{}").is_err());
        assert!(check_document(None, "  ").is_err());
        assert!(check_document(None, &"x".repeat(MAX_POLICY_BYTES + 1)).is_err());
    }
}
