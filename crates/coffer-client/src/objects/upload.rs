//! Uploads: a source (a file, or a stream of unknown length such as stdin) in one PUT, or
//! as a multipart upload with parts sent in parallel, each chunk passed through a
//! [`BodyTransform`] first; memory stays bounded by `(concurrency + 2) × part_size`.

use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinSet;

use super::{
    BodyTransform, MAX_PARTS, NewObject, TransferError, abort_multipart_upload,
    complete_multipart_upload, create_multipart_upload, put_object, upload_part,
};
use crate::transport::SignedClient;

/// How an upload is cut up and sent.
#[derive(Debug, Clone)]
pub struct UploadPlan {
    /// Bytes of source per part; sources no larger go in a single PUT.
    pub part_size: usize,
    /// Parts in flight at once.
    pub concurrency: usize,
}

/// Uploads `source` to `bucket/key`, through `transform`: exactly `size` bytes when the size
/// is known (a file), else everything up to the end of the stream (stdin). Sources larger
/// than one part go as a multipart upload with parts sent in parallel (transformed in order,
/// as a stream cipher needs); any failure aborts the upload so no partial object appears.
/// `progress` is told each number of source bytes sent. Returns the ETag.
#[allow(clippy::too_many_arguments)]
pub async fn upload<R: AsyncRead + Unpin>(
    client: &Arc<SignedClient>,
    bucket: &str,
    key: &str,
    source: R,
    size: Option<u64>,
    object: &NewObject,
    plan: &UploadPlan,
    transform: &mut dyn BodyTransform,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<String, TransferError> {
    let part_size = plan.part_size.max(1);
    if let Some(size) = size {
        let parts = size.div_ceil(part_size as u64);
        if parts > MAX_PARTS {
            return Err(too_many_parts(&format!("{size} bytes"), part_size));
        }
    }
    let mut parts = PartReader::new(source, part_size, size);
    let (mut first, last) = parts.next().await?;
    if last {
        let len = first.len() as u64;
        transform
            .apply(&mut first, true)
            .map_err(TransferError::Transform)?;
        let etag = put_object(client, bucket, key, Bytes::from(first), object).await?;
        progress(len);
        return Ok(etag);
    }
    let upload_id = create_multipart_upload(client, bucket, key, object).await?;
    let sent = upload_parts(
        client, bucket, key, &upload_id, first, parts, plan, transform, progress,
    )
    .await;
    match sent {
        Ok(parts) => complete_multipart_upload(client, bucket, key, &upload_id, &parts).await,
        Err(error) => {
            // Best effort: the error that stopped the upload is what matters.
            let _ = abort_multipart_upload(client, bucket, key, &upload_id).await;
            Err(error)
        }
    }
}

fn too_many_parts(what: &str, part_size: usize) -> TransferError {
    TransferError::Transform(format!(
        "{what} in parts of {part_size} bytes would take more than {MAX_PARTS} parts (S3's \
         limit): use a larger --part-size"
    ))
}

/// `first` is the upload's first part, already read (it told the upload it is not the last).
#[allow(clippy::too_many_arguments)]
async fn upload_parts<R: AsyncRead + Unpin>(
    client: &Arc<SignedClient>,
    bucket: &str,
    key: &str,
    upload_id: &str,
    first: Vec<u8>,
    mut parts: PartReader<R>,
    plan: &UploadPlan,
    transform: &mut dyn BodyTransform,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<(u32, String)>, TransferError> {
    let mut in_flight: JoinSet<Result<(u32, String, u64), TransferError>> = JoinSet::new();
    let mut done = Vec::new();
    let mut first = Some(first);
    let mut number = 0u32;
    loop {
        while in_flight.len() >= plan.concurrency.max(1) {
            let (n, etag, len) = joined(in_flight.join_next().await)?;
            progress(len);
            done.push((n, etag));
        }
        let (mut body, last) = match first.take() {
            Some(body) => (body, false),
            None => parts.next().await?,
        };
        number += 1;
        if u64::from(number) > MAX_PARTS {
            return Err(too_many_parts("the stream", plan.part_size));
        }
        let len = body.len() as u64;
        transform
            .apply(&mut body, last)
            .map_err(TransferError::Transform)?;
        let (client, bucket, key, upload_id) = (
            Arc::clone(client),
            bucket.to_owned(),
            key.to_owned(),
            upload_id.to_owned(),
        );
        in_flight.spawn(async move {
            let etag = upload_part(
                &client,
                &bucket,
                &key,
                &upload_id,
                number,
                Bytes::from(body),
            )
            .await?;
            Ok((number, etag, len))
        });
        if last {
            break;
        }
    }
    while let Some(next) = in_flight.join_next().await {
        let (n, etag, len) = joined(Some(next))?;
        progress(len);
        done.push((n, etag));
    }
    done.sort_by_key(|(n, _)| *n);
    Ok(done)
}

type PartOutcome = Result<(u32, String, u64), TransferError>;

fn joined(next: Option<Result<PartOutcome, tokio::task::JoinError>>) -> PartOutcome {
    match next {
        Some(Ok(outcome)) => outcome,
        Some(Err(e)) => Err(TransferError::Transform(format!(
            "a part upload failed: {e}"
        ))),
        None => Err(TransferError::Transform("no part upload in flight".into())),
    }
}

/// An upload's source cut into parts, each marked whether it is the last (an encryptor
/// appends its tag there). A source of known size yields exactly that many bytes; a stream
/// is read to its end, one part ahead, so that the last part is known before it is sent.
struct PartReader<R> {
    source: R,
    part_size: usize,
    /// Bytes still to read from a source of known size; `None` for a stream.
    remaining: Option<u64>,
    /// A stream's next part, read to learn whether the current one is the last.
    ahead: Option<Vec<u8>>,
}

impl<R: AsyncRead + Unpin> PartReader<R> {
    fn new(source: R, part_size: usize, size: Option<u64>) -> Self {
        Self {
            source,
            part_size,
            remaining: size,
            ahead: None,
        }
    }

    /// The next part and whether it is the last; not called again after the last.
    async fn next(&mut self) -> Result<(Vec<u8>, bool), TransferError> {
        if let Some(remaining) = self.remaining.as_mut() {
            let len = (*remaining).min(self.part_size as u64);
            *remaining -= len;
            let last = *remaining == 0;
            return Ok((read_chunk(&mut self.source, len as usize).await?, last));
        }
        let current = match self.ahead.take() {
            Some(part) => part,
            None => read_up_to(&mut self.source, self.part_size).await?,
        };
        if current.len() < self.part_size {
            return Ok((current, true));
        }
        let next = read_up_to(&mut self.source, self.part_size).await?;
        if next.is_empty() {
            return Ok((current, true));
        }
        self.ahead = Some(next);
        Ok((current, false))
    }
}

async fn read_chunk<R: AsyncRead + Unpin>(
    source: &mut R,
    len: usize,
) -> Result<Vec<u8>, TransferError> {
    let mut chunk = vec![0; len];
    source.read_exact(&mut chunk).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            std::io::Error::new(e.kind(), "the source shrank while it was being uploaded")
        } else {
            e
        }
    })?;
    Ok(chunk)
}

