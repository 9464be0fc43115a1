//! Changes made through one gateway reach the others within the documented bound (1 s): two
//! gateways, each an `EmbeddedKms` over its own `PgKeyStore` on one database with its
//! watcher (`spawn_invalidation`), against a real PostgreSQL (see `cluster`). Disables,
//! enables, rotations, aliases and deletions; the bucket-key cache and the service key ring of
//! `coffer-keying` on the other gateway; a killed notification connection; and a gateway cut
//! off from PostgreSQL, which refuses key use once it cannot confirm its copy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;

use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_crypto::Algorithm;
use coffer_keying::{
    Caller, KeyingError, KeyingResult, KmsProtection, ObjectKeys, ObjectName, Protection,
    SINGLE_PART,
};
use coffer_kms::kms::{CreateKey, KeySpec, Origin};
use coffer_kms::{
    CallContext, EmbeddedKms, EncryptionContext, KmsAdmin, KmsDataPlane, KmsError, RootKey,
    ServiceKeyring,
};
use coffer_meta_pg::PgKeyStore;
use coffer_meta_pg::keystore::{WatchHandle, spawn_invalidation};

use cluster::Cluster;

const REGION: &str = "us-east-1";
/// The propagation bound docs/kms.md promises.
const BOUND: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(50);

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

fn context() -> EncryptionContext {
    EncryptionContext::from([("purpose".to_owned(), "test".to_owned())])
}

/// One gateway: its keystore connection, KMS, object keying over both, and its watcher.
struct Gateway {
    store: PgKeyStore,
    kms: Arc<EmbeddedKms>,
    keys: Arc<ObjectKeys>,
    watch: WatchHandle,
}

impl Gateway {
    /// Built as the server builds it: check the root key, open the ring and the KMS over the
    /// keystore, then start the watcher with the ring's refresh as its callback.
    fn start(cluster: &Cluster, root: &Arc<RootKey>) -> Gateway {
        let store = PgKeyStore::connect(&cluster.url()).unwrap();
        store.check_root_key(root).unwrap();
        let ring = ServiceKeyring::load_or_create_in(Arc::new(store.service_keys()), root).unwrap();
        let kms = Arc::new(
            EmbeddedKms::with_keystore(Arc::new(store.clone()), Arc::clone(root), REGION).unwrap(),
        );
        let keys = Arc::new(
            ObjectKeys::new(ring, Some(kms.clone() as Arc<dyn KmsDataPlane>), false)
                .with_shared_service_keys(Arc::clone(root)),
        );
        let on_service_keys = {
            let keys = Arc::clone(&keys);
            let root = Arc::clone(root);
            Arc::new(move || {
                if let Err(e) = keys.refresh_service_keys(&root) {
                    eprintln!("service key ring refresh failed: {e}");
                }
            })
        };
        let watch = spawn_invalidation(&store, kms.clone(), on_service_keys).unwrap();
        Gateway {
            store,
            kms,
            keys,
            watch,
        }
    }

    fn new_key(&self) -> String {
        self.kms
            .create_key(
                &ctx(),
                CreateKey {
                    description: "shared".into(),
                    key_spec: KeySpec::SymmetricDefault,
                    origin: Origin::Generated,
                    tags: Vec::new(),
                    policy: None,
                },
            )
            .unwrap()
            .key_id
    }
}

/// Polls `check` every 50 ms until it holds; returns how long that took, failing after `limit`.
fn within(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if check() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not seen within {limit:?}"
        );
        std::thread::sleep(POLL);
    }
}

fn disabled<T>(result: Result<T, KmsError>) -> bool {
    matches!(result, Err(KmsError::Disabled(_)))
}

fn pending_deletion<T>(result: Result<T, KmsError>) -> bool {
    matches!(
        result,
        Err(KmsError::InvalidState {
            state: "PendingDeletion",
            ..
        })
    )
}

