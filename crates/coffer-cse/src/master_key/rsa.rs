//! An RSA master key pair from PEM files. Writing needs the public half,
//! reading the private half (from which the public half is derived).
//!
//! Two paddings: RSA-OAEP with SHA-1/MGF1-SHA-1 (S3EC `RSA-OAEP-SHA1`, oss2
//! `LocalRsaProvider`) and, for the OSS SDKs that know nothing else, legacy
//! PKCS#1 v1.5 encryption. Every RSA failure is reported the same way
//! ("wrong master key") so that no padding detail leaks.

use std::path::Path;

use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    Pkcs1PrivateDecryptingKey, Pkcs1PublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use zeroize::Zeroizing;

use crate::CseError;

/// RSA padding for wrapping keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaPadding {
    /// RSA-OAEP, SHA-1, MGF1-SHA-1, empty label.
    OaepSha1,
    /// PKCS#1 v1.5 encryption: legacy, padding-oracle-prone; only for the
    /// OSS SDKs' `RsaProvider` / `MasterRsaCipher`.
    Pkcs1v15,
}

/// The smallest RSA modulus accepted.
const MIN_BITS: usize = 2048;

/// An RSA key pair: the public half wraps, the private half (when loaded)
/// unwraps.
#[derive(Clone)]
pub struct RsaMasterKey {
    public: PublicEncryptingKey,
    private: Option<PrivateDecryptingKey>,
}

impl std::fmt::Debug for RsaMasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaMasterKey")
            .field("bits", &self.public.key_size_bits())
            .field("has_private_key", &self.private.is_some())
            .finish()
    }
}

impl RsaMasterKey {
    /// From PEM text: at least one of the halves. A private key alone is
    /// enough (its public half is derived); a public key alone can only
    /// write.
    pub(crate) fn from_pem(public: Option<&str>, private: Option<&str>) -> Result<Self, CseError> {
        let private = private.map(parse_private).transpose()?;
        let public = match (public, &private) {
            (Some(pem), _) => parse_public(pem)?,
            (None, Some(private)) => private.public_key(),
            (None, None) => {
                return Err(CseError::Invalid(
                    "an RSA master key needs a public or a private key PEM".into(),
                ));
            }
        };
        if public.key_size_bits() < MIN_BITS {
            return Err(CseError::Invalid(format!(
                "RSA keys must have at least {MIN_BITS} bits"
            )));
        }
        if let Some(private) = &private
            && private.key_size_bits() != public.key_size_bits()
        {
            return Err(CseError::Invalid(
                "the RSA public and private keys do not belong together".into(),
            ));
        }
        Ok(Self { public, private })
    }

    pub(crate) fn from_pem_files(
        public: Option<&Path>,
        private: Option<&Path>,
    ) -> Result<Self, CseError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .map(Zeroizing::new)
                .map_err(|e| CseError::KeyFile {
                    path: path.display().to_string(),
                    reason: e.kind().to_string(),
                })
        };
        let public = public.map(read).transpose()?;
        let private = private.map(read).transpose()?;
        Self::from_pem(
            public.as_deref().map(String::as_str),
            private.as_deref().map(String::as_str),
        )
    }

    pub(crate) fn encrypt(
        &self,
        padding: RsaPadding,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CseError> {
        let mut out = vec![0u8; self.public.key_size_bytes()];
        let fail = |_| CseError::Crypto("RSA encryption");
        let len = match padding {
            RsaPadding::OaepSha1 => OaepPublicEncryptingKey::new(self.public.clone())
                .map_err(fail)?
                .encrypt(&OAEP_SHA1_MGF1SHA1, plaintext, &mut out, None)
                .map_err(fail)?
                .len(),
            RsaPadding::Pkcs1v15 => Pkcs1PublicEncryptingKey::new(self.public.clone())
                .map_err(fail)?
                .encrypt(plaintext, &mut out)
                .map_err(fail)?
                .len(),
        };
        out.truncate(len);
        Ok(out)
    }

    pub(crate) fn decrypt(
        &self,
        padding: RsaPadding,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CseError> {
        let private = self.private.as_ref().ok_or_else(|| {
            CseError::Invalid(
                "reading needs the RSA private key; only the public key was given".into(),
            )
        })?;
        let wrong = || {
            CseError::WrongMasterKey("the RSA private key does not decrypt the wrapped key".into())
        };
        if ciphertext.len() != private.key_size_bytes() {
            return Err(wrong());
        }
        let mut out = Zeroizing::new(vec![0u8; private.key_size_bytes()]);
        let len = match padding {
            RsaPadding::OaepSha1 => OaepPrivateDecryptingKey::new(private.clone())
                .map_err(|_| wrong())?
                .decrypt(&OAEP_SHA1_MGF1SHA1, ciphertext, &mut out, None)
                .map_err(|_| wrong())?
                .len(),
            RsaPadding::Pkcs1v15 => Pkcs1PrivateDecryptingKey::new(private.clone())
                .map_err(|_| wrong())?
                .decrypt(ciphertext, &mut out)
                .map_err(|_| wrong())?
                .len(),
        };
        out.truncate(len);
        Ok(out)
    }
}

/// The DER inside the first PEM block, and the block's label.
fn pem_block(pem: &str) -> Result<(String, Zeroizing<Vec<u8>>), CseError> {
    let bad = |reason: &str| CseError::Invalid(format!("RSA key PEM: {reason}"));
    let begin = pem
        .find("-----BEGIN ")
        .ok_or_else(|| bad("no BEGIN line"))?;
    let rest = &pem[begin + "-----BEGIN ".len()..];
    let label_end = rest
        .find("-----")
        .ok_or_else(|| bad("malformed BEGIN line"))?;
    let label = rest[..label_end].to_owned();
    let body = &rest[label_end + 5..];
    let end = body
        .find(&format!("-----END {label}-----"))
        .ok_or_else(|| bad("no matching END line"))?;
    let body = &body[..end];
    if body.contains("Proc-Type:") || label.contains("ENCRYPTED") {
        return Err(bad("passphrase-protected keys are not supported"));
    }
    let text: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_whitespace()).collect());
    let der = B64
        .decode(text.as_bytes())
        .map_err(|_| bad("the body is not base64"))?;
    Ok((label, Zeroizing::new(der)))
}

