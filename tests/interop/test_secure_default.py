"""Secure by default (issue 18): objects that name no encryption are sealed, the data dir is
private, and the health probes answer without credentials.

- Writes through boto3, oss2, the aws CLI, s3cmd and rclone with no encryption header or option
  (single PUT, multipart, CopyObject) are sealed with the service key: HEAD says AES256 in each
  dialect, and no window of any body is found in any file under the data dir. (s3cmd and
  rclone have tests of their own: test_s3cmd.py, test_rclone.py.)
- A bucket whose owner opted out (`SSEAlgorithm` `none`) stores plaintext and says nothing on
  HEAD; the same on-disk scan finds its bytes (the scan's positive control).
- `coffer sse status` lists plaintext versions; `coffer sse rewrap --seal-plaintext` seals
  them in place (bodies, ETags, version ids, metadata, last-modified unchanged; bytes gone
  from disk); a second run seals nothing.
- The data dir is 0700, every directory in it 0700, every file 0600.
- `/health/live` and `/health/ready` answer unauthenticated; `ready` turns 503 while the KMS
  keystore is missing; a signed request to a bucket named `health` is still S3.
"""

from __future__ import annotations

import json
import random
import stat
from pathlib import Path

import oss2
import pytest
import requests

from oss_support import oss2_bucket
from support import (
    AwsCli,
    Rclone,
    S3cmd,
    find_in_files,
    free_port,
    kms_client,
    opt_out_of_encryption,
    run_coffer,
    unique_bucket_name,
    windows,
)

MiB = 1 << 20


def marker(seed: int, n: int = MiB) -> bytes:
    return random.Random(seed).randbytes(n)


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def needles(name: str, body: bytes) -> dict[str, bytes]:
    return {f"{name}[{i}]": w for i, w in enumerate(windows(body))}


def aws_cli(srv, tmp_path: Path) -> AwsCli:
    config = tmp_path / "awscli"
    config.mkdir(exist_ok=True)
    return AwsCli(srv.endpoint, srv.access_key, srv.secret_key, config)


# --------------------------------------------------------------------------- sealed by default


