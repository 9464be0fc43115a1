//! Key backup: the embedded keystore (every key record and alias) and the service key ring,
//! resealed under a fresh transport key K, in one file sealed to an offline RSA recovery key;
//! and its restore into a data dir, resealed under that data dir's root key. The file format
//! is specified in docs/kms.md ("The backup file"); a fixed vector is pinned below.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::rsa::{
    OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey, PublicEncryptingKey,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use coffer_crypto::{SymmetricKey, secret_box};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::keystore::{RootIntegrity, format_time, open_key, seal_key, sha256_hex};
use crate::keystore::file::FileKeyStore;
use crate::keystore::{Cas, KeyRecord, KeyStore};
use crate::service_keys::{FileServiceKeyStore, ServiceKeyStore, reseal_document};
use crate::{KmsError, RootKey};

/// The file's first bytes.
pub const MAGIC: &[u8; 8] = b"CKMSBKUP";
/// The file format this code writes and reads.
pub const VERSION: u8 = 1;
/// The secret box context's prefix; the hex SHA-256 of the header follows it.
const CONTEXT_PREFIX: &str = "coffer-kms-backup:v1:";
/// The contents' JSON format.
const CONTENTS_FORMAT: u32 = 1;
/// Smallest recovery key accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A key, file or argument that is not what it should be.
    #[error("{0}")]
    Invalid(String),
    /// The file does not open with this identity, or was changed.
    #[error("the backup does not open with this identity: another recovery key, or a damaged file")]
    WrongIdentity,
    /// Restore onto a keystore or key ring that is not empty, without `force`.
    #[error("{0} is not empty: restore replaces it only with --force")]
    NotEmpty(String),
    /// The keystore refused a read or write.
    #[error(transparent)]
    Kms(#[from] KmsError),
    /// The service key ring refused a read or write.
    #[error(transparent)]
    Keyring(#[from] crate::KeyringError),
}

/// The file's JSON contents: the records and key ring as stored, every secret sealed by K.
#[derive(Serialize, Deserialize)]
struct Contents {
    format: u32,
    created: String,
    records: BTreeMap<String, KeyRecord>,
    service_keys: Option<serde_json::Value>,
}

/// What a backup or a restore moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Customer master keys.
    pub keys: usize,
    /// Aliases.
    pub aliases: usize,
    /// Service master key versions.
    pub service_key_versions: usize,
}

/// The DER inside a PEM block labelled `label` (`PUBLIC KEY`, `PRIVATE KEY`), as openssl
/// writes them.
pub fn pem_der(pem: &str, label: &str) -> Result<Zeroizing<Vec<u8>>, BackupError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = pem
        .split_once(&begin)
        .and_then(|(_, rest)| rest.split_once(&end))
        .map(|(body, _)| body)
        .ok_or_else(|| {
            BackupError::Invalid(format!(
                "expected a PEM {label} block (openssl pkey writes one)"
            ))
        })?;
    let text: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_whitespace()).collect());
    BASE64
        .decode(text.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| BackupError::Invalid(format!("the PEM {label} block is not base64")))
}

