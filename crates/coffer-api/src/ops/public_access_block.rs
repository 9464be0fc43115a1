//! S3 `?publicAccessBlock` (Get/Put/DeletePublicAccessBlock on a bucket): the four switches
//! of `authz::public_access_block`, as `PublicAccessBlockConfiguration` XML.

use coffer_auth::sigv4::Payload;
use http::{Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;

use super::{authorized_bucket, empty_response, save_bucket_config, small_body, xml_response};
use crate::authz::public_access_block::{CONFIG_KEY, PublicAccessBlock};
use crate::body::ResponseBody;
use crate::bucket_config::to_json;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::ApiRequest;
use crate::state::AppState;
use crate::xml;

/// The request body; a switch left out is off (as AWS reads it).
#[derive(Debug, Deserialize)]
struct PublicAccessBlockXml {
    #[serde(rename = "BlockPublicAcls", default)]
    block_public_acls: bool,
    #[serde(rename = "IgnorePublicAcls", default)]
    ignore_public_acls: bool,
    #[serde(rename = "BlockPublicPolicy", default)]
    block_public_policy: bool,
    #[serde(rename = "RestrictPublicBuckets", default)]
    restrict_public_buckets: bool,
}

/// Reads a PutPublicAccessBlock body (`MalformedXML` when it is not one).
pub fn parse(body: &[u8]) -> ApiResult<PublicAccessBlock> {
    let doc: PublicAccessBlockXml = xml::parse(body)?;
    Ok(PublicAccessBlock {
        block_public_acls: doc.block_public_acls,
        ignore_public_acls: doc.ignore_public_acls,
        block_public_policy: doc.block_public_policy,
        restrict_public_buckets: doc.restrict_public_buckets,
    })
}

/// `PUT /<bucket>?publicAccessBlock`.
pub async fn put(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let body = small_body(req, body, payload).await?;
    let block = parse(&body)?;
    save_bucket_config(state, bucket, CONFIG_KEY, to_json(&block)?).await?;
    empty_response(StatusCode::OK)
}

/// `GET /<bucket>?publicAccessBlock`: `NoSuchPublicAccessBlockConfiguration` for a bucket
/// that never had one.
pub async fn get(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    if !bucket.config.contains_key(CONFIG_KEY) {
        return Err(ApiError::new(
            ErrorCode::NoSuchPublicAccessBlockConfiguration,
            "The public access block configuration was not found",
        ));
    }
    let block = PublicAccessBlock::of(&bucket);
    let mut w = req.xml("PublicAccessBlockConfiguration");
    w.elem("BlockPublicAcls", block.block_public_acls.to_string())
        .elem("IgnorePublicAcls", block.ignore_public_acls.to_string())
        .elem("BlockPublicPolicy", block.block_public_policy.to_string())
        .elem(
            "RestrictPublicBuckets",
            block.restrict_public_buckets.to_string(),
        );
    xml_response(StatusCode::OK, w.finish())
}

/// `DELETE /<bucket>?publicAccessBlock`.
pub async fn delete(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    super::delete_bucket_configs(state, req, &[CONFIG_KEY]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_sdks_document() {
        let body = br#"<PublicAccessBlockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>false</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy></PublicAccessBlockConfiguration>"#;
        let block = parse(body).expect("valid");
        assert!(block.block_public_acls && block.block_public_policy);
        assert!(!block.ignore_public_acls && !block.restrict_public_buckets);
        assert!(parse(b"<Nope>").is_err());
        assert!(parse(b"<PublicAccessBlockConfiguration><BlockPublicAcls>maybe</BlockPublicAcls></PublicAccessBlockConfiguration>").is_err());
    }
}
