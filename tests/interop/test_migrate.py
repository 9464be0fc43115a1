"""`coffer admin migrate` (issue 16): an embedded store moved to PostgreSQL + an upstream
bucket and back, ciphertext as is. Data written through an embedded server (plain, AES256,
SSE-KMS, SSE-C, versions, delete markers, tags, a multipart object, a user, a KMS key and
alias) reads back identically through a gateway on the migrated database, then through an
embedded server on a data dir migrated back; an interrupted migration resumes to the same
report."""

from __future__ import annotations

import configparser
import hashlib
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from gateway_support import (  # noqa: F401 (cluster, factory, upstream: module fixtures)
    PostgresCluster,
    Upstream,
    cluster,
    factory,
    postgres_available,
    upstream,
)
from support import (
    CofferServer,
    ServerFactory,
    add_user,
    coffer_bin,
    kms_client,
    unique_bucket_name,
)

pytestmark = pytest.mark.skipif(not postgres_available(),
                                reason="PostgreSQL is not installed (scripts/test installs it)")

SSE_C_KEY = bytes(range(32))
SSE_C = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": SSE_C_KEY}


# --------------------------------------------------------------------------- helpers


def migrate_env(upstream: Upstream) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "COFFER_"))}
    env.update(upstream.env())
    return env


