//! Browser form uploads: S3 POST Object and OSS PostObject, a
//! `multipart/form-data` POST to the bucket whose fields name the key, the
//! object's headers (metadata, Content-Type, server-side encryption) and a
//! signed policy document, and whose `file` part is the object.
//!
//! The signature is in the form, so these requests are routed before
//! request authentication: [`read_form`] reads the fields up to the file
//! part, [`PostForm::authenticate`] checks the signature over the policy
//! (`coffer_auth::post_policy`), the policy's expiration and conditions
//! ([`policy`]) and, in the S3 dialect, that every field is covered by a
//! condition; then [`upload`] authorizes the upload as a PutObject of the
//! signer and streams the file part through the same path PutObject uses, so
//! it is sealed like any other object. Nothing is stored when any check
//! fails, the file is outside `content-length-range`, or the body is cut.

mod policy;

use bytes::Bytes;
use coffer_auth::Payload;
use coffer_auth::post_policy::{PostSignature, SIGNATURE_FIELDS};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use hyper::body::Incoming;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::object::validate_key;
use super::{authorized_bucket, now_ms, put, quoted};
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::form_data::{FormData, PartHead, boundary_of, malformed};
use crate::object_io::{BodyStream, MAX_SINGLE_UPLOAD};
use crate::request::{ApiRequest, Dialect};
use crate::state::{AppState, Principal};
pub(crate) use policy::PostPolicy;
use policy::refused;

/// Longest value of one form field (a policy document is the longest).
const MAX_FIELD_BYTES: usize = 64 * 1024;
/// Most bytes all the fields before the file part may hold together.
const MAX_FIELDS_BYTES: usize = 1024 * 1024;
/// Most bytes read after the file part (fields there are ignored, as S3
/// ignores them) before the connection is given up instead.
const MAX_TRAILING_BYTES: u64 = 1024 * 1024;
/// Form fields that become headers of the object (besides `x-amz-*` /
/// `x-oss-*` ones such as metadata and encryption).
const HEADER_FIELDS: &[&str] = &[
    "content-type",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];
/// Fields of the V4 schemes that authenticate rather than describe the object.
const CREDENTIAL_FIELDS: &[&str] = &[
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-signature",
    "x-amz-security-token",
    "x-oss-signature-version",
    "x-oss-credential",
    "x-oss-date",
    "x-oss-signature",
    "x-oss-security-token",
];
/// The canned ACLs an upload may ask for while Coffer has no ACLs (every
/// bucket behaves as AWS's default, ACLs disabled): both leave the object
/// private to the bucket owner.
const ACLS_WITHOUT_GRANTS: &[&str] = &["private", "bucket-owner-full-control"];

/// A form read up to its file part.
pub struct PostForm {
    /// The fields before the file part, names in lower case, in order.
    fields: Vec<(String, String)>,
    /// The file part's head.
    file: PartHead,
    /// The reader, at the start of the file part's body.
    reader: FormData,
    dialect: Dialect,
    /// The policy, once its signature checked out.
    policy: Option<PostPolicy>,
}

/// Reads a form upload's fields up to its file part. `dialect` is the one
/// the request's headers suggest; OSS signature fields make it OSS.
pub async fn read_form(
    headers: &HeaderMap,
    body: Incoming,
    dialect: Dialect,
    idle: std::time::Duration,
) -> ApiResult<PostForm> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut reader = FormData::new(body, &boundary_of(content_type)?, idle);
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut total = 0usize;
    let file = loop {
        let Some(head) = reader.next_part().await? else {
            return Err(ApiError::invalid_argument(
                "POST requires exactly one file upload per request.",
            ));
        };
        if head.filename.is_some() || head.name.eq_ignore_ascii_case("file") {
            break head;
        }
        let too_long = ApiError::new(
            ErrorCode::MaxMessageLengthExceeded,
            "Your POST request fields preceding the upload file were too large.",
        );
        let value = reader.read_value(MAX_FIELD_BYTES, too_long.clone()).await?;
        total += value.len();
        if total > MAX_FIELDS_BYTES {
            return Err(too_long);
        }
        let value = String::from_utf8(value.to_vec()).map_err(|_| malformed())?;
        fields.push((head.name.to_ascii_lowercase(), value));
    };
    // Before any signature or policy check, as S3 orders them.
    if !fields.iter().any(|(name, _)| name == "key") {
        return Err(missing_field("key"));
    }
    let oss = fields
        .iter()
        .any(|(name, _)| name == "ossaccesskeyid" || name.starts_with("x-oss-"));
    Ok(PostForm {
        fields,
        file,
        reader,
        dialect: if oss { Dialect::Oss } else { dialect },
        policy: None,
    })
}