/// Disable, enable, rotate, alias and schedule deletion through A; B follows each within the
/// bound, for data keys, Decrypt and `usable_now` alike.
#[test]
fn key_changes_reach_the_other_gateway_within_a_second() {
    let cluster = Cluster::start();
    let root = root_key();
    let a = Gateway::start(&cluster, &root);
    let b = Gateway::start(&cluster, &root);
    let id = a.new_key();
    within(BOUND, "a key created on A", || {
        b.kms.usable_now(&id).is_some_and(|r| r.is_ok())
    });
    let made = a.kms.generate_data_key(&ctx(), &id, &context()).unwrap();
    b.kms
        .decrypt(&ctx(), &made.ciphertext_blob, &context(), None)
        .unwrap();

    a.kms.disable_key(&ctx(), &id).unwrap();
    let took = within(BOUND, "a disable made on A", || {
        disabled(b.kms.generate_data_key(&ctx(), &id, &context()))
    });
    eprintln!("disable seen on B after {took:?}");
    assert!(disabled(b.kms.decrypt(
        &ctx(),
        &made.ciphertext_blob,
        &context(),
        None
    )));
    assert!(disabled(b.kms.usable_now(&id).unwrap()));

    a.kms.enable_key(&ctx(), &id).unwrap();
    within(BOUND, "an enable made on A", || {
        b.kms.generate_data_key(&ctx(), &id, &context()).is_ok()
    });

    a.kms.rotate_key_on_demand(&ctx(), &id).unwrap();
    let rotated = a.kms.generate_data_key(&ctx(), &id, &context()).unwrap();
    assert_eq!(rotated.key_version, 2);
    within(BOUND, "a rotation made on A", || {
        b.kms
            .decrypt(&ctx(), &rotated.ciphertext_blob, &context(), None)
            .is_ok_and(|p| p.plaintext.as_slice() == rotated.plaintext.expose())
    });
    assert_eq!(
        b.kms
            .generate_data_key(&ctx(), &id, &context())
            .unwrap()
            .key_version,
        2,
        "B makes new data keys under the new version"
    );

    a.kms.create_alias(&ctx(), "alias/moving", &id).unwrap();
    within(BOUND, "an alias made on A", || {
        b.kms
            .generate_data_key(&ctx(), "alias/moving", &context())
            .is_ok()
    });
    let other = a.new_key();
    a.kms.update_alias(&ctx(), "alias/moving", &other).unwrap();
    within(BOUND, "an alias moved on A", || {
        b.kms
            .generate_data_key(&ctx(), "alias/moving", &context())
            .is_ok_and(|d| d.key_id == other)
    });

    a.kms.schedule_key_deletion(&ctx(), &id, 7).unwrap();
    within(BOUND, "a deletion scheduled on A", || {
        pending_deletion(b.kms.generate_data_key(&ctx(), &id, &context()))
    });
    assert!(pending_deletion(b.kms.decrypt(
        &ctx(),
        &made.ciphertext_blob,
        &context(),
        None
    )));
    // B's copy follows A's, so B's own changes do not lose their swaps.
    b.kms.cancel_key_deletion(&ctx(), &id).unwrap();
    within(BOUND, "a cancellation made on B", || {
        a.kms.describe_key(&ctx(), &id).unwrap().state.as_str() == "Disabled"
    });
    drop(b.store);
}

const CALLER: Caller<'static> = Caller {
    principal: "alice",
    over_tls: true,
};

fn object<'a>(stored: &'a [(String, String)]) -> ObjectName<'a> {
    ObjectName {
        bucket: "photos",
        key: "cat.jpg",
        stored,
    }
}

/// A sealed object's envelope and stored attributes.
type Sealed = (Vec<u8>, Vec<(String, String)>);

/// Seals a small object.
fn seal(keys: &ObjectKeys, protection: Protection) -> KeyingResult<Sealed> {
    let sealing = keys
        .seal_new(&CALLER, protection, object(&[]))?
        .expect("encrypted");
    let mut sealer = sealing.sealer(SINGLE_PART);
    let mut blob = Vec::new();
    sealer.push(b"meow", &mut blob).unwrap();
    let size = sealer.finish(&mut blob);
    Ok((
        sealing.single_part_envelope(size)?,
        sealing.stored_attributes().to_vec(),
    ))
}

