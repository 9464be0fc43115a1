//! `coffer kms …`: key administration through the server's KMS API (the
//! same AWS KMS JSON protocol `aws kms` speaks). Answers print as JSON.

use clap::Subcommand;
use coffer_client::kms;
use serde_json::{Value, json};

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
    /// Destroy a key after a waiting period of 7 to 30 days.
    ScheduleKeyDeletion {
        key: String,
        #[arg(long, default_value_t = 30)]
        days: u32,
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
}

pub async fn run(command: KmsCommand) -> Result<(), String> {
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
        KmsCommand::ScheduleKeyDeletion { key, days, connect } => (
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
    };
    let answer = kms::call(&client(connect)?, operation, &request)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&answer).map_err(|e| e.to_string())?
    );
    Ok(())
}
