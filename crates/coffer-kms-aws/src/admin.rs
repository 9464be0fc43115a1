//! Key administration, forwarded to the backend call for call, so that `aws kms …` against
//! Coffer manages the backend's keys. Calls that AWS KMS accepts only with a key id (not an
//! alias) resolve the alias first, as Coffer's own KMS API accepts both.

use coffer_kms::kms::{
    AliasEntry, CreateKey, ImportParameters, KeyMetadata, KeyRef, KeySpec, KmsAdmin, Origin,
    RotationEntry, RotationStatus, WrappingAlgorithm, WrappingKeySpec,
};
use coffer_kms::{CallContext, KmsError};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::AwsKms;
use crate::metadata::{BACKEND_VERSION, base64, bytes, date, key_metadata, malformed, tags, text};

impl AwsKms {
    /// The key id `key` names (an alias resolved with DescribeKey).
    fn key_id(&self, key: KeyRef) -> Result<String, KmsError> {
        if key.starts_with("alias/") || key.contains(":alias/") {
            Ok(self.describe(key)?.key_id)
        } else {
            Ok(key.to_owned())
        }
    }

    /// Calls `operation` on one key, given as `{"KeyId": …}` plus `extra`.
    fn on_key(&self, operation: &str, key: KeyRef, extra: Value) -> Result<Value, KmsError> {
        let mut request = json!({"KeyId": self.key_id(key)?});
        if let (Some(request), Value::Object(extra)) = (request.as_object_mut(), extra) {
            request.extend(extra);
        }
        self.wire.call(operation, request, key)
    }

    /// Every page of a listing (`Marker` / `NextMarker`, `Truncated`), the items of `field`.
    fn list_all(
        &self,
        operation: &str,
        request: Value,
        field: &str,
    ) -> Result<Vec<Value>, KmsError> {
        let mut items = Vec::new();
        let mut request = request;
        loop {
            let answer = self.wire.call(operation, request.clone(), "")?;
            if let Some(page) = answer[field].as_array() {
                items.extend(page.iter().cloned());
            }
            match answer["NextMarker"].as_str() {
                Some(marker) if answer["Truncated"].as_bool() == Some(true) => {
                    request["Marker"] = json!(marker);
                }
                _ => return Ok(items),
            }
        }
    }
}

impl KmsAdmin for AwsKms {
    fn create_key(&self, _ctx: &CallContext, request: CreateKey) -> Result<KeyMetadata, KmsError> {
        if request.key_spec == KeySpec::Sm4 {
            return Err(KmsError::Validation(
                "the aws-kms backend offers no SM4 keys".into(),
            ));
        }
        let mut body = json!({
            "Description": request.description,
            "KeySpec": "SYMMETRIC_DEFAULT",
            "KeyUsage": "ENCRYPT_DECRYPT",
            "Origin": match request.origin {
                Origin::Generated => "AWS_KMS",
                Origin::External => "EXTERNAL",
            },
        });
        if !request.tags.is_empty() {
            body["Tags"] = tags(&request.tags);
        }
        key_metadata(&self.wire.call("CreateKey", body, "")?)
    }

    fn list_keys(&self, _ctx: &CallContext) -> Result<Vec<KeyMetadata>, KmsError> {
        self.list_all("ListKeys", json!({}), "Keys")?
            .iter()
            .map(|entry| self.describe(text(entry, "KeyId")?))
            .collect()
    }

    fn enable_key(&self, _ctx: &CallContext, key: KeyRef) -> Result<(), KmsError> {
        self.on_key("EnableKey", key, json!({})).map(drop)
    }

    fn disable_key(&self, _ctx: &CallContext, key: KeyRef) -> Result<(), KmsError> {
        self.on_key("DisableKey", key, json!({})).map(drop)
    }

    fn schedule_key_deletion(
        &self,
        _ctx: &CallContext,
        key: KeyRef,
        pending_days: u32,
    ) -> Result<KeyMetadata, KmsError> {
        self.on_key(
            "ScheduleKeyDeletion",
            key,
            json!({"PendingWindowInDays": pending_days}),
        )?;
        self.describe(key)
    }

    fn cancel_key_deletion(
        &self,
        _ctx: &CallContext,
        key: KeyRef,
    ) -> Result<KeyMetadata, KmsError> {
        self.on_key("CancelKeyDeletion", key, json!({}))?;
        self.describe(key)
    }

    fn tag_resource(
        &self,
        _ctx: &CallContext,
        key: KeyRef,
        new_tags: Vec<(String, String)>,
    ) -> Result<(), KmsError> {
        self.on_key("TagResource", key, json!({"Tags": tags(&new_tags)}))
            .map(drop)
    }

    fn create_alias(
        &self,
        _ctx: &CallContext,
        alias: &str,
        target: KeyRef,
    ) -> Result<(), KmsError> {
        let target = self.key_id(target)?;
        self.wire
            .call(
                "CreateAlias",
                json!({"AliasName": alias, "TargetKeyId": target}),
                alias,
            )
            .map(drop)
    }

    fn update_alias(
        &self,
        _ctx: &CallContext,
        alias: &str,
        target: KeyRef,
    ) -> Result<(), KmsError> {
        let target = self.key_id(target)?;
        self.wire
            .call(
                "UpdateAlias",
                json!({"AliasName": alias, "TargetKeyId": target}),
                alias,
            )
            .map(drop)
    }

