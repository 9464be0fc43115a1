//! Store tests: lifecycle, listing (with a property test against a naive model), multipart,
//! crash safety, users.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use proptest::prelude::*;
use tempfile::TempDir;

use crate::*;

fn open() -> (TempDir, Store) {
    let dir = TempDir::new().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn bucket(name: &str) -> BucketRecord {
    BucketRecord {
        name: name.into(),
        owner: "alice".into(),
        region: "us-east-1".into(),
        created_ms: 1,
        config: BTreeMap::new(),
        ..Default::default()
    }
}

fn blob(store: &Store, bytes: &[u8]) -> BlobId {
    let mut b = store.new_blob().unwrap();
    b.write(bytes).unwrap();
    b.finish().unwrap()
}

fn read_blob(store: &Store, id: &BlobId) -> Vec<u8> {
    match store.open_blob(id).unwrap() {
        crate::store::BlobBody::File(mut file) => {
            let mut out = Vec::new();
            file.read_to_end(&mut out).unwrap();
            out
        }
        crate::store::BlobBody::Inline(bytes) => bytes.to_vec(),
    }
}

fn object(blobs: &[(&BlobId, Option<u32>)]) -> ObjectRecord {
    ObjectRecord {
        size: 0,
        etag: "e".into(),
        last_modified_ms: 2,
        owner: "alice".into(),
        headers: vec![("content-type".into(), "text/plain".into())],
        checksum: None,
        extents: blobs
            .iter()
            .map(|(b, n)| Extent {
                blob: (*b).clone(),
                size: 1,
                part_number: *n,
                etag: None,
                ..Default::default()
            })
            .collect(),
        envelope: Some(vec![1, 2, 3]),
        crc64: Some(42),
        ..Default::default()
    }
}

fn empty_object() -> ObjectRecord {
    object(&[])
}

fn upload_record() -> UploadRecord {
    UploadRecord {
        upload_id: String::new(),
        key: String::new(),
        initiated_ms: 3,
        owner: "alice".into(),
        headers: vec![],
        checksum_algorithm: None,
        envelope: None,
        ..Default::default()
    }
}

fn part(n: u32, blob: &BlobId) -> PartRecord {
    PartRecord {
        part_number: n,
        etag: format!("etag{n}"),
        size: 1,
        last_modified_ms: 4,
        blob: blob.clone(),
        checksum: None,
        envelope: None,
        crc64: None,
    }
}

#[test]
fn store_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Store>();
}

#[test]
fn bucket_lifecycle() {
    let (_d, s) = open();
    s.create_bucket(bucket("b2")).unwrap();
    s.create_bucket(bucket("b1")).unwrap();
    match s.create_bucket(bucket("b1")) {
        Err(StoreError::BucketExists { owner }) => assert_eq!(owner, "alice"),
        other => panic!("expected BucketExists, got {other:?}"),
    }
    assert_eq!(s.bucket("b1").unwrap(), bucket("b1"));
    assert!(matches!(s.bucket("nope"), Err(StoreError::NoSuchBucket)));
    let names: Vec<_> = s
        .list_buckets()
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["b1", "b2"]);

    let mut updated = bucket("b1");
    updated.config.insert("encryption".into(), "<x/>".into());
    s.update_bucket(updated.clone()).unwrap();
    assert_eq!(s.bucket("b1").unwrap(), updated);
    assert!(matches!(
        s.update_bucket(bucket("nope")),
        Err(StoreError::NoSuchBucket)
    ));

    // Not empty with an object.
    s.put_object("b1", "k", empty_object()).unwrap();
    assert!(matches!(
        s.delete_bucket("b1"),
        Err(StoreError::BucketNotEmpty)
    ));
    assert_eq!(s.delete_object("b1", "k").unwrap(), Deleted::Removed);
    // Not empty with only an in-progress upload.
    let id = s.create_upload("b1", "k", upload_record()).unwrap();
    assert!(matches!(
        s.delete_bucket("b1"),
        Err(StoreError::BucketNotEmpty)
    ));
    s.abort_upload("b1", "k", &id).unwrap();
    // A bucket whose name is a prefix of another does not see the other's objects.
    s.create_bucket(bucket("b1x")).unwrap();
    s.put_object("b1x", "k", empty_object()).unwrap();
    s.delete_bucket("b1").unwrap();
    assert!(matches!(
        s.delete_bucket("b1"),
        Err(StoreError::NoSuchBucket)
    ));
    assert!(matches!(s.bucket("b1"), Err(StoreError::NoSuchBucket)));
    assert!(matches!(
        s.create_bucket(bucket("bad\0name")),
        Err(StoreError::InvalidArgument(_))
    ));
}

