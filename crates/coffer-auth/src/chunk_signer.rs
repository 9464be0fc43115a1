//! The per-chunk signer of `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`.
//!
//! Each chunk's signature chains on the previous one, starting from the
//! request's own (seed) signature:
//!
//! ```text
//! AWS4-HMAC-SHA256-PAYLOAD \n amz-date \n scope \n previous-signature \n
//! hex(sha256("")) \n hex(sha256(chunk-data))
//! ```
//!
//! and the trailer's signature chains on the final (empty) chunk's:
//!
//! ```text
//! AWS4-HMAC-SHA256-TRAILER \n amz-date \n scope \n previous-signature \n
//! hex(sha256("name:value\n" for each trailer line))
//! ```

use std::fmt;

use crate::amz_time::format_amz_date;
use crate::mac::{EMPTY_SHA256_HEX, constant_time_eq, decode_hex32, hmac_sha256, sha256};
use crate::secret::SigningKey;
use crate::signing::{SigningParams, scope, signing_key};

/// Computes and checks the chained signatures of a signed aws-chunked body.
///
/// Produced by SigV4 verification for streaming-signed requests; hand it to
/// [`crate::ChunkedDecoder`]. Clients build one with [`ChunkSigner::new`].
pub struct ChunkSigner {
    key: SigningKey,
    amz_date: String,
    scope: String,
    previous: [u8; 32],
}

impl fmt::Debug for ChunkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkSigner")
            .field("amz_date", &self.amz_date)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl ChunkSigner {
    pub(crate) fn from_parts(
        key: SigningKey,
        amz_date: String,
        scope: String,
        seed: [u8; 32],
    ) -> Self {
        Self {
            key,
            amz_date,
            scope,
            previous: seed,
        }
    }

    /// A signer for a client that signed its request headers with `params`
    /// and got `seed_signature` (hex) from SigV4 `sign`.
    /// Returns `None` if `seed_signature` is not 64 hex digits.
    pub fn new(params: &SigningParams<'_>, seed_signature: &str) -> Option<Self> {
        let seed = decode_hex32(seed_signature.as_bytes())?;
        let amz_date = format_amz_date(params.now);
        let date = &amz_date[..8];
        let key = signing_key(params.secret, date, params.region, params.service);
        let scope = scope(date, params.region, params.service);
        Some(Self::from_parts(key, amz_date, scope, seed))
    }

    fn sign(&self, kind: &str, last_line: &[u8; 32], empty_line: bool) -> [u8; 32] {
        let mut sts = String::with_capacity(256);
        sts.push_str(kind);
        sts.push('\n');
        sts.push_str(&self.amz_date);
        sts.push('\n');
        sts.push_str(&self.scope);
        sts.push('\n');
        sts.push_str(&hex::encode(self.previous));
        sts.push('\n');
        if empty_line {
            sts.push_str(EMPTY_SHA256_HEX);
            sts.push('\n');
        }
        sts.push_str(&hex::encode(last_line));
        hmac_sha256(&self.key.0, sts.as_bytes())
    }

    fn chunk_signature(&self, data_sha256: &[u8; 32]) -> [u8; 32] {
        self.sign("AWS4-HMAC-SHA256-PAYLOAD", data_sha256, true)
    }

    fn trailer_signature(&self, trailer_sha256: &[u8; 32]) -> [u8; 32] {
        self.sign("AWS4-HMAC-SHA256-TRAILER", trailer_sha256, false)
    }

    /// Checks a chunk's signature and, if it matches, chains on it.
    pub(crate) fn verify_chunk(&mut self, data_sha256: &[u8; 32], provided: &[u8; 32]) -> bool {
        let expected = self.chunk_signature(data_sha256);
        let ok = constant_time_eq(&expected, provided);
        if ok {
            self.previous = expected;
        }
        ok
    }

    /// Checks the trailer signature over `sha256("name:value\n"…)`.
    pub(crate) fn verify_trailer(
        &mut self,
        trailer_sha256: &[u8; 32],
        provided: &[u8; 32],
    ) -> bool {
        let expected = self.trailer_signature(trailer_sha256);
        let ok = constant_time_eq(&expected, provided);
        if ok {
            self.previous = expected;
        }
        ok
    }

    /// Signs the next chunk (the final chunk has empty `data`) and returns
    /// the hex signature for its `;chunk-signature=` extension.
    pub fn sign_chunk(&mut self, data: &[u8]) -> String {
        let signature = self.chunk_signature(&sha256(data));
        self.previous = signature;
        hex::encode(signature)
    }

    /// Signs the trailer lines (sent as `name:value`) and returns the hex
    /// value for `x-amz-trailer-signature`.
    pub fn sign_trailer(&mut self, trailers: &[(&str, &str)]) -> String {
        let mut canonical = Vec::new();
        for (name, value) in trailers {
            canonical.extend_from_slice(name.as_bytes());
            canonical.push(b':');
            canonical.extend_from_slice(value.as_bytes());
            canonical.push(b'\n');
        }
        let signature = self.trailer_signature(&sha256(&canonical));
        self.previous = signature;
        hex::encode(signature)
    }
}
