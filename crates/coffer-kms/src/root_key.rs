//! The root key: the top of Coffer's key hierarchy (DESIGN.md §4).
//!
//! The embedded default keeps it in `<data-dir>/root.key`, created once with
//! mode 0600 and never overwritten. With a passphrase, the key is derived
//! with Argon2id instead and only a salt is stored (`<data-dir>/root.salt`),
//! so nothing on disk opens the keystore without the passphrase. HSM and
//! external-KMS sources will be added as other constructors.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use coffer_crypto::{CryptoError, SymmetricKey, secret_box};
use zeroize::Zeroizing;

const FILE_NAME: &str = "root.key";
const FILE_HEADER: &[u8] = b"coffer-root-key-v1\n";
const SALT_FILE_NAME: &str = "root.salt";
const WRAPPED_FILE_NAME: &str = "root.key.wrapped";
const WRAPPED_HEADER: &[u8] = b"coffer-root-key-wrapped-v1\n";
const SALT_HEADER: &[u8] = b"coffer-root-salt-v1 argon2id ";
/// Argon2id costs for new salt files: 64 MiB, 3 passes, 1 lane (above
/// OWASP's minimum of 19 MiB / 2 passes; about half a second here).
const ARGON2_COSTS: (u32, u32, u32) = (64 * 1024, 3, 1);
const MIN_PASSPHRASE_LEN: usize = 12;

/// Why the root key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum RootKeyError {
    /// The key or salt file could not be read or written.
    #[error("root key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The key or salt file is not in the expected format.
    #[error("root key file {path} is malformed (expected a coffer-root-key-v1 file)")]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// The passphrase is shorter than 12 bytes.
    #[error("the root passphrase must be at least 12 bytes")]
    WeakPassphrase,
    /// Key generation or derivation failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The key that wraps the root key (an HSM's) failed or refused.
    #[error("root key wrapped by {wrapper}: {reason}")]
    Wrapper {
        /// The wrapping key, as [`RootKeyWrapper::describe`] names it.
        wrapper: String,
        /// Why.
        reason: String,
    },
}

/// A key kept elsewhere (an HSM) that wraps and unwraps the root key and
/// never leaves its keeper.
pub trait RootKeyWrapper {
    /// Names the wrapping key for messages (no secret in it).
    fn describe(&self) -> String;
    /// Wraps a new root key.
    fn wrap(&self, root_key: &[u8]) -> Result<Vec<u8>, String>;
    /// Unwraps what [`wrap`](Self::wrap) made.
    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, String>;
}

/// Why [`RootKey::from_passphrase_and_salt`] derived no key.
#[derive(Debug, thiserror::Error)]
pub enum SaltError {
    /// The passphrase is shorter than 12 bytes.
    #[error("the root passphrase must be at least 12 bytes")]
    WeakPassphrase,
    /// The salt text is not a `coffer-root-salt-v1` text.
    #[error("the root salt is malformed (expected a coffer-root-salt-v1 text)")]
    Malformed,
    /// Key derivation failed.
    #[error(transparent)]
    Crypto(CryptoError),
}

/// The key that seals secrets at rest. Wiped from memory on drop.
pub struct RootKey {
    key: SymmetricKey,
}

/// Whether [`RootKey::load_or_create`] found a key or had to make one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An existing key file was read.
    Loaded,
    /// A new key file was written.
    Created,
}

