"""Bucket policies, their status and the public access block through real clients: the aws
CLI (`s3api put-bucket-policy`, `get-bucket-policy-status`, `put-public-access-block`), boto3,
oss2 (`put_bucket_policy` with an OSS document) and anonymous `curl`. The decision logic
itself is test_policy_table.py's; here: what is stored and answered, what is refused at PUT,
and the decision in the access log.
"""

from __future__ import annotations

import json
import subprocess
import time

import oss2
import pytest
from botocore.exceptions import ClientError

from oss_support import oss2_bucket
from support import destroy_bucket, error_code, expect_error, unique_bucket_name


def curl(url: str) -> tuple[int, bytes]:
    """An unsigned GET with curl: (status, body)."""
    proc = subprocess.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", url],
                          capture_output=True, timeout=30, check=True)
    body, _, status = proc.stdout.rpartition(b"\n")
    return int(status), body


def public_read(bucket: str, prefix: str = "public/") -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
                       "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/{prefix}*"}],
    }, indent=2)


@pytest.fixture
def objects(s3_required, bucket):
    s3_required.put_object(Bucket=bucket, Key="public/a.txt", Body=b"public bytes")
    s3_required.put_object(Bucket=bucket, Key="private/b.txt", Body=b"private bytes")
    yield bucket
    try:
        s3_required.delete_bucket_policy(Bucket=bucket)
    except ClientError:
        pass


def test_aws_cli_policy_status_public_access_block_and_anonymous_curl(aws, server, objects, tmp_path):
    bucket, endpoint = objects, server.endpoint
    assert curl(f"{endpoint}/{bucket}/public/a.txt")[0] == 403, "private before any policy"

    document = public_read(bucket)
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(document)
    aws("s3api", "put-bucket-policy", "--bucket", bucket, "--policy", f"file://{policy_file}")
    assert aws.json("s3api", "get-bucket-policy", "--bucket", bucket)["Policy"] == document, \
        "the document comes back as sent"
    assert aws.json("s3api", "get-bucket-policy-status", "--bucket", bucket) == \
        {"PolicyStatus": {"IsPublic": True}}

    status, body = curl(f"{endpoint}/{bucket}/public/a.txt")
    assert (status, body) == (200, b"public bytes")
    status, body = curl(f"{endpoint}/{bucket}/private/b.txt")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body and b"private bytes" not in body
    # No s3:ListBucket: a missing key is 403 too, not 404.
    assert curl(f"{endpoint}/{bucket}/public/missing")[0] == 403
    assert curl(f"{endpoint}/{bucket}")[0] == 403

    # The public access block: RestrictPublicBuckets shuts anonymous callers out.
    proc = aws("s3api", "get-public-access-block", "--bucket", bucket, check=False)
    assert proc.returncode != 0 and "NoSuchPublicAccessBlockConfiguration" in proc.stderr, proc.stderr
    aws("s3api", "put-public-access-block", "--bucket", bucket, "--public-access-block-configuration",
        "BlockPublicAcls=false,IgnorePublicAcls=false,BlockPublicPolicy=true,RestrictPublicBuckets=true")
    assert aws.json("s3api", "get-public-access-block", "--bucket", bucket) == {
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": False, "IgnorePublicAcls": False,
                                           "BlockPublicPolicy": True, "RestrictPublicBuckets": True}}
    assert curl(f"{endpoint}/{bucket}/public/a.txt")[0] == 403
    # BlockPublicPolicy: a public policy is refused, and the stored one stays.
    proc = aws("s3api", "put-bucket-policy", "--bucket", bucket, "--policy", public_read(bucket, ""),
               check=False)
    assert proc.returncode != 0 and "AccessDenied" in proc.stderr, proc.stderr
    assert aws.json("s3api", "get-bucket-policy", "--bucket", bucket)["Policy"] == document

    aws("s3api", "delete-public-access-block", "--bucket", bucket)
    assert curl(f"{endpoint}/{bucket}/public/a.txt")[0] == 200
    aws("s3api", "delete-bucket-policy", "--bucket", bucket)
    assert curl(f"{endpoint}/{bucket}/public/a.txt")[0] == 403
    proc = aws("s3api", "get-bucket-policy-status", "--bucket", bucket, check=False)
    assert proc.returncode != 0 and "NoSuchBucketPolicy" in proc.stderr, proc.stderr


