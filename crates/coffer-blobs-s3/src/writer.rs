//! A blob on its way upstream: buffered into parts of the configured size,
//! one PUT at `finish` when it stayed under one part, else a multipart upload
//! that `finish` completes. Nothing is visible upstream before `finish`: a PUT
//! is only sent there, and an uncompleted multipart upload is no object.

use std::io::ErrorKind;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use coffer_client::objects::{
    MAX_PARTS, NewObject, abort_multipart_upload, complete_multipart_upload,
    create_multipart_upload, put_object, upload_part,
};
use coffer_store::{BlobId, BlobWriter, StoreError, StoreFuture};
use tokio::task::JoinSet;

use crate::upstream::Upstream;

/// Parts uploading at once per blob, while the next one fills: enough to keep
/// the link busy while the body arrives, and memory per blob at three parts.
const PARTS_IN_FLIGHT: usize = 2;

type PartResult = Result<(u32, String), StoreError>;

pub(crate) struct S3BlobWriter {
    upstream: Arc<Upstream>,
    id: BlobId,
    key: String,
    /// Bytes not yet sent: less than one part between calls.
    buffer: BytesMut,
    /// Set once the blob outgrew one part.
    multipart: Option<Multipart>,
    /// A write failed or its future was dropped mid-way: every call now fails.
    broken: bool,
    /// `finish` succeeded: the blob is upstream, nothing to abort on drop.
    completed: bool,
}

struct Multipart {
    upload_id: String,
    next_part: u32,
    /// `(part number, ETag)` of the parts uploaded so far.
    sent: Vec<(u32, String)>,
    in_flight: JoinSet<PartResult>,
}

impl S3BlobWriter {
    pub(crate) fn new(upstream: Arc<Upstream>, id: BlobId) -> Self {
        let key = upstream.key(&id);
        let buffer = BytesMut::with_capacity(upstream.part_size);
        S3BlobWriter {
            upstream,
            id,
            key,
            buffer,
            multipart: None,
            broken: false,
            completed: false,
        }
    }

    /// Sends one part: starts the multipart upload first if this is the first
    /// part, waits for a slot if [`PARTS_IN_FLIGHT`] are already going.
    async fn send_part(&mut self, part: Bytes) -> Result<(), StoreError> {
        let upstream = &self.upstream;
        let multipart = match &mut self.multipart {
            Some(multipart) => multipart,
            None => {
                let upload_id = create_multipart_upload(
                    &upstream.client,
                    &upstream.bucket,
                    &self.key,
                    &NewObject::default(),
                )
                .await
                .map_err(|e| upstream.error(&format!("starting upload of blob {}", self.id), e))?;
                self.multipart.insert(Multipart {
                    upload_id,
                    next_part: 1,
                    sent: Vec::new(),
                    in_flight: JoinSet::new(),
                })
            }
        };
        while multipart.in_flight.len() >= PARTS_IN_FLIGHT {
            let done = joined(multipart.in_flight.join_next().await)?;
            multipart.sent.push(done);
        }
        let number = multipart.next_part;
        if u64::from(number) > MAX_PARTS {
            return Err(StoreError::Io(std::io::Error::other(format!(
                "blob {} outgrew the upstream's {MAX_PARTS} parts of {} bytes",
                self.id, upstream.part_size
            ))));
        }
        multipart.next_part += 1;
        let (upstream, key, upload_id, id) = (
            Arc::clone(upstream),
            self.key.clone(),
            multipart.upload_id.clone(),
            self.id.clone(),
        );
        multipart.in_flight.spawn(async move {
            let etag = upload_part(
                &upstream.client,
                &upstream.bucket,
                &key,
                &upload_id,
                number,
                part,
            )
            .await
            .map_err(|e| upstream.error(&format!("uploading part {number} of blob {id}"), e))?;
            Ok((number, etag))
        });
        Ok(())
    }

