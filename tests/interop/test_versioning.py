"""Bucket versioning through boto3, the aws CLI and oss2: version ids, the null version,
delete markers, deletes by version id, ListObjectVersions paging, copies of a version, and
every version sealed with its own data key (SSE-S3, SSE-KMS, SSE-C)."""

import os

import oss2
import pytest
from botocore.exceptions import ClientError

from oss_support import oss2_bucket
from support import (
    destroy_bucket,
    expect_error,
    inspect_object,
    tamper_set_record,
    unique_bucket_name,
)
from test_sse_keys import coffer_sse
from test_sse_kms import kms_client, new_key


@pytest.fixture
def vbucket(s3_required):
    """A fresh bucket with versioning enabled."""
    name = unique_bucket_name("ver")
    s3_required.create_bucket(Bucket=name)
    s3_required.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    yield name
    destroy_bucket(s3_required, name)


def versions_of(s3, bucket, key=None):
    """[(key, version id, is latest, "marker" or body size)] in listing order."""
    out = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        entries = [(v["Key"], v["VersionId"], v["IsLatest"], v["Size"], v["LastModified"])
                   for v in page.get("Versions", [])]
        entries += [(m["Key"], m["VersionId"], m["IsLatest"], "marker", m["LastModified"])
                    for m in page.get("DeleteMarkers", [])]
        # boto3 splits versions and markers; the XML order is newest first per key (times
        # have whole seconds: the latest goes first among equals, the sort is stable).
        entries.sort(key=lambda e: (e[0], -e[4].timestamp(), not e[2]))
        out += [e[:4] for e in entries if key is None or e[0] == key]
    return out


def test_versioning_status_round_trip(s3, bucket):
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    expect_error(s3.put_bucket_versioning, "MalformedXML", 400, Bucket=bucket,
                 VersioningConfiguration={"Status": "Off"})


def test_each_write_is_a_version_and_deletes_leave_markers(s3, vbucket):
    bodies = [os.urandom(1000 + i) for i in range(3)]
    ids = [s3.put_object(Bucket=vbucket, Key="k", Body=b)["VersionId"] for b in bodies]
    assert len(set(ids)) == 3 and "null" not in ids
    for version_id, body in zip(ids, bodies):
        got = s3.get_object(Bucket=vbucket, Key="k", VersionId=version_id)
        assert got["Body"].read() == body
        assert got["VersionId"] == version_id
        head = s3.head_object(Bucket=vbucket, Key="k", VersionId=version_id)
        assert head["ContentLength"] == len(body)
    assert s3.get_object(Bucket=vbucket, Key="k")["Body"].read() == bodies[2]
    assert [(v[1], v[2]) for v in versions_of(s3, vbucket)] == [
        (ids[2], True), (ids[1], False), (ids[0], False)]

    # A delete writes a marker: the key reads as absent, the versions stay.
    deleted = s3.delete_object(Bucket=vbucket, Key="k")
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    err = expect_error(s3.get_object, "NoSuchKey", 404, Bucket=vbucket, Key="k")
    headers = err.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers.get("x-amz-delete-marker") == "true" and headers.get("x-amz-version-id") == marker
    assert "k" not in [o["Key"] for o in s3.list_objects_v2(Bucket=vbucket).get("Contents", [])]
    err = expect_error(s3.get_object, None, 405, Bucket=vbucket, Key="k", VersionId=marker)
    assert err.response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-delete-marker") == "true"
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId=ids[0])["Body"].read() == bodies[0]

    # Deleting the marker brings the object back; deleting a version removes only it.
    gone = s3.delete_object(Bucket=vbucket, Key="k", VersionId=marker)
    assert gone["DeleteMarker"] is True and gone["VersionId"] == marker
    assert s3.get_object(Bucket=vbucket, Key="k")["Body"].read() == bodies[2]
    s3.delete_object(Bucket=vbucket, Key="k", VersionId=ids[2])
    assert s3.get_object(Bucket=vbucket, Key="k")["Body"].read() == bodies[1]
    expect_error(s3.get_object, "NoSuchVersion", 404, Bucket=vbucket, Key="k", VersionId=ids[2])
    expect_error(s3.get_object, "InvalidArgument", 400, Bucket=vbucket, Key="k",
                 VersionId="not-a-version")
    assert [v[1] for v in versions_of(s3, vbucket)] == [ids[1], ids[0]]


