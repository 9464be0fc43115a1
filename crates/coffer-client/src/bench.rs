//! `coffer bench`: a load generator for any S3 endpoint (Coffer or a peer),
//! since Python clients cannot load a server on a small machine.
//!
//! Each phase runs `concurrency` workers for a fixed time after a warm-up,
//! counts every error (never drops one), verifies every GET byte for byte
//! against the content it PUT, and reports op/s, MB/s and latency
//! percentiles. Requests use SigV4 with `UNSIGNED-PAYLOAD`, path style.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::transport::{ClientError, SignedClient};

/// What a phase does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Put,
    Get,
    /// Half GETs of existing objects, half PUTs.
    Mixed,
}

/// The server-side encryption each PUT (and, for SSE-C, GET) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseMode {
    None,
    Aes256,
    Sm4,
    Kms,
    KmsBucketKey,
    CustomerKey,
}

impl SseMode {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "none" => SseMode::None,
            "AES256" => SseMode::Aes256,
            "SM4" => SseMode::Sm4,
            "aws:kms" => SseMode::Kms,
            "aws:kms+bucket-key" => SseMode::KmsBucketKey,
            "SSE-C" => SseMode::CustomerKey,
            _ => return None,
        })
    }

    fn put_headers(self, headers: &mut HeaderMap) {
        let mut set = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        match self {
            SseMode::None => {}
            SseMode::Aes256 => set("x-amz-server-side-encryption", "AES256"),
            SseMode::Sm4 => set("x-amz-server-side-encryption", "SM4"),
            SseMode::Kms => set("x-amz-server-side-encryption", "aws:kms"),
            SseMode::KmsBucketKey => {
                set("x-amz-server-side-encryption", "aws:kms");
                set("x-amz-server-side-encryption-bucket-key-enabled", "true");
            }
            SseMode::CustomerKey => customer_key_headers(headers),
        }
    }
}

/// A fixed benchmark key: SSE-C needs the same key on PUT and GET.
fn customer_key_headers(headers: &mut HeaderMap) {
    use md5::{Digest, Md5};
    let key = [0x42u8; 32];
    for (name, value) in [
        (
            "x-amz-server-side-encryption-customer-algorithm",
            "AES256".to_owned(),
        ),
        (
            "x-amz-server-side-encryption-customer-key",
            BASE64.encode(key),
        ),
        (
            "x-amz-server-side-encryption-customer-key-md5",
            BASE64.encode(Md5::digest(key)),
        ),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub bucket: String,
    pub object_size: usize,
    pub concurrency: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub workload: Workload,
    pub sse: SseMode,
    /// Distinct objects a GET phase reads (written first).
    pub objects: usize,
}

/// One phase's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub phase: String,
    pub sse: String,
    pub object_size: usize,
    pub concurrency: usize,
    pub ops: u64,
    pub errors: u64,
    pub seconds: f64,
    pub ops_per_second: f64,
    pub megabytes_per_second: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p90: f64,
    pub latency_ms_p99: f64,
    /// The first error seen, to say why errors happened.
    pub first_error: Option<String>,
}

/// Deterministic content of object `index`: cheap to make and to check.
fn content(index: u64, size: usize) -> Vec<u8> {
    let seed = index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..size)
        .map(|i| ((i as u64).wrapping_mul(31).wrapping_add(seed >> 3) % 251) as u8)
        .collect()
}

fn object_path(bucket: &str, index: u64) -> String {
    format!("/{bucket}/coffer-bench/{index:012}")
}

struct Recorder {
    latencies: Mutex<Vec<Duration>>,
    ops: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Recorder {
    fn new() -> Self {
        Self {
            latencies: Mutex::new(Vec::new()),
            ops: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
        }
    }

    async fn record(&self, outcome: Result<(), String>, took: Duration) {
        match outcome {
            Ok(()) => {
                self.ops.fetch_add(1, Ordering::Relaxed);
                self.latencies.lock().await.push(took);
            }
            Err(message) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.first_error.lock().await.get_or_insert(message);
            }
        }
    }
}

async fn put(client: &SignedClient, cfg: &BenchConfig, index: u64) -> Result<(), String> {
    let mut headers = HeaderMap::new();
    cfg.sse.put_headers(&mut headers);
    let response = client
        .request(
            Method::PUT,
            &object_path(&cfg.bucket, index),
            headers,
            content(index, cfg.object_size),
            false,
        )
        .await
        .map_err(|e| e.to_string())?;
    if response.status.is_success() {
        Ok(())
    } else {
        Err(format!(
            "PUT {}: {}",
            response.status,
            response.error_message()
        ))
    }
}