fn keying_disabled<T>(result: KeyingResult<T>) -> bool {
    matches!(result, Err(KeyingError::Kms(KmsError::Disabled(_))))
}

/// B's bucket-key cache (a bucket key cached for sealing, and one opened) never outlives a
/// disable made on A; and a service key rotation on A reaches B's ring.
#[test]
fn cached_bucket_keys_and_the_service_ring_follow_the_other_gateway() {
    let cluster = Cluster::start();
    let root = root_key();
    let a = Gateway::start(&cluster, &root);
    let b = Gateway::start(&cluster, &root);
    let id = a.new_key();
    let protection = || {
        Protection::Kms(KmsProtection {
            key_id: Some(id.clone()),
            bucket_key: true,
            ..KmsProtection::default()
        })
    };
    within(BOUND, "the key on B", || {
        b.kms.usable_now(&id).is_some_and(|r| r.is_ok())
    });
    let (envelope, stored) = seal(&b.keys, protection()).unwrap();
    b.keys
        .open(&CALLER, &envelope, object(&stored), None)
        .unwrap();
    seal(&b.keys, protection()).unwrap();

    a.kms.disable_key(&ctx(), &id).unwrap();
    let took = within(
        BOUND,
        "a disable on A, through B's cached bucket key",
        || keying_disabled(b.keys.open(&CALLER, &envelope, object(&stored), None)),
    );
    eprintln!("cached bucket key refused on B after {took:?}");
    assert!(keying_disabled(seal(&b.keys, protection())));
    a.kms.enable_key(&ctx(), &id).unwrap();
    within(BOUND, "an enable on A, through B's bucket keys", || {
        b.keys
            .open(&CALLER, &envelope, object(&stored), None)
            .is_ok()
    });

    let version = a.keys.rotate_service_key(&root).unwrap();
    within(BOUND, "a service key rotation on A", || {
        b.keys.service_key_versions().unwrap().0 == version
    });
    let (sealed_on_b, _) = seal(&b.keys, Protection::Service(Algorithm::Aes256Gcm)).unwrap();
    a.keys
        .open(&CALLER, &sealed_on_b, object(&[]), None)
        .unwrap();
    // A rotation that has not reached B yet: B reloads its ring on the unknown version.
    let next = a.keys.rotate_service_key(&root).unwrap();
    let (sealed_on_a, _) = seal(&a.keys, Protection::Service(Algorithm::Aes256Gcm)).unwrap();
    b.keys
        .open(&CALLER, &sealed_on_a, object(&[]), None)
        .unwrap();
    assert_eq!(b.keys.service_key_versions().unwrap().0, next);
}

/// The notification connection killed (`pg_terminate_backend`): a disable made right after,
/// while B is reconnecting, is still refused on B within the bound, and B listens again.
#[test]
fn a_change_made_while_the_listener_is_down_is_seen_within_the_bound() {
    let cluster = Cluster::start();
    let root = root_key();
    let a = Gateway::start(&cluster, &root);
    let b = Gateway::start(&cluster, &root);
    let id = a.new_key();
    within(BOUND, "the key on B", || {
        b.kms.usable_now(&id).is_some_and(|r| r.is_ok())
    });
    let pid = b.watch.listener_pid().expect("B is listening");
    let terminated = cluster.psql(&format!("SELECT pg_terminate_backend({pid})"));
    assert_eq!(terminated.trim(), "t");
    a.kms.disable_key(&ctx(), &id).unwrap();
    let took = within(BOUND, "a disable made while B's listener was down", || {
        disabled(b.kms.generate_data_key(&ctx(), &id, &context()))
    });
    eprintln!("disable seen on B after {took:?} with its listener killed");
    within(Duration::from_secs(10), "B listening again", || {
        b.watch.listener_pid().is_some_and(|p| p != pid)
    });
    a.kms.enable_key(&ctx(), &id).unwrap();
    within(BOUND, "an enable made after B reconnected", || {
        b.kms.generate_data_key(&ctx(), &id, &context()).is_ok()
    });
}

