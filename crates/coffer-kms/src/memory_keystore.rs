//! An in-memory [`KeyStore`]: records and audit lines that live only in this
//! process. For tests: the embedded KMS over it runs without a data
//! directory, and it is the reference the keystore contract suite
//! (`contract::keystore`) is written against.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use crate::keystore::{AuditEntry, Cas, KeyRecord, KeyStore, Revision, Versioned, check_record_id};
use crate::kms::KmsError;

#[derive(Default)]
struct Inner {
    records: BTreeMap<String, Versioned<KeyRecord>>,
    /// The last revision handed out; revisions are never reused.
    counter: u64,
    audit: Vec<String>,
}

/// The in-memory keystore. Revisions are a counter shared by all records.
#[derive(Default)]
pub struct MemoryKeyStore {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MemoryKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryKeyStore").finish_non_exhaustive()
    }
}

impl MemoryKeyStore {
    /// An empty keystore.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every audit line appended so far, in order.
    pub fn audit_lines(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|inner| inner.audit.clone())
            .unwrap_or_default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, KmsError> {
        self.inner
            .lock()
            .map_err(|_| KmsError::Internal("the in-memory keystore lock is poisoned".into()))
    }
}

impl KeyStore for MemoryKeyStore {
    fn get(&self, id: &str) -> Result<Option<Versioned<KeyRecord>>, KmsError> {
        Ok(self.lock()?.records.get(id).cloned())
    }

    fn list(&self) -> Result<BTreeMap<String, Versioned<KeyRecord>>, KmsError> {
        Ok(self.lock()?.records.clone())
    }

    fn compare_and_swap(
        &self,
        id: &str,
        expected: Option<&Revision>,
        new: Option<&KeyRecord>,
    ) -> Result<Cas, KmsError> {
        if let Some(record) = new {
            check_record_id(id, record)?;
        }
        let mut inner = self.lock()?;
        if inner.records.get(id).map(|r| &r.revision) != expected {
            return Ok(Cas::Lost);
        }
        match new {
            Some(record) => {
                inner.counter += 1;
                let revision = Revision::new(inner.counter.to_string());
                inner.records.insert(
                    id.to_owned(),
                    Versioned {
                        revision: revision.clone(),
                        value: record.clone(),
                    },
                );
                Ok(Cas::Swapped(Some(revision)))
            }
            None => {
                inner.records.remove(id);
                Ok(Cas::Swapped(None))
            }
        }
    }

    fn append_audit(&self, line: &str) -> Result<(), KmsError> {
        if line.contains('\n') {
            return Err(KmsError::Internal(
                "an audit line contains a newline".into(),
            ));
        }
        self.lock()?.audit.push(line.to_owned());
        Ok(())
    }

    fn read_audit(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, KmsError> {
        let inner = self.lock()?;
        Ok((1u64..)
            .zip(&inner.audit)
            .skip(usize::try_from(after).unwrap_or(usize::MAX))
            .take(limit)
            .map(|(seq, line)| AuditEntry {
                seq,
                line: line.clone(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::keystore::{Harness, run};

    struct Memory(MemoryKeyStore);

    impl Harness for Memory {
        fn store(&self) -> &dyn KeyStore {
            &self.0
        }
        fn reopen(&self) -> Option<Box<dyn KeyStore>> {
            None
        }
        fn audit_lines(&self) -> Vec<String> {
            self.0.audit_lines()
        }
    }

    #[test]
    fn passes_the_keystore_contract() {
        run(&Memory(MemoryKeyStore::new()));
    }
}
