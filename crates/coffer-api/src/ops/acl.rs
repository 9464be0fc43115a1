//! ACLs over HTTP: `?acl` on buckets and objects (Get/PutBucketAcl, Get/PutObjectAcl) in
//! both dialects, and the ACL a write or a new bucket asks for in its headers (S3
//! `x-amz-acl` / `x-amz-grant-*`, OSS `x-oss-acl` / `x-oss-object-acl`). What an ACL grants
//! is `authz::acl`'s; this module reads and writes its forms and refuses what the bucket's
//! ownership setting and public access block forbid.

use std::collections::BTreeMap;

use coffer_auth::sigv4::Payload;
use coffer_store::{BucketRecord, ObjectRecord, StoreError, VersionChange, VersionRef};
use http::{Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;

use super::versioning::{read_version, requested_version, version_header};
use super::{authorized_bucket, insert_headers, small_body, xml_response};
use crate::authz::acl::{
    self, Acl, CannedAcl, Grant, Grantee, OWNERSHIP_CONFIG_KEY, ObjectOwnership, Permission,
    StoredAcl,
};
use crate::authz::public_access_block::PublicAccessBlock;
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::{ApiRequest, Dialect};
use crate::state::{AppState, ROOT_NAME, owner_id};
use crate::xml::{self, XmlWriter};

/// What an ACL applies to: the header names and OSS values differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclTarget {
    Bucket,
    Object,
}

/// An ACL a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestedAcl {
    /// A canned ACL (`x-amz-acl`, `x-oss-acl`, `x-oss-object-acl`).
    Canned(CannedAcl),
    /// Explicit grants (`x-amz-grant-*` headers, an `AccessControlPolicy` body).
    Grants(Vec<Grant>),
    /// OSS `x-oss-object-acl: default`: the object follows its bucket's ACL.
    InheritBucket,
}

/// The `x-amz-grant-*` headers and the permission each grants.
const GRANT_HEADERS: [(&str, Permission); 5] = [
    ("x-amz-grant-read", Permission::Read),
    ("x-amz-grant-write", Permission::Write),
    ("x-amz-grant-read-acp", Permission::ReadAcp),
    ("x-amz-grant-write-acp", Permission::WriteAcp),
    ("x-amz-grant-full-control", Permission::FullControl),
];

/// The XML namespace of `xsi:type` on S3 grantees.
const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

impl RequestedAcl {
    /// The ACL the request's headers ask for, if any. S3: `x-amz-acl` or the
    /// `x-amz-grant-*` headers (not both, as on S3); OSS: `x-oss-acl` (buckets) or
    /// `x-oss-object-acl` (objects; `default` follows the bucket).
    pub fn from_headers(req: &ApiRequest, target: AclTarget) -> ApiResult<Option<Self>> {
        match req.dialect {
            Dialect::S3 => s3_headers(req),
            Dialect::Oss => {
                let header = match target {
                    AclTarget::Bucket => "x-oss-acl",
                    AclTarget::Object => "x-oss-object-acl",
                };
                let Some(value) = req.header(header) else {
                    return Ok(None);
                };
                match (value, target) {
                    ("default", AclTarget::Object) => Ok(Some(RequestedAcl::InheritBucket)),
                    ("private" | "public-read" | "public-read-write", _) => Ok(Some(
                        RequestedAcl::Canned(CannedAcl::parse(value).expect("an OSS canned name")),
                    )),
                    _ => Err(ApiError::invalid_argument(format!(
                        "no such {} access control exists: {value}",
                        match target {
                            AclTarget::Bucket => "bucket",
                            AclTarget::Object => "object",
                        }
                    ))),
                }
            }
        }
    }

    /// The grants of the ACL on a resource `owner` owns in a bucket `bucket_owner` owns
    /// (`None`: inherit the bucket's).
    fn grants(&self, owner: &str, bucket_owner: &str) -> Option<Vec<Grant>> {
        match self {
            RequestedAcl::Canned(canned) => Some(canned.grants(owner, bucket_owner)),
            RequestedAcl::Grants(grants) => Some(grants.clone()),
            RequestedAcl::InheritBucket => None,
        }
    }

