//! The actions, with Alibaba's parameter and field names, over the same
//! [`Kms`](coffer_kms::Kms) calls the AWS protocol makes.
//!
//! Plaintexts follow Alibaba's model, where Decrypt answers a string:
//! Encrypt seals the UTF-8 bytes of its `Plaintext` string, and
//! GenerateDataKey seals the *base64 text* of the data key it returns, so
//! Decrypt gives back exactly what Encrypt was given and the base64 data key
//! GenerateDataKey answered. A blob made through the AWS protocol holds raw
//! bytes: Decrypt answers them as text when they are UTF-8, else as base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use coffer_kms::EncryptionContext;
use coffer_kms::kms::{
    CreateKey, KeyMetadata, KeySpec, Origin, WrappingAlgorithm, WrappingKeySpec,
};
use http::StatusCode;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::{AliCall, AliError, Json, Params};
use crate::clock::iso8601_seconds;
use crate::kms_api::Operation;

/// Alibaba's bounds on GenerateDataKey's `NumberOfBytes`.
const DATA_KEY_BYTES: std::ops::RangeInclusive<usize> = 1..=1024;
/// Alibaba's bounds on the automatic rotation period, in days.
const ROTATION_DAYS: std::ops::RangeInclusive<u64> = 7..=730;
/// ListKeys / ListAliases pages: Alibaba's default and largest size.
const DEFAULT_PAGE_SIZE: usize = 10;
const MAX_PAGE_SIZE: usize = 100;

/// The AWS-protocol operation (and so the authorization rule and the
/// request log's name) of each action served.
pub(super) fn operation(action: &str) -> Option<Operation> {
    use Operation as Op;
    Some(match action {
        "UpdateRotationPolicy" => Op::EnableKeyRotation,
        "GenerateDataKey"
        | "GenerateDataKeyWithoutPlaintext"
        | "Encrypt"
        | "Decrypt"
        | "ReEncrypt"
        | "DescribeKey"
        | "ListKeys"
        | "CreateKey"
        | "EnableKey"
        | "DisableKey"
        | "ScheduleKeyDeletion"
        | "CancelKeyDeletion"
        | "CreateAlias"
        | "ListAliases"
        | "GetParametersForImport"
        | "ImportKeyMaterial" => Operation::from_name(action)?,
        _ => return None,
    })
}

/// Runs `action` (one that [`operation`] knows).
pub(super) async fn run(call: &AliCall, action: &str, params: &Params) -> Result<Json, AliError> {
    match action {
        "GenerateDataKey" => generate_data_key(call, params, true).await,
        "GenerateDataKeyWithoutPlaintext" => generate_data_key(call, params, false).await,
        "Encrypt" => encrypt(call, params).await,
        "Decrypt" => decrypt(call, params).await,
        "ReEncrypt" => re_encrypt(call, params).await,
        "DescribeKey" => describe_key(call, params).await,
        "ListKeys" => list_keys(call, params).await,
        "CreateKey" => create_key(call, params).await,
        "EnableKey" | "DisableKey" | "CancelKeyDeletion" => {
            change_state(call, action, params).await
        }
        "ScheduleKeyDeletion" => schedule_key_deletion(call, params).await,
        "CreateAlias" => create_alias(call, params).await,
        "ListAliases" => list_aliases(call, params).await,
        "UpdateRotationPolicy" => update_rotation_policy(call, params).await,
        "GetParametersForImport" => get_parameters_for_import(call, params).await,
        "ImportKeyMaterial" => import_key_material(call, params).await,
        _ => Err(AliError::invalid("The action is not supported.")),
    }
}

fn object(value: Value) -> Json {
    match value {
        Value::Object(map) => map,
        _ => Json::new(),
    }
}

// ------------------------------------------------------------------ inputs

/// `EncryptionContext` (and friends): a JSON object of strings, given as a
/// string parameter; absent or empty is no context.
fn context(params: &Params, name: &str) -> Result<EncryptionContext, AliError> {
    match params.get(name) {
        None => Ok(EncryptionContext::new()),
        Some(text) => serde_json::from_str(text).map_err(|_| {
            AliError::invalid(format!(
                "{name} must be a JSON object of string values, like {{\"k\":\"v\"}}."
            ))
        }),
    }
}

