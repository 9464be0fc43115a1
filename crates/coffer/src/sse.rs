//! `coffer sse status|keys|rotate-key|rewrap`: encryption at rest and the
//! service master key behind SSE-S3/SSE-OSS, administered through the
//! running server.

use std::io::IsTerminal;

use clap::Subcommand;
use coffer_client::admin;
use coffer_client::transport::SignedClient;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::connect::{ConnectArgs, client};

#[derive(Subcommand)]
pub enum SseCommand {
    /// Show the server's default encryption, the buckets that opted out, and
    /// every object version stored in plaintext (bucket, key, version id, size).
    Status {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Show the service master key's versions and the current one.
    Keys {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Add a new service master key version; new objects use it.
    RotateKey {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Re-wrap every object's data key under the current version
    /// (metadata only; object data is not read or rewritten).
    Rewrap {
        /// Instead of the service key: move every object under an older version of this KMS
        /// key (id, ARN or alias) to its newest version, bucket by bucket, through the KMS.
        /// Resumable: run it again after an interruption; objects already moved are skipped.
        #[arg(long, value_name = "KEY", conflicts_with = "seal_plaintext")]
        kms_key: Option<String>,
        /// First seal every object stored in plaintext, in place: same
        /// version id, ETag, metadata and last-modified time; resumable (run
        /// it again after an interruption), a no-op once nothing is left.
        #[arg(long)]
        seal_plaintext: bool,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

pub async fn run(command: SseCommand) -> Result<(), String> {
    let result = match command {
        SseCommand::Keys { connect } => admin::service_keys(&client(connect)?).await,
        SseCommand::RotateKey { connect } => admin::rotate_service_key(&client(connect)?).await,
        SseCommand::Status { connect } => admin::encryption_status(&client(connect)?).await,
        SseCommand::Rewrap {
            kms_key: Some(key),
            connect,
            ..
        } => return rewrap_kms(&client(connect)?, &key).await,
        SseCommand::Rewrap {
            seal_plaintext: false,
            connect,
            ..
        } => admin::rewrap_objects(&client(connect)?).await,
        SseCommand::Rewrap {
            seal_plaintext: true,
            connect,
            ..
        } => {
            let client = client(connect)?;
            match admin::seal_plaintext(&client).await {
                Ok(sealed) => admin::rewrap_objects(&client)
                    .await
                    .map(|rewrap| serde_json::json!({"seal_plaintext": sealed, "rewrap": rewrap})),
                Err(error) => Err(error),
            }
        }
    }
    .map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&result).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// `coffer sse rewrap --kms-key KEY`: one admin call per bucket, with a progress bar over the
/// buckets on a terminal; prints the totals.
async fn rewrap_kms(client: &SignedClient, key: &str) -> Result<(), String> {
    let buckets = admin::list_buckets_with_owners(client)
        .await
        .map_err(|e| e.to_string())?;
    let bar = if std::io::stderr().is_terminal() {
        let bar =
            ProgressBar::with_draw_target(Some(buckets.len() as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{pos:>5}/{len:5} buckets {wide_bar} {msg}")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let (mut scanned, mut rewrapped) = (0u64, 0u64);
    let mut last = serde_json::Value::Null;
    for bucket in &buckets {
        bar.set_message(bucket.name.clone());
        let report = admin::rewrap_kms_objects(client, key, &bucket.name)
            .await
            .map_err(|e| {
                bar.abandon();
                format!(
                    "bucket {}: {e} (run the command again to carry on: objects already moved \
                     are skipped)",
                    bucket.name
                )
            })?;
        scanned += report["objects_scanned"].as_u64().unwrap_or(0);
        rewrapped += report["objects_rewrapped"].as_u64().unwrap_or(0);
        bar.inc(1);
        last = report;
    }
    bar.finish_and_clear();
    let summary = serde_json::json!({
        "key_id": last["key_id"],
        "key_version": last["key_version"],
        "buckets": buckets.len(),
        "objects_scanned": scanned,
        "objects_rewrapped": rewrapped,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?
    );
    Ok(())
}
