"""s3cmd, unmodified, against the real server (issue 18: "unmodified s3cmd works").

- SigV4 and SigV2 over HTTP, and SigV4 over HTTPS trusting the server's self-signed
  certificate: mb, put (one PUT, and a multipart upload of 5 MiB parts), ls, get compared byte
  for byte, info, cp, sync (twice: the second sends nothing), del, rb; setacl answers 400
  AccessControlListNotSupported in a new bucket and works once its ownership is ObjectWriter. Objects written with no encryption option are sealed (HEAD: AES256).
- `--server-side-encryption` (SSE-S3) and `--server-side-encryption-kms-id` (SSE-KMS): HEAD
  names the mode and the key, and the bytes read back.
- A download of an object whose KMS key is disabled fails: s3cmd exits non-zero, prints the
  `KMS.DisabledException` the server answered, and leaves no destination file.

Configuration: a config file of the test's own (support.S3cmd), never ~/.s3cfg.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support import S3cmd, destroy_bucket, free_port, kms_client, unique_bucket_name

MiB = 1 << 20


def files(tmp_path: Path) -> dict[str, Path]:
    """A small file and one that s3cmd sends as three 5 MiB-or-less parts."""
    small, large = tmp_path / "small.bin", tmp_path / "large.bin"
    small.write_bytes(os.urandom(100_000))
    large.write_bytes(os.urandom(12 * MiB + 12345))
    return {"small": small, "large": large}


def round_trip(s3cmd: S3cmd, s3, tmp_path: Path) -> None:
    """mb, put (single and multipart), ls, get byte-compare, del, rb; everything sealed."""
    bucket = unique_bucket_name("s3cmd")
    src = files(tmp_path)
    s3cmd("mb", f"s3://{bucket}")
    try:
        s3cmd("put", str(src["small"]), f"s3://{bucket}/dir/small.bin")
        s3cmd("put", "--multipart-chunk-size-mb=5", str(src["large"]), f"s3://{bucket}/large.bin")
        # A multipart ETag ("<md5>-<parts>"): s3cmd sent the file as three parts.
        head = s3.head_object(Bucket=bucket, Key="large.bin")
        assert head["ETag"].endswith('-3"'), head["ETag"]
        listing = s3cmd("ls", "--recursive", f"s3://{bucket}").stdout
        assert f"s3://{bucket}/dir/small.bin" in listing and f"s3://{bucket}/large.bin" in listing
        assert str(12 * MiB + 12345) in listing, listing
        buckets = s3cmd("ls").stdout
        assert f"s3://{bucket}" in buckets, buckets
        for key, path in [("dir/small.bin", src["small"]), ("large.bin", src["large"])]:
            got = tmp_path / f"got-{path.name}"
            s3cmd("get", f"s3://{bucket}/{key}", str(got))
            assert got.read_bytes() == path.read_bytes(), f"{key} read back different bytes"
            # No encryption option was given: sealed with the service key all the same.
            assert s3.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"] == "AES256"
        info = s3cmd("info", f"s3://{bucket}/large.bin").stdout
        assert "SSE:       AES256" in info, info
        # A server-side copy, and a sync whose second run finds nothing to send.
        s3cmd("cp", f"s3://{bucket}/dir/small.bin", f"s3://{bucket}/copy.bin")
        assert s3.head_object(Bucket=bucket, Key="copy.bin")["ServerSideEncryption"] == "AES256"
        tree = tmp_path / "tree"
        (tree / "sub").mkdir(parents=True)
        (tree / "a.txt").write_bytes(b"alpha\n")
        (tree / "sub" / "b.bin").write_bytes(os.urandom(3000))
        first = s3cmd("sync", f"{tree}/", f"s3://{bucket}/tree/").stdout
        assert first.count("upload:") == 2, first
        second = s3cmd("sync", f"{tree}/", f"s3://{bucket}/tree/").stdout
        assert "upload:" not in second, second
        # ACLs: off in a new bucket (BucketOwnerEnforced, as on AWS), so a clear 400; on
        # once the bucket's ownership is ObjectWriter (docs/access-control.md).
        acl = s3cmd("setacl", "--acl-public", f"s3://{bucket}/copy.bin", check=False)
        assert acl.returncode != 0 and "AccessControlListNotSupported" in acl.stderr, acl.stderr
        s3.put_bucket_ownership_controls(
            Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
        s3cmd("setacl", "--acl-public", f"s3://{bucket}/copy.bin")
        grants = s3.get_object_acl(Bucket=bucket, Key="copy.bin")["Grants"]
        assert {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                "Permission": "READ"} in grants, grants
        # (s3cmd's `del --recursive` acts on its first location only: one location per call.)
        s3cmd("del", "--recursive", "--force", f"s3://{bucket}/tree/")
        s3cmd("del", f"s3://{bucket}/dir/small.bin", f"s3://{bucket}/large.bin",
              f"s3://{bucket}/copy.bin")
        left = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert left == [], left
        s3cmd("rb", f"s3://{bucket}")
        assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    finally:
        destroy_bucket(s3, bucket)


@pytest.mark.parametrize("signature", ["v4", "v2"])
def test_s3cmd_round_trip_over_http(server, s3_required, tmp_path, signature):
    s3cmd = S3cmd(server.endpoint, server.access_key, server.secret_key, tmp_path,
                  signature_v2=signature == "v2")
    round_trip(s3cmd, s3_required, tmp_path)


def test_s3cmd_round_trip_over_https(make_server, tmp_path):
    tls_port = free_port()
    srv = make_server(extra_args=["--tls-listen", f"127.0.0.1:{tls_port}"])
    ca = str(srv.data_dir / "tls" / "self-signed.crt")
    s3cmd = S3cmd(f"https://127.0.0.1:{tls_port}", srv.access_key, srv.secret_key, tmp_path, ca=ca)
    round_trip(s3cmd, srv.client(checksum="when_required"), tmp_path)
    # The certificate is checked: without the CA bundle, s3cmd refuses the server.
    untrusted = S3cmd(f"https://127.0.0.1:{tls_port}", srv.access_key, srv.secret_key, tmp_path)
    proc = untrusted("ls", check=False)
    assert proc.returncode != 0 and "certificate" in proc.stderr.lower(), proc.stderr


def test_s3cmd_sse_options_and_a_disabled_kms_key(server, s3_required, tmp_path):
    s3cmd = S3cmd(server.endpoint, server.access_key, server.secret_key, tmp_path)
    kms = kms_client(server)
    key_id = kms.create_key(Description="s3cmd test")["KeyMetadata"]["KeyId"]
    bucket = unique_bucket_name("s3cmd-sse")
    src = files(tmp_path)
    s3cmd("mb", f"s3://{bucket}")
    try:
        s3cmd("put", "--server-side-encryption", str(src["small"]), f"s3://{bucket}/sse-s3")
        s3cmd("put", f"--server-side-encryption-kms-id={key_id}", str(src["small"]),
              f"s3://{bucket}/sse-kms")
        s3cmd("put", f"--server-side-encryption-kms-id={key_id}", "--multipart-chunk-size-mb=5",
              str(src["large"]), f"s3://{bucket}/sse-kms-mp")
        assert s3_required.head_object(Bucket=bucket, Key="sse-s3")["ServerSideEncryption"] == "AES256"
        for key in ("sse-kms", "sse-kms-mp"):
            head = s3_required.head_object(Bucket=bucket, Key=key)
            assert head["ServerSideEncryption"] == "aws:kms", (key, head)
            assert head["SSEKMSKeyId"].endswith(key_id), (key, head)
        for key, path in [("sse-s3", src["small"]), ("sse-kms", src["small"]),
                          ("sse-kms-mp", src["large"])]:
            got = tmp_path / f"got-{key}"
            s3cmd("get", f"s3://{bucket}/{key}", str(got))
            assert got.read_bytes() == path.read_bytes(), key

        kms.disable_key(KeyId=key_id)
        try:
            dest = tmp_path / "refused"
            proc = s3cmd("get", f"s3://{bucket}/sse-kms", str(dest), check=False)
            # s3cmd prints "ERROR: S3 error: 403 (KMS.DisabledException): key '<id>' is
            # disabled" and exits 77 (its EX_ACCESSDENIED).
            assert proc.returncode != 0, proc
            assert "403 (KMS.DisabledException)" in proc.stderr, proc.stderr
            assert not dest.exists(), "a refused download left a destination file"
            # The SSE-S3 object does not depend on the KMS key.
            s3cmd("get", "--force", f"s3://{bucket}/sse-s3", str(tmp_path / "still"))
        finally:
            kms.enable_key(KeyId=key_id)
        s3cmd("get", f"s3://{bucket}/sse-kms", str(dest))
        assert dest.read_bytes() == src["small"].read_bytes()
    finally:
        destroy_bucket(s3_required, bucket)