fn blob(params: &Params, name: &str) -> Result<Vec<u8>, AliError> {
    BASE64
        .decode(params.required(name)?.trim())
        .map_err(|_| AliError::invalid(format!("{name} is not valid base64.")))
}

fn number<T: std::str::FromStr>(params: &Params, name: &str) -> Result<Option<T>, AliError> {
    params
        .get(name)
        .map(|v| {
            v.parse()
                .map_err(|_| AliError::invalid(format!("{name} must be a number.")))
        })
        .transpose()
}

fn flag(params: &Params, name: &str) -> Result<Option<bool>, AliError> {
    match params.get(name) {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(AliError::invalid(format!("{name} must be true or false."))),
    }
}

/// `RotationInterval`: an integer followed by `d`, `h`, `m` or `s`, in
/// whole days within [`ROTATION_DAYS`].
fn rotation_days(interval: &str) -> Result<u32, AliError> {
    let invalid = || {
        AliError::invalid(
            "RotationInterval must be like 365d or 31536000s: whole days from 7 to 730.",
        )
    };
    let (digits, unit) = interval.split_at(interval.len().saturating_sub(1));
    let amount: u64 = digits.parse().map_err(|_| invalid())?;
    let seconds_per_unit: u64 = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(invalid()),
    };
    let seconds = amount.checked_mul(seconds_per_unit).ok_or_else(invalid)?;
    let days = seconds / 86_400;
    if seconds % 86_400 != 0 || !ROTATION_DAYS.contains(&days) {
        return Err(invalid());
    }
    u32::try_from(days).map_err(|_| invalid())
}

// ------------------------------------------------------------------ outputs

/// `<KeyId>-v<n>`: Coffer numbers a key's material versions 1, 2, …
fn key_version_id(key_id: &str, version: u32) -> String {
    format!("{key_id}-v{version}")
}

/// `acs:kms:<region>:<account>:key/<id>` from the key's AWS ARN.
fn alibaba_arn(aws_arn: &str) -> String {
    match aws_arn.strip_prefix("arn:aws:") {
        Some(rest) => format!("acs:{rest}"),
        None => aws_arn.to_owned(),
    }
}

fn key_spec_name(spec: KeySpec) -> &'static str {
    match spec {
        KeySpec::SymmetricDefault => "Aliyun_AES_256",
        KeySpec::Sm4 => "Aliyun_SM4",
    }
}

fn key_metadata(m: &KeyMetadata, rotation: Option<(bool, u32)>) -> Value {
    let mut json = json!({
        "KeyId": m.key_id,
        "Arn": alibaba_arn(&m.arn),
        "KeyState": m.state.as_str(),
        "KeySpec": key_spec_name(m.key_spec),
        "KeyUsage": "ENCRYPT/DECRYPT",
        "Origin": match m.origin { Origin::Generated => "Aliyun_KMS", Origin::External => "EXTERNAL" },
        "ProtectionLevel": "SOFTWARE",
        "CreationDate": iso8601_seconds(m.created),
        "Description": m.description,
        "Creator": super::super::ACCOUNT_ID,
        "PrimaryKeyVersion": key_version_id(&m.key_id, m.current_version),
    });
    let fields = json
        .as_object_mut()
        .expect("the metadata literal is an object");
    if let Some(date) = m.deletion_date {
        fields.insert("DeleteDate".into(), iso8601_seconds(date).into());
    }
    if let Some(valid_to) = m.valid_to {
        fields.insert(
            "MaterialExpireTime".into(),
            iso8601_seconds(valid_to).into(),
        );
    }
    if let Some((enabled, days)) = rotation {
        let state = if enabled { "Enabled" } else { "Disabled" };
        fields.insert("AutomaticRotation".into(), state.into());
        if enabled {
            fields.insert(
                "RotationInterval".into(),
                format!("{}s", u64::from(days) * 86_400).into(),
            );
        }
    }
    json
}

