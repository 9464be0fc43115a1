//! `coffer cp|cat|ls|rm`: object transfer for any S3 endpoint, with
//! client-side encryption (`--encrypt` and the master-key options) on the way
//! up and automatic decryption on the way down.
//!
//! A download never leaves partial or unauthenticated plaintext behind: it
//! is written to a temporary file beside the destination, which is synced
//! and renamed only after the whole object was decrypted (and, for the GCM
//! formats, its tag verified).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use coffer_client::SignedClient;
use coffer_client::objects::{
    self, BodyTransform, ByteRange, CopySource, Identity, MetadataDirective, NewObject,
    ObjectStream, UploadPlan,
};
use coffer_cse::{
    ContentDecryptor, ContentEncryptor, Format, MultipartLayout, ObjectDecryption,
    ObjectEncryption, PlaintextInfo,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::io::AsyncRead;

use crate::connect::{ConnectArgs, client};
use crate::master_keys::{MasterKeyArgs, parse_format};
use crate::object_url::ObjectUrl;

const DEFAULT_PART_SIZE: &str = "8MiB";

#[derive(Subcommand)]
pub enum ObjectCommand {
    /// Copy a file to or from a bucket, or between buckets (`-`: stdin or stdout).
    ///
    /// `coffer cp FILE s3://b/k`, `coffer cp s3://b/k FILE`, `coffer cp s3://a/k s3://b/k`;
    /// `-` is stdin (`coffer cp - s3://b/k`, streamed in parts) or stdout
    /// (`coffer cp s3://b/k -`).
    Cp {
        source: String,
        destination: String,
        #[command(flatten)]
        transfer: TransferArgs,
    },
    /// Write an object (decrypted if it is client-side encrypted) to stdout.
    Cat {
        object: String,
        #[command(flatten)]
        transfer: TransferArgs,
    },
    /// List buckets (no argument) or the objects of s3://bucket[/prefix].
    Ls {
        location: Option<String>,
        /// Every object under the prefix, not just one "directory" level.
        #[arg(long)]
        recursive: bool,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Delete an object (or, with --recursive, every object under a prefix).
    Rm {
        object: String,
        #[arg(long)]
        recursive: bool,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

#[derive(Args)]
pub struct TransferArgs {
    /// Encrypt on the client before uploading (needs one master key).
    #[arg(long)]
    encrypt: bool,
    /// Client-side encryption format: aws (S3EC V3, AES-GCM), aws-v2, or oss
    /// (AES-CTR, unauthenticated, for the OSS SDKs).
    #[arg(long, default_value = "aws")]
    format: String,
    #[command(flatten)]
    keys: MasterKeyArgs,
    /// Part size of multipart uploads (bytes, or with KiB/MiB/GiB); larger
    /// files are sent in parts.
    #[arg(long, default_value = DEFAULT_PART_SIZE, value_parser = parse_size)]
    part_size: u64,
    /// Parts uploaded at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Download only bytes FIRST-LAST (inclusive) or FIRST- of the plaintext.
    #[arg(long)]
    range: Option<String>,
    /// No progress bar even on a terminal.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// `8MiB`, `100KiB`, `1048576`.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("unknown size unit in {text:?}")),
    };
    number
        .checked_mul(scale)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is not a usable size"))
}

/// A progress bar on stderr when it is a terminal, hidden otherwise.
pub fn quiet_or_progress(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{bytes:>10}/{total_bytes:10} {wide_bar} {bytes_per_sec:>12} {eta:>4}",
    ) {
        bar.set_style(style);
    }
    bar
}

pub async fn run(command: ObjectCommand) -> Result<(), String> {
    match command {
        ObjectCommand::Cp {
            source,
            destination,
            transfer,
        } => cp(&source, &destination, transfer).await,
        ObjectCommand::Cat { object, transfer } => {
            let url = ObjectUrl::parse(&object)?;
            let client = Arc::new(client(transfer.connect.clone())?);
            download(&client, &url, &transfer, Destination::Stdout).await
        }
        ObjectCommand::Ls {
            location,
            recursive,
            connect,
        } => ls(location, recursive, connect).await,
        ObjectCommand::Rm {
            object,
            recursive,
            connect,
        } => rm(&object, recursive, connect).await,
    }
}

async fn cp(source: &str, destination: &str, transfer: TransferArgs) -> Result<(), String> {
    let client = Arc::new(client(transfer.connect.clone())?);
    match (ObjectUrl::is(source), ObjectUrl::is(destination)) {
        (false, true) => {
            let mut target = ObjectUrl::parse(destination)?;
            let source = if source == "-" {
                Source::Stdin
            } else {
                Source::File(PathBuf::from(source))
            };
            if target.key.is_empty() || target.key.ends_with('/') {
                match &source {
                    Source::File(path) => target.key.push_str(&file_name(path)?),
                    Source::Stdin => {
                        return Err(format!(
                            "{destination} names no object: stdin has no file name, give the \
                             key (s3://bucket/key)"
                        ));
                    }
                }
            }
            upload(&client, &source, &target, &transfer).await
        }
        (true, false) => {
            let url = ObjectUrl::parse(source)?;
            let destination = if destination == "-" {
                Destination::Stdout
            } else {
                Destination::File(local_target(destination, &url)?)
            };
            download(&client, &url, &transfer, destination).await
        }
        (true, true) => {
            let (from, mut to) = (ObjectUrl::parse(source)?, ObjectUrl::parse(destination)?);
            if to.key.is_empty() || to.key.ends_with('/') {
                to.key
                    .push_str(from.key.rsplit('/').next().unwrap_or_default());
            }
            if transfer.encrypt {
                return Err("--encrypt does not apply to a copy between buckets: the copy keeps the source's encryption (download and upload again to change it)".into());
            }
            // Server side, metadata directive COPY: the ciphertext and its
            // encryption metadata arrive unchanged.
            let source = CopySource {
                bucket: &from.bucket,
                key: &from.key,
                if_match: None,
            };
            objects::copy_object(
                &client,
                &source,
                (&to.bucket, &to.key),
                MetadataDirective::Copy,
            )
            .await
            .map_err(|e| {
                format!(
                    "copy {source_url} -> {destination}: {e}",
                    source_url = source_url(&from)
                )
            })?;
            Ok(())
        }
        (false, false) => Err("one side of cp must be an s3://bucket/key URL".into()),
    }
}

fn source_url(url: &ObjectUrl) -> String {
    format!("s3://{}/{}", url.bucket, url.key)
}

fn file_name(path: &Path) -> Result<String, String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{} has no file name", path.display()))
}

/// The local file a download writes: `path`, or `path/<last key segment>`
/// when `path` is a directory.
fn local_target(path: &str, url: &ObjectUrl) -> Result<PathBuf, String> {
    let path = PathBuf::from(path);
    if path.is_dir() || path.as_os_str().to_string_lossy().ends_with('/') {
        let name = url.key.rsplit('/').next().unwrap_or_default();
        if name.is_empty() {
            return Err(format!("{} names no object", source_url(url)));
        }
        return Ok(path.join(name));
    }
    Ok(path)
}

// ---------------------------------------------------------------- upload

/// Client-side encryption as an upload transform: the content encryptor,
/// fed in order, and the GCM tag after the last chunk.
struct Encrypting(Option<ContentEncryptor>);

impl BodyTransform for Encrypting {
    fn apply(&mut self, chunk: &mut Vec<u8>, last: bool) -> Result<(), String> {
        let encryptor = self
            .0
            .as_mut()
            .ok_or("the encryptor was used after its last chunk")?;
        encryptor.update(chunk).map_err(|e| e.to_string())?;
        if last && let Some(encryptor) = self.0.take() {
            chunk.extend_from_slice(&encryptor.finish());
        }
        Ok(())
    }
}

/// What an upload reads.
enum Source {
    File(PathBuf),
    /// `-`: read to the end, its length unknown until then.
    Stdin,
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Stdin => "stdin".into(),
        }
    }

    /// The reader and, for a file, its size.
    async fn open(&self) -> Result<(Box<dyn AsyncRead + Unpin + Send>, Option<u64>), String> {
        let path = match self {
            Source::Stdin => return Ok((Box::new(stdin()?), None)),
            Source::File(path) => path,
        };
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let size = file
            .metadata()
            .await
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .len();
        Ok((Box::new(file), Some(size)))
    }
}