/// Reads the data dir's keystore and key ring and writes them as a backup file sealed to
/// `recipient_spki` (an RSA public key, DER SubjectPublicKeyInfo).
pub fn backup(
    data_dir: &Path,
    root: Arc<RootKey>,
    recipient_spki: &[u8],
) -> Result<(Vec<u8>, Summary), BackupError> {
    let recipient = PublicEncryptingKey::from_der(recipient_spki)
        .map_err(|_| BackupError::Invalid("the recipient is not an RSA public key".into()))?;
    if recipient.key_size_bits() < MIN_RSA_BITS {
        return Err(BackupError::Invalid(format!(
            "the recipient key has {} bits; at least {MIN_RSA_BITS} are needed",
            recipient.key_size_bits()
        )));
    }
    let transport_key = SymmetricKey::generate().map_err(crypto)?;
    let transport = RootKey::from_key(transport_key.clone());
    let (records, service_keys, summary) = reseal_all(
        &read_records(data_dir, root.clone())?,
        read_service_keys(data_dir)?.as_deref(),
        &root,
        &transport,
    )?;
    let contents = Contents {
        format: CONTENTS_FORMAT,
        created: format_time(time::OffsetDateTime::now_utc())?,
        records,
        service_keys,
    };
    let json = Zeroizing::new(
        serde_json::to_vec(&contents).map_err(|e| BackupError::Invalid(e.to_string()))?,
    );
    let oaep = OaepPublicEncryptingKey::new(recipient).map_err(crypto)?;
    let mut wrapped = vec![0u8; oaep.ciphertext_size()];
    let wrapped_len = oaep
        .encrypt(
            &OAEP_SHA256_MGF1SHA256,
            transport_key.expose(),
            &mut wrapped,
            None,
        )
        .map_err(crypto)?
        .len();
    wrapped.truncate(wrapped_len);
    let mut file = header(&wrapped)?;
    let body = secret_box::seal(&transport_key, &context(&file), &json).map_err(crypto)?;
    file.extend_from_slice(&body);
    Ok((file, summary))
}

/// Opens a backup file with `identity_pkcs8` (the recovery key's private half, DER PKCS#8)
/// and writes its keys into the data dir, resealed under `root`. Refuses a non-empty keystore
/// or key ring unless `force`, which replaces the records the backup holds (and the key
/// ring) and keeps the others.
pub fn restore(
    data_dir: &Path,
    root: Arc<RootKey>,
    file: &[u8],
    identity_pkcs8: &[u8],
    force: bool,
) -> Result<Summary, BackupError> {
    let (transport, contents) = open_file(file, identity_pkcs8)?;
    let service_doc = contents
        .service_keys
        .as_ref()
        .map(serde_json::to_vec)
        .transpose()
        .map_err(|e| BackupError::Invalid(e.to_string()))?;
    let (records, service_keys, summary) =
        reseal_all(&contents.records, service_doc.as_deref(), &transport, &root)?;

    let kms_dir = data_dir.join("kms");
    super::create_private_dir(&kms_dir)
        .map_err(|e| BackupError::Invalid(format!("{}: {e}", kms_dir.display())))?;
    let store = FileKeyStore::open(&kms_dir, Arc::new(RootIntegrity::new(root)))?;
    let existing = store.list()?;
    let ring = FileServiceKeyStore::new(data_dir);
    let existing_ring = ring.load()?;
    if !force {
        if !existing.is_empty() {
            return Err(BackupError::NotEmpty(format!(
                "the keystore in {} ({} records)",
                data_dir.join("kms").display(),
                existing.len()
            )));
        }
        if existing_ring.is_some() && service_keys.is_some() {
            return Err(BackupError::NotEmpty(ring.location()));
        }
    }
    // Keys first, then aliases (the order the KMS itself swaps in), so that an alias never
    // names a key not yet stored. Records the backup does not hold (keys made since) are
    // kept: a restore never destroys key material.
    let mut ordered: Vec<_> = records.iter().collect();
    ordered.sort_by_key(|(id, _)| crate::keystore::is_alias_id(id));
    for (id, record) in ordered {
        let expected = existing.get(id).map(|current| &current.revision);
        match store.compare_and_swap(id, expected, Some(record))? {
            Cas::Swapped(_) => {}
            Cas::Lost => return Err(lost(id)),
        }
    }
    if let Some(document) = service_keys {
        let document = serde_json::to_vec_pretty(&document)
            .map_err(|e| BackupError::Invalid(e.to_string()))?;
        let expected = existing_ring.as_ref().map(|stored| &stored.revision);
        if let Cas::Lost = ring.compare_and_swap(expected, &document)? {
            return Err(lost("the service key ring"));
        }
    }
    Ok(summary)
}

