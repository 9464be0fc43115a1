//! The contract every [`KeyStore`] keeps, as one test suite each backend
//! runs: the in-memory and file backends today, a shared database later.
//!
//! A backend's test implements [`Harness`] over a fresh, empty store and
//! calls [`run`]. Every check panics with what the backend did wrong.

use std::collections::BTreeMap;

use crate::keystore::{
    Cas, KeyRecord, KeyStore, Revision, SealedImportToken, SealedKey, SealedRotation, SealedVersion,
};
use crate::kms::KmsError;

/// What the suite needs beyond the trait.
pub trait Harness {
    /// The store under test, empty when [`run`] starts.
    fn store(&self) -> &dyn KeyStore;
    /// A second handle on the same storage, as after a restart; `None` for a
    /// store that does not outlive its handle.
    fn reopen(&self) -> Option<Box<dyn KeyStore>>;
    /// Every audit line appended so far, in order, as stored.
    fn audit_lines(&self) -> Vec<String>;
}

/// Runs every check against the harness's store.
pub fn run(harness: &dyn Harness) {
    starts_empty(harness);
    create_if_absent(harness);
    swap_needs_the_current_revision(harness);
    delete_and_recreate(harness);
    records_of_the_wrong_kind_are_refused(harness);
    list_is_every_record(harness);
    one_racer_wins(harness);
    audit_lines_are_appended(harness);
    survives_reopening(harness);
}

/// A sample key record: fake sealed values (a backend never opens them),
/// with import tokens whose digests interleave with `other`'s.
pub fn sample_key(key_id: &str, description: &str, token_digits: &[char]) -> KeyRecord {
    let import_tokens = token_digits
        .iter()
        .map(|digit| SealedImportToken {
            token_sha256: std::iter::repeat_n(*digit, 64).collect(),
            key_id: key_id.to_owned(),
            algorithm: "RSAES_OAEP_SHA_256".to_owned(),
            expires: "2025-01-02T00:00:00Z".to_owned(),
            sealed_private_key: format!("c2VhbGVk{digit}"),
        })
        .collect();
    KeyRecord::Key(Box::new(SealedKey {
        key_id: key_id.to_owned(),
        description: description.to_owned(),
        state: "Enabled".to_owned(),
        origin: "AWS_KMS".to_owned(),
        key_spec: "SYMMETRIC_DEFAULT".to_owned(),
        created: "2025-01-01T00:00:00Z".to_owned(),
        deletion_date: None,
        valid_to: None,
        managed: false,
        tags: BTreeMap::from([("team".to_owned(), "storage".to_owned())]),
        current_version: 2,
        rotation: SealedRotation {
            enabled: true,
            period_days: 365,
            anchor: Some("2025-01-01T00:00:00Z".to_owned()),
        },
        versions: vec![
            SealedVersion {
                version: 1,
                created: "2025-01-01T00:00:00Z".to_owned(),
                rotation_type: None,
                sealed: "c2VhbGVkMQ==".to_owned(),
            },
            SealedVersion {
                version: 2,
                created: "2025-01-01T00:00:01Z".to_owned(),
                rotation_type: Some("ON_DEMAND".to_owned()),
                sealed: "c2VhbGVkMg==".to_owned(),
            },
        ],
        import_commitment: Some("Y29tbWl0".to_owned()),
        import_tokens,
        creator: Some("alice".to_owned()),
        sealed_policy: Some("cG9saWN5".to_owned()),
    }))
}

fn alias(target: &str) -> KeyRecord {
    KeyRecord::Alias {
        target_key_id: target.to_owned(),
    }
}

fn create(store: &dyn KeyStore, id: &str, record: &KeyRecord) -> Revision {
    match store.compare_and_swap(id, None, Some(record)) {
        Ok(Cas::Swapped(Some(revision))) => revision,
        other => panic!("creating {id} in an empty slot answered {other:?}"),
    }
}

fn current(store: &dyn KeyStore, id: &str) -> Option<(Revision, KeyRecord)> {
    store
        .get(id)
        .expect("get")
        .map(|versioned| (versioned.revision, versioned.value))
}