def test_every_client_write_is_sealed_by_default(make_server, tmp_path):
    srv = make_server()
    c = srv.client(checksum="when_required")
    bucket, plain_bucket = unique_bucket_name("sealed"), unique_bucket_name("optout")
    c.create_bucket(Bucket=bucket)
    c.create_bucket(Bucket=plain_bucket)
    opt_out_of_encryption(c, plain_bucket)
    rule = c.get_bucket_encryption(Bucket=plain_bucket)["ServerSideEncryptionConfiguration"]
    assert rule["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "none"
    seed = random.SystemRandom().randrange(1 << 62)
    bodies = {name: marker(seed + i) for i, name in enumerate(
        ["boto3-put", "boto3-mp", "oss2-put", "oss2-mp", "cli-cp", "cli-mp", "s3cmd-put", "s3cmd-mp",
         "rclone-put", "rclone-mp", "copy", "control"])}

    # boto3: a single PUT and a multipart upload, without any encryption parameter.
    r = c.put_object(Bucket=bucket, Key="boto3-put", Body=bodies["boto3-put"])
    assert r["ServerSideEncryption"] == "AES256"
    up = c.create_multipart_upload(Bucket=bucket, Key="boto3-mp")
    assert up["ServerSideEncryption"] == "AES256"
    part1 = bytearray(marker(seed + 100, 5 * MiB))
    part1[777_777:777_777 + MiB] = bodies["boto3-mp"]
    parts = []
    for n, body in enumerate([bytes(part1), bodies["boto3-mp"]], start=1):
        p = c.upload_part(Bucket=bucket, Key="boto3-mp", UploadId=up["UploadId"], PartNumber=n, Body=body)
        assert p["ServerSideEncryption"] == "AES256"
        parts.append({"PartNumber": n, "ETag": p["ETag"]})
    c.complete_multipart_upload(Bucket=bucket, Key="boto3-mp", UploadId=up["UploadId"],
                                MultipartUpload={"Parts": parts})

    # oss2 (the OSS dialect): a PUT and a multipart upload.
    ob = oss2_bucket(srv, bucket, "v4")
    r = ob.put_object("oss2-put", bodies["oss2-put"])
    assert r.headers.get("x-oss-server-side-encryption") == "AES256", dict(r.headers)
    init = ob.init_multipart_upload("oss2-mp")
    oparts = []
    for n, body in enumerate([marker(seed + 101, 5 * MiB), bodies["oss2-mp"]], start=1):
        res = ob.upload_part("oss2-mp", init.upload_id, n, body)
        oparts.append(oss2.models.PartInfo(n, res.etag))
    ob.complete_multipart_upload("oss2-mp", init.upload_id, oparts)
    head = ob.head_object("oss2-mp")
    assert head.headers.get("x-oss-server-side-encryption") == "AES256", dict(head.headers)

    # The aws CLI: `s3 cp` of a small file and of one large enough for multipart.
    aws = aws_cli(srv, tmp_path)
    small = tmp_path / "small.bin"
    small.write_bytes(bodies["cli-cp"])
    aws("s3", "cp", str(small), f"s3://{bucket}/cli-cp")
    large = tmp_path / "large.bin"
    large.write_bytes(marker(seed + 102, 9 * MiB) + bodies["cli-mp"])
    aws("s3", "cp", str(large), f"s3://{bucket}/cli-mp")

    # s3cmd and rclone, unmodified and with no encryption option: a PUT and a multipart upload.
    tools = tmp_path / "tools"
    tools.mkdir()
    s3cmd = S3cmd(srv.endpoint, srv.access_key, srv.secret_key, tools)
    rclone = Rclone(srv.endpoint, srv.access_key, srv.secret_key, tools)
    for tool, put in [("s3cmd", lambda src, key: s3cmd("put", "--multipart-chunk-size-mb=5", str(src),
                                                       f"s3://{bucket}/{key}")),
                      ("rclone", lambda src, key: rclone("copyto", "--s3-upload-cutoff=5M",
                                                         "--s3-chunk-size=5M", str(src),
                                                         f"{Rclone.REMOTE}:{bucket}/{key}"))]:
        small = tmp_path / f"{tool}-small.bin"
        small.write_bytes(bodies[f"{tool}-put"])
        put(small, f"{tool}-put")
        large = tmp_path / f"{tool}-large.bin"
        large.write_bytes(marker(seed + 103, 6 * MiB) + bodies[f"{tool}-mp"])
        put(large, f"{tool}-mp")
        assert c.head_object(Bucket=bucket, Key=f"{tool}-mp")["ETag"].endswith('-2"'), (
            f"{tool} did not upload {tool}-mp in two parts")
    for key in ["cli-cp", "cli-mp", "boto3-put", "boto3-mp", "oss2-put", "oss2-mp", "s3cmd-put",
                "s3cmd-mp", "rclone-put", "rclone-mp"]:
        head = aws.json("s3api", "head-object", "--bucket", bucket, "--key", key)
        assert head.get("ServerSideEncryption") == "AES256", (key, head)

    # A plaintext object (opted-out bucket) copied into a bucket without a rule is sealed.
    c.put_object(Bucket=plain_bucket, Key="copy-source", Body=bodies["copy"])
    plain_head = c.head_object(Bucket=plain_bucket, Key="copy-source")
    assert "ServerSideEncryption" not in plain_head, "an opted-out bucket stores plaintext"
    r = c.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": plain_bucket, "Key": "copy-source"})
    assert r["ServerSideEncryption"] == "AES256"
    c.delete_object(Bucket=plain_bucket, Key="copy-source")
    # The positive control: an opted-out object, plaintext on disk.
    c.put_object(Bucket=plain_bucket, Key="control", Body=bodies["control"])
    assert "ServerSideEncryption" not in c.head_object(Bucket=plain_bucket, Key="control")
    assert "x-oss-server-side-encryption" not in oss2_bucket(srv, plain_bucket, "v4").head_object(
        "control").headers

    # Every body reads back.
    assert c.get_object(Bucket=bucket, Key="boto3-put")["Body"].read() == bodies["boto3-put"]
    assert c.get_object(Bucket=bucket, Key="copy")["Body"].read() == bodies["copy"]
    assert ob.get_object("oss2-put").read() == bodies["oss2-put"]

    srv.stop()
    files = all_files(srv.data_dir)
    sealed = {}
    for name, body in bodies.items():
        if name != "control":
            sealed |= needles(name, body)
    hits = find_in_files(files, sealed)
    assert hits == [], f"plaintext found on disk: {hits}"
    control_hits = find_in_files(files, needles("control", bodies["control"]))
    assert len({h.split(" in ")[0] for h in control_hits}) == len(windows(bodies["control"])), (
        f"the scan did not find the opted-out control object: {control_hits}"
    )


def server_default_rule(c, bucket: str) -> tuple[str, str | None, bool]:
    """GetBucketEncryption's one rule: algorithm, KMS key id, bucket key."""
    rules = c.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert len(rules) == 1, rules
    by_default = rules[0]["ApplyServerSideEncryptionByDefault"]
    return (by_default["SSEAlgorithm"], by_default.get("KMSMasterKeyID"),
            rules[0].get("BucketKeyEnabled", False))


def test_opt_out_is_explicit_and_deletable(make_server):
    srv = make_server()
    c = srv.client(checksum="when_required")
    bucket = unique_bucket_name("optout")
    c.create_bucket(Bucket=bucket)
    # No rule: GET answers the server's default, as AWS has since 2023, and objects are
    # sealed by it.
    assert server_default_rule(c, bucket) == ("AES256", None, False)
    assert c.put_object(Bucket=bucket, Key="a", Body=b"x")["ServerSideEncryption"] == "AES256"
    opt_out_of_encryption(c, bucket)
    assert "ServerSideEncryption" not in c.put_object(Bucket=bucket, Key="b", Body=b"x")
    # A request that asks for encryption still gets it in an opted-out bucket.
    r = c.put_object(Bucket=bucket, Key="c", Body=b"x", ServerSideEncryption="AES256")
    assert r["ServerSideEncryption"] == "AES256"
    # Deleting the rule returns the bucket to the server's default, as on AWS.
    c.delete_bucket_encryption(Bucket=bucket)
    assert server_default_rule(c, bucket) == ("AES256", None, False)
    assert c.put_object(Bucket=bucket, Key="d", Body=b"x")["ServerSideEncryption"] == "AES256"
    # "none" is the only spelling; no other value means plaintext.
    with pytest.raises(c.exceptions.ClientError):
        c.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "NONE"}}]
            },
        )
    # Copying a default-sealed object onto itself unchanged is illegal, as on S3.
    with pytest.raises(c.exceptions.ClientError) as ei:
        c.copy_object(Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "d"})
    assert ei.value.response["Error"]["Code"] == "InvalidRequest"


