"""Object lock and WORM enforced on objects, through real clients.

S3 object lock (boto3, the aws CLI): a bucket created with ObjectLockEnabledForBucket gives
new versions its default retention; a PutObject, copy or multipart upload may name its own
retention and legal hold; GOVERNANCE yields only to x-amz-bypass-governance-retention,
COMPLIANCE and a legal hold to nothing; retention can be extended but not shortened; the
lock survives a restart and sits on SSE-encrypted versions alike. OSS WORM (oss2): once a
retention policy is in force, objects younger than its period can be neither overwritten nor
deleted, in either dialect (`FileImmutable`, 409).

Locked versions cannot be removed, so these tests run on a server of their own whose data
dir is thrown away at the end.
"""

from __future__ import annotations

import datetime
import hashlib
import time

import oss2
import pytest

from oss_support import expect_oss2_error, oss2_bucket, unique_oss_bucket
from support import AwsCli, ServerFactory, expect_error, unique_bucket_name

E = oss2.exceptions
UTC = datetime.timezone.utc
DENIED = ("AccessDenied", 403)


@pytest.fixture(scope="module")
def lock_server(tmp_path_factory):
    factory = ServerFactory(tmp_path_factory.mktemp("lock-server"))
    srv = factory()
    yield srv
    factory.stop_all(remove_data=True)


@pytest.fixture(scope="module")
def ls3(lock_server):
    return lock_server.client()


@pytest.fixture
def lock_bucket(ls3):
    name = unique_bucket_name("olock")
    ls3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def later(seconds: float) -> datetime.datetime:
    return (datetime.datetime.now(UTC) + datetime.timedelta(seconds=seconds)).replace(microsecond=0)


def lock_of(s3, bucket, key, version_id):
    head = s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)
    return (head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate"),
            head.get("ObjectLockLegalHoldStatus"))


def test_default_retention_applies_to_new_versions(ls3, lock_bucket):
    ls3.put_object_lock_configuration(Bucket=lock_bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 2}}})
    before = datetime.datetime.now(UTC)
    vid = ls3.put_object(Bucket=lock_bucket, Key="d", Body=b"default")["VersionId"]
    mode, until, hold = lock_of(ls3, lock_bucket, "d", vid)
    assert (mode, hold) == ("GOVERNANCE", "OFF")
    assert before + datetime.timedelta(days=2) - datetime.timedelta(seconds=5) <= until
    assert until <= datetime.datetime.now(UTC) + datetime.timedelta(days=2, seconds=5)
    got = ls3.get_object_retention(Bucket=lock_bucket, Key="d", VersionId=vid)["Retention"]
    assert got == {"Mode": "GOVERNANCE", "RetainUntilDate": until}
    # A delete without a version id only adds a marker; the version stays.
    marker = ls3.delete_object(Bucket=lock_bucket, Key="d")
    assert marker["DeleteMarker"] is True
    expect_error(ls3.delete_object, *DENIED, Bucket=lock_bucket, Key="d", VersionId=vid)
    assert ls3.get_object(Bucket=lock_bucket, Key="d", VersionId=vid)["Body"].read() == b"default"
    # The marker itself is no lock's business.
    ls3.delete_object(Bucket=lock_bucket, Key="d", VersionId=marker["VersionId"])
    # A multipart upload and a copy get the default too.
    up = ls3.create_multipart_upload(Bucket=lock_bucket, Key="mp")
    etag = ls3.upload_part(Bucket=lock_bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1,
                           Body=b"part")["ETag"]
    mp = ls3.complete_multipart_upload(Bucket=lock_bucket, Key="mp", UploadId=up["UploadId"],
                                       MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert lock_of(ls3, lock_bucket, "mp", mp["VersionId"])[0] == "GOVERNANCE"
    cp = ls3.copy_object(Bucket=lock_bucket, Key="cp", CopySource={"Bucket": lock_bucket, "Key": "mp"})
    assert lock_of(ls3, lock_bucket, "cp", cp["VersionId"])[0] == "GOVERNANCE"


def test_governance_yields_only_to_bypass(ls3, lock_bucket):
    until = later(3600)
    vid = ls3.put_object(Bucket=lock_bucket, Key="g", Body=b"gov", ObjectLockMode="GOVERNANCE",
                         ObjectLockRetainUntilDate=until)["VersionId"]
    assert lock_of(ls3, lock_bucket, "g", vid) == ("GOVERNANCE", until, "OFF")
    expect_error(ls3.delete_object, *DENIED, Bucket=lock_bucket, Key="g", VersionId=vid)
    result = ls3.delete_objects(Bucket=lock_bucket, Delete={"Objects": [{"Key": "g", "VersionId": vid}]})
    assert [(e["Code"], e["VersionId"]) for e in result["Errors"]] == [("AccessDenied", vid)]
    # Shortening needs the bypass too; extending does not.
    expect_error(ls3.put_object_retention, *DENIED, Bucket=lock_bucket, Key="g", VersionId=vid,
                 Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later(60)})
    ls3.put_object_retention(Bucket=lock_bucket, Key="g", VersionId=vid,
                             Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later(7200)})
    ls3.put_object_retention(Bucket=lock_bucket, Key="g", VersionId=vid, BypassGovernanceRetention=True,
                             Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later(1800)})
    ls3.delete_object(Bucket=lock_bucket, Key="g", VersionId=vid, BypassGovernanceRetention=True)
    expect_error(ls3.head_object, None, 404, Bucket=lock_bucket, Key="g", VersionId=vid)