/// Stdin as an async reader: its descriptor, duplicated, read on tokio's blocking threads
/// (what tokio's own `stdin()` does, without its feature's rebuild of every dependent).
fn stdin() -> Result<tokio::fs::File, String> {
    use std::os::fd::AsFd;
    let fd = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    Ok(tokio::fs::File::from_std(std::fs::File::from(fd)))
}

async fn upload(
    client: &Arc<SignedClient>,
    source: &Source,
    target: &ObjectUrl,
    transfer: &TransferArgs,
) -> Result<(), String> {
    if !transfer.encrypt && !transfer.keys.is_empty() {
        return Err("master-key options without --encrypt: add --encrypt to encrypt the upload (nothing was sent)".into());
    }
    let (reader, size) = source.open().await?;
    let format = parse_format(&transfer.format)?;
    let part_size = transfer.part_size;
    // A stream's size is known only at its end: the part size must suit a multipart upload.
    let multipart = size.is_none_or(|size| size > part_size);
    if multipart && part_size < objects::MIN_PART_SIZE as u64 {
        return Err(format!(
            "--part-size must be at least {} bytes for a multipart upload",
            objects::MIN_PART_SIZE
        ));
    }
    let mut object = NewObject {
        content_type: Some("application/octet-stream".into()),
        ..Default::default()
    };
    let mut transform: Box<dyn BodyTransform> = Box::new(Identity);
    if transfer.encrypt {
        // The oss format's metadata, sent before the first byte, records the plaintext size
        // and the part layout (as oss2 expects); the aws formats need neither.
        if size.is_none() && format == Format::Oss {
            return Err(
                "--encrypt --format oss needs a file: the oss format records the plaintext \
                 size before the upload starts, and stdin's is unknown (nothing was sent; the \
                 aws formats can encrypt stdin)"
                    .into(),
            );
        }
        let master = transfer.keys.writing_key(client)?;
        let encryption = ObjectEncryption::new(format, &master)
            .await
            .map_err(|e| format!("encrypt with {}: {e}", master.label()))?;
        let info = PlaintextInfo {
            length: size,
            md5_base64: None,
            multipart: size.filter(|_| multipart).map(|size| MultipartLayout {
                data_size: size,
                part_size,
            }),
        };
        object.metadata = encryption.metadata(&info).map_err(|e| e.to_string())?;
        transform = Box::new(Encrypting(Some(
            encryption.encryptor().map_err(|e| e.to_string())?,
        )));
    }
    let bar = quiet_or_progress(transfer.quiet);
    if let Some(size) = size {
        bar.set_length(size);
    }
    let plan = UploadPlan {
        part_size: usize::try_from(part_size).map_err(|_| "--part-size is too large")?,
        concurrency: transfer.concurrency.max(1),
    };
    objects::upload(
        client,
        &target.bucket,
        &target.key,
        reader,
        size,
        &object,
        &plan,
        transform.as_mut(),
        &|n| bar.inc(n),
    )
    .await
    .map_err(|e| {
        format!(
            "upload {} -> {}: {e}",
            source.describe(),
            source_url(target)
        )
    })?;
    bar.finish_and_clear();
    Ok(())
}

