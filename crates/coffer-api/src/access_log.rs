//! The JSON access log (`--access-log PATH|-`, opt-in): one JSON object per
//! answered request, one per line, written by a thread of its own so that a
//! slow disk never holds a request. It is the operator's record: it names
//! buckets and object keys (metrics never do), and the principal by access
//! key id, never a secret.

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc;

use serde::Serialize;

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// Standard output (`-`).
    Stdout,
    /// A file, created if missing (owner-only) and appended to.
    File(PathBuf),
}

impl AccessLogTarget {
    /// `-` is standard output; anything else a path.
    pub fn parse(text: &str) -> Self {
        match text.trim() {
            "-" => AccessLogTarget::Stdout,
            path => AccessLogTarget::File(PathBuf::from(path)),
        }
    }
}

/// What the writer thread is asked to do.
enum Message {
    /// Append one line.
    Line(Vec<u8>),
    /// Open the file again (after log rotation moved it away).
    Reopen,
}

/// An open access log: lines go to its writer thread.
pub struct AccessLog {
    messages: mpsc::Sender<Message>,
}

fn open_target(target: &AccessLogTarget) -> std::io::Result<Box<dyn Write + Send>> {
    Ok(match target {
        AccessLogTarget::Stdout => Box::new(std::io::stdout()),
        AccessLogTarget::File(path) => {
            let mut options = std::fs::OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            Box::new(options.open(path)?)
        }
    })
}

impl AccessLog {
    /// Opens `target` (a file is created `0600` if missing) and starts the
    /// writer thread.
    pub fn open(target: &AccessLogTarget) -> std::io::Result<Self> {
        let mut out = open_target(target)?;
        let target = target.clone();
        let (messages, receiver) = mpsc::channel::<Message>();
        std::thread::Builder::new()
            .name("coffer-access-log".into())
            .spawn(move || {
                for message in receiver {
                    match message {
                        // Each line in one write: an append never interleaves lines.
                        Message::Line(line) => {
                            if let Err(error) = out.write_all(&line).and_then(|()| out.flush()) {
                                tracing::error!(%error, "access log write failed");
                            }
                        }
                        Message::Reopen => match open_target(&target) {
                            Ok(reopened) => out = reopened,
                            Err(error) => {
                                tracing::error!(%error, "access log not reopened: still writing the old file")
                            }
                        },
                    }
                }
            })?;
        Ok(Self { messages })
    }

    /// Opens the file again, for log rotation (the server does it on
    /// SIGHUP): lines queued before go to the old file, later ones to the
    /// new.
    pub fn reopen(&self) {
        let _ = self.messages.send(Message::Reopen);
    }

    /// Queues one request's line.
    pub(crate) fn record(&self, entry: &AccessEntry<'_>) {
        match serde_json::to_vec(entry) {
            Ok(mut line) => {
                line.push(b'\n');
                let _ = self.messages.send(Message::Line(line));
            }
            Err(error) => tracing::error!(%error, "access log entry not serialisable"),
        }
    }
}

/// One answered request, as its access-log line names it.
#[derive(Serialize)]
pub(crate) struct AccessEntry<'a> {
    /// RFC 3339, UTC, when the response started.
    pub time: String,
    pub request_id: &'a str,
    /// The client's address and port.
    pub remote_addr: String,
    /// The access key id that signed the request; absent when unsigned or
    /// refused before the signature was checked.
    pub principal: Option<&'a str>,
    pub operation: &'static str,
    pub dialect: &'static str,
    pub bucket: Option<&'a str>,
    pub key: Option<&'a str>,
    /// The encryption the response names: `AES256`, `SM4`, `aws:kms`
    /// (`KMS` in OSS), `SSE-C`; absent when it names none.
    pub sse: Option<String>,
    /// The KMS key id the response names, for SSE-KMS.
    pub sse_key_id: Option<String>,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration_ms: f64,
    /// `TLSv1.2`, `TLSv1.3`, or absent over plain HTTP.
    pub tls: Option<&'static str>,
    /// The authorization decisions that were not "owner or root": `allowed by bucket policy
    /// statement 1 (Sid)`, `denied by …` (`authz`); null otherwise.
    pub authz: Option<String>,
}

/// The encryption mode and KMS key id a response's headers name;
/// `vendor_prefix` is the dialect's (`x-amz-` or `x-oss-`).
pub(crate) fn sse_of(
    headers: &http::HeaderMap,
    vendor_prefix: &str,
) -> (Option<String>, Option<String>) {
    let header = |suffix: &str| {
        headers
            .get(format!("{vendor_prefix}{suffix}"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    // S3 names the key `…-aws-kms-key-id`, OSS `…-key-id`.
    let key_id = header("server-side-encryption-aws-kms-key-id")
        .or_else(|| header("server-side-encryption-key-id"));
    let mode = header("server-side-encryption").or_else(|| {
        headers
            .contains_key("x-amz-server-side-encryption-customer-algorithm")
            .then(|| "SSE-C".to_owned())
    });
    (mode, key_id)
}
