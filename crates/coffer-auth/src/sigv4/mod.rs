//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`): verification of header and
//! presigned authentication, and signing for our own clients.
//!
//! The canonical request is built from the request exactly as received: the
//! path is used verbatim (S3 neither normalises nor re-encodes it), the query
//! is decoded and re-encoded per RFC 3986 and sorted, and the signed headers
//! are trimmed with inner whitespace runs collapsed.
//! See <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html>.

mod sign;

use http::{HeaderMap, HeaderName};
use time::{Duration, OffsetDateTime};

pub use sign::{presign, sign};

pub use crate::chunk_signer::ChunkSigner;
use crate::credentials::{self, Credentials};
pub use crate::signing::SigningParams;
use crate::signing::{scope, signing_key};
pub use crate::verified::{Payload, Verified};

use crate::amz_time::{format_amz_date, parse_amz_date, parse_http_date};
use crate::canonical::{canonical_query_string, decoded_query_pairs, push_canonical_header_value};
use crate::error::AuthError;
use crate::mac::{constant_time_eq, decode_hex32, hmac_sha256, sha256};
use crate::scheme::Scheme;
use crate::secret::Secret;

/// The algorithm name, in the `Authorization` header and `X-Amz-Algorithm`.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// `x-amz-content-sha256` for a body that is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// `x-amz-content-sha256` for aws-chunked with chunk signatures.
pub const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// `x-amz-content-sha256` for aws-chunked with chunk and trailer signatures.
pub const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
/// `x-amz-content-sha256` for aws-chunked with an unsigned trailer.
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/// Largest allowed difference between the request time and ours.
pub const MAX_SKEW: Duration = Duration::minutes(15);
/// Longest allowed presigned URL validity (`X-Amz-Expires`), one week.
pub const MAX_PRESIGNED_EXPIRES: u32 = 604_800;

/// The parts of a request that SigV4 covers, exactly as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The HTTP method, e.g. `PUT`.
    pub method: &'a str,
    /// The request path exactly as received, still percent-encoded.
    pub raw_path: &'a str,
    /// The query string as received, without the `?`.
    pub raw_query: &'a str,
    /// The request headers. `host` must be present (for HTTP/2, the caller
    /// inserts it from `:authority`).
    pub headers: &'a HeaderMap,
}

/// Finds the secret key of an access key id.
pub trait SecretLookup {
    /// The secret of `access_key`, or `None` if the key is unknown.
    fn secret(&self, access_key: &str) -> Option<Secret>;
}

impl<F: Fn(&str) -> Option<Secret>> SecretLookup for F {
    fn secret(&self, access_key: &str) -> Option<Secret> {
        self(access_key)
    }
}

/// The kinds of `x-amz-content-sha256` value, before the signature is known.
enum PayloadKind {
    Unsigned,
    Sha256([u8; 32]),
    StreamingSigned,
    StreamingSignedTrailer,
    StreamingUnsignedTrailer,
}

fn payload_kind(value: &str) -> Result<PayloadKind, AuthError> {
    Ok(match value {
        UNSIGNED_PAYLOAD => PayloadKind::Unsigned,
        STREAMING_SIGNED => PayloadKind::StreamingSigned,
        STREAMING_SIGNED_TRAILER => PayloadKind::StreamingSignedTrailer,
        STREAMING_UNSIGNED_TRAILER => PayloadKind::StreamingUnsignedTrailer,
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
        | "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER" => {
            return Err(AuthError::NotImplemented("SigV4a (ECDSA) streaming is not supported"));
        }
        other => PayloadKind::Sha256(decode_hex32(other.as_bytes()).ok_or_else(|| {
            AuthError::InvalidArgument(
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* value or a SHA-256 in hex"
                    .into(),
            )
        })?),
    })
}

/// The canonical request. `signed_headers` is the `;`-separated list as the
/// client sent it. Returns `None` if a signed header is absent.
pub(crate) fn canonical_request(
    method: &str,
    raw_path: &str,
    canonical_query: &str,
    headers: &HeaderMap,
    signed_headers: &str,
    payload_hash: &str,
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(if raw_path.is_empty() {
        b"/"
    } else {
        raw_path.as_bytes()
    });
    out.push(b'\n');
    out.extend_from_slice(canonical_query.as_bytes());
    out.push(b'\n');
    for name in signed_headers.split(';') {
        let lower = name.to_ascii_lowercase();
        let header = HeaderName::from_bytes(lower.as_bytes()).ok()?;
        let mut values = headers.get_all(&header).iter().peekable();
        values.peek()?;
        out.extend_from_slice(lower.as_bytes());
        out.push(b':');
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_canonical_header_value(value.as_bytes(), &mut out);
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    Some(out)
}

/// `AWS4-HMAC-SHA256 \n amz-date \n scope \n hex(sha256(canonical request))`.
pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(sha256(canonical_request))
    )
}

