"""Single-object operations: PUT/GET/HEAD/DELETE, ranges, conditionals, copy, limits."""

import datetime
import gzip
import hashlib
import os

import pytest

from support import destroy_bucket, expect_error, http_status, unique_bucket_name


def etag_of(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


STANDARD_HEADERS = {
    "ContentType": "application/vnd.coffer-test+json; charset=utf-8",
    "ContentEncoding": "gzip",
    "ContentDisposition": 'attachment; filename="report 2024.json"',
    "ContentLanguage": "de-DE",
    "CacheControl": "max-age=3600, private",
}
EXPIRES = datetime.datetime(2031, 7, 4, 12, 30, 15, tzinfo=datetime.timezone.utc)
METADATA = {
    "color": "blue",
    "empty": "",
    "with-dash": "a value with spaces, commas; and = signs",
    "long": "L" * 400,
    "json": '{"a":[1,2,3],"b":"c"}',
}


def assert_standard_headers(resp, what: str):
    for field, expected in STANDARD_HEADERS.items():
        assert resp.get(field) == expected, f"{what}: {field} is {resp.get(field)!r}, expected {expected!r}"
    assert resp.get("Expires") == EXPIRES or resp.get("ExpiresString") in (
        "Fri, 04 Jul 2031 12:30:15 GMT",
    ), f"{what}: Expires is {resp.get('Expires')!r} / {resp.get('ExpiresString')!r}"
    assert resp.get("Metadata") == METADATA, f"{what}: Metadata is {resp.get('Metadata')}, expected {METADATA}"


def test_put_get_head_delete_round_trip(s3_any, bucket):
    body = gzip.compress(b"hello coffer " * 1000)
    put = s3_any.put_object(Bucket=bucket, Key="doc.json.gz", Body=body, Metadata=METADATA,
                            Expires=EXPIRES, **STANDARD_HEADERS)
    assert put["ETag"] == etag_of(body), f"PUT ETag {put['ETag']} is not the MD5 of the body"

    get = s3_any.get_object(Bucket=bucket, Key="doc.json.gz")
    got = get["Body"].read()
    assert got == body, "GET returned different bytes (was the body decoded or re-encoded?)"
    assert get["ETag"] == put["ETag"]
    assert get["ContentLength"] == len(body)
    assert_standard_headers(get, "GET")
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - get["LastModified"]).total_seconds()) < 120, f"LastModified {get['LastModified']} not ~now"

    head = s3_any.head_object(Bucket=bucket, Key="doc.json.gz")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == put["ETag"]
    assert head["LastModified"] == get["LastModified"]
    assert_standard_headers(head, "HEAD")

    s3_any.delete_object(Bucket=bucket, Key="doc.json.gz")
    expect_error(s3_any.head_object, "404", 404, Bucket=bucket, Key="doc.json.gz")
    expect_error(s3_any.get_object, "NoSuchKey", 404, Bucket=bucket, Key="doc.json.gz")


def test_get_response_header_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"data", ContentType="text/plain")
    resp = s3.get_object(
        Bucket=bucket, Key="o",
        ResponseContentType="application/x-override",
        ResponseContentDisposition="inline",
        ResponseCacheControl="no-store",
    )
    assert resp["ContentType"] == "application/x-override"
    assert resp["ContentDisposition"] == "inline"
    assert resp["CacheControl"] == "no-store"
    assert resp["Body"].read() == b"data"


def test_overwrite_replaces_content_and_metadata(s3_any, bucket):
    s3_any.put_object(Bucket=bucket, Key="k", Body=b"first", Metadata={"v": "1"}, ContentType="text/plain")
    s3_any.put_object(Bucket=bucket, Key="k", Body=b"second version", Metadata={"w": "2"})
    get = s3_any.get_object(Bucket=bucket, Key="k")
    assert get["Body"].read() == b"second version"
    assert get["Metadata"] == {"w": "2"}, f"old metadata leaked into overwrite: {get['Metadata']}"
    assert get["ContentType"] != "text/plain", "old Content-Type leaked into overwrite"


def test_delete_missing_key_is_204(s3, bucket):
    resp = s3.delete_object(Bucket=bucket, Key="never-existed")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204


# --------------------------------------------------------------------------- ranges

RANGE_BODY = bytes(range(100))


