//! Per-bucket TLS policy, in both dialects, enforced after routing against
//! the version the request's connection negotiated:
//!
//! * OSS `?httpsConfig` (PUT/GET): `HttpsConfiguration/TLS/{Enable,TLSVersion*}`.
//!   When enabled, plain HTTP and versions not listed are refused.
//! * S3 `?policy` (PUT/GET/DELETE): the JSON document is stored whole; of it,
//!   only `Deny` statements conditioned on `aws:SecureTransport` (`Bool`) and
//!   `s3:TlsVersion` (`NumericLessThan`) are evaluated, for every principal
//!   and action on the bucket. Everything else is stored, not evaluated.
//!
//! A refusal is `403 AccessDenied` whose message names the rule.

use coffer_auth::sigv4::Payload;
use coffer_store::BucketRecord;
use http::{Response, StatusCode};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{authorized_bucket, empty_response, save_bucket_config, small_body, xml_response};
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::ApiRequest;
use crate::state::AppState;
use crate::tls::TlsInfo;
use crate::xml;

/// Bucket config key of the OSS httpsConfig (JSON of [`HttpsConfig`]).
pub const HTTPS_CONFIG_KEY: &str = "httpsConfig";
/// Bucket config key of the bucket policy (the document as sent).
pub const POLICY_KEY: &str = "policy";
/// AWS's limit on a bucket policy's size.
const POLICY_MAX_BYTES: usize = 20 * 1024;
/// The versions OSS lets a bucket list.
const OSS_VERSIONS: [&str; 4] = ["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"];

// ---------------------------------------------------------------- httpsConfig

#[derive(Debug, Deserialize)]
struct HttpsConfigurationXml {
    #[serde(rename = "TLS")]
    tls: TlsXml,
    #[serde(rename = "CipherSuite")]
    cipher_suite: Option<CipherSuiteXml>,
}

#[derive(Debug, Deserialize)]
struct TlsXml {
    #[serde(rename = "Enable")]
    enable: bool,
    #[serde(rename = "TLSVersion", default)]
    versions: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct CipherSuiteXml {
    #[serde(rename = "Enable")]
    enable: Option<bool>,
    #[serde(rename = "StrongCipherSuite")]
    strong: Option<bool>,
    #[serde(rename = "CustomCipherSuite", default)]
    custom: Vec<String>,
    #[serde(rename = "TLS13CustomCipherSuite", default)]
    tls13_custom: Vec<String>,
}

/// A bucket's httpsConfig as stored. The cipher-suite part is kept and
/// returned, not enforced (the listener's own allow-list governs suites).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpsConfig {
    /// Whether the bucket refuses requests over other TLS versions (and plain HTTP).
    pub enable: bool,
    /// The TLS versions allowed, as OSS names them (`TLSv1.2`, `TLSv1.3`).
    pub versions: Vec<String>,
    /// The `CipherSuite` part, as the client sent it.
    #[serde(default)]
    pub cipher_suite: Option<StoredCipherSuite>,
}

/// The `CipherSuite` part of an httpsConfig, kept to be returned by a GET.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCipherSuite {
    /// `Enable`.
    pub enable: Option<bool>,
    /// `StrongCipherSuite`.
    pub strong: Option<bool>,
    /// `CustomCipherSuite` entries (TLS 1.2 and below).
    pub custom: Vec<String>,
    /// `TLS13CustomCipherSuite` entries.
    pub tls13_custom: Vec<String>,
}

impl HttpsConfig {
    fn of(bucket: &BucketRecord) -> Option<Self> {
        let json = bucket.config.get(HTTPS_CONFIG_KEY)?;
        match serde_json::from_str(json) {
            Ok(config) => Some(config),
            Err(error) => {
                // Written by this module only; unreadable means damaged.
                // Fail closed: require TLS 1.3 rather than nothing.
                tracing::error!(%error, bucket = %bucket.name, "stored httpsConfig unreadable");
                Some(HttpsConfig {
                    enable: true,
                    versions: vec!["TLSv1.3".into()],
                    cipher_suite: None,
                })
            }
        }
    }

