"""Browser form uploads (#15): S3 POST Object with boto3's `generate_presigned_post` (SigV4, and
SigV2 with `signature_version="s3"`), OSS PostObject with V1 and V4 policy signatures, and the
browser Must-show: headless Chromium submits an HTML form with a signed policy; the object lands
SSE-encrypted (HEAD shows the header, the blobs on disk do not hold the plaintext); the same
form with one byte of the policy changed is refused and nothing is stored.

oss2 has no PostObject helper, so the OSS forms are built here from Alibaba Cloud's documented
algorithms (OSS API reference, "PostObject" and "Signature version 4 for PostObject"):
V1 `Signature = base64(HMAC-SHA1(AccessKeySecret, base64(policy)))` with `OSSAccessKeyId`;
V4 `x-oss-signature = hex(HMAC-SHA256(SigningKey, base64(policy)))`, the signing key chained
from `"aliyun_v4" + secret` over the date, the region, `oss` and `aliyun_v4_request`, with
`x-oss-signature-version`, `x-oss-credential` and `x-oss-date` also in the policy's conditions.

Without chromium the browser test is skipped, unless COFFER_REQUIRE_BROWSER is set.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import html
import json
import os
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
import requests
from botocore.config import Config

from oss_support import OSS_REGION, oss2_bucket
from support import (REGION, blob_files, destroy_bucket, expect_error, find_in_files, free_port,
                     kms_client, opt_out_of_encryption, unique_bucket_name, windows)
from test_console import artifacts, browser  # noqa: F401  (the suite's headless Chromium)

S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@pytest.fixture
def post_bucket(s3_required):
    name = unique_bucket_name("post")
    s3_required.create_bucket(Bucket=name)
    yield name
    destroy_bucket(s3_required, name)


def post(endpoint: str, bucket: str, fields: dict, content: bytes, filename: str = "upload.bin",
         **kwargs) -> requests.Response:
    """The form as a browser sends it: the fields in order, the file last."""
    return requests.post(f"{endpoint}/{bucket}", data=fields,
                         files={"file": (filename, content, "application/octet-stream")},
                         allow_redirects=False, timeout=60, **kwargs)


def error_of(response: requests.Response) -> dict[str, str]:
    return {child.tag: child.text or "" for child in ET.fromstring(response.content)}


def assert_refused(response, status: int, code: str, message: str | None = None) -> None:
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    error = error_of(response)
    assert error["Code"] == code, error
    if message is not None:
        assert message in error["Message"], error


def tamper(policy: str) -> str:
    """The policy with one byte changed (still base64 of JSON-looking bytes)."""
    raw = bytearray(base64.b64decode(policy))
    at = raw.index(b"20")  # a digit of the expiration's year
    raw[at + 1] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


# --------------------------------------------------------------------------- S3, SigV4


def test_presigned_post_lands_encrypted_with_kms(server, s3_required, post_bucket):
    key_id = kms_client(server).create_key(Description="post upload")["KeyMetadata"]["KeyId"]
    fields = {
        "x-amz-server-side-encryption": "aws:kms",
        "x-amz-server-side-encryption-aws-kms-key-id": key_id,
        "x-amz-meta-origin": "form",
        "Content-Type": "text/plain",
        "success_action_status": "201",
    }
    conditions = [{k: v} for k, v in fields.items()] + [["content-length-range", 1, 4 << 20]]
    form = s3_required.generate_presigned_post(post_bucket, "uploads/${filename}", Fields=fields,
                                               Conditions=conditions + [["starts-with", "$key", "uploads/"]],
                                               ExpiresIn=600)
    content = os.urandom(3 << 20)
    response = post(server.endpoint, post_bucket, form["fields"], content, filename="photo.jpg")
    assert response.status_code == 201, response.text
    doc = ET.fromstring(response.content)
    assert doc.tag == f"{S3_NS}PostResponse"
    etag = f'"{hashlib.md5(content).hexdigest()}"'
    assert doc.findtext(f"{S3_NS}Bucket") == post_bucket
    assert doc.findtext(f"{S3_NS}Key") == "uploads/photo.jpg"
    assert doc.findtext(f"{S3_NS}ETag") == etag
    assert response.headers["ETag"] == etag
    assert response.headers["x-amz-server-side-encryption"] == "aws:kms"

    head = s3_required.head_object(Bucket=post_bucket, Key="uploads/photo.jpg")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith(key_id)
    assert head["Metadata"] == {"origin": "form"}
    assert head["ContentType"] == "text/plain"
    assert head["ContentLength"] == len(content)
    got = s3_required.get_object(Bucket=post_bucket, Key="uploads/photo.jpg")["Body"].read()
    assert got == content


def test_success_action_redirect_and_default_status(server, s3_required, post_bucket):
    redirect = "http://app.example.com/done?step=1"
    form = s3_required.generate_presigned_post(
        post_bucket, "redirected.txt", Fields={"success_action_redirect": redirect},
        Conditions=[{"success_action_redirect": redirect}], ExpiresIn=600)
    response = post(server.endpoint, post_bucket, form["fields"], b"to be redirected")
    assert response.status_code == 303, response.text
    location = urllib.parse.urlsplit(response.headers["Location"])
    query = urllib.parse.parse_qs(location.query)
    assert location.netloc == "app.example.com" and query["step"] == ["1"]
    assert query["bucket"] == [post_bucket] and query["key"] == ["redirected.txt"]
    assert query["etag"] == [f'"{hashlib.md5(b"to be redirected").hexdigest()}"']
    # Without status or redirect: 204, and sealed by the server's default (AES256).
    form = s3_required.generate_presigned_post(post_bucket, "plain-default.txt", ExpiresIn=600)
    response = post(server.endpoint, post_bucket, form["fields"], b"default")
    assert response.status_code == 204 and response.content == b""
    assert s3_required.head_object(Bucket=post_bucket, Key="plain-default.txt")[
        "ServerSideEncryption"] == "AES256"


def test_sigv2_policy_signature(server, post_bucket, s3_required):
    v2 = boto3.session.Session(aws_access_key_id=server.access_key,
                               aws_secret_access_key=server.secret_key,
                               region_name=REGION).client(
        "s3", endpoint_url=server.endpoint,
        config=Config(signature_version="s3", s3={"addressing_style": "path"}))
    form = v2.generate_presigned_post(post_bucket, "v2.txt", ExpiresIn=600)
    assert "AWSAccessKeyId" in form["fields"] and "signature" in form["fields"]
    assert post(server.endpoint, post_bucket, form["fields"], b"v2 form").status_code == 204
    assert s3_required.get_object(Bucket=post_bucket, Key="v2.txt")["Body"].read() == b"v2 form"
    fields = dict(form["fields"], policy=tamper(form["fields"]["policy"]))
    assert_refused(post(server.endpoint, post_bucket, fields, b"x"), 403, "SignatureDoesNotMatch")


def with_tampered_policy(fields: dict) -> dict:
    return dict(fields, policy=tamper(fields["policy"]))


def with_unknown_access_key(fields: dict) -> dict:
    scope = fields["x-amz-credential"].split("/", 1)[1]
    return dict(fields, **{"x-amz-credential": f"NOSUCHKEY/{scope}"})


def _form(s3, bucket, key, **kwargs):
    return s3.generate_presigned_post(bucket, key, ExpiresIn=600, **kwargs)["fields"]


def signed_fields(server, policy_text: str) -> dict:
    """A SigV4 form for key `k1` whose policy is base64 of `policy_text`, correctly signed (to
    test documents boto3 would not write)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    date, stamp = now.strftime("%Y%m%d"), now.strftime("%Y%m%dT%H%M%SZ")
    credential = f"{server.access_key}/{date}/{REGION}/s3/aws4_request"
    policy = base64.b64encode(policy_text.encode()).decode()
    key = f"AWS4{server.secret_key}".encode()
    for part in (date, REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return {"key": "k1", "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": credential,
            "x-amz-date": stamp, "policy": policy,
            "x-amz-signature": hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()}


def test_refusals_store_nothing(server, s3_required, post_bucket):
    endpoint = server.endpoint
    sized = [["content-length-range", 5, 10]]
    cases = [
        ("tampered policy", lambda: with_tampered_policy(_form(s3_required, post_bucket, "k1")),
         b"data", 403, "SignatureDoesNotMatch", None),
        ("expired policy",
         lambda: s3_required.generate_presigned_post(post_bucket, "k1", ExpiresIn=-60)["fields"],
         b"data", 403, "AccessDenied", "Invalid according to Policy: Policy expired."),
        ("extra field", lambda: dict(_form(s3_required, post_bucket, "k1"), **{"x-amz-meta-extra": "1"}),
         b"data", 403, "AccessDenied", "Invalid according to Policy: Extra input fields: x-amz-meta-extra"),
        ("condition failed",
         lambda: dict(_form(s3_required, post_bucket, "k1",
                            Conditions=[["starts-with", "$key", "k1"]]), key="elsewhere"),
         b"data", 403, "AccessDenied", "Policy Condition failed: [\"starts-with\", \"$key\", \"k1\"]"),
        ("oversize", lambda: _form(s3_required, post_bucket, "k1", Conditions=sized),
         b"x" * 11, 400, "EntityTooLarge", None),
        ("undersize", lambda: _form(s3_required, post_bucket, "k1", Conditions=sized),
         b"x" * 4, 400, "EntityTooSmall", None),
        ("wrong bucket condition",
         lambda: signed_fields(server, json.dumps({
             "expiration": "2099-01-01T00:00:00Z",
             "conditions": [{"bucket": "another-bucket"}, ["starts-with", "$key", ""],
                            {"x-amz-algorithm": "AWS4-HMAC-SHA256"}, ["starts-with", "$x-amz-credential", ""],
                            ["starts-with", "$x-amz-date", ""]]})),
         b"data", 403, "AccessDenied", "Policy Condition failed: [\"eq\", \"$bucket\", \"another-bucket\"]"),
        ("policy not JSON", lambda: signed_fields(server, "not json at all"),
         b"data", 400, "InvalidPolicyDocument", None),
        ("no key", lambda: {k: v for k, v in _form(s3_required, post_bucket, "k1").items() if k != "key"},
         b"data", 400, "InvalidArgument", "must contain a field named 'key'"),
        ("unknown access key", lambda: with_unknown_access_key(_form(s3_required, post_bucket, "k1")),
         b"data", 403, "InvalidAccessKeyId", None),
        ("anonymous", lambda: {"key": "k1"}, b"data", 403, "AccessDenied", None),
        ("public acl", lambda: _form(s3_required, post_bucket, "k1", Fields={"acl": "public-read"},
                                     Conditions=[{"acl": "public-read"}]),
         b"data", 501, "NotImplemented", None),
    ]
    for name, fields, content, status, code, message in cases:
        response = post(endpoint, post_bucket, fields(), content)
        try:
            assert_refused(response, status, code, message)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc
        expect_error(s3_required.head_object, None, 404, Bucket=post_bucket, Key="k1")
    # No file part at all.
    response = requests.post(f"{endpoint}/{post_bucket}", files={"key": (None, "k1")}, timeout=30)
    assert_refused(response, 400, "InvalidArgument", "exactly one file upload")
    # Not multipart/form-data underneath its Content-Type.
    response = requests.post(f"{endpoint}/{post_bucket}", data=b"--x\r\nnonsense",
                             headers={"Content-Type": "multipart/form-data; boundary=x"}, timeout=30)
    assert_refused(response, 400, "MalformedPOSTRequest")
    assert s3_required.list_objects_v2(Bucket=post_bucket).get("KeyCount") == 0


# --------------------------------------------------------------------------- OSS


def oss_form(server, bucket: str, key: str, version: str, extra: dict[str, str] | None = None,
             secret: str | None = None) -> dict[str, str]:
    """An OSS PostObject form, signed as Alibaba Cloud documents it (module docstring)."""
    secret = secret or server.secret_key
    now = datetime.datetime.now(datetime.timezone.utc)
    fields = {"key": key, **(extra or {})}
    conditions = [{"bucket": bucket}, ["eq", "$key", key]] + [{k: v} for k, v in (extra or {}).items()]
    if version == "v4":
        date = now.strftime("%Y%m%d")
        fields |= {"x-oss-signature-version": "OSS4-HMAC-SHA256",
                   "x-oss-credential": f"{server.access_key}/{date}/{OSS_REGION}/oss/aliyun_v4_request",
                   "x-oss-date": now.strftime("%Y%m%dT%H%M%SZ")}
        conditions += [{k: fields[k]} for k in ("x-oss-signature-version", "x-oss-credential", "x-oss-date")]
    document = {"expiration": (now + datetime.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "conditions": conditions}
    policy = base64.b64encode(json.dumps(document).encode()).decode()
    fields["policy"] = policy
    if version == "v1":
        fields["OSSAccessKeyId"] = server.access_key
        fields["Signature"] = base64.b64encode(
            hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()).decode()
    else:
        signing_key = f"aliyun_v4{secret}".encode()
        for part in (now.strftime("%Y%m%d"), OSS_REGION, "oss", "aliyun_v4_request"):
            signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
        fields["x-oss-signature"] = hmac.new(signing_key, policy.encode(), hashlib.sha256).hexdigest()
    return fields


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_oss_post_object(server, version):
    name = unique_bucket_name(f"oss-post-{version}")
    bucket = oss2_bucket(server, name, "v1")
    bucket.create_bucket()
    try:
        extra = {"x-oss-server-side-encryption": "AES256", "x-oss-meta-via": "postobject",
                 "success_action_status": "200"}
        fields = oss_form(server, name, "oss/form.txt", version, extra)
        response = post(server.endpoint, name, fields, b"posted to OSS")
        assert response.status_code == 200, response.text
        assert response.headers["x-oss-server-side-encryption"] == "AES256"
        head = bucket.head_object("oss/form.txt")
        assert head.headers["x-oss-server-side-encryption"] == "AES256"
        assert head.headers["x-oss-meta-via"] == "postobject"
        assert bucket.get_object("oss/form.txt").read() == b"posted to OSS"

        tampered = dict(fields, policy=tamper(fields["policy"]), key="oss/tampered.txt")
        refused = post(server.endpoint, name, tampered, b"nope")
        assert_refused(refused, 403, "SignatureDoesNotMatch")
        assert "EC" in error_of(refused), "an OSS error document (the form speaks OSS)"
        wrong = oss_form(server, name, "oss/wrong.txt", version, secret="not-the-secret")
        assert_refused(post(server.endpoint, name, wrong, b"nope"), 403, "SignatureDoesNotMatch")
        for key in ("oss/tampered.txt", "oss/wrong.txt"):
            assert not bucket.object_exists(key)
    finally:
        for obj in bucket.list_objects().object_list:
            bucket.delete_object(obj.key)
        bucket.delete_bucket()


# --------------------------------------------------------------------------- in a browser


class _Pages(BaseHTTPRequestHandler):
    """Serves the form page (set by the test) and the redirect target."""

    form_html = b""

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path.startswith("/done"):
            body = b"<!doctype html><title>done</title><p id=done>uploaded</p>"
        else:
            body = self.form_html
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def form_page(action: str, fields: dict[str, str]) -> bytes:
    hidden = "\n".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                       for k, v in fields.items())
    return f"""<!doctype html><title>upload</title>
<form id="upload" method="post" action="{html.escape(action)}" enctype="multipart/form-data">
{hidden}
<input type="file" name="file" id="file">
<button type="submit" id="send">Upload</button>
</form>""".encode()


def test_browser_form_upload_lands_encrypted_and_a_tampered_one_is_refused(browser, make_server,  # noqa: F811
                                                                           tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    srv = make_server()
    s3 = srv.client(checksum="when_required")
    bucket = unique_bucket_name("browser-post")
    s3.create_bucket(Bucket=bucket)
    key_id = kms_client(srv).create_key(Description="browser form")["KeyMetadata"]["KeyId"]

    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), _Pages)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        plaintext = os.urandom(512 * 1024)
        upload = tmp_path / "report.bin"
        upload.write_bytes(plaintext)
        fields = {"x-amz-server-side-encryption": "aws:kms",
                  "x-amz-server-side-encryption-aws-kms-key-id": key_id,
                  "success_action_redirect": f"{origin}/done"}
        form = s3.generate_presigned_post(
            bucket, "browser/${filename}", Fields=fields,
            Conditions=[{k: v} for k, v in fields.items()] + [["starts-with", "$key", "browser/"]],
            ExpiresIn=600)

        def submit(form_fields: dict[str, str]) -> None:
            _Pages.form_html = form_page(f"{srv.endpoint}/{bucket}", form_fields)
            browser.get(f"{origin}/form")
            browser.find_element(By.ID, "file").send_keys(str(upload))
            browser.find_element(By.ID, "send").click()

        submit(form["fields"])
        WebDriverWait(browser, 30).until(lambda d: d.current_url.startswith(f"{origin}/done"))
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(browser.current_url).query)
        assert query["key"] == ["browser/report.bin"] and query["bucket"] == [bucket]
        head = s3.head_object(Bucket=bucket, Key="browser/report.bin")
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"].endswith(key_id)
        assert s3.get_object(Bucket=bucket, Key="browser/report.bin")["Body"].read() == plaintext
        blobs = blob_files(srv.data_dir)
        needles = {f"plaintext[{i}]": w for i, w in enumerate(windows(plaintext))}
        assert find_in_files(blobs, needles) == [], "the uploaded plaintext is on disk"

        # The same form with one byte of the policy changed: refused, nothing stored.
        submit(dict(form["fields"], policy=tamper(form["fields"]["policy"])))
        WebDriverWait(browser, 30).until(lambda d: "SignatureDoesNotMatch" in d.page_source)
        s3.delete_object(Bucket=bucket, Key="browser/report.bin")
        expect_error(s3.head_object, None, 404, Bucket=bucket, Key="browser/report.bin")
        assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0

        # The scan itself works: a plaintext control (a bucket opted out of encryption,
        # uploaded through the same form path) is found.
        control_bucket = unique_bucket_name("browser-plain")
        s3.create_bucket(Bucket=control_bucket)
        opt_out_of_encryption(s3, control_bucket)
        plain_form = s3.generate_presigned_post(control_bucket, "control.bin", ExpiresIn=600)
        response = post(srv.endpoint, control_bucket, plain_form["fields"], plaintext)
        assert response.status_code == 204, response.text
        hits = find_in_files(blob_files(srv.data_dir), needles)
        assert len({hit.split(" in ")[0] for hit in hits}) == len(needles), hits
    finally:
        httpd.shutdown()
        httpd.server_close()
