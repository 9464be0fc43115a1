//! `S3BlobStore` (crate `coffer-blobs-s3`) against a real upstream: a second,
//! plain `coffer server` on a free loopback port with its own temp data dir.
//! The blob contract suite, then what only this backend promises: multipart
//! blobs, bytes at rest exactly as written, nothing left upstream by a dropped
//! writer, listings that page and ignore foreign keys, `check`.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use coffer_auth::Secret;
use coffer_blobs_s3::{S3BlobConfig, S3BlobStore};
use coffer_client::objects::{self, NewObject};
use coffer_client::{Endpoint, SignedClient};
use coffer_store::rules::new_blob_id;
use coffer_store::{BlobId, BlobStore, StoreError, contract};
use futures_util::StreamExt;
use http::Method;
use tempfile::TempDir;

const ACCESS_KEY: &str = "CFBLOBSUPSTREAM00001";
const SECRET_KEY: &str = "upstream-secret-key-for-the-blob-tests-0001";
const PART: usize = coffer_blobs_s3::config::DEFAULT_PART_SIZE;

/// A `coffer server` serving as the upstream; killed on drop.
struct Upstream {
    child: Child,
    url: String,
    _dir: TempDir,
}

impl Upstream {
    fn start() -> Upstream {
        let dir = TempDir::new().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_coffer"));
        command
            .arg("server")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"));
        // Only the settings given here: none of the caller's.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if name.starts_with("COFFER_") || name.starts_with("AWS_") {
                command.env_remove(name);
            }
        }
        let child = command
            .env("COFFER_ROOT_ACCESS_KEY", ACCESS_KEY)
            .env("COFFER_ROOT_SECRET_KEY", SECRET_KEY)
            .env("COFFER_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut upstream = Upstream {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = upstream.child.try_wait().unwrap() {
                panic!("the upstream coffer server exited at startup: {status}");
            }
            assert!(Instant::now() < deadline, "the upstream never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        upstream
    }

    fn client(&self) -> SignedClient {
        SignedClient::new(Endpoint {
            url: self.url.clone(),
            access_key: ACCESS_KEY.into(),
            secret_key: Secret::new(SECRET_KEY),
            region: "us-east-1".into(),
        })
        .unwrap()
    }

    async fn bucket(&self, name: &str) -> String {
        self.client()
            .send(Method::PUT, &format!("/{name}"), Vec::new())
            .await
            .unwrap();
        name.to_owned()
    }

    fn config(&self, bucket: &str, prefix: &str) -> S3BlobConfig {
        S3BlobConfig::parse(&format!(
            "s3://{bucket}/{prefix}?endpoint={}&region=us-east-1",
            self.url
        ))
        .unwrap()
    }

    fn store(&self, config: &S3BlobConfig) -> S3BlobStore {
        S3BlobStore::new(config, ACCESS_KEY, Secret::new(SECRET_KEY)).unwrap()
    }

    /// Every upstream key under `prefix` (`""`: the whole bucket).
    async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = objects::list_objects(&self.client(), bucket, prefix)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        keys.sort();
        keys
    }

    /// An upstream object's bytes, as stored.
    async fn raw(&self, bucket: &str, key: &str) -> Vec<u8> {
        let mut body = objects::get_object(&self.client(), bucket, key, None)
            .await
            .unwrap();
        let mut out = Vec::new();
        while let Some(chunk) = body.next_chunk().await.unwrap() {
            out.extend_from_slice(&chunk);
        }
        out
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Bytes that differ from one offset to the next, so a misplaced range shows.
fn body(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(2_654_435_761).rotate_right(13) as u8)
        .collect()
}

/// Coffer's body path writes 1 MiB batches.
const BATCH: usize = 1 << 20;

async fn write_blob(blobs: &dyn BlobStore, body: &[u8], batch: usize) -> BlobId {
    let mut writer = blobs.create().await.unwrap();
    for batch in body.chunks(batch) {
        writer.write(Bytes::copy_from_slice(batch)).await.unwrap();
    }
    writer.finish().await.unwrap()
}

