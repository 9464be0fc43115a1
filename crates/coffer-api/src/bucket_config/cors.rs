//! CORS rules: the `<CORSConfiguration>` document of S3 and OSS (the same
//! shape; OSS adds `<ResponseVary>`), validated once and stored as JSON, and
//! the matching of a cross-origin request against them.
//!
//! Limits and errors as AWS gives them: at most [`MAX_RULES`] rules (OSS:
//! [`OSS_MAX_RULES`]), each with at least one `AllowedOrigin` and
//! `AllowedMethod` (else MalformedXML), methods among GET, PUT, POST, DELETE
//! and HEAD (else InvalidRequest "Found unsupported HTTP method in CORS
//! config"), at most one `*` in an origin or header pattern.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::xml::{self, XmlWriter};

/// Bucket config key of the bucket's CORS rules (JSON of [`CorsConfiguration`]).
pub const CORS_KEY: &str = "cors";
/// Most rules an S3 CORS configuration may hold.
pub const MAX_RULES: usize = 100;
/// Most rules an OSS CORS configuration may hold.
pub const OSS_MAX_RULES: usize = 10;
/// The methods a rule may allow.
const METHODS: &[&str] = &["GET", "PUT", "POST", "DELETE", "HEAD"];
/// OSS's EC for a configuration without a `CORSRule`.
const EC_NO_RULE: &str = "0034-00000002";
/// OSS's EC for an `AllowedMethod` outside [`METHODS`].
const EC_BAD_METHOD: &str = "0034-00000011";
/// OSS's EC for GetBucketCors on a bucket without rules.
pub const EC_NO_CONFIGURATION: &str = "0034-00000001";
/// Longest rule `ID`.
const MAX_ID_CHARS: usize = 255;

/// A bucket's validated CORS rules, in the order given (the first match wins).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsConfiguration {
    /// The rules, tried in order.
    pub rules: Vec<CorsRule>,
    /// OSS `ResponseVary`: whether every answer carries `Vary: Origin`.
    #[serde(default)]
    pub response_vary: Option<bool>,
}

/// One rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    /// `ID` (S3 only).
    pub id: Option<String>,
    /// `AllowedOrigin` patterns (one `*` each at most).
    pub allowed_origins: Vec<String>,
    /// `AllowedMethod`s: GET, PUT, POST, DELETE, HEAD.
    pub allowed_methods: Vec<String>,
    /// `AllowedHeader` patterns (one `*` each at most).
    pub allowed_headers: Vec<String>,
    /// `ExposeHeader`s: the response headers a page may read.
    pub expose_headers: Vec<String>,
    /// `MaxAgeSeconds`: how long a browser may cache the preflight's answer.
    pub max_age_seconds: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct ConfigurationXml {
    #[serde(rename = "CORSRule", default)]
    rules: Vec<RuleXml>,
    #[serde(rename = "ResponseVary")]
    response_vary: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct RuleXml {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "AllowedOrigin", default)]
    allowed_origins: Vec<String>,
    #[serde(rename = "AllowedMethod", default)]
    allowed_methods: Vec<String>,
    #[serde(rename = "AllowedHeader", default)]
    allowed_headers: Vec<String>,
    #[serde(rename = "ExposeHeader", default)]
    expose_headers: Vec<String>,
    #[serde(rename = "MaxAgeSeconds")]
    max_age_seconds: Option<String>,
}

/// What a cross-origin request asks for: its origin, method and (for a
/// preflight) the headers it will send.
pub struct CorsRequest<'a> {
    /// The `Origin` header.
    pub origin: &'a str,
    /// The method (a preflight's `Access-Control-Request-Method`).
    pub method: &'a str,
    /// A preflight's `Access-Control-Request-Headers`; empty otherwise.
    pub headers: Vec<&'a str>,
}