    /// Reads a PutBucketHttpsConfig body: `InvalidArgument` for a TLS version OSS does not
    /// name, or for `Enable` without TLSv1.2 or TLSv1.3 among the versions.
    pub fn parse(body: &[u8]) -> ApiResult<Self> {
        let doc: HttpsConfigurationXml = xml::parse(body)?;
        let mut versions = Vec::new();
        for version in doc.tls.versions {
            let version = version.trim().to_owned();
            if !OSS_VERSIONS.contains(&version.as_str()) {
                return Err(ApiError::invalid_argument(format!(
                    "TLSVersion {version:?} is not one of {}.",
                    OSS_VERSIONS.join(", ")
                )));
            }
            if !versions.contains(&version) {
                versions.push(version);
            }
        }
        if doc.tls.enable && !versions.iter().any(|v| v == "TLSv1.2" || v == "TLSv1.3") {
            return Err(ApiError::invalid_argument(
                "With TLS Enable=true, TLSVersion must list TLSv1.2 or TLSv1.3: Coffer speaks TLS 1.2 and 1.3 only (TLS 1.0 and 1.1 are not supported).",
            ));
        }
        Ok(HttpsConfig {
            enable: doc.tls.enable,
            versions,
            cipher_suite: doc.cipher_suite.map(|c| StoredCipherSuite {
                enable: c.enable,
                strong: c.strong,
                custom: c.custom,
                tls13_custom: c.tls13_custom,
            }),
        })
    }

    /// The refusal for a request on `tls`, if this config refuses it.
    fn refusal(&self, tls: Option<&TlsInfo>) -> Option<String> {
        if !self.enable {
            return None;
        }
        let allowed = self.versions.join(", ");
        match tls {
            None => Some(format!(
                "Access denied by the bucket's httpsConfig (TLS Enable=true, TLSVersion {allowed}): this request came over plain HTTP; use HTTPS."
            )),
            Some(tls) if !self.versions.iter().any(|v| v == tls.version.name()) => Some(format!(
                "Access denied by the bucket's httpsConfig (TLS Enable=true, TLSVersion {allowed}): this connection negotiated {}.",
                tls.version.name()
            )),
            Some(_) => None,
        }
    }
}

/// `PUT /<bucket>?httpsConfig`.
pub async fn put_https_config(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let body = small_body(req, body, payload).await?;
    let config = HttpsConfig::parse(&body)?;
    let json = serde_json::to_string(&config).map_err(|e| ApiError::internal("JSON", e))?;
    save_bucket_config(state, bucket, HTTPS_CONFIG_KEY, json).await?;
    empty_response(StatusCode::OK)
}

/// `GET /<bucket>?httpsConfig`. A bucket that never had one answers
/// `Enable=false` (no TLS requirement) rather than an error: OSS documents
/// no error code for it and that is what the bucket's behaviour is.
pub async fn get_https_config(
    state: &AppState,
    req: &ApiRequest,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let config = HttpsConfig::of(&bucket).unwrap_or(HttpsConfig {
        enable: false,
        versions: Vec::new(),
        cipher_suite: None,
    });
    let mut w = req.xml("HttpsConfiguration");
    w.start("TLS").elem("Enable", config.enable.to_string());
    for version in &config.versions {
        w.elem("TLSVersion", version);
    }
    w.end();
    if let Some(suite) = &config.cipher_suite {
        w.start("CipherSuite");
        w.elem_opt("Enable", suite.enable.map(|b| b.to_string()));
        w.elem_opt("StrongCipherSuite", suite.strong.map(|b| b.to_string()));
        for name in &suite.custom {
            w.elem("CustomCipherSuite", name);
        }
        for name in &suite.tls13_custom {
            w.elem("TLS13CustomCipherSuite", name);
        }
        w.end();
    }
    xml_response(StatusCode::OK, w.finish())
}

// ---------------------------------------------------------------- bucket policy

/// The TLS rules Coffer evaluates in a bucket policy.
#[derive(Debug, Clone, PartialEq)]
enum Condition {
    /// `Bool: {"aws:SecureTransport": …}`: matches when the request's
    /// transport security is one of these values.
    SecureTransport(Vec<bool>),
    /// `NumericLessThan: {"s3:TlsVersion": …}`: matches a TLS request whose
    /// version is below any of these. Absent over plain HTTP, so it does
    /// not match there (as in AWS).
    TlsVersionBelow(Vec<f64>),
}

