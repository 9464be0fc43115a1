//! `coffer bench`: a load generator for any S3 endpoint (Coffer or a peer),
//! since Python clients cannot load a server on a small machine.
//!
//! Each phase runs `concurrency` workers for a fixed time after a warm-up,
//! counts every error (never drops one), verifies every GET byte for byte
//! against the content it PUT, and reports op/s, MB/s and latency
//! percentiles; given the server's pid, also the server's peak resident
//! memory during the phase and the CPU time it spent per GiB moved (the
//! figure to compare across runs: unlike MB/s it hardly moves when other
//! work shares the machine). Requests use SigV4 with `UNSIGNED-PAYLOAD`,
//! path style.
//!
//! Object contents are windows of one pseudo-random `Pattern`, so that
//! making and checking them costs the client a slice and a `memcmp`: on a
//! small machine the client shares the cores with the server it measures.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use http_body_util::BodyExt;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::transport::{ClientError, ClientResponse, SignedClient};

mod server_usage;
use server_usage::{clock_ticks_per_second, sample_memory, server_cpu_ticks, server_memory};

/// What a phase does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// PUTs of new objects.
    Put,
    /// GETs of objects written before the phase, each checked byte for byte.
    Get,
    /// Half GETs of existing objects, half PUTs.
    Mixed,
    /// Whole multipart uploads: initiate, the parts one after another, complete.
    Multipart,
}

/// The server-side encryption each PUT (and, for SSE-C, GET) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseMode {
    /// No encryption header: the bucket's or the server's default applies
    /// (on Coffer, AES256 unless configured otherwise).
    None,
    /// Coffer's plaintext objects: no header, and the bucket's default
    /// encryption rule set to `none` (a Coffer extension) before the phase.
    Plaintext,
    /// SSE-S3 (`AES256`).
    Aes256,
    /// Server-side encryption with SM4 (`SM4`).
    Sm4,
    /// SSE-KMS with the default key (`aws:kms`).
    Kms,
    /// SSE-KMS with an S3 Bucket Key.
    KmsBucketKey,
    /// SSE-C: a fixed customer key sent with every PUT and GET.
    CustomerKey,
}