def test_compliance_is_neither_deletable_nor_shortenable_before_expiry(ls3, lock_bucket):
    until = later(4)
    vid = ls3.put_object(Bucket=lock_bucket, Key="c", Body=b"comp", ObjectLockMode="COMPLIANCE",
                         ObjectLockRetainUntilDate=until)["VersionId"]
    for bypass in (False, True):
        expect_error(ls3.delete_object, *DENIED, Bucket=lock_bucket, Key="c", VersionId=vid,
                     BypassGovernanceRetention=bypass)
        expect_error(ls3.put_object_retention, *DENIED, Bucket=lock_bucket, Key="c", VersionId=vid,
                     BypassGovernanceRetention=bypass,
                     Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later(1)})
        expect_error(ls3.put_object_retention, *DENIED, Bucket=lock_bucket, Key="c", VersionId=vid,
                     BypassGovernanceRetention=bypass,
                     Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later(3600)})
    assert lock_of(ls3, lock_bucket, "c", vid)[:2] == ("COMPLIANCE", until)
    # Once the date has passed, the version goes.
    time.sleep(max(0.0, (until - datetime.datetime.now(UTC)).total_seconds()) + 1.2)
    ls3.delete_object(Bucket=lock_bucket, Key="c", VersionId=vid)


def test_legal_hold_blocks_until_off(ls3, lock_bucket):
    vid = ls3.put_object(Bucket=lock_bucket, Key="h", Body=b"hold", ObjectLockLegalHoldStatus="ON")["VersionId"]
    assert ls3.get_object_legal_hold(Bucket=lock_bucket, Key="h", VersionId=vid)["LegalHold"] == {"Status": "ON"}
    assert lock_of(ls3, lock_bucket, "h", vid) == (None, None, "ON")
    expect_error(ls3.get_object_retention, "NoSuchObjectLockConfiguration", 404,
                 Bucket=lock_bucket, Key="h", VersionId=vid)
    expect_error(ls3.delete_object, *DENIED, Bucket=lock_bucket, Key="h", VersionId=vid,
                 BypassGovernanceRetention=True)
    ls3.put_object_legal_hold(Bucket=lock_bucket, Key="h", VersionId=vid, LegalHold={"Status": "OFF"})
    assert ls3.get_object_legal_hold(Bucket=lock_bucket, Key="h", VersionId=vid)["LegalHold"] == {"Status": "OFF"}
    ls3.delete_object(Bucket=lock_bucket, Key="h", VersionId=vid)
    # A legal hold set later, on the current version (no version id named).
    vid = ls3.put_object(Bucket=lock_bucket, Key="h", Body=b"again")["VersionId"]
    ls3.put_object_legal_hold(Bucket=lock_bucket, Key="h", LegalHold={"Status": "ON"})
    expect_error(ls3.delete_object, *DENIED, Bucket=lock_bucket, Key="h", VersionId=vid)


