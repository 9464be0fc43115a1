"""SSE-KMS with the `aws-kms:` KMS backend: the master keys kept by an AWS-KMS-protocol endpoint
(moto's KMS server here; AWS KMS or another Coffer in production), Coffer calling it with its own
SigV4 client (crates/coffer-kms-aws, docs/kms.md "AWS KMS backend").

Each test starts its own moto server and its own Coffer server pointed at it
(`--kms-backend aws-kms:http://127.0.0.1:PORT?region=us-east-1`, credentials in
COFFER_KMS_ACCESS_KEY_ID / COFFER_KMS_SECRET_ACCESS_KEY). Keys are created and disabled in the
backend itself, with boto3's KMS client pointed at moto.

Pinned here:
- PUT, multipart, copy and ranged GET under a backend key (with and without bucket keys);
- a key disabled in the backend ⇒ 403 KMS.DisabledException for reads and writes (Coffer checks
  the key's state itself: moto would still decrypt under a disabled key);
- the backend stopped (SIGSTOP: connections hang) ⇒ reads fail closed within the documented
  bound (connect 3 s + answer 10 s; nothing is cached past the backend, bucket keys included),
  naming the backend; resumed ⇒ the same reads work;
- no key material (data keys the backend released through Coffer, the backend's secret) in the
  data dir or the logs;
- another Coffer as the backend (its embedded KMS through its KMS API): SSE-KMS, disable, the
  backend stopped (connection refused) and started again on its port.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from support import (
    REGION,
    SECRETS,
    _clean_env,
    coffer_bin,
    expect_error,
    find_in_files,
    free_port,
    make_s3_client,
    random_access_key,
    random_secret_key,
    unique_bucket_name,
)

MiB = 1 << 20
# crates/coffer-kms-aws/src/wire.rs: CONNECT_TIMEOUT + RESPONSE_TIMEOUT, plus slack for the
# shared CI machine.
FAIL_CLOSED_BOUND_S = 3 + 10 + 10
DISABLED = ("KMS.DisabledException", 403)


class MotoKms:
    """moto's server (KMS) on a loopback port, with an explicit environment."""

    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_dir / "moto.log", "wb")
        binary = Path(os.environ.get("VIRTUAL_ENV", "")) / "bin" / "moto_server"
        if not binary.exists():
            binary = Path(__import__("sys").executable).parent / "moto_server"
        self.proc = subprocess.Popen(
            [str(binary), "-H", "127.0.0.1", "-p", str(self.port)],
            env=_clean_env(), stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"moto_server did not start (see {log_dir}/moto.log)")
                time.sleep(0.2)
        self.access_key = random_access_key()
        self.secret_key = random_secret_key()
        SECRETS.add("aws-kms backend secret key", self.secret_key)

    def client(self):
        """boto3's KMS client, straight to the backend (the backend's own administration)."""
        return boto3.session.Session(
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            region_name=REGION,
        ).client("kms", endpoint_url=self.url, config=Config(retries={"max_attempts": 1}))

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def close(self):
        self.resume()
        self.proc.terminate()
        self.proc.wait(timeout=15)
        self.log.close()


@pytest.fixture
def moto(tmp_path):
    kms = MotoKms(tmp_path)
    yield kms
    kms.close()


@pytest.fixture
def backed(make_server, moto):
    """A Coffer server whose KMS is the moto backend, and an S3 client for it."""
    srv = make_server(
        extra_args=["--kms-backend", f"aws-kms:{moto.url}?region={REGION}"],
        extra_env={"COFFER_KMS_ACCESS_KEY_ID": moto.access_key,
                   "COFFER_KMS_SECRET_ACCESS_KEY": moto.secret_key},
    )
    return srv, srv.client()


def backend_key(moto) -> str:
    return moto.client().create_key(Description="coffer aws-kms test")["KeyMetadata"]["KeyId"]


def put_kms(s3, bucket, key, body, key_id, bucket_key=False):
    return s3.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="aws:kms",
                         SSEKMSKeyId=key_id, BucketKeyEnabled=bucket_key)


