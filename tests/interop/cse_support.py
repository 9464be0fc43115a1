"""Helpers for the client-side encryption tests (test_cse*.py).

- `Coffer`: runs the real `coffer` CLI (cp/cat/ls/rm/cse) with the server's credentials, bytes in
  and out, optionally through a `RecordingProxy`;
- `RecordingProxy`: a tiny HTTP proxy that forwards every request to the server unchanged and
  records it whole (request line, headers, body), to prove that no key material goes over the wire;
- key material: AES key files (`coffer cse generate-key`), RSA PEM pairs, KMS keys.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import os
import subprocess
import threading
from pathlib import Path

import boto3
from botocore.config import Config
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from support import REGION, _clean_env, coffer_bin

MiB = 1 << 20


class Coffer:
    """The `coffer` binary as a client of `endpoint`, with root credentials."""

    def __init__(self, server, endpoint: str | None = None, env: dict[str, str] | None = None):
        self.server = server
        self.endpoint = endpoint or server.endpoint
        self.extra_env = dict(env or {})

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        env = _clean_env()
        env.update(AWS_ACCESS_KEY_ID=self.server.access_key, AWS_SECRET_ACCESS_KEY=self.server.secret_key,
                   AWS_REGION=REGION, **self.extra_env)
        # `cse generate-key` is offline: it takes no endpoint.
        remote = [] if args[:2] == ("cse", "generate-key") else ["--endpoint-url", self.endpoint]
        proc = subprocess.run([str(coffer_bin()), *args, *remote], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        if check:
            assert proc.returncode == 0, (
                f"`coffer {' '.join(args)}` exited {proc.returncode}\n"
                f"stderr:\n{proc.stderr.decode(errors='replace')}"
            )
        return proc

    def fails(self, *args: str, expect: str) -> str:
        """Runs a command that must fail with `expect` in its message; returns stderr."""
        proc = self(*args, check=False)
        err = proc.stderr.decode(errors="replace")
        assert proc.returncode != 0, f"`coffer {' '.join(args)}` succeeded; stderr: {err}"
        assert expect.lower() in err.lower(), f"`coffer {' '.join(args)}`: expected {expect!r} in: {err}"
        return err


# --------------------------------------------------------------------------- recording proxy


class RecordingProxy:
    """Forwards HTTP/1.1 requests to `target_port` on loopback; keeps every request whole."""

    def __init__(self, target_port: int):
        self.requests: list[bytes] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                raw = (self.requestline + "\r\n" + str(self.headers)).encode("latin-1") + body
                proxy.requests.append(raw)
                conn = http.client.HTTPConnection("127.0.0.1", target_port, timeout=120)
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    conn.putheader(name, value)
                conn.endheaders(body if body else None)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response_only(resp.status, resp.reason)
                for name, value in resp.getheaders():
                    if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(name, value)
                if self.command == "HEAD":
                    self.send_header("Content-Length", resp.getheader("Content-Length", "0"))
                else:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def assert_never_sent(self, secret: bytes, what: str) -> None:
        """`secret` appears in no recorded request: raw, hex (either case) or base64."""
        forms = {
            "raw": secret,
            "hex": secret.hex().encode(),
            "HEX": secret.hex().upper().encode(),
            "base64": base64.b64encode(secret),
            "base64url": base64.urlsafe_b64encode(secret).rstrip(b"="),
        }
        assert self.requests, "the proxy recorded no request"
        for i, request in enumerate(self.requests):
            for form, needle in forms.items():
                assert needle not in request, (
                    f"{what} ({form}) was sent in request #{i}: {request[:200]!r}"
                )


# --------------------------------------------------------------------------- keys


def rsa_pair(directory: Path, name: str = "rsa") -> tuple[Path, Path, rsa.RSAPrivateKey]:
    """A fresh RSA-2048 pair as PEM files (PKCS#8 private, SPKI public)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = directory / f"{name}.private.pem"
    public = directory / f"{name}.public.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    os.chmod(private, 0o600)
    return public, private, key


def rsa_der_secrets(key: rsa.RSAPrivateKey) -> list[bytes]:
    """Private key material that must never leave the client: DER, and the primes."""
    numbers = key.private_numbers()
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return [der, numbers.p.to_bytes(128, "big"), numbers.q.to_bytes(128, "big"),
            numbers.d.to_bytes(256, "big")]


def aes_key_file(coffer: Coffer, directory: Path, name: str = "master.key") -> tuple[Path, bytes]:
    """A key file made by `coffer cse generate-key`, and its 32 key bytes."""
    path = directory / name
    coffer("cse", "generate-key", str(path))
    assert (path.stat().st_mode & 0o777) == 0o600, f"key file mode {oct(path.stat().st_mode)}"
    key = base64.b64decode(path.read_text().strip())
    assert len(key) == 32
    return path, key


def kms_client(server):
    session = boto3.session.Session(aws_access_key_id=server.access_key,
                                    aws_secret_access_key=server.secret_key, region_name=REGION)
    cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60)
    return session.client("kms", endpoint_url=server.endpoint, config=cfg)


def raw_object(s3, bucket: str, key: str) -> tuple[bytes, dict[str, str], str]:
    """The stored bytes, user metadata and ETag, as plain boto3 sees them."""
    got = s3.get_object(Bucket=bucket, Key=key)
    return got["Body"].read(), got["Metadata"], got["ETag"]


def assert_metadata_hides(metadata: dict[str, str], secret: bytes, what: str) -> None:
    """No metadata value holds `secret` (raw in a base64 value, hex or base64)."""
    for name, value in metadata.items():
        for form in (secret.hex(), secret.hex().upper(), base64.b64encode(secret).decode()):
            assert form not in value, f"{what} appears in metadata {name}"
        try:
            decoded = base64.b64decode(value, validate=True)
        except Exception:  # noqa: BLE001 - not base64: nothing hidden in it
            continue
        assert secret not in decoded, f"{what} appears (base64) in metadata {name}"