async fn read(blobs: &dyn BlobStore, id: &BlobId, range: std::ops::Range<u64>) -> Vec<u8> {
    let mut stream = blobs.read(id, range).await.unwrap();
    let mut out = Vec::new();
    while let Some(piece) = stream.next().await {
        out.extend_from_slice(&piece.unwrap());
    }
    out
}

async fn listed(blobs: &dyn BlobStore, before: SystemTime) -> Vec<BlobId> {
    let mut ids: Vec<BlobId> = blobs
        .list_older_than(before)
        .map(|id| id.unwrap())
        .collect()
        .await;
    ids.sort();
    ids
}

fn an_hour_from_now() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blob_contract_holds_over_a_coffer_upstream() {
    let upstream = Upstream::start();
    let bucket = upstream.bucket("contract").await;
    let blobs = upstream.store(&upstream.config(&bucket, "coffer/blobs"));
    blobs.check().await.unwrap();
    contract::blob_contract(&blobs).await;
    // The same with no prefix: blobs at the bucket's top level.
    let top = upstream.store(&upstream.config(&bucket, ""));
    contract::blob_contract(&top).await;
    assert!(
        upstream.keys(&bucket, "").await.is_empty(),
        "the suite deletes what it writes, and nothing else is left upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_blobs_go_up_in_parts_and_are_stored_byte_for_byte() {
    let upstream = Upstream::start();
    let bucket = upstream.bucket("parts").await;
    let blobs = upstream.store(&upstream.config(&bucket, "p"));

    // Two whole parts and a short third one, written in pieces that straddle
    // part boundaries; one exactly one part long; one small.
    let big = body(2 * PART + 123_457);
    let id = write_blob(&blobs, &big, 700_001).await;
    let exact = body(PART);
    let exact_id = write_blob(&blobs, &exact, BATCH).await;
    let small = body(1000);
    let small_id = write_blob(&blobs, &small, BATCH).await;

    let len = big.len() as u64;
    assert_eq!(blobs.len(&id).await.unwrap(), len);
    let part = PART as u64;
    for range in [
        0..len,
        part - 3..part + 5,
        2 * part - 1..2 * part + 1,
        len - 1..len,
        12_345..12_345 + (1 << 20),
    ] {
        let (start, end) = (range.start as usize, range.end as usize);
        assert!(
            read(&blobs, &id, range.clone()).await == big[start..end],
            "range {range:?}"
        );
    }
    assert!(matches!(
        blobs.read(&id, len - 1..len + 1).await,
        Err(StoreError::InvalidRange { len: l, .. }) if l == len
    ));

    // At rest: one upstream object per blob, `PREFIX/ID`, holding exactly the
    // bytes written: nothing added, nothing named after Coffer's objects.
    let mut want = vec![
        format!("p/{id}"),
        format!("p/{exact_id}"),
        format!("p/{small_id}"),
    ];
    want.sort();
    assert_eq!(upstream.keys(&bucket, "").await, want);
    assert!(upstream.raw(&bucket, &format!("p/{id}")).await == big);
    assert!(upstream.raw(&bucket, &format!("p/{exact_id}")).await == exact);
    assert_eq!(upstream.raw(&bucket, &format!("p/{small_id}")).await, small);
    // A multipart object's ETag ends in its count of parts: 8 MiB parts.
    let client = upstream.client();
    for (blob, parts) in [(&id, "-3\""), (&exact_id, "-1\"")] {
        let head = objects::head_object(&client, &bucket, &format!("p/{blob}"))
            .await
            .unwrap();
        assert!(head.etag.ends_with(parts), "{}", head.etag);
    }
    let head = objects::head_object(&client, &bucket, &format!("p/{small_id}"))
        .await
        .unwrap();
    assert!(!head.etag.contains('-'), "a small blob is one PUT");
    for blob in [&id, &exact_id, &small_id] {
        blobs.delete(blob).await.unwrap();
    }
    assert!(upstream.keys(&bucket, "").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_writer_leaves_nothing_upstream() {
    let upstream = Upstream::start();
    let bucket = upstream.bucket("dropped").await;
    let blobs = upstream.store(&upstream.config(&bucket, "b"));

    // Past two parts: the multipart upload is under way, parts are up.
    let mut writer = blobs.create().await.unwrap();
    let id = writer.id().clone();
    for batch in body(2 * PART + 5).chunks(BATCH) {
        writer.write(Bytes::copy_from_slice(batch)).await.unwrap();
    }
    assert!(
        upstream.keys(&bucket, "").await.is_empty(),
        "nothing is visible upstream before finish"
    );
    assert!(matches!(blobs.len(&id).await, Err(StoreError::NoSuchBlob)));
    let client = upstream.client();
    let uploads = || async {
        let (_, listing) = client
            .send(Method::GET, &format!("/{bucket}?uploads"), Vec::new())
            .await
            .unwrap();
        String::from_utf8_lossy(&listing).into_owned()
    };
    assert!(
        uploads().await.contains(&id),
        "the blob is a multipart upload in progress"
    );
    drop(writer);

    // The abort runs on a task: give it a moment, then no upload is left.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if !uploads().await.contains(&id) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dropped writer's multipart upload was never aborted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(upstream.keys(&bucket, "").await.is_empty());
    assert!(!listed(&blobs, an_hour_from_now()).await.contains(&id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_page_and_keep_only_blob_ids_under_the_prefix() {
    let upstream = Upstream::start();
    let bucket = upstream.bucket("listing").await;
    let mut config = upstream.config(&bucket, "site/blobs");
    config.list_page_size = Some(2);
    let blobs = upstream.store(&config);

    let mut ids = Vec::new();
    for n in 0..5u8 {
        ids.push(write_blob(&blobs, &[n; 10], BATCH).await);
    }
    ids.sort();
    // Objects that are not this store's blobs, some of them id-shaped.
    let stranger = new_blob_id().unwrap();
    let client = upstream.client();
    for key in [
        "site/blobs/not-a-blob".to_owned(),
        format!("site/blobs/{}", stranger.to_uppercase()),
        format!("site/blobs/sub/{stranger}"),
        format!("site/blobsX{stranger}"),
        format!("site/{stranger}"),
        stranger.clone(),
    ] {
        objects::put_object(
            &client,
            &bucket,
            &key,
            Bytes::from_static(b"x"),
            &NewObject::default(),
        )
        .await
        .unwrap();
    }
    assert_eq!(listed(&blobs, an_hour_from_now()).await, ids);
    assert!(
        listed(&blobs, SystemTime::now() - Duration::from_secs(3600))
            .await
            .is_empty(),
        "blobs written after T are not older than T"
    );
    // A stranger under the prefix is not a blob: deleting or reading it by a
    // non-id name never reaches it.
    assert!(matches!(
        blobs.len(&"not-a-blob".to_owned()).await,
        Err(StoreError::NoSuchBlob)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_a_missing_bucket_and_refused_credentials() {
    let upstream = Upstream::start();
    let absent = upstream.store(&upstream.config("no-such-bucket", "p"));
    let error = absent.check().await.unwrap_err().to_string();
    assert!(
        error.contains(&upstream.url) && error.contains("NoSuchBucket"),
        "{error}"
    );

    let bucket = upstream.bucket("creds").await;
    let wrong = S3BlobStore::new(
        &upstream.config(&bucket, "p"),
        ACCESS_KEY,
        Secret::new("not-the-secret"),
    )
    .unwrap();
    let error = wrong.check().await.unwrap_err();
    assert!(
        matches!(&error, StoreError::Io(io) if io.kind() == std::io::ErrorKind::Other),
        "{error}"
    );
    assert!(
        error.to_string().contains("SignatureDoesNotMatch"),
        "{error}"
    );
}