    /// Whether the ACL grants anything public. An inherited ACL is the bucket's, which was
    /// checked when it was put.
    fn is_public(&self) -> bool {
        match self {
            RequestedAcl::Canned(canned) => canned.is_public(),
            RequestedAcl::Grants(grants) => grants.iter().any(|g| g.grantee.is_public()),
            RequestedAcl::InheritBucket => false,
        }
    }

    /// Whether a bucket with ACLs off accepts it: the owner's (and the bucket owner's) full
    /// control and nothing else, as on AWS.
    fn allowed_when_enforced(&self, owner: &str, bucket_owner: &str) -> bool {
        match self {
            RequestedAcl::Canned(canned) => canned.allowed_when_enforced(),
            RequestedAcl::Grants(grants) => grants.iter().all(|g| {
                g.permission == Permission::FullControl
                    && [owner, bucket_owner]
                        .iter()
                        .any(|o| g.grantee == Grantee::CanonicalUser(owner_id(o)))
            }),
            RequestedAcl::InheritBucket => true,
        }
    }
}

fn s3_headers(req: &ApiRequest) -> ApiResult<Option<RequestedAcl>> {
    let mut grants = Vec::new();
    for (header, permission) in GRANT_HEADERS {
        for value in req.headers.get_all(header) {
            let value = value
                .to_str()
                .map_err(|_| ApiError::invalid_argument(format!("{header} is not text")))?;
            for grantee in parse_grantee_list(value)? {
                grants.push(Grant {
                    grantee,
                    permission,
                });
            }
        }
    }
    let canned = req.header("x-amz-acl");
    match (canned, grants.is_empty()) {
        (Some(_), false) => Err(ApiError::invalid_request(
            "Specifying both Canned ACLs and Header Grants is not allowed",
        )),
        (Some(name), true) => CannedAcl::parse(name.trim())
            .map(|c| Some(RequestedAcl::Canned(c)))
            .ok_or_else(|| ApiError::invalid_argument(format!("Invalid canned ACL: {name}"))),
        (None, false) => Ok(Some(RequestedAcl::Grants(grants))),
        (None, true) => Ok(None),
    }
}

/// One `x-amz-grant-*` value: `id="…", uri="…", emailAddress="…"`, comma-separated.
fn parse_grantee_list(value: &str) -> ApiResult<Vec<Grantee>> {
    let invalid = || ApiError::invalid_argument(format!("Invalid grant header value: {value}"));
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (kind, raw) = item.split_once('=').ok_or_else(invalid)?;
            let raw = raw.trim();
            let text = raw
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .unwrap_or(raw);
            match kind.trim().to_ascii_lowercase().as_str() {
                "id" => Ok(Grantee::CanonicalUser(text.to_owned())),
                "uri" => group(text),
                "emailaddress" => Err(unresolvable_email()),
                _ => Err(invalid()),
            }
        })
        .collect()
}

fn group(uri: &str) -> ApiResult<Grantee> {
    Grantee::group(uri)
        .ok_or_else(|| ApiError::invalid_argument(format!("Invalid group uri: {uri}")))
}

fn unresolvable_email() -> ApiError {
    ApiError::new(
        ErrorCode::UnresolvableGrantByEmailAddress,
        "The e-mail address you provided does not match any account on record: Coffer grants by canonical id or group.",
    )
}

fn malformed_acl() -> ApiError {
    ApiError::new(
        ErrorCode::MalformedACLError,
        "The XML you provided was not well-formed or did not validate against our published schema",
    )
}

/// `<AccessControlPolicy>` (S3 PutBucketAcl / PutObjectAcl body). The grantee's `xsi:type`
/// is implied by which child it has.
#[derive(Debug, Deserialize)]
struct PolicyXml {
    #[serde(rename = "Owner")]
    owner: Option<OwnerXml>,
    #[serde(rename = "AccessControlList")]
    list: Option<GrantListXml>,
}

