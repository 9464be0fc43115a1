//! ListObjectVersions: `objects` and `versions` read together, key by key, each key's current
//! object first and then its `versions` rows newest first; the embedded store's semantics
//! (markers, roll-up, page size), in one snapshot.

use std::collections::VecDeque;

use coffer_store::{Version, VersionListPage, VersionListQuery};

use crate::codec::{decode, key_string};
use crate::db::{Tx, query};
use crate::error::Error;
use crate::versions::bucket;
use coffer_store::rules::{VersionPage, prefix_successor};

/// Rows per query.
const BATCH: i64 = 500;
/// The order of a key's current object among its versions: above every sequence number.
const CURRENT: i64 = i64::MAX;

/// Where the next batch of rows starts.
enum Cursor {
    /// At the first row of the first key at or after these bytes.
    From(Vec<u8>),
    /// Just after the row of this key with this order.
    After(Vec<u8>, i64),
}

/// Rows of both tables in (key, newest first) order, fetched in batches.
struct Rows<'a, 't> {
    tx: &'a Tx<'t>,
    bucket: &'a str,
    upper: Option<Vec<u8>>,
    /// Where the next batch starts.
    cursor: Cursor,
    buffered: VecDeque<(String, i64, Version)>,
    exhausted: bool,
}

impl Rows<'_, '_> {
    /// Restarts at the first row of the first key at or after `key`.
    fn seek(&mut self, key: Vec<u8>) {
        self.cursor = Cursor::From(key);
        self.buffered.clear();
        self.exhausted = false;
    }

    async fn peek_key(&mut self) -> Result<Option<String>, Error> {
        if self.buffered.is_empty() && !self.exhausted {
            self.fill().await?;
        }
        Ok(self.buffered.front().map(|(k, _, _)| k.clone()))
    }

    async fn next(&mut self) -> Result<Option<Version>, Error> {
        if self.buffered.is_empty() && !self.exhausted {
            self.fill().await?;
        }
        Ok(self.buffered.pop_front().map(|(_, _, v)| v))
    }

    async fn fill(&mut self) -> Result<(), Error> {
        // Rows sort by key ascending, then order descending (the current object first): rows
        // after a row are those of the same key with a lower order, or of a greater key.
        let (key, order, from) = match &self.cursor {
            Cursor::From(key) => (key, CURRENT, "key >= $2"),
            Cursor::After(key, order) => (key, *order, "((key = $2 AND ord < $3) OR key > $2)"),
        };
        let upper = if self.upper.is_some() {
            "AND key < $6"
        } else {
            ""
        };
        let sql = format!(
            "SELECT key, ord, record, is_object FROM (
                SELECT key, $4::bigint AS ord, record, true AS is_object
                    FROM objects WHERE bucket = $1
                UNION ALL
                SELECT key, seq AS ord, record, false AS is_object
                    FROM versions WHERE bucket = $1
            ) AS v
            WHERE {from} AND $3::bigint IS NOT NULL {upper}
            ORDER BY key, ord DESC LIMIT $5"
        );
        let rows = match &self.upper {
            Some(upper) => {
                query(
                    self.tx,
                    &sql,
                    &[&self.bucket, key, &order, &CURRENT, &BATCH, upper],
                )
                .await?
            }
            None => {
                query(
                    self.tx,
                    &sql,
                    &[&self.bucket, key, &order, &CURRENT, &BATCH],
                )
                .await?
            }
        };
        self.exhausted = (rows.len() as i64) < BATCH;
        for row in rows {
            let bytes: Vec<u8> = row.get(0);
            let ord: i64 = row.get(1);
            let text: &str = row.get(2);
            let version = if row.get::<_, bool>(3) {
                Version::Object(decode(text)?)
            } else {
                decode(text)?
            };
            self.cursor = Cursor::After(bytes.clone(), ord);
            self.buffered.push_back((key_string(bytes)?, ord, version));
        }
        Ok(())
    }
}

/// One page of ListObjectVersions.
pub(crate) async fn list(
    tx: &Tx<'_>,
    bucket_name: &str,
    q: &VersionListQuery,
) -> Result<VersionListPage, Error> {
    bucket(tx, bucket_name).await?;
    if q.max_keys == 0 {
        return Ok(VersionListPage::default());
    }
    let start = match &q.key_marker {
        Some(marker) if marker.as_str() > q.prefix.as_str() => marker.as_str(),
        _ => q.prefix.as_str(),
    };
    let mut rows = Rows {
        tx,
        bucket: bucket_name,
        upper: prefix_successor(q.prefix.as_bytes()),
        cursor: Cursor::From(Vec::new()),
        buffered: VecDeque::new(),
        exhausted: false,
    };
    rows.seek(start.as_bytes().to_vec());
    let mut page = VersionPage::new(q);
    while let Some(key) = rows.peek_key().await? {
        if let Some(prefix) = page.rolled_up(&key).map(str::to_owned) {
            // Every key under the common prefix is skipped: seek past them.
            match prefix_successor(prefix.as_bytes()) {
                Some(next) => rows.seek(next),
                None => rows.exhausted_now(),
            }
            if !page.add_prefix(&prefix) {
                break;
            }
            continue;
        }
        // The key's versions, newest first.
        let mut of_key = Vec::new();
        while rows.peek_key().await?.as_deref() == Some(key.as_str()) {
            of_key.extend(rows.next().await?);
        }
        if !page.add_key(&key, of_key) {
            break;
        }
    }
    Ok(page.finish())
}

impl Rows<'_, '_> {
    /// Nothing sorts after the common prefix just rolled up: the walk is over.
    fn exhausted_now(&mut self) {
        self.buffered.clear();
        self.exhausted = true;
    }
}
