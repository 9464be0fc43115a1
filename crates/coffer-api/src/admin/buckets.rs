//! `GET buckets`: every bucket on the server with its owner, region and creation date, for
//! `coffer ls --owners`. Root's ListBuckets already names every bucket, but the S3 and OSS
//! answers have no place for another user's name as the owner: this is where root sees who
//! owns what.

use serde::Serialize;

use crate::clock::iso8601;
use crate::error::ApiResult;
use crate::state::AppState;

#[derive(Serialize)]
pub struct BucketListed {
    name: String,
    owner: String,
    region: String,
    created_ms: i64,
    /// `created_ms` as ListBuckets writes `CreationDate`, so both outputs read alike.
    creation_date: String,
}

/// Every bucket, in name order (the store's order).
pub async fn list(state: &AppState) -> ApiResult<Vec<BucketListed>> {
    let buckets = state.meta.list_buckets().await?;
    Ok(buckets
        .into_iter()
        .map(|b| BucketListed {
            creation_date: iso8601(b.created_ms),
            name: b.name,
            owner: b.owner,
            region: b.region,
            created_ms: b.created_ms,
        })
        .collect())
}
