//! Coffer's metadata in PostgreSQL: [`PgMetadata`] implements
//! [`coffer_store::MetadataStore`] over a pool of connections, so that any number of stateless
//! gateways can share one database (DESIGN.md §8, issue 16). It passes the same contract suite
//! as the embedded redb store (`coffer_store::contract`), against a real PostgreSQL 15 started
//! by this crate's tests.
//!
//! The [`keystore`] module keeps the embedded KMS's keystore ([`PgKeyStore`]), the service
//! master key ring and the root-key check in the same database (migration 2): records sealed
//! by the root key, which stays on the gateways. Every keystore change notifies, and
//! [`keystore::spawn_invalidation`] keeps each gateway's KMS current with the others' changes
//! within one second, or failing closed (docs/kms.md, "The PostgreSQL keystore").
//!
//! # Tables
//! One table per embedded table (docs/metadata.md, "The PostgreSQL backend"): `buckets`,
//! `objects` (the current object of each key), `versions` (noncurrent versions and delete
//! markers, by a sequence number from the `version_seq` SEQUENCE), `uploads`, `parts`,
//! `blob_refs`, `pending_blobs`, `users`, `access_keys`. Records are the records' serde JSON in
//! `text` columns; object keys are `bytea`, since a key may hold U+0000, which `text` cannot,
//! and `bytea` sorts bytewise: S3's listing order, the order `COLLATE "C"` gives text. The
//! schema is created and migrated by [`PgMetadata::connect`] (`schema.rs`); a database whose
//! schema is newer than this build is refused.
//!
//! # Transactions
//! Every method is one transaction. Writes run SERIALIZABLE and are retried, from the start,
//! when PostgreSQL reports a serialization failure (SQLSTATE 40001) or a deadlock (`db.rs`).
//! Serializable rather than `SELECT … FOR UPDATE`: most checks are about rows that are *not*
//! there — `IfAbsent` on a missing key, a blob nobody references yet, an empty bucket, a free
//! user name — and a row lock cannot lock an absent row, while serializable snapshot
//! isolation sees the conflict; the code reads like the embedded store's, check then write,
//! and stays correct when a check is added. YugabyteDB runs SERIALIZABLE too. Reads of several
//! statements (listings, version lookups) run in one read-only REPEATABLE READ snapshot.
//!
//! Blobs a commit stops referencing get a `pending_blobs` row in that same commit: the
//! sweeper (`list_pending_blobs`, then `BlobStore::delete`, then `remove_pending_blob`)
//! deletes them once the row is older than its grace period, which also covers a GET still
//! reading the old body.
//!
//! # Connections
//! A `postgres://user:password@host:port/database` URL (or libpq's `key=value` form), without
//! TLS for now: use a trusted network or a local socket until TLS lands. Errors from PostgreSQL
//! or the pool are `StoreError::Io`, of kind `NotConnected` when the connection is gone.
//!
//! # Client crates (measured on the project's 2-core build machine, dev profile)
//! - tokio-postgres 0.7 (`runtime` feature only): 22 crates the workspace did not have
//!   (postgres-protocol, postgres-types, phf, stringprep, unicode-normalization, whoami,
//!   tokio-util, …); building it and them took 3 min 45 s wall, 2 min 28 s CPU.
//! - deadpool-postgres 0.14 on top: 3 more crates (deadpool, deadpool-runtime,
//!   deadpool-postgres), 21 s wall. Chosen: a maintained pool with connection recycling and a
//!   per-connection statement cache, for less than a hand-written pool would cost to get right.
//! - bb8-postgres 0.9 would add 2 crates; sqlx 0.8 (postgres, tokio, macros) 122 crates, 60 of
//!   them new to the workspace: not built.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod buckets;
mod codec;
mod db;
mod error;
mod import;
pub mod keystore;
mod lease;
mod multipart;
mod objects;
mod pending;
mod schema;
mod users;
mod version_list;
mod versions;
mod walk;

use std::sync::Arc;
use std::time::SystemTime;