def test_sse_kms_objects_under_a_backend_key(backed, moto):
    srv, s3 = backed
    key_id = backend_key(moto)
    bucket = unique_bucket_name("awskms")
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(3 * MiB + 17)

    put = put_kms(s3, bucket, "whole", body, key_id)
    assert put["ServerSideEncryption"] == "aws:kms"
    assert put["SSEKMSKeyId"].endswith(key_id)
    got = s3.get_object(Bucket=bucket, Key="whole")
    assert got["Body"].read() == body and got["SSEKMSKeyId"].endswith(key_id)
    ranged = s3.get_object(Bucket=bucket, Key="whole", Range="bytes=70000-1100000")
    assert ranged["Body"].read() == body[70000:1100001]

    put_kms(s3, bucket, "bucket-keyed", body[:1000], key_id, bucket_key=True)
    got = s3.get_object(Bucket=bucket, Key="bucket-keyed")
    assert got["Body"].read() == body[:1000] and got["BucketKeyEnabled"] is True

    upload = s3.create_multipart_upload(Bucket=bucket, Key="multi", ServerSideEncryption="aws:kms",
                                        SSEKMSKeyId=key_id)
    parts = [os.urandom(5 * MiB), body[:123_457]]
    etags = [s3.upload_part(Bucket=bucket, Key="multi", UploadId=upload["UploadId"],
                            PartNumber=n + 1, Body=part)["ETag"] for n, part in enumerate(parts)]
    s3.complete_multipart_upload(
        Bucket=bucket, Key="multi", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]})
    whole = b"".join(parts)
    assert s3.get_object(Bucket=bucket, Key="multi")["Body"].read() == whole
    cross = s3.get_object(Bucket=bucket, Key="multi", Range=f"bytes={5 * MiB - 10}-{5 * MiB + 10}")
    assert cross["Body"].read() == whole[5 * MiB - 10:5 * MiB + 11]

    copied = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "whole"},
                            ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    assert copied["SSEKMSKeyId"].endswith(key_id)
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == body

    # Without a key id: the backend's S3 default key (moto creates alias/aws/s3 on first use).
    default = s3.put_object(Bucket=bucket, Key="default", Body=b"d", ServerSideEncryption="aws:kms")
    aliased = moto.client().describe_key(KeyId="alias/aws/s3")["KeyMetadata"]["KeyId"]
    assert default["SSEKMSKeyId"].endswith(aliased)
    assert s3.get_object(Bucket=bucket, Key="default")["Body"].read() == b"d"


def test_coffer_kms_api_manages_the_backend_keys(backed, moto):
    """`aws kms …` against Coffer reaches the backend: a key created through Coffer exists in
    moto, and one disabled through Coffer is disabled there."""
    srv, _ = backed
    kms = boto3.session.Session(
        aws_access_key_id=srv.access_key, aws_secret_access_key=srv.secret_key, region_name=REGION,
    ).client("kms", endpoint_url=srv.endpoint, config=Config(retries={"max_attempts": 1}))
    created = kms.create_key(Description="through coffer")["KeyMetadata"]
    assert moto.client().describe_key(KeyId=created["KeyId"])["KeyMetadata"]["Description"] \
        == "through coffer"
    kms.create_alias(AliasName="alias/through-coffer", TargetKeyId=created["KeyId"])
    assert kms.describe_key(KeyId="alias/through-coffer")["KeyMetadata"]["KeyId"] == created["KeyId"]
    kms.disable_key(KeyId="alias/through-coffer")
    assert moto.client().describe_key(KeyId=created["KeyId"])["KeyMetadata"]["KeyState"] \
        == "Disabled"
    with pytest.raises(ClientError) as refused:
        kms.generate_data_key(KeyId=created["KeyId"], KeySpec="AES_256")
    assert refused.value.response["Error"]["Code"] == "DisabledException"
    kms.enable_key(KeyId=created["KeyId"])
    assert created["KeyId"] in [k["KeyId"] for k in kms.list_keys()["Keys"]]


