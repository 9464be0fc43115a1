//! The response body: empty, a buffer, or a stream of chunks produced by a
//! blocking reader thread (object bodies never sit whole in memory).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::mpsc;

/// A response's body, as hyper sends it.
pub enum ResponseBody {
    /// No bytes (HEAD, 204, most errors' absence of a document).
    Empty,
    /// One buffer, sent as one frame; `None` once sent.
    Full(Option<Bytes>),
    /// Chunks from a reader thread; `first` was received before the
    /// response started (see `object_io::stream_range`).
    Stream {
        /// The first chunk, already authenticated; `None` once sent.
        first: Option<Bytes>,
        /// The rest, as the reader thread opens them; an error ends the body.
        chunks: mpsc::Receiver<std::io::Result<Bytes>>,
        /// Bytes still to come, for the size hint.
        remaining: u64,
    },
}

impl ResponseBody {
    /// A body of exactly `bytes`.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        ResponseBody::Full(Some(bytes.into()))
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match &mut *self {
            ResponseBody::Empty => Poll::Ready(None),
            ResponseBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::Stream {
                first,
                chunks,
                remaining,
            } => match first
                .take()
                .map(Ok)
                .map(Some)
                .map(Poll::Ready)
                .unwrap_or_else(|| chunks.poll_recv(cx))
            {
                Poll::Ready(Some(Ok(bytes))) => {
                    *remaining = remaining.saturating_sub(bytes.len() as u64);
                    Poll::Ready(Some(Ok(Frame::data(bytes))))
                }
                Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
                Poll::Ready(None) if *remaining > 0 => Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "object body ended early",
                )))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Empty => true,
            ResponseBody::Full(bytes) => bytes.is_none(),
            ResponseBody::Stream { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Empty => SizeHint::with_exact(0),
            ResponseBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ResponseBody::Stream { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}
