//! The metadata store: the contract every metadata backend implements (embedded redb today,
//! PostgreSQL next), and which the API calls through `Arc<dyn MetadataStore>`.
//!
//! # The contract
//! - **Durability.** Every method that changes something returns `Ok` only after the change is
//!   durable (a `kill -9` or power loss right after the return loses nothing). A method that
//!   returns `Err` changed nothing.
//! - **Atomicity.** Each method is one transaction: its checks and its writes see one state and
//!   either all apply or none does. Two calls never interleave inside each other.
//! - **Errors.** One [`StoreError`]; domain errors (`NoSuchBucket`, `NoSuchKey`,
//!   `PreconditionFailed`, …) are named below per method; any method may also fail with `Io`,
//!   `Database` or `Corrupt`. No HTTP status or S3 code is ever decided here.
//! - **Order.** Listings are in byte order of the UTF-8 key (PostgreSQL: `COLLATE "C"`), with
//!   the S3 semantics described in the crate docs.
//! - **Blobs.** Records reference blobs by [`BlobId`]; each blob is referenced by at most one
//!   record (an object or a part) at a time (`BlobInUse` otherwise). A commit that stops
//!   referencing a blob (overwrite, delete, abort, a part replaced or left out of a completion)
//!   hands it to the backend pair for deletion after the commit: the embedded pair deletes the
//!   file right after the commit and collects leftovers at the next open; a distributed
//!   backend writes a pending row for it in the same transaction, for the sweeper.
//!
//! # Commit order (one write of an object or a part)
//! 1. `let writer = blobs.create().await?;` — the blob id is known now: `writer.id()`.
//! 2. `meta.add_pending_blob(writer.id(), now).await?;` — before any byte is stored, so that
//!    a crash from here on leaves a row naming the garbage. (The embedded pair may skip this
//!    step: its open deletes every unreferenced blob.)
//! 3. `writer.write(bytes)…`, then `writer.finish().await?` — the blob is durable.
//! 4. `meta.put_object(…)` / `put_part(…)` — one transaction writes the record, takes the
//!    blob reference and deletes the pending row. From here on the write is acknowledged.
//! 5. If step 3 or 4 fails: `blobs.delete(id)`, then `meta.remove_pending_blob(id)`.
//!
//! A sweeper (one process at a time) runs `list_pending_blobs(now - T)` and, for each row,
//! `blobs.delete(id)` then `remove_pending_blob(id)`. T must exceed the longest time a writer
//! may take between steps 2 and 4 (the embedded backend has no sweeper: its open does it).
//!
//! # Versioning (later)
//! Records are addressed by (bucket, key). Versioning will add version-addressed methods
//! (read, delete, list versions) and a version id in [`ObjectRecord`] (a serde default, so
//! stored records stay readable); the methods here keep their meaning: they act on the
//! current version.

use std::time::SystemTime;

use futures_util::future::BoxFuture;

use crate::{
    BlobId, BucketRecord, Condition, Deleted, ListPage, ListQuery, ObjectRecord, PartRecord,
    PendingBlob, StoreError, UploadListPage, UploadListQuery, UploadRecord, UserRecord, Written,
};

/// Shorthand for the futures the store traits return.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// Buckets, object records, multipart state, users and pending blobs. See the module docs for
/// the promises every method keeps.
pub trait MetadataStore: Send + Sync {
    // ---- Buckets ----

    /// Creates a bucket. `BucketExists { owner }` if the name is taken (whoever owns it);
    /// `InvalidArgument` for an empty name or one containing NUL.
    fn create_bucket(&self, bucket: BucketRecord) -> StoreFuture<'_, ()>;

    /// `NoSuchBucket` if absent.
    fn get_bucket(&self, name: &str) -> StoreFuture<'_, BucketRecord>;

    /// Every bucket, sorted by name.
    fn list_buckets(&self) -> StoreFuture<'_, Vec<BucketRecord>>;

    /// Deletes a bucket that holds no object and no in-progress upload (`BucketNotEmpty`
    /// otherwise; the check and the delete are one transaction). `NoSuchBucket` if absent.
    fn delete_bucket(&self, name: &str) -> StoreFuture<'_, ()>;

    /// One configuration document of a bucket (`encryption`, `policy`, …); `None` if unset.
    /// `NoSuchBucket` if absent.
    fn get_bucket_config(&self, bucket: &str, name: &str) -> StoreFuture<'_, Option<String>>;

    /// Sets (`Some`) or removes (`None`) one configuration document, leaving the others (and
    /// concurrent changes to them) alone. `NoSuchBucket` if absent.
    fn set_bucket_config(
        &self,
        bucket: &str,
        name: &str,
        value: Option<String>,
    ) -> StoreFuture<'_, ()>;

    // ---- Objects ----

    /// The current record under `key`. `NoSuchKey` if absent, `NoSuchBucket` if the bucket is.
    fn get_object(&self, bucket: &str, key: &str) -> StoreFuture<'_, ObjectRecord>;

