//! The listener's certificate: loaded from PEM files, and reloaded without a
//! restart (on SIGHUP, and when the files change). A new pair that does not
//! load keeps the old one in service and is reported as an error.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::TlsError;

/// How often the files are checked for changes.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// A certificate chain and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFiles {
    /// The leaf certificate first, then any intermediates.
    pub cert: PathBuf,
    /// PKCS#8, PKCS#1 or SEC1 private key.
    pub key: PathBuf,
}

/// What the files looked like when last read: a change in either means a
/// reload is due.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Vec<Option<(SystemTime, u64)>>);

impl Stamp {
    fn of(files: &CertificateFiles) -> Self {
        Stamp(
            [&files.cert, &files.key]
                .iter()
                .map(|p| {
                    std::fs::metadata(p)
                        .ok()
                        .and_then(|m| Some((m.modified().ok()?, m.len())))
                })
                .collect(),
        )
    }
}

struct Loaded {
    key: Arc<CertifiedKey>,
    fingerprint: String,
}

/// The certificate the HTTPS listener presents, swappable while serving:
/// each handshake takes the current one; connections already established
/// keep theirs.
pub struct ReloadingCertificate {
    files: CertificateFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Loaded>,
    /// The files' state at the last attempt, successful or not, so that a
    /// bad file is reported once, not at every check.
    seen: Mutex<Stamp>,
}

impl fmt::Debug for ReloadingCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCertificate")
            .field("files", &self.files)
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl ReloadingCertificate {
    /// Loads the pair; an unusable pair is an error (the server does not start).
    pub fn load(files: CertificateFiles) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let seen = Stamp::of(&files);
        let loaded = load_pair(&files, &provider)?;
        Ok(Self {
            files,
            provider,
            current: RwLock::new(loaded),
            seen: Mutex::new(seen),
        })
    }

    /// The certificate and key files it is loaded (and reloaded) from.
    pub fn files(&self) -> &CertificateFiles {
        &self.files
    }

    /// SHA-256 of the leaf certificate in service, as `AB:CD:…` (the form
    /// `openssl x509 -fingerprint -sha256` prints).
    pub fn fingerprint(&self) -> String {
        match self.current.read() {
            Ok(loaded) => loaded.fingerprint.clone(),
            Err(poisoned) => poisoned.into_inner().fingerprint.clone(),
        }
    }

    /// Reads the files again and puts the new pair in service. On error the
    /// old pair stays and the error is returned; `Ok(fingerprint)` otherwise.
    pub fn reload(&self) -> Result<String, TlsError> {
        let stamp = Stamp::of(&self.files);
        let result = load_pair(&self.files, &self.provider);
        if let Ok(mut seen) = self.seen.lock() {
            *seen = stamp;
        }
        let loaded = result?;
        let fingerprint = loaded.fingerprint.clone();
        match self.current.write() {
            Ok(mut current) => *current = loaded,
            Err(poisoned) => *poisoned.into_inner() = loaded,
        }
        Ok(fingerprint)
    }

    /// Reloads if either file changed since the last attempt, and logs the
    /// outcome.
    pub fn reload_if_changed(&self) {
        let stamp = Stamp::of(&self.files);
        let changed = self.seen.lock().map(|seen| *seen != stamp).unwrap_or(true);
        if changed {
            self.reload_and_log("the certificate files changed");
        }
    }

    /// Reloads and logs the outcome: the new fingerprint, or the error and
    /// that the old certificate stays in service.
    pub fn reload_and_log(&self, why: &str) {
        match self.reload() {
            Ok(fingerprint) => tracing::info!(
                sha256 = %fingerprint,
                cert = %self.files.cert.display(),
                "TLS certificate reloaded ({why})"
            ),
            Err(error) => tracing::error!(
                %error,
                sha256 = %self.fingerprint(),
                "TLS certificate reload failed ({why}); the previous certificate stays in service"
            ),
        }
    }

    /// Checks the files every `WATCH_INTERVAL` for as long as the runtime runs.
    pub fn spawn_watcher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let this = Arc::clone(&this);
                // Reading files is blocking work.
                let _ = tokio::task::spawn_blocking(move || this.reload_if_changed()).await;
            }
        })
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match self.current.read() {
            Ok(loaded) => Some(Arc::clone(&loaded.key)),
            Err(poisoned) => Some(Arc::clone(&poisoned.into_inner().key)),
        }
    }
}

/// SHA-256 of a DER certificate, as colon-separated upper-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, TlsError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| TlsError::file(path, e))
}

fn load_pair(files: &CertificateFiles, provider: &CryptoProvider) -> Result<Loaded, TlsError> {
    let cert_pem = read(&files.cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::file(&files.cert, e))?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::file(&files.cert, "no certificate in the file"));
    };
    let fingerprint = fingerprint(leaf);
    let key_pem = read(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| TlsError::file(&files.key, format!("no usable private key: {e}")))?;
    // Checks that the key belongs to the leaf certificate.
    let key = CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| TlsError::file(&files.key, format!("{e} (does it match the certificate?)")))?;
    Ok(Loaded {
        key: Arc::new(key),
        fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, names: &[&str]) -> (CertificateFiles, String) {
        let pair = rcgen::generate_simple_self_signed(
            names.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .expect("generate");
        let files = CertificateFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, pair.cert.pem()).expect("write cert");
        std::fs::write(&files.key, pair.signing_key.serialize_pem()).expect("write key");
        (files, fingerprint(pair.cert.der()))
    }

    #[test]
    fn reload_swaps_good_pairs_and_keeps_the_old_on_bad_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (files, first) = write_pair(dir.path(), &["localhost"]);
        let cert = ReloadingCertificate::load(files.clone()).expect("loads");
        assert_eq!(cert.fingerprint(), first);

        let (_, second) = write_pair(dir.path(), &["localhost", "example.test"]);
        assert_eq!(cert.reload().expect("reloads"), second);
        assert_eq!(cert.fingerprint(), second);

        std::fs::write(&files.cert, "not a certificate").expect("write");
        assert!(cert.reload().is_err());
        assert_eq!(cert.fingerprint(), second, "the old pair stays");

        // A key that does not match its certificate is refused.
        let other = rcgen::KeyPair::generate().expect("key");
        let (_, third) = write_pair(dir.path(), &["localhost"]);
        std::fs::write(&files.key, other.serialize_pem()).expect("write");
        let error = cert.reload().expect_err("mismatched key refused");
        assert!(error.to_string().contains("match"), "{error}");
        assert_ne!(cert.fingerprint(), third);
        assert_eq!(cert.fingerprint(), second);
    }
}
