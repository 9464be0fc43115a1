"""SSE-KMS on objects: the embedded KMS behind `aws:kms` (S3) and `KMS` (OSS), end to end.

Clients: the aws CLI (`aws s3 cp --sse aws:kms`, `aws s3api head-object`), boto3 (S3 dialect and
its KMS client for key administration), oss2 and alibabacloud-oss-v2 (OSS dialect). Every test
makes its own bucket(s) and keys. Tests that read the KMS audit log
(`<data-dir>/kms/audit.log`: one JSON object per KMS call, with `operation`, `key_id`,
`key_version`, `resource` = "<bucket>/<key>", `encryption_context`, `outcome`) or scan the data
dir use a dedicated server from `make_server`.

Behaviour pinned here (see docs/encryption.md and WIRE-FORMATS.md §3.1, §6.1):
- responses name `aws:kms` + the key id (and `bucket-key-enabled: true` when used) in S3, `KMS`
  + `-key-id` (+ `x-oss-server-side-data-encryption: SM4`) in OSS, on PUT/GET/HEAD/copies/multipart;
- without a key id the managed default key `alias/aws/s3` is used;
- the client's encryption context is stored and returned on GET/HEAD, and passed to the KMS
  together with `aws:s3:arn`;
- fail closed: a disabled key answers 403 `KMS.DisabledException`, a key pending deletion (or a
  BYOK key without material) 403 `KMS.KMSInvalidStateException`, an unknown key 400
  `KMS.NotFoundException`, for every route, bucket keys included; nothing is ever stored
  unencrypted or under another key;
- HEAD of an SSE-KMS object is answered from the stored envelope without asking the KMS, as AWS
  does, so that with a disabled key HEAD succeeds and the GET that follows (`aws s3 cp`) reports
  `KMS.DisabledException` instead of a bare 403 from HEAD.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import uuid
from pathlib import Path

import alibabacloud_oss_v2 as oss
import boto3
import oss2
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from oss2.models import PartInfo, ServerSideEncryptionRule

from oss_support import cleanup_bucket, oss2_bucket, unique_oss_bucket, v2_client
from support import (
    CHUNK,
    REGION,
    error_code,
    expect_error,
    find_in_files,
    http_status,
    import_key_material,
    opt_out_of_encryption,
    windows,
)

MiB = 1 << 20
PART_SIZES = [5 * MiB, 5 * MiB, MiB + 123]
DEFAULT_ALIAS = "alias/aws/s3"

DISABLED = ("KMS.DisabledException", 403)
INVALID_STATE = ("KMS.KMSInvalidStateException", 403)
NOT_FOUND = ("KMS.NotFoundException", 400)


# --------------------------------------------------------------------------- helpers


def rand(n: int, seed: int | None = None) -> bytes:
    if seed is None:
        return os.urandom(n)
    return random.Random(seed).randbytes(n)


def md5_hex(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def sse(headers) -> dict[str, str]:
    """The server-side-encryption response headers, lower-cased."""
    return {k.lower(): v for k, v in dict(headers or {}).items() if "server-side" in k.lower()}


def hdrs(response) -> dict[str, str]:
    return response["ResponseMetadata"]["HTTPHeaders"]


def b64_context(ctx: dict[str, str]) -> str:
    return base64.b64encode(json.dumps(ctx).encode()).decode()


def check_s3_kms(headers, key_id: str, what: str, *, bucket_key: bool = False,
                 context: dict | None = None) -> None:
    """An S3 response naming SSE-KMS under `key_id` (exactly), and nothing else."""
    h = sse(headers)
    assert h.get("x-amz-server-side-encryption") == "aws:kms", f"{what}: {h}"
    got = h.get("x-amz-server-side-encryption-aws-kms-key-id", "")
    assert got == key_id or got.endswith(f":key/{key_id}"), f"{what}: key id {got!r}, expected {key_id}: {h}"
    if bucket_key:
        assert h.get("x-amz-server-side-encryption-bucket-key-enabled") == "true", f"{what}: {h}"
    else:
        assert h.get("x-amz-server-side-encryption-bucket-key-enabled") in (None, "false"), f"{what}: {h}"
    assert "x-amz-server-side-encryption-customer-algorithm" not in h, f"{what}: {h}"
    assert not any(k.startswith("x-oss-") for k in h), f"{what}: OSS SSE headers in an S3 response: {h}"
    if context is not None:
        raw = h.get("x-amz-server-side-encryption-context")
        assert raw is not None, f"{what}: no encryption context header: {h}"
        assert json.loads(base64.b64decode(raw)) == context, f"{what}: context {raw!r} != {context}"


def check_oss_kms(headers, key_id: str, what: str, *, sm4: bool = False) -> None:
    h = sse(headers)
    assert h.get("x-oss-server-side-encryption") == "KMS", f"{what}: {h}"
    assert h.get("x-oss-server-side-encryption-key-id") == key_id, f"{what}: key id, expected {key_id}: {h}"
    if sm4:
        assert h.get("x-oss-server-side-data-encryption") == "SM4", f"{what}: {h}"
    else:
        assert h.get("x-oss-server-side-data-encryption") is None, f"{what}: {h}"
    assert not any(k.startswith("x-amz-") for k in h), f"{what}: S3 SSE headers in an OSS response: {h}"


def kms_client(srv):
    session = boto3.session.Session(aws_access_key_id=srv.access_key,
                                    aws_secret_access_key=srv.secret_key, region_name=REGION)
    cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60)
    return session.client("kms", endpoint_url=srv.endpoint, config=cfg)


def new_key(kms, **kwargs) -> dict:
    return kms.create_key(Description=f"sse-kms interop {uuid.uuid4().hex[:8]}", **kwargs)["KeyMetadata"]


def default_key_id(kms) -> str:
    return kms.describe_key(KeyId=DEFAULT_ALIAS)["KeyMetadata"]["KeyId"]


def expect_gone(s3, bucket: str, key: str) -> None:
    expect_error(s3.head_object, None, 404, Bucket=bucket, Key=key)


def kms_put(s3, bucket, key, body, key_id=None, *, bucket_key=False, context=None, **extra):
    kw = {"ServerSideEncryption": "aws:kms", **extra}
    if key_id is not None:
        kw["SSEKMSKeyId"] = key_id
    if bucket_key:
        kw["BucketKeyEnabled"] = True
    if context is not None:
        kw["SSEKMSEncryptionContext"] = b64_context(context)
    return s3.put_object(Bucket=bucket, Key=key, Body=body, **kw)


def read(s3, bucket, key, **kw) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


def audit_lines(srv) -> list[dict]:
    path = srv.data_dir / "kms" / "audit.log"
    assert path.exists(), f"no KMS audit log at {path}"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def audit_for(srv, operation: str, bucket: str, key: str | None = None) -> list[dict]:
    out = []
    for line in audit_lines(srv):
        res = line.get("resource") or ""
        if line.get("operation") != operation or line.get("outcome") != "ok":
            continue
        if key is None and res.startswith(f"{bucket}/") or key is not None and res == f"{bucket}/{key}":
            out.append(line)
    return out


@pytest.fixture(scope="module")
def kms(server):
    return kms_client(server)


@pytest.fixture
def s3k(server):
    """A private boto3 client (default checksum config) for this test."""
    return server.client()


# --------------------------------------------------------------------------- aws CLI


def test_awscli_cp_sse_kms_up_and_down(aws, kms, bucket, tmp_path):
    key = new_key(kms)
    alias = f"alias/cli-{uuid.uuid4().hex[:10]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    small = rand(3 * CHUNK + 17)
    big = rand(9 * MiB + 4321)  # above the CLI's 8 MiB threshold: multipart up, ranged GETs down
    (tmp_path / "small.bin").write_bytes(small)
    (tmp_path / "big.bin").write_bytes(big)

    for name, ref in (("small.bin", alias), ("big.bin", key["KeyId"])):
        aws("s3", "cp", str(tmp_path / name), f"s3://{bucket}/{name}", "--sse", "aws:kms",
            "--sse-kms-key-id", ref)
        head = aws.json("s3api", "head-object", "--bucket", bucket, "--key", name)
        assert head.get("ServerSideEncryption") == "aws:kms", head
        assert head.get("SSEKMSKeyId", "").split("/")[-1] == key["KeyId"], head
        out = tmp_path / f"down-{name}"
        aws("s3", "cp", f"s3://{bucket}/{name}", str(out))
        assert out.read_bytes() == (small if name == "small.bin" else big), f"{name}: downloaded bytes differ"

    # --sse aws:kms without a key id: the managed default key.
    aws("s3", "cp", str(tmp_path / "small.bin"), f"s3://{bucket}/default.bin", "--sse", "aws:kms")
    head = aws.json("s3api", "head-object", "--bucket", bucket, "--key", "default.bin")
    assert head.get("ServerSideEncryption") == "aws:kms", head
    assert head.get("SSEKMSKeyId", "").split("/")[-1] == default_key_id(kms), head
    # s3api put-object with the KMS options, and get-object.
    aws("s3api", "put-object", "--bucket", bucket, "--key", "api.bin", "--body", str(tmp_path / "small.bin"),
        "--server-side-encryption", "aws:kms", "--ssekms-key-id", alias, "--bucket-key-enabled")
    got = aws.json("s3api", "get-object", "--bucket", bucket, "--key", "api.bin", str(tmp_path / "api.out"))
    assert got.get("SSEKMSKeyId", "").split("/")[-1] == key["KeyId"] and got.get("BucketKeyEnabled") is True, got
    assert (tmp_path / "api.out").read_bytes() == small


def test_awscli_disabled_key_head_succeeds_and_download_names_the_key_state(aws, kms, bucket, tmp_path):
    key_id = new_key(kms)["KeyId"]
    data = rand(CHUNK + 5)
    (tmp_path / "up.bin").write_bytes(data)
    for name, extra in (("obj.bin", []), ("obj-bk.bin", ["--bucket-key-enabled"])):
        aws("s3api", "put-object", "--bucket", bucket, "--key", name, "--body", str(tmp_path / "up.bin"),
            "--server-side-encryption", "aws:kms", "--ssekms-key-id", key_id, *extra)
    downloads = tmp_path / "down"
    downloads.mkdir()
    kms.disable_key(KeyId=key_id)
    try:
        for name in ("obj.bin", "obj-bk.bin"):
            head = aws.json("s3api", "head-object", "--bucket", bucket, "--key", name)
            assert head.get("ServerSideEncryption") == "aws:kms", head
            assert head.get("SSEKMSKeyId", "").split("/")[-1] == key_id, head
            assert head.get("ContentLength") == len(data), head
            done = aws("s3", "cp", f"s3://{bucket}/{name}", str(downloads / name), check=False)
            assert done.returncode != 0, done.stdout
            assert "KMS.DisabledException" in done.stderr + done.stdout, (done.stdout, done.stderr)
            assert list(downloads.iterdir()) == [], f"a refused download left files: {list(downloads.iterdir())}"
    finally:
        kms.enable_key(KeyId=key_id)
    for name in ("obj.bin", "obj-bk.bin"):
        aws("s3", "cp", f"s3://{bucket}/{name}", str(downloads / name))
        assert (downloads / name).read_bytes() == data


def test_head_of_sse_kms_objects_asks_no_kms(make_server):
    srv, s3, kms = dedicated(make_server)
    s3.create_bucket(Bucket="headaudit")
    key_id = new_key(kms)["KeyId"]
    kms_put(s3, "headaudit", "o", b"payload", key_id)
    kms_put(s3, "headaudit", "o-bk", b"payload", key_id, bucket_key=True)
    for key in ("o", "o-bk"):
        check_s3_kms(hdrs(s3.head_object(Bucket="headaudit", Key=key)), key_id, f"HEAD {key}",
                     bucket_key=key == "o-bk")
    assert audit_for(srv, "Decrypt", "headaudit") == [], "HEAD asked the KMS"
    assert read(s3, "headaudit", "o") == b"payload"
    assert len(audit_for(srv, "Decrypt", "headaudit", "o")) == 1
    # SSE-C headers on HEAD of an SSE-KMS object are refused as on GET, not ignored.
    expect_error(s3.head_object, None, 400, Bucket="headaudit", Key="o",
                 SSECustomerAlgorithm="AES256", SSECustomerKey=os.urandom(32))


# --------------------------------------------------------------------------- boto3


def test_boto3_default_key_and_named_key(s3k, kms, bucket):
    body = rand(2 * CHUNK + 5)
    r = kms_put(s3k, bucket, "default", body)
    dflt = default_key_id(kms)
    assert r["ServerSideEncryption"] == "aws:kms" and r["SSEKMSKeyId"].split("/")[-1] == dflt, r
    assert r["ETag"].strip('"') == md5_hex(body), "SSE-KMS single-part ETag is not the MD5 of the plaintext"
    check_s3_kms(hdrs(r), dflt, "PUT (default key)")
    key = new_key(kms)
    alias = f"alias/b3-{uuid.uuid4().hex[:10]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    for i, ref in enumerate((key["KeyId"], key["Arn"], alias, key["Arn"].split(":key/")[0] + ":" + alias)):
        r = kms_put(s3k, bucket, f"named-{i}", body, ref)
        check_s3_kms(hdrs(r), key["KeyId"], f"PUT with key reference {ref}")
        g = s3k.get_object(Bucket=bucket, Key=f"named-{i}")
        assert g["Body"].read() == body
        check_s3_kms(hdrs(g), key["KeyId"], f"GET ({ref})")
        assert g["ServerSideEncryption"] == "aws:kms"
    g = s3k.get_object(Bucket=bucket, Key="named-0", Range=f"bytes={CHUNK - 3}-{CHUNK + 3}")
    assert g["Body"].read() == body[CHUNK - 3:CHUNK + 4]
    check_s3_kms(hdrs(g), key["KeyId"], "ranged GET")
    check_s3_kms(hdrs(s3k.head_object(Bucket=bucket, Key="default")), dflt, "HEAD (default key)")


def test_boto3_encryption_context(s3k, kms, bucket):
    key = new_key(kms)
    ctx = {"department": "finance", "tenant": "t-42"}
    body = rand(3 * CHUNK + 1)
    r = kms_put(s3k, bucket, "ctx", body, key["KeyId"], context=ctx)
    check_s3_kms(hdrs(r), key["KeyId"], "PUT with context")
    g = s3k.get_object(Bucket=bucket, Key="ctx")
    assert g["Body"].read() == body, "object with an encryption context does not read back"
    check_s3_kms(hdrs(g), key["KeyId"], "GET with context", context=ctx)
    check_s3_kms(hdrs(s3k.head_object(Bucket=bucket, Key="ctx")), key["KeyId"], "HEAD with context", context=ctx)
    g = s3k.get_object(Bucket=bucket, Key="ctx", Range="bytes=100-200")
    assert g["Body"].read() == body[100:201]
    # With bucket keys too.
    r = kms_put(s3k, bucket, "ctx-bk", body, key["KeyId"], context=ctx, bucket_key=True)
    check_s3_kms(hdrs(r), key["KeyId"], "PUT with context + bucket key", bucket_key=True)
    g = s3k.get_object(Bucket=bucket, Key="ctx-bk")
    assert g["Body"].read() == body
    check_s3_kms(hdrs(g), key["KeyId"], "GET with context + bucket key", bucket_key=True, context=ctx)


@pytest.mark.parametrize("value", [
    "not base64!",
    base64.b64encode(b"[1, 2]").decode(),
    base64.b64encode(b'{"n": 1}').decode(),
    b64_context({"aws:s3:arn": "arn:aws:s3:::other/x"}),
], ids=["not-base64", "json-array", "non-string-value", "sets-aws-s3-arn"])
def test_bad_encryption_context_refused(s3k, kms, bucket, value):
    expect_error(s3k.put_object, "InvalidArgument", 400, Bucket=bucket, Key="bad-ctx", Body=b"x",
                 ServerSideEncryption="aws:kms", SSEKMSEncryptionContext=value)
    expect_gone(s3k, bucket, "bad-ctx")


def test_kms_key_id_without_aws_kms_refused(s3k, kms, bucket):
    """AWS: a KMS key id with no (or another) SSE algorithm is 400 InvalidArgument, nothing stored."""
    key = new_key(kms)
    for extra in ({}, {"ServerSideEncryption": "AES256"}):
        with pytest.raises(ClientError) as ei:
            s3k.put_object(Bucket=bucket, Key="keyid-only", Body=b"x", SSEKMSKeyId=key["KeyId"], **extra)
        assert (http_status(ei.value), error_code(ei.value)) == (400, "InvalidArgument"), ei.value.response
        expect_gone(s3k, bucket, "keyid-only")


@pytest.mark.parametrize("bucket_key", [False, True], ids=["per-object", "bucket-key"])
def test_multipart_upload_part_copy_and_ranges(s3k, kms, bucket, bucket_key):
    key_a, key_b = new_key(kms), new_key(kms)
    ctx = {"job": "mp"}
    source = rand(5 * MiB + 300_000)
    kms_put(s3k, bucket, "mp-src", source, key_b["KeyId"])  # the copy source is under another key
    r = s3k.create_multipart_upload(Bucket=bucket, Key="mp", ServerSideEncryption="aws:kms",
                                    SSEKMSKeyId=key_a["KeyId"], BucketKeyEnabled=bucket_key,
                                    SSEKMSEncryptionContext=b64_context(ctx))
    check_s3_kms(hdrs(r), key_a["KeyId"], "CreateMultipartUpload", bucket_key=bucket_key)
    uid = r["UploadId"]
    p1, p3 = rand(PART_SIZES[0]), rand(PART_SIZES[2])
    first, last = 123, 123 + PART_SIZES[1] - 1
    p2 = source[first:last + 1]
    r = s3k.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=p1)
    check_s3_kms(hdrs(r), key_a["KeyId"], "UploadPart 1", bucket_key=bucket_key)
    assert r["ETag"].strip('"') == md5_hex(p1)
    e1 = r["ETag"]
    r = s3k.upload_part_copy(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=2,
                             CopySource={"Bucket": bucket, "Key": "mp-src"}, CopySourceRange=f"bytes={first}-{last}")
    check_s3_kms(hdrs(r), key_a["KeyId"], "UploadPartCopy 2", bucket_key=bucket_key)
    assert r["CopyPartResult"]["ETag"].strip('"') == md5_hex(p2)
    e2 = r["CopyPartResult"]["ETag"]
    r = s3k.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=3, Body=p3)
    e3 = r["ETag"]
    r = s3k.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}, {"PartNumber": 3, "ETag": e3}]})
    check_s3_kms(hdrs(r), key_a["KeyId"], "CompleteMultipartUpload", bucket_key=bucket_key)
    whole = p1 + p2 + p3
    g = s3k.get_object(Bucket=bucket, Key="mp")
    assert g["Body"].read() == whole, "multipart SSE-KMS object differs"
    check_s3_kms(hdrs(g), key_a["KeyId"], "GET multipart", bucket_key=bucket_key, context=ctx)
    b1, b2 = PART_SIZES[0], PART_SIZES[0] + PART_SIZES[1]
    for lo, hi in ((b1 - 1000, b1 + 70_000), (b2 - 5, b2 + CHUNK + 10), (b1 - CHUNK - 3, b2 + 3),
                   (len(whole) - 200, len(whole) - 1)):
        g = s3k.get_object(Bucket=bucket, Key="mp", Range=f"bytes={lo}-{hi}")
        assert g["Body"].read() == whole[lo:hi + 1], f"range {lo}-{hi} differs"
        assert g["ContentRange"] == f"bytes {lo}-{hi}/{len(whole)}"
        check_s3_kms(hdrs(g), key_a["KeyId"], f"ranged GET {lo}-{hi}", bucket_key=bucket_key)
    h = s3k.head_object(Bucket=bucket, Key="mp")
    assert h["ContentLength"] == len(whole)
    check_s3_kms(hdrs(h), key_a["KeyId"], "HEAD multipart", bucket_key=bucket_key, context=ctx)
    # The copied part is under key A, not the source's key B.
    kms.disable_key(KeyId=key_b["KeyId"])
    try:
        assert read(s3k, bucket, "mp", Range=f"bytes={b1}-{b1 + 99}") == p2[:100]
        expect_error(s3k.get_object, *DISABLED, Bucket=bucket, Key="mp-src")
    finally:
        kms.enable_key(KeyId=key_b["KeyId"])


def test_copy_between_kms_keys(s3k, kms, bucket):
    key_a, key_b = new_key(kms), new_key(kms)
    body = rand(2 * CHUNK + 99)
    kms_put(s3k, bucket, "a", body, key_a["KeyId"], context={"src": "1"})
    r = s3k.copy_object(Bucket=bucket, Key="b", CopySource={"Bucket": bucket, "Key": "a"},
                        ServerSideEncryption="aws:kms", SSEKMSKeyId=key_b["KeyId"])
    check_s3_kms(hdrs(r), key_b["KeyId"], "CopyObject A->B")
    assert r["CopyObjectResult"]["ETag"].strip('"') == md5_hex(body)
    g = s3k.get_object(Bucket=bucket, Key="b")
    assert g["Body"].read() == body
    check_s3_kms(hdrs(g), key_b["KeyId"], "GET of the copy")
    # Re-keyed in place: A -> B on the same key name.
    r = s3k.copy_object(Bucket=bucket, Key="a2", CopySource={"Bucket": bucket, "Key": "a"},
                        ServerSideEncryption="aws:kms", SSEKMSKeyId=key_a["KeyId"])
    r = s3k.copy_object(Bucket=bucket, Key="a2", CopySource={"Bucket": bucket, "Key": "a2"},
                        ServerSideEncryption="aws:kms", SSEKMSKeyId=key_b["KeyId"])
    check_s3_kms(hdrs(r), key_b["KeyId"], "CopyObject in place A->B")
    # The copies no longer depend on A; the source does.
    kms.disable_key(KeyId=key_a["KeyId"])
    try:
        assert read(s3k, bucket, "b") == body
        assert read(s3k, bucket, "a2") == body
        expect_error(s3k.get_object, *DISABLED, Bucket=bucket, Key="a")
    finally:
        kms.enable_key(KeyId=key_a["KeyId"])
    assert read(s3k, bucket, "a") == body


def test_copy_kms_to_aes256_to_kms_and_plain(s3k, kms, bucket):
    key_a, key_b = new_key(kms), new_key(kms)
    body = rand(CHUNK + 7)
    kms_put(s3k, bucket, "k1", body, key_a["KeyId"], bucket_key=True)
    r = s3k.copy_object(Bucket=bucket, Key="aes", CopySource={"Bucket": bucket, "Key": "k1"},
                        ServerSideEncryption="AES256")
    h = sse(hdrs(r))
    assert h == {"x-amz-server-side-encryption": "AES256"}, f"KMS -> AES256 copy: {h}"
    g = s3k.get_object(Bucket=bucket, Key="aes")
    assert g["Body"].read() == body and sse(hdrs(g)) == {"x-amz-server-side-encryption": "AES256"}, sse(hdrs(g))
    r = s3k.copy_object(Bucket=bucket, Key="k2", CopySource={"Bucket": bucket, "Key": "aes"},
                        ServerSideEncryption="aws:kms", SSEKMSKeyId=key_b["KeyId"])
    check_s3_kms(hdrs(r), key_b["KeyId"], "AES256 -> KMS copy")
    g = s3k.get_object(Bucket=bucket, Key="k2")
    assert g["Body"].read() == body
    check_s3_kms(hdrs(g), key_b["KeyId"], "GET AES256 -> KMS copy")
    # KMS -> no SSE headers, bucket without a rule: the server's default (AES256).
    r = s3k.copy_object(Bucket=bucket, Key="default", CopySource={"Bucket": bucket, "Key": "k2"})
    assert sse(hdrs(r)) == {"x-amz-server-side-encryption": "AES256"}, sse(hdrs(r))
    g = s3k.get_object(Bucket=bucket, Key="default")
    assert g["Body"].read() == body
    assert sse(hdrs(g)) == {"x-amz-server-side-encryption": "AES256"}, sse(hdrs(g))
    # KMS -> plain (no SSE headers, in a bucket that opted out) and plain -> KMS default key.
    opt_out_of_encryption(s3k, bucket)
    r = s3k.copy_object(Bucket=bucket, Key="plain", CopySource={"Bucket": bucket, "Key": "k2"})
    assert sse(hdrs(r)) == {}, sse(hdrs(r))
    g = s3k.get_object(Bucket=bucket, Key="plain")
    assert g["Body"].read() == body and sse(hdrs(g)) == {}, sse(hdrs(g))
    r = s3k.copy_object(Bucket=bucket, Key="k3", CopySource={"Bucket": bucket, "Key": "plain"},
                        ServerSideEncryption="aws:kms")
    check_s3_kms(hdrs(r), default_key_id(kms), "plain -> KMS (default key) copy")
    assert read(s3k, bucket, "k3") == body


def test_bucket_default_kms(s3k, kms, bucket):
    key = new_key(kms)
    s3k.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["KeyId"]},
        "BucketKeyEnabled": True}]})
    rule = s3k.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["KeyId"]}, rule
    assert rule.get("BucketKeyEnabled") is True, rule
    body = rand(CHUNK * 2)
    r = s3k.put_object(Bucket=bucket, Key="by-default", Body=body)
    check_s3_kms(hdrs(r), key["KeyId"], "PUT under a KMS bucket default", bucket_key=True)
    g = s3k.get_object(Bucket=bucket, Key="by-default")
    assert g["Body"].read() == body
    check_s3_kms(hdrs(g), key["KeyId"], "GET under a KMS bucket default", bucket_key=True)
    # Multipart and copies without headers take the default too.
    r = s3k.create_multipart_upload(Bucket=bucket, Key="mp-default")
    check_s3_kms(hdrs(r), key["KeyId"], "CreateMultipartUpload under a KMS default", bucket_key=True)
    e = s3k.upload_part(Bucket=bucket, Key="mp-default", UploadId=r["UploadId"], PartNumber=1, Body=body)["ETag"]
    s3k.complete_multipart_upload(Bucket=bucket, Key="mp-default", UploadId=r["UploadId"],
                                  MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
    check_s3_kms(hdrs(s3k.head_object(Bucket=bucket, Key="mp-default")), key["KeyId"], "HEAD mp default", bucket_key=True)
    assert read(s3k, bucket, "mp-default") == body
    # Explicit headers win over the default.
    r = s3k.put_object(Bucket=bucket, Key="explicit-aes", Body=body, ServerSideEncryption="AES256")
    assert sse(hdrs(r)) == {"x-amz-server-side-encryption": "AES256"}, sse(hdrs(r))
    # The default without a key id: the managed key.
    s3k.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    r = s3k.put_object(Bucket=bucket, Key="by-managed", Body=body)
    check_s3_kms(hdrs(r), default_key_id(kms), "PUT under a KMS default without key id")
    r = s3k.copy_object(Bucket=bucket, Key="copy-managed", CopySource={"Bucket": bucket, "Key": "explicit-aes"})
    check_s3_kms(hdrs(r), default_key_id(kms), "CopyObject under a KMS default without key id")
    assert read(s3k, bucket, "copy-managed") == body


def test_nonexistent_key_refused_nothing_stored(s3k, kms, bucket):
    s3k.put_object(Bucket=bucket, Key="src", Body=b"source")
    for ref in (str(uuid.uuid4()), f"alias/missing-{uuid.uuid4().hex[:8]}",
                f"arn:aws:kms:{REGION}:000000000000:key/{uuid.uuid4()}"):
        kw = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": ref}
        expect_error(s3k.put_object, *NOT_FOUND, Bucket=bucket, Key="nokey", Body=b"secret", **kw)
        expect_error(s3k.create_multipart_upload, *NOT_FOUND, Bucket=bucket, Key="nokey", **kw)
        expect_error(s3k.copy_object, *NOT_FOUND, Bucket=bucket, Key="nokey",
                     CopySource={"Bucket": bucket, "Key": "src"}, **kw)
        expect_gone(s3k, bucket, "nokey")
    assert s3k.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    # A bucket default naming a missing key fails the write the same way.
    s3k.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": str(uuid.uuid4())}}]})
    expect_error(s3k.put_object, *NOT_FOUND, Bucket=bucket, Key="nokey", Body=b"secret")
    expect_gone(s3k, bucket, "nokey")


# --------------------------------------------------------------------------- key state: fail closed


class KmsObjects:
    """Objects under one CMK, per-object and bucket-key, single and multipart, plus an open upload."""

    def __init__(self, s3, bucket: str, key_id: str):
        self.s3, self.bucket, self.key_id = s3, bucket, key_id
        self.body = rand(3 * CHUNK + 1)
        kms_put(s3, bucket, "obj", self.body, key_id)
        kms_put(s3, bucket, "obj-bk", self.body, key_id, bucket_key=True)
        s3.put_object(Bucket=bucket, Key="plain-src", Body=self.body)
        r = s3.create_multipart_upload(Bucket=bucket, Key="open-mp", ServerSideEncryption="aws:kms",
                                       SSEKMSKeyId=key_id)
        self.uid = r["UploadId"]
        self.part1 = rand(5 * MiB)
        self.e1 = s3.upload_part(Bucket=bucket, Key="open-mp", UploadId=self.uid, PartNumber=1, Body=self.part1)["ETag"]

    def expect_all_fail(self, code: str, status: int) -> None:
        s3, b = self.s3, self.bucket
        for k in ("obj", "obj-bk"):
            expect_error(s3.get_object, code, status, Bucket=b, Key=k)
            expect_error(s3.get_object, code, status, Bucket=b, Key=k, Range="bytes=10-20")
            expect_error(s3.copy_object, code, status, Bucket=b, Key=f"copy-of-{k}",
                         CopySource={"Bucket": b, "Key": k}, ServerSideEncryption="AES256")
            expect_gone(s3, b, f"copy-of-{k}")
        for bk in (False, True):
            expect_error(kms_put, code, status, s3, b, "new", b"new data", self.key_id, bucket_key=bk)
            expect_error(s3.copy_object, code, status, Bucket=b, Key="new", CopySource={"Bucket": b, "Key": "plain-src"},
                         ServerSideEncryption="aws:kms", SSEKMSKeyId=self.key_id, BucketKeyEnabled=bk)
            expect_gone(s3, b, "new")
        expect_error(s3.create_multipart_upload, code, status, Bucket=b, Key="new",
                     ServerSideEncryption="aws:kms", SSEKMSKeyId=self.key_id)
        expect_error(s3.upload_part, code, status, Bucket=b, Key="open-mp", UploadId=self.uid,
                     PartNumber=2, Body=b"refused part")
        expect_error(s3.upload_part_copy, code, status, Bucket=b, Key="open-mp", UploadId=self.uid, PartNumber=2,
                     CopySource={"Bucket": b, "Key": "plain-src"})
        parts = s3.list_parts(Bucket=b, Key="open-mp", UploadId=self.uid).get("Parts", [])
        assert [p["PartNumber"] for p in parts] == [1], f"a refused part was recorded: {parts}"

    def expect_all_work(self, tag: str) -> None:
        s3, b = self.s3, self.bucket
        for k in ("obj", "obj-bk"):
            assert read(s3, b, k) == self.body
            assert read(s3, b, k, Range="bytes=10-20") == self.body[10:21]
            s3.copy_object(Bucket=b, Key=f"copy-{tag}-{k}", CopySource={"Bucket": b, "Key": k},
                           ServerSideEncryption="AES256")
            assert read(s3, b, f"copy-{tag}-{k}") == self.body
        for bk in (False, True):
            r = kms_put(s3, b, f"new-{tag}-{bk}", b"new data", self.key_id, bucket_key=bk)
            check_s3_kms(hdrs(r), self.key_id, f"PUT after {tag}", bucket_key=bk)
            assert read(s3, b, f"new-{tag}-{bk}") == b"new data"

    def finish(self) -> None:
        s3, b = self.s3, self.bucket
        e2 = s3.upload_part(Bucket=b, Key="open-mp", UploadId=self.uid, PartNumber=2, Body=b"tail")["ETag"]
        s3.complete_multipart_upload(Bucket=b, Key="open-mp", UploadId=self.uid, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": self.e1}, {"PartNumber": 2, "ETag": e2}]})
        assert read(s3, b, "open-mp") == self.part1 + b"tail"


def test_disable_and_enable_key(s3k, kms, bucket):
    key_id = new_key(kms)["KeyId"]
    objs = KmsObjects(s3k, bucket, key_id)
    objs.expect_all_work("before")
    kms.disable_key(KeyId=key_id)
    try:
        objs.expect_all_fail(*DISABLED)
    finally:
        kms.enable_key(KeyId=key_id)
    objs.expect_all_work("enabled")
    objs.finish()


def test_schedule_and_cancel_deletion(s3k, kms, bucket):
    key_id = new_key(kms)["KeyId"]
    objs = KmsObjects(s3k, bucket, key_id)
    objs.expect_all_work("before")
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    try:
        objs.expect_all_fail(*INVALID_STATE)
    finally:
        kms.cancel_key_deletion(KeyId=key_id)
    # Cancelled: the key is Disabled until enabled.
    expect_error(s3k.get_object, *DISABLED, Bucket=bucket, Key="obj")
    expect_error(s3k.get_object, *DISABLED, Bucket=bucket, Key="obj-bk")
    kms.enable_key(KeyId=key_id)
    objs.expect_all_work("cancelled")
    objs.finish()


def test_byok_objects_read_only_while_material_imported(s3k, kms, bucket):
    key = new_key(kms, Origin="EXTERNAL")
    key_id = key["KeyId"]
    expect_error(kms_put, *INVALID_STATE, s3k, bucket, "early", b"x", key_id)
    expect_gone(s3k, bucket, "early")
    material = os.urandom(32)
    import_key_material(kms, key_id, material)
    body = rand(2 * CHUNK + 3)
    check_s3_kms(hdrs(kms_put(s3k, bucket, "byok", body, key_id)), key_id, "PUT under BYOK key")
    kms_put(s3k, bucket, "byok-bk", body, key_id, bucket_key=True)
    assert read(s3k, bucket, "byok") == body and read(s3k, bucket, "byok-bk") == body

    kms.delete_imported_key_material(KeyId=key_id)
    for k in ("byok", "byok-bk"):
        expect_error(s3k.get_object, *INVALID_STATE, Bucket=bucket, Key=k)
    expect_error(kms_put, *INVALID_STATE, s3k, bucket, "late", b"x", key_id)
    expect_error(kms_put, *INVALID_STATE, s3k, bucket, "late", b"x", key_id, bucket_key=True)
    expect_gone(s3k, bucket, "late")

    # Other material cannot stand in for it.
    with pytest.raises(ClientError):
        import_key_material(kms, key_id, os.urandom(32))
    expect_error(s3k.get_object, *INVALID_STATE, Bucket=bucket, Key="byok")

    import_key_material(kms, key_id, material)
    assert read(s3k, bucket, "byok") == body and read(s3k, bucket, "byok-bk") == body
    check_s3_kms(hdrs(kms_put(s3k, bucket, "after", body, key_id)), key_id, "PUT after re-import")


# --------------------------------------------------------------------------- OSS dialect


OSS_VARIANTS = ["no-key-id", "key-id", "key-id-sm4"]


@pytest.mark.parametrize("variant", OSS_VARIANTS)
def test_oss2_kms(server, kms, s3_required, variant):
    name = unique_oss_bucket("kms-oss2")
    ob = oss2_bucket(server, name, "v4")
    ob.create_bucket()
    try:
        headers = {"x-oss-server-side-encryption": "KMS"}
        if variant == "no-key-id":
            key_id = None
        else:
            key_id = new_key(kms)["KeyId"]
            headers["x-oss-server-side-encryption-key-id"] = key_id
        sm4 = variant.endswith("sm4")
        if sm4:
            headers["x-oss-server-side-data-encryption"] = "SM4"
        body = rand(3 * CHUNK + 11)
        r = ob.put_object("obj", body, headers=headers)
        if key_id is None:
            key_id = default_key_id(kms)
        check_oss_kms(r.headers, key_id, "oss2 PutObject", sm4=sm4)
        assert r.etag.lower() == md5_hex(body)
        g = ob.get_object("obj")
        assert g.read() == body
        check_oss_kms(g.headers, key_id, "oss2 GetObject", sm4=sm4)
        g = ob.get_object("obj", byte_range=(CHUNK - 2, CHUNK + 2))
        assert g.read() == body[CHUNK - 2:CHUNK + 3]
        check_oss_kms(g.headers, key_id, "oss2 ranged GetObject", sm4=sm4)
        check_oss_kms(ob.head_object("obj").headers, key_id, "oss2 HeadObject", sm4=sm4)
        # Multipart.
        init = ob.init_multipart_upload("mp", headers=headers)
        check_oss_kms(init.headers, key_id, "oss2 InitiateMultipartUpload", sm4=sm4)
        p1, p2 = rand(5 * MiB), rand(CHUNK + 5)
        parts = [PartInfo(n, ob.upload_part("mp", init.upload_id, n, p).etag) for n, p in ((1, p1), (2, p2))]
        ob.complete_multipart_upload("mp", init.upload_id, parts)
        g = ob.get_object("mp", byte_range=(5 * MiB - 10, 5 * MiB + 10))
        assert g.read() == (p1 + p2)[5 * MiB - 10:5 * MiB + 11]
        check_oss_kms(g.headers, key_id, "oss2 ranged GET of multipart", sm4=sm4)
        assert ob.get_object("mp").read() == p1 + p2
        # Copy to the same protection, and to AES256.
        r = ob.copy_object(name, "obj", "copy", headers=headers)
        check_oss_kms(r.headers, key_id, "oss2 CopyObject", sm4=sm4)
        assert ob.get_object("copy").read() == body
        r = ob.copy_object(name, "obj", "copy-aes", headers={"x-oss-server-side-encryption": "AES256"})
        assert sse(r.headers) == {"x-oss-server-side-encryption": "AES256"}, sse(r.headers)
        # The same object through boto3.
        g = s3_required.get_object(Bucket=name, Key="obj")
        assert g["Body"].read() == body
        assert g["ServerSideEncryption"] == "aws:kms" and g["SSEKMSKeyId"].split("/")[-1] == key_id, sse(hdrs(g))
    finally:
        cleanup_bucket(s3_required, name)


def test_oss2_kms_key_state_errors(server, kms, s3_required):
    name = unique_oss_bucket("kms-oss2-err")
    ob = oss2_bucket(server, name, "v4")
    ob.create_bucket()
    try:
        key_id = new_key(kms)["KeyId"]
        headers = {"x-oss-server-side-encryption": "KMS", "x-oss-server-side-encryption-key-id": key_id}
        ob.put_object("obj", b"oss kms", headers=headers)

        def oss_fails(code, status, fn, *args, **kw):
            with pytest.raises(oss2.exceptions.OssError) as ei:
                fn(*args, **kw)
            assert (ei.value.status, ei.value.code) == (status, code), ei.value.details

        kms.disable_key(KeyId=key_id)
        try:
            oss_fails(*DISABLED, ob.get_object, "obj")
            oss_fails(*DISABLED, ob.put_object, "new", b"x", headers=headers)
        finally:
            kms.enable_key(KeyId=key_id)
        assert ob.get_object("obj").read() == b"oss kms"
        missing = dict(headers, **{"x-oss-server-side-encryption-key-id": str(uuid.uuid4())})
        oss_fails(*NOT_FOUND, ob.put_object, "new", b"x", headers=missing)
        with pytest.raises(oss2.exceptions.NoSuchKey):
            ob.get_object("new")
    finally:
        cleanup_bucket(s3_required, name)


def test_oss2_bucket_default_kms(server, kms, s3_required):
    name = unique_oss_bucket("kms-oss2-def")
    ob = oss2_bucket(server, name, "v4")
    ob.create_bucket()
    try:
        key_id = new_key(kms)["KeyId"]
        ob.put_bucket_encryption(ServerSideEncryptionRule(sse_algorithm="KMS", kms_master_keyid=key_id,
                                                          kms_data_encryption="SM4"))
        rule = ob.get_bucket_encryption()
        assert (rule.sse_algorithm, rule.kms_master_keyid, rule.kms_data_encryption) == ("KMS", key_id, "SM4")
        body = rand(CHUNK + 1)
        r = ob.put_object("by-default", body)
        check_oss_kms(r.headers, key_id, "oss2 PUT under a KMS+SM4 bucket default", sm4=True)
        g = ob.get_object("by-default")
        assert g.read() == body
        check_oss_kms(g.headers, key_id, "oss2 GET under a KMS+SM4 bucket default", sm4=True)
        # Without a key id: the managed key, AES data cipher.
        ob.put_bucket_encryption(ServerSideEncryptionRule(sse_algorithm="KMS"))
        r = ob.put_object("by-managed", body)
        check_oss_kms(r.headers, default_key_id(kms), "oss2 PUT under a KMS default without key id")
        assert ob.get_object("by-managed").read() == body
    finally:
        cleanup_bucket(s3_required, name)


def test_oss_v2_kms(server, kms, s3_required):
    name = unique_oss_bucket("kms-ossv2")
    c = v2_client(server, retries=2)
    c.put_bucket(oss.PutBucketRequest(bucket=name))
    try:
        key_id = new_key(kms)["KeyId"]
        body = rand(2 * CHUNK + 77)
        for obj, kid, sm4 in (("plain-kms", None, False), ("kid", key_id, False), ("kid-sm4", key_id, True)):
            c.put_object(oss.PutObjectRequest(bucket=name, key=obj, body=body, server_side_encryption="KMS",
                                              server_side_encryption_key_id=kid,
                                              server_side_data_encryption="SM4" if sm4 else None))
            expect_kid = kid or default_key_id(kms)
            g = c.get_object(oss.GetObjectRequest(bucket=name, key=obj))
            assert g.body.read() == body
            assert g.server_side_encryption == "KMS" and g.server_side_encryption_key_id == expect_kid, sse(g.headers)
            assert g.server_side_data_encryption == ("SM4" if sm4 else None), sse(g.headers)
            h = c.head_object(oss.HeadObjectRequest(bucket=name, key=obj))
            assert (h.server_side_encryption, h.server_side_encryption_key_id) == ("KMS", expect_kid), sse(h.headers)
            assert h.server_side_data_encryption == ("SM4" if sm4 else None), sse(h.headers)
        r = c.copy_object(oss.CopyObjectRequest(bucket=name, key="copy", source_bucket=name, source_key="kid",
                                                server_side_encryption="KMS", server_side_encryption_key_id=key_id,
                                                server_side_data_encryption="SM4"))
        assert (r.server_side_encryption, r.server_side_encryption_key_id, r.server_side_data_encryption) == (
            "KMS", key_id, "SM4"), sse(r.headers)
        assert c.get_object(oss.GetObjectRequest(bucket=name, key="copy")).body.read() == body
        # Bucket default through the v2 model.
        c.put_bucket_encryption(oss.PutBucketEncryptionRequest(bucket=name, server_side_encryption_rule=(
            oss.ServerSideEncryptionRule(apply_server_side_encryption_by_default=oss.ApplyServerSideEncryptionByDefault(
                sse_algorithm="KMS", kms_master_key_id=key_id)))))
        c.put_object(oss.PutObjectRequest(bucket=name, key="by-default", body=body))
        h = c.head_object(oss.HeadObjectRequest(bucket=name, key="by-default"))
        assert (h.server_side_encryption, h.server_side_encryption_key_id) == ("KMS", key_id), sse(h.headers)
    finally:
        cleanup_bucket(s3_required, name)


# --------------------------------------------------------------------------- audit log: rotation, bucket keys


def dedicated(make_server):
    srv = make_server()
    return srv, srv.client(checksum="when_required"), kms_client(srv)


def test_rotation_old_objects_read_new_use_version_2(make_server):
    srv, s3, kms = dedicated(make_server)
    s3.create_bucket(Bucket="rot")
    key_id = new_key(kms)["KeyId"]
    old = rand(CHUNK + 1)
    kms_put(s3, "rot", "old", old, key_id)
    kms_put(s3, "rot", "old-bk", old, key_id, bucket_key=True)
    kms.rotate_key_on_demand(KeyId=key_id)
    new = rand(CHUNK + 2)
    kms_put(s3, "rot", "new", new, key_id)
    assert read(s3, "rot", "old") == old and read(s3, "rot", "old-bk") == old and read(s3, "rot", "new") == new

    def versions(op, key):
        return [l.get("key_version") for l in audit_for(srv, op, "rot", key) if l.get("key_id") == key_id]

    assert versions("GenerateDataKey", "old") == [1], audit_for(srv, "GenerateDataKey", "rot", "old")
    assert versions("GenerateDataKey", "new") == [2], audit_for(srv, "GenerateDataKey", "rot", "new")
    assert versions("Decrypt", "old") == [1], audit_for(srv, "Decrypt", "rot", "old")
    assert versions("Decrypt", "new") == [2], audit_for(srv, "Decrypt", "rot", "new")
    # A restart keeps both versions.
    srv.restart()
    s3 = srv.client(checksum="when_required")
    assert read(s3, "rot", "old") == old and read(s3, "rot", "new") == new and read(s3, "rot", "old-bk") == old


def test_encryption_context_reaches_the_kms(make_server):
    srv, s3, kms = dedicated(make_server)
    s3.create_bucket(Bucket="ctxaudit")
    key_id = new_key(kms)["KeyId"]
    ctx = {"team": "blue"}
    kms_put(s3, "ctxaudit", "o", b"payload", key_id, context=ctx)
    assert read(s3, "ctxaudit", "o") == b"payload"
    expected = {"team": "blue", "aws:s3:arn": "arn:aws:s3:::ctxaudit/o"}
    for op in ("GenerateDataKey", "Decrypt"):
        lines = audit_for(srv, op, "ctxaudit", "o")
        assert lines and all(l.get("encryption_context") == expected for l in lines), (op, lines)


def test_bucket_keys_cut_generate_data_key_calls(make_server):
    srv, s3, kms = dedicated(make_server)
    key_id = new_key(kms)["KeyId"]
    n = 20
    for bucket, bk in (("with-bk", True), ("without-bk", False)):
        s3.create_bucket(Bucket=bucket)
        for i in range(n):
            kms_put(s3, bucket, f"o{i}", f"small object {i}".encode(), key_id, bucket_key=bk)
    with_bk = audit_for(srv, "GenerateDataKey", "with-bk")
    without_bk = audit_for(srv, "GenerateDataKey", "without-bk")
    assert 1 <= len(with_bk) <= 2, f"{n} PUTs with bucket keys made {len(with_bk)} GenerateDataKey calls"
    assert len(without_bk) == n, f"{n} PUTs without bucket keys made {len(without_bk)} GenerateDataKey calls"
    # Bucket default with BucketKeyEnabled behaves the same.
    s3.create_bucket(Bucket="default-bk")
    s3.put_bucket_encryption(Bucket="default-bk", ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id},
        "BucketKeyEnabled": True}]})
    for i in range(n):
        s3.put_object(Bucket="default-bk", Key=f"o{i}", Body=b"x" * i)
    assert 1 <= len(audit_for(srv, "GenerateDataKey", "default-bk")) <= 2
    for bucket in ("with-bk", "without-bk"):
        for i in range(n):
            assert read(s3, bucket, f"o{i}") == f"small object {i}".encode()
    # Reads under bucket keys don't decrypt per object either.
    decrypts = audit_for(srv, "Decrypt", "with-bk")
    assert len(decrypts) <= 2, f"{n} GETs with bucket keys made {len(decrypts)} Decrypt calls"
    # And the cache still honours the key state.
    kms.disable_key(KeyId=key_id)
    expect_error(s3.get_object, *DISABLED, Bucket="with-bk", Key="o3")
    expect_error(kms_put, *DISABLED, s3, "with-bk", "late", b"x", key_id, bucket_key=True)
    expect_error(s3.put_object, *DISABLED, Bucket="default-bk", Key="late", Body=b"x")
    kms.enable_key(KeyId=key_id)
    assert read(s3, "with-bk", "o3") == b"small object 3"


# --------------------------------------------------------------------------- at rest

AUDIT_FIELDS = {"time", "principal", "operation", "key_id", "key_version", "alias", "source_key_id",
                "source_key_version", "resource", "encryption_context", "destination_encryption_context", "outcome"}


def test_no_plaintext_or_data_key_at_rest(make_server):
    srv, s3, kms = dedicated(make_server)
    s3.create_bucket(Bucket="atrest")
    key_id = new_key(kms)["KeyId"]
    seed = random.SystemRandom().randrange(1 << 62)
    markers = {name: rand(MiB, seed + i) for i, name in enumerate(("single", "bucket-key", "multipart", "sm4", "control"))}
    kms_put(s3, "atrest", "single", markers["single"], key_id)
    kms_put(s3, "atrest", "bk", markers["bucket-key"], key_id, bucket_key=True)
    r = s3.create_multipart_upload(Bucket="atrest", Key="mp", ServerSideEncryption="aws:kms")
    part1 = bytearray(rand(5 * MiB, seed + 10))
    part1[1_234_567:1_234_567 + MiB] = markers["multipart"]
    etags = [s3.upload_part(Bucket="atrest", Key="mp", UploadId=r["UploadId"], PartNumber=n, Body=p)["ETag"]
             for n, p in ((1, bytes(part1)), (2, markers["multipart"]))]
    s3.complete_multipart_upload(Bucket="atrest", Key="mp", UploadId=r["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)]})
    ob = oss2_bucket(srv, "atrest", "v4")
    ob.put_object("sm4", markers["sm4"], headers={"x-oss-server-side-encryption": "KMS",
                                                  "x-oss-server-side-encryption-key-id": key_id,
                                                  "x-oss-server-side-data-encryption": "SM4"})
    s3.create_bucket(Bucket="atrest-plain")
    opt_out_of_encryption(s3, "atrest-plain")  # the plaintext control
    s3.put_object(Bucket="atrest-plain", Key="control", Body=markers["control"])
    # A data key handed out by the KMS API must not be kept either.
    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext={"k": "v"})
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext={"k": "v"})["Plaintext"] == dk["Plaintext"]
    for k in ("single", "bk", "mp", "sm4"):
        s3.get_object(Bucket="atrest", Key=k)["Body"].read()

    srv.stop()
    files = sorted(p for p in srv.data_dir.rglob("*") if p.is_file())
    assert any(p.name == "audit.log" for p in files), "no KMS audit log in the data dir"
    needles = {f"{name}[{i}]": w for name in ("single", "bucket-key", "multipart", "sm4")
               for i, w in enumerate(windows(markers[name]))}
    needles["GenerateDataKey plaintext"] = dk["Plaintext"]
    needles["GenerateDataKey plaintext (b64)"] = base64.b64encode(dk["Plaintext"])
    needles["GenerateDataKey plaintext (hex)"] = dk["Plaintext"].hex().encode()
    hits = find_in_files(files, needles)
    assert hits == [], f"plaintext or a data key found on disk: {hits}"
    control = find_in_files(files, {f"control[{i}]": w for i, w in enumerate(windows(markers["control"]))})
    assert len({h.split(" in ")[0] for h in control}) == len(windows(markers["control"])), (
        f"the scan did not find the plaintext control object ({control}): the scan is broken")

    lines = audit_lines(srv)
    assert lines, "empty audit log"
    for line in lines:
        assert set(line) <= AUDIT_FIELDS, f"unexpected audit fields {set(line) - AUDIT_FIELDS}: {line}"
    audit = (srv.data_dir / "kms" / "audit.log").read_bytes()
    assert base64.b64encode(dk["CiphertextBlob"]) not in audit, "a ciphertext blob in the audit log"

    srv.start()
    s3 = srv.client(checksum="when_required")
    assert read(s3, "atrest", "single") == markers["single"]
    assert read(s3, "atrest", "bk") == markers["bucket-key"]
    assert read(s3, "atrest", "mp") == bytes(part1) + markers["multipart"]
    assert read(s3, "atrest", "sm4") == markers["sm4"]