#[test]
fn objects_put_get_overwrite_delete() {
    let (_d, s) = open();
    s.create_bucket(bucket("b")).unwrap();
    let b1 = blob(&s, b"hello");
    assert!(matches!(
        s.put_object("nope", "k", object(&[(&b1, None)])),
        Err(StoreError::NoSuchBucket)
    ));
    s.put_object("b", "k", object(&[(&b1, None)])).unwrap();
    assert_eq!(s.object("b", "k").unwrap(), object(&[(&b1, None)]));
    assert_eq!(read_blob(&s, &b1), b"hello");
    assert!(matches!(s.object("b", "x"), Err(StoreError::NoSuchKey)));
    assert!(matches!(
        s.object("nope", "k"),
        Err(StoreError::NoSuchBucket)
    ));

    // A blob can belong to one record only.
    assert!(matches!(
        s.put_object("b", "k2", object(&[(&b1, None)])),
        Err(StoreError::BlobInUse)
    ));
    assert!(matches!(
        s.put_object("b", "k2", object(&[(&"0".repeat(32), None)])),
        Err(StoreError::NoSuchBlob)
    ));

    // Overwrite frees the old blob.
    let b2 = blob(&s, b"world");
    s.put_object("b", "k", object(&[(&b2, None)])).unwrap();
    assert!(!s.blob_file_exists(&b1));
    assert!(matches!(s.open_blob(&b1), Err(StoreError::NoSuchBlob)));
    assert_eq!(read_blob(&s, &b2), b"world");

    // Delete frees the blob; deleting again is not an error.
    assert_eq!(s.delete_object("b", "k").unwrap(), Deleted::Removed);
    assert!(!s.blob_file_exists(&b2));
    assert_eq!(s.delete_object("b", "k").unwrap(), Deleted::Absent);
    assert!(matches!(s.object("b", "k"), Err(StoreError::NoSuchKey)));
    assert!(matches!(
        s.delete_object("nope", "k"),
        Err(StoreError::NoSuchBucket)
    ));
    assert_eq!(s.blob_count(), 0);

    // Key limits.
    let long = "k".repeat(MAX_KEY_LEN);
    s.put_object("b", &long, empty_object()).unwrap();
    assert!(matches!(
        s.put_object("b", &format!("{long}k"), empty_object()),
        Err(StoreError::InvalidArgument(_))
    ));
    s.put_object("b", "nul\0inside", empty_object()).unwrap();
    assert_eq!(s.object("b", "nul\0inside").unwrap(), empty_object());
}

fn list(s: &Store, prefix: &str, delim: Option<&str>, after: Option<&str>, max: usize) -> ListPage {
    s.list_objects(
        "b",
        &ListQuery {
            prefix: prefix.into(),
            delimiter: delim.map(Into::into),
            start_after: after.map(Into::into),
            max_keys: max,
        },
    )
    .unwrap()
}

fn keys(page: &ListPage) -> Vec<&str> {
    page.objects.iter().map(|(k, _)| k.as_str()).collect()
}