impl PostForm {
    /// The dialect the form speaks: errors and the answer use it.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The first value of field `name` (lower case).
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Who signed the form, once the signature over the policy, the
    /// policy's expiration and conditions, and (S3) the rule that every
    /// field is covered by a condition all hold; an unsigned form without a
    /// policy is anonymous. Returns the principal and its access key.
    pub fn authenticate(
        &mut self,
        state: &AppState,
        bucket: &str,
    ) -> ApiResult<(Principal, Option<String>)> {
        let signature = PostSignature::from_fields(|name| self.field(name))?;
        let (signature, policy_field) = match (signature, self.field("policy")) {
            (None, None) => return Ok((Principal::Anonymous, None)),
            (Some(_), None) => return Err(missing_field("policy")),
            (None, Some(_)) => {
                return Err(missing_field(match self.dialect {
                    Dialect::S3 => "x-amz-signature",
                    Dialect::Oss => "OSSAccessKeyId",
                }));
            }
            (Some(signature), Some(policy)) => (signature, policy),
        };
        // The signature first: a policy changed in transit is a signature
        // mismatch, not a malformed document.
        let access_key = signature.verify(policy_field, state)?;
        let principal = state
            .principal_for(&access_key)
            .ok_or_else(|| ApiError::from(coffer_auth::AuthError::UnknownAccessKey))?;
        let policy = PostPolicy::parse(policy_field)?;
        policy.check(now_ms(), |name| match name {
            "bucket" => Some(bucket),
            name => self.field(name),
        })?;
        if self.dialect == Dialect::S3 {
            let extra: Vec<&str> = self
                .fields
                .iter()
                .map(|(name, _)| name.as_str())
                .filter(|name| {
                    !SIGNATURE_FIELDS.contains(name)
                        && !name.starts_with("x-ignore-")
                        && !policy.covers(name)
                })
                .collect();
            if !extra.is_empty() {
                return Err(refused(&format!(
                    "Extra input fields: {}",
                    extra.join(", ")
                )));
            }
        }
        self.policy = Some(policy);
        Ok((principal, Some(access_key)))
    }

    /// The object's key: the `key` field, `${filename}` replaced by the
    /// file's name.
    pub fn key(&self) -> ApiResult<String> {
        let key = self.field("key").ok_or_else(|| missing_field("key"))?;
        let filename = self.file.filename.as_deref().unwrap_or_default();
        let key = key.replace("${filename}", filename);
        if key.is_empty() {
            return Err(ApiError::invalid_argument(
                "User key must have a length greater than 0.",
            ));
        }
        Ok(key)
    }

    /// The headers the upload is stored with, as if a PutObject had sent
    /// them: the object-describing fields (metadata, Content-Type, the
    /// encryption fields…), the file part's Content-Type when no field gives
    /// one, and `Host` from the request; nothing of the form's own framing.
    pub fn request_headers(&self, request: &HeaderMap) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(host) = request.get(http::header::HOST) {
            headers.insert(http::header::HOST, host.clone());
        }
        let prefix = self.dialect.prefix();
        for (name, value) in &self.fields {
            let describes_object = HEADER_FIELDS.contains(&name.as_str())
                || (name.starts_with(prefix) && !CREDENTIAL_FIELDS.contains(&name.as_str()));
            if !describes_object {
                continue;
            }
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.append(name, value);
            }
        }
        if !headers.contains_key(http::header::CONTENT_TYPE)
            && let Some(value) = self
                .file
                .content_type
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert(http::header::CONTENT_TYPE, value);
        }
        headers
    }
}

/// S3's refusal of a form without a field it needs.
fn missing_field(name: &str) -> ApiError {
    ApiError::invalid_argument(format!(
        "Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields."
    ))
}

