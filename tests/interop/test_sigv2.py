"""Legacy AWS Signature Version 2: presigned URLs from `aws s3 presign` (aws CLI v1) and
`Authorization: AWS <ak>:<sig>` header auth from boto3 with `signature_version="s3"`.

The session `aws` fixture pins `signature_version = s3v4` in its config file; SigV2 presigning
is botocore's default only when no signature version is configured, so `aws_v2` runs the same
CLI with the same credentials and a config file without it.
"""

from __future__ import annotations

import time
import urllib.parse
import uuid

import boto3
import pytest
import requests
from botocore.config import Config

from support import REGION, AwsCli, expect_error


@pytest.fixture(scope="module")
def aws_v2(aws: AwsCli, tmp_path_factory) -> AwsCli:
    cli = AwsCli.__new__(AwsCli)
    cli.endpoint = aws.endpoint
    cli.config_file = tmp_path_factory.mktemp("awscli-v2") / "aws-config"
    cli.config_file.write_text(f"[default]\nregion = {REGION}\ns3 =\n    addressing_style = path\n")
    cli.env = dict(aws.env, AWS_CONFIG_FILE=str(cli.config_file))
    return cli


@pytest.fixture(scope="module")
def s3_v2(server):
    """boto3 signing every request with SigV2 (`Authorization: AWS …`)."""
    session = boto3.session.Session(
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=REGION,
    )
    cfg = Config(
        region_name=REGION,
        signature_version="s3",
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1, "mode": "standard"},
    )
    return session.client("s3", endpoint_url=server.endpoint, config=cfg)


@pytest.fixture
def v2_object(aws: AwsCli, bucket, tmp_path):
    """A bucket holding one object (uploaded with SigV4), with an awkward key."""
    key = f"dir/sig v2+{uuid.uuid4().hex[:6]}~é.txt"
    body = b"signed the old way\n" * 3
    src = tmp_path / "obj"
    src.write_bytes(body)
    aws("s3", "cp", str(src), f"s3://{bucket}/{key}")
    return bucket, key, body


def presign(cli: AwsCli, bucket: str, key: str, *extra: str) -> str:
    url = cli("s3", "presign", f"s3://{bucket}/{key}", *extra).stdout.strip()
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert set(query) == {"AWSAccessKeyId", "Expires", "Signature"}, url
    return url


def error_code(response: requests.Response) -> str:
    text = response.text
    start = text.find("<Code>")
    return text[start + 6:text.find("</Code>")] if start >= 0 else ""


def test_presigned_get(aws_v2, v2_object):
    bucket, key, body = v2_object
    url = presign(aws_v2, bucket, key)
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.content == body
    # A HEAD with the GET signature does not verify.
    head = requests.head(url, timeout=30)
    assert head.status_code == 403


def test_expired_presign_is_refused(aws_v2, v2_object):
    bucket, key, _ = v2_object
    url = presign(aws_v2, bucket, key, "--expires-in", "1")
    time.sleep(2.2)
    response = requests.get(url, timeout=30)
    assert response.status_code == 403, response.text
    assert error_code(response) == "AccessDenied"
    assert "expired" in response.text


def test_tampered_presign_is_refused(aws_v2, v2_object):
    bucket, key, _ = v2_object
    url = presign(aws_v2, bucket, key)
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parts.query)
    signature = query["Signature"][0]
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    tampered = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(
        {"AWSAccessKeyId": query["AWSAccessKeyId"][0], "Expires": query["Expires"][0],
         "Signature": flipped})))
    response = requests.get(tampered, timeout=30)
    assert response.status_code == 403, response.text
    assert error_code(response) == "SignatureDoesNotMatch"
    # So is another key under the same signature.
    other = url.replace(urllib.parse.quote(key.split("/")[-1]), "other.txt")
    assert other != url
    response = requests.get(other, timeout=30)
    assert (response.status_code, error_code(response)) == (403, "SignatureDoesNotMatch")


def test_boto3_sigv2_header_auth(s3_v2, bucket):
    key = "v2/hello world+é.bin"
    s3_v2.put_object(Bucket=bucket, Key=key, Body=b"abc" * 100, ContentType="text/plain",
                     Metadata={"who": "sigv2"})
    got = s3_v2.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == b"abc" * 100
    assert got["Metadata"] == {"who": "sigv2"}
    assert got["ContentType"] == "text/plain"
    listed = s3_v2.list_objects_v2(Bucket=bucket, Prefix="v2/")
    assert [o["Key"] for o in listed["Contents"]] == [key]
    assert bucket in [b["Name"] for b in s3_v2.list_buckets()["Buckets"]]
    s3_v2.delete_object(Bucket=bucket, Key=key)
    assert s3_v2.list_objects_v2(Bucket=bucket, Prefix="v2/")["KeyCount"] == 0


def test_boto3_sigv2_wrong_secret(server, bucket):
    session = boto3.session.Session(aws_access_key_id=server.access_key,
                                    aws_secret_access_key="not-the-secret", region_name=REGION)
    client = session.client("s3", endpoint_url=server.endpoint, config=Config(
        signature_version="s3", s3={"addressing_style": "path"},
        retries={"max_attempts": 1, "mode": "standard"}))
    expect_error(client.list_objects_v2, "SignatureDoesNotMatch", 403, Bucket=bucket)
