//! Pending blobs (named, not yet referenced, or released by a commit) and blob references.

use coffer_store::{PendingBlob, StoreError};

use crate::db::{Tx, execute, query, query_opt};
use crate::error::Error;
use coffer_store::rules::is_valid_blob_id;

pub(crate) async fn add(tx: &Tx<'_>, blob: &str, since_ms: i64) -> Result<(), Error> {
    if !is_valid_blob_id(blob) {
        return Err(StoreError::InvalidArgument("not a blob id".into()).into());
    }
    if is_referenced(tx, blob).await? {
        return Err(StoreError::BlobInUse.into());
    }
    execute(
        tx,
        "INSERT INTO pending_blobs (blob, since_ms) VALUES ($1, $2)
         ON CONFLICT (blob) DO UPDATE SET since_ms = EXCLUDED.since_ms",
        &[&blob, &since_ms],
    )
    .await?;
    Ok(())
}

pub(crate) async fn remove(tx: &Tx<'_>, blob: &str) -> Result<bool, Error> {
    Ok(execute(tx, "DELETE FROM pending_blobs WHERE blob = $1", &[&blob]).await? > 0)
}

pub(crate) async fn older_than(tx: &Tx<'_>, before_ms: i64) -> Result<Vec<PendingBlob>, Error> {
    let rows = query(
        tx,
        "SELECT blob, since_ms FROM pending_blobs WHERE since_ms < $1 ORDER BY blob",
        &[&before_ms],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| PendingBlob {
            blob: r.get(0),
            since_ms: r.get(1),
        })
        .collect())
}

pub(crate) async fn is_referenced(tx: &Tx<'_>, blob: &str) -> Result<bool, Error> {
    Ok(
        query_opt(tx, "SELECT 1 FROM blob_refs WHERE blob = $1", &[&blob])
            .await?
            .is_some(),
    )
}