#[test]
fn listing_examples() {
    let (_d, s) = open();
    s.create_bucket(bucket("b")).unwrap();
    s.create_bucket(bucket("a")).unwrap();
    s.put_object("a", "zz", empty_object()).unwrap();
    for k in ["a/b/c", "a/b/d", "a/e", "a/f/g", "b", "c/d", "c/e"] {
        s.put_object("b", k, empty_object()).unwrap();
    }
    let all = list(&s, "", None, None, 1000);
    assert_eq!(
        keys(&all),
        ["a/b/c", "a/b/d", "a/e", "a/f/g", "b", "c/d", "c/e"]
    );
    assert!(!all.is_truncated && all.next_marker.is_none());

    let top = list(&s, "", Some("/"), None, 1000);
    assert_eq!(keys(&top), ["b"]);
    assert_eq!(top.common_prefixes, ["a/", "c/"]);

    let a = list(&s, "a/", Some("/"), None, 1000);
    assert_eq!(keys(&a), ["a/e"]);
    assert_eq!(a.common_prefixes, ["a/b/", "a/f/"]);

    let page = list(&s, "", Some("/"), None, 1);
    assert_eq!(page.common_prefixes, ["a/"]);
    assert!(page.is_truncated);
    assert_eq!(page.next_marker.as_deref(), Some("a/"));
    let page = list(&s, "", Some("/"), Some("a/"), 1);
    assert_eq!(keys(&page), ["b"]);
    assert_eq!(page.next_marker.as_deref(), Some("b"));
    let page = list(&s, "", Some("/"), Some("b"), 1);
    assert_eq!(page.common_prefixes, ["c/"]);
    assert!(!page.is_truncated && page.next_marker.is_none());

    // start_after inside a group still shows the group.
    let page = list(&s, "", Some("/"), Some("a/b/c"), 10);
    assert_eq!(page.common_prefixes, ["a/", "c/"]);
    let page = list(&s, "a/b", None, Some("a/b/c"), 10);
    assert_eq!(keys(&page), ["a/b/d"]);
    // start_after before the prefix.
    assert_eq!(keys(&list(&s, "c/", None, Some("a"), 10)), ["c/d", "c/e"]);
    // max 0.
    let page = list(&s, "", None, None, 0);
    assert!(page.objects.is_empty() && !page.is_truncated && page.next_marker.is_none());
    // Exactly max entries is not truncated.
    assert!(!list(&s, "c/", None, None, 2).is_truncated);
    assert!(list(&s, "c/", None, None, 1).is_truncated);
    assert!(matches!(
        s.list_objects("nope", &ListQuery::default()),
        Err(StoreError::NoSuchBucket)
    ));
}

/// The S3 listing, computed naively over every key.
fn model(
    keys: &BTreeSet<String>,
    prefix: &str,
    delim: Option<&str>,
    after: Option<&str>,
) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    for k in keys {
        if !k.starts_with(prefix) || after.is_some_and(|a| k.as_str() <= a) {
            continue;
        }
        let rest = &k[prefix.len()..];
        let entry = match delim.and_then(|d| rest.find(d).map(|i| i + d.len())) {
            Some(end) => (k[..prefix.len() + end].to_owned(), true),
            None => (k.clone(), false),
        };
        if entry.1 && after == Some(entry.0.as_str()) {
            continue;
        }
        if out.last() != Some(&entry) {
            out.push(entry);
        }
    }
    out
}

