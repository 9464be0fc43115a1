//! Key material that never prints and is wiped from memory when dropped.
#![forbid(unsafe_code)]

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::CryptoError;

/// Size in bytes of every symmetric key Coffer uses (AES-256).
pub const KEY_LEN: usize = 32;

/// A 256-bit symmetric key. It implements neither `Display` nor a revealing
/// `Debug`, and zeroizes its bytes on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SymmetricKey([u8; KEY_LEN]);

impl SymmetricKey {
    /// A fresh key from the system CSPRNG.
    // Both constructors fill the key in place: a temporary array moved into
    // `Self` would leave an unwiped copy of the key on the stack.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Self([0u8; KEY_LEN]);
        crate::random::fill(&mut key.0)?;
        Ok(key)
    }

    /// Copies existing key material (a root key read from disk, a key
    /// unwrapped by the KMS); anything but 32 bytes is
    /// [`CryptoError::KeyLength`].
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != KEY_LEN {
            return Err(CryptoError::KeyLength { expected: KEY_LEN });
        }
        let mut key = Self([0u8; KEY_LEN]);
        key.0.copy_from_slice(bytes);
        Ok(key)
    }

    /// The raw bytes, for the few places that must hand them to a cipher or
    /// write them to a protected key file.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SymmetricKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let key = SymmetricKey::from_slice(&[0xAB; KEY_LEN]).expect("32 bytes");
        let shown = format!("{key:?}");
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab"));
    }

    #[test]
    fn wrong_length_is_refused() {
        assert_eq!(
            SymmetricKey::from_slice(&[0; 16]).err(),
            Some(CryptoError::KeyLength { expected: KEY_LEN })
        );
    }
}
