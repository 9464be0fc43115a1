//! Buckets: create, list, delete-if-empty, configuration documents, versioning.

use coffer_store::{BucketRecord, StoreError, Versioning};

use crate::codec::{decode, encode};
use crate::db::{Tx, execute, query, query_opt};
use crate::error::Error;
use crate::versions::bucket;

pub(crate) async fn create(tx: &Tx<'_>, record: &BucketRecord) -> Result<(), Error> {
    let existing = query_opt(
        tx,
        "SELECT record FROM buckets WHERE name = $1",
        &[&record.name],
    )
    .await?;
    if let Some(row) = existing {
        let existing: BucketRecord = decode(row.get::<_, &str>(0))?;
        return Err(StoreError::BucketExists {
            owner: existing.owner,
        }
        .into());
    }
    execute(
        tx,
        "INSERT INTO buckets (name, record) VALUES ($1, $2)",
        &[&record.name, &encode(record)?],
    )
    .await?;
    Ok(())
}

pub(crate) async fn list(tx: &Tx<'_>) -> Result<Vec<BucketRecord>, Error> {
    let rows = query(tx, "SELECT record FROM buckets ORDER BY name", &[]).await?;
    rows.iter()
        .map(|r| Ok(decode(r.get::<_, &str>(0))?))
        .collect()
}

/// Deletes a bucket without objects, versions (delete markers included) or uploads.
pub(crate) async fn delete(tx: &Tx<'_>, name: &str) -> Result<(), Error> {
    bucket(tx, name).await?;
    let used = query_opt(
        tx,
        "SELECT 1 WHERE EXISTS (SELECT 1 FROM objects WHERE bucket = $1)
            OR EXISTS (SELECT 1 FROM versions WHERE bucket = $1)
            OR EXISTS (SELECT 1 FROM uploads WHERE bucket = $1)",
        &[&name],
    )
    .await?;
    if used.is_some() {
        return Err(StoreError::BucketNotEmpty.into());
    }
    execute(tx, "DELETE FROM buckets WHERE name = $1", &[&name]).await?;
    Ok(())
}

async fn update(tx: &Tx<'_>, record: &BucketRecord) -> Result<(), Error> {
    execute(
        tx,
        "UPDATE buckets SET record = $2 WHERE name = $1",
        &[&record.name, &encode(record)?],
    )
    .await?;
    Ok(())
}

/// Sets or removes one configuration document, keeping the others.
pub(crate) async fn set_config(
    tx: &Tx<'_>,
    name: &str,
    document: &str,
    value: Option<&str>,
) -> Result<(), Error> {
    let mut record = bucket(tx, name).await?;
    match value {
        Some(value) => record.config.insert(document.to_owned(), value.to_owned()),
        None => record.config.remove(document),
    };
    update(tx, &record).await
}

pub(crate) async fn set_versioning(
    tx: &Tx<'_>,
    name: &str,
    versioning: Versioning,
) -> Result<(), Error> {
    let mut record = bucket(tx, name).await?;
    record.versioning = versioning;
    update(tx, &record).await
}
