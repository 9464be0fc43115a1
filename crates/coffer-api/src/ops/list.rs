//! ListObjects (V1) and ListObjectsV2.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coffer_store::ListQuery;
use http::{Response, StatusCode};

use super::object::object_type;
use super::{authorized_bucket, iso8601, quoted, xml_response};
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult};
use crate::request::{ApiRequest, Dialect};
use crate::state::{AppState, owner_id};
use crate::xml::{encode_key, is_xml_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

const MAX_KEYS: i64 = 1000;

pub async fn list_objects(
    state: &AppState,
    req: &ApiRequest,
    version: Version,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let q = &req.query;
    let url_encoded = req.url_encoding()?;
    let max_keys = max_keys(req)?;
    let prefix = req.param("prefix").unwrap_or_default().to_owned();
    let delimiter = req.param("delimiter").map(str::to_owned);
    let start_after = match version {
        Version::V1 => req.param("marker").map(str::to_owned),
        Version::V2 => match req.param("continuation-token") {
            Some(token) => Some(decode_token(token)?),
            None => req.param("start-after").map(str::to_owned),
        },
    };
    let query = ListQuery {
        prefix: prefix.clone(),
        delimiter: delimiter.clone(),
        start_after,
        max_keys,
    };
    let page = state.meta.list_objects(&bucket.name, &query).await?;

    let enc = |s: &str| encode_key(s, url_encoded);
    let mut w = req.xml("ListBucketResult");
    w.elem("Name", &bucket.name);
    match version {
        // ListObjects (V1) answers its Prefix as given, even with
        // `encoding-type=url`, and botocore (which asks for url on every
        // listing) does not decode it; only a prefix XML cannot carry is
        // encoded.
        Version::V1 => w.elem(
            "Prefix",
            encode_key(&prefix, url_encoded && !is_xml_text(&prefix)),
        ),
        Version::V2 => w.elem("Prefix", enc(&prefix)),
    };
    match version {
        Version::V1 => {
            w.elem("Marker", enc(q.get("marker").unwrap_or_default()));
            if page.is_truncated {
                w.elem_opt("NextMarker", page.next_marker.as_deref().map(enc));
            }
        }
        Version::V2 => {
            w.elem_opt("ContinuationToken", q.get("continuation-token"));
            w.elem_opt("StartAfter", q.get("start-after").map(enc));
            w.elem(
                "KeyCount",
                (page.objects.len() + page.common_prefixes.len()).to_string(),
            );
            if page.is_truncated {
                w.elem_opt(
                    "NextContinuationToken",
                    page.next_marker.as_deref().map(encode_token),
                );
            }
        }
    }
    w.elem("MaxKeys", max_keys.to_string());
    w.elem_opt("Delimiter", delimiter.as_deref().map(enc));
    if url_encoded {
        w.elem("EncodingType", "url");
    }
    w.elem("IsTruncated", page.is_truncated.to_string());
    let with_owner = version == Version::V1 || q.get("fetch-owner") == Some("true");
    for (key, object) in &page.objects {
        w.start("Contents")
            .elem("Key", enc(key))
            .elem("LastModified", iso8601(object.last_modified_ms))
            .elem("ETag", quoted(&object.etag));
        if req.dialect == Dialect::Oss {
            w.elem("Type", object_type(object));
        }
        w.elem("Size", object.size.to_string());
        if with_owner {
            w.start("Owner")
                .elem("ID", owner_id(&object.owner))
                .elem("DisplayName", &object.owner)
                .end();
        }
        w.elem("StorageClass", req.storage_class()).end();
    }
    for prefix in &page.common_prefixes {
        w.start("CommonPrefixes").elem("Prefix", enc(prefix)).end();
    }
    xml_response(StatusCode::OK, w.finish())
}

/// The page size a listing asks for (`max-keys`), at most 1000 (the default).
pub fn max_keys(req: &ApiRequest) -> ApiResult<usize> {
    Ok(req
        .query
        .number("max-keys", 0..=i64::MAX)?
        .unwrap_or(MAX_KEYS)
        .min(MAX_KEYS) as usize)
}

fn encode_token(marker: &str) -> String {
    URL_SAFE_NO_PAD.encode(marker.as_bytes())
}

fn decode_token(token: &str) -> ApiResult<String> {
    URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| ApiError::invalid_argument("The continuation token provided is incorrect"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let key = "dir/ä b+c";
        assert_eq!(decode_token(&encode_token(key)).expect("valid"), key);
        assert!(decode_token("!!!").is_err());
    }
}
