//! The root credentials: from `COFFER_ROOT_ACCESS_KEY` /
//! `COFFER_ROOT_SECRET_KEY`, else from `<data-dir>/credentials`, else
//! generated into that file (mode 0600) on first start. Gateways sharing a
//! PostgreSQL keystore share one pair, kept there sealed by the root key
//! ([`load_shared`]), and each writes it to its own data dir for local tools.

use std::path::{Path, PathBuf};

use coffer_api::RootCredentials;
use coffer_kms::RootKey;
use zeroize::Zeroizing;

pub const FILE_NAME: &str = "credentials";
/// The gateway setting holding the sealed pair, and the sealing context.
pub const SHARED_SETTING: &str = "root-credentials";
const SHARED_CONTEXT: &str = "coffer-root-credentials:v1";

pub enum Source {
    Environment,
    File(PathBuf),
    Generated(PathBuf),
    /// The pair the gateways share, in the PostgreSQL keystore.
    Shared,
}

/// The embedded server's root credentials.
pub fn load(data_dir: &Path) -> Result<(RootCredentials, Source), String> {
    if let Some(root) = from_env()? {
        return Ok((root, Source::Environment));
    }
    let path = data_dir.join(FILE_NAME);
    match read_file(&path)? {
        Some(root) => Ok((root, Source::File(path))),
        None => {
            let root = generate()?;
            write_file(&path, &root)?;
            Ok((root, Source::Generated(path)))
        }
    }
}

/// A gateway's root credentials: the environment's, else the pair stored
/// sealed in the shared keystore. The first gateway stores its data dir's
/// pair, or a new one; every gateway then writes the stored pair to its own
/// data dir when the file is missing.
pub fn load_shared(
    data_dir: &Path,
    keystore: &coffer_meta_pg::PgKeyStore,
    root_key: &RootKey,
) -> Result<(RootCredentials, Source), String> {
    if let Some(root) = from_env()? {
        return Ok((root, Source::Environment));
    }
    let path = data_dir.join(FILE_NAME);
    let local = read_file(&path)?;
    let stored = match keystore
        .setting(SHARED_SETTING)
        .map_err(|e| e.to_string())?
    {
        Some(stored) => stored,
        None => {
            let candidate = match &local {
                Some(root) => copy(root),
                None => generate()?,
            };
            let sealed = root_key
                .seal(SHARED_CONTEXT, encode(&candidate).as_bytes())
                .map_err(|e| format!("sealing the root credentials: {e}"))?;
            keystore
                .setting_or_insert(SHARED_SETTING, hex::encode(sealed))
                .map_err(|e| e.to_string())?
        }
    };
    let shared = hex::decode(stored)
        .ok()
        .and_then(|sealed| root_key.open(SHARED_CONTEXT, &sealed).ok())
        .and_then(|text| decode(std::str::from_utf8(&text).ok()?))
        .ok_or("the root credentials in gateway_settings do not open with this root key")?;
    match local {
        None => write_file(&path, &shared)?,
        Some(local) if local.access_key != shared.access_key => tracing::warn!(
            path = %path.display(),
            "this data dir's credentials file is not the gateways' shared root pair: \
             using the shared pair (access key {})",
            shared.access_key
        ),
        Some(_) => {}
    }
    Ok((shared, Source::Shared))
}

fn from_env() -> Result<Option<RootCredentials>, String> {
    let env_ak = std::env::var("COFFER_ROOT_ACCESS_KEY")
        .ok()
        .filter(|v| !v.is_empty());
    let env_sk = std::env::var("COFFER_ROOT_SECRET_KEY")
        .ok()
        .filter(|v| !v.is_empty())
        .map(Zeroizing::new);
    match (env_ak, env_sk) {
        (Some(access_key), Some(secret_key)) => Ok(Some(RootCredentials {
            access_key,
            secret_key,
        })),
        (None, None) => Ok(None),
        _ => Err("set both COFFER_ROOT_ACCESS_KEY and COFFER_ROOT_SECRET_KEY, or neither".into()),
    }
}

/// The pair in a credentials file, `None` when there is no file.
fn read_file(path: &Path) -> Result<Option<RootCredentials>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            decode(&text).map(Some).ok_or_else(|| {
                format!(
                    "{} lacks aws_access_key_id / aws_secret_access_key",
                    path.display()
                )
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn write_file(path: &Path, root: &RootCredentials) -> Result<(), String> {
    coffer_files::create_new(path, encode(root).as_bytes())
        .map_err(|e| format!("cannot create {}: {e}", path.display()))
}

fn generate() -> Result<RootCredentials, String> {
    let random = |n| coffer_crypto::random::hex_id(n).map_err(|e| e.to_string());
    Ok(RootCredentials {
        access_key: format!("CFROOT{}", random(7)?),
        secret_key: Zeroizing::new(random(20)?.to_ascii_lowercase()),
    })
}

fn copy(root: &RootCredentials) -> RootCredentials {
    RootCredentials {
        access_key: root.access_key.clone(),
        secret_key: root.secret_key.clone(),
    }
}

/// The credentials file's text (an AWS shared-credentials profile).
fn encode(root: &RootCredentials) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        root.access_key,
        root.secret_key.as_str()
    ))
}

fn decode(text: &str) -> Option<RootCredentials> {
    let value = |name: &str| {
        text.lines().find_map(|line| {
            let (k, v) = line.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
    };
    Some(RootCredentials {
        access_key: value("aws_access_key_id")?,
        secret_key: Zeroizing::new(value("aws_secret_access_key")?),
    })
}