/// One page of `items` by `PageNumber` (from 1) and `PageSize` (1–100).
fn page<T>(params: &Params, items: Vec<T>) -> Result<(Vec<T>, usize, usize, usize), AliError> {
    let page_number: usize = number(params, "PageNumber")?.unwrap_or(1);
    let size: usize = number(params, "PageSize")?.unwrap_or(DEFAULT_PAGE_SIZE);
    if page_number == 0 || !(1..=MAX_PAGE_SIZE).contains(&size) {
        return Err(AliError::invalid(
            "PageNumber must be at least 1 and PageSize between 1 and 100.",
        ));
    }
    let total = items.len();
    let taken = items
        .into_iter()
        .skip((page_number - 1).saturating_mul(size))
        .take(size)
        .collect();
    Ok((taken, total, page_number, size))
}

// ------------------------------------------------------------------ data plane

async fn generate_data_key(
    call: &AliCall,
    params: &Params,
    with_plaintext: bool,
) -> Result<Json, AliError> {
    let key_id = params.required("KeyId")?.to_owned();
    let from_spec = match params.get("KeySpec") {
        None => None,
        Some("AES_256") => Some(32),
        Some("AES_128") => Some(16),
        Some(_) => return Err(AliError::invalid("KeySpec must be AES_256 or AES_128.")),
    };
    // NumberOfBytes wins over KeySpec, as Alibaba documents.
    let bytes = number::<usize>(params, "NumberOfBytes")?
        .or(from_spec)
        .unwrap_or(32);
    if !DATA_KEY_BYTES.contains(&bytes) {
        return Err(AliError::invalid(
            "NumberOfBytes must be between 1 and 1024.",
        ));
    }
    let context = context(params, "EncryptionContext")?;
    let mut key = Zeroizing::new(vec![0u8; bytes]);
    getrandom::fill(&mut key).map_err(|e| AliError::internal("random data key", e))?;
    let encoded = Zeroizing::new(BASE64.encode(key.as_slice()));
    let sealed = Zeroizing::clone(&encoded);
    let ciphertext = call
        .blocking(move |kms, ctx| Ok(kms.encrypt(ctx, &key_id, sealed.as_bytes(), &context)?))
        .await?;
    let mut answer = object(json!({
        "KeyId": ciphertext.key_id,
        "KeyVersionId": key_version_id(&ciphertext.key_id, ciphertext.key_version),
        "CiphertextBlob": BASE64.encode(&ciphertext.ciphertext_blob),
    }));
    if with_plaintext {
        answer.insert("Plaintext".into(), encoded.as_str().into());
    }
    Ok(answer)
}

async fn encrypt(call: &AliCall, params: &Params) -> Result<Json, AliError> {
    let key_id = params.required("KeyId")?.to_owned();
    let plaintext = Zeroizing::new(params.required("Plaintext")?.as_bytes().to_vec());
    let context = context(params, "EncryptionContext")?;
    let ciphertext = call
        .blocking(move |kms, ctx| Ok(kms.encrypt(ctx, &key_id, &plaintext, &context)?))
        .await?;
    Ok(object(json!({
        "KeyId": ciphertext.key_id,
        "KeyVersionId": key_version_id(&ciphertext.key_id, ciphertext.key_version),
        "CiphertextBlob": BASE64.encode(&ciphertext.ciphertext_blob),
    })))
}

async fn decrypt(call: &AliCall, params: &Params) -> Result<Json, AliError> {
    let blob = blob(params, "CiphertextBlob")?;
    let context = context(params, "EncryptionContext")?;
    let opened = call
        .blocking(move |kms, ctx| Ok(kms.decrypt(ctx, &blob, &context, None)?))
        .await?;
    let plaintext: Zeroizing<String> = match std::str::from_utf8(&opened.plaintext) {
        Ok(text) => Zeroizing::new(text.to_owned()),
        Err(_) => Zeroizing::new(BASE64.encode(opened.plaintext.as_slice())),
    };
    Ok(object(json!({
        "KeyId": opened.key_id,
        "KeyVersionId": key_version_id(&opened.key_id, opened.key_version),
        "Plaintext": plaintext.as_str(),
    })))
}

