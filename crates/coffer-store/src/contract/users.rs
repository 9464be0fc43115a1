//! Users: unique names and access keys, lookup by access key and name, policies, removal.

use super::fixtures::{suffix, user_record};
use crate::{MetadataStore, StoreError};

pub(super) async fn users(meta: &dyn MetadataStore) {
    let s = suffix();
    let alice = user_record(&format!("alice-{s}"));
    let bob = user_record(&format!("bob-{s}"));
    meta.add_user(bob.clone()).await.unwrap();
    meta.add_user(alice.clone()).await.unwrap();
    let mut same_name = user_record(&alice.name);
    same_name.access_key = format!("AK-other-{s}");
    assert!(matches!(
        meta.add_user(same_name).await,
        Err(StoreError::UserExists)
    ));
    let mut same_key = user_record(&format!("carol-{s}"));
    same_key.access_key = alice.access_key.clone();
    assert!(matches!(
        meta.add_user(same_key).await,
        Err(StoreError::UserExists)
    ));

    assert_eq!(
        meta.user_by_access_key(&alice.access_key).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        meta.user_by_access_key(&format!("AK-none-{s}"))
            .await
            .unwrap(),
        None
    );
    let listed: Vec<String> = meta
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    let a = listed.iter().position(|n| *n == alice.name);
    let b = listed.iter().position(|n| *n == bob.name);
    assert!(
        matches!((a, b), (Some(a), Some(b)) if a < b),
        "users sorted by name"
    );

    assert_eq!(
        meta.user_by_name(&alice.name).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        meta.user_by_name(&format!("nobody-{s}")).await.unwrap(),
        None
    );

    // A policy is attached, replaced and removed in the user's record; the access key still
    // finds the same user.
    let policy = r#"{"Version":"2012-10-17","Statement":[]}"#.to_owned();
    assert!(
        meta.set_user_policy(&alice.name, Some(policy.clone()))
            .await
            .unwrap()
    );
    let with_policy = meta.user_by_access_key(&alice.access_key).await.unwrap();
    assert_eq!(
        with_policy.map(|u| u.policy),
        Some(Some(policy.clone())),
        "the policy is stored with the user"
    );
    assert_eq!(
        meta.user_by_name(&bob.name)
            .await
            .unwrap()
            .map(|u| u.policy),
        Some(None),
        "another user's policy is untouched"
    );
    assert!(meta.set_user_policy(&alice.name, None).await.unwrap());
    assert_eq!(
        meta.user_by_name(&alice.name).await.unwrap(),
        Some(alice.clone()),
        "removing the policy restores the record"
    );
    assert!(
        !meta
            .set_user_policy(&format!("nobody-{s}"), Some(policy.clone()))
            .await
            .unwrap(),
        "no policy for a user that does not exist"
    );
    assert_eq!(
        meta.user_by_name(&format!("nobody-{s}")).await.unwrap(),
        None,
        "setting a policy creates no user"
    );

    // Removing a user removes its policy: a new user of the same name starts without one.
    assert!(
        meta.set_user_policy(&alice.name, Some(policy))
            .await
            .unwrap()
    );
    assert!(meta.remove_user(&alice.name).await.unwrap());
    assert!(!meta.remove_user(&alice.name).await.unwrap());
    assert_eq!(meta.user_by_name(&alice.name).await.unwrap(), None);
    assert_eq!(
        meta.user_by_access_key(&alice.access_key).await.unwrap(),
        None,
        "removing a user removes its access key"
    );
    // The name and key are free again.
    meta.add_user(alice.clone()).await.unwrap();
    assert!(meta.remove_user(&alice.name).await.unwrap());
    assert!(meta.remove_user(&bob.name).await.unwrap());
}