/// PostgreSQL gone: B cannot hear of a disable, so after the bound without a confirmation it
/// refuses key use (cached bucket keys too), and serves again once PostgreSQL is back.
#[test]
fn a_gateway_cut_off_from_postgres_fails_closed_within_the_bound() {
    let cluster = Cluster::start();
    let root = root_key();
    let b = Gateway::start(&cluster, &root);
    let id = b.new_key();
    let made = b.kms.generate_data_key(&ctx(), &id, &context()).unwrap();
    let stopping = Instant::now();
    cluster.stop();
    let took = within(
        BOUND + Duration::from_millis(300),
        "key use refused",
        || {
            matches!(
                b.kms.usable_now(&id),
                Some(Err(KmsError::Internal(m))) if m.contains("not confirmed")
            )
        },
    );
    eprintln!(
        "refused {took:?} after the stop returned, {:?} after it began",
        stopping.elapsed()
    );
    assert!(
        b.kms
            .decrypt(&ctx(), &made.ciphertext_blob, &context(), None)
            .is_err()
    );
    cluster.resume();
    within(
        Duration::from_secs(15),
        "key use once PostgreSQL is back",
        || {
            b.kms
                .decrypt(&ctx(), &made.ciphertext_blob, &context(), None)
                .is_ok()
        },
    );
}

/// What a `KeystoreListener` hears: every swap of a record (create, change, delete) names its
/// id, a lost swap nothing; a ring rotation is a service-key change; confirmations keep coming.
#[test]
fn every_swap_notifies_its_id() {
    use coffer_kms::keystore::{Cas, KeyRecord, KeyStore};
    use coffer_meta_pg::keystore::{KeystoreListener, WatchTiming};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Heard {
        ids: Mutex<Vec<String>>,
        service_keys: Mutex<u32>,
        confirmed: Mutex<Option<Instant>>,
    }
    impl KeystoreListener for Heard {
        fn records_changed(&self, ids: &[String]) -> Result<(), KmsError> {
            self.ids.lock().unwrap().extend_from_slice(ids);
            Ok(())
        }
        fn resync(&self) -> Result<(), KmsError> {
            Ok(())
        }
        fn service_keys_changed(&self) {
            *self.service_keys.lock().unwrap() += 1;
        }
        fn confirmed(&self, as_of: Instant) {
            *self.confirmed.lock().unwrap() = Some(as_of);
        }
    }

    let cluster = Cluster::start();
    let store = PgKeyStore::connect(&cluster.url()).unwrap();
    let heard = Arc::new(Heard::default());
    let _watch = store.watch(heard.clone(), WatchTiming::default()).unwrap();
    let resyncs = *heard.service_keys.lock().unwrap();
    assert_eq!(resyncs, 1, "the first resync looks at the ring too");

    let alias = |target: &str| KeyRecord::Alias {
        target_key_id: target.into(),
    };
    let Cas::Swapped(Some(first)) = store
        .compare_and_swap("alias/a", None, Some(&alias("k1")))
        .unwrap()
    else {
        panic!("created")
    };
    let Cas::Swapped(Some(second)) = store
        .compare_and_swap("alias/a", Some(&first), Some(&alias("k2")))
        .unwrap()
    else {
        panic!("changed")
    };
    assert_eq!(
        store
            .compare_and_swap("alias/b", Some(&first), Some(&alias("k3")))
            .unwrap(),
        Cas::Lost
    );
    assert_eq!(
        store
            .compare_and_swap("alias/a", Some(&second), None)
            .unwrap(),
        Cas::Swapped(None)
    );
    // Notifications that arrive together are handed over once per id.
    within(BOUND, "the swaps of alias/a", || {
        !heard.ids.lock().unwrap().is_empty()
    });
    std::thread::sleep(Duration::from_millis(300));
    let ids = heard.ids.lock().unwrap().clone();
    assert!(
        ids.iter().all(|id| id == "alias/a"),
        "{ids:?}: the lost swap said nothing"
    );

    let root = root_key();
    let mut ring =
        ServiceKeyring::load_or_create_in(Arc::new(store.service_keys()), &root).unwrap();
    within(BOUND, "the ring's creation", || {
        *heard.service_keys.lock().unwrap() > resyncs
    });
    let created = *heard.service_keys.lock().unwrap();
    ring.rotate(&root).unwrap();
    within(BOUND, "the ring's rotation", || {
        *heard.service_keys.lock().unwrap() > created
    });
    let before = Instant::now();
    within(BOUND, "a heartbeat confirmation", || {
        heard.confirmed.lock().unwrap().is_some_and(|c| c > before)
    });
}

