//! Leases: one holder at a time per name, released when the holder drops it.

use std::time::{Duration, Instant};

use super::fixtures::suffix;
use crate::MetadataStore;

/// How long a dropped lease may take to become free again: a shared store releases it when
/// the database notices the holder's connection closed, a moment after the drop.
const RELEASE_WITHIN: Duration = Duration::from_secs(10);

pub(super) async fn leases(meta: &dyn MetadataStore) {
    let name = format!("contract-lease-{}", suffix());
    let first = meta
        .try_lease(&name)
        .await
        .unwrap()
        .expect("a free lease is granted");
    assert_eq!(first.name(), name);
    assert!(first.still_held().await, "a lease just taken is held");
    assert!(
        meta.try_lease(&name).await.unwrap().is_none(),
        "a held lease is not granted again, even to its own process"
    );
    let other = meta
        .try_lease(&format!("{name}-other"))
        .await
        .unwrap()
        .expect("leases of other names are independent");

    drop(first);
    let started = Instant::now();
    let again = loop {
        if let Some(lease) = meta.try_lease(&name).await.unwrap() {
            break lease;
        }
        assert!(
            started.elapsed() < RELEASE_WITHIN,
            "a dropped lease is granted again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(again.still_held().await);
    assert!(
        other.still_held().await,
        "dropping one lease keeps the others"
    );
}
