//! A local AES-256 master key and its key file: one line of standard
//! base64 (44 characters) holding 32 random bytes, mode 0600.

use std::path::Path;

use aws_lc_rs::key_wrap::{AES_256, KeyEncryptionKey, KeyWrap};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use coffer_crypto::SymmetricKey;
use coffer_crypto::secret_box;
use zeroize::Zeroizing;

use crate::CseError;

/// An AES-256 key held in memory (zeroized on drop, never printed).
#[derive(Clone)]
pub struct AesMasterKey {
    key: SymmetricKey,
}

impl std::fmt::Debug for AesMasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesMasterKey(<redacted>)")
    }
}

impl AesMasterKey {
    pub(crate) fn new(key: SymmetricKey) -> Self {
        Self { key }
    }

    /// Reads a key file written by [`generate_key_file`].
    pub(crate) fn from_file(path: &Path) -> Result<Self, CseError> {
        let fail = |reason: &str| CseError::KeyFile {
            path: path.display().to_string(),
            reason: reason.to_owned(),
        };
        let text =
            Zeroizing::new(std::fs::read_to_string(path).map_err(|e| fail(&e.kind().to_string()))?);
        let bytes = Zeroizing::new(
            B64.decode(text.trim())
                .map_err(|_| fail("not one line of base64 (expected 32 bytes, base64-encoded)"))?,
        );
        let key = SymmetricKey::from_slice(&bytes).map_err(|_| fail("the key is not 32 bytes"))?;
        Ok(Self { key })
    }

    /// S3EC `AES/GCM`: `nonce(12) ‖ AES-256-GCM(master, plaintext) ‖ tag(16)`
    /// with `aad` (`"AES/GCM/NoPadding"`).
    pub(crate) fn gcm_wrap(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CseError> {
        let mut out = Vec::new();
        secret_box::seal_append(&self.key, aad, plaintext, &mut out)?;
        Ok(out)
    }

    pub(crate) fn gcm_unwrap(
        &self,
        wrapped: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CseError> {
        secret_box::open_prefixed(&self.key, aad, wrapped).map_err(|_| {
            CseError::WrongMasterKey("the AES key does not open the wrapped key".into())
        })
    }

    /// RFC 3394 AES key wrap (`AESWrap`); input a multiple of 8 bytes.
    pub(crate) fn key_wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, CseError> {
        let mut out = vec![0u8; plaintext.len() + 8];
        let len = self
            .kek()?
            .wrap(plaintext, &mut out)
            .map_err(|_| CseError::Crypto("AES key wrap"))?
            .len();
        out.truncate(len);
        Ok(out)
    }

    pub(crate) fn key_unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CseError> {
        let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
        let len = self
            .kek()?
            .unwrap(wrapped, &mut out)
            .map_err(|_| {
                CseError::WrongMasterKey("the AES key does not unwrap the key (AESWrap)".into())
            })?
            .len();
        out.truncate(len);
        Ok(out)
    }

    fn kek(&self) -> Result<KeyEncryptionKey<aws_lc_rs::key_wrap::AesBlockCipher>, CseError> {
        KeyEncryptionKey::new(&AES_256, self.key.expose())
            .map_err(|_| CseError::Crypto("AES key wrap setup"))
    }
}

/// Writes a new random AES-256 master key to `path` as one line of base64,
/// readable by the owner only (0600). Refuses to overwrite an existing file.
pub fn generate_key_file(path: &Path) -> Result<(), CseError> {
    let fail = |reason: String| CseError::KeyFile {
        path: path.display().to_string(),
        reason,
    };
    let key = SymmetricKey::generate()?;
    let line = Zeroizing::new(format!("{}\n", B64.encode(key.expose())));
    coffer_files::create_new(path, line.as_bytes()).map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trip_and_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        generate_key_file(&path).expect("generate");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.trim_end().len(), 44);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let key = AesMasterKey::from_file(&path).expect("load");
        let wrapped = key
            .gcm_wrap(&[1u8; 32], b"AES/GCM/NoPadding")
            .expect("wrap");
        assert_eq!(wrapped.len(), 12 + 32 + 16);
        assert_eq!(
            &key.gcm_unwrap(&wrapped, b"AES/GCM/NoPadding")
                .expect("unwrap")[..],
            &[1u8; 32]
        );
        assert!(generate_key_file(&path).is_err(), "never overwrites");
    }

    #[test]
    fn bad_key_files_are_named_without_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("short.key");
        std::fs::write(&path, B64.encode([3u8; 16])).expect("write");
        let err = AesMasterKey::from_file(&path).expect_err("16 bytes");
        assert!(
            err.to_string().contains("short.key") && err.to_string().contains("32 bytes"),
            "{err}"
        );
    }

    #[test]
    fn wrong_aes_key_is_reported_as_such() {
        let a = AesMasterKey::new(SymmetricKey::from_slice(&[1; 32]).expect("key"));
        let b = AesMasterKey::new(SymmetricKey::from_slice(&[2; 32]).expect("key"));
        let wrapped = a.gcm_wrap(&[9; 32], b"x").expect("wrap");
        assert!(matches!(
            b.gcm_unwrap(&wrapped, b"x"),
            Err(CseError::WrongMasterKey(_))
        ));
        let wrapped = a.key_wrap(&[9; 32]).expect("wrap");
        assert_eq!(&a.key_unwrap(&wrapped).expect("unwrap")[..], &[9; 32]);
        assert!(matches!(
            b.key_unwrap(&wrapped),
            Err(CseError::WrongMasterKey(_))
        ));
    }
}
