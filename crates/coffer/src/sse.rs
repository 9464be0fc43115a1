//! `coffer sse status|keys|rotate-key|rewrap`: encryption at rest and the
//! service master key behind SSE-S3/SSE-OSS, administered through the
//! running server.

use clap::Subcommand;
use coffer_client::admin;

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
            seal_plaintext: false,
            connect,
        } => admin::rewrap_objects(&client(connect)?).await,
        SseCommand::Rewrap {
            seal_plaintext: true,
            connect,
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
