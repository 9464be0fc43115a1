//! The service master key behind SSE-S3 / SSE-OSS (`AES256`, `SM4`): a
//! versioned key owned by the service, sealed at rest by the root key.
//!
//! Rotation adds a version and makes it current; old versions stay so that
//! data keys wrapped under them still unwrap, until a rewrap has moved every
//! envelope to the current version.
//!
//! On disk (`<data-dir>/service-keys.json`, mode 0600, replaced atomically):
//!
//! ```json
//! {"format":1,"current":2,"versions":[{"version":1,"created_ms":…,"sealed":"<base64>"},…]}
//! ```
//!
//! Each `sealed` value is the key sealed by the root key with the context
//! `service-master-key:v<N>`, so versions cannot be swapped for one another.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use coffer_crypto::SymmetricKey;
use serde::{Deserialize, Serialize};

use crate::RootKey;

const FILE_NAME: &str = "service-keys.json";
const FORMAT: u32 = 1;

/// Why the service keyring could not be loaded or changed.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The keyring file could not be read or written.
    #[error("service keyring {path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A sealed key does not open: a wrong root key or a damaged file.
    #[error(
        "service keyring {path} does not open with this root key: wrong or replaced root key, or a damaged file"
    )]
    WrongRootKey {
        /// The file.
        path: PathBuf,
    },
    /// The file is not in the expected format.
    #[error("service keyring {path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Key generation or sealing failed.
    #[error(transparent)]
    Crypto(#[from] coffer_crypto::CryptoError),
}

#[derive(Serialize, Deserialize)]
struct KeyringFile {
    format: u32,
    current: u32,
    versions: Vec<SealedVersion>,
}

#[derive(Serialize, Deserialize)]
struct SealedVersion {
    version: u32,
    created_ms: i64,
    sealed: String,
}

/// The service master key's versions, opened.
pub struct ServiceKeyring {
    path: PathBuf,
    current: u32,
    keys: BTreeMap<u32, (i64, SymmetricKey)>,
}

fn context(version: u32) -> String {
    format!("service-master-key:v{version}")
}

impl ServiceKeyring {
    /// Opens the keyring, or creates it with a first version when absent.
    /// A keyring that does not open with `root` is an error: it is never
    /// replaced by a new one.
    pub fn load_or_create(data_dir: &Path, root: &RootKey) -> Result<Self, KeyringError> {
        let path = data_dir.join(FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => Self::open(path, &bytes, root),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut keyring = Self {
                    path,
                    current: 0,
                    keys: BTreeMap::new(),
                };
                keyring.rotate(root)?;
                Ok(keyring)
            }
            Err(e) => Err(KeyringError::Io {
                path,
                message: e.to_string(),
            }),
        }
    }

    fn open(path: PathBuf, bytes: &[u8], root: &RootKey) -> Result<Self, KeyringError> {
        let malformed = |reason: &str| KeyringError::Malformed {
            path: path.clone(),
            reason: reason.to_owned(),
        };
        let file: KeyringFile =
            serde_json::from_slice(bytes).map_err(|e| malformed(&e.to_string()))?;
        if file.format != FORMAT {
            return Err(malformed("unknown format version"));
        }
        let mut keys = BTreeMap::new();
        for entry in &file.versions {
            let sealed = BASE64
                .decode(&entry.sealed)
                .map_err(|_| malformed("a sealed key is not base64"))?;
            let opened = root
                .open(&context(entry.version), &sealed)
                .map_err(|_| KeyringError::WrongRootKey { path: path.clone() })?;
            let key = SymmetricKey::from_slice(&opened)?;
            if keys
                .insert(entry.version, (entry.created_ms, key))
                .is_some()
            {
                return Err(malformed("a version appears twice"));
            }
        }
        if !keys.contains_key(&file.current) {
            return Err(malformed("the current version is missing"));
        }
        Ok(Self {
            path,
            current: file.current,
            keys,
        })
    }

    /// The version new objects use, and its key.
    pub fn current(&self) -> (u32, &SymmetricKey) {
        let (_, key) = self
            .keys
            .get(&self.current)
            .expect("the current version is always in the keyring");
        (self.current, key)
    }

    /// The key of `version`, if the keyring still has it.
    pub fn version(&self, version: u32) -> Option<&SymmetricKey> {
        self.keys.get(&version).map(|(_, key)| key)
    }

    /// Every version, oldest first, with its creation time.
    pub fn versions(&self) -> impl Iterator<Item = (u32, i64)> + '_ {
        self.keys.iter().map(|(v, (created, _))| (*v, *created))
    }

    /// Adds a new version, makes it current and persists the keyring
    /// (fsynced, atomically replaced) before returning it.
    pub fn rotate(&mut self, root: &RootKey) -> Result<u32, KeyringError> {
        let version = self.keys.keys().next_back().copied().unwrap_or(0) + 1;
        let created_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        self.keys
            .insert(version, (created_ms, SymmetricKey::generate()?));
        let previous = std::mem::replace(&mut self.current, version);
        if let Err(error) = self.persist(root) {
            self.keys.remove(&version);
            self.current = previous;
            return Err(error);
        }
        Ok(version)
    }

    fn persist(&self, root: &RootKey) -> Result<(), KeyringError> {
        let io = |e: std::io::Error| KeyringError::Io {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let mut versions = Vec::new();
        for (version, (created_ms, key)) in &self.keys {
            versions.push(SealedVersion {
                version: *version,
                created_ms: *created_ms,
                sealed: BASE64.encode(root.seal(&context(*version), key.expose())?),
            });
        }
        let file = KeyringFile {
            format: FORMAT,
            current: self.current,
            versions,
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| KeyringError::Io {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        coffer_files::replace(&self.path, &json).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_rotated_and_reloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (root, _) = RootKey::load_or_create(dir.path()).expect("root key");
        let mut keyring = ServiceKeyring::load_or_create(dir.path(), &root).expect("create");
        let (v1, k1) = keyring.current();
        assert_eq!(v1, 1);
        let k1 = k1.expose().to_vec();
        assert_eq!(keyring.rotate(&root).expect("rotate"), 2);

        let reloaded = ServiceKeyring::load_or_create(dir.path(), &root).expect("reload");
        assert_eq!(reloaded.current().0, 2);
        assert_eq!(
            reloaded.version(1).expect("v1 kept").expose().as_slice(),
            k1
        );
        assert_ne!(reloaded.version(2).expect("v2").expose().as_slice(), k1);
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).expect("read");
        assert!(!text.contains(&hex(&k1)), "no key in plaintext on disk");
    }

    #[test]
    fn a_different_root_key_is_refused_and_nothing_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (root, _) = RootKey::load_or_create(dir.path()).expect("root key");
        ServiceKeyring::load_or_create(dir.path(), &root).expect("create");
        let before = std::fs::read(dir.path().join(FILE_NAME)).expect("read");
        let other_dir = tempfile::tempdir().expect("tempdir");
        let (other_root, _) = RootKey::load_or_create(other_dir.path()).expect("other root");
        assert!(matches!(
            ServiceKeyring::load_or_create(dir.path(), &other_root),
            Err(KeyringError::WrongRootKey { .. })
        ));
        assert_eq!(
            std::fs::read(dir.path().join(FILE_NAME)).expect("read"),
            before
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
