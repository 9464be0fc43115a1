"""Malformed and hostile requests, table-driven: each gets the right S3/OSS error, the
server stays up, and nothing is stored.

Every case builds its request by hand (signed with botocore's SigV4 signer, or an OSS V1
signature, whenever the case is about something other than the signature) and sends it
over a raw socket, so that framing itself can be broken: wrong Content-Length, bodies cut
short, invalid header bytes, bad chunk sizes. After each case the server must still answer
a normal request and every key the case tried to write must be absent.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import hashlib
import hmac
import http.client
import json
import socket
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable
from unittest import mock

import oss2
import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from support import (
    REGION,
    ServerFactory,
    chunk_signature,
    crc32_b64,
    destroy_bucket,
    md5_b64,
    sign_request,
    sigv4_signing_key,
    unique_bucket_name,
)

# Short limits so that stalled bodies are answered within the test's patience.
BODY_READ_TIMEOUT_S = 2
OBJECT = b"0123456789"
UNSIGNED = "UNSIGNED-PAYLOAD"


# --------------------------------------------------------------------------- fixtures


@dataclass
class Ctx:
    """What every case needs: the server, a plain bucket (holding OBJECT under `obj`,
    and an open multipart upload for `mpu`) and a bucket with default encryption."""

    srv: object
    s3: object
    plain: str
    enc: str
    upload_id: str
    obj: str = "obj"
    mpu: str = "mpu-target"

    @property
    def port(self) -> int:
        return self.srv.port


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    factory = ServerFactory(tmp_path_factory.mktemp("bad-input"))
    srv = factory(extra_args=["--allow-insecure-sse-c",
                              "--body-read-timeout", str(BODY_READ_TIMEOUT_S)])
    s3 = srv.client(checksum="when_required")
    plain, enc = unique_bucket_name("bad"), unique_bucket_name("bad-enc")
    s3.create_bucket(Bucket=plain)
    s3.create_bucket(Bucket=enc)
    s3.put_bucket_encryption(Bucket=enc, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_object(Bucket=plain, Key="obj", Body=OBJECT)
    upload_id = s3.create_multipart_upload(Bucket=plain, Key="mpu-target")["UploadId"]
    try:
        yield Ctx(srv, s3, plain, enc, upload_id)
        # Nothing any case sent was stored: the buckets hold exactly what the fixture put.
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=plain).get("Contents", [])]
        assert keys == ["obj"], f"bad requests left objects behind: {keys}"
        assert not s3.list_objects_v2(Bucket=enc).get("Contents"), "bad requests stored objects"
        for b in (plain, enc):
            destroy_bucket(s3, b)
        assert srv.stop() in (0, -15), srv.log_text()[-3000:]
        log = srv.log_text()
        assert "panicked" not in log, log[-3000:]
        # No bad request may end in an internal error: each has a client error of its own.
        assert "status=5" not in log.replace("\x1b[", ""), [
            line for line in log.splitlines() if "status=5" in line]
    finally:
        factory.stop_all(remove_data=True)


# --------------------------------------------------------------------------- the wire


@dataclass
class Reply:
    """One HTTP response read off a raw socket; status None: closed without an answer."""

    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def exchange(port: int, data: bytes, *, half_close: bool = False, head: bool = False,
             timeout: float = 10) -> Reply:
    """Send raw bytes, optionally shut our write side, and read one response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (and close) before reading everything
        resp = http.client.HTTPResponse(sock, method="HEAD" if head else "GET")
        try:
            resp.begin()
            body = resp.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, http.client.IncompleteRead):
            return Reply(None)
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)