// ---------------------------------------------------------------- download

enum Destination {
    File(PathBuf),
    Stdout,
}

/// What turns the stored bytes into the plaintext.
enum Decrypting {
    Plain,
    Whole(ContentDecryptor),
    Range(coffer_cse::RangeDecryptor),
}

impl Decrypting {
    fn update(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        match self {
            Decrypting::Plain => {
                out.extend_from_slice(chunk);
                Ok(())
            }
            Decrypting::Whole(d) => d.update(chunk, out).map_err(|e| e.to_string()),
            Decrypting::Range(d) => d.update(chunk, out).map_err(|e| e.to_string()),
        }
    }

    /// Verifies what can be verified (the GCM tag of a whole object).
    fn finish(self) -> Result<(), String> {
        match self {
            Decrypting::Whole(d) => d.finish().map_err(|e| e.to_string()),
            _ => Ok(()),
        }
    }
}

async fn download(
    client: &Arc<SignedClient>,
    url: &ObjectUrl,
    transfer: &TransferArgs,
    destination: Destination,
) -> Result<(), String> {
    let location = source_url(url);
    let fail = |e: &dyn std::fmt::Display| format!("{location}: {e}");
    let range = match &transfer.range {
        None => None,
        Some(text) => Some(ByteRange::parse(text).ok_or_else(|| {
            format!("--range {text:?}: expected FIRST-LAST or FIRST- (inclusive byte offsets)")
        })?),
    };
    // The metadata decides whether (and how) to decrypt; HEAD first, so a
    // ranged read of an encrypted object can ask for the right bytes.
    let head = objects::head_object(client, &url.bucket, &url.key)
        .await
        .map_err(|e| fail(&e))?;
    let format = Format::detect(&head.metadata);
    let (decrypting, stored_range, authenticated) = match format {
        None => (Decrypting::Plain, range, false),
        Some(format) => {
            let keys = transfer.keys.keys(client)?;
            if keys.is_empty() {
                return Err(fail(&format!(
                    "the object is client-side encrypted (format {format}); give its master key: --kms-key-id, --key-file or --rsa-private-key"
                )));
            }
            let opened = ObjectDecryption::open(&head.metadata, &keys)
                .await
                .map_err(|e| fail(&e))?;
            match range {
                None => (
                    Decrypting::Whole(opened.decryptor().map_err(|e| fail(&e))?),
                    None,
                    opened.is_authenticated(),
                ),
                Some(range) => {
                    let plain_len = opened.plaintext_len(head.size).map_err(|e| fail(&e))?;
                    if range.first >= plain_len {
                        return Err(fail(&format!(
                            "range starts at {} but the plaintext has {plain_len} bytes",
                            range.first
                        )));
                    }
                    let last = range.last.unwrap_or(u64::MAX).min(plain_len - 1);
                    let decryptor = opened.range(range.first, last).map_err(|e| fail(&e))?;
                    let (first, last) = decryptor.stored_range();
                    if opened.is_authenticated() && !transfer.quiet {
                        eprintln!(
                            "coffer: note: a ranged read of an {format} object is decrypted without authentication (the tag covers the whole object)"
                        );
                    }
                    (
                        Decrypting::Range(decryptor),
                        Some(ByteRange {
                            first,
                            last: Some(last),
                        }),
                        false,
                    )
                }
            }
        }
    };
    let stream = objects::get_object(client, &url.bucket, &url.key, stored_range)
        .await
        .map_err(|e| fail(&e))?;
    if stream.head.etag != head.etag {
        return Err(fail(
            &"the object changed while it was being read; try again",
        ));
    }
    let bar = quiet_or_progress(transfer.quiet);
    bar.set_length(stream.head.content_length);
    match destination {
        Destination::File(path) => {
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
                _ => PathBuf::from("."),
            };
            // Dropped (and so deleted) on any error: no destination file.
            let mut temp = tempfile::Builder::new()
                .prefix(".coffer-download-")
                .tempfile_in(&dir)
                .map_err(|e| format!("cannot create a temporary file in {}: {e}", dir.display()))?;
            decrypt_into(stream, decrypting, temp.as_file_mut(), &bar)
                .await
                .map_err(|e| fail(&e))?;
            temp.as_file()
                .sync_all()
                .map_err(|e| format!("cannot sync {}: {e}", path.display()))?;
            temp.persist(&path)
                .map_err(|e| format!("cannot write {}: {}", path.display(), e.error))?;
        }
        Destination::Stdout if authenticated => {
            // Plaintext is released only after the tag verified: stage it in
            // an unlinked temporary file first.
            let mut staged =
                tempfile::tempfile().map_err(|e| format!("cannot create a temporary file: {e}"))?;
            decrypt_into(stream, decrypting, &mut staged, &bar)
                .await
                .map_err(|e| fail(&e))?;
            use std::io::Seek;
            staged
                .rewind()
                .and_then(|()| std::io::copy(&mut staged, &mut PipeOut::stdout()))
                .map_err(|e| format!("cannot write to stdout: {e}"))?;
        }
        Destination::Stdout => {
            decrypt_into(stream, decrypting, &mut PipeOut::stdout(), &bar)
                .await
                .map_err(|e| fail(&e))?;
        }
    }
    bar.finish_and_clear();
    Ok(())
}

