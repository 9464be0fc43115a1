//! Bucket tags: S3 `?tagging` (PutBucketTagging, GetBucketTagging,
//! DeleteBucketTagging) and OSS `?tagging` on a bucket (PutBucketTags,
//! GetBucketTags, DeleteBucketTags). The tag set and its limits are
//! `bucket_config::tags`, shared with object tagging.

use coffer_auth::sigv4::Payload;
use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::{authorized_bucket, empty_response, save_bucket_config, small_body, xml_response};
use crate::body::ResponseBody;
use crate::bucket_config::tags::{BUCKET_TAGGING_KEY, TagSet, TagTarget};
use crate::bucket_config::{has_integrity_header, missing_integrity_header, stored, to_json};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::{ApiRequest, Dialect};
use crate::state::AppState;

/// `PUT /<bucket>?tagging`: replaces the bucket's tags. S3 requires
/// Content-MD5 or a checksum and answers 204; OSS answers 200.
pub async fn put(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    if req.dialect == Dialect::S3 && !has_integrity_header(&req.headers) {
        return Err(missing_integrity_header());
    }
    let body = small_body(req, body, payload).await?;
    let tags = TagSet::parse_xml(&body, TagTarget::Bucket)?;
    save_bucket_config(state, bucket, BUCKET_TAGGING_KEY, to_json(&tags)?).await?;
    empty_response(match req.dialect {
        Dialect::S3 => StatusCode::NO_CONTENT,
        Dialect::Oss => StatusCode::OK,
    })
}

/// `GET /<bucket>?tagging`. A bucket without tags is `NoSuchTagSet` in S3;
/// OSS answers an empty tag set.
pub async fn get(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let tags = match (stored::<TagSet>(&bucket, BUCKET_TAGGING_KEY)?, req.dialect) {
        (Some(tags), _) => tags,
        (None, Dialect::Oss) => TagSet::default(),
        (None, Dialect::S3) => {
            return Err(ApiError::new(
                ErrorCode::NoSuchTagSet,
                "The TagSet does not exist",
            ));
        }
    };
    let mut w = req.xml("Tagging");
    tags.write_xml(&mut w);
    xml_response(StatusCode::OK, w.finish())
}

/// `DELETE /<bucket>?tagging`: removes every tag, or, with OSS's
/// `?tagging=k1,k2`, only those keys.
pub async fn delete(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let only: Vec<&str> = match req.dialect {
        Dialect::Oss => req
            .param("tagging")
            .map(|keys| keys.split(',').filter(|k| !k.is_empty()).collect())
            .unwrap_or_default(),
        Dialect::S3 => Vec::new(),
    };
    let current = stored::<TagSet>(&bucket, BUCKET_TAGGING_KEY)?;
    match current {
        None => {}
        Some(mut tags) if !only.is_empty() => {
            tags.tags.retain(|(k, _)| !only.contains(&k.as_str()));
            save_bucket_config(state, bucket, BUCKET_TAGGING_KEY, to_json(&tags)?).await?;
        }
        Some(_) => {
            state
                .meta
                .set_bucket_config(&bucket.name, BUCKET_TAGGING_KEY, None)
                .await?;
        }
    }
    empty_response(StatusCode::NO_CONTENT)
}