async fn re_encrypt(call: &AliCall, params: &Params) -> Result<Json, AliError> {
    let blob = blob(params, "CiphertextBlob")?;
    let destination = params.required("DestinationKeyId")?.to_owned();
    let source_context = context(params, "SourceEncryptionContext")?;
    let destination_context = context(params, "DestinationEncryptionContext")?;
    let ciphertext = call
        .blocking(move |kms, ctx| {
            Ok(kms.re_encrypt(
                ctx,
                &blob,
                &source_context,
                &destination,
                &destination_context,
            )?)
        })
        .await?;
    Ok(object(json!({
        "KeyId": ciphertext.key_id,
        "KeyVersionId": key_version_id(&ciphertext.key_id, ciphertext.key_version),
        "CiphertextBlob": BASE64.encode(&ciphertext.ciphertext_blob),
    })))
}

// ------------------------------------------------------------------ keys

async fn describe_key(call: &AliCall, params: &Params) -> Result<Json, AliError> {
    let key_id = params.required("KeyId")?.to_owned();
    let (metadata, rotation) = call
        .blocking(move |kms, ctx| {
            let metadata = kms.describe_key(ctx, &key_id)?;
            let rotation = kms
                .get_key_rotation_status(ctx, &metadata.key_id)
                .ok()
                .map(|r| (r.enabled, r.period_days));
            Ok((metadata, rotation))
        })
        .await?;
    Ok(object(
        json!({"KeyMetadata": key_metadata(&metadata, rotation)}),
    ))
}

async fn list_keys(call: &AliCall, params: &Params) -> Result<Json, AliError> {
    let keys = call.blocking(|kms, ctx| Ok(kms.list_keys(ctx)?)).await?;
    let (keys, total, number, size) = page(params, keys)?;
    let listed: Vec<Value> = keys
        .iter()
        .map(|m| json!({"KeyId": m.key_id, "KeyArn": alibaba_arn(&m.arn)}))
        .collect();
    Ok(object(json!({
        "Keys": {"Key": listed},
        "TotalCount": total,
        "PageNumber": number,
        "PageSize": size,
    })))
}

async fn create_key(call: &AliCall, params: &Params) -> Result<Json, AliError> {
    let key_spec = match params.get("KeySpec") {
        None | Some("Aliyun_AES_256") => KeySpec::SymmetricDefault,
        Some("Aliyun_SM4") => KeySpec::Sm4,
        Some(other) => {
            return Err(AliError::invalid(format!(
                "KeySpec '{other}' is not supported: use Aliyun_AES_256 or Aliyun_SM4."
            )));
        }
    };
    if params
        .get("KeyUsage")
        .is_some_and(|u| u != "ENCRYPT/DECRYPT")
    {
        return Err(AliError::invalid("KeyUsage must be ENCRYPT/DECRYPT."));
    }
    let origin = match params.get("Origin") {
        None | Some("Aliyun_KMS") => Origin::Generated,
        Some("EXTERNAL") => Origin::External,
        Some(_) => return Err(AliError::invalid("Origin must be Aliyun_KMS or EXTERNAL.")),
    };
    let rotation = match flag(params, "EnableAutomaticRotation")? {
        Some(true) => Some(
            params
                .get("RotationInterval")
                .map(rotation_days)
                .transpose()?,
        ),
        _ => None,
    };
    let create = CreateKey {
        description: params.get("Description").unwrap_or_default().to_owned(),
        key_spec,
        origin,
        tags: Vec::new(),
        policy: None,
    };
    let metadata = call
        .blocking(move |kms, ctx| {
            let metadata = kms.create_key(ctx, create)?;
            if let Some(days) = rotation {
                kms.enable_key_rotation(ctx, &metadata.key_id, days)?;
            }
            Ok(metadata)
        })
        .await?;
    Ok(object(
        json!({"KeyMetadata": key_metadata(&metadata, None)}),
    ))
}