BAD_POLICIES = {
    "not JSON": "{",
    "no Statement": '{"Version": "2012-10-17"}',
    "unknown Effect": '{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Principal":"*",'
                      '"Action":"s3:GetObject","Resource":"arn:aws:s3:::{B}/*"}]}',
    "unknown action": '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
                      '"Action":"s3:GetObjectz","Resource":"arn:aws:s3:::{B}/*"}]}',
    "unknown operator": '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
                        '"Action":"s3:GetObject","Resource":"arn:aws:s3:::{B}/*",'
                        '"Condition":{"StringSorta":{"s3:prefix":"a"}}}]}',
    "unknown condition key": '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
                             '"Action":"s3:GetObject","Resource":"arn:aws:s3:::{B}/*",'
                             '"Condition":{"StringEquals":{"aws:NoSuchKey":"a"}}}]}',
    "bad CIDR": '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
                '"Action":"s3:GetObject","Resource":"arn:aws:s3:::{B}/*",'
                '"Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.300/8"}}}]}',
    "no Principal": '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                    '"Action":"s3:GetObject","Resource":"arn:aws:s3:::{B}/*"}]}',
    "another bucket": '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
                      '"Action":"s3:GetObject","Resource":"arn:aws:s3:::someone-else/*"}]}',
}


@pytest.mark.parametrize("why", sorted(BAD_POLICIES))
def test_malformed_policies_are_refused_and_nothing_is_stored(s3_required, bucket, why):
    text = BAD_POLICIES[why].replace("{B}", bucket)
    err = expect_error(s3_required.put_bucket_policy, "MalformedPolicy", 400, Bucket=bucket, Policy=text)
    assert err.response["Error"]["Message"], "the refusal says why"
    expect_error(s3_required.get_bucket_policy, "NoSuchBucketPolicy", 404, Bucket=bucket)


def test_policy_over_20_kib_is_refused(s3_required, bucket):
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                 "Resource": f"arn:aws:s3:::{bucket}/" + "x" * 200}
    doc = json.dumps({"Version": "2012-10-17", "Statement": [dict(statement, Sid=f"S{i}") for i in range(100)]})
    assert len(doc) > 20 * 1024
    expect_error(s3_required.put_bucket_policy, "MalformedPolicy", 400, Bucket=bucket, Policy=doc)
    expect_error(s3_required.get_bucket_policy, "NoSuchBucketPolicy", 404, Bucket=bucket)


def test_a_user_reads_after_a_grant_by_arn_and_not_before(s3_required, s3_user2, second_user, objects):
    bucket = objects
    with pytest.raises(ClientError) as ei:
        s3_user2.get_object(Bucket=bucket, Key="private/b.txt")
    assert error_code(ei.value) == "AccessDenied"
    s3_required.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "ReadPrivate", "Effect": "Allow",
                       "Principal": {"AWS": f"arn:aws:iam::000000000000:user/{second_user.name}"},
                       "Action": ["s3:GetObject", "s3:ListBucket"],
                       "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/private/*"]}],
    }))
    assert s3_user2.get_object(Bucket=bucket, Key="private/b.txt")["Body"].read() == b"private bytes"
    assert [o["Key"] for o in s3_user2.list_objects_v2(Bucket=bucket)["Contents"]] == \
        ["private/b.txt", "public/a.txt"]
    # Reading is not writing, and the policy itself stays the owner's.
    expect_error(s3_user2.put_object, "AccessDenied", 403, Bucket=bucket, Key="private/c", Body=b"x")
    expect_error(s3_user2.get_bucket_policy, "AccessDenied", 403, Bucket=bucket)
    expect_error(s3_user2.delete_bucket_policy, "AccessDenied", 403, Bucket=bucket)
    # ListBuckets shows a user its own buckets only; anonymous callers nothing.
    assert bucket not in [b["Name"] for b in s3_user2.list_buckets()["Buckets"]]
    assert curl(s3_user2.meta.endpoint_url + "/")[0] == 403


