"""Helpers for the OSS-dialect interop tests (oss2 and alibabacloud-oss-v2 against `coffer`).

The server is the same session server as the S3 suite (conftest `server`): root credentials,
path-style addressing on http://127.0.0.1:PORT. Buckets are created through the OSS SDK under
test and destroyed through boto3 (dialect-neutral cleanup, see `support.destroy_bucket`).
See OSS-NOTES.md for what each SDK requires of the responses.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import alibabacloud_oss_v2 as oss
import oss2
import pytest
from oss2.utils import Crc64

from support import DeterministicStream, destroy_bucket

OSS_REGION = "cn-hangzhou"
MiB = 1 << 20

# 30 keys under one prefix: spaces, '+', '%', unicode, nested "directories".
LIST_PREFIX = "list/"
LIST_KEYS = sorted(
    [f"{LIST_PREFIX}plain-{i:02d}.txt" for i in range(12)]
    + [
        f"{LIST_PREFIX}with space.txt",
        f"{LIST_PREFIX}two  spaces and+plus.bin",
        f"{LIST_PREFIX}a+b+c",
        f"{LIST_PREFIX}percent%20literal",
        f"{LIST_PREFIX}percent%",
        f"{LIST_PREFIX}ümlaut-äöü.txt",
        f"{LIST_PREFIX}日本語のキー",
        f"{LIST_PREFIX}emoji-🎉.dat",
        f"{LIST_PREFIX}tilde~and.dots..",
        f"{LIST_PREFIX}amp&lt;gt>quote\"apos'",
        f"{LIST_PREFIX}dir one/a.txt",
        f"{LIST_PREFIX}dir one/b c.txt",
        f"{LIST_PREFIX}dir+two/x",
        f"{LIST_PREFIX}dir+two/y/z",
        f"{LIST_PREFIX}ü-dir/1",
        f"{LIST_PREFIX}ü-dir/2",
        f"{LIST_PREFIX}z/deep/er/key",
        f"{LIST_PREFIX}zz last",
    ],
    key=lambda k: k.encode("utf-8"),
)
assert len(LIST_KEYS) == 30 and len(set(LIST_KEYS)) == 30


def utf8_sorted(keys) -> list[str]:
    """Sort the way OSS/S3 list: by UTF-8 bytes."""
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def expected_delimited(keys, prefix: str, delimiter: str = "/") -> tuple[list[str], list[str]]:
    """(objects, common prefixes) that a delimiter listing of `keys` must return."""
    objects, prefixes = [], set()
    for k in keys:
        if not k.startswith(prefix):
            continue
        rest = k[len(prefix):]
        if delimiter in rest:
            prefixes.add(prefix + rest.split(delimiter, 1)[0] + delimiter)
        else:
            objects.append(k)
    return utf8_sorted(objects), utf8_sorted(prefixes)


def unique_oss_bucket(prefix: str = "oss") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def crc64(data: bytes) -> int:
    c = Crc64()
    c.update(data)
    return c.crc


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def assert_etag(etag: str | None, data: bytes, what: str) -> None:
    """An OSS ETag for a single-part object is the MD5 (OSS writes it upper-case)."""
    assert etag is not None, f"{what}: no ETag"
    assert etag.strip('"').lower() == md5_hex(data), f"{what}: ETag {etag!r} is not the MD5 of the body"


def assert_crc_header(headers, data: bytes, what: str) -> None:
    """x-oss-hash-crc64ecma must be absent or the exact CRC-64/XZ (decimal) of the content."""
    value = headers.get("x-oss-hash-crc64ecma")
    if value is None:
        return
    assert value == str(crc64(data)), (
        f"{what}: x-oss-hash-crc64ecma {value!r} != CRC-64/XZ {crc64(data)} of the content"
    )


def assert_recent(ts: float, what: str, slack: float = 300) -> None:
    now = time.time()
    assert abs(now - ts) < slack, f"{what}: timestamp {ts} is not ~now ({now})"


def write_big_file(path: Path, size: int, seed: int) -> str:
    """Write `size` deterministic bytes to path; return their sha256."""
    stream = DeterministicStream(size, seed=seed)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        while True:
            chunk = stream.read(4 * MiB)
            if not chunk:
                break
            h.update(chunk)
            f.write(chunk)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(4 * MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def parse_oss_error(body: bytes) -> dict[str, str]:
    """Children of an OSS <Error> document (no namespace allowed, as the SDKs require)."""
    root = ET.fromstring(body)
    assert root.tag == "Error", f"error root is {root.tag!r}, expected a namespace-free <Error>: {body[:300]!r}"
    return {child.tag: (child.text or "") for child in root}


def assert_oss_error_response(resp, status: int, code: str | None) -> dict[str, str]:
    """A `requests` response carrying an OSS error document (body, or x-oss-err for HEAD)."""
    assert resp.status_code == status, f"HTTP {resp.status_code}, expected {status}: {resp.content[:400]!r}"
    body = resp.content
    if not body and "x-oss-err" in resp.headers:
        body = base64.b64decode(resp.headers["x-oss-err"])
    details = parse_oss_error(body)
    if code is not None:
        assert details.get("Code") == code, f"Code {details.get('Code')!r}, expected {code!r}: {details}"
    for field in ("Code", "Message", "RequestId", "HostId"):
        assert field in details, f"OSS error lacks <{field}>: {details}"
    assert resp.headers.get("x-oss-request-id"), f"no x-oss-request-id on the error: {dict(resp.headers)}"
    return details


# --------------------------------------------------------------------------- oss2


def oss2_auth(kind: str, access_key: str, secret_key: str):
    if kind == "v1":
        return oss2.Auth(access_key, secret_key)
    if kind == "v4":
        return oss2.AuthV4(access_key, secret_key)
    raise ValueError(kind)


def oss2_bucket(server, name: str, kind: str, *, secret: str | None = None, **kwargs) -> oss2.Bucket:
    """An oss2.Bucket in path style (the endpoint is an IP) with the given auth version."""
    auth = oss2_auth(kind, server.access_key, server.secret_key if secret is None else secret)
    return oss2.Bucket(auth, server.endpoint, name, region=OSS_REGION, connect_timeout=30, **kwargs)


def oss2_service(server, kind: str, *, secret: str | None = None) -> oss2.Service:
    auth = oss2_auth(kind, server.access_key, server.secret_key if secret is None else secret)
    return oss2.Service(auth, server.endpoint, region=OSS_REGION, connect_timeout=30)


def expect_oss2_error(fn, klass, status: int, code: str | None, *args, **kwargs):
    """Call fn; it must raise exactly `klass` (an oss2 exception class) with status and code."""
    with pytest.raises(oss2.exceptions.OssError) as ei:
        fn(*args, **kwargs)
    exc = ei.value
    assert type(exc) is klass, (
        f"expected {klass.__name__}, got {type(exc).__name__}: status={exc.status} code={exc.code!r} "
        f"details={exc.details}"
    )
    assert exc.status == status, f"status {exc.status}, expected {status}: {exc.details}"
    if code is not None:
        assert exc.code == code, f"code {exc.code!r}, expected {code!r}: {exc.details}"
    return exc


# --------------------------------------------------------------------------- alibabacloud-oss-v2


def v2_client(server, *, secret: str | None = None, signature_version: str | None = None,
              retries: int = 1) -> oss.Client:
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(
        server.access_key, server.secret_key if secret is None else secret)
    cfg.endpoint = server.endpoint
    cfg.region = OSS_REGION
    cfg.use_path_style = True
    cfg.retry_max_attempts = retries
    cfg.connect_timeout = 30
    cfg.readwrite_timeout = 120
    if signature_version is not None:
        cfg.signature_version = signature_version
    return oss.Client(cfg)


def expect_v2_error(fn, status: int, code: str | None, *args, **kwargs) -> oss.exceptions.ServiceError:
    """Call fn; it must raise OperationError wrapping a ServiceError with status and code."""
    with pytest.raises(oss.exceptions.OperationError) as ei:
        fn(*args, **kwargs)
    se = ei.value.unwrap()
    assert isinstance(se, oss.exceptions.ServiceError), (
        f"expected a ServiceError inside OperationError, got {type(se).__name__}: {se}"
    )
    assert se.status_code == status, f"status {se.status_code}, expected {status}: {se.code} {se.message}"
    if code is not None:
        assert se.code == code, f"code {se.code!r}, expected {code!r}: {se.message} {se.error_fileds}"
    return se


# --------------------------------------------------------------------------- cleanup


def cleanup_bucket(s3_client, name: str) -> None:
    """Empty and delete a bucket through boto3; never let cleanup mask the test's own failure."""
    try:
        destroy_bucket(s3_client, name)
    except Exception as exc:  # noqa: BLE001 - best effort
        print(f"cleanup of bucket {name} failed: {exc!r}")


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