/// EnableKey, DisableKey, CancelKeyDeletion: a key id in, nothing out.
async fn change_state(call: &AliCall, action: &str, params: &Params) -> Result<Json, AliError> {
    let key_id = params.required("KeyId")?.to_owned();
    let action = action.to_owned();
    call.blocking(move |kms, ctx| {
        match action.as_str() {
            "EnableKey" => kms.enable_key(ctx, &key_id)?,
            "DisableKey" => kms.disable_key(ctx, &key_id)?,
            _ => {
                kms.cancel_key_deletion(ctx, &key_id)?;
            }
        }
        Ok(())
    })
    .await?;
    Ok(Json::new())
}

async fn schedule_key_deletion(call: &AliCall, params: &Params) -> Result<Json, AliError> {
    let key_id = params.required("KeyId")?.to_owned();
    let days: u32 = number(params, "PendingWindowInDays")?.ok_or_else(|| {
        AliError::new(
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            "The input parameter \"PendingWindowInDays\" that is mandatory for processing this request is not supplied.",
        )
    })?;
    call.blocking(move |kms, ctx| Ok(kms.schedule_key_deletion(ctx, &key_id, days)?))
        .await?;
    Ok(Json::new())
}

async fn create_alias(call: &AliCall, params: &Params) -> Result<Json, AliError> {
    let alias = params.required("AliasName")?.to_owned();
    let key_id = params.required("KeyId")?.to_owned();
    crate::kms_api::keys::check_alias_name(&alias).map_err(|_| {
        AliError::invalid(
            "AliasName must be 'alias/' followed by letters, digits, '/', '_' or '-'.",
        )
    })?;
    call.blocking(move |kms, ctx| Ok(kms.create_alias(ctx, &alias, &key_id)?))
        .await?;
    Ok(Json::new())
}

async fn list_aliases(call: &AliCall, params: &Params) -> Result<Json, AliError> {
    let (aliases, keys) = call
        .blocking(|kms, ctx| Ok((kms.list_aliases(ctx, None)?, kms.list_keys(ctx)?)))
        .await?;
    let (aliases, total, number, size) = page(params, aliases)?;
    let listed: Vec<Value> = aliases
        .iter()
        .map(|alias| {
            let prefix = keys
                .iter()
                .find(|k| k.key_id == alias.target_key_id)
                .or(keys.first())
                .and_then(|k| {
                    alibaba_arn(&k.arn)
                        .split_once(":key/")
                        .map(|(p, _)| p.to_owned())
                })
                .unwrap_or_default();
            json!({
                "AliasName": alias.name,
                "AliasArn": format!("{prefix}:{}", alias.name),
                "KeyId": alias.target_key_id,
            })
        })
        .collect();
    Ok(object(json!({
        "Aliases": {"Alias": listed},
        "TotalCount": total,
        "PageNumber": number,
        "PageSize": size,
    })))
}

async fn update_rotation_policy(call: &AliCall, params: &Params) -> Result<Json, AliError> {
    let key_id = params.required("KeyId")?.to_owned();
    let enable = flag(params, "EnableAutomaticRotation")?.ok_or_else(|| {
        AliError::new(
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            "The input parameter \"EnableAutomaticRotation\" that is mandatory for processing this request is not supplied.",
        )
    })?;
    let days = params
        .get("RotationInterval")
        .map(rotation_days)
        .transpose()?;
    call.blocking(move |kms, ctx| {
        if enable {
            kms.enable_key_rotation(ctx, &key_id, days)?;
        } else {
            kms.disable_key_rotation(ctx, &key_id)?;
        }
        Ok(())
    })
    .await?;
    Ok(Json::new())
}

// ------------------------------------------------------------------ BYOK

