"""Fail closed: an unusable KMS key or keystore stops requests, never weakens them.

- A KMS key that is disabled, or pending deletion: every SSE-KMS request under it (PUT, with
  and without a bucket key, PUT into a bucket whose default is that key, CreateMultipartUpload,
  UploadPart and CompleteMultipartUpload of an upload begun before, CopyObject and
  UploadPartCopy into it, GET and ranged GET of an object under it) fails with the KMS's error
  (403 KMS.DisabledException / KMS.KMSInvalidStateException), no object appears, and none of
  the request bodies is anywhere on disk (a marker grep of the data dir, with a positive control).
  Per-route error codes for more clients (aws CLI, oss2) are in test_sse_kms.py.
- The keystore unusable at start (root key file missing, wrong, malformed; a wrong root
  passphrase): the server refuses to start with a message saying so, and the keystores
  (service-keys.json, the KMS key store) are left byte for byte as they were. With the right
  key back, everything reads again.
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from support import (
    coffer_bin,
    error_code,
    find_in_files,
    http_status,
    kms_client,
    opt_out_of_encryption,
    windows,
)

MiB = 1 << 20
STATES = {
    "disabled": ("KMS.DisabledException", 403),
    "pending-deletion": ("KMS.KMSInvalidStateException", 403),
}


def files_containing(root: Path, needles: dict[str, bytes]) -> set[str]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return {hit.split(" in ")[0] for hit in find_in_files(files, needles)}


def expect_kms_error(expected: tuple[str, int], what: str, fn, **kwargs) -> None:
    with pytest.raises(ClientError) as ei:
        fn(**kwargs)
    got = (error_code(ei.value), http_status(ei.value))
    assert got == expected, f"{what}: expected {expected}, got {got}: {ei.value.response.get('Error')}"


@pytest.mark.parametrize("state", sorted(STATES))
def test_unusable_kms_key_fails_every_request_and_writes_nothing(make_server, state):
    srv = make_server()
    s3 = srv.client(checksum="when_required", retries=0)
    kms = kms_client(srv)
    key_id = kms.create_key(Description=f"fail-closed {state}")["KeyMetadata"]["KeyId"]
    s3.create_bucket(Bucket="fc-b")
    s3.create_bucket(Bucket="fc-default")
    s3.put_bucket_encryption(Bucket="fc-default", ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id}}]})
    kms_kw = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id}

    # Before the key becomes unusable: an object under it, an upload with one part, and an
    # SSE-S3 source to copy from (its plaintext is not on disk either).
    rng = random.Random(os.urandom(8))
    readable = rng.randbytes(512 * 1024)
    s3.put_object(Bucket="fc-b", Key="readable", Body=readable, **kms_kw)
    upload = s3.create_multipart_upload(Bucket="fc-b", Key="mp", **kms_kw)["UploadId"]
    part1 = rng.randbytes(5 * MiB)
    etag1 = s3.upload_part(Bucket="fc-b", Key="mp", UploadId=upload, PartNumber=1, Body=part1)["ETag"]
    copy_marker = rng.randbytes(512 * 1024)
    s3.put_object(Bucket="fc-b", Key="source", Body=copy_marker, ServerSideEncryption="AES256")
    control = rng.randbytes(512 * 1024)
    # The positive control is plaintext: it lives in a bucket that opted out of encryption.
    s3.create_bucket(Bucket="fc-plain")
    opt_out_of_encryption(s3, "fc-plain")
    s3.put_object(Bucket="fc-plain", Key="control", Body=control)

    if state == "disabled":
        kms.disable_key(KeyId=key_id)
    else:
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    err = STATES[state]
    markers = {name: rng.randbytes(512 * 1024) for name in
               ("put", "put-bk", "put-default", "part", "part-late")}

    expect_kms_error(err, "PUT", s3.put_object, Bucket="fc-b", Key="new", Body=markers["put"], **kms_kw)
    expect_kms_error(err, "PUT with a bucket key", s3.put_object, Bucket="fc-b", Key="new-bk",
                     Body=markers["put-bk"], BucketKeyEnabled=True, **kms_kw)
    expect_kms_error(err, "PUT under the bucket default", s3.put_object, Bucket="fc-default", Key="new",
                     Body=markers["put-default"])
    expect_kms_error(err, "CreateMultipartUpload", s3.create_multipart_upload, Bucket="fc-b", Key="mp2", **kms_kw)
    expect_kms_error(err, "UploadPart", s3.upload_part, Bucket="fc-b", Key="mp", UploadId=upload, PartNumber=2,
                     Body=markers["part"])
    expect_kms_error(err, "CompleteMultipartUpload", s3.complete_multipart_upload, Bucket="fc-b", Key="mp",
                     UploadId=upload, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag1}]})
    expect_kms_error(err, "CopyObject into the key", s3.copy_object, Bucket="fc-b", Key="copy",
                     CopySource={"Bucket": "fc-b", "Key": "source"}, **kms_kw)
    expect_kms_error(err, "CopyObject from the key", s3.copy_object, Bucket="fc-b", Key="copy2",
                     CopySource={"Bucket": "fc-b", "Key": "readable"}, ServerSideEncryption="AES256")
    expect_kms_error(err, "UploadPartCopy", s3.upload_part_copy, Bucket="fc-b", Key="mp", UploadId=upload,
                     PartNumber=3, CopySource={"Bucket": "fc-b", "Key": "source"})
    expect_kms_error(err, "GET", s3.get_object, Bucket="fc-b", Key="readable")
    expect_kms_error(err, "ranged GET", s3.get_object, Bucket="fc-b", Key="readable", Range="bytes=0-9")

    listed = {o["Key"] for o in s3.list_objects_v2(Bucket="fc-b").get("Contents", [])}
    assert listed == {"readable", "source"}, f"objects appeared: {listed}"
    assert s3.list_objects_v2(Bucket="fc-default")["KeyCount"] == 0
    parts = s3.list_parts(Bucket="fc-b", Key="mp", UploadId=upload).get("Parts", [])
    assert [p["PartNumber"] for p in parts] == [1], f"a part appeared: {parts}"

    srv.stop()
    needles = {f"{name}[{i}]": w for name, m in markers.items() for i, w in enumerate(windows(m))}
    needles |= {f"copy[{i}]": w for i, w in enumerate(windows(copy_marker))}
    needles |= {f"readable[{i}]": w for i, w in enumerate(windows(readable))}
    assert files_containing(srv.data_dir, needles) == set(), "plaintext of a refused request is on disk"
    control_needles = {f"control[{i}]": w for i, w in enumerate(windows(control))}
    assert files_containing(srv.data_dir, control_needles) == set(control_needles), (
        "the scan did not find the plaintext control object: the scan is broken")

    # Usable again: the object reads, and the upload completes.
    srv.start()
    s3 = srv.client(checksum="when_required", retries=0)
    kms = kms_client(srv)
    if state == "disabled":
        kms.enable_key(KeyId=key_id)
    else:
        kms.cancel_key_deletion(KeyId=key_id)
        kms.enable_key(KeyId=key_id)
    assert s3.get_object(Bucket="fc-b", Key="readable")["Body"].read() == readable
    s3.complete_multipart_upload(Bucket="fc-b", Key="mp", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag1}]})
    assert s3.get_object(Bucket="fc-b", Key="mp")["Body"].read() == part1


# --------------------------------------------------------------------------- keystore at start


def keystore_files(data_dir: Path) -> dict[str, bytes]:
    """What a wrong root key must never touch: the service keyring and the KMS key store."""
    out = {"service-keys.json": (data_dir / "service-keys.json").read_bytes()}
    for path in sorted((data_dir / "kms").rglob("*")):
        if path.is_file() and path.name != "audit.log":
            out[str(path.relative_to(data_dir))] = path.read_bytes()
    assert len(out) >= 2, f"expected a KMS key store beside service-keys.json: {sorted(out)}"
    return out


def start_fails(srv, extra: list[str]) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [str(coffer_bin()), "server", "--data-dir", str(srv.data_dir), "--listen", "127.0.0.1:0", *extra],
        env=srv.env(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert out.returncode != 0, f"the server started: {out.stderr[-2000:]}"
    return out


@pytest.mark.parametrize("how", ["missing", "wrong", "malformed", "wrong-passphrase"])
def test_unusable_root_key_refuses_start_and_keeps_the_keystore(make_server, tmp_path, how):
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("correct horse battery staple\n")
    extra = ["--root-passphrase-file", str(passphrase)] if how == "wrong-passphrase" else []
    srv = make_server(extra_args=extra)
    s3 = srv.client(checksum="when_required", retries=0)
    kms = kms_client(srv)
    key_id = kms.create_key(Description="keystore")["KeyMetadata"]["KeyId"]
    s3.create_bucket(Bucket="ks-b")
    s3.put_object(Bucket="ks-b", Key="s3", Body=b"under the service key", ServerSideEncryption="AES256")
    s3.put_object(Bucket="ks-b", Key="kms", Body=b"under a CMK", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    srv.stop()

    before = keystore_files(srv.data_dir)
    root_key = srv.data_dir / "root.key"
    original = root_key.read_bytes() if root_key.exists() else None
    if how == "missing":
        root_key.unlink()
    elif how == "wrong":
        root_key.write_bytes(original[:-65] + os.urandom(32).hex().encode() + b"\n")
    elif how == "malformed":
        root_key.write_bytes(original[:-10] + b"not hex!\n")
    else:
        passphrase.write_text("a wrong passphrase entirely\n")

    out = start_fails(srv, extra)
    message = out.stderr.lower()
    expected = {
        "missing": "root key",
        "wrong": "does not open with this root key",
        "malformed": "root key",
        "wrong-passphrase": "does not open with this root key",
    }[how]
    assert expected in message, f"unclear refusal for a {how} root key: {out.stderr[-2000:]}"
    assert keystore_files(srv.data_dir) == before, "a keystore file changed on a refused start"
    if how == "missing":
        assert not root_key.exists(), "a new root key file was created beside an existing keystore"

    # The right key back: everything opens again.
    if original is not None:
        root_key.write_bytes(original)
    passphrase.write_text("correct horse battery staple\n")
    srv.start()
    s3 = srv.client(checksum="when_required", retries=0)
    assert s3.get_object(Bucket="ks-b", Key="s3")["Body"].read() == b"under the service key"
    assert s3.get_object(Bucket="ks-b", Key="kms")["Body"].read() == b"under a CMK"