fn page_entries(page: &ListPage) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = page
        .objects
        .iter()
        .map(|(k, _)| (k.clone(), false))
        .chain(page.common_prefixes.iter().map(|p| (p.clone(), true)))
        .collect();
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn listing_matches_model(
        keys in proptest::collection::btree_set("[ab/]{1,5}", 1..25),
        prefix in "[ab/]{0,2}",
        delim in proptest::option::of(prop_oneof![Just("/"), Just("b"), Just("/a")]),
        after in proptest::option::of("[ab/]{0,4}"),
        max in 1usize..6,
    ) {
        let (_d, s) = open();
        s.create_bucket(bucket("b")).unwrap();
        s.create_bucket(bucket("a")).unwrap();
        s.create_bucket(bucket("c")).unwrap();
        s.put_object("a", "a", empty_object()).unwrap();
        s.put_object("c", "", empty_object()).unwrap_err();
        s.put_object("c", "a", empty_object()).unwrap();
        for k in &keys {
            s.put_object("b", k, empty_object()).unwrap();
        }

        // One page from an arbitrary start.
        let want = model(&keys, &prefix, delim, after.as_deref());
        let page = list(&s, &prefix, delim, after.as_deref(), max);
        let n = want.len().min(max);
        prop_assert_eq!(page_entries(&page), want[..n].to_vec());
        prop_assert_eq!(page.is_truncated, want.len() > max);
        if page.is_truncated {
            prop_assert_eq!(page.next_marker.as_deref(), Some(want[n - 1].0.as_str()));
        }

        // Walking page by page yields every entry exactly once, in order.
        let want = model(&keys, &prefix, delim, None);
        let mut got = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = list(&s, &prefix, delim, marker.as_deref(), max);
            got.extend(page_entries(&page));
            if !page.is_truncated {
                break;
            }
            prop_assert!(page.next_marker.is_some());
            marker = page.next_marker;
        }
        prop_assert_eq!(got, want);
    }
}

#[test]
fn multipart_lifecycle() {
    let (_d, s) = open();
    s.create_bucket(bucket("b")).unwrap();
    assert!(matches!(
        s.create_upload("nope", "k", upload_record()),
        Err(StoreError::NoSuchBucket)
    ));
    let id = s.create_upload("b", "k", upload_record()).unwrap();
    assert_eq!(id.len(), 32);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    );
    let up = s.upload("b", "k", &id).unwrap();
    assert_eq!((up.upload_id.as_str(), up.key.as_str()), (id.as_str(), "k"));
    assert!(matches!(
        s.upload("b", "other", &id),
        Err(StoreError::NoSuchUpload)
    ));
    assert!(matches!(
        s.upload("b", "k", "not-an-id"),
        Err(StoreError::NoSuchUpload)
    ));

    let blobs: Vec<BlobId> = (1..=5u8).map(|i| blob(&s, &[i])).collect();
    for (i, b) in blobs.iter().enumerate() {
        s.put_part("b", "k", &id, part(i as u32 + 1, b)).unwrap();
    }
    // Replace part 2: the old blob is freed.
    let b2 = blob(&s, b"two");
    s.put_part("b", "k", &id, part(2, &b2)).unwrap();
    assert!(!s.blob_file_exists(&blobs[1]));
    let refused = blob(&s, b"x");
    assert!(matches!(
        s.put_part("b", "k", &"A".repeat(32), part(1, &refused)),
        Err(StoreError::NoSuchUpload)
    ));

    // List parts, two at a time.
    let (p, more) = s.list_parts("b", "k", &id, 0, 2).unwrap();
    assert_eq!(p.iter().map(|p| p.part_number).collect::<Vec<_>>(), [1, 2]);
    assert!(more);
    assert_eq!(p[1].blob, b2);
    let (p, more) = s.list_parts("b", "k", &id, 2, 2).unwrap();
    assert_eq!(p.iter().map(|p| p.part_number).collect::<Vec<_>>(), [3, 4]);
    assert!(more);
    let (p, more) = s.list_parts("b", "k", &id, 4, 2).unwrap();
    assert_eq!(p.iter().map(|p| p.part_number).collect::<Vec<_>>(), [5]);
    assert!(!more);
    let (p, more) = s.list_parts("b", "k", &id, 0, 5).unwrap();
    assert_eq!((p.len(), more), (5, false));

    // A stale blob (the replaced part 2) is refused, and nothing changes.
    let stale = object(&[(&blobs[0], Some(1)), (&blobs[1], Some(2))]);
    assert!(matches!(
        s.complete_upload("b", "k", &id, stale, &Condition::Always),
        Err(StoreError::InvalidPart)
    ));
    // A part number that does not match its blob is refused.
    assert!(matches!(
        s.complete_upload(
            "b",
            "k",
            &id,
            object(&[(&blobs[0], Some(3))]),
            &Condition::Always
        ),
        Err(StoreError::InvalidPart)
    ));
    assert_eq!(s.list_parts("b", "k", &id, 0, 100).unwrap().0.len(), 5);

    // A previous version of the object is replaced and freed.
    let old = blob(&s, b"old");
    s.put_object("b", "k", object(&[(&old, None)])).unwrap();

    // Complete with parts 1, 2 and 4.
    let done = object(&[(&blobs[0], Some(1)), (&b2, Some(2)), (&blobs[3], Some(4))]);
    s.complete_upload("b", "k", &id, done.clone(), &Condition::Always)
        .unwrap();
    assert_eq!(s.object("b", "k").unwrap(), done);
    assert!(!s.blob_file_exists(&old));
    assert!(!s.blob_file_exists(&blobs[2]) && !s.blob_file_exists(&blobs[4]));
    for b in [&blobs[0], &b2, &blobs[3]] {
        assert!(s.blob_file_exists(b));
    }
    assert!(matches!(
        s.upload("b", "k", &id),
        Err(StoreError::NoSuchUpload)
    ));
    assert!(matches!(
        s.complete_upload("b", "k", &id, done, &Condition::Always),
        Err(StoreError::NoSuchUpload)
    ));

    // Abort frees the part blobs.
    let id2 = s.create_upload("b", "k2", upload_record()).unwrap();
    let p1 = blob(&s, b"p1");
    s.put_part("b", "k2", &id2, part(1, &p1)).unwrap();
    s.abort_upload("b", "k2", &id2).unwrap();
    assert!(!s.blob_file_exists(&p1));
    assert!(matches!(
        s.abort_upload("b", "k2", &id2),
        Err(StoreError::NoSuchUpload)
    ));
    assert!(matches!(
        s.list_parts("b", "k2", &id2, 0, 10),
        Err(StoreError::NoSuchUpload)
    ));

    // Deleting the object leaves no blob behind but the refused one, never referenced
    // (the next open collects it).
    assert_eq!(s.delete_object("b", "k").unwrap(), Deleted::Removed);
    assert_eq!(s.blob_count(), 1);
    assert!(s.blob_file_exists(&refused));
    s.delete_bucket("b").unwrap();
}