def raw_request(ctx: Ctx, method: str, path: str, headers: dict[str, str], body: bytes = b"", *,
                content_length: int | str | None = None, extra: bytes = b"") -> bytes:
    """The bytes of an HTTP/1.1 request; Content-Length is the body's unless overridden
    (or left out when a Transfer-Encoding is given)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{ctx.port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    elif not any(k.lower() == "transfer-encoding" for k in headers):
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode() + b"\r\n" + extra + b"\r\n" + body


def s3_signed(ctx: Ctx, method: str, path: str, body: bytes = b"", headers: dict | None = None, *,
              payload_hash: str | None = None, secret: str | None = None,
              when: datetime.datetime | None = None) -> dict[str, str]:
    """Headers of a SigV4-signed request (botocore's signer); the hash is the body's by default."""
    sr = sign_request(method, ctx.srv.endpoint + path, ctx.srv.access_key,
                      secret or ctx.srv.secret_key, headers=headers, body=body,
                      payload_hash=payload_hash, when=when)
    return sr.headers


def s3_send(ctx: Ctx, method: str, path: str, body: bytes = b"", headers: dict | None = None, *,
            payload_hash: str | None = None, secret: str | None = None,
            when: datetime.datetime | None = None, content_length=None, sent_body: bytes | None = None,
            half_close: bool = False) -> Reply:
    """A SigV4-signed request over a raw socket; `sent_body` replaces the signed body on the wire."""
    signed = s3_signed(ctx, method, path, body, headers, payload_hash=payload_hash, secret=secret,
                       when=when)
    wire = raw_request(ctx, method, path, signed, body if sent_body is None else sent_body,
                       content_length=content_length)
    return exchange(ctx.port, wire, half_close=half_close, head=method == "HEAD")


def oss_send(ctx: Ctx, method: str, bucket: str, key: str = "", body: bytes = b"",
             headers: dict | None = None, *, subresource: str = "", secret: str | None = None) -> Reply:
    """An OSS V1-signed request (HMAC-SHA1 over verb, MD5, type, date, x-oss-* headers and
    the resource) over a raw socket."""
    headers = dict(headers or {})
    headers.setdefault("Date", email.utils.formatdate(usegmt=True))
    lower = {k.lower(): v for k, v in headers.items()}
    oss_headers = "".join(f"{k}:{lower[k].strip()}\n" for k in sorted(lower) if k.startswith("x-oss-"))
    resource = f"/{bucket}/{key}" + (f"?{subresource}" if subresource else "")
    to_sign = "\n".join([method, lower.get("content-md5", ""), lower.get("content-type", ""),
                         lower["date"], oss_headers + resource])
    mac = hmac.new((secret or ctx.srv.secret_key).encode(), to_sign.encode(), hashlib.sha1)
    headers["Authorization"] = f"OSS {ctx.srv.access_key}:{base64.b64encode(mac.digest()).decode()}"
    path = f"/{bucket}/{key}" + (f"?{subresource}" if subresource else "")
    return exchange(ctx.port, raw_request(ctx, method, path, headers, body), head=method == "HEAD")


def presign_s3(ctx: Ctx, method: str, key: str, expires: int, when: datetime.datetime | None = None,
               bucket: str | None = None) -> str:
    """A SigV4 presigned URL (botocore's query signer), optionally signed at another time."""
    url = f"{ctx.srv.endpoint}/{bucket or ctx.plain}/{key}"
    req = AWSRequest(method=method, url=url)
    auth = S3SigV4QueryAuth(Credentials(ctx.srv.access_key, ctx.srv.secret_key), "s3", REGION,
                            expires=expires)
    if when is None:
        auth.add_auth(req)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            auth.add_auth(req)
    return req.url


def send_url(ctx: Ctx, method: str, url: str, body: bytes = b"") -> Reply:
    path = url.split(str(ctx.port), 1)[1]
    return exchange(ctx.port, raw_request(ctx, method, path, {}, body), head=method == "HEAD")


def ago(seconds: int) -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds)


# --------------------------------------------------------------------------- request builders


def put(key: str, body: bytes = OBJECT, headers: dict | None = None, *, bucket: str = "plain",
        **kw) -> Callable[[Ctx], Reply]:
    """PutObject signed with the body's SHA-256 (plus whatever the case adds)."""
    def send(ctx: Ctx) -> Reply:
        return s3_send(ctx, "PUT", f"/{getattr(ctx, bucket)}/{key}", body, headers, **kw)
    return send


def oss_put(key: str, body: bytes = OBJECT, headers: dict | None = None, *,
            bucket: str = "plain", **kw) -> Callable[[Ctx], Reply]:
    def send(ctx: Ctx) -> Reply:
        return oss_send(ctx, "PUT", getattr(ctx, bucket), key, body, headers, **kw)
    return send


def s3_xml(method: str, path: str, body: bytes) -> Callable[[Ctx], Reply]:
    """A request with an XML body (and its Content-MD5), `{plain}`/`{upload}` filled in."""
    def send(ctx: Ctx) -> Reply:
        p = path.format(plain=ctx.plain, upload=ctx.upload_id, mpu=ctx.mpu)
        return s3_send(ctx, method, p, body, {"Content-MD5": md5_b64(body)})
    return send


def framing(build: Callable[[Ctx], bytes], *, half_close: bool = False) -> Callable[[Ctx], Reply]:
    """A request whose bytes the case writes itself."""
    def send(ctx: Ctx) -> Reply:
        return exchange(ctx.port, build(ctx), half_close=half_close)
    return send


def signed_put_head(ctx: Ctx, key: str, headers: dict[str, str] | None = None, *,
                    payload_hash: str = UNSIGNED) -> dict[str, str]:
    """Signed headers of an unsigned-payload PUT, for cases that break the body framing."""
    return s3_signed(ctx, "PUT", f"/{ctx.plain}/{key}", b"", headers, payload_hash=payload_hash)


def aws_chunked(ctx: Ctx, key: str, chunks: list[bytes], *, decoded_length: int,
                corrupt_signature: bool = False) -> bytes:
    """An aws-chunked (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) upload with real chunk signatures."""
    path = f"/{ctx.plain}/{key}"
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(decoded_length)}
    sr = sign_request("PUT", ctx.srv.endpoint + path, ctx.srv.access_key, ctx.srv.secret_key,
                      headers=headers, payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    signing_key = sigv4_signing_key(ctx.srv.secret_key, sr.timestamp[:8])
    previous, body = sr.signature, b""
    for chunk in chunks + [b""]:
        sig = chunk_signature(signing_key, sr.timestamp, sr.scope, previous, chunk)
        previous = sig
        if corrupt_signature and chunk:
            sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        body += f"{len(chunk):x};chunk-signature={sig}\r\n".encode() + chunk + b"\r\n"
    return raw_request(ctx, "PUT", path, sr.headers, body)


def oss2_bucket(ctx: Ctx, auth) -> oss2.Bucket:
    return oss2.Bucket(auth, ctx.srv.endpoint, ctx.plain, region="cn-hangzhou", connect_timeout=10)


def via_oss2(call: Callable[[Ctx], object]) -> Callable[[Ctx], Reply]:
    """A request sent by oss2 itself (for its V4 signer and presigned URLs)."""
    def send(ctx: Ctx) -> Reply:
        try:
            call(ctx)
        except oss2.exceptions.OssError as exc:
            return Reply(exc.status, {k.lower(): v for k, v in exc.headers.items()}, exc.body or b"")
        raise AssertionError("oss2 call succeeded; an error was expected")
    return send


def presigned_replay(method: str, key: str) -> Callable[[Ctx], Reply]:
    """A presigned URL valid for 1 s: a GET works once, then the same URL replayed after
    expiry is refused. A PUT is only sent after expiry."""
    def send(ctx: Ctx) -> Reply:
        url = presign_s3(ctx, method, key, expires=1)
        if method == "GET":
            first = send_url(ctx, "GET", url)
            assert first.status == 200 and first.body == OBJECT, f"fresh presigned GET: {first}"
        time.sleep(2.1)
        return send_url(ctx, method, url, OBJECT if method == "PUT" else b"")
    return send


def oss_v4_presigned_after_expiry(ctx: Ctx, key: str) -> None:
    """oss2 presigns a V4 PUT valid for 1 s and uploads with it once it has expired."""
    bucket = oss2_bucket(ctx, oss2.AuthV4(ctx.srv.access_key, ctx.srv.secret_key))
    url = bucket.sign_url("PUT", key, 1)
    time.sleep(2.1)
    bucket.put_object_with_url(url, OBJECT)


# --------------------------------------------------------------------------- the table


@dataclass
class Case:
    name: str
    dialect: str  # "s3" or "oss": which error document the answer must be
    send: Callable[[Ctx], Reply]
    status: int
    code: str | None  # None: a framing error hyper answers before Coffer sees a request
    keys: tuple[str, ...] = ()  # keys (in the plain bucket unless "enc:") that must not exist after
    closed_ok: bool = False  # the server may instead close the connection without an answer
    message: str | None = None  # a substring the error message must contain
    verify: Callable[[Ctx], None] | None = None  # what else must be unchanged
    ec: str | None = None  # OSS: the fine-grained code OSS documents for this failure


def no_bucket_encryption(ctx: Ctx) -> None:
    """Still no rule of its own: GET answers the server's default (AES256, no bucket key)."""
    rule = ctx.s3.get_bucket_encryption(Bucket=ctx.plain)["ServerSideEncryptionConfiguration"]
    assert rule["Rules"] == [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                              "BucketKeyEnabled": False}], rule


def obj_intact(ctx: Ctx) -> None:
    assert ctx.s3.get_object(Bucket=ctx.plain, Key=ctx.obj)["Body"].read() == OBJECT


