//! `PgMetadata` against a real PostgreSQL: each test starts a throwaway cluster of its own
//! (initdb into a temp dir, then the server on a free loopback port) and stops it at the end.
//! The binaries come from Debian's `postgresql` package (`/usr/lib/postgresql/<version>/bin`);
//! without them these tests fail, saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use coffer_meta_pg::{PgMetadata, SCHEMA_VERSION};
use coffer_store::{
    BucketRecord, Condition, Extent, FileBlobStore, MetadataStore, ObjectRecord, StoreError,
    contract,
};
use tempfile::TempDir;

/// A PostgreSQL cluster in a temp dir, running until dropped.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres: bool,
    _dir: TempDir,
}

/// The newest PostgreSQL's binaries under /usr/lib/postgresql.
fn postgres_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed: these tests start a throwaway PostgreSQL cluster. \
             Install Debian's `postgresql` package (apt-get install postgresql); \
             scripts/test does this when it is missing"
        ),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    fn start() -> Cluster {
        let bin = postgres_bin();
        let dir = TempDir::new().unwrap();
        // initdb refuses to run as root: the cluster belongs to the `postgres` user then.
        let as_postgres = is_root();
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown of the cluster's temp dir");
        }
        let cluster = Cluster {
            bin,
            data: dir.path().join("data"),
            port: free_port(),
            as_postgres,
            _dir: dir,
        };
        cluster.run(
            "initdb",
            &[
                "-D",
                path(&cluster.data),
                "-U",
                "coffer",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.pg_ctl_start();
        cluster
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            path(self.data.parent().unwrap())
        );
        let log = self.data.parent().unwrap().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path(&self.data),
                "-o",
                &options,
                "-l",
                path(&log),
                "-w",
                "start",
            ],
        );
    }

    fn restart(&self) {
        self.run(
            "pg_ctl",
            &["-D", path(&self.data), "-m", "fast", "-w", "stop"],
        );
        self.pg_ctl_start();
    }

    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let output = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        }
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        assert!(
            output.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://coffer@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let exe = self.bin.join("pg_ctl");
        let args = ["-D", path(&self.data), "-m", "immediate", "stop"];
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        };
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

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
