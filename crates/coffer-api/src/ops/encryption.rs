//! Bucket default encryption: `?encryption` in both dialects.
//!
//! S3 sends `ServerSideEncryptionConfiguration/Rule/ApplyServerSideEncryptionByDefault`,
//! OSS a bare `ServerSideEncryptionRule/ApplyServerSideEncryptionByDefault`;
//! both are kept as one [`BucketDefault`] in the bucket's config and applied
//! to new objects and multipart uploads whose request names no encryption.
//!
//! Without a rule the server's default applies (`--default-sse`, AES256):
//! every object is sealed. `SSEAlgorithm` `none` ([`PLAINTEXT_OPT_OUT`], a
//! Coffer extension) is the one way to store plaintext: the bucket's owner
//! opts out explicitly, GET shows it, and DELETE returns the bucket to the
//! server's default, as DeleteBucketEncryption returns an AWS bucket to
//! SSE-S3.

use coffer_auth::sigv4::Payload;
use http::{Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;

use super::{authorized_bucket, empty_response, save_bucket_config, small_body, xml_response};
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::{ApiRequest, Dialect};
use crate::sse::{BUCKET_CONFIG_KEY, BucketDefault, PLAINTEXT_OPT_OUT};
use crate::state::AppState;
use crate::xml;

#[derive(Debug, Deserialize)]
struct ByDefault {
    #[serde(rename = "SSEAlgorithm")]
    algorithm: String,
    #[serde(rename = "KMSMasterKeyID")]
    kms_key_id: Option<String>,
    #[serde(rename = "KMSDataEncryption")]
    kms_data_encryption: Option<String>,
}

/// OSS: `<ServerSideEncryptionRule>`.
#[derive(Debug, Deserialize)]
struct OssRule {
    #[serde(rename = "ApplyServerSideEncryptionByDefault")]
    by_default: ByDefault,
}

/// S3: `<ServerSideEncryptionConfiguration><Rule>…`.
#[derive(Debug, Deserialize)]
struct S3Configuration {
    #[serde(rename = "Rule", default)]
    rules: Vec<S3Rule>,
}

#[derive(Debug, Deserialize)]
struct S3Rule {
    #[serde(rename = "ApplyServerSideEncryptionByDefault")]
    by_default: ByDefault,
    #[serde(rename = "BucketKeyEnabled", default)]
    bucket_key_enabled: bool,
}

/// InvalidArgument with the EC that OSS documents for it.
fn invalid(ec: &'static str, message: &str) -> ApiError {
    ApiError::invalid_argument(message.to_owned()).with_ec(ec)
}

/// Checks a rule and brings it to the neutral form (`AES256`, `SM4`, `KMS`).
fn normalise(
    dialect: Dialect,
    rule: ByDefault,
    bucket_key_enabled: bool,
) -> ApiResult<BucketDefault> {
    let algorithm = match rule.algorithm.trim() {
        "AES256" => "AES256",
        "SM4" => "SM4",
        "KMS" | "aws:kms" | "aws:kms:dsse" => "KMS",
        PLAINTEXT_OPT_OUT => PLAINTEXT_OPT_OUT,
        // S3 checks the value against its schema's enumeration.
        _ if dialect == Dialect::S3 => return Err(ApiError::malformed_xml()),
        _ => {
            return Err(invalid(
                "0005-00000003",
                "SSEAlgorithm must be AES256, SM4, KMS (aws:kms) or none.",
            ));
        }
    };
    let kms_key_id = rule.kms_key_id.filter(|k| !k.trim().is_empty());
    if kms_key_id.is_some() && algorithm != "KMS" {
        return Err(invalid(
            "0005-00000204",
            "KMSMasterKeyID is allowed only when SSEAlgorithm is KMS.",
        ));
    }
    let kms_data_encryption = rule.kms_data_encryption.filter(|d| !d.trim().is_empty());
    if kms_data_encryption
        .as_deref()
        .is_some_and(|d| d != "SM4" || algorithm != "KMS")
    {
        return Err(invalid(
            "0005-00000203",
            "KMSDataEncryption may only be SM4, and only when SSEAlgorithm is KMS.",
        ));
    }
    Ok(BucketDefault {
        algorithm: algorithm.to_owned(),
        kms_key_id,
        kms_data_encryption,
        // A bucket key has nothing to wrap without encryption.
        bucket_key_enabled: bucket_key_enabled && algorithm != PLAINTEXT_OPT_OUT,
    })
}

/// Parses a `PUT ?encryption` body of either dialect into the neutral form.
pub fn parse_rule(dialect: Dialect, body: &[u8]) -> ApiResult<BucketDefault> {
    match dialect {
        Dialect::Oss => {
            let rule: OssRule = xml::parse(body)?;
            normalise(dialect, rule.by_default, false)
        }
        Dialect::S3 => {
            let config: S3Configuration = xml::parse(body)?;
            let mut rules = config.rules.into_iter();
            let (Some(rule), None) = (rules.next(), rules.next()) else {
                return Err(ApiError::malformed_xml());
            };
            normalise(dialect, rule.by_default, rule.bucket_key_enabled)
        }
    }
}

pub async fn put(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let body = small_body(req, body, payload).await?;
    let rule = parse_rule(req.dialect, &body)?;
    let json = serde_json::to_string(&rule).map_err(|e| ApiError::internal("JSON", e))?;
    save_bucket_config(state, bucket, BUCKET_CONFIG_KEY, json).await?;
    empty_response(StatusCode::OK)
}

pub async fn get(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    // A bucket without a rule is sealed under the server's default; S3 says
    // so, as AWS has answered since default encryption (2023). OSS answers
    // that there is no rule.
    let rule = match (BucketDefault::of(&bucket), req.dialect) {
        (Some(rule), _) => rule,
        (None, Dialect::S3) => BucketDefault::server_default(&state.settings.default_protection),
        (None, Dialect::Oss) => {
            return Err(ApiError::new(
                ErrorCode::NoSuchServerSideEncryptionRule,
                "The server side encryption rule does not exist.",
            ));
        }
    };
    let mut w = match req.dialect {
        Dialect::S3 => {
            let mut w = req.xml("ServerSideEncryptionConfiguration");
            w.start("Rule");
            w
        }
        Dialect::Oss => req.xml("ServerSideEncryptionRule"),
    };
    let algorithm = match (req.dialect, rule.algorithm.as_str()) {
        (Dialect::S3, "KMS") => "aws:kms",
        (_, other) => other,
    };
    // oss2 requires ApplyServerSideEncryptionByDefault even when empty.
    w.start("ApplyServerSideEncryptionByDefault")
        .elem("SSEAlgorithm", algorithm)
        .elem_opt("KMSMasterKeyID", rule.kms_key_id.as_deref());
    if req.dialect == Dialect::Oss {
        w.elem_opt("KMSDataEncryption", rule.kms_data_encryption.as_deref());
    }
    w.end();
    if req.dialect == Dialect::S3 {
        w.elem("BucketKeyEnabled", rule.bucket_key_enabled.to_string());
    }
    xml_response(StatusCode::OK, w.finish())
}

pub async fn delete(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    super::delete_bucket_configs(state, req, &[BUCKET_CONFIG_KEY]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_dialects() {
        let oss = br#"<ServerSideEncryptionRule><ApplyServerSideEncryptionByDefault><KMSMasterKeyID>key-1</KMSMasterKeyID><KMSDataEncryption>SM4</KMSDataEncryption><SSEAlgorithm>KMS</SSEAlgorithm></ApplyServerSideEncryptionByDefault></ServerSideEncryptionRule>"#;
        let rule: OssRule = xml::parse(oss).expect("valid");
        let rule = normalise(Dialect::Oss, rule.by_default, false).expect("valid rule");
        assert_eq!(rule.algorithm, "KMS");
        assert_eq!(rule.kms_key_id.as_deref(), Some("key-1"));
        let s3 = br#"<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>"#;
        let config: S3Configuration = xml::parse(s3).expect("valid");
        assert_eq!(config.rules.len(), 1);
        assert!(config.rules[0].bucket_key_enabled);
    }

    #[test]
    fn refuses_inconsistent_rules() {
        let rule = |algorithm: &str, key: Option<&str>, data: Option<&str>| ByDefault {
            algorithm: algorithm.into(),
            kms_key_id: key.map(Into::into),
            kms_data_encryption: data.map(Into::into),
        };
        assert!(normalise(Dialect::Oss, rule("DES", None, None), false).is_err());
        assert!(normalise(Dialect::Oss, rule("AES256", Some("k"), None), false).is_err());
        assert!(normalise(Dialect::Oss, rule("KMS", None, Some("AES")), false).is_err());
        assert!(normalise(Dialect::Oss, rule("SM4", None, None), false).is_ok());
        assert!(normalise(Dialect::S3, rule("none", Some("k"), None), false).is_err());
        assert!(normalise(Dialect::S3, rule("NONE", None, None), false).is_err());
    }

    #[test]
    fn plaintext_is_an_explicit_rule() {
        let rule = ByDefault {
            algorithm: "none".into(),
            kms_key_id: None,
            kms_data_encryption: None,
        };
        let rule = normalise(Dialect::S3, rule, true).expect("the opt-out is a rule");
        assert!(rule.is_plaintext_opt_out());
        assert!(!rule.bucket_key_enabled);
    }
}