fn starts_empty(h: &dyn Harness) {
    let store = h.store();
    assert!(
        store.list().expect("list").is_empty(),
        "a new store is empty"
    );
    assert_eq!(
        current(store, "k-none"),
        None,
        "get of a missing id is None"
    );
}

fn create_if_absent(h: &dyn Harness) {
    let store = h.store();
    let record = sample_key("k-create", "first", &['1', '3']);
    let revision = create(store, "k-create", &record);
    assert_eq!(
        current(store, "k-create"),
        Some((revision.clone(), record.clone())),
        "get returns the record as written, at the revision the swap returned"
    );
    let other = sample_key("k-create", "second", &[]);
    assert_eq!(
        store
            .compare_and_swap("k-create", None, Some(&other))
            .expect("cas"),
        Cas::Lost,
        "create-if-absent loses when the record exists"
    );
    assert_eq!(
        current(store, "k-create"),
        Some((revision, record)),
        "a lost create changes nothing"
    );
}

fn swap_needs_the_current_revision(h: &dyn Harness) {
    let store = h.store();
    let first = sample_key("k-swap", "first", &[]);
    let r1 = create(store, "k-swap", &first);
    let second = sample_key("k-swap", "second", &['2']);
    let r2 = match store
        .compare_and_swap("k-swap", Some(&r1), Some(&second))
        .expect("cas")
    {
        Cas::Swapped(Some(revision)) => revision,
        other => panic!("a swap at the current revision answered {other:?}"),
    };
    assert_ne!(r1, r2, "a changed record has a new revision");
    let third = sample_key("k-swap", "third", &[]);
    assert_eq!(
        store
            .compare_and_swap("k-swap", Some(&r1), Some(&third))
            .expect("cas"),
        Cas::Lost,
        "a swap at a stale revision loses"
    );
    assert_eq!(
        current(store, "k-swap"),
        Some((r2, second)),
        "a lost swap changes nothing"
    );
}

fn delete_and_recreate(h: &dyn Harness) {
    let store = h.store();
    let record = sample_key("k-delete", "doomed", &[]);
    let r1 = create(store, "k-delete", &record);
    let stale = Revision::new("not-a-revision-of-this-record");
    assert_eq!(
        store
            .compare_and_swap("k-delete", Some(&stale), None)
            .expect("cas"),
        Cas::Lost,
        "a delete at a wrong revision loses"
    );
    assert!(current(store, "k-delete").is_some());
    assert_eq!(
        store.compare_and_swap("k-delete", None, None).expect("cas"),
        Cas::Lost,
        "expecting absence loses when the record exists"
    );
    assert_eq!(
        store
            .compare_and_swap("k-delete", Some(&r1), None)
            .expect("cas"),
        Cas::Swapped(None),
        "a delete at the current revision succeeds"
    );
    assert_eq!(current(store, "k-delete"), None, "a deleted record is gone");
    assert_eq!(
        store
            .compare_and_swap("k-delete", Some(&r1), None)
            .expect("cas"),
        Cas::Lost,
        "deleting a record that is gone loses"
    );
    assert_eq!(
        store.compare_and_swap("k-delete", None, None).expect("cas"),
        Cas::Swapped(None),
        "expecting absence of an absent record succeeds"
    );
    let again = sample_key("k-delete", "again", &[]);
    let r2 = create(store, "k-delete", &again);
    assert_eq!(current(store, "k-delete"), Some((r2, again)));
}

fn records_of_the_wrong_kind_are_refused(h: &dyn Harness) {
    let store = h.store();
    let refused = |id: &str, record: &KeyRecord, why: &str| {
        let result = store.compare_and_swap(id, None, Some(record));
        assert!(
            matches!(result, Err(KmsError::Internal(_))),
            "{why}: {result:?}"
        );
        assert_eq!(current(store, id), None, "{why}: nothing is written");
    };
    refused(
        "alias/wrong",
        &sample_key("alias/wrong", "x", &[]),
        "a key under an alias name",
    );
    refused("k-wrong", &alias("k-create"), "an alias under a key id");
    refused(
        "k-wrong",
        &sample_key("k-other", "x", &[]),
        "a key under another key's id",
    );
}