impl RootKey {
    /// Loads `<data_dir>/root.key`, or creates it (mode 0600, fsynced) when
    /// absent. An existing file is never replaced.
    pub fn load_or_create(data_dir: &Path) -> Result<(RootKey, Origin), RootKeyError> {
        let path = data_dir.join(FILE_NAME);
        let io_err = |source| RootKeyError::Io {
            path: path.clone(),
            source,
        };
        match fs::File::open(&path) {
            Ok(mut file) => {
                let mut contents = Zeroizing::new(Vec::new());
                file.read_to_end(&mut contents).map_err(io_err)?;
                let key = parse(&contents)
                    .ok_or_else(|| RootKeyError::Malformed { path: path.clone() })?;
                Ok((RootKey { key }, Origin::Loaded))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let key = SymmetricKey::generate()?;
                let mut contents = Zeroizing::new(FILE_HEADER.to_vec());
                contents.extend_from_slice(hex(key.expose()).as_bytes());
                contents.push(b'\n');
                coffer_files::create_new(&path, &contents).map_err(io_err)?;
                Ok((RootKey { key }, Origin::Created))
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// Derives the root key from `passphrase` with Argon2id. The salt and
    /// cost parameters live in `<data_dir>/root.salt`, created on first use
    /// (mode 0600) and never replaced. A wrong passphrase yields a different
    /// key, which the keystore then refuses to open.
    pub fn from_passphrase(
        data_dir: &Path,
        passphrase: &[u8],
    ) -> Result<(RootKey, Origin), RootKeyError> {
        if passphrase.len() < MIN_PASSPHRASE_LEN {
            return Err(RootKeyError::WeakPassphrase);
        }
        let path = data_dir.join(SALT_FILE_NAME);
        let io_err = |source| RootKeyError::Io {
            path: path.clone(),
            source,
        };
        let (salt, origin) = match fs::read_to_string(&path) {
            Ok(text) => (text, Origin::Loaded),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let text = Self::new_salt()?;
                coffer_files::create_new(&path, text.as_bytes()).map_err(io_err)?;
                (text, Origin::Created)
            }
            Err(e) => return Err(io_err(e)),
        };
        let key = Self::from_passphrase_and_salt(passphrase, &salt)
            .map_err(|_| RootKeyError::Malformed { path })?;
        Ok((key, origin))
    }

    /// A new salt for [`RootKey::from_passphrase_and_salt`]: random, with
    /// today's Argon2id costs, as the text `root.salt` holds. Not secret: it
    /// can be stored beside what the key seals (a shared keystore, say).
    pub fn new_salt() -> Result<String, RootKeyError> {
        let mut salt = [0u8; 16];
        coffer_crypto::random::fill(&mut salt)?;
        let (m, t, p) = ARGON2_COSTS;
        Ok(format!(
            "{}m={m} t={t} p={p}\n{}\n",
            std::str::from_utf8(SALT_HEADER).unwrap_or_default(),
            hex(&salt).as_str()
        ))
    }

    /// Derives the root key from `passphrase` with Argon2id under `salt`, a
    /// text made by [`RootKey::new_salt`] (salt and costs). Refused when
    /// the passphrase is too short or the salt text is malformed.
    pub fn from_passphrase_and_salt(passphrase: &[u8], salt: &str) -> Result<RootKey, SaltError> {
        if passphrase.len() < MIN_PASSPHRASE_LEN {
            return Err(SaltError::WeakPassphrase);
        }
        let (salt, costs) = parse_salt_file(salt).ok_or(SaltError::Malformed)?;
        let params = argon2::Params::new(costs.0, costs.1, costs.2, Some(32))
            .map_err(|_| SaltError::Malformed)?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut derived = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(passphrase, &salt, derived.as_mut_slice())
            .map_err(|_| SaltError::Malformed)?;
        let key = SymmetricKey::from_slice(derived.as_slice()).map_err(SaltError::Crypto)?;
        Ok(RootKey { key })
    }

    /// A key used as a root key: a key backup's transport key (`embedded::backup`), which
    /// seals the backed-up secrets with the contexts the root key seals them with.
    pub(crate) fn from_key(key: SymmetricKey) -> RootKey {
        RootKey { key }
    }

    /// Loads the root key wrapped by `wrapper` from `<data_dir>/root.key.wrapped`,
    /// or creates a random one and writes it wrapped (mode 0600, fsynced) when
    /// absent. An existing file is never replaced.
    pub fn load_or_create_wrapped(
        data_dir: &Path,
        wrapper: &dyn RootKeyWrapper,
    ) -> Result<(RootKey, Origin), RootKeyError> {
        let path = Self::wrapped_path(data_dir);
        let io_err = |source| RootKeyError::Io {
            path: path.clone(),
            source,
        };
        match fs::read(&path) {
            Ok(contents) => {
                let hex_text = contents
                    .strip_prefix(WRAPPED_HEADER)
                    .and_then(|body| std::str::from_utf8(body).ok())
                    .ok_or_else(|| RootKeyError::Malformed { path: path.clone() })?;
                let wrapped = unhex(hex_text.trim())
                    .ok_or_else(|| RootKeyError::Malformed { path: path.clone() })?;
                Ok((Self::from_wrapped(&wrapped, wrapper)?, Origin::Loaded))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let (key, wrapped) = Self::new_wrapped(wrapper)?;
                let mut contents = WRAPPED_HEADER.to_vec();
                contents.extend_from_slice(hex(&wrapped).as_bytes());
                contents.push(b'\n');
                coffer_files::create_new(&path, &contents).map_err(io_err)?;
                Ok((key, Origin::Created))
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// A new random root key and the same key wrapped by `wrapper`, to be
    /// stored (the wrapped bytes are no secret without the wrapping key).
    pub fn new_wrapped(wrapper: &dyn RootKeyWrapper) -> Result<(RootKey, Vec<u8>), RootKeyError> {
        let key = SymmetricKey::generate()?;
        let wrapped = wrapper
            .wrap(key.expose())
            .map_err(|reason| RootKeyError::Wrapper {
                wrapper: wrapper.describe(),
                reason,
            })?;
        Ok((RootKey { key }, wrapped))
    }

    /// The root key `wrapper` unwraps from `wrapped`.
    pub fn from_wrapped(
        wrapped: &[u8],
        wrapper: &dyn RootKeyWrapper,
    ) -> Result<RootKey, RootKeyError> {
        let wrapper_error = |reason| RootKeyError::Wrapper {
            wrapper: wrapper.describe(),
            reason,
        };
        let bytes = wrapper.unwrap(wrapped).map_err(wrapper_error)?;
        let key = SymmetricKey::from_slice(&bytes)
            .map_err(|_| wrapper_error("the unwrapped root key is not 32 bytes".into()))?;
        Ok(RootKey { key })
    }

    /// Where the wrapped root key lives in a data directory.
    pub fn wrapped_path(data_dir: &Path) -> PathBuf {
        data_dir.join(WRAPPED_FILE_NAME)
    }

    /// Seals a secret under the root key, bound to `context`.
    pub fn seal(&self, context: &str, secret: &[u8]) -> Result<Vec<u8>, CryptoError> {
        secret_box::seal(&self.key, context, secret)
    }

    /// Opens a secret sealed by [`RootKey::seal`] with the same context.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        secret_box::open(&self.key, context, sealed)
    }

    /// Where the root key file lives in a data directory.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(FILE_NAME)
    }
}

fn parse(contents: &[u8]) -> Option<SymmetricKey> {
    let body = contents.strip_prefix(FILE_HEADER)?;
    let hex_text = std::str::from_utf8(body).ok()?.trim();
    if hex_text.len() != 64 {
        return None;
    }
    let mut bytes = Zeroizing::new([0u8; 32]);
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex_text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    SymmetricKey::from_slice(bytes.as_slice()).ok()
}

/// `coffer-root-salt-v1 argon2id m=… t=… p=…` then the hex salt.
fn parse_salt_file(text: &str) -> Option<(Vec<u8>, (u32, u32, u32))> {
    let mut lines = text.lines();
    let header = lines
        .next()?
        .strip_prefix(std::str::from_utf8(SALT_HEADER).ok()?)?;
    let mut costs = [0u32; 3];
    for (slot, (field, name)) in costs
        .iter_mut()
        .zip(header.split(' ').zip(["m=", "t=", "p="]))
    {
        *slot = field.strip_prefix(name)?.parse().ok()?;
    }
    let salt_hex = lines.next()?.trim();
    if salt_hex.len() < 32 || salt_hex.len() % 2 != 0 {
        return None;
    }
    let salt = unhex(salt_hex)?;
    Some((salt, (costs[0], costs[1], costs[2])))
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn hex(bytes: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded_with_the_same_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, origin) = RootKey::load_or_create(dir.path()).expect("create");
        assert_eq!(origin, Origin::Created);
        let sealed = first.seal("ctx", b"secret").expect("seal");
        let (second, origin) = RootKey::load_or_create(dir.path()).expect("load");
        assert_eq!(origin, Origin::Loaded);
        assert_eq!(
            second.open("ctx", &sealed).expect("open").as_slice(),
            b"secret"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(RootKey::path(dir.path()))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn passphrase_derivation_is_stable_and_passphrase_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, origin) =
            RootKey::from_passphrase(dir.path(), b"correct horse battery").expect("derive");
        assert_eq!(origin, Origin::Created);
        let sealed = first.seal("ctx", b"secret").expect("seal");
        let (again, origin) =
            RootKey::from_passphrase(dir.path(), b"correct horse battery").expect("derive");
        assert_eq!(origin, Origin::Loaded);
        assert_eq!(
            again.open("ctx", &sealed).expect("open").as_slice(),
            b"secret"
        );
        let (wrong, _) =
            RootKey::from_passphrase(dir.path(), b"incorrect horse battery").expect("derive");
        assert!(wrong.open("ctx", &sealed).is_err());
        assert!(matches!(
            RootKey::from_passphrase(dir.path(), b"short"),
            Err(RootKeyError::WeakPassphrase)
        ));
        let salt_file = fs::read_to_string(dir.path().join(SALT_FILE_NAME)).expect("salt");
        assert!(salt_file.starts_with("coffer-root-salt-v1 argon2id m=65536 t=3 p=1\n"));
        assert!(
            !dir.path().join(FILE_NAME).exists(),
            "no key file with a passphrase"
        );
    }

    /// A stand-in for an HSM key: XOR with a fixed pad, refusing other lengths.
    struct XorWrapper(u8);

    impl RootKeyWrapper for XorWrapper {
        fn describe(&self) -> String {
            "xor".into()
        }
        fn wrap(&self, root_key: &[u8]) -> Result<Vec<u8>, String> {
            Ok(root_key.iter().map(|b| b ^ self.0).collect())
        }
        fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
            Ok(Zeroizing::new(wrapped.iter().map(|b| b ^ self.0).collect()))
        }
    }

    #[test]
    fn a_wrapped_key_is_created_once_and_opens_only_through_its_wrapper() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, origin) =
            RootKey::load_or_create_wrapped(dir.path(), &XorWrapper(0x5a)).expect("create");
        assert_eq!(origin, Origin::Created);
        let sealed = first.seal("ctx", b"secret").expect("seal");
        let (again, origin) =
            RootKey::load_or_create_wrapped(dir.path(), &XorWrapper(0x5a)).expect("load");
        assert_eq!(origin, Origin::Loaded);
        assert_eq!(
            again.open("ctx", &sealed).expect("open").as_slice(),
            b"secret"
        );
        let (other, _) =
            RootKey::load_or_create_wrapped(dir.path(), &XorWrapper(0x33)).expect("unwraps");
        assert!(
            other.open("ctx", &sealed).is_err(),
            "another wrapping key, another root key"
        );
        let file = fs::read(RootKey::wrapped_path(dir.path())).expect("read");
        assert!(file.starts_with(WRAPPED_HEADER));
        assert!(!RootKey::path(dir.path()).exists(), "no plain key file");
    }

    #[test]
    fn a_malformed_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(RootKey::path(dir.path()), b"garbage").expect("write");
        assert!(matches!(
            RootKey::load_or_create(dir.path()),
            Err(RootKeyError::Malformed { .. })
        ));
        assert_eq!(
            fs::read(RootKey::path(dir.path())).expect("read"),
            b"garbage"
        );
    }
}
