//! Shared by the checks: unique names, finished blobs, whole reads, and records with
//! plausible field values.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::rules::random_hex;
use crate::{
    BlobId, BlobStore, BucketRecord, Extent, MetadataStore, ObjectRecord, PartRecord, UploadRecord,
    UserRecord,
};

pub(super) fn suffix() -> String {
    random_hex().unwrap()[..10].to_owned()
}

pub(super) async fn new_bucket(meta: &dyn MetadataStore, label: &str) -> String {
    let name = format!("ct-{label}-{}", suffix());
    meta.create_bucket(bucket_record(&name, "alice"))
        .await
        .unwrap();
    name
}

pub(super) async fn finished_blob(blobs: &dyn BlobStore, pieces: &[&[u8]]) -> BlobId {
    let mut writer = blobs.create().await.unwrap();
    for piece in pieces {
        writer.write(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    writer.finish().await.unwrap()
}

pub(super) async fn read_all(blobs: &dyn BlobStore, id: &BlobId, range: Range<u64>) -> Vec<u8> {
    let mut stream = blobs.read(id, range).await.unwrap();
    let mut out = Vec::new();
    while let Some(piece) = stream.next().await {
        out.extend_from_slice(&piece.unwrap());
    }
    out
}

pub(super) async fn listed_older_than(blobs: &dyn BlobStore, before: SystemTime) -> Vec<BlobId> {
    blobs
        .list_older_than(before)
        .map(|id| id.unwrap())
        .collect()
        .await
}

pub(super) fn bucket_record(name: &str, owner: &str) -> BucketRecord {
    BucketRecord {
        name: name.into(),
        owner: owner.into(),
        region: "us-east-1".into(),
        created_ms: 1,
        config: BTreeMap::new(),
        ..Default::default()
    }
}

pub(super) fn object_record(etag: &str, blobs: &[(&BlobId, Option<u32>)]) -> ObjectRecord {
    ObjectRecord {
        size: blobs.len() as u64,
        etag: etag.into(),
        last_modified_ms: 2,
        owner: "alice".into(),
        headers: vec![("content-type".into(), "text/plain".into())],
        checksum: Some(("crc32".into(), "AAAAAA==".into())),
        extents: blobs
            .iter()
            .map(|(blob, part_number)| Extent {
                blob: (*blob).clone(),
                size: 1,
                part_number: *part_number,
                etag: None,
                ..Default::default()
            })
            .collect(),
        envelope: Some(vec![1, 2, 3]),
        crc64: Some(42),
        // Opaque to the store: every write and read must keep it as given.
        acl: Some(r#"{"grants":[]}"#.into()),
        ..Default::default()
    }
}

pub(super) fn upload_record() -> UploadRecord {
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

pub(super) fn part_record(n: u32, blob: &BlobId) -> PartRecord {
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

pub(super) fn user_record(name: &str) -> UserRecord {
    UserRecord {
        name: name.into(),
        access_key: format!("AK-{name}"),
        sealed_secret: vec![9; 16],
        created_ms: 5,
        policy: None,
    }
}

/// The deleter of the suite's deletes (the owner and time of any delete marker they write).
pub(crate) const BY: crate::Deleter<'static> = crate::Deleter {
    owner: "contract",
    now_ms: 1_700_000_000_000,
};
