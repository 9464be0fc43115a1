"""A throwaway PyKMIP server for the KMIP backend's tests (test_kms_kmip.py).

`KmipServer(directory)` makes a CA, a server certificate and a client certificate (ECDSA P-256:
PyKMIP's `TLS1.2` suite offers only TLS 1.2 with ECDHE-ECDSA-AES-GCM among the suites rustls
also speaks), then runs PyKMIP's server in its own process on a free loopback port, with mutual
TLS and a SQLite database in the directory, so that `stop()` then `start()` keeps the keys.
`python kmip_server.py DIR PORT` is that process (it makes the certificates too if DIR has none). `client()` is PyKMIP's own client, for doing
to a key in the backend what its administrator would (revoking, destroying).
"""

from __future__ import annotations

import datetime
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

STARTUP_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_pki(directory: Path) -> None:
    """ca.pem, server.pem/server.key (127.0.0.1, localhost), client.pem/client.key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def pem_key(key) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("coffer test KMIP CA"))
          .issuer_name(name("coffer test KMIP CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                         critical=True)
          .sign(ca_key, hashes.SHA256()))
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def leaf(stem: str, common_name: str, usage, sans) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(name(common_name))
                   .issuer_name(ca.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=2))
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        (directory / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        path = directory / f"{stem}.key"
        path.write_bytes(pem_key(key))
        path.chmod(0o600)

    leaf("server", "localhost", ExtendedKeyUsageOID.SERVER_AUTH,
         [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    leaf("client", "coffer", ExtendedKeyUsageOID.CLIENT_AUTH, [])


class KmipServer:
    """One PyKMIP server process over `directory` (certificates, database, log)."""

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        if not (directory / "ca.pem").exists():
            _write_pki(directory)
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    def backend_setting(self, **extra: str) -> str:
        """The `--kms-backend` value that points Coffer at this server."""
        query = {
            "ca": self.directory / "ca.pem",
            "cert": self.directory / "client.pem",
            "key": self.directory / "client.key",
            **extra,
        }
        return f"kmip://127.0.0.1:{self.port}?" + "&".join(f"{k}={v}" for k, v in query.items())

    def start(self) -> None:
        log = open(self.directory / "server.out", "ab")
        self.process = subprocess.Popen(
            [sys.executable, __file__, str(self.directory), str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the PyKMIP server exited:\n" + self.log_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the PyKMIP server did not listen in time:\n" + self.log_text())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # SIGKILL: an unreachable backend, as after a crash (PyKMIP's own SIGTERM handling
            # waits on its session threads).
            self.process.kill()
            self.process.wait(timeout=15)
        self.process = None

    def log_text(self) -> str:
        path = self.directory / "server.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self):
        """PyKMIP's client over mutual TLS, opened; close it with `.close()`."""
        from kmip.pie.client import ProxyKmipClient
        from kmip.core import enums

        client = ProxyKmipClient(
            hostname="127.0.0.1", port=self.port,
            cert=str(self.directory / "client.pem"), key=str(self.directory / "client.key"),
            ca=str(self.directory / "ca.pem"), ssl_version="PROTOCOL_TLSv1_2",
            config_file="/dev/null", kmip_version=enums.KMIPVersion.KMIP_1_4,
        )
        client.open()
        return client


def _serve(directory: Path, port: int) -> None:
    import logging

    from kmip.services.server import KmipServer as PyKmipServer

    server = PyKmipServer(
        hostname="127.0.0.1", port=port,
        certificate_path=str(directory / "server.pem"), key_path=str(directory / "server.key"),
        ca_path=str(directory / "ca.pem"), auth_suite="TLS1.2",
        config_path=None, log_path=str(directory / "server.log"),
        policy_path=str(directory), enable_tls_client_auth=True,
        logging_level=logging.INFO, database_path=str(directory / "keys.db"),
    )
    with server:
        server.serve()


if __name__ == "__main__":
    root = Path(sys.argv[1])
    if not (root / "ca.pem").exists():
        root.mkdir(parents=True, exist_ok=True)
        _write_pki(root)
    _serve(root, int(sys.argv[2]))
