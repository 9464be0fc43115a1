//! `PgMetadata` against a real PostgreSQL: each test starts a throwaway cluster of its own
//! (initdb into a temp dir, then the server on a free loopback port) and stops it at the end.
//! The binaries come from Debian's `postgresql` package (`/usr/lib/postgresql/<version>/bin`);
//! without them these tests fail, saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;

use std::time::Instant;

use coffer_meta_pg::{PgMetadata, SCHEMA_VERSION};
use coffer_store::{
    Backend, BucketRecord, Condition, Extent, FileBlobStore, MetadataStore, ObjectRecord,
    StoreError, contract,
};
use tempfile::TempDir;

use cluster::Cluster;

fn blob_store() -> (FileBlobStore, TempDir) {
    let dir = TempDir::new().unwrap();
    let (_, blobs) = coffer_store::open_embedded(dir.path()).unwrap();
    (blobs, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_metadata_contract() {
    let cluster = Cluster::start();
    let meta = PgMetadata::connect(&cluster.url()).await.unwrap();
    let (blobs, _dir) = blob_store();
    let started = Instant::now();
    contract::metadata_contract(&meta, &blobs).await;
    eprintln!("metadata contract on PostgreSQL: {:?}", started.elapsed());
    // The suite leaves the database non-empty; it runs again on top of its own leftovers.
    contract::metadata_contract(&meta, &blobs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persists_across_a_reconnect_and_a_server_restart() {
    let cluster = Cluster::start();
    let (blobs, _dir) = blob_store();
    let written = {
        let meta = PgMetadata::connect(&cluster.url()).await.unwrap();
        contract::persistence_write(&meta, &blobs).await
    };
    cluster.restart();
    let meta = PgMetadata::connect(&cluster.url()).await.unwrap();
    contract::persistence_check(&meta, &blobs, written).await;
}

/// Two gateways (two `PgMetadata` on one database) race `IfAbsent` puts on one key: exactly
/// one wins, every other sees `PreconditionFailed`, and only the winner's blob is referenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_racing_if_absent_one_wins() {
    let cluster = Cluster::start();
    let gateways = [
        PgMetadata::connect(&cluster.url()).await.unwrap(),
        PgMetadata::connect(&cluster.url()).await.unwrap(),
    ];
    let (blobs, _dir) = blob_store();
    gateways[0]
        .create_bucket(BucketRecord {
            name: "race".into(),
            owner: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    for round in 0..5 {
        let key = format!("key-{round}");
        let mut tasks = Vec::new();
        for n in 0..8 {
            let gateway = gateways[n % 2].clone();
            let blob = contract_blob(&blobs, n).await;
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                let record = ObjectRecord {
                    etag: format!("e{n}"),
                    extents: vec![Extent {
                        blob: blob.clone(),
                        size: 1,
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                let result = gateway
                    .put_object("race", &key, record, Condition::IfAbsent)
                    .await;
                (blob, result)
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            let (blob, result) = task.await.unwrap();
            match result {
                Ok(_) => winners.push(blob),
                Err(StoreError::PreconditionFailed) => {
                    assert!(!gateways[1].is_blob_referenced(&blob).await.unwrap());
                }
                Err(e) => panic!("a racer failed otherwise: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one IfAbsent put wins");
        let stored = gateways[1].get_object("race", &key).await.unwrap();
        assert_eq!(stored.extents[0].blob, winners[0]);
    }
}

async fn contract_blob(blobs: &FileBlobStore, n: usize) -> String {
    use coffer_store::BlobStore;
    let mut writer = blobs.create().await.unwrap();
    writer
        .write(bytes::Bytes::from(format!("racer {n}")))
        .await
        .unwrap();
    writer.finish().await.unwrap()
}

/// Migrations: gateways starting together migrate once; a database migrated by a newer build
/// (a schema version this build does not know) is refused with a message saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrates_once_and_refuses_a_newer_schema() {
    let cluster = Cluster::start();
    let url = cluster.url();
    let (a, b) = tokio::join!(PgMetadata::connect(&url), PgMetadata::connect(&url));
    let meta = a.unwrap();
    b.unwrap();
    assert_eq!(meta.schema_version().await.unwrap(), SCHEMA_VERSION);

    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let applied: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, SCHEMA_VERSION, "each migration applied once");
    client
        .execute(
            "INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, 'future', 0)",
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .unwrap();
    match PgMetadata::connect(&url).await {
        Err(StoreError::Corrupt(message)) => {
            assert!(message.contains("newer"), "{message}");
            assert!(message.contains(&format!("version {}", SCHEMA_VERSION + 1)));
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a schema newer than this build must be refused"),
    }
}

/// A server that goes away: calls fail promptly with `Unavailable` of the metadata store (not
/// a plain I/O error), a lease notices it is lost, and everything works again once the server
/// is back. Meanwhile a lease is one gateway's only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_unavailable_and_loses_leases() {
    let cluster = Cluster::start();
    let meta = PgMetadata::connect(&cluster.url()).await.unwrap();
    let other_gateway = PgMetadata::connect(&cluster.url()).await.unwrap();
    let lease = meta
        .try_lease("sweeper")
        .await
        .unwrap()
        .expect("a free lease");
    assert!(lease.still_held().await);
    assert!(
        other_gateway.try_lease("sweeper").await.unwrap().is_none(),
        "another gateway cannot take a held lease"
    );
    meta.list_buckets().await.unwrap();

    cluster.stop();
    let unavailable = |result: Result<_, StoreError>| match result {
        Err(StoreError::Unavailable {
            backend: Backend::Metadata,
            ..
        }) => {}
        Err(other) => panic!("expected Unavailable, got {other:?}"),
        Ok(_) => panic!("expected Unavailable, got success"),
    };
    let started = Instant::now();
    unavailable(meta.list_buckets().await.map(|_| ()));
    unavailable(meta.get_bucket("b").await.map(|_| ()));
    unavailable(meta.try_lease("lifecycle").await.map(|_| ()));
    assert!(
        started.elapsed().as_secs() < 30,
        "a stopped server fails calls promptly"
    );
    assert!(
        !lease.still_held().await,
        "the lease died with its connection"
    );

    cluster.resume();
    meta.list_buckets().await.unwrap();
    drop(lease);
    let taken = other_gateway
        .try_lease("sweeper")
        .await
        .unwrap()
        .expect("the lost lease is free once the server is back");
    assert!(taken.still_held().await);
}

/// The sweeper's work on PostgreSQL: writers need pending rows, the commit that references a
/// blob deletes its row, and one that stops referencing a blob (overwrite, delete, abort)
/// writes a row for it in the same transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_blobs_get_pending_rows_in_their_commit() {
    use std::time::{Duration, SystemTime};

    let cluster = Cluster::start();
    let meta = PgMetadata::connect(&cluster.url()).await.unwrap();
    assert!(meta.needs_pending_rows());
    let (blobs, _dir) = blob_store();
    meta.create_bucket(BucketRecord {
        name: "sweep".into(),
        owner: "alice".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let later = SystemTime::now() + Duration::from_secs(3600);
    let pending = async || -> Vec<String> {
        let rows = meta.list_pending_blobs(later).await.unwrap();
        rows.into_iter().map(|row| row.blob).collect()
    };
    let record = |blob: &str| ObjectRecord {
        etag: "e".into(),
        extents: vec![Extent {
            blob: blob.to_owned(),
            size: 1,
            ..Default::default()
        }],
        ..Default::default()
    };

    let first = contract_blob(&blobs, 1).await;
    meta.add_pending_blob(&first, SystemTime::now())
        .await
        .unwrap();
    meta.put_object("sweep", "k", record(&first), Condition::Always)
        .await
        .unwrap();
    assert!(pending().await.is_empty(), "the commit deleted the row");

    let second = contract_blob(&blobs, 2).await;
    meta.add_pending_blob(&second, SystemTime::now())
        .await
        .unwrap();
    meta.put_object("sweep", "k", record(&second), Condition::Always)
        .await
        .unwrap();
    assert_eq!(
        pending().await,
        vec![first.clone()],
        "the overwrite released the old blob"
    );
    assert!(!meta.is_blob_referenced(&first).await.unwrap());

    meta.delete_object(
        "sweep",
        "k",
        Condition::Always,
        coffer_store::Deleter {
            owner: "alice",
            now_ms: 0,
        },
    )
    .await
    .unwrap();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(
        pending().await,
        expected,
        "the delete released the current blob"
    );
}
