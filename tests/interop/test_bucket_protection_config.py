"""Bucket configuration for data protection, through real clients: lifecycle rules (boto3,
the aws CLI, oss2, and across the two dialects), S3 object-lock configuration, the OSS WORM
retention policy, and bucket tags with their limits."""

from __future__ import annotations

import datetime
import json

import oss2
import pytest
import requests
from oss2.models import (
    AbortMultipartUpload,
    BucketLifecycle,
    LifecycleExpiration,
    LifecycleRule,
    NoncurrentVersionExpiration,
    StorageTransition,
    Tagging,
    TaggingRule,
)

from oss_support import cleanup_bucket, expect_oss2_error, oss2_bucket, unique_oss_bucket
from support import expect_error, sign_request, unique_bucket_name

E = oss2.exceptions


@pytest.fixture
def s3_bucket(s3, s3_required):
    name = unique_bucket_name("prot")
    s3.create_bucket(Bucket=name)
    yield name
    cleanup_bucket(s3_required, name)


@pytest.fixture(params=["v1", "v4"])
def obucket(request, server, s3_required):
    name = unique_oss_bucket(f"prot-{request.param}")
    b = oss2_bucket(server, name, request.param)
    b.create_bucket()
    yield b
    cleanup_bucket(s3_required, name)


# --------------------------------------------------------------------------- lifecycle, S3

RULES = [
    {
        "ID": "logs",
        "Filter": {"Prefix": "logs/"},
        "Status": "Enabled",
        "Expiration": {"Days": 30},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 7, "NewerNoncurrentVersions": 2},
    },
    {
        "ID": "tagged-and-sized",
        "Filter": {"And": {
            "Prefix": "data/",
            "Tags": [{"Key": "class", "Value": "scratch"}, {"Key": "team", "Value": "a&b"}],
            "ObjectSizeGreaterThan": 1024,
            "ObjectSizeLessThan": 1048576,
        }},
        "Status": "Disabled",
        "Expiration": {"Date": datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)},
    },
    {
        "ID": "uploads",
        "Filter": {"Prefix": ""},
        "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
    },
    {
        "ID": "markers",
        "Filter": {"Prefix": "m/"},
        "Status": "Enabled",
        "Expiration": {"ExpiredObjectDeleteMarker": True},
    },
]


def test_s3_lifecycle_put_get_delete(s3, s3_bucket):
    expect_error(s3.get_bucket_lifecycle_configuration, "NoSuchLifecycleConfiguration", 404,
                 Bucket=s3_bucket)
    s3.put_bucket_lifecycle_configuration(Bucket=s3_bucket, LifecycleConfiguration={"Rules": RULES})
    got = s3.get_bucket_lifecycle_configuration(Bucket=s3_bucket)["Rules"]
    assert got == RULES
    deleted = s3.delete_bucket_lifecycle(Bucket=s3_bucket)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    expect_error(s3.get_bucket_lifecycle_configuration, "NoSuchLifecycleConfiguration", 404,
                 Bucket=s3_bucket)
    # Deleting again still succeeds.
    s3.delete_bucket_lifecycle(Bucket=s3_bucket)


