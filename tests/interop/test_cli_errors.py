"""`coffer` client commands fail with messages a person can act on, and behave in pipelines.

- A stopped server: "connection refused — is the server at URL running? (set --endpoint-url or
  AWS_ENDPOINT_URL)" from every client command, exit status 1.
- SSE-C over plain HTTP: the server's refusal names https and `--tls-listen`; `coffer bench
  --sse SSE-C` against a plain-HTTP endpoint says what to do instead.
- `coffer cp - s3://b/k` uploads stdin (multipart past the part size), byte for byte, and
  with `--encrypt` in the aws formats (the oss format needs the size first: refused).
- `coffer ls … | head -1` and `coffer cat … | head -c N` end quietly with status 0 when the
  reader closes the pipe (real shell pipelines, `set -o pipefail`).
- `AWS_SESSION_TOKEN` (or the profile's `aws_session_token`) is sent as a signed
  `x-amz-security-token`: a relay between the client and the real server sees it. The server
  accepts such requests (it verifies the signature and ignores the token: it issues no
  temporary credentials).
- `coffer user add --new-access-key/--new-secret-key` (the old `--access-key`/`--secret-key`
  still work).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import socket
import subprocess
import threading

import pytest
from botocore.exceptions import ClientError

from support import (
    REGION,
    SECRETS,
    _clean_env,
    coffer_bin,
    destroy_bucket,
    error_code,
    free_port,
    random_access_key,
    random_secret_key,
    unique_bucket_name,
)

MiB = 1 << 20


def coffer(args: list[str], env: dict[str, str], *, stdin: bytes | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess:
    """The real binary with only `env` (no AWS_* from the caller's environment)."""
    return subprocess.run([str(coffer_bin()), *args], env={**_clean_env(), **env},
                          input=stdin if stdin is not None else b"", capture_output=True,
                          timeout=timeout)


def root_env(srv, home) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": srv.access_key, "AWS_SECRET_ACCESS_KEY": srv.secret_key,
            "AWS_ENDPOINT_URL": srv.endpoint, "AWS_DEFAULT_REGION": REGION, "HOME": str(home)}


@pytest.fixture
def cli_bucket(server, s3_required):
    name = unique_bucket_name("cli")
    s3_required.create_bucket(Bucket=name)
    yield name
    destroy_bucket(s3_required, name)


# --------------------------------------------------------------------------- stopped server


def test_stopped_server_says_connection_refused(make_server, tmp_path):
    srv = make_server()
    env = root_env(srv, tmp_path)
    assert coffer(["ls"], env).returncode == 0
    srv.stop()
    source = tmp_path / "f"
    source.write_bytes(b"x")
    url = srv.endpoint
    expected = (f"connection refused — is the server at {url} running? "
                "(set --endpoint-url or AWS_ENDPOINT_URL)")
    for args in (["ls"], ["ls", "s3://b"], ["cp", str(source), "s3://b/k"], ["cat", "s3://b/k"],
                 ["rm", "s3://b/k"], ["user", "list"], ["kms", "list-keys"], ["sse", "keys"]):
        done = coffer(args, env)
        stderr = done.stderr.decode()
        assert done.returncode == 1, (args, stderr)
        assert expected in stderr, f"coffer {' '.join(args)}: {stderr}"
        assert "client error (Connect)" not in stderr, stderr
    # The flag names the URL it was given.
    other = f"http://127.0.0.1:{free_port()}"
    done = coffer(["ls", "--endpoint-url", other], env)
    assert f"is the server at {other} running?" in done.stderr.decode()


# --------------------------------------------------------------------------- SSE-C over HTTP


def test_sse_c_over_plain_http_points_to_tls(make_server, tmp_path):
    srv = make_server()  # no --allow-insecure-sse-c
    s3 = srv.client(checksum="when_required", retries=0)
    s3.create_bucket(Bucket="ssec-http")
    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket="ssec-http", Key="k", Body=b"x", SSECustomerAlgorithm="AES256",
                      SSECustomerKey=os.urandom(32))
    message = ei.value.response["Error"]["Message"]
    assert error_code(ei.value) == "InvalidRequest"
    assert "secure connection" in message and "https://" in message, message
    assert "--tls-listen" in message and "docs/tls.md" in message, message
    # Accepted over plain HTTP only by a test server's explicit opt-in, which is named last.
    assert message.index("--tls-listen") < message.index("--allow-insecure-sse-c"), message

    done = coffer(["bench", "--sse", "SSE-C", "--bucket", "ssec-bench", "--size", "4KiB",
                   "--duration", "0.3", "--warmup", "0", "--objects", "1", "--concurrency", "1"],
                  root_env(srv, tmp_path))
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert "SSE-C needs TLS" in stderr and "https://" in stderr and "--tls-listen" in stderr, stderr


# --------------------------------------------------------------------------- stdin upload


