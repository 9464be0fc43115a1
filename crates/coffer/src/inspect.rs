//! `coffer inspect`: offline views of a data dir's metadata, for operators,
//! and (hidden) raw record edits for tamper tests.
//!
//! Both open the metadata database directly, so the server must be stopped
//! (redb holds a lock while it runs; a running server makes these fail).
//! Nothing here prints key material: envelopes hold only wrapped keys, key
//! commitments and SSE-C fingerprints, which are safe to show.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use coffer_crypto::sealed::Envelope;
use coffer_store::{ObjectRecord, Store, Version, VersionRef};
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum InspectCommand {
    /// Print an object's record and its decoded encryption envelope as JSON
    /// (extents with their blob files, algorithm, key id and version,
    /// wrapped key, part layout). The server must be stopped.
    Object {
        #[command(flatten)]
        target: ObjectTarget,
    },
    /// TEST TOOL, NOT FOR PRODUCTION DATA: overwrite an object's raw record
    /// with the JSON on stdin (the `record` member `inspect object` prints),
    /// unchecked. It exists so tests can play an attacker who edits the
    /// metadata database; the server must be stopped.
    #[command(hide = true)]
    TamperSetRecord {
        #[command(flatten)]
        target: ObjectTarget,
    },
}

#[derive(Args)]
pub struct ObjectTarget {
    /// The server's data directory.
    #[arg(long, env = "COFFER_DATA_DIR")]
    data_dir: PathBuf,
    bucket: String,
    key: String,
    /// One version of the key (`null` for the null version); the newest object otherwise.
    #[arg(long)]
    version_id: Option<String>,
}

impl ObjectTarget {
    fn version(&self) -> VersionRef {
        self.version_id
            .as_deref()
            .map_or(VersionRef::Latest, VersionRef::from_query)
    }
}

pub fn run(command: InspectCommand) -> Result<(), String> {
    match command {
        InspectCommand::Object { target } => {
            let store = open_store(&target.data_dir)?;
            let found = store
                .version(&target.bucket, &target.key, &target.version())
                .map_err(|e| format!("{}/{}: {e}", target.bucket, target.key))?;
            let Version::Object(record) = found.version else {
                return Err(format!(
                    "{}/{}: that version is a delete marker",
                    target.bucket, target.key
                ));
            };
            let view = object_view(&store, &target, &record)?;
            let text = serde_json::to_string_pretty(&view).map_err(|e| e.to_string())?;
            println!("{text}");
            Ok(())
        }
        InspectCommand::TamperSetRecord { target } => {
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .map_err(|e| format!("cannot read the record from stdin: {e}"))?;
            let record: ObjectRecord = serde_json::from_str(&input)
                .map_err(|e| format!("stdin is not an object record: {e}"))?;
            let store = open_store(&target.data_dir)?;
            // Even the test tool never loosens an object lock: the one offline write path
            // keeps every version's retention and legal hold as they are.
            if let Ok(found) = store.version(&target.bucket, &target.key, &target.version())
                && let Version::Object(old) = found.version
                && (old.retention != record.retention || old.legal_hold != record.legal_hold)
            {
                return Err(format!(
                    "{}/{}: refusing to change the version's retention or legal hold",
                    target.bucket, target.key
                ));
            }
            store
                .overwrite_object_record_unchecked(
                    &target.bucket,
                    &target.key,
                    &target.version(),
                    &record,
                )
                .map_err(|e| format!("{}/{}: {e}", target.bucket, target.key))?;
            eprintln!(
                "coffer: overwrote the record of {}/{} unchecked (test tool)",
                target.bucket, target.key
            );
            Ok(())
        }
    }
}

/// Opens an existing data dir's store; refuses to create one.
fn open_store(data_dir: &Path) -> Result<Store, String> {
    if !data_dir.join("meta.redb").is_file() {
        return Err(format!("{} holds no coffer metadata", data_dir.display()));
    }
    Store::open(data_dir).map_err(|e| {
        format!(
            "cannot open the metadata in {} (is the server still running?): {e}",
            data_dir.display()
        )
    })
}

fn object_view(
    store: &Store,
    target: &ObjectTarget,
    record: &ObjectRecord,
) -> Result<Value, String> {
    let extents = record
        .extents
        .iter()
        .map(|extent| {
            // A small sealed body is a row of `meta.redb`; a larger one is the file
            // `blobs/<first 2 hex>/<id>` (coffer-store).
            let inline = store
                .is_inline_blob(&extent.blob)
                .map_err(|e| format!("blob {}: {e}", extent.blob))?;
            let shard = extent.blob.get(..2).unwrap_or_default();
            let path = (!inline).then(|| {
                store
                    .data_dir()
                    .join("blobs")
                    .join(shard)
                    .join(&extent.blob)
            });
            Ok(json!({
                "blob": extent.blob,
                "inline": inline,
                "path": path,
                "stored_size": extent.size,
                "part_number": extent.part_number,
            }))
        })
        .collect::<Result<Vec<Value>, String>>()?;
    let envelope = record
        .envelope
        .as_deref()
        .map(|bytes| match Envelope::decode(bytes) {
            Ok(envelope) => envelope_view(&envelope, bytes),
            Err(error) => json!({ "hex": hex::encode(bytes), "error": error.to_string() }),
        });
    Ok(json!({
        "bucket": target.bucket,
        "key": target.key,
        "size": record.size,
        "etag": record.etag,
        "extents": extents,
        "envelope": envelope,
        "record": serde_json::to_value(record).map_err(|e| e.to_string())?,
    }))
}

fn envelope_view(envelope: &Envelope, bytes: &[u8]) -> Value {
    let parts: Vec<Value> = envelope
        .parts
        .iter()
        .map(|p| json!({ "part_number": p.part_number, "plain_size": p.plain_size }))
        .collect();
    json!({
        "hex": hex::encode(bytes),
        "version": bytes[0],
        "algorithm": envelope.algorithm.name(),
        "object_id": hex::encode(envelope.object_id.0),
        "commitment": hex::encode(envelope.commitment),
        "wrap_kind": envelope.key.kind.name(),
        "key_id": envelope.key.key_id,
        "key_version": envelope.key.key_version,
        "wrapped_key": hex::encode(&envelope.key.wrapped_key),
        "parts": parts,
        "plain_size": envelope.plain_size(),
    })
}