/// Stores the form's file part as the object `req` names (its key and
/// headers come from the form), authorized as a PutObject of the form's
/// signer, and answers as the form asks: a redirect, 200, 201 with a
/// `PostResponse` document, or 204.
pub async fn upload(
    state: &AppState,
    req: ApiRequest,
    mut form: PostForm,
) -> ApiResult<Response<ResponseBody>> {
    let key = req.key()?.to_owned();
    validate_key(req.dialect, &key)?;
    let acl = form
        .field("acl")
        .or_else(|| form.field(&req.dialect.header("acl")))
        .or_else(|| form.field("x-oss-object-acl"));
    if let Some(acl) = acl
        && !ACLS_WITHOUT_GRANTS.contains(&acl)
    {
        return Err(ApiError::not_implemented(&format!(
            "The canned ACL {acl:?} on a POST upload (only private and bucket-owner-full-control)"
        )));
    }
    let bucket = authorized_bucket(state, &req).await?;
    let (min, max) = form
        .policy
        .as_ref()
        .and_then(PostPolicy::length_range)
        .unwrap_or((0, MAX_SINGLE_UPLOAD));
    let file = SizedFile {
        form: &mut form.reader,
        seen: 0,
        min,
        max,
    };
    let (staged, headers) =
        put::store_body(state, &req, &bucket, &key, file, Payload::Unsigned).await?;
    // Fields after the file are ignored; read them so the connection can be reused.
    if let Err(error) = form.reader.drain(MAX_TRAILING_BYTES).await {
        tracing::debug!(
            code = error.code.s3_code(),
            "the rest of a form upload was not read"
        );
    }
    let etag = quoted(&staged.etag());
    let scheme = if req.tls.is_some() { "https" } else { "http" };
    let host = req.header("host").unwrap_or("localhost");
    let encode = |text: &str| utf8_percent_encode(text, NON_ALPHANUMERIC).to_string();
    let location = format!(
        "{scheme}://{host}/{}/{}",
        encode(&bucket.name),
        encode(&key)
    );
    let redirect = form
        .field("success_action_redirect")
        .or_else(|| form.field("redirect"))
        .filter(|url| url.starts_with("http://") || url.starts_with("https://"));
    let mut response = Response::new(ResponseBody::Empty);
    if let Some(url) = redirect {
        let separator = if url.contains('?') { '&' } else { '?' };
        let target = format!(
            "{url}{separator}bucket={}&key={}&etag={}",
            encode(&bucket.name),
            encode(&key),
            encode(&etag)
        );
        *response.status_mut() = StatusCode::SEE_OTHER;
        super::insert_headers(&mut response, [("location".to_owned(), target)]);
    } else {
        match form.field("success_action_status") {
            Some("200") => *response.status_mut() = StatusCode::OK,
            Some("201") => {
                let mut w = req.xml("PostResponse");
                w.elem("Location", &location)
                    .elem("Bucket", &bucket.name)
                    .elem("Key", &key)
                    .elem("ETag", &etag);
                response = super::xml_response(StatusCode::CREATED, w.finish())?;
            }
            _ => *response.status_mut() = StatusCode::NO_CONTENT,
        }
        super::insert_headers(&mut response, [("location".to_owned(), location)]);
    }
    super::insert_headers(&mut response, [("etag".to_owned(), etag)]);
    super::insert_headers(&mut response, headers);
    Ok(response)
}

/// The file part, held to the policy's `content-length-range`: a byte past
/// the maximum, or an end before the minimum, fails the upload (and so
/// discards what was staged).
struct SizedFile<'a> {
    form: &'a mut FormData,
    seen: u64,
    min: u64,
    max: u64,
}

impl BodyStream for SizedFile<'_> {
    async fn next_data(&mut self, _idle: std::time::Duration) -> ApiResult<Option<Bytes>> {
        match self.form.next_chunk().await? {
            Some(data) => {
                self.seen += data.len() as u64;
                if self.seen > self.max {
                    return Err(ApiError::new(
                        ErrorCode::EntityTooLarge,
                        "Your proposed upload exceeds the maximum allowed size",
                    ));
                }
                Ok(Some(data))
            }
            None if self.seen < self.min => Err(ApiError::new(
                ErrorCode::EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed size",
            )),
            None => Ok(None),
        }
    }
}
