"""CORS (#15): bucket rules through `?cors` in both dialects (aws CLI `s3api put-bucket-cors`,
boto3, oss2 `put_bucket_cors`), the unsigned preflight `OPTIONS` answered from the first
matching rule (403 AccessForbidden otherwise, as S3 words it), the `Access-Control-*` headers on
actual responses, errors included, and headless Chromium fetch()ing from a page on another
origin (a local HTTP server of the test): refused without a rule, allowed with one.

Without chromium the browser test is skipped, unless COFFER_REQUIRE_BROWSER is set.
"""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import oss2
import pytest
import requests

from oss_support import oss2_bucket
from support import (destroy_bucket, expect_error, free_port, md5_b64, sign_request,
                     unique_bucket_name)
from test_console import artifacts, browser  # noqa: F401  (the suite's headless Chromium)

ORIGIN = "http://app.example.com"
RULES = {
    "CORSRules": [
        {"ID": "app", "AllowedOrigins": ["http://*.example.com"], "AllowedMethods": ["GET", "PUT"],
         "AllowedHeaders": ["x-amz-*", "Content-Type"], "ExposeHeaders": ["ETag", "x-amz-request-id"],
         "MaxAgeSeconds": 600},
        {"AllowedOrigins": ["*"], "AllowedMethods": ["HEAD"]},
    ]
}


@pytest.fixture
def cors_bucket(s3_required):
    name = unique_bucket_name("cors")
    s3_required.create_bucket(Bucket=name)
    s3_required.put_object(Bucket=name, Key="hello.txt", Body=b"hello, other origin")
    yield name
    destroy_bucket(s3_required, name)


def preflight(endpoint: str, path: str, origin: str | None = ORIGIN, method: str | None = "PUT",
              headers: str | None = None) -> requests.Response:
    sent = {}
    if origin is not None:
        sent["Origin"] = origin
    if method is not None:
        sent["Access-Control-Request-Method"] = method
    if headers is not None:
        sent["Access-Control-Request-Headers"] = headers
    return requests.options(f"{endpoint}{path}", headers=sent, timeout=10)


def error_of(response: requests.Response) -> dict[str, str]:
    return {child.tag: child.text or "" for child in ET.fromstring(response.content)}


def signed_put_cors(server, bucket: str, body: bytes) -> requests.Response:
    """PutBucketCors with a document boto3 would refuse to send (it validates shapes)."""
    url = f"{server.endpoint}/{bucket}?cors"
    signed = sign_request("PUT", url, server.access_key, server.secret_key,
                          headers={"Content-MD5": md5_b64(body)}, body=body)
    return requests.put(url, data=body, headers=signed.headers, timeout=10)


def test_rules_round_trip_through_the_aws_cli_and_boto3(aws, s3_required, cors_bucket, tmp_path):
    document = tmp_path / "cors.json"
    document.write_text(json.dumps(RULES))
    aws("s3api", "put-bucket-cors", "--bucket", cors_bucket, "--cors-configuration",
        f"file://{document}")
    got = aws.json("s3api", "get-bucket-cors", "--bucket", cors_bucket)
    assert got["CORSRules"] == RULES["CORSRules"]
    assert s3_required.get_bucket_cors(Bucket=cors_bucket)["CORSRules"] == RULES["CORSRules"]
    s3_required.delete_bucket_cors(Bucket=cors_bucket)
    expect_error(s3_required.get_bucket_cors, "NoSuchCORSConfiguration", 404, Bucket=cors_bucket)
    # Deleting rules that are not there is still 204, as on AWS.
    s3_required.delete_bucket_cors(Bucket=cors_bucket)


def test_invalid_rules_are_refused_and_nothing_is_stored(server, s3_required, cors_bucket):
    cases = [
        (b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
         b"<AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>",
         "InvalidRequest", "Found unsupported HTTP method in CORS config"),
        (b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule>"
         b"</CORSConfiguration>", "MalformedXML", None),
        (b"<CORSConfiguration></CORSConfiguration>", "MalformedXML", None),
        (b"<CORSConfiguration><CORSRule><AllowedOrigin>http://*.*.com</AllowedOrigin>"
         b"<AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
         "InvalidRequest", "can not have more than one wildcard"),
        (b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
         b"<AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>soon</MaxAgeSeconds></CORSRule>"
         b"</CORSConfiguration>", "InvalidArgument", None),
    ]
    for body, code, message in cases:
        response = signed_put_cors(server, cors_bucket, body)
        assert response.status_code == 400, response.text
        error = error_of(response)
        assert error["Code"] == code, error
        if message:
            assert message in error["Message"], error
    expect_error(s3_required.get_bucket_cors, "NoSuchCORSConfiguration", 404, Bucket=cors_bucket)
    # S3 requires Content-MD5 (or a checksum) on PutBucketCors.
    body = (b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
            b"<AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>")
    url = f"{server.endpoint}/{cors_bucket}?cors"
    signed = sign_request("PUT", url, server.access_key, server.secret_key, body=body)
    response = requests.put(url, data=body, headers=signed.headers, timeout=10)
    assert response.status_code == 400 and error_of(response)["Code"] == "InvalidRequest"


