"""Helpers shared by the interop tests: server process control, clients, data."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from unittest import mock

import boto3
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def coffer_bin() -> Path:
    return Path(os.environ.get("COFFER_BIN", REPO_ROOT / "target" / "debug" / "coffer"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_access_key() -> str:
    return "CF" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(18))


def random_secret_key() -> str:
    alphabet = string.ascii_letters + string.digits + "+/"
    return "".join(secrets.choice(alphabet) for _ in range(40))


def unique_bucket_name(prefix: str = "it") -> str:
    """A fresh, valid bucket name: lowercase, 3-63 chars, unique per call."""
    prefix = "".join(c for c in prefix.lower() if c.isalnum() or c == "-").strip("-")[:30] or "it"
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def _clean_env() -> dict[str, str]:
    """The caller's environment without AWS/Coffer credentials that could leak in."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "COFFER_"))
    }


class CofferServer:
    """One `coffer server` process: startable, stoppable, killable, restartable."""

    def __init__(self, data_dir: Path, log_dir: Path, access_key: str | None, secret_key: str | None,
                 extra_args: list[str] | None = None, extra_env: dict[str, str] | None = None):
        self.data_dir = data_dir
        # Extra `coffer server` flags (e.g. --allow-insecure-sse-c) and environment variables
        # (e.g. a gateway's COFFER_BLOBS_*), kept across restarts.
        self.extra_args = list(extra_args or [])
        self.extra_env = dict(extra_env or {})
        self.log_dir = log_dir
        self.access_key = access_key
        self.secret_key = secret_key
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self._starts = 0
        # A command that execs the rest of its arguments, put in front of the server's (e.g. to
        # enter a cgroup first); it must keep its pid, so that `pid` is the server's.
        self.launcher: list[str] = []

    @property
    def endpoint(self) -> str:
        assert self.port is not None, "server was never started"
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "server is not running"
        return self.proc.pid

    def env(self) -> dict[str, str]:
        env = _clean_env()
        env.setdefault("RUST_BACKTRACE", "1")
        # Every server logs at debug level, so that the secrets grep (test_secrets.py) sees
        # everything the server could say. COFFER_TEST_LOG overrides (e.g. "info").
        env["COFFER_LOG"] = os.environ.get("COFFER_TEST_LOG", "debug")
        if self.access_key is not None:
            env["COFFER_ROOT_ACCESS_KEY"] = self.access_key
            env["COFFER_ROOT_SECRET_KEY"] = self.secret_key or ""
        env.update(self.extra_env)
        return env

    def log_text(self) -> str:
        """Everything every run of this server printed (stdout and stderr)."""
        parts = []
        for p in sorted(self.log_dir.glob("server-*.log")):
            parts.append(p.read_text(errors="replace"))
        return "\n".join(parts)

    def start(self, port: int | None = None) -> None:
        binary = coffer_bin()
        if not binary.exists():
            pytest.fail(
                f"coffer binary not found at {binary}; run `cargo build -p coffer` "
                "or set COFFER_BIN",
                pytrace=False,
            )
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        self.port = port or free_port()
        self._starts += 1
        self.log_path = self.log_dir / f"server-{self._starts}.log"
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                [
                    *self.launcher,
                    str(binary),
                    "server",
                    "--data-dir",
                    str(self.data_dir),
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    *self.extra_args,
                ],
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                pytest.fail(
                    f"coffer server exited with status {rc} during startup; output:\n"
                    f"{self.log_path.read_text(errors='replace')}",
                    pytrace=False,
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    self.register_secrets()
                    return
            except OSError:
                time.sleep(0.05)
        self.kill()
        pytest.fail(
            f"coffer server did not accept connections on port {self.port} within "
            f"{STARTUP_TIMEOUT_S:.0f}s; output:\n{self.log_path.read_text(errors='replace')}",
            pytrace=False,
        )

    def register_secrets(self) -> None:
        """Record this server's secrets for the secrets grep: root key, passphrase, root secret."""
        SECRETS.add("root secret key", self.secret_key)
        root_key = self.data_dir / "root.key"
        if root_key.is_file():
            # `<header><64 hex>\n`: the key is the hex at the end (the raw forms are searched).
            hex_key = root_key.read_text(errors="replace").strip()[-64:]
            try:
                SECRETS.add(f"root key {root_key}", bytes.fromhex(hex_key))
            except ValueError:
                pass
        for i, arg in enumerate(self.extra_args[:-1]):
            if arg == "--root-passphrase-file":
                passphrase = Path(self.extra_args[i + 1])
                if passphrase.is_file():
                    SECRETS.add("root passphrase", passphrase.read_bytes().strip())

    def audit_log_copy(self) -> Path:
        return self.log_dir / "kms-audit.log"

    def save_audit_log(self) -> None:
        """Keep the KMS audit log beside the server logs (the data dir may be removed)."""
        audit = self.data_dir / "kms" / "audit.log"
        if audit.is_file():
            shutil.copyfile(audit, self.audit_log_copy())

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        """Graceful stop (SIGTERM); SIGKILL if it does not exit in time."""
        if not self.running():
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"coffer server did not exit within {STOP_TIMEOUT_S:.0f}s of SIGTERM"
            )

    def kill(self) -> None:
        """SIGKILL, as a crash or power loss would."""
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    def restart(self) -> None:
        """Stop (if running) and start again on the same data dir, on a new port."""
        self.stop()
        self.start()

    def client(self, **kwargs):
        return make_s3_client(self.endpoint, self.access_key, self.secret_key, **kwargs)


