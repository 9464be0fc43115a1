"""rclone, unmodified (Debian's package), against the real server (issue 18: "unmodified
rclone works").

- An `s3` remote (provider Other, path style) defined by environment variables
  (support.Rclone), over HTTP and over HTTPS trusting the server's self-signed certificate:
  mkdir, copyto (one PUT, and a multipart upload with --s3-upload-cutoff/--s3-chunk-size), ls,
  a download compared byte for byte, deletefile, rmdir; `sync` of a directory tree and
  `check` of it against the source. Objects written with no encryption option are sealed.
- `--s3-server-side-encryption AES256` and `aws:kms` with `--s3-sse-kms-key-id`: HEAD names
  the mode and the key, and the bytes read back.
- A download of an object whose KMS key is disabled fails: rclone exits non-zero, prints
  the `KMS.DisabledException` the server answered, and leaves no destination file.
- rclone's SigV2 (`--s3-v2-auth`) works too: it signs a path-style bucket request's resource as
  sent (`/bucket`, where botocore and s3cmd sign `/bucket/`), and Coffer accepts either.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support import Rclone, destroy_bucket, free_port, kms_client, unique_bucket_name

MiB = 1 << 20
MULTIPART = ["--s3-upload-cutoff=5M", "--s3-chunk-size=5M"]


def tree(root: Path) -> dict[str, bytes]:
    """A small directory tree: nested directories, an empty file, a multipart-sized file."""
    files = {
        "a.txt": b"alpha\n",
        "empty": b"",
        "sub/b.bin": os.urandom(70_000),
        "sub/deeper/c.bin": os.urandom(1000),
        "sub/deeper/large.bin": os.urandom(11 * MiB + 7),
    }
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
    return files


def round_trip(rclone: Rclone, s3, tmp_path: Path) -> None:
    bucket = unique_bucket_name("rclone")
    remote = f"{Rclone.REMOTE}:{bucket}"
    small, large = tmp_path / "small.bin", tmp_path / "large.bin"
    small.write_bytes(os.urandom(100_000))
    large.write_bytes(os.urandom(12 * MiB + 12345))
    rclone("mkdir", remote)
    try:
        assert bucket in rclone("lsd", f"{Rclone.REMOTE}:").stdout
        rclone("copyto", str(small), f"{remote}/small.bin")
        rclone("copyto", *MULTIPART, str(large), f"{remote}/large.bin")
        # A multipart ETag ("<md5>-<parts>"): rclone sent the file as three parts.
        assert s3.head_object(Bucket=bucket, Key="large.bin")["ETag"].endswith('-3"')
        listing = rclone("ls", remote).stdout
        assert f"{12 * MiB + 12345} large.bin" in listing and "100000 small.bin" in listing, listing
        for path in (small, large):
            got = tmp_path / f"got-{path.name}"
            rclone("copyto", f"{remote}/{path.name}", str(got))
            assert got.read_bytes() == path.read_bytes(), f"{path.name} read back different bytes"
            # No encryption option was given: sealed with the service key all the same.
            assert s3.head_object(Bucket=bucket, Key=path.name)["ServerSideEncryption"] == "AES256"

        # sync of a tree, then `check` (sizes and MD5s, both ways) against the source.
        source = tmp_path / "tree"
        files = tree(source)
        rclone("sync", *MULTIPART, str(source), f"{remote}/tree")
        rclone("check", str(source), f"{remote}/tree")
        listed = {line.split(maxsplit=1)[1] for line in rclone("ls", f"{remote}/tree").stdout.splitlines()}
        assert listed == set(files), listed
        # A changed and a removed file: sync makes the remote follow, check agrees again.
        (source / "a.txt").write_bytes(b"changed\n")
        (source / "sub/b.bin").unlink()
        rclone("sync", *MULTIPART, str(source), f"{remote}/tree")
        rclone("check", str(source), f"{remote}/tree")
        assert s3.get_object(Bucket=bucket, Key="tree/a.txt")["Body"].read() == b"changed\n"
        (source / "a.txt").write_bytes(b"differs\n")
        assert rclone("check", str(source), f"{remote}/tree", check=False).returncode != 0

        rclone("deletefile", f"{remote}/small.bin")
        rclone("purge", f"{remote}/tree")
        rclone("deletefile", f"{remote}/large.bin")
        assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
        rclone("rmdir", remote)
        assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    finally:
        destroy_bucket(s3, bucket)


def test_rclone_round_trip_over_http(server, s3_required, tmp_path):
    rclone = Rclone(server.endpoint, server.access_key, server.secret_key, tmp_path)
    round_trip(rclone, s3_required, tmp_path)


def test_rclone_round_trip_over_https(make_server, tmp_path):
    tls_port = free_port()
    srv = make_server(extra_args=["--tls-listen", f"127.0.0.1:{tls_port}"])
    ca = str(srv.data_dir / "tls" / "self-signed.crt")
    endpoint = f"https://127.0.0.1:{tls_port}"
    rclone = Rclone(endpoint, srv.access_key, srv.secret_key, tmp_path, ca=ca)
    round_trip(rclone, srv.client(checksum="when_required"), tmp_path)
    # The certificate is checked: without the CA bundle, rclone refuses the server.
    proc = Rclone(endpoint, srv.access_key, srv.secret_key, tmp_path)("lsd", "coffer:", check=False)
    assert proc.returncode != 0 and "certificate" in proc.stderr, proc.stderr


def test_rclone_sse_options_and_a_disabled_kms_key(server, s3_required, tmp_path):
    rclone = Rclone(server.endpoint, server.access_key, server.secret_key, tmp_path)
    kms = kms_client(server)
    key_id = kms.create_key(Description="rclone test")["KeyMetadata"]["KeyId"]
    bucket = unique_bucket_name("rclone-sse")
    remote = f"{Rclone.REMOTE}:{bucket}"
    small, large = tmp_path / "small.bin", tmp_path / "large.bin"
    small.write_bytes(os.urandom(100_000))
    large.write_bytes(os.urandom(11 * MiB))
    kms_flags = ["--s3-server-side-encryption", "aws:kms", "--s3-sse-kms-key-id", key_id]
    rclone("mkdir", remote)
    try:
        rclone("copyto", "--s3-server-side-encryption", "AES256", str(small), f"{remote}/sse-s3")
        rclone("copyto", *kms_flags, str(small), f"{remote}/sse-kms")
        rclone("copyto", *kms_flags, *MULTIPART, str(large), f"{remote}/sse-kms-mp")
        assert s3_required.head_object(Bucket=bucket, Key="sse-s3")["ServerSideEncryption"] == "AES256"
        for key in ("sse-kms", "sse-kms-mp"):
            head = s3_required.head_object(Bucket=bucket, Key=key)
            assert head["ServerSideEncryption"] == "aws:kms", (key, head)
            assert head["SSEKMSKeyId"].endswith(key_id), (key, head)
        for key, path in [("sse-s3", small), ("sse-kms", small), ("sse-kms-mp", large)]:
            got = tmp_path / f"got-{key}"
            rclone("copyto", f"{remote}/{key}", str(got))
            assert got.read_bytes() == path.read_bytes(), key

        kms.disable_key(KeyId=key_id)
        try:
            dest = tmp_path / "refused"
            proc = rclone("copyto", f"{remote}/sse-kms", str(dest), check=False)
            # rclone prints "Failed to copyto: failed to open source object:
            # KMS.DisabledException: key '<id>' is disabled / status code: 403" and exits 1.
            assert proc.returncode != 0, proc
            assert "KMS.DisabledException" in proc.stderr, proc.stderr
            assert "status code: 403" in proc.stderr, proc.stderr
            assert not dest.exists(), "a refused download left a destination file"
            assert not list(tmp_path.glob("refused*")), "a refused download left a partial file"
            # The SSE-S3 object does not depend on the KMS key.
            rclone("copyto", f"{remote}/sse-s3", str(tmp_path / "still"))
        finally:
            kms.enable_key(KeyId=key_id)
        rclone("copyto", f"{remote}/sse-kms", str(dest))
        assert dest.read_bytes() == small.read_bytes()
    finally:
        destroy_bucket(s3_required, bucket)


def test_rclone_sigv2(server, s3_required, tmp_path):
    rclone = Rclone(server.endpoint, server.access_key, server.secret_key, tmp_path)
    bucket = unique_bucket_name("rclone-v2")
    remote = f"{Rclone.REMOTE}:{bucket}"
    src = tmp_path / "small.bin"
    src.write_bytes(os.urandom(10_000))
    s3_required.create_bucket(Bucket=bucket)
    try:
        rclone("--s3-v2-auth", "copyto", str(src), f"{remote}/small.bin")
        assert "small.bin" in rclone("--s3-v2-auth", "ls", remote).stdout
        got = tmp_path / "got"
        rclone("--s3-v2-auth", "copyto", f"{remote}/small.bin", str(got))
        assert got.read_bytes() == src.read_bytes()
    finally:
        destroy_bucket(s3_required, bucket)
