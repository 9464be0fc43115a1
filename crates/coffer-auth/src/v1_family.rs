//! The HMAC-SHA1 "V1 family" both legacy schemes share: Alibaba Cloud OSS V1
//! ([`crate::oss_v1`]) and AWS Signature Version 2 ([`crate::sigv2`]).
//!
//! ```text
//! StringToSign = VERB \n Content-MD5 \n Content-Type \n DATE \n
//!                CanonicalizedHeaders CanonicalizedResource
//! Signature    = base64(HMAC-SHA1(secret, StringToSign))
//! ```
//! A [`Variant`] names what differs: the `Authorization` type word, the
//! header prefix (`x-oss-`, `x-amz-`), the signed sub-resources, the presign
//! parameter names, how the date header takes the DATE line, how the query
//! is decoded and how the canonical resource path is formed
//! ([`ResourceRule`]; the caller builds it, see [`V1Request::resource_path`]).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, HeaderValue};
use time::OffsetDateTime;

use crate::amz_time::format_http_date;
use crate::canonical::uri_encode;
use crate::credentials::{self, Credentials};
use crate::error::AuthError;
use crate::mac::{constant_time_eq, hmac_sha1};
use crate::oss::{push_trimmed_values, trim};
use crate::scheme::Scheme;
use crate::secret::Secret;
use crate::signing::SigningParams;
use crate::sigv4::{MAX_SKEW, SecretLookup, single_header};
use crate::verified::{Payload, Verified};

/// How the date header (`x-oss-date`, `x-amz-date`) enters the string to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateOverride {
    /// Its value is the DATE line (and it is also a canonicalized header): OSS.
    ReplacesDateLine,
    /// The DATE line is empty and it is signed only as a canonicalized
    /// header: S3 (the documented rule, what s3cmd and boto 2 do).
    /// Verification also accepts the form of the S3 developer guide's DELETE
    /// example: its value as the DATE line and not in the headers.
    BlanksDateLine,
}

/// How the canonical resource path is formed from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResourceRule {
    /// `/bucket/key` with the key percent-decoded, whatever the addressing
    /// (OSS: see [`crate::OssRequest`]).
    DecodedBucketKey,
    /// The path exactly as sent, still percent-encoded, prefixed with
    /// `/bucket` when the bucket came from the host (S3).
    RawPath,
}

/// Splits and decodes a raw query into `(name, value)` pairs.
pub(crate) type QueryPairs = fn(&str) -> Vec<(Vec<u8>, Vec<u8>)>;

/// What distinguishes one member of the family from another.
#[derive(Debug)]
pub(crate) struct Variant {
    /// The `Authorization` type word: `OSS`, `AWS`.
    pub(crate) algorithm: &'static str,
    /// The prefix of the canonicalized headers: `x-oss-`, `x-amz-`.
    pub(crate) header_prefix: &'static str,
    /// The header that overrides `Date`: `x-oss-date`, `x-amz-date`.
    pub(crate) date_header: &'static str,
    pub(crate) date_override: DateOverride,
    /// The signed query parameters.
    pub(crate) subresources: &'static [&'static str],
    /// The presigned access key parameter: `OSSAccessKeyId`, `AWSAccessKeyId`
    /// (the other two are always `Expires` and `Signature`).
    pub(crate) access_key_param: &'static str,
    /// Documents the rule the caller follows to build [`V1Request::resource_path`].
    #[allow(dead_code)]
    pub(crate) resource: ResourceRule,
    /// Splits and decodes the query (form rules for OSS, plain for S3).
    pub(crate) query_pairs: QueryPairs,
    /// Parses the `Date` / date header value.
    pub(crate) parse_date: fn(&str) -> Option<OffsetDateTime>,
    /// Presigned only: `content-md5`, `content-type` and prefixed headers may
    /// travel as query parameters (botocore moves them there) and are then
    /// signed as if they were headers.
    pub(crate) headers_in_query: bool,
    /// The header and presigned schemes reported in [`Verified::scheme`].
    pub(crate) schemes: (Scheme, Scheme),
    /// The AccessDenied message when there is no usable date.
    pub(crate) date_required: &'static str,
}

