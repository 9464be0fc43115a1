"""Key backup and restore (`coffer kms backup` / `coffer kms restore`, docs/kms.md "Backup and
restore"): the embedded keystore and the service key ring sealed to an offline RSA recovery key.

Must show: backup → wipe the keystore → restore ⇒ every object readable (SSE-KMS under a rotated
key, with and without bucket keys, and SSE-S3), key ids kept and never handed out again; a grep of
the data dir, the logs, the audit log and the backup file finds no key material (the data keys
the KMS released through GenerateDataKey, the root key).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import boto3
from botocore.config import Config
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from support import REGION, SECRETS, _clean_env, coffer_bin, find_in_files, unique_bucket_name


def recovery_key(directory: Path) -> tuple[Path, Path]:
    """An RSA-3072 recovery key pair as openssl writes them (PKCS#8 and SPKI PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    private = directory / "recovery.pem"
    public = directory / "recovery.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def coffer_kms(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(coffer_bin()), "kms", *args], env=_clean_env(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, f"coffer kms {args[0]} exited {proc.returncode}: {proc.stderr}"
    return proc


def kms_client(srv):
    return boto3.session.Session(
        aws_access_key_id=srv.access_key, aws_secret_access_key=srv.secret_key, region_name=REGION,
    ).client("kms", endpoint_url=srv.endpoint, config=Config(retries={"max_attempts": 1}))


def test_backup_wipe_restore_reads_every_object(make_server, tmp_path):
    srv = make_server()
    s3, kms = srv.client(), kms_client(srv)
    key_id = kms.create_key(Description="backed up")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/backed-up", TargetKeyId=key_id)
    bucket = unique_bucket_name("backup")
    s3.create_bucket(Bucket=bucket)
    objects = {}

    def put(name, **sse):
        body = os.urandom(200_000)
        s3.put_object(Bucket=bucket, Key=name, Body=body, **sse)
        objects[name] = body

    put("sse-s3")
    put("kms-v1", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    put("kms-bucket-key", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id,
        BucketKeyEnabled=True)
    kms.rotate_key_on_demand(KeyId=key_id)
    put("kms-v2", ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/backed-up")
    put("kms-default", ServerSideEncryption="aws:kms")
    needles = {}
    for n in range(3):
        plaintext = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")["Plaintext"]
        SECRETS.add(f"backup test data key {n}", plaintext)
        needles[f"data key {n}"] = plaintext
        needles[f"data key {n} (hex)"] = plaintext.hex().encode()
    key_ids_before = {k["KeyId"] for k in kms.list_keys()["Keys"]}

    private, public = recovery_key(tmp_path)
    backup_file = tmp_path / "keys.ckb"
    made = coffer_kms("backup", "--data-dir", str(srv.data_dir), "--recipient", str(public),
                      "--out", str(backup_file))
    assert json.loads(made.stdout)["keys"] == len(key_ids_before)
    # The file is never replaced.
    again = coffer_kms("backup", "--data-dir", str(srv.data_dir), "--recipient", str(public),
                       "--out", str(backup_file), check=False)
    assert again.returncode != 0 and "keys.ckb" in again.stderr

    # Not while a server holds the data dir.
    running = coffer_kms("restore", "--data-dir", str(srv.data_dir), "--identity", str(private),
                         "--force", str(backup_file), check=False)
    assert running.returncode != 0 and "stop it before restoring" in running.stderr, running.stderr

    srv.stop()
    root_key = bytes.fromhex((srv.data_dir / "root.key").read_text().strip()[-64:])
    needles["root key"] = root_key
    (srv.data_dir / "kms" / "keystore.json").unlink()
    (srv.data_dir / "service-keys.json").unlink()

    restored = coffer_kms("restore", "--data-dir", str(srv.data_dir), "--identity", str(private),
                          str(backup_file))
    summary = json.loads(restored.stdout)
    assert summary["keys"] == len(key_ids_before) and summary["service_key_versions"] >= 1
    # Now the keystore is not empty: a second restore needs --force.
    refused = coffer_kms("restore", "--data-dir", str(srv.data_dir), "--identity", str(private),
                         str(backup_file), check=False)
    assert refused.returncode != 0 and "--force" in refused.stderr
    # Another identity does not open it.
    (tmp_path / "other").mkdir()
    other_private, _ = recovery_key(tmp_path / "other")
    wrong = coffer_kms("restore", "--data-dir", str(srv.data_dir), "--identity",
                       str(other_private), "--force", str(backup_file), check=False)
    assert wrong.returncode != 0 and "identity" in wrong.stderr

    srv.start()
    s3, kms = srv.client(), kms_client(srv)
    for name, body in objects.items():
        assert s3.get_object(Bucket=bucket, Key=name)["Body"].read() == body, name
    assert kms.describe_key(KeyId="alias/backed-up")["KeyMetadata"]["KeyId"] == key_id
    assert {k["KeyId"] for k in kms.list_keys()["Keys"]} == key_ids_before
    new_id = kms.create_key(Description="after restore")["KeyMetadata"]["KeyId"]
    assert new_id not in key_ids_before

    srv.stop()
    srv.save_audit_log()
    files = [p for p in srv.data_dir.rglob("*") if p.is_file() and p.name != "root.key"]
    files += [p for p in srv.log_dir.rglob("*") if p.is_file()]
    files.append(backup_file)
    assert find_in_files(files, needles) == []


def test_rewrap_moves_every_object_to_the_newest_key_version(make_server):
    """`coffer sse rewrap --kms-key KEY`: after a rotation, every object under the old version
    (data keys and bucket keys, two buckets) is moved to the newest; bodies unchanged; a pass
    refused half-way (key disabled) is simply run again."""
    from support import run_coffer

    srv = make_server()
    s3, kms = srv.client(), kms_client(srv)
    key_id = kms.create_key(Description="rewrapped")["KeyMetadata"]["KeyId"]
    objects = {}
    buckets = [unique_bucket_name("rewrap"), unique_bucket_name("rewrap")]
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket)
        for n in range(3):
            body = os.urandom(70_000 + n)
            s3.put_object(Bucket=bucket, Key=f"obj-{n}", Body=body, ServerSideEncryption="aws:kms",
                          SSEKMSKeyId=key_id, BucketKeyEnabled=n == 2)
            objects[(bucket, f"obj-{n}")] = body
    kms.rotate_key_on_demand(KeyId=key_id)

    def usage_versions():
        proc = run_coffer(["kms", "usage", key_id], srv.endpoint, srv.access_key, srv.secret_key)
        return {v["key_version"]: v["objects"] for v in json.loads(proc.stdout)["key_versions"]}

    assert usage_versions() == {1: 6}

    kms.disable_key(KeyId=key_id)
    refused = run_coffer(["sse", "rewrap", "--kms-key", key_id], srv.endpoint, srv.access_key,
                         srv.secret_key, check=False)
    assert refused.returncode != 0 and "run the command again" in refused.stderr
    kms.enable_key(KeyId=key_id)

    done = run_coffer(["sse", "rewrap", "--kms-key", key_id], srv.endpoint, srv.access_key,
                      srv.secret_key)
    report = json.loads(done.stdout)
    assert report["objects_rewrapped"] == 6 and report["key_version"] == 2, report
    assert usage_versions() == {2: 6}
    for (bucket, name), body in objects.items():
        got = s3.get_object(Bucket=bucket, Key=name)
        assert got["Body"].read() == body, name
        assert got["SSEKMSKeyId"].endswith(key_id)
    again = run_coffer(["sse", "rewrap", "--kms-key", key_id], srv.endpoint, srv.access_key,
                       srv.secret_key)
    assert json.loads(again.stdout)["objects_rewrapped"] == 0