def test_suspended_bucket_replaces_the_null_version(s3, vbucket):
    kept = s3.put_object(Bucket=vbucket, Key="k", Body=b"versioned")["VersionId"]
    s3.put_bucket_versioning(Bucket=vbucket, VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket=vbucket, Key="k", Body=b"null one")
    s3.put_object(Bucket=vbucket, Key="k", Body=b"null two")
    listed = versions_of(s3, vbucket)
    assert [v[1] for v in listed] == ["null", kept]
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId="null")["Body"].read() == b"null two"
    deleted = s3.delete_object(Bucket=vbucket, Key="k")
    assert deleted["DeleteMarker"] is True and deleted["VersionId"] == "null"
    assert [(v[1], v[3]) for v in versions_of(s3, vbucket)] == [("null", "marker"), (kept, 9)]
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId=kept)["Body"].read() == b"versioned"


def test_unversioned_bucket_answers_without_version_ids(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert "VersionId" not in put
    listed = versions_of(s3, bucket)
    assert [(v[0], v[1], v[2]) for v in listed] == [("k", "null", True)]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"x"
    assert "DeleteMarker" not in s3.delete_object(Bucket=bucket, Key="k")
    assert versions_of(s3, bucket) == []


def test_list_object_versions_pages_and_delimiter(s3, vbucket):
    expected = []
    for key, count in [("a", 2), ("dir/x", 3), ("dir/y", 1), ("z", 2)]:
        ids = [s3.put_object(Bucket=vbucket, Key=key, Body=key.encode())["VersionId"]
               for _ in range(count)]
        expected += [(key, vid) for vid in reversed(ids)]
    seen = []
    pages = s3.get_paginator("list_object_versions").paginate(
        Bucket=vbucket, PaginationConfig={"PageSize": 3})
    for page in pages:
        assert len(page.get("Versions", [])) <= 3
        seen += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
    assert seen == expected
    listed = s3.list_object_versions(Bucket=vbucket, Delimiter="/")
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["dir/"]
    assert {v["Key"] for v in listed["Versions"]} == {"a", "z"}
    narrowed = s3.list_object_versions(Bucket=vbucket, Prefix="dir/", KeyMarker="dir/x")
    assert [v["Key"] for v in narrowed["Versions"]] == ["dir/y"]


def test_copy_of_a_version_and_delete_objects_by_version(s3, vbucket):
    first = s3.put_object(Bucket=vbucket, Key="src", Body=b"first")["VersionId"]
    s3.put_object(Bucket=vbucket, Key="src", Body=b"second")
    copied = s3.copy_object(Bucket=vbucket, Key="dst",
                            CopySource={"Bucket": vbucket, "Key": "src", "VersionId": first})
    assert copied["CopySourceVersionId"] == first
    assert copied["VersionId"] not in (None, "null")
    assert s3.get_object(Bucket=vbucket, Key="dst")["Body"].read() == b"first"

    result = s3.delete_objects(Bucket=vbucket, Delete={"Objects": [
        {"Key": "src", "VersionId": first}, {"Key": "dst"}]})
    by_key = {d["Key"]: d for d in result["Deleted"]}
    assert by_key["src"]["VersionId"] == first
    assert by_key["dst"]["DeleteMarker"] is True and by_key["dst"]["DeleteMarkerVersionId"]
    assert [v[1] for v in versions_of(s3, vbucket, "src")] != [] and \
        first not in [v[1] for v in versions_of(s3, vbucket, "src")]


def test_upload_part_copy_of_a_version(s3, vbucket):
    old = s3.put_object(Bucket=vbucket, Key="src", Body=b"A" * 6000)["VersionId"]
    s3.put_object(Bucket=vbucket, Key="src", Body=b"B" * 6000)
    upload = s3.create_multipart_upload(Bucket=vbucket, Key="dst")["UploadId"]
    part = s3.upload_part_copy(Bucket=vbucket, Key="dst", UploadId=upload, PartNumber=1,
                               CopySource={"Bucket": vbucket, "Key": "src", "VersionId": old},
                               CopySourceRange="bytes=0-999")
    assert part["CopySourceVersionId"] == old
    done = s3.complete_multipart_upload(
        Bucket=vbucket, Key="dst", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]})
    assert done["VersionId"] not in (None, "null")
    assert s3.get_object(Bucket=vbucket, Key="dst")["Body"].read() == b"A" * 1000