use coffer_store::{
    BlobId, BucketRecord, Condition, Deleted, Deleter, FoundVersion, Lease, ListPage, ListQuery,
    MetadataStore, ObjectRecord, PartRecord, PendingBlob, StoreError, StoreFuture, StoredBody,
    UploadListPage, UploadListQuery, UploadRecord, UserRecord, Version, VersionChange,
    VersionListPage, VersionListQuery, VersionRef, Versioning, Written,
};
use deadpool_postgres::Pool;

use crate::codec::decode;
use crate::db::{query_opt, serializable, snapshot};
use crate::error::Error;
use crate::versions::KeyVersions;

use coffer_store::rules::{apply_version_change, check_bucket_name, check_key, epoch_ms};
pub use keystore::PgKeyStore;

pub use schema::LATEST as SCHEMA_VERSION;

/// Connections a [`PgMetadata`] keeps open at most, unless told otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

/// The PostgreSQL metadata store. Cheap to clone (the pool is shared); one per gateway.
#[derive(Clone)]
pub struct PgMetadata {
    pool: Pool,
    /// What the pool connects with; leases open connections of their own with it.
    config: Arc<tokio_postgres::Config>,
}

impl PgMetadata {
    /// Connects to `url` with up to [`DEFAULT_MAX_CONNECTIONS`] connections, creates or
    /// migrates the schema, and refuses a database whose schema is newer than this build
    /// ([`SCHEMA_VERSION`]) with `StoreError::Corrupt` saying so.
    pub async fn connect(url: &str) -> Result<PgMetadata, StoreError> {
        Self::connect_with(url, DEFAULT_MAX_CONNECTIONS).await
    }

    /// [`PgMetadata::connect`] with at most `max_connections` connections.
    pub async fn connect_with(url: &str, max_connections: usize) -> Result<PgMetadata, StoreError> {
        let config = db::config(url)?;
        let pool = db::pool(config.clone(), max_connections)?;
        schema::migrate(&pool).await?;
        Ok(PgMetadata {
            pool,
            config: Arc::new(config),
        })
    }

    /// The database's schema version (what its newest applied migration says).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        schema::current_version(&self.pool)
            .await
            .map_err(Error::into_store)
    }
}

/// One SERIALIZABLE transaction (retried on serialization failures) running `body`, boxed at
/// the call site, where the body's future is a concrete type whose `Send` the compiler can see.
macro_rules! write {
    ($self:ident, $body:expr) => {
        Box::pin(serializable(&$self.pool, $body))
    };
}

/// One read-only snapshot running `body`, boxed at the call site (see `write!`).
macro_rules! read {
    ($self:ident, $body:expr) => {
        Box::pin(snapshot(&$self.pool, $body))
    };
}

