//! The embedded default: a self-signed certificate for `localhost`,
//! `127.0.0.1` and `::1`, generated into the data dir on first start and
//! kept until it nears expiry.

use std::path::Path;
use std::time::{Duration, SystemTime};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use super::TlsError;
use super::certificate::{CertificateFiles, fingerprint};

/// Where the pair lives, under the data dir.
pub const DIR: &str = "tls";
pub const CERT_FILE: &str = "self-signed.crt";
pub const KEY_FILE: &str = "self-signed.key";
/// Validity of a generated certificate (the CA/Browser Forum maximum).
const VALIDITY_DAYS: u64 = 397;
/// A generated certificate older than this is replaced at start.
const RENEW_AFTER_DAYS: u32 = 365;
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The self-signed pair in the data dir, and whether it was made just now.
#[derive(Debug)]
pub struct SelfSigned {
    /// Where the pair is.
    pub files: CertificateFiles,
    /// Whether this call generated it (clients must then be given the new certificate).
    pub created: bool,
}

impl SelfSigned {
    /// Where the self-signed pair lives under `data_dir`, whether or not it exists yet.
    pub fn files_in(data_dir: &Path) -> CertificateFiles {
        let dir = data_dir.join(DIR);
        CertificateFiles {
            cert: dir.join(CERT_FILE),
            key: dir.join(KEY_FILE),
        }
    }
}

/// Reuses the data dir's self-signed pair, or generates one (ECDSA P-256)
/// when it is missing or older than a year.
pub fn ensure_self_signed(data_dir: &Path) -> Result<SelfSigned, TlsError> {
    let files = SelfSigned::files_in(data_dir);
    let age = std::fs::metadata(&files.cert)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok());
    let fresh = matches!(age, Some(age) if age < DAY * RENEW_AFTER_DAYS);
    if fresh && files.key.exists() {
        return Ok(SelfSigned {
            files,
            created: false,
        });
    }
    let (cert_pem, key_pem, _) = generate()?;
    let dir = data_dir.join(DIR);
    coffer_files::ensure_private_dir(&dir).map_err(|e| TlsError::file(&dir, e))?;
    coffer_files::replace(&files.key, key_pem.as_bytes())
        .map_err(|e| TlsError::file(&files.key, e))?;
    // The certificate is public, but it lives in the private data dir like
    // every file Coffer writes: owner-only too (copy it out for clients).
    coffer_files::replace(&files.cert, cert_pem.as_bytes())
        .map_err(|e| TlsError::file(&files.cert, e))?;
    Ok(SelfSigned {
        files,
        created: true,
    })
}

/// A new self-signed pair: (certificate PEM, key PEM, SHA-256 fingerprint).
pub fn generate() -> Result<(String, zeroize::Zeroizing<String>, String), TlsError> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let mut params =
        CertificateParams::new(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, "localhost");
    subject.push(DnType::OrganizationName, "Coffer self-signed");
    params.distinguished_name = subject;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(VALIDITY_DAYS as i64);
    let key = KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok((
        cert.pem(),
        zeroize::Zeroizing::new(key.serialize_pem()),
        fingerprint(cert.der()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::ReloadingCertificate;

    #[test]
    fn generated_once_then_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ensure_self_signed(dir.path()).expect("generated");
        assert!(first.created);
        let loaded = ReloadingCertificate::load(first.files.clone()).expect("loads");
        let again = ensure_self_signed(dir.path()).expect("reused");
        assert!(!again.created);
        let reloaded = ReloadingCertificate::load(again.files).expect("loads");
        assert_eq!(loaded.fingerprint(), reloaded.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&first.files.key)
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is private to its owner");
        }
    }
}
