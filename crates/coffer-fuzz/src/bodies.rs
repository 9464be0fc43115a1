//! Request bodies and headers the API parses: every XML body
//! (DeleteObjects, CompleteMultipartUpload, CreateBucketConfiguration,
//! bucket encryption in both dialects, OSS httpsConfig, lifecycle rules in
//! both dialects, object lock, OSS WORM periods, tag sets), the bucket policy
//! (JSON), the SSE-KMS encryption context header and the `Range` header.
//!
//! Bad input must come back as a client error (4xx) with an S3 code, never
//! a panic and never a 500.

use coffer_api::bucket_config::tags::{TagSet, TagTarget};
use coffer_api::bucket_config::{lifecycle, object_lock, worm};
use coffer_api::error::ApiResult;
use coffer_api::fuzzing::{
    HttpsConfig, RangeRequest, parse_bucket_encryption, parse_encryption_context, parse_range,
    validate_bucket_policy,
};
use coffer_api::request::Dialect;
use coffer_api::xml::{self, CompleteRequest, CreateBucketConfiguration, DeleteRequest};
use coffer_crypto::sealed::{MAX_PART_SIZE, plan_range};

/// Passes an `Ok` through; asserts that an error is a client error.
fn client_error<T>(result: ApiResult<T>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(error) => {
            let (code, status) = (error.code, error.status());
            assert!(status.is_client_error(), "{code} has status {status}");
            None
        }
    }
}

/// Every XML request body parser, on the same bytes.
pub fn xml_body(data: &[u8]) {
    client_error(xml::parse::<DeleteRequest>(data));
    client_error(xml::parse::<CreateBucketConfiguration>(data));
    if let Some(complete) = client_error(xml::parse::<CompleteRequest>(data)) {
        // What complete_upload looks at next.
        let _ = complete
            .parts
            .windows(2)
            .all(|w| w[0].part_number < w[1].part_number);
    }
    for dialect in [Dialect::S3, Dialect::Oss] {
        if let Some(rule) = client_error(parse_bucket_encryption(dialect, data)) {
            assert!(
                ["AES256", "SM4", "KMS"].contains(&rule.algorithm.as_str()),
                "bucket encryption accepted algorithm {:?}",
                rule.algorithm
            );
        }
    }
    // Data-protection bucket configs: what parses also renders in both dialects.
    for parsed in [lifecycle::parse_s3(data), lifecycle::parse_oss(data)] {
        if let Some(config) = client_error(parsed) {
            assert!(!config.rules.is_empty() && config.rules.len() <= lifecycle::MAX_RULES);
            let _ = (
                lifecycle::render_s3(&config),
                lifecycle::render_oss(&config),
            );
        }
    }
    if let Some(config) = client_error(object_lock::parse(data)) {
        let _ = (
            object_lock::render(&config),
            object_lock::default_retention(&config),
        );
    }
    if let Some(days) = client_error(worm::parse_period(data)) {
        assert!((1..=worm::MAX_RETENTION_DAYS).contains(&days));
    }
    for target in [TagTarget::Object, TagTarget::Bucket] {
        client_error(TagSet::parse_xml(data, target));
        if let Ok(text) = std::str::from_utf8(data) {
            client_error(TagSet::parse_header(text, target));
        }
    }
    if let Some(config) = client_error(HttpsConfig::parse(data)) {
        assert!(
            config.versions.iter().all(|v| v.starts_with("TLSv1.")),
            "httpsConfig accepted versions {:?}",
            config.versions
        );
        assert!(
            !config.enable
                || config
                    .versions
                    .iter()
                    .any(|v| v == "TLSv1.2" || v == "TLSv1.3"),
            "httpsConfig enabled without a version Coffer speaks"
        );
    }
}

/// The bucket policy (`PUT ?policy`) as PutBucketPolicy validates it, in both dialects: a
/// client error (MalformedPolicy) or a document `coffer-policy` parsed whole. (The
/// evaluation has its own target in `coffer-policy`'s.)
pub fn bucket_policy(data: &[u8]) {
    for dialect in [Dialect::S3, Dialect::Oss] {
        client_error(validate_bucket_policy(data, "fuzz-bucket", dialect));
    }
}

/// `x-amz-server-side-encryption-context`: base64 of a JSON object.
pub fn sse_context(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(context) = client_error(parse_encryption_context(text)) {
        assert!(
            !context.contains_key("aws:s3:arn"),
            "a client set the aws:s3:arn context"
        );
    }
}

/// The `Range` header against an object size. Input: the size in decimal
/// on the first line (1000 if it does not parse), the header value after.
pub fn range(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (size, header) = text.split_once('\n').unwrap_or(("", text));
    let size = size.trim().parse::<u64>().unwrap_or(1000);
    let Some(request) = client_error(parse_range(Some(header), size)) else {
        return;
    };
    let RangeRequest::Part(range) = request else {
        return;
    };
    assert!(
        range.start < range.end && range.end <= size,
        "range {range:?} is not a non-empty part of {size} bytes"
    );
    // Every range the API accepts must be one the sealed reader can plan.
    if size <= MAX_PART_SIZE {
        let plan = plan_range(size, range.clone()).unwrap_or_else(|_| {
            panic!("accepted range {range:?} of {size} bytes cannot be planned")
        });
        assert_eq!(plan.len, range.end - range.start, "planned length");
    }
}
