//! Alibaba Cloud API (POP) signatures, as the RPC-style APIs (KMS
//! `Version=2016-01-20`) check them: V1 (`HMAC-SHA1` over the canonical
//! query, [`v1`]), which `aliyunsdkcore` sends, and V3
//! (`ACS3-HMAC-SHA256` over a canonical request with `x-acs-*` headers,
//! [`v3`]), which the `alibabacloud_*` SDKs send by default.
//!
//! Both verifiers are sans-IO: they take the decoded parameters or the
//! request head and body, and return who signed and the nonce, so the
//! caller can refuse a replayed nonce (that needs state, which this crate
//! does not keep).

pub mod v1;
pub mod v3;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::AuthError;

/// How far a request's timestamp may be from the server's clock, either way
/// (Alibaba's documented bound, as SigV4's).
pub const MAX_SKEW: time::Duration = time::Duration::minutes(15);

/// The most characters a `SignatureNonce` may have (Alibaba's SDKs send a
/// UUID or a 32-digit hex string): a bound on the replay cache's memory.
pub const MAX_NONCE_LEN: usize = 128;

/// A request whose signature matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcsVerified {
    /// The signer's AccessKeyId.
    pub access_key: String,
    /// The request's `SignatureNonce` / `x-acs-signature-nonce`, which the
    /// caller must not accept twice within [`MAX_SKEW`].
    pub nonce: String,
    /// The signed request time.
    pub time: OffsetDateTime,
}

/// Parses the UTC ISO 8601 timestamp both versions sign
/// (`2026-12-03T07:26:18Z`) and checks it is within [`MAX_SKEW`] of `now`.
fn checked_time(value: &str, now: OffsetDateTime) -> Result<OffsetDateTime, AuthError> {
    if !value.ends_with('Z') {
        return Err(AuthError::InvalidArgument(
            "The request timestamp must be UTC ISO 8601, like 2026-01-01T00:00:00Z.".into(),
        ));
    }
    let time = OffsetDateTime::parse(value, &Rfc3339).map_err(|_| {
        AuthError::InvalidArgument(
            "The request timestamp must be UTC ISO 8601, like 2026-01-01T00:00:00Z.".into(),
        )
    })?;
    if (time - now).abs() > MAX_SKEW {
        return Err(AuthError::TimeTooSkewed);
    }
    Ok(time)
}

/// A nonce the replay cache can hold: 1 to [`MAX_NONCE_LEN`] printable
/// ASCII characters.
fn checked_nonce(nonce: &str) -> Result<String, AuthError> {
    let valid = !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(AuthError::InvalidArgument(
            "SignatureNonce must be 1 to 128 printable characters.".into(),
        ));
    }
    Ok(nonce.to_owned())
}
