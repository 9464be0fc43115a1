//! The request as a policy sees it: who asks (the caller's ARN, account and ids) and the
//! values of the condition keys the server fills (docs/access-control.md lists them).

use coffer_auth::Scheme;
use coffer_policy::{Caller, Context};

use crate::identity::{ACCOUNT_ID, CallerIdentity};
use coffer_store::ObjectRecord;

use crate::bucket_config::tags::{TagSet, TagTarget};
use crate::request::{ApiRequest, Dialect};
use crate::state::Principal;

/// The caller as `coffer-policy` matches principals (`None`: anonymous).
pub fn caller(identity: Option<&CallerIdentity>) -> Caller<'_> {
    identity.map_or(Caller::Anonymous, CallerIdentity::caller)
}

/// The condition keys every request has (transport, time, caller, signature), plus the
/// request's own that operations define and that are present only when the request carries
/// them (SSE, ACL and tagging headers, listing parameters, `versionId`).
pub fn of_request(req: &ApiRequest, principal: &Principal) -> Context {
    let mut context = Context::new();
    context.set(
        "aws:SecureTransport",
        if req.tls.is_some() { "true" } else { "false" },
    );
    if let Some(tls) = &req.tls {
        context.set("s3:TlsVersion", format!("{:.1}", tls.version.number()));
    }
    context.set("aws:SourceIp", req.peer.ip().to_canonical().to_string());
    let now_ms = crate::clock::now_ms();
    context.set("aws:CurrentTime", crate::clock::iso8601(now_ms));
    context.set("aws:EpochTime", (now_ms / 1000).to_string());
    if let Some(identity) = CallerIdentity::of(principal) {
        context.set("aws:PrincipalArn", identity.arn);
        context.set("aws:PrincipalAccount", ACCOUNT_ID);
        context.set("aws:userid", identity.user_id);
        if let Principal::User(name) = principal {
            context.set("aws:username", name.clone());
            context.set("aws:PrincipalType", "User");
        } else {
            context.set("aws:PrincipalType", "Account");
        }
    }
    if let Some(scheme) = req.scheme {
        context.set("s3:signatureversion", signature_version(scheme));
        context.set(
            "s3:authType",
            if req.form_upload {
                "POST"
            } else if scheme.is_presigned() {
                "REST-QUERY-STRING"
            } else {
                "REST-HEADER"
            },
        );
    }
    // Headers that condition keys of the same name read, as the request sent them.
    for (key, suffix) in [
        ("s3:x-amz-acl", "acl"),
        ("s3:x-amz-content-sha256", "content-sha256"),
        ("s3:x-amz-copy-source", "copy-source"),
        ("s3:x-amz-metadata-directive", "metadata-directive"),
        ("s3:x-amz-storage-class", "storage-class"),
        (
            "s3:x-amz-server-side-encryption-customer-algorithm",
            "server-side-encryption-customer-algorithm",
        ),
    ] {
        if let Some(value) = req.header(&format!("x-amz-{suffix}")) {
            context.set(key, value);
        }
    }
    if req.dialect == Dialect::Oss
        && let Some(acl) = req
            .header("x-oss-object-acl")
            .or_else(|| req.header("x-oss-acl"))
    {
        context.set("s3:x-amz-acl", acl);
    }
    encryption(req, &mut context);
    request_tags(req, &mut context);
    for (key, param) in [
        ("s3:prefix", "prefix"),
        ("s3:delimiter", "delimiter"),
        ("s3:max-keys", "max-keys"),
        ("s3:VersionId", "versionId"),
    ] {
        // Present even when empty (`prefix=`): AWS compares the value sent.
        if let Some(value) = req.query.get(param) {
            context.set(key, value);
        }
    }
    context
}

/// `s3:signatureversion`: what AWS names each scheme (OSS's by analogy).
fn signature_version(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::SigV4 | Scheme::SigV4Presigned => "AWS4-HMAC-SHA256",
        Scheme::SigV2 | Scheme::SigV2Presigned => "AWS",
        Scheme::OssV4 | Scheme::OssV4Presigned => "OSS4-HMAC-SHA256",
        Scheme::OssV1 | Scheme::OssV1Presigned => "OSS",
    }
}

/// `s3:x-amz-server-side-encryption` and its key id, from the request's headers (never the
/// bucket's default: AWS's keys describe the request). OSS names `KMS` what S3 calls
/// `aws:kms`.
fn encryption(req: &ApiRequest, context: &mut Context) {
    let mode = req.vendor_header("server-side-encryption");
    if let Some(mode) = mode {
        let mode = match (req.dialect, mode) {
            (Dialect::Oss, "KMS") => "aws:kms",
            (_, other) => other,
        };
        context.set("s3:x-amz-server-side-encryption", mode);
    }
    let key_id = match req.dialect {
        Dialect::S3 => req.header("x-amz-server-side-encryption-aws-kms-key-id"),
        Dialect::Oss => req.header("x-oss-server-side-encryption-key-id"),
    };
    if let Some(key_id) = key_id {
        context.set("s3:x-amz-server-side-encryption-aws-kms-key-id", key_id);
    }
}

/// `s3:RequestObjectTag/<k>` and `s3:RequestObjectTagKeys` from the tagging header of a
/// write. A header that does not parse adds nothing: the operation refuses it.
fn request_tags(req: &ApiRequest, context: &mut Context) {
    let Some(header) = req.vendor_header("tagging") else {
        return;
    };
    let Ok(tags) = TagSet::parse_header(header, TagTarget::Object) else {
        return;
    };
    for (key, value) in &tags.tags {
        context.set(&format!("s3:RequestObjectTag/{key}"), value.clone());
    }
    context.set_all(
        "s3:RequestObjectTagKeys",
        tags.tags.into_iter().map(|(k, _)| k).collect(),
    );
}

/// `s3:ExistingObjectTag/<k>`: the tags of the object the request reads or changes.
pub fn existing_tags(record: &ObjectRecord, context: &mut Context) {
    for (key, value) in &record.tags {
        context.set(&format!("s3:ExistingObjectTag/{key}"), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{root_arn, user_arn, user_id};

    #[test]
    fn identities_have_aws_shapes() {
        assert_eq!(root_arn(), "arn:aws:iam::000000000000:root");
        assert_eq!(user_arn("alice"), "arn:aws:iam::000000000000:user/alice");
        let id = user_id("alice");
        assert!(id.len() == 21 && id.starts_with("AIDA"), "{id}");
        assert_ne!(id, user_id("bob"));
    }

    #[test]
    fn signature_versions_as_aws_names_them() {
        assert_eq!(signature_version(Scheme::SigV2Presigned), "AWS");
        assert_eq!(signature_version(Scheme::SigV4), "AWS4-HMAC-SHA256");
        assert_eq!(signature_version(Scheme::OssV1), "OSS");
        assert!(matches!(caller(None), Caller::Anonymous));
    }
}
