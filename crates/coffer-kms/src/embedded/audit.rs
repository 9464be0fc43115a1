//! The audit log: one JSON object per call, appended through the keystore
//! ([`crate::keystore::KeyStore::append_audit`]; the file backend writes
//! `<data-dir>/kms/audit.log`, mode 0600) before the call returns.
//!
//! ```json
//! {"time":"2025-01-01T00:00:00Z","principal":"alice","operation":"Decrypt",
//!  "key_id":"…","key_version":2,"resource":"bucket/key",
//!  "encryption_context":{"bucket":"b"},"outcome":"ok"}
//! ```
//!
//! It records names, key ids, versions and encryption contexts (which are
//! not secret by definition), never plaintext, key material or ciphertext.
//! `outcome` is `ok` or the AWS error type (`DisabledException`, …).

use serde::Serialize;

#[cfg(test)]
pub use crate::keystore::file::AUDIT_FILE_NAME as FILE_NAME;
use crate::kms::{EncryptionContext, KmsError};

/// What a call learned about itself while running, for its audit line.
#[derive(Default)]
pub struct AuditDetails {
    pub key_id: Option<String>,
    pub key_version: Option<u32>,
    pub alias: Option<String>,
    pub source_key_id: Option<String>,
    pub source_key_version: Option<u32>,
    pub encryption_context: Option<EncryptionContext>,
    pub destination_encryption_context: Option<EncryptionContext>,
}

#[derive(Serialize)]
struct AuditLine<'a> {
    time: &'a str,
    principal: &'a str,
    operation: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alias: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_key_version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_context: Option<&'a EncryptionContext>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_encryption_context: Option<&'a EncryptionContext>,
    outcome: &'a str,
}

/// The audit line of one call (without its newline); `None`, logged, if it
/// cannot be serialised.
pub fn line(
    time: &str,
    principal: &str,
    resource: Option<&str>,
    operation: &str,
    details: &AuditDetails,
    outcome: Result<(), &KmsError>,
) -> Option<String> {
    let line = AuditLine {
        time,
        principal,
        operation,
        key_id: details.key_id.as_deref(),
        key_version: details.key_version,
        alias: details.alias.as_deref(),
        source_key_id: details.source_key_id.as_deref(),
        source_key_version: details.source_key_version,
        resource,
        encryption_context: details.encryption_context.as_ref(),
        destination_encryption_context: details.destination_encryption_context.as_ref(),
        outcome: match outcome {
            Ok(()) => "ok",
            Err(e) => e.aws_type(),
        },
    };
    match serde_json::to_string(&line) {
        Ok(text) => Some(text),
        Err(e) => {
            tracing::error!(error = %e, operation, "KMS audit line not serialisable");
            None
        }
    }
}
