//! `coffer user add|list|remove|policy`: the admin API through signed requests.

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
    /// Remove a user and its policy (its buckets stay, owned by the removed name).
    Remove {
        name: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Attach, show or detach a user's identity policy (IAM JSON; docs/access-control.md).
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Attach the policy in FILE (`-`: standard input) to user NAME, replacing any other.
    Put {
        name: String,
        file: std::path::PathBuf,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Print user NAME's policy.
    Get {
        name: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Detach user NAME's policy.
    Delete {
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
        UserCommand::Policy(command) => run_policy(command).await?,
    }
    Ok(())
}

async fn run_policy(command: PolicyCommand) -> Result<(), String> {
    match command {
        PolicyCommand::Put {
            name,
            file,
            connect,
        } => {
            let document = if file.as_os_str() == "-" {
                let mut buffer = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buffer)
                    .map_err(|e| format!("reading the policy from standard input: {e}"))?;
                buffer
            } else {
                std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?
            };
            admin::put_user_policy(&client(connect)?, &name, document)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("attached the policy to user {name}");
        }
        PolicyCommand::Get { name, connect } => {
            let document = admin::get_user_policy(&client(connect)?, &name)
                .await
                .map_err(|e| e.to_string())?;
            // Pretty-printed when it is JSON (it always is: the server validated it).
            match serde_json::from_str::<serde_json::Value>(&document) {
                Ok(json) => println!(
                    "{}",
                    serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?
                ),
                Err(_) => println!("{document}"),
            }
        }
        PolicyCommand::Delete { name, connect } => {
            admin::delete_user_policy(&client(connect)?, &name)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("detached the policy of user {name}");
        }
    }
    Ok(())
}
