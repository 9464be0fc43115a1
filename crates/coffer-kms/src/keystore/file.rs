//! The file backend: every record in one sealed JSON file,
//! `<data-dir>/kms/keystore.json` (0600, in a 0700 directory), replaced
//! atomically (temporary file, fsync, rename, fsync of the directory), and
//! the audit log beside it, `audit.log` (0600, one JSON line per call).
//!
//! ```json
//! {"format":1,"integrity":"<base64>","keystore":{
//!   "keys":[{"key_id":…,"state":"Enabled",…,"versions":[{"version":1,"created":…,
//!            "rotation_type":null,"sealed":"<base64>"}],"import_commitment":"<base64>",
//!            "creator":"alice","sealed_policy":"<base64>"}],
//!   "aliases":{"alias/name":"<key id>"},
//!   "import_tokens":[{"token_sha256":"<hex>","key_id":…,"algorithm":"RSAES_OAEP_SHA_256",
//!                     "expires":…,"sealed_private_key":"<base64>"}]}}
//! ```
//!
//! Keys are ordered by key id, import tokens (of every key) by their digest.
//! `integrity` is the SHA-256 of the compact `keystore` JSON, sealed by the
//! [`IntegritySeal`], so metadata (states, deletion dates, aliases) cannot be
//! edited on disk either. A record's revision is the SHA-256 of its compact
//! JSON. Every compare-and-swap reads the file, compares, and rewrites it
//! whole, under a lock: one process owns a data directory.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::{
    AuditEntry, Cas, IntegritySeal, KeyRecord, KeyStore, Revision, SealedImportToken, SealedKey,
    SealedRotation, SealedVersion, Versioned, check_record_id, is_alias_id,
};
use crate::kms::KmsError;

/// The keystore file's name in the KMS directory.
pub const FILE_NAME: &str = "keystore.json";
/// The audit log's name in the KMS directory.
pub const AUDIT_FILE_NAME: &str = "audit.log";
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct KeystoreFile {
    format: u32,
    integrity: String,
    keystore: KeystoreBody,
}

#[derive(Serialize, Deserialize)]
struct KeystoreBody {
    keys: Vec<FileKey>,
    aliases: BTreeMap<String, String>,
    import_tokens: Vec<SealedImportToken>,
}

/// A [`SealedKey`] without its import tokens, which the file keeps apart.
#[derive(Serialize, Deserialize)]
struct FileKey {
    key_id: String,
    description: String,
    state: String,
    origin: String,
    key_spec: String,
    created: String,
    deletion_date: Option<String>,
    valid_to: Option<String>,
    managed: bool,
    tags: BTreeMap<String, String>,
    current_version: u32,
    rotation: SealedRotation,
    versions: Vec<SealedVersion>,
    import_commitment: Option<String>,
    // Absent from files written before key policies, and from keys without them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    creator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_policy: Option<String>,
}

impl FileKey {
    fn from_sealed(key: SealedKey) -> (Self, Vec<SealedImportToken>) {
        let SealedKey {
            key_id,
            description,
            state,
            origin,
            key_spec,
            created,
            deletion_date,
            valid_to,
            managed,
            tags,
            current_version,
            rotation,
            versions,
            import_commitment,
            import_tokens,
            creator,
            sealed_policy,
        } = key;
        let file_key = Self {
            key_id,
            description,
            state,
            origin,
            key_spec,
            created,
            deletion_date,
            valid_to,
            managed,
            tags,
            current_version,
            rotation,
            versions,
            import_commitment,
            creator,
            sealed_policy,
        };
        (file_key, import_tokens)
    }

    fn into_sealed(self, import_tokens: Vec<SealedImportToken>) -> SealedKey {
        SealedKey {
            key_id: self.key_id,
            description: self.description,
            state: self.state,
            origin: self.origin,
            key_spec: self.key_spec,
            created: self.created,
            deletion_date: self.deletion_date,
            valid_to: self.valid_to,
            managed: self.managed,
            tags: self.tags,
            current_version: self.current_version,
            rotation: self.rotation,
            versions: self.versions,
            import_commitment: self.import_commitment,
            import_tokens,
            creator: self.creator,
            sealed_policy: self.sealed_policy,
        }
    }
}

fn internal(message: impl Into<String>) -> KmsError {
    KmsError::Internal(message.into())
}

fn malformed(reason: &str) -> KmsError {
    internal(format!("the KMS keystore is malformed: {reason}"))
}

fn wrong_root() -> KmsError {
    internal(
        "the KMS keystore does not open with this root key: wrong or replaced root key, or a damaged file",
    )
}

fn sha256(bytes: &[u8]) -> aws_lc_rs::digest::Digest {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
}

