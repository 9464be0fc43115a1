//! Which signature scheme a request uses, so that the server can pick the
//! verifier and the error dialect (an OSS signature gets OSS errors).

use http::HeaderMap;

use crate::canonical::decoded_query_pairs;

/// A request signature scheme, header or presigned (query) form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `Authorization: AWS4-HMAC-SHA256 …` ([`crate::sigv4::verify`]).
    SigV4,
    /// `X-Amz-Algorithm`/`X-Amz-Credential`/`X-Amz-Signature` query parameters.
    SigV4Presigned,
    /// `Authorization: OSS <ak>:<signature>` ([`crate::oss_v1::verify`]).
    OssV1,
    /// `OSSAccessKeyId`/`Expires`/`Signature` query parameters.
    OssV1Presigned,
    /// `Authorization: OSS4-HMAC-SHA256 …` ([`crate::oss_v4::verify`]).
    OssV4,
    /// `x-oss-signature-version`/`x-oss-credential`/`x-oss-signature` query parameters.
    OssV4Presigned,
    /// `Authorization: AWS <ak>:<signature>` ([`crate::sigv2::verify`]).
    SigV2,
    /// `AWSAccessKeyId`/`Expires`/`Signature` query parameters.
    SigV2Presigned,
}

impl Scheme {
    /// Whether the request speaks the OSS dialect (OSS error codes, `x-oss-*`).
    pub fn is_oss(self) -> bool {
        matches!(
            self,
            Self::OssV1 | Self::OssV1Presigned | Self::OssV4 | Self::OssV4Presigned
        )
    }

    /// Whether the signature is in the query string.
    pub fn is_presigned(self) -> bool {
        matches!(
            self,
            Self::SigV4Presigned
                | Self::OssV1Presigned
                | Self::OssV4Presigned
                | Self::SigV2Presigned
        )
    }
}

/// The scheme a request claims, from its `Authorization` header or, when
/// there is none, its query parameters. `None`: the request is anonymous.
///
/// Only the shape is looked at; the verifier of the scheme checks the rest
/// (including a request that mixes a header with query authentication).
/// An `Authorization` header of another `OSS…` type (the legacy `OSS2`) is
/// reported as [`Scheme::OssV1`], whose verifier rejects it in the OSS
/// dialect; `AWS` followed by a space (or nothing) as [`Scheme::SigV2`];
/// any other header type (`AWS4-HMAC-SHA256`…) as [`Scheme::SigV4`], likewise.
pub fn detect(headers: &HeaderMap, raw_query: &str) -> Option<Scheme> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let value = value.as_bytes().trim_ascii_start();
        return Some(if value.starts_with(b"OSS4-HMAC-SHA256") {
            Scheme::OssV4
        } else if value.starts_with(b"OSS") {
            Scheme::OssV1
        } else if value.strip_prefix(b"AWS").is_some_and(|rest| {
            rest.is_empty() || rest.starts_with(b" ") || rest.starts_with(b"\t")
        }) {
            Scheme::SigV2
        } else {
            Scheme::SigV4
        });
    }
    let mut found = None;
    for (name, _) in decoded_query_pairs(raw_query) {
        let scheme = match name.as_slice() {
            b"X-Amz-Algorithm" | b"X-Amz-Credential" | b"X-Amz-Signature" => Scheme::SigV4Presigned,
            b"x-oss-signature-version" | b"x-oss-credential" | b"x-oss-signature" => {
                Scheme::OssV4Presigned
            }
            b"OSSAccessKeyId" => Scheme::OssV1Presigned,
            b"AWSAccessKeyId" => Scheme::SigV2Presigned,
            _ => continue,
        };
        // SigV4, OSS V4, OSS V1, SigV2 in that order: a deterministic choice when a
        // request carries several; the chosen verifier then rejects the mix.
        found = Some(match found {
            Some(previous) if rank(previous) <= rank(scheme) => previous,
            _ => scheme,
        });
    }
    found
}

fn rank(scheme: Scheme) -> u8 {
    match scheme {
        Scheme::SigV4 | Scheme::SigV4Presigned => 0,
        Scheme::OssV4 | Scheme::OssV4Presigned => 1,
        Scheme::OssV1 | Scheme::OssV1Presigned => 2,
        Scheme::SigV2 | Scheme::SigV2Presigned => 3,
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn auth(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("test header"),
        );
        map
    }

    #[test]
    fn detects_header_schemes() {
        let cases = [
            (
                "AWS4-HMAC-SHA256 Credential=a/b/c/s3/aws4_request",
                Scheme::SigV4,
            ),
            ("OSS AKIDEXAMPLE:c2lnbmF0dXJl", Scheme::OssV1),
            (
                "OSS4-HMAC-SHA256 Credential=a/b/c/oss/aliyun_v4_request",
                Scheme::OssV4,
            ),
            ("OSS2 AccessKeyId:a,Signature:b", Scheme::OssV1),
            ("Bearer x", Scheme::SigV4),
            (
                "AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g=",
                Scheme::SigV2,
            ),
            (" AWS\tAK:sig", Scheme::SigV2),
            ("AWS", Scheme::SigV2),
            ("AWS4-HMAC-SHA256", Scheme::SigV4),
            ("AWSAK:sig", Scheme::SigV4),
        ];
        for (value, scheme) in cases {
            assert_eq!(detect(&auth(value), ""), Some(scheme), "{value}");
        }
        // The header wins over query parameters.
        assert_eq!(
            detect(&auth("OSS a:b"), "X-Amz-Signature=1"),
            Some(Scheme::OssV1)
        );
    }

    #[test]
    fn detects_query_schemes() {
        let none = HeaderMap::new();
        assert_eq!(detect(&none, ""), None);
        assert_eq!(detect(&none, "uploads&prefix=a+b"), None);
        assert_eq!(
            detect(&none, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00"),
            Some(Scheme::SigV4Presigned)
        );
        assert_eq!(
            detect(&none, "OSSAccessKeyId=AK&Expires=1&Signature=x"),
            Some(Scheme::OssV1Presigned)
        );
        assert_eq!(
            detect(&none, "x-oss-credential=AK%2F2026&x-oss-signature=00"),
            Some(Scheme::OssV4Presigned)
        );
        assert_eq!(
            detect(&none, "OSSAccessKeyId=AK&X-Amz-Signature=00"),
            Some(Scheme::SigV4Presigned)
        );
        assert_eq!(
            detect(&none, "AWSAccessKeyId=AK&Expires=1&Signature=x%2By%3D"),
            Some(Scheme::SigV2Presigned)
        );
        assert_eq!(
            detect(&none, "AWSAccessKeyId=AK&X-Amz-Signature=00"),
            Some(Scheme::SigV4Presigned)
        );
        assert_eq!(
            detect(&none, "AWSAccessKeyId=AK&OSSAccessKeyId=AK"),
            Some(Scheme::OssV1Presigned)
        );
        assert!(Scheme::OssV4Presigned.is_oss() && Scheme::OssV4Presigned.is_presigned());
        assert!(!Scheme::SigV2.is_oss() && !Scheme::SigV2Presigned.is_oss());
        assert!(Scheme::SigV2Presigned.is_presigned() && !Scheme::SigV2.is_presigned());
        assert!(!Scheme::SigV4.is_oss() && !Scheme::OssV1.is_presigned());
    }
}