class ServerFactory:
    def __init__(self, base: Path):
        self.base = base
        self.servers: list[CofferServer] = []

    def __call__(self, *, with_root_env: bool = True, start: bool = True,
                 extra_args: list[str] | None = None,
                 extra_env: dict[str, str] | None = None) -> CofferServer:
        n = len(self.servers)
        root = self.base / f"srv{n}"
        root.mkdir(parents=True)
        data_dir = root / "data"
        log_dir = root / "logs"
        log_dir.mkdir()
        SERVER_LOG_DIRS.append(log_dir)
        if with_root_env:
            srv = CofferServer(data_dir, log_dir, random_access_key(), random_secret_key(),
                               extra_args, extra_env)
        else:
            srv = CofferServer(data_dir, log_dir, None, None, extra_args, extra_env)
        self.servers.append(srv)
        if start:
            srv.start()
        return srv

    def stop_all(self, remove_data: bool = False) -> None:
        for srv in self.servers:
            try:
                srv.stop()
            except AssertionError:
                pass
            srv.kill()
            srv.save_audit_log()
            if remove_data:
                shutil.rmtree(srv.data_dir, ignore_errors=True)


def make_s3_client(endpoint: str, access_key: str, secret_key: str, *, checksum: str = "when_supported",
                   retries: int = 1, read_timeout: float = 120, **config):
    """A boto3 S3 client in path style against `endpoint`.

    checksum="when_supported" is botocore's default (CRC32 headers on every upload);
    "when_required" sends plain bodies with only the signed sha256.
    """
    cfg = Config(
        region_name=REGION,
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"max_attempts": retries, "mode": "standard"},
        connect_timeout=10,
        read_timeout=read_timeout,
        request_checksum_calculation=checksum,
        **config,
    )
    session = boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
    )
    return session.client("s3", endpoint_url=endpoint, config=cfg)


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def http_status(exc: ClientError) -> int:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)


def expect_error(fn, code: str | None, status: int, *args, **kwargs) -> ClientError:
    """Call fn and assert it fails with the given S3 error code and HTTP status."""
    with pytest.raises(ClientError) as ei:
        fn(*args, **kwargs)
    exc = ei.value
    got_code, got_status = error_code(exc), http_status(exc)
    assert got_status == status and (code is None or got_code == code), (
        f"expected {code or '(any code)'} / HTTP {status}, got {got_code!r} / HTTP {got_status}: "
        f"{exc.response.get('Error')}"
    )
    return exc


