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
//!
//! Where that document lives is a [`ServiceKeyStore`]: load it with its revision, or
//! compare-and-swap it whole. [`FileServiceKeyStore`] is the file above (the embedded
//! default); gateways sharing a database keep the same document in a row there
//! (`coffer_meta_pg::keystore::PgServiceKeyStore`). Every change (creation, rotation) is one
//! swap from the revision the keyring was read at: when two gateways rotate at once, one swap
//! loses, that keyring reloads the document and adds its version on top, so no version is ever
//! lost. A keyring does not notice other gateways' rotations by itself:
//! [`ServiceKeyring::refresh`] (or [`ServiceKeyring::reloaded`]) reloads it when the stored
//! document changed; over PostgreSQL the keystore's watcher says when
//! (`coffer_meta_pg::keystore::spawn_invalidation`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use coffer_crypto::SymmetricKey;
use serde::{Deserialize, Serialize};

use crate::RootKey;
use crate::keystore::{Cas, Revision, Versioned};

const FILE_NAME: &str = "service-keys.json";
const FORMAT: u32 = 1;
/// Swaps a rotation tries (each after reloading what another writer stored) before giving up.
const MAX_SWAPS: u32 = 16;

/// Why the service keyring could not be loaded or changed.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The keyring's storage could not be read or written.
    #[error("service keyring {location}: {message}")]
    Io {
        /// Where the keyring is stored ([`ServiceKeyStore::location`]).
        location: String,
        /// What went wrong.
        message: String,
    },
    /// A sealed key does not open: a wrong root key or a damaged document.
    #[error(
        "service keyring {location} does not open with this root key: wrong or replaced root key, or a damaged file"
    )]
    WrongRootKey {
        /// Where the keyring is stored.
        location: String,
    },
    /// The document is not in the expected format.
    #[error("service keyring {location} is malformed: {reason}")]
    Malformed {
        /// Where the keyring is stored.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Key generation or sealing failed.
    #[error(transparent)]
    Crypto(#[from] coffer_crypto::CryptoError),
}

/// Storage for the service key ring's document (the JSON above, as bytes), shared by every
/// process that opens it.
///
/// The contract: [`compare_and_swap`](Self::compare_and_swap) writes the whole document if,
/// and only if, the stored one is still at `expected` (`None`: there is none), atomically
/// with respect to every other writer, and durably before it returns
/// [`Cas::Swapped`] with the new revision; otherwise it writes nothing and returns
/// [`Cas::Lost`]. Revisions are opaque, compared for equality only, and never repeat for
/// different documents. A document comes back exactly as written. The store never opens
/// anything: the versions in it are sealed by the root key before it sees them.
pub trait ServiceKeyStore: Send + Sync {
    /// Where the document lives, for messages: a path, or a database table.
    fn location(&self) -> String;

    /// The stored document and its revision, or `None` before the first swap.
    fn load(&self) -> Result<Option<Versioned<Vec<u8>>>, KeyringError>;

    /// Replaces the document if it is at `expected` (see the trait's contract).
    fn compare_and_swap(
        &self,
        expected: Option<&Revision>,
        document: &[u8],
    ) -> Result<Cas, KeyringError>;
}

/// The embedded default: `<data-dir>/service-keys.json`, mode 0600, fsynced and replaced
/// atomically. Its revision is the hex SHA-256 of the file's bytes. One process owns a data
/// directory: a lock in this handle serialises its read-compare-write.
pub struct FileServiceKeyStore {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileServiceKeyStore {
    /// The keyring file of `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(FILE_NAME),
            lock: Mutex::new(()),
        }
    }

    fn io(&self, message: impl std::fmt::Display) -> KeyringError {
        KeyringError::Io {
            location: self.location(),
            message: message.to_string(),
        }
    }

    fn read(&self) -> Result<Option<Versioned<Vec<u8>>>, KeyringError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => Ok(Some(Versioned {
                revision: digest_revision(&bytes),
                value: bytes,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(e)),
        }
    }
}

fn digest_revision(bytes: &[u8]) -> Revision {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    Revision::new(
        digest
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    )
}