fn list_up(
    s: &Store,
    prefix: &str,
    delim: Option<&str>,
    key_marker: Option<&str>,
    id_marker: Option<&str>,
    max: usize,
) -> UploadListPage {
    s.list_uploads(
        "b",
        &UploadListQuery {
            prefix: prefix.into(),
            delimiter: delim.map(Into::into),
            key_marker: key_marker.map(Into::into),
            upload_id_marker: id_marker.map(Into::into),
            max_uploads: max,
        },
    )
    .unwrap()
}

#[test]
fn list_uploads_prefix_delimiter_markers() {
    let (_d, s) = open();
    s.create_bucket(bucket("b")).unwrap();
    s.create_bucket(bucket("b2")).unwrap();
    s.create_upload("b2", "a", upload_record()).unwrap();
    let mut ids: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for k in ["a", "a", "a/x", "a/y", "b", "b/z", "c"] {
        let id = s.create_upload("b", k, upload_record()).unwrap();
        ids.entry(k).or_default().push(id);
    }
    for v in ids.values_mut() {
        v.sort();
    }
    let all = list_up(&s, "", None, None, None, 100);
    let got: Vec<(&str, &str)> = all
        .uploads
        .iter()
        .map(|u| (u.key.as_str(), u.upload_id.as_str()))
        .collect();
    let want: Vec<(&str, &str)> = ids
        .iter()
        .flat_map(|(k, v)| v.iter().map(move |id| (*k, id.as_str())))
        .collect();
    assert_eq!(got, want);

    let page = list_up(&s, "a", None, None, None, 100);
    assert_eq!(page.uploads.len(), 4);
    let page = list_up(&s, "", Some("/"), None, None, 100);
    assert_eq!(page.common_prefixes, ["a/", "b/"]);
    assert_eq!(
        page.uploads
            .iter()
            .map(|u| u.key.as_str())
            .collect::<Vec<_>>(),
        ["a", "a", "b", "c"]
    );

    // Markers: after the first upload of "a", then after all of "a".
    let page = list_up(&s, "", None, Some("a"), Some(&ids["a"][0]), 1);
    assert_eq!(page.uploads[0].upload_id, ids["a"][1]);
    assert!(page.is_truncated);
    assert_eq!(page.next_key_marker.as_deref(), Some("a"));
    assert_eq!(
        page.next_upload_id_marker.as_deref(),
        Some(ids["a"][1].as_str())
    );
    let page = list_up(&s, "", None, Some("a"), None, 1);
    assert_eq!(page.uploads[0].key, "a/x");

    // Walk with a delimiter one entry at a time.
    let mut seen = Vec::new();
    let (mut km, mut im): (Option<String>, Option<String>) = (None, None);
    loop {
        let page = list_up(&s, "", Some("/"), km.as_deref(), im.as_deref(), 1);
        seen.extend(page.uploads.iter().map(|u| u.key.clone()));
        seen.extend(page.common_prefixes.iter().cloned());
        if !page.is_truncated {
            break;
        }
        km = page.next_key_marker;
        im = page.next_upload_id_marker;
    }
    assert_eq!(seen, ["a", "a", "a/", "b", "b/", "c"]);
    assert!(list_up(&s, "", None, None, None, 0).uploads.is_empty());
}