impl CorsConfiguration {
    /// Parses a `<CORSConfiguration>` body (either dialect; `max_rules` is
    /// the dialect's limit) and validates every rule.
    pub fn parse_xml(body: &[u8], max_rules: usize) -> ApiResult<Self> {
        let doc: ConfigurationXml = xml::parse(body)?;
        if doc.rules.is_empty() {
            return Err(ApiError::malformed_xml().with_ec(EC_NO_RULE));
        }
        if doc.rules.len() > max_rules {
            return Err(ApiError::invalid_request(format!(
                "The CORS configuration has {} rules; at most {max_rules} are allowed",
                doc.rules.len()
            )));
        }
        let rules = doc
            .rules
            .into_iter()
            .map(CorsRule::validated)
            .collect::<ApiResult<_>>()?;
        Ok(Self {
            rules,
            response_vary: doc.response_vary,
        })
    }

    /// Writes the rules into `w`, whose root is `CORSConfiguration`; OSS's
    /// `ResponseVary` only when `oss`.
    pub fn write_xml(&self, w: &mut XmlWriter, oss: bool) {
        for rule in &self.rules {
            w.start("CORSRule");
            if !oss {
                w.elem_opt("ID", rule.id.as_deref());
            }
            for (name, values) in [
                ("AllowedOrigin", &rule.allowed_origins),
                ("AllowedMethod", &rule.allowed_methods),
                ("AllowedHeader", &rule.allowed_headers),
                ("ExposeHeader", &rule.expose_headers),
            ] {
                for value in values {
                    w.elem(name, value);
                }
            }
            w.elem_opt("MaxAgeSeconds", rule.max_age_seconds.map(|s| s.to_string()));
            w.end();
        }
        if oss {
            w.elem(
                "ResponseVary",
                self.response_vary.unwrap_or(false).to_string(),
            );
        }
    }

    /// The first rule that allows `request`, as S3 picks it.
    pub fn matching(&self, request: &CorsRequest<'_>) -> Option<&CorsRule> {
        self.rules.iter().find(|rule| rule.allows(request))
    }
}

impl CorsRule {
    fn validated(rule: RuleXml) -> ApiResult<Self> {
        if rule.allowed_origins.is_empty() || rule.allowed_methods.is_empty() {
            return Err(ApiError::malformed_xml());
        }
        if let Some(id) = &rule.id
            && id.chars().count() > MAX_ID_CHARS
        {
            return Err(ApiError::invalid_argument(format!(
                "The ID of a CORS rule may have at most {MAX_ID_CHARS} characters"
            )));
        }
        for method in &rule.allowed_methods {
            if !METHODS.contains(&method.as_str()) {
                return Err(ApiError::invalid_request(format!(
                    "Found unsupported HTTP method in CORS config. Unsupported method is {method}"
                ))
                .with_ec(EC_BAD_METHOD));
            }
        }
        for (what, values) in [
            ("AllowedOrigin", &rule.allowed_origins),
            ("AllowedHeader", &rule.allowed_headers),
        ] {
            if let Some(value) = values.iter().find(|v| v.matches('*').count() > 1) {
                return Err(ApiError::invalid_request(format!(
                    "{what} \"{value}\" can not have more than one wildcard."
                )));
            }
        }
        let max_age_seconds = rule
            .max_age_seconds
            .map(|text| {
                text.trim().parse::<u32>().map_err(|_| {
                    ApiError::invalid_argument("MaxAgeSeconds must be a non-negative integer")
                })
            })
            .transpose()?;
        Ok(Self {
            id: rule.id,
            allowed_origins: rule.allowed_origins,
            allowed_methods: rule.allowed_methods,
            allowed_headers: rule.allowed_headers,
            expose_headers: rule.expose_headers,
            max_age_seconds,
        })
    }