impl SseMode {
    /// Reads the `--sse` spelling: `none`, `plaintext`, `AES256`, `SM4`,
    /// `aws:kms`, `aws:kms+bucket-key` or `SSE-C`.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "none" => SseMode::None,
            "plaintext" => SseMode::Plaintext,
            "AES256" => SseMode::Aes256,
            "SM4" => SseMode::Sm4,
            "aws:kms" => SseMode::Kms,
            "aws:kms+bucket-key" => SseMode::KmsBucketKey,
            "SSE-C" => SseMode::CustomerKey,
            _ => return None,
        })
    }

    /// Headers of a PUT or of an InitiateMultipartUpload.
    fn put_headers(self, headers: &mut HeaderMap) {
        let mut set = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        match self {
            SseMode::None | SseMode::Plaintext => {}
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

    /// Headers of a GET or an UploadPart: only SSE-C repeats its key.
    fn read_headers(self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if self == SseMode::CustomerKey {
            customer_key_headers(&mut headers);
        }
        headers
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

/// What to measure, and how hard.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The bucket to work in (created if absent).
    pub bucket: String,
    /// Bytes per object.
    pub object_size: usize,
    /// Part size of the multipart workload (the last part may be smaller).
    pub part_size: usize,
    /// Workers issuing requests at once.
    pub concurrency: usize,
    /// How long the counted part of a phase runs.
    pub duration: Duration,
    /// How long workers run before counting starts.
    pub warmup: Duration,
    /// What each request does.
    pub workload: Workload,
    /// The server-side encryption asked for.
    pub sse: SseMode,
    /// Distinct objects a GET phase reads (written first).
    pub objects: usize,
    /// The server's process, to sample its resident memory and CPU time
    /// (Linux `/proc`).
    pub server_pid: Option<u32>,
}

/// One phase's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// The workload's name.
    pub phase: String,
    /// The server-side encryption asked for.
    pub sse: String,
    /// Bytes per object.
    pub object_size: usize,
    /// Multipart phases only.
    pub part_size: Option<usize>,
    /// Workers issuing requests at once.
    pub concurrency: usize,
    /// Operations that succeeded after the warm-up.
    pub ops: u64,
    /// Operations that failed after the warm-up (a GET with wrong bytes
    /// included).
    pub errors: u64,
    /// Object bytes moved by the counted operations.
    pub bytes: u64,
    /// From the end of the warm-up until the last operation ended (at least
    /// the configured duration: an operation started in time is awaited).
    pub seconds: f64,
    /// `ops / seconds`.
    pub ops_per_second: f64,
    /// `bytes / seconds`, in megabytes (10^6 bytes).
    pub megabytes_per_second: f64,
    /// Median operation latency.
    pub latency_ms_p50: f64,
    /// 90th-percentile operation latency.
    pub latency_ms_p90: f64,
    /// 99th-percentile operation latency.
    pub latency_ms_p99: f64,
    /// The first error seen, to say why errors happened.
    pub first_error: Option<String>,
    /// The server's peak `VmRSS` sampled during the phase (with `server_pid`).
    pub server_rss_peak_mib: Option<f64>,
    /// The server's `VmHWM` (peak RSS since it started) at the phase's end.
    pub server_rss_hwm_mib: Option<f64>,
    /// CPU seconds (user + system, all threads) the server spent from the
    /// end of the warm-up until the last operation ended (with `server_pid`).
    pub server_cpu_seconds: Option<f64>,
    /// `server_cpu_seconds` per GiB (2^30 bytes) of object data moved.
    pub server_cpu_seconds_per_gib: Option<f64>,
    /// The user-mode part of `server_cpu_seconds_per_gib`: the server's own
    /// code (hashing, sealing, parsing), apart from the kernel's copies and
    /// I/O, which vary with what else the machine is doing.
    pub server_user_seconds_per_gib: Option<f64>,
}

/// Distinct offsets a window may start at: objects `i` and `i + WINDOWS`
/// have the same content. Prime, so that part windows of consecutive objects
/// do not line up.
const WINDOWS: usize = 4093;

/// Pseudo-random bytes (xorshift64*, fixed seed) of which every object or
/// part is a zero-copy window.
struct Pattern {
    bytes: Bytes,
    window: usize,
}

impl Pattern {
    fn new(window: usize) -> Self {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut bytes = vec![0u8; window + WINDOWS];
        for word in bytes.chunks_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let value = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            word.copy_from_slice(&value[..word.len()]);
        }
        Self {
            bytes: Bytes::from(bytes),
            window,
        }
    }

    /// The content of object (or part) `index`.
    fn window(&self, index: u64) -> Bytes {
        let at = (index % WINDOWS as u64) as usize;
        self.bytes.slice(at..at + self.window)
    }
}

fn object_path(bucket: &str, index: u64) -> String {
    format!("/{bucket}/coffer-bench/{index:012}")
}

struct Recorder {
    latencies: Mutex<Vec<Duration>>,
    ops: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Recorder {
    fn new() -> Self {
        Self {
            latencies: Mutex::new(Vec::new()),
            ops: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
        }
    }

    async fn record(&self, outcome: Result<u64, String>, took: Duration) {
        match outcome {
            Ok(bytes) => {
                self.ops.fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_add(bytes, Ordering::Relaxed);
                self.latencies.lock().await.push(took);
            }
            Err(message) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.first_error.lock().await.get_or_insert(message);
            }
        }
    }
}

/// What every operation shares.
struct Context {
    client: Arc<SignedClient>,
    cfg: BenchConfig,
    pattern: Pattern,
    /// The unit of the server's CPU times ([`clock_ticks_per_second`]).
    clock_ticks: u64,
}

/// Bytes in a GiB, the unit of the CPU-per-byte figure.
const GIB: f64 = (1u64 << 30) as f64;

