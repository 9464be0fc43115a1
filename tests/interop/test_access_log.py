"""The JSON access log (`--access-log PATH|-`, docs/operations.md): one JSON object per
request and line, naming the request id, the signer's access key id, the operation, bucket and
key, the encryption and KMS key id the response names, status, bytes and duration — and never a
secret."""

from __future__ import annotations

import json
import signal
import time

import pytest
import requests
from botocore.exceptions import ClientError

from oss_support import oss2_bucket
from support import kms_client, unique_bucket_name

FIELDS = {"time", "request_id", "remote_addr", "principal", "operation", "dialect", "bucket",
          "key", "sse", "sse_key_id", "status", "bytes_in", "bytes_out", "duration_ms", "tls",
          "authz"}


def read_lines(path, expected: int, timeout: float = 10.0) -> list[dict]:
    """The log's entries, once it holds `expected` lines (its writer thread may lag)."""
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text() if path.exists() else ""
        if text.count("\n") >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert text.endswith("\n"), "whole lines only"
    return [json.loads(line) for line in text.splitlines()]


def test_known_workload_is_logged_line_by_line(make_server, tmp_path):
    log = tmp_path / "access.log"
    srv = make_server(extra_args=["--access-log", str(log)])
    c = srv.client(checksum="when_required")
    kms = kms_client(srv)
    bucket = unique_bucket_name("alog")

    c.create_bucket(Bucket=bucket)                                        # 1
    c.put_object(Bucket=bucket, Key="dir/plain sealed.txt", Body=b"a" * 1000)  # 2
    key_id = kms.create_key(Description="access log")["KeyMetadata"]["KeyId"]  # 3
    c.put_object(Bucket=bucket, Key="kms.txt", Body=b"b" * 2000,          # 4
                 ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    assert c.get_object(Bucket=bucket, Key="kms.txt")["Body"].read() == b"b" * 2000  # 5
    with pytest.raises(ClientError):
        c.get_object(Bucket=bucket, Key="missing")                        # 6
    c.delete_object(Bucket=bucket, Key="dir/plain sealed.txt")            # 7
    assert requests.get(f"{srv.endpoint}/{bucket}", timeout=10).status_code == 403  # 8

    entries = read_lines(log, 8)
    assert len(entries) == 8, entries
    for entry in entries:
        assert set(entry) == FIELDS, entry
        assert entry["dialect"] == "s3" and entry["tls"] is None
        assert entry["remote_addr"].startswith("127.0.0.1:")
        assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] >= 0
        assert len(entry["request_id"]) == 24
    assert len({e["request_id"] for e in entries}) == 8, "one id per request"

    ops = [(e["operation"], e["status"]) for e in entries]
    assert ops == [("CreateBucket", 200), ("PutObject", 200), ("CreateKey", 200),
                   ("PutObject", 200), ("GetObject", 200), ("GetObject", 404),
                   ("DeleteObject", 204), ("ListObjects", 403)], ops
    signed = entries[:7]
    assert all(e["principal"] == srv.access_key for e in signed[:2] + signed[3:])
    assert entries[7]["principal"] is None, "unsigned"
    assert entries[7]["authz"] == "denied: no policy or ACL allows it"
    assert all(e["authz"] is None for e in signed), "owner and root decisions are not noted"

    put_plain, put_kms, get_kms, missing = entries[1], entries[3], entries[4], entries[5]
    assert (put_plain["bucket"], put_plain["key"]) == (bucket, "dir/plain sealed.txt")
    assert (put_plain["sse"], put_plain["sse_key_id"]) == ("AES256", None)
    assert (put_plain["bytes_in"], put_plain["bytes_out"]) == (1000, 0)
    assert put_kms["sse"] == "aws:kms" and put_kms["sse_key_id"].endswith(key_id)
    assert get_kms["sse"] == "aws:kms" and get_kms["sse_key_id"].endswith(key_id)
    assert (get_kms["bytes_in"], get_kms["bytes_out"]) == (0, 2000)
    assert missing["key"] == "missing" and missing["sse"] is None and missing["bytes_out"] > 0
    assert entries[0]["bucket"] == bucket and entries[0]["key"] is None
    assert entries[2]["bucket"] is None, "the KMS API names no bucket"

    raw = log.read_bytes()
    assert srv.secret_key.encode() not in raw, "the secret key is never logged"
    assert (log.stat().st_mode & 0o777) == 0o600


def test_access_log_to_stdout(make_server):
    srv = make_server(extra_args=["--access-log", "-"])
    srv.client().list_buckets()
    deadline = time.monotonic() + 10
    while '"operation":"ListBuckets"' not in srv.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [json.loads(line) for line in srv.log_text().splitlines()
             if line.startswith("{") and '"operation":"ListBuckets"' in line]
    assert len(lines) == 1 and lines[0]["principal"] == srv.access_key


def test_sighup_reopens_the_log_after_rotation(make_server, tmp_path):
    """logrotate moves the file away and sends SIGHUP (the systemd unit's ExecReload): the
    lines before stay in the moved file, the lines after go to a new file at the path."""
    log = tmp_path / "access.log"
    srv = make_server(extra_args=["--access-log", str(log)])
    c = srv.client()
    c.list_buckets()
    assert len(read_lines(log, 1)) == 1
    rotated = log.with_name("access.log.1")
    log.rename(rotated)
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "access log reopened" not in srv.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.running(), "SIGHUP does not stop the server"
    bucket = unique_bucket_name("rotated")
    c.create_bucket(Bucket=bucket)
    assert [e["operation"] for e in read_lines(log, 1)] == ["CreateBucket"]
    assert [e["operation"] for e in read_lines(rotated, 1)] == ["ListBuckets"]


def test_oss_requests_are_logged_in_their_dialect(make_server, tmp_path):
    log = tmp_path / "access.log"
    srv = make_server(extra_args=["--access-log", str(log)])
    bucket = unique_bucket_name("oss-log")
    srv.client().create_bucket(Bucket=bucket)
    oss2_bucket(srv, bucket, "v1").put_object("oss key", b"x" * 123)
    entries = read_lines(log, 2)
    put = entries[1]
    assert (put["operation"], put["dialect"], put["status"]) == ("PutObject", "oss", 200)
    assert (put["bucket"], put["key"], put["bytes_in"]) == (bucket, "oss key", 123)
    assert put["sse"] == "AES256" and put["principal"] == srv.access_key