def test_key_disabled_in_the_backend_refuses_reads_and_writes(backed, moto):
    srv, s3 = backed
    key_id = backend_key(moto)
    bucket = unique_bucket_name("awskms-off")
    s3.create_bucket(Bucket=bucket)
    put_kms(s3, bucket, "plain-dek", b"one", key_id)
    put_kms(s3, bucket, "bucket-key", b"two", key_id, bucket_key=True)
    assert s3.get_object(Bucket=bucket, Key="bucket-key")["Body"].read() == b"two"

    moto.client().disable_key(KeyId=key_id)
    for name in ("plain-dek", "bucket-key"):
        expect_error(s3.get_object, *DISABLED, Bucket=bucket, Key=name)
    expect_error(put_kms, *DISABLED, s3, bucket, "new", b"x", key_id)
    expect_error(put_kms, *DISABLED, s3, bucket, "new", b"x", key_id, True)

    moto.client().enable_key(KeyId=key_id)
    assert s3.get_object(Bucket=bucket, Key="plain-dek")["Body"].read() == b"one"
    assert s3.get_object(Bucket=bucket, Key="bucket-key")["Body"].read() == b"two"


def test_backend_stopped_fails_closed_within_the_bound_and_recovers(backed, moto):
    srv, s3 = backed
    key_id = backend_key(moto)
    bucket = unique_bucket_name("awskms-down")
    s3.create_bucket(Bucket=bucket)
    put_kms(s3, bucket, "plain-dek", b"one", key_id)
    put_kms(s3, bucket, "bucket-key", b"two", key_id, bucket_key=True)
    # Warm the bucket-key cache: it must not outlive the backend either.
    assert s3.get_object(Bucket=bucket, Key="bucket-key")["Body"].read() == b"two"

    moto.pause()
    try:
        for name in ("plain-dek", "bucket-key"):
            started = time.monotonic()
            failure = expect_error(s3.get_object, "KMS.KMSInternalException", 500,
                                   Bucket=bucket, Key=name)
            waited = time.monotonic() - started
            assert waited < FAIL_CLOSED_BOUND_S, f"GET {name} failed only after {waited:.1f}s"
            message = failure.response["Error"]["Message"]
            assert "aws-kms backend" in message and moto.url in message, message
        expect_error(put_kms, "KMS.KMSInternalException", 500, s3, bucket, "new", b"x", key_id)
    finally:
        moto.resume()

    assert s3.get_object(Bucket=bucket, Key="plain-dek")["Body"].read() == b"one"
    assert s3.get_object(Bucket=bucket, Key="bucket-key")["Body"].read() == b"two"
    put_kms(s3, bucket, "after", b"three", key_id)
    assert s3.get_object(Bucket=bucket, Key="after")["Body"].read() == b"three"


def test_no_key_material_on_disk_or_in_logs(backed, moto):
    """Data keys the backend hands out through Coffer, and the backend's secret, appear nowhere
    in Coffer's data dir or logs."""
    srv, s3 = backed
    key_id = backend_key(moto)
    kms = boto3.session.Session(
        aws_access_key_id=srv.access_key, aws_secret_access_key=srv.secret_key, region_name=REGION,
    ).client("kms", endpoint_url=srv.endpoint, config=Config(retries={"max_attempts": 1}))
    needles = {"backend secret key": moto.secret_key.encode()}
    for n in range(3):
        plaintext = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")["Plaintext"]
        SECRETS.add(f"aws-kms data key {n}", plaintext)
        needles[f"data key {n}"] = plaintext
        needles[f"data key {n} (hex)"] = plaintext.hex().encode()
    bucket = unique_bucket_name("awskms-grep")
    s3.create_bucket(Bucket=bucket)
    put_kms(s3, bucket, "a", os.urandom(100_000), key_id)
    put_kms(s3, bucket, "b", os.urandom(1000), key_id, bucket_key=True)
    srv.stop()
    files = [p for p in srv.data_dir.rglob("*") if p.is_file()]
    files += [p for p in srv.log_dir.rglob("*") if p.is_file()]
    assert files and find_in_files(files, needles) == []


