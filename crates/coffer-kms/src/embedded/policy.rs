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

/// The policy of `cmk`: the one set, else its default.
pub(super) fn policy(cmk: &Cmk, region: &str) -> KeyPolicy {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::RootKey;
    use crate::embedded::{DEFAULT_SSE_ALIAS, EmbeddedKms};
    use crate::kms::{CallContext, CreateKey, KeySpec, KmsAdmin, KmsDataPlane, KmsError, Origin};

    fn ctx(principal: &str) -> CallContext {
        CallContext {
            principal: principal.into(),
            resource: None,
        }
    }

    fn create(kms: &EmbeddedKms, by: &str, policy: Option<&str>) -> String {
        let request = CreateKey {
            description: String::new(),
            key_spec: KeySpec::SymmetricDefault,
            origin: Origin::Generated,
            tags: Vec::new(),
            policy: policy.map(str::to_owned),
        };
        kms.create_key(&ctx(by), request).expect("create").key_id
    }

    #[test]
    fn policies_default_to_the_creator_are_sealed_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Arc::new(RootKey::load_or_create(dir.path()).expect("root key").0);
        let kms = EmbeddedKms::open(dir.path(), Arc::clone(&root), "us-east-1").expect("open");
        let key = create(&kms, "alice", None);
        let default = kms.key_policy(&key).expect("lookup").expect("kept");
        assert!(!default.explicit);
        assert!(
            default.document.contains("user/alice"),
            "{}",
            default.document
        );
        assert!(default.arn.ends_with(&key));

        let set = r#"{"Statement":[{"Sid":"OnlyBobReadsThis","Effect":"Allow"}]}"#;
        kms.put_key_policy(&ctx("alice"), &key, set).expect("put");
        let given = create(
            &kms,
            "root",
            Some(r#"{"Statement":[{"Sid":"GivenAtCreation"}]}"#),
        );
        let reopened = EmbeddedKms::open(dir.path(), root, "us-east-1").expect("reopen");
        let read = reopened
            .get_key_policy(&ctx("alice"), &key)
            .expect("get")
            .expect("kept");
        assert_eq!((read.document.as_str(), read.explicit), (set, true));
        let at_creation = reopened.key_policy(&given).expect("lookup").expect("kept");
        assert!(at_creation.document.contains("GivenAtCreation"));
        // Sealed in the keystore: the document's text is not there, the creator is.
        let stored = std::fs::read_to_string(dir.path().join("kms").join("keystore.json"))
            .expect("keystore");
        assert!(!stored.contains("OnlyBobReadsThis") && !stored.contains("GivenAtCreation"));
        assert!(stored.contains(r#""creator": "alice""#), "{stored}");
        assert!(stored.contains("sealed_policy"));
        // GetKeyPolicy is audited, the lookup for a decision is not.
        let audit =
            std::fs::read_to_string(dir.path().join("kms").join("audit.log")).expect("audit log");
        assert_eq!(audit.matches("GetKeyPolicy").count(), 1, "{audit}");
        assert_eq!(audit.matches("PutKeyPolicy").count(), 1, "{audit}");
    }

    #[test]
    fn the_managed_key_keeps_the_services_policy_and_bad_puts_change_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Arc::new(RootKey::load_or_create(dir.path()).expect("root key").0);
        let kms = EmbeddedKms::open(dir.path(), root, "us-east-1").expect("open");
        kms.default_sse_key(&ctx("coffer")).expect("default key");
        let managed = kms
            .key_policy(DEFAULT_SSE_ALIAS)
            .expect("lookup")
            .expect("kept");
        assert!(managed.document.contains("kms:ViaService"));
        assert!(matches!(
            kms.put_key_policy(&ctx("root"), DEFAULT_SSE_ALIAS, "{}"),
            Err(KmsError::Validation(_))
        ));
        let key = create(&kms, "root", None);
        for bad in ["", &"x".repeat(32 * 1024 + 1)] {
            assert!(matches!(
                kms.put_key_policy(&ctx("root"), &key, bad),
                Err(KmsError::Validation(_))
            ));
        }
        assert!(matches!(
            kms.key_policy("no-such-key"),
            Err(KmsError::NotFound(_))
        ));
        let unchanged = kms.key_policy(&key).expect("lookup").expect("kept");
        assert!(!unchanged.explicit);
        // Root's key: the account statement alone.
        assert!(
            !unchanged.document.contains("user/"),
            "{}",
            unchanged.document
        );
    }
}