impl ServiceKeyStore for FileServiceKeyStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&self) -> Result<Option<Versioned<Vec<u8>>>, KeyringError> {
        self.read()
    }

    fn compare_and_swap(
        &self,
        expected: Option<&Revision>,
        document: &[u8],
    ) -> Result<Cas, KeyringError> {
        let _guard = self
            .lock
            .lock()
            .map_err(|_| self.io("the keyring file lock is poisoned"))?;
        let stored = self.read()?;
        if stored.as_ref().map(|v| &v.revision) != expected {
            return Ok(Cas::Lost);
        }
        coffer_files::replace(&self.path, document).map_err(|e| self.io(e))?;
        Ok(Cas::Swapped(Some(digest_revision(document))))
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct KeyringFile {
    format: u32,
    current: u32,
    versions: Vec<SealedVersion>,
}

#[derive(Clone, Serialize, Deserialize)]
struct SealedVersion {
    version: u32,
    created_ms: i64,
    sealed: String,
}

/// The service master key's versions, opened, and the stored document they came from.
pub struct ServiceKeyring {
    store: Arc<dyn ServiceKeyStore>,
    /// The stored document's revision; the next swap expects it.
    revision: Revision,
    /// The document as stored: a rotation adds its version to it, leaving the others' sealed
    /// bytes as they are.
    document: KeyringFile,
    current: u32,
    keys: BTreeMap<u32, (i64, SymmetricKey)>,
}

fn context(version: u32) -> String {
    format!("service-master-key:v{version}")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A new key, sealed as `version` of a document.
fn new_version(
    root: &RootKey,
    version: u32,
) -> Result<(SealedVersion, SymmetricKey), KeyringError> {
    let key = SymmetricKey::generate()?;
    let sealed = SealedVersion {
        version,
        created_ms: now_ms(),
        sealed: BASE64.encode(root.seal(&context(version), key.expose())?),
    };
    Ok((sealed, key))
}

impl ServiceKeyring {
    /// Opens the keyring file in `data_dir` ([`FileServiceKeyStore`]), or creates it with a
    /// first version when absent. A keyring that does not open with `root` is an error: it is
    /// never replaced by a new one.
    pub fn load_or_create(data_dir: &Path, root: &RootKey) -> Result<Self, KeyringError> {
        Self::load_or_create_in(Arc::new(FileServiceKeyStore::new(data_dir)), root)
    }

    /// [`ServiceKeyring::load_or_create`] over any [`ServiceKeyStore`]. When several
    /// processes create the keyring at once, one creation wins and the others open it.
    pub fn load_or_create_in(
        store: Arc<dyn ServiceKeyStore>,
        root: &RootKey,
    ) -> Result<Self, KeyringError> {
        for _ in 0..MAX_SWAPS {
            if let Some(stored) = store.load()? {
                return Self::open(Arc::clone(&store), stored, root);
            }
            let (sealed, key) = new_version(root, 1)?;
            let document = KeyringFile {
                format: FORMAT,
                current: 1,
                versions: vec![sealed],
            };
            if let Cas::Swapped(Some(revision)) =
                store.compare_and_swap(None, &encode(&*store, &document)?)?
            {
                let created_ms = document.versions[0].created_ms;
                return Ok(Self {
                    store,
                    revision,
                    document,
                    current: 1,
                    keys: BTreeMap::from([(1, (created_ms, key))]),
                });
            }
            // Another process created it first: open theirs.
        }
        Err(KeyringError::Io {
            location: store.location(),
            message: "other writers kept changing the keyring".into(),
        })
    }

    fn open(
        store: Arc<dyn ServiceKeyStore>,
        stored: Versioned<Vec<u8>>,
        root: &RootKey,
    ) -> Result<Self, KeyringError> {
        let location = store.location();
        let malformed = |reason: &str| KeyringError::Malformed {
            location: location.clone(),
            reason: reason.to_owned(),
        };
        let file: KeyringFile =
            serde_json::from_slice(&stored.value).map_err(|e| malformed(&e.to_string()))?;
        if file.format != FORMAT {
            return Err(malformed("unknown format version"));
        }
        let mut keys = BTreeMap::new();
        for entry in &file.versions {
            let sealed = BASE64
                .decode(&entry.sealed)
                .map_err(|_| malformed("a sealed key is not base64"))?;
            let opened = root.open(&context(entry.version), &sealed).map_err(|_| {
                KeyringError::WrongRootKey {
                    location: location.clone(),
                }
            })?;
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
            store,
            revision: stored.revision,
            current: file.current,
            document: file,
            keys,
        })
    }

    /// Reloads the keyring if its stored document changed since it was read (another
    /// gateway rotated); returns whether it did.
    pub fn refresh(&mut self, root: &RootKey) -> Result<bool, KeyringError> {
        match self.reloaded(root)? {
            Some(fresh) => {
                *self = fresh;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The keyring as stored now, if its document changed since this one was read (another
    /// gateway rotated), else `None`; this one is left as it is. For a holder that swaps rings
    /// under a lock of its own without holding it while the store is read. Costs one `load`
    /// when nothing changed.
    pub fn reloaded(&self, root: &RootKey) -> Result<Option<Self>, KeyringError> {
        match self.store.load()? {
            Some(stored) if stored.revision != self.revision => {
                Self::open(Arc::clone(&self.store), stored, root).map(Some)
            }
            Some(_) => Ok(None),
            None => Err(KeyringError::Io {
                location: self.store.location(),
                message: "the keyring was removed".into(),
            }),
        }
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

    /// Adds a new version, makes it current and stores the keyring (durably, one
    /// compare-and-swap) before returning it. If another writer changed the stored keyring
    /// since it was read, the keyring reloads it and adds the version on top of theirs.
    pub fn rotate(&mut self, root: &RootKey) -> Result<u32, KeyringError> {
        for _ in 0..MAX_SWAPS {
            let version = self.keys.keys().next_back().copied().unwrap_or(0) + 1;
            let (sealed, key) = new_version(root, version)?;
            let created_ms = sealed.created_ms;
            let mut document = self.document.clone();
            document.versions.push(sealed);
            document.current = version;
            let bytes = encode(&*self.store, &document)?;
            match self.store.compare_and_swap(Some(&self.revision), &bytes)? {
                Cas::Swapped(Some(revision)) => {
                    self.revision = revision;
                    self.document = document;
                    self.keys.insert(version, (created_ms, key));
                    self.current = version;
                    return Ok(version);
                }
                Cas::Swapped(None) | Cas::Lost => {
                    self.refresh(root)?;
                }
            }
        }
        Err(KeyringError::Io {
            location: self.store.location(),
            message: "other writers kept rotating the keyring".into(),
        })
    }
}

/// The document as stored: pretty JSON, as the file has always been written.
/// A key ring document with every version opened by `from` and sealed again by `to` (for a
/// key backup and its restore), and how many versions it holds.
pub fn reseal_document(
    document: &[u8],
    from: &RootKey,
    to: &RootKey,
) -> Result<(Vec<u8>, usize), KeyringError> {
    let location = "in the key backup".to_owned();
    let mut file: KeyringFile =
        serde_json::from_slice(document).map_err(|e| KeyringError::Malformed {
            location: location.clone(),
            reason: e.to_string(),
        })?;
    for entry in &mut file.versions {
        let sealed = BASE64
            .decode(&entry.sealed)
            .map_err(|_| KeyringError::Malformed {
                location: location.clone(),
                reason: "a sealed key is not base64".into(),
            })?;
        let opened = from.open(&context(entry.version), &sealed).map_err(|_| {
            KeyringError::WrongRootKey {
                location: location.clone(),
            }
        })?;
        entry.sealed = BASE64.encode(to.seal(&context(entry.version), &opened)?);
    }
    let versions = file.versions.len();
    let document = serde_json::to_vec(&file).map_err(|e| KeyringError::Malformed {
        location,
        reason: e.to_string(),
    })?;
    Ok((document, versions))
}

fn encode(store: &dyn ServiceKeyStore, document: &KeyringFile) -> Result<Vec<u8>, KeyringError> {
    serde_json::to_vec_pretty(document).map_err(|e| KeyringError::Io {
        location: store.location(),
        message: e.to_string(),
    })
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

    /// The file format is unchanged: a keyring written by the code before [`ServiceKeyStore`]
    /// (`testdata/service-keys-v1`: its root key, its `service-keys.json` with versions 1 and
    /// 2, and those keys in hex) opens, and a rotation keeps the old versions' sealed bytes.
    #[test]
    fn opens_a_keyring_file_written_before_the_store_trait() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/service-keys-v1");
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["root.key", FILE_NAME] {
            std::fs::copy(src.join(name), dir.path().join(name)).expect("copy fixture");
        }
        let (root, _) = RootKey::load_or_create(dir.path()).expect("root key");
        let expected = std::fs::read_to_string(src.join("keys.hex")).expect("keys");
        let expected: Vec<&str> = expected.lines().collect();
        let mut keyring = ServiceKeyring::load_or_create(dir.path(), &root).expect("open");
        assert_eq!(keyring.current().0, 2);
        for (version, key) in [(1, expected[0]), (2, expected[1])] {
            assert_eq!(
                hex(keyring.version(version).expect("version").expose()),
                key
            );
        }
        assert_eq!(keyring.rotate(&root).expect("rotate"), 3);
        let before: serde_json::Value =
            serde_json::from_slice(&std::fs::read(src.join(FILE_NAME)).expect("read"))
                .expect("json");
        let after: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(FILE_NAME)).expect("read"))
                .expect("json");
        assert_eq!(after["format"], 1);
        assert_eq!(after["current"], 3);
        assert_eq!(after["versions"][0], before["versions"][0]);
        assert_eq!(after["versions"][1], before["versions"][1]);
        assert_eq!(after["versions"][2]["version"], 3);
    }

    /// Two keyrings over one store (two gateways) rotating from the same revision: the second
    /// swap loses, reloads and adds its version on top: no version is lost.
    #[test]
    fn concurrent_rotations_lose_no_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (root, _) = RootKey::load_or_create(dir.path()).expect("root key");
        let store: Arc<dyn ServiceKeyStore> = Arc::new(FileServiceKeyStore::new(dir.path()));
        let mut a = ServiceKeyring::load_or_create_in(Arc::clone(&store), &root).expect("a");
        let mut b = ServiceKeyring::load_or_create_in(Arc::clone(&store), &root).expect("b");
        assert_eq!(a.rotate(&root).expect("rotate a"), 2);
        let a2 = a.version(2).expect("v2").expose().to_vec();
        assert_eq!(
            b.rotate(&root).expect("rotate b"),
            3,
            "b lost, reloaded, rotated on top"
        );
        assert_eq!(b.version(2).expect("b has a's v2").expose().as_slice(), a2);
        assert!(a.refresh(&root).expect("refresh"));
        assert!(!a.refresh(&root).expect("refresh again"));
        assert_eq!(a.current().0, 3);
        let reloaded = ServiceKeyring::load_or_create(dir.path(), &root).expect("reload");
        assert_eq!(
            reloaded.versions().map(|(v, _)| v).collect::<Vec<_>>(),
            [1, 2, 3]
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