fn lost(id: &str) -> BackupError {
    BackupError::Invalid(format!(
        "{id} changed while it was being restored: is the server running? Stop it first"
    ))
}

fn crypto(error: impl std::fmt::Display) -> BackupError {
    BackupError::Invalid(format!("backup crypto: {error}"))
}

fn read_records(
    data_dir: &Path,
    root: Arc<RootKey>,
) -> Result<BTreeMap<String, KeyRecord>, BackupError> {
    let kms_dir = data_dir.join("kms");
    if !kms_dir.is_dir() {
        return Err(BackupError::Invalid(format!(
            "{} holds no KMS keystore: is this a Coffer data dir?",
            data_dir.display()
        )));
    }
    let store = FileKeyStore::open(&kms_dir, Arc::new(RootIntegrity::new(root)))?;
    Ok(store
        .list()?
        .into_iter()
        .map(|(id, versioned)| (id, versioned.value))
        .collect())
}

fn read_service_keys(data_dir: &Path) -> Result<Option<Vec<u8>>, BackupError> {
    Ok(FileServiceKeyStore::new(data_dir)
        .load()?
        .map(|stored| stored.value))
}

type Resealed = (
    BTreeMap<String, KeyRecord>,
    Option<serde_json::Value>,
    Summary,
);

/// Every record and the key ring document with their secrets opened by `from` and sealed by
/// `to` (same contexts); aliases unchanged.
fn reseal_all(
    records: &BTreeMap<String, KeyRecord>,
    service_keys: Option<&[u8]>,
    from: &RootKey,
    to: &RootKey,
) -> Result<Resealed, BackupError> {
    let mut summary = Summary {
        keys: 0,
        aliases: 0,
        service_key_versions: 0,
    };
    let mut resealed = BTreeMap::new();
    for (id, record) in records {
        crate::keystore::check_record_id(id, record)?;
        let record = match record {
            KeyRecord::Key(sealed) => {
                summary.keys += 1;
                let (cmk, tokens) = open_key((**sealed).clone(), from)?;
                let tokens: Vec<_> = tokens.iter().map(|(hash, token)| (hash, token)).collect();
                KeyRecord::Key(Box::new(seal_key(&cmk, tokens, to)?))
            }
            KeyRecord::Alias { .. } => {
                summary.aliases += 1;
                record.clone()
            }
        };
        resealed.insert(id.clone(), record);
    }
    let service_keys = match service_keys {
        Some(document) => {
            let (document, versions) = reseal_document(document, from, to)?;
            summary.service_key_versions = versions;
            Some(
                serde_json::from_slice(&document)
                    .map_err(|e| BackupError::Invalid(e.to_string()))?,
            )
        }
        None => None,
    };
    Ok((resealed, service_keys, summary))
}

/// `MAGIC ‖ VERSION ‖ len(wrapped) (u16 BE) ‖ wrapped`.
fn header(wrapped: &[u8]) -> Result<Vec<u8>, BackupError> {
    let len = u16::try_from(wrapped.len())
        .map_err(|_| BackupError::Invalid("the recovery key is too large".into()))?;
    let mut header = MAGIC.to_vec();
    header.push(VERSION);
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(wrapped);
    Ok(header)
}

/// The secret box context, binding the header.
fn context(header: &[u8]) -> String {
    format!("{CONTEXT_PREFIX}{}", sha256_hex(header))
}