def empty_bucket(client, bucket: str) -> None:
    """Delete every object and abort every multipart upload in bucket."""
    try:
        paginator = client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=bucket):
            for up in page.get("Uploads", []):
                client.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
    except ClientError:
        pass
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        for i in range(0, len(keys), 1000):
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys[i:i + 1000], "Quiet": True})
    # Versions and delete markers (a versioned bucket keeps them after the deletes above).
    # Versions under object lock stay: such buckets outlive the test.
    versions = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            versions.append({"Key": entry["Key"], "VersionId": entry["VersionId"]})
    for i in range(0, len(versions), 1000):
        client.delete_objects(Bucket=bucket, Delete={"Objects": versions[i:i + 1000], "Quiet": True},
                              BypassGovernanceRetention=True)


def destroy_bucket(client, bucket: str) -> None:
    try:
        empty_bucket(client, bucket)
        client.delete_bucket(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) not in ("NoSuchBucket", "404"):
            raise


def run_coffer(args: list[str], endpoint: str, access_key: str, secret_key: str,
               check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = _clean_env()
    env["AWS_ACCESS_KEY_ID"] = access_key
    env["AWS_SECRET_ACCESS_KEY"] = secret_key
    env["AWS_DEFAULT_REGION"] = REGION
    proc = subprocess.run(
        [str(coffer_bin()), *args, "--endpoint-url", endpoint],
        env=env, stdin=subprocess.DEVNULL if stdin is None else None, input=stdin,
        capture_output=True, text=True, timeout=60,
    )
    if check:
        assert proc.returncode == 0, (
            f"`coffer {' '.join(args)}` exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
            f"stderr:\n{proc.stderr}"
        )
    return proc


class CofferUser:
    def __init__(self, name: str, access_key: str, secret_key: str, endpoint: str):
        self.name = name
        self.access_key = access_key
        self.secret_key = secret_key
        self.endpoint = endpoint

    def client(self, **kwargs):
        return make_s3_client(self.endpoint, self.access_key, self.secret_key, **kwargs)


def add_user(server: CofferServer, name: str, extra: list[str] | None = None) -> CofferUser:
    proc = run_coffer(["user", "add", name, *(extra or [])], server.endpoint,
                      server.access_key, server.secret_key)
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"`coffer user add` did not print JSON: {proc.stdout!r}") from exc
    for field in ("name", "access_key", "secret_key"):
        assert field in data, f"`coffer user add` JSON lacks {field!r}: {data}"
    assert data["name"] == name, f"`coffer user add` returned name {data['name']!r}, expected {name!r}"
    SECRETS.add(f"secret key of user {name}", data["secret_key"])
    return CofferUser(data["name"], data["access_key"], data["secret_key"], server.endpoint)


# --------------------------------------------------------------------------- aws CLI


def aws_executable() -> str:
    candidate = Path(sys.executable).parent / "aws"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("aws")
    if not found:
        pytest.fail("the aws CLI is not installed in the test venv", pytrace=False)
    return found


class AwsCli:
    def __init__(self, endpoint: str, access_key: str, secret_key: str, config_dir: Path):
        self.endpoint = endpoint
        self.config_file = config_dir / "aws-config"
        self.config_file.write_text(
            f"[default]\nregion = {REGION}\ns3 =\n    addressing_style = path\n"
            "    signature_version = s3v4\n"
        )
        self.env = _clean_env()
        self.env.update(
            AWS_ACCESS_KEY_ID=access_key,
            AWS_SECRET_ACCESS_KEY=secret_key,
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE=str(self.config_file),
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_PAGER="",
        )

    def __call__(self, *args: str, check: bool = True, timeout: float = 600,
                 input_bytes: bytes | None = None) -> subprocess.CompletedProcess:
        cmd = [aws_executable(), "--endpoint-url", self.endpoint, *args]
        proc = subprocess.run(cmd, env=self.env, input=input_bytes if input_bytes is not None else b"",
                              capture_output=True, timeout=timeout)
        proc.stdout = proc.stdout.decode(errors="replace")
        proc.stderr = proc.stderr.decode(errors="replace")
        _register_cli_secrets(args, proc.stdout)
        if check:
            assert proc.returncode == 0, (
                f"`aws {' '.join(args)}` exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
                f"stderr:\n{proc.stderr}"
            )
        return proc

    def json(self, *args: str):
        out = self(*args, "--output", "json").stdout
        return json.loads(out) if out.strip() else {}