fn list_is_every_record(h: &dyn Harness) {
    let store = h.store();
    let before = store.list().expect("list");
    let key = sample_key("k-list", "listed", &['0', '4']);
    let key_revision = create(store, "k-list", &key);
    let named = alias("k-list");
    let alias_revision = create(store, "alias/listed", &named);
    let after = store.list().expect("list");
    assert_eq!(after.len(), before.len() + 2, "list has every record");
    assert_eq!(after["k-list"].revision, key_revision);
    assert_eq!(after["k-list"].value, key);
    assert_eq!(after["alias/listed"].revision, alias_revision);
    assert_eq!(after["alias/listed"].value, named);
    for (id, versioned) in &after {
        assert_eq!(
            current(store, id),
            Some((versioned.revision.clone(), versioned.value.clone())),
            "list and get agree on {id}"
        );
    }
    let moved = alias("k-swap");
    assert!(matches!(
        store
            .compare_and_swap("alias/listed", Some(&alias_revision), Some(&moved))
            .expect("cas"),
        Cas::Swapped(Some(_))
    ));
    assert_eq!(store.list().expect("list")["alias/listed"].value, moved);
}

fn one_racer_wins(h: &dyn Harness) {
    let store = h.store();
    let base = sample_key("k-race", "base", &[]);
    let revision = create(store, "k-race", &base);
    let outcomes: Vec<Cas> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..4)
            .map(|n| {
                let revision = &revision;
                scope.spawn(move || {
                    let record = sample_key("k-race", &format!("racer {n}"), &[]);
                    store
                        .compare_and_swap("k-race", Some(revision), Some(&record))
                        .expect("cas")
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|racer| racer.join().expect("racer"))
            .collect()
    });
    let winners = outcomes
        .iter()
        .filter(|o| matches!(o, Cas::Swapped(_)))
        .count();
    assert_eq!(
        winners, 1,
        "exactly one of four swaps from one revision wins: {outcomes:?}"
    );
}

fn audit_lines_are_appended(h: &dyn Harness) {
    let store = h.store();
    let before = h.audit_lines().len();
    let lines = [
        r#"{"operation":"CreateKey","outcome":"ok"}"#,
        r#"{"operation":"Decrypt","outcome":"DisabledException"}"#,
    ];
    for line in lines {
        store.append_audit(line).expect("append");
    }
    assert!(
        matches!(store.append_audit("{}\n{}"), Err(KmsError::Internal(_))),
        "a line with a newline is refused"
    );
    let stored = h.audit_lines();
    assert_eq!(
        &stored[before..],
        &lines,
        "lines are appended whole, in order"
    );
    let read = store.read_audit(0, usize::MAX).expect("read the audit log");
    assert_eq!(
        read.iter().map(|e| e.line.as_str()).collect::<Vec<_>>(),
        stored,
        "read_audit returns the stored lines, in order"
    );
    assert!(
        read.windows(2).all(|w| w[0].seq < w[1].seq),
        "sequence numbers grow: {read:?}"
    );
    let last_two = &read[read.len() - 2..];
    let after_first = store
        .read_audit(last_two[0].seq, 10)
        .expect("read after a sequence number");
    assert_eq!(after_first, last_two[1..], "reading resumes after `after`");
    assert_eq!(
        store.read_audit(0, 1).expect("read one").len(),
        1,
        "at most `limit` lines"
    );
}

fn survives_reopening(h: &dyn Harness) {
    let Some(reopened) = h.reopen() else {
        return;
    };
    let before = h.store().list().expect("list");
    let after = reopened.list().expect("list after reopening");
    assert_eq!(before, after, "records and revisions survive reopening");
    let revision = &after["k-list"].revision;
    let changed = sample_key("k-list", "after reopening", &['9']);
    assert!(
        matches!(
            reopened
                .compare_and_swap("k-list", Some(revision), Some(&changed))
                .expect("cas"),
            Cas::Swapped(Some(_))
        ),
        "a revision read before reopening still swaps"
    );
    assert_eq!(
        h.store().get("k-list").expect("get").map(|v| v.value),
        Some(changed),
        "both handles see one storage"
    );
}
