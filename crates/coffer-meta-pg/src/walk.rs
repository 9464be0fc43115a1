//! S3 listing over an ordered table, in batches: prefix, delimiter roll-up (a common prefix is
//! emitted once and the walk then seeks past every key under it), exclusive marker, page size.
//! The same semantics as the embedded store's walk over a redb range.
//!
//! The walk is a plain state machine the caller drives — ask [`Walker::next_query`], run the
//! query, [`Walker::feed`] the rows — so that each listing's query stays an ordinary async
//! function.

use coffer_store::rules::{common_prefix, prefix_successor};

/// At most this many rows per query.
const BATCH: usize = 1000;

pub(crate) use coffer_store::rules::ListEntry as Entry;

/// One row a query returns: its object key, its item, and the lower bound that resumes the
/// walk just after it.
pub(crate) struct Fetched<T, L> {
    pub key: String,
    pub item: T,
    pub after: L,
}

/// What a walk needs to know about its listing.
pub(crate) struct Walk<'a, L> {
    /// Where the walk starts (already the larger of the prefix and the marker).
    pub start: L,
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    /// A common prefix equal to this is skipped (the marker of the previous page).
    pub skip_prefix: Option<&'a str>,
    pub max: usize,
}

/// A walk in progress.
pub(crate) struct Walker<'a, T, L> {
    walk: Walk<'a, ()>,
    /// Where the next query starts; `None` once the page is complete.
    lower: Option<L>,
    limit: usize,
    out: Vec<Entry<T>>,
    truncated: bool,
    /// The lower bound of the first key at or after some bytes.
    seek: fn(Vec<u8>) -> L,
}

impl<'a, T, L> Walker<'a, T, L> {
    pub(crate) fn new(w: Walk<'a, L>, seek: fn(Vec<u8>) -> L) -> Self {
        let lower = (w.max > 0).then_some(w.start);
        Walker {
            walk: Walk {
                start: (),
                prefix: w.prefix,
                delimiter: w.delimiter.filter(|d| !d.is_empty()),
                skip_prefix: w.skip_prefix,
                max: w.max,
            },
            lower,
            limit: 0,
            out: Vec::new(),
            truncated: false,
            seek,
        }
    }

    /// The next query to run: rows from this lower bound on, in order, at most this many,
    /// none past the listing's upper bound. `None` once the page is complete.
    pub(crate) fn next_query(&mut self) -> Option<(&L, i64)> {
        self.limit = (self.walk.max - self.out.len() + 1).min(BATCH);
        let limit = i64::try_from(self.limit).unwrap_or(i64::MAX);
        self.lower.as_ref().map(|lower| (lower, limit))
    }

    /// Takes the rows the last query returned.
    pub(crate) fn feed(&mut self, rows: Vec<Fetched<T, L>>) {
        let full = rows.len() == self.limit;
        for row in rows {
            if let Some(d) = self.walk.delimiter
                && let Some(cp) = common_prefix(&row.key, self.walk.prefix, d)
            {
                if self.walk.skip_prefix != Some(cp) {
                    if self.out.len() == self.walk.max {
                        return self.stop(true);
                    }
                    self.out.push(Entry::CommonPrefix(cp.to_owned()));
                }
                match prefix_successor(cp.as_bytes()) {
                    Some(next) => self.lower = Some((self.seek)(next)),
                    None => self.stop(false),
                }
                return;
            }
            if self.out.len() == self.walk.max {
                return self.stop(true);
            }
            self.out.push(Entry::Item(row.key, row.item));
            self.lower = Some(row.after);
        }
        if !full {
            self.stop(false);
        }
    }

    fn stop(&mut self, truncated: bool) {
        self.truncated = truncated;
        self.lower = None;
    }

    /// The page's entries and whether more follow.
    pub(crate) fn finish(self) -> (Vec<Entry<T>>, bool) {
        (self.out, self.truncated)
    }
}
