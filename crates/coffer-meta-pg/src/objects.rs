//! Objects: put (taking blob references), delete, envelope compare-and-swap, ListObjects.

use std::collections::BTreeSet;

use coffer_store::{
    Condition, Deleted, ListPage, ListQuery, ObjectRecord, StoreError, StoredBody, VersionRef,
    Versioning, Written,
};

use crate::codec::{decode, key_string, key_successor};
use crate::db::{Tx, query};
use crate::error::Error;
use crate::versions::{KeyVersions, bucket, release_blob, take_blob};
use crate::walk::{Fetched, Walk, Walker};
use coffer_store::rules::{list_page, prefix_successor};

/// Writes `record` under `key` if `condition` holds, as the key's newest version.
pub(crate) async fn put(
    tx: &Tx<'_>,
    bucket_name: &str,
    key: &str,
    record: &ObjectRecord,
    condition: &Condition,
) -> Result<Written, Error> {
    let versioning = bucket(tx, bucket_name).await?.versioning;
    let versions = KeyVersions::new(tx, bucket_name, key);
    versions.check_condition(condition).await?;
    let mut new_blobs = BTreeSet::new();
    for extent in &record.extents {
        if !new_blobs.insert(extent.blob.clone()) {
            return Err(StoreError::BlobInUse.into());
        }
        take_blob(tx, &extent.blob).await?;
    }
    let version_id = versions
        .install(versioning, record.clone(), &new_blobs)
        .await?;
    Ok(Written { version_id })
}

/// Deletes `key` if `condition` holds: removes the current object (unversioned) or adds a
/// delete marker.
pub(crate) async fn delete(
    tx: &Tx<'_>,
    bucket_name: &str,
    key: &str,
    condition: &Condition,
    owner: &str,
    now_ms: i64,
) -> Result<Deleted, Error> {
    let versioning = bucket(tx, bucket_name).await?.versioning;
    let versions = KeyVersions::new(tx, bucket_name, key);
    versions.check_condition(condition).await?;
    if versioning != Versioning::Unversioned {
        let version_id = versions.add_marker(versioning, owner, now_ms).await?;
        return Ok(Deleted::Marker { version_id });
    }
    match versions.remove(&VersionRef::Latest, false, now_ms).await? {
        Some(_) => Ok(Deleted::Removed),
        None => Ok(Deleted::Absent),
    }
}

/// Replaces the envelope of the version `which` names if it is still `expected`.
pub(crate) async fn replace_envelope(
    tx: &Tx<'_>,
    bucket_name: &str,
    key: &str,
    which: &VersionRef,
    expected: &[u8],
    new: &[u8],
) -> Result<bool, Error> {
    let versions = KeyVersions::new(tx, bucket_name, key);
    let Some((place, coffer_store::Version::Object(record), _)) = versions.find(which).await?
    else {
        return Ok(false);
    };
    if record.envelope.as_deref() != Some(expected) {
        return Ok(false);
    }
    let record = ObjectRecord {
        envelope: Some(new.to_vec()),
        ..record
    };
    versions.rewrite(place, record).await?;
    Ok(true)
}

/// Compare-and-swap of one object version's body (extents and envelope); see the trait.
pub(crate) async fn replace_body(
    tx: &Tx<'_>,
    bucket_name: &str,
    key: &str,
    which: &VersionRef,
    expected: &StoredBody,
    new: StoredBody,
) -> Result<bool, Error> {
    bucket(tx, bucket_name).await?;
    let versions = KeyVersions::new(tx, bucket_name, key);
    let Some((place, coffer_store::Version::Object(record), _)) = versions.find(which).await?
    else {
        return Ok(false);
    };
    if record.extents != expected.extents || record.envelope != expected.envelope {
        return Ok(false);
    }
    let mut new_blobs = BTreeSet::new();
    for extent in &new.extents {
        if !new_blobs.insert(extent.blob.clone()) {
            return Err(StoreError::BlobInUse.into());
        }
        take_blob(tx, &extent.blob).await?;
    }
    for extent in &record.extents {
        release_blob(tx, &extent.blob).await?;
    }
    let record = ObjectRecord {
        extents: new.extents,
        envelope: new.envelope,
        ..record
    };
    versions.rewrite(place, record).await?;
    Ok(true)
}

/// One page of ListObjects, in one snapshot.
pub(crate) async fn list(tx: &Tx<'_>, bucket_name: &str, q: &ListQuery) -> Result<ListPage, Error> {
    bucket(tx, bucket_name).await?;
    let mut start = q.prefix.as_bytes().to_vec();
    if let Some(after) = &q.start_after {
        start = start.max(key_successor(after.as_bytes()));
    }
    let upper = prefix_successor(q.prefix.as_bytes());
    let mut walker = Walker::new(
        Walk {
            start,
            prefix: &q.prefix,
            delimiter: q.delimiter.as_deref(),
            skip_prefix: q.start_after.as_deref(),
            max: q.max_keys,
        },
        |bytes| bytes,
    );
    while let Some((lower, limit)) = walker.next_query() {
        let rows = fetch(tx, bucket_name, lower, upper.as_deref(), limit).await?;
        walker.feed(rows);
    }
    let (entries, is_truncated) = walker.finish();
    Ok(list_page(entries, is_truncated))
}

/// Objects from `lower` on (and before `upper`), in key order, at most `limit`.
async fn fetch(
    tx: &Tx<'_>,
    bucket_name: &str,
    lower: &Vec<u8>,
    upper: Option<&[u8]>,
    limit: i64,
) -> Result<Vec<Fetched<ObjectRecord, Vec<u8>>>, Error> {
    let rows = match upper {
        Some(upper) => {
            query(
                tx,
                "SELECT key, record FROM objects WHERE bucket = $1 AND key >= $2 AND key < $3
                 ORDER BY key LIMIT $4",
                &[&bucket_name, lower, &upper, &limit],
            )
            .await?
        }
        None => {
            query(
                tx,
                "SELECT key, record FROM objects WHERE bucket = $1 AND key >= $2
                 ORDER BY key LIMIT $3",
                &[&bucket_name, lower, &limit],
            )
            .await?
        }
    };
    rows.iter()
        .map(|r| {
            let bytes: Vec<u8> = r.get(0);
            let after = key_successor(&bytes);
            Ok(Fetched {
                key: key_string(bytes)?,
                item: decode(r.get::<_, &str>(1))?,
                after,
            })
        })
        .collect()
}
