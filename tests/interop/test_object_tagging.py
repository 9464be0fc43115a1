"""Object tags through boto3, the aws CLI and oss2: on PUT, multipart and copy (tagging
directive), Put/Get/DeleteObjectTagging per version, the tag count on reads, and AWS's limits."""

import oss2
import pytest

from oss_support import oss2_bucket
from support import destroy_bucket, expect_error, unique_bucket_name


def tags_of(s3, bucket, key, **kw):
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key, **kw)["TagSet"]}


def test_tags_on_put_read_replace_delete(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="team=blue&note=two%20words")
    assert tags_of(s3, bucket, "k") == {"team": "blue", "note": "two words"}
    assert s3.get_object(Bucket=bucket, Key="k")["TagCount"] == 2
    s3.put_object_tagging(Bucket=bucket, Key="k",
                          Tagging={"TagSet": [{"Key": "only", "Value": "one"}]})
    assert tags_of(s3, bucket, "k") == {"only": "one"}
    assert s3.head_object(Bucket=bucket, Key="k")["ResponseMetadata"]["HTTPHeaders"][
        "x-amz-tagging-count"] == "1"
    s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert tags_of(s3, bucket, "k") == {}
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="k")
    expect_error(s3.get_object_tagging, "NoSuchKey", 404, Bucket=bucket, Key="absent")


def test_tag_limits(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    eleven = [{"Key": f"k{i}", "Value": "v"} for i in range(11)]
    expect_error(s3.put_object_tagging, "InvalidTag", 400, Bucket=bucket, Key="k",
                 Tagging={"TagSet": eleven})
    expect_error(s3.put_object_tagging, "InvalidTag", 400, Bucket=bucket, Key="k",
                 Tagging={"TagSet": [{"Key": "k" * 129, "Value": "v"}]})
    expect_error(s3.put_object_tagging, "InvalidTag", 400, Bucket=bucket, Key="k",
                 Tagging={"TagSet": [{"Key": "k", "Value": "v" * 257}]})
    expect_error(s3.put_object_tagging, "InvalidTag", 400, Bucket=bucket, Key="k",
                 Tagging={"TagSet": [{"Key": "d", "Value": "1"}, {"Key": "d", "Value": "2"}]})
    expect_error(s3.put_object, "InvalidTag", 400, Bucket=bucket, Key="k2", Body=b"x",
                 Tagging="&".join(f"k{i}=v" for i in range(11)))
    # The refused changes changed nothing.
    assert tags_of(s3, bucket, "k") == {}
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": [
        {"Key": "k" * 128, "Value": "v" * 256}] + [{"Key": f"t{i}", "Value": ""} for i in range(9)]})
    assert len(tags_of(s3, bucket, "k")) == 10


def test_tags_belong_to_one_version(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"1", Tagging="v=1")["VersionId"]
    second = s3.put_object(Bucket=bucket, Key="k", Body=b"2", Tagging="v=2")["VersionId"]
    put = s3.put_object_tagging(Bucket=bucket, Key="k", VersionId=first,
                                Tagging={"TagSet": [{"Key": "v", "Value": "one"}]})
    assert put["VersionId"] == first
    assert tags_of(s3, bucket, "k", VersionId=first) == {"v": "one"}
    assert tags_of(s3, bucket, "k") == {"v": "2"}
    got = s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=second)
    assert got["VersionId"] == second
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    expect_error(s3.get_object_tagging, "NoSuchKey", 404, Bucket=bucket, Key="k")
    expect_error(s3.put_object_tagging, None, 405, Bucket=bucket, Key="k", VersionId=marker,
                 Tagging={"TagSet": []})


def test_tags_through_copy_and_multipart(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Tagging="from=source")
    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "src"})
    assert tags_of(s3, bucket, "copied") == {"from": "source"}
    s3.copy_object(Bucket=bucket, Key="replaced", CopySource={"Bucket": bucket, "Key": "src"},
                   TaggingDirective="REPLACE", Tagging="from=request")
    assert tags_of(s3, bucket, "replaced") == {"from": "request"}
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="kind=multipart")
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1,
                          Body=b"body")
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert tags_of(s3, bucket, "mp") == {"kind": "multipart"}


def test_aws_cli_object_tagging(aws, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    aws("s3api", "put-object-tagging", "--bucket", bucket, "--key", "k",
        "--tagging", "TagSet=[{Key=env,Value=prod}]")
    assert aws.json("s3api", "get-object-tagging", "--bucket", bucket, "--key", "k")["TagSet"] == [
        {"Key": "env", "Value": "prod"}]


def test_oss2_object_tagging(server, s3):
    name = unique_bucket_name("osstag")
    bucket = oss2_bucket(server, name, "v4")
    bucket.create_bucket()
    try:
        bucket.put_object("k", b"x", headers={"x-oss-tagging": "a=1&b=2"})
        got = bucket.get_object_tagging("k")
        assert got.tag_set.tagging_rule == {"a": "1", "b": "2"}
        rule = oss2.models.TaggingRule()
        rule.add("c", "3")
        bucket.put_object_tagging("k", oss2.models.Tagging(rule))
        assert bucket.get_object_tagging("k").tag_set.tagging_rule == {"c": "3"}
        bucket.delete_object_tagging("k")
        assert bucket.get_object_tagging("k").tag_set.tagging_rule == {}
        with pytest.raises(oss2.exceptions.ServerError):
            bucket.put_object("bad", b"x", headers={
                "x-oss-tagging": "&".join(f"k{i}=v" for i in range(11))})
    finally:
        destroy_bucket(s3, name)
