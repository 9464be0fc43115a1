//! Key administration: lifecycle, tags, aliases, rotation, BYOK import and key policies.

use std::collections::BTreeMap;

use coffer_kms::kms::{CreateKey, KeySpec, Origin, WrappingAlgorithm, WrappingKeySpec};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::{
    ACCOUNT_ID, Blob, Call, KmsApiError, KmsResult, Timestamp, base64, epoch, key_metadata_json,
    key_ref, parse, to_json,
};

/// Deletion waiting periods AWS allows, in days.
const PENDING_WINDOW_DAYS: std::ops::RangeInclusive<u32> = 7..=30;
const DEFAULT_PENDING_WINDOW_DAYS: u32 = 30;
/// Automatic rotation periods AWS allows, in days.
const ROTATION_PERIOD_DAYS: std::ops::RangeInclusive<u32> = 90..=2560;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyIdRequest {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    tag_key: String,
    tag_value: String,
}

fn tag_pairs(tags: Vec<Tag>) -> Vec<(String, String)> {
    tags.into_iter().map(|t| (t.tag_key, t.tag_value)).collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateKeyRequest {
    description: Option<String>,
    key_spec: Option<String>,
    /// The deprecated name of `KeySpec`.
    customer_master_key_spec: Option<String>,
    key_usage: Option<String>,
    origin: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    multi_region: Option<bool>,
    /// The key policy; absent: the default for the caller. (`BypassPolicyLockoutSafetyCheck`
    /// is accepted and ignored: root can always repair a policy.)
    policy: Option<String>,
}

pub(super) async fn create_key(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: CreateKeyRequest = parse(body)?;
    let key_spec = match request
        .key_spec
        .as_deref()
        .or(request.customer_master_key_spec.as_deref())
    {
        None | Some("SYMMETRIC_DEFAULT") => KeySpec::SymmetricDefault,
        Some("SM4") => KeySpec::Sm4,
        Some(other) => {
            return Err(KmsApiError::validation(format!(
                "KeySpec '{other}' is not supported: use SYMMETRIC_DEFAULT or SM4."
            )));
        }
    };
    if let Some(usage) = request
        .key_usage
        .as_deref()
        .filter(|u| *u != "ENCRYPT_DECRYPT")
    {
        return Err(KmsApiError::validation(format!(
            "KeyUsage '{usage}' is not supported: use ENCRYPT_DECRYPT."
        )));
    }
    let origin = match request.origin.as_deref() {
        None | Some("AWS_KMS") => Origin::Generated,
        Some("EXTERNAL") => Origin::External,
        Some(other) => {
            return Err(KmsApiError::validation(format!(
                "Origin '{other}' is not supported: use AWS_KMS or EXTERNAL."
            )));
        }
    };
    if request.multi_region == Some(true) {
        return Err(KmsApiError::validation(
            "Multi-Region keys are not supported.",
        ));
    }
    let description = request.description.unwrap_or_default();
    if description.len() > 8192 {
        return Err(KmsApiError::validation(
            "Description must be at most 8192 characters.",
        ));
    }
    if let Some(policy) = &request.policy {
        super::key_policy::validate(policy).map_err(malformed_policy)?;
    }
    let create = CreateKey {
        description,
        key_spec,
        origin,
        tags: tag_pairs(request.tags),
        policy: request.policy,
    };
    let metadata = call
        .blocking(move |kms, ctx| Ok(kms.create_key(ctx, create)?))
        .await?;
    to_json(&json!({"KeyMetadata": key_metadata_json(&metadata)}), 0)
}

pub(super) async fn describe_key(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: KeyIdRequest = parse(body)?;
    key_ref(&request.key_id)?;
    let metadata = call
        .blocking(move |kms, ctx| Ok(kms.describe_key(ctx, &request.key_id)?))
        .await?;
    to_json(&json!({"KeyMetadata": key_metadata_json(&metadata)}), 0)
}

pub(super) async fn list_keys(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    // Limit and Marker are accepted and ignored: every key fits one page.
    let _: serde_json::Value = parse(body)?;
    let keys = call.blocking(|kms, ctx| Ok(kms.list_keys(ctx)?)).await?;
    let listed: Vec<_> = keys
        .iter()
        .map(|m| json!({"KeyId": m.key_id, "KeyArn": m.arn}))
        .collect();
    to_json(&json!({"Keys": listed, "Truncated": false}), 0)
}

pub(super) async fn enable_key(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: KeyIdRequest = parse(body)?;
    key_ref(&request.key_id)?;
    call.blocking(move |kms, ctx| Ok(kms.enable_key(ctx, &request.key_id)?))
        .await?;
    to_json(&json!({}), 0)
}

pub(super) async fn disable_key(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: KeyIdRequest = parse(body)?;
    key_ref(&request.key_id)?;
    call.blocking(move |kms, ctx| Ok(kms.disable_key(ctx, &request.key_id)?))
        .await?;
    to_json(&json!({}), 0)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScheduleKeyDeletionRequest {
    key_id: String,
    pending_window_in_days: Option<u32>,
}

pub(super) async fn schedule_key_deletion(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: ScheduleKeyDeletionRequest = parse(body)?;
    key_ref(&request.key_id)?;
    let days = request
        .pending_window_in_days
        .unwrap_or(DEFAULT_PENDING_WINDOW_DAYS);
    if !PENDING_WINDOW_DAYS.contains(&days) {
        return Err(KmsApiError::validation(
            "PendingWindowInDays must be between 7 and 30.",
        ));
    }
    let metadata = call
        .blocking(move |kms, ctx| Ok(kms.schedule_key_deletion(ctx, &request.key_id, days)?))
        .await?;
    let mut answer = json!({
        "KeyId": metadata.arn,
        "KeyState": metadata.state.as_str(),
        "PendingWindowInDays": days,
    });
    if let Some(date) = metadata.deletion_date {
        answer["DeletionDate"] = epoch(date);
    }
    to_json(&answer, 0)
}

pub(super) async fn cancel_key_deletion(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: KeyIdRequest = parse(body)?;
    key_ref(&request.key_id)?;
    let metadata = call
        .blocking(move |kms, ctx| Ok(kms.cancel_key_deletion(ctx, &request.key_id)?))
        .await?;
    to_json(&json!({"KeyId": metadata.arn}), 0)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagResourceRequest {
    key_id: String,
    tags: Vec<Tag>,
}

pub(super) async fn tag_resource(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: TagResourceRequest = parse(body)?;
    key_ref(&request.key_id)?;
    let tags = tag_pairs(request.tags);
    call.blocking(move |kms, ctx| Ok(kms.tag_resource(ctx, &request.key_id, tags)?))
        .await?;
    to_json(&json!({}), 0)
}

// ------------------------------------------------------------------ aliases

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliasRequest {
    alias_name: String,
    target_key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliasNameRequest {
    alias_name: String,
}

/// `alias/` followed by 1–250 of `A-Za-z0-9/_-`; `alias/aws/` is reserved
/// for the keys the service makes for itself.
pub(super) fn check_alias_name(name: &str) -> KmsResult<()> {
    let rest = name.strip_prefix("alias/").unwrap_or_default();
    let valid = !rest.is_empty()
        && name.len() <= 256
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'));
    if !valid {
        return Err(KmsApiError::validation(
            "AliasName must be 'alias/' followed by letters, digits, '/', '_' or '-' (at most 256 characters).",
        ));
    }
    if rest.starts_with("aws/") {
        return Err(KmsApiError::validation(
            "Alias names beginning with 'alias/aws/' are reserved.",
        ));
    }
    Ok(())
}

/// CreateAlias, or UpdateAlias when `update`.
pub(super) async fn create_alias(call: &Call, body: &[u8], update: bool) -> KmsResult<Vec<u8>> {
    let request: AliasRequest = parse(body)?;
    check_alias_name(&request.alias_name)?;
    key_ref(&request.target_key_id)?;
    call.blocking(move |kms, ctx| {
        let (alias, target) = (&request.alias_name, &request.target_key_id);
        if update {
            kms.update_alias(ctx, alias, target)?;
        } else {
            kms.create_alias(ctx, alias, target)?;
        }
        Ok(())
    })
    .await?;
    to_json(&json!({}), 0)
}

pub(super) async fn delete_alias(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: AliasNameRequest = parse(body)?;
    check_alias_name(&request.alias_name)?;
    call.blocking(move |kms, ctx| Ok(kms.delete_alias(ctx, &request.alias_name)?))
        .await?;
    to_json(&json!({}), 0)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListAliasesRequest {
    key_id: Option<String>,
}

pub(super) async fn list_aliases(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: ListAliasesRequest = parse(body)?;
    if let Some(key) = &request.key_id {
        key_ref(key)?;
    }
    let (aliases, arns) = call
        .blocking(move |kms, ctx| {
            let aliases = kms.list_aliases(ctx, request.key_id.as_deref())?;
            // Alias ARNs share their keys' `arn:aws:kms:<region>:<account>:`.
            let arns: BTreeMap<String, String> = kms
                .list_keys(ctx)?
                .into_iter()
                .map(|m| (m.key_id, m.arn))
                .collect();
            Ok((aliases, arns))
        })
        .await?;
    let any_prefix = arns.values().find_map(|arn| arn_prefix(arn));
    let listed: Vec<_> = aliases
        .iter()
        .map(|alias| {
            let prefix = arns
                .get(&alias.target_key_id)
                .and_then(|arn| arn_prefix(arn))
                .or(any_prefix)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("arn:aws:kms:us-east-1:{ACCOUNT_ID}:"));
            json!({
                "AliasName": alias.name,
                "AliasArn": format!("{prefix}{}", alias.name),
                "TargetKeyId": alias.target_key_id,
            })
        })
        .collect();
    to_json(&json!({"Aliases": listed, "Truncated": false}), 0)
}

/// `arn:aws:kms:<region>:<account>:` of a key ARN.
pub(super) fn arn_prefix(key_arn: &str) -> Option<&str> {
    key_arn.find(":key/").map(|at| &key_arn[..=at])
}

// ------------------------------------------------------------------ rotation

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EnableKeyRotationRequest {
    key_id: String,
    rotation_period_in_days: Option<u32>,
}

pub(super) async fn enable_key_rotation(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: EnableKeyRotationRequest = parse(body)?;
    key_ref(&request.key_id)?;
    if let Some(days) = request.rotation_period_in_days
        && !ROTATION_PERIOD_DAYS.contains(&days)
    {
        return Err(KmsApiError::validation(
            "RotationPeriodInDays must be between 90 and 2560.",
        ));
    }
    call.blocking(move |kms, ctx| {
        Ok(kms.enable_key_rotation(ctx, &request.key_id, request.rotation_period_in_days)?)
    })
    .await?;
    to_json(&json!({}), 0)
}

pub(super) async fn disable_key_rotation(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: KeyIdRequest = parse(body)?;
    key_ref(&request.key_id)?;
    call.blocking(move |kms, ctx| Ok(kms.disable_key_rotation(ctx, &request.key_id)?))
        .await?;
    to_json(&json!({}), 0)
}

pub(super) async fn get_key_rotation_status(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: KeyIdRequest = parse(body)?;
    key_ref(&request.key_id)?;
    let (status, arn) = call
        .blocking(move |kms, ctx| {
            let status = kms.get_key_rotation_status(ctx, &request.key_id)?;
            let arn = kms.describe_key(ctx, &request.key_id)?.arn;
            Ok((status, arn))
        })
        .await?;
    let mut answer = json!({"KeyId": arn, "KeyRotationEnabled": status.enabled});
    if status.enabled {
        answer["RotationPeriodInDays"] = status.period_days.into();
    }
    if let Some(next) = status.next_rotation {
        answer["NextRotationDate"] = epoch(next);
    }
    to_json(&answer, 0)
}

pub(super) async fn rotate_key_on_demand(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: KeyIdRequest = parse(body)?;
    key_ref(&request.key_id)?;
    let key_id = call
        .blocking(move |kms, ctx| Ok(kms.rotate_key_on_demand(ctx, &request.key_id)?))
        .await?;
    to_json(&json!({"KeyId": key_id}), 0)
}

pub(super) async fn list_key_rotations(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: KeyIdRequest = parse(body)?;
    key_ref(&request.key_id)?;
    let rotations = call
        .blocking(move |kms, ctx| Ok(kms.list_key_rotations(ctx, &request.key_id)?))
        .await?;
    let listed: Vec<_> = rotations
        .iter()
        .map(|r| {
            json!({
                "KeyId": r.key_id,
                "RotationDate": epoch(r.rotated),
                "RotationType": r.rotation_type,
            })
        })
        .collect();
    to_json(&json!({"Rotations": listed, "Truncated": false}), 0)
}

// ------------------------------------------------------------------ BYOK

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetParametersForImportRequest {
    key_id: String,
    wrapping_algorithm: String,
    wrapping_key_spec: String,
}

pub(super) async fn get_parameters_for_import(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: GetParametersForImportRequest = parse(body)?;
    key_ref(&request.key_id)?;
    let algorithm = match request.wrapping_algorithm.as_str() {
        "RSAES_OAEP_SHA_256" => WrappingAlgorithm::RsaesOaepSha256,
        "RSAES_OAEP_SHA_1" => WrappingAlgorithm::RsaesOaepSha1,
        other => {
            return Err(KmsApiError::validation(format!(
                "WrappingAlgorithm '{other}' is not supported: use RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1."
            )));
        }
    };
    let spec = match request.wrapping_key_spec.as_str() {
        "RSA_2048" => WrappingKeySpec::Rsa2048,
        "RSA_3072" => WrappingKeySpec::Rsa3072,
        "RSA_4096" => WrappingKeySpec::Rsa4096,
        other => {
            return Err(KmsApiError::validation(format!(
                "WrappingKeySpec '{other}' is not supported: use RSA_2048, RSA_3072 or RSA_4096."
            )));
        }
    };
    let (parameters, arn) = call
        .blocking(move |kms, ctx| {
            let parameters =
                kms.get_parameters_for_import(ctx, &request.key_id, algorithm, spec)?;
            let arn = kms.describe_key(ctx, &parameters.key_id)?.arn;
            Ok((parameters, arn))
        })
        .await?;
    to_json(
        &json!({
            "KeyId": arn,
            "PublicKey": base64(&parameters.public_key_der),
            "ImportToken": base64(&parameters.import_token),
            "ParametersValidTo": epoch(parameters.parameters_valid_to),
        }),
        0,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportKeyMaterialRequest {
    key_id: String,
    import_token: Blob,
    encrypted_key_material: Blob,
    valid_to: Option<Timestamp>,
    expiration_model: Option<String>,
}

/// The material's expiry from `ExpirationModel` and `ValidTo`. AWS makes
/// `KEY_MATERIAL_EXPIRES` the default (and then requires `ValidTo`); Coffer
/// infers the model from `ValidTo` when it is not given.
pub(super) fn material_valid_to(
    model: Option<&str>,
    valid_to: Option<&Timestamp>,
    now: OffsetDateTime,
) -> KmsResult<Option<OffsetDateTime>> {
    let valid_to = valid_to.map(Timestamp::to_time).transpose()?;
    match (model, valid_to) {
        (Some("KEY_MATERIAL_DOES_NOT_EXPIRE") | None, None) => Ok(None),
        (Some("KEY_MATERIAL_DOES_NOT_EXPIRE"), Some(_)) => Err(KmsApiError::validation(
            "ValidTo must be omitted when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE.",
        )),
        (Some("KEY_MATERIAL_EXPIRES"), None) => Err(KmsApiError::validation(
            "ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES.",
        )),
        (Some("KEY_MATERIAL_EXPIRES") | None, Some(at)) if at <= now => {
            Err(KmsApiError::validation("ValidTo must be in the future."))
        }
        (Some("KEY_MATERIAL_EXPIRES") | None, Some(at)) => Ok(Some(at)),
        (Some(other), _) => Err(KmsApiError::validation(format!(
            "ExpirationModel '{other}' is not valid: use KEY_MATERIAL_EXPIRES or KEY_MATERIAL_DOES_NOT_EXPIRE."
        ))),
    }
}

pub(super) async fn import_key_material(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: ImportKeyMaterialRequest = parse(body)?;
    key_ref(&request.key_id)?;
    if request.import_token.0.is_empty() || request.encrypted_key_material.0.is_empty() {
        return Err(KmsApiError::validation(
            "ImportToken and EncryptedKeyMaterial must not be empty.",
        ));
    }
    let valid_to = material_valid_to(
        request.expiration_model.as_deref(),
        request.valid_to.as_ref(),
        OffsetDateTime::now_utc(),
    )?;
    call.blocking(move |kms, ctx| {
        Ok(kms.import_key_material(
            ctx,
            &request.key_id,
            &request.import_token.0,
            &request.encrypted_key_material.0,
            valid_to,
        )?)
    })
    .await?;
    to_json(&json!({}), 0)
}

pub(super) async fn delete_imported_key_material(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: KeyIdRequest = parse(body)?;
    key_ref(&request.key_id)?;
    call.blocking(move |kms, ctx| Ok(kms.delete_imported_key_material(ctx, &request.key_id)?))
        .await?;
    to_json(&json!({}), 0)
}

// ----------------------------------------------------------------- key policies

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyPolicyRequest {
    key_id: String,
    policy_name: Option<String>,
    policy: Option<String>,
}

/// AWS's answer to a policy document it cannot accept.
fn malformed_policy(message: String) -> KmsApiError {
    KmsApiError::new(
        http::StatusCode::BAD_REQUEST,
        "MalformedPolicyDocumentException",
        message,
    )
}

/// The policy name, which AWS requires for Get/PutKeyPolicy (only `default` exists).
fn policy_name(name: Option<&str>) -> KmsResult<()> {
    let name = name.unwrap_or(coffer_kms::key_policy::POLICY_NAME);
    coffer_kms::key_policy::check_document(Some(name), "{}").map_err(coffer_kms::KmsError::from)?;
    Ok(())
}

pub(super) async fn get_key_policy(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: KeyPolicyRequest = parse(body)?;
    key_ref(&request.key_id)?;
    policy_name(request.policy_name.as_deref())?;
    let policy = call
        .blocking(move |kms, ctx| Ok(policy_document(kms, ctx, &request.key_id)?))
        .await?;
    to_json(
        &json!({"Policy": policy, "PolicyName": coffer_kms::key_policy::POLICY_NAME}),
        0,
    )
}

/// GetKeyPolicy's document (both protocols): as the backend keeps it, or — for a backend
/// that keeps none — the default of a key whose creator is unknown.
pub(super) fn policy_document(
    kms: &dyn coffer_kms::Kms,
    ctx: &coffer_kms::CallContext,
    key: &str,
) -> Result<String, coffer_kms::KmsError> {
    match kms.get_key_policy(ctx, key)? {
        Some(policy) => Ok(policy.document),
        None => {
            kms.describe_key(ctx, key)?;
            Ok(coffer_kms::key_policy::default_policy(None))
        }
    }
}

pub(super) async fn put_key_policy(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: KeyPolicyRequest = parse(body)?;
    key_ref(&request.key_id)?;
    policy_name(request.policy_name.as_deref())?;
    let Some(policy) = request.policy else {
        return Err(KmsApiError::validation("Policy is required."));
    };
    super::key_policy::validate(&policy).map_err(malformed_policy)?;
    call.blocking(move |kms, ctx| Ok(kms.put_key_policy(ctx, &request.key_id, &policy)?))
        .await?;
    to_json(&json!({}), 0)
}

pub(super) async fn list_key_policies(call: &Call, body: &[u8]) -> KmsResult<Vec<u8>> {
    let request: KeyIdRequest = parse(body)?;
    key_ref(&request.key_id)?;
    // Every key has exactly one policy, `default`; the call still checks that the key exists.
    call.blocking(move |kms, ctx| Ok(kms.describe_key(ctx, &request.key_id)?))
        .await?;
    to_json(
        &json!({"PolicyNames": [coffer_kms::key_policy::POLICY_NAME], "Truncated": false}),
        0,
    )
}