    fn delete_alias(&self, _ctx: &CallContext, alias: &str) -> Result<(), KmsError> {
        self.wire
            .call("DeleteAlias", json!({"AliasName": alias}), alias)
            .map(drop)
    }

    fn list_aliases(
        &self,
        _ctx: &CallContext,
        key: Option<KeyRef>,
    ) -> Result<Vec<AliasEntry>, KmsError> {
        let request = match key {
            Some(key) => json!({"KeyId": self.key_id(key)?}),
            None => json!({}),
        };
        Ok(self
            .list_all("ListAliases", request, "Aliases")?
            .iter()
            // AWS lists its reserved aliases even before they name a key.
            .filter_map(|entry| {
                Some(AliasEntry {
                    name: entry["AliasName"].as_str()?.to_owned(),
                    target_key_id: entry["TargetKeyId"].as_str()?.to_owned(),
                })
            })
            .collect())
    }

    fn enable_key_rotation(
        &self,
        _ctx: &CallContext,
        key: KeyRef,
        period_days: Option<u32>,
    ) -> Result<(), KmsError> {
        let extra = match period_days {
            Some(days) => json!({"RotationPeriodInDays": days}),
            None => json!({}),
        };
        self.on_key("EnableKeyRotation", key, extra).map(drop)
    }

    fn disable_key_rotation(&self, _ctx: &CallContext, key: KeyRef) -> Result<(), KmsError> {
        self.on_key("DisableKeyRotation", key, json!({})).map(drop)
    }

    fn get_key_rotation_status(
        &self,
        _ctx: &CallContext,
        key: KeyRef,
    ) -> Result<RotationStatus, KmsError> {
        let answer = self.on_key("GetKeyRotationStatus", key, json!({}))?;
        Ok(RotationStatus {
            enabled: answer["KeyRotationEnabled"].as_bool().unwrap_or(false),
            period_days: answer["RotationPeriodInDays"]
                .as_u64()
                .and_then(|days| u32::try_from(days).ok())
                .unwrap_or(365),
            next_rotation: date(&answer, "NextRotationDate"),
        })
    }

    fn rotate_key_on_demand(&self, _ctx: &CallContext, key: KeyRef) -> Result<String, KmsError> {
        let answer = self.on_key("RotateKeyOnDemand", key, json!({}))?;
        Ok(text(&answer, "KeyId")?.to_owned())
    }

    fn list_key_rotations(
        &self,
        _ctx: &CallContext,
        key: KeyRef,
    ) -> Result<Vec<RotationEntry>, KmsError> {
        let request = json!({"KeyId": self.key_id(key)?});
        let rotations = self.list_all("ListKeyRotations", request, "Rotations")?;
        Ok(rotations
            .iter()
            .zip(BACKEND_VERSION + 1..)
            .map(|(entry, version)| RotationEntry {
                key_id: entry["KeyId"].as_str().unwrap_or(key).to_owned(),
                version,
                rotated: date(entry, "RotationDate").unwrap_or(OffsetDateTime::UNIX_EPOCH),
                rotation_type: match entry["RotationType"].as_str() {
                    Some("ON_DEMAND") => "ON_DEMAND",
                    _ => "AUTOMATIC",
                },
            })
            .collect())
    }

    fn get_parameters_for_import(
        &self,
        _ctx: &CallContext,
        key: KeyRef,
        algorithm: WrappingAlgorithm,
        spec: WrappingKeySpec,
    ) -> Result<ImportParameters, KmsError> {
        let answer = self.on_key(
            "GetParametersForImport",
            key,
            json!({
                "WrappingAlgorithm": match algorithm {
                    WrappingAlgorithm::RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
                    WrappingAlgorithm::RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
                },
                "WrappingKeySpec": match spec {
                    WrappingKeySpec::Rsa2048 => "RSA_2048",
                    WrappingKeySpec::Rsa3072 => "RSA_3072",
                    WrappingKeySpec::Rsa4096 => "RSA_4096",
                },
            }),
        )?;
        Ok(ImportParameters {
            key_id: text(&answer, "KeyId")?.to_owned(),
            public_key_der: bytes(&answer, "PublicKey")?,
            import_token: bytes(&answer, "ImportToken")?,
            parameters_valid_to: date(&answer, "ParametersValidTo")
                .ok_or_else(|| malformed("no ParametersValidTo"))?,
        })
    }

    fn import_key_material(
        &self,
        _ctx: &CallContext,
        key: KeyRef,
        import_token: &[u8],
        encrypted_material: &[u8],
        valid_to: Option<OffsetDateTime>,
    ) -> Result<(), KmsError> {
        let mut extra = json!({
            "ImportToken": base64(import_token),
            "EncryptedKeyMaterial": base64(encrypted_material),
            "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
        });
        if let Some(valid_to) = valid_to {
            extra["ExpirationModel"] = json!("KEY_MATERIAL_EXPIRES");
            extra["ValidTo"] = json!(valid_to.unix_timestamp());
        }
        self.on_key("ImportKeyMaterial", key, extra).map(drop)
    }

    fn delete_imported_key_material(
        &self,
        _ctx: &CallContext,
        key: KeyRef,
    ) -> Result<(), KmsError> {
        self.on_key("DeleteImportedKeyMaterial", key, json!({}))
            .map(drop)
    }
}
