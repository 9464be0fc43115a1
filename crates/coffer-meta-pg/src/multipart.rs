//! Multipart uploads: create, parts, ListMultipartUploads, abort, and the one-transaction
//! completion.

use std::collections::{BTreeMap, BTreeSet};

use coffer_store::{
    Condition, ObjectRecord, PartRecord, StoreError, UploadListPage, UploadListQuery, UploadRecord,
    Written,
};

use crate::codec::{decode, encode, key_successor};
use crate::db::{Tx, execute, query, query_opt};
use crate::error::Error;
use crate::versions::{KeyVersions, bucket, release_blob, take_blob};
use crate::walk::{Fetched, Walk, Walker};
use coffer_store::rules::{is_valid_upload_id, prefix_successor, random_hex, upload_list_page};

/// Starts an upload of `key`; returns its id.
pub(crate) async fn create(
    tx: &Tx<'_>,
    bucket_name: &str,
    key: &str,
    upload: &UploadRecord,
) -> Result<String, Error> {
    bucket(tx, bucket_name).await?;
    let id = random_hex()?.to_ascii_uppercase();
    let upload = UploadRecord {
        upload_id: id.clone(),
        key: key.to_owned(),
        ..upload.clone()
    };
    execute(
        tx,
        "INSERT INTO uploads (upload_id, bucket, key, record) VALUES ($1, $2, $3, $4)",
        &[&id, &bucket_name, &key.as_bytes(), &encode(&upload)?],
    )
    .await?;
    Ok(id)
}

/// The upload `upload_id` of exactly this key, or `NoSuchUpload`.
pub(crate) async fn get(
    tx: &Tx<'_>,
    bucket_name: &str,
    key: &str,
    upload_id: &str,
) -> Result<UploadRecord, Error> {
    if !is_valid_upload_id(upload_id) {
        return Err(StoreError::NoSuchUpload.into());
    }
    let row = query_opt(
        tx,
        "SELECT record FROM uploads WHERE upload_id = $1 AND bucket = $2 AND key = $3",
        &[&upload_id, &bucket_name, &key.as_bytes()],
    )
    .await?;
    match row {
        Some(row) => Ok(decode(row.get::<_, &str>(0))?),
        None => Err(StoreError::NoSuchUpload.into()),
    }
}

/// Adds or replaces a part; a replaced part's blob is released.
pub(crate) async fn put_part(
    tx: &Tx<'_>,
    bucket_name: &str,
    key: &str,
    upload_id: &str,
    part: &PartRecord,
) -> Result<(), Error> {
    get(tx, bucket_name, key, upload_id).await?;
    take_blob(tx, &part.blob).await?;
    let number = i64::from(part.part_number);
    let old = query_opt(
        tx,
        "SELECT record FROM parts WHERE upload_id = $1 AND part_number = $2",
        &[&upload_id, &number],
    )
    .await?
    .map(|r| decode::<PartRecord>(r.get::<_, &str>(0)))
    .transpose()?;
    execute(
        tx,
        "INSERT INTO parts (upload_id, part_number, record) VALUES ($1, $2, $3)
         ON CONFLICT (upload_id, part_number) DO UPDATE SET record = EXCLUDED.record",
        &[&upload_id, &number, &encode(part)?],
    )
    .await?;
    if let Some(old) = old
        && old.blob != part.blob
    {
        release_blob(tx, &old.blob).await?;
    }
    Ok(())
}

/// Parts numbered above `marker`, at most `max`, and whether more follow.
pub(crate) async fn list_parts(
    tx: &Tx<'_>,
    bucket_name: &str,
    key: &str,
    upload_id: &str,
    marker: u32,
    max: usize,
) -> Result<(Vec<PartRecord>, bool), Error> {
    get(tx, bucket_name, key, upload_id).await?;
    let limit = i64::try_from(max.saturating_add(1)).unwrap_or(i64::MAX);
    let rows = query(
        tx,
        "SELECT record FROM parts WHERE upload_id = $1 AND part_number > $2
         ORDER BY part_number LIMIT $3",
        &[&upload_id, &i64::from(marker), &limit],
    )
    .await?;
    let more = rows.len() > max && max > 0;
    let parts = rows
        .iter()
        .take(max)
        .map(|r| decode(r.get::<_, &str>(0)))
        .collect::<Result<_, _>>()?;
    Ok((parts, more))
}

/// Where an uploads walk resumes: uploads strictly after (key, upload id); `(k, "")` starts
/// at the first upload of `k` (no upload id is empty).
type UploadCursor = (Vec<u8>, String);

