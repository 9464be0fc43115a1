"""The KMS on a PKCS#11 token (`--kms-backend pkcs11:…`) and the root key in one
(`--root-key pkcs11:…;object=…`), against a throwaway softhsm2 token.

- SSE-KMS end to end with boto3 under a key created through Coffer's KMS API (it appears in
  the token, sensitive and not extractable): PUT, PUT with a bucket key, multipart, CopyObject,
  whole and ranged GET.
- The token is the truth: a key disabled in the token itself (PyKCS11, not Coffer) makes reads
  and writes fail with 403 KMS.DisabledException (bucket-key reuse within the state cache bound,
  5 s); enabled again, they work; destroyed in the token, they fail.
- The token away (its directory moved off): requests fail closed with 500
  KMS.KMSInternalException and /health/ready is 503; back, requests work again with no restart.
- No CMK material on disk or in logs: a key of known bytes made in the token for the test
  is grepped for in the data dir and the server's logs.
- The root key wrapped by a key made with pkcs11-tool in a token of its own (as docs/kms.md
  does it): no root.key on disk, objects readable across restarts; a missing token key or no
  --root-key refuses to start with a message that says why (and no PIN). Two gateways over one
  PostgreSQL share the wrapped root key through the database and read each other's objects.

Skipped without softhsm2/pkcs11-tool, unless COFFER_REQUIRE_SOFTHSM is set (scripts/test sets it).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from gateway_support import (  # noqa: F401 (cluster, factory, upstream: module fixtures)
    GatewaySet,
    cluster,
    factory,
    postgres_available,
    upstream,
)
from support import (
    SECRETS,
    coffer_bin,
    error_code,
    find_in_files,
    http_status,
    kms_client,
    unique_bucket_name,
)

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
# Random per run, and registered with the secrets grep (test_secrets.py): it must never be logged.
PIN = secrets.token_hex(8)
SECRETS.add("pkcs11 user PIN", PIN)
MiB = 1 << 20

# Edits a key in the token directly, as its owner would with the HSM's own tools: PyKCS11 in
# a child process, so each test's SOFTHSM2_CONF is the one the module reads.
TOKEN_TOOL = r"""
import sys, PyKCS11 as P
action, label = sys.argv[1], sys.argv[2]
lib = P.PyKCS11Lib(); lib.load(sys.argv[3])
slot = next(s for s in lib.getSlotList(tokenPresent=True) if lib.getTokenInfo(s).label.strip() == sys.argv[5])
s = lib.openSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION); s.login(sys.argv[4])
keys = s.findObjects([(P.CKA_CLASS, P.CKO_SECRET_KEY), (P.CKA_LABEL, label)])
if action == "create-known":
    s.createObject([(P.CKA_CLASS, P.CKO_SECRET_KEY), (P.CKA_KEY_TYPE, P.CKK_AES), (P.CKA_TOKEN, True),
                    (P.CKA_PRIVATE, True), (P.CKA_LABEL, label), (P.CKA_ENCRYPT, True), (P.CKA_DECRYPT, True),
                    (P.CKA_VALUE, bytes.fromhex(sys.argv[6]))])
elif action == "describe":
    for k in keys:
        print(s.getAttributeValue(k, [P.CKA_SENSITIVE, P.CKA_EXTRACTABLE, P.CKA_TOKEN]))
for k in keys:
    if action in ("disable", "enable"):
        on = action == "enable"
        s.setAttributeValue(k, [(P.CKA_ENCRYPT, on), (P.CKA_DECRYPT, on)])
    elif action == "destroy":
        s.destroyObject(k)
