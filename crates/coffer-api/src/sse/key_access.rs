//! SSE-KMS on the caller's behalf: S3 uses a KMS key only when the key's policy (with the
//! caller's identity policy) allows the request's principal — `kms:GenerateDataKey` to
//! write an object under the key, `kms:Decrypt` to read one — as AWS S3 calls KMS as the
//! caller. Checked before the keying layer runs, bucket keys included (a cached bucket key
//! is no way around a key policy).

use coffer_crypto::sealed::{Envelope, WrapKind};
use coffer_keying::Protection;
use coffer_kms::KmsError;
use coffer_kms::embedded::DEFAULT_SSE_ALIAS;
use coffer_kms::key_policy::{self, KeyPolicy};

use crate::error::{ApiError, ApiResult};
use crate::kms_api::key_policy::{KmsCaller, Refusal};
use crate::request::ApiRequest;
use crate::state::AppState;

/// Writing under SSE-KMS.
pub const WRITE: &str = "kms:GenerateDataKey";
/// Reading an SSE-KMS object (and uploading parts of an SSE-KMS multipart upload).
pub const READ: &str = "kms:Decrypt";

/// Checks that the request's principal may seal under `protection`'s KMS key.
pub fn check_sealing(state: &AppState, req: &ApiRequest, protection: &Protection) -> ApiResult<()> {
    match protection {
        Protection::Kms(kms) => check(
            state,
            req,
            WRITE,
            kms.key_id.as_deref().unwrap_or(DEFAULT_SSE_ALIAS),
        ),
        _ => Ok(()),
    }
}

/// Checks that the request's principal may open `envelope` when a KMS key protects it.
pub fn check_opening(state: &AppState, req: &ApiRequest, envelope: &[u8]) -> ApiResult<()> {
    match Envelope::decode(envelope) {
        Ok(decoded) if matches!(decoded.key.kind, WrapKind::Kms | WrapKind::KmsBucketKey) => {
            check(state, req, READ, &decoded.key.key_id)
        }
        // Not a KMS envelope, or damage the opening path reports.
        _ => Ok(()),
    }
}

fn check(state: &AppState, req: &ApiRequest, action: &str, key: &str) -> ApiResult<()> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    // Without a KMS, the keying layer refuses SSE-KMS itself.
    let Some(kms) = state.kms.as_deref() else {
        return Ok(());
    };
    let decide = |caller: &KmsCaller, decision| match decision {
        // The default key is created on first use, with the service's policy.
        Err(Refusal::Kms(KmsError::NotFound(_))) if key == DEFAULT_SSE_ALIAS => {
            let managed = KeyPolicy {
                key_id: DEFAULT_SSE_ALIAS.to_owned(),
                arn: format!(
                    "arn:aws:kms:{}:{}:{DEFAULT_SSE_ALIAS}",
                    state.settings.region,
                    key_policy::ACCOUNT
                ),
                document: key_policy::managed_policy(&state.settings.region),
                explicit: false,
            };
            caller.decide(&managed, action)
        }
        other => other,
    };
    let decide_waiting = |caller: KmsCaller| {
        let decision = caller.authorize(kms, action, key);
        decide(&caller, decision)
    };
    // A caller without an identity policy (root), under a key whose policy the KMS holds in
    // memory, is decided here. Otherwise the caller's identity policy is read from the store,
    // and the key policy from the KMS, waiting in place, as the signature verifiers wait for
    // users (`state.rs`). Outside the multi-threaded server runtime (unit tests) the identity
    // policy is left out, which can only refuse more.
    let immediate = KmsCaller::via_s3_now(state, &req.principal).and_then(|caller| {
        let decision = caller.authorize_now(kms, action, key)?;
        Some(decide(&caller, decision))
    });
    let decision = match (immediate, Handle::try_current()) {
        (Some(decision), _) => decision,
        (None, Ok(handle)) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| {
                let caller = handle.block_on(KmsCaller::via_s3(state, &req.principal))?;
                ApiResult::Ok(decide_waiting(caller))
            })?
        }
        (None, _) => decide_waiting(KmsCaller::with_policy(
            req.principal.clone(),
            None,
            Some(key_policy::via_s3(&state.settings.region)),
        )),
    };
    match decision {
        Ok(()) => Ok(()),
        Err(Refusal::Denied(message)) => Err(ApiError::access_denied(message)),
        // A key that does not exist: the keying layer answers as the KMS does.
        Err(Refusal::Kms(KmsError::NotFound(_))) => Ok(()),
        Err(Refusal::Kms(error)) => Err(ApiError::from(error)),
    }
}