@pytest.mark.parametrize("default, header, extra", [
    ("SM4", "SM4", None),
    ("aws:kms", "aws:kms", "SSEKMSKeyId"),
])
def test_default_sse_option(make_server, default, header, extra):
    srv = make_server(extra_args=["--default-sse", default])
    c = srv.client(checksum="when_required")
    bucket = unique_bucket_name("default")
    c.create_bucket(Bucket=bucket)
    assert server_default_rule(c, bucket)[0] == header
    r = c.put_object(Bucket=bucket, Key="k", Body=b"sealed by the server default")
    h = c.head_object(Bucket=bucket, Key="k")
    assert h["ResponseMetadata"]["HTTPHeaders"]["x-amz-server-side-encryption"] == header
    if extra:
        assert h[extra], h
    assert r["ETag"] == h["ETag"]
    assert c.get_object(Bucket=bucket, Key="k")["Body"].read() == b"sealed by the server default"


def test_default_sse_names_a_kms_key(make_server):
    srv = make_server()
    key_id = kms_client(srv).create_key(Description="default")["KeyMetadata"]["KeyId"]
    srv.stop()
    srv.extra_args += ["--default-sse", f"aws:kms:{key_id}"]
    srv.start()
    c = srv.client(checksum="when_required")
    bucket = unique_bucket_name("default-key")
    c.create_bucket(Bucket=bucket)
    c.put_object(Bucket=bucket, Key="k", Body=b"x")
    h = c.head_object(Bucket=bucket, Key="k")
    assert h["ServerSideEncryption"] == "aws:kms"
    assert h["SSEKMSKeyId"].endswith(key_id), h


def test_plaintext_is_not_a_server_default(make_server):
    srv = make_server(start=False, extra_args=["--default-sse", "none"])
    with pytest.raises(BaseException):
        srv.start()
    assert "per-bucket opt-out" in srv.log_text()


# --------------------------------------------------------------------------- sealing in place


def coffer(srv, *args: str):
    return run_coffer(list(args), srv.endpoint, srv.access_key, srv.secret_key)