/// The request as the family sees it.
#[derive(Debug, Clone)]
pub(crate) struct V1Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) raw_query: &'a str,
    pub(crate) headers: &'a HeaderMap,
    /// The canonical resource before the sub-resources, per [`Variant::resource`].
    pub(crate) resource_path: Vec<u8>,
}

impl Variant {
    pub(crate) fn is_subresource(&self, name: &[u8]) -> bool {
        self.subresources.iter().any(|s| s.as_bytes() == name)
    }

    fn is_prefixed(&self, name: &[u8]) -> bool {
        name.starts_with(self.header_prefix.as_bytes())
    }

    /// The string to sign, with `date` as the DATE line. `skip_header` (the
    /// date header, for the S3 DELETE example form) is left out of the
    /// canonicalized headers. `presigned` enables [`Variant::headers_in_query`].
    pub(crate) fn string_to_sign(
        &self,
        req: &V1Request<'_>,
        date: &str,
        skip_header: Option<&str>,
        presigned: bool,
    ) -> Vec<u8> {
        let pairs = (self.query_pairs)(req.raw_query);
        let from_query = presigned && self.headers_in_query;
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(req.method.as_bytes());
        out.push(b'\n');
        for name in ["content-md5", "content-type"] {
            if !push_trimmed_values(req.headers, name, &mut out)
                && from_query
                && let Some((_, value)) = pairs.iter().find(|(n, _)| n == name.as_bytes())
            {
                out.extend_from_slice(trim(value));
            }
            out.push(b'\n');
        }
        out.extend_from_slice(date.as_bytes());
        out.push(b'\n');

        // Header names are already lower case in a HeaderMap.
        let mut headers: BTreeMap<&[u8], Vec<std::borrow::Cow<'_, [u8]>>> = BTreeMap::new();
        for (name, value) in req.headers {
            if self.is_prefixed(name.as_str().as_bytes()) && skip_header != Some(name.as_str()) {
                headers
                    .entry(name.as_str().as_bytes())
                    .or_default()
                    .push(crate::oss::signed_value(trim(value.as_bytes())));
            }
        }
        if from_query {
            for (name, value) in &pairs {
                if self.is_prefixed(name) {
                    headers
                        .entry(name)
                        .or_default()
                        .push(std::borrow::Cow::Borrowed(trim(value)));
                }
            }
        }
        for (name, values) in headers {
            out.extend_from_slice(name);
            out.push(b':');
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(value);
            }
            out.push(b'\n');
        }

