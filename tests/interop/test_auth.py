"""Authentication and payload integrity: SigV4 headers and presigned URLs, clock skew,
payload hashes, Content-MD5 and flexible checksums, aws-chunked (unsigned with trailer,
and signed chunks), user management and the credentials file."""

import configparser
import datetime
import hashlib
import json
import os
import stat
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests

from support import (
    add_user,
    chunk_signature,
    crc32_b64,
    expect_error,
    make_s3_client,
    md5_b64,
    run_coffer,
    s3_error,
    sigv4_signing_key,
    sign_request,
    unique_bucket_name,
)

TIMEOUT = 30


def assert_s3_error(resp: requests.Response, status: int, code: str, what: str):
    got_code, msg = s3_error(resp)
    assert resp.status_code == status and got_code == code, (
        f"{what}: expected HTTP {status} {code}, got HTTP {resp.status_code} {got_code!r} ({msg!r})"
    )


def assert_absent(s3, bucket, key, what):
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key=key)
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert key not in listed, f"{what}: rejected object {key!r} is listed"


# --------------------------------------------------------------------------- presigned URLs


def test_presigned_get_and_put(s3, bucket):
    s3.put_object(Bucket=bucket, Key="shared.txt", Body=b"presigned content")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "shared.txt"}, ExpiresIn=300)
    resp = requests.get(url, timeout=TIMEOUT)
    assert resp.status_code == 200, f"presigned GET: HTTP {resp.status_code} {s3_error(resp)}"
    assert resp.content == b"presigned content"

    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up/loaded name.bin"},
                                        ExpiresIn=300)
    body = os.urandom(10_000)
    resp = requests.put(put_url, data=body, timeout=TIMEOUT)
    assert resp.status_code == 200, f"presigned PUT: HTTP {resp.status_code} {s3_error(resp)}"
    assert s3.get_object(Bucket=bucket, Key="up/loaded name.bin")["Body"].read() == body


def test_presigned_head_and_range(s3, bucket):
    s3.put_object(Bucket=bucket, Key="r.bin", Body=bytes(range(200)))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "r.bin"}, ExpiresIn=300)
    resp = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=TIMEOUT)
    assert resp.status_code == 206 and resp.content == bytes(range(10, 20))
    head_url = s3.generate_presigned_url("head_object", Params={"Bucket": bucket, "Key": "r.bin"}, ExpiresIn=300)
    resp = requests.head(head_url, timeout=TIMEOUT)
    assert resp.status_code == 200 and resp.headers.get("Content-Length") == "200"


def test_presigned_url_expires(s3, bucket):
    s3.put_object(Bucket=bucket, Key="soon-gone", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "soon-gone"}, ExpiresIn=1)
    time.sleep(2.5)
    resp = requests.get(url, timeout=TIMEOUT)
    assert_s3_error(resp, 403, "AccessDenied", "expired presigned GET")

    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "late"}, ExpiresIn=1)
    time.sleep(2.5)
    resp = requests.put(put_url, data=b"too late", timeout=TIMEOUT)
    assert_s3_error(resp, 403, "AccessDenied", "expired presigned PUT")
    assert_absent(s3, bucket, "late", "expired presigned PUT")


def _replace_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_presigned_url_tampered(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"a")
    s3.put_object(Bucket=bucket, Key="b.txt", Body=b"b")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a.txt"}, ExpiresIn=300)
    sig = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    resp = requests.get(_replace_query(url, **{"X-Amz-Signature": flipped}), timeout=TIMEOUT)
    assert_s3_error(resp, 403, "SignatureDoesNotMatch", "presigned GET with altered signature")

    other_key = url.replace("/a.txt?", "/b.txt?")
    resp = requests.get(other_key, timeout=TIMEOUT)
    assert_s3_error(resp, 403, "SignatureDoesNotMatch", "presigned GET re-pointed at another key")

    longer = _replace_query(url, **{"X-Amz-Expires": "604800"})
    resp = requests.get(longer, timeout=TIMEOUT)
    assert_s3_error(resp, 403, "SignatureDoesNotMatch", "presigned GET with extended X-Amz-Expires")

    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "a.txt"}, ExpiresIn=300)
    resp = requests.get(put_url, timeout=TIMEOUT)  # a PUT URL used for GET
    assert_s3_error(resp, 403, "SignatureDoesNotMatch", "presigned PUT URL used with GET")