def test_seal_plaintext_in_place(make_server):
    srv = make_server()
    c = srv.client(checksum="when_required")
    bucket = unique_bucket_name("legacy")
    c.create_bucket(Bucket=bucket)
    c.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    opt_out_of_encryption(c, bucket)  # how a test makes "objects written before the change"
    seed = random.SystemRandom().randrange(1 << 62)
    old_v1, old_v2, single, part2 = (marker(seed + i) for i in range(4))
    c.put_object(Bucket=bucket, Key="versioned", Body=old_v1)
    c.put_object(Bucket=bucket, Key="versioned", Body=old_v2, Metadata={"colour": "blue"},
                 ContentType="text/x-test")
    c.put_object(Bucket=bucket, Key="single", Body=single, Tagging="t=v")
    c.put_object(Bucket=bucket, Key="empty", Body=b"")
    up = c.create_multipart_upload(Bucket=bucket, Key="multi", ChecksumAlgorithm="CRC32")
    part1 = marker(seed + 10, 5 * MiB)
    parts = []
    for n, body in enumerate([part1, part2], start=1):
        p = c.upload_part(Bucket=bucket, Key="multi", UploadId=up["UploadId"], PartNumber=n,
                          Body=body, ChecksumAlgorithm="CRC32")
        parts.append({"PartNumber": n, "ETag": p["ETag"], "ChecksumCRC32": p["ChecksumCRC32"]})
    c.complete_multipart_upload(Bucket=bucket, Key="multi", UploadId=up["UploadId"],
                                MultipartUpload={"Parts": parts})
    # A sealed object beside them (the bucket's owner may still ask for encryption).
    c.put_object(Bucket=bucket, Key="sealed", Body=b"already", ServerSideEncryption="AES256")
    bodies = {"single": single, "multi": part1 + part2, "empty": b""}

    versions = c.list_object_versions(Bucket=bucket)["Versions"]
    before = {}
    for v in versions:
        h = c.head_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"], ChecksumMode="ENABLED")
        h.pop("ResponseMetadata")
        before[(v["Key"], v["VersionId"])] = h
    status = json.loads(coffer(srv, "sse", "status").stdout)
    assert status["default_sse"] == "AES256"
    assert status["opted_out_buckets"] == [bucket]
    listed = {(o["bucket"], o["key"], o["version_id"], o["size"]) for o in status["plaintext_objects"]}
    expected = {(bucket, v["Key"], v["VersionId"], v["Size"]) for v in versions if v["Key"] != "sealed"}
    assert listed == expected, status
    assert len(listed) == 5

    out = json.loads(coffer(srv, "sse", "rewrap", "--seal-plaintext").stdout)
    report = out["seal_plaintext"]
    assert report["versions_sealed"] == 5, out
    assert report["versions_changed_meanwhile"] == 0 and report["versions_damaged"] == 0, out
    assert json.loads(coffer(srv, "sse", "status").stdout)["plaintext_objects"] == []

    # What clients see is unchanged, but for the encryption it now reports.
    for (key, version_id), old in before.items():
        h = c.head_object(Bucket=bucket, Key=key, VersionId=version_id, ChecksumMode="ENABLED")
        h.pop("ResponseMetadata")
        assert h.pop("ServerSideEncryption") == "AES256", (key, h)
        old.pop("ServerSideEncryption", None)
        assert h == old, (key, version_id)
    (v1,) = (v for v in versions if v["Key"] == "versioned" and not v["IsLatest"])
    assert c.get_object(Bucket=bucket, Key="versioned", VersionId=v1["VersionId"])["Body"].read() == old_v1
    assert c.get_object(Bucket=bucket, Key="versioned")["Body"].read() == old_v2
    for key, body in bodies.items():
        got = c.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == body, key
    ranged = c.get_object(Bucket=bucket, Key="multi", Range=f"bytes={5 * MiB - 10}-{5 * MiB + 9}")
    assert ranged["Body"].read() == (part1 + part2)[5 * MiB - 10:5 * MiB + 10]
    assert c.get_object_tagging(Bucket=bucket, Key="single")["TagSet"] == [{"Key": "t", "Value": "v"}]
    part = c.get_object(Bucket=bucket, Key="multi", PartNumber=2)
    assert part["Body"].read() == part2
    assert c.list_object_versions(Bucket=bucket)["Versions"] == versions

    # Idempotent: nothing left to seal.
    again = json.loads(coffer(srv, "sse", "rewrap", "--seal-plaintext").stdout)["seal_plaintext"]
    assert again["versions_sealed"] == 0 and again["versions_scanned"] == 6, again

    # The opt-out still holds for new writes; the old bytes are gone from disk.
    assert "ServerSideEncryption" not in c.put_object(Bucket=bucket, Key="new", Body=b"y")
    srv.stop()
    hits = find_in_files(all_files(srv.data_dir), {
        **needles("v1", old_v1), **needles("v2", old_v2), **needles("single", single),
        **needles("part2", part2),
    })
    assert hits == [], f"plaintext left on disk after sealing: {hits}"


# --------------------------------------------------------------------------- file modes


