//! The PKCS#11 backend against a real softhsm2 token in a temp dir: the KMS
//! contract suite, the token as the truth of key state, failing closed while
//! the token is away and recovering when it is back, and the root-key wrapper.
//! Skipped when softhsm2 is not installed, unless `COFFER_REQUIRE_SOFTHSM` is
//! set (scripts/test installs it and sets it).

use std::path::{Path, PathBuf};
use std::process::Command;

use coffer_kms::contract::{self, Harness};
use coffer_kms::kms::KeyState;
use coffer_kms::root_key::RootKeyWrapper;
use coffer_kms::{CallContext, EncryptionContext, KmsAdmin, KmsDataPlane, KmsError, RootKey};
use coffer_kms_pkcs11::{Pkcs11Kms, TokenRootWrapper, TokenUri};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A softhsm2 token `coffer` in a temp dir, with its PIN in a file.
struct SoftHsm {
    dir: PathBuf,
    _owned: Option<tempfile::TempDir>,
}

impl SoftHsm {
    fn start() -> Option<SoftHsm> {
        if !Path::new(MODULE).exists() {
            assert!(
                std::env::var_os("COFFER_REQUIRE_SOFTHSM").is_none(),
                "COFFER_REQUIRE_SOFTHSM is set but {MODULE} is missing (apt-get install softhsm2)"
            );
            eprintln!("skipped: softhsm2 is not installed ({MODULE})");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("tokens")).expect("tokens dir");
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .expect("conf");
        std::fs::write(dir.path().join("pin"), "1234\n").expect("pin");
        let status = Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                "coffer",
                "--pin",
                "1234",
                "--so-pin",
                "5678",
            ])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .expect("run softhsm2-util");
        assert!(status.status.success(), "softhsm2-util: {status:?}");
        Some(SoftHsm {
            dir: dir.path().to_owned(),
            _owned: Some(dir),
        })
    }

    fn uri(&self, object: Option<&str>) -> TokenUri {
        let object = object.map(|o| format!(";object={o}")).unwrap_or_default();
        TokenUri::parse(&format!(
            "pkcs11:token=coffer{object}?module-path={MODULE}&pin-source=file:{}",
            self.dir.join("pin").display()
        ))
        .expect("uri")
    }

    fn tokens(&self) -> PathBuf {
        self.dir.join("tokens")
    }
}

struct Fixture(Pkcs11Kms);

fn ctx() -> CallContext {
    CallContext {
        principal: "test".into(),
        resource: None,
    }
}

impl Harness for Fixture {
    fn kms(&self) -> &dyn KmsDataPlane {
        &self.0
    }
    fn create_key(&self) -> String {
        self.0
            .create_key(
                &ctx(),
                coffer_kms::kms::CreateKey {
                    description: String::new(),
                    key_spec: coffer_kms::kms::KeySpec::SymmetricDefault,
                    origin: coffer_kms::kms::Origin::Generated,
                    tags: vec![],
                    policy: None,
                },
            )
            .expect("create key")
            .key_id
    }
    fn set_enabled(&self, key: &str, enabled: bool) {
        if enabled {
            self.0.enable_key(&ctx(), key).expect("enable");
        } else {
            self.0.disable_key(&ctx(), key).expect("disable");
        }
    }
    fn rotate(&self, key: &str) {
        self.0.rotate_key_on_demand(&ctx(), key).expect("rotate");
    }
}

