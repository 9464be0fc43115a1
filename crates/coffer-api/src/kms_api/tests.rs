//! The JSON layer against a tiny in-memory fake (the real KMS is driven by
//! the interop suite): request parsing, authorization, error mapping,
//! response shapes, and SigV4 verification for service `kms`.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use coffer_crypto::SymmetricKey;
use coffer_kms::kms::{
    AliasEntry, Ciphertext, CreateKey, GeneratedDataKey, ImportParameters, KeyMetadata, KeyPolicy,
    KeyRef, KeySpec, KeyState, Origin, Plaintext, RotationEntry, RotationStatus, WrappingAlgorithm,
    WrappingKeySpec,
};
use coffer_kms::{CallContext, EncryptionContext, KmsAdmin, KmsDataPlane, KmsError};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;
use zeroize::Zeroizing;

use super::key_policy::KmsCaller;
use super::{base64, handle, verify_signature};
use crate::state::Principal;

const KEY_ID: &str = "11111111-2222-3333-4444-555555555555";
const ARN: &str = "arn:aws:kms:us-east-1:000000000000:key/11111111-2222-3333-4444-555555555555";

/// A fake KMS: one key; records each call with its principal; may be told
/// to fail every call with a given error.
#[derive(Default)]
struct FakeKms {
    calls: Mutex<Vec<String>>,
    contexts: Mutex<Vec<EncryptionContext>>,
    fail: Mutex<Option<fn() -> KmsError>>,
    metadata: Mutex<Option<KeyMetadata>>,
    valid_to: Mutex<Option<Option<OffsetDateTime>>>,
}

