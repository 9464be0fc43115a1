//! `coffer`: the object server and its client commands in one binary.
#![forbid(unsafe_code)]

mod backends;
mod bench;
mod config;
mod connect;
mod credentials;
mod cse_cli;
mod host_memory;
mod inspect;
mod kms;
mod kms_backend;
mod master_keys;
mod migrate;
mod object_url;
mod objects_cli;
mod server;
mod sse;
mod user;

use std::process::ExitCode;

/// jemalloc, not glibc's allocator: a small request allocates and frees many short-lived
/// buffers on tokio's workers and the store's blocking threads, where glibc's arenas spent
/// ≈ 15 % of a 4 KiB PUT in `malloc`, `free` and `malloc_consolidate`. Measured, 4 KiB PUTs
/// at 32 ran 1.11–1.22× the op/s (docs/performance.md, "Session 10").
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use clap::{CommandFactory, Parser, Subcommand};

/// `coffer --version`: the release, the commit it was built from and the build date (UTC),
/// stamped by build.rs.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("COFFER_GIT_COMMIT"),
    ", built ",
    env!("COFFER_BUILD_DATE"),
    " UTC)"
);

#[derive(Parser)]
#[command(
    name = "coffer",
    version = VERSION,
    about = "An S3-compatible object store with encryption done right"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the object server (embedded defaults: ./coffer-data, 127.0.0.1:9000).
    Server(Box<config::ServerArgs>),
    /// Manage users (root credentials, found as for every client command: docs/cli.md).
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
    /// Print a shell completion script: `coffer completions bash > /etc/bash_completion.d/coffer`.
    Completions {
        /// bash, zsh, fish (also elvish, powershell).
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `coffer man > coffer.1; man -l coffer.1`.
    Man {
        /// Write coffer.1 and a page per subcommand (coffer-server.1, …) into DIR instead.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<std::path::PathBuf>,
    },
}

/// Writes the completion script for `shell`, generated from the command definition.
fn completions(shell: clap_complete::Shell) -> Result<(), String> {
    // Generated into memory first: clap_complete panics on a failed write (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "coffer", &mut script);
    print_generated(&script)
}

/// Writes the man page, generated from the command definition: the options and a
/// SUBCOMMANDS section naming each command; with `out_dir`, a page per subcommand too.
fn man_page(out_dir: Option<&std::path::Path>) -> Result<(), String> {
    let command = Cli::command();
    if let Some(dir) = out_dir {
        return std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(command, dir))
            .map_err(|e| format!("cannot write man pages to {}: {e}", dir.display()));
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .date(env!("COFFER_BUILD_DATE"))
        .source(format!("coffer {}", env!("CARGO_PKG_VERSION")))
        .render(&mut page)
        .map_err(|e| format!("cannot render the man page: {e}"))?;
    print_generated(&page)
}

fn print_generated(text: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut out = objects_cli::PipeOut::stdout();
    out.write_all(text)
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Generated text, no runtime needed.
    let generated = match cli.command {
        Command::Completions { shell } => Some(completions(shell)),
        Command::Man { ref out_dir } => Some(man_page(out_dir.as_deref())),
        _ => None,
    };
    if let Some(result) = generated {
        return finish(result);
    }
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
            Command::Server(args) => server::run(*args).await,
            Command::User { command } => user::run(command).await,
            Command::Sse { command } => sse::run(command).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Kms { command } => kms::run(command).await,
            Command::Objects(command) => objects_cli::run(command).await,
            Command::Cse { command } => cse_cli::run(command).await,
            Command::Inspect { command } => inspect::run(command),
            Command::Admin { command } => migrate::run(command).await,
            Command::Completions { .. } | Command::Man { .. } => Ok(()),
        }
    });
    finish(result)
}

fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("coffer: {message}");
            ExitCode::FAILURE
        }
    }
}
