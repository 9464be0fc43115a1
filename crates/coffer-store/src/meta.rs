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
//!   `Database` or `Corrupt`, and a store behind a network with `Unavailable` when it cannot
//!   be reached (connection refused or lost, pool exhausted, the server shutting down). No
//!   HTTP status or S3 code is ever decided here.
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
//!    a crash from here on leaves a row naming the garbage. Only when
//!    [`MetadataStore::needs_pending_rows`] says so: the embedded pair skips this step (its
//!    open deletes every unreferenced blob, so a row would cost a redb commit per write for
//!    nothing).
//! 3. `writer.write(bytes)…`, then `writer.finish().await?` — the blob is durable (an
//!    embedded blob of at most 64 KiB: with step 4, whose transaction writes it).
//! 4. `meta.put_object(…)` / `put_part(…)` / `replace_body(…)` — one transaction writes the
//!    record, takes the blob reference and deletes the pending row. From here on the write is
//!    acknowledged.
//! 5. If step 3 or 4 fails: `blobs.delete(id)`, then `meta.remove_pending_blob(id)` (the row
//!    stays if the delete failed: the sweeper retries it). One exception: a commit that
//!    failed with [`StoreError::Unavailable`] may have committed all the same (the connection
//!    dropped during `COMMIT`), so the caller leaves both the blob and its row alone: if the
//!    commit happened the row is gone and the blob referenced; if not, the sweeper deletes it.
//!
//! The API follows this order on every path that writes a blob (PutObject, UploadPart,
//! CopyObject, UploadPartCopy, the sealing of plaintext versions): `coffer-api`'s
//! `object_io` writes the row when the blob writer is created and discards on failure.
//!
//! # The sweeper
//! A sweeper (`coffer-api`'s `sweeper`, one process at a time under the lease `"sweeper"`)
//! runs `list_pending_blobs(now - T)` and, for each row whose blob no record references,
//! `blobs.delete(id)` then `remove_pending_blob(id)`. T (the grace period, an hour unless
//! configured) must exceed the longest time a writer may take between steps 2 and 4; it also
//! covers a GET still reading a body that a commit released, since released blobs get their
//! row at release time. The embedded backend needs no sweeper (its open does the work), but
//! running one there is harmless.
//!
//! # Leases
//! [`MetadataStore::try_lease`] gives at most one holder at a time of a named piece of
//! background work among every process sharing the store, so that of many gateways over one
//! database only one runs each lifecycle or sweeper pass. The embedded store grants leases
//! within its process (one process per data directory); PostgreSQL holds a session-level
//! advisory lock on a dedicated connection, which the database releases if the holder dies.
//!
//! # Versions
//! A key has versions, newest first: objects and delete markers. The methods without a
//! version argument act on the current object (the newest version when it is an object): a
//! key whose newest version is a delete marker reads as absent. Each bucket's [`Versioning`]
//! decides, in the write's own transaction, whether a write adds a version with a new id
//! (Enabled) or replaces the null version (Unversioned, Suspended). A version's blobs are
//! released only when that version is removed.

use std::time::SystemTime;

use futures_util::future::BoxFuture;