print(len(keys))
"""


class SoftHsm:
    """A softhsm2 token labelled `coffer` in a temp dir, its PIN in a file."""

    def __init__(self, root: Path, label: str = "coffer"):
        self.root = root
        self.tokens = root / "tokens"
        self.tokens.mkdir(parents=True)
        self.conf = root / "softhsm2.conf"
        self.conf.write_text(f"directories.tokendir = {self.tokens}\nobjectstore.backend = file\n"
                             "log.level = ERROR\n")
        self.pin_file = root / "pin"
        self.pin_file.write_text(PIN + "\n")
        self.pin_file.chmod(0o600)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SOFTHSM2_CONF": str(self.conf)}
        self.label = label
        self.add_token(label)

    def add_token(self, label: str) -> None:
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN,
                        "--so-pin", PIN + "so"], env=self.env, check=True, capture_output=True)

    def uri(self, obj: str | None = None, token: str = "coffer", pin_file: bool = True) -> str:
        path = f"token={token}" + (f";object={obj}" if obj else "")
        pin = f"&pin-source=file:{self.pin_file}" if pin_file else ""
        return f"pkcs11:{path}?module-path={MODULE}{pin}"

    def tool(self, action: str, label: str, *extra: str, token: str = "coffer") -> str:
        result = subprocess.run([sys.executable, "-c", TOKEN_TOOL, action, label, str(MODULE), PIN, token,
                                 *extra],
                                env=self.env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def pkcs11_tool(self, token: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["pkcs11-tool", "--module", str(MODULE), "--token-label", token,
                               "--login", "--pin", PIN, *args],
                              env=self.env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def hsm(tmp_path) -> SoftHsm:
    missing = [tool for tool in ("softhsm2-util", "pkcs11-tool") if shutil.which(tool) is None]
    if not MODULE.exists():
        missing.append(str(MODULE))
    try:
        import PyKCS11  # noqa: F401
    except ImportError:
        missing.append("PyKCS11 (tests/interop/requirements.txt)")
    if missing:
        message = f"softhsm2 tools missing: {', '.join(missing)} (apt-get install softhsm2 opensc)"
        if os.environ.get("COFFER_REQUIRE_SOFTHSM"):
            pytest.fail(message + " (COFFER_REQUIRE_SOFTHSM is set)")
        pytest.skip(message)
    return SoftHsm(tmp_path / "hsm")


def start_on_token(make_server, hsm: SoftHsm, *args: str):
    return make_server(extra_args=["--kms-backend", hsm.uri(), *args],
                       extra_env={"SOFTHSM2_CONF": str(hsm.conf)})


def expect_error(fn, codes: set[str], status: int, **kwargs) -> None:
    with pytest.raises(ClientError) as ei:
        fn(**kwargs)
    got = (error_code(ei.value), http_status(ei.value))
    assert got[0] in codes and got[1] == status, f"expected {codes} {status}, got {got}"


def eventually(check, seconds: float = 15.0):
    """`check()` once it stops raising, within `seconds` (the state cache bound is 5 s)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return check()
        except (AssertionError, ClientError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def ready_status(srv) -> int:
    try:
        with urllib.request.urlopen(f"{srv.endpoint}/health/ready", timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def test_sse_kms_on_a_token_key_and_the_token_decides(make_server, hsm):
    srv = start_on_token(make_server, hsm)
    s3 = srv.client(retries=0)
    kms = kms_client(srv)
    key_id = kms.create_key(Description="pkcs11")["KeyMetadata"]["KeyId"]
    attributes = hsm.tool("describe", key_id)
    assert "[1, 0, 1]" in attributes.replace("True", "1").replace("False", "0"), attributes

    bucket = unique_bucket_name("p11")
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(3 * MiB + 17)
    kms_args = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id}
    s3.put_object(Bucket=bucket, Key="plain", Body=body, **kms_args)
    s3.put_object(Bucket=bucket, Key="bucket-key", Body=body[:1000], BucketKeyEnabled=True, **kms_args)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="multi", **kms_args)["UploadId"]
    parts = []
    for number, chunk in enumerate([body[: 5 * MiB], body[:1234]], start=1):
        if number == 1:
            chunk = (body * 2)[: 5 * MiB]
        etag = s3.upload_part(Bucket=bucket, Key="multi", UploadId=upload, PartNumber=number,
                              Body=chunk)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(Bucket=bucket, Key="multi", UploadId=upload,
                                 MultipartUpload={"Parts": parts})
    multi = (body * 2)[: 5 * MiB] + body[:1234]
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "plain"}, **kms_args)

    head = s3.head_object(Bucket=bucket, Key="copy")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith(key_id)
    assert s3.get_object(Bucket=bucket, Key="plain")["Body"].read() == body
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == body
    assert s3.get_object(Bucket=bucket, Key="multi")["Body"].read() == multi
    assert s3.get_object(Bucket=bucket, Key="bucket-key")["Body"].read() == body[:1000]
    ranged = s3.get_object(Bucket=bucket, Key="multi", Range="bytes=5242000-5242999")["Body"].read()
    assert ranged == multi[5242000:5243000]

    # Disabled in the token, not through Coffer: reads and writes stop.
    assert hsm.tool("disable", key_id).strip() == "1"
    disabled = {"KMS.DisabledException"}
    expect_error(s3.get_object, disabled, 403, Bucket=bucket, Key="plain")
    expect_error(s3.get_object, disabled, 403, Bucket=bucket, Key="multi", Range="bytes=0-9")
    expect_error(s3.put_object, disabled, 403, Bucket=bucket, Key="new", Body=b"x", **kms_args)
    eventually(lambda: expect_error(s3.get_object, disabled, 403, Bucket=bucket, Key="bucket-key"))
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"

    hsm.tool("enable", key_id)
    assert s3.get_object(Bucket=bucket, Key="plain")["Body"].read() == body
    eventually(lambda: s3.get_object(Bucket=bucket, Key="bucket-key")["Body"].read() == body[:1000])

    # Destroyed in the token: gone for good.
    hsm.tool("destroy", key_id)
    expect_error(s3.get_object, {"KMS.NotFoundException"}, 400, Bucket=bucket, Key="plain")
    expect_error(s3.put_object, {"KMS.NotFoundException"}, 400, Bucket=bucket, Key="new2", Body=b"x",
                 **kms_args)
    assert "new" not in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_token_away_fails_closed_and_recovers(make_server, hsm):
    srv = start_on_token(make_server, hsm)
    s3 = srv.client(retries=0)
    bucket = unique_bucket_name("p11-away")
    s3.create_bucket(Bucket=bucket)
    key_id = kms_client(srv).create_key()["KeyMetadata"]["KeyId"]
    kms_args = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id}
    s3.put_object(Bucket=bucket, Key="obj", Body=b"kept in the token's keeping", **kms_args)
    assert ready_status(srv) == 200

    away = hsm.root / "away"
    hsm.tokens.rename(away)
    hsm.tokens.mkdir()
    internal = {"KMS.KMSInternalException"}
    expect_error(s3.get_object, internal, 500, Bucket=bucket, Key="obj")
    expect_error(s3.put_object, internal, 500, Bucket=bucket, Key="new", Body=b"x", **kms_args)
    assert ready_status(srv) == 503

    hsm.tokens.rmdir()
    away.rename(hsm.tokens)
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"kept in the token's keeping"
    s3.put_object(Bucket=bucket, Key="new", Body=b"x", **kms_args)
    assert ready_status(srv) == 200
    assert srv.running(), "the server rode out the token's absence"


