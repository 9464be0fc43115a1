//! What an upstream that is not there, says nothing, or answers oddly looks
//! like to the store: prompt, typed errors naming the endpoint, never a hang.
//! (The contract suite against a real upstream is in `crates/coffer/tests/blobs_s3.rs`,
//! where the `coffer` binary can be started.)
#![allow(clippy::unwrap_used)]

use std::io::ErrorKind;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use coffer_auth::Secret;
use coffer_blobs_s3::{S3BlobConfig, S3BlobStore};
use coffer_store::rules::new_blob_id;
use coffer_store::{Backend, BlobStore, StoreError};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Every test must end well within this, whatever the upstream does.
const NO_HANG: Duration = Duration::from_secs(20);

fn store(endpoint: &str, response_timeout: Duration) -> S3BlobStore {
    let mut config = S3BlobConfig::parse(&format!("s3://bkt/blobs?endpoint={endpoint}")).unwrap();
    config.connect_timeout = Duration::from_secs(2);
    config.response_timeout = response_timeout;
    S3BlobStore::new(&config, "AKEXAMPLE", Secret::new("secret")).unwrap()
}

/// The cause of an `Unavailable` error of the blob store: what the API answers 503 for.
fn unavailable(result: Result<impl Sized, StoreError>) -> std::io::Error {
    match result {
        Err(StoreError::Unavailable {
            backend: Backend::Blobs,
            source,
        }) => source,
        Err(other) => panic!("expected Unavailable of the blob store, got {other}"),
        Ok(_) => panic!("expected Unavailable of the blob store, got success"),
    }
}

/// A loopback address nothing listens on.
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_not_connected_error_naming_it() {
    tokio::time::timeout(NO_HANG, async {
        let endpoint = closed_port().await;
        let blobs = store(&endpoint, Duration::from_secs(5));
        let id = new_blob_id().unwrap();

        for error in [
            unavailable(blobs.len(&id).await),
            unavailable(blobs.read(&id, 0..10).await.map(|_| ())),
            unavailable(blobs.delete(&id).await),
            unavailable(blobs.check().await),
        ] {
            assert_eq!(error.kind(), ErrorKind::NotConnected, "{error}");
            assert!(error.to_string().contains(&endpoint), "{error}");
        }
        let listed: Vec<_> = blobs.list_older_than(SystemTime::now()).collect().await;
        assert_eq!(
            listed.len(),
            1,
            "a failed listing is one error, then the end"
        );
        assert!(
            matches!(&listed[0], Err(StoreError::Unavailable { source, .. }) if source.kind() == ErrorKind::NotConnected)
        );

        // A write fails at finish (a small blob is one PUT there), and names the blob.
        let mut writer = blobs.create().await.unwrap();
        let id = writer.id().clone();
        writer.write(Bytes::from_static(b"sealed")).await.unwrap();
        let error = unavailable(writer.finish().await);
        assert!(error.to_string().contains(&id), "{error}");
    })
    .await
    .expect("an unreachable upstream never hangs the store");
}

#[tokio::test]
async fn a_silent_upstream_times_out() {
    tokio::time::timeout(NO_HANG, async {
        // Accepts connections (the kernel does, from the backlog) and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let blobs = store(&endpoint, Duration::from_millis(500));
        let error = unavailable(blobs.len(&new_blob_id().unwrap()).await);
        assert_eq!(error.kind(), ErrorKind::TimedOut, "{error}");
        assert!(error.to_string().contains(&endpoint), "{error}");
        drop(listener);
    })
    .await
    .expect("a silent upstream never hangs the store");
}

/// Serves one canned answer per connection, whatever was asked.
async fn canned(answer: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let _ = socket.write_all(answer).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    endpoint
}

#[tokio::test]
async fn a_range_is_cut_from_an_upstream_that_ignores_ranges() {
    let endpoint = canned(
        b"HTTP/1.1 200 OK\r\ncontent-length: 16\r\nconnection: close\r\n\r\n0123456789abcdef",
    )
    .await;
    let blobs = store(&endpoint, Duration::from_secs(5));
    let id = new_blob_id().unwrap();
    let mut out = Vec::new();
    let mut stream = blobs.read(&id, 5..11).await.unwrap();
    while let Some(piece) = stream.next().await {
        out.extend_from_slice(&piece.unwrap());
    }
    assert_eq!(out, b"56789a");
    assert!(matches!(
        blobs.read(&id, 10..17).await,
        Err(StoreError::InvalidRange {
            start: 10,
            end: 17,
            len: 16
        })
    ));
}

#[tokio::test]
async fn an_answer_shorter_than_it_promised_is_an_error_not_a_short_read() {
    let endpoint = canned(
        b"HTTP/1.1 206 Partial Content\r\ncontent-range: bytes 0-9/100\r\ncontent-length: 10\r\nconnection: close\r\n\r\n01234",
    )
    .await;
    let blobs = store(&endpoint, Duration::from_secs(5));
    let mut stream = blobs.read(&new_blob_id().unwrap(), 0..10).await.unwrap();
    let mut error = None;
    while let Some(piece) = stream.next().await {
        if let Err(e) = piece {
            error = Some(e);
        }
    }
    assert!(
        matches!(
            error,
            Some(StoreError::Io(_) | StoreError::Unavailable { .. })
        ),
        "a truncated answer ends the stream with an error"
    );
}

#[tokio::test]
async fn a_404_is_no_such_blob_and_a_delete_of_it_succeeds() {
    let endpoint =
        canned(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
    let blobs = store(&endpoint, Duration::from_secs(5));
    let id = new_blob_id().unwrap();
    assert!(matches!(blobs.len(&id).await, Err(StoreError::NoSuchBlob)));
    assert!(matches!(
        blobs.read(&id, 0..4).await,
        Err(StoreError::NoSuchBlob)
    ));
    blobs.delete(&id).await.unwrap();
}

/// An upstream answering 503 (or another 5xx) is unavailable for now, not refusing: the API
/// answers 503 in turn; a 403 is a refusal, a plain I/O error.
#[tokio::test]
async fn a_5xx_upstream_is_unavailable_and_a_403_is_not() {
    let endpoint = canned(
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    )
    .await;
    let blobs = store(&endpoint, Duration::from_secs(5));
    let id = new_blob_id().unwrap();
    unavailable(blobs.read(&id, 0..4).await.map(|_| ()));
    unavailable(blobs.delete(&id).await);

    let endpoint =
        canned(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
    let blobs = store(&endpoint, Duration::from_secs(5));
    assert!(matches!(blobs.delete(&id).await, Err(StoreError::Io(_))));
}