def _register_cli_secrets(args: tuple[str, ...], stdout: str) -> None:
    """SSE-C keys on an aws command line, and data keys an aws kms command printed."""
    for i, arg in enumerate(args[:-1]):
        if arg in ("--sse-c-key", "--sse-c-copy-source-key", "--sse-customer-key",
                   "--copy-source-sse-customer-key"):
            value = args[i + 1]
            if value.startswith("fileb://"):
                path = Path(value[len("fileb://"):])
                if path.is_file():
                    SECRETS.add("SSE-C key (aws CLI)", path.read_bytes())
            else:
                SECRETS.add("SSE-C key (aws CLI)", value)
    if '"Plaintext"' in stdout:
        try:
            plaintext = json.loads(stdout).get("Plaintext")
            SECRETS.add("KMS plaintext (aws CLI)", base64.b64decode(plaintext))
        except (ValueError, AttributeError, TypeError):
            pass



# --------------------------------------------------------------------------- s3cmd and rclone


def _tool(name: str, venv: bool) -> str:
    """An executable: from the test venv (PyPI tools), else from PATH (Debian packages)."""
    candidate = Path(sys.executable).parent / name
    if venv and candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        where = "tests/interop/requirements.txt" if venv else "Debian's package (scripts/test)"
        pytest.fail(f"{name} is not installed ({where})", pytrace=False)
    return found


def _run_tool(cmd: list[str], env: dict[str, str], check: bool, timeout: float
              ) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", timeout=timeout)
    if check:
        assert proc.returncode == 0, (
            f"`{' '.join(cmd)}` exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
            f"stderr:\n{proc.stderr}"
        )
    return proc


class S3cmd:
    """s3cmd (from the venv) with a config file of its own in `config_dir`, never ~/.s3cfg:
    path-style requests to `endpoint` (http or https; `ca` is the CA bundle for https),
    SigV4 or, with `signature_v2`, SigV2."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, config_dir: Path, *,
                 signature_v2: bool = False, ca: str | None = None):
        scheme, host = endpoint.split("://", 1)
        self.config_file = config_dir / ("s3cfg-v2" if signature_v2 else "s3cfg")
        # host_bucket without %(bucket)s: path-style requests.
        lines = [
            "[default]",
            f"access_key = {access_key}",
            f"secret_key = {secret_key}",
            f"host_base = {host}",
            f"host_bucket = {host}",
            f"bucket_location = {REGION}",
            f"use_https = {scheme == 'https'}",
            f"signature_v2 = {signature_v2}",
            "check_ssl_certificate = True",
            "check_ssl_hostname = True",
            f"ca_certs_file = {ca or ''}",
            "guess_mime_type = False",
            "progress_meter = False",
        ]
        self.config_file.write_text("\n".join(lines) + "\n")
        self.env = _clean_env()
        self.env["HOME"] = str(config_dir)

    def __call__(self, *args: str, check: bool = True, timeout: float = 300
                 ) -> subprocess.CompletedProcess:
        return _run_tool([_tool("s3cmd", venv=True), "-c", str(self.config_file), *args],
                         self.env, check, timeout)


class Rclone:
    """Debian's rclone with one `s3` remote, `coffer:`, defined by RCLONE_CONFIG_COFFER_*
    variables (provider Other, path style) and an empty config file in `config_dir`, never
    the user's; `ca` is the CA bundle for an https endpoint."""

    REMOTE = "coffer"

    def __init__(self, endpoint: str, access_key: str, secret_key: str, config_dir: Path, *,
                 ca: str | None = None):
        config = config_dir / "rclone.conf"
        config.touch()
        # No RCLONE_* of the caller's: only this remote's settings.
        self.env = {k: v for k, v in _clean_env().items() if not k.startswith("RCLONE_")}
        self.env.update(
            HOME=str(config_dir),
            RCLONE_CONFIG=str(config),
            RCLONE_CONFIG_COFFER_TYPE="s3",
            RCLONE_CONFIG_COFFER_PROVIDER="Other",
            RCLONE_CONFIG_COFFER_ENDPOINT=endpoint,
            RCLONE_CONFIG_COFFER_REGION=REGION,
            RCLONE_CONFIG_COFFER_ACCESS_KEY_ID=access_key,
            RCLONE_CONFIG_COFFER_SECRET_ACCESS_KEY=secret_key,
            RCLONE_CONFIG_COFFER_FORCE_PATH_STYLE="true",
        )
        self.ca = ca

    def __call__(self, *args: str, check: bool = True, timeout: float = 300
                 ) -> subprocess.CompletedProcess:
        ca = ["--ca-cert", self.ca] if self.ca else []
        return _run_tool([_tool("rclone", venv=False), *ca, "--retries", "1",
                          "--low-level-retries", "1", *args], self.env, check, timeout)