async fn decrypt_into(
    mut stream: ObjectStream,
    mut decrypting: Decrypting,
    out: &mut dyn Write,
    bar: &ProgressBar,
) -> Result<(), String> {
    let mut plaintext = Vec::with_capacity(1 << 20);
    while let Some(chunk) = stream.next_chunk().await.map_err(|e| e.to_string())? {
        plaintext.clear();
        decrypting.update(&chunk, &mut plaintext)?;
        out.write_all(&plaintext)
            .map_err(|e| format!("write failed: {e}"))?;
        bar.inc(chunk.len() as u64);
    }
    decrypting.finish()?;
    out.flush().map_err(|e| format!("write failed: {e}"))
}

/// Stdout for `cat`, `cp … -`, `ls` (and the generated `completions` and `man`), where a closed pipe ends the command quietly with
/// status 0: `coffer ls s3://b | head -1` got what it asked for. Rust ignores SIGPIPE, so a
/// write to a closed pipe is an `EPIPE` error; this ends the process as the default SIGPIPE
/// disposition would, without the error message or the failure status. Nothing is left
/// behind: downloads to stdout stage only in unlinked temporary files.
pub struct PipeOut(std::io::StdoutLock<'static>);

impl PipeOut {
    pub fn stdout() -> Self {
        Self(std::io::stdout().lock())
    }

    fn closed_pipe_ends<T>(result: std::io::Result<T>) -> std::io::Result<T> {
        match result {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            other => other,
        }
    }
}

impl Write for PipeOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Self::closed_pipe_ends(self.0.write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Self::closed_pipe_ends(self.0.flush())
    }
}

