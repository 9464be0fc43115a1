//! Key material: the secret access key and the derived SigV4 / OSS V4
//! signing key.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A secret access key. Its memory is zeroized on drop and it never prints.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret access key.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Zeroizing::new(secret.into()))
    }

    /// The secret itself, for computing signatures. Do not log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(secret: String) -> Self {
        Self::new(secret)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A derived SigV4 or OSS V4 signing key (`kSigning`), zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SigningKey(pub(crate) [u8; 32]);

impl SigningKey {
    /// The HMAC-SHA256 chain both V4 schemes use:
    /// `HMAC(HMAC(HMAC(HMAC(prefix + secret, date), region), service), terminator)`,
    /// with `prefix`/`terminator` = `AWS4`/`aws4_request` (SigV4) or
    /// `aliyun_v4`/`aliyun_v4_request` (OSS V4).
    pub(crate) fn derive(
        prefix: &str,
        secret: &Secret,
        date: &str,
        region: &str,
        service: &str,
        terminator: &str,
    ) -> Self {
        use crate::mac::hmac_sha256;
        let mut k_secret = Zeroizing::new(Vec::with_capacity(
            prefix.len() + secret.expose_secret().len(),
        ));
        k_secret.extend_from_slice(prefix.as_bytes());
        k_secret.extend_from_slice(secret.expose_secret().as_bytes());
        let k_date = Zeroizing::new(hmac_sha256(&k_secret, date.as_bytes()));
        let k_region = Zeroizing::new(hmac_sha256(k_date.as_ref(), region.as_bytes()));
        let k_service = Zeroizing::new(hmac_sha256(k_region.as_ref(), service.as_bytes()));
        Self(hmac_sha256(k_service.as_ref(), terminator.as_bytes()))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Secret::new("SECRETEXAMPLE");
        assert!(!format!("{s:?}").contains("SECRETEXAMPLE"));
        let k = SigningKey([0xab; 32]);
        assert!(!format!("{k:?}").contains("ab"));
    }
}
