//! `coffer admin migrate`: moves a stopped embedded store (a data dir) to gateways'
//! backends (PostgreSQL and an upstream S3 bucket), or back, carrying every record and every
//! sealed byte as is — no re-encryption — and proves it with a count and digest report
//! computed on both ends (docs/migrate.md).
//!
//! Order: open both ends (the data dir's lock refuses a running server), find the root key
//! (the data dir's `root.key`, or a passphrase and its salt) and check it opens the source's
//! sealed keys and the target's root-key check; refuse in-progress multipart uploads; copy
//! the service key ring, delete the blobs an interrupted run left behind, copy the KMS records, buckets, users, then each key's versions with
//! their blobs (`copy.rs`); append the audit log; share the root credentials; open the
//! target's keys with the root key; count and hash both ends (`report.rs`). Every step skips
//! what the target already holds as the source does, so a run interrupted anywhere is
//! resumed by running it again.

mod copy;
mod report;
mod side;
mod walk;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use coffer_blobs_s3::S3BlobConfig;
use coffer_kms::keystore::KeyStore;
use coffer_kms::{EmbeddedKms, RootKey, ServiceKeyring};
use coffer_meta_pg::PgKeyStore;

use side::{Place, Side};

/// The gateway setting holding the Argon2id salt of a passphrase-derived root key (what
/// `backends/gateway.rs` reads).
const SALT_SETTING: &str = "root-salt";
/// `root.salt` in a data dir (`coffer_kms::root_key`).
const SALT_FILE_NAME: &str = "root.salt";

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Move a stopped embedded store (data dir) to PostgreSQL + an upstream S3 bucket, or
    /// back, as is (no re-encryption); resumable; ends with a count and digest report of both
    /// sides (non-zero exit if they differ). The server or gateways must be stopped.
    Migrate(MigrateArgs),
}

#[derive(Args)]
pub struct MigrateArgs {
    /// The source: an embedded data dir.
    #[arg(long, value_name = "DATA_DIR", conflicts_with_all = ["from_meta", "from_blobs", "to"])]
    from: Option<PathBuf>,
    /// The source: the gateways' PostgreSQL database (postgres://…); with --from-blobs.
    #[arg(long, value_name = "URL", requires = "from_blobs")]
    from_meta: Option<String>,
    /// The source: the gateways' upstream bucket (s3://bucket/prefix?endpoint=…); with
    /// --from-meta. Credentials: COFFER_BLOBS_ACCESS_KEY_ID / COFFER_BLOBS_SECRET_ACCESS_KEY.
    #[arg(long, value_name = "URL", requires = "from_meta")]
    from_blobs: Option<String>,
    /// The target: an embedded data dir (new or empty, holding only the root key file).
    #[arg(long, value_name = "DATA_DIR", conflicts_with_all = ["to_meta", "to_blobs"])]
    to: Option<PathBuf>,
    /// The target: a PostgreSQL database (empty, or this migration's own); with --to-blobs.
    #[arg(long, value_name = "URL", requires = "to_blobs")]
    to_meta: Option<String>,
    /// The target: an upstream bucket; with --to-meta (credentials as for --from-blobs).
    #[arg(long, value_name = "URL", requires = "to_meta")]
    to_blobs: Option<String>,
    /// The root passphrase file, when the store's root key is derived from a passphrase
    /// (the data dir's root.salt, or the gateways' shared salt, goes along). Without it the
    /// root key is the data dir's root.key file.
    #[arg(long, value_name = "FILE")]
    root_passphrase_file: Option<PathBuf>,
    /// Copy nothing: only count and hash both sides and compare.
    #[arg(long)]
    verify_only: bool,
}

pub async fn run(command: AdminCommand) -> Result<(), String> {
    match command {
        AdminCommand::Migrate(args) => migrate(args).await,
    }
}