    /// Whether the rule allows `request`: one origin pattern matches the
    /// origin (case-sensitively, as S3 compares them), the method is listed,
    /// and every requested header matches a header pattern (case-insensitively).
    pub fn allows(&self, request: &CorsRequest<'_>) -> bool {
        self.allowed_origins
            .iter()
            .any(|pattern| wildcard_match(pattern, request.origin))
            && self.allowed_methods.iter().any(|m| m == request.method)
            && request.headers.iter().all(|header| {
                let header = header.to_ascii_lowercase();
                self.allowed_headers
                    .iter()
                    .any(|pattern| wildcard_match(&pattern.to_ascii_lowercase(), &header))
            })
    }

    /// Whether the rule allows every origin (`*`): the answer then says `*`
    /// rather than echoing the origin, and allows no credentials.
    pub fn any_origin(&self) -> bool {
        self.allowed_origins.iter().any(|o| o == "*")
    }
}

/// `pattern` with at most one `*` (any run of characters) against `text`.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((prefix, suffix)) => {
            text.len() >= prefix.len() + suffix.len()
                && text.starts_with(prefix)
                && text.ends_with(suffix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    const DOC: &str = r#"<CORSConfiguration>
      <CORSRule><ID>web</ID><AllowedOrigin>http://*.example.com</AllowedOrigin>
        <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>
        <AllowedHeader>x-amz-*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>
        <MaxAgeSeconds>300</MaxAgeSeconds></CORSRule>
      <CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod></CORSRule>
    </CORSConfiguration>"#;

    fn request<'a>(origin: &'a str, method: &'a str, headers: &[&'a str]) -> CorsRequest<'a> {
        CorsRequest {
            origin,
            method,
            headers: headers.to_vec(),
        }
    }

    #[test]
    fn parses_and_matches_the_first_rule() {
        let config = CorsConfiguration::parse_xml(DOC.as_bytes(), MAX_RULES).expect("valid");
        assert_eq!(config.rules.len(), 2);
        let web = &config.rules[0];
        assert_eq!(web.max_age_seconds, Some(300));
        let hit = config.matching(&request(
            "http://app.example.com",
            "PUT",
            &["X-Amz-Meta-Color"],
        ));
        assert_eq!(hit.and_then(|r| r.id.as_deref()), Some("web"));
        assert!(
            config
                .matching(&request("http://app.example.com", "PUT", &["content-type"]))
                .is_none(),
            "a header no pattern allows"
        );
        assert!(
            config
                .matching(&request("http://example.org", "GET", &[]))
                .is_none()
        );
        let any = config.matching(&request("http://example.org", "HEAD", &[]));
        assert!(any.is_some_and(CorsRule::any_origin));
        assert!(!wildcard_match(
            "http://*.example.com",
            "http://.example.co"
        ));
    }

    #[test]
    fn refuses_what_aws_refuses() {
        let code = |doc: &str| {
            CorsConfiguration::parse_xml(doc.as_bytes(), MAX_RULES)
                .expect_err("invalid")
                .code
        };
        assert_eq!(code("<CORSConfiguration/>"), ErrorCode::MalformedXML);
        assert_eq!(
            code(
                "<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"
            ),
            ErrorCode::MalformedXML
        );
        let patch = CorsConfiguration::parse_xml(
            b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>",
            MAX_RULES,
        )
        .expect_err("PATCH");
        assert_eq!(patch.code, ErrorCode::InvalidRequest);
        assert!(
            patch
                .message
                .starts_with("Found unsupported HTTP method in CORS config")
        );
        assert_eq!(
            code(
                "<CORSConfiguration><CORSRule><AllowedOrigin>*.*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"
            ),
            ErrorCode::InvalidRequest
        );
        assert_eq!(code("not xml"), ErrorCode::MalformedXML);
        let eleven = format!(
            "<CORSConfiguration>{}</CORSConfiguration>",
            "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>"
                .repeat(11)
        );
        assert!(CorsConfiguration::parse_xml(eleven.as_bytes(), MAX_RULES).is_ok());
        assert!(CorsConfiguration::parse_xml(eleven.as_bytes(), OSS_MAX_RULES).is_err());
    }
}