// ---------------------------------------------------------------- ls, rm

async fn ls(location: Option<String>, recursive: bool, connect: ConnectArgs) -> Result<(), String> {
    let client = client(connect)?;
    let mut out = PipeOut::stdout();
    let mut print = |line: String| writeln!(out, "{line}").map_err(|e| e.to_string());
    let Some(location) = location else {
        for bucket in objects::list_buckets(&client)
            .await
            .map_err(|e| e.to_string())?
        {
            print(format!("{}  {}", bucket.creation_date, bucket.name))?;
        }
        return Ok(());
    };
    let url = ObjectUrl::parse(&location)?;
    let delimiter = (!recursive).then_some("/");
    let mut token = None;
    loop {
        let page =
            objects::list_objects_page(&client, &url.bucket, &url.key, delimiter, token.as_deref())
                .await
                .map_err(|e| format!("{location}: {e}"))?;
        for prefix in page.prefixes {
            print(format!("{:>24} {:>14} {}", "", "PRE", prefix.prefix))?;
        }
        for object in page.objects {
            print(format!(
                "{:>24} {:>14} {}",
                object.last_modified, object.size, object.key
            ))?;
        }
        match page.next_token {
            Some(next) if page.truncated => token = Some(next),
            _ => return Ok(()),
        }
    }
}

async fn rm(object: &str, recursive: bool, connect: ConnectArgs) -> Result<(), String> {
    let client = client(connect)?;
    let url = ObjectUrl::parse(object)?;
    let keys = if recursive {
        objects::list_objects(&client, &url.bucket, &url.key)
            .await
            .map_err(|e| format!("{object}: {e}"))?
            .into_iter()
            .map(|o| o.key)
            .collect()
    } else if url.key.is_empty() {
        return Err(format!(
            "{object} names no object (use --recursive for a prefix)"
        ));
    } else {
        vec![url.key.clone()]
    };
    for key in keys {
        objects::delete_object(&client, &url.bucket, &key)
            .await
            .map_err(|e| format!("s3://{}/{key}: {e}", url.bucket))?;
        eprintln!("deleted s3://{}/{key}", url.bucket);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("100k"), Ok(100 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }
}
