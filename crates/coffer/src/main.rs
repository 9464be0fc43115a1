//! `coffer`: the object server and its client commands in one binary.
#![forbid(unsafe_code)]

mod backends;
mod bench;
mod config;
mod connect;
mod credentials;
mod cse_cli;
mod inspect;
mod kms;
mod master_keys;
mod migrate;
mod object_url;
mod objects_cli;
mod server;
mod sse;
mod user;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "coffer",
    version,
    about = "An S3-compatible object store with encryption done right"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the object server (embedded defaults: ./coffer-data, 127.0.0.1:9000).
    Server(config::ServerArgs),
    /// Manage users (root credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
    User {
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// Key administration through the server's KMS API (root credentials).
    Kms {
        #[command(subcommand)]
        command: kms::KmsCommand,
    },
    /// Load generator for any S3 endpoint: op/s, MB/s, latency percentiles.
    Bench(bench::BenchArgs),
    #[command(flatten)]
    Objects(objects_cli::ObjectCommand),
    /// Client-side encryption: rewrap objects under a new master key, make key files.
    Cse {
        #[command(subcommand)]
        command: cse_cli::CseCommand,
    },
    /// Server-side encryption keys: show, rotate, rewrap (root credentials).
    Sse {
        #[command(subcommand)]
        command: sse::SseCommand,
    },
    /// Offline views of a data dir's metadata (the server must be stopped).
    Inspect {
        #[command(subcommand)]
        command: inspect::InspectCommand,
    },
    /// Offline administration of a stopped store: moving it between backends.
    Admin {
        #[command(subcommand)]
        command: migrate::AdminCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("coffer: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => server::run(args).await,
            Command::User { command } => user::run(command).await,
            Command::Sse { command } => sse::run(command).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Kms { command } => kms::run(command).await,
            Command::Objects(command) => objects_cli::run(command).await,
            Command::Cse { command } => cse_cli::run(command).await,
            Command::Inspect { command } => inspect::run(command),
            Command::Admin { command } => migrate::run(command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("coffer: {message}");
            ExitCode::FAILURE
        }
    }
}