    /// Writes the record under `key` if `condition` holds (checked in the same transaction),
    /// replacing any previous one, whose blobs are released. The record's blobs must be
    /// finished and referenced by nothing else; their pending rows are deleted by the same
    /// transaction.
    ///
    /// Errors: `NoSuchBucket`; `InvalidArgument` (key empty or over [`crate::MAX_KEY_LEN`]
    /// bytes); `PreconditionFailed` (`IfAbsent` and a record exists, `IfEtag` and its ETag
    /// differs); `NoSuchKey` (`IfEtag` and no record); `BlobInUse` (a blob is referenced
    /// already, or twice by this record); `NoSuchBlob` (a blob the backend can tell does not
    /// exist — the embedded one checks, others may not).
    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        record: ObjectRecord,
        condition: Condition,
    ) -> StoreFuture<'_, Written>;

    /// Deletes the record under `key` if `condition` holds, releasing its blobs; returns
    /// whether a record was deleted (an absent key is not an error under `Always` or
    /// `IfAbsent`). Errors: `NoSuchBucket`; `PreconditionFailed` and `NoSuchKey` as for
    /// [`MetadataStore::put_object`].
    fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        condition: Condition,
    ) -> StoreFuture<'_, Deleted>;

    /// One page of an S3 listing (prefix, delimiter roll-up, exclusive `start_after`,
    /// `max_keys`; see the crate docs). `NoSuchBucket` if absent.
    fn list_objects(&self, bucket: &str, query: &ListQuery) -> StoreFuture<'_, ListPage>;

    /// Compare-and-swap of an object's envelope (rewrap): replaces it with `new` only if the
    /// record under `key` still has the envelope `expected`; nothing else in the record
    /// changes. Returns whether it was replaced: `false` if the record is gone or was
    /// overwritten meanwhile (the concurrent writer wins), never an error for that.
    fn replace_envelope(
        &self,
        bucket: &str,
        key: &str,
        expected: Vec<u8>,
        new: Vec<u8>,
    ) -> StoreFuture<'_, bool>;

    // ---- Multipart ----

    /// Starts an upload of `key` and returns its new id (32 upper-case hex characters); the
    /// record's `upload_id` and `key` are filled in. `NoSuchBucket`; `InvalidArgument` for a
    /// key the store cannot hold.
    fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        upload: UploadRecord,
    ) -> StoreFuture<'_, String>;

    /// `NoSuchUpload` unless an upload with this id is in progress for exactly this key.
    fn get_upload(&self, bucket: &str, key: &str, upload_id: &str)
    -> StoreFuture<'_, UploadRecord>;

    /// Adds or replaces part `part.part_number`; a replaced part's blob is released. The
    /// part's blob must be finished and unreferenced; its pending row is deleted by the same
    /// transaction. `NoSuchUpload`, `BlobInUse`, `NoSuchBlob` (as for `put_object`).
    fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: PartRecord,
    ) -> StoreFuture<'_, ()>;

    /// Parts numbered above `part_number_marker`, ascending, at most `max_parts`, and whether
    /// more follow. `NoSuchUpload`.
    fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number_marker: u32,
        max_parts: usize,
    ) -> StoreFuture<'_, (Vec<PartRecord>, bool)>;

    /// One page of in-progress uploads in (key, upload id) order, with prefix, delimiter and
    /// key/upload-id markers. `NoSuchBucket`.
    fn list_uploads(
        &self,
        bucket: &str,
        query: &UploadListQuery,
    ) -> StoreFuture<'_, UploadListPage>;

    /// Completes the upload as the object `record`, in one transaction: the record is
    /// written (replacing any previous object, whose blobs are released), the upload and its
    /// parts are removed, and parts left out are released. After an error nothing changed:
    /// the upload and its parts are still there and the previous object is untouched.
    /// Every extent must be the blob of a current part of this upload, at most once, with a
    /// matching part number if it names one (`InvalidPart`). `NoSuchUpload`. `condition` is
    /// checked against the current object as for [`MetadataStore::put_object`].
    fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        record: ObjectRecord,
        condition: Condition,
    ) -> StoreFuture<'_, Written>;

    /// Removes the upload and its parts, releasing their blobs. `NoSuchUpload`.
    fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> StoreFuture<'_, ()>;

    // ---- Users ----

    /// Adds a user; `UserExists` if the name or the access key is taken.
    fn add_user(&self, user: UserRecord) -> StoreFuture<'_, ()>;

    /// The user holding `access_key`, if any.
    fn user_by_access_key(&self, access_key: &str) -> StoreFuture<'_, Option<UserRecord>>;

    /// Every user, sorted by name.
    fn list_users(&self) -> StoreFuture<'_, Vec<UserRecord>>;

    /// Removes a user and its access key; returns whether there was one.
    fn remove_user(&self, name: &str) -> StoreFuture<'_, bool>;

    // ---- Pending blobs ----

    /// Records `blob` as pending since `since` (step 2 of the commit order). Replaces an
    /// existing row for the same blob. `BlobInUse` if a record references it already;
    /// `InvalidArgument` if `blob` is not a blob id.
    fn add_pending_blob(&self, blob: &BlobId, since: SystemTime) -> StoreFuture<'_, ()>;

    /// Deletes the pending row of `blob`; returns whether there was one.
    fn remove_pending_blob(&self, blob: &BlobId) -> StoreFuture<'_, bool>;

    /// Pending rows written strictly before `before`, in blob id order: the sweeper's work.
    fn list_pending_blobs(&self, before: SystemTime) -> StoreFuture<'_, Vec<PendingBlob>>;

    /// Whether a committed record (object or part) references `blob`: what a collector
    /// checks before deleting a blob found by [`crate::BlobStore::list_older_than`].
    fn is_blob_referenced(&self, blob: &BlobId) -> StoreFuture<'_, bool>;
}
