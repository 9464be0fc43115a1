//! S3 listing over an ordered table: prefix, delimiter roll-up, exclusive start, page size.

use std::ops::Bound;

use redb::ReadableTable;

use crate::StoreError;
use crate::keys::prefix_successor;

pub(crate) use crate::rules::ListEntry as Entry;

/// What a walk needs to know about the table it walks.
pub(crate) struct Walk<'a, D, G> {
    /// Lower bound of the first range (already the max of prefix and marker).
    pub start: Bound<Vec<u8>>,
    /// Exclusive upper bound: the successor of the encoded prefix.
    pub end: Vec<u8>,
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    /// A common prefix equal to this is skipped (the marker of the previous page).
    pub skip_prefix: Option<&'a str>,
    pub max: usize,
    /// Table entry → (object key, item).
    pub decode: D,
    /// Common prefix → encoded table prefix of every entry under it.
    pub encode_prefix: G,
}

pub(crate) use crate::rules::common_prefix;

/// Walks the table; returns the entries of one page and whether more follow.
/// A common prefix is emitted once and the walk then seeks past every key under it.
pub(crate) fn walk<T, D, G>(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    walk: Walk<'_, D, G>,
) -> Result<(Vec<Entry<T>>, bool), StoreError>
where
    D: Fn(&[u8], &[u8]) -> Result<(String, T), StoreError>,
    G: Fn(&str) -> Vec<u8>,
{
    let mut out = Vec::new();
    if walk.max == 0 {
        return Ok((out, false));
    }
    let delimiter = walk.delimiter.filter(|d| !d.is_empty());
    let mut lower = walk.start;
    loop {
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (
            match &lower {
                Bound::Included(v) => Bound::Included(v.as_slice()),
                Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
                Bound::Unbounded => Bound::Unbounded,
            },
            Bound::Excluded(walk.end.as_slice()),
        );
        if let (Bound::Included(lo) | Bound::Excluded(lo), Bound::Excluded(hi)) = bounds
            && lo >= hi
        {
            return Ok((out, false));
        }
        let mut next_lower = None;
        for entry in table.range::<&[u8]>(bounds)? {
            let (k, v) = entry?;
            let (key, item) = (walk.decode)(k.value(), v.value())?;
            if let Some(d) = delimiter
                && let Some(cp) = common_prefix(&key, walk.prefix, d)
            {
                if walk.skip_prefix != Some(cp) {
                    if out.len() == walk.max {
                        return Ok((out, true));
                    }
                    out.push(Entry::CommonPrefix(cp.to_owned()));
                }
                next_lower = prefix_successor(&(walk.encode_prefix)(cp));
                if next_lower.is_none() {
                    return Ok((out, false));
                }
                break;
            }
            if out.len() == walk.max {
                return Ok((out, true));
            }
            out.push(Entry::Item(key, item));
        }
        match next_lower {
            Some(next) => lower = Bound::Included(next),
            None => return Ok((out, false)),
        }
    }
}

/// The larger of two lower bounds.
pub(crate) fn max_lower(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    fn key(b: &Bound<Vec<u8>>) -> Option<(&[u8], u8)> {
        match b {
            Bound::Unbounded => None,
            Bound::Included(v) => Some((v.as_slice(), 0)),
            Bound::Excluded(v) => Some((v.as_slice(), 1)),
        }
    }
    if key(&a) >= key(&b) { a } else { b }
}