#[derive(Debug, Deserialize)]
struct OwnerXml {
    #[serde(rename = "ID")]
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GrantListXml {
    #[serde(rename = "Grant", default)]
    grants: Vec<GrantXml>,
}

#[derive(Debug, Deserialize)]
struct GrantXml {
    #[serde(rename = "Grantee")]
    grantee: Option<GranteeXml>,
    #[serde(rename = "Permission")]
    permission: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GranteeXml {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "URI")]
    uri: Option<String>,
    #[serde(rename = "EmailAddress")]
    email: Option<String>,
}

/// Parses an `AccessControlPolicy` document for a resource `owner` owns: the Owner element
/// is required (MalformedXML without it, as on S3) and must name the owner (AccessDenied:
/// an ACL cannot give a resource away).
pub fn parse_policy(body: &[u8], owner: &str) -> ApiResult<Vec<Grant>> {
    let policy: PolicyXml = xml::parse(body)?;
    let named = policy
        .owner
        .and_then(|o| o.id)
        .ok_or_else(ApiError::malformed_xml)?;
    if named.trim() != owner_id(owner) {
        return Err(ApiError::access_denied("Access Denied"));
    }
    let list = policy.list.ok_or_else(malformed_acl)?;
    list.grants
        .into_iter()
        .map(|grant| {
            let grantee = grant.grantee.ok_or_else(malformed_acl)?;
            let grantee = match (grantee.id, grantee.uri, grantee.email) {
                (Some(id), None, None) => Grantee::CanonicalUser(id.trim().to_owned()),
                (None, Some(uri), None) => group(uri.trim())?,
                (None, None, Some(_)) => return Err(unresolvable_email()),
                _ => return Err(malformed_acl()),
            };
            let permission = grant
                .permission
                .as_deref()
                .map(str::trim)
                .and_then(Permission::parse)
                .ok_or_else(malformed_acl)?;
            Ok(Grant {
                grantee,
                permission,
            })
        })
        .collect()
}

/// Every principal's canonical id with its name (root and every user): grants name only
/// these, and documents show their names.
async fn known_principals(state: &AppState) -> ApiResult<BTreeMap<String, String>> {
    let mut known: BTreeMap<String, String> = state
        .meta
        .list_users()
        .await?
        .into_iter()
        .map(|user| (owner_id(&user.name), user.name))
        .collect();
    known.insert(owner_id(ROOT_NAME), ROOT_NAME.to_owned());
    Ok(known)
}

/// Refuses grants to canonical ids no principal has (InvalidArgument, as S3 answers).
async fn check_grantees(state: &AppState, grants: &[Grant]) -> ApiResult<()> {
    if !grants
        .iter()
        .any(|g| matches!(g.grantee, Grantee::CanonicalUser(_)))
    {
        return Ok(());
    }
    let known = known_principals(state).await?;
    match grants.iter().find_map(|g| match &g.grantee {
        Grantee::CanonicalUser(id) if !known.contains_key(id) => Some(id),
        _ => None,
    }) {
        Some(id) => Err(ApiError::invalid_argument(format!("Invalid id: {id}"))),
        None => Ok(()),
    }
}

/// The checks every ACL change makes: ACLs off refuse anything but the owner's own (`enforced`
/// names the error: AccessControlListNotSupported on a PUT, InvalidBucketAclWithObjectOwnership
/// at CreateBucket); BlockPublicAcls refuses public grants (AccessDenied); grants name known
/// principals. Returns whether the ACL is to be stored (not with ACLs off).
async fn check_change(
    state: &AppState,
    bucket: &BucketRecord,
    requested: &RequestedAcl,
    owner: &str,
    enforced_error: ErrorCode,
) -> ApiResult<bool> {
    let ownership = ObjectOwnership::of(bucket);
    if !ownership.acls_enabled() {
        if !requested.allowed_when_enforced(owner, &bucket.owner) {
            return Err(ApiError::new(
                enforced_error,
                "The bucket does not allow ACLs (its object ownership is BucketOwnerEnforced).",
            ));
        }
        return Ok(false);
    }
    if requested.is_public() && PublicAccessBlock::of(bucket).block_public_acls {
        return Err(ApiError::access_denied(
            "Access Denied: the bucket's public access block (BlockPublicAcls) refuses public ACLs",
        ));
    }
    if let RequestedAcl::Grants(grants) = requested {
        check_grantees(state, grants).await?;
    }
    Ok(true)
}