/// The revision of a record: the hex SHA-256 of its compact JSON.
fn revision_of(record: &KeyRecord) -> Result<Revision, KmsError> {
    let json = serde_json::to_vec(record).map_err(|e| internal(e.to_string()))?;
    Ok(Revision::new(
        sha256(&json)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    ))
}

/// The sealed-JSON file keystore (see the module documentation).
pub struct FileKeyStore {
    path: PathBuf,
    integrity: Arc<dyn IntegritySeal>,
    /// Serialises every read-compare-write of the file.
    lock: Mutex<()>,
    audit: Mutex<File>,
    audit_path: PathBuf,
}

impl std::fmt::Debug for FileKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKeyStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FileKeyStore {
    /// Opens the keystore in `dir` (which must exist), writing an empty one
    /// if there is none, and checks an existing one opens with `integrity`;
    /// then opens (or creates) the audit log. A keystore that does not open
    /// is [`KmsError::Internal`] and is left untouched.
    pub fn open(dir: &Path, integrity: Arc<dyn IntegritySeal>) -> Result<Self, KmsError> {
        let path = dir.join(FILE_NAME);
        if read_file(&path, integrity.as_ref())?.is_none() {
            write_file(&path, integrity.as_ref(), &BTreeMap::new())?;
        }
        let audit_path = dir.join(AUDIT_FILE_NAME);
        let audit = Mutex::new(open_audit(&audit_path)?);
        Ok(Self {
            path,
            integrity,
            lock: Mutex::new(()),
            audit,
            audit_path,
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, ()>, KmsError> {
        self.lock
            .lock()
            .map_err(|_| internal("the KMS keystore file lock is poisoned"))
    }

    /// Reads the file, which must exist.
    fn read_existing(&self) -> Result<BTreeMap<String, KeyRecord>, KmsError> {
        read_file(&self.path, self.integrity.as_ref())?.ok_or_else(|| {
            internal(format!(
                "{}: the KMS keystore file has disappeared",
                self.path.display()
            ))
        })
    }
}

fn io_error(path: &Path, e: std::io::Error) -> KmsError {
    internal(format!("{}: {e}", path.display()))
}

/// Reads and checks the file; `None` when there is none.
fn read_file(
    path: &Path,
    integrity: &dyn IntegritySeal,
) -> Result<Option<BTreeMap<String, KeyRecord>>, KmsError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, e)),
    };
    let file: KeystoreFile =
        serde_json::from_slice(&bytes).map_err(|_| malformed("not the expected JSON"))?;
    if file.format != FORMAT {
        return Err(malformed("unknown format version"));
    }
    let sealed_digest = BASE64
        .decode(&file.integrity)
        .map_err(|_| malformed("integrity is not base64"))?;
    let digest = integrity.open(&sealed_digest).map_err(|_| wrong_root())?;
    let body = serde_json::to_vec(&file.keystore).map_err(|e| internal(e.to_string()))?;
    if aws_lc_rs::constant_time::verify_slices_are_equal(sha256(&body).as_ref(), &digest).is_err() {
        return Err(wrong_root());
    }
    split_body(file.keystore).map(Some)
}

/// Seals and writes `records`, durably, replacing the file atomically.
fn write_file(
    path: &Path,
    integrity: &dyn IntegritySeal,
    records: &BTreeMap<String, KeyRecord>,
) -> Result<(), KmsError> {
    let body = join_body(records);
    let compact = serde_json::to_vec(&body).map_err(|e| internal(e.to_string()))?;
    let sealed = integrity.seal(sha256(&compact).as_ref())?;
    let file = KeystoreFile {
        format: FORMAT,
        integrity: BASE64.encode(sealed),
        keystore: body,
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| internal(e.to_string()))?;
    coffer_files::replace(path, &json).map_err(|e| io_error(path, e))
}

fn open_audit(path: &Path) -> Result<File, KmsError> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map_err(|e| internal(format!("{}: {e}", path.display())))
}

/// The file's body as records: one per key (with its import tokens), one
/// per alias.
fn split_body(body: KeystoreBody) -> Result<BTreeMap<String, KeyRecord>, KmsError> {
    let mut tokens: BTreeMap<String, Vec<SealedImportToken>> = BTreeMap::new();
    for token in body.import_tokens {
        tokens.entry(token.key_id.clone()).or_default().push(token);
    }
    let mut records = BTreeMap::new();
    for key in body.keys {
        if is_alias_id(&key.key_id) {
            return Err(malformed("a key id is an alias name"));
        }
        let id = key.key_id.clone();
        let key_tokens = tokens.remove(&id).unwrap_or_default();
        if records
            .insert(id, KeyRecord::Key(Box::new(key.into_sealed(key_tokens))))
            .is_some()
        {
            return Err(malformed("a key appears twice"));
        }
    }
    if !tokens.is_empty() {
        return Err(malformed("an import token names a missing key"));
    }
    for (alias, target_key_id) in body.aliases {
        if !is_alias_id(&alias) {
            return Err(malformed("an alias name does not start with 'alias/'"));
        }
        records.insert(alias, KeyRecord::Alias { target_key_id });
    }
    Ok(records)
}

