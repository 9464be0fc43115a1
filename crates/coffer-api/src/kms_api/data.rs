//! The data plane: data keys, Encrypt, Decrypt and ReEncrypt. Plaintexts
//! are decoded into and encoded from buffers that zeroize on drop.

use coffer_kms::EncryptionContext;
use serde::{Deserialize, Serialize};

use super::{
    Blob, Call, KmsApiError, KmsResult, base64, base64_secret, key_arn, key_ref, parse, to_json,
};

/// The only data key size the sealed-object format uses.
const DATA_KEY_BYTES: u32 = 32;
/// AWS's limits on Encrypt's plaintext and on ciphertext blobs.
const MAX_PLAINTEXT_BYTES: usize = 4096;
const MAX_CIPHERTEXT_BYTES: usize = 6144;
/// The one encryption algorithm of symmetric keys.
const ALGORITHM: &str = "SYMMETRIC_DEFAULT";

fn check_algorithm(algorithm: Option<&str>) -> KmsResult<()> {
    match algorithm {
        None | Some(ALGORITHM) => Ok(()),
        Some(other) => Err(KmsApiError::validation(format!(
            "EncryptionAlgorithm '{other}' is not supported: use SYMMETRIC_DEFAULT."
        ))),
    }
}

fn check_ciphertext(blob: &Blob) -> KmsResult<()> {
    if blob.0.is_empty() || blob.0.len() > MAX_CIPHERTEXT_BYTES {
        return Err(KmsApiError::validation(
            "CiphertextBlob must be 1 to 6144 bytes.",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateDataKeyRequest {
    key_id: String,
    #[serde(default)]
    encryption_context: EncryptionContext,
    number_of_bytes: Option<u32>,
    key_spec: Option<String>,
    recipient: Option<serde_json::Value>,
}

/// Data keys are 32 bytes: `KeySpec=AES_256` or `NumberOfBytes=32`, exactly one.
pub(super) fn check_data_key_size(
    key_spec: Option<&str>,
    number_of_bytes: Option<u32>,
) -> KmsResult<()> {
    match (key_spec, number_of_bytes) {
        (Some(_), Some(_)) => Err(KmsApiError::validation(
            "Specify either KeySpec or NumberOfBytes, not both.",
        )),
        (None, None) => Err(KmsApiError::validation(
            "Specify either KeySpec (AES_256) or NumberOfBytes (32).",
        )),
        (Some("AES_256"), None) => Ok(()),
        (Some(spec), None) => Err(KmsApiError::validation(format!(
            "KeySpec '{spec}' is not supported: Coffer makes only 256-bit data keys (AES_256)."
        ))),
        (None, Some(DATA_KEY_BYTES)) => Ok(()),
        (None, Some(n)) => Err(KmsApiError::validation(format!(
            "NumberOfBytes {n} is not supported: Coffer makes only 32-byte data keys."
        ))),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DataKeyAnswer<'a> {
    ciphertext_blob: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    plaintext: Option<&'a str>,
    key_id: String,
}

/// GenerateDataKey, or GenerateDataKeyWithoutPlaintext without `with_plaintext`.
pub(super) async fn generate_data_key(
    call: &Call,
    body: &[u8],
    with_plaintext: bool,
) -> KmsResult<Vec<u8>> {
    let request: GenerateDataKeyRequest = parse(body)?;
    key_ref(&request.key_id)?;
    check_data_key_size(request.key_spec.as_deref(), request.number_of_bytes)?;
    if request.recipient.is_some() {
        return Err(KmsApiError::validation(
            "Recipient (Nitro Enclaves attestation) is not supported.",
        ));
    }
    let (generated, arn) = call
        .blocking(move |kms, ctx| {
            let generated =
                kms.generate_data_key(ctx, &request.key_id, &request.encryption_context)?;
            let arn = key_arn(kms, ctx, &generated.key_id);
            Ok((generated, arn))
        })
        .await?;
    let plaintext = with_plaintext.then(|| base64_secret(generated.plaintext.expose()));
    let answer = DataKeyAnswer {
        ciphertext_blob: base64(&generated.ciphertext_blob),
        plaintext: plaintext.as_deref().map(String::as_str),
        key_id: arn,
    };
    to_json(&answer, plaintext.as_ref().map_or(0, |p| p.len()))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptRequest {
    key_id: String,
    plaintext: Blob,
    #[serde(default)]
    encryption_context: EncryptionContext,
    encryption_algorithm: Option<String>,
}

pub(super) async fn encrypt(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: EncryptRequest = parse(body)?;
    key_ref(&request.key_id)?;
    check_algorithm(request.encryption_algorithm.as_deref())?;
    if request.plaintext.0.is_empty() || request.plaintext.0.len() > MAX_PLAINTEXT_BYTES {
        return Err(KmsApiError::validation(
            "Plaintext must be 1 to 4096 bytes.",
        ));
    }
    let (ciphertext, arn) = call
        .blocking(move |kms, ctx| {
            let ciphertext = kms.encrypt(
                ctx,
                &request.key_id,
                &request.plaintext.0,
                &request.encryption_context,
            )?;
            let arn = key_arn(kms, ctx, &ciphertext.key_id);
            Ok((ciphertext, arn))
        })
        .await?;
    to_json(
        &serde_json::json!({
            "CiphertextBlob": base64(&ciphertext.ciphertext_blob),
            "KeyId": arn,
            "EncryptionAlgorithm": ALGORITHM,
        }),
        0,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptRequest {
    ciphertext_blob: Blob,
    #[serde(default)]
    encryption_context: EncryptionContext,
    key_id: Option<String>,
    encryption_algorithm: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptAnswer<'a> {
    plaintext: &'a str,
    key_id: String,
    encryption_algorithm: &'static str,
}

pub(super) async fn decrypt(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: DecryptRequest = parse(body)?;
    check_ciphertext(&request.ciphertext_blob)?;
    if let Some(key) = &request.key_id {
        key_ref(key)?;
    }
    check_algorithm(request.encryption_algorithm.as_deref())?;
    let (opened, arn) = call
        .blocking(move |kms, ctx| {
            let opened = kms.decrypt(
                ctx,
                &request.ciphertext_blob.0,
                &request.encryption_context,
                request.key_id.as_deref(),
            )?;
            let arn = key_arn(kms, ctx, &opened.key_id);
            Ok((opened, arn))
        })
        .await?;
    let plaintext = base64_secret(&opened.plaintext);
    let answer = DecryptAnswer {
        plaintext: &plaintext,
        key_id: arn,
        encryption_algorithm: ALGORITHM,
    };
    to_json(&answer, plaintext.len())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReEncryptRequest {
    ciphertext_blob: Blob,
    #[serde(default)]
    source_encryption_context: EncryptionContext,
    source_key_id: Option<String>,
    destination_key_id: String,
    #[serde(default)]
    destination_encryption_context: EncryptionContext,
    source_encryption_algorithm: Option<String>,
    destination_encryption_algorithm: Option<String>,
}

pub(super) async fn re_encrypt(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: ReEncryptRequest = parse(body)?;
    check_ciphertext(&request.ciphertext_blob)?;
    key_ref(&request.destination_key_id)?;
    if let Some(key) = &request.source_key_id {
        key_ref(key)?;
    }
    check_algorithm(request.source_encryption_algorithm.as_deref())?;
    check_algorithm(request.destination_encryption_algorithm.as_deref())?;
    let (ciphertext, source_arn, arn) = call
        .blocking(move |kms, ctx| {
            // The trait's answer names only the destination key; opening the
            // blob first names the source (and checks SourceKeyId). The
            // plaintext is wiped as soon as it is dropped here.
            let source = kms
                .decrypt(
                    ctx,
                    &request.ciphertext_blob.0,
                    &request.source_encryption_context,
                    request.source_key_id.as_deref(),
                )?
                .key_id;
            let ciphertext = kms.re_encrypt(
                ctx,
                &request.ciphertext_blob.0,
                &request.source_encryption_context,
                &request.destination_key_id,
                &request.destination_encryption_context,
            )?;
            let source_arn = key_arn(kms, ctx, &source);
            let arn = key_arn(kms, ctx, &ciphertext.key_id);
            Ok((ciphertext, source_arn, arn))
        })
        .await?;
    to_json(
        &serde_json::json!({
            "CiphertextBlob": base64(&ciphertext.ciphertext_blob),
            "SourceKeyId": source_arn,
            "KeyId": arn,
            "SourceEncryptionAlgorithm": ALGORITHM,
            "DestinationEncryptionAlgorithm": ALGORITHM,
        }),
        0,
    )
}