# --------------------------------------------------------------------------- data helpers


class DeterministicStream:
    """A seekable, read-only file of `size` pseudo-random bytes that never holds them all.

    The content is a 1 MiB random block rotated by a per-block offset, so consecutive
    MiBs differ and the whole file is a pure function of (seed, size).
    """

    BLOCK = 1 << 20

    def __init__(self, size: int, seed: int = 0):
        import random

        self.size = size
        self.pos = 0
        self._base = random.Random(seed).randbytes(self.BLOCK)
        self._doubled = self._base + self._base

    def _block_bytes(self, index: int, start: int, end: int) -> bytes:
        shift = (index * 7919) % self.BLOCK
        return self._doubled[shift + start: shift + end]

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, self.size - self.pos)
        out = []
        while n > 0:
            index, off = divmod(self.pos, self.BLOCK)
            take = min(n, self.BLOCK - off)
            out.append(self._block_bytes(index, off, off + take))
            self.pos += take
            n -= take
        return b"".join(out)

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            self.pos = offset
        elif whence == 1:
            self.pos += offset
        else:
            self.pos = self.size + offset
        self.pos = max(0, min(self.pos, self.size))
        return self.pos

    def tell(self) -> int:
        return self.pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def __len__(self) -> int:
        return self.size

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- manual SigV4

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class _PresetPayloadAuth(S3SigV4Auth):
    """botocore's S3 SigV4 signer, but with an x-amz-content-sha256 of our choosing."""

    def __init__(self, credentials, region: str, payload_hash: str | None):
        super().__init__(credentials, "s3", region)
        self._payload_hash = payload_hash

    def _modify_request_before_signing(self, request):
        SigV4Auth._modify_request_before_signing(self, request)
        if "X-Amz-Content-SHA256" in request.headers:
            del request.headers["X-Amz-Content-SHA256"]
        request.headers["X-Amz-Content-SHA256"] = (
            self._payload_hash if self._payload_hash is not None else self.payload(request)
        )


class SignedRequest:
    """The result of `sign_request`: headers to send, plus what chunk signing needs."""

    def __init__(self, headers: dict[str, str], signature: str, timestamp: str):
        self.headers = headers
        self.signature = signature
        self.timestamp = timestamp

    @property
    def scope(self) -> str:
        return f"{self.timestamp[:8]}/{REGION}/s3/aws4_request"


def sign_request(method: str, url: str, access_key: str, secret_key: str, *,
                 headers: dict[str, str] | None = None, body: bytes = b"",
                 payload_hash: str | None = None, when: datetime.datetime | None = None) -> SignedRequest:
    """Sign a request with SigV4 the way botocore does, optionally at another time.

    payload_hash sets x-amz-content-sha256 verbatim (a wrong hash, or a STREAMING-*
    value); by default it is the sha256 of body. Returns the headers to send.
    """
    req = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=body)
    auth = _PresetPayloadAuth(Credentials(access_key, secret_key), REGION, payload_hash)
    if when is None:
        auth.add_auth(req)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            auth.add_auth(req)
    signature = req.headers["Authorization"].rsplit("Signature=", 1)[1]
    return SignedRequest(dict(req.headers.items()), signature, req.context["timestamp"])