/// What the request claims, parsed from the header or the query.
struct Claims {
    access_key: String,
    scope_date: String,
    region: String,
    scope_service: String,
    signed_headers: String,
    signature: [u8; 32],
    amz_date: String,
    time: OffsetDateTime,
    payload_hash: String,
    canonical_query: String,
    /// `Some(X-Amz-Expires)` for presigned requests.
    expires: Option<u32>,
}

impl Claims {
    fn malformed(&self, message: impl Into<String>) -> AuthError {
        malformed(self.expires.is_some(), message)
    }
}

pub(crate) fn malformed(presigned: bool, message: impl Into<String>) -> AuthError {
    if presigned {
        AuthError::QueryMalformed(message.into())
    } else {
        AuthError::HeaderMalformed(message.into())
    }
}

/// Splits `AK/date/region/service/aws4_request`.
fn parse_credential(value: &str, presigned: bool) -> Result<[String; 4], AuthError> {
    let parts: Vec<&str> = value.split('/').collect();
    let [access_key, date, region, service, terminator] = parts.as_slice() else {
        return Err(malformed(
            presigned,
            "the Credential must be <key>/<date>/<region>/<service>/aws4_request",
        ));
    };
    if *terminator != "aws4_request" {
        return Err(malformed(
            presigned,
            "the credential scope must end with aws4_request",
        ));
    }
    if access_key.is_empty() || region.is_empty() || service.is_empty() {
        return Err(malformed(presigned, "the Credential has an empty part"));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(presigned, "the credential date must be YYYYMMDD"));
    }
    Ok([access_key, date, region, service].map(|s| (*s).to_owned()))
}

pub(crate) fn parse_signature(value: &str, presigned: bool) -> Result<[u8; 32], AuthError> {
    decode_hex32(value.as_bytes())
        .ok_or_else(|| malformed(presigned, "the Signature must be 64 hex digits"))
}

fn check_signed_headers(list: &str, presigned: bool) -> Result<Vec<String>, AuthError> {
    let mut names = Vec::new();
    for name in list.split(';') {
        if name.is_empty() || HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(malformed(
                presigned,
                "SignedHeaders lists an invalid header name",
            ));
        }
        names.push(name.to_ascii_lowercase());
    }
    if !names.iter().any(|n| n == "host") {
        return Err(malformed(presigned, "the host header must be signed"));
    }
    Ok(names)
}

/// The single value of a header as text, trimmed; `None` if absent.
pub(crate) fn single_header<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
) -> Result<Option<&'h str>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::InvalidArgument(format!(
            "the {name} header appears more than once"
        )));
    }
    first
        .to_str()
        .map(|s| Some(s.trim()))
        .map_err(|_| AuthError::InvalidArgument(format!("the {name} header is not valid text")))
}

fn claims_from_header(req: &SignedRequest<'_>, authorization: &str) -> Result<Claims, AuthError> {
    let bad = |m: &str| AuthError::HeaderMalformed(m.to_owned());
    let [credential, signed_headers, signature] = credentials::header_fields(
        authorization,
        ALGORITHM,
        ["Credential", "SignedHeaders", "Signature"],
    )?;
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(bad("Credential, SignedHeaders and Signature are required"));
    };
    let [access_key, scope_date, region, scope_service] = parse_credential(credential, false)?;
    let signature = parse_signature(signature, false)?;

    let (amz_date, time) = match single_header(req.headers, "x-amz-date")? {
        Some(value) => {
            let time = parse_amz_date(value).ok_or(AuthError::AccessDenied(
                "x-amz-date must be YYYYMMDDTHHMMSSZ",
            ))?;
            (value.to_owned(), time)
        }
        None => {
            let value = single_header(req.headers, "date")?.ok_or(AuthError::AccessDenied(
                "AWS authentication requires a valid Date or x-amz-date header",
            ))?;
            let time = parse_http_date(value).ok_or(AuthError::AccessDenied(
                "AWS authentication requires a valid Date or x-amz-date header",
            ))?;
            (format_amz_date(time), time)
        }
    };
    let payload_hash = single_header(req.headers, "x-amz-content-sha256")?
        .ok_or(AuthError::MissingSecurityHeader("x-amz-content-sha256"))?
        .to_owned();
    Ok(Claims {
        access_key,
        scope_date,
        region,
        scope_service,
        signed_headers: signed_headers.to_owned(),
        signature,
        amz_date,
        time,
        payload_hash,
        canonical_query: canonical_query_string(req.raw_query, None),
        expires: None,
    })
}

const PRESIGN_PARAMS: [&str; 6] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
];