def bucket_absent(name: str) -> Callable[[Ctx], None]:
    def check(ctx: Ctx) -> None:
        with pytest.raises(ClientError) as ei:
            ctx.s3.head_bucket(Bucket=name)
        assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 404)
    return check


def policy(ctx: Ctx, **statement) -> bytes:
    """A bucket policy for the plain bucket, one statement changed by `statement`."""
    base = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{ctx.plain}/*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [{**base, **statement}]}).encode()


def no_policy(ctx: Ctx) -> None:
    with pytest.raises(ClientError) as ei:
        ctx.s3.get_bucket_policy(Bucket=ctx.plain)
    assert ei.value.response["Error"]["Code"] == "NoSuchBucketPolicy"


def no_public_access_block(ctx: Ctx) -> None:
    with pytest.raises(ClientError) as ei:
        ctx.s3.get_public_access_block(Bucket=ctx.plain)
    assert ei.value.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration"


LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
          b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
          b"<Delete><Object><Key>&c;</Key></Object></Delete>")
SSE_C_KEY = b"k" * 32
SSE_C = {
    "x-amz-server-side-encryption-customer-algorithm": "AES256",
    "x-amz-server-side-encryption-customer-key": base64.b64encode(SSE_C_KEY).decode(),
    "x-amz-server-side-encryption-customer-key-MD5": md5_b64(SSE_C_KEY),
}
OSS_BAD_RULE = (b"<ServerSideEncryptionRule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES128"
                b"</SSEAlgorithm></ApplyServerSideEncryptionByDefault></ServerSideEncryptionRule>")
BAD_BUCKET = "bad-" + "x" * 60  # 64 characters


def no_cors_rules(ctx: Ctx) -> None:
    with pytest.raises(ClientError) as ei:
        ctx.s3.get_bucket_cors(Bucket=ctx.plain)
    assert ei.value.response["Error"]["Code"] == "NoSuchCORSConfiguration"


def cors_xml(method: str, origin: str = "*") -> bytes:
    return (f"<CORSConfiguration><CORSRule><AllowedOrigin>{origin}</AllowedOrigin>"
            f"<AllowedMethod>{method}</AllowedMethod></CORSRule></CORSConfiguration>").encode()


def post_form(fields: dict[str, str], content: bytes = OBJECT, *, cut: int = 0) -> Callable[[Ctx], Reply]:
    """A browser form upload (multipart/form-data) to the plain bucket, fields then the file;
    `cut` drops that many bytes from the end of the body (Content-Length still says all)."""
    def send(ctx: Ctx) -> Reply:
        boundary = "----bad-input-form"
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                 for k, v in fields.items()]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + content
                     + f"\r\n--{boundary}--\r\n".encode())
        body = b"".join(parts)
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        wire = raw_request(ctx, "POST", f"/{ctx.plain}", headers, body[:len(body) - cut],
                           content_length=len(body))
        return exchange(ctx.port, wire, half_close=cut > 0)
    return send


def sigv4_form(ctx: Ctx, key: str, policy: str) -> dict[str, str]:
    """SigV4 form fields for `key` whose `policy` field is signed as sent."""
    now = datetime.datetime.now(datetime.timezone.utc)
    date = now.strftime("%Y%m%d")
    signature = hmac.new(sigv4_signing_key(ctx.srv.secret_key, date), policy.encode(),
                         hashlib.sha256).hexdigest()
    return {"key": key, "x-amz-algorithm": "AWS4-HMAC-SHA256",
            "x-amz-credential": f"{ctx.srv.access_key}/{date}/{REGION}/s3/aws4_request",
            "x-amz-date": now.strftime("%Y%m%dT%H%M%SZ"), "policy": policy, "x-amz-signature": signature}


def post_policy(key: str, *extra: list) -> str:
    document = {"expiration": "2099-01-01T00:00:00Z",
                "conditions": [["eq", "$key", key], {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
                               ["starts-with", "$x-amz-credential", ""],
                               ["starts-with", "$x-amz-date", ""], *extra]}
    return base64.b64encode(json.dumps(document).encode()).decode()


def signed_post(key: str, *extra: list, content: bytes = OBJECT, tamper: bool = False,
                cut: int = 0, policy: str | None = None) -> Callable[[Ctx], Reply]:
    def send(ctx: Ctx) -> Reply:
        fields = sigv4_form(ctx, key, policy if policy is not None else post_policy(key, *extra))
        if tamper:
            raw = bytearray(base64.b64decode(fields["policy"]))
            raw[raw.index(b"2099") + 3] ^= 0x01
            fields["policy"] = base64.b64encode(bytes(raw)).decode()
        return post_form(fields, content, cut=cut)(ctx)
    return send

# The canonical id Coffer shows for root (state.rs `owner_id`: SHA-256 of "coffer-owner:root").
ROOT_ID = hashlib.sha256(b"coffer-owner:root").hexdigest()
ACL_UNKNOWN_PERMISSION = (
    f"<AccessControlPolicy><Owner><ID>{ROOT_ID}</ID></Owner><AccessControlList><Grant>"
    f"<Grantee><ID>{ROOT_ID}</ID></Grantee><Permission>EVERYTHING</Permission></Grant>"
    "</AccessControlList></AccessControlPolicy>").encode()
ACL_EMPTY_GRANTEE = (
    f"<AccessControlPolicy><Owner><ID>{ROOT_ID}</ID></Owner><AccessControlList><Grant>"
    "<Grantee></Grantee><Permission>READ</Permission></Grant>"
    "</AccessControlList></AccessControlPolicy>").encode()
ACL_OTHER_OWNER = (
    f"<AccessControlPolicy><Owner><ID>{'0' * 64}</ID></Owner><AccessControlList><Grant>"
    f"<Grantee><ID>{ROOT_ID}</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant>"
    "</AccessControlList></AccessControlPolicy>").encode()


CASES = [
    # ---- bad XML
    Case("s3-delete-objects-truncated-xml", "s3",
         s3_xml("POST", "/{plain}?delete", b"<Delete><Object><Key>obj"), 400, "MalformedXML",
         verify=obj_intact),
    Case("s3-delete-objects-entity-expansion", "s3", s3_xml("POST", "/{plain}?delete", LAUGHS),
         400, "MalformedXML", verify=obj_intact),
    Case("s3-delete-objects-not-utf8", "s3",
         s3_xml("POST", "/{plain}?delete", b"\xff\xfe<\x00D\x00/\x00>\x00"), 400, "MalformedXML",
         verify=obj_intact),
    Case("s3-complete-upload-garbage-xml", "s3",
         s3_xml("POST", "/{plain}/{mpu}?uploadId={upload}", b"<CompleteMultipartUpload><Part>"),
         400, "MalformedXML", keys=("mpu-target",)),
    Case("s3-complete-upload-part-number-not-a-number", "s3",
         s3_xml("POST", "/{plain}/{mpu}?uploadId={upload}",
                b"<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>x</ETag></Part>"
                b"</CompleteMultipartUpload>"),
         400, "MalformedXML", keys=("mpu-target",)),
    Case("s3-put-bucket-encryption-garbage-xml", "s3",
         s3_xml("PUT", "/{plain}?encryption", b"<ServerSideEncryptionConfiguration><Rule>"),
         400, "MalformedXML", verify=no_bucket_encryption),
    Case("s3-put-bucket-encryption-unknown-algorithm", "s3",
         s3_xml("PUT", "/{plain}?encryption",
                b"<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>"
                b"<SSEAlgorithm>AES128</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>"
                b"</ServerSideEncryptionConfiguration>"),
         400, "MalformedXML", verify=no_bucket_encryption),
    Case("s3-create-bucket-garbage-xml", "s3",
         s3_xml("PUT", "/bad-xml-bucket-0001", b"<CreateBucketConfiguration><LocationConstraint>"),
         400, "MalformedXML", verify=bucket_absent("bad-xml-bucket-0001")),
    Case("oss-put-bucket-encryption-unknown-algorithm", "oss",
         lambda ctx: oss_send(ctx, "PUT", ctx.plain, "", OSS_BAD_RULE,
                              {"Content-MD5": md5_b64(OSS_BAD_RULE)}, subresource="encryption"),
         400, "InvalidArgument", ec="0005-00000003", verify=no_bucket_encryption),
    Case("oss-delete-multiple-truncated-xml", "oss",
         lambda ctx: oss_send(ctx, "POST", ctx.plain, "", b"<Delete><Object><Key>obj",
                              {"Content-MD5": md5_b64(b"<Delete><Object><Key>obj")},
                              subresource="delete"),
         400, "MalformedXML", verify=obj_intact),

    # ---- bad bucket policies and public access blocks: refused, nothing stored
    Case("s3-put-policy-not-json", "s3", s3_xml("PUT", "/{plain}?policy", b"{\"Statement\": ["),
         400, "MalformedPolicy", verify=no_policy),
    Case("s3-put-policy-not-utf8", "s3", s3_xml("PUT", "/{plain}?policy", b"{\"Statement\": \"\xff\"}"),
         400, "MalformedPolicy", verify=no_policy),
    Case("s3-put-policy-unknown-action", "s3",
         lambda ctx: s3_xml("PUT", "/{plain}?policy", policy(ctx, Action="s3:Fly"))(ctx),
         400, "MalformedPolicy", message="invalid action", verify=no_policy),
    Case("s3-put-policy-unknown-operator", "s3",
         lambda ctx: s3_xml("PUT", "/{plain}?policy", policy(
             ctx, Condition={"StringAlmost": {"s3:prefix": "a"}}))(ctx),
         400, "MalformedPolicy", verify=no_policy),
    Case("s3-put-policy-other-bucket", "s3",
         lambda ctx: s3_xml("PUT", "/{plain}?policy", policy(ctx, Resource="arn:aws:s3:::elsewhere/*"))(ctx),
         400, "MalformedPolicy", message="invalid resource", verify=no_policy),
    Case("s3-put-policy-too-big", "s3",
         lambda ctx: s3_xml("PUT", "/{plain}?policy", policy(ctx, Sid="x" * (21 * 1024)))(ctx),
         400, "MalformedPolicy", verify=no_policy),
    Case("s3-put-policy-deeply-nested", "s3",
         s3_xml("PUT", "/{plain}?policy", b"[" * 5000 + b"]" * 5000),
         400, "MalformedPolicy", verify=no_policy),
    Case("oss-put-policy-s3-document-shape", "oss",
         lambda ctx: oss_send(ctx, "PUT", ctx.plain, "", b'{"Version":"1","Statement":[{"Effect":"Allow"}]}',
                              subresource="policy"),
         400, "MalformedPolicy", verify=no_policy),
    Case("s3-put-public-access-block-garbage", "s3",
         s3_xml("PUT", "/{plain}?publicAccessBlock", b"<PublicAccessBlockConfiguration><BlockPublicAcls>"),
         400, "MalformedXML", verify=no_public_access_block),
    Case("s3-put-public-access-block-not-a-boolean", "s3",
         s3_xml("PUT", "/{plain}?publicAccessBlock",
                b"<PublicAccessBlockConfiguration><BlockPublicAcls>yes</BlockPublicAcls>"
                b"</PublicAccessBlockConfiguration>"),
         400, "MalformedXML", verify=no_public_access_block),

    # ---- bad ACLs and ownership controls (the plain bucket is S3-made: ACLs off)
    Case("s3-put-bucket-acl-truncated-xml", "s3",
         s3_xml("PUT", "/{plain}?acl", b"<AccessControlPolicy><Owner><ID>"), 400, "MalformedXML"),
    Case("s3-put-bucket-acl-without-owner", "s3",
         s3_xml("PUT", "/{plain}?acl", b"<AccessControlPolicy><AccessControlList/></AccessControlPolicy>"),
         400, "MalformedXML"),
    Case("s3-put-bucket-acl-unknown-permission", "s3",
         s3_xml("PUT", "/{plain}?acl", ACL_UNKNOWN_PERMISSION), 400, "MalformedACLError"),
    Case("s3-put-bucket-acl-grantee-without-id-or-uri", "s3",
         s3_xml("PUT", "/{plain}?acl", ACL_EMPTY_GRANTEE), 400, "MalformedACLError"),
    Case("s3-put-bucket-acl-another-owner", "s3",
         s3_xml("PUT", "/{plain}?acl", ACL_OTHER_OWNER), 403, "AccessDenied"),
    Case("s3-put-bucket-acl-headers-and-body", "s3",
         lambda ctx: s3_send(ctx, "PUT", f"/{ctx.plain}?acl", ACL_UNKNOWN_PERMISSION,
                             {"x-amz-acl": "private"}),
         400, "InvalidRequest"),
    Case("s3-put-bucket-acl-nothing", "s3",
         lambda ctx: s3_send(ctx, "PUT", f"/{ctx.plain}?acl"), 400, "MissingSecurityHeader"),
    Case("s3-put-object-acl-email-grant", "s3",
         lambda ctx: s3_send(ctx, "PUT", f"/{ctx.plain}/obj?acl", b"",
                             {"x-amz-grant-read": 'emailAddress="a@example.com"'}),
         400, "UnresolvableGrantByEmailAddress", verify=obj_intact),
    Case("s3-put-object-unknown-canned-acl", "s3", put("acl-unknown", headers={"x-amz-acl": "public"}),
         400, "InvalidArgument", keys=("acl-unknown",)),
    Case("s3-put-object-canned-acl-and-grant", "s3",
         put("acl-both", headers={"x-amz-acl": "private", "x-amz-grant-read": 'id="abc"'}),
         400, "InvalidRequest", keys=("acl-both",)),
    Case("s3-put-object-grant-unknown-group", "s3",
         put("acl-group", headers={"x-amz-grant-read": 'uri="http://example.com/everyone"'}),
         400, "InvalidArgument", keys=("acl-group",)),
    Case("s3-put-object-public-acl-with-acls-off", "s3",
         put("acl-public", headers={"x-amz-acl": "public-read"}),
         400, "AccessControlListNotSupported", keys=("acl-public",)),
    Case("s3-create-bucket-unknown-object-ownership", "s3",
         lambda ctx: s3_send(ctx, "PUT", "/bad-ownership-0001", b"",
                             {"x-amz-object-ownership": "Everyone"}),
         400, "InvalidArgument", verify=bucket_absent("bad-ownership-0001")),
    Case("s3-create-bucket-public-acl-with-acls-off", "s3",
         lambda ctx: s3_send(ctx, "PUT", "/bad-acl-bucket-0001", b"", {"x-amz-acl": "public-read"}),
         400, "InvalidBucketAclWithObjectOwnership", verify=bucket_absent("bad-acl-bucket-0001")),
    Case("s3-put-ownership-controls-unknown-setting", "s3",
         s3_xml("PUT", "/{plain}?ownershipControls",
                b"<OwnershipControls><Rule><ObjectOwnership>Everyone</ObjectOwnership></Rule>"
                b"</OwnershipControls>"),
         400, "MalformedXML"),
    Case("s3-put-ownership-controls-two-rules", "s3",
         s3_xml("PUT", "/{plain}?ownershipControls",
                b"<OwnershipControls><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule>"
                b"<Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule></OwnershipControls>"),
         400, "MalformedXML"),
    Case("oss-put-object-unknown-acl", "oss",
         oss_put("oss-acl-unknown", headers={"x-oss-object-acl": "everyone"}),
         400, "InvalidArgument", keys=("oss-acl-unknown",)),
    Case("oss-put-bucket-acl-unknown", "oss",
         lambda ctx: oss_send(ctx, "PUT", ctx.plain, "", b"", {"x-oss-acl": "default"},
                              subresource="acl"),
         400, "InvalidArgument"),
    Case("oss-put-object-acl-missing-header", "oss",
         lambda ctx: oss_send(ctx, "PUT", ctx.plain, "obj", b"", {}, subresource="acl"),
         400, "InvalidArgument", verify=obj_intact),

    Case("s3-complete-upload-no-parts", "s3",
         s3_xml("POST", "/{plain}/{mpu}?uploadId={upload}",
                b"<CompleteMultipartUpload></CompleteMultipartUpload>"),
         400, "MalformedXML", keys=("mpu-target",)),
    Case("s3-complete-upload-parts-out-of-order", "s3",
         s3_xml("POST", "/{plain}/{mpu}?uploadId={upload}",
                b"<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>a</ETag></Part>"
                b"<Part><PartNumber>1</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>"),
         400, "InvalidPartOrder", keys=("mpu-target",)),
    Case("s3-complete-upload-unknown-part", "s3",
         s3_xml("POST", "/{plain}/{mpu}?uploadId={upload}",
                b"<CompleteMultipartUpload><Part><PartNumber>7</PartNumber><ETag>abc</ETag></Part>"
                b"</CompleteMultipartUpload>"),
         400, "InvalidPart", keys=("mpu-target",)),
    Case("s3-delete-objects-over-1000-keys", "s3",
         s3_xml("POST", "/{plain}?delete",
                b"<Delete>" + b"<Object><Key>obj</Key></Object>" * 1001 + b"</Delete>"),
         400, "MalformedXML", verify=obj_intact),

    # ---- bad parameters
    Case("upload-part-number-zero", "s3",
         lambda ctx: s3_send(ctx, "PUT", f"/{ctx.plain}/{ctx.mpu}?partNumber=0&uploadId={ctx.upload_id}",
                             OBJECT),
         400, "InvalidArgument", keys=("mpu-target",)),
    Case("upload-part-number-too-big", "s3",
         lambda ctx: s3_send(ctx, "PUT",
                             f"/{ctx.plain}/{ctx.mpu}?partNumber=10001&uploadId={ctx.upload_id}", OBJECT),
         400, "InvalidArgument", keys=("mpu-target",)),
    Case("list-max-keys-negative", "s3",
         lambda ctx: s3_send(ctx, "GET", f"/{ctx.plain}?max-keys=-1"), 400, "InvalidArgument"),
    Case("list-unknown-encoding-type", "s3",
         lambda ctx: s3_send(ctx, "GET", f"/{ctx.plain}?encoding-type=base64"), 400, "InvalidArgument"),
    Case("copy-source-malformed", "s3",
         put("copy-bad", b"", headers={"x-amz-copy-source": "no-key-here"}),
         400, "InvalidArgument", keys=("copy-bad",)),
    Case("copy-onto-itself-unchanged", "s3",
         lambda ctx: s3_send(ctx, "PUT", f"/{ctx.plain}/{ctx.obj}", b"",
                             {"x-amz-copy-source": f"/{ctx.plain}/{ctx.obj}"}),
         400, "InvalidRequest", verify=obj_intact),
    Case("presigned-url-expires-beyond-7-days", "s3",
         lambda ctx: send_url(ctx, "PUT", presign_s3(ctx, "PUT", "ps-long", 604801), OBJECT),
         400, "AuthorizationQueryParametersError", keys=("ps-long",)),

    # ---- wrong Content-Length, truncated bodies, bad chunked framing
    Case("content-length-shorter-than-signed-body", "s3",
         put("cl-short", b"x" * 100, content_length=50), 400, "XAmzContentSHA256Mismatch",
         keys=("cl-short",)),
    Case("content-length-longer-body-stalls", "s3",
         put("cl-stall", b"x" * 100, content_length=200), 400, "RequestTimeout",
         keys=("cl-stall",)),
    Case("content-length-longer-then-close", "s3",
         put("cl-close", b"x" * 100, content_length=200, half_close=True), 400, "IncompleteBody",
         keys=("cl-close",), closed_ok=True),
    Case("content-length-not-a-number", "s3",
         framing(lambda ctx: raw_request(ctx, "PUT", f"/{ctx.plain}/cl-nan",
                                         signed_put_head(ctx, "cl-nan"), OBJECT,
                                         content_length="ten")),
         400, None, keys=("cl-nan",), closed_ok=True),
    Case("content-length-twice-disagreeing", "s3",
         framing(lambda ctx: raw_request(ctx, "PUT", f"/{ctx.plain}/cl-twice",
                                         signed_put_head(ctx, "cl-twice"), OBJECT,
                                         content_length=10, extra=b"Content-Length: 12\r\n")),
         400, None, keys=("cl-twice",), closed_ok=True),
    Case("chunked-bad-chunk-size", "s3",
         framing(lambda ctx: raw_request(
             ctx, "PUT", f"/{ctx.plain}/te-bad",
             {**signed_put_head(ctx, "te-bad"), "Transfer-Encoding": "chunked"},
             b"zz\r\nhello\r\n0\r\n\r\n")),
         400, "IncompleteBody", keys=("te-bad",), closed_ok=True),
    Case("chunked-body-cut-short", "s3",
         framing(lambda ctx: raw_request(
             ctx, "PUT", f"/{ctx.plain}/te-cut",
             {**signed_put_head(ctx, "te-cut"), "Transfer-Encoding": "chunked"},
             b"64\r\n" + b"y" * 10), half_close=True),
         400, "IncompleteBody", keys=("te-cut",), closed_ok=True),
    Case("aws-chunked-forged-chunk-signature", "s3",
         framing(lambda ctx: aws_chunked(ctx, "ac-forged", [b"a" * 100], decoded_length=100,
                                         corrupt_signature=True)),
         403, "SignatureDoesNotMatch", keys=("ac-forged",)),
    Case("aws-chunked-shorter-than-decoded-length", "s3",
         framing(lambda ctx: aws_chunked(ctx, "ac-short", [b"a" * 100], decoded_length=150)),
         400, "IncompleteBody", keys=("ac-short",)),
    Case("entity-too-large", "s3",
         framing(lambda ctx: raw_request(ctx, "PUT", f"/{ctx.plain}/huge",
                                         signed_put_head(ctx, "huge"), b"",
                                         content_length=6 * 1024 ** 3)),
         400, "EntityTooLarge", keys=("huge",)),

    # ---- invalid headers
    Case("header-value-with-nul", "s3",
         framing(lambda ctx: raw_request(ctx, "PUT", f"/{ctx.plain}/hdr-nul",
                                         signed_put_head(ctx, "hdr-nul"), OBJECT,
                                         extra=b"x-amz-meta-a: a\x00b\r\n")),
         400, None, keys=("hdr-nul",), closed_ok=True),
    Case("header-name-with-space", "s3",
         framing(lambda ctx: raw_request(ctx, "PUT", f"/{ctx.plain}/hdr-space",
                                         signed_put_head(ctx, "hdr-space"), OBJECT,
                                         extra=b"bad name: x\r\n")),
         400, None, keys=("hdr-space",), closed_ok=True),
    Case("header-obsolete-line-folding", "s3",
         framing(lambda ctx: raw_request(ctx, "PUT", f"/{ctx.plain}/hdr-fold",
                                         signed_put_head(ctx, "hdr-fold"), OBJECT,
                                         extra=b"x-amz-meta-a: one\r\n two\r\n")),
         400, None, keys=("hdr-fold",), closed_ok=True),
    Case("key-not-utf8", "s3", put("%ff%fe"), 400, "InvalidArgument"),
    Case("content-md5-not-base64", "s3", put("md5-garbage", headers={"Content-MD5": "not base64!"}),
         400, "InvalidDigest", keys=("md5-garbage",)),
    Case("content-sha256-not-a-hash", "s3", put("sha-garbage", payload_hash="not-a-hash"),
         400, "InvalidArgument", keys=("sha-garbage",)),
    Case("decoded-content-length-not-a-number", "s3",
         put("dcl-nan", headers={"Content-Encoding": "aws-chunked",
                                 "x-amz-decoded-content-length": "ten"},
             payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
         400, "InvalidArgument", keys=("dcl-nan",)),
    Case("range-not-satisfiable-start", "s3",
         lambda ctx: s3_send(ctx, "GET", f"/{ctx.plain}/{ctx.obj}", headers={"Range": "bytes=100-"}),
         416, "InvalidRange", verify=obj_intact),
    Case("range-empty-suffix", "s3",
         lambda ctx: s3_send(ctx, "GET", f"/{ctx.plain}/{ctx.obj}", headers={"Range": "bytes=-0"}),
         416, "InvalidRange", verify=obj_intact),
    Case("oss-range-not-satisfiable", "oss",
         lambda ctx: oss_send(ctx, "GET", ctx.plain, ctx.obj, headers={"Range": "bytes=10-20"}),
         416, "InvalidRange", verify=obj_intact),

    # ---- oversized keys and metadata, invalid bucket names
    Case("key-too-long", "s3", put("k" * 1025), 400, "KeyTooLongError"),
    Case("metadata-too-large", "s3", put("meta-big", headers={"x-amz-meta-big": "m" * 2100}),
         400, "MetadataTooLarge", keys=("meta-big",)),
    Case("oss-key-too-long", "oss", oss_put("k" * 1024), 400, "InvalidObjectName"),
    Case("oss-metadata-too-large", "oss",
         oss_put("oss-meta-big", headers={"x-oss-meta-a": "m" * 4096, "x-oss-meta-b": "m" * 4096}),
         400, "MetadataTooLarge", ec="0011-00000002", keys=("oss-meta-big",)),
    Case("bucket-name-too-short", "s3", lambda ctx: s3_send(ctx, "PUT", "/ab"), 400,
         "InvalidBucketName", verify=bucket_absent("ab")),
    Case("bucket-name-upper-case", "s3", lambda ctx: s3_send(ctx, "PUT", "/Bad_Bucket"), 400,
         "InvalidBucketName"),
    Case("bucket-name-too-long", "s3", lambda ctx: s3_send(ctx, "PUT", f"/{BAD_BUCKET}"), 400,
         "InvalidBucketName", verify=bucket_absent(BAD_BUCKET)),
    Case("oss-bucket-name-with-dot", "oss", lambda ctx: oss_send(ctx, "PUT", "oss.dotted.name"),
         400, "InvalidBucketName", verify=bucket_absent("oss.dotted.name")),
    Case("oss-bucket-name-too-short", "oss", lambda ctx: oss_send(ctx, "PUT", "ab"),
         400, "InvalidBucketName", verify=bucket_absent("ab")),

    # ---- wrong checksums
    Case("content-md5-mismatch", "s3", put("md5-wrong", headers={"Content-MD5": md5_b64(b"other")}),
         400, "BadDigest", keys=("md5-wrong",)),
    Case("crc32-mismatch", "s3",
         put("crc-wrong", headers={"x-amz-checksum-crc32": crc32_b64(b"other"),
                                   "x-amz-sdk-checksum-algorithm": "CRC32"}),
         400, "BadDigest", keys=("crc-wrong",)),
    Case("payload-sha256-mismatch", "s3",
         put("sha-wrong", payload_hash=hashlib.sha256(b"other").hexdigest()),
         400, "XAmzContentSHA256Mismatch", keys=("sha-wrong",)),
    Case("oss-content-md5-mismatch", "oss",
         oss_put("oss-md5-wrong", headers={"Content-MD5": md5_b64(b"other")}),
         400, "InvalidDigest", keys=("oss-md5-wrong",)),
    Case("oss-content-md5-not-base64", "oss",
         oss_put("oss-md5-garbage", headers={"Content-MD5": "###"}),
         400, "InvalidDigest", keys=("oss-md5-garbage",)),
    Case("oss-crc64-mismatch", "oss",
         oss_put("oss-crc-wrong", headers={"x-oss-hash-crc64ecma": "12345"}),
         400, "InvalidDigest", keys=("oss-crc-wrong",)),

    # ---- expired and forged signatures, replayed presigned URLs
    Case("forged-signature", "s3", put("forged", secret="not-the-secret"), 403,
         "SignatureDoesNotMatch", keys=("forged",)),
    Case("signature-from-20-minutes-ago", "s3", put("stale", when=ago(20 * 60)), 403,
         "RequestTimeTooSkewed", keys=("stale",)),
    Case("presigned-url-expired", "s3",
         lambda ctx: send_url(ctx, "PUT", presign_s3(ctx, "PUT", "ps-expired", 60, when=ago(3600)),
                              OBJECT),
         403, "AccessDenied", keys=("ps-expired",), message="expired"),
    Case("presigned-url-tampered", "s3",
         lambda ctx: send_url(ctx, "PUT", presign_s3(ctx, "PUT", "ps-tampered", 60)
                              .replace("ps-tampered", "ps-tampered2"), OBJECT),
         403, "SignatureDoesNotMatch", keys=("ps-tampered", "ps-tampered2")),
    Case("presigned-get-replayed-after-expiry", "s3", presigned_replay("GET", "obj"), 403,
         "AccessDenied", message="expired", verify=obj_intact),
    Case("presigned-put-after-expiry", "s3", presigned_replay("PUT", "ps-late"), 403,
         "AccessDenied", keys=("ps-late",), message="expired"),
    Case("oss-v1-forged-signature", "oss", oss_put("oss-forged", secret="not-the-secret"), 403,
         "SignatureDoesNotMatch", keys=("oss-forged",)),
    Case("oss-v1-forged-signature-head", "oss",
         lambda ctx: oss_send(ctx, "HEAD", ctx.plain, ctx.obj, secret="not-the-secret"), 403,
         "SignatureDoesNotMatch"),
    Case("oss-v1-date-20-minutes-old", "oss",
         oss_put("oss-stale", headers={"Date": email.utils.formatdate(time.time() - 1200, usegmt=True)}),
         403, "RequestTimeTooSkewed", keys=("oss-stale",)),
    Case("oss-v4-forged-signature", "oss",
         via_oss2(lambda ctx: oss2_bucket(ctx, oss2.AuthV4(ctx.srv.access_key, "not-the-secret"))
                  .put_object("oss-v4-forged", OBJECT)),
         403, "SignatureDoesNotMatch", keys=("oss-v4-forged",)),
    Case("oss-v1-presigned-url-expired", "oss",
         lambda ctx: send_url(ctx, "PUT", oss2_bucket(
             ctx, oss2.Auth(ctx.srv.access_key, ctx.srv.secret_key)).sign_url(
                 "PUT", "oss-ps-expired", -60), OBJECT),
         403, "AccessDenied", keys=("oss-ps-expired",)),
    Case("oss-v4-presigned-url-expired", "oss",
         via_oss2(lambda ctx: oss_v4_presigned_after_expiry(ctx, "oss-v4-ps")),
         403, "AccessDenied", keys=("oss-v4-ps",)),

    # ---- unknown SSE values, SSE headers that conflict with each other or the bucket default
    Case("sse-unknown-algorithm", "s3", put("sse-aes128", headers={"x-amz-server-side-encryption": "AES128"}),
         400, "InvalidArgument", keys=("sse-aes128",)),
    Case("sse-c-unknown-algorithm", "s3",
         put("ssec-aes128", headers={**SSE_C, "x-amz-server-side-encryption-customer-algorithm": "AES128"}),
         400, "InvalidEncryptionAlgorithmError", keys=("ssec-aes128",)),
    Case("sse-c-key-md5-mismatch", "s3",
         put("ssec-md5", headers={**SSE_C, "x-amz-server-side-encryption-customer-key-MD5": md5_b64(b"x")}),
         400, "InvalidArgument", keys=("ssec-md5",)),
    Case("sse-c-with-sse-s3", "s3",
         put("ssec-and-s3", headers={**SSE_C, "x-amz-server-side-encryption": "AES256"}),
         400, "InvalidArgument", keys=("ssec-and-s3",)),
    Case("kms-key-id-with-aes256", "s3",
         put("kms-id-aes", headers={"x-amz-server-side-encryption": "AES256",
                                    "x-amz-server-side-encryption-aws-kms-key-id": "alias/x"}),
         400, "InvalidArgument", keys=("kms-id-aes",)),
    Case("kms-key-id-against-aes256-bucket-default", "s3",
         put("kms-id-default", bucket="enc",
             headers={"x-amz-server-side-encryption-aws-kms-key-id": "alias/x"}),
         400, "InvalidArgument", keys=("enc:kms-id-default",)),
    Case("kms-context-against-aes256-bucket-default", "s3",
         put("kms-ctx-default", bucket="enc",
             headers={"x-amz-server-side-encryption-context":
                      base64.b64encode(b'{"a":"b"}').decode()}),
         400, "InvalidArgument", keys=("enc:kms-ctx-default",)),
    Case("oss-sse-unknown-algorithm", "oss",
         oss_put("oss-sse-bad", headers={"x-oss-server-side-encryption": "AES128"}),
         400, "InvalidEncryptionAlgorithmError", keys=("oss-sse-bad",)),
    Case("oss-kms-data-encryption-unknown", "oss",
         oss_put("oss-data-bad", headers={"x-oss-server-side-encryption": "KMS",
                                          "x-oss-server-side-data-encryption": "AES"}),
         400, "InvalidEncryptionAlgorithmError", keys=("oss-data-bad",)),
    Case("oss-data-encryption-with-aes256", "oss",
         oss_put("oss-data-aes", headers={"x-oss-server-side-encryption": "AES256",
                                          "x-oss-server-side-data-encryption": "SM4"}),
         400, "InvalidArgument", keys=("oss-data-aes",)),
    Case("oss-data-encryption-against-aes256-bucket-default", "oss",
         oss_put("oss-data-default", bucket="enc",
                 headers={"x-oss-server-side-data-encryption": "SM4"}),
         400, "InvalidArgument", keys=("enc:oss-data-default",)),
    # ---- CORS rules and preflights
    Case("s3-put-bucket-cors-unsupported-method", "s3", s3_xml("PUT", "/{plain}?cors", cors_xml("PATCH")),
         400, "InvalidRequest", message="Found unsupported HTTP method in CORS config",
         verify=no_cors_rules),
    Case("s3-put-bucket-cors-two-wildcards", "s3",
         s3_xml("PUT", "/{plain}?cors", cors_xml("GET", "http://*.*.example.com")),
         400, "InvalidRequest", message="can not have more than one wildcard", verify=no_cors_rules),
    Case("s3-put-bucket-cors-rule-without-origin", "s3",
         s3_xml("PUT", "/{plain}?cors",
                b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule>"
                b"</CORSConfiguration>"),
         400, "MalformedXML", verify=no_cors_rules),
    Case("s3-put-bucket-cors-truncated-xml", "s3",
         s3_xml("PUT", "/{plain}?cors", b"<CORSConfiguration><CORSRule><AllowedOrigin>"),
         400, "MalformedXML", verify=no_cors_rules),
    Case("oss-put-bucket-cors-unsupported-method", "oss",
         lambda ctx: oss_send(ctx, "PUT", ctx.plain, "", cors_xml("TRACE"), subresource="cors"),
         400, "InvalidRequest", ec="0034-00000011", verify=no_cors_rules),
    Case("cors-preflight-without-origin", "s3",
         framing(lambda ctx: raw_request(ctx, "OPTIONS", f"/{ctx.plain}/obj",
                                         {"Access-Control-Request-Method": "GET"})),
         400, "BadRequest"),
    Case("cors-preflight-without-rules", "s3",
         framing(lambda ctx: raw_request(ctx, "OPTIONS", f"/{ctx.plain}/obj",
                                         {"Origin": "http://a.example", "Access-Control-Request-Method": "GET"})),
         403, "AccessForbidden", message="CORSResponse"),

    # ---- browser form uploads (POST Object)
    Case("post-object-tampered-policy", "s3", signed_post("post-tampered", tamper=True),
         403, "SignatureDoesNotMatch", keys=("post-tampered",)),
    Case("post-object-policy-not-base64", "s3", signed_post("post-b64", policy="%%%not base64"),
         400, "InvalidPolicyDocument", keys=("post-b64",)),
    Case("post-object-policy-not-json", "s3",
         signed_post("post-json", policy=base64.b64encode(b"{expiration").decode()),
         400, "InvalidPolicyDocument", keys=("post-json",)),
    Case("post-object-oversize", "s3",
         signed_post("post-big", ["content-length-range", 0, 5], content=b"x" * 6),
         400, "EntityTooLarge", keys=("post-big",)),
    Case("post-object-extra-field", "s3",
         lambda ctx: post_form({**sigv4_form(ctx, "post-extra", post_policy("post-extra")),
                                "x-amz-meta-unsigned": "1"})(ctx),
         403, "AccessDenied", message="Extra input fields: x-amz-meta-unsigned", keys=("post-extra",)),
    Case("post-object-body-cut-short", "s3", signed_post("post-cut", cut=30),
         400, "IncompleteBody", keys=("post-cut",), closed_ok=True),
    Case("post-object-no-boundary", "s3",
         framing(lambda ctx: raw_request(ctx, "POST", f"/{ctx.plain}",
                                         {"Content-Type": "multipart/form-data"}, b"key=x")),
         400, "MalformedPOSTRequest"),

    Case("oss-kms-key-id-against-aes256-bucket-default", "oss",
         oss_put("oss-kms-id-default", bucket="enc",
                 headers={"x-oss-server-side-encryption-key-id": "alias/x"}),
         400, "InvalidArgument", keys=("enc:oss-kms-id-default",)),
]


# --------------------------------------------------------------------------- the checks


def assert_error_document(case: Case, reply: Reply) -> None:
    """The body (or, for OSS HEAD, x-oss-err) is the dialect's error document with case.code."""
    body = reply.body
    if case.dialect == "oss" and not body:
        assert "x-oss-err" in reply.headers, f"OSS HEAD error without x-oss-err: {reply.headers}"
        body = base64.b64decode(reply.headers["x-oss-err"])
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise AssertionError(f"error body is not XML: {body[:300]!r}") from exc
    assert root.tag == "Error", f"error root is {root.tag!r}, expected a namespace-free <Error>"
    fields = {child.tag: child.text or "" for child in root}
    assert fields.get("Code") == case.code, (
        f"Code {fields.get('Code')!r}, expected {case.code!r}: {fields}")
    assert fields.get("Message") and fields.get("RequestId"), f"error lacks Message/RequestId: {fields}"
    if case.message:
        assert case.message in fields["Message"], f"message {fields['Message']!r} lacks {case.message!r}"
    if case.dialect == "oss":
        assert "HostId" in fields and fields.get("EC"), f"OSS error lacks HostId/EC: {fields}"
        assert reply.headers.get("x-oss-ec") == fields["EC"], f"x-oss-ec vs <EC>: {reply.headers}"
        assert reply.headers.get("x-oss-request-id") == fields["RequestId"]
        if case.ec:
            assert fields["EC"] == case.ec, f"EC {fields['EC']!r}, expected {case.ec!r}"
    else:
        assert reply.headers.get("x-amz-request-id") == fields["RequestId"]


def assert_absent(ctx: Ctx, key: str) -> None:
    bucket = ctx.plain
    if key.startswith("enc:"):
        bucket, key = ctx.enc, key[4:]
    with pytest.raises(ClientError) as ei:
        ctx.s3.head_object(Bucket=bucket, Key=key)
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404, (
        f"{bucket}/{key} was stored by a request that failed")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(ctx, case: Case):
    reply = case.send(ctx)
    if reply.status is None:
        assert case.closed_ok, "the server closed the connection without an answer"
    else:
        assert reply.status == case.status, (
            f"HTTP {reply.status}, expected {case.status}: {reply.body[:400]!r}")
        if case.code is not None:
            assert_error_document(case, reply)
    # The server is still up and serving, and nothing was stored.
    assert ctx.srv.running(), f"the server died:\n{ctx.srv.log_text()[-3000:]}"
    ctx.s3.head_bucket(Bucket=ctx.plain)
    for key in case.keys:
        assert_absent(ctx, key)
    if case.verify is not None:
        case.verify(ctx)
