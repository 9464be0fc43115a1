//! `coffer user add|list|remove`: the admin API through signed requests.

use clap::{Args, Subcommand};
use coffer_auth::Secret;
use coffer_client::admin::{self, NewUser};
use coffer_client::{Endpoint, SignedClient};

#[derive(Args, Clone)]
pub struct ConnectArgs {
    /// The server's URL.
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL",
        default_value = "http://127.0.0.1:9000"
    )]
    endpoint_url: String,
    /// Root access key.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    access_key_id: String,
    /// Root secret key.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: String,
    /// Region to sign for.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user; prints its credentials as JSON (keys generated when not given).
    Add {
        name: String,
        #[arg(long)]
        access_key: Option<String>,
        #[arg(long)]
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

pub fn client(connect: ConnectArgs) -> Result<SignedClient, String> {
    SignedClient::new(Endpoint {
        url: connect.endpoint_url,
        access_key: connect.access_key_id,
        secret_key: Secret::new(connect.secret_access_key),
        region: connect.region,
    })
    .map_err(|e| e.to_string())
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