@pytest.mark.parametrize(
    "spec,start,end",
    [
        ("bytes=0-9", 0, 9),
        ("bytes=5-", 5, 99),
        ("bytes=-5", 95, 99),
        ("bytes=90-200", 90, 99),  # an end past the size is clipped
        ("bytes=99-99", 99, 99),
        ("bytes=0-", 0, 99),
    ],
)
def test_range_get(s3_any, bucket, spec, start, end):
    s3_any.put_object(Bucket=bucket, Key="r", Body=RANGE_BODY)
    resp = s3_any.get_object(Bucket=bucket, Key="r", Range=spec)
    assert http_status_ok(resp) == 206, f"{spec}: status {http_status_ok(resp)}, expected 206"
    assert resp["ContentRange"] == f"bytes {start}-{end}/100", f"{spec}: Content-Range {resp['ContentRange']}"
    assert resp["ContentLength"] == end - start + 1
    assert resp["Body"].read() == RANGE_BODY[start:end + 1]


def http_status_ok(resp) -> int:
    return resp["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize("spec", ["bytes=100-", "bytes=100-200", "bytes=500-600"])
def test_range_beyond_end_is_invalid_range(s3, bucket, spec):
    s3.put_object(Bucket=bucket, Key="r", Body=RANGE_BODY)
    exc = expect_error(s3.get_object, "InvalidRange", 416, Bucket=bucket, Key="r", Range=spec)
    assert exc.response["Error"].get("Code") == "InvalidRange"


def test_range_across_internal_chunk_boundaries(s3_any, bucket):
    """Ranges that start/end at and around 64 KiB multiples (the sealing chunk size)."""
    body = os.urandom(300_000)
    s3_any.put_object(Bucket=bucket, Key="big", Body=body)
    k = 65536
    for start, end in [(k - 1, k), (k, 2 * k - 1), (k - 10, 3 * k + 10), (0, k), (4 * k, 299_999),
                       (123_456, 123_456), (1, 299_998)]:
        resp = s3_any.get_object(Bucket=bucket, Key="big", Range=f"bytes={start}-{end}")
        got = resp["Body"].read()
        assert got == body[start:end + 1], f"range {start}-{end}: wrong bytes ({len(got)} returned)"
        assert resp["ContentRange"] == f"bytes {start}-{end}/300000"


def test_range_on_empty_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    expect_error(s3.get_object, "InvalidRange", 416, Bucket=bucket, Key="empty", Range="bytes=0-0")


# --------------------------------------------------------------------------- conditionals


def test_conditional_get_and_head(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="c", Body=b"conditional")
    etag = put["ETag"]
    last_modified = s3.head_object(Bucket=bucket, Key="c")["LastModified"]
    past = last_modified - datetime.timedelta(days=1)
    future = last_modified + datetime.timedelta(days=1)

    # If-Match
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"conditional"
    expect_error(s3.get_object, "PreconditionFailed", 412, Bucket=bucket, Key="c", IfMatch='"0000"')
    expect_error(s3.head_object, "412", 412, Bucket=bucket, Key="c", IfMatch='"0000"')

    # If-None-Match
    expect_error(s3.get_object, "304", 304, Bucket=bucket, Key="c", IfNoneMatch=etag)
    expect_error(s3.head_object, "304", 304, Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="c", IfNoneMatch='"0000"')["Body"].read() == b"conditional"

    # If-Modified-Since
    assert s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=past)["Body"].read() == b"conditional"
    expect_error(s3.get_object, "304", 304, Bucket=bucket, Key="c", IfModifiedSince=future)
    expect_error(s3.get_object, "304", 304, Bucket=bucket, Key="c", IfModifiedSince=last_modified)
    expect_error(s3.head_object, "304", 304, Bucket=bucket, Key="c", IfModifiedSince=future)

    # If-Unmodified-Since
    assert s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=future)["Body"].read() == b"conditional"
    assert s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=last_modified)["Body"].read() == b"conditional"
    expect_error(s3.get_object, "PreconditionFailed", 412, Bucket=bucket, Key="c", IfUnmodifiedSince=past)
    expect_error(s3.head_object, "412", 412, Bucket=bucket, Key="c", IfUnmodifiedSince=past)


def test_conditional_precedence(s3, bucket):
    """RFC 7232 / S3: If-Match true + If-Unmodified-Since false => 200;
    If-None-Match false + If-Modified-Since true => 304."""
    put = s3.put_object(Bucket=bucket, Key="p", Body=b"precedence")
    lm = s3.head_object(Bucket=bucket, Key="p")["LastModified"]
    past = lm - datetime.timedelta(days=1)
    resp = s3.get_object(Bucket=bucket, Key="p", IfMatch=put["ETag"], IfUnmodifiedSince=past)
    assert resp["Body"].read() == b"precedence"
    expect_error(s3.get_object, "304", 304, Bucket=bucket, Key="p", IfNoneMatch=put["ETag"], IfModifiedSince=past)


