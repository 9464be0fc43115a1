//! The embedded backend pair: [`EmbeddedMetadata`] (redb, `meta.redb`) and [`FileBlobStore`]
//! (fsync'd files under `blobs/`), both over one [`Store`] in one data directory.
//!
//! They are a pair: the metadata side checks that a referenced blob file exists and deletes
//! the files a commit releases, and [`Store::open`] collects every blob file no record
//! references (which is this pair's sweeper: pending rows do not outlive a restart). The
//! synchronous work runs in place on a multi-threaded runtime (see `blocking`), else on
//! tokio's blocking threads.

mod files;
mod metadata;

use std::path::Path;

pub use files::FileBlobStore;
pub use metadata::EmbeddedMetadata;

use crate::{Store, StoreError};

/// Opens (creating if needed) the store in `data_dir`, collecting orphans, and returns both
/// halves of the embedded pair. Blocks: call it before the runtime or from `spawn_blocking`.
pub fn open_embedded(data_dir: &Path) -> Result<(EmbeddedMetadata, FileBlobStore), StoreError> {
    open_embedded_with_cache(data_dir, crate::store::DEFAULT_CACHE_BYTES)
}

/// [`open_embedded`], caching up to `cache_bytes` of the metadata database's pages
/// ([`Store::open_with_cache`]).
pub fn open_embedded_with_cache(
    data_dir: &Path,
    cache_bytes: usize,
) -> Result<(EmbeddedMetadata, FileBlobStore), StoreError> {
    let store = Store::open_with_cache(data_dir, cache_bytes)?;
    Ok((
        EmbeddedMetadata::new(store.clone()),
        FileBlobStore::new(store),
    ))
}

/// Runs the synchronous store's `f` without stalling other tasks: on a
/// multi-threaded runtime in place (`block_in_place`: called from an async
/// worker, the worker's other tasks move to another thread; called from a
/// blocking thread — the API's body readers and writers — it simply runs,
/// with no hand-off per call), elsewhere on tokio's blocking threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        return tokio::task::block_in_place(f);
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(format!("store task failed: {e}"))))?
}

#[cfg(test)]
mod tests;