# --------------------------------------------------------------------------- credentials


def test_wrong_secret_key(server, bucket):
    wrong = server.secret_key[:-1] + ("X" if server.secret_key[-1] != "X" else "Y")
    client = make_s3_client(server.endpoint, server.access_key, wrong)
    expect_error(client.list_buckets, "SignatureDoesNotMatch", 403)
    expect_error(client.put_object, "SignatureDoesNotMatch", 403, Bucket=bucket, Key="k", Body=b"x")
    expect_error(client.get_object, "SignatureDoesNotMatch", 403, Bucket=bucket, Key="k")


def test_unknown_access_key(server, bucket):
    client = make_s3_client(server.endpoint, "CFUNKNOWNKEY00000000", server.secret_key)
    expect_error(client.list_buckets, "InvalidAccessKeyId", 403)
    expect_error(client.put_object, "InvalidAccessKeyId", 403, Bucket=bucket, Key="k", Body=b"x")


SECRET_BODY = b"top-secret-object-content-5e1f"


def test_anonymous_requests_denied(s3, server, bucket):
    s3.put_object(Bucket=bucket, Key="private.txt", Body=SECRET_BODY)
    for method, path in [("GET", "/"), ("GET", f"/{bucket}"), ("GET", f"/{bucket}/private.txt"),
                         ("HEAD", f"/{bucket}/private.txt"), ("PUT", f"/{bucket}/anon.txt"),
                         ("DELETE", f"/{bucket}/private.txt"), ("PUT", f"/{unique_bucket_name('anon')}")]:
        resp = requests.request(method, server.endpoint + path, data=b"anon" if method == "PUT" else None,
                                timeout=TIMEOUT)
        assert resp.status_code == 403, f"anonymous {method} {path}: HTTP {resp.status_code}"
        if method != "HEAD":
            assert s3_error(resp)[0] == "AccessDenied", f"anonymous {method} {path}: {s3_error(resp)}"
        assert SECRET_BODY not in resp.content, f"anonymous {method} {path} leaked the object"
    assert s3.get_object(Bucket=bucket, Key="private.txt")["Body"].read() == SECRET_BODY
    assert_absent(s3, bucket, "anon.txt", "anonymous PUT")


# --------------------------------------------------------------------------- hand-signed requests


def _utc(minutes: float = 0) -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)


def signed(server, method, path, *, headers=None, body=b"", payload_hash=None, when=None):
    url = server.endpoint + path
    sr = sign_request(method, url, server.access_key, server.secret_key, headers=headers, body=body,
                      payload_hash=payload_hash, when=when)
    return url, sr


def test_hand_signed_request_works(server, s3, bucket):
    """Sanity check of the hand signer the next tests rely on."""
    url, sr = signed(server, "PUT", f"/{bucket}/hand", body=b"by hand")
    resp = requests.put(url, headers=sr.headers, data=b"by hand", timeout=TIMEOUT)
    assert resp.status_code == 200, f"hand-signed PUT: HTTP {resp.status_code} {s3_error(resp)}"
    assert s3.get_object(Bucket=bucket, Key="hand")["Body"].read() == b"by hand"


@pytest.mark.parametrize("minutes", [-20, 20])
def test_clock_skew_rejected(server, minutes):
    url, sr = signed(server, "GET", "/", when=_utc(minutes))
    resp = requests.get(url, headers=sr.headers, timeout=TIMEOUT)
    assert_s3_error(resp, 403, "RequestTimeTooSkewed", f"request signed {minutes:+d} min off")