def test_conditional_on_range(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="cr", Body=RANGE_BODY)
    resp = s3.get_object(Bucket=bucket, Key="cr", Range="bytes=10-19", IfMatch=put["ETag"])
    assert resp["Body"].read() == RANGE_BODY[10:20]
    expect_error(s3.get_object, "PreconditionFailed", 412, Bucket=bucket, Key="cr", Range="bytes=10-19",
                 IfMatch='"nope"')


# --------------------------------------------------------------------------- DeleteObjects


def test_delete_objects_batch(s3_any, bucket):
    for k in ("a", "b", "c", "keep"):
        s3_any.put_object(Bucket=bucket, Key=k, Body=k.encode())
    resp = s3_any.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "c"}, {"Key": "does-not-exist"}]},
    )
    deleted = sorted(d["Key"] for d in resp.get("Deleted", []))
    assert deleted == ["a", "b", "c", "does-not-exist"], (
        f"Deleted list is {deleted}; a missing key must be reported as deleted too"
    )
    assert not resp.get("Errors"), f"unexpected Errors: {resp.get('Errors')}"
    left = [o["Key"] for o in s3_any.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert left == ["keep"], f"objects left after DeleteObjects: {left}"


def test_delete_objects_quiet(s3, bucket):
    for k in ("q1", "q2"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    resp = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "q1"}, {"Key": "q2"}, {"Key": "q3"}], "Quiet": True}
    )
    assert not resp.get("Deleted"), f"Quiet mode must not list deleted keys: {resp.get('Deleted')}"
    assert not resp.get("Errors"), f"unexpected Errors: {resp.get('Errors')}"
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_delete_objects_special_keys(s3, bucket):
    keys = ["sp ace", "uni-ключ", "a&b<c>", "plus+sign"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert sorted(d["Key"] for d in resp.get("Deleted", [])) == sorted(keys)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


# --------------------------------------------------------------------------- CopyObject


def test_copy_object_copy_directive(s3_any, bucket):
    body = os.urandom(70_000)
    src = s3_any.put_object(Bucket=bucket, Key="src", Body=body, Metadata={"origin": "src"},
                            ContentType="image/png", CacheControl="no-cache")
    resp = s3_any.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert resp["CopyObjectResult"]["ETag"] == src["ETag"], "copy of a simple object must keep its MD5 ETag"
    get = s3_any.get_object(Bucket=bucket, Key="dst")
    assert get["Body"].read() == body
    assert get["Metadata"] == {"origin": "src"}
    assert get["ContentType"] == "image/png"
    assert get.get("CacheControl") == "no-cache"


def test_copy_object_replace_directive(s3_any, bucket):
    s3_any.put_object(Bucket=bucket, Key="src", Body=b"payload", Metadata={"origin": "src", "old": "1"},
                      ContentType="image/png")
    s3_any.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                       MetadataDirective="REPLACE", Metadata={"new": "2"}, ContentType="text/csv")
    head = s3_any.head_object(Bucket=bucket, Key="dst")
    assert head["Metadata"] == {"new": "2"}, f"REPLACE must drop the source metadata: {head['Metadata']}"
    assert head["ContentType"] == "text/csv"
    src = s3_any.head_object(Bucket=bucket, Key="src")
    assert src["Metadata"] == {"origin": "src", "old": "1"}, "the source changed"


def test_copy_object_onto_itself(s3, bucket):
    s3.put_object(Bucket=bucket, Key="self", Body=b"same bytes", Metadata={"v": "1"}, ContentType="text/plain")
    s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"},
                   MetadataDirective="REPLACE", Metadata={"v": "2"}, ContentType="text/markdown")
    get = s3.get_object(Bucket=bucket, Key="self")
    assert get["Body"].read() == b"same bytes", "content changed by a metadata-only self copy"
    assert get["Metadata"] == {"v": "2"}
    assert get["ContentType"] == "text/markdown"
    # Without REPLACE, S3 refuses a self copy as a no-op.
    expect_error(s3.copy_object, "InvalidRequest", 400, Bucket=bucket, Key="self",
                 CopySource={"Bucket": bucket, "Key": "self"})