/// GetParametersForImport: an RSA wrapping public key (base64 DER) and an
/// import token. Alibaba's RSAES_PKCS1_V1_5 and SM2 wrapping are refused:
/// the KMS unwraps with RSA-OAEP only.
async fn get_parameters_for_import(call: &AliCall, params: &Params) -> Result<Json, AliError> {
    let key_id = params.required("KeyId")?.to_owned();
    let algorithm = match params.required("WrappingAlgorithm")? {
        "RSAES_OAEP_SHA_256" => WrappingAlgorithm::RsaesOaepSha256,
        "RSAES_OAEP_SHA_1" => WrappingAlgorithm::RsaesOaepSha1,
        _ => {
            return Err(AliError::invalid(
                "WrappingAlgorithm must be RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1.",
            ));
        }
    };
    if params.required("WrappingKeySpec")? != "RSA_2048" {
        return Err(AliError::invalid("WrappingKeySpec must be RSA_2048."));
    }
    let parameters = call
        .blocking(move |kms, ctx| {
            Ok(kms.get_parameters_for_import(ctx, &key_id, algorithm, WrappingKeySpec::Rsa2048)?)
        })
        .await?;
    Ok(object(json!({
        "KeyId": parameters.key_id,
        "PublicKey": BASE64.encode(&parameters.public_key_der),
        "ImportToken": BASE64.encode(&parameters.import_token),
        "TokenExpireTime": iso8601_seconds(parameters.parameters_valid_to),
    })))
}

/// ImportKeyMaterial: `KeyMaterialExpireUnix` in epoch seconds, 0 or
/// absent for material that does not expire.
async fn import_key_material(call: &AliCall, params: &Params) -> Result<Json, AliError> {
    let key_id = params.required("KeyId")?.to_owned();
    let token = blob(params, "ImportToken")?;
    let material = Zeroizing::new(blob(params, "EncryptedKeyMaterial")?);
    let valid_to = match number::<i64>(params, "KeyMaterialExpireUnix")? {
        None | Some(0) => None,
        Some(seconds) => {
            let at = time::OffsetDateTime::from_unix_timestamp(seconds)
                .map_err(|_| AliError::invalid("KeyMaterialExpireUnix is out of range."))?;
            if at <= time::OffsetDateTime::now_utc() {
                return Err(AliError::invalid(
                    "KeyMaterialExpireUnix must be in the future.",
                ));
            }
            Some(at)
        }
    };
    call.blocking(move |kms, ctx| {
        Ok(kms.import_key_material(ctx, &key_id, &token, &material, valid_to)?)
    })
    .await?;
    Ok(Json::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_intervals() {
        assert_eq!(rotation_days("365d").ok(), Some(365));
        assert_eq!(rotation_days("604800s").ok(), Some(7));
        assert_eq!(rotation_days("168h").ok(), Some(7));
        assert!(rotation_days("6d").is_err());
        assert!(rotation_days("731d").is_err());
        assert!(rotation_days("90000s").is_err());
        assert!(rotation_days("d").is_err());
        assert!(rotation_days("").is_err());
        assert!(rotation_days("7x").is_err());
    }

    #[test]
    fn arns_and_versions() {
        assert_eq!(
            alibaba_arn("arn:aws:kms:cn-hangzhou:000000000000:key/abc"),
            "acs:kms:cn-hangzhou:000000000000:key/abc"
        );
        assert_eq!(key_version_id("abc", 2), "abc-v2");
    }

    #[test]
    fn every_served_action_has_an_operation() {
        for action in [
            "GenerateDataKey",
            "GenerateDataKeyWithoutPlaintext",
            "Encrypt",
            "Decrypt",
            "ReEncrypt",
            "DescribeKey",
            "ListKeys",
            "CreateKey",
            "EnableKey",
            "DisableKey",
            "ScheduleKeyDeletion",
            "CancelKeyDeletion",
            "CreateAlias",
            "ListAliases",
            "UpdateRotationPolicy",
            "GetParametersForImport",
            "ImportKeyMaterial",
        ] {
            assert!(operation(action).is_some(), "{action}");
        }
        assert!(operation("DeleteKeyMaterial").is_none());
        assert!(operation("ListKeyVersions").is_none());
    }

    #[test]
    fn dates_are_iso8601_utc() {
        let t = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        assert_eq!(iso8601_seconds(t), "2026-01-02T03:04:05Z");
    }
}
