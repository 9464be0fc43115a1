//! `coffer user add|list|remove`: the admin API through signed requests.

use clap::Subcommand;
use coffer_client::admin::{self, NewUser};

use crate::connect::{ConnectArgs, client};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user; prints its credentials as JSON (keys generated when not given).
    Add {
        name: String,
        /// The new user's access key id [default: generated]. Named apart from
        /// --access-key-id, which is the caller's (`--access-key` still works).
        #[arg(long = "new-access-key", alias = "access-key")]
        access_key: Option<String>,
        /// The new user's secret key [default: generated] (`--secret-key` still works).
        #[arg(long = "new-secret-key", alias = "secret-key")]
        secret_key: Option<String>,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// List users as JSON.
    List {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Remove a user (its buckets stay, owned by the removed name).
    Remove {
        name: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

pub async fn run(command: UserCommand) -> Result<(), String> {
    match command {
        UserCommand::Add {
            name,
            access_key,
            secret_key,
            connect,
        } => {
            let client = client(connect)?;
            let user = NewUser {
                name: &name,
                access_key: access_key.as_deref(),
                secret_key: secret_key.as_deref(),
            };
            let created = admin::add_user(&client, &user)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&created).map_err(|e| e.to_string())?
            );
        }
        UserCommand::List { connect } => {
            let users = admin::list_users(&client(connect)?)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&users).map_err(|e| e.to_string())?
            );
        }
        UserCommand::Remove { name, connect } => {
            admin::remove_user(&client(connect)?, &name)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("removed user {name}");
        }
    }
    Ok(())
}
