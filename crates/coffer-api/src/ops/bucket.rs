//! ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation.

use std::collections::BTreeMap;

use coffer_auth::sigv4::Payload;
use coffer_store::{BucketRecord, StoreError, Versioning};
use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::{authorized_bucket, empty_response, iso8601, now_ms, small_body, xml_response};
use crate::body::ResponseBody;
use crate::bucket_config::object_lock::{OBJECT_LOCK_KEY, ObjectLockConfig};
use crate::bucket_config::to_json;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::{ApiRequest, Dialect};
use crate::state::AppState;
use crate::xml;

pub async fn list_buckets(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let buckets = state.meta.list_buckets().await?;
    // Filters and paging: `prefix`, then names after `marker` (OSS) or
    // `continuation-token` (S3), at most `max-keys` (OSS) / `max-buckets`.
    let prefix = req.param("prefix").unwrap_or_default();
    let after = req
        .param("marker")
        .or_else(|| req.param("continuation-token"));
    let limit_param = match req.dialect {
        Dialect::S3 => "max-buckets",
        Dialect::Oss => "max-keys",
    };
    let limit = req.query.number(limit_param, 1..=10_000)?.unwrap_or(10_000) as usize;
    // Root may use every bucket (`authorized_bucket`), so it is shown every bucket; the
    // owners are in the admin API's `GET buckets` (`coffer ls --owners`).
    let visible: Vec<_> = buckets
        .iter()
        .filter(|b| req.principal.is_root() || req.principal.is(&b.owner))
        .filter(|b| b.name.starts_with(prefix))
        .filter(|b| after.is_none_or(|after| b.name.as_str() > after))
        .collect();
    let truncated = visible.len() > limit;
    let page = &visible[..visible.len().min(limit)];
    let next = page.last().filter(|_| truncated).map(|b| b.name.as_str());
    let mut w = req.xml("ListAllMyBucketsResult");
    w.start("Owner")
        .elem("ID", req.principal.owner_id())
        .elem("DisplayName", req.principal.name())
        .end();
    w.start("Buckets");
    for bucket in page {
        w.start("Bucket")
            .elem("Name", &bucket.name)
            .elem("CreationDate", iso8601(bucket.created_ms));
        match req.dialect {
            Dialect::S3 => {
                w.elem("BucketRegion", &bucket.region);
            }
            // oss2 requires every one of these elements.
            Dialect::Oss => {
                let host = req.header("host").unwrap_or_default();
                w.elem("Location", oss_location(&bucket.region))
                    .elem("ExtranetEndpoint", host)
                    .elem("IntranetEndpoint", host)
                    .elem("Region", &bucket.region)
                    .elem("StorageClass", req.storage_class());
            }
        }
        w.end();
    }
    w.end();
    if !prefix.is_empty() {
        w.elem("Prefix", prefix);
    }
    match req.dialect {
        Dialect::S3 => {
            w.elem_opt("ContinuationToken", next);
        }
        Dialect::Oss => {
            w.elem("IsTruncated", truncated.to_string());
            w.elem_opt("NextMarker", next);
        }
    }
    xml_response(StatusCode::OK, w.finish())
}

pub async fn create_bucket(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let name = req.bucket()?.to_owned();
    validate_bucket_name(req.dialect, &name)?;
    let config = small_body(req, body, payload).await?;
    if !config.iter().all(u8::is_ascii_whitespace) {
        let parsed: xml::CreateBucketConfiguration = xml::parse(&config)?;
        let wanted = parsed.location_constraint.unwrap_or_default();
        let default_region = wanted.is_empty() && state.settings.region == "us-east-1";
        if wanted != state.settings.region && !default_region {
            return Err(ApiError::new(
                ErrorCode::IllegalLocationConstraintException,
                format!(
                    "The {wanted} location constraint is incompatible for the region specific endpoint this request was sent to ({}).",
                    state.settings.region
                ),
            ));
        }
    }
    let mut config = BTreeMap::new();
    if object_lock_requested(req)? {
        // Recorded with the bucket, in the same write that creates it.
        let lock = ObjectLockConfig::enabled_without_default();
        config.insert(OBJECT_LOCK_KEY.to_owned(), to_json(&lock)?);
    }
    let mut record = BucketRecord {
        name: name.clone(),
        owner: req.principal.name().to_owned(),
        region: state.settings.region.clone(),
        created_ms: now_ms(),
        // A bucket created with object lock is versioned from the start.
        versioning: if config.contains_key(OBJECT_LOCK_KEY) {
            Versioning::Enabled
        } else {
            Versioning::Unversioned
        },
        config,
    };
    // Its object ownership and ACL, recorded in the same write that creates it.
    let access = super::acl::for_new_bucket(state, req, &record).await?;
    record.config.extend(access);
    match state.meta.create_bucket(record).await {
        Ok(()) => {}
        Err(StoreError::BucketExists { owner }) if owner == req.principal.name() => {
            return Err(ApiError::new(
                ErrorCode::BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it.",
            ));
        }
        Err(StoreError::BucketExists { .. }) => {
            return Err(ApiError::new(
                ErrorCode::BucketAlreadyExists,
                "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
            ));
        }
        Err(other) => return Err(other.into()),
    }
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::LOCATION, format!("/{name}"))
        .body(ResponseBody::Empty)
        .map_err(|e| ApiError::internal("building a response", e))
}

