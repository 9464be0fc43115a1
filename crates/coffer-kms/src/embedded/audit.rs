//! The audit log, `<data-dir>/kms/audit.log` (mode 0600): one JSON object
//! per call, appended and flushed before the call returns.
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

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;

use crate::kms::{EncryptionContext, KmsError};

pub const FILE_NAME: &str = "audit.log";

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

pub struct AuditLog {
    file: Mutex<File>,
}

impl AuditLog {
    pub fn open(dir: &Path) -> Result<Self, KmsError> {
        let path = dir.join(FILE_NAME);
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(&path)
            .map_err(|e| KmsError::Internal(format!("{}: {e}", path.display())))?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    /// Appends one line. A failure to write is logged, not returned: the
    /// call it records has already happened (and was persisted).
    pub fn record(
        &self,
        time: &str,
        principal: &str,
        resource: Option<&str>,
        operation: &str,
        details: &AuditDetails,
        outcome: Result<(), &KmsError>,
    ) {
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
        let mut bytes = match serde_json::to_vec(&line) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!(error = %e, operation, "KMS audit line not serialisable");
                return;
            }
        };
        bytes.push(b'\n');
        let written = match self.file.lock() {
            Ok(mut file) => file.write_all(&bytes).and_then(|()| file.flush()),
            Err(_) => Err(std::io::Error::other("audit log lock poisoned")),
        };
        if let Err(e) = written {
            tracing::error!(error = %e, operation, "KMS audit log write failed");
        }
    }
}