@pytest.mark.parametrize("size", [0, 1234, 9 * MiB + 321])
def test_cp_from_stdin_round_trips(server, s3_required, cli_bucket, tmp_path, size):
    data = os.urandom(size)
    key = f"from-stdin-{size}"
    done = coffer(["cp", "-", f"s3://{cli_bucket}/{key}"], root_env(server, tmp_path), stdin=data)
    assert done.returncode == 0, done.stderr.decode()
    got = s3_required.get_object(Bucket=cli_bucket, Key=key)
    body = got["Body"].read()
    assert len(body) == size and hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    etag = got["ETag"].strip('"')
    if size > 8 * MiB:
        # Past the default 8 MiB part size: a multipart upload of two parts.
        assert etag.endswith("-2"), etag
    else:
        assert "-" not in etag, etag
    # And back out through the client, to stdout.
    done = coffer(["cp", f"s3://{cli_bucket}/{key}", "-"], root_env(server, tmp_path))
    assert done.returncode == 0 and done.stdout == data, done.stderr.decode()


def test_cp_from_a_shell_pipeline_streams_in_parts(server, s3_required, cli_bucket, tmp_path):
    """A producer whose size nobody knows, through a real pipe, in 5 MiB parts."""
    env = root_env(server, tmp_path)
    script = (f"head -c {11 * MiB + 7} /dev/urandom | tee {shlex.quote(str(tmp_path / 'sent'))} | "
              f"{shlex.quote(str(coffer_bin()))} cp --part-size 5MiB - s3://{cli_bucket}/piped")
    done = subprocess.run(["bash", "-o", "pipefail", "-c", script], env={**_clean_env(), **env},
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    sent = (tmp_path / "sent").read_bytes()
    got = s3_required.get_object(Bucket=cli_bucket, Key="piped")
    assert got["Body"].read() == sent
    assert got["ETag"].strip('"').endswith("-3"), got["ETag"]


def test_cp_from_stdin_needs_a_key(server, cli_bucket, tmp_path):
    done = coffer(["cp", "-", f"s3://{cli_bucket}/"], root_env(server, tmp_path), stdin=b"data")
    assert done.returncode == 1 and "stdin has no file name" in done.stderr.decode()


@pytest.mark.parametrize("fmt", ["aws", "aws-v2"])
def test_cp_from_stdin_encrypts_with_the_aws_formats(server, s3_required, cli_bucket, tmp_path, fmt):
    env = root_env(server, tmp_path)
    key_file = tmp_path / "master.key"
    assert coffer(["cse", "generate-key", str(key_file)], env).returncode == 0
    data = os.urandom(9 * MiB + 77)
    key = f"encrypted-stdin-{fmt}"
    done = coffer(["cp", "--encrypt", "--format", fmt, "--key-file", str(key_file), "-",
                   f"s3://{cli_bucket}/{key}"], env, stdin=data)
    assert done.returncode == 0, done.stderr.decode()
    stored = s3_required.get_object(Bucket=cli_bucket, Key=key)
    assert stored["ETag"].strip('"').endswith("-2"), stored["ETag"]
    ciphertext = stored["Body"].read()
    assert len(ciphertext) == len(data) + 16 and ciphertext[:4096] != data[:4096]
    done = coffer(["cat", "--key-file", str(key_file), f"s3://{cli_bucket}/{key}"], env)
    assert done.returncode == 0 and done.stdout == data, done.stderr.decode()


def test_cp_from_stdin_refuses_the_oss_format(server, s3_required, cli_bucket, tmp_path):
    key_file = tmp_path / "master.key"
    key_file.write_bytes(os.urandom(32))
    done = coffer(["cp", "--encrypt", "--format", "oss", "--key-file", str(key_file), "-",
                   f"s3://{cli_bucket}/oss"], root_env(server, tmp_path), stdin=b"data")
    assert done.returncode == 1 and "--format oss needs a file" in done.stderr.decode(), done.stderr
    with pytest.raises(ClientError):
        s3_required.head_object(Bucket=cli_bucket, Key="oss")


# --------------------------------------------------------------------------- closed pipes


def pipeline(command: str, reader: str, env: dict[str, str]) -> tuple[int, int, bytes, str]:
    """`coffer … | reader` in bash: coffer's status, the reader's, the output, coffer's stderr."""
    script = (f"set -o pipefail; {shlex.quote(str(coffer_bin()))} {command} 2>coffer.err | {reader}; "
              "echo \"status ${PIPESTATUS[0]} ${PIPESTATUS[1]}\" >&2")
    cwd = env["HOME"]
    done = subprocess.run(["bash", "-c", script], env={**_clean_env(), **env}, cwd=cwd,
                          capture_output=True, timeout=120)
    status = done.stderr.decode().strip().splitlines()[-1].split()
    err = (open(os.path.join(cwd, "coffer.err")).read())
    return int(status[1]), int(status[2]), done.stdout, err


def test_closed_pipe_ends_quietly(server, s3_required, cli_bucket, tmp_path):
    # Enough output that the pipe's buffer (64 KiB) fills: the reader really closes it early.
    long = "k" * 900
    for i in range(150):
        s3_required.put_object(Bucket=cli_bucket, Key=f"{long}-{i:03}", Body=b"")
    big = os.urandom(4 * MiB)
    s3_required.put_object(Bucket=cli_bucket, Key="big", Body=big)
    env = root_env(server, tmp_path)

    coffer_status, head_status, out, err = pipeline(f"ls s3://{cli_bucket}", "head -1", env)
    assert (coffer_status, head_status, err) == (0, 0, ""), (coffer_status, err)
    assert out.count(b"\n") == 1 and b"big" in out, out
    coffer_status, _, out, err = pipeline(f"ls --recursive s3://{cli_bucket}", "head -c 10", env)
    assert (coffer_status, err) == (0, ""), (coffer_status, err)
    coffer_status, _, out, err = pipeline(f"cat s3://{cli_bucket}/big", "head -c 100", env)
    assert (coffer_status, err, out) == (0, "", big[:100]), (coffer_status, err)
    coffer_status, _, out, err = pipeline(f"cp s3://{cli_bucket}/big -", "head -c 100", env)
    assert (coffer_status, err, out) == (0, "", big[:100]), (coffer_status, err)
    # A reader that takes everything sees everything, and a real error still fails.
    coffer_status, _, out, err = pipeline(f"cat s3://{cli_bucket}/big", "cat", env)
    assert (coffer_status, err, out) == (0, "", big)
    coffer_status, _, _, err = pipeline(f"cat s3://{cli_bucket}/missing", "head -1", env)
    assert coffer_status == 1 and "NoSuchKey" in err, err


# --------------------------------------------------------------------------- session token


class Relay:
    """A TCP relay in front of the real server that keeps every byte the client sent."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.sent = bytearray()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(65536):
                if record:
                    with self.lock:
                        self.sent += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


def request_heads(raw: bytes) -> list[dict[str, str]]:
    heads = []
    for block in raw.split(b"\r\n\r\n"):
        lines = block.decode(errors="replace").split("\r\n")
        if not lines or " HTTP/1.1" not in lines[0]:
            continue
        heads.append({k.strip().lower(): v.strip() for k, _, v in
                      (line.partition(":") for line in lines[1:] if ":" in line)})
    return heads


def test_session_token_is_sent_and_signed(server, cli_bucket, tmp_path):
    relay = Relay(server.port)
    try:
        token = "FQoGZXIvYXdzE" + random_secret_key()
        SECRETS.add("a test session token", token)
        env = {**root_env(server, tmp_path), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{relay.port}",
               "AWS_SESSION_TOKEN": token}
        done = coffer(["ls", f"s3://{cli_bucket}"], env)
        assert done.returncode == 0, done.stderr.decode()
        heads = request_heads(bytes(relay.sent))
        assert heads, relay.sent[:200]
        for head in heads:
            assert head.get("x-amz-security-token") == token, head.keys()
            signed = head["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
            assert "x-amz-security-token" in signed, head["authorization"]

        # The profile's token goes with the profile's pair.
        relay.sent.clear()
        credentials = tmp_path / "credentials"
        credentials.write_text(f"[default]\naws_access_key_id = {server.access_key}\n"
                               f"aws_secret_access_key = {server.secret_key}\n"
                               f"aws_session_token = {token}-profile\n")
        env = {"AWS_SHARED_CREDENTIALS_FILE": str(credentials), "HOME": str(tmp_path),
               "AWS_ENDPOINT_URL": f"http://127.0.0.1:{relay.port}"}
        done = coffer(["ls"], env)
        assert done.returncode == 0, done.stderr.decode()
        assert {h.get("x-amz-security-token") for h in request_heads(bytes(relay.sent))} == {
            f"{token}-profile"}

        # Without a token, no header.
        relay.sent.clear()
        env = {**root_env(server, tmp_path), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{relay.port}"}
        assert coffer(["ls"], env).returncode == 0
        assert all("x-amz-security-token" not in h for h in request_heads(bytes(relay.sent)))
    finally:
        relay.close()


# --------------------------------------------------------------------------- user add


def test_user_add_names_the_new_users_keys_apart(server, tmp_path):
    env = root_env(server, tmp_path)
    access, secret = random_access_key(), random_secret_key()
    SECRETS.add("user add test secret", secret)
    name = f"newkeys-{access[-6:].lower()}"
    done = coffer(["user", "add", name, "--new-access-key", access, "--new-secret-key", secret], env)
    assert done.returncode == 0, done.stderr.decode()
    created = json.loads(done.stdout)
    assert (created["access_key"], created["secret_key"]) == (access, secret)
    # The caller's own credentials are untouched by the new user's: the new pair works.
    user_env = {**env, "AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret}
    assert coffer(["ls"], user_env).returncode == 0
    # The old spelling still works (hidden from --help).
    access2 = random_access_key()
    done = coffer(["user", "add", f"{name}-old", "--access-key", access2], env)
    assert done.returncode == 0 and json.loads(done.stdout)["access_key"] == access2, done.stderr
    SECRETS.add("user add test secret 2", json.loads(done.stdout)["secret_key"])
    help_text = coffer(["user", "add", "--help"], env).stdout.decode()
    assert "--new-access-key" in help_text and "--new-secret-key" in help_text
    assert "--access-key " not in help_text and "--access-key-id" in help_text
    for n in (name, f"{name}-old"):
        assert coffer(["user", "remove", n], env).returncode == 0