async fn get(client: &SignedClient, cfg: &BenchConfig, index: u64) -> Result<(), String> {
    let mut headers = HeaderMap::new();
    if cfg.sse == SseMode::CustomerKey {
        customer_key_headers(&mut headers);
    }
    let response = client
        .request(
            Method::GET,
            &object_path(&cfg.bucket, index),
            headers,
            Vec::new(),
            false,
        )
        .await
        .map_err(|e| e.to_string())?;
    if !response.status.is_success() {
        return Err(format!(
            "GET {}: {}",
            response.status,
            response.error_message()
        ));
    }
    if response.body.as_ref() != content(index, cfg.object_size).as_slice() {
        return Err(format!(
            "GET object {index}: content differs from what was PUT"
        ));
    }
    Ok(())
}

/// Runs one timed phase: `op(worker, n)` until the time is up.
async fn phase<F, Fut>(name: &str, cfg: &BenchConfig, op: F) -> PhaseReport
where
    F: Fn(u64, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let recorder = Arc::new(Recorder::new());
    let op = Arc::new(op);
    let started = Instant::now();
    let measure_from = started + cfg.warmup;
    let end = measure_from + cfg.duration;
    let mut workers = Vec::new();
    for worker in 0..cfg.concurrency as u64 {
        let (recorder, op) = (recorder.clone(), op.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < end {
                let t = Instant::now();
                let outcome = op(worker, n).await;
                n += 1;
                // Warm-up requests prime connections and caches; not counted.
                if t >= measure_from {
                    recorder.record(outcome, t.elapsed()).await;
                }
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    let seconds = cfg.duration.as_secs_f64();
    let mut latencies = recorder.latencies.lock().await.clone();
    latencies.sort_unstable();
    let percentile = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let at = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[at].as_secs_f64() * 1000.0
    };
    let ops = recorder.ops.load(Ordering::Relaxed);
    PhaseReport {
        phase: name.to_owned(),
        sse: format!("{:?}", cfg.sse),
        object_size: cfg.object_size,
        concurrency: cfg.concurrency,
        ops,
        errors: recorder.errors.load(Ordering::Relaxed),
        seconds,
        ops_per_second: ops as f64 / seconds,
        megabytes_per_second: ops as f64 * cfg.object_size as f64 / seconds / 1e6,
        latency_ms_p50: percentile(0.50),
        latency_ms_p90: percentile(0.90),
        latency_ms_p99: percentile(0.99),
        first_error: recorder.first_error.lock().await.clone(),
    }
}

/// Runs the configured workload against `client`'s endpoint.
pub async fn run(
    client: Arc<SignedClient>,
    cfg: BenchConfig,
) -> Result<Vec<PhaseReport>, ClientError> {
    let created = client
        .request(
            Method::PUT,
            &format!("/{}", cfg.bucket),
            HeaderMap::new(),
            Vec::new(),
            true,
        )
        .await?;
    if !created.status.is_success() && created.status.as_u16() != 409 {
        return Err(ClientError::Server {
            status: created.status,
            message: created.error_message(),
        });
    }
    let cfg = Arc::new(cfg);
    let stride = 1u64 << 32;
    let mut reports = Vec::new();
    if cfg.workload == Workload::Put {
        let (c, k) = (client.clone(), cfg.clone());
        reports.push(
            phase("put", &cfg, move |worker, n| {
                let (c, k) = (c.clone(), k.clone());
                async move { put(&c, &k, worker * stride + n).await }
            })
            .await,
        );
        return Ok(reports);
    }
    // GET and mixed phases read a fixed set of objects written first.
    let objects = cfg.objects.max(1) as u64;
    for index in 0..objects {
        put(&client, &cfg, index)
            .await
            .map_err(|message| ClientError::BadResponse(format!("preparing objects: {message}")))?;
    }
    let (c, k) = (client.clone(), cfg.clone());
    let mixed = cfg.workload == Workload::Mixed;
    reports.push(
        phase(
            if mixed { "mixed" } else { "get" },
            &cfg,
            move |worker, n| {
                let (c, k) = (c.clone(), k.clone());
                async move {
                    if mixed && n % 2 == 1 {
                        put(&c, &k, objects + worker * stride + n).await
                    } else {
                        get(&c, &k, (worker + n * 7919) % objects).await
                    }
                }
            },
        )
        .await,
    );
    Ok(reports)
}

/// Parses sizes like `4096`, `4KiB`, `1MiB`, `64MiB`, `1GiB`.
pub fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: usize = digits.parse().ok()?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4KiB"), Some(4096));
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("4XB"), None);
    }

    #[test]
    fn content_is_deterministic_and_distinct() {
        assert_eq!(content(7, 1000), content(7, 1000));
        assert_ne!(content(7, 1000), content(8, 1000));
    }
}