/// The stored form of a requested ACL on a resource `owner` owns.
fn stored_form(requested: &RequestedAcl, owner: &str, bucket_owner: &str) -> Option<StoredAcl> {
    match requested.grants(owner, bucket_owner) {
        Some(grants) => StoredAcl::of_grants(owner, grants),
        None => Some(StoredAcl {
            grants: Vec::new(),
            inherit_bucket: true,
        }),
    }
}

/// Who owns a new object version and what ACL it carries.
pub struct NewObjectAcl {
    /// The owner's name.
    pub owner: String,
    /// The stored ACL (`ObjectRecord::acl`).
    pub acl: Option<String>,
}

/// The owner and ACL of an object a write (PutObject, CopyObject, CreateMultipartUpload)
/// creates in `bucket`, from its headers: under BucketOwnerEnforced the bucket owner owns it
/// and no ACL is kept; under BucketOwnerPreferred `bucket-owner-full-control` makes the bucket
/// owner the owner; otherwise the writer owns it. An OSS write without `x-oss-object-acl` is
/// `default` (the bucket's ACL), an S3 write without ACL headers private.
pub async fn for_new_object(
    state: &AppState,
    req: &ApiRequest,
    bucket: &BucketRecord,
) -> ApiResult<NewObjectAcl> {
    let writer = req.principal.name();
    let requested = RequestedAcl::from_headers(req, AclTarget::Object)?.or(match req.dialect {
        Dialect::Oss => Some(RequestedAcl::InheritBucket),
        Dialect::S3 => None,
    });
    let ownership = ObjectOwnership::of(bucket);
    let owner = match (ownership, &requested) {
        (ObjectOwnership::BucketOwnerEnforced, _)
        | (
            ObjectOwnership::BucketOwnerPreferred,
            Some(RequestedAcl::Canned(CannedAcl::BucketOwnerFullControl)),
        ) => bucket.owner.clone(),
        _ => writer.to_owned(),
    };
    let Some(requested) = requested else {
        return Ok(NewObjectAcl { owner, acl: None });
    };
    let keep = check_change(
        state,
        bucket,
        &requested,
        writer,
        ErrorCode::AccessControlListNotSupported,
    )
    .await?;
    let acl = keep
        .then(|| stored_form(&requested, &owner, &bucket.owner))
        .flatten()
        .map(|stored| stored.to_json());
    Ok(NewObjectAcl { owner, acl })
}

/// The bucket config entries a CreateBucket asks for: its object ownership (S3
/// `x-amz-object-ownership`, BucketOwnerEnforced by default; OSS buckets are ObjectWriter,
/// since OSS clients always use ACLs) and its ACL. ACLs other than private on a bucket with
/// ACLs off are InvalidBucketAclWithObjectOwnership, as on S3.
pub async fn for_new_bucket(
    state: &AppState,
    req: &ApiRequest,
    draft: &BucketRecord,
) -> ApiResult<Vec<(String, String)>> {
    let ownership = match (req.dialect, req.header("x-amz-object-ownership")) {
        (Dialect::Oss, _) => ObjectOwnership::ObjectWriter,
        (Dialect::S3, None) => ObjectOwnership::BucketOwnerEnforced,
        (Dialect::S3, Some(name)) => ObjectOwnership::parse(name.trim()).ok_or_else(|| {
            ApiError::invalid_argument(format!("Invalid x-amz-object-ownership header: {name}"))
        })?,
    };
    let mut config = vec![(OWNERSHIP_CONFIG_KEY.to_owned(), ownership.name().to_owned())];
    let mut bucket = draft.clone();
    bucket.config.extend(config.iter().cloned());
    if let Some(requested) = RequestedAcl::from_headers(req, AclTarget::Bucket)? {
        let keep = check_change(
            state,
            &bucket,
            &requested,
            &bucket.owner,
            ErrorCode::InvalidBucketAclWithObjectOwnership,
        )
        .await?;
        if let Some(stored) = keep
            .then(|| stored_form(&requested, &bucket.owner, &bucket.owner))
            .flatten()
        {
            config.push((acl::CONFIG_KEY.to_owned(), stored.to_json()));
        }
    }
    Ok(config)
}