/// Whether CreateBucket asks for object lock: S3's
/// `x-amz-bucket-object-lock-enabled: true` (`false` or absent: no;
/// anything else is InvalidArgument).
fn object_lock_requested(req: &ApiRequest) -> ApiResult<bool> {
    if req.dialect != Dialect::S3 {
        return Ok(false);
    }
    match req
        .header("x-amz-bucket-object-lock-enabled")
        .map(str::trim)
    {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(ApiError::invalid_argument(
            "x-amz-bucket-object-lock-enabled must be true or false",
        )),
    }
}

pub async fn head_bucket(state: &AppState, req: &ApiRequest) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    Response::builder()
        .status(StatusCode::OK)
        .header("x-amz-bucket-region", bucket.region)
        .body(ResponseBody::Empty)
        .map_err(|e| ApiError::internal("building a response", e))
}

pub async fn delete_bucket(
    state: &AppState,
    req: &ApiRequest,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    state.meta.delete_bucket(&bucket.name).await?;
    empty_response(StatusCode::NO_CONTENT)
}

pub async fn get_bucket_location(
    state: &AppState,
    req: &ApiRequest,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let mut w = req.xml("LocationConstraint");
    match req.dialect {
        // us-east-1 is written as an empty constraint, as S3 does.
        Dialect::S3 if bucket.region == "us-east-1" => {}
        Dialect::S3 => w.text(&bucket.region),
        Dialect::Oss => w.text(&oss_location(&bucket.region)),
    }
    let xml = w.finish();
    xml_response(StatusCode::OK, xml)
}

/// OSS names locations `oss-<region>`.
fn oss_location(region: &str) -> String {
    format!("oss-{region}")
}

/// S3's bucket naming rules: 3–63 characters of lower-case letters, digits,
/// dots and hyphens, starting and ending with a letter or digit, no `..`,
/// not shaped like an IP address, no reserved prefixes or suffixes. OSS
/// allows no dots at all.
pub fn validate_bucket_name(dialect: Dialect, name: &str) -> ApiResult<()> {
    let invalid = || {
        ApiError::new(
            ErrorCode::InvalidBucketName,
            "The specified bucket is not valid.",
        )
    };
    let bytes = name.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let valid = (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !name.starts_with("xn--")
        && !name.starts_with("sthree-")
        && !name.ends_with("-s3alias")
        && !name.ends_with("--ol-s3")
        && !(dialect == Dialect::Oss && name.contains('.'));
    if valid { Ok(()) } else { Err(invalid()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for good in ["abc", "my-bucket.data", "a1b2", &"a".repeat(63)] {
            assert!(validate_bucket_name(Dialect::S3, good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            "ABC",
            "-abc",
            "abc-",
            "a..b",
            "192.168.1.1",
            "a_b",
            "xn--abc",
            "a b",
            &"a".repeat(64),
            "_coffer",
        ] {
            assert!(validate_bucket_name(Dialect::S3, bad).is_err(), "{bad}");
            assert!(validate_bucket_name(Dialect::Oss, bad).is_err(), "{bad}");
        }
        assert!(validate_bucket_name(Dialect::Oss, "my-bucket-1").is_ok());
        assert!(
            validate_bucket_name(Dialect::Oss, "my.bucket").is_err(),
            "OSS bucket names have no dots"
        );
    }
}
