//! A KMS customer master key, used through the AWS KMS JSON API
//! (`coffer_client::kms::call`): Coffer's embedded KMS or any compatible one.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use coffer_client::{ClientError, SignedClient};
use coffer_crypto::SymmetricKey;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::CseError;

/// A KMS key (id, ARN or alias) and the client that reaches its KMS.
#[derive(Clone)]
pub struct KmsMasterKey {
    client: Arc<SignedClient>,
    key_id: String,
}

impl std::fmt::Debug for KmsMasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsMasterKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A KMS encryption context (sent as a JSON object of strings).
pub(crate) type KmsContext = BTreeMap<String, String>;

impl KmsMasterKey {
    pub(crate) fn new(client: Arc<SignedClient>, key_id: String) -> Self {
        Self { client, key_id }
    }

    /// The KMS key id, ARN or alias it was given.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// KMS `GenerateDataKey` (AES_256): a fresh data key and its KMS blob.
    pub(crate) async fn generate_data_key(
        &self,
        context: &KmsContext,
    ) -> Result<(SymmetricKey, Vec<u8>), CseError> {
        let answer = self
            .call(
                "GenerateDataKey",
                json!({"KeyId": self.key_id, "KeySpec": "AES_256", "EncryptionContext": context}),
            )
            .await?;
        let plaintext = decode_field(&answer, "Plaintext")?;
        let key = SymmetricKey::from_slice(&plaintext).map_err(|_| {
            CseError::invalid("Plaintext", "KMS returned a key that is not 32 bytes")
        })?;
        Ok((key, decode_field(&answer, "CiphertextBlob")?.to_vec()))
    }

    /// KMS `Encrypt`.
    pub(crate) async fn encrypt(
        &self,
        plaintext: &[u8],
        context: &KmsContext,
    ) -> Result<Vec<u8>, CseError> {
        let plaintext = Zeroizing::new(B64.encode(plaintext));
        let answer = self
            .call(
                "Encrypt",
                json!({"KeyId": self.key_id, "Plaintext": plaintext.as_str(), "EncryptionContext": context}),
            )
            .await?;
        Ok(decode_field(&answer, "CiphertextBlob")?.to_vec())
    }

    /// KMS `Decrypt`, naming our key so that a blob under another key is
    /// refused (`IncorrectKeyException` → wrong master key).
    pub(crate) async fn decrypt(
        &self,
        blob: &[u8],
        context: &KmsContext,
    ) -> Result<Zeroizing<Vec<u8>>, CseError> {
        let answer = self
            .call(
                "Decrypt",
                json!({"KeyId": self.key_id, "CiphertextBlob": B64.encode(blob), "EncryptionContext": context}),
            )
            .await?;
        decode_field(&answer, "Plaintext")
    }

    async fn call(&self, operation: &str, request: Value) -> Result<Value, CseError> {
        coffer_client::kms::call(&self.client, operation, &request)
            .await
            .map_err(kms_error)
    }
}

fn decode_field(answer: &Value, field: &str) -> Result<Zeroizing<Vec<u8>>, CseError> {
    let text = answer[field].as_str().ok_or_else(|| CseError::Kms {
        code: "InvalidResponse".into(),
        message: format!("the KMS answer has no {field}"),
    })?;
    B64.decode(text)
        .map(Zeroizing::new)
        .map_err(|_| CseError::Kms {
            code: "InvalidResponse".into(),
            message: format!("the KMS answer's {field} is not base64"),
        })
}

/// KMS errors keep their code; the two that mean "this blob is not for
/// this key" become [`CseError::WrongMasterKey`].
fn kms_error(error: ClientError) -> CseError {
    match error {
        ClientError::Server { message, .. } => {
            let (code, text) = message.split_once(": ").unwrap_or((message.as_str(), ""));
            let code = code.rsplit('#').next().unwrap_or(code);
            match code {
                "IncorrectKeyException" | "InvalidCiphertextException" => {
                    CseError::WrongMasterKey(format!("KMS {code}: {text}"))
                }
                _ => CseError::Kms {
                    code: code.to_owned(),
                    message: text.to_owned(),
                },
            }
        }
        other => CseError::Kms {
            code: "RequestFailed".into(),
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_errors_keep_their_code() {
        let err = kms_error(ClientError::Server {
            status: http_status(400),
            message: "DisabledException: key is disabled".into(),
        });
        assert_eq!(
            err,
            CseError::Kms {
                code: "DisabledException".into(),
                message: "key is disabled".into()
            }
        );
        let err = kms_error(ClientError::Server {
            status: http_status(400),
            message: "IncorrectKeyException: not this key".into(),
        });
        assert!(matches!(err, CseError::WrongMasterKey(_)), "{err:?}");
    }

    fn http_status(code: u16) -> http::StatusCode {
        http::StatusCode::from_u16(code).expect("status")
    }
}