/// Sends a request whose answer is small (everything but GET), read whole.
async fn call(
    ctx: &Context,
    method: Method,
    path: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<ClientResponse, String> {
    let response = ctx
        .client
        .request_streaming("s3", method, path, headers, body, false)
        .await
        .map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    Ok(ClientResponse {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

fn failed(what: &str, response: &ClientResponse) -> String {
    format!("{what} {}: {}", response.status, response.error_message())
}

async fn put(ctx: &Context, index: u64) -> Result<u64, String> {
    let mut headers = HeaderMap::new();
    ctx.cfg.sse.put_headers(&mut headers);
    let body = ctx.pattern.window(index);
    let len = body.len() as u64;
    let path = object_path(&ctx.cfg.bucket, index);
    let response = call(ctx, Method::PUT, &path, headers, body).await?;
    if !response.status.is_success() {
        return Err(failed("PUT", &response));
    }
    Ok(len)
}

/// GETs object `index` and compares it, as it streams in, with what was PUT.
async fn get(ctx: &Context, index: u64) -> Result<u64, String> {
    let path = object_path(&ctx.cfg.bucket, index);
    let headers = ctx.cfg.sse.read_headers();
    let response = ctx
        .client
        .request_streaming("s3", Method::GET, &path, headers, Bytes::new(), false)
        .await
        .map_err(|e| e.to_string())?;
    let (parts, mut body) = response.into_parts();
    if !parts.status.is_success() {
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let response = ClientResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        };
        return Err(failed("GET", &response));
    }
    let expected = ctx.pattern.window(index);
    let mut at = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("GET object {index}: body failed: {e}"))?;
        if let Ok(data) = frame.into_data() {
            let end = at + data.len();
            if expected.get(at..end) != Some(&data[..]) {
                return Err(format!(
                    "GET object {index}: content differs from what was PUT"
                ));
            }
            at = end;
        }
    }
    if at != expected.len() {
        return Err(format!(
            "GET object {index}: {at} bytes instead of {}",
            expected.len()
        ));
    }
    Ok(at as u64)
}

/// The text of the first `<name>` element of an XML answer.
fn xml_element<'a>(body: &'a [u8], name: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{name}>"))? + start;
    Some(&text[start..end])
}

/// One whole multipart upload of object `index`; aborted if a step fails.
async fn multipart(ctx: &Context, index: u64) -> Result<u64, String> {
    let path = object_path(&ctx.cfg.bucket, index);
    let mut headers = HeaderMap::new();
    ctx.cfg.sse.put_headers(&mut headers);
    let initiated = call(
        ctx,
        Method::POST,
        &format!("{path}?uploads"),
        headers,
        Bytes::new(),
    )
    .await?;
    if !initiated.status.is_success() {
        return Err(failed("InitiateMultipartUpload", &initiated));
    }
    let upload_id = xml_element(&initiated.body, "UploadId")
        .ok_or("InitiateMultipartUpload: no UploadId in the answer")?;
    let upload = format!(
        "{path}?uploadId={}",
        utf8_percent_encode(upload_id, NON_ALPHANUMERIC)
    );
    let outcome = upload_parts_and_complete(ctx, index, &upload).await;
    if outcome.is_err() {
        // Best effort: the error that matters is the one already in hand.
        let _ = call(ctx, Method::DELETE, &upload, HeaderMap::new(), Bytes::new()).await;
    }
    outcome
}

