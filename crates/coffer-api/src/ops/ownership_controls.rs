//! S3 object ownership (`?ownershipControls`: Put/Get/DeleteBucketOwnershipControls): who owns
//! the objects written to a bucket and whether ACLs count there (`authz::acl::ObjectOwnership`).

use coffer_auth::sigv4::Payload;
use http::{Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;

use super::{authorized_bucket, empty_response, save_bucket_config, small_body, xml_response};
use crate::authz::acl::{OWNERSHIP_CONFIG_KEY, ObjectOwnership, bucket_grants_others};
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::ApiRequest;
use crate::state::AppState;
use crate::xml;

/// `<OwnershipControls>`: exactly one rule.
#[derive(Debug, Deserialize)]
struct OwnershipControlsXml {
    #[serde(rename = "Rule", default)]
    rules: Vec<RuleXml>,
}

#[derive(Debug, Deserialize)]
struct RuleXml {
    #[serde(rename = "ObjectOwnership")]
    object_ownership: String,
}

/// The setting an `OwnershipControls` document names (MalformedXML otherwise, as on S3).
fn parse(body: &[u8]) -> ApiResult<ObjectOwnership> {
    let document: OwnershipControlsXml = xml::parse(body)?;
    match document.rules.as_slice() {
        [rule] => {
            ObjectOwnership::parse(rule.object_ownership.trim()).ok_or_else(ApiError::malformed_xml)
        }
        _ => Err(ApiError::malformed_xml()),
    }
}

/// `PUT /<bucket>?ownershipControls`. Turning ACLs off while the bucket's ACL grants others
/// access is InvalidBucketAclWithObjectOwnership, as on S3; object ACLs simply stop counting.
pub async fn put(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let body = small_body(req, body, payload).await?;
    let ownership = parse(&body)?;
    if !ownership.acls_enabled() && bucket_grants_others(&bucket) {
        return Err(ApiError::new(
            ErrorCode::InvalidBucketAclWithObjectOwnership,
            "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
        ));
    }
    save_bucket_config(
        state,
        bucket,
        OWNERSHIP_CONFIG_KEY,
        ownership.name().to_owned(),
    )
    .await?;
    empty_response(StatusCode::OK)
}

/// `GET /<bucket>?ownershipControls`. A bucket without a setting (one made before Coffer had
/// ACLs, or after a DELETE) answers OwnershipControlsNotFoundError, as on S3, and behaves as
/// BucketOwnerEnforced.
pub async fn get(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let ownership = ObjectOwnership::stored(&bucket).ok_or_else(|| {
        ApiError::new(
            ErrorCode::OwnershipControlsNotFoundError,
            "The bucket ownership controls were not found",
        )
    })?;
    let mut w = req.xml("OwnershipControls");
    w.start("Rule").elem("ObjectOwnership", ownership.name());
    xml_response(StatusCode::OK, w.finish())
}

/// `DELETE /<bucket>?ownershipControls`: the bucket is back to having no setting
/// (BucketOwnerEnforced).
pub async fn delete(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    super::delete_bucket_configs(state, req, &[OWNERSHIP_CONFIG_KEY]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_known_rule_or_malformed() {
        let doc = |rules: &str| {
            format!(
                "<OwnershipControls xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{rules}</OwnershipControls>"
            )
        };
        let rule = |name: &str| format!("<Rule><ObjectOwnership>{name}</ObjectOwnership></Rule>");
        assert_eq!(
            parse(doc(&rule("ObjectWriter")).as_bytes()).expect("valid"),
            ObjectOwnership::ObjectWriter
        );
        for bad in [
            doc(""),
            doc(&rule("Everyone")),
            doc(&(rule("ObjectWriter") + &rule("BucketOwnerEnforced"))),
            "<OwnershipControls><Rule>".to_owned(),
        ] {
            assert_eq!(
                parse(bad.as_bytes()).expect_err("refused").code,
                ErrorCode::MalformedXML,
                "{bad}"
            );
        }
    }
}
