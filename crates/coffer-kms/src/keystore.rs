//! Where the embedded KMS keeps its keys: the [`KeyStore`] trait, the sealed
//! records it stores, and its first backend, [`file::FileKeyStore`]
//! (`<data-dir>/kms/keystore.json` and `audit.log`).
//!
//! A keystore holds records, each under an id:
//!
//! - a key id (`1234abcd-…`) holds a [`KeyRecord::Key`]: one customer master
//!   key whole (metadata, state, rotation, every material version and its
//!   pending BYOK import tokens);
//! - an alias name (`alias/…`) holds a [`KeyRecord::Alias`]: the key id it
//!   names.
//!
//! Records are stored sealed: every secret in them (material, BYOK
//! commitments, RSA wrapping keys) was sealed by the root key before the
//! keystore saw it, and sealing and unsealing stay in the embedded KMS. A
//! backend only stores, compares and returns records.
//!
//! Every change is a compare-and-swap on one record, so two writers (say two
//! gateways sharing one database) changing the same key cannot lose an
//! update: the second one's swap is [`Cas::Lost`] and it must reload.

pub mod file;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use crate::kms::AuditEntry;
use crate::kms::KmsError;

/// A record's version as its backend knows it: opaque, compared only for
/// equality. A backend never gives two different contents of one id the same
/// revision (the file backend uses a digest of the record, the in-memory one a
/// counter; a database would use a version column).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Revision(String);

impl Revision {
    /// A revision from its backend's text.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The backend's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A value with the revision it was read at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned<T> {
    /// Pass this as `expected` to change the record.
    pub revision: Revision,
    /// The record.
    pub value: T,
}

/// What [`KeyStore::compare_and_swap`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Cas {
    /// The record now holds the new value, at this revision (`None`: the
    /// record is now absent).
    Swapped(Option<Revision>),
    /// The record was not at the expected revision (or absence): nothing was
    /// written. The caller reloads before deciding again.
    Lost,
}

/// One stored record: a key or an alias.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyRecord {
    /// A customer master key, whole; stored under its key id.
    Key(Box<SealedKey>),
    /// An alias; stored under its name (`alias/…`).
    Alias {
        /// The key id the alias names.
        target_key_id: String,
    },
}

/// A customer master key as stored: metadata in clear, secrets sealed by the
/// root key (base64). Times are RFC 3339.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedKey {
    /// The key id (a UUID); the record's id.
    pub key_id: String,
    /// The description given at creation.
    pub description: String,
    /// `Enabled`, `Disabled`, `PendingDeletion` or `PendingImport`.
    pub state: String,
    /// `AWS_KMS` (generated) or `EXTERNAL` (BYOK).
    pub origin: String,
    /// `SYMMETRIC_DEFAULT` or `SM4`.
    pub key_spec: String,
    /// When the key was created.
    pub created: String,
    /// When a key pending deletion is deleted.
    pub deletion_date: Option<String>,
    /// When imported material expires.
    pub valid_to: Option<String>,
    /// Whether the service manages the key (`alias/aws/s3`).
    pub managed: bool,
    /// The key's tags.
    pub tags: BTreeMap<String, String>,
    /// The material version new ciphertexts use.
    pub current_version: u32,
    /// Automatic rotation.
    pub rotation: SealedRotation,
    /// Every material version, sealed; empty for BYOK without material.
    pub versions: Vec<SealedVersion>,
    /// BYOK: the sealed commitment to the material imported first.
    pub import_commitment: Option<String>,
    /// BYOK: the key's pending import tokens, ordered by `token_sha256`.
    pub import_tokens: Vec<SealedImportToken>,
    /// Who created the key (a user name, `root`, or the service for a managed key): its
    /// default key policy names it. Absent in records written before key policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    /// The key policy set by CreateKey's `Policy` or PutKeyPolicy, sealed under
    /// `kms-key-policy:<key id>` (base64), which binds it to its key and makes an edit in the
    /// store detectable. Absent: the default policy (`crate::key_policy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_policy: Option<String>,
}

/// A key's automatic rotation settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedRotation {
    /// Whether automatic rotation is on.
    pub enabled: bool,
    /// Days between automatic rotations.
    pub period_days: u32,
    /// When rotation was enabled or last happened.
    pub anchor: Option<String>,
}

/// One material version, sealed under `kms-cmk:<key id>:v<n>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedVersion {
    /// The version number, from 1.
    pub version: u32,
    /// When the version was made.
    pub created: String,
    /// `None` for version 1, else `AUTOMATIC` or `ON_DEMAND`.
    pub rotation_type: Option<String>,
    /// The sealed material (base64).
    pub sealed: String,
}

