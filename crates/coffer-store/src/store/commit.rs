//! Group commit: concurrent writers share one redb write transaction, hence one fsync.
//!
//! A writer queues its job and, if no one is leading, leads: it takes up to [`MAX_BATCH`]
//! queued jobs (its own first), runs them in order in one transaction, commits once, deletes
//! the blob files they freed, and wakes each job's owner with its own result. Then it hands
//! the lead to the owner of the next queued job (which arrived while it committed) or steps
//! down. No one waits for a batch to fill: a lone writer commits at once, and batches form
//! from the writers that queue during a commit.
//!
//! A job that fails must neither fail the others nor leak its partial writes into their
//! commit. redb cannot take a savepoint once a transaction has written, so a failure aborts
//! the whole transaction, the failing job gets its error (the state it saw is the one a
//! serial run would have shown it: the jobs before it, applied), and the remaining jobs run
//! again in a fresh transaction. Jobs are therefore `FnMut` and build their writes from
//! inputs they keep. If a multi-job commit itself fails, each job is retried alone, so each
//! gets the error of its own commit.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use redb::WriteTransaction;

use super::Store;
use crate::{BlobId, StoreError};

/// Most jobs one transaction runs (a bound on a batch's latency and on the bytes of inline
/// blob bodies it carries: 64 × 64 KiB).
const MAX_BATCH: usize = 64;

type Output = Box<dyn Any + Send>;
type Work =
    Box<dyn FnMut(&WriteTransaction, &mut Vec<BlobId>) -> Result<Output, StoreError> + Send>;

struct Job {
    work: Work,
    slot: Arc<Slot>,
}

/// Where a queued job's owner waits: for its result, or to be told to lead.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    wake: Condvar,
}

#[derive(Default)]
enum SlotState {
    #[default]
    Queued,
    Lead,
    Done(Result<Output, StoreError>),
}

impl Slot {
    fn set(&self, state: SlotState) {
        *lock(&self.state) = state;
        self.wake.notify_one();
    }
}

/// The queue of jobs waiting for a transaction, and whether someone is leading.
#[derive(Default)]
pub(super) struct Committer {
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    leading: bool,
}

/// The committer's locks guard plain data that a panic cannot leave half-updated.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

enum BatchError {
    /// Job `index` failed; the transaction was aborted.
    Job(usize, StoreError),
    /// The transaction could not begin or commit.
    Commit(StoreError),
}