def test_lock_requests_are_checked(lock_server, ls3, lock_bucket):
    plain = unique_bucket_name("plain")
    ls3.create_bucket(Bucket=plain)
    missing = "Bucket is missing Object Lock Configuration"
    err = expect_error(ls3.put_object, "InvalidRequest", 400, Bucket=plain, Key="k", Body=b"x",
                       ObjectLockLegalHoldStatus="ON")
    assert err.response["Error"]["Message"] == missing
    ls3.put_object(Bucket=plain, Key="k", Body=b"x")
    expect_error(ls3.get_object_retention, "InvalidRequest", 400, Bucket=plain, Key="k")
    expect_error(ls3.put_object_legal_hold, "InvalidRequest", 400, Bucket=plain, Key="k",
                 LegalHold={"Status": "ON"})
    # Mode and date both or neither; a date in the future.
    expect_error(ls3.put_object, "InvalidRequest", 400, Bucket=lock_bucket, Key="k", Body=b"x",
                 ObjectLockMode="GOVERNANCE")
    expect_error(ls3.put_object, "InvalidArgument", 400, Bucket=lock_bucket, Key="k", Body=b"x",
                 ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=later(-60))
    expect_error(ls3.put_object_retention, "InvalidArgument", 400, Bucket=lock_bucket, Key="k",
                 Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later(-60)})
    # A locked upload must carry a digest: Content-MD5 or a checksum.
    bare = lock_server.client(checksum="when_required")
    err = expect_error(bare.put_object, "InvalidRequest", 400, Bucket=lock_bucket, Key="k", Body=b"x",
                       ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=later(60))
    assert "Content-MD5 OR x-amz-checksum-" in err.response["Error"]["Message"]
    bare.put_object(Bucket=lock_bucket, Key="k", Body=b"x")  # nothing locks this one
    # A version without retention has none to get.
    expect_error(ls3.get_object_retention, "NoSuchObjectLockConfiguration", 404,
                 Bucket=lock_bucket, Key="k")