    /// Fills the buffer up to one part at a time, so that each part is one
    /// allocation of exactly the part size, sent as soon as it is full.
    async fn append(&mut self, mut data: Bytes) -> Result<(), StoreError> {
        let part_size = self.upstream.part_size;
        while !data.is_empty() {
            let take = (part_size - self.buffer.len()).min(data.len());
            self.buffer.extend_from_slice(&data.split_to(take));
            if self.buffer.len() == part_size {
                let next = BytesMut::with_capacity(part_size);
                let part = std::mem::replace(&mut self.buffer, next).freeze();
                self.send_part(part).await?;
            }
        }
        Ok(())
    }

    async fn complete(&mut self) -> Result<(), StoreError> {
        let upstream = Arc::clone(&self.upstream);
        if self.multipart.is_none() {
            let body = std::mem::take(&mut self.buffer).freeze();
            put_object(
                &upstream.client,
                &upstream.bucket,
                &self.key,
                body,
                &NewObject::default(),
            )
            .await
            .map_err(|e| upstream.error(&format!("storing blob {}", self.id), e))?;
            return Ok(());
        }
        if !self.buffer.is_empty() {
            let last = std::mem::take(&mut self.buffer).freeze();
            self.send_part(last).await?;
        }
        let multipart = self
            .multipart
            .as_mut()
            .expect("a multipart upload was started above or before");
        while let Some(next) = multipart.in_flight.join_next().await {
            let done = joined(Some(next))?;
            multipart.sent.push(done);
        }
        multipart.sent.sort_unstable_by_key(|(number, _)| *number);
        complete_multipart_upload(
            &upstream.client,
            &upstream.bucket,
            &self.key,
            &multipart.upload_id,
            &multipart.sent,
        )
        .await
        .map_err(|e| upstream.error(&format!("completing upload of blob {}", self.id), e))?;
        Ok(())
    }
}

fn joined(next: Option<Result<PartResult, tokio::task::JoinError>>) -> PartResult {
    match next {
        Some(Ok(outcome)) => outcome,
        Some(Err(e)) => Err(StoreError::Io(std::io::Error::other(format!(
            "a part upload stopped: {e}"
        )))),
        None => Err(StoreError::Io(std::io::Error::other(
            "no part upload in flight",
        ))),
    }
}

fn unusable() -> StoreError {
    StoreError::Io(std::io::Error::new(
        ErrorKind::BrokenPipe,
        "blob writer unusable after a failed or abandoned write",
    ))
}

impl BlobWriter for S3BlobWriter {
    fn id(&self) -> &BlobId {
        &self.id
    }

    fn write(&mut self, data: Bytes) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if self.broken {
                return Err(unusable());
            }
            // Stays set if this future is dropped half-way.
            self.broken = true;
            self.append(data).await?;
            self.broken = false;
            Ok(())
        })
    }

    fn finish(mut self: Box<Self>) -> StoreFuture<'static, BlobId> {
        Box::pin(async move {
            if self.broken {
                return Err(unusable());
            }
            self.broken = true;
            self.complete().await?;
            self.completed = true;
            Ok(std::mem::take(&mut self.id))
        })
    }
}

/// An unfinished multipart upload is aborted, best effort: the parts in flight
/// are cancelled and the abort is sent from a task of the current runtime (none
/// outside one). Whatever survives (an abort lost with the process) is never an
/// object: the pending row's sweeper, or the upstream's own rule for stale
/// uploads, removes it.
impl Drop for S3BlobWriter {
    fn drop(&mut self) {
        if self.completed {
            return;
        }
        let Some(mut multipart) = self.multipart.take() else {
            return;
        };
        multipart.in_flight.abort_all();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (upstream, key) = (Arc::clone(&self.upstream), std::mem::take(&mut self.key));
        runtime.spawn(async move {
            // Let the cancelled parts end first, so that none lands after the abort.
            while multipart.in_flight.join_next().await.is_some() {}
            let _ = abort_multipart_upload(
                &upstream.client,
                &upstream.bucket,
                &key,
                &multipart.upload_id,
            )
            .await;
        });
    }
}
