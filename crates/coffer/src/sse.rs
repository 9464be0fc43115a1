//! `coffer sse keys|rotate-key|rewrap`: the service master key behind
//! SSE-S3/SSE-OSS, administered through the running server.

use clap::Subcommand;
use coffer_client::admin;

use crate::connect::{ConnectArgs, client};

#[derive(Subcommand)]
pub enum SseCommand {
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
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

pub async fn run(command: SseCommand) -> Result<(), String> {
    let result = match command {
        SseCommand::Keys { connect } => admin::service_keys(&client(connect)?).await,
        SseCommand::RotateKey { connect } => admin::rotate_service_key(&client(connect)?).await,
        SseCommand::Rewrap { connect } => admin::rewrap_objects(&client(connect)?).await,
    }
    .map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&result).map_err(|e| e.to_string())?
    );
    Ok(())
}
