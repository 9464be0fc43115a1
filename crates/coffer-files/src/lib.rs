//! Private files on local disk, written whole or not at all.
//!
//! Coffer keeps a few small secret files beside its data: the root key and
//! its salt, the KMS keystore, the service-key ring, the generated root
//! credentials, TLS private keys and client-side master keys. Each is
//! written the same way, here:
//!
//! 1. a temporary file is created in the target's directory (so the rename
//!    below stays on one file system) with mode 0600 from its first byte;
//! 2. the bytes are written and the file is fsynced;
//! 3. it is renamed over the target ([`replace`]), or linked to the target
//!    name only if that name is free ([`create_new`]);
//! 4. the directory is fsynced, so the new name survives power loss.
//!
//! A reader therefore sees the old file or the new one, never a torn one,
//! and a crash leaves at most a stray `.…tmp` file that no reader opens.
//!
//! Standard library only; permissions are applied on Unix and ignored
//! elsewhere.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Owner read and write: the mode of every private file.
pub const PRIVATE_MODE: u32 = 0o600;

/// Owner only: the mode of every directory Coffer keeps data in.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// How many temporary names to try before giving up (another process could
/// hold one by chance; the counter and clock make that unlikely).
const TEMP_ATTEMPTS: u32 = 16;

/// Atomically replaces `path` (or creates it) with `bytes`, readable and
/// writable by the owner only.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_with_mode(path, bytes, PRIVATE_MODE)
}

/// Like [`replace`], with another mode for the new file: for files that
/// are not secret but must still be replaced whole, such as a certificate
/// beside its private key (0644).
pub fn replace_with_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let temp = write_temp(path, bytes, mode)?;
    if let Err(error) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    sync_parent(path)
}

/// Creates `path` with `bytes`, owner-only, and refuses to replace an
/// existing file: the error then has kind [`io::ErrorKind::AlreadyExists`]
/// and the existing file is untouched.
///
/// The content is complete before the name appears: the temporary file is
/// hard-linked to `path`, which fails atomically if the name is taken.
pub fn create_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temp = write_temp(path, bytes, PRIVATE_MODE)?;
    let linked = fs::hard_link(&temp, path);
    let removed = fs::remove_file(&temp);
    linked?;
    removed?;
    sync_parent(path)
}

/// Makes `path` a directory only its owner can enter (0700): creates it,
/// and any missing parents, with that mode, or narrows an existing one.
/// Returns whether an existing directory was wider and has been narrowed
/// (for the caller to say so); parents that existed are left alone.
pub fn ensure_private_dir(path: &Path) -> io::Result<bool> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let existed = path.is_dir();
        builder.mode(PRIVATE_DIR_MODE).create(path)?;
        let mode = fs::metadata(path)?.permissions().mode() & 0o777;
        if mode != PRIVATE_DIR_MODE {
            fs::set_permissions(path, fs::Permissions::from_mode(PRIVATE_DIR_MODE))?;
            return Ok(existed);
        }
        Ok(false)
    }
    #[cfg(not(unix))]
    {
        builder.create(path)?;
        Ok(false)
    }
}

/// Writes `bytes` to a new temporary file beside `path`, created with
/// `mode`, and fsyncs it. The file is removed again if anything fails.
fn write_temp(path: &Path, bytes: &[u8], mode: u32) -> io::Result<PathBuf> {
    let (temp, mut file) = create_temp(path, mode)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    match written {
        Ok(()) => Ok(temp),
        Err(error) => {
            let _ = fs::remove_file(&temp);
            Err(error)
        }
    }
}

/// Creates `.<name>.<pid>.<n>.tmp` in `path`'s directory, exclusively.
fn create_temp(path: &Path, mode: u32) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let mut last = None;
    for _ in 0..TEMP_ATTEMPTS {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}.{n}.{nanos:08x}.tmp", std::process::id()));
        let temp = path.with_file_name(temp_name);
        match open_exclusive(&temp, mode) {
            Ok(file) => return Ok((temp, file)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => last = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary file name")))
}

fn open_exclusive(path: &Path, mode: u32) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}

/// Fsyncs the directory holding `path`, so that a rename or link into it
/// is durable. Directories cannot be opened for syncing outside Unix.
fn sync_parent(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[cfg(unix)]
    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn replace_writes_owner_only_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret.json");
        replace(&path, b"first").expect("create");
        assert_eq!(fs::read(&path).expect("read"), b"first");
        replace(&path, b"second, longer").expect("replace");
        assert_eq!(fs::read(&path).expect("read"), b"second, longer");
        assert_eq!(entries(dir.path()), ["secret.json"]);
        #[cfg(unix)]
        assert_eq!(mode_of(&path), 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn replace_makes_a_wider_existing_file_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key.pem");
        fs::write(&path, b"old").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        replace(&path, b"new").expect("replace");
        assert_eq!(mode_of(&path), 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn replace_with_mode_sets_that_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cert.pem");
        replace_with_mode(&path, b"cert", 0o644).expect("write");
        assert_eq!(mode_of(&path), 0o644);
        assert_eq!(entries(dir.path()), ["cert.pem"]);
    }

    #[cfg(unix)]
    #[test]
    fn private_dirs_are_created_or_narrowed_to_0700() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let nested = dir.path().join("a").join("b");
        assert!(
            !ensure_private_dir(&nested).expect("create"),
            "nothing existed"
        );
        assert_eq!(mode_of(&nested), 0o700);
        assert_eq!(mode_of(&dir.path().join("a")), 0o700, "created parents too");
        fs::set_permissions(&nested, fs::Permissions::from_mode(0o755)).expect("chmod");
        assert!(
            ensure_private_dir(&nested).expect("narrow"),
            "a wider dir is narrowed"
        );
        assert_eq!(mode_of(&nested), 0o700);
        assert!(
            !ensure_private_dir(&nested).expect("again"),
            "already private"
        );
    }

    #[test]
    fn create_new_writes_once_and_refuses_an_existing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("root.key");
        create_new(&path, b"key one").expect("create");
        assert_eq!(fs::read(&path).expect("read"), b"key one");
        #[cfg(unix)]
        assert_eq!(mode_of(&path), 0o600);
        let refused = create_new(&path, b"key two").expect_err("the name is taken");
        assert_eq!(refused.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).expect("read"), b"key one");
        assert_eq!(entries(dir.path()), ["root.key"]);
    }

    #[test]
    fn a_relative_path_syncs_the_current_directory() {
        // `sync_parent` of a bare file name opens "." rather than "".
        assert!(sync_parent(Path::new("just-a-name")).is_ok());
    }

    #[test]
    fn a_missing_directory_is_an_error_and_creates_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("absent").join("file");
        let error = replace(&path, b"x").expect_err("no such directory");
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        let error = replace(Path::new("/"), b"x").expect_err("no file name");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