/// softhsm2 finds its token dir through SOFTHSM2_CONF in the process
/// environment, which a test may not set (no unsafe code): this test makes a
/// token and runs [`on_the_token`] in a child test process with it set.
#[test]
fn pkcs11_backend_on_softhsm2() {
    let Some(hsm) = SoftHsm::start() else { return };
    let output = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "on_the_token", "--ignored", "--nocapture"])
        .env("SOFTHSM2_CONF", hsm.dir.as_path().join("softhsm2.conf"))
        .env("COFFER_TEST_SOFTHSM_DIR", hsm.dir.as_path())
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The checks, in the child process [`pkcs11_backend_on_softhsm2`] starts.
#[test]
#[ignore = "run by pkcs11_backend_on_softhsm2 with SOFTHSM2_CONF set"]
fn on_the_token() {
    let dir =
        std::env::var_os("COFFER_TEST_SOFTHSM_DIR").expect("run by pkcs11_backend_on_softhsm2");
    let hsm = SoftHsm {
        dir: PathBuf::from(dir),
        _owned: None,
    };
    let kms = Pkcs11Kms::open(hsm.uri(None), "us-east-1").expect("open the token");
    let fixture = Fixture(kms);
    contract::run(&fixture);
    let kms = &fixture.0;

    // Deletion: scheduled ⇒ PendingDeletion and unusable; cancelled ⇒ Disabled.
    let key = fixture.create_key();
    let meta = kms
        .schedule_key_deletion(&ctx(), &key, 7)
        .expect("schedule");
    assert_eq!(meta.state, KeyState::PendingDeletion);
    assert!(meta.deletion_date.is_some());
    assert!(matches!(
        kms.generate_data_key(&ctx(), &key, &EncryptionContext::new()),
        Err(KmsError::InvalidState { .. })
    ));
    let meta = kms.cancel_key_deletion(&ctx(), &key).expect("cancel");
    assert_eq!(meta.state, KeyState::Disabled);

    // Aliases live in the token too.
    let key = fixture.create_key();
    kms.create_alias(&ctx(), "alias/app", &key).expect("alias");
    let described = kms.describe_key(&ctx(), "alias/app").expect("by alias");
    assert_eq!(described.key_id, key);
    assert!(matches!(
        kms.create_alias(&ctx(), "alias/app", &key),
        Err(KmsError::AlreadyExists(_))
    ));

    // The token away ⇒ every call fails closed; back ⇒ calls work again.
    let blob = kms
        .generate_data_key(&ctx(), &key, &EncryptionContext::new())
        .expect("generate")
        .ciphertext_blob;
    let away = hsm.dir.as_path().join("away");
    std::fs::rename(hsm.tokens(), &away).expect("take the token away");
    std::fs::create_dir(hsm.tokens()).expect("empty token dir");
    for _ in 0..2 {
        let result = kms.decrypt(&ctx(), &blob, &EncryptionContext::new(), None);
        assert!(
            matches!(result, Err(KmsError::Internal(_))),
            "{:?}",
            result.err()
        );
        assert!(kms.check_ready().is_err());
    }
    std::fs::remove_dir(hsm.tokens()).expect("remove the empty dir");
    std::fs::rename(&away, hsm.tokens()).expect("bring the token back");
    kms.decrypt(&ctx(), &blob, &EncryptionContext::new(), None)
        .expect("decrypt once the token is back");
    kms.check_ready().expect("ready again");
    drop(fixture);

    // The root key wrapped by a token key; a missing key is refused clearly.
    let missing = TokenRootWrapper::open(hsm.uri(Some("coffer-root")))
        .err()
        .expect("no such key yet");
    assert!(missing.contains("coffer-root"), "{missing}");
    let kms = Pkcs11Kms::open(hsm.uri(None), "us-east-1").expect("open");
    let wrapping_key = Fixture(kms).create_key();
    let wrapper = TokenRootWrapper::open(hsm.uri(Some(&wrapping_key))).expect("wrapper");
    let data_dir = tempfile::tempdir().expect("data dir");
    let (root, _) = RootKey::load_or_create_wrapped(data_dir.path(), &wrapper).expect("create");
    let sealed = root.seal("ctx", b"secret").expect("seal");
    let (again, _) = RootKey::load_or_create_wrapped(data_dir.path(), &wrapper).expect("load");
    assert_eq!(
        again.open("ctx", &sealed).expect("open").as_slice(),
        b"secret"
    );
    let wrapped = std::fs::read_to_string(RootKey::wrapped_path(data_dir.path())).expect("file");
    assert!(wrapper.unwrap(b"too short").is_err());
    assert!(wrapped.starts_with("coffer-root-key-wrapped-v1\n"));
}