fn places(args: &MigrateArgs) -> Result<(Place, Place), String> {
    let gateway = |meta: &str, blobs: &str, flag: &str| -> Result<Place, String> {
        Ok(Place::Gateway {
            meta_url: meta.to_owned(),
            blobs: S3BlobConfig::parse(blobs).map_err(|e| format!("{flag}: {e}"))?,
        })
    };
    let source = match (&args.from, &args.from_meta, &args.from_blobs) {
        (Some(dir), None, None) => Place::Embedded(dir.clone()),
        (None, Some(meta), Some(blobs)) => gateway(meta, blobs, "--from-blobs")?,
        _ => {
            return Err("name the source: --from DATA_DIR, or --from-meta and --from-blobs".into());
        }
    };
    let target = match (&args.to, &args.to_meta, &args.to_blobs) {
        (Some(dir), None, None) => Place::Embedded(dir.clone()),
        (None, Some(meta), Some(blobs)) => gateway(meta, blobs, "--to-blobs")?,
        _ => return Err("name the target: --to DATA_DIR, or --to-meta and --to-blobs".into()),
    };
    match (&source, &target) {
        (Place::Embedded(_), Place::Gateway { .. })
        | (Place::Gateway { .. }, Place::Embedded(_)) => Ok((source, target)),
        _ => Err(
            "a migration moves a data dir to PostgreSQL + S3 or back: one side is \
                  --from/--to DATA_DIR, the other --…-meta and --…-blobs"
                .into(),
        ),
    }
}

async fn migrate(args: MigrateArgs) -> Result<(), String> {
    let (source_place, target_place) = places(&args)?;
    eprintln!("migrate: from {}", source_place.shown());
    eprintln!("migrate: to   {}", target_place.shown());
    // The data dir first: its lock refuses a running server before anything else happens.
    let (source, target) = match &source_place {
        Place::Embedded(_) => {
            let source = side::open(&source_place).await?;
            (source, side::open(&target_place).await?)
        }
        Place::Gateway { .. } => {
            let target = side::open(&target_place).await?;
            (side::open(&source_place).await?, target)
        }
    };
    let (dir, pg) = match (&source.place, &target.place, &source.pg, &target.pg) {
        (Place::Embedded(dir), _, _, Some(pg)) | (_, Place::Embedded(dir), Some(pg), _) => {
            (dir.clone(), pg.clone())
        }
        _ => return Err("one side is a data dir, the other a gateway's database".into()),
    };
    let forward = matches!(source.place, Place::Embedded(_));
    let root = Arc::new(root_key(
        &dir,
        &pg,
        forward,
        args.root_passphrase_file.as_deref(),
    )?);
    // The database's root-key check: a target sealed by another root key is refused before
    // anything is written; a source's proves the key before anything is read.
    let checker = pg.clone();
    let check_root = Arc::clone(&root);
    tokio::task::spawn_blocking(move || checker.check_root_key(&check_root))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{e}; the root key must be the one the source was sealed with"))?;

    let source_keys = source.open_keystore(&root)?;
    let target_keys = target.open_keystore(&root)?;
    open_keys(&source, &source_keys, &root, "source")?;

    if !args.verify_only {
        copy::refuse_uploads(source.meta.as_ref()).await?;
        let steps = [
            copy::ring(source.ring().as_ref(), target.ring().as_ref())?,
            copy::sweep_pending(&target).await?,
            copy::kms_records(source_keys.as_ref(), target_keys.as_ref())?,
            copy::buckets(source.meta.as_ref(), target.meta.as_ref()).await?,
            copy::users(source.meta.as_ref(), target.meta.as_ref()).await?,
        ];
        for step in steps {
            eprintln!("migrate: {step}");
        }
        eprintln!("migrate: objects…");
        let objects = copy::objects(&source, &target).await?;
        eprintln!("migrate: {objects}");
        eprintln!(
            "migrate: {}",
            copy::audit(&source, &target, target_keys.as_ref())?
        );
        eprintln!("migrate: {}", root_credentials(&dir, &pg, &root, forward)?);
    }
    open_keys(&target, &target_keys, &root, "target")?;

    eprintln!("migrate: counting and hashing both sides…");
    let source_census = report::census(&source, source_keys.as_ref()).await?;
    let target_census = report::census(&target, target_keys.as_ref()).await?;
    let (text, same) = report::render(&source_census, &target_census);
    print!("{text}");
    if same {
        Ok(())
    } else {
        Err(
            "the target does not hold what the source does (see the report); run the \
             migration again to resume it"
                .into(),
        )
    }
}

