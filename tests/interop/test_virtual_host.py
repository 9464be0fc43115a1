"""Virtual-host-style addressing: `bucket.<domain>` in the Host header
(`localhost` is always a domain), signed with SigV4 over that host."""

import hashlib

import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def signed(server, method, host, path, body=b""):
    """Signs a request for http://<host><path> and sends it to the server's
    loopback address with that Host header (no DNS needed)."""
    url = f"http://{host}{path}"
    request = AWSRequest(method=method, url=url, data=body,
                         headers={"x-amz-content-sha256": hashlib.sha256(body).hexdigest()})
    S3SigV4Auth(Credentials(server.access_key, server.secret_key), "s3", "us-east-1").add_auth(request)
    headers = dict(request.headers)
    headers["Host"] = host
    return requests.request(method, f"{server.endpoint}{path}", headers=headers, data=body, timeout=30)


def test_virtual_host_put_get_list(server, s3, bucket):
    port = server.endpoint.rsplit(":", 1)[1]
    host = f"{bucket}.localhost:{port}"
    put = signed(server, "PUT", host, "/dir/a%20b.txt", b"virtual hello")
    assert put.status_code == 200, put.text
    # The object is the same one path-style clients see.
    assert s3.get_object(Bucket=bucket, Key="dir/a b.txt")["Body"].read() == b"virtual hello"
    got = signed(server, "GET", host, "/dir/a%20b.txt")
    assert got.status_code == 200 and got.content == b"virtual hello"
    listing = signed(server, "GET", host, "/?list-type=2&prefix=dir%2F")
    assert listing.status_code == 200 and "<Key>dir/a b.txt</Key>" in listing.text
    # The bare domain stays path style.
    bare = signed(server, "GET", f"localhost:{port}", f"/{bucket}/dir/a%20b.txt")
    assert bare.status_code == 200 and bare.content == b"virtual hello"


def test_virtual_host_unknown_bucket(server):
    port = server.endpoint.rsplit(":", 1)[1]
    missing = signed(server, "GET", f"no-such-bucket-x1.localhost:{port}", "/k")
    assert missing.status_code == 404 and "<Code>NoSuchBucket</Code>" in missing.text