/// The ACL a `PUT ?acl` asks for: its headers or its body (S3 only), exactly one of them.
async fn requested_by_put(
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
    target: AclTarget,
    owner: &str,
) -> ApiResult<RequestedAcl> {
    let from_headers = RequestedAcl::from_headers(req, target)?;
    let body = small_body(req, body, payload).await?;
    let has_body = !body.iter().all(u8::is_ascii_whitespace);
    match (from_headers, has_body, req.dialect) {
        (Some(_), true, _) => Err(ApiError::invalid_request(
            "An ACL is given both in headers and in the body: give one of them",
        )),
        (Some(requested), false, _) => Ok(requested),
        (None, true, Dialect::S3) => Ok(RequestedAcl::Grants(parse_policy(&body, owner)?)),
        (None, _, _) => Err(ApiError::new(
            ErrorCode::MissingSecurityHeader,
            format!(
                "Your request was missing a required header: {}",
                match (req.dialect, target) {
                    (Dialect::S3, _) => "x-amz-acl",
                    (Dialect::Oss, AclTarget::Bucket) => "x-oss-acl",
                    (Dialect::Oss, AclTarget::Object) => "x-oss-object-acl",
                }
            ),
        )),
    }
}

/// `PUT /<bucket>?acl`.
pub async fn put_bucket(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let requested = requested_by_put(req, body, payload, AclTarget::Bucket, &bucket.owner).await?;
    let keep = check_change(
        state,
        &bucket,
        &requested,
        &bucket.owner,
        ErrorCode::AccessControlListNotSupported,
    )
    .await?;
    let stored = keep
        .then(|| stored_form(&requested, &bucket.owner, &bucket.owner))
        .flatten();
    state
        .meta
        .set_bucket_config(&bucket.name, acl::CONFIG_KEY, stored.map(|s| s.to_json()))
        .await?;
    super::empty_response(StatusCode::OK)
}

/// `GET /<bucket>?acl`.
pub async fn get_bucket(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let document = render(state, req, &Acl::of_bucket(&bucket)).await?;
    xml_response(StatusCode::OK, document)
}

/// `PUT /<bucket>/<key>?acl`: replaces the ACL of the named (or current) version.
pub async fn put_object(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let key = req.key()?.to_owned();
    let bucket = authorized_bucket(state, req).await?;
    let named = requested_version(req)?;
    let record = read_version(state, req, &bucket, &key, named.clone()).await?;
    let owner = Acl::of_object(&bucket, &record).owner().to_owned();
    let requested = requested_by_put(req, body, payload, AclTarget::Object, &owner).await?;
    let keep = check_change(
        state,
        &bucket,
        &requested,
        &owner,
        ErrorCode::AccessControlListNotSupported,
    )
    .await?;
    let stored = keep
        .then(|| stored_form(&requested, &owner, &bucket.owner))
        .flatten()
        .map(|s| s.to_json());
    // The version read above, by id: a write in between must not receive this ACL.
    let which = VersionRef::exactly(record.version_id.as_deref());
    let record = match state
        .meta
        .update_version(&bucket.name, &key, which, VersionChange::Acl(stored))
        .await
    {
        Err(StoreError::NoSuchVersion) if named.is_none() => Err(ApiError::no_such_key()),
        other => Ok(other?),
    }?;
    let mut response = super::empty_response(StatusCode::OK)?;
    add_version_header(&mut response, req, &bucket, &record);
    Ok(response)
}

/// `GET /<bucket>/<key>?acl`.
pub async fn get_object(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let key = req.key()?.to_owned();
    let bucket = authorized_bucket(state, req).await?;
    let record = read_version(state, req, &bucket, &key, requested_version(req)?).await?;
    let document = render(state, req, &Acl::of_object(&bucket, &record)).await?;
    let mut response = xml_response(StatusCode::OK, document)?;
    add_version_header(&mut response, req, &bucket, &record);
    Ok(response)
}

