//! The KMS contract suite (`coffer_kms::contract`) against a real KMIP server: PyKMIP's, started
//! by `tests/interop/kmip_server.py` on a free loopback port with mutual TLS.
//!
//! It needs a Python with PyKMIP: `COFFER_KMIP_PYTHON`, else the repository's `.venv` (which
//! `scripts/test` makes from tests/interop/requirements.txt). Without one the test says so and
//! passes; the interop suite (test_kms_kmip.py) runs the backend end to end in every case.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coffer_kms::kms::{CallContext, CreateKey, KeySpec, KmsAdmin, KmsDataPlane, Origin};
use coffer_kms_kmip::{KmipConfig, KmipKms};

/// Kills the PyKMIP server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python_with_pykmip() -> Option<PathBuf> {
    let python = std::env::var_os("COFFER_KMIP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    let imports = Command::new(&python)
        .args(["-c", "import kmip.services.server"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    imports.then_some(python)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

struct Harness {
    kms: KmipKms,
}

fn ctx() -> CallContext {
    CallContext {
        principal: "contract".to_owned(),
        resource: None,
    }
}

impl coffer_kms::contract::Harness for Harness {
    fn kms(&self) -> &dyn KmsDataPlane {
        &self.kms
    }

    fn create_key(&self) -> String {
        let request = CreateKey {
            description: String::new(),
            key_spec: KeySpec::SymmetricDefault,
            origin: Origin::Generated,
            tags: Vec::new(),
            policy: None,
        };
        self.kms
            .create_key(&ctx(), request)
            .expect("create a key in the KMIP server")
            .key_id
    }

    fn set_enabled(&self, key: &str, enabled: bool) {
        assert!(!enabled, "KMIP keys are never enabled again");
        self.kms
            .disable_key(&ctx(), key)
            .expect("revoke the key in the KMIP server");
    }

    fn rotate(&self, _key: &str) {
        unreachable!("can_rotate is false");
    }

    fn can_reenable(&self) -> bool {
        false
    }

    fn can_rotate(&self) -> bool {
        false
    }
}

#[test]
fn the_kmip_backend_keeps_the_kms_contract() {
    let Some(python) = python_with_pykmip() else {
        eprintln!("skipped: no Python with PyKMIP (set COFFER_KMIP_PYTHON or make .venv)");
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let _server = Server(
        Command::new(python)
            .arg(repo_root().join("tests/interop/kmip_server.py"))
            .arg(dir.path())
            .arg(port.to_string())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the PyKMIP server"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the PyKMIP server did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let path = |name: &str| dir.path().join(name).display().to_string();
    let config = KmipConfig::parse(&format!(
        "//127.0.0.1:{port}?ca={}&cert={}&key={}",
        path("ca.pem"),
        path("client.pem"),
        path("client.key")
    ))
    .expect("a valid setting");
    let kms = KmipKms::connect(config).expect("connect to the PyKMIP server");
    coffer_kms::contract::run(&Harness { kms });
}
