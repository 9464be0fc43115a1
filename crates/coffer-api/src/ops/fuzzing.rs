//! The parsers of client input that live in private modules, reachable for
//! the fuzz targets (`crates/coffer-fuzz`). Not an API: nothing else may
//! depend on it.

use coffer_kms::kms::EncryptionContext;

use crate::error::ApiResult;
use std::future::Future;

pub use super::bucket_policy::validate as validate_bucket_policy;
pub use super::encryption::parse_rule as parse_bucket_encryption;
pub use super::get::{RangeRequest, parse_range};
pub use crate::bucket_config::https_config::HttpsConfig;

/// What a browser form upload's reader and policy make of a body: the
/// fields before the file part, the file part's head, its bytes, and
/// whether the policy field (if any) parsed and its conditions held for the
/// bucket `fuzz` at time 0. The body is read with boundary `fuzz` from an
/// in-memory stream, so every future is ready at once.
pub fn read_post_form(body: &[u8]) -> ApiResult<PostFormReading> {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(post_form_reading(bytes::Bytes::copy_from_slice(body)));
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("an in-memory form body never waits"),
    }
}

/// See [`read_post_form`].
#[derive(Debug)]
pub struct PostFormReading {
    /// The fields before the file part, in order.
    pub fields: Vec<(String, bytes::Bytes)>,
    /// The file part's file name, if the body has a file part.
    pub filename: Option<String>,
    /// The file part's bytes.
    pub content: Vec<u8>,
    /// The policy's verdict: `None` without a `policy` field.
    pub policy: Option<ApiResult<()>>,
}

/// An in-memory body, in 7-byte pieces so delimiters are split.
struct Pieces(bytes::Bytes);

impl crate::object_io::BodyStream for Pieces {
    async fn next_data(&mut self, _idle: std::time::Duration) -> ApiResult<Option<bytes::Bytes>> {
        let take = self.0.len().min(7);
        Ok((take > 0).then(|| self.0.split_to(take)))
    }
}

async fn post_form_reading(body: bytes::Bytes) -> ApiResult<PostFormReading> {
    let mut form =
        crate::form_data::FormData::new(Pieces(body), "fuzz", std::time::Duration::from_secs(1));
    let mut reading = PostFormReading {
        fields: Vec::new(),
        filename: None,
        content: Vec::new(),
        policy: None,
    };
    while let Some(head) = form.next_part().await? {
        if head.filename.is_some() {
            while let Some(chunk) = form.next_chunk().await? {
                reading.content.extend_from_slice(&chunk);
            }
            reading.filename = head.filename;
            break;
        }
        let value = form
            .read_value(64 * 1024, crate::form_data::malformed())
            .await?;
        if head.name == "policy" {
            let text = String::from_utf8_lossy(&value).into_owned();
            reading.policy = Some(
                super::post_object::PostPolicy::parse(&text).and_then(|policy| {
                    policy.check(0, |name| (name == "bucket").then_some("fuzz"))
                }),
            );
        }
        reading.fields.push((head.name, value));
    }
    Ok(reading)
}

/// The `x-amz-server-side-encryption-context` header's parser.
pub fn parse_encryption_context(encoded: &str) -> ApiResult<EncryptionContext> {
    crate::sse::parse_context(encoded)
}
