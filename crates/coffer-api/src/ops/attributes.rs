//! GetObjectAttributes (`GET /bucket/key?attributes`): an object's ETag,
//! checksum, parts, storage class and size, as `x-amz-object-attributes`
//! asks, without its body.

use coffer_auth::amz_time::format_http_date;
use http::{Response, StatusCode};

use super::checksum::checksum_element;
use super::get::part_sizes;
use super::object::object_type;
use super::{authorized_bucket, insert_headers, utc_of_ms, versioning, xml_response};
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult};
use crate::request::ApiRequest;
use crate::state::AppState;

/// The attributes a request may ask for.
const ATTRIBUTES: [&str; 5] = [
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];
/// Most parts listed at once.
const MAX_PARTS: i64 = 1000;

/// The attribute names of `x-amz-object-attributes` (one header or many,
/// comma-separated), checked.
fn requested(req: &ApiRequest) -> ApiResult<Vec<String>> {
    let mut names = Vec::new();
    for value in req.headers.get_all("x-amz-object-attributes") {
        let text = value
            .to_str()
            .map_err(|_| ApiError::invalid_argument("Invalid attribute name specified."))?;
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !ATTRIBUTES.contains(&name) {
                return Err(ApiError::invalid_argument(
                    "Invalid attribute name specified.",
                ));
            }
            names.push(name.to_owned());
        }
    }
    if names.is_empty() {
        return Err(ApiError::invalid_request(
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty",
        ));
    }
    Ok(names)
}

/// A part-list header (`x-amz-max-parts`, `x-amz-part-number-marker`) that
/// must be a number in `range` when present.
fn number_header(
    req: &ApiRequest,
    name: &str,
    range: std::ops::RangeInclusive<i64>,
) -> ApiResult<Option<i64>> {
    match req.header(name).map(|t| t.trim().parse::<i64>()) {
        None => Ok(None),
        Some(Ok(n)) if range.contains(&n) => Ok(Some(n)),
        Some(_) => Err(ApiError::invalid_argument(format!(
            "Header {name} must be an integer between {} and {}",
            range.start(),
            range.end()
        ))),
    }
}

pub async fn get_object_attributes(
    state: &AppState,
    req: &ApiRequest,
) -> ApiResult<Response<ResponseBody>> {
    let key = req.key()?;
    let bucket = authorized_bucket(state, req).await?;
    let wanted = requested(req)?;
    let max_parts = number_header(req, "x-amz-max-parts", 0..=i64::MAX)?
        .unwrap_or(MAX_PARTS)
        .min(MAX_PARTS) as usize;
    let marker = number_header(req, "x-amz-part-number-marker", 0..=10_000)?.unwrap_or(0) as u32;
    let which = versioning::requested_version(req)?;
    let record = versioning::read_version(state, req, &bucket, key, which).await?;
    let wants = |name: &str| wanted.iter().any(|w| w == name);

    let mut w = req.xml("GetObjectAttributesResponse");
    if wants("ETag") {
        w.elem("ETag", &record.etag);
    }
    if wants("Checksum")
        && let Some(checksum) = &record.checksum
    {
        w.start("Checksum");
        checksum_element(&mut w, checksum);
        w.elem_opt("ChecksumType", record.checksum_type.as_deref());
        w.end();
    }
    if wants("ObjectParts") && object_type(&record) == "Multipart" {
        let sizes = part_sizes(&record, None);
        let after: Vec<_> = record
            .extents
            .iter()
            .zip(&sizes)
            .filter(|(e, _)| e.part_number.unwrap_or_default() > marker)
            .collect();
        let page = &after[..after.len().min(max_parts)];
        let truncated = page.len() < after.len();
        let next_marker = page
            .last()
            .and_then(|(e, _)| e.part_number)
            .unwrap_or(marker);
        w.start("ObjectParts")
            .elem("PartsCount", record.extents.len().to_string())
            .elem("PartNumberMarker", marker.to_string())
            .elem("NextPartNumberMarker", next_marker.to_string())
            .elem("MaxParts", max_parts.to_string())
            .elem("IsTruncated", truncated.to_string());
        for (extent, size) in page {
            w.start("Part")
                .elem(
                    "PartNumber",
                    extent.part_number.unwrap_or_default().to_string(),
                )
                .elem("Size", size.to_string());
            if let Some(checksum) = &extent.checksum {
                checksum_element(&mut w, checksum);
            }
            w.end();
        }
        w.end();
    }
    if wants("StorageClass") {
        w.elem("StorageClass", req.storage_class());
    }
    if wants("ObjectSize") {
        w.elem("ObjectSize", record.size.to_string());
    }
    let mut response = xml_response(StatusCode::OK, w.finish())?;
    let modified = format_http_date(utc_of_ms(record.last_modified_ms));
    if let Ok(value) = http::HeaderValue::from_str(&modified) {
        response
            .headers_mut()
            .insert(http::header::LAST_MODIFIED, value);
    }
    insert_headers(
        &mut response,
        versioning::version_header(req, &bucket, record.version_id.as_deref()),
    );
    Ok(response)
}
