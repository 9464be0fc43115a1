//! The root credentials: from `COFFER_ROOT_ACCESS_KEY` /
//! `COFFER_ROOT_SECRET_KEY`, else from `<data-dir>/credentials`, else
//! generated into that file (mode 0600) on first start.

use std::path::{Path, PathBuf};

use coffer_api::RootCredentials;
use zeroize::Zeroizing;

pub const FILE_NAME: &str = "credentials";

pub enum Source {
    Environment,
    File(PathBuf),
    Generated(PathBuf),
}

pub fn load(data_dir: &Path) -> Result<(RootCredentials, Source), String> {
    let env_ak = std::env::var("COFFER_ROOT_ACCESS_KEY")
        .ok()
        .filter(|v| !v.is_empty());
    let env_sk = std::env::var("COFFER_ROOT_SECRET_KEY")
        .ok()
        .filter(|v| !v.is_empty())
        .map(Zeroizing::new);
    match (env_ak, env_sk) {
        (Some(access_key), Some(secret_key)) => {
            return Ok((
                RootCredentials {
                    access_key,
                    secret_key,
                },
                Source::Environment,
            ));
        }
        (None, None) => {}
        _ => {
            return Err(
                "set both COFFER_ROOT_ACCESS_KEY and COFFER_ROOT_SECRET_KEY, or neither".into(),
            );
        }
    }
    let path = data_dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            let value = |name: &str| {
                text.lines().find_map(|line| {
                    let (k, v) = line.split_once('=')?;
                    (k.trim() == name).then(|| v.trim().to_owned())
                })
            };
            match (value("aws_access_key_id"), value("aws_secret_access_key")) {
                (Some(access_key), Some(secret_key)) => Ok((
                    RootCredentials {
                        access_key,
                        secret_key: Zeroizing::new(secret_key),
                    },
                    Source::File(path),
                )),
                _ => Err(format!(
                    "{} lacks aws_access_key_id / aws_secret_access_key",
                    path.display()
                )),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let random = |n| coffer_crypto::random::hex_id(n).map_err(|e| e.to_string());
            let access_key = format!("CFROOT{}", random(7)?);
            let secret_key = Zeroizing::new(random(20)?.to_ascii_lowercase());
            let contents = Zeroizing::new(format!(
                "[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {}\n",
                secret_key.as_str()
            ));
            coffer_files::create_new(&path, contents.as_bytes())
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            Ok((
                RootCredentials {
                    access_key,
                    secret_key,
                },
                Source::Generated(path),
            ))
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}