def run_migrate(args: list[str], upstream: Upstream, check: bool = True,
                timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(coffer_bin()), "admin", "migrate", *args],
                          env=migrate_env(upstream), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, (
            f"`coffer admin migrate {' '.join(args)}` exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def report(stdout: str) -> dict[str, str]:
    """The report's rows: name → 'source target' (counts) or the digest lines."""
    rows = {}
    for line in stdout.splitlines():
        parts = line.rsplit(None, 2)
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            rows[parts[0].strip()] = (int(parts[1]), int(parts[2]))
    return rows


def pg_count(cluster: PostgresCluster, database: str, sql: str) -> int | None:
    """A count from the database, or None while its tables do not exist yet."""
    result = subprocess.run(
        [str(cluster.bin / "psql"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "coffer",
         "-d", database, "-At", "-c", sql], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        return None
    return int(result.stdout.strip() or 0)


def all_versions(client, bucket: str) -> tuple[list, list]:
    versions, markers = [], []
    kwargs = {"Bucket": bucket}
    while True:
        page = client.list_object_versions(**kwargs)
        versions += page.get("Versions", [])
        markers += page.get("DeleteMarkers", [])
        if not page.get("IsTruncated"):
            return versions, markers
        kwargs["KeyMarker"] = page["NextKeyMarker"]
        kwargs["VersionIdMarker"] = page["NextVersionIdMarker"]


def optional(read):
    """`read()`, or None when the server answers that there is nothing configured."""
    try:
        return read()
    except ClientError:
        return None


def snapshot(client, buckets: list[str]) -> dict:
    """Everything a client sees of `buckets`: every version's bytes, headers and tags, every
    delete marker, and the buckets' versioning, encryption and tags."""
    out = {}
    for bucket in buckets:
        versions, markers = all_versions(client, bucket)
        entry = {
            "versioning": client.get_bucket_versioning(Bucket=bucket).get("Status"),
            "encryption": optional(lambda: client.get_bucket_encryption(Bucket=bucket)[
                "ServerSideEncryptionConfiguration"]),
            "tags": optional(lambda: client.get_bucket_tagging(Bucket=bucket)["TagSet"]),
            "markers": [(m["Key"], m["VersionId"], m["IsLatest"]) for m in markers],
            "versions": [],
        }
        for v in versions:
            extra = SSE_C if v["Key"].startswith("ssec/") else {}
            got = client.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"],
                                    **extra)
            body = got["Body"].read()
            tags = client.get_object_tagging(Bucket=bucket, Key=v["Key"],
                                             VersionId=v["VersionId"])["TagSet"]
            entry["versions"].append({
                "key": v["Key"], "version": v["VersionId"], "latest": v["IsLatest"],
                "etag": v["ETag"], "size": v["Size"],
                "sha256": hashlib.sha256(body).hexdigest(),
                "sse": got.get("ServerSideEncryption"), "kms": got.get("SSEKMSKeyId"),
                "sse_c": got.get("SSECustomerAlgorithm"),
                "type": got.get("ContentType"), "meta": got.get("Metadata"), "tags": tags,
            })
        out[bucket] = entry
    return out


def write_data(server: CofferServer) -> dict:
    """Writes the mix the migration must carry; returns what the checks need."""
    s3 = server.client()
    kms = kms_client(server)
    key_id = kms.create_key(Description="migrate")["KeyMetadata"]["KeyId"]
    alias = f"alias/migrate-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    ciphertext = kms.encrypt(KeyId=alias, Plaintext=b"kept by the KMS",
                             EncryptionContext={"app": "migrate"})["CiphertextBlob"]

    versioned = unique_bucket_name("mig-v")
    s3.create_bucket(Bucket=versioned)
    s3.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_tagging(Bucket=versioned, Tagging={"TagSet": [{"Key": "team", "Value": "a"}]})
    for n in range(3):
        s3.put_object(Bucket=versioned, Key="doc", Body=f"version {n}".encode() * 1000,
                      ContentType="text/plain", Metadata={"n": str(n)},
                      Tagging=f"round={n}")
    s3.put_object(Bucket=versioned, Key="gone", Body=b"soon deleted")
    s3.delete_object(Bucket=versioned, Key="gone")
    s3.put_object(Bucket=versioned, Key="aes", Body=os.urandom(70_000),
                  ServerSideEncryption="AES256")
    s3.put_object(Bucket=versioned, Key="kms", Body=os.urandom(150_000),
                  ServerSideEncryption="aws:kms", SSEKMSKeyId=alias)
    s3.put_object(Bucket=versioned, Key="ssec/secret", Body=os.urandom(90_000), **SSE_C)
    upload = s3.create_multipart_upload(Bucket=versioned, Key="big")["UploadId"]
    parts = []
    for number, size in ((1, 5 * 1024 * 1024), (2, 777_777)):
        etag = s3.upload_part(Bucket=versioned, Key="big", UploadId=upload, PartNumber=number,
                              Body=os.urandom(size))["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(Bucket=versioned, Key="big", UploadId=upload,
                                 MultipartUpload={"Parts": parts})

    # Enabled, suspended, enabled again: a null version between two versions with ids.
    s3.put_object(Bucket=versioned, Key="flip", Body=b"first, with an id")
    s3.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket=versioned, Key="flip", Body=b"the null version")
    s3.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=versioned, Key="flip", Body=b"newest, with an id")

    plain = unique_bucket_name("mig-p")
    s3.create_bucket(Bucket=plain)
    s3.put_bucket_encryption(Bucket=plain, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "none"}}]})
    s3.put_object(Bucket=plain, Key="plain", Body=b"stored as sent")
    for n in range(40):
        s3.put_object(Bucket=plain, Key=f"bulk/{n:03}", Body=os.urandom(20_000 + n))

    user = add_user(server, f"mig-{uuid.uuid4().hex[:6]}")
    return {"buckets": [versioned, plain], "versioned": versioned, "alias": alias,
            "ciphertext": ciphertext, "user": user}


def check_kms(server: CofferServer, data: dict) -> None:
    kms = kms_client(server)
    assert kms.decrypt(CiphertextBlob=data["ciphertext"],
                       EncryptionContext={"app": "migrate"})["Plaintext"] == b"kept by the KMS"
    aliases = [a["AliasName"] for a in kms.list_aliases()["Aliases"]]
    assert data["alias"] in aliases
    fresh = kms.encrypt(KeyId=data["alias"], Plaintext=b"new")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=fresh)["Plaintext"] == b"new"


def check_user(server: CofferServer, data: dict) -> None:
    user = data["user"]
    user.endpoint = server.endpoint
    user.client().list_buckets()


def start_on(factory: ServerFactory, source: CofferServer, root_key: Path,
             extra_args: list[str] | None = None,
             extra_env: dict[str, str] | None = None, data_dir: Path | None = None
             ) -> CofferServer:
    """A server with `source`'s root credentials and root key, on `data_dir` if given."""
    server = factory(start=False, extra_args=extra_args, extra_env=extra_env)
    server.access_key, server.secret_key = source.access_key, source.secret_key
    if data_dir is not None:
        server.data_dir = data_dir
    server.data_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
    if not (server.data_dir / "root.key").exists():
        shutil.copyfile(root_key, server.data_dir / "root.key")
        os.chmod(server.data_dir / "root.key", 0o600)
    server.start()
    return server