use crate::{
    BlobId, BucketRecord, Condition, Deleted, Deleter, FoundVersion, Lease, ListPage, ListQuery,
    ObjectRecord, PartRecord, PendingBlob, StoreError, StoredBody, UploadListPage, UploadListQuery,
    UploadRecord, UserRecord, Version, VersionChange, VersionListPage, VersionListQuery,
    VersionRef, Versioning, Written,
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

    /// Deletes a bucket that holds no object version, no delete marker and no in-progress
    /// upload (`BucketNotEmpty` otherwise; the check and the delete are one transaction).
    /// `NoSuchBucket` if absent.
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
    /// differs, `IfNotModifiedAfter` and it is newer); `NoSuchKey` (`IfEtag` and no record); `BlobInUse` (a blob is referenced
    /// already, or twice by this record); `NoSuchBlob` (a blob the backend can tell does not
    /// exist — the embedded one checks, others may not).
    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        record: ObjectRecord,
        condition: Condition,
    ) -> StoreFuture<'_, Written>;

    /// Deletes `key` if `condition` holds (against the current object, as for
    /// [`MetadataStore::put_object`]). In an unversioned bucket the current object is removed
    /// and its blobs released (`Removed`; `Absent` if there was none — not an error under
    /// `Always` or `IfAbsent`); in a versioned or suspended bucket a delete marker by
    /// `by.owner` at `by.now_ms` becomes the newest version (`Marker`), the previous current
    /// object staying as a noncurrent version (suspended: the null version is replaced).
    /// Errors: `NoSuchBucket`; `PreconditionFailed`, `NoSuchKey` as for `put_object`;
    /// `ObjectLocked` if a replaced null version is locked.
    fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        condition: Condition,
        by: Deleter<'_>,
    ) -> StoreFuture<'_, Deleted>;

    /// One page of an S3 listing (prefix, delimiter roll-up, exclusive `start_after`,
    /// `max_keys`; see the crate docs). `NoSuchBucket` if absent.
    fn list_objects(&self, bucket: &str, query: &ListQuery) -> StoreFuture<'_, ListPage>;

    /// Compare-and-swap of one object version's envelope (rewrap): replaces it with `new`
    /// only if that version still has the envelope `expected`; nothing else changes. Returns
    /// whether it was replaced: `false` if the version is gone or changed meanwhile (the
    /// concurrent writer wins), never an error for that.
    fn replace_envelope(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef,
        expected: Vec<u8>,
        new: Vec<u8>,
    ) -> StoreFuture<'_, bool>;

    // ---- Versions ----

    /// Compare-and-swap of one object version's stored body (`coffer sse rewrap
    /// --seal-plaintext` seals a plaintext version in place): replaces its extents and
    /// envelope with `new` only if that version still has exactly `expected` (every extent
    /// field, and the envelope). Everything else stays: version id, ETag, size, headers,
    /// checksums, tags, lock, last-modified, and the version's place among the key's versions.
    /// In the same transaction the new blobs are referenced (their pending rows deleted, as
    /// for [`MetadataStore::put_object`]) and the old ones released. Returns whether it
    /// replaced; `false` if the version is gone or was changed meanwhile (the concurrent
    /// writer wins, and nothing changed: the caller deletes its new blobs). Errors:
    /// `NoSuchBucket`; `BlobInUse`, `NoSuchBlob` for the new blobs as for `put_object`.
    fn replace_body(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef,
        expected: StoredBody,
        new: StoredBody,
    ) -> StoreFuture<'_, bool>;

    /// Sets a bucket's versioning to `Enabled` or `Suspended` (`InvalidArgument` for
    /// `Unversioned`: versioning cannot be turned off). `NoSuchBucket`.
    fn set_bucket_versioning(&self, bucket: &str, versioning: Versioning) -> StoreFuture<'_, ()>;

    /// The version `which` names (an object or a delete marker) and whether it is the newest.
    /// `NoSuchKey` when the key has no version (`Latest`); `NoSuchVersion` when the named
    /// version does not exist; `InvalidArgument` for an id that cannot name a version;
    /// `NoSuchBucket`.
    fn get_version(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef,
    ) -> StoreFuture<'_, FoundVersion>;

    /// Removes the version `which` names for good (S3 DeleteObject with a version id) and
    /// releases its blobs; returns it, or `None` if there is no such version (not an error).
    /// If it was the newest, the next newest version becomes the newest (an object becomes
    /// the current object again). `ObjectLocked` if a legal hold or a retention unexpired at
    /// `now_ms` protects it (GOVERNANCE yields to `bypass_governance`). `NoSuchBucket`.
    fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef,
        bypass_governance: bool,
        now_ms: i64,
    ) -> StoreFuture<'_, Option<Version>>;

    /// Applies `change` (tags, legal hold, retention) to one object version, leaving its body
    /// and envelope alone; returns the updated record. Errors as for `get_version`, plus
    /// `DeleteMarker` if the version is one and `ObjectLocked` for a retention change the
    /// rules of [`VersionChange::Retention`] forbid.
    fn update_version(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef,
        change: VersionChange,
    ) -> StoreFuture<'_, ObjectRecord>;

    /// One page of a ListObjectVersions listing: every version (objects and delete markers)
    /// by key in byte order, newest first within a key, with prefix, delimiter roll-up and
    /// key / version-id markers (see [`VersionListQuery`]). `NoSuchBucket`.
    fn list_versions(
        &self,
        bucket: &str,
        query: &VersionListQuery,
    ) -> StoreFuture<'_, VersionListPage>;

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

    /// The user named `name`, if any.
    fn user_by_name(&self, name: &str) -> StoreFuture<'_, Option<UserRecord>>;

    /// Replaces the identity policy of the user `name` (`None` removes it), atomically with
    /// respect to every other user change; returns whether there is such a user (nothing is
    /// written when there is not).
    fn set_user_policy(&self, name: &str, policy: Option<String>) -> StoreFuture<'_, bool>;

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

    /// Whether writers must write a pending row (step 2 of the commit order) before a blob's
    /// bytes. `false` (the default) for a store whose open collects unreferenced blobs (the
    /// embedded pair), `true` for a store shared by gateways, whose garbage only the sweeper
    /// finds.
    fn needs_pending_rows(&self) -> bool {
        false
    }

    // ---- Background work ----

    /// Takes the lease `name` if no one holds it (in any process sharing this store), held
    /// until the returned [`Lease`] is dropped; `None` if another holder has it. Not
    /// re-entrant: a second `try_lease` of a held name is `None` in the same process too.
    /// Errors: `Unavailable` when the store cannot be reached.
    fn try_lease(&self, name: &str) -> StoreFuture<'_, Option<Box<dyn Lease>>>;

    // ---- Migration ----

    /// **Migration only** (`coffer admin migrate`, with no server using this store): makes
    /// `versions` (newest first, as [`MetadataStore::list_versions`] of another store listed
    /// them) the complete version list of `key`, exactly as given — version ids, times,
    /// owners, headers, envelopes, extents — in one transaction. Whatever versions the key had
    /// are replaced, so importing the same list again changes nothing; blobs of the replaced
    /// versions that `versions` does not reference are released, and the new blobs are
    /// referenced (finished, unreferenced; their pending rows deleted), as for
    /// [`MetadataStore::put_object`]. The store's version sequence is raised past every id
    /// given, so later writes are newer. An empty `versions` removes the key. Nothing is
    /// checked against the bucket's object-lock rules: this is a copy, not a delete.
    ///
    /// Errors: `NoSuchBucket`; `InvalidArgument` for a key the store cannot hold, an id that
    /// is not one of ours, versions not strictly newest first, an id twice, two null versions, or more
    /// than one null object in an unversioned bucket ([`crate::rules::import_plan`]);
    /// `BlobInUse`, `NoSuchBlob` as for `put_object`.
    fn import_key_versions(
        &self,
        bucket: &str,
        key: &str,
        versions: Vec<Version>,
    ) -> StoreFuture<'_, ()>;
}