/// A pending BYOK import: the token's digest and its sealed RSA private key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedImportToken {
    /// Hex SHA-256 of the import token (the token itself is never stored).
    pub token_sha256: String,
    /// The key the token imports into.
    pub key_id: String,
    /// The RSA-OAEP wrapping algorithm's AWS name.
    pub algorithm: String,
    /// When the token expires.
    pub expires: String,
    /// The PKCS#8 private key, sealed under
    /// `kms-import-key:<key id>:<token sha256>` (base64).
    pub sealed_private_key: String,
}

/// Whether `id` names an alias record (else a key record).
pub fn is_alias_id(id: &str) -> bool {
    id.starts_with("alias/")
}

/// Storage for the embedded KMS's sealed records and its audit log.
///
/// The contract a backend keeps (checked by `contract::keystore::run`,
/// feature `testing`):
///
/// - **Ids and records.** An id starting `alias/` holds only
///   [`KeyRecord::Alias`]; any other id holds only [`KeyRecord::Key`] whose
///   `key_id` is the id. A record of the wrong kind is refused with
///   [`KmsError::Internal`]. Records come back exactly as written.
/// - **Atomicity.** [`compare_and_swap`](Self::compare_and_swap) checks and
///   changes one record atomically with respect to every other call on the
///   same store, from this process or any other sharing it. There are no
///   multi-record transactions: a caller orders its swaps so that every
///   prefix of them is a state it can live with.
/// - **Durability.** When a swap returns [`Cas::Swapped`], the change is
///   durable (it survives a crash or power loss) and visible to every later
///   `get` and `list`. An error means the record may or may not have changed;
///   the caller reloads.
/// - **Secrecy.** A backend never needs a key: everything secret in a record
///   is sealed before it arrives. It may still protect records against
///   editing (the file backend seals a digest of the whole file).
/// - **Errors.** Storage failures, unreadable or edited data and records of
///   the wrong kind are [`KmsError::Internal`], with a message an operator
///   can act on. A lost race is not an error: it is [`Cas::Lost`].
///
/// All methods are blocking; the KMS calls them from blocking threads.
pub trait KeyStore: Send + Sync {
    /// The record under `id` and its revision, or `None` if there is none.
    fn get(&self, id: &str) -> Result<Option<Versioned<KeyRecord>>, KmsError>;

    /// Every record, by id: one consistent snapshot.
    fn list(&self) -> Result<BTreeMap<String, Versioned<KeyRecord>>, KmsError>;

    /// Changes the record under `id` if, and only if, it is at `expected`:
    ///
    /// - `expected` `None`, `new` `Some`: create, if there is no record;
    /// - `expected` `Some`, `new` `Some`: replace the record at that revision;
    /// - `expected` `Some`, `new` `None`: delete the record at that revision;
    /// - `expected` `None`, `new` `None`: nothing to write; [`Cas::Lost`] if
    ///   a record exists.
    ///
    /// Returns [`Cas::Lost`] and writes nothing when the record is not at
    /// `expected` (including a record created, changed or deleted by someone
    /// else since it was read).
    fn compare_and_swap(
        &self,
        id: &str,
        expected: Option<&Revision>,
        new: Option<&KeyRecord>,
    ) -> Result<Cas, KmsError>;

    /// Appends one audit line (a JSON object without its newline) to the
    /// audit log, in call order, before returning. A line containing a
    /// newline is refused ([`KmsError::Internal`]). How durable an appended
    /// line is, is the backend's to document: the file backend hands it to
    /// the operating system with one `write` and does not fsync each line.
    fn append_audit(&self, line: &str) -> Result<(), KmsError>;

    /// Up to `limit` audit lines after sequence number `after` (0: from the
    /// start), oldest first, each with its sequence number: numbers grow with
    /// each appended line (the file backend counts lines from 1, a database
    /// uses its sequence, which may skip numbers). A line still being
    /// appended is not returned until it is whole.
    fn read_audit(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, KmsError>;
}

/// Protects the integrity of stored metadata without handing the backend a
/// key: seals and opens a digest under the root key (context
/// `kms-keystore:v1`). The file backend seals the SHA-256 of its JSON body.
pub trait IntegritySeal: Send + Sync {
    /// Seals a digest.
    fn seal(&self, digest: &[u8]) -> Result<Vec<u8>, KmsError>;
    /// Opens a sealed digest; an error if it was not sealed by this key.
    fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KmsError>;
}

/// Checks that a record may be stored under `id` (the contract's first rule).
pub fn check_record_id(id: &str, record: &KeyRecord) -> Result<(), KmsError> {
    let fits = match record {
        KeyRecord::Key(key) => !is_alias_id(id) && key.key_id == id,
        KeyRecord::Alias { .. } => is_alias_id(id),
    };
    if fits {
        Ok(())
    } else {
        Err(KmsError::Internal(format!(
            "a KMS keystore record of the wrong kind for id '{id}'"
        )))
    }
}