def test_small_clock_skew_accepted(server):
    url, sr = signed(server, "GET", "/", when=_utc(-10))
    resp = requests.get(url, headers=sr.headers, timeout=TIMEOUT)
    assert resp.status_code == 200, f"request signed 10 min ago: HTTP {resp.status_code} {s3_error(resp)}"


def test_wrong_content_sha256(server, s3, bucket):
    body = b"the real body"
    url, sr = signed(server, "PUT", f"/{bucket}/sha", body=body,
                     payload_hash=hashlib.sha256(b"a different body").hexdigest())
    resp = requests.put(url, headers=sr.headers, data=body, timeout=TIMEOUT)
    assert_s3_error(resp, 400, "XAmzContentSHA256Mismatch", "PUT whose x-amz-content-sha256 is wrong")
    assert_absent(s3, bucket, "sha", "wrong x-amz-content-sha256")


def test_unsigned_payload_accepted(server, s3, bucket):
    body = b"unsigned payload body"
    url, sr = signed(server, "PUT", f"/{bucket}/unsigned", body=body, payload_hash="UNSIGNED-PAYLOAD")
    resp = requests.put(url, headers=sr.headers, data=body, timeout=TIMEOUT)
    assert resp.status_code == 200, f"UNSIGNED-PAYLOAD PUT: HTTP {resp.status_code} {s3_error(resp)}"
    assert s3.get_object(Bucket=bucket, Key="unsigned")["Body"].read() == body


def test_content_md5(s3_required, bucket):
    body = b"md5 checked body"
    s3_required.put_object(Bucket=bucket, Key="good-md5", Body=body, ContentMD5=md5_b64(body))
    assert s3_required.get_object(Bucket=bucket, Key="good-md5")["Body"].read() == body
    expect_error(s3_required.put_object, "BadDigest", 400, Bucket=bucket, Key="bad-md5", Body=body,
                 ContentMD5=md5_b64(b"something else"))
    assert_absent(s3_required, bucket, "bad-md5", "wrong Content-MD5")


def test_checksum_crc32(s3, s3_required, bucket):
    body = os.urandom(50_000)
    s3_required.put_object(Bucket=bucket, Key="good-crc", Body=body, ChecksumCRC32=crc32_b64(body))
    assert s3_required.get_object(Bucket=bucket, Key="good-crc")["Body"].read() == body
    expect_error(s3_required.put_object, "BadDigest", 400, Bucket=bucket, Key="bad-crc", Body=body,
                 ChecksumCRC32=crc32_b64(body + b"!"))
    assert_absent(s3, bucket, "bad-crc", "wrong x-amz-checksum-crc32")


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA1", "CRC32"])
def test_checksum_algorithms_computed_by_botocore(s3, bucket, algorithm):
    body = os.urandom(20_000)
    s3.put_object(Bucket=bucket, Key=f"alg-{algorithm}", Body=body, ChecksumAlgorithm=algorithm)
    got = s3.get_object(Bucket=bucket, Key=f"alg-{algorithm}")
    assert got["Body"].read() == body


def test_checksum_sha256_mismatch(s3_required, bucket):
    import base64

    body = b"sha256 checked"
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    expect_error(s3_required.put_object, "BadDigest", 400, Bucket=bucket, Key="bad-sha", Body=body,
                 ChecksumSHA256=wrong)
    assert_absent(s3_required, bucket, "bad-sha", "wrong x-amz-checksum-sha256")


def test_wrong_crc32_on_upload_part(s3_required, bucket):
    uid = s3_required.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    try:
        expect_error(s3_required.upload_part, "BadDigest", 400, Bucket=bucket, Key="mp", UploadId=uid,
                     PartNumber=1, Body=b"part body", ChecksumCRC32=crc32_b64(b"not it"))
        parts = s3_required.list_parts(Bucket=bucket, Key="mp", UploadId=uid).get("Parts", [])
        assert parts == [], f"a part with a bad checksum was kept: {parts}"
    finally:
        s3_required.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid)


