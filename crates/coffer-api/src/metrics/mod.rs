//! The server's Prometheus metrics: counters kept in atomics on the hot
//! path (no lock once a label set has been seen), rendered in the text
//! exposition format for `GET /metrics` on the admin listener
//! (`crate::monitoring`).
//!
//! Labels are operation names, dialects, status codes, KMS call names and
//! outcomes, key states, algorithms, TLS versions and limit names: bounded
//! sets, never a bucket, object key, key id, principal or secret
//! (docs/operations.md lists every family).

mod table;
mod text;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use coffer_crypto::Algorithm;

use table::LabelTable;
use text::Exposition;

pub(crate) use text::CONTENT_TYPE;

/// Upper bounds of the request-duration buckets, in seconds.
const DURATION_BOUNDS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// One latency histogram: a count per bucket (not cumulative; the last is
/// beyond every bound), the total in microseconds, the number observed.
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; DURATION_BOUNDS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = DURATION_BOUNDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(DURATION_BOUNDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Bytes of request and response bodies of one operation.
#[derive(Default)]
struct Traffic {
    received: AtomicU64,
    sent: AtomicU64,
}

/// Every family, process-wide (one server per process).
struct Metrics {
    /// (operation, dialect, status)
    requests: LabelTable<(&'static str, &'static str, u16), AtomicU64, 2048>,
    durations: LabelTable<&'static str, Histogram, 256>,
    traffic: LabelTable<&'static str, Traffic, 256>,
    in_flight: AtomicI64,
    /// (call, outcome)
    kms_calls: LabelTable<(&'static str, &'static str), AtomicU64, 512>,
    /// (result, key state)
    bucket_key_cache: LabelTable<(&'static str, &'static str), AtomicU64, 32>,
    sealed: LabelTable<&'static str, AtomicU64, 8>,
    opened: LabelTable<&'static str, AtomicU64, 8>,
    integrity_failures: AtomicU64,
    /// (version, outcome)
    tls_handshakes: LabelTable<(&'static str, &'static str), AtomicU64, 16>,
    connections_refused: LabelTable<&'static str, AtomicU64, 16>,
}

static METRICS: Metrics = Metrics {
    requests: LabelTable::new(),
    durations: LabelTable::new(),
    traffic: LabelTable::new(),
    in_flight: AtomicI64::new(0),
    kms_calls: LabelTable::new(),
    bucket_key_cache: LabelTable::new(),
    sealed: LabelTable::new(),
    opened: LabelTable::new(),
    integrity_failures: AtomicU64::new(0),
    tls_handshakes: LabelTable::new(),
    connections_refused: LabelTable::new(),
};

fn add<K: Copy + Eq + std::hash::Hash, const N: usize>(
    table: &LabelTable<K, AtomicU64, N>,
    key: K,
    n: u64,
) {
    if let Some(counter) = table.get(key) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Has the KMS and the bucket-key cache report to these metrics; call once
/// before serving (later calls change nothing).
pub fn observe_keys() {
    coffer_kms::observe::observe_calls(|call, outcome| add(&METRICS.kms_calls, (call, outcome), 1));
    coffer_keying::observe::observe_bucket_key_cache(|result, state| {
        add(&METRICS.bucket_key_cache, (result, state), 1)
    });
}

/// A request being handled: counted in flight until dropped.
pub(crate) struct InFlight(());

impl InFlight {
    pub(crate) fn start() -> Self {
        METRICS.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        METRICS.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What one answered request counts for.
pub(crate) struct RequestOutcome {
    pub operation: &'static str,
    pub dialect: &'static str,
    pub status: u16,
    pub elapsed: Duration,
    /// Body bytes the request announced.
    pub received: u64,
    /// Body bytes the response announced.
    pub sent: u64,
}

pub(crate) fn request_answered(outcome: &RequestOutcome) {
    add(
        &METRICS.requests,
        (outcome.operation, outcome.dialect, outcome.status),
        1,
    );
    if let Some(histogram) = METRICS.durations.get(outcome.operation) {
        histogram.observe(outcome.elapsed);
    }
    if let Some(traffic) = METRICS.traffic.get(outcome.operation) {
        traffic
            .received
            .fetch_add(outcome.received, Ordering::Relaxed);
        traffic.sent.fetch_add(outcome.sent, Ordering::Relaxed);
    }
}

/// The label of an object algorithm.
fn algorithm_label(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::Aes256Gcm => "AES-256-GCM",
        Algorithm::Sm4Gcm => "SM4-GCM",
    }
}

/// Plaintext bytes sealed into a blob.
pub(crate) fn sealed(algorithm: Algorithm, bytes: u64) {
    add(&METRICS.sealed, algorithm_label(algorithm), bytes);
}

/// Plaintext bytes opened from a blob (and authenticated).
pub(crate) fn opened(algorithm: Algorithm, bytes: u64) {
    add(&METRICS.opened, algorithm_label(algorithm), bytes);
}

/// Stored data that failed authentication, once per failed request.
pub(crate) fn integrity_failure() {
    METRICS.integrity_failures.fetch_add(1, Ordering::Relaxed);
}

/// A TLS handshake that ended: `version` negotiated (`none` if it failed
/// before), `outcome` `ok`, `failed` or `timeout`.
pub(crate) fn tls_handshake(version: &'static str, outcome: &'static str) {
    add(&METRICS.tls_handshakes, (version, outcome), 1);
}

/// A connection or request that a limit refused or cut (`limit` names it:
/// `max_connections`, `head_too_large`, `tls_handshake_timeout`,
/// `body_read_timeout`, `send_timeout`).
pub(crate) fn connection_refused(limit: &'static str) {
    add(&METRICS.connections_refused, limit, 1);
}

/// A labelled sample: label names and values, and the count.
type Row = (Vec<(&'static str, String)>, u64);

/// Every family's samples now, in the text exposition format.
pub fn render() -> String {
    let m = &METRICS;
    let mut e = Exposition::default();
    let load = |n: &AtomicU64| n.load(Ordering::Relaxed);

    let requests = m
        .requests
        .entries()
        .map(|((operation, dialect, status), n)| {
            let labels = vec![
                ("operation", (*operation).to_owned()),
                ("dialect", (*dialect).to_owned()),
                ("status", status.to_string()),
            ];
            (labels, load(n))
        });
    counter(
        &mut e,
        "coffer_requests_total",
        "Requests answered, by named operation, dialect and HTTP status.",
        requests.collect(),
    );

    e.family(
        "coffer_request_duration_seconds",
        "histogram",
        "Time from a request's head to its response's head, by operation.",
    );
    let mut histograms: Vec<_> = m.durations.entries().collect();
    histograms.sort_by_key(|(operation, _)| *operation);
    for (operation, histogram) in histograms {
        let mut cumulative = 0;
        for (i, bucket) in histogram.buckets.iter().enumerate() {
            cumulative += load(bucket);
            let le = DURATION_BOUNDS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), f64::to_string);
            e.sample(
                "coffer_request_duration_seconds_bucket",
                &[("operation", operation), ("le", &le)],
                cumulative,
            );
        }
        let labels = [("operation", *operation)];
        let sum = load(&histogram.sum_micros) as f64 / 1e6;
        e.sample("coffer_request_duration_seconds_sum", &labels, sum);
        e.sample(
            "coffer_request_duration_seconds_count",
            &labels,
            load(&histogram.count),
        );
    }

    let by_operation = |pick: fn(&Traffic) -> &AtomicU64| -> Vec<Row> {
        m.traffic
            .entries()
            .map(|(operation, traffic)| {
                (
                    vec![("operation", (*operation).to_owned())],
                    load(pick(traffic)),
                )
            })
            .collect()
    };
    counter(
        &mut e,
        "coffer_bytes_received_total",
        "Request body bytes, as announced by Content-Length, by operation.",
        by_operation(|t| &t.received),
    );
    counter(
        &mut e,
        "coffer_bytes_sent_total",
        "Response body bytes, as announced when the response started, by operation.",
        by_operation(|t| &t.sent),
    );

    e.family(
        "coffer_requests_in_flight",
        "gauge",
        "Requests being handled now (until their response starts).",
    );
    e.sample(
        "coffer_requests_in_flight",
        &[],
        m.in_flight.load(Ordering::Relaxed),
    );

    let pairs = |table: &dyn Fn() -> Vec<((&'static str, &'static str), u64)>,
                 names: (&'static str, &'static str)|
     -> Vec<Row> {
        table()
            .into_iter()
            .map(|((a, b), n)| (vec![(names.0, a.to_owned()), (names.1, b.to_owned())], n))
            .collect()
    };
    counter(
        &mut e,
        "coffer_kms_calls_total",
        "KMS calls the embedded KMS answered, by call and outcome (ok or the AWS exception).",
        pairs(
            &|| m.kms_calls.entries().map(|(k, n)| (*k, load(n))).collect(),
            ("call", "outcome"),
        ),
    );
    counter(
        &mut e,
        "coffer_bucket_key_cache_total",
        "Bucket-key cache lookups for SSE-KMS, by result (hit, miss) and the CMK's state.",
        pairs(
            &|| {
                m.bucket_key_cache
                    .entries()
                    .map(|(k, n)| (*k, load(n)))
                    .collect()
            },
            ("result", "key_state"),
        ),
    );

    let by_algorithm = |table: &LabelTable<&'static str, AtomicU64, 8>| -> Vec<Row> {
        table
            .entries()
            .map(|(algorithm, n)| (vec![("algorithm", (*algorithm).to_owned())], load(n)))
            .collect()
    };
    counter(
        &mut e,
        "coffer_seal_bytes_total",
        "Plaintext bytes sealed, by algorithm.",
        by_algorithm(&m.sealed),
    );
    counter(
        &mut e,
        "coffer_open_bytes_total",
        "Plaintext bytes opened and authenticated, by algorithm.",
        by_algorithm(&m.opened),
    );
    counter(
        &mut e,
        "coffer_integrity_failures_total",
        "Requests refused or cut because stored data failed authentication.",
        vec![(vec![], load(&m.integrity_failures))],
    );
    counter(
        &mut e,
        "coffer_tls_handshakes_total",
        "TLS handshakes, by negotiated version (none if it failed first) and outcome.",
        pairs(
            &|| {
                m.tls_handshakes
                    .entries()
                    .map(|(k, n)| (*k, load(n)))
                    .collect()
            },
            ("version", "outcome"),
        ),
    );
    let refused = m
        .connections_refused
        .entries()
        .map(|(limit, n)| (vec![("limit", (*limit).to_owned())], load(n)));
    counter(
        &mut e,
        "coffer_connections_refused_total",
        "Connections or requests a limit held back, refused or cut, by limit.",
        refused.collect(),
    );
    e.finish()
}

/// A counter family, its samples sorted by labels.
fn counter(e: &mut Exposition, name: &str, help: &str, mut rows: Vec<Row>) {
    e.family(name, "counter", help);
    rows.sort();
    for (labels, value) in rows {
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        e.sample(name, &labels, value);
    }
}