impl Store {
    /// Like `write`, but shares the transaction (and its fsync) with concurrent callers: `f`
    /// may run more than once (see the module docs), the last run's writes are committed, and
    /// the blobs it freed are deleted after that commit, before this returns.
    pub(super) fn write_grouped<R: Send + 'static>(
        &self,
        mut f: impl FnMut(&WriteTransaction, &mut Vec<BlobId>) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let slot = Arc::new(Slot::default());
        let job = Job {
            work: Box::new(move |txn, freed| f(txn, freed).map(|r| Box::new(r) as Output)),
            slot: Arc::clone(&slot),
        };
        let committer = &self.inner.committer;
        let lead = {
            let mut queue = lock(&committer.queue);
            queue.jobs.push_back(job);
            !std::mem::replace(&mut queue.leading, true)
        };
        let mut state = lock(&slot.state);
        if !lead {
            while matches!(*state, SlotState::Queued) {
                state = slot
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        if matches!(*state, SlotState::Queued | SlotState::Lead) {
            drop(state);
            self.lead_one_batch();
            state = lock(&slot.state);
        }
        match std::mem::take(&mut *state) {
            SlotState::Done(result) => result.map(|output| {
                *output
                    .downcast::<R>()
                    .expect("a job's output is the type its caller queued")
            }),
            SlotState::Queued | SlotState::Lead => {
                unreachable!("the leader's own job is in its first batch")
            }
        }
    }

    /// Runs the batch at the head of the queue (the leader's own job is its first), then
    /// passes the lead on or steps down.
    fn lead_one_batch(&self) {
        let committer = &self.inner.committer;
        let batch: Vec<Job> = {
            let mut queue = lock(&committer.queue);
            let n = queue.jobs.len().min(MAX_BATCH);
            queue.jobs.drain(..n).collect()
        };
        self.run_batch(batch);
        let mut queue = lock(&committer.queue);
        match queue.jobs.front() {
            Some(next) => next.slot.set(SlotState::Lead),
            None => queue.leading = false,
        }
    }

    fn run_batch(&self, mut jobs: Vec<Job>) {
        while !jobs.is_empty() {
            match self.try_batch(&mut jobs) {
                Ok(outputs) => {
                    for (job, output) in jobs.drain(..).zip(outputs) {
                        job.slot.set(SlotState::Done(Ok(output)));
                    }
                }
                Err(BatchError::Job(index, error)) => {
                    let failed = jobs.remove(index);
                    failed.slot.set(SlotState::Done(Err(error)));
                }
                Err(BatchError::Commit(error)) if jobs.len() == 1 => {
                    let job = jobs.remove(0);
                    job.slot.set(SlotState::Done(Err(error)));
                }
                Err(BatchError::Commit(error)) => {
                    tracing::warn!(%error, jobs = jobs.len(), "group commit failed; retrying each write alone");
                    for job in jobs.drain(..) {
                        self.run_batch(vec![job]);
                    }
                }
            }
        }
    }

    /// Runs every job in one transaction and commits it; on success, deletes the freed blob
    /// files and returns the outputs in job order.
    fn try_batch(&self, jobs: &mut [Job]) -> Result<Vec<Output>, BatchError> {
        let txn = self
            .inner
            .db
            .begin_write()
            .map_err(|e| BatchError::Commit(e.into()))?;
        let mut outputs = Vec::with_capacity(jobs.len());
        let mut freed = Vec::new();
        for (index, job) in jobs.iter_mut().enumerate() {
            // A panicking job must not strand the writers queued behind it.
            let run = catch_unwind(AssertUnwindSafe(|| (job.work)(&txn, &mut freed)));
            let result = run.unwrap_or_else(|_| {
                Err(StoreError::Io(std::io::Error::other(
                    "a metadata write panicked",
                )))
            });
            match result {
                Ok(output) => outputs.push(output),
                Err(error) => {
                    if let Err(abort) = txn.abort() {
                        tracing::warn!(error = %abort, "cannot abort metadata transaction");
                    }
                    return Err(BatchError::Job(index, error));
                }
            }
        }
        let files = self
            .drop_inline_bodies(&txn, freed)
            .map_err(BatchError::Commit)?;
        txn.commit().map_err(|e| BatchError::Commit(e.into()))?;
        for id in files {
            self.remove_blob_file(&id);
        }
        Ok(outputs)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

    use super::{Job, Output, Slot, SlotState};
    use crate::{BucketRecord, Condition, Extent, ObjectRecord, Store, StoreError};

    const SCRATCH: TableDefinition<&str, u64> = TableDefinition::new("commit_test_scratch");

    /// A job that inserts `key`, then fails if `fail`; counts its runs.
    fn job(key: &'static str, fail: bool, runs: &Arc<AtomicUsize>) -> (Job, Arc<Slot>) {
        let slot = Arc::new(Slot::default());
        let runs = Arc::clone(runs);
        let work = Box::new(
            move |txn: &redb::WriteTransaction, _: &mut Vec<crate::BlobId>| {
                runs.fetch_add(1, Ordering::SeqCst);
                txn.open_table(SCRATCH)?.insert(key, 1)?;
                if fail {
                    return Err(StoreError::InvalidArgument(format!("{key} fails")));
                }
                Ok(Box::new(key) as Output)
            },
        );
        let job = Job {
            work,
            slot: Arc::clone(&slot),
        };
        (job, slot)
    }

    /// A job failing in the middle of a batch, after writing: its write is not committed, it
    /// gets its error, and the jobs before and after it commit (the ones before run twice).
    #[test]
    fn a_failing_job_leaks_nothing_into_the_batch() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let runs: Vec<Arc<AtomicUsize>> = (0..3).map(|_| Arc::default()).collect();
        let (first, first_slot) = job("first", false, &runs[0]);
        let (failing, failing_slot) = job("partial", true, &runs[1]);
        let (last, last_slot) = job("last", false, &runs[2]);
        store.run_batch(vec![first, failing, last]);

        let outcome = |slot: &Slot| match std::mem::take(&mut *super::lock(&slot.state)) {
            SlotState::Done(Ok(output)) => Ok(*output.downcast::<&str>().unwrap()),
            SlotState::Done(Err(e)) => Err(e.to_string()),
            SlotState::Queued | SlotState::Lead => panic!("not done"),
        };
        assert_eq!(outcome(&first_slot), Ok("first"));
        assert_eq!(
            outcome(&failing_slot),
            Err("invalid argument: partial fails".into())
        );
        assert_eq!(outcome(&last_slot), Ok("last"));
        let counts: Vec<usize> = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
        assert_eq!(counts, [2, 1, 1]);

        let txn = store.inner.db.begin_read().unwrap();
        let table = txn.open_table(SCRATCH).unwrap();
        let keys: Vec<String> = table
            .iter()
            .unwrap()
            .map(|row| row.unwrap().0.value().to_owned())
            .collect();
        assert_eq!(keys, ["first", "last"]);
    }

    /// A record of `body`, in a blob file, or held in memory for the commit (`inline`).
    fn record(store: &Store, body: &[u8], inline: bool) -> ObjectRecord {
        let blob = if inline {
            let id = crate::rules::new_blob_id().unwrap();
            store
                .hold_inline_blob(id.clone(), bytes::Bytes::copy_from_slice(body))
                .unwrap();
            id
        } else {
            let mut blob = store.new_blob().unwrap();
            blob.write(body).unwrap();
            blob.finish().unwrap()
        };
        ObjectRecord {
            size: body.len() as u64,
            etag: hex::encode(body),
            extents: vec![Extent {
                blob,
                size: body.len() as u64,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn body_of(store: &Store, blob: &crate::BlobId) -> Vec<u8> {
        match store.open_blob(blob).unwrap() {
            super::super::BlobBody::Inline(bytes) => bytes.to_vec(),
            super::super::BlobBody::File(file) => {
                std::io::Read::bytes(file).map(Result::unwrap).collect()
            }
        }
    }

    /// Many writers at once: each gets its own result, a failing one (a lost `IfAbsent`
    /// race, a missing bucket) neither fails the others nor leaks a write into their commit.
    #[test]
    fn concurrent_writers_get_their_own_results() {
        concurrent_writers(false);
    }

    /// The same with small bodies held for the commit: a job that runs again (after another
    /// failed) still writes its body; a failed one gets its body back, unwritten.
    #[test]
    fn concurrent_writers_of_small_bodies_write_them_once_committed() {
        concurrent_writers(true);
    }

    fn concurrent_writers(inline: bool) {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .create_bucket(BucketRecord {
                name: "b".into(),
                owner: "o".into(),
                ..Default::default()
            })
            .unwrap();
        let writers = 24;
        let barrier = Barrier::new(writers);
        let results: Vec<(usize, Result<_, StoreError>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..writers)
                .map(|i| {
                    let (store, barrier) = (store.clone(), &barrier);
                    scope.spawn(move || {
                        let rec = record(&store, format!("body {i}").as_bytes(), inline);
                        barrier.wait();
                        let result = match i % 3 {
                            0 => store.put_object_if("b", "race", rec, &Condition::IfAbsent),
                            1 => store.put_object("b", &format!("own-{i}"), rec),
                            _ => store.put_object("missing", "k", rec),
                        };
                        (i, result)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut race_winners = 0;
        for (i, result) in results {
            match (i % 3, result) {
                (0, Ok(_)) => race_winners += 1,
                (0, Err(StoreError::PreconditionFailed)) => {}
                (1, Ok(_)) => {
                    let got = store.object("b", &format!("own-{i}")).unwrap();
                    assert_eq!(got.etag, hex::encode(format!("body {i}")));
                    let blob = &got.extents[0].blob;
                    assert!(store.is_blob_referenced(blob).unwrap());
                    assert_eq!(store.is_inline_blob(blob).unwrap(), inline);
                    assert_eq!(body_of(&store, blob), format!("body {i}").as_bytes());
                }
                (2, Err(StoreError::NoSuchBucket)) => {}
                (kind, other) => panic!("writer {i} (kind {kind}): {other:?}"),
            }
        }
        if inline {
            let held = store.inner.held.older_than("", i64::MAX);
            let txn = store.inner.db.begin_read().unwrap();
            let written = txn
                .open_table(super::super::BLOB_BODIES)
                .unwrap()
                .len()
                .unwrap();
            assert_eq!(written, 9, "the 8 own keys and the race's winner");
            assert_eq!(
                held.len(),
                15,
                "the 7 race losers and 8 missing-bucket writes"
            );
            for blob in &held {
                assert!(!store.is_inline_blob(blob).unwrap());
                assert!(body_of(&store, blob).starts_with(b"body "), "given back");
            }
        }
        assert_eq!(race_winners, 1, "exactly one IfAbsent write wins");
        let winner = store.object("b", "race").unwrap();
        assert!(store.is_blob_referenced(&winner.extents[0].blob).unwrap());
        assert!(store.object("missing", "k").is_err());
    }
}