impl Condition {
    fn matches(&self, tls: Option<&TlsInfo>) -> bool {
        match self {
            Condition::SecureTransport(values) => values.contains(&tls.is_some()),
            Condition::TlsVersionBelow(limits) => {
                tls.is_some_and(|t| limits.iter().any(|limit| t.version.number() < *limit))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Condition::SecureTransport(values) => format!(
                "aws:SecureTransport is {}",
                values
                    .iter()
                    .map(bool::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            Condition::TlsVersionBelow(limits) => format!(
                "s3:TlsVersion is less than {}",
                limits
                    .iter()
                    .map(f64::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        }
    }
}

/// A `Deny` statement made only of conditions Coffer evaluates.
#[derive(Debug, Clone, PartialEq)]
struct TlsDeny {
    name: String,
    conditions: Vec<Condition>,
}

/// A condition value: a scalar or a list of scalars, as strings.
fn condition_values(value: &Value) -> Vec<String> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) => items.iter().filter_map(scalar).collect(),
        other => scalar(other).into_iter().collect(),
    }
}

/// The conditions of a statement, or `None` if any is one Coffer does not
/// evaluate (then the whole statement is not evaluated).
fn tls_conditions(condition: &Value) -> Option<Vec<Condition>> {
    let operators = condition.as_object()?;
    let mut conditions = Vec::new();
    for (operator, keys) in operators {
        for (key, value) in keys.as_object()? {
            let values = condition_values(value);
            if values.is_empty() {
                return None;
            }
            let key = key.to_ascii_lowercase();
            let condition = match (operator.as_str(), key.as_str()) {
                ("Bool", "aws:securetransport" | "acs:securetransport") => {
                    Condition::SecureTransport(
                        values
                            .iter()
                            .map(|v| match v.to_ascii_lowercase().as_str() {
                                "true" => Some(true),
                                "false" => Some(false),
                                _ => None,
                            })
                            .collect::<Option<_>>()?,
                    )
                }
                ("NumericLessThan", "s3:tlsversion") => Condition::TlsVersionBelow(
                    values
                        .iter()
                        .map(|v| v.parse::<f64>().ok())
                        .collect::<Option<_>>()?,
                ),
                _ => return None,
            };
            conditions.push(condition);
        }
    }
    (!conditions.is_empty()).then_some(conditions)
}

/// Checks a policy document's shape: a JSON object whose `Statement` is a
/// statement or a list of them, each with `Effect` Allow or Deny.
pub fn validate_policy(body: &[u8]) -> ApiResult<Value> {
    let malformed = |why: &str| {
        ApiError::new(
            ErrorCode::MalformedPolicy,
            format!("The bucket policy is malformed: {why}"),
        )
    };
    if body.len() > POLICY_MAX_BYTES {
        return Err(malformed("it is larger than 20 KiB"));
    }
    let doc: Value = serde_json::from_slice(body).map_err(|_| malformed("it is not JSON"))?;
    let statements = match doc.get("Statement") {
        Some(Value::Array(list)) if !list.is_empty() => list.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => return Err(malformed("it needs a Statement list")),
    };
    for statement in &statements {
        match statement.get("Effect").and_then(Value::as_str) {
            Some("Allow" | "Deny") => {}
            _ => return Err(malformed("each statement needs Effect Allow or Deny")),
        }
    }
    Ok(doc)
}

/// The `Deny` statements Coffer evaluates, from a validated document.
fn tls_denies(doc: &Value) -> Vec<TlsDeny> {
    let statements = match doc.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    statements
        .into_iter()
        .enumerate()
        .filter(|(_, s)| s.get("Effect").and_then(Value::as_str) == Some("Deny"))
        .filter_map(|(index, s)| {
            let conditions = tls_conditions(s.get("Condition")?)?;
            let name = match s.get("Sid").and_then(Value::as_str) {
                Some(sid) if !sid.is_empty() => format!("statement {sid:?}"),
                _ => format!("statement #{}", index + 1),
            };
            Some(TlsDeny { name, conditions })
        })
        .collect()
}

/// Why a validated bucket policy refuses a request over `tls` (`None`: plain HTTP): the
/// first `Deny` statement whose TLS conditions all hold, described; `None` if none does.
pub fn policy_refusal(doc: &Value, tls: Option<&TlsInfo>) -> Option<String> {
    let transport = match tls {
        None => "plain HTTP".to_owned(),
        Some(t) => format!("{} ({})", t.version.name(), t.cipher),
    };
    tls_denies(doc)
        .into_iter()
        .find(|deny| deny.conditions.iter().all(|c| c.matches(tls)))
        .map(|deny| {
            let rule = deny
                .conditions
                .iter()
                .map(Condition::describe)
                .collect::<Vec<_>>()
                .join(" and ");
            format!(
                "Access denied by the bucket policy: {} denies requests where {rule}; this request came over {transport}.",
                deny.name
            )
        })
}

/// `PUT /<bucket>?policy`.
pub async fn put_policy(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let body = small_body(req, body, payload).await?;
    validate_policy(&body)?;
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::invalid_argument("The policy must be UTF-8 JSON."))?;
    save_bucket_config(state, bucket, POLICY_KEY, text).await?;
    empty_response(StatusCode::NO_CONTENT)
}

/// `GET /<bucket>?policy`: the document as it was stored.
pub async fn get_policy(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let Some(text) = bucket.config.get(POLICY_KEY) else {
        return Err(ApiError::new(
            ErrorCode::NoSuchBucketPolicy,
            "The bucket policy does not exist",
        ));
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(ResponseBody::full(text.clone()))
        .map_err(|e| ApiError::internal("building a response", e))
}

/// `DELETE /<bucket>?policy`.
pub async fn delete_policy(
    state: &AppState,
    req: &ApiRequest,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    if bucket.config.contains_key(POLICY_KEY) {
        state
            .meta
            .set_bucket_config(&bucket.name, POLICY_KEY, None)
            .await?;
    }
    empty_response(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- enforcement

/// Refuses the request if the bucket's httpsConfig or policy forbids its
/// transport. Root managing the rules themselves (`?policy`,
/// `?httpsConfig`) is exempt, so a rule can always be repaired (AWS lets
/// the account root do the same).
pub fn enforce(bucket: &BucketRecord, req: &ApiRequest) -> ApiResult<()> {
    if req.principal.is_root() && (req.query.has("policy") || req.query.has("httpsConfig")) {
        return Ok(());
    }
    let tls = req.tls.as_ref();
    if let Some(refusal) = HttpsConfig::of(bucket).and_then(|c| c.refusal(tls)) {
        return Err(ApiError::access_denied(refusal));
    }
    if let Some(text) = bucket.config.get(POLICY_KEY) {
        let refusal = match serde_json::from_str::<Value>(text) {
            Ok(doc) => policy_refusal(&doc, tls),
            Err(error) => {
                tracing::error!(%error, bucket = %bucket.name, "stored bucket policy unreadable");
                Some("Access denied: the bucket policy cannot be read.".to_owned())
            }
        };
        if let Some(refusal) = refusal {
            return Err(ApiError::access_denied(refusal));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::TlsVersion;

    fn tls(version: TlsVersion) -> TlsInfo {
        TlsInfo {
            version,
            cipher: "TLS_AES_256_GCM_SHA384".into(),
        }
    }

    #[test]
    fn https_config_parses_both_sdks_documents() {
        let oss2 = b"<HttpsConfiguration><TLS><Enable>true</Enable><TLSVersion>TLSv1.2</TLSVersion><TLSVersion>TLSv1.3</TLSVersion></TLS></HttpsConfiguration>";
        let config = HttpsConfig::parse(oss2).expect("valid");
        assert!(config.enable);
        assert_eq!(config.versions, ["TLSv1.2", "TLSv1.3"]);
        let v2 = b"<HttpsConfiguration><TLS><Enable>true</Enable><TLSVersion>TLSv1.3</TLSVersion></TLS><CipherSuite><Enable>true</Enable><StrongCipherSuite>false</StrongCipherSuite><CustomCipherSuite>ECDHE-ECDSA-AES128-SHA256</CustomCipherSuite><TLS13CustomCipherSuite>TLS_AES_256_GCM_SHA384</TLS13CustomCipherSuite></CipherSuite></HttpsConfiguration>";
        let config = HttpsConfig::parse(v2).expect("valid");
        let suite = config.cipher_suite.expect("kept");
        assert_eq!(suite.tls13_custom, ["TLS_AES_256_GCM_SHA384"]);
        let old_only = b"<HttpsConfiguration><TLS><Enable>true</Enable><TLSVersion>TLSv1.1</TLSVersion></TLS></HttpsConfiguration>";
        assert!(HttpsConfig::parse(old_only).is_err());
        let bogus = b"<HttpsConfiguration><TLS><Enable>true</Enable><TLSVersion>SSLv3</TLSVersion></TLS></HttpsConfiguration>";
        assert!(HttpsConfig::parse(bogus).is_err());
        let off = b"<HttpsConfiguration><TLS><Enable>false</Enable></TLS></HttpsConfiguration>";
        assert!(!HttpsConfig::parse(off).expect("valid").enable);
    }

    #[test]
    fn https_config_refuses_plain_http_and_unlisted_versions() {
        let config = HttpsConfig {
            enable: true,
            versions: vec!["TLSv1.3".into()],
            cipher_suite: None,
        };
        assert!(
            config
                .refusal(None)
                .expect("refused")
                .contains("plain HTTP")
        );
        let refusal = config
            .refusal(Some(&tls(TlsVersion::Tls12)))
            .expect("refused");
        assert!(refusal.contains("httpsConfig") && refusal.contains("TLSv1.2"));
        assert!(config.refusal(Some(&tls(TlsVersion::Tls13))).is_none());
        let disabled = HttpsConfig {
            enable: false,
            ..config
        };
        assert!(disabled.refusal(None).is_none());
    }

    #[test]
    fn policy_denies_insecure_transport_and_old_versions() {
        let doc = br#"{"Version":"2012-10-17","Statement":[
            {"Sid":"DenyInsecureTransport","Effect":"Deny","Principal":"*","Action":"s3:*",
             "Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"],
             "Condition":{"Bool":{"aws:SecureTransport":"false"}}},
            {"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b/*",
             "Condition":{"NumericLessThan":{"s3:TlsVersion":"1.3"}}},
            {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}
        ]}"#;
        let doc = validate_policy(doc).expect("valid");
        assert_eq!(tls_denies(&doc).len(), 2);
        let plain = policy_refusal(&doc, None).expect("refused");
        assert!(plain.contains("DenyInsecureTransport") && plain.contains("aws:SecureTransport"));
        let old = policy_refusal(&doc, Some(&tls(TlsVersion::Tls12))).expect("refused");
        assert!(
            old.contains("statement #2") && old.contains("s3:TlsVersion"),
            "{old}"
        );
        assert!(policy_refusal(&doc, Some(&tls(TlsVersion::Tls13))).is_none());
    }

    #[test]
    fn policy_validation_and_unevaluated_statements() {
        assert!(validate_policy(b"not json").is_err());
        assert!(validate_policy(br#"{"Version":"2012-10-17"}"#).is_err());
        assert!(validate_policy(br#"{"Statement":[{"Effect":"Maybe"}]}"#).is_err());
        // A Deny on an unsupported condition is stored, not evaluated.
        let doc = validate_policy(
            br#"{"Statement":{"Effect":"Deny","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}"#,
        )
        .expect("valid");
        assert!(tls_denies(&doc).is_empty());
        assert!(policy_refusal(&doc, None).is_none());
        // Bool may be a JSON boolean, and values may be lists.
        let doc = validate_policy(
            br#"{"Statement":[{"Effect":"Deny","Condition":{"Bool":{"aws:SecureTransport":[false]}}}]}"#,
        )
        .expect("valid");
        assert!(policy_refusal(&doc, None).is_some());
        assert!(policy_refusal(&doc, Some(&tls(TlsVersion::Tls12))).is_none());
    }
}
