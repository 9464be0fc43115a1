"""Lifecycle rules applied by the server's worker, driven by a test clock: expiration of
current objects (markers in versioned buckets), noncurrent version expiration, removal of
expired delete markers, abort of stale uploads, tag and size filters; through boto3 and oss2.
Each test runs a dedicated `--test-clock` server whose timer is off; passes are run on demand
through the admin API (`lifecycle/run`)."""

import oss2
import pytest

from oss_support import oss2_bucket
from support import admin_call, advance_clock, expect_error, run_lifecycle, unique_bucket_name

CLOCK_ARGS = ["--test-clock", "--lifecycle-interval", "0"]


@pytest.fixture
def clocked(make_server):
    return make_server(extra_args=CLOCK_ARGS)


def blob_files(server) -> int:
    return sum(1 for f in (server.data_dir / "blobs").glob("*/*") if f.is_file())


def rule(rule_id, prefix="", **actions):
    return {"ID": rule_id, "Status": "Enabled", "Filter": {"Prefix": prefix}, **actions}


def version_ids(s3, bucket, key):
    listed = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return ([v["VersionId"] for v in listed.get("Versions", []) if v["Key"] == key],
            [m["VersionId"] for m in listed.get("DeleteMarkers", []) if m["Key"] == key])


def test_versioned_bucket_expiration_noncurrent_and_stale_uploads(clocked):
    s3 = clocked.client()
    bucket = unique_bucket_name("lcv")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        rule("logs", "logs/", Expiration={"Days": 1}),
        rule("noncurrent", NoncurrentVersionExpiration={"NoncurrentDays": 2}),
        rule("uploads", AbortIncompleteMultipartUpload={"DaysAfterInitiation": 1}),
    ]})
    s3.put_object(Bucket=bucket, Key="logs/a", Body=b"log line")
    old = s3.put_object(Bucket=bucket, Key="data/x", Body=b"old")["VersionId"]
    new = s3.put_object(Bucket=bucket, Key="data/x", Body=b"new")["VersionId"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]

    report = run_lifecycle(clocked)
    assert report["buckets"] == 1 and report["versions_scanned"] == 3
    assert report["expired"] == report["noncurrent_deleted"] == report["uploads_aborted"] == 0

    advance_clock(clocked, days=3)
    report = run_lifecycle(clocked)
    assert (report["expired"], report["noncurrent_deleted"], report["uploads_aborted"]) == (1, 1, 1), report
    # logs/a is hidden behind a marker, its data kept as a noncurrent version.
    expect_error(s3.get_object, "NoSuchKey", 404, Bucket=bucket, Key="logs/a")
    versions, markers = version_ids(s3, bucket, "logs/a")
    assert len(versions) == 1 and len(markers) == 1
    # data/x lost only its noncurrent version.
    assert version_ids(s3, bucket, "data/x") == ([new], [])
    expect_error(s3.get_object, "NoSuchVersion", 404, Bucket=bucket, Key="data/x", VersionId=old)
    assert s3.get_object(Bucket=bucket, Key="data/x")["Body"].read() == b"new"
    expect_error(s3.list_parts, "NoSuchUpload", 404, Bucket=bucket, Key="big", UploadId=upload)

    # Later the noncurrent logs/a version goes, then its marker is an expired object delete
    # marker and goes too.
    advance_clock(clocked, days=3)
    assert run_lifecycle(clocked)["noncurrent_deleted"] == 1
    assert run_lifecycle(clocked)["delete_markers_removed"] == 1
    assert version_ids(s3, bucket, "logs/a") == ([], [])
    # Nothing is left to do; the current data/x is not touched by any rule.
    report = run_lifecycle(clocked)
    assert report["expired"] == report["noncurrent_deleted"] == report["delete_markers_removed"] == 0


def test_unversioned_expiration_with_tag_and_size_filters(clocked):
    s3 = clocked.client()
    bucket = unique_bucket_name("lcu")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "tagged", "Status": "Enabled",
         "Filter": {"Tag": {"Key": "retention", "Value": "short"}}, "Expiration": {"Days": 1}},
        {"ID": "big", "Status": "Enabled",
         "Filter": {"ObjectSizeGreaterThan": 100_000}, "Expiration": {"Days": 1}},
        {"ID": "disabled", "Status": "Disabled", "Filter": {"Prefix": ""},
         "Expiration": {"Days": 1}},
    ]})
    # Every body above 64 KiB, so each has a blob file to count (smaller ones live in meta.redb).
    s3.put_object(Bucket=bucket, Key="tagged", Body=b"t" * 70_000, Tagging="retention=short")
    s3.put_object(Bucket=bucket, Key="other-tag", Body=b"o" * 70_000, Tagging="retention=long")
    s3.put_object(Bucket=bucket, Key="big", Body=b"b" * 200_000)
    s3.put_object(Bucket=bucket, Key="small", Body=b"s" * 70_000)
    blobs_before = blob_files(clocked)
    advance_clock(clocked, days=2)
    report = run_lifecycle(clocked)
    assert report["expired"] == 2, report
    assert blob_files(clocked) == blobs_before - 2, "expired objects' blobs are freed"
    left = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert left == ["other-tag", "small"]
    # An unversioned bucket keeps nothing of an expired object.
    assert [v["Key"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]] == left