#[test]
fn dropped_blob_leaves_nothing() {
    let (_d, s) = open();
    let mut b = s.new_blob().unwrap();
    b.write(b"partial").unwrap();
    assert!(!s.tmp_is_empty());
    drop(b);
    assert!(s.tmp_is_empty());
    assert_eq!(s.blob_count(), 0);
}

#[test]
fn reopen_collects_orphans_and_keeps_committed_data() {
    let dir = TempDir::new().unwrap();
    let (kept, orphan, part_blob, upload_id);
    {
        let s = Store::open(dir.path()).unwrap();
        s.create_bucket(bucket("b")).unwrap();
        kept = blob(&s, b"kept");
        s.put_object("b", "k", object(&[(&kept, None)])).unwrap();
        upload_id = s.create_upload("b", "m", upload_record()).unwrap();
        part_blob = blob(&s, b"part");
        s.put_part("b", "m", &upload_id, part(1, &part_blob))
            .unwrap();
        s.put_user(UserRecord {
            name: "u".into(),
            access_key: "AK".into(),
            sealed_secret: vec![9],
            created_ms: 5,
            policy: None,
        })
        .unwrap();
        // Finished but never committed; and a temp file from an interrupted write.
        orphan = blob(&s, b"orphan");
        std::fs::write(dir.path().join("tmp").join("stray"), b"x").unwrap();
        let mut unfinished = s.new_blob().unwrap();
        unfinished.write(b"half").unwrap();
        std::mem::forget(unfinished);
        assert!(s.blob_file_exists(&orphan));
    }
    let s = Store::open(dir.path()).unwrap();
    assert!(s.tmp_is_empty());
    assert!(!s.blob_file_exists(&orphan));
    assert_eq!(read_blob(&s, &kept), b"kept");
    assert_eq!(read_blob(&s, &part_blob), b"part");
    assert_eq!(s.object("b", "k").unwrap(), object(&[(&kept, None)]));
    assert_eq!(
        s.list_parts("b", "m", &upload_id, 0, 10).unwrap().0.len(),
        1
    );
    assert_eq!(s.bucket("b").unwrap(), bucket("b"));
    assert!(s.user_by_access_key("AK").unwrap().is_some());
    assert_eq!(s.blob_count(), 2);
    assert_eq!(s.data_dir(), dir.path());
}