# --------------------------------------------------------------------------- tests


def test_refuses_a_running_server_and_uploads_in_progress(factory, cluster, upstream):
    server = factory()
    s3 = server.client()
    bucket = unique_bucket_name("mig-busy")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    database = cluster.create_database()
    target = ["--to-meta", database, "--to-blobs", upstream.blobs_url(upstream.bucket(), "busy")]

    running = run_migrate(["--from", str(server.data_dir), *target], upstream, check=False)
    assert running.returncode != 0
    assert "stop it" in running.stderr, running.stderr

    upload = s3.create_multipart_upload(Bucket=bucket, Key="half")["UploadId"]
    server.stop()
    busy = run_migrate(["--from", str(server.data_dir), *target], upstream, check=False)
    assert busy.returncode != 0
    assert "multipart uploads in progress" in busy.stderr, busy.stderr
    assert f"{bucket}/half" in busy.stderr
    server.start()
    server.client().abort_multipart_upload(Bucket=bucket, Key="half", UploadId=upload)
    server.stop()
    run_migrate(["--from", str(server.data_dir), *target], upstream)


def test_round_trip_through_gateways(factory, cluster, upstream):
    source = factory(extra_args=["--allow-insecure-sse-c"])
    data = write_data(source)
    expected = snapshot(source.client(), data["buckets"])
    source.stop()
    root_key = source.data_dir / "root.key"

    # To PostgreSQL + upstream, killed mid-copy, then resumed.
    database_url = cluster.create_database()
    database = database_url.rsplit("/", 1)[1]
    blobs_bucket = upstream.bucket()
    blobs_url = upstream.blobs_url(blobs_bucket, "migrated")
    forward = ["--from", str(source.data_dir), "--to-meta", database_url, "--to-blobs", blobs_url]
    proc = subprocess.Popen([str(coffer_bin()), "admin", "migrate", *forward],
                            env=migrate_env(upstream), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if (pg_count(cluster, database, "SELECT count(*) FROM blob_refs") or 0) >= 5:
            break
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    partial = pg_count(cluster, database, "SELECT count(*) FROM blob_refs")
    resumed = run_migrate(forward, upstream)
    assert "report: source and target agree" in resumed.stdout
    if partial:
        assert re.search(r"keys \(all their versions\): \d+ copied, [1-9]\d* already there",
                         resumed.stderr), resumed.stderr
    counts = report(resumed.stdout)
    assert counts["buckets"] == (2, 2)
    assert counts["delete markers"] == (1, 1)
    assert counts["users"] == (1, 1)
    assert counts["kms aliases"][0] >= 1 and counts["kms keys"][0] >= 1
    versions = sum(len(b["versions"]) for b in expected.values())
    assert counts["versions"] == (versions, versions)
    assert counts["parts"] == (2, 2)
    blobs = counts["blobs"][1]
    assert pg_count(cluster, database, "SELECT count(*) FROM blob_refs") == blobs, \
        "every blob referenced once: nothing duplicated by the resumed run"
    assert partial is None or partial <= blobs
    upstream_blobs = [o["Key"] for page in upstream.client.get_paginator("list_objects_v2")
                      .paginate(Bucket=blobs_bucket, Prefix="migrated/")
                      for o in page.get("Contents", [])]
    assert len(upstream_blobs) == blobs, "the interrupted run's leftover blobs were deleted"
    assert pg_count(cluster, database, "SELECT count(*) FROM pending_blobs") == 0
    again = run_migrate([*forward, "--verify-only"], upstream)
    assert again.stdout == resumed.stdout, "the resumed migration's report is the full one"

    # A gateway on the migrated database: the same objects, versions, keys.
    gateway = start_on(factory, source, root_key,
                       extra_args=["--meta", database_url, "--blobs", blobs_url,
                                   "--allow-insecure-sse-c"],
                       extra_env=upstream.env())
    gw = gateway.client()
    assert snapshot(gw, data["buckets"]) == expected
    check_kms(gateway, data)
    check_user(gateway, data)
    newer = gw.put_object(Bucket=data["versioned"], Key="doc", Body=b"written on the gateway")
    listed, _ = all_versions(gw, data["versioned"])
    doc = [v for v in listed if v["Key"] == "doc"]
    assert doc[0]["VersionId"] == newer["VersionId"] and doc[0]["IsLatest"], \
        "a version written after the migration is the newest"
    expected = snapshot(gw, data["buckets"])
    gateway.stop()

    # Back to a new data dir, and an embedded server on it.
    back_dir = factory.base / f"back-{uuid.uuid4().hex[:6]}"
    back_dir.mkdir(mode=0o700)
    shutil.copyfile(root_key, back_dir / "root.key")
    os.chmod(back_dir / "root.key", 0o600)
    backward = ["--from-meta", database_url, "--from-blobs", blobs_url, "--to", str(back_dir)]
    back = run_migrate(backward, upstream)
    assert "report: source and target agree" in back.stdout
    assert report(back.stdout)["versions"] == (versions + 1, versions + 1)
    embedded = start_on(factory, source, root_key, extra_args=["--allow-insecure-sse-c"],
                        data_dir=back_dir)
    assert snapshot(embedded.client(), data["buckets"]) == expected
    check_kms(embedded, data)
    check_user(embedded, data)
    embedded.stop()


def read_credentials(data_dir: Path) -> tuple[str, str]:
    ini = configparser.ConfigParser()
    ini.read(data_dir / "credentials")
    return ini.get("default", "aws_access_key_id"), ini.get("default", "aws_secret_access_key")


def test_passphrase_and_credentials_file_go_along(factory, cluster, upstream, tmp_path):
    """A passphrase-derived root key (its salt) and a generated credentials file move too:
    the gateway and the embedded server after the round trip start without COFFER_ROOT_*."""
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("migrating under a long passphrase\n")
    pass_args = ["--root-passphrase-file", str(passphrase)]
    source = factory(with_root_env=False, extra_args=pass_args)
    source.access_key, source.secret_key = read_credentials(source.data_dir)
    source.register_secrets()
    s3 = source.client()
    bucket = unique_bucket_name("mig-pass")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="default", Body=os.urandom(10_000))
    s3.put_object(Bucket=bucket, Key="kms", Body=os.urandom(10_000),
                  ServerSideEncryption="aws:kms")
    expected = snapshot(s3, [bucket])
    source.stop()

    database_url = cluster.create_database()
    database = database_url.rsplit("/", 1)[1]
    blobs_url = upstream.blobs_url(upstream.bucket(), "pass")
    out = run_migrate(["--from", str(source.data_dir), "--to-meta", database_url,
                       "--to-blobs", blobs_url, *pass_args], upstream)
    assert "shared with the gateways" in out.stderr, out.stderr
    salt = cluster.psql("SELECT value FROM gateway_settings WHERE name = 'root-salt'", database)
    assert salt.strip() == (source.data_dir / "root.salt").read_text().strip()

    gateway = factory(with_root_env=False, start=False,
                      extra_args=["--meta", database_url, "--blobs", blobs_url, *pass_args],
                      extra_env=upstream.env())
    gateway.start()
    assert read_credentials(gateway.data_dir) == (source.access_key, source.secret_key)
    gateway.access_key, gateway.secret_key = source.access_key, source.secret_key
    assert snapshot(gateway.client(), [bucket]) == expected
    gateway.stop()

    back_dir = factory.base / f"back-{uuid.uuid4().hex[:6]}"
    back_dir.mkdir(mode=0o700)
    run_migrate(["--from-meta", database_url, "--from-blobs", blobs_url, "--to", str(back_dir),
                 *pass_args], upstream)
    assert (back_dir / "root.salt").read_text() == (source.data_dir / "root.salt").read_text()
    assert not (back_dir / "root.key").exists()
    assert read_credentials(back_dir) == (source.access_key, source.secret_key)
    embedded = factory(with_root_env=False, start=False, extra_args=pass_args)
    embedded.data_dir = back_dir
    embedded.start()
    embedded.access_key, embedded.secret_key = source.access_key, source.secret_key
    assert snapshot(embedded.client(), [bucket]) == expected
    embedded.stop()
