"""Server-side encryption through every route, with every client, in every mode.

The matrix is {plain, AES256, SM4, SSE-C} x {PUT, multipart (5 MiB, 5 MiB, 1 MiB+123),
UploadPartCopy (ranged), CopyObject to every mode, ranged GET across part boundaries, HEAD}.
boto3 drives the S3 dialect in all four modes (SM4 as a raw `x-amz-server-side-encryption: SM4`
header added by a botocore event hook, since the typed parameter only knows AWS values);
oss2 and alibabacloud-oss-v2 drive the OSS dialect in plain/AES256/SM4 (OSS has no SSE-C).

Every cell checks that the bytes come back identical and that the response names the applied
encryption in the request's dialect (S3: `x-amz-server-side-encryption` or the SSE-C
`-customer-algorithm`/`-customer-key-MD5` pair; OSS: `x-oss-server-side-encryption`), and that
plain objects carry no SSE header at all. The error behaviour (missing/wrong SSE-C key, unknown
algorithms, SSE-C over HTTP without the opt-in flag) is at the end, with a smoke test of
SSE-KMS (the full SSE-KMS suite is test_sse_kms.py).

The session server runs with --allow-insecure-sse-c (conftest), since the suite speaks plain HTTP.

The matrix's buckets opt out of encryption at rest (`SSEAlgorithm` `none`), so that the "plain"
mode (no encryption header) still means a plaintext object and every copy to "plain" drops the
source's encryption; in any other bucket a request without a header gets the server's default,
AES256 — that case, through every client and route, is test_secure_default.py, and the
last test here.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import random

import alibabacloud_oss_v2 as oss
import oss2
import pytest
from oss2.models import PartInfo

from oss_support import (
    cleanup_bucket,
    expect_oss2_error,
    expect_v2_error,
    oss2_bucket,
    unique_oss_bucket,
    v2_client,
)
from support import expect_error, opt_out_of_encryption, unique_bucket_name

MiB = 1 << 20
CHUNK = 64 * 1024
S3_MODES = ["plain", "AES256", "SM4", "SSE-C"]
OSS_MODES = ["plain", "AES256", "SM4"]
# Non-last parts must be >= 5 MiB; the last one is short and not chunk-aligned.
PART_SIZES = [5 * MiB, 5 * MiB, MiB + 123]
# Small single-PUT objects still span several 64 KiB chunks and end mid-chunk.
SMALL = 3 * CHUNK + 4567


def data(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def seed_of(*parts) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big")


def md5_hex(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def md5_b64(b: bytes) -> str:
    return base64.b64encode(hashlib.md5(b).digest()).decode()


def lower(headers) -> dict[str, str]:
    return {k.lower(): v for k, v in dict(headers or {}).items()}


def new_customer_key(tag: str) -> bytes:
    return hashlib.sha256(f"sse-c test key {tag} {random.random()}".encode()).digest()


def check_sse(headers, mode: str, dialect: str, what: str, customer_key: bytes | None = None) -> None:
    """The response names exactly the encryption `mode`, in `dialect`, and nothing else."""
    h = lower(headers)
    amz = h.get("x-amz-server-side-encryption")
    amz_alg = h.get("x-amz-server-side-encryption-customer-algorithm")
    amz_md5 = h.get("x-amz-server-side-encryption-customer-key-md5")
    xoss = h.get("x-oss-server-side-encryption")
    seen = {k: v for k, v in h.items() if "server-side" in k}
    if dialect == "oss":
        assert amz is None and amz_alg is None, f"{what}: S3 SSE headers in an OSS response: {seen}"
        if mode == "plain":
            assert xoss is None, f"{what}: plain object, but the response says {seen}"
        else:
            assert xoss == mode, f"{what}: expected x-oss-server-side-encryption: {mode}, got {seen}"
        return
    assert xoss is None, f"{what}: OSS SSE header in an S3 response: {seen}"
    if mode == "plain":
        assert amz is None and amz_alg is None and amz_md5 is None, f"{what}: plain object, but {seen}"
    elif mode == "SSE-C":
        assert amz is None, f"{what}: SSE-C object also claims x-amz-server-side-encryption: {seen}"
        assert amz_alg == "AES256", f"{what}: SSE-C customer-algorithm not echoed: {seen}"
        assert amz_md5 == md5_b64(customer_key), f"{what}: SSE-C key-MD5 {amz_md5!r} != {md5_b64(customer_key)!r}"
    else:
        assert amz == mode, f"{what}: expected x-amz-server-side-encryption: {mode}, got {seen}"
        assert amz_alg is None, f"{what}: {seen}"


# --------------------------------------------------------------------------- drivers


class S3Driver:
    """boto3 (default checksum config: CRC32 on uploads, checksum-mode on GETs)."""

    name = "boto3"
    dialect = "s3"

    def __init__(self, client, bucket: str):
        self.c = client
        self.bucket = bucket

    @contextlib.contextmanager
    def raw_headers(self, headers: dict[str, str]):
        """Add raw request headers (signed) to every call inside the block."""
        def add(request, **_):
            for k, v in headers.items():
                request.headers[k] = v

        if not headers:
            yield
            return
        self.c.meta.events.register_first("before-sign.s3", add)
        try:
            yield
        finally:
            self.c.meta.events.unregister("before-sign.s3", add)

    @staticmethod
    def _write_args(mode: str, ck: bytes | None) -> tuple[dict, dict]:
        """(typed boto3 kwargs, raw headers) asking for `mode` on a write."""
        if mode == "AES256":
            return {"ServerSideEncryption": "AES256"}, {}
        if mode == "SM4":
            return {}, {"x-amz-server-side-encryption": "SM4"}
        if mode == "SSE-C":
            return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": ck}, {}
        return {}, {}

    @staticmethod
    def _read_args(mode: str, ck: bytes | None, prefix: str = "") -> dict:
        if mode == "SSE-C":
            return {f"{prefix}SSECustomerAlgorithm": "AES256", f"{prefix}SSECustomerKey": ck}
        return {}

    def put(self, key, body, mode, ck=None):
        kw, raw = self._write_args(mode, ck)
        with self.raw_headers(raw):
            r = self.c.put_object(Bucket=self.bucket, Key=key, Body=body, **kw)
        if mode == "AES256":
            assert r.get("ServerSideEncryption") == "AES256", f"PutObject typed ServerSideEncryption: {r}"
        if mode == "SSE-C":
            assert r.get("SSECustomerKeyMD5") == md5_b64(ck)
        return lower(r["ResponseMetadata"]["HTTPHeaders"]), r["ETag"]

    def get(self, key, mode, ck=None, byte_range: str | None = None):
        kw = self._read_args(mode, ck)
        if byte_range:
            kw["Range"] = byte_range
        r = self.c.get_object(Bucket=self.bucket, Key=key, **kw)
        body = r["Body"].read()
        if mode in ("AES256", "SM4"):
            assert r.get("ServerSideEncryption") == mode, f"GetObject typed ServerSideEncryption: {r.get('ServerSideEncryption')}"
        return r["ResponseMetadata"]["HTTPStatusCode"], lower(r["ResponseMetadata"]["HTTPHeaders"]), body

    def head(self, key, mode, ck=None):
        r = self.c.head_object(Bucket=self.bucket, Key=key, **self._read_args(mode, ck))
        return lower(r["ResponseMetadata"]["HTTPHeaders"])

    def create_upload(self, key, mode, ck=None):
        kw, raw = self._write_args(mode, ck)
        with self.raw_headers(raw):
            r = self.c.create_multipart_upload(Bucket=self.bucket, Key=key, **kw)
        return r["UploadId"], lower(r["ResponseMetadata"]["HTTPHeaders"])

    def upload_part(self, key, uid, n, body, mode, ck=None):
        r = self.c.upload_part(Bucket=self.bucket, Key=key, UploadId=uid, PartNumber=n, Body=body,
                               **self._read_args(mode, ck))
        return r["ETag"], lower(r["ResponseMetadata"]["HTTPHeaders"])

    def upload_part_copy(self, key, uid, n, src_key, byte_range, mode, ck, src_mode, src_ck):
        r = self.c.upload_part_copy(Bucket=self.bucket, Key=key, UploadId=uid, PartNumber=n,
                                    CopySource={"Bucket": self.bucket, "Key": src_key},
                                    CopySourceRange=byte_range, **self._read_args(mode, ck),
                                    **self._read_args(src_mode, src_ck, "CopySource"))
        return r["CopyPartResult"]["ETag"], lower(r["ResponseMetadata"]["HTTPHeaders"])

    def complete(self, key, uid, etags):
        r = self.c.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in etags]})
        return lower(r["ResponseMetadata"]["HTTPHeaders"])

    def copy(self, src_key, dst_key, src_mode, src_ck, dst_mode, dst_ck):
        kw, raw = self._write_args(dst_mode, dst_ck)
        with self.raw_headers(raw):
            r = self.c.copy_object(Bucket=self.bucket, Key=dst_key,
                                   CopySource={"Bucket": self.bucket, "Key": src_key},
                                   **kw, **self._read_args(src_mode, src_ck, "CopySource"))
        return lower(r["ResponseMetadata"]["HTTPHeaders"]), r["CopyObjectResult"]["ETag"]


def _oss_sse(mode: str) -> dict[str, str]:
    return {} if mode == "plain" else {"x-oss-server-side-encryption": mode}


class Oss2Driver:
    name = "oss2"
    dialect = "oss"

    def __init__(self, bucket: oss2.Bucket):
        self.b = bucket
        self.bucket = bucket.bucket_name

    def put(self, key, body, mode, ck=None):
        r = self.b.put_object(key, body, headers=_oss_sse(mode))
        return lower(r.headers), r.etag

    def get(self, key, mode, ck=None, byte_range: str | None = None):
        headers = {"Range": byte_range} if byte_range else None
        r = self.b.get_object(key, headers=headers)
        body = r.read()
        return r.status, lower(r.headers), body

    def head(self, key, mode, ck=None):
        return lower(self.b.head_object(key).headers)

    def create_upload(self, key, mode, ck=None):
        r = self.b.init_multipart_upload(key, headers=_oss_sse(mode))
        return r.upload_id, lower(r.headers)

    def upload_part(self, key, uid, n, body, mode, ck=None):
        r = self.b.upload_part(key, uid, n, body)
        return r.etag, lower(r.headers)

    def upload_part_copy(self, key, uid, n, src_key, byte_range, mode, ck, src_mode, src_ck):
        first, last = byte_range.removeprefix("bytes=").split("-")
        r = self.b.upload_part_copy(self.bucket, src_key, (int(first), int(last)), key, uid, n)
        return r.etag, lower(r.headers)

    def complete(self, key, uid, etags):
        r = self.b.complete_multipart_upload(key, uid, [PartInfo(n, e) for n, e in etags])
        return lower(r.headers)

    def copy(self, src_key, dst_key, src_mode, src_ck, dst_mode, dst_ck):
        r = self.b.copy_object(self.bucket, src_key, dst_key, headers=_oss_sse(dst_mode))
        return lower(r.headers), r.etag


class V2Driver:
    name = "ossv2"
    dialect = "oss"

    def __init__(self, client: oss.Client, bucket: str):
        self.c = client
        self.bucket = bucket

    @staticmethod
    def _sse(mode):
        return None if mode == "plain" else mode

    def put(self, key, body, mode, ck=None):
        r = self.c.put_object(oss.PutObjectRequest(bucket=self.bucket, key=key, body=body,
                                                   server_side_encryption=self._sse(mode)))
        return lower(r.headers), r.etag

    def get(self, key, mode, ck=None, byte_range: str | None = None):
        r = self.c.get_object(oss.GetObjectRequest(bucket=self.bucket, key=key, range_header=byte_range))
        body = r.body.read()
        assert r.server_side_encryption == self._sse(mode), f"GetObjectResult.server_side_encryption={r.server_side_encryption!r}"
        return r.status_code, lower(r.headers), body

    def head(self, key, mode, ck=None):
        r = self.c.head_object(oss.HeadObjectRequest(bucket=self.bucket, key=key))
        assert r.server_side_encryption == self._sse(mode), f"HeadObjectResult.server_side_encryption={r.server_side_encryption!r}"
        return lower(r.headers)

    def create_upload(self, key, mode, ck=None):
        r = self.c.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(
            bucket=self.bucket, key=key, server_side_encryption=self._sse(mode)))
        return r.upload_id, lower(r.headers)

    def upload_part(self, key, uid, n, body, mode, ck=None):
        r = self.c.upload_part(oss.UploadPartRequest(bucket=self.bucket, key=key, upload_id=uid,
                                                     part_number=n, body=body))
        return r.etag, lower(r.headers)

    def upload_part_copy(self, key, uid, n, src_key, byte_range, mode, ck, src_mode, src_ck):
        r = self.c.upload_part_copy(oss.UploadPartCopyRequest(
            bucket=self.bucket, key=key, upload_id=uid, part_number=n, source_bucket=self.bucket,
            source_key=src_key, source_range=byte_range))
        return r.etag, lower(r.headers)

    def complete(self, key, uid, etags):
        r = self.c.complete_multipart_upload(oss.CompleteMultipartUploadRequest(
            bucket=self.bucket, key=key, upload_id=uid, complete_multipart_upload=oss.CompleteMultipartUpload(
                parts=[oss.UploadPart(part_number=n, etag=e) for n, e in etags])))
        return lower(r.headers)

    def copy(self, src_key, dst_key, src_mode, src_ck, dst_mode, dst_ck):
        r = self.c.copy_object(oss.CopyObjectRequest(bucket=self.bucket, key=dst_key, source_bucket=self.bucket,
                                                     source_key=src_key, server_side_encryption=self._sse(dst_mode)))
        assert r.server_side_encryption == self._sse(dst_mode), f"CopyObjectResult.server_side_encryption={r.server_side_encryption!r}"
        return lower(r.headers), r.etag


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def drivers(server, s3_required):
    """One bucket per client for the whole module; destroyed (via boto3) at the end."""
    made = []
    _MULTIPART.clear()  # the cached multipart objects live in these buckets
    s3c = server.client()  # a private client: the SM4 event hook must not leak into shared ones
    b1 = unique_bucket_name("sse-s3")
    s3c.create_bucket(Bucket=b1)
    made.append(b1)
    b2 = unique_oss_bucket("sse-oss2")
    ob = oss2_bucket(server, b2, "v4")
    ob.create_bucket()
    made.append(b2)
    b3 = unique_oss_bucket("sse-ossv2")
    v2 = v2_client(server, retries=2)
    v2.put_bucket(oss.PutBucketRequest(bucket=b3))
    made.append(b3)
    for name in made:
        opt_out_of_encryption(s3c, name)
    yield {"boto3": S3Driver(s3c, b1), "oss2": Oss2Driver(ob), "ossv2": V2Driver(v2, b3)}
    for name in made:
        cleanup_bucket(s3_required, name)


CELLS = [("boto3", m) for m in S3_MODES] + [(c, m) for c in ("oss2", "ossv2") for m in OSS_MODES]
CELL_IDS = [f"{c}-{m}" for c, m in CELLS]


def _ck(mode: str, tag: str) -> bytes | None:
    return new_customer_key(tag) if mode == "SSE-C" else None


# A multipart object per (client, mode), made once and reused by the ranged-GET and HEAD cells.
_MULTIPART: dict[tuple[str, str], tuple[str, bytes, bytes | None]] = {}


def make_multipart(d, mode: str, key: str, ck: bytes | None):
    """Create, upload 3 parts (5 MiB, 5 MiB, 1 MiB+123), complete; check every echo. Returns the bytes."""
    parts = [data(size, seed_of(d.name, mode, key, i)) for i, size in enumerate(PART_SIZES)]
    uid, h = d.create_upload(key, mode, ck)
    check_sse(h, mode, d.dialect, f"{d.name} CreateMultipartUpload", ck)
    etags = []
    for n, body in enumerate(parts, start=1):
        etag, h = d.upload_part(key, uid, n, body, mode, ck)
        check_sse(h, mode, d.dialect, f"{d.name} UploadPart {n}", ck)
        if mode != "SSE-C":
            assert etag.strip('"').lower() == md5_hex(body), f"UploadPart {n} ETag {etag} is not the part's MD5"
        etags.append((n, etag))
    d.complete(key, uid, etags)
    return b"".join(parts)


def multipart_object(d, mode: str):
    k = (d.name, mode)
    if k not in _MULTIPART:
        key = f"mp/shared-{mode}.bin"
        ck = _ck(mode, f"shared-{d.name}")
        _MULTIPART[k] = (key, make_multipart(d, mode, key, ck), ck)
    return _MULTIPART[k]


# --------------------------------------------------------------------------- the matrix


@pytest.mark.parametrize("client_name,mode", CELLS, ids=CELL_IDS)
def test_put_get(drivers, client_name, mode):
    d = drivers[client_name]
    ck = _ck(mode, "put")
    body = data(SMALL, seed_of(client_name, mode, "put"))
    key = f"put/{mode}.bin"
    h, etag = d.put(key, body, mode, ck)
    check_sse(h, mode, d.dialect, f"{client_name} PutObject", ck)
    if mode != "SSE-C":
        # Single-part objects, encrypted or not: ETag = MD5 of the plaintext.
        assert etag.strip('"').lower() == md5_hex(body), f"PutObject ETag {etag} != MD5 of the plaintext"
    status, h, got = d.get(key, mode, ck)
    assert status == 200 and got == body, f"GET returned different bytes ({len(got)} vs {len(body)})"
    check_sse(h, mode, d.dialect, f"{client_name} GetObject", ck)
    assert h.get("etag") == etag or h.get("etag", "").strip('"').lower() == etag.strip('"').lower()
    # A range inside one chunk and one across a chunk boundary.
    for first, last in ((10, 99), (CHUNK - 7, 2 * CHUNK + 5), (SMALL - 3, SMALL - 1)):
        status, h, got = d.get(key, mode, ck, f"bytes={first}-{last}")
        assert status == 206 and got == body[first:last + 1], f"Range {first}-{last} returned wrong bytes"
        assert h.get("content-range") == f"bytes {first}-{last}/{SMALL}"
        check_sse(h, mode, d.dialect, f"{client_name} ranged GetObject", ck)


@pytest.mark.parametrize("client_name,mode", CELLS, ids=CELL_IDS)
def test_multipart(drivers, client_name, mode):
    d = drivers[client_name]
    key, whole, ck = multipart_object(d, mode)
    status, h, got = d.get(key, mode, ck)
    assert status == 200
    assert len(got) == len(whole) and got == whole, "multipart object read back differs"
    check_sse(h, mode, d.dialect, f"{client_name} GetObject (multipart)", ck)


@pytest.mark.parametrize("client_name,mode", CELLS, ids=CELL_IDS)
def test_ranged_get_across_part_boundaries(drivers, client_name, mode):
    d = drivers[client_name]
    key, whole, ck = multipart_object(d, mode)
    p1, p2 = PART_SIZES[0], PART_SIZES[0] + PART_SIZES[1]
    ranges = [
        (p1 - 1000, p1 + 70_000),          # end of part 1 into part 2, past its first chunk
        (p2 - 5, p2 + CHUNK + 10),         # end of part 2 into part 3's second chunk
        (p1 - CHUNK - 3, p2 + 3),          # all of part 2 plus a little of each neighbour
        (len(whole) - 200, len(whole) - 1),  # the tail of the short last chunk
    ]
    for first, last in ranges:
        status, h, got = d.get(key, mode, ck, f"bytes={first}-{last}")
        assert status == 206, f"Range {first}-{last}: HTTP {status}"
        assert got == whole[first:last + 1], f"Range {first}-{last}: wrong bytes ({len(got)} bytes)"
        assert h.get("content-range") == f"bytes {first}-{last}/{len(whole)}", h.get("content-range")
        check_sse(h, mode, d.dialect, f"{client_name} ranged GET {first}-{last}", ck)


@pytest.mark.parametrize("client_name,mode", CELLS, ids=CELL_IDS)
def test_head(drivers, client_name, mode):
    d = drivers[client_name]
    ck = _ck(mode, "head")
    body = data(SMALL, seed_of(client_name, mode, "head"))
    key = f"head/{mode}.bin"
    _, etag = d.put(key, body, mode, ck)
    h = d.head(key, mode, ck)
    assert int(h["content-length"]) == SMALL
    assert h.get("etag", "").strip('"').lower() == etag.strip('"').lower()
    check_sse(h, mode, d.dialect, f"{client_name} HeadObject", ck)
    mkey, whole, mck = multipart_object(d, mode)
    h = d.head(mkey, mode, mck)
    assert int(h["content-length"]) == len(whole), "HEAD of the multipart object: wrong Content-Length"
    check_sse(h, mode, d.dialect, f"{client_name} HeadObject (multipart)", mck)


@pytest.mark.parametrize("client_name,mode", CELLS, ids=CELL_IDS)
def test_upload_part_copy(drivers, client_name, mode):
    """An upload in `mode` assembled from ranged copies of a source in `mode` plus an uploaded tail."""
    d = drivers[client_name]
    src_ck, ck = _ck(mode, "upc-src"), _ck(mode, "upc-dst")  # SSE-C: source and target keys differ
    size = 5 * MiB + 200_000
    source = data(size, seed_of(client_name, mode, "upc"))
    src_key, key = f"upc/src-{mode}.bin", f"upc/dst-{mode}.bin"
    d.put(src_key, source, mode, src_ck)
    uid, h = d.create_upload(key, mode, ck)
    check_sse(h, mode, d.dialect, f"{client_name} CreateMultipartUpload", ck)
    r1 = (100, 100 + 5 * MiB - 1)           # 5 MiB, not chunk-aligned
    r3 = (5 * MiB + 150, size - 1)          # the end of the source: the short last part
    middle = data(5 * MiB, seed_of(client_name, mode, "upc-middle"))  # an ordinary UploadPart between copies
    etags = []
    for n, (first, last) in ((1, r1), (3, r3)):
        etag, h = d.upload_part_copy(key, uid, n, src_key, f"bytes={first}-{last}", mode, ck, mode, src_ck)
        check_sse(h, mode, d.dialect, f"{client_name} UploadPartCopy {n}", ck)
        if mode != "SSE-C":
            assert etag.strip('"').lower() == md5_hex(source[first:last + 1]), f"UploadPartCopy {n} ETag"
        etags.append((n, etag))
    etag, _ = d.upload_part(key, uid, 2, middle, mode, ck)
    etags.insert(1, (2, etag))
    d.complete(key, uid, etags)
    expected = source[r1[0]:r1[1] + 1] + middle + source[r3[0]:r3[1] + 1]
    status, h, got = d.get(key, mode, ck)
    assert status == 200 and got == expected, "UploadPartCopy result differs"
    check_sse(h, mode, d.dialect, f"{client_name} GetObject (from UploadPartCopy)", ck)


COPY_CELLS = ([("boto3", s, t) for s in S3_MODES for t in S3_MODES]
              + [(c, s, t) for c in ("oss2", "ossv2") for s in OSS_MODES for t in OSS_MODES])


@pytest.mark.parametrize("client_name,src_mode,dst_mode", COPY_CELLS,
                         ids=[f"{c}-{s}-to-{t}" for c, s, t in COPY_CELLS])
def test_copy_object(drivers, client_name, src_mode, dst_mode):
    """The copy is encrypted as the copy request asks (no SSE header: plain), whatever the source was."""
    d = drivers[client_name]
    src_ck, dst_ck = _ck(src_mode, "copy-src"), _ck(dst_mode, "copy-dst")
    body = data(SMALL, seed_of(client_name, src_mode, dst_mode, "copy"))
    src_key, dst_key = f"copy/src-{src_mode}-{dst_mode}", f"copy/dst-{src_mode}-{dst_mode}"
    d.put(src_key, body, src_mode, src_ck)
    h, etag = d.copy(src_key, dst_key, src_mode, src_ck, dst_mode, dst_ck)
    check_sse(h, dst_mode, d.dialect, f"{client_name} CopyObject {src_mode}->{dst_mode}", dst_ck)
    if dst_mode != "SSE-C":
        assert etag.strip('"').lower() == md5_hex(body), "CopyObject ETag is not the MD5 of the bytes"
    status, h, got = d.get(dst_key, dst_mode, dst_ck)
    assert status == 200 and got == body, f"copy {src_mode}->{dst_mode} returned different bytes"
    check_sse(h, dst_mode, d.dialect, f"{client_name} GET of the copy", dst_ck)
    check_sse(d.head(dst_key, dst_mode, dst_ck), dst_mode, d.dialect, f"{client_name} HEAD of the copy", dst_ck)
    # The source is untouched.
    _, h, got = d.get(src_key, src_mode, src_ck)
    assert got == body
    check_sse(h, src_mode, d.dialect, f"{client_name} GET of the copy source", src_ck)
    if client_name == "boto3" and dst_mode == "SSE-C" and src_mode == "SSE-C":
        # Re-keyed: the source key no longer opens the copy.
        expect_error(d.c.get_object, "AccessDenied", 403, Bucket=d.bucket, Key=dst_key,
                     SSECustomerAlgorithm="AES256", SSECustomerKey=src_ck)


def test_copy_sse_c_source_needs_its_key(drivers):
    d = drivers["boto3"]
    ck = new_customer_key("copy-needs-key")
    d.put("copy/ssec-src", b"x" * 1000, "SSE-C", ck)
    expect_error(d.c.copy_object, "InvalidRequest", 400, Bucket=d.bucket, Key="copy/ssec-dst",
                 CopySource={"Bucket": d.bucket, "Key": "copy/ssec-src"})
    expect_error(d.c.copy_object, "AccessDenied", 403, Bucket=d.bucket, Key="copy/ssec-dst",
                 CopySource={"Bucket": d.bucket, "Key": "copy/ssec-src"},
                 CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=new_customer_key("other"))
    expect_error(d.c.head_object, None, 404, Bucket=d.bucket, Key="copy/ssec-dst")


# --------------------------------------------------------------------------- cross-dialect


def test_sm4_from_oss2_reads_through_boto3(drivers, server):
    ob = drivers["oss2"].b
    body = data(3 * CHUNK + 11, 4242)
    put = ob.put_object("cross/sm4.bin", body, headers={"x-oss-server-side-encryption": "SM4"})
    assert put.headers.get("x-oss-server-side-encryption") == "SM4"
    s3 = drivers["boto3"].c
    r = s3.get_object(Bucket=ob.bucket_name, Key="cross/sm4.bin")
    assert r["Body"].read() == body, "boto3 read different bytes of the oss2 SM4 object"
    check_sse(r["ResponseMetadata"]["HTTPHeaders"], "SM4", "s3", "boto3 GET of an oss2 SM4 object")
    r = s3.get_object(Bucket=ob.bucket_name, Key="cross/sm4.bin", Range=f"bytes={CHUNK - 1}-{CHUNK}")
    assert r["Body"].read() == body[CHUNK - 1:CHUNK + 1]
    # And through the v2 SDK.
    res = drivers["ossv2"].c.get_object(oss.GetObjectRequest(bucket=ob.bucket_name, key="cross/sm4.bin"))
    assert res.body.read() == body and res.server_side_encryption == "SM4"


def test_aes256_from_boto3_reads_through_oss_sdks(drivers):
    d = drivers["boto3"]
    body = data(2 * CHUNK + 1, 4343)
    d.put("cross/aes.bin", body, "AES256")
    ob = oss2_bucket_for(drivers, d.bucket)
    r = ob.get_object("cross/aes.bin")
    assert r.read() == body
    check_sse(r.headers, "AES256", "oss", "oss2 GET of a boto3 AES256 object")
    res = drivers["ossv2"].c.head_object(oss.HeadObjectRequest(bucket=d.bucket, key="cross/aes.bin"))
    assert res.server_side_encryption == "AES256"


def oss2_bucket_for(drivers, name: str) -> oss2.Bucket:
    b = drivers["oss2"].b
    return oss2.Bucket(b.auth, b.endpoint, name, region=b.region)


# --------------------------------------------------------------------------- SSE-C errors


def test_sse_c_get_head_without_or_with_wrong_key(drivers):
    d = drivers["boto3"]
    ck = new_customer_key("errors")
    body = data(CHUNK + 1, 77)
    d.put("ssec/err.bin", body, "SSE-C", ck)
    expect_error(d.c.get_object, "InvalidRequest", 400, Bucket=d.bucket, Key="ssec/err.bin")
    expect_error(d.c.head_object, None, 400, Bucket=d.bucket, Key="ssec/err.bin")
    wrong = new_customer_key("wrong")
    expect_error(d.c.get_object, "AccessDenied", 403, Bucket=d.bucket, Key="ssec/err.bin",
                 SSECustomerAlgorithm="AES256", SSECustomerKey=wrong)
    expect_error(d.c.head_object, None, 403, Bucket=d.bucket, Key="ssec/err.bin",
                 SSECustomerAlgorithm="AES256", SSECustomerKey=wrong)
    expect_error(d.c.get_object, "AccessDenied", 403, Bucket=d.bucket, Key="ssec/err.bin", Range="bytes=0-9",
                 SSECustomerAlgorithm="AES256", SSECustomerKey=wrong)
    # The right key still works afterwards.
    _, _, got = d.get("ssec/err.bin", "SSE-C", ck)
    assert got == body


def test_sse_c_upload_part_needs_the_key_on_every_part(drivers):
    d = drivers["boto3"]
    ck = new_customer_key("mp-parts")
    key = "ssec/mp-keys.bin"
    uid, _ = d.create_upload(key, "SSE-C", ck)
    p1 = data(5 * MiB, 91)
    e1, h = d.upload_part(key, uid, 1, p1, "SSE-C", ck)
    check_sse(h, "SSE-C", "s3", "UploadPart 1", ck)
    expect_error(d.c.upload_part, "InvalidRequest", 400, Bucket=d.bucket, Key=key, UploadId=uid,
                 PartNumber=2, Body=b"no key")
    expect_error(d.c.upload_part, "AccessDenied", 403, Bucket=d.bucket, Key=key, UploadId=uid,
                 PartNumber=2, Body=b"wrong key", SSECustomerAlgorithm="AES256",
                 SSECustomerKey=new_customer_key("mp-wrong"))
    e2, _ = d.upload_part(key, uid, 2, b"tail", "SSE-C", ck)
    parts = d.c.list_parts(Bucket=d.bucket, Key=key, UploadId=uid)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1, 2], "a refused part was recorded"
    d.complete(key, uid, [(1, e1), (2, e2)])
    _, _, got = d.get(key, "SSE-C", ck)
    assert got == p1 + b"tail"


def test_sse_c_refused_over_http_without_flag(make_server):
    srv = make_server()  # no --allow-insecure-sse-c
    c = srv.client(checksum="when_required")
    c.create_bucket(Bucket="ssec-http")
    ck = new_customer_key("http")
    expect_error(c.put_object, "InvalidRequest", 400, Bucket="ssec-http", Key="k", Body=b"secret",
                 SSECustomerAlgorithm="AES256", SSECustomerKey=ck)
    expect_error(c.get_object, "NoSuchKey", 404, Bucket="ssec-http", Key="k")
    expect_error(c.create_multipart_upload, "InvalidRequest", 400, Bucket="ssec-http", Key="k",
                 SSECustomerAlgorithm="AES256", SSECustomerKey=ck)
    assert c.list_multipart_uploads(Bucket="ssec-http").get("Uploads", []) == []
    assert c.list_objects_v2(Bucket="ssec-http").get("KeyCount") == 0
    # Service-key encryption is unaffected.
    c.put_object(Bucket="ssec-http", Key="a", Body=b"fine", ServerSideEncryption="AES256")
    assert c.get_object(Bucket="ssec-http", Key="a")["Body"].read() == b"fine"


# --------------------------------------------------------------------------- bad algorithms


def test_unknown_s3_algorithm_refused(drivers):
    d = drivers["boto3"]
    for value in ("AES128", "aes256", "SM4-GCM", ""):
        key = f"bad/s3-{value or 'empty'}"
        with d.raw_headers({"x-amz-server-side-encryption": value}):
            expect_error(d.c.put_object, "InvalidArgument", 400, Bucket=d.bucket, Key=key, Body=b"nope")
            expect_error(d.c.create_multipart_upload, "InvalidArgument", 400, Bucket=d.bucket, Key=key)
        expect_error(d.c.get_object, "NoSuchKey", 404, Bucket=d.bucket, Key=key)
    d.put("bad/copy-src", b"src", "plain")
    with d.raw_headers({"x-amz-server-side-encryption": "AES128"}):
        expect_error(d.c.copy_object, "InvalidArgument", 400, Bucket=d.bucket, Key="bad/copy-dst",
                     CopySource={"Bucket": d.bucket, "Key": "bad/copy-src"})
    expect_error(d.c.get_object, "NoSuchKey", 404, Bucket=d.bucket, Key="bad/copy-dst")


def test_unknown_oss_algorithm_refused(drivers):
    ob = drivers["oss2"].b
    v2 = drivers["ossv2"]
    expect_oss2_error(ob.put_object, oss2.exceptions.InvalidEncryptionAlgorithmError, 400, "InvalidEncryptionAlgorithmError",
                      "bad/oss-des", b"nope", headers={"x-oss-server-side-encryption": "DES"})
    expect_oss2_error(ob.init_multipart_upload, oss2.exceptions.InvalidEncryptionAlgorithmError, 400,
                      "InvalidEncryptionAlgorithmError", "bad/oss-des",
                      headers={"x-oss-server-side-encryption": "DES"})
    expect_oss2_error(ob.get_object, oss2.exceptions.NoSuchKey, 404, "NoSuchKey", "bad/oss-des")
    expect_v2_error(v2.c.put_object, 400, "InvalidEncryptionAlgorithmError",
                    oss.PutObjectRequest(bucket=v2.bucket, key="bad/v2-des", body=b"nope",
                                         server_side_encryption="DES"))
    expect_v2_error(v2.c.get_object, 404, "NoSuchKey", oss.GetObjectRequest(bucket=v2.bucket, key="bad/v2-des"))


def test_kms_works_in_every_dialect(drivers, server):
    """SSE-KMS (`aws:kms` / OSS `KMS`) is served by the embedded KMS: writes succeed and every
    response names the mode and the CMK (the managed default key `alias/aws/s3` when none is named).
    The full SSE-KMS suite is test_sse_kms.py."""
    import boto3

    kms = boto3.session.Session(aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
                                region_name="us-east-1").client("kms", endpoint_url=server.endpoint)
    named = kms.create_key(Description="sse matrix")["KeyMetadata"]["KeyId"]
    body = data(SMALL, seed_of("kms"))

    def s3_kms(headers, key_id, what):
        h = {k: v for k, v in lower(headers).items() if "server-side" in k}
        assert h.get("x-amz-server-side-encryption") == "aws:kms", f"{what}: {h}"
        assert h.get("x-amz-server-side-encryption-aws-kms-key-id", "").split("/")[-1] == key_id, f"{what}: {h}"
        assert not any(k.startswith("x-oss-") for k in h), f"{what}: {h}"

    def oss_kms(headers, key_id, what, sm4=False):
        h = {k: v for k, v in lower(headers).items() if "server-side" in k}
        assert h.get("x-oss-server-side-encryption") == "KMS", f"{what}: {h}"
        assert h.get("x-oss-server-side-encryption-key-id") == key_id, f"{what}: {h}"
        assert h.get("x-oss-server-side-data-encryption") == ("SM4" if sm4 else None), f"{what}: {h}"
        assert not any(k.startswith("x-amz-") for k in h), f"{what}: {h}"

    d = drivers["boto3"]
    r = d.c.put_object(Bucket=d.bucket, Key="kms/s3", Body=body, ServerSideEncryption="aws:kms")
    default = kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]["KeyId"]
    assert r["ServerSideEncryption"] == "aws:kms" and r["SSEKMSKeyId"].split("/")[-1] == default, r
    s3_kms(r["ResponseMetadata"]["HTTPHeaders"], default, "boto3 PutObject aws:kms (default key)")
    assert r["ETag"].strip('"') == md5_hex(body)
    r = d.c.put_object(Bucket=d.bucket, Key="kms/s3-named", Body=body, ServerSideEncryption="aws:kms",
                       SSEKMSKeyId=named, BucketKeyEnabled=True)
    s3_kms(r["ResponseMetadata"]["HTTPHeaders"], named, "boto3 PutObject aws:kms (named key)")
    assert r.get("BucketKeyEnabled") is True, r
    for key, key_id in (("kms/s3", default), ("kms/s3-named", named)):
        status, h, got = d.get(key, "plain")
        assert status == 200 and got == body
        s3_kms(h, key_id, f"boto3 GetObject {key}")
        s3_kms(d.head(key, "plain"), key_id, f"boto3 HeadObject {key}")
    r = d.c.create_multipart_upload(Bucket=d.bucket, Key="kms/s3-mp", ServerSideEncryption="aws:kms",
                                    SSEKMSKeyId=named)
    s3_kms(r["ResponseMetadata"]["HTTPHeaders"], named, "boto3 CreateMultipartUpload aws:kms")
    d.c.abort_multipart_upload(Bucket=d.bucket, Key="kms/s3-mp", UploadId=r["UploadId"])

    ob = drivers["oss2"].b
    r = ob.put_object("kms/oss", body, headers={"x-oss-server-side-encryption": "KMS"})
    oss_kms(r.headers, default, "oss2 PutObject KMS (default key)")
    r = ob.put_object("kms/oss-sm4", body, headers={"x-oss-server-side-encryption": "KMS",
                                                    "x-oss-server-side-encryption-key-id": named,
                                                    "x-oss-server-side-data-encryption": "SM4"})
    oss_kms(r.headers, named, "oss2 PutObject KMS+SM4", sm4=True)
    g = ob.get_object("kms/oss-sm4")
    assert g.read() == body
    oss_kms(g.headers, named, "oss2 GetObject KMS+SM4", sm4=True)
    oss_kms(ob.head_object("kms/oss").headers, default, "oss2 HeadObject KMS")

    v2 = drivers["ossv2"]
    v2.c.put_object(oss.PutObjectRequest(bucket=v2.bucket, key="kms/v2", body=body, server_side_encryption="KMS",
                                         server_side_encryption_key_id=named))
    res = v2.c.get_object(oss.GetObjectRequest(bucket=v2.bucket, key="kms/v2"))
    assert res.body.read() == body
    assert (res.server_side_encryption, res.server_side_encryption_key_id) == ("KMS", named), lower(res.headers)
    oss_kms(res.headers, named, "ossv2 GetObject KMS")


def test_sse_c_reads_refused_after_restart_without_flag(make_server):
    """An SSE-C object written with the opt-in flag cannot be read over HTTP once the flag is off."""
    srv = make_server(extra_args=["--allow-insecure-sse-c"])
    c = srv.client(checksum="when_required")
    c.create_bucket(Bucket="ssec-restart")
    ck = new_customer_key("restart")
    c.put_object(Bucket="ssec-restart", Key="k", Body=b"secret", SSECustomerAlgorithm="AES256", SSECustomerKey=ck)
    srv.stop()
    srv.extra_args = []
    srv.start()
    c = srv.client(checksum="when_required")
    expect_error(c.get_object, "InvalidRequest", 400, Bucket="ssec-restart", Key="k",
                 SSECustomerAlgorithm="AES256", SSECustomerKey=ck)
    expect_error(c.head_object, None, 400, Bucket="ssec-restart", Key="k",
                 SSECustomerAlgorithm="AES256", SSECustomerKey=ck)
    # A wrong key is refused the same way (400, not 403): no key oracle over plain HTTP.
    expect_error(c.get_object, "InvalidRequest", 400, Bucket="ssec-restart", Key="k",
                 SSECustomerAlgorithm="AES256", SSECustomerKey=new_customer_key("restart-wrong"))
    srv.stop()
    srv.extra_args = ["--allow-insecure-sse-c"]
    srv.start()
    c = srv.client(checksum="when_required")
    got = c.get_object(Bucket="ssec-restart", Key="k", SSECustomerAlgorithm="AES256", SSECustomerKey=ck)
    assert got["Body"].read() == b"secret"


@pytest.mark.parametrize("client_name", ["boto3", "oss2", "ossv2"])
def test_no_header_without_opt_out_is_the_server_default(drivers, client_name, s3_required):
    """The same drivers, "plain" writes, in a bucket with the opt-out removed: AES256."""
    d = drivers[client_name]
    bucket = d.bucket
    s3_required.delete_bucket_encryption(Bucket=bucket)
    try:
        body = data(SMALL, seed_of(client_name, "default"))
        h, etag = d.put("default/put.bin", body, "plain", None)
        check_sse(h, "AES256", d.dialect, f"{client_name} PutObject without a header")
        assert etag.strip('"').lower() == md5_hex(body)
        status, h, got = d.get("default/put.bin", "AES256", None)  # what it must read as
        assert status == 200 and got == body
        check_sse(h, "AES256", d.dialect, f"{client_name} GetObject of a default-sealed object")
    finally:
        opt_out_of_encryption(s3_required, bucket)