/// Records as the file's body: keys by id, aliases by name, every key's
/// import tokens together, by digest.
fn join_body(records: &BTreeMap<String, KeyRecord>) -> KeystoreBody {
    let mut body = KeystoreBody {
        keys: Vec::new(),
        aliases: BTreeMap::new(),
        import_tokens: Vec::new(),
    };
    for (id, record) in records {
        match record {
            KeyRecord::Key(key) => {
                let (file_key, tokens) = FileKey::from_sealed((**key).clone());
                body.keys.push(file_key);
                body.import_tokens.extend(tokens);
            }
            KeyRecord::Alias { target_key_id } => {
                body.aliases.insert(id.clone(), target_key_id.clone());
            }
        }
    }
    body.import_tokens
        .sort_by(|a, b| a.token_sha256.cmp(&b.token_sha256));
    body
}

impl KeyStore for FileKeyStore {
    fn get(&self, id: &str) -> Result<Option<Versioned<KeyRecord>>, KmsError> {
        let _guard = self.lock()?;
        let mut records = self.read_existing()?;
        records
            .remove(id)
            .map(|value| {
                Ok(Versioned {
                    revision: revision_of(&value)?,
                    value,
                })
            })
            .transpose()
    }

    fn list(&self) -> Result<BTreeMap<String, Versioned<KeyRecord>>, KmsError> {
        let _guard = self.lock()?;
        self.read_existing()?
            .into_iter()
            .map(|(id, value)| {
                let revision = revision_of(&value)?;
                Ok((id, Versioned { revision, value }))
            })
            .collect()
    }

    fn compare_and_swap(
        &self,
        id: &str,
        expected: Option<&Revision>,
        new: Option<&KeyRecord>,
    ) -> Result<Cas, KmsError> {
        if let Some(record) = new {
            check_record_id(id, record)?;
        }
        let _guard = self.lock()?;
        let mut records = self.read_existing()?;
        let current = records.get(id).map(revision_of).transpose()?;
        if current.as_ref() != expected {
            return Ok(Cas::Lost);
        }
        let revision = match new {
            Some(record) => {
                records.insert(id.to_owned(), record.clone());
                Some(revision_of(record)?)
            }
            None => {
                if records.remove(id).is_none() {
                    // Expected absent, and absent: nothing to write.
                    return Ok(Cas::Swapped(None));
                }
                None
            }
        };
        write_file(&self.path, self.integrity.as_ref(), &records)?;
        Ok(Cas::Swapped(revision))
    }

    fn append_audit(&self, line: &str) -> Result<(), KmsError> {
        if line.contains('\n') {
            return Err(internal("an audit line contains a newline"));
        }
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let mut file = self
            .audit
            .lock()
            .map_err(|_| internal("the KMS audit log lock is poisoned"))?;
        file.write_all(&bytes)
            .and_then(|()| file.flush())
            .map_err(|e| internal(format!("KMS audit log: {e}")))
    }

