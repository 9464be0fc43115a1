//! A bucket's public access block (S3 `?publicAccessBlock`): four switches that refuse or
//! ignore public ACLs and public bucket policies.

use coffer_store::BucketRecord;
use serde::{Deserialize, Serialize};

/// Bucket config key of the public access block (JSON of [`PublicAccessBlock`]).
pub const CONFIG_KEY: &str = "publicAccessBlock";

/// The four switches; all off for a bucket that never had a block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    /// Refuse PUTs of public ACLs (bucket and object ACLs, canned or granted).
    pub block_public_acls: bool,
    /// Ignore public grants in existing ACLs.
    pub ignore_public_acls: bool,
    /// Refuse PUTs of public bucket policies.
    pub block_public_policy: bool,
    /// Only the owner (and the account) may use a bucket whose policy is public.
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// The bucket's block. A stored document that cannot be read blocks everything (fail
    /// closed): only this module writes it.
    pub fn of(bucket: &BucketRecord) -> Self {
        match bucket.config.get(CONFIG_KEY) {
            None => Self::default(),
            Some(json) => serde_json::from_str(json).unwrap_or_else(|error| {
                tracing::error!(%error, bucket = %bucket.name, "stored publicAccessBlock unreadable");
                PublicAccessBlock {
                    block_public_acls: true,
                    ignore_public_acls: true,
                    block_public_policy: true,
                    restrict_public_buckets: true,
                }
            }),
        }
    }
}