def test_copy_across_buckets_and_special_key(s3, bucket, s3_required):
    other = unique_bucket_name("copydst")
    s3.create_bucket(Bucket=other)
    try:
        body = b"\x00\xffcross bucket"
        s3.put_object(Bucket=bucket, Key="dir/sp ace+plus%.bin", Body=body)
        s3.copy_object(Bucket=other, Key="copied/ü.bin", CopySource={"Bucket": bucket, "Key": "dir/sp ace+plus%.bin"})
        assert s3_required.get_object(Bucket=other, Key="copied/ü.bin")["Body"].read() == body
    finally:
        destroy_bucket(s3, other)


def test_copy_conditions_and_missing_source(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="src", Body=b"x")
    expect_error(s3.copy_object, "NoSuchKey", 404, Bucket=bucket, Key="dst",
                 CopySource={"Bucket": bucket, "Key": "missing"})
    expect_error(s3.copy_object, "PreconditionFailed", 412, Bucket=bucket, Key="dst",
                 CopySource={"Bucket": bucket, "Key": "src"}, CopySourceIfMatch='"nope"')
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                   CopySourceIfMatch=put["ETag"])
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"x"


# --------------------------------------------------------------------------- limits and errors


def test_key_too_long(s3, bucket):
    ok_key = "k" * 1024
    s3.put_object(Bucket=bucket, Key=ok_key, Body=b"max")
    assert s3.get_object(Bucket=bucket, Key=ok_key)["Body"].read() == b"max"
    expect_error(s3.put_object, "KeyTooLongError", 400, Bucket=bucket, Key="k" * 1025, Body=b"x")
    # Multi-byte: 342 * 3 bytes = 1026 bytes > 1024 even though it is 342 characters.
    expect_error(s3.put_object, "KeyTooLongError", 400, Bucket=bucket, Key="€" * 342, Body=b"x")


def test_metadata_too_large(s3, bucket):
    s3.put_object(Bucket=bucket, Key="ok", Body=b"x", Metadata={"a": "v" * 1800})
    expect_error(s3.put_object, "MetadataTooLarge", 400, Bucket=bucket, Key="big",
                 Body=b"x", Metadata={"a": "v" * 2100})
    expect_error(s3.put_object, "MetadataTooLarge", 400, Bucket=bucket, Key="many",
                 Body=b"x", Metadata={f"key{i}": "v" * 200 for i in range(12)})
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["ok"], f"rejected objects were stored: {keys}"


def test_no_such_key(s3, bucket):
    exc = expect_error(s3.get_object, "NoSuchKey", 404, Bucket=bucket, Key="nope")
    assert "Key" in exc.response["Error"] or exc.response["Error"].get("Message")
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key="nope")
    assert http_status(exc) == 404


def test_zero_byte_object(s3_any, bucket):
    put = s3_any.put_object(Bucket=bucket, Key="zero", Body=b"")
    assert put["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    get = s3_any.get_object(Bucket=bucket, Key="zero")
    assert get["ContentLength"] == 0
    assert get["Body"].read() == b""
    assert s3_any.head_object(Bucket=bucket, Key="zero")["ContentLength"] == 0
    listed = s3_any.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("zero", 0)]


def test_binary_every_byte_value(s3_any, bucket):
    body = bytes(range(256)) * 257 + os.urandom(4099) + b"\r\n0\r\n\r\n"
    put = s3_any.put_object(Bucket=bucket, Key="bin", Body=body)
    assert put["ETag"] == etag_of(body)
    got = s3_any.get_object(Bucket=bucket, Key="bin")["Body"].read()
    assert got == body, "binary content changed in transit or storage"


@pytest.mark.parametrize(
    "key",
    [
        "with space.txt",
        "unicode-ключ-日本語-émoji-😀.txt",
        "plus+sign+",
        "percent%20literal%2F%",
        "double//slash",
        "trailing/slash/",
        "/leading-slash",
        "query?and#hash&amp=eq",
        "tilde~star*quote'paren()",
        "deep/a/b/c/d/e/f.txt",
    ],
)
def test_special_keys(s3, s3_required, bucket, key):
    body = f"content of {key}".encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert s3_required.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(body)
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert listed == [key], f"listing shows {listed!r}, expected exactly [{key!r}]"
    listed_v1 = [o["Key"] for o in s3.list_objects(Bucket=bucket).get("Contents", [])]
    assert listed_v1 == [key], f"V1 listing shows {listed_v1!r}"
    s3.delete_object(Bucket=bucket, Key=key)
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key=key)