def test_another_coffer_as_the_backend(make_server):
    """Coffer A keeps its master keys in Coffer B's embedded KMS (B's KMS API, signed with B's
    root credentials). B stopped: A refuses at once (connection refused); B back on its port:
    A reads again."""
    keeper = make_server()
    front = make_server(
        extra_args=["--kms-backend", f"aws-kms:{keeper.endpoint}?region={REGION}"],
        extra_env={"COFFER_KMS_ACCESS_KEY_ID": keeper.access_key,
                   "COFFER_KMS_SECRET_ACCESS_KEY": keeper.secret_key},
    )
    keeper_kms = boto3.session.Session(
        aws_access_key_id=keeper.access_key, aws_secret_access_key=keeper.secret_key,
        region_name=REGION,
    ).client("kms", endpoint_url=keeper.endpoint, config=Config(retries={"max_attempts": 1}))
    key_id = keeper_kms.create_key(Description="kept by B")["KeyMetadata"]["KeyId"]
    s3 = front.client()
    bucket = unique_bucket_name("awskms-coffer")
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(300_000)
    put = put_kms(s3, bucket, "obj", body, key_id)
    assert put["SSEKMSKeyId"].endswith(key_id)
    assert s3.get_object(Bucket=bucket, Key="obj", Range="bytes=1000-2000")["Body"].read() \
        == body[1000:2001]
    # B's audit log names A's calls under B's root principal, for the object's key.
    assert any(e.get("operation") == "GenerateDataKey" and e.get("key_id") == key_id
               for e in map(json.loads, (keeper.data_dir / "kms" / "audit.log").read_text()
                            .splitlines()))

    keeper_kms.disable_key(KeyId=key_id)
    expect_error(s3.get_object, *DISABLED, Bucket=bucket, Key="obj")
    keeper_kms.enable_key(KeyId=key_id)

    port = keeper.port
    keeper.stop()
    started = time.monotonic()
    failure = expect_error(s3.get_object, "KMS.KMSInternalException", 500, Bucket=bucket, Key="obj")
    assert time.monotonic() - started < FAIL_CLOSED_BOUND_S
    assert keeper.endpoint in failure.response["Error"]["Message"]
    keeper.start(port=port)
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == body


def test_start_refused_without_a_working_backend(make_server, tmp_path):
    """The server does not start on a backend it cannot use, and says why without the secret:
    credentials missing, credentials the backend refuses, nothing listening."""
    keeper = make_server()
    secret = random_secret_key()
    SECRETS.add("refused aws-kms secret", secret)

    def start(url, env):
        return subprocess.run(
            [str(coffer_bin()), "server", "--data-dir", str(tmp_path / "front"), "--listen",
             f"127.0.0.1:{free_port()}", "--kms-backend", f"aws-kms:{url}"],
            env={**_clean_env(), "COFFER_LOG": "warn", **env}, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=60)

    missing = start(keeper.endpoint, {})
    assert missing.returncode != 0 and "COFFER_KMS_SECRET_ACCESS_KEY" in missing.stderr, \
        missing.stderr
    refused = start(keeper.endpoint, {"COFFER_KMS_ACCESS_KEY_ID": keeper.access_key,
                                      "COFFER_KMS_SECRET_ACCESS_KEY": secret})
    assert refused.returncode != 0 and "aws-kms backend" in refused.stderr, refused.stderr
    assert secret not in refused.stderr + refused.stdout
    nobody = start(f"http://127.0.0.1:{free_port()}", {"COFFER_KMS_ACCESS_KEY_ID": "a",
                                                      "COFFER_KMS_SECRET_ACCESS_KEY": secret})
    assert nobody.returncode != 0 and "unreachable" in nobody.stderr, nobody.stderr
    bad = start("kms.example:443", {})
    assert bad.returncode != 0 and "aws-kms" in bad.stderr, bad.stderr