OSS_POLICY = {
    "Version": "1",
    "Statement": [{"Effect": "Allow", "Action": ["oss:GetObject"], "Principal": ["*"],
                   "Resource": ["acs:oss:*:*:{B}/public/*"]}],
}


def test_oss2_put_bucket_policy_in_the_oss_form(server, second_user):
    name = unique_bucket_name("osspolicy")
    bucket = oss2_bucket(server, name, "v4")
    bucket.create_bucket()
    try:
        bucket.put_object("public/a.txt", b"oss public")
        bucket.put_object("private/b.txt", b"oss private")
        text = json.dumps(OSS_POLICY).replace("{B}", name)
        bucket.put_bucket_policy(text)
        assert bucket.get_bucket_policy().policy == text
        assert curl(f"{server.endpoint}/{name}/public/a.txt") == (200, b"oss public")
        assert curl(f"{server.endpoint}/{name}/private/b.txt")[0] == 403
        # A RAM-style grant to a user by name.
        by_name = {"Version": "1", "Statement": [
            {"Effect": "Allow", "Action": ["oss:GetObject"], "Principal": [second_user.name],
             "Resource": [f"acs:oss:*:*:{name}/*"]}]}
        bucket.put_bucket_policy(json.dumps(by_name))
        user_bucket = oss2.Bucket(oss2.AuthV4(second_user.access_key, second_user.secret_key),
                                  server.endpoint, name, region="cn-hangzhou")
        assert user_bucket.get_object("private/b.txt").read() == b"oss private"
        assert curl(f"{server.endpoint}/{name}/public/a.txt")[0] == 403
        with pytest.raises(oss2.exceptions.ServerError) as ei:
            bucket.put_bucket_policy('{"Version":"1","Statement":[{"Effect":"Allow"}]}')
        assert ei.value.status == 400 and ei.value.code == "MalformedPolicy"
        bucket.delete_bucket_policy()
        with pytest.raises(oss2.exceptions.ServerError) as ei:
            user_bucket.get_object("private/b.txt")
        assert ei.value.status == 403 and ei.value.code == "AccessDenied"
    finally:
        destroy_bucket(server.client(checksum="when_required"), name)


def test_decisions_are_in_the_access_log(make_server, tmp_path):
    log = tmp_path / "access.log"
    srv = make_server(extra_args=["--access-log", str(log)])
    c = srv.client(checksum="when_required")
    bucket = unique_bucket_name("authzlog")
    c.create_bucket(Bucket=bucket)
    c.put_object(Bucket=bucket, Key="public/a", Body=b"a")
    c.put_object(Bucket=bucket, Key="public/secret", Body=b"s")
    c.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{bucket}/public/*"},
        {"Sid": "NoSecrets", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{bucket}/public/secret"}]}))
    assert curl(f"{srv.endpoint}/{bucket}/public/a")[0] == 200
    assert curl(f"{srv.endpoint}/{bucket}/public/secret")[0] == 403
    expect_error(c.get_object, "AccessDenied", 403, Bucket=bucket, Key="public/secret")
    deadline = time.monotonic() + 10
    while log.read_text().count("\n") < 7 and time.monotonic() < deadline:
        time.sleep(0.05)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    decisions = [(e["operation"], e["status"], e["authz"]) for e in entries if e["operation"] == "GetObject"]
    assert decisions == [
        ("GetObject", 200, "allowed by bucket policy statement 0 (PublicRead)"),
        ("GetObject", 403, "denied by bucket policy statement 1 (NoSecrets)"),
        ("GetObject", 403, "denied by bucket policy statement 1 (NoSecrets)"),
    ], decisions
    # The refusal tells the signed caller which statement denied it.
    assert "NoSecrets" in expect_error(c.get_object, "AccessDenied", 403, Bucket=bucket,
                                       Key="public/secret").response["Error"]["Message"]
