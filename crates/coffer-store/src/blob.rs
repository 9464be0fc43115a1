//! Blob files: written to `tmp/`, fsynced, renamed into `blobs/<2 hex>/<id>`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::{BlobId, StoreError};

/// A blob being written. Dropping it without [`NewBlob::finish`] removes the temp file.
pub(crate) struct NewBlob {
    id: BlobId,
    file: File,
    tmp_path: PathBuf,
    blobs_dir: PathBuf,
    finished: bool,
}

impl NewBlob {
    pub(crate) fn create(tmp_dir: &Path, blobs_dir: &Path) -> Result<NewBlob, StoreError> {
        let id = random_hex()?;
        let tmp_path = tmp_dir.join(&id);
        let file = File::options()
            .write(true)
            .read(true)
            .create_new(true)
            .open(&tmp_path)?;
        Ok(NewBlob {
            id,
            file,
            tmp_path,
            blobs_dir: blobs_dir.to_path_buf(),
            finished: false,
        })
    }

    /// The id the blob will have once finished: known up front, so that a pending row can
    /// name the blob before its bytes are written.
    pub(crate) fn id(&self) -> &BlobId {
        &self.id
    }

    /// The temp file, for the caller to write the blob's bytes into.
    pub(crate) fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Makes the blob durable: fsync the file, rename it into `blobs/`, fsync that directory.
    /// The blob is not referenced yet: a record must name it in a committed transaction, or
    /// the next `Store::open` deletes it.
    pub(crate) fn finish(mut self) -> Result<BlobId, StoreError> {
        self.file.sync_all()?;
        let id = std::mem::take(&mut self.id);
        let final_path = blob_path(&self.blobs_dir, &id);
        let shard = shard_dir(&self.blobs_dir, &id);
        fs::create_dir_all(&shard)?;
        fs::rename(&self.tmp_path, &final_path)?;
        self.finished = true;
        sync_dir(&shard)?;
        Ok(id)
    }
}

impl Drop for NewBlob {
    fn drop(&mut self) {
        if !self.finished
            && let Err(e) = fs::remove_file(&self.tmp_path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.tmp_path.display(), error = %e, "cannot remove temp blob");
        }
    }
}

/// 128 random bits as 32 lower-case hex characters.
pub(crate) fn random_hex() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| std::io::Error::other(format!("random source failed: {e}")))?;
    Ok(hex::encode(bytes))
}

/// A fresh blob id: 128 random bits as 32 lower-case hex characters. For backends other than
/// the embedded one, which must name blobs exactly as it does.
pub fn new_blob_id() -> Result<BlobId, StoreError> {
    random_hex()
}

/// Whether `id` has the form of a blob id (32 lower-case hex characters): what a backend
/// checks before an id reaches a path or an upstream key, and what a listing keeps.
pub fn is_blob_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn shard_dir(blobs_dir: &Path, id: &str) -> PathBuf {
    blobs_dir.join(id.get(..2).unwrap_or("00"))
}

pub(crate) fn blob_path(blobs_dir: &Path, id: &str) -> PathBuf {
    shard_dir(blobs_dir, id).join(id)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)?.sync_all()?;
    Ok(())
}
