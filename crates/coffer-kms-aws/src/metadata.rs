//! AWS KMS JSON ↔ the trait's types: key metadata, dates, base64 blobs.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use coffer_kms::kms::{KeyMetadata, KeySpec, KeyState, Origin};
use coffer_kms::{EncryptionContext, KmsError};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// The key version Coffer reports for a backend's key. AWS KMS keeps a key's versions to
/// itself (each ciphertext blob names the one that made it), so there is one version as far
/// as Coffer can see; rotation happens inside the backend and needs no rewrap.
pub(crate) const BACKEND_VERSION: u32 = 1;

/// An answer that lacks what it should carry: the backend is not speaking AWS KMS.
pub(crate) fn malformed(what: &str) -> KmsError {
    KmsError::Internal(format!("aws-kms backend: malformed answer: {what}"))
}

/// A string field of an answer.
pub(crate) fn text<'a>(value: &'a Value, field: &str) -> Result<&'a str, KmsError> {
    value[field]
        .as_str()
        .ok_or_else(|| malformed(&format!("no {field}")))
}

/// A base64 field of an answer, decoded.
pub(crate) fn bytes(value: &Value, field: &str) -> Result<Vec<u8>, KmsError> {
    BASE64
        .decode(text(value, field)?)
        .map_err(|_| malformed(&format!("{field} is not base64")))
}

/// Bytes as the JSON protocol sends them.
pub(crate) fn base64(bytes: &[u8]) -> Value {
    Value::String(BASE64.encode(bytes))
}

/// An encryption context as the JSON protocol sends it.
pub(crate) fn context(context: &EncryptionContext) -> Value {
    Value::Object(
        context
            .iter()
            .map(|(name, value)| (name.clone(), Value::String(value.clone())))
            .collect::<Map<_, _>>(),
    )
}

/// Tags as the JSON protocol sends them.
pub(crate) fn tags(tags: &[(String, String)]) -> Value {
    Value::Array(
        tags.iter()
            .map(|(key, value)| json!({"TagKey": key, "TagValue": value}))
            .collect(),
    )
}

/// A date field (seconds since the epoch, possibly fractional), if present.
pub(crate) fn date(value: &Value, field: &str) -> Option<OffsetDateTime> {
    let seconds = value[field].as_f64()?;
    OffsetDateTime::from_unix_timestamp(seconds as i64).ok()
}

/// The key id inside a key ARN (`arn:aws:kms:R:A:key/ID`), or the text itself.
pub(crate) fn key_id_of(key: &str) -> &str {
    match key.split_once(":key/") {
        Some((_, id)) if key.starts_with("arn:") => id,
        _ => key,
    }
}

/// `KeyMetadata` of a DescribeKey (or CreateKey) answer.
pub(crate) fn key_metadata(answer: &Value) -> Result<KeyMetadata, KmsError> {
    let meta = &answer["KeyMetadata"];
    let state = match text(meta, "KeyState")? {
        "Enabled" => KeyState::Enabled,
        "PendingDeletion" | "PendingReplicaDeletion" => KeyState::PendingDeletion,
        "PendingImport" => KeyState::PendingImport,
        // Disabled, and the transient states (Creating, Updating, Unavailable): not usable.
        _ => KeyState::Disabled,
    };
    Ok(KeyMetadata {
        key_id: text(meta, "KeyId")?.to_owned(),
        arn: text(meta, "Arn")?.to_owned(),
        description: meta["Description"].as_str().unwrap_or_default().to_owned(),
        state,
        origin: match meta["Origin"].as_str() {
            Some("EXTERNAL") => Origin::External,
            _ => Origin::Generated,
        },
        key_spec: KeySpec::SymmetricDefault,
        created: date(meta, "CreationDate").unwrap_or(OffsetDateTime::UNIX_EPOCH),
        deletion_date: date(meta, "DeletionDate"),
        valid_to: date(meta, "ValidTo"),
        current_version: BACKEND_VERSION,
        managed: meta["KeyManager"].as_str() == Some("AWS"),
    })
}

/// Ok if the key may be used now, else the error a use of it gets. Checked by Coffer itself
/// before and after each data-key call: not every AWS-KMS-protocol endpoint refuses a
/// disabled key (moto's does not).
pub(crate) fn require_enabled(meta: &KeyMetadata) -> Result<(), KmsError> {
    match meta.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(KmsError::Disabled(meta.key_id.clone())),
        state => Err(KmsError::InvalidState {
            key: meta.key_id.clone(),
            state: state.as_str(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_describe_key_answers() {
        let answer = json!({"KeyMetadata": {
            "KeyId": "1234", "Arn": "arn:aws:kms:eu-west-1:111122223333:key/1234",
            "KeyState": "Disabled", "Origin": "EXTERNAL", "KeyManager": "CUSTOMER",
            "CreationDate": 1_700_000_000.5, "Description": "d"}});
        let meta = key_metadata(&answer).expect("valid");
        assert_eq!(meta.key_id, "1234");
        assert_eq!(meta.state, KeyState::Disabled);
        assert_eq!(meta.origin, Origin::External);
        assert_eq!(meta.created.unix_timestamp(), 1_700_000_000);
        assert!(matches!(require_enabled(&meta), Err(KmsError::Disabled(id)) if id == "1234"));
        assert!(key_metadata(&json!({"KeyMetadata": {"KeyId": "x"}})).is_err());
    }

    #[test]
    fn key_ids_come_out_of_arns() {
        assert_eq!(key_id_of("arn:aws:kms:r:1:key/abc"), "abc");
        assert_eq!(key_id_of("abc"), "abc");
        assert_eq!(key_id_of("alias/x"), "alias/x");
    }
}
