"""Multipart as clients use it, and object fidelity (issue 14).

Each test is the regression test of one reported bug, driven by the real client
that hit it: retried completions, per-part and composite checksums (boto3, the
aws CLI), GetObjectAttributes, partNumber reads, OSS's 100 KB parts (oss2),
header bytes, listing escapes and conditional writes.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import os
import zlib
from xml.etree import ElementTree

import oss2
import pytest
import requests
from botocore.exceptions import ClientError

from oss_support import cleanup_bucket, oss2_bucket, unique_oss_bucket
from support import expect_error, http_status, sign_request

MiB = 1024 * 1024


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def sha256_composite(parts: list[bytes]) -> str:
    joined = b"".join(hashlib.sha256(p).digest() for p in parts)
    return f"{b64(hashlib.sha256(joined).digest())}-{len(parts)}"


def crc32(data: bytes) -> str:
    return b64(zlib.crc32(data).to_bytes(4, "big"))


def upload_sha256_parts(s3, bucket, key, parts, **create):
    """A multipart upload with SHA256 part checksums, as boto3 users write it."""
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256",
                                     **create)["UploadId"]
    done = []
    for n, data in enumerate(parts, start=1):
        resp = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=data,
                              ChecksumAlgorithm="SHA256")
        assert resp["ChecksumSHA256"] == b64(hashlib.sha256(data).digest()), f"part {n} checksum"
        done.append({"PartNumber": n, "ETag": resp["ETag"], "ChecksumSHA256": resp["ChecksumSHA256"]})
    return uid, done


# --------------------------------------------------------------------------- 1. retried completion


def test_retried_completion_answers_like_the_first(s3, bucket):
    parts = [os.urandom(5 * MiB), b"tail"]
    uid, done = upload_sha256_parts(s3, bucket, "retry", parts)
    first = s3.complete_multipart_upload(Bucket=bucket, Key="retry", UploadId=uid,
                                         MultipartUpload={"Parts": done})
    again = s3.complete_multipart_upload(Bucket=bucket, Key="retry", UploadId=uid,
                                         MultipartUpload={"Parts": done})
    for field in ("ETag", "Location", "Bucket", "Key", "ChecksumSHA256", "ChecksumType"):
        assert again.get(field) == first.get(field), f"{field}: {again.get(field)!r} != {first.get(field)!r}"
    assert first["ChecksumSHA256"] == sha256_composite(parts)
    # Another upload id of the same key is still NoSuchUpload.
    other = s3.create_multipart_upload(Bucket=bucket, Key="retry")["UploadId"]
    s3.abort_multipart_upload(Bucket=bucket, Key="retry", UploadId=other)
    expect_error(s3.complete_multipart_upload, "NoSuchUpload", 404, Bucket=bucket, Key="retry",
                 UploadId=other, MultipartUpload={"Parts": done})


def test_retried_completion_oss2(server, s3_required):
    name = unique_oss_bucket("oss2-retry")
    b = oss2_bucket(server, name, "v4")
    b.create_bucket()
    try:
        uid = b.init_multipart_upload("k").upload_id
        data = os.urandom(200 * 1024)
        r1 = b.upload_part("k", uid, 1, data[:150 * 1024])
        r2 = b.upload_part("k", uid, 2, data[150 * 1024:])
        parts = [oss2.models.PartInfo(1, r1.etag), oss2.models.PartInfo(2, r2.etag)]
        first = b.complete_multipart_upload("k", uid, parts)
        again = b.complete_multipart_upload("k", uid, parts)
        assert again.etag == first.etag
        assert again.crc == first.crc
        assert b.get_object("k").read() == data
    finally:
        cleanup_bucket(s3_required, name)


# --------------------------------------------------------------------------- 2. checksums


def test_sha256_composite_checksum_boto3(s3, bucket):
    parts = [os.urandom(5 * MiB), os.urandom(MiB + 3)]
    uid, done = upload_sha256_parts(s3, bucket, "sha", parts)
    listed = s3.list_parts(Bucket=bucket, Key="sha", UploadId=uid)
    assert listed["ChecksumAlgorithm"] == "SHA256"
    assert [p["ChecksumSHA256"] for p in listed["Parts"]] == [d["ChecksumSHA256"] for d in done]
    # A per-part checksum that is not the uploaded part's is InvalidPart.
    wrong = [dict(done[0], ChecksumSHA256=done[1]["ChecksumSHA256"]), done[1]]
    expect_error(s3.complete_multipart_upload, "InvalidPart", 400, Bucket=bucket, Key="sha",
                 UploadId=uid, MultipartUpload={"Parts": wrong})
    resp = s3.complete_multipart_upload(Bucket=bucket, Key="sha", UploadId=uid,
                                        MultipartUpload={"Parts": done})
    assert resp["ChecksumSHA256"] == sha256_composite(parts)
    assert resp["ChecksumType"] == "COMPOSITE"
    head = s3.head_object(Bucket=bucket, Key="sha", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == sha256_composite(parts)
    assert head["ChecksumType"] == "COMPOSITE"
    got = s3.get_object(Bucket=bucket, Key="sha", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"".join(parts)


def test_create_multipart_upload_declares_checksum(s3, bucket):
    resp = s3.create_multipart_upload(Bucket=bucket, Key="decl", ChecksumAlgorithm="CRC32C",
                                      ChecksumType="FULL_OBJECT")
    headers = resp["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-checksum-algorithm"] == "CRC32C"
    assert headers["x-amz-checksum-type"] == "FULL_OBJECT"
    s3.abort_multipart_upload(Bucket=bucket, Key="decl", UploadId=resp["UploadId"])
    expect_error(s3.create_multipart_upload, "InvalidRequest", 400, Bucket=bucket, Key="decl",
                 ChecksumAlgorithm="SHA256", ChecksumType="FULL_OBJECT")


def test_full_object_crc32(s3, bucket):
    parts = [os.urandom(5 * MiB), os.urandom(12345)]
    whole = b"".join(parts)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="full", ChecksumAlgorithm="CRC32",
                                     ChecksumType="FULL_OBJECT")["UploadId"]
    done = []
    for n, data in enumerate(parts, start=1):
        r = s3.upload_part(Bucket=bucket, Key="full", UploadId=uid, PartNumber=n, Body=data,
                           ChecksumAlgorithm="CRC32")
        done.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    # The completion's whole-object value is checked.
    expect_error(s3.complete_multipart_upload, "BadDigest", 400, Bucket=bucket, Key="full",
                 UploadId=uid, MultipartUpload={"Parts": done}, ChecksumType="FULL_OBJECT",
                 ChecksumCRC32=crc32(b"not the object"))
    resp = s3.complete_multipart_upload(Bucket=bucket, Key="full", UploadId=uid,
                                        MultipartUpload={"Parts": done}, ChecksumType="FULL_OBJECT",
                                        ChecksumCRC32=crc32(whole))
    assert resp["ChecksumCRC32"] == crc32(whole)
    assert resp["ChecksumType"] == "FULL_OBJECT"
    # botocore validates a full-object CRC32 on GET: a wrong combination would fail here.
    got = s3.get_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == crc32(whole)
    assert got["Body"].read() == whole


def test_aws_cli_cp_sha256_and_get_object_attributes(aws, s3, bucket, tmp_path):
    data = os.urandom(9 * MiB)  # above the CLI's 8 MiB multipart threshold: parts of 8 MiB + 1 MiB
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    aws("s3", "cp", "--checksum-algorithm", "SHA256", str(src), f"s3://{bucket}/cli/big.bin")
    parts = [data[:8 * MiB], data[8 * MiB:]]
    attrs = aws.json("s3api", "get-object-attributes", "--bucket", bucket, "--key", "cli/big.bin",
                     "--object-attributes", "ETag", "Checksum", "ObjectParts", "StorageClass",
                     "ObjectSize")
    assert attrs["ObjectSize"] == len(data)
    assert attrs["StorageClass"] == "STANDARD"
    assert attrs["Checksum"]["ChecksumSHA256"] == sha256_composite(parts)
    assert attrs["Checksum"]["ChecksumType"] == "COMPOSITE"
    assert attrs["ObjectParts"]["TotalPartsCount"] == 2
    assert [p["Size"] for p in attrs["ObjectParts"]["Parts"]] == [len(p) for p in parts]
    assert [p["ChecksumSHA256"] for p in attrs["ObjectParts"]["Parts"]] == [
        b64(hashlib.sha256(p).digest()) for p in parts]
    assert attrs["ETag"] == s3.head_object(Bucket=bucket, Key="cli/big.bin")["ETag"].strip('"')
    out = tmp_path / "back.bin"
    aws("s3", "cp", f"s3://{bucket}/cli/big.bin", str(out))
    assert out.read_bytes() == data


# --------------------------------------------------------------------------- 3. GetObjectAttributes


def test_get_object_attributes_boto3(s3, bucket):
    s3.put_object(Bucket=bucket, Key="single", Body=b"hello", ChecksumAlgorithm="SHA256")
    attrs = s3.get_object_attributes(Bucket=bucket, Key="single",
                                     ObjectAttributes=["ETag", "Checksum", "ObjectSize", "ObjectParts"])
    assert attrs["ETag"] == hashlib.md5(b"hello").hexdigest()
    assert attrs["ObjectSize"] == 5
    assert attrs["Checksum"]["ChecksumSHA256"] == b64(hashlib.sha256(b"hello").digest())
    assert "ObjectParts" not in attrs
    assert attrs["LastModified"] is not None

    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"end"]
    uid, done = upload_sha256_parts(s3, bucket, "multi", parts)
    s3.complete_multipart_upload(Bucket=bucket, Key="multi", UploadId=uid,
                                 MultipartUpload={"Parts": done})
    page = s3.get_object_attributes(Bucket=bucket, Key="multi", ObjectAttributes=["ObjectParts"],
                                    MaxParts=2)["ObjectParts"]
    assert page["TotalPartsCount"] == 3 and page["IsTruncated"] is True
    assert [p["PartNumber"] for p in page["Parts"]] == [1, 2]
    rest = s3.get_object_attributes(Bucket=bucket, Key="multi", ObjectAttributes=["ObjectParts"],
                                    PartNumberMarker=page["NextPartNumberMarker"])["ObjectParts"]
    assert [(p["PartNumber"], p["Size"]) for p in rest["Parts"]] == [(3, 3)]
    assert rest["IsTruncated"] is False
    expect_error(s3.get_object_attributes, "NoSuchKey", 404, Bucket=bucket, Key="absent",
                 ObjectAttributes=["ETag"])


# --------------------------------------------------------------------------- 4. partNumber


@pytest.mark.parametrize("sse", [None, "AES256"])
def test_get_and_head_part_number(s3, bucket, sse):
    extra = {"ServerSideEncryption": sse} if sse else {}
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB + 17), os.urandom(1000)]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="pn", **extra)["UploadId"]
    done = []
    for n, data in enumerate(parts, start=1):
        r = s3.upload_part(Bucket=bucket, Key="pn", UploadId=uid, PartNumber=n, Body=data)
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="pn", UploadId=uid, MultipartUpload={"Parts": done})
    total = sum(len(p) for p in parts)
    start = 0
    for n, data in enumerate(parts, start=1):
        got = s3.get_object(Bucket=bucket, Key="pn", PartNumber=n)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["ContentRange"] == f"bytes {start}-{start + len(data) - 1}/{total}"
        assert got["PartsCount"] == 3
        assert got["Body"].read() == data, f"part {n} bytes"
        head = s3.head_object(Bucket=bucket, Key="pn", PartNumber=n)
        assert head["ContentLength"] == len(data) and head["PartsCount"] == 3
        start += len(data)
    err = expect_error(s3.get_object, "InvalidPartNumber", 416, Bucket=bucket, Key="pn", PartNumber=4)
    assert err is not None
    s3.put_object(Bucket=bucket, Key="one", Body=b"single part", **extra)
    one = s3.get_object(Bucket=bucket, Key="one", PartNumber=1)
    assert one["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert one["Body"].read() == b"single part"
    expect_error(s3.get_object, "InvalidPartNumber", 416, Bucket=bucket, Key="one", PartNumber=2)


# --------------------------------------------------------------------------- 5. OSS part size


def test_oss2_one_mib_parts(server, s3_required):
    name = unique_oss_bucket("oss2-parts")
    b = oss2_bucket(server, name, "v1")
    b.create_bucket()
    try:
        data = os.urandom(3 * MiB + 4321)
        uid = b.init_multipart_upload("mp").upload_id
        parts = []
        for n, at in enumerate(range(0, len(data), MiB), start=1):
            r = b.upload_part("mp", uid, n, data[at:at + MiB])
            parts.append(oss2.models.PartInfo(n, r.etag))
        b.complete_multipart_upload("mp", uid, parts)
        assert b.get_object("mp").read() == data
        # Below OSS's 100 KB: EntityTooSmall with OSS's EC.
        uid = b.init_multipart_upload("small").upload_id
        r1 = b.upload_part("small", uid, 1, b"x" * (100 * 1024 - 1))
        r2 = b.upload_part("small", uid, 2, b"y")
        with pytest.raises(oss2.exceptions.OssError) as ei:
            b.complete_multipart_upload("small", uid, [oss2.models.PartInfo(1, r1.etag),
                                                       oss2.models.PartInfo(2, r2.etag)])
        assert ei.value.status == 400 and ei.value.code == "EntityTooSmall"
        assert ei.value.ec == "0042-00000213"
        b.abort_multipart_upload("small", uid)
    finally:
        cleanup_bucket(s3_required, name)


# --------------------------------------------------------------------------- 6. header bytes


def test_utf8_metadata_round_trips_boto3(s3, bucket):
    """botocore sends non-ASCII header values as UTF-8 (its Metadata parameter refuses them, so
    users set the header in a before-sign hook); http.client reads headers back as Latin-1, so
    the same bytes read back are the UTF-8 bytes decoded as Latin-1."""
    value = "Hello Worldé"

    def add(request, **_):
        request.headers["x-amz-meta-x"] = value

    s3.meta.events.register("before-sign.s3.PutObject", add)
    try:
        s3.put_object(Bucket=bucket, Key="utf8", Body=b"x", ContentDisposition='attachment; filename="é.txt"',
                      ContentEncoding="identity", CacheControl="max-age=60, private",
                      ContentLanguage="de-CH", Expires="Thu, 01 Dec 2044 16:00:00 GMT")
    finally:
        s3.meta.events.unregister("before-sign.s3.PutObject", add)
    head = s3.head_object(Bucket=bucket, Key="utf8")
    assert head["Metadata"]["x"].encode("latin-1") == value.encode("utf-8")
    assert head["ContentDisposition"].encode("latin-1") == 'attachment; filename="é.txt"'.encode()
    headers = head["ResponseMetadata"]["HTTPHeaders"]
    assert headers["content-encoding"] == "identity"
    assert headers["cache-control"] == "max-age=60, private"
    assert headers["content-language"] == "de-CH"
    assert headers["expires"] == "Thu, 01 Dec 2044 16:00:00 GMT"


@pytest.mark.parametrize("kind", ["v1", "v4"])
def test_latin1_metadata_round_trips_oss2(server, s3, s3_required, kind):
    """oss2 (through http.client) sends Latin-1 bytes, signed as the text's UTF-8; they are
    accepted and come back as sent, in both dialects."""
    name = unique_oss_bucket(f"oss2-meta-{kind}")
    b = oss2_bucket(server, name, kind)
    b.create_bucket()
    try:
        b.put_object("m", b"x", headers={"x-oss-meta-x": "Hello Worldé",
                                         "Content-Disposition": "inline; filename=café.txt"})
        got = b.get_object("m")
        assert got.headers["x-oss-meta-x"] == "Hello Worldé"
        assert got.headers["Content-Disposition"] == "inline; filename=café.txt"
        assert b.head_object("m").headers["x-oss-meta-x"] == "Hello Worldé"
        assert s3.head_object(Bucket=name, Key="m")["Metadata"]["x"] == "Hello Worldé"
    finally:
        cleanup_bucket(s3_required, name)


# --------------------------------------------------------------------------- 7. listings


def _signed_get(server, url):
    signed = sign_request("GET", url, server.access_key, server.secret_key)
    resp = requests.get(url, headers=signed.headers, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp


def test_listing_control_characters_are_xml_escaped(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a\nb", Body=b"1")
    s3.put_object(Bucket=bucket, Key="a\nc\rd", Body=b"2")
    # boto3 asks for encoding-type=url and decodes what it knows to decode.
    assert s3.list_objects(Bucket=bucket, Prefix="a\n")["Prefix"] == "a\n"
    v2 = s3.list_objects_v2(Bucket=bucket, Prefix="a\n", Delimiter="\r")
    assert v2["Prefix"] == "a\n"
    assert [c["Key"] for c in v2["Contents"]] == ["a\nb"]
    assert [p["Prefix"] for p in v2["CommonPrefixes"]] == ["a\nc\r"]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="a\nu")["UploadId"]
    try:
        ups = s3.list_multipart_uploads(Bucket=bucket, Prefix="a\n")
        assert ups["Prefix"] == "a\n"
        assert [u["Key"] for u in ups["Uploads"]] == ["a\nu"]
    finally:
        s3.abort_multipart_upload(Bucket=bucket, Key="a\nu", UploadId=uid)
    # Without encoding-type=url: character references, never percent-encoding.
    for query in ("prefix=a%0A", "list-type=2&prefix=a%0A&start-after=a%0A", "uploads&prefix=a%0A"):
        body = _signed_get(server, f"{server.endpoint}/{bucket}?{query}").text
        assert "%0A" not in body and "<Prefix>a&#xA;</Prefix>" in body, body
        if "uploads" not in query:
            assert "a&#xA;c&#xD;d" in body, body
            root = ElementTree.fromstring(body.encode())
            keys = [e.text for e in root.iter() if e.tag.endswith("Key")]
            assert "a\nc\rd" in keys


def test_oss2_listing_with_newline_prefix(server, s3_required):
    name = unique_oss_bucket("oss2-list")
    b = oss2_bucket(server, name, "v1")
    b.create_bucket()
    try:
        b.put_object("p\nq", b"1")
        b.put_object("p\nr/s", b"2")
        result = b.list_objects(prefix="p\n", delimiter="/")
        assert [o.key for o in result.object_list] == ["p\nq"]
        assert result.prefix_list == ["p\nr/"]
    finally:
        cleanup_bucket(s3_required, name)


# --------------------------------------------------------------------------- 8. conditional writes


def test_conditional_put(s3, bucket):
    first = s3.put_object(Bucket=bucket, Key="c", Body=b"one", IfNoneMatch="*")
    expect_error(s3.put_object, "PreconditionFailed", 412, Bucket=bucket, Key="c", Body=b"two",
                 IfNoneMatch="*")
    expect_error(s3.put_object, "PreconditionFailed", 412, Bucket=bucket, Key="c", Body=b"two",
                 IfMatch='"00000000000000000000000000000000"')
    expect_error(s3.put_object, "NoSuchKey", 404, Bucket=bucket, Key="absent", Body=b"x",
                 IfMatch=first["ETag"])
    s3.put_object(Bucket=bucket, Key="c", Body=b"three", IfMatch=first["ETag"])
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"three"


def test_conditional_put_aws_cli(aws, s3, bucket, tmp_path):
    body = tmp_path / "body"
    body.write_bytes(b"first")
    aws("s3api", "put-object", "--bucket", bucket, "--key", "c", "--body", str(body),
        "--if-none-match", "*")
    refused = aws("s3api", "put-object", "--bucket", bucket, "--key", "c", "--body", str(body),
                  "--if-none-match", "*", check=False)
    assert refused.returncode != 0 and "PreconditionFailed" in refused.stderr, refused.stderr
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"first"


def test_conditional_complete_and_copy(s3, bucket):
    s3.put_object(Bucket=bucket, Key="taken", Body=b"here")
    uid = s3.create_multipart_upload(Bucket=bucket, Key="taken")["UploadId"]
    r = s3.upload_part(Bucket=bucket, Key="taken", UploadId=uid, PartNumber=1, Body=b"new")
    parts = {"Parts": [{"PartNumber": 1, "ETag": r["ETag"]}]}
    expect_error(s3.complete_multipart_upload, "PreconditionFailed", 412, Bucket=bucket, Key="taken",
                 UploadId=uid, MultipartUpload=parts, IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="taken")["Body"].read() == b"here"
    etag = s3.head_object(Bucket=bucket, Key="taken")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="taken", UploadId=uid, MultipartUpload=parts,
                                 IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="taken")["Body"].read() == b"new"
    src = {"Bucket": bucket, "Key": "taken"}
    expect_error(s3.copy_object, "NoSuchKey", 404, Bucket=bucket, Key="taken2",
                 CopySource=src, IfMatch=etag)
    s3.copy_object(Bucket=bucket, Key="taken2", CopySource=src, IfNoneMatch="*")
    expect_error(s3.copy_object, "PreconditionFailed", 412, Bucket=bucket, Key="taken2",
                 CopySource=src, IfNoneMatch="*")
    expect_error(s3.copy_object, "PreconditionFailed", 412, Bucket=bucket, Key="taken2",
                 CopySource=src, IfMatch=etag)


def test_concurrent_if_none_match_puts_one_wins(server, bucket):
    clients = [server.client() for _ in range(8)]

    def put(i):
        try:
            clients[i].put_object(Bucket=bucket, Key="race", Body=f"writer {i}".encode() * 1000,
                                  IfNoneMatch="*")
            return 200, i
        except ClientError as e:
            return http_status(e), e.response["Error"]["Code"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(put, range(8)))
    winners = [r for r in results if r[0] == 200]
    assert len(winners) == 1, results
    assert all(r in ((412, "PreconditionFailed"), (409, "ConditionalRequestConflict"))
               for r in results if r[0] != 200), results
    body = clients[0].get_object(Bucket=bucket, Key="race")["Body"].read()
    assert body == f"writer {winners[0][1]}".encode() * 1000


def test_get_object_attributes_json_cli(aws, s3, bucket):
    """`aws s3api get-object-attributes` on a plain object (single part, CRC32 by default)."""
    s3.put_object(Bucket=bucket, Key="plain", Body=b"abc")
    out = aws.json("s3api", "get-object-attributes", "--bucket", bucket, "--key", "plain",
                   "--object-attributes", "ETag", "ObjectSize", "Checksum")
    assert out["ObjectSize"] == 3
    assert out["ETag"] == hashlib.md5(b"abc").hexdigest()
    assert out["Checksum"]["ChecksumCRC32"] == crc32(b"abc")
    assert json.dumps(out)
