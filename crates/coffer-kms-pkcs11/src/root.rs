//! The root key in an HSM (`--root-key pkcs11:…;object=LABEL`): a token
//! AES key wraps the data dir's root key with AES-256-GCM, so what is on
//! disk (`root.key.wrapped`) opens nothing without the token; the token key
//! is used only to wrap and unwrap and never leaves the token.

use coffer_kms::KmsError;
use coffer_kms::root_key::RootKeyWrapper;
use zeroize::Zeroizing;

use crate::blob::IV_LEN;
use crate::objects;
use crate::token::Token;
use crate::uri::TokenUri;

/// Binds a wrapped root key to its purpose: the same token key used for
/// anything else cannot be fed a root-key blob, nor the reverse.
const AAD: &[u8] = b"coffer root key v1";

/// The token key that wraps the root key.
pub struct TokenRootWrapper {
    token: Token,
    label: String,
}

impl TokenRootWrapper {
    /// Connects to the token and checks the key `object=` names is there.
    pub fn open(uri: TokenUri) -> Result<TokenRootWrapper, String> {
        let label = uri.object.clone().ok_or_else(|| {
            format!("--root-key {uri} names no key: add ;object=LABEL (an AES key in the token)")
        })?;
        let token = Token::open(uri)?;
        token
            .with_session(|session| objects::key(session, &label).map(drop))
            .map_err(|e| format!("--root-key {}: {e}", token.uri()))?;
        Ok(TokenRootWrapper { token, label })
    }
}

impl RootKeyWrapper for TokenRootWrapper {
    fn describe(&self) -> String {
        self.token.uri().to_string()
    }

    fn wrap(&self, root_key: &[u8]) -> Result<Vec<u8>, String> {
        self.token
            .with_session(|session| {
                let key = objects::key(session, &self.label)?;
                key.require_enabled()?;
                let mut iv = [0u8; IV_LEN];
                objects::random(session, &mut iv)?;
                let sealed =
                    objects::encrypt(session, &key, key.current(), &mut iv, AAD, root_key)?;
                Ok([iv.as_slice(), &sealed].concat())
            })
            .map_err(|e| format!("{}: {e}", self.describe()))
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        let (iv, sealed) = wrapped
            .split_at_checked(IV_LEN)
            .ok_or_else(|| "the wrapped root key is too short".to_owned())?;
        self.token
            .with_session(|session| {
                let key = objects::key(session, &self.label)?;
                key.require_enabled()?;
                let mut iv: [u8; IV_LEN] =
                    iv.try_into().map_err(|_| KmsError::InvalidCiphertext)?;
                // Every version is tried: the wrapped key names none, and
                // a token key made by other tools has only one.
                let mut last = KmsError::InvalidCiphertext;
                for version in key.versions.iter().rev() {
                    match objects::decrypt(session, &key, version, &mut iv, AAD, sealed) {
                        Ok(root_key) => return Ok(root_key),
                        Err(error) => last = error,
                    }
                }
                Err(last)
            })
            .map_err(|e| match e {
                KmsError::InvalidCiphertext => format!(
                    "{}: the token key does not open this data dir's wrapped root key",
                    self.describe()
                ),
                e => format!("{}: {e}", self.describe()),
            })
    }
}
