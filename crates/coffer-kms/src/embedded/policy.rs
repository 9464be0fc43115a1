//! Key policies of the embedded KMS: stored sealed in each key's record (see `keystore`),
//! or computed from the key's creator when none was set (`crate::key_policy`).

use super::audit::AuditDetails;
use super::keystore::Cmk;
use super::lifecycle::{invalid_state, key_arn};
use super::{EmbeddedKms, describe};
use crate::key_policy::{self, KeyPolicy};
use crate::kms::{KeyRef, KeyState, KmsError};

impl EmbeddedKms {
    /// The policy of `key` (aliases resolve), set or default.
    pub(super) fn policy_of(&self, key: KeyRef) -> Result<KeyPolicy, KmsError> {
        self.read(|state, _| Ok(policy(state.resolve(key, &self.region)?, &self.region)))
    }

    /// PutKeyPolicy: replaces the policy of a customer key that is not pending deletion.
    pub(super) fn set_policy(
        &self,
        audit: &mut AuditDetails,
        key: KeyRef,
        document: &str,
    ) -> Result<(), KmsError> {
        key_policy::check_document(None, document)?;
        self.write(|state, _| {
            let cmk = state.resolve_mut(key, &self.region)?;
            describe(audit, cmk);
            Self::not_managed(cmk)?;
            if cmk.state == KeyState::PendingDeletion {
                return Err(invalid_state(cmk, cmk.state));
            }
            cmk.policy = Some(document.to_owned());
            Ok(())
        })
    }
}

fn policy(cmk: &Cmk, region: &str) -> KeyPolicy {
    let document = match (&cmk.policy, cmk.managed) {
        (Some(set), _) => set.clone(),
        (None, true) => key_policy::managed_policy(region),
        (None, false) => key_policy::default_policy(cmk.creator.as_deref()),
    };
    KeyPolicy {
        key_id: cmk.key_id.clone(),
        arn: key_arn(region, &cmk.key_id),
        document,
        explicit: cmk.policy.is_some(),
    }
}
