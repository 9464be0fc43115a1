//! `PgKeyStore` against a real PostgreSQL (a throwaway cluster per test, see `cluster`): the
//! keystore contract, the KMS contract with the embedded KMS over it, two gateways sharing
//! one database, the service key ring in `service_keys`, the root-key check, and the cost of
//! the synchronous bridge.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;

use std::sync::Arc;
use std::time::Instant;

use coffer_kms::contract::keystore as keystore_contract;
use coffer_kms::keystore::{Cas, KeyStore};
use coffer_kms::kms::{CreateKey, KeySpec, KeyState, Origin};
use coffer_kms::{
    CallContext, EmbeddedKms, KmsAdmin, KmsDataPlane, KmsError, RootKey, ServiceKeyring,
};
use coffer_meta_pg::PgKeyStore;
use coffer_meta_pg::keystore::ROOT_MISMATCH;

use cluster::Cluster;

const REGION: &str = "us-east-1";

struct Harness {
    url: String,
    store: PgKeyStore,
}

impl keystore_contract::Harness for Harness {
    fn store(&self) -> &dyn KeyStore {
        &self.store
    }
    fn reopen(&self) -> Option<Box<dyn KeyStore>> {
        Some(Box::new(PgKeyStore::connect(&self.url).unwrap()))
    }
    fn audit_lines(&self) -> Vec<String> {
        self.store
            .audit_lines(0, i64::MAX)
            .unwrap()
            .into_iter()
            .map(|(_, line)| line)
            .collect()
    }
}

/// The keystore contract, called from plain threads (no runtime at all).
#[test]
fn passes_the_keystore_contract() {
    let cluster = Cluster::start();
    let url = cluster.url();
    let store = PgKeyStore::connect(&url).unwrap();
    keystore_contract::run(&Harness { url, store });
}

/// The same contract called from a multi-thread runtime's worker, as the server calls its KMS:
/// the bridge waits inside `block_in_place`; and from a current-thread runtime, which it never
/// has to drive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_keystore_contract_on_async_workers() {
    let cluster = Cluster::start();
    let url = cluster.url();
    let store = PgKeyStore::connect(&url).unwrap();
    keystore_contract::run(&Harness {
        url: url.clone(),
        store,
    });
    let on_current_thread = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let store = PgKeyStore::connect(&url).unwrap();
                store.list().unwrap().len()
            })
    });
    assert!(on_current_thread.join().unwrap() > 0);
}

fn root_key() -> Arc<RootKey> {
    let dir = tempfile::tempdir().unwrap();
    Arc::new(RootKey::load_or_create(dir.path()).unwrap().0)
}

fn ctx() -> CallContext {
    CallContext {
        principal: "test".into(),
        resource: None,
    }
}

fn new_key(kms: &EmbeddedKms, description: &str) -> String {
    kms.create_key(
        &ctx(),
        CreateKey {
            description: description.into(),
            key_spec: KeySpec::SymmetricDefault,
            origin: Origin::Generated,
            tags: Vec::new(),
            policy: None,
        },
    )
    .unwrap()
    .key_id
}

struct OverPostgres(EmbeddedKms);