        out.extend_from_slice(&req.resource_path);
        let mut subresources: Vec<&(Vec<u8>, Vec<u8>)> = pairs
            .iter()
            .filter(|(name, _)| self.is_subresource(name))
            .collect();
        subresources.sort();
        for (i, (name, value)) in subresources.into_iter().enumerate() {
            out.push(if i == 0 { b'?' } else { b'&' });
            out.extend_from_slice(name);
            if !value.is_empty() {
                out.push(b'=');
                out.extend_from_slice(value);
            }
        }
        out
    }

    fn claims_from_header(
        &self,
        headers: &HeaderMap,
        authorization: &str,
    ) -> Result<Claims, AuthError> {
        let bad = |m: String| AuthError::HeaderMalformed(m);
        let (access_key, signature) = authorization
            .strip_prefix(self.algorithm)
            .filter(|rest| rest.starts_with([' ', '\t']))
            .and_then(|rest| rest.trim().rsplit_once(':'))
            .ok_or_else(|| {
                bad(format!(
                    "the authorization must be {} <AccessKeyId>:<Signature>",
                    self.algorithm
                ))
            })?;
        let access_key = access_key.trim();
        if access_key.is_empty() || access_key.contains([' ', '\t']) {
            return Err(bad("the AccessKeyId is empty or contains spaces".into()));
        }
        let (date_header, value) = match single_header(headers, self.date_header)? {
            Some(value) => (self.date_header, value),
            None => (
                "date",
                single_header(headers, "date")?
                    .ok_or(AuthError::AccessDenied(self.date_required))?,
            ),
        };
        Ok(Claims {
            access_key: access_key.to_owned(),
            signature: signature.trim().to_owned(),
            date: value.to_owned(),
            date_header: Some(date_header),
        })
    }

    fn claims_from_query(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<Claims, AuthError> {
        let params = [self.access_key_param, "Expires", "Signature"];
        let bad = |m: String| AuthError::QueryMalformed(m);
        let mut found: [Option<String>; 3] = Default::default();
        for (name, value) in pairs {
            let Some(index) = params.iter().position(|p| p.as_bytes() == name.as_slice()) else {
                continue;
            };
            let value = String::from_utf8(value.clone())
                .map_err(|_| bad(format!("{} is not valid text", params[index])))?;
            if found[index].replace(value).is_some() {
                return Err(bad(format!("{} appears more than once", params[index])));
            }
        }
        let [Some(access_key), Some(expires), Some(signature)] = found else {
            return Err(bad(format!(
                "{}, Expires and Signature are required",
                self.access_key_param
            )));
        };
        if access_key.is_empty() {
            return Err(bad(format!("{} is empty", self.access_key_param)));
        }
        Ok(Claims {
            access_key,
            signature,
            date: expires,
            date_header: None,
        })
    }

    /// The (DATE line, header left out) pairs a signature may have been made
    /// with: one, except for S3 with `x-amz-date` (see [`DateOverride`]).
    fn date_lines(&self, claims: &Claims) -> Vec<(String, Option<&'static str>)> {
        match (claims.date_header, self.date_override) {
            (Some(header), DateOverride::BlanksDateLine) if header == self.date_header => vec![
                (String::new(), None),
                (claims.date.clone(), Some(self.date_header)),
            ],
            _ => vec![(claims.date.clone(), None)],
        }
    }

    /// Verifies a request by `Authorization` header or presigned query.
    /// Header form: the date header (else `Date`) must be within 15 minutes
    /// of `now`. Presigned: `now` must not be past `Expires`.
    pub(crate) fn verify(
        &self,
        req: &V1Request<'_>,
        now: OffsetDateTime,
        lookup: &impl SecretLookup,
    ) -> Result<Verified, AuthError> {
        let pairs = (self.query_pairs)(req.raw_query);
        let in_query = pairs
            .iter()
            .any(|(name, _)| name.as_slice() == self.access_key_param.as_bytes());
        let claims = match credentials::locate(req.headers, in_query, self.access_key_param)? {
            Credentials::Header(value) => self.claims_from_header(req.headers, value)?,
            Credentials::Query => self.claims_from_query(&pairs)?,
        };
        let presigned = claims.date_header.is_none();

        if presigned {
            let expires = parse_expires(&claims.date).ok_or_else(|| {
                AuthError::QueryMalformed("Expires must be a time in unix seconds".into())
            })?;
            if now.unix_timestamp() > expires {
                return Err(AuthError::Expired);
            }
        } else {
            let time = (self.parse_date)(&claims.date)
                .ok_or(AuthError::AccessDenied(self.date_required))?;
            if (time - now).abs() > MAX_SKEW {
                return Err(AuthError::TimeTooSkewed);
            }
        }

        let secret = lookup
            .secret(&claims.access_key)
            .ok_or(AuthError::UnknownAccessKey)?;
        let given = BASE64
            .decode(claims.signature.as_bytes())
            .map_err(|_| AuthError::SignatureMismatch)?;
        let mut matched = false;
        for (date, skip) in self.date_lines(&claims) {
            let expected = signature(&secret, &self.string_to_sign(req, &date, skip, presigned));
            matched |= constant_time_eq(&expected, &given);
        }
        drop(secret);
        if !matched {
            return Err(AuthError::SignatureMismatch);
        }

        let mut signed_headers: Vec<String> = ["content-md5", "content-type"]
            .into_iter()
            .chain(claims.date_header)
            .filter(|name| req.headers.contains_key(*name))
            .map(str::to_owned)
            .collect();
        let mut prefixed: Vec<&str> = req
            .headers
            .keys()
            .map(http::HeaderName::as_str)
            .filter(|name| self.is_prefixed(name.as_bytes()) && claims.date_header != Some(name))
            .collect();
        prefixed.sort_unstable();
        prefixed.dedup();
        signed_headers.extend(prefixed.into_iter().map(str::to_owned));
        Ok(Verified {
            access_key: claims.access_key,
            region: String::new(),
            payload: Payload::Unsigned,
            presigned,
            signed_headers,
            scheme: if presigned {
                self.schemes.1
            } else {
                self.schemes.0
            },
        })
    }

    /// Signs with an `Authorization` header: sets `Date` to `params.now`,
    /// then signs with the date header in its place if one is present.
    pub(crate) fn sign(
        &self,
        method: &str,
        raw_query: &str,
        resource_path: Vec<u8>,
        headers: &mut HeaderMap,
        params: &SigningParams<'_>,
    ) -> Result<String, AuthError> {
        headers.remove(http::header::AUTHORIZATION);
        let now = format_http_date(params.now);
        headers.insert(
            http::header::DATE,
            HeaderValue::from_str(&now)
                .map_err(|_| AuthError::InvalidArgument("invalid Date".into()))?,
        );
        let date = match (
            single_header(headers, self.date_header)?,
            self.date_override,
        ) {
            (Some(_), DateOverride::BlanksDateLine) => String::new(),
            (Some(value), DateOverride::ReplacesDateLine) => value.to_owned(),
            (None, _) => now,
        };
        let req = V1Request {
            method,
            raw_query,
            headers: &*headers,
            resource_path,
        };
        let signature = BASE64.encode(signature(
            params.secret,
            &self.string_to_sign(&req, &date, None, false),
        ));
        let authorization = HeaderValue::from_str(&format!(
            "{} {}:{signature}",
            self.algorithm, params.access_key
        ))
        .map_err(|_| AuthError::InvalidArgument("invalid access key".into()))?;
        headers.insert(http::header::AUTHORIZATION, authorization);
        Ok(signature)
    }

    /// Presigns: the full query string (without `?`) to send, `raw_query`
    /// followed by the access key parameter, `Expires` and `Signature`.
    pub(crate) fn presign(
        &self,
        req: &V1Request<'_>,
        expires_secs: u32,
        params: &SigningParams<'_>,
    ) -> String {
        let expires = params.now.unix_timestamp() + i64::from(expires_secs);
        let signature = BASE64.encode(signature(
            params.secret,
            &self.string_to_sign(req, &expires.to_string(), None, true),
        ));
        let mut query = String::from(req.raw_query);
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(&format!(
            "{}={}&Expires={expires}&Signature={}",
            self.access_key_param,
            uri_encode(params.access_key.as_bytes()),
            uri_encode(signature.as_bytes())
        ));
        query
    }
}

/// What the request claims, from the header or the query.
struct Claims {
    access_key: String,
    /// Base64 as sent; decoded only to compare.
    signature: String,
    /// The date header value, or `Expires` if presigned.
    date: String,
    /// The header that gave the date (the variant's date header or `date`),
    /// or `None` if presigned.
    date_header: Option<&'static str>,
}

fn signature(secret: &Secret, string_to_sign: &[u8]) -> [u8; 20] {
    hmac_sha1(secret.expose_secret().as_bytes(), string_to_sign)
}

/// Parses `Expires`: unix seconds, 1 to 19 digits.
fn parse_expires(value: &str) -> Option<i64> {
    (!value.is_empty() && value.len() <= 19 && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse().ok())
        .flatten()
}
