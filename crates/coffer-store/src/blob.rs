//! Blob files: written to `tmp/`, fsynced, renamed into `blobs/<2 hex>/<id>`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::direct::DirectFile;
use crate::rules::is_valid_blob_id;
use crate::{BlobId, StoreError};

/// Mode of every directory of the store: owner only.
pub(crate) const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of every file of the store (`meta.redb`, blobs, temp files): owner read and write.
pub(crate) const PRIVATE_FILE_MODE: u32 = 0o600;

/// A blob being written. Dropping it without [`NewBlob::finish`] removes the temp file.
pub(crate) struct NewBlob {
    id: BlobId,
    /// `None` only inside `finish`.
    file: Option<DirectFile>,
    tmp_path: PathBuf,
    blobs_dir: PathBuf,
    finished: bool,
}

impl NewBlob {
    /// A new blob under an id chosen earlier (a fresh random one: the temp file must not
    /// exist yet). Its file is written with `O_DIRECT` where the file system allows
    /// (`direct.rs`): blob files are the large blobs, read back rarely soon after.
    pub(crate) fn create_named(
        id: BlobId,
        tmp_dir: &Path,
        blobs_dir: &Path,
    ) -> Result<NewBlob, StoreError> {
        if !is_valid_blob_id(&id) {
            return Err(StoreError::InvalidArgument("not a blob id".into()));
        }
        let tmp_path = tmp_dir.join(&id);
        let file = DirectFile::create(&tmp_path, PRIVATE_FILE_MODE)?;
        Ok(NewBlob {
            id,
            file: Some(file),
            tmp_path,
            blobs_dir: blobs_dir.to_path_buf(),
            finished: false,
        })
    }

    /// Appends `data` to the blob.
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<(), StoreError> {
        let file = self
            .file
            .as_mut()
            .expect("the file is taken only by finish");
        Ok(file.write(data)?)
    }

    /// Makes the blob durable: fsync the file, rename it into `blobs/`, fsync that directory.
    /// The blob is not referenced yet: a record must name it in a committed transaction, or
    /// the next `Store::open` deletes it.
    pub(crate) fn finish(mut self) -> Result<BlobId, StoreError> {
        let file = self.file.take().expect("the file is taken only by finish");
        file.into_file()?.sync_all()?;
        let id = std::mem::take(&mut self.id);
        let final_path = blob_path(&self.blobs_dir, &id);
        let shard = shard_dir(&self.blobs_dir, &id);
        private_dir(&shard)?;
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

/// Creates `dir` (and missing parents) owner-only, or narrows an existing one to 0700:
/// object bodies and metadata are nobody else's business, sealed or not.
pub(crate) fn private_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        fs::DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR_MODE)
            .create(dir)?;
        if fs::metadata(dir)?.permissions().mode() & 0o777 != PRIVATE_DIR_MODE {
            fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR_MODE))?;
        }
    }
    #[cfg(not(unix))]
    fs::create_dir_all(dir)?;
    Ok(())
}

/// Makes `path` an owner-only (0600) file: creates it empty if absent (redb initialises an
/// empty file), narrows it if it exists.
pub(crate) fn private_file(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(PRIVATE_FILE_MODE)
            .open(path)?;
        if file.metadata()?.permissions().mode() & 0o777 != PRIVATE_FILE_MODE {
            file.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE_MODE))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
