//! How every client command reaches a server: the endpoint, the credentials and the CA
//! bundle, found the way the aws CLI finds them — flags, then `AWS_*` environment variables,
//! then the profile (`--profile` / `AWS_PROFILE`, else `default`) in the shared credentials
//! file (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`) and the config file
//! (`AWS_CONFIG_FILE`, else `~/.aws/config`: `region`, `endpoint_url`, `ca_bundle`).
//! A session token (temporary credentials) comes with the pair it belongs to:
//! `AWS_SESSION_TOKEN` with a pair from flags or the environment, the profile's
//! `aws_session_token` with the profile's pair.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use coffer_auth::Secret;
use coffer_client::{Endpoint, SignedClient, Timeouts};
use zeroize::Zeroizing;

const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:9000";
const DEFAULT_REGION: &str = "us-east-1";

/// The endpoint and the credentials to sign with.
#[derive(Args, Clone)]
pub struct ConnectArgs {
    /// The server's URL [default: AWS_ENDPOINT_URL, else the profile's endpoint_url, else
    /// http://127.0.0.1:9000].
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// The access key id to sign with [default: AWS_ACCESS_KEY_ID, else the profile's].
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    access_key_id: Option<String>,
    /// The secret access key to sign with [default: AWS_SECRET_ACCESS_KEY, else the
    /// profile's].
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: Option<String>,
    /// The profile of the shared credentials and config files [default: AWS_PROFILE, else
    /// `default`].
    #[arg(long, env = "AWS_PROFILE")]
    profile: Option<String>,
    /// The region to sign for [default: AWS_REGION, AWS_DEFAULT_REGION, the profile's, else
    /// us-east-1].
    #[arg(long, env = "AWS_REGION")]
    region: Option<String>,
    /// PEM file of the CA certificates an https endpoint is checked against [default:
    /// COFFER_CA_FILE, else AWS_CA_BUNDLE, else the profile's ca_bundle].
    #[arg(long)]
    ca_bundle: Option<PathBuf>,
}

/// A client that signs every request with the credentials `connect` leads to.
pub fn client(connect: ConnectArgs) -> Result<SignedClient, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let resolved = resolve(connect, &Files::from_env(), &env)?;
    let client = SignedClient::with_ca_file(
        Endpoint {
            url: resolved.endpoint_url,
            access_key: resolved.access_key_id,
            secret_key: Secret::new(resolved.secret_access_key.as_str()),
            region: resolved.region,
        },
        Timeouts::default(),
        resolved.ca_bundle.as_deref(),
    )
    .map_err(|e| e.to_string())?
    .with_refused_hint("set --endpoint-url or AWS_ENDPOINT_URL");
    Ok(match resolved.session_token {
        Some(token) => client.with_session_token(Secret::new(token.as_str())),
        None => client,
    })
}

/// What a command connects with, every source consulted.
struct Resolved {
    endpoint_url: String,
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    session_token: Option<Zeroizing<String>>,
    region: String,
    ca_bundle: Option<PathBuf>,
}

/// Where the shared files are.
struct Files {
    credentials: PathBuf,
    config: PathBuf,
}

impl Files {
    fn from_env() -> Files {
        let home = || {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(".aws")
        };
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Files {
            credentials: var("AWS_SHARED_CREDENTIALS_FILE")
                .map(PathBuf::from)
                .unwrap_or_else(|| home().join("credentials")),
            config: var("AWS_CONFIG_FILE")
                .map(PathBuf::from)
                .unwrap_or_else(|| home().join("config")),
        }
    }
}

/// Resolves `connect` against the shared files and the environment variables clap does not
/// read itself (`env`: the process's, or a test's).
fn resolve(
    connect: ConnectArgs,
    files: &Files,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, String> {
    let profile = connect.profile.unwrap_or_else(|| "default".to_owned());
    let credentials = read_section(&files.credentials, &profile);
    // In the config file, profiles other than the default are `[profile NAME]`.
    let config_section = if profile == "default" {
        profile.clone()
    } else {
        format!("profile {profile}")
    };
    let config = read_section(&files.config, &config_section);
    let from_files = |key: &str| {
        let found = |source: &Section| source.values().and_then(|v| v.get(key).cloned());
        found(&credentials).or_else(|| found(&config))
    };
    let (access_key_id, secret_access_key, session_token) = match (
        connect.access_key_id,
        connect.secret_access_key.map(Zeroizing::new),
    ) {
        (Some(id), Some(secret)) => (id, secret, env("AWS_SESSION_TOKEN").map(Zeroizing::new)),
        (Some(_), None) | (None, Some(_)) => {
            return Err("give both --access-key-id and --secret-access-key \
                        (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or neither"
                .into());
        }
        (None, None) => match (
            from_files("aws_access_key_id"),
            from_files("aws_secret_access_key").map(Zeroizing::new),
        ) {
            (Some(id), Some(secret)) => (
                id,
                secret,
                from_files("aws_session_token")
                    .or_else(|| from_files("session_token"))
                    .map(Zeroizing::new),
            ),
            _ => {
                return Err(format!(
                    "no credentials to sign with; tried --access-key-id/--secret-access-key, \
                     AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and profile \"{profile}\" in {} \
                     ({}) and {} ({}). A Coffer server writes its root pair to \
                     DATA_DIR/credentials: point AWS_SHARED_CREDENTIALS_FILE at it",
                    files.credentials.display(),
                    credentials.describe(),
                    files.config.display(),
                    config.describe(),
                ));
            }
        },
    };
    Ok(Resolved {
        endpoint_url: connect
            .endpoint_url
            .or_else(|| from_files("endpoint_url"))
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned()),
        access_key_id,
        secret_access_key,
        session_token,
        region: connect
            .region
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| from_files("region"))
            .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
        ca_bundle: connect
            .ca_bundle
            .or_else(|| env("COFFER_CA_FILE").map(PathBuf::from))
            .or_else(|| env("AWS_CA_BUNDLE").map(PathBuf::from))
            .or_else(|| from_files("ca_bundle").map(PathBuf::from)),
    })
}