fn claims_from_query(
    req: &SignedRequest<'_>,
    pairs: &[(Vec<u8>, Vec<u8>)],
) -> Result<Claims, AuthError> {
    let bad = |m: String| AuthError::QueryMalformed(m);
    let found = credentials::presign_params(pairs, &PRESIGN_PARAMS)?;
    let [
        Some(algorithm),
        Some(credential),
        Some(amz_date),
        Some(expires),
        Some(signed_headers),
        Some(signature),
    ] = found
    else {
        return Err(bad(
            "X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature are required"
                .into(),
        ));
    };
    if algorithm != ALGORITHM {
        return Err(bad("X-Amz-Algorithm only supports AWS4-HMAC-SHA256".into()));
    }
    let [access_key, scope_date, region, scope_service] = parse_credential(&credential, true)?;
    let signature = parse_signature(&signature, true)?;
    let time = parse_amz_date(&amz_date).ok_or_else(|| {
        bad("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"".into())
    })?;
    let expires =
        (!expires.is_empty() && expires.len() <= 7 && expires.bytes().all(|b| b.is_ascii_digit()))
            .then(|| expires.parse::<u32>().ok())
            .flatten()
            .filter(|e| (1..=MAX_PRESIGNED_EXPIRES).contains(e))
            .ok_or_else(|| bad("X-Amz-Expires must be between 1 and 604800 seconds".into()))?;
    let payload_hash = single_header(req.headers, "x-amz-content-sha256")?
        .unwrap_or(UNSIGNED_PAYLOAD)
        .to_owned();
    Ok(Claims {
        access_key,
        scope_date,
        region,
        scope_service,
        signed_headers,
        signature,
        amz_date,
        time,
        payload_hash,
        canonical_query: canonical_query_string(req.raw_query, Some("X-Amz-Signature")),
        expires: Some(expires),
    })
}

/// Verifies the SigV4 signature of a request, by header or presigned query.
///
/// `service` is the service name the credential scope must carry (`s3`).
/// On success the caller must still enforce [`Verified::payload`]: compare a
/// signed SHA-256 against the body, or decode an aws-chunked body with
/// [`crate::ChunkedDecoder`].
pub fn verify(
    req: &SignedRequest<'_>,
    now: OffsetDateTime,
    service: &str,
    lookup: &impl SecretLookup,
) -> Result<Verified, AuthError> {
    let pairs = decoded_query_pairs(req.raw_query);
    let in_query = pairs.iter().any(|(name, _)| {
        [
            &b"X-Amz-Algorithm"[..],
            b"X-Amz-Credential",
            b"X-Amz-Signature",
        ]
        .contains(&name.as_slice())
    });
    let claims = match credentials::locate(req.headers, in_query, "X-Amz-Algorithm")? {
        Credentials::Header(value) => claims_from_header(req, value)?,
        Credentials::Query => claims_from_query(req, &pairs)?,
    };

    if claims.scope_service != service {
        return Err(claims.malformed(format!("the credential scope service must be '{service}'")));
    }
    if claims.amz_date.get(..8) != Some(claims.scope_date.as_str()) {
        return Err(claims.malformed("the credential date is not the same as X-Amz-Date"));
    }
    let signed_headers = check_signed_headers(&claims.signed_headers, claims.expires.is_some())?;
    match claims.expires {
        None if (claims.time - now).abs() > MAX_SKEW => return Err(AuthError::TimeTooSkewed),
        Some(_) if claims.time - now > MAX_SKEW => return Err(AuthError::NotYetValid),
        Some(expires)
            if claims
                .time
                .checked_add(Duration::seconds(i64::from(expires)))
                .is_none_or(|end| now > end) =>
        {
            return Err(AuthError::Expired);
        }
        _ => {}
    }
    let kind = payload_kind(&claims.payload_hash)?;

    let secret = lookup
        .secret(&claims.access_key)
        .ok_or(AuthError::UnknownAccessKey)?;
    let key = signing_key(&secret, &claims.scope_date, &claims.region, service);
    drop(secret);
    let canonical = canonical_request(
        req.method,
        req.raw_path,
        &claims.canonical_query,
        req.headers,
        &claims.signed_headers,
        &claims.payload_hash,
    )
    .ok_or(AuthError::SignatureMismatch)?;
    let scope = scope(&claims.scope_date, &claims.region, service);
    let expected = hmac_sha256(
        &key.0,
        string_to_sign(&claims.amz_date, &scope, &canonical).as_bytes(),
    );
    if !constant_time_eq(&expected, &claims.signature) {
        return Err(AuthError::SignatureMismatch);
    }

    let chunk_signer = || {
        ChunkSigner::from_parts(
            key.clone(),
            claims.amz_date.clone(),
            scope.clone(),
            expected,
        )
    };
    let payload = match kind {
        PayloadKind::Unsigned => Payload::Unsigned,
        PayloadKind::Sha256(hash) => Payload::Sha256(hash),
        PayloadKind::StreamingSigned => Payload::StreamingSigned(chunk_signer()),
        PayloadKind::StreamingSignedTrailer => Payload::StreamingSignedTrailer(chunk_signer()),
        PayloadKind::StreamingUnsignedTrailer => Payload::StreamingUnsignedTrailer,
    };
    let presigned = claims.expires.is_some();
    Ok(Verified {
        access_key: claims.access_key,
        region: claims.region,
        payload,
        presigned,
        signed_headers,
        scheme: if presigned {
            Scheme::SigV4Presigned
        } else {
            Scheme::SigV4
        },
    })
}

#[cfg(test)]
mod capture_tests;
#[cfg(test)]
mod tests;
