//! `coffer cse rewrap|generate-key`: client-side encryption's own commands
//! (the master-key options they share with `coffer cp`/`cat` are in
//! [`crate::master_keys`]).

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use coffer_client::SignedClient;
use coffer_client::objects::{self, CopySource, MetadataDirective, NewObject};
use coffer_cse::{Format, MasterKey};

use crate::connect::{ConnectArgs, client};
use crate::master_keys::{MasterKeyArgs, OssRsaPadding};
use crate::object_url::ObjectUrl;

/// The same options, spelled `--from-…` (rewrap: the key in use now).
#[derive(Args, Clone)]
pub struct FromKeyArgs {
    #[arg(long)]
    from_kms_key_id: Option<String>,
    #[arg(long)]
    from_key_file: Option<PathBuf>,
    #[arg(long)]
    from_rsa_private_key: Option<PathBuf>,
}

/// The same options, spelled `--to-…` (rewrap: the new key).
#[derive(Args, Clone)]
pub struct ToKeyArgs {
    #[arg(long)]
    to_kms_key_id: Option<String>,
    #[arg(long)]
    to_key_file: Option<PathBuf>,
    #[arg(long)]
    to_rsa_public_key: Option<PathBuf>,
    #[arg(long)]
    to_rsa_private_key: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "oaep")]
    to_oss_rsa_padding: OssRsaPadding,
    #[arg(long)]
    to_matdesc: Option<String>,
}

impl From<FromKeyArgs> for MasterKeyArgs {
    fn from(args: FromKeyArgs) -> Self {
        MasterKeyArgs {
            kms_key_id: args.from_kms_key_id,
            key_file: args.from_key_file,
            rsa_private_key: args.from_rsa_private_key,
            ..Default::default()
        }
    }
}

impl From<ToKeyArgs> for MasterKeyArgs {
    fn from(args: ToKeyArgs) -> Self {
        MasterKeyArgs {
            kms_key_id: args.to_kms_key_id,
            key_file: args.to_key_file,
            rsa_public_key: args.to_rsa_public_key,
            rsa_private_key: args.to_rsa_private_key,
            oss_rsa_padding: args.to_oss_rsa_padding,
            matdesc: args.to_matdesc,
        }
    }
}

#[derive(Subcommand)]
pub enum CseCommand {
    /// Re-wrap objects' data keys under a new master key: a metadata-only
    /// copy onto itself, content untouched.
    Rewrap(Box<RewrapArgs>),
    /// Write a new random AES-256 master key file (mode 0600).
    GenerateKey { path: PathBuf },
}

#[derive(Args)]
pub struct RewrapArgs {
    /// s3://bucket/key, or s3://bucket/prefix with --recursive.
    target: String,
    /// Every client-side encrypted object under the prefix.
    #[arg(long)]
    recursive: bool,
    #[command(flatten)]
    from: FromKeyArgs,
    #[command(flatten)]
    to: ToKeyArgs,
    #[command(flatten)]
    connect: ConnectArgs,
}

pub async fn run(command: CseCommand) -> Result<(), String> {
    match command {
        CseCommand::GenerateKey { path } => {
            // A missing directory (`~/.coffer/`) is made private (0700), as the key file is;
            // an existing one is left as it is.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                && !dir.exists()
            {
                coffer_files::ensure_private_dir(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            coffer_cse::generate_key_file(&path).map_err(|e| e.to_string())?;
            eprintln!("wrote a new AES-256 master key to {}", path.display());
            Ok(())
        }
        CseCommand::Rewrap(args) => {
            let RewrapArgs {
                target,
                recursive,
                from,
                to,
                connect,
            } = *args;
            let client = Arc::new(client(connect)?);
            let old_keys = MasterKeyArgs::from(from).keys(&client)?;
            if old_keys.is_empty() {
                return Err("rewrap needs the current master key: --from-kms-key-id, --from-key-file or --from-rsa-private-key".into());
            }
            let new_key = MasterKeyArgs::from(to).writing_key(&client).map_err(|_| {
                "rewrap needs exactly one new master key: --to-kms-key-id, --to-key-file or --to-rsa-public-key".to_owned()
            })?;
            let url = ObjectUrl::parse(&target)?;
            let keys: Vec<String> = if recursive {
                objects::list_objects(&client, &url.bucket, &url.key)
                    .await
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|o| o.key)
                    .collect()
            } else {
                vec![url.key.clone()]
            };
            let (mut rewrapped, mut failed) = (0, 0);
            for key in &keys {
                let location = format!("s3://{}/{key}", url.bucket);
                match rewrap_one(&client, &url.bucket, key, &old_keys, &new_key).await {
                    Ok(true) => {
                        rewrapped += 1;
                        eprintln!("rewrapped {location}");
                    }
                    Ok(false) if recursive => {
                        eprintln!("skipped {location}: not client-side encrypted")
                    }
                    Ok(false) => return Err(format!("{location} is not client-side encrypted")),
                    // One bad object must not stop a prefix: report it, go on.
                    Err(message) if recursive => {
                        eprintln!("coffer: {message}");
                        failed += 1;
                    }
                    Err(message) => return Err(message),
                }
            }
            println!("rewrapped {rewrapped} object(s)");
            if failed > 0 {
                return Err(format!("{failed} object(s) could not be rewrapped"));
            }
            Ok(())
        }
    }
}

/// Rewraps one object; `false` if it carries no client-side encryption.
async fn rewrap_one(
    client: &SignedClient,
    bucket: &str,
    key: &str,
    old_keys: &[MasterKey],
    new_key: &MasterKey,
) -> Result<bool, String> {
    let location = format!("s3://{bucket}/{key}");
    let head = objects::head_object(client, bucket, key)
        .await
        .map_err(|e| format!("{location}: {e}"))?;
    if Format::detect(&head.metadata).is_none() {
        return Ok(false);
    }
    let metadata = coffer_cse::rewrap(&head.metadata, old_keys, new_key)
        .await
        .map_err(|e| format!("{location}: {e}"))?;
    let source = CopySource {
        bucket,
        key,
        if_match: Some(&head.etag),
    };
    let replacement = NewObject {
        metadata,
        content_type: head.content_type.clone(),
    };
    let etag = objects::copy_object(
        client,
        &source,
        (bucket, key),
        MetadataDirective::Replace(replacement),
    )
    .await
    .map_err(|e| format!("{location}: rewrap copy failed: {e}"))?;
    // The content must be exactly what it was: same size, and the same MD5
    // ETag for single-part objects (a multipart ETag is recomputed by the
    // copy, which stores a single part).
    let after = objects::head_object(client, bucket, key)
        .await
        .map_err(|e| format!("{location}: {e}"))?;
    let single_part = !head.etag.contains('-');
    if after.size != head.size
        || (single_part && etag.trim_matches('"') != head.etag.trim_matches('"'))
    {
        return Err(format!(
            "{location}: the content changed during rewrap (ETag {} -> {etag}, {} -> {} bytes)",
            head.etag, head.size, after.size
        ));
    }
    Ok(true)
}
