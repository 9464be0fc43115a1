"""SSE-KMS with the master keys in a KMIP server (`--kms-backend kmip://…`, docs/kms.md).

A PyKMIP server (kmip_server.py) runs on a loopback port with mutual TLS; Coffer talks KMIP 1.4
to it, and the server encrypts Coffer's data keys with AES-256-GCM under keys only it holds.
PyKMIP's own client plays the KMIP administrator (creating a key there, revoking, destroying).

- PUT, multipart, CopyObject and ranged GETs under a key made through Coffer's KMS API, one made
  in the KMIP server, and the default key (`alias/aws/s3`, created in the KMIP server on first
  use); the KMS API (Encrypt/Decrypt/DescribeKey/DisableKey) answers from the KMIP server.
- A key revoked in the KMIP server: reads and writes under it answer 403
  `KMS.DisabledException` (bucket keys too, within the documented 5 s), and Coffer's log has the
  refused call's audit line; destroyed there: refused.
- The KMIP server stopped: requests fail closed (500 `KMS.KMSInternalException`, within the
  connect timeout; bucket keys within 5 s) and `/health/ready` says not ready; restarted on the
  same port: the same objects read again without restarting Coffer.
- The keys' material (read from the KMIP server with PyKMIP) is nowhere in Coffer's data dir or
  logs, in raw, hex or base64 form; the same grep finds it in the KMIP server's own database.
- A server with an unreachable or misconfigured KMIP backend refuses to start, naming it.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

from kmip_server import KmipServer
from support import coffer_bin, error_code, free_port, http_status, kms_client, unique_bucket_name

pytest.importorskip("kmip", reason="PyKMIP (tests/interop/requirements.txt) is not installed")

from kmip.core import enums  # noqa: E402

MiB = 1 << 20
# keys.rs STATE_TTL: how long a revoked key may still open cached bucket keys.
STATE_TTL_S = 5.0


@pytest.fixture(scope="module")
def kmip(tmp_path_factory):
    server = KmipServer(tmp_path_factory.mktemp("kmip"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def coffer(make_server, kmip):
    return make_server(extra_args=["--kms-backend", kmip.backend_setting(timeout="3")])


def expect_error(fn, code: str, status: int, **kwargs) -> None:
    with pytest.raises(ClientError) as ei:
        fn(**kwargs)
    got = (error_code(ei.value), http_status(ei.value))
    assert got == (code, status), f"expected {(code, status)}, got {got}: {ei.value.response.get('Error')}"


def kmip_key(kmip: KmipServer, name: str) -> str:
    """A key made by the KMIP administrator, named `name`, Active; its Unique Identifier."""
    client = kmip.client()
    try:
        uid = client.create(
            enums.CryptographicAlgorithm.AES, 256, name=name,
            cryptographic_usage_mask=[enums.CryptographicUsageMask.ENCRYPT,
                                      enums.CryptographicUsageMask.DECRYPT],
        )
        client.activate(uid)
        return uid
    finally:
        client.close()


def kmip_uid(kmip: KmipServer, name: str) -> str:
    client = kmip.client()
    try:
        found = client.locate(attributes=[
            client.attribute_factory.create_attribute(enums.AttributeType.NAME, name)])
        assert len(found) == 1, f"the KMIP server has {found} named {name}"
        return found[0]
    finally:
        client.close()


def kmip_state(kmip: KmipServer, uid: str):
    client = kmip.client()
    try:
        _, attributes = client.get_attributes(uid, ["State"])
        return attributes[0].attribute_value.value
    finally:
        client.close()


def revoke(kmip: KmipServer, uid: str, destroy: bool = False) -> None:
    client = kmip.client()
    try:
        client.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
        if destroy:
            client.destroy(uid)
    finally:
        client.close()


def material(kmip: KmipServer, uid: str) -> bytes:
    client = kmip.client()
    try:
        return client.get(uid).value
    finally:
        client.close()


def put_kms(s3, bucket: str, key: str, body: bytes, key_id: str | None = None, **extra):
    args = {"ServerSideEncryption": "aws:kms", **extra}
    if key_id:
        args["SSEKMSKeyId"] = key_id
    return s3.put_object(Bucket=bucket, Key=key, Body=body, **args)


def read(s3, bucket: str, key: str, range_: str | None = None) -> bytes:
    args = {"Range": range_} if range_ else {}
    return s3.get_object(Bucket=bucket, Key=key, **args)["Body"].read()


def test_sse_kms_round_trips_through_the_kmip_server(coffer, kmip):
    s3 = coffer.client(checksum="when_required", retries=0)
    kms = kms_client(coffer)
    bucket = unique_bucket_name("kmip")
    s3.create_bucket(Bucket=bucket)

    # A key made through Coffer's KMS API lives in the KMIP server, named by its key id.
    made = kms.create_key(Description="kmip round trip")["KeyMetadata"]
    assert made["KeyState"] == "Enabled"
    uid = kmip_uid(kmip, made["KeyId"])
    assert kmip_state(kmip, uid) == enums.State.ACTIVE
    # A key the KMIP administrator made, used by its Name.
    admin_key = f"payments-{uuid.uuid4().hex[:8]}"
    kmip_key(kmip, admin_key)
    assert kms.describe_key(KeyId=admin_key)["KeyMetadata"]["KeyState"] == "Enabled"

    body = os.urandom(3 * MiB + 12345)
    for key_id in (made["KeyId"], made["Arn"], admin_key):
        name = f"single-{uuid.uuid4().hex[:6]}"
        answer = put_kms(s3, bucket, name, body, key_id)
        assert answer["ServerSideEncryption"] == "aws:kms"
        assert answer["SSEKMSKeyId"].endswith(key_id.split("/")[-1])
        assert read(s3, bucket, name) == body
        for first, last in ((0, 0), (65535, 65537), (MiB - 7, 2 * MiB + 3), (len(body) - 10, len(body) - 1)):
            assert read(s3, bucket, name, f"bytes={first}-{last}") == body[first:last + 1]
        head = s3.head_object(Bucket=bucket, Key=name)
        assert head["ServerSideEncryption"] == "aws:kms"

    # The default key: alias/aws/s3, created in the KMIP server on first use.
    put_kms(s3, bucket, "default", body[:1000])
    assert read(s3, bucket, "default") == body[:1000]
    kmip_uid(kmip, "alias/aws/s3")

    # Multipart under the KMIP key, a range across the part boundary.
    upload = s3.create_multipart_upload(Bucket=bucket, Key="multi", ServerSideEncryption="aws:kms",
                                        SSEKMSKeyId=made["KeyId"])["UploadId"]
    parts = [os.urandom(5 * MiB), body[:MiB + 3]]
    etags = [s3.upload_part(Bucket=bucket, Key="multi", UploadId=upload, PartNumber=n + 1,
                            Body=part)["ETag"] for n, part in enumerate(parts)]
    s3.complete_multipart_upload(Bucket=bucket, Key="multi", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": n + 1, "ETag": etag} for n, etag in enumerate(etags)]})
    whole = b"".join(parts)
    assert read(s3, bucket, "multi") == whole
    assert read(s3, bucket, "multi", f"bytes={5 * MiB - 5}-{5 * MiB + 5}") == whole[5 * MiB - 5:5 * MiB + 6]

    # CopyObject from one KMIP key to another, and with a bucket key.
    copied = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "multi"},
                            ServerSideEncryption="aws:kms", SSEKMSKeyId=admin_key,
                            BucketKeyEnabled=True)
    assert copied["SSEKMSKeyId"].endswith(admin_key)
    assert read(s3, bucket, "copy", "bytes=100-199") == whole[100:200]

    # The KMS API itself answers from the KMIP server.
    sealed = kms.encrypt(KeyId=made["KeyId"], Plaintext=b"small secret",
                         EncryptionContext={"purpose": "test"})
    opened = kms.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext={"purpose": "test"})
    assert opened["Plaintext"] == b"small secret"
    assert opened["KeyId"].endswith(made["KeyId"])
    with pytest.raises(ClientError) as ei:
        kms.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext={"purpose": "other"})
    assert error_code(ei.value) == "InvalidCiphertextException"

    # DisableKey through Coffer revokes the key in the KMIP server, for good.
    kms.disable_key(KeyId=made["KeyId"])
    assert kmip_state(kmip, uid) == enums.State.DEACTIVATED
    assert kms.describe_key(KeyId=made["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
    expect_error(s3.get_object, "KMS.DisabledException", 403, Bucket=bucket, Key="multi")
    with pytest.raises(ClientError) as ei:
        kms.enable_key(KeyId=made["KeyId"])
    assert "no way back to Active" in str(ei.value)


def test_key_revoked_or_destroyed_in_the_kmip_server_is_refused(coffer, kmip):
    s3 = coffer.client(checksum="when_required", retries=0)
    bucket = unique_bucket_name("kmip-revoke")
    s3.create_bucket(Bucket=bucket)
    name = f"revoked-{uuid.uuid4().hex[:8]}"
    uid = kmip_key(kmip, name)
    put_kms(s3, bucket, "plain-kms", b"a" * 100_000, name)
    put_kms(s3, bucket, "bucket-key", b"b" * 100_000, name, BucketKeyEnabled=True)
    assert read(s3, bucket, "bucket-key") == b"b" * 100_000

    revoke(kmip, uid)
    expect_error(s3.get_object, "KMS.DisabledException", 403, Bucket=bucket, Key="plain-kms")
    expect_error(put_kms, "KMS.DisabledException", 403, s3=s3, bucket=bucket, key="new",
                 body=b"x", key_id=name)
    expect_error(s3.create_multipart_upload, "KMS.DisabledException", 403, Bucket=bucket, Key="mp",
                 ServerSideEncryption="aws:kms", SSEKMSKeyId=name)
    # Coffer's side of the audit: one log line per call, with key, operation and outcome.
    audit = [line for line in coffer.log_text().splitlines() if "KMIP KMS call" in line]
    assert any(name in line and "Decrypt" in line and "DisabledException" in line
               and f"{bucket}/plain-kms" in line for line in audit), audit[-5:]
    # The cached bucket key: refused once the remembered state is older than STATE_TTL.
    deadline = time.monotonic() + STATE_TTL_S + 3
    while True:
        try:
            read(s3, bucket, "bucket-key")
        except ClientError as e:
            assert (error_code(e), http_status(e)) == ("KMS.DisabledException", 403)
            break
        assert time.monotonic() < deadline, "a revoked key still opened its bucket key"
        time.sleep(0.5)

    # Destroyed in the KMIP server: the key is gone.
    revoke_and_destroy = f"destroyed-{uuid.uuid4().hex[:8]}"
    doomed = kmip_key(kmip, revoke_and_destroy)
    put_kms(s3, bucket, "doomed", b"c" * 1000, revoke_and_destroy)
    revoke(kmip, doomed, destroy=True)
    expect_error(s3.get_object, "KMS.NotFoundException", 400, Bucket=bucket, Key="doomed")
    s3.put_object(Bucket=bucket, Key="still-fine", Body=b"the service key is not the KMIP server's")


def test_kmip_server_stopped_fails_closed_and_restarted_recovers(coffer, kmip):
    s3 = coffer.client(checksum="when_required", retries=0)
    bucket = unique_bucket_name("kmip-down")
    s3.create_bucket(Bucket=bucket)
    name = f"outage-{uuid.uuid4().hex[:8]}"
    kmip_key(kmip, name)
    body = os.urandom(200_000)
    put_kms(s3, bucket, "before", body, name)
    put_kms(s3, bucket, "bucket-key", body, name, BucketKeyEnabled=True)
    ready = f"{coffer.endpoint}/health/ready"
    assert requests.get(ready, timeout=10).status_code == 200

    kmip.stop()
    try:
        started = time.monotonic()
        expect_error(s3.get_object, "KMS.KMSInternalException", 500, Bucket=bucket, Key="before")
        expect_error(put_kms, "KMS.KMSInternalException", 500, s3=s3, bucket=bucket, key="during",
                     body=body, key_id=name)
        assert time.monotonic() - started < 10, "failing closed took longer than the timeouts"
        time.sleep(STATE_TTL_S)
        expect_error(s3.get_object, "KMS.KMSInternalException", 500, Bucket=bucket, Key="bucket-key")
        assert requests.get(ready, timeout=10).status_code == 503
        with pytest.raises(ClientError):
            s3.head_object(Bucket=bucket, Key="during")
    finally:
        kmip.start()

    assert read(s3, bucket, "before") == body
    assert read(s3, bucket, "bucket-key", "bytes=10-20") == body[10:21]
    put_kms(s3, bucket, "after", body, name)
    assert read(s3, bucket, "after") == body
    assert requests.get(ready, timeout=10).status_code == 200


def test_no_key_material_on_coffers_disk_or_in_its_logs(coffer, kmip):
    s3 = coffer.client(checksum="when_required", retries=0)
    kms = kms_client(coffer)
    bucket = unique_bucket_name("kmip-grep")
    s3.create_bucket(Bucket=bucket)
    made = kms.create_key()["KeyMetadata"]["KeyId"]
    for n in range(3):
        put_kms(s3, bucket, f"o{n}", os.urandom(100_000), made)
    put_kms(s3, bucket, "default", b"d" * 1000)
    put_kms(s3, bucket, "bk", b"e" * 1000, made, BucketKeyEnabled=True)
    read(s3, bucket, "o1")
    coffer.stop()

    secrets = {}
    for name in (made, "alias/aws/s3"):
        key = material(kmip, kmip_uid(kmip, name))
        assert len(key) == 32
        secrets.update({f"{name} raw": key, f"{name} hex": key.hex().encode(),
                        f"{name} base64": base64.b64encode(key)})
    files = [p for root in (coffer.data_dir, coffer.log_dir) for p in Path(root).rglob("*") if p.is_file()]
    assert files, "nothing to search"
    hits = [f"{what} in {path}" for path in files for what, needle in secrets.items()
            if needle in path.read_bytes()]
    assert hits == []
    # Positive control: the same search finds the keys where they do live.
    database = (kmip.directory / "keys.db").read_bytes()
    assert all(secrets[f"{name} raw"] in database for name in (made, "alias/aws/s3"))


def test_unreachable_or_misconfigured_kmip_backend_refuses_to_start(kmip, tmp_path):
    dead = free_port()
    cases = {
        "unreachable": (kmip.backend_setting().replace(f":{kmip.port}?", f":{dead}?"),
                        f"127.0.0.1:{dead}"),
        "no client key": (kmip.backend_setting().rsplit("&key=", 1)[0], "key="),
        "missing CA file": (kmip.backend_setting().replace("ca.pem", "absent.pem"), "absent.pem"),
        # The server's certificate does not chain to this CA: Coffer's own client cert as CA.
        "wrong CA": (kmip.backend_setting().replace("ca.pem", "client.pem"), f"127.0.0.1:{kmip.port}"),
    }
    for what, (setting, named) in cases.items():
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "COFFER_LOG": "info",
               "COFFER_ROOT_ACCESS_KEY": "CFKMIPSTARTTEST00000",
               "COFFER_ROOT_SECRET_KEY": "s" * 40}
        run = subprocess.run(
            [str(coffer_bin()), "server", "--data-dir", str(tmp_path / what.replace(" ", "-")),
             "--listen", f"127.0.0.1:{free_port()}", "--kms-backend", setting],
            env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
        output = run.stdout + run.stderr
        assert run.returncode != 0, f"{what}: the server started:\n{output}"
        assert named in output, f"{what}: the error does not name {named!r}:\n{output}"
