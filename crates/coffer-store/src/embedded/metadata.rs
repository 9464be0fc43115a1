//! [`MetadataStore`] over the redb [`Store`].

use std::time::SystemTime;

use super::blocking;
use crate::Lease;
use crate::meta::{MetadataStore, StoreFuture};
use crate::rules::epoch_ms;
use crate::{
    BlobId, BucketRecord, Condition, Deleted, Deleter, FoundVersion, ListPage, ListQuery,
    ObjectRecord, PartRecord, PendingBlob, Store, StoreError, StoredBody, UploadListPage,
    UploadListQuery, UploadRecord, UserRecord, Version, VersionChange, VersionListPage,
    VersionListQuery, VersionRef, Versioning, Written,
};

/// The embedded metadata store: redb in `<data_dir>/meta.redb`.
#[derive(Clone)]
pub struct EmbeddedMetadata {
    store: Store,
}

impl EmbeddedMetadata {
    /// Metadata over an open store; pair it with a [`super::FileBlobStore`] over the same one.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The synchronous store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'static, T> {
        let store = self.store.clone();
        Box::pin(blocking(move || f(&store)))
    }
}

impl MetadataStore for EmbeddedMetadata {
    fn create_bucket(&self, bucket: BucketRecord) -> StoreFuture<'_, ()> {
        self.run(move |s| s.create_bucket(bucket))
    }

    fn get_bucket(&self, name: &str) -> StoreFuture<'_, BucketRecord> {
        let name = name.to_owned();
        self.run(move |s| s.bucket(&name))
    }

    fn list_buckets(&self) -> StoreFuture<'_, Vec<BucketRecord>> {
        self.run(|s| s.list_buckets())
    }

    fn delete_bucket(&self, name: &str) -> StoreFuture<'_, ()> {
        let name = name.to_owned();
        self.run(move |s| s.delete_bucket(&name))
    }

    fn get_bucket_config(&self, bucket: &str, name: &str) -> StoreFuture<'_, Option<String>> {
        let (bucket, name) = (bucket.to_owned(), name.to_owned());
        self.run(move |s| Ok(s.bucket(&bucket)?.config.remove(&name)))
    }

    fn set_bucket_config(
        &self,
        bucket: &str,
        name: &str,
        value: Option<String>,
    ) -> StoreFuture<'_, ()> {
        let (bucket, name) = (bucket.to_owned(), name.to_owned());
        self.run(move |s| s.set_bucket_config(&bucket, &name, value))
    }

    fn get_object(&self, bucket: &str, key: &str) -> StoreFuture<'_, ObjectRecord> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.run(move |s| s.object(&bucket, &key))
    }

    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        record: ObjectRecord,
        condition: Condition,
    ) -> StoreFuture<'_, Written> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.run(move |s| s.put_object_if(&bucket, &key, record, &condition))
    }

    fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        condition: Condition,
        by: Deleter<'_>,
    ) -> StoreFuture<'_, Deleted> {
        let (bucket, key, owner) = (bucket.to_owned(), key.to_owned(), by.owner.to_owned());
        let now_ms = by.now_ms;
        self.run(move |s| {
            let by = Deleter {
                owner: &owner,
                now_ms,
            };
            s.delete_object_if(&bucket, &key, &condition, by)
        })
    }

    fn list_objects(&self, bucket: &str, query: &ListQuery) -> StoreFuture<'_, ListPage> {
        let (bucket, query) = (bucket.to_owned(), query.clone());
        self.run(move |s| s.list_objects(&bucket, &query))
    }

    fn replace_envelope(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef,
        expected: Vec<u8>,
        new: Vec<u8>,
    ) -> StoreFuture<'_, bool> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.run(move |s| s.replace_envelope(&bucket, &key, &which, &expected, new))
    }

    fn replace_body(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef,
        expected: StoredBody,
        new: StoredBody,
    ) -> StoreFuture<'_, bool> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.run(move |s| s.replace_body(&bucket, &key, &which, &expected, new))
    }

    fn set_bucket_versioning(&self, bucket: &str, versioning: Versioning) -> StoreFuture<'_, ()> {
        let bucket = bucket.to_owned();
        self.run(move |s| s.set_bucket_versioning(&bucket, versioning))
    }

    fn get_version(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef,
    ) -> StoreFuture<'_, FoundVersion> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.run(move |s| s.version(&bucket, &key, &which))
    }

    fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef,
        bypass_governance: bool,
        now_ms: i64,
    ) -> StoreFuture<'_, Option<Version>> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.run(move |s| s.delete_version(&bucket, &key, &which, bypass_governance, now_ms))
    }

    fn update_version(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef,
        change: VersionChange,
    ) -> StoreFuture<'_, ObjectRecord> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.run(move |s| s.update_version(&bucket, &key, &which, change))
    }

    fn list_versions(
        &self,
        bucket: &str,
        query: &VersionListQuery,
    ) -> StoreFuture<'_, VersionListPage> {
        let (bucket, query) = (bucket.to_owned(), query.clone());
        self.run(move |s| s.list_versions(&bucket, &query))
    }

    fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        upload: UploadRecord,
    ) -> StoreFuture<'_, String> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.run(move |s| s.create_upload(&bucket, &key, upload))
    }

    fn get_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StoreFuture<'_, UploadRecord> {
        let (bucket, key, id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        self.run(move |s| s.upload(&bucket, &key, &id))
    }

    fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: PartRecord,
    ) -> StoreFuture<'_, ()> {
        let (bucket, key, id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        self.run(move |s| s.put_part(&bucket, &key, &id, part))
    }

    fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number_marker: u32,
        max_parts: usize,
    ) -> StoreFuture<'_, (Vec<PartRecord>, bool)> {
        let (bucket, key, id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        self.run(move |s| s.list_parts(&bucket, &key, &id, part_number_marker, max_parts))
    }

    fn list_uploads(
        &self,
        bucket: &str,
        query: &UploadListQuery,
    ) -> StoreFuture<'_, UploadListPage> {
        let (bucket, query) = (bucket.to_owned(), query.clone());
        self.run(move |s| s.list_uploads(&bucket, &query))
    }

    fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        record: ObjectRecord,
        condition: Condition,
    ) -> StoreFuture<'_, Written> {
        let (bucket, key, id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        self.run(move |s| s.complete_upload(&bucket, &key, &id, record, &condition))
    }

    fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> StoreFuture<'_, ()> {
        let (bucket, key, id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        self.run(move |s| s.abort_upload(&bucket, &key, &id))
    }

    fn add_user(&self, user: UserRecord) -> StoreFuture<'_, ()> {
        self.run(move |s| s.put_user(user))
    }

    fn user_by_access_key(&self, access_key: &str) -> StoreFuture<'_, Option<UserRecord>> {
        let access_key = access_key.to_owned();
        self.run(move |s| s.user_by_access_key(&access_key))
    }

    fn list_users(&self) -> StoreFuture<'_, Vec<UserRecord>> {
        self.run(|s| s.list_users())
    }

    fn remove_user(&self, name: &str) -> StoreFuture<'_, bool> {
        let name = name.to_owned();
        self.run(move |s| s.delete_user(&name))
    }

    fn user_by_name(&self, name: &str) -> StoreFuture<'_, Option<UserRecord>> {
        let name = name.to_owned();
        self.run(move |s| s.user_by_name(&name))
    }

    fn set_user_policy(&self, name: &str, policy: Option<String>) -> StoreFuture<'_, bool> {
        let name = name.to_owned();
        self.run(move |s| s.set_user_policy(&name, policy))
    }

    fn add_pending_blob(&self, blob: &BlobId, since: SystemTime) -> StoreFuture<'_, ()> {
        let blob = blob.clone();
        self.run(move |s| s.add_pending_blob(&blob, epoch_ms(since)))
    }

    fn remove_pending_blob(&self, blob: &BlobId) -> StoreFuture<'_, bool> {
        let blob = blob.clone();
        self.run(move |s| s.remove_pending_blob(&blob))
    }

    fn try_lease(&self, name: &str) -> StoreFuture<'_, Option<Box<dyn Lease>>> {
        let lease = self.store.leases().try_lease(name);
        Box::pin(async move { Ok(lease) })
    }

    fn list_pending_blobs(&self, before: SystemTime) -> StoreFuture<'_, Vec<PendingBlob>> {
        self.run(move |s| s.pending_blobs_older_than(epoch_ms(before)))
    }

    fn is_blob_referenced(&self, blob: &BlobId) -> StoreFuture<'_, bool> {
        let blob = blob.clone();
        self.run(move |s| s.is_blob_referenced(&blob))
    }

    fn import_key_versions(
        &self,
        bucket: &str,
        key: &str,
        versions: Vec<Version>,
    ) -> StoreFuture<'_, ()> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.run(move |s| s.import_key_versions(&bucket, &key, versions))
    }
}