def test_data_dir_is_private(make_server, tmp_path):
    # Generated root credentials, a self-signed certificate, a KMS key and its audit log, an
    # object, an upload in progress: every kind of file Coffer writes.
    srv = make_server(with_root_env=False, start=False,
                      extra_args=["--tls-listen", f"127.0.0.1:{free_port()}"])
    srv.start()
    creds = (srv.data_dir / "credentials").read_text()
    access = creds.split("aws_access_key_id")[1].split("=")[1].split()[0]
    secret = creds.split("aws_secret_access_key")[1].split("=")[1].split()[0]
    srv.access_key, srv.secret_key = access, secret
    c = srv.client(checksum="when_required")
    bucket = unique_bucket_name("modes")
    c.create_bucket(Bucket=bucket)
    # Bodies above 64 KiB, so that they are blob files (smaller ones live in meta.redb).
    c.put_object(Bucket=bucket, Key="k", Body=b"x" * 100_000)
    up = c.create_multipart_upload(Bucket=bucket, Key="mp")
    c.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"y" * 100_000)
    kms_client(srv).create_key(Description="modes")
    srv.stop()

    assert stat.S_IMODE(srv.data_dir.stat().st_mode) == 0o700
    wrong, files = [], 0
    for path in srv.data_dir.rglob("*"):
        mode = stat.S_IMODE(path.lstat().st_mode)
        want = 0o700 if path.is_dir() else 0o600
        files += path.is_file()
        if mode != want:
            wrong.append(f"{path.relative_to(srv.data_dir)}: {mode:o}")
    assert wrong == [], f"not private: {wrong}"
    names = {p.name for p in srv.data_dir.rglob("*")}
    for expected in ["meta.redb", "credentials", "root.key", "service-keys.json", "keystore.json",
                     "audit.log"]:
        assert expected in names, f"{expected} missing from {sorted(names)}"
    assert files >= 10


def test_an_existing_wide_data_dir_is_narrowed(make_server):
    srv = make_server()
    srv.stop()
    srv.data_dir.chmod(0o755)
    srv.start()
    assert stat.S_IMODE(srv.data_dir.stat().st_mode) == 0o700
    assert "narrowed it to owner-only" in srv.log_text()


# --------------------------------------------------------------------------- health


def test_health_probes(make_server):
    srv = make_server()
    live = requests.get(f"{srv.endpoint}/health/live", timeout=10)
    assert live.status_code == 200 and live.json() == {"status": "live"}
    ready = requests.get(f"{srv.endpoint}/health/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.headers["content-type"] == "application/json"
    assert ready.json() == {"status": "ready",
                            "checks": {"store": "ok", "blobs": "ok", "keystore": "ok", "kms": "ok"}}
    head = requests.head(f"{srv.endpoint}/health/ready", timeout=10)
    assert head.status_code == 200 and head.content == b""

    # The KMS keystore gone: not ready, naming the part (never why); back: ready again.
    keystore = srv.data_dir / "kms" / "keystore.json"
    kms_client(srv).create_key(Description="health")
    aside = keystore.with_name("keystore.aside")
    keystore.rename(aside)
    try:
        down = requests.get(f"{srv.endpoint}/health/ready", timeout=10)
        assert down.status_code == 503, down.text
        assert down.json() == {"status": "not ready",
                               "checks": {"store": "ok", "blobs": "ok", "keystore": "ok", "kms": "failed"}}
        assert "keystore" not in down.text.replace('"keystore"', "")
        assert requests.get(f"{srv.endpoint}/health/live", timeout=10).status_code == 200
    finally:
        aside.rename(keystore)
    assert requests.get(f"{srv.endpoint}/health/ready", timeout=10).status_code == 200

    # Anything but the exact unsigned probe is S3, which refuses anonymous requests.
    for url in ["/health/live?x=1", "/health/live/", "/health/status"]:
        assert requests.get(f"{srv.endpoint}{url}", timeout=10).status_code == 403, url

    # A signed request reaches the bucket `health` and its object `live`.
    c = srv.client(checksum="when_required")
    c.create_bucket(Bucket="health")
    c.put_object(Bucket="health", Key="live", Body=b"an object, not a probe")
    c.put_object(Bucket="health", Key="ready", Body=b"nor this")
    assert c.get_object(Bucket="health", Key="live")["Body"].read() == b"an object, not a probe"
    assert c.head_object(Bucket="health", Key="ready")["ContentLength"] == 8
    assert [o["Key"] for o in c.list_objects_v2(Bucket="health")["Contents"]] == ["live", "ready"]
    # ...and the probes still answer as probes.
    assert requests.get(f"{srv.endpoint}/health/live", timeout=10).json() == {"status": "live"}
    assert "request" in srv.log_text() and "HealthReady" in srv.log_text()