/// The listener cannot reconnect (the database refuses new connections) but the gateway's
/// pooled connections still work: the poller keeps B current (a disable is seen within the
/// bound) and confirmed (other keys keep serving), until B listens again.
#[test]
fn the_poller_keeps_a_gateway_current_while_it_cannot_listen() {
    let cluster = Cluster::start();
    let root = root_key();
    let a = Gateway::start(&cluster, &root);
    let b = Gateway::start(&cluster, &root);
    let id = a.new_key();
    let other = a.new_key();
    within(BOUND, "the keys on B", || {
        b.kms.usable_now(&id).is_some_and(|r| r.is_ok())
            && b.kms.usable_now(&other).is_some_and(|r| r.is_ok())
    });
    let pid = b.watch.listener_pid().expect("B is listening");
    cluster.psql_in(
        "template1",
        "ALTER DATABASE postgres ALLOW_CONNECTIONS false",
    );
    let terminated = cluster.psql_in("template1", &format!("SELECT pg_terminate_backend({pid})"));
    assert_eq!(terminated.trim(), "t");
    within(Duration::from_secs(5), "B's listener gone", || {
        b.watch.listener_pid().is_none()
    });
    a.kms.disable_key(&ctx(), &id).unwrap();
    let took = within(BOUND, "a disable while B cannot listen", || {
        disabled(b.kms.generate_data_key(&ctx(), &id, &context()))
    });
    eprintln!("disable seen on B after {took:?} by polling");
    // Polling confirms too: the other key serves throughout.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        b.kms
            .generate_data_key(&ctx(), &other, &context())
            .expect("polling keeps B confirmed");
        std::thread::sleep(POLL);
    }
    assert!(b.watch.listener_pid().is_none(), "B still cannot listen");
    cluster.psql_in(
        "template1",
        "ALTER DATABASE postgres ALLOW_CONNECTIONS true",
    );
    within(Duration::from_secs(10), "B listening again", || {
        b.watch.listener_pid().is_some()
    });
}

/// A watcher that cannot start is an error, and the KMS it was for refuses key use after the
/// bound rather than serving unwatched.
#[test]
fn a_watcher_that_cannot_start_leaves_the_kms_refusing() {
    let cluster = Cluster::start();
    let root = root_key();
    let store = PgKeyStore::connect(&cluster.url()).unwrap();
    let kms = Arc::new(
        EmbeddedKms::with_keystore(Arc::new(store.clone()), Arc::clone(&root), REGION).unwrap(),
    );
    let id = kms
        .create_key(
            &ctx(),
            CreateKey {
                description: "unwatched".into(),
                key_spec: KeySpec::SymmetricDefault,
                origin: Origin::Generated,
                tags: Vec::new(),
                policy: None,
            },
        )
        .unwrap()
        .key_id;
    cluster.stop();
    let started = spawn_invalidation(&store, kms.clone(), Arc::new(|| {}));
    assert!(started.is_err(), "no PostgreSQL, no watcher");
    within(
        BOUND + Duration::from_millis(200),
        "key use refused",
        || {
            matches!(
                kms.usable_now(&id),
                Some(Err(KmsError::Internal(m))) if m.contains("not confirmed")
            )
        },
    );
}