def test_explicit_lock_on_multipart_and_copy(ls3, lock_bucket):
    until = later(3600)
    up = ls3.create_multipart_upload(Bucket=lock_bucket, Key="m", ObjectLockMode="COMPLIANCE",
                                     ObjectLockRetainUntilDate=until, ObjectLockLegalHoldStatus="ON")
    etag = ls3.upload_part(Bucket=lock_bucket, Key="m", UploadId=up["UploadId"], PartNumber=1,
                           Body=b"p" * 1000)["ETag"]
    done = ls3.complete_multipart_upload(Bucket=lock_bucket, Key="m", UploadId=up["UploadId"],
                                         MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert lock_of(ls3, lock_bucket, "m", done["VersionId"]) == ("COMPLIANCE", until, "ON")
    # A copy takes its own request's lock, not its source's.
    cp = ls3.copy_object(Bucket=lock_bucket, Key="m2", CopySource={"Bucket": lock_bucket, "Key": "m"},
                         ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)
    assert lock_of(ls3, lock_bucket, "m2", cp["VersionId"]) == ("GOVERNANCE", until, "OFF")
    plain = ls3.copy_object(Bucket=lock_bucket, Key="m3", CopySource={"Bucket": lock_bucket, "Key": "m"})
    assert lock_of(ls3, lock_bucket, "m3", plain["VersionId"]) == (None, None, "OFF")


def test_sse_locked_versions(ls3, lock_bucket):
    until = later(3600)
    vid = ls3.put_object(Bucket=lock_bucket, Key="s", Body=b"secret lock", ServerSideEncryption="AES256",
                         ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)["VersionId"]
    got = ls3.get_object(Bucket=lock_bucket, Key="s", VersionId=vid)
    assert got["ServerSideEncryption"] == "AES256"
    assert (got["ObjectLockMode"], got["ObjectLockRetainUntilDate"]) == ("GOVERNANCE", until)
    assert got["Body"].read() == b"secret lock"
    expect_error(ls3.delete_object, *DENIED, Bucket=lock_bucket, Key="s", VersionId=vid)


def test_retention_survives_a_restart(make_server):
    srv = make_server()
    s3 = srv.client()
    name = unique_bucket_name("olock-restart")
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    until = later(86400)
    vid = s3.put_object(Bucket=name, Key="r", Body=b"kept", ObjectLockMode="COMPLIANCE",
                        ObjectLockRetainUntilDate=until, ObjectLockLegalHoldStatus="ON")["VersionId"]
    srv.restart()
    s3 = srv.client()
    assert lock_of(s3, name, "r", vid) == ("COMPLIANCE", until, "ON")
    expect_error(s3.delete_object, *DENIED, Bucket=name, Key="r", VersionId=vid,
                 BypassGovernanceRetention=True)
    srv.kill()
    srv.start()
    s3 = srv.client()
    expect_error(s3.delete_object, *DENIED, Bucket=name, Key="r", VersionId=vid)
    assert s3.get_object(Bucket=name, Key="r", VersionId=vid)["Body"].read() == b"kept"


def test_awscli_retention_and_legal_hold(lock_server, ls3, lock_bucket, tmp_path):
    aws = AwsCli(lock_server.endpoint, lock_server.access_key, lock_server.secret_key, tmp_path)
    vid = ls3.put_object(Bucket=lock_bucket, Key="cli", Body=b"cli")["VersionId"]
    until = later(3600).strftime("%Y-%m-%dT%H:%M:%SZ")
    aws("s3api", "put-object-retention", "--bucket", lock_bucket, "--key", "cli", "--version-id", vid,
        "--retention", f"Mode=GOVERNANCE,RetainUntilDate={until}")
    got = aws.json("s3api", "get-object-retention", "--bucket", lock_bucket, "--key", "cli")
    assert got["Retention"]["Mode"] == "GOVERNANCE"
    assert got["Retention"]["RetainUntilDate"].startswith(until[:19])
    aws("s3api", "put-object-legal-hold", "--bucket", lock_bucket, "--key", "cli",
        "--legal-hold", "Status=ON")
    got = aws.json("s3api", "get-object-legal-hold", "--bucket", lock_bucket, "--key", "cli",
                   "--version-id", vid)
    assert got == {"LegalHold": {"Status": "ON"}}
    refused = aws("s3api", "delete-object", "--bucket", lock_bucket, "--key", "cli", "--version-id", vid,
                  "--bypass-governance-retention", check=False)
    assert refused.returncode != 0 and "AccessDenied" in refused.stderr


# --------------------------------------------------------------------------- OSS WORM


@pytest.mark.parametrize("lock", [True, False], ids=["locked", "in-progress"])
def test_oss2_worm_protects_objects(lock_server, ls3, lock):
    name = unique_oss_bucket("worm")
    b = oss2_bucket(lock_server, name, "v4")
    b.create_bucket()
    b.put_object("old", b"written before the policy")
    worm_id = b.init_bucket_worm(1).worm_id
    if lock:
        b.complete_bucket_worm(worm_id)
    immutable = (E.ServerError, 409, "FileImmutable")  # oss2 has no class of its own for it
    # Neither deleted nor overwritten, in either dialect and by every write path.
    err = expect_oss2_error(b.delete_object, *immutable, "old")
    assert err.details.get("EC") == "0026-00000005"
    expect_oss2_error(b.put_object, *immutable, "old", b"overwrite")
    expect_oss2_error(b.copy_object, *immutable, name, "old", "old",
                      headers={"x-oss-metadata-directive": "REPLACE"})
    up = b.init_multipart_upload("old").upload_id
    part = b.upload_part("old", up, 1, b"mp")
    expect_oss2_error(b.complete_multipart_upload, *immutable, "old", up,
                      [oss2.models.PartInfo(1, part.etag)])
    b.abort_multipart_upload("old", up)
    expect_error(ls3.delete_object, "FileImmutable", 409, Bucket=name, Key="old")
    expect_error(ls3.put_object, "FileImmutable", 409, Bucket=name, Key="old", Body=b"s3 overwrite")
    result = ls3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "old"}]})
    assert [e["Code"] for e in result["Errors"]] == ["FileImmutable"]
    assert b.get_object("old").read() == b"written before the policy"
    # New keys may be written, and are protected in turn.
    b.put_object("new", b"fresh")
    expect_oss2_error(b.delete_object, *immutable, "new")
    assert hashlib.sha256(b.get_object("new").read()).hexdigest() == hashlib.sha256(b"fresh").hexdigest()
    if not lock:
        # An aborted (never locked) policy protects nothing any more.
        b.abort_bucket_worm()
        b.delete_object("old")