/// One page of in-progress uploads in (key, upload id) order, in one snapshot.
pub(crate) async fn list(
    tx: &Tx<'_>,
    bucket_name: &str,
    q: &UploadListQuery,
) -> Result<UploadListPage, Error> {
    bucket(tx, bucket_name).await?;
    let mut start: UploadCursor = (q.prefix.as_bytes().to_vec(), String::new());
    if let Some(km) = &q.key_marker {
        let after = match &q.upload_id_marker {
            Some(id) => (km.as_bytes().to_vec(), id.clone()),
            None => (key_successor(km.as_bytes()), String::new()),
        };
        start = start.max(after);
    }
    let upper = prefix_successor(q.prefix.as_bytes());
    let mut walker = Walker::new(
        Walk {
            start,
            prefix: &q.prefix,
            delimiter: q.delimiter.as_deref(),
            skip_prefix: q.key_marker.as_deref(),
            max: q.max_uploads,
        },
        |bytes| (bytes, String::new()),
    );
    while let Some((lower, limit)) = walker.next_query() {
        let rows = fetch_uploads(tx, bucket_name, lower, upper.as_deref(), limit).await?;
        walker.feed(rows);
    }
    let (entries, is_truncated) = walker.finish();
    Ok(upload_list_page(entries, is_truncated))
}

/// Removes and returns every part of the upload, by part number.
async fn take_parts(tx: &Tx<'_>, upload_id: &str) -> Result<BTreeMap<u32, PartRecord>, Error> {
    let rows = query(
        tx,
        "DELETE FROM parts WHERE upload_id = $1 RETURNING record",
        &[&upload_id],
    )
    .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let part: PartRecord = decode(row.get::<_, &str>(0))?;
        out.insert(part.part_number, part);
    }
    Ok(out)
}

async fn delete_upload(tx: &Tx<'_>, upload_id: &str) -> Result<(), Error> {
    execute(
        tx,
        "DELETE FROM uploads WHERE upload_id = $1",
        &[&upload_id],
    )
    .await?;
    Ok(())
}

/// Removes the upload and its parts, releasing their blobs.
pub(crate) async fn abort(
    tx: &Tx<'_>,
    bucket_name: &str,
    key: &str,
    upload_id: &str,
) -> Result<(), Error> {
    get(tx, bucket_name, key, upload_id).await?;
    for part in take_parts(tx, upload_id).await?.into_values() {
        release_blob(tx, &part.blob).await?;
    }
    delete_upload(tx, upload_id).await
}

/// Turns the upload into the object `record`: every extent must be the blob of a current part
/// (`InvalidPart`); parts left out and the replaced object's blobs are released.
pub(crate) async fn complete(
    tx: &Tx<'_>,
    bucket_name: &str,
    key: &str,
    upload_id: &str,
    record: &ObjectRecord,
    condition: &Condition,
) -> Result<Written, Error> {
    let versioning = bucket(tx, bucket_name).await?.versioning;
    get(tx, bucket_name, key, upload_id).await?;
    let versions = KeyVersions::new(tx, bucket_name, key);
    versions.check_condition(condition).await?;
    let current = take_parts(tx, upload_id).await?;
    let by_blob: BTreeMap<&str, u32> = current
        .values()
        .map(|p| (p.blob.as_str(), p.part_number))
        .collect();
    let mut used = BTreeSet::new();
    for extent in &record.extents {
        let Some(&number) = by_blob.get(extent.blob.as_str()) else {
            return Err(StoreError::InvalidPart.into());
        };
        if extent.part_number.is_some_and(|n| n != number) || !used.insert(extent.blob.clone()) {
            return Err(StoreError::InvalidPart.into());
        }
    }
    delete_upload(tx, upload_id).await?;
    for part in current.values() {
        if !used.contains(&part.blob) {
            release_blob(tx, &part.blob).await?;
        }
    }
    let version_id = versions.install(versioning, record.clone(), &used).await?;
    Ok(Written { version_id })
}

/// Uploads after `lower` (and of keys before `upper`), in (key, upload id) order, at most
/// `limit`.
async fn fetch_uploads(
    tx: &Tx<'_>,
    bucket_name: &str,
    lower: &UploadCursor,
    upper: Option<&[u8]>,
    limit: i64,
) -> Result<Vec<Fetched<UploadRecord, UploadCursor>>, Error> {
    let (lower_key, lower_id) = lower;
    let rows = match upper {
        Some(upper) => {
            query(
                tx,
                "SELECT key, upload_id, record FROM uploads
                 WHERE bucket = $1 AND (key, upload_id) > ($2, $3) AND key < $4
                 ORDER BY key, upload_id LIMIT $5",
                &[&bucket_name, lower_key, lower_id, &upper, &limit],
            )
            .await?
        }
        None => {
            query(
                tx,
                "SELECT key, upload_id, record FROM uploads
                 WHERE bucket = $1 AND (key, upload_id) > ($2, $3)
                 ORDER BY key, upload_id LIMIT $4",
                &[&bucket_name, lower_key, lower_id, &limit],
            )
            .await?
        }
    };
    rows.iter()
        .map(|r| {
            let upload: UploadRecord = decode(r.get::<_, &str>(2))?;
            Ok(Fetched {
                key: upload.key.clone(),
                after: (r.get(0), r.get(1)),
                item: upload,
            })
        })
        .collect()
}
