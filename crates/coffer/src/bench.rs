//! `coffer bench`: load against any S3 endpoint (see coffer_client::bench).

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use coffer_client::bench::{self, BenchConfig, SseMode, Workload};

use crate::connect::{ConnectArgs, client};

#[derive(Args)]
pub struct BenchArgs {
    /// Bucket to use (created if missing).
    #[arg(long, default_value = "coffer-bench")]
    bucket: String,
    /// Object size: bytes, or with KiB/MiB/GiB.
    #[arg(long, default_value = "1MiB")]
    size: String,
    /// Part size of the multipart workload.
    #[arg(long, default_value = "8MiB")]
    part_size: String,
    /// Requests (multipart: whole uploads) in flight.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Measured seconds per phase (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds, not counted.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// put, get, mixed or multipart.
    #[arg(long, default_value = "put")]
    workload: String,
    /// none (no header: the server's default applies, AES256 on Coffer),
    /// plaintext (Coffer: the bucket's encryption rule set to `none`), AES256,
    /// SM4, aws:kms, aws:kms+bucket-key or SSE-C.
    #[arg(long, default_value = "none")]
    sse: String,
    /// Objects a get/mixed phase reads (written first).
    #[arg(long, default_value_t = 64)]
    objects: usize,
    /// The server's process id: report its peak resident memory and its CPU
    /// seconds per GiB moved for each phase (read from /proc/<pid>/status and
    /// /proc/<pid>/stat, so the server must run on this host).
    // This text is clap's help, printed verbatim: `<pid>` is not HTML.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

pub async fn run(args: BenchArgs) -> Result<(), String> {
    let object_size = bench::parse_size(&args.size).ok_or("--size: expected e.g. 4KiB, 1MiB")?;
    let workload = match args.workload.as_str() {
        "put" => Workload::Put,
        "get" => Workload::Get,
        "mixed" => Workload::Mixed,
        "multipart" => Workload::Multipart,
        other => {
            return Err(format!(
                "--workload: unknown {other:?} (put, get, mixed, multipart)"
            ));
        }
    };
    let part_size = bench::parse_size(&args.part_size)
        .filter(|&n| n > 0)
        .ok_or("--part-size: expected e.g. 8MiB")?;
    let sse = SseMode::parse(&args.sse).ok_or_else(|| {
        format!(
            "--sse: unknown {:?} (none, plaintext, AES256, SM4, aws:kms, aws:kms+bucket-key, SSE-C)",
            args.sse
        )
    })?;
    if !(args.duration > 0.0 && args.warmup >= 0.0 && args.concurrency > 0) {
        return Err("--duration and --concurrency must be positive".into());
    }
    let config = BenchConfig {
        bucket: args.bucket,
        object_size,
        part_size,
        concurrency: args.concurrency,
        duration: Duration::from_secs_f64(args.duration),
        warmup: Duration::from_secs_f64(args.warmup),
        workload,
        sse,
        objects: args.objects,
        server_pid: args.server_pid,
    };
    let client = client(args.connect)?;
    // S3 servers refuse SSE-C over plain HTTP (the key would cross the network in clear).
    let plain_http_sse_c = sse == SseMode::CustomerKey && client.url().starts_with("http://");
    let reports = bench::run(Arc::new(client), config)
        .await
        .map_err(|e| e.to_string())?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reports).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "{:<9} {:<14} {:>10} {:>4} {:>8} {:>7} {:>10} {:>9} {:>8} {:>8} {:>8} {:>8} {:>10} {:>11}",
            "phase",
            "sse",
            "size",
            "conc",
            "ops",
            "errors",
            "op/s",
            "MB/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "RSS MiB",
            "CPU s/GiB",
            "user s/GiB"
        );
        for r in &reports {
            println!(
                "{:<9} {:<14} {:>10} {:>4} {:>8} {:>7} {:>10.1} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>10} {:>11}",
                r.phase,
                r.sse,
                r.object_size,
                r.concurrency,
                r.ops,
                r.errors,
                r.ops_per_second,
                r.megabytes_per_second,
                r.latency_ms_p50,
                r.latency_ms_p90,
                r.latency_ms_p99,
                r.server_rss_peak_mib
                    .map_or("-".to_owned(), |mib| format!("{mib:.0}")),
                r.server_cpu_seconds_per_gib
                    .map_or("-".to_owned(), |cpu| format!("{cpu:.2}")),
                r.server_user_seconds_per_gib
                    .map_or("-".to_owned(), |cpu| format!("{cpu:.2}"))
            );
            if let Some(error) = &r.first_error {
                println!("  first error: {error}");
            }
        }
    }
    if reports.iter().any(|r| r.errors > 0) {
        if plain_http_sse_c {
            return Err(
                "some requests failed: SSE-C needs TLS, and this endpoint is plain \
                        HTTP. Use the server's https:// endpoint (start it with --tls-listen; \
                        see docs/tls.md) and pass its CA with --ca-bundle"
                    .into(),
            );
        }
        return Err("some requests failed (see the errors column)".into());
    }
    Ok(())
}