# --------------------------------------------------------------------------- aws-chunked


def unsigned_trailer_body(data: bytes, chunk: int, checksum_b64: str) -> list[bytes]:
    """aws-chunked framing for STREAMING-UNSIGNED-PAYLOAD-TRAILER (WIRE-FORMATS §6.2)."""
    pieces = []
    for i in range(0, len(data), chunk):
        part = data[i:i + chunk]
        pieces.append(f"{len(part):x}\r\n".encode() + part + b"\r\n")
    pieces.append(b"0\r\n")
    pieces.append(f"x-amz-checksum-crc32:{checksum_b64}\r\n".encode())
    pieces.append(b"\r\n")
    return pieces


def put_unsigned_trailer(server, bucket, key, data, checksum_b64, chunk=65536):
    headers = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(len(data)),
        "X-Amz-Trailer": "x-amz-checksum-crc32",
        "X-Amz-Sdk-Checksum-Algorithm": "CRC32",
        "Content-Type": "application/octet-stream",
    }
    url, sr = signed(server, "PUT", f"/{bucket}/{key}", headers=headers,
                     payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    pieces = unsigned_trailer_body(data, chunk, checksum_b64)
    # A generator makes requests use Transfer-Encoding: chunked with no Content-Length,
    # as botocore does over TLS.
    return requests.put(url, headers=sr.headers, data=iter(pieces), timeout=TIMEOUT)


def test_aws_chunked_unsigned_trailer(server, s3, bucket):
    data = os.urandom(150_000)
    resp = put_unsigned_trailer(server, bucket, "trailer.bin", data, crc32_b64(data))
    assert resp.status_code == 200, f"aws-chunked trailer PUT: HTTP {resp.status_code} {s3_error(resp)}"
    get = s3.get_object(Bucket=bucket, Key="trailer.bin")
    assert get["Body"].read() == data, "object stored with aws-chunked framing or otherwise altered"
    assert get["ContentLength"] == len(data)
    assert "aws-chunked" not in (get.get("ContentEncoding") or ""), (
        f"aws-chunked leaked into the stored Content-Encoding: {get.get('ContentEncoding')!r}"
    )
    assert get["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'


def test_aws_chunked_unsigned_trailer_small_and_empty(server, s3, bucket):
    resp = put_unsigned_trailer(server, bucket, "ssec", b"ssec", "wkipZw==")
    assert resp.status_code == 200, f"HTTP {resp.status_code} {s3_error(resp)}"
    assert s3.get_object(Bucket=bucket, Key="ssec")["Body"].read() == b"ssec"
    resp = put_unsigned_trailer(server, bucket, "empty", b"", crc32_b64(b""))
    assert resp.status_code == 200, f"HTTP {resp.status_code} {s3_error(resp)}"
    assert s3.get_object(Bucket=bucket, Key="empty")["Body"].read() == b""


def test_aws_chunked_unsigned_trailer_bad_checksum(server, s3, bucket):
    data = os.urandom(100_000)
    resp = put_unsigned_trailer(server, bucket, "bad-trailer.bin", data, crc32_b64(data[:-1]))
    assert_s3_error(resp, 400, "BadDigest", "aws-chunked PUT with a wrong trailer checksum")
    assert_absent(s3, bucket, "bad-trailer.bin", "wrong trailer checksum")


def test_aws_chunked_decoded_length_mismatch(server, s3, bucket):
    data = os.urandom(5000)
    headers = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(len(data) + 1),
        "X-Amz-Trailer": "x-amz-checksum-crc32",
    }
    url, sr = signed(server, "PUT", f"/{bucket}/short", headers=headers,
                     payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    resp = requests.put(url, headers=sr.headers, data=iter(unsigned_trailer_body(data, 4096, crc32_b64(data))),
                        timeout=TIMEOUT)
    assert 400 <= resp.status_code < 500, (
        f"decoded length {len(data) + 1} declared but {len(data)} sent: HTTP {resp.status_code}"
    )
    assert_absent(s3, bucket, "short", "x-amz-decoded-content-length mismatch")


def signed_chunked_request(server, bucket, key, data, chunk=65536, corrupt_chunk=None):
    """Build a STREAMING-AWS4-HMAC-SHA256-PAYLOAD PUT: headers and the framed body."""
    chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
    encoded_len = sum(len(f"{len(c):x};chunk-signature=".encode()) + 64 + 2 + len(c) + 2 for c in chunks)
    headers = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(len(data)),
        "Content-Length": str(encoded_len),
        "Content-Type": "application/octet-stream",
    }
    url, sr = signed(server, "PUT", f"/{bucket}/{key}", headers=headers,
                     payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    key_bytes = sigv4_signing_key(server.secret_key, sr.timestamp[:8])
    previous = sr.signature
    body = bytearray()
    for n, c in enumerate(chunks):
        sig = chunk_signature(key_bytes, sr.timestamp, sr.scope, previous, c)
        previous = sig
        if n == corrupt_chunk:
            sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
        body += f"{len(c):x};chunk-signature={sig}\r\n".encode() + c + b"\r\n"
    assert len(body) == encoded_len
    return url, sr.headers, bytes(body)


def test_aws_chunked_signed_payload(server, s3, bucket):
    data = os.urandom(200_000)
    url, headers, body = signed_chunked_request(server, bucket, "signed-chunks.bin", data)
    resp = requests.put(url, headers=headers, data=body, timeout=TIMEOUT)
    assert resp.status_code == 200, f"signed aws-chunked PUT: HTTP {resp.status_code} {s3_error(resp)}"
    get = s3.get_object(Bucket=bucket, Key="signed-chunks.bin")
    assert get["Body"].read() == data, "signed aws-chunked object stored with framing or altered"
    assert "aws-chunked" not in (get.get("ContentEncoding") or "")


# 200_000 bytes in 64 KiB chunks: 65536 x 3, 3392, then the final empty chunk (index 4).
@pytest.mark.parametrize("corrupt", [0, 1, 4], ids=["first", "middle", "final-empty"])
def test_aws_chunked_signed_payload_bad_chunk_signature(server, s3, bucket, corrupt):
    data = os.urandom(200_000)
    url, headers, body = signed_chunked_request(server, bucket, "tampered.bin", data, corrupt_chunk=corrupt)
    resp = requests.put(url, headers=headers, data=body, timeout=TIMEOUT)
    assert_s3_error(resp, 403, "SignatureDoesNotMatch", f"signed aws-chunked PUT with chunk {corrupt} altered")
    assert_absent(s3, bucket, "tampered.bin", "altered chunk signature")


def test_aws_chunked_signed_payload_altered_data(server, s3, bucket):
    data = os.urandom(100_000)
    url, headers, body = signed_chunked_request(server, bucket, "flipped.bin", data)
    pos = body.index(b"\r\n") + 2 + 1000  # a byte inside the first chunk's data
    body = body[:pos] + bytes([body[pos] ^ 1]) + body[pos + 1:]
    resp = requests.put(url, headers=headers, data=body, timeout=TIMEOUT)
    assert_s3_error(resp, 403, "SignatureDoesNotMatch", "signed aws-chunked PUT with a flipped data bit")
    assert_absent(s3, bucket, "flipped.bin", "flipped data bit")


# --------------------------------------------------------------------------- users


def test_user_list_shows_users_without_secrets(server, second_user):
    proc = run_coffer(["user", "list"], server.endpoint, server.access_key, server.secret_key)
    users = json.loads(proc.stdout)
    assert isinstance(users, list), f"`coffer user list` did not print a JSON array: {proc.stdout!r}"
    entry = next((u for u in users if u.get("name") == second_user.name), None)
    assert entry is not None, f"{second_user.name} missing from `coffer user list`: {users}"
    assert entry.get("access_key") == second_user.access_key
    assert second_user.secret_key not in proc.stdout, "`coffer user list` printed a secret key"
    assert server.secret_key not in proc.stdout, "`coffer user list` printed the root secret key"


def test_user_add_with_explicit_keys_and_remove(server):
    name = f"u3-{os.urandom(4).hex()}"
    ak, sk = "CFEXPLICIT" + os.urandom(5).hex().upper(), "explicit/secret+" + os.urandom(12).hex()
    user = add_user(server, name, ["--access-key", ak, "--secret-key", sk])
    assert (user.access_key, user.secret_key) == (ak, sk), "explicit keys not used"
    client = user.client()
    assert client.list_buckets().get("Buckets", []) == [], "a new user must see no buckets"
    run_coffer(["user", "remove", name], server.endpoint, server.access_key, server.secret_key)
    expect_error(client.list_buckets, "InvalidAccessKeyId", 403)
    listed = json.loads(run_coffer(["user", "list"], server.endpoint, server.access_key,
                                   server.secret_key).stdout)
    assert name not in [u.get("name") for u in listed], "removed user still listed"


def test_user_admin_requires_root(server, second_user):
    proc = run_coffer(["user", "add", "sneaky"], server.endpoint, second_user.access_key,
                      second_user.secret_key, check=False)
    assert proc.returncode != 0, f"a non-root user could add users: {proc.stdout}"
    listed = json.loads(run_coffer(["user", "list"], server.endpoint, server.access_key,
                                   server.secret_key).stdout)
    assert "sneaky" not in [u.get("name") for u in listed]


def test_generated_root_credentials(make_server):
    srv = make_server(with_root_env=False)
    cred_file = srv.data_dir / "credentials"
    assert cred_file.exists(), f"no {cred_file} after a first start without COFFER_ROOT_* set"
    mode = stat.S_IMODE(cred_file.stat().st_mode)
    assert mode == 0o600, f"credentials file has mode {oct(mode)}, expected 0o600"
    ini = configparser.ConfigParser()
    ini.read(cred_file)
    assert ini.has_section("default"), f"credentials file has no [default]: {cred_file.read_text()!r}"
    ak = ini.get("default", "aws_access_key_id")
    sk = ini.get("default", "aws_secret_access_key")
    assert ak and sk and len(sk) >= 20, "generated credentials look empty or weak"
    client = make_s3_client(srv.endpoint, ak, sk)
    client.list_buckets()
    assert sk not in srv.log_text(), "the generated secret key was printed to the log"

    srv.restart()
    ini2 = configparser.ConfigParser()
    ini2.read(cred_file)
    assert (ini2.get("default", "aws_access_key_id"), ini2.get("default", "aws_secret_access_key")) == (ak, sk), (
        "credentials were regenerated on the second start"
    )
    make_s3_client(srv.endpoint, ak, sk).list_buckets()
    assert sk not in srv.log_text(), "the generated secret key was printed to the log after restart"


@pytest.mark.last
@pytest.mark.embedded_only("the listening line names the server's port, not the balancer's "
                           "(test_secrets.py greps the gateways' logs)")
def test_no_secrets_in_server_log(server, second_user):
    """Runs after every other test: the whole run's server output holds no secret and no panic."""
    log = server.log_text()
    assert log.strip(), "the server printed nothing at all; expected at least the listening line"
    assert f"listening on {server.endpoint}" in log, "no 'listening on http://127.0.0.1:PORT' line"
    for label, secret in [("root secret key", server.secret_key), ("user2 secret key", second_user.secret_key)]:
        assert secret not in log, f"the {label} appears in the server log"
    panics = [line for line in log.splitlines() if "panicked at" in line]
    assert not panics, f"the server panicked during the run: {panics[:3]}"