def test_no_cmk_material_on_disk_or_in_logs(make_server, hsm):
    material = os.urandom(32)
    SECRETS.add("pkcs11 test CMK", material)
    hsm.tool("create-known", "known-key", material.hex())
    # The PIN from the environment this time (COFFER_PKCS11_PIN), not a file.
    srv = make_server(extra_args=["--kms-backend", hsm.uri(pin_file=False)],
                      extra_env={"SOFTHSM2_CONF": str(hsm.conf), "COFFER_PKCS11_PIN": PIN})
    s3 = srv.client(retries=0)
    bucket = unique_bucket_name("p11-grep")
    s3.create_bucket(Bucket=bucket)
    marker = b"pkcs11-plaintext-marker-" + os.urandom(8).hex().encode()
    s3.put_object(Bucket=bucket, Key="obj", Body=marker * 100, ServerSideEncryption="aws:kms",
                  SSEKMSKeyId="known-key")
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == marker * 100
    srv.stop()
    files = [p for p in srv.data_dir.rglob("*") if p.is_file()] + list(srv.log_dir.glob("*.log"))
    assert find_in_files(files, {"plaintext marker": marker}) == [], "positive control: sealed at rest"
    assert find_in_files(files, {"CMK": material}) == []


def test_root_key_wrapped_by_a_token_key(make_server, hsm):
    # As docs/kms.md makes it: a token of its own, and an AES key that stays in it.
    hsm.add_token("coffer-root")
    made = hsm.pkcs11_tool("coffer-root", "--keygen", "--key-type", "AES:32", "--label", "root-wrap",
                           "--sensitive", "--private")
    assert made.returncode == 0, made.stderr
    srv = start_on_token(make_server, hsm, "--root-key", hsm.uri("root-wrap", token="coffer-root"))
    assert not (srv.data_dir / "root.key").exists()
    assert (srv.data_dir / "root.key.wrapped").read_text().startswith("coffer-root-key-wrapped-v1\n")
    s3 = srv.client(retries=0)
    bucket = unique_bucket_name("p11-root")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="obj", Body=b"sealed under a wrapped root key")
    key_id = kms_client(srv).create_key()["KeyMetadata"]["KeyId"]
    s3.put_object(Bucket=bucket, Key="kms", Body=b"and a token CMK", ServerSideEncryption="aws:kms",
                  SSEKMSKeyId=key_id)
    srv.restart()
    s3 = srv.client(retries=0)
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"sealed under a wrapped root key"
    assert s3.get_object(Bucket=bucket, Key="kms")["Body"].read() == b"and a token CMK"
    srv.stop()

    def refused(*args: str) -> str:
        result = subprocess.run(
            [str(coffer_bin()), "server", "--data-dir", str(srv.data_dir), "--listen", "127.0.0.1:0",
             *args],
            env={**srv.env(), "SOFTHSM2_CONF": str(hsm.conf)}, capture_output=True, text=True, timeout=60)
        assert result.returncode != 0, result.stdout
        return result.stdout + result.stderr

    assert "--root-key" in refused()
    wrong_pin = hsm.root / "wrong-pin"
    wrong_pin.write_text("not-the-pin\n")
    refused_pin = refused("--root-key", hsm.uri("root-wrap", token="coffer-root").replace(
        str(hsm.pin_file), str(wrong_pin)))
    assert "refused the PIN" in refused_pin and "not-the-pin" not in refused_pin, refused_pin
    missing = refused("--root-key", hsm.uri("no-such-key", token="coffer-root"))
    assert "no-such-key" in missing and PIN not in missing, missing
    # The token key gone: the data dir cannot be opened, and says so.
    hsm.tool("destroy", "root-wrap", token="coffer-root")
    assert "root-wrap" in refused("--root-key", hsm.uri("root-wrap", token="coffer-root"))


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL is not installed (scripts/test installs it)")
def test_gateways_share_the_wrapped_root_key(factory, cluster, upstream, hsm):
    hsm.add_token("coffer-root")
    made = hsm.pkcs11_tool("coffer-root", "--keygen", "--key-type", "AES:32", "--label", "root-wrap",
                           "--sensitive", "--private")
    assert made.returncode == 0, made.stderr
    gateways = GatewaySet(factory, cluster, upstream,
                          extra_args=["--root-key", hsm.uri("root-wrap", token="coffer-root")])
    for _ in range(2):
        gateway = gateways.add(start=False)
        gateway.extra_env["SOFTHSM2_CONF"] = str(hsm.conf)
        gateway.start()
    for gateway in gateways.gateways:
        assert not (gateway.data_dir / "root.key").exists(), "no plain root key on any gateway"
    first, second = gateways.clients(retries=0)
    bucket = unique_bucket_name("p11-gw")
    first.create_bucket(Bucket=bucket)
    first.put_object(Bucket=bucket, Key="obj", Body=b"one root key, wrapped in the token")
    assert second.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"one root key, wrapped in the token"
    wrapped = cluster.psql("SELECT count(*) FROM gateway_settings WHERE name = 'root-key-pkcs11-wrapped'",
                           database=gateways.database)
    assert wrapped.strip() == "1", wrapped