impl coffer_kms::contract::Harness for OverPostgres {
    fn kms(&self) -> &dyn KmsDataPlane {
        &self.0
    }
    fn create_key(&self) -> String {
        new_key(&self.0, "contract")
    }
    fn set_enabled(&self, key: &str, enabled: bool) {
        if enabled {
            self.0.enable_key(&ctx(), key).unwrap();
        } else {
            self.0.disable_key(&ctx(), key).unwrap();
        }
    }
    fn rotate(&self, key: &str) {
        self.0.rotate_key_on_demand(&ctx(), key).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_kms_over_postgres_passes_the_kms_contract() {
    let cluster = Cluster::start();
    let store = PgKeyStore::connect(&cluster.url()).unwrap();
    let kms = EmbeddedKms::with_keystore(Arc::new(store.clone()), root_key(), REGION).unwrap();
    coffer_kms::contract::run(&OverPostgres(kms));
    let lines = store.audit_lines(0, i64::MAX).unwrap();
    assert!(!lines.is_empty(), "audit lines go to PostgreSQL");
    for (_, line) in &lines {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(value["operation"].is_string() && value["outcome"].is_string());
    }
}

/// Two gateways (two KMSs, each over its own `PgKeyStore` on one database, one root key): a
/// change made through one is never overwritten by the other's stale copy, a gateway started
/// later sees both, and deletes show up in `changed_since`.
#[test]
fn two_gateways_share_one_keystore() {
    let cluster = Cluster::start();
    let root = root_key();
    let gateway = || {
        let store = PgKeyStore::connect(&cluster.url()).unwrap();
        EmbeddedKms::with_keystore(Arc::new(store), Arc::clone(&root), REGION).unwrap()
    };
    let a = gateway();
    let id = new_key(&a, "shared");
    // A second gateway loads the key, then the first disables it.
    let b = gateway();
    a.disable_key(&ctx(), &id).unwrap();
    let lost = b.tag_resource(&ctx(), &id, vec![("k".into(), "v".into())]);
    assert!(
        matches!(&lost, Err(KmsError::Internal(m)) if m.contains("another writer")),
        "{lost:?}"
    );
    b.tag_resource(&ctx(), &id, vec![("k".into(), "v".into())])
        .unwrap();
    let c = gateway();
    assert_eq!(
        c.describe_key(&ctx(), &id).unwrap().state,
        KeyState::Disabled,
        "the disable made through one gateway was not overwritten by the other"
    );
    assert_eq!(
        c.list_resource_tags(&ctx(), &id).unwrap(),
        vec![("k".to_owned(), "v".to_owned())]
    );

    let store = PgKeyStore::connect(&cluster.url()).unwrap();
    let mark = store
        .changed_since(0)
        .unwrap()
        .last()
        .map(|(_, revision)| *revision)
        .unwrap();
    a.create_alias(&ctx(), "alias/shared", &id).unwrap();
    let current = store.get("alias/shared").unwrap().unwrap().revision;
    assert!(matches!(
        store
            .compare_and_swap("alias/shared", Some(&current), None)
            .unwrap(),
        Cas::Swapped(None)
    ));
    let changed: Vec<String> = store
        .changed_since(mark)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(changed, ["alias/shared"], "a delete is a change too");
}

/// What the synchronous bridge costs: a keystore `get` (hand-off + one PostgreSQL round trip)
/// against the same statement on a tokio-postgres client used directly. Printed, not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystore_calls_cost() {
    let cluster = Cluster::start();
    let store = PgKeyStore::connect(&cluster.url()).unwrap();
    const CALLS: u32 = 500;
    store.get("absent").unwrap();
    let started = Instant::now();
    for _ in 0..CALLS {
        store.get("absent").unwrap();
    }
    let bridged = started.elapsed() / CALLS;
    let (client, connection) = tokio_postgres::connect(&cluster.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let statement = client
        .prepare("SELECT revision, record FROM kms_keys WHERE id = $1 AND record IS NOT NULL")
        .await
        .unwrap();
    let started = Instant::now();
    for _ in 0..CALLS {
        client.query_opt(&statement, &[&"absent"]).await.unwrap();
    }
    let direct = started.elapsed() / CALLS;
    eprintln!(
        "keystore get through the bridge: {bridged:?}; the query on a direct async client: {direct:?}"
    );
}

/// The service key ring in `service_keys`: gateways rotating at once (each its own keyring
/// over its own `PgKeyStore`) lose no version, and the row holds only sealed keys.
#[test]
fn service_key_rotations_from_several_gateways_lose_no_version() {
    let cluster = Cluster::start();
    let root = root_key();
    let open = || {
        let store = PgKeyStore::connect(&cluster.url()).unwrap();
        ServiceKeyring::load_or_create_in(Arc::new(store.service_keys()), &root).unwrap()
    };
    let first = open();
    assert_eq!(first.current().0, 1);
    let v1 = first.version(1).unwrap().expose().to_vec();
    const GATEWAYS: usize = 4;
    const ROTATIONS: usize = 3;
    let rotated: Vec<Vec<u32>> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..GATEWAYS)
            .map(|_| {
                let mut keyring = open();
                let root = &root;
                scope.spawn(move || {
                    (0..ROTATIONS)
                        .map(|_| keyring.rotate(root).unwrap())
                        .collect::<Vec<u32>>()
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let mut versions: Vec<u32> = rotated.into_iter().flatten().collect();
    versions.sort_unstable();
    let expected: Vec<u32> = (2..=(1 + GATEWAYS * ROTATIONS) as u32).collect();
    assert_eq!(versions, expected, "every rotation got its own version");
    let reloaded = open();
    assert_eq!(
        reloaded.versions().map(|(v, _)| v).collect::<Vec<_>>(),
        (1..=(1 + GATEWAYS * ROTATIONS) as u32).collect::<Vec<_>>(),
        "no version was lost"
    );
    assert_eq!(reloaded.current().0, (1 + GATEWAYS * ROTATIONS) as u32);
    assert_eq!(reloaded.version(1).unwrap().expose().as_slice(), v1);
    let row = cluster.psql("SELECT document FROM service_keys");
    let hex: String = v1.iter().map(|b| format!("{b:02x}")).collect();
    assert!(row.contains("\"format\": 1") && !row.contains(&hex));
}

/// The root-key check: the first gateway stores the check value, the same root key passes,
/// another root key is refused with a message saying so, also on a database whose service
/// key ring predates the check (the wrong key cannot claim the check first).
#[test]
fn a_gateway_with_another_root_key_refuses_to_start() {
    let cluster = Cluster::start();
    let (root, other) = (root_key(), root_key());
    let store = PgKeyStore::connect(&cluster.url()).unwrap();
    // A ring and a key written before any check.
    ServiceKeyring::load_or_create_in(Arc::new(store.service_keys()), &root).unwrap();
    let kms =
        EmbeddedKms::with_keystore(Arc::new(store.clone()), Arc::clone(&root), REGION).unwrap();
    new_key(&kms, "before the check");

    let refused = |result: Result<(), KmsError>| match result {
        Err(KmsError::Internal(message)) => {
            assert!(message.starts_with(ROOT_MISMATCH), "{message}");
            message
        }
        other => panic!("another root key must be refused: {other:?}"),
    };
    let message = refused(store.check_root_key(&other));
    assert!(message.contains("service_keys"), "{message}");
    assert_eq!(
        cluster.psql("SELECT count(*) FROM kms_root_check").trim(),
        "0"
    );

    // Without a ring, the KMS's records are what the first check opens.
    cluster.psql("DELETE FROM service_keys");
    let message = refused(store.check_root_key(&other));
    assert!(message.contains("kms_keys"), "{message}");

    store.check_root_key(&root).unwrap();
    assert_eq!(
        cluster.psql("SELECT count(*) FROM kms_root_check").trim(),
        "1"
    );
    let second_gateway = PgKeyStore::connect(&cluster.url()).unwrap();
    second_gateway.check_root_key(&root).unwrap();
    let message = refused(second_gateway.check_root_key(&other));
    assert!(message.contains("kms_root_check"), "{message}");
    assert_eq!(
        format!("{}", KmsError::Internal(message.clone())),
        format!("the key store is unavailable: {message}")
    );
}

/// In a fresh database the first check stores the value; a later gateway with another root
/// key is refused.
#[test]
fn the_first_check_on_a_fresh_database_claims_it() {
    let cluster = Cluster::start();
    let (root, other) = (root_key(), root_key());
    let (a, b) = (
        PgKeyStore::connect(&cluster.url()).unwrap(),
        PgKeyStore::connect(&cluster.url()).unwrap(),
    );
    a.check_root_key(&root).unwrap();
    b.check_root_key(&root).unwrap();
    let refused = b.check_root_key(&other);
    assert!(
        matches!(&refused, Err(KmsError::Internal(m)) if m.starts_with(ROOT_MISMATCH)),
        "{refused:?}"
    );
}