impl MetadataStore for PgMetadata {
    fn create_bucket(&self, bucket: BucketRecord) -> StoreFuture<'_, ()> {
        if let Err(e) = check_bucket_name(&bucket.name) {
            return Box::pin(async { Err(e) });
        }
        write!(self, async move |tx| buckets::create(tx, &bucket).await)
    }

    fn get_bucket(&self, name: &str) -> StoreFuture<'_, BucketRecord> {
        let name = name.to_owned();
        read!(self, async move |tx| versions::bucket(tx, &name).await)
    }

    fn list_buckets(&self) -> StoreFuture<'_, Vec<BucketRecord>> {
        read!(self, async |tx| buckets::list(tx).await)
    }

    fn delete_bucket(&self, name: &str) -> StoreFuture<'_, ()> {
        let name = name.to_owned();
        write!(self, async move |tx| buckets::delete(tx, &name).await)
    }

    fn get_bucket_config(&self, bucket: &str, name: &str) -> StoreFuture<'_, Option<String>> {
        let (bucket, name) = (bucket.to_owned(), name.to_owned());
        read!(self, async move |tx| Ok(versions::bucket(tx, &bucket)
            .await?
            .config
            .remove(&name)))
    }

    fn set_bucket_config(
        &self,
        bucket: &str,
        name: &str,
        value: Option<String>,
    ) -> StoreFuture<'_, ()> {
        let (bucket, name) = (bucket.to_owned(), name.to_owned());
        write!(self, async move |tx| {
            buckets::set_config(tx, &bucket, &name, value.as_deref()).await
        })
    }

    fn get_object(&self, bucket: &str, key: &str) -> StoreFuture<'_, ObjectRecord> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        read!(self, async move |tx| {
            let row = query_opt(
                tx,
                "SELECT o.record FROM buckets b
                 LEFT JOIN objects o ON o.bucket = b.name AND o.key = $2
                 WHERE b.name = $1",
                &[&bucket, &key.as_bytes()],
            )
            .await?;
            match row {
                None => Err(StoreError::NoSuchBucket.into()),
                Some(row) => match row.get::<_, Option<&str>>(0) {
                    Some(text) => Ok(decode(text)?),
                    None => Err(StoreError::NoSuchKey.into()),
                },
            }
        })
    }

    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        record: ObjectRecord,
        condition: Condition,
    ) -> StoreFuture<'_, Written> {
        if let Err(e) = check_key(key) {
            return Box::pin(async { Err(e) });
        }
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        write!(self, async move |tx| objects::put(
            tx, &bucket, &key, &record, &condition
        )
        .await)
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
        write!(self, async move |tx| {
            objects::delete(tx, &bucket, &key, &condition, &owner, now_ms).await
        })
    }

    fn list_objects(&self, bucket: &str, query: &ListQuery) -> StoreFuture<'_, ListPage> {
        let (bucket, query) = (bucket.to_owned(), query.clone());
        read!(self, async move |tx| objects::list(tx, &bucket, &query)
            .await)
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
        write!(self, async move |tx| {
            objects::replace_envelope(tx, &bucket, &key, &which, &expected, &new).await
        })
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
        write!(self, async move |tx| {
            objects::replace_body(tx, &bucket, &key, &which, &expected, new.clone()).await
        })
    }

    fn set_bucket_versioning(&self, bucket: &str, versioning: Versioning) -> StoreFuture<'_, ()> {
        if versioning == Versioning::Unversioned {
            return Box::pin(async {
                Err(StoreError::InvalidArgument(
                    "versioning can be enabled or suspended, not turned off".into(),
                ))
            });
        }
        let bucket = bucket.to_owned();
        write!(self, async move |tx| buckets::set_versioning(
            tx, &bucket, versioning
        )
        .await)
    }

    fn get_version(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef,
    ) -> StoreFuture<'_, FoundVersion> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        read!(self, async move |tx| {
            versions::bucket(tx, &bucket).await?;
            match KeyVersions::new(tx, &bucket, &key).find(&which).await? {
                Some((_, version, is_latest)) => Ok(FoundVersion { version, is_latest }),
                None if which == VersionRef::Latest => Err(StoreError::NoSuchKey.into()),
                None => Err(StoreError::NoSuchVersion.into()),
            }
        })
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
        write!(self, async move |tx| {
            versions::bucket(tx, &bucket).await?;
            KeyVersions::new(tx, &bucket, &key)
                .remove(&which, bypass_governance, now_ms)
                .await
        })
    }

    fn update_version(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef,
        change: VersionChange,
    ) -> StoreFuture<'_, ObjectRecord> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        write!(self, async move |tx| {
            versions::bucket(tx, &bucket).await?;
            let versions = KeyVersions::new(tx, &bucket, &key);
            let (place, version) = match versions.find(&which).await? {
                Some((place, version, _)) => (place, version),
                None if which == VersionRef::Latest => return Err(StoreError::NoSuchKey.into()),
                None => return Err(StoreError::NoSuchVersion.into()),
            };
            let Version::Object(mut record) = version else {
                return Err(StoreError::DeleteMarker.into());
            };
            apply_version_change(&mut record, change.clone())?;
            versions.rewrite(place, record.clone()).await?;
            Ok(record)
        })
    }

    fn list_versions(
        &self,
        bucket: &str,
        query: &VersionListQuery,
    ) -> StoreFuture<'_, VersionListPage> {
        let (bucket, query) = (bucket.to_owned(), query.clone());
        read!(self, async move |tx| version_list::list(
            tx, &bucket, &query
        )
        .await)
    }

    fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        upload: UploadRecord,
    ) -> StoreFuture<'_, String> {
        if let Err(e) = check_key(key) {
            return Box::pin(async { Err(e) });
        }
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        write!(self, async move |tx| multipart::create(
            tx, &bucket, &key, &upload
        )
        .await)
    }

    fn get_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StoreFuture<'_, UploadRecord> {
        let (bucket, key, id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        read!(self, async move |tx| multipart::get(tx, &bucket, &key, &id)
            .await)
    }

    fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: PartRecord,
    ) -> StoreFuture<'_, ()> {
        let (bucket, key, id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        write!(self, async move |tx| multipart::put_part(
            tx, &bucket, &key, &id, &part
        )
        .await)
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
        read!(self, async move |tx| {
            multipart::list_parts(tx, &bucket, &key, &id, part_number_marker, max_parts).await
        })
    }

    fn list_uploads(
        &self,
        bucket: &str,
        query: &UploadListQuery,
    ) -> StoreFuture<'_, UploadListPage> {
        let (bucket, query) = (bucket.to_owned(), query.clone());
        read!(self, async move |tx| multipart::list(tx, &bucket, &query)
            .await)
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
        write!(self, async move |tx| {
            multipart::complete(tx, &bucket, &key, &id, &record, &condition).await
        })
    }

    fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> StoreFuture<'_, ()> {
        let (bucket, key, id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        write!(self, async move |tx| multipart::abort(
            tx, &bucket, &key, &id
        )
        .await)
    }

    fn add_user(&self, user: UserRecord) -> StoreFuture<'_, ()> {
        write!(self, async move |tx| users::add(tx, &user).await)
    }

    fn user_by_access_key(&self, access_key: &str) -> StoreFuture<'_, Option<UserRecord>> {
        let access_key = access_key.to_owned();
        read!(self, async move |tx| users::by_access_key(tx, &access_key)
            .await)
    }

    fn list_users(&self) -> StoreFuture<'_, Vec<UserRecord>> {
        read!(self, async |tx| users::list(tx).await)
    }

    fn remove_user(&self, name: &str) -> StoreFuture<'_, bool> {
        let name = name.to_owned();
        write!(self, async move |tx| users::remove(tx, &name).await)
    }

    fn user_by_name(&self, name: &str) -> StoreFuture<'_, Option<UserRecord>> {
        let name = name.to_owned();
        read!(self, async move |tx| users::by_name(tx, &name).await)
    }

    fn set_user_policy(&self, name: &str, policy: Option<String>) -> StoreFuture<'_, bool> {
        let name = name.to_owned();
        write!(self, async move |tx| users::set_policy(
            tx,
            &name,
            policy.clone()
        )
        .await)
    }

    fn add_pending_blob(&self, blob: &BlobId, since: SystemTime) -> StoreFuture<'_, ()> {
        let (blob, since_ms) = (blob.clone(), epoch_ms(since));
        write!(self, async move |tx| pending::add(tx, &blob, since_ms)
            .await)
    }

    fn remove_pending_blob(&self, blob: &BlobId) -> StoreFuture<'_, bool> {
        let blob = blob.clone();
        write!(self, async move |tx| pending::remove(tx, &blob).await)
    }

    fn needs_pending_rows(&self) -> bool {
        true
    }

    fn try_lease(&self, name: &str) -> StoreFuture<'_, Option<Box<dyn Lease>>> {
        let name = name.to_owned();
        Box::pin(async move { lease::try_lease(&self.config, &name).await })
    }

    fn list_pending_blobs(&self, before: SystemTime) -> StoreFuture<'_, Vec<PendingBlob>> {
        let before_ms = epoch_ms(before);
        read!(self, async move |tx| pending::older_than(tx, before_ms)
            .await)
    }

    fn is_blob_referenced(&self, blob: &BlobId) -> StoreFuture<'_, bool> {
        let blob = blob.clone();
        read!(self, async move |tx| pending::is_referenced(tx, &blob)
            .await)
    }

    fn import_key_versions(
        &self,
        bucket: &str,
        key: &str,
        versions: Vec<Version>,
    ) -> StoreFuture<'_, ()> {
        if let Err(e) = check_key(key) {
            return Box::pin(async { Err(e) });
        }
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        write!(self, async move |tx| import::key_versions(
            tx, &bucket, &key, &versions
        )
        .await)
    }
}