/// One section of an INI-style AWS file, or why there is none.
enum Section {
    Found(BTreeMap<String, String>),
    NoFile,
    NoProfile,
    Unreadable(String),
}

impl Section {
    fn values(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            Section::Found(values) => Some(values),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Section::Found(values) if values.contains_key("aws_access_key_id") => {
                "no aws_secret_access_key".into()
            }
            Section::Found(_) => "no aws_access_key_id".into(),
            Section::NoFile => "no such file".into(),
            Section::NoProfile => "no such profile".into(),
            Section::Unreadable(error) => error.clone(),
        }
    }
}

/// The `key = value` lines of `[name]` in `path`; `#` and `;` start comments.
fn read_section(path: &Path, name: &str) -> Section {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => Zeroizing::new(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Section::NoFile,
        Err(e) => return Section::Unreadable(e.to_string()),
    };
    let mut current: Option<&str> = None;
    let mut values = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(header.trim());
            if current == Some(name) {
                values.get_or_insert_with(BTreeMap::new);
            }
            continue;
        }
        if current == Some(name)
            && let (Some(map), Some((key, value))) = (values.as_mut(), line.split_once('='))
        {
            BTreeMap::insert(map, key.trim().to_owned(), value.trim().to_owned());
        }
    }
    values.map_or(Section::NoProfile, Section::Found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ConnectArgs {
        ConnectArgs {
            endpoint_url: None,
            access_key_id: None,
            secret_access_key: None,
            profile: None,
            region: Some("eu-west-1".into()),
            ca_bundle: None,
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn files(dir: &Path, credentials: &str, config: &str) -> Files {
        let files = Files {
            credentials: dir.join("credentials"),
            config: dir.join("config"),
        };
        std::fs::write(&files.credentials, credentials).expect("write");
        std::fs::write(&files.config, config).expect("write");
        files
    }

    #[test]
    fn flags_beat_profiles() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = files(
            dir.path(),
            "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = filesecret\n",
            "[default]\nendpoint_url = https://coffer.internal:9443\nca_bundle = /etc/ca.pem\n",
        );
        let mut a = args();
        a.access_key_id = Some("FLAGKEY".into());
        a.secret_access_key = Some("flagsecret".into());
        let r = resolve(a, &files, &no_env).expect("resolves");
        assert_eq!(r.access_key_id, "FLAGKEY");
        assert_eq!(r.secret_access_key.as_str(), "flagsecret");
        assert_eq!(r.endpoint_url, "https://coffer.internal:9443");
        assert_eq!(r.ca_bundle.as_deref(), Some(Path::new("/etc/ca.pem")));
        let r = resolve(args(), &files, &no_env).expect("resolves");
        assert_eq!(
            (r.access_key_id.as_str(), r.secret_access_key.as_str()),
            ("FILEKEY", "filesecret")
        );
    }

    #[test]
    fn session_tokens_come_with_their_pair() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = files(
            dir.path(),
            "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = s\n\
             aws_session_token = FILETOKEN\n",
            "",
        );
        let env = |name: &str| (name == "AWS_SESSION_TOKEN").then(|| "ENVTOKEN".to_owned());
        let r = resolve(args(), &files, &env).expect("resolves");
        assert_eq!(
            r.session_token.as_deref().map(String::as_str),
            Some("FILETOKEN")
        );
        let mut a = args();
        a.access_key_id = Some("ENVKEY".into());
        a.secret_access_key = Some("envsecret".into());
        let r = resolve(a.clone(), &files, &env).expect("resolves");
        assert_eq!(
            r.session_token.as_deref().map(String::as_str),
            Some("ENVTOKEN")
        );
        let r = resolve(a, &files, &no_env).expect("resolves");
        assert!(
            r.session_token.is_none(),
            "no token without AWS_SESSION_TOKEN"
        );
    }

    #[test]
    fn named_profiles_use_the_config_files_profile_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = files(
            dir.path(),
            "# a comment\n[default]\naws_access_key_id = D\naws_secret_access_key = d\n\n\
             [bob]\naws_access_key_id = BOB\naws_secret_access_key = bob-secret\n",
            "[profile bob]\nendpoint_url = http://10.0.0.5:9000\n[bob]\nendpoint_url = wrong\n",
        );
        let mut a = args();
        a.profile = Some("bob".into());
        let r = resolve(a, &files, &no_env).expect("resolves");
        assert_eq!(r.access_key_id, "BOB");
        assert_eq!(r.endpoint_url, "http://10.0.0.5:9000");
        assert_eq!(r.region, "eu-west-1");
    }

    #[test]
    fn errors_name_what_was_tried() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = Files {
            credentials: dir.path().join("missing"),
            config: dir.path().join("config"),
        };
        std::fs::write(&files.config, "[profile other]\nregion = x\n").expect("write");
        let error = resolve(args(), &files, &no_env)
            .err()
            .expect("no credentials");
        assert!(error.contains("AWS_ACCESS_KEY_ID"), "{error}");
        assert!(error.contains("missing (no such file)"), "{error}");
        assert!(error.contains("config (no such profile)"), "{error}");
        let mut a = args();
        a.access_key_id = Some("K".into());
        let error = resolve(a, &files, &no_env).err().expect("half a pair");
        assert!(error.contains("both"), "{error}");
    }
}