    /// Line numbers are the sequence; reading from line `after` re-reads the
    /// lines before it (the log has no index), so a read costs the log's size.
    fn read_audit(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, KmsError> {
        let file = File::open(&self.audit_path).map_err(|e| io_error(&self.audit_path, e))?;
        let mut reader = BufReader::new(file);
        let (mut seq, mut entries, mut buffer) = (0u64, Vec::new(), Vec::new());
        while entries.len() < limit {
            buffer.clear();
            let read = reader
                .read_until(b'\n', &mut buffer)
                .map_err(|e| io_error(&self.audit_path, e))?;
            // The end, or a line another thread is still appending.
            if read == 0 || buffer.last() != Some(&b'\n') {
                break;
            }
            seq += 1;
            if seq > after {
                buffer.pop();
                let line = String::from_utf8(std::mem::take(&mut buffer))
                    .map_err(|_| internal("the KMS audit log holds a line that is not UTF-8"))?;
                entries.push(AuditEntry { seq, line });
            }
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::keystore::{Harness, run};

    /// Seals digests with a fixed test key, so a reopened store opens them.
    struct TestSeal(coffer_crypto::SymmetricKey);

    impl IntegritySeal for TestSeal {
        fn seal(&self, digest: &[u8]) -> Result<Vec<u8>, KmsError> {
            coffer_crypto::secret_box::seal(&self.0, "test", digest)
                .map_err(|e| internal(e.to_string()))
        }
        fn open(&self, sealed: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, KmsError> {
            coffer_crypto::secret_box::open(&self.0, "test", sealed).map_err(|_| wrong_root())
        }
    }

    struct Files {
        dir: tempfile::TempDir,
        seal: Arc<TestSeal>,
        store: FileKeyStore,
    }

    impl Files {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let key = coffer_crypto::SymmetricKey::generate().expect("key");
            let seal = Arc::new(TestSeal(key));
            let store = FileKeyStore::open(dir.path(), seal.clone()).expect("open");
            Self { dir, seal, store }
        }
    }

    impl Harness for Files {
        fn store(&self) -> &dyn KeyStore {
            &self.store
        }
        fn reopen(&self) -> Option<Box<dyn KeyStore>> {
            let store = FileKeyStore::open(self.dir.path(), self.seal.clone()).expect("reopen");
            Some(Box::new(store))
        }
        fn audit_lines(&self) -> Vec<String> {
            std::fs::read_to_string(self.dir.path().join(AUDIT_FILE_NAME))
                .expect("audit log")
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    #[test]
    fn passes_the_keystore_contract() {
        run(&Files::new());
    }

    #[test]
    fn a_line_still_being_appended_is_not_read() {
        let files = Files::new();
        files.store.append_audit(r#"{"n":1}"#).expect("append");
        let mut log = OpenOptions::new()
            .append(true)
            .open(files.dir.path().join(AUDIT_FILE_NAME))
            .expect("open the log");
        log.write_all(br#"{"n":"#).expect("half a line");
        let read = files.store.read_audit(0, 10).expect("read");
        assert_eq!(
            read,
            [AuditEntry {
                seq: 1,
                line: r#"{"n":1}"#.into()
            }]
        );
        log.write_all(b"2}\n").expect("the rest of the line");
        let read = files.store.read_audit(1, 10).expect("read on");
        assert_eq!(read.iter().map(|e| e.seq).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn another_seal_is_refused_and_the_file_kept() {
        let files = Files::new();
        let record = crate::contract::keystore::sample_key("k", "d", &['1']);
        assert!(matches!(
            files.store.compare_and_swap("k", None, Some(&record)),
            Ok(Cas::Swapped(Some(_)))
        ));
        let path = files.dir.path().join(FILE_NAME);
        let before = std::fs::read(&path).expect("read");
        let other = Arc::new(TestSeal(
            coffer_crypto::SymmetricKey::generate().expect("key"),
        ));
        let refused = FileKeyStore::open(files.dir.path(), other);
        assert!(
            matches!(&refused, Err(KmsError::Internal(m)) if m.contains("does not open")),
            "{refused:?}"
        );
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }
}

#[cfg(test)]
mod previous_format {
    use super::*;

    /// The file with its `integrity` value (re-sealed on every write) blanked.
    fn without_integrity(bytes: &[u8]) -> String {
        let text = std::str::from_utf8(bytes).expect("UTF-8");
        let start = text.find("\"integrity\": \"").expect("integrity") + 14;
        let end = start + text[start..].find('"').expect("end of integrity");
        format!("{}{}", &text[..start], &text[end..])
    }

    #[test]
    fn a_file_written_by_the_previous_code_is_rewritten_byte_for_byte() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/keystore-v1");
        let original = std::fs::read(src.join("kms").join(FILE_NAME)).expect("fixture");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::copy(src.join("root.key"), dir.path().join("root.key")).expect("copy");
        std::fs::write(dir.path().join(FILE_NAME), &original).expect("copy");
        let (root, _) = crate::RootKey::load_or_create(dir.path()).expect("root key");
        let integrity = Arc::new(crate::embedded::RootIntegrity::new(Arc::new(root)));
        let store = FileKeyStore::open(dir.path(), integrity).expect("open");
        let records = store.list().expect("list");
        assert_eq!(records.len(), 6, "four keys and two aliases");
        // Swapping a record for itself rewrites the whole file.
        let (id, record) = records.iter().next().expect("a record");
        assert_eq!(
            store
                .compare_and_swap(id, Some(&record.revision), Some(&record.value))
                .expect("cas"),
            Cas::Swapped(Some(record.revision.clone()))
        );
        let rewritten = std::fs::read(dir.path().join(FILE_NAME)).expect("read");
        assert_ne!(rewritten, original, "the integrity value is re-sealed");
        assert_eq!(without_integrity(&rewritten), without_integrity(&original));
        assert_eq!(store.list().expect("list again"), records);
    }
}