def test_date_rule_and_restart(clocked):
    s3 = clocked.client()
    bucket = unique_bucket_name("lcd")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    # A date in the past applies at once, on the next pass after a restart too.
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        rule("date", Expiration={"Date": "2020-01-01T00:00:00Z"})]})
    clocked.restart()
    s3 = clocked.client()
    assert run_lifecycle(clocked)["expired"] == 1
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_oss2_lifecycle_expires_objects(clocked):
    s3 = clocked.client()
    name = unique_bucket_name("lco")
    bucket = oss2_bucket(clocked, name, "v4")
    bucket.create_bucket()
    rules = [oss2.models.LifecycleRule(
        "expire-tmp", "tmp/", status=oss2.models.LifecycleRule.ENABLED,
        expiration=oss2.models.LifecycleExpiration(days=1))]
    bucket.put_bucket_lifecycle(oss2.models.BucketLifecycle(rules))
    bucket.put_object("tmp/a", b"a")
    bucket.put_object("keep/b", b"b")
    advance_clock(clocked, days=2)
    assert run_lifecycle(clocked)["expired"] == 1
    assert not bucket.object_exists("tmp/a")
    assert bucket.get_object("keep/b").read() == b"b"
    s3.delete_object(Bucket=name, Key="keep/b")


def test_clock_cannot_move_without_test_clock(server):
    from urllib.error import HTTPError

    with pytest.raises(HTTPError) as refused:
        advance_clock(server, days=1)
    assert refused.value.code == 404


def test_locked_versions_survive_lifecycle(clocked):
    """Expiration and noncurrent expiration come due, but a version under COMPLIANCE retention
    or a legal hold is never removed (the worker counts it and skips it), until released."""
    import datetime
    import hashlib
    import base64

    s3 = clocked.client()
    bucket = unique_bucket_name("lcl")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        rule("all", Expiration={"Days": 1}, NoncurrentVersionExpiration={"NoncurrentDays": 1})]})

    def put(body, **lock):
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        return s3.put_object(Bucket=bucket, Key="k", Body=body, ContentMD5=md5, **lock)["VersionId"]

    until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
    held = put(b"held", ObjectLockLegalHoldStatus="ON")
    kept = put(b"kept", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)
    free = put(b"free")
    advance_clock(clocked, days=3)
    report = run_lifecycle(clocked)
    # The current version is expired behind a marker; of the noncurrent ones only the
    # unlocked could go, and none of them is unlocked.
    assert report["expired"] == 1, report
    assert report["locked_skipped"] == 2, report
    # "free" became noncurrent when the marker was written: a day later it may go.
    advance_clock(clocked, days=2)
    report = run_lifecycle(clocked)
    assert report["noncurrent_deleted"] == 1 and report["locked_skipped"] == 2, report
    listed = {v["VersionId"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]}
    assert listed == {held, kept} and free not in listed
    for version_id, body in ((held, b"held"), (kept, b"kept")):
        assert s3.get_object(Bucket=bucket, Key="k", VersionId=version_id)["Body"].read() == body
    # Lifting the hold lets the next pass remove that version; retention still protects.
    s3.put_object_legal_hold(Bucket=bucket, Key="k", VersionId=held, LegalHold={"Status": "OFF"})
    report = run_lifecycle(clocked)
    assert report["noncurrent_deleted"] == 1 and report["locked_skipped"] == 1, report
    advance_clock(clocked, days=31)
    assert run_lifecycle(clocked)["noncurrent_deleted"] == 1
    # Only the marker is left; it is an expired object delete marker now.
    assert run_lifecycle(clocked)["delete_markers_removed"] == 1
    assert "Versions" not in s3.list_object_versions(Bucket=bucket)


def test_admin_sweeper_run_answers_its_report(clocked):
    """The embedded store writes no pending rows (its open collects unreferenced blobs), so a
    sweeper pass, even with no grace period, finds nothing and deletes nothing: every object
    stays readable. The endpoint takes the sweeper lease and answers the pass's report."""
    s3 = clocked.client()
    bucket = unique_bucket_name("sweep")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="kept", Body=b"still here")
    report = admin_call(clocked, "POST", "sweeper/run", {"grace_seconds": 0})
    assert report == {"grace_seconds": 0, "pending": 0, "deleted": 0, "referenced": 0,
                      "failed": 0}
    assert admin_call(clocked, "POST", "sweeper/run")["grace_seconds"] == 3600
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"still here"
    assert run_lifecycle(clocked)["buckets"] == 0
