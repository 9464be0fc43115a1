//! The embedded backends: redb metadata, blob files, the file keystore and the root key, all
//! in the data dir.

use std::sync::Arc;

use coffer_kms::root_key::Origin;
use coffer_kms::{RootKey, ServiceKeyring};

use super::{Opened, passphrase, root_key_wrapper};
use crate::config::Settings;
use crate::credentials;
use crate::host_memory::{self, MemoryCeiling};

/// Where a server records its pid, for the message a second server on the same data dir gets.
const PID_FILE: &str = "coffer.pid";

/// The share of the memory the server may use that `meta.redb`'s page cache takes when
/// `--metadata-cache` is not given, and its bounds: redb's own default above, enough for the
/// tables' upper pages below.
const METADATA_CACHE_SHARE: u64 = 8;
const METADATA_CACHE_MIN: u64 = 16 << 20;
const METADATA_CACHE_MAX: u64 = coffer_store::DEFAULT_CACHE_BYTES as u64;

/// The embedded backends: everything in the data dir. The store is opened first: it locks
/// the data dir, so a second server stops before it touches any key file. A first start
/// (`fresh`) that fails once it holds the lock removes the data dir it made: a key file
/// without the keystore it was made for would only mislead the next start.
pub async fn open(settings: &Settings, fresh: bool) -> Result<Opened, String> {
    let (data_dir, configured) = (settings.data_dir.clone(), settings.metadata_cache_bytes);
    let (meta, blobs) = tokio::task::spawn_blocking(move || {
        coffer_store::open_embedded_with_cache(&data_dir, metadata_cache(configured))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| {
        if e.is_locked_by_another_process() {
            held_by_another_server(&settings.data_dir)
        } else {
            format!(
                "cannot open the store in {}: {e}",
                settings.data_dir.display()
            )
        }
    })?;
    let opened = open_keys(settings, Arc::new(meta), Arc::new(blobs)).await;
    if opened.is_err() && fresh {
        let _ = std::fs::remove_dir_all(&settings.data_dir);
    }
    opened
}

/// The bytes of `meta.redb`'s page cache: `--metadata-cache`, or a share of the memory the
/// server may use (read from /proc and /sys: call it off the async threads). Logged either way.
fn metadata_cache(configured: Option<usize>) -> usize {
    if let Some(bytes) = configured {
        tracing::info!("metadata cache: {} MiB (--metadata-cache)", bytes >> 20);
        return bytes;
    }
    let ceiling = host_memory::ceiling();
    let bytes = default_metadata_cache(ceiling);
    match ceiling {
        Some(MemoryCeiling {
            bytes: most,
            set_by,
        }) => tracing::info!(
            "metadata cache: {} MiB for the {} MiB of {set_by} (an eighth, from 16 to 1024 MiB; \
             --metadata-cache sets it)",
            bytes >> 20,
            most >> 20
        ),
        None => tracing::info!(
            "metadata cache: {} MiB (this host's memory is unknown; --metadata-cache sets it)",
            bytes >> 20
        ),
    }
    bytes
}

/// `meta.redb`'s page cache sized to the memory the server may use: a share of it, so that a
/// small VM or a container's limit is not spent on cached pages, and at most redb's default.
fn default_metadata_cache(ceiling: Option<MemoryCeiling>) -> usize {
    let bytes = ceiling.map_or(METADATA_CACHE_MAX, |c| {
        (c.bytes / METADATA_CACHE_SHARE).clamp(METADATA_CACHE_MIN, METADATA_CACHE_MAX)
    });
    usize::try_from(bytes).expect("at most DEFAULT_CACHE_BYTES, a usize")
}

/// The keys, the credentials and the KMS, once the store holds the data dir.
async fn open_keys(
    settings: &Settings,
    meta: Arc<coffer_store::EmbeddedMetadata>,
    blobs: Arc<coffer_store::FileBlobStore>,
) -> Result<Opened, String> {
    let pid_file = settings.data_dir.join(PID_FILE);
    if let Err(e) = coffer_files::replace(&pid_file, format!("{}\n", std::process::id()).as_bytes())
    {
        tracing::warn!(path = %pid_file.display(), error = %e, "cannot record this server's pid");
    }
    let root_key = Arc::new(load_root_key(settings)?);
    let service_keys = ServiceKeyring::load_or_create(&settings.data_dir, &root_key)
        .map_err(|e| format!("{e}; refusing to start"))?;
    let (root, source) = credentials::load(&settings.data_dir)?;
    let kms_dir = settings.data_dir.clone();
    let kms_root = root_key.clone();
    let kms_region = settings.region.clone();
    let kms = tokio::task::spawn_blocking(move || {
        coffer_kms::EmbeddedKms::open(&kms_dir, kms_root, &kms_region)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("cannot open the embedded KMS: {e}; refusing to start"))?;
    Ok(Opened {
        meta,
        blobs,
        root_key,
        service_keys,
        kms: Arc::new(kms),
        root,
        source,
        shared_keys: None,
    })
}

/// The root key: wrapped by a token key (`--root-key pkcs11:…`), or derived from a passphrase
/// when one is given, else the key file (created on first start).
fn load_root_key(settings: &Settings) -> Result<RootKey, String> {
    let wrapped_path = RootKey::wrapped_path(&settings.data_dir);
    if let Some(wrapper) = root_key_wrapper(settings)? {
        let plain_path = RootKey::path(&settings.data_dir);
        if plain_path.exists() {
            return Err(format!(
                "this data dir's root key is the file {}, not one wrapped by --root-key:                  start without --root-key",
                plain_path.display()
            ));
        }
        if !wrapped_path.exists() && settings.data_dir.join("service-keys.json").exists() {
            return Err(format!(
                "the wrapped root key {} is missing but this data dir has a keystore sealed by                  it; restore the file from your backup",
                wrapped_path.display()
            ));
        }
        let (key, origin) = RootKey::load_or_create_wrapped(&settings.data_dir, &wrapper)
            .map_err(|e| format!("{e}; refusing to start"))?;
        if origin == Origin::Created {
            tracing::warn!(
                path = %wrapped_path.display(),
                "created a new root key wrapped by the PKCS#11 token key: without that key this data dir cannot be opened; back the token up"
            );
        }
        return Ok(key);
    }
    if wrapped_path.exists() {
        return Err(format!(
            "this data dir's root key is wrapped by a PKCS#11 token key ({}): start with the              same --root-key pkcs11:…",
            wrapped_path.display()
        ));
    }
    if let Some(passphrase) = passphrase(settings)? {
        let (key, origin) = RootKey::from_passphrase(&settings.data_dir, passphrase.as_bytes())
            .map_err(|e| e.to_string())?;
        if origin == Origin::Created {
            tracing::warn!(
                "root key derived from a new passphrase: without it this data dir cannot be opened"
            );
        }
        return Ok(key);
    }
    // A keystore without its root key file is a lost or misplaced key, not a
    // first start: creating a new key would only leave a useless file behind.
    let root_key_path = RootKey::path(&settings.data_dir);
    if !root_key_path.exists() && settings.data_dir.join("service-keys.json").exists() {
        return Err(format!(
            "the root key file {} is missing but this data dir has a keystore sealed by it; \
             restore the file from your backup (or pass --root-passphrase-file if it used one)",
            root_key_path.display()
        ));
    }
    let (key, origin) = RootKey::load_or_create(&settings.data_dir).map_err(|e| e.to_string())?;
    if origin == Origin::Created {
        tracing::warn!(
            path = %RootKey::path(&settings.data_dir).display(),
            "created a new root key file: it seals every secret Coffer keeps; back it up and keep it private"
        );
    }
    Ok(key)
}

fn held_by_another_server(data_dir: &std::path::Path) -> String {
    let pid = std::fs::read_to_string(data_dir.join(PID_FILE))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok());
    let holder = match pid {
        Some(pid) => format!("another coffer server (pid {pid})"),
        None => "another coffer server".to_owned(),
    };
    format!(
        "{holder} holds the data dir {}: stop it first, or give this server its own --data-dir",
        data_dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_memory::Limiter;

    fn ceiling(mib: u64) -> Option<MemoryCeiling> {
        Some(MemoryCeiling {
            bytes: mib << 20,
            set_by: Limiter::Cgroup,
        })
    }

    #[test]
    fn the_default_metadata_cache_is_an_eighth_of_the_memory_within_bounds() {
        assert_eq!(default_metadata_cache(ceiling(512)), 64 << 20);
        assert_eq!(default_metadata_cache(ceiling(2048)), 256 << 20);
        assert_eq!(
            default_metadata_cache(ceiling(64)),
            16 << 20,
            "at least 16 MiB"
        );
        assert_eq!(
            default_metadata_cache(ceiling(24 << 10)),
            1 << 30,
            "at most redb's default"
        );
        assert_eq!(
            default_metadata_cache(None),
            1 << 30,
            "unknown: redb's default"
        );
    }
}