fn parse_private(pem: &str) -> Result<PrivateDecryptingKey, CseError> {
    let (label, der) = pem_block(pem)?;
    let pkcs8 = match label.as_str() {
        "PRIVATE KEY" => der,
        "RSA PRIVATE KEY" => Zeroizing::new(pkcs1_private_to_pkcs8(&der)),
        other => {
            return Err(CseError::Invalid(format!(
                "RSA private key PEM: unexpected label {other:?}"
            )));
        }
    };
    PrivateDecryptingKey::from_pkcs8(&pkcs8)
        .map_err(|e| CseError::Invalid(format!("RSA private key rejected: {e}")))
}

fn parse_public(pem: &str) -> Result<PublicEncryptingKey, CseError> {
    let (label, der) = pem_block(pem)?;
    let spki = match label.as_str() {
        "PUBLIC KEY" => der.to_vec(),
        "RSA PUBLIC KEY" => pkcs1_public_to_spki(&der),
        other => {
            return Err(CseError::Invalid(format!(
                "RSA public key PEM: unexpected label {other:?}"
            )));
        }
    };
    PublicEncryptingKey::from_der(&spki)
        .map_err(|e| CseError::Invalid(format!("RSA public key rejected: {e}")))
}

/// `AlgorithmIdentifier { rsaEncryption, NULL }`.
const RSA_ALGORITHM_ID: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// PKCS#8 `PrivateKeyInfo { version 0, rsaEncryption, OCTET STRING pkcs1 }`.
fn pkcs1_private_to_pkcs8(pkcs1: &[u8]) -> Vec<u8> {
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(RSA_ALGORITHM_ID);
    body.extend(der(0x04, pkcs1));
    let out = der(0x30, &body);
    zeroize::Zeroize::zeroize(&mut body);
    out
}

/// `SubjectPublicKeyInfo { rsaEncryption, BIT STRING pkcs1 }`.
fn pkcs1_public_to_spki(pkcs1: &[u8]) -> Vec<u8> {
    let mut bits = vec![0x00];
    bits.extend_from_slice(pkcs1);
    let mut body = RSA_ALGORITHM_ID.to_vec();
    body.extend(der(0x03, &bits));
    der(0x30, &body)
}

/// One DER TLV with a definite length.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 2048-bit test key, PKCS#1 PEM, generated for these tests with
    /// `openssl genrsa -traditional 2048` (no production use).
    pub(crate) const TEST_PRIVATE_PKCS1: &str = include_str!("../../tests/data/rsa2048.pkcs1.pem");
    /// The same key as PKCS#8 (`openssl pkcs8 -topk8 -nocrypt`).
    pub(crate) const TEST_PRIVATE_PKCS8: &str = include_str!("../../tests/data/rsa2048.pkcs8.pem");
    /// Its public half, SPKI (`openssl rsa -pubout`) and PKCS#1 (`-RSAPublicKey_out`).
    pub(crate) const TEST_PUBLIC_SPKI: &str = include_str!("../../tests/data/rsa2048.spki.pem");
    pub(crate) const TEST_PUBLIC_PKCS1: &str =
        include_str!("../../tests/data/rsa2048.pkcs1pub.pem");

    #[test]
    fn every_pem_flavour_loads_and_they_agree() {
        let from_pkcs1 = RsaMasterKey::from_pem(None, Some(TEST_PRIVATE_PKCS1)).expect("pkcs1");
        let from_pkcs8 = RsaMasterKey::from_pem(None, Some(TEST_PRIVATE_PKCS8)).expect("pkcs8");
        for public in [TEST_PUBLIC_SPKI, TEST_PUBLIC_PKCS1] {
            let writer = RsaMasterKey::from_pem(Some(public), None).expect("public");
            for padding in [RsaPadding::OaepSha1, RsaPadding::Pkcs1v15] {
                let wrapped = writer
                    .encrypt(padding, b"0123456789abcdef")
                    .expect("encrypt");
                assert_eq!(wrapped.len(), 256);
                for reader in [&from_pkcs1, &from_pkcs8] {
                    assert_eq!(
                        &reader.decrypt(padding, &wrapped).expect("decrypt")[..],
                        b"0123456789abcdef"
                    );
                }
            }
            assert!(
                writer.decrypt(RsaPadding::OaepSha1, &[0; 256]).is_err(),
                "no private half"
            );
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = RsaMasterKey::from_pem(None, Some(TEST_PRIVATE_PKCS8)).expect("pkcs8");
        assert_eq!(
            format!("{key:?}"),
            "RsaMasterKey { bits: 2048, has_private_key: true }"
        );
    }

    #[test]
    fn encrypted_pem_is_refused_clearly() {
        let pem =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let err = RsaMasterKey::from_pem(None, Some(pem)).expect_err("encrypted");
        assert!(err.to_string().contains("passphrase"), "{err}");
    }
}