fn add_version_header(
    response: &mut Response<ResponseBody>,
    req: &ApiRequest,
    bucket: &BucketRecord,
    record: &ObjectRecord,
) {
    insert_headers(
        response,
        version_header(req, bucket, record.version_id.as_deref()),
    );
}

/// The `AccessControlPolicy` document of `acl` in the request's dialect: S3 lists the grants;
/// OSS names the canned ACL they amount to (`default` for an object that follows its bucket).
async fn render(state: &AppState, req: &ApiRequest, acl: &Acl) -> ApiResult<String> {
    let mut w = req.xml("AccessControlPolicy");
    w.start("Owner")
        .elem("ID", owner_id(acl.owner()))
        .elem("DisplayName", acl.owner())
        .end();
    w.start("AccessControlList");
    match req.dialect {
        Dialect::Oss => {
            let name = if acl.inherits_bucket() {
                "default"
            } else {
                acl::oss_canned_name(acl.grants())
            };
            w.elem("Grant", name);
        }
        Dialect::S3 => {
            let known = known_principals(state).await?;
            for grant in acl.grants() {
                write_s3_grant(&mut w, grant, &known);
            }
        }
    }
    Ok(w.finish())
}

fn write_s3_grant(w: &mut XmlWriter, grant: &Grant, known: &BTreeMap<String, String>) {
    w.start("Grant");
    match (&grant.grantee, grant.grantee.uri()) {
        (Grantee::CanonicalUser(id), _) => {
            w.start_with(
                "Grantee",
                &[("xmlns:xsi", XSI_NAMESPACE), ("xsi:type", "CanonicalUser")],
            )
            .elem("ID", id)
            .elem_opt("DisplayName", known.get(id))
            .end();
        }
        (_, uri) => {
            w.start_with(
                "Grantee",
                &[("xmlns:xsi", XSI_NAMESPACE), ("xsi:type", "Group")],
            )
            .elem_opt("URI", uri)
            .end();
        }
    }
    w.elem("Permission", grant.permission.name()).end();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_headers_parse_ids_groups_and_refuse_emails() {
        let grantees = parse_grantee_list(
            r#"id="abc", uri="http://acs.amazonaws.com/groups/global/AllUsers""#,
        )
        .expect("valid");
        assert_eq!(
            grantees,
            [Grantee::CanonicalUser("abc".into()), Grantee::AllUsers]
        );
        assert_eq!(
            parse_grantee_list(r#"emailAddress="a@b.c""#)
                .expect_err("refused")
                .code,
            ErrorCode::UnresolvableGrantByEmailAddress
        );
        for bad in [
            r#"uri="http://example.com/group""#,
            "nonsense",
            r#"name="x""#,
        ] {
            assert_eq!(
                parse_grantee_list(bad).expect_err("refused").code,
                ErrorCode::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn policies_parse_with_the_owner_named() {
        let owner = owner_id("alice");
        let body = format!(
            r#"<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>{owner}</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>{owner}</ID><DisplayName>alice</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AuthenticatedUsers</URI></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>"#
        );
        let grants = parse_policy(body.as_bytes(), "alice").expect("valid");
        assert_eq!(grants.len(), 2);
        assert_eq!(grants[1].grantee, Grantee::AuthenticatedUsers);
        assert_eq!(
            parse_policy(body.as_bytes(), "bob")
                .expect_err("refused")
                .code,
            ErrorCode::AccessDenied,
            "an ACL cannot give the resource away"
        );
        let no_owner = body.replace(&format!("<Owner><ID>{owner}</ID></Owner>"), "");
        assert_eq!(
            parse_policy(no_owner.as_bytes(), "alice")
                .expect_err("refused")
                .code,
            ErrorCode::MalformedXML
        );
        let bad_permission = body.replace(
            "<Permission>READ</Permission>",
            "<Permission>ALL</Permission>",
        );
        assert_eq!(
            parse_policy(bad_permission.as_bytes(), "alice")
                .expect_err("refused")
                .code,
            ErrorCode::MalformedACLError
        );
        assert_eq!(
            parse_policy(b"<AccessControlPolicy><Owner>", "alice")
                .expect_err("refused")
                .code,
            ErrorCode::MalformedXML
        );
    }
}