async fn upload_parts_and_complete(ctx: &Context, index: u64, upload: &str) -> Result<u64, String> {
    let size = ctx.cfg.object_size as u64;
    let part_size = ctx.cfg.part_size as u64;
    let mut complete = String::from("<CompleteMultipartUpload>");
    let mut offset = 0u64;
    let mut number = 1u64;
    // An empty object is still one (empty) part.
    while offset < size || number == 1 {
        let len = part_size.min(size - offset) as usize;
        let body = ctx
            .pattern
            .window(index.wrapping_mul(10_007).wrapping_add(number))
            .slice(..len);
        let uploaded = call(
            ctx,
            Method::PUT,
            &format!("{upload}&partNumber={number}"),
            ctx.cfg.sse.read_headers(),
            body,
        )
        .await?;
        if !uploaded.status.is_success() {
            return Err(failed(&format!("UploadPart {number}"), &uploaded));
        }
        let etag = uploaded
            .headers
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("UploadPart {number}: no ETag"))?;
        complete.push_str(&format!(
            "<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>"
        ));
        offset += len as u64;
        number += 1;
    }
    complete.push_str("</CompleteMultipartUpload>");
    let completed = call(
        ctx,
        Method::POST,
        upload,
        HeaderMap::new(),
        Bytes::from(complete),
    )
    .await?;
    // S3 may answer 200 and still report an error in the body.
    if !completed.status.is_success() || xml_element(&completed.body, "ETag").is_none() {
        return Err(failed("CompleteMultipartUpload", &completed));
    }
    Ok(size)
}

/// Runs one timed phase: `op(worker, n)` until the time is up.
async fn phase<F, Fut>(name: &str, ctx: &Context, op: F) -> PhaseReport
where
    F: Fn(u64, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<u64, String>> + Send,
{
    let cfg = &ctx.cfg;
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = cfg
        .server_pid
        .map(|pid| sample_memory(pid, stop_sampling.clone()));
    let recorder = Arc::new(Recorder::new());
    let op = Arc::new(op);
    let started = Instant::now();
    let measure_from = started + cfg.warmup;
    let end = measure_from + cfg.duration;
    // The server's CPU time when counting starts; read again when the last
    // operation has ended. Operations in flight at the start add a little
    // CPU whose bytes are not counted: a bias of at most one operation per
    // worker, small against a phase of seconds.
    let cpu_at_start = cfg.server_pid.map(|pid| {
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            server_cpu_ticks(pid)
        })
    });
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
    let seconds = (Instant::now().max(end) - measure_from).as_secs_f64();
    let cpu_ticks = match (cpu_at_start, cfg.server_pid) {
        (Some(at_start), Some(pid)) => match (at_start.await.ok().flatten(), server_cpu_ticks(pid))
        {
            (Some(start), Some(end)) => Some(start.until(end)),
            _ => None,
        },
        _ => None,
    };
    stop_sampling.store(true, Ordering::Relaxed);
    let memory = match sampler {
        Some(sampler) => sampler.await.ok(),
        None => None,
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
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
    let bytes = recorder.bytes.load(Ordering::Relaxed);
    let seconds_of = |ticks: u64| ticks as f64 / ctx.clock_ticks as f64;
    let per_gib = |cpu: f64| (bytes > 0).then(|| cpu / (bytes as f64 / GIB));
    let cpu_seconds = cpu_ticks.map(|ticks| seconds_of(ticks.user + ticks.system));
    PhaseReport {
        phase: name.to_owned(),
        sse: format!("{:?}", cfg.sse),
        object_size: cfg.object_size,
        part_size: (cfg.workload == Workload::Multipart).then_some(cfg.part_size),
        concurrency: cfg.concurrency,
        ops,
        errors: recorder.errors.load(Ordering::Relaxed),
        bytes,
        seconds,
        ops_per_second: ops as f64 / seconds,
        megabytes_per_second: bytes as f64 / seconds / 1e6,
        latency_ms_p50: percentile(0.50),
        latency_ms_p90: percentile(0.90),
        latency_ms_p99: percentile(0.99),
        first_error: recorder.first_error.lock().await.clone(),
        server_rss_peak_mib: memory.map(|(peak, _)| mib(peak)),
        server_rss_hwm_mib: memory.map(|(_, hwm)| mib(hwm)),
        server_cpu_seconds: cpu_seconds,
        server_cpu_seconds_per_gib: cpu_seconds.and_then(per_gib),
        server_user_seconds_per_gib: cpu_ticks.and_then(|ticks| per_gib(seconds_of(ticks.user))),
    }
}

