"""Prometheus metrics on the admin listener (`--admin-listen`, docs/operations.md).

A known workload against a fresh server — N PUTs and M GETs (sealed by default), a HEAD that
misses, an OSS PUT, SSE-KMS writes and reads through a bucket key, a KMS CreateKey, a request head over the
limit and one TLS handshake — then one scrape, and every family's samples are checked for the
exact counts that workload makes. The scrape needs the bearer token from
`--metrics-token-file`, and names no bucket, object key, key id or secret.
"""

from __future__ import annotations

import re
import socket
import time

import pytest
import requests
from botocore.exceptions import ClientError

from oss_support import oss2_bucket
from support import (SEALED_CHUNK, SECRETS, blob_files, flip, free_port, kms_client, sign_request,
                     unique_bucket_name)

SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')

N_PUTS, M_GETS, SIZE = 5, 3, 10_000
KMS_SIZE = 7_000
MiB = 1 << 20


def scrape(url: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.get(f"{url}/metrics", headers=headers, timeout=10)


def parse(text: str) -> tuple[dict[str, str], dict[tuple, float]]:
    """The families' types, and every sample by (name, sorted labels)."""
    types, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("#") or not line:
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        key = (name, tuple(sorted(LABEL.findall(labels or ""))))
        assert key not in samples, f"duplicate sample {key}"
        samples[key] = float(value.replace("+Inf", "inf"))
    return types, samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def observed(make_server, tmp_path):
    token = "metrics-token-" + unique_bucket_name("t")
    token_file = tmp_path / "metrics.token"
    token_file.write_text(token + "\n")
    SECRETS.add("metrics bearer token", token)  # test_secrets.py: never in a server log
    admin_port, tls_port = free_port(), free_port()
    srv = make_server(extra_args=["--admin-listen", f"127.0.0.1:{admin_port}",
                                  "--metrics-token-file", str(token_file),
                                  "--tls-listen", f"127.0.0.1:{tls_port}"])
    return srv, f"http://127.0.0.1:{admin_port}", f"https://127.0.0.1:{tls_port}", token


def test_admin_listener_serves_probes_and_guards_metrics(observed):
    srv, admin, _, token = observed
    live = requests.get(f"{admin}/health/live", timeout=10)
    assert live.status_code == 200 and live.json() == {"status": "live"}
    ready = requests.get(f"{admin}/health/ready", timeout=10)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert requests.head(f"{admin}/health/ready", timeout=10).status_code == 200

    refused = scrape(admin, None)
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert "coffer_" not in refused.text
    assert scrape(admin, "wrong-" + token).status_code == 401
    scraped = scrape(admin, token)
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")

    # Only the probes and /metrics: no S3, no admin API, on this listener.
    for path in ["/", "/_coffer/admin/users", f"/{unique_bucket_name()}"]:
        assert requests.get(f"{admin}{path}", timeout=10).status_code == 404, path
    assert requests.post(f"{admin}/metrics", timeout=10).status_code == 405
    assert token not in srv.log_text(), "the token is never logged"


def test_workload_counts(observed):
    srv, admin, https, token = observed
    c = srv.client(checksum="when_required")
    kms = kms_client(srv)
    bucket = unique_bucket_name("metrics")
    keys = [f"secret-dir/object-{i}.bin" for i in range(N_PUTS)]

    c.create_bucket(Bucket=bucket)
    for key in keys:
        c.put_object(Bucket=bucket, Key=key, Body=b"p" * SIZE)
    for key in keys[:M_GETS]:
        assert len(c.get_object(Bucket=bucket, Key=key)["Body"].read()) == SIZE
    with pytest.raises(ClientError) as missing:
        c.head_object(Bucket=bucket, Key="no-such-object")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # One write in the OSS dialect.
    oss2_bucket(srv, bucket, "v4").put_object("oss-object", b"o" * SIZE)

    # SSE-KMS through a bucket key: the first write and first read miss the cache (one
    # GenerateDataKey, one Decrypt), the second of each hits it.
    key_id = kms.create_key(Description="metrics")["KeyMetadata"]["KeyId"]
    for i in range(2):
        c.put_object(Bucket=bucket, Key=f"kms-{i}", Body=b"k" * KMS_SIZE,
                     ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id, BucketKeyEnabled=True)
    for i in range(2):
        got = c.get_object(Bucket=bucket, Key=f"kms-{i}")
        assert got["SSEKMSKeyId"].endswith(key_id) and len(got["Body"].read()) == KMS_SIZE

    # A request head over the 64 KiB limit: answered 431, the connection closed.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 431")

    # One TLS handshake (and one probe over it).
    cert = srv.data_dir / "tls" / "self-signed.crt"
    assert requests.get(f"{https}/health/live", verify=str(cert), timeout=10).status_code == 200

    text = scrape(admin, token).text
    types, samples = parse(text)
    expected_types = {
        "coffer_requests_total": "counter",
        "coffer_request_duration_seconds": "histogram",
        "coffer_bytes_received_total": "counter",
        "coffer_bytes_sent_total": "counter",
        "coffer_requests_in_flight": "gauge",
        "coffer_kms_calls_total": "counter",
        "coffer_bucket_key_cache_total": "counter",
        "coffer_seal_bytes_total": "counter",
        "coffer_open_bytes_total": "counter",
        "coffer_integrity_failures_total": "counter",
        "coffer_tls_handshakes_total": "counter",
        "coffer_connections_refused_total": "counter",
    }
    assert types == expected_types

    requests_total = {labels: n for (name, labels), n in samples.items()
                      if name == "coffer_requests_total"}
    s3 = lambda op, status: (("dialect", "s3"), ("operation", op), ("status", status))  # noqa: E731
    assert requests_total == {
        s3("CreateBucket", "200"): 1,
        s3("PutObject", "200"): N_PUTS + 2,
        (("dialect", "oss"), ("operation", "PutObject"), ("status", "200")): 1,
        s3("GetObject", "200"): M_GETS + 2,
        s3("HeadObject", "404"): 1,
        s3("CreateKey", "200"): 1,
        s3("HealthLive", "200"): 1,
    }, requests_total

    hist = "coffer_request_duration_seconds"
    for op, n in [("PutObject", N_PUTS + 3), ("GetObject", M_GETS + 2), ("HeadObject", 1)]:
        assert value(samples, f"{hist}_count", operation=op) == n
        assert value(samples, f"{hist}_bucket", operation=op, le="+Inf") == n
        assert value(samples, f"{hist}_sum", operation=op) > 0
        buckets = sorted((float(dict(labels)["le"]), v) for (name, labels), v in samples.items()
                         if name == f"{hist}_bucket" and dict(labels)["operation"] == op)
        assert [v for _, v in buckets] == sorted(v for _, v in buckets), "cumulative"

    put_bytes = (N_PUTS + 1) * SIZE + 2 * KMS_SIZE
    get_bytes = M_GETS * SIZE + 2 * KMS_SIZE
    assert value(samples, "coffer_bytes_received_total", operation="PutObject") == put_bytes
    assert value(samples, "coffer_bytes_sent_total", operation="GetObject") == get_bytes
    assert value(samples, "coffer_bytes_sent_total", operation="HeadObject") == 0
    assert value(samples, "coffer_requests_in_flight") == 0

    kms_calls = {labels: n for (name, labels), n in samples.items()
                 if name == "coffer_kms_calls_total"}
    call = lambda c, o="ok": (("call", c), ("outcome", o))  # noqa: E731
    assert kms_calls.get(call("CreateKey")) == 1
    assert kms_calls.get(call("GenerateDataKey")) == 1, kms_calls
    assert kms_calls.get(call("Decrypt")) == 1, kms_calls
    cache = {labels: n for (name, labels), n in samples.items()
             if name == "coffer_bucket_key_cache_total"}
    assert cache == {(("key_state", "Enabled"), ("result", "hit")): 2,
                     (("key_state", "Enabled"), ("result", "miss")): 2}, cache

    # Every body is sealed (AES256 by default, the KMS ones under their data keys).
    assert value(samples, "coffer_seal_bytes_total", algorithm="AES-256-GCM") == put_bytes
    assert value(samples, "coffer_open_bytes_total", algorithm="AES-256-GCM") == get_bytes
    assert value(samples, "coffer_integrity_failures_total") == 0
    tls = {labels: n for (name, labels), n in samples.items()
           if name == "coffer_tls_handshakes_total"}
    assert tls == {(("outcome", "ok"), ("version", "TLSv1.3")): 1}, tls
    assert value(samples, "coffer_connections_refused_total", limit="head_too_large") == 1

    # Never a name or a secret in a label.
    for needle in [bucket, key_id, "secret-dir", "object-0", "kms-0", srv.access_key,
                   srv.secret_key, token]:
        assert needle not in text, needle


def test_failures_are_counted(observed):
    """Integrity failures, before the first byte (an error status) and after it (a cut
    download), count once each; a bucket-key hit on a disabled key counts with its state."""
    srv, admin, _, token = observed
    c = srv.client(checksum="when_required")
    kms = kms_client(srv)
    bucket = unique_bucket_name("failures")
    c.create_bucket(Bucket=bucket)

    # Above 64 KiB sealed, so its blob is a file to damage (smaller ones live in meta.redb).
    c.put_object(Bucket=bucket, Key="small", Body=b"s" * (80 * 1024))
    small_blob, = blob_files(srv.data_dir)
    c.put_object(Bucket=bucket, Key="large", Body=b"l" * (3 * MiB))
    large_blob, = set(blob_files(srv.data_dir)) - {small_blob}
    flip(small_blob, 10)
    flip(large_blob, 20 * SEALED_CHUNK + 100)  # past the first batch of 16 chunks
    with pytest.raises(ClientError) as damaged:
        c.get_object(Bucket=bucket, Key="small")
    assert damaged.value.response["Error"]["Code"] == "IntegrityCheckFailed"
    with pytest.raises(Exception):  # the status was 200; the body is cut
        c.get_object(Bucket=bucket, Key="large")["Body"].read()

    key_id = kms.create_key(Description="metrics failures")["KeyMetadata"]["KeyId"]
    c.put_object(Bucket=bucket, Key="kms", Body=b"k", ServerSideEncryption="aws:kms",
                 SSEKMSKeyId=key_id, BucketKeyEnabled=True)
    c.get_object(Bucket=bucket, Key="kms")["Body"].read()
    kms.disable_key(KeyId=key_id)
    with pytest.raises(ClientError) as refused:
        c.get_object(Bucket=bucket, Key="kms")
    assert refused.value.response["Error"]["Code"] == "KMS.DisabledException"

    _, samples = parse(scrape(admin, token).text)
    # boto3 may retry the 500 (one failure per request): every 500, plus the cut download.
    refused_reads = value(samples, "coffer_requests_total",
                          operation="GetObject", dialect="s3", status="500")
    assert refused_reads >= 1
    assert value(samples, "coffer_integrity_failures_total") == refused_reads + 1
    cache = {labels: n for (name, labels), n in samples.items()
             if name == "coffer_bucket_key_cache_total"}
    assert cache == {(("key_state", "Enabled"), ("result", "miss")): 2,
                     (("key_state", "Disabled"), ("result", "hit")): 1}, cache
    assert value(samples, "coffer_kms_calls_total", call="DisableKey", outcome="ok") == 1


def test_limits_are_counted(make_server):
    """A stalled upload body, a client that stops reading its download and connections
    beyond --max-connections each count under their limit."""
    admin = f"http://127.0.0.1:{free_port()}"
    srv = make_server(extra_args=["--admin-listen", admin.removeprefix("http://"),
                                  "--max-connections", "3", "--header-read-timeout", "2",
                                  "--body-read-timeout", "1", "--send-timeout", "1"])
    c = srv.client(checksum="when_required")
    bucket = unique_bucket_name("limits")
    c.create_bucket(Bucket=bucket)
    c.put_object(Bucket=bucket, Key="big", Body=b"b" * (16 * MiB))

    def raw(method: str, key: str, extra: str = "", **sign) -> bytes:
        signed = sign_request(method, f"{srv.endpoint}/{bucket}/{key}", srv.access_key,
                              srv.secret_key, **sign)
        headers = "".join(f"{k}: {v}\r\n" for k, v in signed.headers.items())
        return (f"{method} /{bucket}/{key} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
                f"{headers}{extra}\r\n").encode()

    # Half a body, then silence: RequestTimeout after the body-read timeout.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(raw("PUT", "stalled", "Content-Length: 1000\r\n",
                      payload_hash="UNSIGNED-PAYLOAD") + b"x" * 500)
        assert b"RequestTimeout" in s.recv(65536)

    # A download nobody reads: dropped after the send timeout.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        s.connect(("127.0.0.1", srv.port))
        s.sendall(raw("GET", "big"))
        time.sleep(3)

    # Three silent connections take every slot.
    held = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(3)]
    try:
        time.sleep(0.5)
        _, samples = parse(requests.get(f"{admin}/metrics", timeout=10).text)
    finally:
        for s in held:
            s.close()
    refused = lambda limit: value(samples, "coffer_connections_refused_total", limit=limit)  # noqa: E731
    assert refused("body_read_timeout") == 1
    assert refused("send_timeout") == 1
    assert refused("max_connections") >= 1
    assert refused("head_too_large") == 0