#[test]
fn readers_do_not_block_on_writers() {
    let (_d, s) = open();
    s.create_bucket(bucket("b")).unwrap();
    let writer = s.clone();
    let handle = std::thread::spawn(move || {
        for i in 0..50 {
            writer
                .put_object("b", &format!("k{i:03}"), empty_object())
                .unwrap();
        }
    });
    for _ in 0..50 {
        let page = list(&s, "", None, None, 1000);
        let n = page.objects.len();
        // Each listing is a consistent snapshot: a prefix of the writer's sequence.
        for (i, (k, _)) in page.objects.iter().enumerate() {
            assert_eq!(k, &format!("k{i:03}"));
        }
        assert!(n <= 50);
    }
    handle.join().unwrap();
    assert_eq!(list(&s, "", None, None, 1000).objects.len(), 50);
}

#[test]
fn users() {
    let (_d, s) = open();
    let user = |name: &str, ak: &str| UserRecord {
        name: name.into(),
        access_key: ak.into(),
        sealed_secret: vec![1, 2, 3],
        created_ms: 7,
        policy: None,
    };
    s.put_user(user("bob", "AKBOB")).unwrap();
    s.put_user(user("ann", "AKANN")).unwrap();
    assert!(matches!(
        s.put_user(user("bob", "AKOTHER")),
        Err(StoreError::UserExists)
    ));
    assert!(matches!(
        s.put_user(user("carl", "AKBOB")),
        Err(StoreError::UserExists)
    ));
    assert_eq!(
        s.user_by_access_key("AKBOB").unwrap(),
        Some(user("bob", "AKBOB"))
    );
    assert_eq!(s.user_by_access_key("AKNONE").unwrap(), None);
    let names: Vec<_> = s
        .list_users()
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["ann", "bob"]);
    assert!(!format!("{:?}", user("bob", "AKBOB")).contains("sealed_secret"));
    assert!(s.delete_user("bob").unwrap());
    assert!(!s.delete_user("bob").unwrap());
    assert_eq!(s.user_by_access_key("AKBOB").unwrap(), None);
    // The access key is free again.
    s.put_user(user("carl", "AKBOB")).unwrap();
}