def test_preflight_answers_from_the_first_matching_rule(server, s3_required, cors_bucket):
    path = f"/{cors_bucket}/hello.txt"
    # No rules yet: refused, as S3 refuses it.
    refused = preflight(server.endpoint, path)
    assert refused.status_code == 403
    assert error_of(refused)["Code"] == "AccessForbidden"
    assert error_of(refused)["Message"].startswith("CORSResponse:")
    s3_required.put_bucket_cors(Bucket=cors_bucket, CORSConfiguration=RULES)

    allowed = preflight(server.endpoint, path, headers="X-Amz-Meta-Color, content-type")
    assert allowed.status_code == 200, allowed.text
    h = allowed.headers
    assert h["Access-Control-Allow-Origin"] == ORIGIN
    assert h["Access-Control-Allow-Methods"] == "GET, PUT"
    assert h["Access-Control-Allow-Headers"].lower() == "x-amz-meta-color, content-type"
    assert h["Access-Control-Max-Age"] == "600"
    assert h["Access-Control-Expose-Headers"] == "ETag, x-amz-request-id"
    assert h["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in h["Vary"]
    # The wildcard rule answers `*` (and allows no credentials).
    anyone = preflight(server.endpoint, path, origin="http://elsewhere.test", method="HEAD")
    assert anyone.status_code == 200
    assert anyone.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in anyone.headers

    for origin, method, headers in [
        ("http://app.example.org", "PUT", None),        # origin not allowed
        (ORIGIN, "DELETE", None),                        # method not allowed
        (ORIGIN, "PUT", "authorization, x-custom"),     # a header no rule allows
    ]:
        no = preflight(server.endpoint, path, origin=origin, method=method, headers=headers)
        assert no.status_code == 403, (origin, method, headers)
        assert error_of(no)["Message"].startswith("CORSResponse: This CORS request is not allowed.")
        assert "Access-Control-Allow-Origin" not in no.headers
    # Missing request information is a bad request; an unknown bucket is forbidden.
    missing = preflight(server.endpoint, path, origin=None)
    assert missing.status_code == 400 and error_of(missing)["Code"] == "BadRequest"
    assert preflight(server.endpoint, path, method=None).status_code == 400
    assert preflight(server.endpoint, f"/{unique_bucket_name('none')}/k").status_code == 403


def test_actual_responses_carry_the_rule_headers_errors_included(server, s3_required, cors_bucket):
    s3_required.put_bucket_cors(Bucket=cors_bucket, CORSConfiguration=RULES)

    def get(key: str, origin: str) -> requests.Response:
        url = f"{server.endpoint}/{cors_bucket}/{key}"
        signed = sign_request("GET", url, server.access_key, server.secret_key)
        return requests.get(url, headers={**signed.headers, "Origin": origin}, timeout=10)

    ok = get("hello.txt", ORIGIN)
    assert ok.status_code == 200 and ok.content == b"hello, other origin"
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert ok.headers["Access-Control-Expose-Headers"] == "ETag, x-amz-request-id"
    missing = get("no-such-key", ORIGIN)
    assert missing.status_code == 404
    assert missing.headers["Access-Control-Allow-Origin"] == ORIGIN, "errors carry the headers too"
    other = get("hello.txt", "http://app.example.org")
    assert other.status_code == 200
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Origin" in other.headers["Vary"]
    # Without an Origin header nothing changes.
    url = f"{server.endpoint}/{cors_bucket}/hello.txt"
    plain = requests.get(url, headers=sign_request("GET", url, server.access_key,
                                                   server.secret_key).headers, timeout=10)
    assert "Access-Control-Allow-Origin" not in plain.headers


@pytest.mark.parametrize("kind", ["v1", "v4"])
def test_oss2_put_get_delete_bucket_cors(server, kind):
    name = unique_bucket_name(f"oss-cors-{kind}")
    bucket = oss2_bucket(server, name, kind)
    bucket.create_bucket()
    try:
        rule = oss2.models.CorsRule(allowed_origins=["http://*.example.com"],
                                    allowed_methods=["GET", "POST"], allowed_headers=["x-oss-*"],
                                    expose_headers=["ETag"], max_age_seconds=100)
        bucket.put_bucket_cors(oss2.models.BucketCors([rule]))
        got = bucket.get_bucket_cors().rules
        assert len(got) == 1
        assert (got[0].allowed_origins, got[0].allowed_methods, got[0].allowed_headers,
                got[0].expose_headers, got[0].max_age_seconds) == (
            ["http://*.example.com"], ["GET", "POST"], ["x-oss-*"], ["ETag"], 100)
        answer = preflight(server.endpoint, f"/{name}/k", method="POST", headers="x-oss-meta-a")
        assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == ORIGIN
        bad = oss2.models.CorsRule(allowed_origins=["*"], allowed_methods=["PATCH"])
        with pytest.raises(oss2.exceptions.OssError) as refused:
            bucket.put_bucket_cors(oss2.models.BucketCors([bad]))
        assert refused.value.status == 400
        assert refused.value.details.get("EC") == "0034-00000011", refused.value.details
        bucket.delete_bucket_cors()
        with pytest.raises(oss2.exceptions.NoSuchCors) as missing:
            bucket.get_bucket_cors()
        assert missing.value.details.get("EC") == "0034-00000001", missing.value.details
    finally:
        bucket.delete_bucket()


# --------------------------------------------------------------------------- in a browser


class _Page(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = b"<!doctype html><title>other origin</title><p>a page on another origin</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def page_origin():
    """A tiny HTTP server on another port: the page's origin."""
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), _Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


FETCH = """
const [url, options, done] = arguments;
fetch(url, options)
  .then(async r => done({status: r.status, body: await r.text(), etag: r.headers.get('ETag')}))
  .catch(e => done({error: String(e)}));
"""


POST_FORM = """
const [url, fields, done] = arguments;
const form = new FormData();
for (const [name, value] of Object.entries(fields)) form.append(name, value);
form.append('file', new Blob(['posted by a script'], {type: 'text/plain'}), 'script.txt');
fetch(url, {method: 'POST', body: form})
  .then(async r => done({status: r.status, body: await r.text()}))
  .catch(e => done({error: String(e)}));
"""


def test_browser_fetch_from_another_origin(browser, page_origin, server, s3_required, cors_bucket):  # noqa: F811
    browser.set_script_timeout(30)
    browser.get(f"{page_origin}/")
    get_url = s3_required.generate_presigned_url(
        "get_object", Params={"Bucket": cors_bucket, "Key": "hello.txt"}, ExpiresIn=600)
    put_url = s3_required.generate_presigned_url(
        "put_object", Params={"Bucket": cors_bucket, "Key": "from-browser.txt"}, ExpiresIn=600)

    blocked = browser.execute_async_script(FETCH, get_url, {})
    assert "error" in blocked, f"read across origins without a rule: {blocked}"
    refused_put = browser.execute_async_script(FETCH, put_url, {"method": "PUT", "body": "x"})
    assert "error" in refused_put, refused_put
    expect_error(s3_required.head_object, None, 404, Bucket=cors_bucket, Key="from-browser.txt")

    s3_required.put_bucket_cors(Bucket=cors_bucket, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": [page_origin], "AllowedMethods": ["GET", "PUT", "POST"],
         "AllowedHeaders": ["content-type"], "ExposeHeaders": ["ETag"]}]})
    read = browser.execute_async_script(FETCH, get_url, {})
    assert read.get("status") == 200 and read["body"] == "hello, other origin", read
    assert read["etag"], "the exposed ETag is readable by the page"
    # PUT is preflighted; the rule allows it, and the object lands.
    written = browser.execute_async_script(
        FETCH, put_url, {"method": "PUT", "body": "written by the page",
                         "headers": {"Content-Type": "text/plain"}})
    assert written.get("status") == 200, written
    body = s3_required.get_object(Bucket=cors_bucket, Key="from-browser.txt")["Body"].read()
    assert body == b"written by the page"
    # A form upload posted by the page's script (FormData: no preflight), whose answer the
    # page may read because the rule allows POST from its origin.
    form = s3_required.generate_presigned_post(
        cors_bucket, "posted-by-script.txt", Fields={"success_action_status": "201"},
        Conditions=[{"success_action_status": "201"}], ExpiresIn=600)
    posted = browser.execute_async_script(POST_FORM, form["url"], form["fields"])
    assert posted.get("status") == 201 and "<PostResponse" in posted["body"], posted
    body = s3_required.get_object(Bucket=cors_bucket, Key="posted-by-script.txt")["Body"].read()
    assert body == b"posted by a script"
    # A header the rule does not allow fails the preflight: nothing is sent.
    s3_required.delete_object(Bucket=cors_bucket, Key="from-browser.txt")
    denied = browser.execute_async_script(
        FETCH, put_url, {"method": "PUT", "body": "x", "headers": {"X-Not-Allowed": "1"}})
    assert "error" in denied, denied
    expect_error(s3_required.head_object, None, 404, Bucket=cors_bucket, Key="from-browser.txt")