impl FakeKms {
    fn record(&self, ctx: &CallContext, call: &str) -> Result<(), KmsError> {
        self.calls
            .lock()
            .expect("fake lock")
            .push(format!("{}:{call}", ctx.principal));
        match *self.fail.lock().expect("fake lock") {
            Some(error) => Err(error()),
            None => Ok(()),
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("fake lock").clone()
    }

    fn metadata(&self) -> KeyMetadata {
        self.metadata
            .lock()
            .expect("fake lock")
            .clone()
            .unwrap_or_else(|| KeyMetadata {
                key_id: KEY_ID.into(),
                arn: ARN.into(),
                description: "test key".into(),
                state: KeyState::Enabled,
                origin: Origin::Generated,
                key_spec: KeySpec::SymmetricDefault,
                created: datetime!(2024-01-02 03:04:05 UTC),
                deletion_date: None,
                valid_to: None,
                current_version: 1,
                managed: false,
            })
    }
}

impl KmsDataPlane for FakeKms {
    fn describe_key(&self, ctx: &CallContext, _key: KeyRef) -> Result<KeyMetadata, KmsError> {
        self.record(ctx, "describe_key")?;
        Ok(self.metadata())
    }
    fn generate_data_key(
        &self,
        ctx: &CallContext,
        _key: KeyRef,
        context: &EncryptionContext,
    ) -> Result<GeneratedDataKey, KmsError> {
        self.record(ctx, "generate_data_key")?;
        self.contexts
            .lock()
            .expect("fake lock")
            .push(context.clone());
        Ok(GeneratedDataKey {
            key_id: KEY_ID.into(),
            key_version: 1,
            plaintext: SymmetricKey::from_slice(&[7u8; 32]).expect("32 bytes"),
            ciphertext_blob: b"wrapped-data-key".to_vec(),
        })
    }
    fn encrypt(
        &self,
        ctx: &CallContext,
        _key: KeyRef,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Ciphertext, KmsError> {
        self.record(ctx, "encrypt")?;
        self.contexts
            .lock()
            .expect("fake lock")
            .push(context.clone());
        let mut blob = b"ct:".to_vec();
        blob.extend_from_slice(plaintext);
        Ok(Ciphertext {
            key_id: KEY_ID.into(),
            key_version: 1,
            ciphertext_blob: blob,
        })
    }
    fn decrypt(
        &self,
        ctx: &CallContext,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
        key: Option<KeyRef>,
    ) -> Result<Plaintext, KmsError> {
        self.record(ctx, &format!("decrypt({key:?})"))?;
        self.contexts
            .lock()
            .expect("fake lock")
            .push(context.clone());
        let plaintext = ciphertext_blob
            .strip_prefix(b"ct:")
            .ok_or(KmsError::InvalidCiphertext)?;
        Ok(Plaintext {
            key_id: KEY_ID.into(),
            key_version: 1,
            plaintext: Zeroizing::new(plaintext.to_vec()),
        })
    }
    fn re_encrypt(
        &self,
        ctx: &CallContext,
        ciphertext_blob: &[u8],
        _source_context: &EncryptionContext,
        destination_key: KeyRef,
        _destination_context: &EncryptionContext,
    ) -> Result<Ciphertext, KmsError> {
        self.record(ctx, &format!("re_encrypt({destination_key})"))?;
        Ok(Ciphertext {
            key_id: KEY_ID.into(),
            key_version: 2,
            ciphertext_blob: ciphertext_blob.to_vec(),
        })
    }
    fn default_sse_key(&self, ctx: &CallContext) -> Result<KeyMetadata, KmsError> {
        self.record(ctx, "default_sse_key")?;
        Ok(self.metadata())
    }
    fn key_id_of_ciphertext(&self, _blob: &[u8]) -> Result<Option<String>, KmsError> {
        Ok(Some(KEY_ID.into()))
    }
}

impl KmsAdmin for FakeKms {
    /// The one key's policy: the default of a key alice created (not recorded: a lookup
    /// for a decision is not a call).
    fn key_policy(&self, _key: KeyRef) -> Result<Option<KeyPolicy>, KmsError> {
        Ok(Some(KeyPolicy {
            key_id: KEY_ID.into(),
            arn: ARN.into(),
            document: coffer_kms::key_policy::default_policy(Some("alice")),
            explicit: false,
        }))
    }
    fn create_key(&self, ctx: &CallContext, request: CreateKey) -> Result<KeyMetadata, KmsError> {
        self.record(ctx, "create_key")?;
        let mut m = self.metadata();
        m.description = request.description;
        m.key_spec = request.key_spec;
        m.origin = request.origin;
        if request.origin == Origin::External {
            m.state = KeyState::PendingImport;
        }
        Ok(m)
    }
    fn list_keys(&self, ctx: &CallContext) -> Result<Vec<KeyMetadata>, KmsError> {
        self.record(ctx, "list_keys")?;
        Ok(vec![self.metadata()])
    }
    fn enable_key(&self, ctx: &CallContext, _key: KeyRef) -> Result<(), KmsError> {
        self.record(ctx, "enable_key")
    }
    fn disable_key(&self, ctx: &CallContext, _key: KeyRef) -> Result<(), KmsError> {
        self.record(ctx, "disable_key")
    }
    fn schedule_key_deletion(
        &self,
        ctx: &CallContext,
        _key: KeyRef,
        pending_days: u32,
    ) -> Result<KeyMetadata, KmsError> {
        self.record(ctx, &format!("schedule_key_deletion({pending_days})"))?;
        let mut m = self.metadata();
        m.state = KeyState::PendingDeletion;
        m.deletion_date = Some(datetime!(2024-02-01 00:00:00 UTC));
        Ok(m)
    }
    fn cancel_key_deletion(
        &self,
        ctx: &CallContext,
        _key: KeyRef,
    ) -> Result<KeyMetadata, KmsError> {
        self.record(ctx, "cancel_key_deletion")?;
        Ok(self.metadata())
    }
    fn tag_resource(
        &self,
        ctx: &CallContext,
        _key: KeyRef,
        tags: Vec<(String, String)>,
    ) -> Result<(), KmsError> {
        self.record(ctx, &format!("tag_resource({tags:?})"))
    }
    fn create_alias(&self, ctx: &CallContext, alias: &str, target: KeyRef) -> Result<(), KmsError> {
        self.record(ctx, &format!("create_alias({alias},{target})"))
    }
    fn update_alias(&self, ctx: &CallContext, alias: &str, target: KeyRef) -> Result<(), KmsError> {
        self.record(ctx, &format!("update_alias({alias},{target})"))
    }
    fn delete_alias(&self, ctx: &CallContext, alias: &str) -> Result<(), KmsError> {
        self.record(ctx, &format!("delete_alias({alias})"))
    }
    fn list_aliases(
        &self,
        ctx: &CallContext,
        _key: Option<KeyRef>,
    ) -> Result<Vec<AliasEntry>, KmsError> {
        self.record(ctx, "list_aliases")?;
        Ok(vec![AliasEntry {
            name: "alias/app".into(),
            target_key_id: KEY_ID.into(),
        }])
    }
    fn enable_key_rotation(
        &self,
        ctx: &CallContext,
        _key: KeyRef,
        period_days: Option<u32>,
    ) -> Result<(), KmsError> {
        self.record(ctx, &format!("enable_key_rotation({period_days:?})"))
    }
    fn disable_key_rotation(&self, ctx: &CallContext, _key: KeyRef) -> Result<(), KmsError> {
        self.record(ctx, "disable_key_rotation")
    }
    fn get_key_rotation_status(
        &self,
        ctx: &CallContext,
        _key: KeyRef,
    ) -> Result<RotationStatus, KmsError> {
        self.record(ctx, "get_key_rotation_status")?;
        Ok(RotationStatus {
            enabled: true,
            period_days: 365,
            next_rotation: Some(datetime!(2025-01-02 03:04:05 UTC)),
        })
    }
    fn rotate_key_on_demand(&self, ctx: &CallContext, _key: KeyRef) -> Result<String, KmsError> {
        self.record(ctx, "rotate_key_on_demand")?;
        Ok(KEY_ID.into())
    }
    fn list_key_rotations(
        &self,
        ctx: &CallContext,
        _key: KeyRef,
    ) -> Result<Vec<RotationEntry>, KmsError> {
        self.record(ctx, "list_key_rotations")?;
        Ok(vec![RotationEntry {
            key_id: KEY_ID.into(),
            version: 2,
            rotated: datetime!(2024-06-01 00:00:00.5 UTC),
            rotation_type: "ON_DEMAND",
        }])
    }
    fn get_parameters_for_import(
        &self,
        ctx: &CallContext,
        _key: KeyRef,
        algorithm: WrappingAlgorithm,
        spec: WrappingKeySpec,
    ) -> Result<ImportParameters, KmsError> {
        self.record(
            ctx,
            &format!("get_parameters_for_import({algorithm:?},{spec:?})"),
        )?;
        Ok(ImportParameters {
            key_id: KEY_ID.into(),
            public_key_der: vec![0x30, 0x82],
            import_token: vec![1, 2, 3],
            parameters_valid_to: datetime!(2024-01-03 00:00:00 UTC),
        })
    }
    fn import_key_material(
        &self,
        ctx: &CallContext,
        _key: KeyRef,
        import_token: &[u8],
        encrypted_material: &[u8],
        valid_to: Option<OffsetDateTime>,
    ) -> Result<(), KmsError> {
        self.record(
            ctx,
            &format!("import_key_material({import_token:?},{encrypted_material:?})"),
        )?;
        *self.valid_to.lock().expect("fake lock") = Some(valid_to);
        Ok(())
    }
    fn delete_imported_key_material(
        &self,
        ctx: &CallContext,
        _key: KeyRef,
    ) -> Result<(), KmsError> {
        self.record(ctx, "delete_imported_key_material")
    }
}

/// The key's creator.
fn user() -> Principal {
    Principal::User("alice".into())
}

/// A user the key's policy does not name.
fn other_user() -> Principal {
    Principal::User("bob".into())
}

fn root() -> KmsCaller {
    KmsCaller::with_policy(Principal::Root, None, None)
}

/// Runs one operation; returns (status, `__type` or "", JSON body).
async fn call_as(
    kms: &Arc<FakeKms>,
    principal: &Principal,
    operation: &str,
    body: &str,
) -> (u16, Value) {
    let response = handle(
        kms.clone(),
        KmsCaller::with_policy(principal.clone(), None, None),
        &format!("TrentService.{operation}"),
        Bytes::from(body.to_owned()),
    )
    .await;
    let status = response.status().as_u16();
    assert_eq!(
        response.headers()[http::header::CONTENT_TYPE],
        "application/x-amz-json-1.1"
    );
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a buffered body")
        .to_bytes();
    let json = serde_json::from_slice(&bytes).expect("the answer is JSON");
    (status, json)
}

async fn call(kms: &Arc<FakeKms>, operation: &str, body: &str) -> (u16, Value) {
    call_as(kms, &Principal::Root, operation, body).await
}

#[track_caller]
fn assert_error(answer: &(u16, Value), status: u16, aws_type: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["__type"], aws_type, "{}", answer.1);
    assert!(answer.1["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn unknown_operations_and_targets_are_refused() {
    let kms = Arc::new(FakeKms::default());
    assert_error(
        &call(&kms, "Sign", "{}").await,
        400,
        "UnknownOperationException",
    );
    let response = handle(
        kms.clone(),
        root(),
        "DynamoDB_20120810.ListTables",
        Bytes::new(),
    )
    .await;
    assert_eq!(response.status(), 400);
    let response = handle(kms.clone(), root(), "ListKeys", Bytes::new()).await;
    assert_eq!(response.status(), 400);
    assert!(kms.calls().is_empty());
}

#[tokio::test]
async fn malformed_and_incomplete_requests_are_validation_errors() {
    let kms = Arc::new(FakeKms::default());
    assert_error(
        &call(&kms, "Encrypt", "{not json").await,
        400,
        "ValidationException",
    );
    assert_error(
        &call(&kms, "Encrypt", r#"{"Plaintext":"aGk="}"#).await,
        400,
        "ValidationException",
    );
    assert_error(
        &call(&kms, "Encrypt", r#"{"KeyId":"k","Plaintext":"%%%"}"#).await,
        400,
        "ValidationException",
    );
    assert_error(
        &call(&kms, "Encrypt", r#"{"KeyId":"","Plaintext":"aGk="}"#).await,
        400,
        "ValidationException",
    );
    assert_error(
        &call(&kms, "Encrypt", r#"{"KeyId":"k","Plaintext":""}"#).await,
        400,
        "ValidationException",
    );
    let too_long = base64(&[0u8; 4097]);
    assert_error(
        &call(
            &kms,
            "Encrypt",
            &format!(r#"{{"KeyId":"k","Plaintext":"{too_long}"}}"#),
        )
        .await,
        400,
        "ValidationException",
    );
    assert_error(
        &call(
            &kms,
            "Encrypt",
            r#"{"KeyId":"k","Plaintext":"aGk=","EncryptionAlgorithm":"RSAES_OAEP_SHA_1"}"#,
        )
        .await,
        400,
        "ValidationException",
    );
    assert_error(
        &call(
            &kms,
            "Encrypt",
            r#"{"KeyId":"k","Plaintext":"aGk=","EncryptionContext":{"a":1}}"#,
        )
        .await,
        400,
        "ValidationException",
    );
    assert_error(
        &call(
            &kms,
            "ScheduleKeyDeletion",
            r#"{"KeyId":"k","PendingWindowInDays":5}"#,
        )
        .await,
        400,
        "ValidationException",
    );
    assert_error(
        &call(
            &kms,
            "EnableKeyRotation",
            r#"{"KeyId":"k","RotationPeriodInDays":30}"#,
        )
        .await,
        400,
        "ValidationException",
    );
    assert_error(
        &call(
            &kms,
            "CreateAlias",
            r#"{"AliasName":"noprefix","TargetKeyId":"k"}"#,
        )
        .await,
        400,
        "ValidationException",
    );
    assert_error(
        &call(
            &kms,
            "CreateAlias",
            r#"{"AliasName":"alias/aws/s3","TargetKeyId":"k"}"#,
        )
        .await,
        400,
        "ValidationException",
    );
    assert!(
        kms.calls().is_empty(),
        "nothing reached the KMS: {:?}",
        kms.calls()
    );
}

#[tokio::test]
async fn generate_data_key_accepts_only_32_byte_keys() {
    let kms = Arc::new(FakeKms::default());
    for body in [
        r#"{"KeyId":"k","KeySpec":"AES_128"}"#,
        r#"{"KeyId":"k","NumberOfBytes":16}"#,
        r#"{"KeyId":"k"}"#,
        r#"{"KeyId":"k","KeySpec":"AES_256","NumberOfBytes":32}"#,
    ] {
        let answer = call(&kms, "GenerateDataKey", body).await;
        assert_error(&answer, 400, "ValidationException");
    }
    assert!(kms.calls().is_empty());

    let answer = call(
        &kms,
        "GenerateDataKey",
        r#"{"KeyId":"alias/app","KeySpec":"AES_256","EncryptionContext":{"bucket":"b"}}"#,
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["Plaintext"], base64(&[7u8; 32]));
    assert_eq!(answer.1["CiphertextBlob"], base64(b"wrapped-data-key"));
    assert_eq!(answer.1["KeyId"], ARN);
    assert_eq!(kms.contexts.lock().expect("fake lock")[0]["bucket"], "b");

    let answer = call(
        &kms,
        "GenerateDataKeyWithoutPlaintext",
        r#"{"KeyId":"k","NumberOfBytes":32}"#,
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert!(answer.1.get("Plaintext").is_none(), "{}", answer.1);
    assert_eq!(answer.1["KeyId"], ARN);
}

#[tokio::test]
async fn encrypt_decrypt_and_re_encrypt_round_trip() {
    let kms = Arc::new(FakeKms::default());
    let answer = call(
        &kms,
        "Encrypt",
        r#"{"KeyId":"k","Plaintext":"aGVsbG8=","EncryptionContext":{"purpose":"test"}}"#,
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["KeyId"], ARN);
    assert_eq!(answer.1["EncryptionAlgorithm"], "SYMMETRIC_DEFAULT");
    let blob = answer.1["CiphertextBlob"]
        .as_str()
        .expect("a blob")
        .to_owned();
    assert_eq!(blob, base64(b"ct:hello"));

    let answer = call(
        &kms,
        "Decrypt",
        &format!(r#"{{"CiphertextBlob":"{blob}","EncryptionContext":{{"purpose":"test"}},"KeyId":"alias/app"}}"#),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["Plaintext"], "aGVsbG8=");
    assert_eq!(answer.1["KeyId"], ARN);
    assert!(
        kms.calls()
            .contains(&"root:decrypt(Some(\"alias/app\"))".to_owned())
    );

    let answer = call(
        &kms,
        "ReEncrypt",
        &format!(r#"{{"CiphertextBlob":"{blob}","DestinationKeyId":"alias/other"}}"#),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["SourceKeyId"], ARN);
    assert_eq!(answer.1["KeyId"], ARN);
    assert!(
        kms.calls()
            .contains(&"root:re_encrypt(alias/other)".to_owned())
    );

    let answer = call(
        &kms,
        "Decrypt",
        &format!(r#"{{"CiphertextBlob":"{}"}}"#, base64(b"junk")),
    )
    .await;
    assert_error(&answer, 400, "InvalidCiphertextException");
}

#[tokio::test]
async fn kms_errors_keep_their_aws_type_and_internal_ones_their_secrets() {
    let kms = Arc::new(FakeKms::default());
    type Case = (fn() -> KmsError, u16, &'static str);
    let cases: [Case; 6] = [
        (
            || KmsError::Disabled(KEY_ID.into()),
            400,
            "DisabledException",
        ),
        (
            || KmsError::NotFound("alias/nope".into()),
            400,
            "NotFoundException",
        ),
        (
            || KmsError::InvalidState {
                key: KEY_ID.into(),
                state: "PendingDeletion",
            },
            400,
            "KMSInvalidStateException",
        ),
        (
            || KmsError::IncorrectKeyMaterial,
            400,
            "IncorrectKeyMaterialException",
        ),
        (
            || KmsError::ExpiredImportToken,
            400,
            "ExpiredImportTokenException",
        ),
        (
            || KmsError::Internal("/var/lib/coffer/kms.redb: disk I/O".into()),
            500,
            "KMSInternalException",
        ),
    ];
    for (error, status, aws_type) in cases {
        *kms.fail.lock().expect("fake lock") = Some(error);
        let answer = call(&kms, "Encrypt", r#"{"KeyId":"k","Plaintext":"aGk="}"#).await;
        assert_error(&answer, status, aws_type);
        assert!(
            !answer.1["message"]
                .as_str()
                .unwrap_or_default()
                .contains("/var/lib")
        );
    }
    *kms.fail.lock().expect("fake lock") = Some(|| KmsError::Disabled(KEY_ID.into()));
    let answer = call(&kms, "DescribeKey", r#"{"KeyId":"k"}"#).await;
    assert!(
        answer.1["message"]
            .as_str()
            .unwrap_or_default()
            .contains("disabled")
    );
}

#[tokio::test]
async fn key_policies_decide_who_uses_and_administers_a_key() {
    let kms = Arc::new(FakeKms::default());
    // Bob is not in the key's policy, and has no identity policy: refused everything on the
    // key, before the KMS is called.
    for (operation, body) in [
        ("Encrypt", r#"{"KeyId":"k","Plaintext":"aGk="}"#),
        ("GenerateDataKey", r#"{"KeyId":"k","KeySpec":"AES_256"}"#),
        ("Decrypt", r#"{"CiphertextBlob":"aGk="}"#),
        ("DescribeKey", r#"{"KeyId":"k"}"#),
        ("DisableKey", r#"{"KeyId":"k"}"#),
        ("ScheduleKeyDeletion", r#"{"KeyId":"k"}"#),
        (
            "CreateAlias",
            r#"{"AliasName":"alias/x","TargetKeyId":"k"}"#,
        ),
        ("ImportKeyMaterial", r#"{"KeyId":"k"}"#),
        ("RotateKeyOnDemand", r#"{"KeyId":"k"}"#),
        (
            "PutKeyPolicy",
            r#"{"KeyId":"k","PolicyName":"default","Policy":"{}"}"#,
        ),
        ("GetKeyPolicy", r#"{"KeyId":"k","PolicyName":"default"}"#),
        ("CreateKey", "{}"),
    ] {
        let answer = call_as(&kms, &other_user(), operation, body).await;
        assert_error(&answer, 400, "AccessDeniedException");
        let message = answer.1["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("kms:{operation}"))
                && message.contains("arn:aws:iam::000000000000:user/bob"),
            "{message}"
        );
    }
    // A request that does not name the key its operation needs runs nothing.
    assert_error(
        &call_as(&kms, &other_user(), "Encrypt", r#"{"Plaintext":"aGk="}"#).await,
        400,
        "ValidationException",
    );
    // The creator may not create keys either without an identity policy allowing it.
    assert_error(
        &call_as(&kms, &user(), "CreateKey", "{}").await,
        400,
        "AccessDeniedException",
    );
    assert!(kms.calls().is_empty(), "{:?}", kms.calls());
    // Listing names no key and is open to every user.
    for (operation, body) in [("ListKeys", ""), ("ListAliases", "{}")] {
        let answer = call_as(&kms, &other_user(), operation, body).await;
        assert_eq!(answer.0, 200, "{operation}: {}", answer.1);
    }
    // The creator uses and administers the key.
    for (operation, body) in [
        ("Encrypt", r#"{"KeyId":"k","Plaintext":"aGk="}"#),
        ("DescribeKey", r#"{"KeyId":"k"}"#),
        ("DisableKey", r#"{"KeyId":"k"}"#),
        ("GenerateDataKey", r#"{"KeyId":"k","KeySpec":"AES_256"}"#),
    ] {
        let answer = call_as(&kms, &user(), operation, body).await;
        assert_eq!(answer.0, 200, "{operation}: {}", answer.1);
    }
    assert!(
        kms.calls()
            .iter()
            .all(|c| c.starts_with("alice:") || c.starts_with("bob:list")),
        "{:?}",
        kms.calls()
    );
}

#[tokio::test]
async fn create_and_describe_keys() {
    let kms = Arc::new(FakeKms::default());
    let answer = call(
        &kms,
        "CreateKey",
        r#"{"Description":"byok","KeySpec":"SM4","KeyUsage":"ENCRYPT_DECRYPT","Origin":"EXTERNAL","Tags":[{"TagKey":"team","TagValue":"storage"}]}"#,
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    let m = &answer.1["KeyMetadata"];
    assert_eq!(m["KeyId"], KEY_ID);
    assert_eq!(m["Arn"], ARN);
    assert_eq!(m["AWSAccountId"], "000000000000");
    assert_eq!(m["Description"], "byok");
    assert_eq!(m["KeySpec"], "SM4");
    assert_eq!(m["CustomerMasterKeySpec"], "SM4");
    assert_eq!(m["Origin"], "EXTERNAL");
    assert_eq!(m["KeyState"], "PendingImport");
    assert_eq!(m["Enabled"], false);
    assert_eq!(m["KeyManager"], "CUSTOMER");
    assert_eq!(m["KeyUsage"], "ENCRYPT_DECRYPT");
    assert_eq!(m["EncryptionAlgorithms"], json!(["SYMMETRIC_DEFAULT"]));
    assert_eq!(m["CreationDate"], 1_704_164_645);
    assert!(m.get("ExpirationModel").is_none(), "{m}");

    for body in [
        r#"{"KeySpec":"RSA_2048"}"#,
        r#"{"KeyUsage":"SIGN_VERIFY"}"#,
        r#"{"Origin":"AWS_CLOUDHSM"}"#,
        r#"{"MultiRegion":true}"#,
    ] {
        assert_error(
            &call(&kms, "CreateKey", body).await,
            400,
            "ValidationException",
        );
    }

    *kms.metadata.lock().expect("fake lock") = Some(KeyMetadata {
        origin: Origin::External,
        valid_to: Some(datetime!(2030-01-01 00:00:00 UTC)),
        state: KeyState::PendingDeletion,
        deletion_date: Some(datetime!(2024-02-01 00:00:00 UTC)),
        managed: true,
        ..kms.metadata()
    });
    let answer = call(&kms, "DescribeKey", r#"{"KeyId":"alias/app"}"#).await;
    let m = &answer.1["KeyMetadata"];
    assert_eq!(m["ExpirationModel"], "KEY_MATERIAL_EXPIRES");
    assert_eq!(m["ValidTo"], 1_893_456_000);
    assert_eq!(m["DeletionDate"], 1_706_745_600);
    assert_eq!(m["KeyManager"], "AWS");
    assert_eq!(m["KeyState"], "PendingDeletion");
}

#[tokio::test]
async fn lifecycle_alias_and_rotation_answers() {
    let kms = Arc::new(FakeKms::default());
    let answer = call(&kms, "ScheduleKeyDeletion", r#"{"KeyId":"k"}"#).await;
    assert_eq!(answer.1["PendingWindowInDays"], 30);
    assert_eq!(answer.1["KeyState"], "PendingDeletion");
    assert_eq!(answer.1["KeyId"], ARN);
    assert_eq!(answer.1["DeletionDate"], 1_706_745_600);
    call(
        &kms,
        "ScheduleKeyDeletion",
        r#"{"KeyId":"k","PendingWindowInDays":7}"#,
    )
    .await;
    assert!(
        kms.calls()
            .contains(&"root:schedule_key_deletion(7)".to_owned())
    );
    assert_eq!(
        call(&kms, "CancelKeyDeletion", r#"{"KeyId":"k"}"#).await.1,
        json!({"KeyId": ARN})
    );
    assert_eq!(
        call(&kms, "EnableKey", r#"{"KeyId":"k"}"#).await,
        (200, json!({}))
    );
    assert_eq!(
        call(&kms, "DisableKey", r#"{"KeyId":"k"}"#).await,
        (200, json!({}))
    );

    let answer = call(&kms, "ListKeys", "{}").await;
    assert_eq!(
        answer.1,
        json!({"Keys": [{"KeyId": KEY_ID, "KeyArn": ARN}], "Truncated": false})
    );

    call(
        &kms,
        "UpdateAlias",
        r#"{"AliasName":"alias/app","TargetKeyId":"k2"}"#,
    )
    .await;
    call(&kms, "DeleteAlias", r#"{"AliasName":"alias/app"}"#).await;
    call(
        &kms,
        "TagResource",
        r#"{"KeyId":"k","Tags":[{"TagKey":"a","TagValue":"b"}]}"#,
    )
    .await;
    let calls = kms.calls();
    assert!(
        calls.contains(&"root:update_alias(alias/app,k2)".to_owned()),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"root:delete_alias(alias/app)".to_owned()),
        "{calls:?}"
    );
    assert!(
        calls.contains(&r#"root:tag_resource([("a", "b")])"#.to_owned()),
        "{calls:?}"
    );

    let answer = call(&kms, "ListAliases", "").await;
    assert_eq!(
        answer.1,
        json!({"Aliases": [{
            "AliasName": "alias/app",
            "AliasArn": "arn:aws:kms:us-east-1:000000000000:alias/app",
            "TargetKeyId": KEY_ID,
        }], "Truncated": false})
    );

    call(
        &kms,
        "EnableKeyRotation",
        r#"{"KeyId":"k","RotationPeriodInDays":180}"#,
    )
    .await;
    assert!(
        kms.calls()
            .contains(&"root:enable_key_rotation(Some(180))".to_owned())
    );
    let answer = call(&kms, "GetKeyRotationStatus", r#"{"KeyId":"k"}"#).await;
    assert_eq!(answer.1["KeyRotationEnabled"], true);
    assert_eq!(answer.1["RotationPeriodInDays"], 365);
    assert_eq!(answer.1["NextRotationDate"], 1_735_787_045);
    assert_eq!(
        call(&kms, "RotateKeyOnDemand", r#"{"KeyId":"k"}"#).await.1,
        json!({"KeyId": KEY_ID})
    );
    let answer = call(&kms, "ListKeyRotations", r#"{"KeyId":"k"}"#).await;
    assert_eq!(
        answer.1,
        json!({"Rotations": [{"KeyId": KEY_ID, "RotationDate": 1_717_200_000.5, "RotationType": "ON_DEMAND"}], "Truncated": false})
    );
}

#[tokio::test]
async fn byok_import_parameters_and_material() {
    let kms = Arc::new(FakeKms::default());
    let answer = call(
        &kms,
        "GetParametersForImport",
        r#"{"KeyId":"k","WrappingAlgorithm":"RSAES_OAEP_SHA_256","WrappingKeySpec":"RSA_2048"}"#,
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["KeyId"], ARN);
    assert_eq!(answer.1["PublicKey"], base64(&[0x30, 0x82]));
    assert_eq!(answer.1["ImportToken"], base64(&[1, 2, 3]));
    assert_eq!(answer.1["ParametersValidTo"], 1_704_240_000);
    assert!(
        kms.calls()
            .contains(&"root:get_parameters_for_import(RsaesOaepSha256,Rsa2048)".to_owned())
    );
    for body in [
        r#"{"KeyId":"k","WrappingAlgorithm":"RSA_AES_KEY_WRAP_SHA_256","WrappingKeySpec":"RSA_2048"}"#,
        r#"{"KeyId":"k","WrappingAlgorithm":"RSAES_OAEP_SHA_1","WrappingKeySpec":"SM2"}"#,
        r#"{"KeyId":"k","WrappingAlgorithm":"RSAES_OAEP_SHA_1"}"#,
    ] {
        assert_error(
            &call(&kms, "GetParametersForImport", body).await,
            400,
            "ValidationException",
        );
    }

    let import = |extra: &str| {
        format!(r#"{{"KeyId":"k","ImportToken":"AQID","EncryptedKeyMaterial":"BAU="{extra}}}"#)
    };
    let answer = call(
        &kms,
        "ImportKeyMaterial",
        &import(r#","ExpirationModel":"KEY_MATERIAL_DOES_NOT_EXPIRE""#),
    )
    .await;
    assert_eq!(answer, (200, json!({})));
    assert!(
        kms.calls()
            .contains(&"root:import_key_material([1, 2, 3],[4, 5])".to_owned())
    );
    assert_eq!(*kms.valid_to.lock().expect("fake lock"), Some(None));

    let answer = call(
        &kms,
        "ImportKeyMaterial",
        &import(r#","ValidTo":4102444800,"ExpirationModel":"KEY_MATERIAL_EXPIRES""#),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(
        *kms.valid_to.lock().expect("fake lock"),
        Some(Some(datetime!(2100-01-01 00:00:00 UTC)))
    );
    for extra in [
        r#","ValidTo":1000000000"#,
        r#","ExpirationModel":"KEY_MATERIAL_EXPIRES""#,
        r#","ValidTo":4102444800,"ExpirationModel":"KEY_MATERIAL_DOES_NOT_EXPIRE""#,
        r#","ExpirationModel":"SOMETIMES""#,
    ] {
        assert_error(
            &call(&kms, "ImportKeyMaterial", &import(extra)).await,
            400,
            "ValidationException",
        );
    }
    assert_eq!(
        call(&kms, "DeleteImportedKeyMaterial", r#"{"KeyId":"k"}"#).await,
        (200, json!({}))
    );
}

#[test]
fn helpers() {
    use super::keys::{arn_prefix, check_alias_name, material_valid_to};
    use super::{Timestamp, epoch};
    assert_eq!(arn_prefix(ARN), Some("arn:aws:kms:us-east-1:000000000000:"));
    assert_eq!(arn_prefix(KEY_ID), None);
    assert!(check_alias_name("alias/my-app_1/x").is_ok());
    assert!(check_alias_name("alias/").is_err());
    assert!(check_alias_name("alias/has space").is_err());
    let now = datetime!(2024-01-01 00:00:00 UTC);
    let later = Timestamp::Text("2024-06-01T00:00:00Z".into());
    assert_eq!(
        material_valid_to(None, Some(&later), now)
            .expect("a future date")
            .expect("expires"),
        datetime!(2024-06-01 00:00:00 UTC)
    );
    assert!(material_valid_to(None, None, now).expect("valid").is_none());
    assert!(Timestamp::Seconds(f64::NAN).to_time().is_err());
    assert_eq!(
        Timestamp::Text("1704067200.25".into())
            .to_time()
            .expect("seconds"),
        datetime!(2024-01-01 00:00:00.25 UTC)
    );
    assert_eq!(
        epoch(datetime!(2024-01-01 00:00:00.25 UTC)),
        json!(1_704_067_200.25)
    );
}

// ------------------------------------------------------------ SigV4 for kms

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn lookup(access_key: &str) -> Option<coffer_auth::Secret> {
    (access_key == ACCESS_KEY).then(|| coffer_auth::Secret::new(SECRET_KEY))
}

/// A KMS request signed the way botocore signs one: no
/// `x-amz-content-sha256` header, the body's SHA-256 in the canonical request.
fn botocore_style_request(body: &[u8], service: &str, now: OffsetDateTime) -> http::request::Parts {
    use coffer_auth::mac::{hmac_sha256, sha256_hex};
    let amz_date = coffer_auth::amz_time::format_amz_date(now);
    let date = &amz_date[..8];
    let host = "127.0.0.1:9000";
    let target = "TrentService.Encrypt";
    let canonical = format!(
        "POST\n/\n\ncontent-type:application/x-amz-json-1.1\nhost:{host}\nx-amz-date:{amz_date}\nx-amz-target:{target}\n\ncontent-type;host;x-amz-date;x-amz-target\n{}",
        sha256_hex(body)
    );
    let scope = format!("{date}/us-east-1/{service}/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let mut key = hmac_sha256(format!("AWS4{SECRET_KEY}").as_bytes(), date.as_bytes());
    for part in ["us-east-1", service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac_sha256(&key, to_sign.as_bytes()));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={signature}"
    );
    let request = http::Request::post("/")
        .header("content-type", "application/x-amz-json-1.1")
        .header("host", host)
        .header("x-amz-date", amz_date.as_str())
        .header("x-amz-target", target)
        .header("authorization", authorization)
        .body(())
        .expect("a valid request");
    request.into_parts().0
}

#[test]
fn verifies_botocore_style_kms_signatures() {
    let now = OffsetDateTime::now_utc();
    let body = br#"{"KeyId":"alias/app","Plaintext":"aGk="}"#;
    let parts = botocore_style_request(body, "kms", now);
    assert!(super::is_kms_request(&parts));
    assert_eq!(
        verify_signature(&parts, body, now, &lookup).as_deref(),
        Ok(ACCESS_KEY)
    );

    // Another body than the one signed.
    let tampered = br#"{"KeyId":"alias/evil","Plaintext":"aGk="}"#;
    assert_eq!(
        verify_signature(&parts, tampered, now, &lookup),
        Err(coffer_auth::AuthError::SignatureMismatch)
    );
    // Signed for S3, not KMS.
    let s3 = botocore_style_request(body, "s3", now);
    assert!(matches!(
        verify_signature(&s3, body, now, &lookup),
        Err(coffer_auth::AuthError::HeaderMalformed(_))
    ));
    // A declared x-amz-content-sha256 must match the body.
    let mut declared = botocore_style_request(body, "kms", now);
    declared.headers.insert(
        "x-amz-content-sha256",
        http::HeaderValue::from_static("UNSIGNED-PAYLOAD"),
    );
    assert!(verify_signature(&declared, body, now, &lookup).is_err());
    // Unsigned.
    let mut anonymous = botocore_style_request(body, "kms", now);
    anonymous.headers.remove(http::header::AUTHORIZATION);
    assert_eq!(
        verify_signature(&anonymous, body, now, &lookup),
        Err(coffer_auth::AuthError::Missing)
    );
    let error = super::KmsApiError::from_auth(coffer_auth::AuthError::Missing);
    assert_eq!(error.aws_type, "MissingAuthenticationTokenException");
    let error = super::KmsApiError::from_auth(coffer_auth::AuthError::UnknownAccessKey);
    assert_eq!(error.aws_type, "UnrecognizedClientException");
}

#[test]
fn only_trent_service_posts_to_the_root_are_kms_requests() {
    let parts = |method: &str, path: &str, target: Option<&str>| {
        let mut builder = http::Request::builder().method(method).uri(path);
        if let Some(target) = target {
            builder = builder.header("x-amz-target", target);
        }
        builder.body(()).expect("a valid request").into_parts().0
    };
    assert!(super::is_kms_request(&parts(
        "POST",
        "/",
        Some("TrentService.ListKeys")
    )));
    assert!(!super::is_kms_request(&parts("POST", "/", None)));
    assert!(!super::is_kms_request(&parts(
        "GET",
        "/",
        Some("TrentService.ListKeys")
    )));
    assert!(!super::is_kms_request(&parts(
        "POST",
        "/bucket",
        Some("TrentService.ListKeys")
    )));
    assert!(!super::is_kms_request(&parts(
        "POST",
        "/",
        Some("DynamoDB_20120810.ListTables")
    )));
}

/// A request boto3 1.43.64 sent (`kms.encrypt(KeyId="alias/app",
/// Plaintext=b"hi", EncryptionContext={"a": "b"})` at 2024-05-06T07:08:09Z).
#[test]
fn verifies_a_captured_boto3_request() {
    let body = br#"{"KeyId": "alias/app", "Plaintext": "aGk=", "EncryptionContext": {"a": "b"}}"#;
    let request = http::Request::post("/")
        .header("host", "127.0.0.1:9000")
        .header("x-amz-target", "TrentService.Encrypt")
        .header("content-type", "application/x-amz-json-1.1")
        .header("user-agent", "Boto3/1.43.64 md/Botocore#1.43.64")
        .header("x-amz-date", "20240506T070809Z")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240506/us-east-1/kms/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
             Signature=2519378f1ebee5f95903029a26c5775df4e29a175767bfcb1538f7ac5dd2f3c4",
        )
        .header(
            "amz-sdk-invocation-id",
            "57979b0c-0237-4c7d-adf2-b1f45dc48add",
        )
        .header("amz-sdk-request", "attempt=1")
        .header("content-length", "76")
        .body(())
        .expect("a valid request");
    let parts = request.into_parts().0;
    let now = datetime!(2024-05-06 07:08:30 UTC);
    assert!(super::is_kms_request(&parts));
    assert_eq!(
        verify_signature(&parts, body, now, &lookup).as_deref(),
        Ok(ACCESS_KEY)
    );
    assert!(verify_signature(&parts, &body[1..], now, &lookup).is_err());
}