/// Runs the configured workload against `client`'s endpoint.
pub async fn run(
    client: Arc<SignedClient>,
    cfg: BenchConfig,
) -> Result<Vec<PhaseReport>, ClientError> {
    if let Some(pid) = cfg.server_pid
        && (server_memory(pid).is_none() || server_cpu_ticks(pid).is_none())
    {
        return Err(ClientError::BadResponse(format!(
            "cannot read the memory and CPU time of process {pid} (/proc/{pid}/status, /proc/{pid}/stat)"
        )));
    }
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
    if cfg.sse == SseMode::Plaintext {
        store_plaintext(&client, &cfg.bucket).await?;
    }
    let window = match cfg.workload {
        Workload::Multipart => cfg.part_size.min(cfg.object_size),
        _ => cfg.object_size,
    };
    let ctx = Arc::new(Context {
        client,
        pattern: Pattern::new(window),
        clock_ticks: if cfg.server_pid.is_some() {
            clock_ticks_per_second()
        } else {
            100
        },
        cfg,
    });
    let stride = 1u64 << 32;
    let workload = ctx.cfg.workload;
    match workload {
        Workload::Put => {
            let c = ctx.clone();
            let op = move |worker, n| {
                let c = c.clone();
                async move { put(&c, worker * stride + n).await }
            };
            return Ok(vec![phase("put", &ctx, op).await]);
        }
        Workload::Multipart => {
            let c = ctx.clone();
            let op = move |worker, n| {
                let c = c.clone();
                async move { multipart(&c, worker * stride + n).await }
            };
            return Ok(vec![phase("multipart", &ctx, op).await]);
        }
        Workload::Get | Workload::Mixed => {}
    }
    // GET and mixed phases read a fixed set of objects written first.
    let objects = ctx.cfg.objects.max(1) as u64;
    for index in 0..objects {
        put(&ctx, index)
            .await
            .map_err(|message| ClientError::BadResponse(format!("preparing objects: {message}")))?;
    }
    let c = ctx.clone();
    let mixed = workload == Workload::Mixed;
    let op = move |worker, n| {
        let c = c.clone();
        async move {
            if mixed && n % 2 == 1 {
                put(&c, objects + worker * stride + n).await
            } else {
                get(&c, (worker + n * 7919) % objects).await
            }
        }
    };
    let name = if mixed { "mixed" } else { "get" };
    Ok(vec![phase(name, &ctx, op).await])
}

/// Sets `bucket`'s default encryption rule to `none`, so that objects PUT
/// without encryption headers are stored as plaintext (Coffer's extension;
/// its server default otherwise seals them with AES256).
async fn store_plaintext(client: &SignedClient, bucket: &str) -> Result<(), ClientError> {
    use md5::{Digest, Md5};
    let body = b"<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>\
<SSEAlgorithm>none</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>\
</ServerSideEncryptionConfiguration>"
        .to_vec();
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&BASE64.encode(Md5::digest(&body))) {
        headers.insert(HeaderName::from_static("content-md5"), value);
    }
    let answer = client
        .request(
            Method::PUT,
            &format!("/{bucket}?encryption"),
            headers,
            body,
            true,
        )
        .await?;
    if !answer.status.is_success() {
        return Err(ClientError::Server {
            status: answer.status,
            message: format!(
                "--sse plaintext needs Coffer's bucket encryption rule `none`: {}",
                answer.error_message()
            ),
        });
    }
    Ok(())
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
    fn windows_are_deterministic_and_distinct() {
        let pattern = Pattern::new(1000);
        assert_eq!(pattern.window(7).len(), 1000);
        assert_eq!(pattern.window(7), Pattern::new(1000).window(7));
        assert_ne!(pattern.window(7), pattern.window(8));
        assert_eq!(pattern.window(7), pattern.window(7 + WINDOWS as u64));
    }

    #[test]
    fn xml_elements() {
        let body = b"<R><UploadId>abc</UploadId><ETag>\"e\"</ETag></R>";
        assert_eq!(xml_element(body, "UploadId"), Some("abc"));
        assert_eq!(xml_element(body, "ETag"), Some("\"e\""));
        assert_eq!(xml_element(body, "Key"), None);
    }
}
