//! [`S3BlobStore`]: the [`BlobStore`] contract over one upstream bucket and
//! prefix.

use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use coffer_auth::Secret;
use coffer_client::objects::{
    ByteRange, ListRequest, ObjectStream, delete_object, get_object, head_object, list_objects_v2,
};
use coffer_client::{ClientError, Endpoint, SignedClient, Timeouts};
use coffer_store::rules::{is_valid_blob_id, new_blob_id};
use coffer_store::{BlobId, BlobStore, BlobStream, BlobWriter, StoreError, StoreFuture};
use futures_util::stream::{self, BoxStream, StreamExt};
use http::StatusCode;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::{S3BlobConfig, S3ConfigError};
use crate::upstream::{Upstream, is_missing_object};
use crate::writer::S3BlobWriter;

/// Blobs as objects `PREFIX/<blob id>` of an upstream S3-compatible bucket.
/// Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct S3BlobStore {
    upstream: Arc<Upstream>,
}

impl S3BlobStore {
    /// A store over `config`'s bucket, signing with the given credentials. No
    /// request is sent: call [`S3BlobStore::check`] to find out whether the
    /// bucket answers.
    pub fn new(
        config: &S3BlobConfig,
        access_key: impl Into<String>,
        secret_key: Secret,
    ) -> Result<Self, S3ConfigError> {
        config.validate()?;
        let client = SignedClient::with_timeouts(
            Endpoint {
                url: config.endpoint.clone(),
                access_key: access_key.into(),
                secret_key,
                region: config.region.clone(),
            },
            Timeouts {
                connect: Some(config.connect_timeout),
                response: Some(config.response_timeout),
            },
        )?;
        Ok(S3BlobStore {
            upstream: Arc::new(Upstream {
                client,
                bucket: config.bucket.clone(),
                key_prefix: config.key_prefix(),
                part_size: config.part_size,
                list_page_size: config.list_page_size,
            }),
        })
    }

    /// Lists one key under the prefix: succeeds when the endpoint answers, the
    /// credentials are accepted and the bucket exists. For a server to call
    /// before it serves.
    pub async fn check(&self) -> Result<(), StoreError> {
        let upstream = &self.upstream;
        let request = ListRequest {
            prefix: &upstream.key_prefix,
            delimiter: Some("/"),
            token: None,
            max_keys: Some(1),
        };
        list_objects_v2(&upstream.client, &upstream.bucket, &request)
            .await
            .map_err(|e| upstream.error("listing the blob prefix", e))?;
        Ok(())
    }

    /// HEAD: the blob's length.
    async fn head_len(&self, id: &BlobId) -> Result<u64, StoreError> {
        let upstream = &self.upstream;
        if !is_valid_blob_id(id) {
            return Err(StoreError::NoSuchBlob);
        }
        let head = head_object(&upstream.client, &upstream.bucket, &upstream.key(id))
            .await
            .map_err(|e| upstream.read_error(&format!("measuring blob {id}"), e))?;
        Ok(head.content_length)
    }

    /// One ranged GET, checked against the length the answer reports (a 416
    /// costs a HEAD, to tell "past the end" from "absent").
    async fn get_range(&self, id: &BlobId, range: Range<u64>) -> Result<BlobStream, StoreError> {
        let upstream = Arc::clone(&self.upstream);
        let (start, end) = (range.start, range.end);
        let doing = format!("reading bytes {start}..{end} of blob {id}");
        let asked = ByteRange {
            first: start,
            last: Some(end - 1),
        };
        let body = match get_object(
            &upstream.client,
            &upstream.bucket,
            &upstream.key(id),
            Some(asked),
        )
        .await
        {
            Ok(body) => body,
            Err(e) if is_missing_object(&e) => return Err(StoreError::NoSuchBlob),
            Err(e) if e.status() == Some(StatusCode::RANGE_NOT_SATISFIABLE) => {
                let len = self.head_len(id).await?;
                return Err(if end > len {
                    StoreError::InvalidRange { start, end, len }
                } else {
                    upstream.error(&doing, e)
                });
            }
            Err(e) => return Err(upstream.error(&doing, e)),
        };
        // A 206 says which bytes of how many; a 200 (an upstream that ignores
        // ranges) is the whole blob, of which the range is cut out here.
        let (first, len) = match body.head.range {
            Some((first, _)) => (first, body.head.size),
            None => (0, body.head.content_length),
        };
        if end > len {
            return Err(StoreError::InvalidRange { start, end, len });
        }
        if first > start {
            return Err(upstream.error(
                &doing,
                ClientError::BadResponse(format!("the answer starts at byte {first}")).into(),
            ));
        }
        let cut = RangeCut {
            body,
            skip: start - first,
            remaining: end - start,
            upstream,
            doing,
        };
        Ok(stream::unfold(Some(cut), RangeCut::next).boxed())
    }
}

