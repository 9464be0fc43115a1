"""Service master key rotation and rewrap (SSE-S3/SSE-OSS), through the
`coffer sse` commands against a dedicated server."""

import hashlib
import json
import os
import subprocess

from support import coffer_bin, unique_bucket_name


def coffer_sse(server, *args) -> dict:
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=server.access_key,
        AWS_SECRET_ACCESS_KEY=server.secret_key,
        AWS_ENDPOINT_URL=server.endpoint,
    )
    out = subprocess.run(
        [str(coffer_bin()), "sse", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, f"coffer sse {args}: {out.stderr}"
    return json.loads(out.stdout)


def test_rotate_then_rewrap_keeps_every_object_readable(make_server):
    server = make_server()
    s3 = server.client()
    bucket = unique_bucket_name("rot")
    s3.create_bucket(Bucket=bucket)
    bodies = {f"v1-{i}": os.urandom(70_000 + i) for i in range(3)}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="AES256")

    assert coffer_sse(server, "keys")["current"] == 1
    assert coffer_sse(server, "rotate-key")["current"] == 2
    keys = coffer_sse(server, "keys")
    assert keys["current"] == 2 and [v["version"] for v in keys["versions"]] == [1, 2]

    # New objects use version 2; old ones still open with version 1.
    bodies["v2"] = os.urandom(1000)
    s3.put_object(Bucket=bucket, Key="v2", Body=bodies["v2"], ServerSideEncryption="AES256")
    s3.put_object(Bucket=bucket, Key="plain", Body=b"not encrypted")
    for key, body in bodies.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body, key

    # Rewrap moves exactly the three version-1 envelopes, without touching data.
    before = {k: s3.head_object(Bucket=bucket, Key=k)["ETag"] for k in bodies}
    result = coffer_sse(server, "rewrap")
    assert result["objects_rewrapped"] == 3, result
    assert result["objects_scanned"] == 5, result
    assert coffer_sse(server, "rewrap")["objects_rewrapped"] == 0

    # Everything still reads after a restart, with the same ETags.
    server.restart()
    s3 = server.client()
    for key, body in bodies.items():
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["ServerSideEncryption"] == "AES256"
        assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(body).digest(), key
        assert got["ETag"] == before[key]


def test_a_different_root_key_refuses_to_start(make_server, tmp_path):
    server = make_server()
    s3 = server.client()
    bucket = unique_bucket_name("rk")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret", ServerSideEncryption="AES256")
    server.stop()
    root_key = server.data_dir / "root.key"
    original = root_key.read_bytes()
    root_key.unlink()
    # The keystore exists, so a missing key file is refused before a new one is created.
    out = subprocess.run(
        [str(coffer_bin()), "server", "--data-dir", str(server.data_dir), "--listen", "127.0.0.1:0"],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "is missing" in out.stderr and "restore the file from your backup" in out.stderr
    assert not root_key.exists(), "no new root key beside an existing keystore"
    assert (server.data_dir / "service-keys.json").exists(), "the keyring is never replaced"
    root_key.write_bytes(original)
    server.start()
    assert server.client().get_object(Bucket=bucket, Key="k")["Body"].read() == b"secret"


def test_passphrase_root_key_opens_only_with_the_passphrase(make_server, tmp_path):
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("correct horse battery staple\n")
    server = make_server(extra_args=["--root-passphrase-file", str(passphrase)])
    s3 = server.client()
    bucket = unique_bucket_name("pp")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"sealed under a passphrase", ServerSideEncryption="AES256")
    server.stop()
    assert not (server.data_dir / "root.key").exists(), "no key file when a passphrase is used"
    salt = (server.data_dir / "root.salt").read_text()
    assert salt.startswith("coffer-root-salt-v1 argon2id ")
    assert "correct horse" not in salt

    passphrase.write_text("a wrong passphrase entirely\n")
    out = subprocess.run(
        [str(coffer_bin()), "server", "--data-dir", str(server.data_dir), "--listen", "127.0.0.1:0",
         "--root-passphrase-file", str(passphrase)],
        env=server.env(), capture_output=True, text=True, timeout=60,
    )
    assert out.returncode != 0 and "does not open with this root key" in out.stderr

    passphrase.write_text("correct horse battery staple\n")
    server.start()
    got = server.client().get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"sealed under a passphrase"
