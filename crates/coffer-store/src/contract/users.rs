//! Users: unique names and access keys, lookup by access key, removal.

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

    assert!(meta.remove_user(&alice.name).await.unwrap());
    assert!(!meta.remove_user(&alice.name).await.unwrap());
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