/// The bytes of a GET answer that the range asked for, and an error if the
/// answer ends before them.
struct RangeCut {
    body: ObjectStream,
    skip: u64,
    remaining: u64,
    upstream: Arc<Upstream>,
    doing: String,
}

impl RangeCut {
    async fn next(cut: Option<Self>) -> Option<(Result<Bytes, StoreError>, Option<Self>)> {
        let mut cut = cut?;
        while cut.remaining > 0 {
            let mut chunk = match cut.body.next_chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    let error = StoreError::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "upstream blob store {}: {}: the answer ended {} bytes early",
                            cut.upstream.client.url(),
                            cut.doing,
                            cut.remaining
                        ),
                    ));
                    return Some((Err(error), None));
                }
                Err(e) => {
                    let error = cut.upstream.error(&cut.doing, e);
                    return Some((Err(error), None));
                }
            };
            let skipped = usize::try_from(cut.skip)
                .unwrap_or(usize::MAX)
                .min(chunk.len());
            cut.skip -= skipped as u64;
            let chunk_len = chunk.len();
            chunk = chunk.slice(skipped..chunk_len);
            let keep = usize::try_from(cut.remaining)
                .unwrap_or(usize::MAX)
                .min(chunk.len());
            chunk.truncate(keep);
            if chunk.is_empty() {
                continue;
            }
            cut.remaining -= keep as u64;
            return Some((Ok(chunk), Some(cut)));
        }
        None
    }
}

impl BlobStore for S3BlobStore {
    fn create(&self) -> StoreFuture<'_, Box<dyn BlobWriter>> {
        Box::pin(async move {
            let writer: Box<dyn BlobWriter> = Box::new(S3BlobWriter::new(
                Arc::clone(&self.upstream),
                new_blob_id()?,
            ));
            Ok(writer)
        })
    }

    fn read(&self, blob: &BlobId, range: Range<u64>) -> StoreFuture<'_, BlobStream> {
        let id = blob.clone();
        Box::pin(async move {
            if !is_valid_blob_id(&id) {
                return Err(StoreError::NoSuchBlob);
            }
            let (start, end) = (range.start, range.end);
            if start < end {
                return self.get_range(&id, range).await;
            }
            // An empty or backwards range: no bytes to GET, but the blob must
            // exist and the range lie within it.
            let len = self.head_len(&id).await?;
            if start > end || end > len {
                return Err(StoreError::InvalidRange { start, end, len });
            }
            Ok(stream::empty().boxed())
        })
    }

    fn len(&self, blob: &BlobId) -> StoreFuture<'_, u64> {
        let id = blob.clone();
        Box::pin(async move { self.head_len(&id).await })
    }

    fn delete(&self, blob: &BlobId) -> StoreFuture<'_, ()> {
        let id = blob.clone();
        Box::pin(async move {
            if !is_valid_blob_id(&id) {
                return Err(StoreError::NoSuchBlob);
            }
            let upstream = &self.upstream;
            match delete_object(&upstream.client, &upstream.bucket, &upstream.key(&id)).await {
                Ok(()) => Ok(()),
                // Already gone: a retried delete succeeds.
                Err(e) if is_missing_object(&e) => Ok(()),
                Err(e) => Err(upstream.error(&format!("deleting blob {id}"), e)),
            }
        })
    }

    fn list_older_than(&self, before: SystemTime) -> BoxStream<'_, Result<BlobId, StoreError>> {
        let before = OffsetDateTime::from(before);
        // State: the next page's continuation token; `None` once done.
        let pages = stream::unfold(Some(None::<String>), move |token| async move {
            let token = token?;
            let upstream = &self.upstream;
            let request = ListRequest {
                prefix: &upstream.key_prefix,
                // Ids sit directly under the prefix: deeper keys are not blobs.
                delimiter: Some("/"),
                token: token.as_deref(),
                max_keys: upstream.list_page_size,
            };
            let page = match list_objects_v2(&upstream.client, &upstream.bucket, &request).await {
                Ok(page) => page,
                Err(e) => return Some((vec![Err(upstream.error("listing blobs", e))], None)),
            };
            let next = match page.next_token {
                Some(next) if page.truncated => Some(Some(next)),
                _ => None,
            };
            let ids = page
                .objects
                .into_iter()
                .filter_map(|object| {
                    let id = object.key.strip_prefix(&upstream.key_prefix)?;
                    if !is_valid_blob_id(id) {
                        return None;
                    }
                    match OffsetDateTime::parse(&object.last_modified, &Rfc3339) {
                        Ok(modified) if modified < before => Some(Ok(id.to_owned())),
                        Ok(_) => None,
                        Err(_) => Some(Err(upstream.error(
                            &format!("listing blobs: blob {id}"),
                            ClientError::BadResponse(format!(
                                "LastModified {:?} is not an RFC 3339 time",
                                object.last_modified
                            ))
                            .into(),
                        ))),
                    }
                })
                .collect::<Vec<_>>();
            Some((ids, next))
        });
        pages.flat_map(stream::iter).boxed()
    }
}