def sigv4_signing_key(secret_key: str, date: str, region: str = REGION, service: str = "s3") -> bytes:
    def _h(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    return _h(_h(_h(_h(f"AWS4{secret_key}".encode(), date), region), service), "aws4_request")


def chunk_signature(signing_key: bytes, timestamp: str, scope: str, previous: str, chunk: bytes) -> str:
    """The signature of one aws-chunked chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)."""
    string_to_sign = "\n".join([
        "AWS4-HMAC-SHA256-PAYLOAD",
        timestamp,
        scope,
        previous,
        EMPTY_SHA256,
        hashlib.sha256(chunk).hexdigest(),
    ])
    return hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def s3_error(response) -> tuple[str, str]:
    """(Code, Message) from an S3 XML error body of a `requests` response."""
    try:
        root = ET.fromstring(response.content)
    except ET.ParseError:
        return ("", response.text[:200])
    code = root.findtext("Code") or root.findtext("{*}Code") or ""
    msg = root.findtext("Message") or root.findtext("{*}Message") or ""
    return (code, msg)


# --------------------------------------------------------------------------- sealed objects

CHUNK = 64 * 1024
TAG = 16
SEALED_CHUNK = CHUNK + TAG


def sealed_size(n: int) -> int:
    """Bytes a sealed part of n plaintext bytes takes on disk (docs/format.md §3)."""
    return n + TAG * max(1, -(-n // CHUNK))


@contextlib.contextmanager
def raw_headers(client, headers: dict[str, str]):
    """Extra signed request headers on every call in the block (boto3 has no typed SM4)."""
    def add(request, **_):
        for name, value in headers.items():
            request.headers[name] = value

    client.meta.events.register_first("before-sign.s3", add)
    try:
        yield
    finally:
        client.meta.events.unregister("before-sign.s3", add)


def wrap_for_import(public_key_der: bytes, material: bytes) -> bytes:
    """BYOK: key material wrapped for ImportKeyMaterial with RSAES-OAEP, SHA-256 and
    MGF1-SHA-256, as `RSAES_OAEP_SHA_256` names it (the AWS docs' recipe)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    # Looked up on the module at call time: conftest's BYOK hook wraps it to record `material`.
    public_key = serialization.load_der_public_key(public_key_der)
    return public_key.encrypt(material, padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()),
                                                     algorithm=hashes.SHA256(), label=None))


def import_key_material(kms, key_id: str, material: bytes) -> None:
    """BYOK through boto3's KMS client: GetParametersForImport, then ImportKeyMaterial of
    `material` that does not expire."""
    params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                           WrappingKeySpec="RSA_2048")
    kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"],
                            EncryptedKeyMaterial=wrap_for_import(params["PublicKey"], material),
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")


def kms_client(srv):
    """boto3's KMS client against a coffer server's embedded KMS, as root."""
    session = boto3.session.Session(aws_access_key_id=srv.access_key,
                                    aws_secret_access_key=srv.secret_key, region_name=REGION)
    cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60)
    return session.client("kms", endpoint_url=srv.endpoint, config=cfg)


class SseWriter:
    """Writes and reads objects of one bucket in one encryption mode through boto3.

    Modes: "plain" (no encryption parameter: plaintext only in a bucket that opted out, see
    `opt_out_of_encryption`; else the server's default), "AES256", "SM4" (a raw header: boto3 has no typed SM4), "aws:kms" and
    "aws:kms+bk" (bucket keys; both under `kms_key_id`, or the default key), "SSE-C".
    """

    def __init__(self, client, bucket: str, mode: str, customer_key: bytes | None = None,
                 kms_key_id: str | None = None):
        self.c = client
        self.bucket = bucket
        self.mode = mode
        self.ck = customer_key
        self.kms_key_id = kms_key_id
        if mode == "SSE-C":
            assert customer_key is not None, "SSE-C needs a customer key"
            SECRETS.add("SSE-C key", customer_key)

    def _write_kw(self) -> tuple[dict, dict]:
        if self.mode == "AES256":
            return {"ServerSideEncryption": "AES256"}, {}
        if self.mode == "SM4":
            return {}, {"x-amz-server-side-encryption": "SM4"}
        if self.mode.startswith("aws:kms"):
            kw = {"ServerSideEncryption": "aws:kms"}
            if self.kms_key_id is not None:
                kw["SSEKMSKeyId"] = self.kms_key_id
            if self.mode == "aws:kms+bk":
                kw["BucketKeyEnabled"] = True
            return kw, {}
        if self.mode == "SSE-C":
            return self.key_kw(), {}
        assert self.mode == "plain", f"unknown mode {self.mode}"
        return {}, {}

    def key_kw(self) -> dict:
        """What a read (or UploadPart) of this mode must present."""
        if self.mode == "SSE-C":
            return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": self.ck}
        return {}

    def put(self, key: str, body: bytes):
        kw, raw = self._write_kw()
        with raw_headers(self.c, raw):
            r = self.c.put_object(Bucket=self.bucket, Key=key, Body=body, **kw)
        self._check_echo(r)
        return r

    def multipart(self, key: str, parts: list[bytes], *, key_at_complete: bool = False):
        """A multipart upload of `parts`. SSE-C: the key goes with every UploadPart, and with
        CompleteMultipartUpload only if `key_at_complete` (S3 does not require it there)."""
        kw, raw = self._write_kw()
        with raw_headers(self.c, raw):
            r = self.c.create_multipart_upload(Bucket=self.bucket, Key=key, **kw)
        self._check_echo(r)
        uid = r["UploadId"]
        etags = []
        for n, body in enumerate(parts, start=1):
            r = self.c.upload_part(Bucket=self.bucket, Key=key, UploadId=uid, PartNumber=n, Body=body,
                                   **self.key_kw())
            self._check_echo(r)
            etags.append({"PartNumber": n, "ETag": r["ETag"]})
        complete_kw = self.key_kw() if key_at_complete else {}
        return self.c.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=uid,
                                                MultipartUpload={"Parts": etags}, **complete_kw)

    def get(self, key: str, **kw) -> bytes:
        return self.c.get_object(Bucket=self.bucket, Key=key, **self.key_kw(), **kw)["Body"].read()

    def _check_echo(self, r):
        h = r["ResponseMetadata"]["HTTPHeaders"]
        if self.mode == "SSE-C":
            assert h.get("x-amz-server-side-encryption-customer-algorithm") == "AES256", h
        elif self.mode.startswith("aws:kms"):
            assert h.get("x-amz-server-side-encryption") == "aws:kms", h
        elif self.mode != "plain":
            assert h.get("x-amz-server-side-encryption") == self.mode, h


def opt_out_of_encryption(client, bucket: str) -> None:
    """The bucket's explicit opt-out of encryption at rest (`SSEAlgorithm` `none`): objects
    written there without encryption headers are stored in plaintext. Tests use it for
    plaintext controls and "plain" cells; without it every object is sealed."""
    client.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "none"}}]
        },
    )


def blob_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "blobs").rglob("*") if p.is_file())


def flip(path: Path, offset: int, mask: int = 0x01) -> None:
    """XOR one byte of a file in place."""
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ mask]))


def windows(marker: bytes) -> list[bytes]:
    """64-byte windows of a marker (>= 334 KiB), at odd offsets and across a 64 KiB boundary."""
    offsets = [0, 1, 4093, CHUNK - 32, CHUNK + 17, 333_333, len(marker) // 2 + 5, len(marker) - 64]
    return [marker[o:o + 64] for o in offsets]


def find_in_files(files: list[Path], needles: dict[str, bytes]) -> list[str]:
    """'<needle name> in <file>' for every needle found in any of the files."""
    hits = []
    for f in files:
        content = f.read_bytes()
        hits += [f"{name} in {f}" for name, needle in needles.items() if needle in content]
    return hits


# --------------------------------------------------------------------------- offline inspection


def inspect_object(data_dir: Path, bucket: str, key: str, version_id: str | None = None) -> dict:
    """`coffer inspect object`: the record and decoded envelope (server stopped)."""
    version = ["--version-id", version_id] if version_id else []
    proc = subprocess.run(
        [str(coffer_bin()), "inspect", "object", "--data-dir", str(data_dir), *version, bucket, key],
        env=_clean_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, f"coffer inspect object failed ({proc.returncode}): {proc.stderr}"
    return json.loads(proc.stdout)


def tamper_set_record(data_dir: Path, bucket: str, key: str, record: dict,
                      version_id: str | None = None) -> None:
    """The hidden `coffer inspect tamper-set-record`: overwrite a record unchecked (server stopped)."""
    version = ["--version-id", version_id] if version_id else []
    proc = subprocess.run(
        [str(coffer_bin()), "inspect", "tamper-set-record", "--data-dir", str(data_dir), *version,
         bucket, key],
        env=_clean_env(), input=json.dumps(record), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, f"coffer inspect tamper-set-record failed ({proc.returncode}): {proc.stderr}"


# --------------------------------------------------------------------------- secrets registry


class SecretRegistry:
    """Every secret the suite handles, so that a last test can grep the logs for them.

    A secret is kept as bytes and searched for raw, as hex (both cases) and as base64
    (standard and URL-safe, with and without padding). Short values are refused: a 4-byte
    "secret" would match by chance.
    """

    MIN_LEN = 12

    def __init__(self):
        self._secrets: dict[bytes, str] = {}

    def add(self, label: str, value: bytes | str | None) -> None:
        if value is None:
            return
        raw = value.encode() if isinstance(value, str) else bytes(value)
        if len(raw) >= self.MIN_LEN:
            self._secrets.setdefault(raw, label)

    def items(self) -> list[tuple[str, bytes]]:
        return [(label, raw) for raw, label in self._secrets.items()]

    @staticmethod
    def forms(raw: bytes) -> dict[str, bytes]:
        b64 = base64.b64encode(raw)
        url = base64.urlsafe_b64encode(raw)
        return {
            "raw": raw,
            "hex": raw.hex().encode(),
            "HEX": raw.hex().upper().encode(),
            "base64": b64.rstrip(b"="),
            "base64url": url.rstrip(b"="),
        }

    def find_in(self, haystacks: dict[str, bytes]) -> list[str]:
        """'<label> (<form>) in <name>' for every secret form found in any haystack."""
        hits = []
        for label, raw in self.items():
            for form, needle in self.forms(raw).items():
                for name, hay in haystacks.items():
                    if needle in hay:
                        hits.append(f"{label} ({form}) in {name}")
        return hits


SECRETS = SecretRegistry()
# Logs of every server the suite started (kept for the session, even when data dirs go).
SERVER_LOG_DIRS: list[Path] = []
# Error bodies the tests captured (bytes), for the secrets grep.
ERROR_BODIES: list[bytes] = []


# --------------------------------------------------------------------------- admin API


def admin_call(server: CofferServer, method: str, path: str, body: dict | None = None) -> dict:
    """A root-signed call to the admin API (`/_coffer/admin/<path>`); the JSON answer."""
    import urllib.request

    url = f"{server.endpoint}/_coffer/admin/{path}"
    data = json.dumps(body).encode() if body is not None else b""
    signed = sign_request(method, url, server.access_key, server.secret_key, body=data)
    request = urllib.request.Request(url, data=data if data else None, method=method,
                                     headers=signed.headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        text = response.read()
    return json.loads(text) if text else {}


def advance_clock(server: CofferServer, days: float) -> None:
    """Moves a `--test-clock` server's object clock forward."""
    admin_call(server, "POST", "clock", {"seconds": int(days * 86400)})


def run_lifecycle(server: CofferServer) -> dict:
    """One lifecycle pass now; its report."""
    return admin_call(server, "POST", "lifecycle/run")
