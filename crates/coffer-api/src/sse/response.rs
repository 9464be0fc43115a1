//! The response headers that name an object's encryption, in the dialect
//! of the request.

use coffer_crypto::Algorithm;
use coffer_crypto::sealed::{Envelope, WrapKind};
use coffer_keying::{Applied, Opening, Sealing};

use crate::request::Dialect;

/// Headers describing how an object is protected.
pub trait ResponseHeaders {
    /// The headers, in `dialect`.
    fn headers(&self, dialect: Dialect) -> Vec<(String, String)>;
}

impl ResponseHeaders for Sealing {
    fn headers(&self, dialect: Dialect) -> Vec<(String, String)> {
        describe(dialect, self.applied())
    }
}

impl ResponseHeaders for Opening {
    fn headers(&self, dialect: Dialect) -> Vec<(String, String)> {
        describe(dialect, self.applied())
    }
}

/// The headers naming a stored envelope's encryption, without opening it
/// (CompleteMultipartUpload, where no key is presented).
pub fn describe_stored(dialect: Dialect, envelope: &[u8]) -> Vec<(String, String)> {
    match Envelope::decode(envelope) {
        Ok(envelope) => describe(
            dialect,
            Applied {
                algorithm: envelope.algorithm,
                key: &envelope.key,
                customer_key_md5: None,
            },
        )
        .into_iter()
        .filter(|(name, value)| !(name.ends_with("-key-md5") && value.is_empty()))
        .collect(),
        Err(_) => Vec::new(),
    }
}

fn describe(dialect: Dialect, applied: Applied<'_>) -> Vec<(String, String)> {
    let Applied {
        algorithm,
        key,
        customer_key_md5,
    } = applied;
    match key.kind {
        WrapKind::Kms | WrapKind::KmsBucketKey => {
            let (value, key_id_header) = match dialect {
                Dialect::S3 => ("aws:kms", "server-side-encryption-aws-kms-key-id"),
                Dialect::Oss => ("KMS", "server-side-encryption-key-id"),
            };
            let mut headers = vec![
                (dialect.header("server-side-encryption"), value.to_owned()),
                (dialect.header(key_id_header), key.key_id.clone()),
            ];
            if algorithm == Algorithm::Sm4Gcm {
                headers.push((
                    dialect.header("server-side-data-encryption"),
                    "SM4".to_owned(),
                ));
            }
            if key.kind == WrapKind::KmsBucketKey {
                headers.push((
                    dialect.header("server-side-encryption-bucket-key-enabled"),
                    "true".to_owned(),
                ));
            }
            headers
        }
        WrapKind::CustomerKey => vec![
            (
                "x-amz-server-side-encryption-customer-algorithm".to_owned(),
                "AES256".to_owned(),
            ),
            (
                "x-amz-server-side-encryption-customer-key-md5".to_owned(),
                customer_key_md5.unwrap_or_default().to_owned(),
            ),
        ],
        WrapKind::ServiceKey => {
            let name = match algorithm {
                Algorithm::Aes256Gcm => "AES256",
                Algorithm::Sm4Gcm => "SM4",
            };
            vec![(dialect.header("server-side-encryption"), name.to_owned())]
        }
    }
}
