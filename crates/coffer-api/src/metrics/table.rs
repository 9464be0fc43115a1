//! A fixed-capacity table from label values to counters that never locks
//! on the hot path: a lookup hashes the labels and probes slots that are
//! each set once (`OnceLock`), so a counter that exists is found with
//! atomic loads only. Label sets are few and bounded (operation names,
//! status codes, algorithm names), so a slot is never freed.

use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

/// Up to `N` label sets `K`, each with its value `V` (atomics).
pub(crate) struct LabelTable<K, V, const N: usize> {
    slots: [OnceLock<(K, V)>; N],
}

impl<K, V, const N: usize> LabelTable<K, V, N>
where
    K: Copy + Eq + Hash,
    V: Default,
{
    pub(crate) const fn new() -> Self {
        Self {
            slots: [const { OnceLock::new() }; N],
        }
    }

    /// The value of `key`, created on first use; `None` once the table is
    /// full (more label sets than the capacity: the count is dropped).
    pub(crate) fn get(&self, key: K) -> Option<&V> {
        let mut hasher = std::hash::DefaultHasher::new();
        key.hash(&mut hasher);
        let start = hasher.finish() as usize;
        (0..N).find_map(|i| {
            let (slot_key, value) = self.slots[(start + i) % N].get_or_init(|| (key, V::default()));
            (*slot_key == key).then_some(value)
        })
    }

    /// Every label set used so far, with its value.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &(K, V)> {
        self.slots.iter().filter_map(OnceLock::get)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[test]
    fn counts_per_label_set_until_full() {
        let table: LabelTable<(&str, u16), AtomicU64, 4> = LabelTable::new();
        for (key, n) in [(("a", 200), 3), (("a", 404), 1), (("b", 200), 2)] {
            for _ in 0..n {
                table
                    .get(key)
                    .expect("room")
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut seen: Vec<_> = table
            .entries()
            .map(|(k, v)| (*k, v.load(Ordering::Relaxed)))
            .collect();
        seen.sort();
        assert_eq!(seen, [(("a", 200), 3), (("a", 404), 1), (("b", 200), 2)]);
        assert!(table.get(("c", 1)).is_some(), "the fourth set fits");
        assert!(table.get(("d", 1)).is_none(), "a fifth does not");
        assert!(
            table.get(("a", 200)).is_some(),
            "known sets are still found"
        );
    }

    #[test]
    fn concurrent_first_uses_share_one_counter() {
        let table: LabelTable<u16, AtomicU64, 64> = LabelTable::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..1600u16 {
                        table
                            .get(i % 16)
                            .expect("room")
                            .fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(table.entries().count(), 16);
        assert!(
            table
                .entries()
                .all(|(_, v)| v.load(Ordering::Relaxed) == 400)
        );
    }
}
