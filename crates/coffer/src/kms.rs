//! `coffer kms …`: key administration through the server's KMS API (the
//! same AWS KMS JSON protocol `aws kms` speaks); `audit` and `usage` through
//! the admin API. Answers print as JSON (`audit`: one line per entry).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Subcommand;
use coffer_client::admin::{self, AuditQuery};
use coffer_client::kms;
use coffer_client::transport::SignedClient;
use coffer_kms::RootKey;
use coffer_kms::embedded::backup;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::connect::{ConnectArgs, client};

#[derive(Subcommand)]
pub enum KmsCommand {
    /// Create a customer master key.
    CreateKey {
        #[arg(long, default_value = "")]
        description: String,
        /// SYMMETRIC_DEFAULT or SM4.
        #[arg(long, default_value = "SYMMETRIC_DEFAULT")]
        key_spec: String,
        /// AWS_KMS (generated) or EXTERNAL (BYOK: import material next).
        #[arg(long, default_value = "AWS_KMS")]
        origin: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Show a key (id, ARN or alias).
    DescribeKey {
        key: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// List keys.
    ListKeys {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// List aliases.
    ListAliases {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Point `alias/NAME` at a key.
    CreateAlias {
        alias: String,
        key: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Remove an alias.
    DeleteAlias {
        alias: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Allow a key to be used again.
    EnableKey {
        key: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Stop all use of a key (objects under it become unreadable until enabled).
    DisableKey {
        key: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Destroy a key after a waiting period of 7 to 30 days. Refused while the key still
    /// protects objects (their count is printed), unless --force.
    ScheduleKeyDeletion {
        key: String,
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Schedule even though objects are still sealed under the key (they become
        /// unreadable for good when it is deleted).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Which objects a key protects: object versions and bytes per key version and bucket
    /// (root only; walks every object version's metadata on the server).
    Usage {
        key: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// The KMS audit log, oldest first, one JSON object per line (root only).
    Audit {
        /// Only calls on this key (id, ARN or alias).
        #[arg(long)]
        key: Option<String>,
        /// Only this operation (Decrypt, GenerateDataKey, DisableKey, …).
        #[arg(long)]
        operation: Option<String>,
        /// Only this principal (a user name, root, or coffer for SSE-KMS by the server).
        #[arg(long)]
        principal: Option<String>,
        /// ok, error (any failure), or an exception name such as DisabledException.
        #[arg(long)]
        outcome: Option<String>,
        /// From this RFC 3339 time on (2026-01-31T12:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Up to this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// Print at most N lines.
        #[arg(long, default_value_t = 100)]
        limit: u64,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Cancel a scheduled deletion (the key stays disabled).
    CancelKeyDeletion {
        key: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Add a new material version now; old versions keep decrypting.
    RotateKey {
        key: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Rotate automatically every DAYS days (90 to 2560).
    EnableKeyRotation {
        key: String,
        #[arg(long, default_value_t = 365)]
        days: u32,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// List a key's rotations.
    ListKeyRotations {
        key: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Write the data dir's whole keystore and service key ring to FILE, sealed to an offline
    /// RSA recovery key (docs/kms.md "Backup and restore"). Reads the files; the server may run.
    Backup {
        #[command(flatten)]
        keys: LocalKeys,
        /// The recovery key's public half (PEM `PUBLIC KEY`, RSA, 2048 bits or more).
        #[arg(long, value_name = "RSA-PUBLIC-PEM")]
        recipient: PathBuf,
        /// Where to write the backup (created; never replaced).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Put a backup back into a stopped server's data dir, resealed under its root key.
    Restore {
        #[command(flatten)]
        keys: LocalKeys,
        /// The recovery key's private half (PEM `PRIVATE KEY`).
        #[arg(long, value_name = "PEM")]
        identity: PathBuf,
        /// Restore onto a keystore or service key ring that is not empty: the backup's keys,
        /// aliases and key ring replace the stored ones; keys made since are kept.
        #[arg(long)]
        force: bool,
        /// The backup file.
        file: PathBuf,
    },
}

/// A data dir and what opens its root key, for the commands that work on its files.
#[derive(clap::Args)]
pub struct LocalKeys {
    /// The server's data dir.
    #[arg(long, default_value = "./coffer-data")]
    data_dir: PathBuf,
    /// The root passphrase, if the server uses one (else `COFFER_ROOT_PASSPHRASE`, else the
    /// data dir's root.key).
    #[arg(long)]
    root_passphrase_file: Option<PathBuf>,
}

impl LocalKeys {
    /// The data dir's root key: from the passphrase (with the data dir's salt) when one is
    /// given, else `root.key`, which `create` makes when it is missing (a restore onto a data
    /// dir whose root key was lost).
    fn root_key(&self, create: bool) -> Result<RootKey, String> {
        let passphrase = match (
            &self.root_passphrase_file,
            std::env::var("COFFER_ROOT_PASSPHRASE"),
        ) {
            (Some(path), _) => Some(Zeroizing::new(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                    .trim_end_matches(['\n', '\r'])
                    .to_owned(),
            )),
            (None, Ok(text)) if !text.is_empty() => Some(Zeroizing::new(text)),
            _ => None,
        };
        if let Some(passphrase) = passphrase {
            return RootKey::from_passphrase(&self.data_dir, passphrase.as_bytes())
                .map(|(key, _)| key)
                .map_err(|e| e.to_string());
        }
        let path = RootKey::path(&self.data_dir);
        if !create && !path.is_file() {
            return Err(format!(
                "{} is missing: pass --root-passphrase-file if the server uses a passphrase",
                path.display()
            ));
        }
        RootKey::load_or_create(&self.data_dir)
            .map(|(key, _)| key)
            .map_err(|e| e.to_string())
    }
}

fn read_pem(path: &Path, label: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
    );
    backup::pem_der(&text, label).map_err(|e| format!("{}: {e}", path.display()))
}

fn print_summary(done: &str, summary: backup::Summary) -> Result<(), String> {
    print_pretty(&json!({
        "done": done,
        "keys": summary.keys,
        "aliases": summary.aliases,
        "service_key_versions": summary.service_key_versions,
    }))
}

/// `coffer kms backup` and `restore`: blocking file work.
fn run_local(command: KmsCommand) -> Result<(), String> {
    match command {
        KmsCommand::Backup {
            keys,
            recipient,
            out,
        } => {
            let root = Arc::new(keys.root_key(false)?);
            let recipient = read_pem(&recipient, "PUBLIC KEY")?;
            let (file, summary) =
                backup::backup(&keys.data_dir, root, &recipient).map_err(|e| e.to_string())?;
            coffer_files::create_new(&out, &file)
                .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
            print_summary("backup", summary)
        }
        KmsCommand::Restore {
            keys,
            identity,
            force,
            file,
        } => {
            // Hold the data dir as a server does, so that none runs (or starts) while its
            // keystore is replaced under it.
            let _held = coffer_store::open_embedded(&keys.data_dir).map_err(|e| {
                if e.is_locked_by_another_process() {
                    format!(
                        "a coffer server holds the data dir {}: stop it before restoring",
                        keys.data_dir.display()
                    )
                } else {
                    e.to_string()
                }
            })?;
            let root = Arc::new(keys.root_key(true)?);
            let identity = read_pem(&identity, "PRIVATE KEY")?;
            let bytes =
                std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let summary = backup::restore(&keys.data_dir, root, &bytes, &identity, force)
                .map_err(|e| e.to_string())?;
            print_summary("restore", summary)
        }
        _ => Err("not a local KMS command".into()),
    }
}

pub async fn run(command: KmsCommand) -> Result<(), String> {
    let command = match command {
        local @ (KmsCommand::Backup { .. } | KmsCommand::Restore { .. }) => {
            return tokio::task::spawn_blocking(move || run_local(local))
                .await
                .map_err(|e| e.to_string())?;
        }
        KmsCommand::Usage { key, connect } => {
            let usage = admin::kms_usage(&client(connect)?, &key)
                .await
                .map_err(|e| e.to_string())?;
            return print_pretty(&usage);
        }
        KmsCommand::Audit {
            key,
            operation,
            principal,
            outcome,
            since,
            until,
            limit,
            connect,
        } => {
            let query = AuditQuery {
                key: key.as_deref(),
                operation: operation.as_deref(),
                principal: principal.as_deref(),
                outcome: outcome.as_deref(),
                since: since.as_deref(),
                until: until.as_deref(),
                after: 0,
                limit: 0,
            };
            return print_audit(&client(connect)?, query, limit).await;
        }
        KmsCommand::ScheduleKeyDeletion {
            ref key,
            force,
            ref connect,
            ..
        } => {
            warn_of_protected_objects(&client(connect.clone())?, key, force).await?;
            command
        }
        other => other,
    };
    let (operation, request, connect): (&str, Value, ConnectArgs) = match command {
        KmsCommand::CreateKey {
            description,
            key_spec,
            origin,
            connect,
        } => (
            "CreateKey",
            json!({"Description": description, "KeySpec": key_spec, "KeyUsage": "ENCRYPT_DECRYPT", "Origin": origin}),
            connect,
        ),
        KmsCommand::DescribeKey { key, connect } => ("DescribeKey", json!({"KeyId": key}), connect),
        KmsCommand::ListKeys { connect } => ("ListKeys", json!({}), connect),
        KmsCommand::ListAliases { connect } => ("ListAliases", json!({}), connect),
        KmsCommand::CreateAlias {
            alias,
            key,
            connect,
        } => (
            "CreateAlias",
            json!({"AliasName": alias, "TargetKeyId": key}),
            connect,
        ),
        KmsCommand::DeleteAlias { alias, connect } => {
            ("DeleteAlias", json!({"AliasName": alias}), connect)
        }
        KmsCommand::EnableKey { key, connect } => ("EnableKey", json!({"KeyId": key}), connect),
        KmsCommand::DisableKey { key, connect } => ("DisableKey", json!({"KeyId": key}), connect),
        KmsCommand::ScheduleKeyDeletion {
            key, days, connect, ..
        } => (
            "ScheduleKeyDeletion",
            json!({"KeyId": key, "PendingWindowInDays": days}),
            connect,
        ),
        KmsCommand::CancelKeyDeletion { key, connect } => {
            ("CancelKeyDeletion", json!({"KeyId": key}), connect)
        }
        KmsCommand::RotateKey { key, connect } => {
            ("RotateKeyOnDemand", json!({"KeyId": key}), connect)
        }
        KmsCommand::EnableKeyRotation { key, days, connect } => (
            "EnableKeyRotation",
            json!({"KeyId": key, "RotationPeriodInDays": days}),
            connect,
        ),
        KmsCommand::ListKeyRotations { key, connect } => {
            ("ListKeyRotations", json!({"KeyId": key}), connect)
        }
        KmsCommand::Usage { .. }
        | KmsCommand::Audit { .. }
        | KmsCommand::Backup { .. }
        | KmsCommand::Restore { .. } => {
            unreachable!("answered through the admin API or the data dir's files above")
        }
    };
    let answer = kms::call(&client(connect)?, operation, &request)
        .await
        .map_err(|e| e.to_string())?;
    print_pretty(&answer)
}

fn print_pretty(value: &Value) -> Result<(), String> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// Prints matching audit lines, page after page, until `limit` or the end of the log.
async fn print_audit(
    client: &SignedClient,
    mut query: AuditQuery<'_>,
    limit: u64,
) -> Result<(), String> {
    let mut printed = 0u64;
    while printed < limit {
        query.limit = u32::try_from((limit - printed).min(1000)).unwrap_or(1000);
        let page = admin::kms_audit(client, &query)
            .await
            .map_err(|e| e.to_string())?;
        for line in page["lines"].as_array().into_iter().flatten() {
            println!("{line}");
            printed += 1;
        }
        let next = page["next_after"].as_u64().unwrap_or(query.after);
        if page["truncated"] != Value::Bool(true) || next == query.after {
            break;
        }
        query.after = next;
    }
    Ok(())
}

/// Before scheduling a key's deletion: counts the objects it still protects, warns with
/// the count, and refuses without `force` (deleting the key makes them unreadable for good).
async fn warn_of_protected_objects(
    client: &SignedClient,
    key: &str,
    force: bool,
) -> Result<(), String> {
    let usage = match admin::kms_usage(client, key).await {
        Ok(usage) => usage,
        Err(e) if force => {
            eprintln!("warning: could not count the objects under {key} ({e}); going on (--force)");
            return Ok(());
        }
        Err(e) => {
            return Err(format!(
                "could not count the objects under {key} before scheduling its deletion: {e}\n\
                 (pass --force to schedule it anyway)"
            ));
        }
    };
    let objects = usage["objects"].as_u64().unwrap_or(0);
    if objects == 0 {
        return Ok(());
    }
    let buckets = usage["buckets"].as_array().map_or(0, Vec::len);
    let per_version: Vec<String> = usage["key_versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| format!("v{}: {}", v["key_version"], v["objects"]))
        .collect();
    eprintln!(
        "warning: key {key} still protects {objects} object version(s) in {buckets} bucket(s) \
         ({}); once it is deleted they can never be read again (`coffer kms usage {key}` lists them)",
        per_version.join(", ")
    );
    if force {
        Ok(())
    } else {
        Err("deletion not scheduled: pass --force to schedule it anyway".into())
    }
}
