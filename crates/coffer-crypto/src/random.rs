//! Randomness from the system CSPRNG (through aws-lc-rs).
#![forbid(unsafe_code)]

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::CryptoError;

/// Fills `out` with cryptographically secure random bytes (nonces, keys,
/// salts, identifiers).
pub fn fill(out: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new()
        .fill(out)
        .map_err(|_| CryptoError::Random)
}

/// `n` random bytes, hex-encoded in upper case (request ids, upload ids).
pub fn hex_id(n: usize) -> Result<String, CryptoError> {
    let mut bytes = vec![0u8; n];
    fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02X}")).collect())
}