/// Up to `len` bytes of a stream: fewer only at its end (a pipe hands over what it has, so
/// one read is not enough).
async fn read_up_to<R: AsyncRead + Unpin>(
    source: &mut R,
    len: usize,
) -> Result<Vec<u8>, TransferError> {
    let mut chunk = Vec::with_capacity(len);
    while chunk.len() < len {
        let want = (len - chunk.len()) as u64;
        if (&mut *source).take(want).read_to_end(&mut chunk).await? == 0 {
            break;
        }
    }
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streams_are_cut_into_parts_and_the_last_is_known() {
        async fn cut(data: &[u8], size: Option<u64>) -> Vec<(usize, bool)> {
            let mut parts = PartReader::new(data, 4, size);
            let mut out = Vec::new();
            loop {
                let (part, last) = parts.next().await.expect("reads");
                out.push((part.len(), last));
                if last {
                    return out;
                }
            }
        }
        for size in [None, Some(8)] {
            assert_eq!(cut(b"abcdefgh", size).await, [(4, false), (4, true)]);
        }
        assert_eq!(
            cut(b"abcdefghi", None).await,
            [(4, false), (4, false), (1, true)]
        );
        assert_eq!(cut(b"", None).await, [(0, true)]);
        assert_eq!(cut(b"", Some(0)).await, [(0, true)]);
        assert_eq!(cut(b"abc", None).await, [(3, true)]);
    }
}