def test_every_version_sealed_under_its_own_key_in_each_mode(make_server):
    """Three versions of one key under AES256, SSE-KMS and SSE-C each read back by id;
    rotating the KMS key and the service key, then rewrapping, leaves all readable."""
    server = make_server(extra_args=["--allow-insecure-sse-c"])
    s3 = server.client()
    kms = kms_client(server)
    key_id = new_key(kms)["KeyId"]
    bucket = unique_bucket_name("versse")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    customer_key = os.urandom(32)
    modes = {
        "aes": ({"ServerSideEncryption": "AES256"}, {}),
        "kms": ({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id}, {}),
        "ssec": ({"SSECustomerAlgorithm": "AES256", "SSECustomerKey": customer_key},
                 {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": customer_key}),
    }
    written = {}
    for mode, (put_args, _) in modes.items():
        for i in range(3):
            body = os.urandom(5000 + i)
            resp = s3.put_object(Bucket=bucket, Key=mode, Body=body, **put_args)
            written[(mode, resp["VersionId"])] = body

    def read_all():
        for (mode, version_id), body in written.items():
            got = s3.get_object(Bucket=bucket, Key=mode, VersionId=version_id, **modes[mode][1])
            assert got["Body"].read() == body, (mode, version_id)
            if mode == "kms":
                assert got["SSEKMSKeyId"].endswith(key_id)
            elif mode == "aes":
                assert got["ServerSideEncryption"] == "AES256"

    read_all()
    for (mode, version_id) in written:
        head = s3.head_object(Bucket=bucket, Key=mode, VersionId=version_id, **modes[mode][1])
        assert head["VersionId"] == version_id
    kms.rotate_key_on_demand(KeyId=key_id)
    coffer_sse(server, "rotate-key")
    result = coffer_sse(server, "rewrap")
    assert result["objects_rewrapped"] == 3, result  # every AES256 version, noncurrent too
    read_all()
    server.restart()
    s3 = server.client()
    read_all()


def test_aws_cli_versioning(aws, s3, bucket, tmp_path):
    aws("s3api", "put-bucket-versioning", "--bucket", bucket,
            "--versioning-configuration", "Status=Enabled")
    assert aws.json("s3api", "get-bucket-versioning", "--bucket", bucket)["Status"] == "Enabled"
    src = tmp_path / "body"
    ids = []
    for text in ("one", "two"):
        src.write_text(text)
        ids.append(aws.json("s3api", "put-object", "--bucket", bucket, "--key", "k",
                            "--body", str(src))["VersionId"])
    listed = aws.json("s3api", "list-object-versions", "--bucket", bucket)
    assert [v["VersionId"] for v in listed["Versions"]] == [ids[1], ids[0]]
    out = tmp_path / "out"
    aws.json("s3api", "get-object", "--bucket", bucket, "--key", "k", "--version-id", ids[0],
             str(out))
    assert out.read_text() == "one"


def test_oss2_versioning(server, s3):
    name = unique_bucket_name("ossver")
    bucket = oss2_bucket(server, name, "v4")
    bucket.create_bucket()
    try:
        config = oss2.models.BucketVersioningConfig()
        config.status = oss2.BUCKET_VERSIONING_ENABLE
        bucket.put_bucket_versioning(config)
        assert bucket.get_bucket_versioning().status == "Enabled"
        first = bucket.put_object("k", b"first").versionid
        second = bucket.put_object("k", b"second").versionid
        assert first and second and first != second
        assert bucket.get_object("k", params={"versionId": first}).read() == b"first"
        deleted = bucket.delete_object("k")
        assert deleted.delete_marker and deleted.versionid
        listed = bucket.list_object_versions()
        assert [v.versionid for v in listed.versions] == [second, first]
        assert [m.versionid for m in listed.delete_marker] == [deleted.versionid]
        bucket.delete_object("k", params={"versionId": first})
        with pytest.raises(oss2.exceptions.NoSuchKey):
            bucket.get_object("k")
        assert bucket.get_object("k", params={"versionId": second}).read() == b"second"
    finally:
        destroy_bucket(s3, name)


@pytest.mark.parametrize("what", ["envelope", "extents"])
def test_swapping_two_versions_envelopes_or_blobs_is_refused(make_server, what):
    """An attacker with the metadata database swaps the envelopes (or the blob lists) of two
    versions of one key: each version's data key no longer matches its body, and GET refuses
    both instead of serving the other version's bytes."""
    server = make_server()
    s3 = server.client()
    bucket = unique_bucket_name("verswap")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    bodies = [os.urandom(4000), os.urandom(4000)]
    ids = [s3.put_object(Bucket=bucket, Key="k", Body=b, ServerSideEncryption="AES256")["VersionId"]
           for b in bodies]
    server.stop()
    records = [inspect_object(server.data_dir, bucket, "k", v)["record"] for v in ids]
    assert records[0]["version_id"] == ids[0] and records[1]["version_id"] == ids[1]
    first, second = records
    first[what], second[what] = second[what], first[what]
    tamper_set_record(server.data_dir, bucket, "k", first, ids[0])
    tamper_set_record(server.data_dir, bucket, "k", second, ids[1])
    server.start()
    s3 = server.client()
    for version_id in ids:
        with pytest.raises(ClientError) as refused:
            s3.get_object(Bucket=bucket, Key="k", VersionId=version_id)["Body"].read()
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert refused.value.response["Error"]["Code"] == "IntegrityCheckFailed"