@pytest.mark.parametrize("rules, code", [
    ([{"ID": "zero", "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 0}}],
     "InvalidArgument"),
    ([{"ID": "same", "Filter": {"Prefix": "a"}, "Status": "Enabled", "Expiration": {"Days": 1}},
      {"ID": "same", "Filter": {"Prefix": "b"}, "Status": "Enabled", "Expiration": {"Days": 2}}],
     "InvalidArgument"),
    ([{"ID": "noon", "Filter": {"Prefix": ""}, "Status": "Enabled",
       "Expiration": {"Date": datetime.datetime(2030, 1, 1, 12, tzinfo=datetime.timezone.utc)}}],
     "InvalidArgument"),
    ([{"ID": "both", "Filter": {"Prefix": ""}, "Status": "Enabled",
       "Expiration": {"Days": 1, "ExpiredObjectDeleteMarker": True}}],
     "MalformedXML"),
    ([{"ID": "no-action", "Filter": {"Prefix": ""}, "Status": "Enabled"}], "InvalidRequest"),
    ([{"ID": "tagged-abort", "Filter": {"Tag": {"Key": "k", "Value": "v"}}, "Status": "Enabled",
       "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}], "InvalidRequest"),
])
def test_s3_invalid_lifecycle_is_refused(s3, s3_bucket, rules, code):
    expect_error(s3.put_bucket_lifecycle_configuration, code, 400, Bucket=s3_bucket,
                 LifecycleConfiguration={"Rules": rules})
    # Nothing was stored.
    expect_error(s3.get_bucket_lifecycle_configuration, "NoSuchLifecycleConfiguration", 404,
                 Bucket=s3_bucket)


def test_s3_lifecycle_transitions_are_refused(s3, s3_bucket):
    for rule in (
        {"ID": "t", "Filter": {"Prefix": ""}, "Status": "Enabled",
         "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]},
        {"ID": "nt", "Filter": {"Prefix": ""}, "Status": "Enabled",
         "Expiration": {"Days": 90},
         "NoncurrentVersionTransitions": [{"NoncurrentDays": 30, "StorageClass": "STANDARD_IA"}]},
    ):
        exc = expect_error(s3.put_bucket_lifecycle_configuration, "InvalidRequest", 400,
                           Bucket=s3_bucket, LifecycleConfiguration={"Rules": [rule]})
        assert "storage class" in exc.response["Error"]["Message"]


def test_s3_lifecycle_needs_content_md5_or_checksum(server, s3_bucket):
    body = (b"<LifecycleConfiguration><Rule><ID>r</ID><Filter><Prefix></Prefix></Filter>"
            b"<Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"
            b"</LifecycleConfiguration>")
    url = f"{server.endpoint}/{s3_bucket}?lifecycle"
    signed = sign_request("PUT", url, server.access_key, server.secret_key, body=body)
    resp = requests.put(url, data=body, headers=signed.headers, timeout=30)
    assert resp.status_code == 400, resp.text
    assert "<Code>InvalidRequest</Code>" in resp.text and "Content-MD5" in resp.text
    # The same body with Content-MD5 is accepted.
    from support import md5_b64
    headers = {"Content-MD5": md5_b64(body)}
    signed = sign_request("PUT", url, server.access_key, server.secret_key, body=body, headers=headers)
    resp = requests.put(url, data=body, headers=signed.headers, timeout=30)
    assert resp.status_code == 200, resp.text


def test_awscli_lifecycle_round_trip(aws, s3_bucket, tmp_path):
    config = {"Rules": [{
        "ID": "cli-rule",
        "Filter": {"Prefix": "tmp/"},
        "Status": "Enabled",
        "Expiration": {"Days": 5},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }]}
    path = tmp_path / "lifecycle.json"
    path.write_text(json.dumps(config))
    aws("s3api", "put-bucket-lifecycle-configuration", "--bucket", s3_bucket,
        "--lifecycle-configuration", f"file://{path}")
    got = aws.json("s3api", "get-bucket-lifecycle-configuration", "--bucket", s3_bucket)
    assert got["Rules"] == config["Rules"]
    aws("s3api", "delete-bucket-lifecycle", "--bucket", s3_bucket)
    missing = aws("s3api", "get-bucket-lifecycle-configuration", "--bucket", s3_bucket, check=False)
    assert missing.returncode != 0 and "NoSuchLifecycleConfiguration" in missing.stderr


# --------------------------------------------------------------------------- lifecycle, OSS


def test_oss2_lifecycle_put_get_and_read_by_s3(obucket, s3):
    expect_oss2_error(obucket.get_bucket_lifecycle, E.NoSuchLifecycle, 404, "NoSuchLifecycle")
    tagging = Tagging(TaggingRule())
    tagging.tag_set.add("class", "scratch")
    rules = [
        LifecycleRule("expire-logs", "logs/", status=LifecycleRule.ENABLED,
                      expiration=LifecycleExpiration(days=3)),
        LifecycleRule("old-uploads", "up/", status=LifecycleRule.DISABLED,
                      expiration=LifecycleExpiration(
                          created_before_date=datetime.date(2024, 1, 1)),
                      abort_multipart_upload=AbortMultipartUpload(days=2)),
        LifecycleRule("tagged", "t/", status=LifecycleRule.ENABLED, tagging=tagging,
                      noncurrent_version_expiration=NoncurrentVersionExpiration(9)),
    ]
    obucket.put_bucket_lifecycle(BucketLifecycle(rules))
    got = {r.id: r for r in obucket.get_bucket_lifecycle().rules}
    assert set(got) == {"expire-logs", "old-uploads", "tagged"}
    assert got["expire-logs"].prefix == "logs/" and got["expire-logs"].expiration.days == 3
    assert got["old-uploads"].status == LifecycleRule.DISABLED
    assert got["old-uploads"].expiration.created_before_date == datetime.date(2024, 1, 1)
    assert got["old-uploads"].abort_multipart_upload.days == 2
    assert got["tagged"].tagging.tag_set.tagging_rule == {"class": "scratch"}
    assert got["tagged"].noncurrent_version_expiration.noncurrent_days == 9

    # One stored document: the S3 dialect reads the same rules in its own XML.
    s3_rules = {r["ID"]: r for r in
                s3.get_bucket_lifecycle_configuration(Bucket=obucket.bucket_name)["Rules"]}
    assert s3_rules["expire-logs"]["Expiration"] == {"Days": 3}
    assert s3_rules["expire-logs"]["Prefix"] == "logs/"
    assert s3_rules["old-uploads"]["Status"] == "Disabled"
    assert s3_rules["tagged"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 9}

    obucket.delete_bucket_lifecycle()
    expect_oss2_error(obucket.get_bucket_lifecycle, E.NoSuchLifecycle, 404, "NoSuchLifecycle")


def test_oss2_invalid_lifecycle_is_refused(obucket):
    zero = LifecycleRule("zero", "a/", status=LifecycleRule.ENABLED,
                         expiration=LifecycleExpiration(days=0))
    expect_oss2_error(obucket.put_bucket_lifecycle, E.InvalidArgument, 400, "InvalidArgument",
                      BucketLifecycle([zero]))
    transition = LifecycleRule("ia", "a/", status=LifecycleRule.ENABLED,
                               storage_transitions=[StorageTransition(days=30, storage_class="IA")])
    exc = expect_oss2_error(obucket.put_bucket_lifecycle, E.InvalidRequest, 400, "InvalidRequest",
                            BucketLifecycle([transition]))
    assert "storage class" in exc.message
    expect_oss2_error(obucket.get_bucket_lifecycle, E.NoSuchLifecycle, 404, "NoSuchLifecycle")


# --------------------------------------------------------------------------- object lock


def test_object_lock_configuration(s3, s3_required):
    name = unique_bucket_name("lock")
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    try:
        got = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
        assert got == {"ObjectLockEnabled": "Enabled"}
        # Object lock implies versioning, which can then never be suspended.
        assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
        expect_error(s3.put_bucket_versioning, "InvalidBucketState", 409, Bucket=name,
                     VersioningConfiguration={"Status": "Suspended"})
        config = {"ObjectLockEnabled": "Enabled",
                  "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 3}}}
        s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=config)
        assert s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"] == config
        years = {"ObjectLockEnabled": "Enabled",
                 "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 1}}}
        s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=years)
        assert s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"] == years
        # Days xor Years; a positive period.
        both = {"ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1, "Years": 1}}}
        expect_error(s3.put_object_lock_configuration, "MalformedXML", 400, Bucket=name,
                     ObjectLockConfiguration=both)
        zero = {"ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 0}}}
        expect_error(s3.put_object_lock_configuration, "InvalidArgument", 400, Bucket=name,
                     ObjectLockConfiguration=zero)
        # The refused PUTs changed nothing.
        assert s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"] == years
    finally:
        cleanup_bucket(s3_required, name)


def test_object_lock_absent_on_a_plain_bucket(s3, s3_bucket):
    expect_error(s3.get_object_lock_configuration, "ObjectLockConfigurationNotFoundError", 404,
                 Bucket=s3_bucket)
    # Versioning is not enabled on this bucket, so object lock cannot be turned on.
    expect_error(s3.put_object_lock_configuration, "InvalidBucketState", 409, Bucket=s3_bucket,
                 ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    expect_error(s3.get_object_lock_configuration, "ObjectLockConfigurationNotFoundError", 404,
                 Bucket=s3_bucket)
    # Once versioning is enabled, object lock can be turned on.
    s3.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=s3_bucket,
                                     ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    assert s3.get_object_lock_configuration(Bucket=s3_bucket)["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled"}


# --------------------------------------------------------------------------- OSS WORM


def test_oss2_worm_lifecycle(obucket):
    expect_oss2_error(obucket.get_bucket_worm, E.NoSuchWORMConfiguration, 404,
                      "NoSuchWORMConfiguration")
    worm_id = obucket.init_bucket_worm(1).worm_id
    assert worm_id
    got = obucket.get_bucket_worm()
    assert (got.worm_id, got.state, got.retention_period_days) == (worm_id, "InProgress", 1)
    datetime.datetime.strptime(got.creation_date, "%Y-%m-%dT%H:%M:%S")
    # A second policy cannot be started while one is in progress.
    expect_oss2_error(obucket.init_bucket_worm, E.InvalidWORMConfiguration, 400,
                      "InvalidWORMConfiguration", 2)
    # Only a locked policy can be extended; only the right id can be locked.
    expect_oss2_error(obucket.extend_bucket_worm, E.InvalidWORMConfiguration, 400,
                      "InvalidWORMConfiguration", worm_id, 5)
    expect_oss2_error(obucket.complete_bucket_worm, E.NoSuchWORMConfiguration, 404,
                      "NoSuchWORMConfiguration", "0" * 32)
    obucket.complete_bucket_worm(worm_id)
    assert obucket.get_bucket_worm().state == "Locked"
    obucket.extend_bucket_worm(worm_id, 5)
    assert obucket.get_bucket_worm().retention_period_days == 5
    # Never shorter, and a locked policy cannot be removed.
    expect_oss2_error(obucket.extend_bucket_worm, E.InvalidWORMConfiguration, 400,
                      "InvalidWORMConfiguration", worm_id, 4)
    expect_oss2_error(obucket.abort_bucket_worm, E.WORMConfigurationLocked, 403,
                      "WORMConfigurationLocked")
    got = obucket.get_bucket_worm()
    assert (got.worm_id, got.state, got.retention_period_days) == (worm_id, "Locked", 5)


def test_oss2_worm_abort_while_in_progress(obucket):
    expect_oss2_error(obucket.abort_bucket_worm, E.NoSuchWORMConfiguration, 404,
                      "NoSuchWORMConfiguration")
    expect_oss2_error(obucket.init_bucket_worm, E.InvalidWORMConfiguration, 400,
                      "InvalidWORMConfiguration", 25551)
    obucket.init_bucket_worm(30)
    obucket.abort_bucket_worm()
    expect_oss2_error(obucket.get_bucket_worm, E.NoSuchWORMConfiguration, 404,
                      "NoSuchWORMConfiguration")
    # A new one may then be started.
    assert obucket.init_bucket_worm(2).worm_id


# --------------------------------------------------------------------------- bucket tags


def tag_set(pairs):
    return {"TagSet": [{"Key": k, "Value": v} for k, v in pairs]}


def test_s3_bucket_tagging_and_limits(s3, s3_bucket):
    expect_error(s3.get_bucket_tagging, "NoSuchTagSet", 404, Bucket=s3_bucket)
    tags = [("env", "prod"), ("owner", "ops & co"), ("empty", ""), ("ünïcode", "välue")]
    s3.put_bucket_tagging(Bucket=s3_bucket, Tagging=tag_set(tags))
    got = s3.get_bucket_tagging(Bucket=s3_bucket)["TagSet"]
    assert [(t["Key"], t["Value"]) for t in got] == tags

    fifty = [(f"k{i}", "v") for i in range(50)]
    s3.put_bucket_tagging(Bucket=s3_bucket, Tagging=tag_set(fifty))
    assert len(s3.get_bucket_tagging(Bucket=s3_bucket)["TagSet"]) == 50
    refused = [
        [(f"k{i}", "v") for i in range(51)],
        [("dup", "1"), ("dup", "2")],
        [("k" * 129, "v")],
        [("k", "v" * 257)],
        [("aws:reserved", "v")],
    ]
    for pairs in refused:
        expect_error(s3.put_bucket_tagging, "InvalidTag", 400, Bucket=s3_bucket,
                     Tagging=tag_set(pairs))
    # The limits themselves are allowed, counted in characters.
    s3.put_bucket_tagging(Bucket=s3_bucket, Tagging=tag_set([("é" * 128, "ü" * 256)]))
    assert s3.get_bucket_tagging(Bucket=s3_bucket)["TagSet"] == [{"Key": "é" * 128, "Value": "ü" * 256}]

    assert s3.delete_bucket_tagging(Bucket=s3_bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    expect_error(s3.get_bucket_tagging, "NoSuchTagSet", 404, Bucket=s3_bucket)


def test_oss2_bucket_tagging(obucket, s3):
    assert obucket.get_bucket_tagging().tag_set.tagging_rule == {}
    rule = TaggingRule()
    rule.add("project", "coffer")
    rule.add("stage", "test")
    obucket.put_bucket_tagging(Tagging(rule))
    assert obucket.get_bucket_tagging().tag_set.tagging_rule == {"project": "coffer", "stage": "test"}
    # The S3 dialect reads the same tags.
    got = s3.get_bucket_tagging(Bucket=obucket.bucket_name)["TagSet"]
    assert {t["Key"]: t["Value"] for t in got} == {"project": "coffer", "stage": "test"}
    too_many = TaggingRule()
    for i in range(51):
        too_many.add(f"k{i}", "v")
    expect_oss2_error(obucket.put_bucket_tagging, E.ServerError, 400, "InvalidTag",
                      Tagging(too_many))
    assert obucket.get_bucket_tagging().tag_set.tagging_rule == {"project": "coffer", "stage": "test"}
    # OSS can delete some keys only.
    obucket.delete_bucket_tagging(params={"tagging": "stage"})
    assert obucket.get_bucket_tagging().tag_set.tagging_rule == {"project": "coffer"}
    obucket.delete_bucket_tagging()
    assert obucket.get_bucket_tagging().tag_set.tagging_rule == {}


# --------------------------------------------------------------------------- ownership


def test_only_the_bucket_owner_may_configure(s3, s3_user2, s3_bucket):
    s3.put_bucket_tagging(Bucket=s3_bucket, Tagging=tag_set([("owner", "root")]))
    s3.put_bucket_lifecycle_configuration(Bucket=s3_bucket, LifecycleConfiguration={"Rules": RULES[:1]})
    expect_error(s3_user2.get_bucket_tagging, "AccessDenied", 403, Bucket=s3_bucket)
    expect_error(s3_user2.put_bucket_tagging, "AccessDenied", 403, Bucket=s3_bucket,
                 Tagging=tag_set([("owner", "intruder")]))
    expect_error(s3_user2.get_bucket_lifecycle_configuration, "AccessDenied", 403, Bucket=s3_bucket)
    expect_error(s3_user2.delete_bucket_lifecycle, "AccessDenied", 403, Bucket=s3_bucket)
    expect_error(s3_user2.get_object_lock_configuration, "AccessDenied", 403, Bucket=s3_bucket)
    assert s3.get_bucket_tagging(Bucket=s3_bucket)["TagSet"] == [{"Key": "owner", "Value": "root"}]
    assert s3.get_bucket_lifecycle_configuration(Bucket=s3_bucket)["Rules"] == RULES[:1]