/// The transport key (as a root key, to open the records' secrets) and the contents.
fn open_file(file: &[u8], identity_pkcs8: &[u8]) -> Result<(RootKey, Contents), BackupError> {
    let not_backup = || BackupError::Invalid("not a Coffer KMS backup file".into());
    let rest = file.strip_prefix(MAGIC.as_slice()).ok_or_else(not_backup)?;
    let (&version, rest) = rest.split_first().ok_or_else(not_backup)?;
    if version != VERSION {
        return Err(BackupError::Invalid(format!(
            "backup format {version} is not known to this Coffer (it reads {VERSION})"
        )));
    }
    if rest.len() < 2 {
        return Err(not_backup());
    }
    let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
    let wrapped = rest.get(2..2 + len).ok_or_else(not_backup)?;
    let header_len = MAGIC.len() + 1 + 2 + len;
    let (header, body) = file.split_at(header_len);

    let identity = PrivateDecryptingKey::from_pkcs8(identity_pkcs8)
        .map_err(|_| BackupError::Invalid("the identity is not an RSA private key".into()))?;
    let oaep = OaepPrivateDecryptingKey::new(identity).map_err(crypto)?;
    let mut key = Zeroizing::new(vec![0u8; oaep.min_output_size()]);
    let key = oaep
        .decrypt(&OAEP_SHA256_MGF1SHA256, wrapped, &mut key, None)
        .map_err(|_| BackupError::WrongIdentity)?;
    let key = SymmetricKey::from_slice(key).map_err(|_| BackupError::WrongIdentity)?;
    let json =
        secret_box::open(&key, &context(header), body).map_err(|_| BackupError::WrongIdentity)?;
    let contents: Contents = serde_json::from_slice(&json)
        .map_err(|e| BackupError::Invalid(format!("the backup's contents: {e}")))?;
    if contents.format != CONTENTS_FORMAT {
        return Err(BackupError::Invalid(format!(
            "backup contents format {} is not known to this Coffer",
            contents.format
        )));
    }
    Ok((RootKey::from_key(key), contents))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kms::{CreateKey, KeySpec, KmsAdmin, KmsDataPlane, Origin};
    use crate::{CallContext, EmbeddedKms, EncryptionContext, ServiceKeyring};

    const TEST_KEY: &str = include_str!("../../testdata/backup-v1/recovery-test-key.pem");
    const TEST_PUB: &str = include_str!("../../testdata/backup-v1/recovery-test-key.pub.pem");
    const VECTOR: &str = include_str!("../../testdata/backup-v1/backup.ckb.b64");

    fn ctx() -> CallContext {
        CallContext {
            principal: "test".into(),
            resource: None,
        }
    }

    fn data_dir() -> (tempfile::TempDir, Arc<RootKey>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (root, _) = RootKey::load_or_create(dir.path()).expect("root key");
        (dir, Arc::new(root))
    }

    fn identity() -> Zeroizing<Vec<u8>> {
        pem_der(TEST_KEY, "PRIVATE KEY").expect("test key")
    }

    #[test]
    fn the_fixed_vector_restores() {
        let file = BASE64.decode(VECTOR.trim()).expect("vector is base64");
        let (dir, root) = data_dir();
        let summary =
            restore(dir.path(), root.clone(), &file, &identity(), false).expect("restore");
        assert_eq!(
            summary,
            Summary {
                keys: 0,
                aliases: 1,
                service_key_versions: 1
            }
        );
        let ring = ServiceKeyring::load_or_create(dir.path(), &root).expect("ring opens");
        assert_eq!(ring.current().1.expose(), &[0x11; 32]);
        let store = FileKeyStore::open(&dir.path().join("kms"), Arc::new(RootIntegrity::new(root)))
            .expect("keystore");
        assert!(store.get("alias/vector").expect("get").is_some());

        // One changed bit anywhere (header, wrapped key, body) and it does not open.
        for at in [0, 9, 40, file.len() / 2, file.len() - 1] {
            let mut damaged = file.clone();
            damaged[at] ^= 1;
            let (dir, root) = data_dir();
            assert!(
                restore(dir.path(), root, &damaged, &identity(), false).is_err(),
                "bit flipped at {at} went unnoticed"
            );
        }
    }

    #[test]
    fn backup_then_restore_under_another_root_key_decrypts_everything() {
        let (source, source_root) = data_dir();
        let kms = EmbeddedKms::open(source.path(), source_root.clone(), "us-east-1").expect("kms");
        let key = kms
            .create_key(
                &ctx(),
                CreateKey {
                    description: "backed up".into(),
                    key_spec: KeySpec::SymmetricDefault,
                    origin: Origin::Generated,
                    tags: Vec::new(),
                    policy: None,
                },
            )
            .expect("create");
        kms.create_alias(&ctx(), "alias/backed-up", &key.key_id)
            .expect("alias");
        let context = EncryptionContext::from([("a".to_owned(), "b".to_owned())]);
        let before = kms
            .encrypt(&ctx(), &key.key_id, b"secret", &context)
            .expect("encrypt");
        kms.rotate_key_on_demand(&ctx(), &key.key_id)
            .expect("rotate");
        let after = kms
            .encrypt(&ctx(), "alias/backed-up", b"later", &context)
            .expect("encrypt");
        let ring = ServiceKeyring::load_or_create(source.path(), &source_root).expect("ring");
        let ring_key = *ring.current().1.expose();
        drop(kms);

        let recipient = pem_der(TEST_PUB, "PUBLIC KEY").expect("pub");
        let (file, summary) = backup(source.path(), source_root, &recipient).expect("backup");
        assert_eq!((summary.keys, summary.aliases), (1, 1));
        // No key material in the clear in the file.
        assert!(!file.windows(32).any(|w| w == ring_key));

        let (target, target_root) = data_dir();
        restore(
            target.path(),
            target_root.clone(),
            &file,
            &identity(),
            false,
        )
        .expect("restore");
        let restored =
            EmbeddedKms::open(target.path(), target_root.clone(), "us-east-1").expect("reopen");
        for (blob, plaintext) in [(before, &b"secret"[..]), (after, &b"later"[..])] {
            let opened = restored
                .decrypt(&ctx(), &blob.ciphertext_blob, &context, None)
                .expect("decrypts");
            assert_eq!(opened.plaintext.as_slice(), plaintext);
        }
        let ring = ServiceKeyring::load_or_create(target.path(), &target_root).expect("ring");
        assert_eq!(ring.current().1.expose(), &ring_key);
        drop(restored);

        // Not onto a keystore that holds keys, unless forced.
        let again = restore(
            target.path(),
            target_root.clone(),
            &file,
            &identity(),
            false,
        );
        assert!(matches!(again, Err(BackupError::NotEmpty(_))), "{again:?}");
        let made_since = {
            let kms =
                EmbeddedKms::open(target.path(), target_root.clone(), "us-east-1").expect("reopen");
            kms.create_key(
                &ctx(),
                CreateKey {
                    description: "made since".into(),
                    key_spec: KeySpec::SymmetricDefault,
                    origin: Origin::Generated,
                    tags: Vec::new(),
                    policy: None,
                },
            )
            .expect("create")
            .key_id
        };
        restore(target.path(), target_root.clone(), &file, &identity(), true).expect("forced");
        let kms = EmbeddedKms::open(target.path(), target_root, "us-east-1").expect("reopen");
        kms.describe_key(&ctx(), &made_since)
            .expect("a forced restore keeps keys made since the backup");
        kms.describe_key(&ctx(), &key.key_id)
            .expect("and restores the backup's");
    }

    #[test]
    fn refuses_a_small_recipient_and_another_identity() {
        let (dir, root) = data_dir();
        assert!(matches!(
            backup(dir.path(), root.clone(), b"not a key"),
            Err(BackupError::Invalid(_))
        ));
        let recipient = pem_der(TEST_PUB, "PUBLIC KEY").expect("pub");
        std::fs::create_dir_all(dir.path().join("kms")).expect("kms dir");
        let (file, _) = backup(dir.path(), root, &recipient).expect("backup");
        let other =
            aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("keypair");
        let other = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&other)
            .expect("pkcs8");
        let (target, target_root) = data_dir();
        assert!(matches!(
            restore(target.path(), target_root, &file, other.as_ref(), false),
            Err(BackupError::WrongIdentity)
        ));
    }
}