/// The root credentials: forward, the data dir's `credentials` file is stored sealed for
/// the gateways to share; back, the gateways' shared pair is written to the data dir.
fn root_credentials(
    dir: &Path,
    pg: &PgKeyStore,
    root: &RootKey,
    forward: bool,
) -> Result<String, String> {
    use crate::credentials::{FILE_NAME, SHARED_SETTING, load_shared};
    let (has_file, has_shared) = (
        dir.join(FILE_NAME).is_file(),
        pg.setting(SHARED_SETTING)
            .map_err(|e| e.to_string())?
            .is_some(),
    );
    if (forward && !has_file) || (!forward && !has_shared) {
        return Ok(format!(
            "root credentials: none stored {} (set from the environment?): give the servers \
             COFFER_ROOT_ACCESS_KEY / COFFER_ROOT_SECRET_KEY as before",
            if forward {
                "in the data dir"
            } else {
                "for the gateways"
            }
        ));
    }
    let (shared, _) = load_shared(dir, pg, root)?;
    Ok(format!(
        "root credentials (access key {}): {}",
        shared.access_key,
        if forward {
            "shared with the gateways"
        } else {
            "in the data dir's credentials file"
        }
    ))
}

/// Opens a side's service key ring and every KMS record with the root key: proof that the
/// sealed documents open on that side.
fn open_keys(
    side: &Side,
    keystore: &Arc<dyn KeyStore>,
    root: &Arc<RootKey>,
    which: &str,
) -> Result<(), String> {
    let ring = side.ring();
    if ring.load().map_err(|e| e.to_string())?.is_some() {
        ServiceKeyring::load_or_create_in(ring, root)
            .map_err(|e| format!("the {which}'s service key ring: {e}"))?;
    }
    EmbeddedKms::with_keystore(Arc::clone(keystore), Arc::clone(root), "us-east-1")
        .map_err(|e| format!("the {which}'s KMS keystore does not open with the root key: {e}"))?;
    Ok(())
}

/// The root key: the data dir's `root.key`, or the passphrase with the data dir's salt
/// (forward: the salt then goes to the gateway setting; back: it comes from it).
fn root_key(
    dir: &Path,
    pg: &PgKeyStore,
    forward: bool,
    passphrase_file: Option<&Path>,
) -> Result<RootKey, String> {
    let Some(file) = passphrase_file else {
        let path = RootKey::path(dir);
        if !path.is_file() {
            return Err(format!(
                "{} is missing: {}",
                path.display(),
                if forward {
                    "the data dir's root key is what sealed it (pass --root-passphrase-file if \
                     it used a passphrase)"
                } else {
                    "copy the gateways' root.key there first (mode 0600): the migrated data \
                     dir is sealed by the same root key"
                }
            ));
        }
        let (key, _) = RootKey::load_or_create(dir).map_err(|e| e.to_string())?;
        return Ok(key);
    };
    let passphrase = zeroize::Zeroizing::new(std::fs::read_to_string(file).map_err(|e| {
        format!(
            "cannot read the root passphrase file {}: {e}",
            file.display()
        )
    })?);
    let passphrase = passphrase.trim_end_matches(['\n', '\r']);
    let salt_path = dir.join(SALT_FILE_NAME);
    let local = match std::fs::read_to_string(&salt_path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("{}: {e}", salt_path.display())),
    };
    let shared = pg.setting(SALT_SETTING).map_err(|e| e.to_string())?;
    let salt = match (forward, local, shared) {
        (_, Some(local), Some(shared)) if local != shared => {
            return Err(format!(
                "{} is not the gateways' salt (gateway setting {SALT_SETTING}): these were not \
                 sealed by one root key",
                salt_path.display()
            ));
        }
        (true, Some(local), None) => pg
            .setting_or_insert(SALT_SETTING, local)
            .map_err(|e| e.to_string())?,
        (false, None, Some(shared)) => {
            coffer_files::create_new(&salt_path, shared.as_bytes())
                .map_err(|e| format!("cannot create {}: {e}", salt_path.display()))?;
            shared
        }
        (_, Some(salt), _) => salt,
        (true, None, _) => {
            return Err(format!(
                "{} is missing: a passphrase-derived root key needs its salt",
                salt_path.display()
            ));
        }
        (false, None, None) => {
            return Err(format!(
                "the source database has no {SALT_SETTING} setting: its gateways did not use a \
                 passphrase"
            ));
        }
    };
    RootKey::from_passphrase_and_salt(passphrase.as_bytes(), &salt).map_err(|e| e.to_string())
}