/// Child half of `acknowledged_writes_survive_kill_9`: writes objects forever, printing each
/// acknowledged key. Does nothing unless the parent set the environment variable.
#[test]
fn kill9_child() {
    let Some(dir) = std::env::var_os("COFFER_STORE_KILL9_DIR") else {
        return;
    };
    let s = Store::open(std::path::Path::new(&dir)).unwrap();
    s.create_bucket(bucket("b")).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0.. {
        let key = format!("k{i:06}");
        let id = blob(&s, key.as_bytes());
        s.put_object("b", &key, object(&[(&id, None)])).unwrap();
        writeln!(out, "ACK {key}").unwrap();
        out.flush().unwrap();
        // Leave a finished-but-unreferenced blob and a temp file around to be collected.
        let _orphan = blob(&s, b"orphan");
        let mut pending = s.new_blob().unwrap();
        pending.write(b"pending").unwrap();
        std::mem::forget(pending);
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    use std::io::BufRead;
    let dir = TempDir::new().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tests::kill9_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("COFFER_STORE_KILL9_DIR", dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(key) = line.strip_prefix("ACK ") {
            acked.push(key.to_owned());
            if acked.len() == 30 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(acked.len(), 30);

    let s = Store::open(dir.path()).unwrap();
    for key in &acked {
        let record = s.object("b", key).unwrap();
        assert_eq!(read_blob(&s, &record.extents[0].blob), key.as_bytes());
    }
    let all = list(&s, "", None, None, 10_000);
    assert!(all.objects.len() >= acked.len());
    // Only blobs of committed objects are left.
    assert_eq!(s.blob_count(), all.objects.len());
    assert!(s.tmp_is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn upload_listing_pages_match_model(
        keys in proptest::collection::btree_set("[ab/]{1,4}", 1..12),
        prefix in "[ab/]{0,1}",
        delim in proptest::option::of(prop_oneof![Just("/"), Just("b")]),
        max in 1usize..4,
    ) {
        let (_d, s) = open();
        s.create_bucket(bucket("b")).unwrap();
        let mut want = Vec::new();
        for (k, _) in model(&keys, &prefix, delim, None) {
            want.push(k);
        }
        let mut uploads_per_key = BTreeMap::new();
        for k in &keys {
            // Two uploads per key.
            for _ in 0..2 {
                s.create_upload("b", k, upload_record()).unwrap();
            }
            uploads_per_key.insert(k.clone(), 2usize);
        }
        let mut got: Vec<String> = Vec::new();
        let (mut km, mut im): (Option<String>, Option<String>) = (None, None);
        loop {
            let page = list_up(&s, &prefix, delim, km.as_deref(), im.as_deref(), max);
            let mut entries: Vec<String> = page.uploads.iter().map(|u| u.key.clone())
                .chain(page.common_prefixes.iter().cloned()).collect();
            entries.sort();
            got.extend(entries);
            if !page.is_truncated {
                break;
            }
            km = page.next_key_marker;
            im = page.next_upload_id_marker;
        }
        // Every key appears once per upload, every common prefix once.
        let mut expected = Vec::new();
        for k in want {
            let n = if keys.contains(&k) && !delim.is_some_and(|d| k[prefix.len()..].contains(d)) {
                uploads_per_key[&k]
            } else {
                1
            };
            expected.extend(std::iter::repeat_n(k, n));
        }
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn replace_envelope_is_compare_and_swap() {
    let (_dir, store) = open();
    store.create_bucket(bucket("b")).expect("bucket");
    let id = blob(&store, b"x");
    store
        .put_object("b", "k", object(&[(&id, None)]))
        .expect("put");
    assert!(
        !store
            .replace_envelope("b", "k", &VersionRef::Latest, &[9, 9], vec![4])
            .expect("cas")
    );
    assert!(
        store
            .replace_envelope("b", "k", &VersionRef::Latest, &[1, 2, 3], vec![4])
            .expect("cas")
    );
    let record = store.object("b", "k").expect("object");
    assert_eq!(record.envelope, Some(vec![4]));
    assert_eq!(record.extents[0].blob, id, "the body is untouched");
    assert!(
        !store
            .replace_envelope("b", "missing", &VersionRef::Latest, &[4], vec![5])
            .expect("cas")
    );
}

#[cfg(unix)]
#[test]
fn every_directory_is_0700_and_every_file_0600() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = TempDir::new().unwrap();
    let data_dir = dir.path().join("data");
    // An existing data dir and database that are open to others (an older release) narrow.
    std::fs::create_dir(&data_dir).unwrap();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = Store::open(&data_dir).unwrap();
    store.create_bucket(bucket("b")).unwrap();
    let id = blob(&store, b"body");
    store.put_object("b", "k", object(&[(&id, None)])).unwrap();
    let unfinished = store.new_blob().unwrap();
    let mut seen = 0;
    let mut stack = vec![data_dir.clone()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::metadata(&path).unwrap();
        if meta.is_dir() {
            assert_eq!(mode(&path), 0o700, "{}", path.display());
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            seen += 1;
        }
    }
    assert_eq!(seen, 3, "meta.redb, the blob and the temp blob");
    drop(unfinished);
    drop(store);
    std::fs::set_permissions(
        data_dir.join("meta.redb"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let _store = Store::open(&data_dir).unwrap();
    assert_eq!(mode(&data_dir.join("meta.redb")), 0o600);
}
