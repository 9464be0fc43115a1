"""OSS dialect through the official `alibabacloud-oss-v2` SDK (1.4.1), default V4 signing.

Path style is forced by the IP endpoint; region cn-hangzhou. Buckets are created through the SDK
and destroyed via boto3. See OSS-NOTES.md for the response requirements these tests exercise.
"""

from __future__ import annotations

import datetime
import hashlib
import time
import urllib.parse

import alibabacloud_oss_v2 as oss
import pytest
import requests

from oss_support import (
    LIST_KEYS,
    LIST_PREFIX,
    MiB,
    assert_crc_header,
    assert_etag,
    assert_oss_error_response,
    cleanup_bucket,
    crc64,
    expect_v2_error,
    expected_delimited,
    sha256_file,
    unique_oss_bucket,
    utf8_sorted,
    v2_client,
    write_big_file,
)
from support import DeterministicStream


def _recent(dt: datetime.datetime | None, what: str) -> None:
    assert dt is not None, f"{what}: missing"
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - dt).total_seconds()) < 300, f"{what}: {dt} is not ~now"


@pytest.fixture(scope="module")
def client(server) -> oss.Client:
    # retries=2: v2's get_object_to_file loops `range(1, retry_max_attempts)`, so with 1 it silently does nothing.
    return v2_client(server, retries=2)


@pytest.fixture
def new_bucket(client, s3_required):
    """Factory: fresh buckets created through the v2 SDK; destroyed via boto3 afterwards."""
    made: list[str] = []

    def make(prefix: str = "ossv2") -> str:
        name = unique_oss_bucket(prefix)
        made.append(name)
        res = client.put_bucket(oss.PutBucketRequest(bucket=name))
        assert res.status_code == 200, f"PutBucket -> {res.status_code}"
        return name

    yield make
    for name in made:
        cleanup_bucket(s3_required, name)


@pytest.fixture
def bkt(new_bucket) -> str:
    return new_bucket()


def _get(client, bucket: str, key: str, **kw):
    res = client.get_object(oss.GetObjectRequest(bucket=bucket, key=key, **kw))
    return res, res.body.read()


# --------------------------------------------------------------------------- buckets


def test_bucket_create_list_delete(client, s3_required):
    name = unique_oss_bucket("ossv2-cld")
    try:
        res = client.put_bucket(oss.PutBucketRequest(bucket=name))
        assert res.status_code == 200 and res.request_id, "PutBucket: status / x-oss-request-id"

        listed = client.list_buckets(oss.ListBucketsRequest(prefix=name))
        assert [b.name for b in (listed.buckets or [])] == [name], f"list_buckets(prefix) -> {listed.buckets}"
        _recent(listed.buckets[0].creation_date, "bucket CreationDate")

        names = []
        for page in client.list_buckets_paginator().iter_page(oss.ListBucketsRequest(max_keys=2)):
            assert len(page.buckets or []) <= 2
            names += [b.name for b in page.buckets or []]
        assert name in names, "paginated list_buckets misses the new bucket"
        assert len(names) == len(set(names)), "paginated list_buckets repeated a bucket"

        client.put_object(oss.PutObjectRequest(bucket=name, key="keep", body=b"x"))
        expect_v2_error(client.delete_bucket, 409, "BucketNotEmpty", oss.DeleteBucketRequest(bucket=name))
        client.delete_object(oss.DeleteObjectRequest(bucket=name, key="keep"))

        res = client.delete_bucket(oss.DeleteBucketRequest(bucket=name))
        assert res.status_code == 204, f"DeleteBucket -> {res.status_code}"
        assert not (client.list_buckets(oss.ListBucketsRequest(prefix=name)).buckets or [])
        expect_v2_error(client.delete_bucket, 404, "NoSuchBucket", oss.DeleteBucketRequest(bucket=name))
    finally:
        cleanup_bucket(s3_required, name)


# --------------------------------------------------------------------------- objects


def test_put_get_head_delete(client, bkt, tmp_path):
    key = "docs/report 2024+final ü.json"
    body = b'{"hello": "coffer"}\n' * 500
    meta = {"color": "blue", "with-dash": "a value with spaces, commas; and = signs", "long": "L" * 350}
    ctype = "application/vnd.coffer-test+json; charset=utf-8"

    put = client.put_object(oss.PutObjectRequest(bucket=bkt, key=key, body=body, content_type=ctype, metadata=meta))
    assert put.status_code == 200 and put.request_id
    assert_etag(put.etag, body, "PutObject")
    if put.hash_crc64 is not None:  # the SDK already compared it; make sure it's the right algorithm
        assert put.hash_crc64 == str(crc64(body))

    get, got = _get(client, bkt, key)
    assert got == body
    assert get.status_code == 200
    assert get.content_length == len(body)
    assert get.content_type == ctype
    assert get.etag == put.etag
    assert dict(get.metadata or {}) == meta, f"GET metadata {get.metadata}"
    _recent(get.last_modified, "GET Last-Modified")
    assert_crc_header(get.headers, body, "GET")

    head = client.head_object(oss.HeadObjectRequest(bucket=bkt, key=key))
    assert head.status_code == 200
    assert head.content_length == len(body) and head.content_type == ctype and head.etag == put.etag
    assert dict(head.metadata or {}) == meta
    _recent(head.last_modified, "HEAD Last-Modified")

    meta_res = client.get_object_meta(oss.GetObjectMetaRequest(bucket=bkt, key=key))
    assert meta_res.content_length == len(body) and meta_res.etag == put.etag
    assert client.is_object_exist(bkt, key) is True

    out = tmp_path / "download.bin"
    client.get_object_to_file(oss.GetObjectRequest(bucket=bkt, key=key), str(out))  # CRC-checked
    assert out.read_bytes() == body

    res = client.delete_object(oss.DeleteObjectRequest(bucket=bkt, key=key))
    assert res.status_code == 204
    assert client.is_object_exist(bkt, key) is False
    expect_v2_error(client.get_object, 404, "NoSuchKey", oss.GetObjectRequest(bucket=bkt, key=key))
    assert client.delete_object(oss.DeleteObjectRequest(bucket=bkt, key=key)).status_code == 204


def test_ranged_get(client, bkt):
    body = bytes(range(256)) * 4 + b"tail-bytes"
    total = len(body)
    client.put_object(oss.PutObjectRequest(bucket=bkt, key="range.bin", body=body))

    res, got = _get(client, bkt, "range.bin", range_header="bytes=100-199")
    assert res.status_code == 206, f"ranged GET -> {res.status_code}"
    assert got == body[100:200]
    assert res.content_range == f"bytes 100-199/{total}" and res.content_length == 100

    res, got = _get(client, bkt, "range.bin", range_header="bytes=1000-")
    assert res.status_code == 206 and got == body[1000:]
    res, got = _get(client, bkt, "range.bin", range_header="bytes=-10")
    assert res.status_code == 206 and got == body[-10:]
    res, got = _get(client, bkt, "range.bin", range_header="bytes=5-5", range_behavior="standard")
    assert res.status_code == 206 and got == body[5:6]


# --------------------------------------------------------------------------- copy


def test_copy_object(client, bkt, new_bucket):
    src = "src dir/source file+1 ü.txt"
    body = b"copy me please " * 100
    client.put_object(oss.PutObjectRequest(bucket=bkt, key=src, body=body, content_type="text/x-coffer-src",
                                           metadata={"origin": "source", "shared": "from-source"}))

    res = client.copy_object(oss.CopyObjectRequest(bucket=bkt, key="copies/same bucket.txt",
                                                   source_bucket=bkt, source_key=src))
    assert res.status_code == 200
    assert_etag(res.etag, body, "CopyObject XML ETag")
    _recent(res.last_modified, "CopyObjectResult/LastModified")
    head = client.head_object(oss.HeadObjectRequest(bucket=bkt, key="copies/same bucket.txt"))
    assert dict(head.metadata or {}) == {"origin": "source", "shared": "from-source"}
    assert head.content_type == "text/x-coffer-src"

    other = new_bucket("ossv2-dst")
    res = client.copy_object(oss.CopyObjectRequest(bucket=other, key="dst/copied+key.txt", source_bucket=bkt,
                                                   source_key=src, metadata_directive="COPY"))
    assert_etag(res.etag, body, "cross-bucket CopyObject")
    _, got = _get(client, other, "dst/copied+key.txt")
    assert got == body
    head = client.head_object(oss.HeadObjectRequest(bucket=other, key="dst/copied+key.txt"))
    assert dict(head.metadata or {}) == {"origin": "source", "shared": "from-source"}

    client.copy_object(oss.CopyObjectRequest(bucket=other, key="dst/replaced.txt", source_bucket=bkt, source_key=src,
                                             metadata_directive="REPLACE", content_type="application/x-replaced",
                                             metadata={"fresh": "new value"}))
    head = client.head_object(oss.HeadObjectRequest(bucket=other, key="dst/replaced.txt"))
    assert head.content_type == "application/x-replaced"
    assert dict(head.metadata or {}) == {"fresh": "new value"}, f"REPLACE metadata {head.metadata}"
    _, got = _get(client, other, "dst/replaced.txt")
    assert got == body

    expect_v2_error(client.copy_object, 404, "NoSuchKey",
                    oss.CopyObjectRequest(bucket=other, key="x", source_bucket=bkt, source_key="no/such key"))


# --------------------------------------------------------------------------- listing


def test_list_objects_prefix_delimiter_pagination(client, bkt):
    for k in LIST_KEYS:
        client.put_object(oss.PutObjectRequest(bucket=bkt, key=k, body=k.encode("utf-8")))
    client.put_object(oss.PutObjectRequest(bucket=bkt, key="outside-prefix.txt", body=b"x"))

    # V1 with marker, pages of 7.
    keys, marker, pages = [], None, 0
    while True:
        page = client.list_objects(oss.ListObjectsRequest(bucket=bkt, prefix=LIST_PREFIX, marker=marker, max_keys=7))
        pages += 1
        contents = page.contents or []
        assert len(contents) <= 7
        for o in contents:
            assert o.size == len(o.key.encode("utf-8")), f"{o.key!r}: Size {o.size}"
            assert o.etag.strip('"').lower() == hashlib.md5(o.key.encode("utf-8")).hexdigest()
            _recent(o.last_modified, f"{o.key!r} LastModified")
        keys += [o.key for o in contents]
        if not page.is_truncated:
            break
        assert page.next_marker, "truncated page without NextMarker"
        marker = page.next_marker
        assert pages < 20
    assert keys == LIST_KEYS, f"ListObjects pages: {keys}"
    assert pages == 5

    exp_objs, exp_prefixes = expected_delimited(LIST_KEYS, LIST_PREFIX)
    page = client.list_objects(oss.ListObjectsRequest(bucket=bkt, prefix=LIST_PREFIX, delimiter="/", max_keys=1000))
    assert [o.key for o in page.contents or []] == exp_objs
    assert [p.prefix for p in page.common_prefixes or []] == exp_prefixes

    # V2 with continuation token, pages of 7, and the SDK paginator.
    keys, token, pages = [], None, 0
    while True:
        page = client.list_objects_v2(oss.ListObjectsV2Request(bucket=bkt, prefix=LIST_PREFIX,
                                                               continuation_token=token, max_keys=7))
        pages += 1
        assert len(page.contents or []) <= 7
        if page.key_count is not None:
            assert page.key_count == len(page.contents or [])
        keys += [o.key for o in page.contents or []]
        if not page.is_truncated:
            break
        assert page.next_continuation_token
        token = page.next_continuation_token
        assert pages < 20
    assert keys == LIST_KEYS, f"ListObjectsV2 pages: {keys}"

    paged = []
    for page in client.list_objects_v2_paginator().iter_page(oss.ListObjectsV2Request(bucket=bkt, max_keys=8)):
        paged += [o.key for o in page.contents or []]
    assert paged == utf8_sorted(LIST_KEYS + ["outside-prefix.txt"])

    # Delimiter with small pages in V2.
    objs, prefixes, token = [], [], None
    for _ in range(40):
        page = client.list_objects_v2(oss.ListObjectsV2Request(bucket=bkt, prefix=LIST_PREFIX, delimiter="/",
                                                               continuation_token=token, max_keys=4))
        assert len(page.contents or []) + len(page.common_prefixes or []) <= 4
        objs += [o.key for o in page.contents or []]
        prefixes += [p.prefix for p in page.common_prefixes or []]
        if not page.is_truncated:
            break
        token = page.next_continuation_token
    assert objs == exp_objs and prefixes == exp_prefixes

    got = [o.key for o in client.list_objects_v2(oss.ListObjectsV2Request(
        bucket=bkt, prefix=LIST_PREFIX, start_after=LIST_KEYS[9], max_keys=100)).contents or []]
    assert got == LIST_KEYS[10:]
    for prefix in (f"{LIST_PREFIX}dir one/", f"{LIST_PREFIX}dir+two/", f"{LIST_PREFIX}ü", f"{LIST_PREFIX}日本"):
        got = [o.key for o in client.list_objects_v2(oss.ListObjectsV2Request(
            bucket=bkt, prefix=prefix, max_keys=100)).contents or []]
        assert got == [k for k in LIST_KEYS if k.startswith(prefix)], f"prefix {prefix!r}: {got}"


def test_delete_multiple_objects(client, bkt):
    keys = ["del/a b.txt", "del/c+d", "del/ü/é", "del/amp&<x>", "del/plain"]
    for k in keys:
        client.put_object(oss.PutObjectRequest(bucket=bkt, key=k, body=b"data"))
    client.put_object(oss.PutObjectRequest(bucket=bkt, key="keep/me", body=b"stay"))
    res = client.delete_multiple_objects(oss.DeleteMultipleObjectsRequest(
        bucket=bkt, delete=oss.Delete(objects=[oss.ObjectIdentifier(key=k) for k in keys], quiet=False)))
    assert sorted(d.key for d in res.deleted_objects or []) == sorted(keys), f"Deleted: {res.deleted_objects}"
    assert not client.list_objects_v2(oss.ListObjectsV2Request(bucket=bkt, prefix="del/")).contents
    assert client.is_object_exist(bkt, "keep/me")


# --------------------------------------------------------------------------- multipart


def test_multipart_uploader_50mib(client, bkt, tmp_path):
    size = 50 * MiB
    src = tmp_path / "big.bin"
    digest = write_big_file(src, size, seed=51)
    key = "big/uploader ü.bin"
    up = client.uploader(part_size=8 * MiB, parallel_num=4)
    res = up.upload_file(oss.PutObjectRequest(bucket=bkt, key=key, metadata={"kind": "uploader"},
                                              content_type="application/x-big"), str(src))
    assert res.status_code == 200 and res.upload_id, "uploader did not go through multipart"
    assert res.etag

    head = client.head_object(oss.HeadObjectRequest(bucket=bkt, key=key))
    assert head.content_length == size
    assert dict(head.metadata or {}) == {"kind": "uploader"}
    assert head.content_type == "application/x-big"

    out = tmp_path / "back.bin"
    client.downloader(part_size=6 * MiB, parallel_num=3).download_file(
        oss.GetObjectRequest(bucket=bkt, key=key), str(out))  # ranged GETs; whole-object CRC compared
    assert sha256_file(out) == digest, "multipart object content differs"
    out2 = tmp_path / "back2.bin"
    client.get_object_to_file(oss.GetObjectRequest(bucket=bkt, key=key), str(out2))
    assert sha256_file(out2) == digest


def test_multipart_manual_list_parts_abort(client, bkt):
    key = "mp/manual key+1.bin"
    bodies = {1: DeterministicStream(5 * MiB, seed=11).read(), 2: DeterministicStream(5 * MiB, seed=12).read(),
              3: b"the last, short part"}
    init = client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(
        bucket=bkt, key=key, metadata={"stage": "manual"}, content_type="application/x-manual"))
    uid = init.upload_id
    assert uid and init.key == key and init.bucket == bkt, f"Initiate result {init}"

    etags = {}
    for n in (2, 1, 3):
        r = client.upload_part(oss.UploadPartRequest(bucket=bkt, key=key, upload_id=uid, part_number=n, body=bodies[n]))
        assert_etag(r.etag, bodies[n], f"UploadPart {n}")
        if r.hash_crc64 is not None:
            assert r.hash_crc64 == str(crc64(bodies[n]))
        etags[n] = r.etag

    parts = client.list_parts(oss.ListPartsRequest(bucket=bkt, key=key, upload_id=uid))
    assert [p.part_number for p in parts.parts] == [1, 2, 3]
    assert [p.size for p in parts.parts] == [len(bodies[n]) for n in (1, 2, 3)]
    assert [p.etag.lower() for p in parts.parts] == [etags[n].lower() for n in (1, 2, 3)]
    page = client.list_parts(oss.ListPartsRequest(bucket=bkt, key=key, upload_id=uid, max_parts=2))
    assert [p.part_number for p in page.parts] == [1, 2] and page.is_truncated
    page = client.list_parts(oss.ListPartsRequest(bucket=bkt, key=key, upload_id=uid, max_parts=2,
                                                  part_number_marker=page.next_part_number_marker))
    assert [p.part_number for p in page.parts] == [3] and not page.is_truncated

    ups = client.list_multipart_uploads(oss.ListMultipartUploadsRequest(bucket=bkt, prefix="mp/"))
    assert [(u.key, u.upload_id) for u in ups.uploads or []] == [(key, uid)]
    _recent(ups.uploads[0].initiated, "Upload/Initiated")

    other = client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=bkt, key="mp/aborted")).upload_id
    res = client.abort_multipart_upload(oss.AbortMultipartUploadRequest(bucket=bkt, key="mp/aborted", upload_id=other))
    assert res.status_code == 204
    ups = client.list_multipart_uploads(oss.ListMultipartUploadsRequest(bucket=bkt, prefix="mp/"))
    assert [u.upload_id for u in ups.uploads or []] == [uid]
    expect_v2_error(client.upload_part, 404, "NoSuchUpload",
                    oss.UploadPartRequest(bucket=bkt, key="mp/aborted", upload_id=other, part_number=1, body=b"y"))

    done = client.complete_multipart_upload(oss.CompleteMultipartUploadRequest(
        bucket=bkt, key=key, upload_id=uid, complete_multipart_upload=oss.CompleteMultipartUpload(
            parts=[oss.UploadPart(part_number=n, etag=etags[n]) for n in (1, 2, 3)])))
    assert done.status_code == 200 and done.etag, "Complete: no ETag in the XML body"
    assert done.key == key and done.bucket == bkt
    whole = bodies[1] + bodies[2] + bodies[3]
    if done.hash_crc64 is not None:
        assert done.hash_crc64 == str(crc64(whole))
    _, got = _get(client, bkt, key)
    assert got == whole
    head = client.head_object(oss.HeadObjectRequest(bucket=bkt, key=key))
    assert dict(head.metadata or {}) == {"stage": "manual"} and head.content_type == "application/x-manual"


def test_forbid_overwrite(client, bkt):
    """The v2 SDK's `forbid_overwrite=True`: 409 FileAlreadyExists for PutObject, CopyObject,
    InitiateMultipartUpload and CompleteMultipartUpload onto an existing key, which keeps its
    body; writes to a key that does not exist go through."""
    key = "guarded/v2.txt"
    client.put_object(oss.PutObjectRequest(bucket=bkt, key=key, body=b"first", forbid_overwrite=True))
    expect_v2_error(client.put_object, 409, "FileAlreadyExists",
                    oss.PutObjectRequest(bucket=bkt, key=key, body=b"second", forbid_overwrite=True))
    client.put_object(oss.PutObjectRequest(bucket=bkt, key="guarded/src", body=b"source"))
    expect_v2_error(client.copy_object, 409, "FileAlreadyExists",
                    oss.CopyObjectRequest(bucket=bkt, key=key, source_key="guarded/src",
                                          forbid_overwrite=True))
    expect_v2_error(client.initiate_multipart_upload, 409, "FileAlreadyExists",
                    oss.InitiateMultipartUploadRequest(bucket=bkt, key=key, forbid_overwrite=True))
    uid = client.initiate_multipart_upload(
        oss.InitiateMultipartUploadRequest(bucket=bkt, key=key)).upload_id
    etag = client.upload_part(oss.UploadPartRequest(bucket=bkt, key=key, upload_id=uid,
                                                    part_number=1, body=b"part")).etag
    expect_v2_error(client.complete_multipart_upload, 409, "FileAlreadyExists",
                    oss.CompleteMultipartUploadRequest(
                        bucket=bkt, key=key, upload_id=uid, forbid_overwrite=True,
                        complete_multipart_upload=oss.CompleteMultipartUpload(
                            parts=[oss.UploadPart(part_number=1, etag=etag)])))
    assert _get(client, bkt, key)[1] == b"first"
    client.copy_object(oss.CopyObjectRequest(bucket=bkt, key="guarded/new", source_key="guarded/src",
                                             forbid_overwrite=True))
    assert _get(client, bkt, "guarded/new")[1] == b"source"
    client.abort_multipart_upload(oss.AbortMultipartUploadRequest(bucket=bkt, key=key, upload_id=uid))


def test_upload_part_copy(client, bkt, new_bucket):
    size = 10 * MiB + 100
    source = DeterministicStream(size, seed=17).read()
    src = "src dir/source file+ü.bin"
    client.put_object(oss.PutObjectRequest(bucket=bkt, key=src, body=source))

    target = new_bucket("ossv2-upc")
    key = "assembled/from copies.bin"
    uid = client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=target, key=key)).upload_id
    r1 = client.upload_part_copy(oss.UploadPartCopyRequest(bucket=target, key=key, upload_id=uid, part_number=1,
                                                           source_bucket=bkt, source_key=src,
                                                           source_range=f"bytes=0-{5 * MiB - 1}"))
    r2 = client.upload_part_copy(oss.UploadPartCopyRequest(bucket=target, key=key, upload_id=uid, part_number=2,
                                                           source_bucket=bkt, source_key=src,
                                                           source_range=f"bytes={5 * MiB}-{size - 1}"))
    assert_etag(r1.etag, source[:5 * MiB], "UploadPartCopy 1 (CopyPartResult/ETag)")
    assert_etag(r2.etag, source[5 * MiB:], "UploadPartCopy 2")
    _recent(r1.last_modified, "CopyPartResult/LastModified")
    client.complete_multipart_upload(oss.CompleteMultipartUploadRequest(
        bucket=target, key=key, upload_id=uid, complete_multipart_upload=oss.CompleteMultipartUpload(
            parts=[oss.UploadPart(part_number=1, etag=r1.etag), oss.UploadPart(part_number=2, etag=r2.etag)])))
    _, got = _get(client, target, key)
    assert got == source


# --------------------------------------------------------------------------- presigned URLs


@pytest.mark.parametrize("sigver", ["v4", "v1"])
def test_presigned_get_put(server, bkt, sigver):
    c = v2_client(server, signature_version=sigver)
    key = "presigned dir/file name+1 ü.txt"
    body = b"uploaded through a presigned URL"

    put = c.presign(oss.PutObjectRequest(bucket=bkt, key=key), expires=datetime.timedelta(minutes=5))
    assert put.method == "PUT"
    resp = requests.put(put.url, data=body, headers=put.signed_headers, timeout=30)
    assert resp.status_code == 200, f"presigned PUT -> {resp.status_code}: {resp.content[:400]!r}"

    get = c.presign(oss.GetObjectRequest(bucket=bkt, key=key), expires=datetime.timedelta(minutes=5))
    resp = requests.get(get.url, timeout=30)
    assert resp.status_code == 200, f"presigned GET -> {resp.status_code}: {resp.content[:400]!r}"
    assert resp.content == body

    head = c.presign(oss.HeadObjectRequest(bucket=bkt, key=key), expires=datetime.timedelta(minutes=5))
    resp = requests.head(head.url, timeout=30)
    assert resp.status_code == 200 and int(resp.headers["Content-Length"]) == len(body)

    signed = c.presign(oss.PutObjectRequest(bucket=bkt, key="presigned/with-headers", content_type="text/x-presigned",
                                            metadata={"via": "presign"}), expires=datetime.timedelta(minutes=5))
    assert {k.lower() for k in signed.signed_headers} >= {"content-type", "x-oss-meta-via"}
    resp = requests.put(signed.url, data=b"hdrs", headers=signed.signed_headers, timeout=30)
    assert resp.status_code == 200, f"presigned PUT with headers -> {resp.status_code}: {resp.content[:300]!r}"
    h = c.head_object(oss.HeadObjectRequest(bucket=bkt, key="presigned/with-headers"))
    assert h.content_type == "text/x-presigned" and dict(h.metadata or {}) == {"via": "presign"}
    bad_headers = {**signed.signed_headers, "x-oss-meta-via": "tampered"}
    assert_oss_error_response(requests.put(signed.url, data=b"hdrs", headers=bad_headers, timeout=30),
                              403, "SignatureDoesNotMatch")

    # Tampered signature.
    parts = urllib.parse.urlsplit(get.url)
    q = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    sig_name, alt = ("x-oss-signature", ("0", "1")) if sigver == "v4" else ("Signature", ("A", "B"))
    q = [(k, (alt[0] if v[0] != alt[0] else alt[1]) + v[1:] if k == sig_name else v) for k, v in q]
    bad = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(q, quote_via=urllib.parse.quote)))
    assert_oss_error_response(requests.get(bad, timeout=30), 403, "SignatureDoesNotMatch")

    # Expired.
    short = c.presign(oss.GetObjectRequest(bucket=bkt, key=key), expires=datetime.timedelta(seconds=2))
    time.sleep(4)
    assert_oss_error_response(requests.get(short.url, timeout=30), 403, "AccessDenied")


# --------------------------------------------------------------------------- errors


def test_no_such_key_get_and_head(client, bkt):
    key = "missing/no such key.txt"
    se = expect_v2_error(client.get_object, 404, "NoSuchKey", oss.GetObjectRequest(bucket=bkt, key=key))
    assert se.request_id, "no RequestId / x-oss-request-id"
    for field in ("Message", "RequestId", "HostId"):
        assert se.error_fileds.get(field), f"error XML lacks <{field}>: {se.error_fileds}"
    # HEAD: the code comes from the base64 x-oss-err header (else the SDK reports BadErrorResponse).
    se = expect_v2_error(client.head_object, 404, "NoSuchKey", oss.HeadObjectRequest(bucket=bkt, key=key))
    assert se.request_id
    expect_v2_error(client.get_object_meta, 404, "NoSuchKey", oss.GetObjectMetaRequest(bucket=bkt, key=key))
    assert client.is_object_exist(bkt, key) is False


def test_no_such_bucket(client):
    name = unique_oss_bucket("ossv2-absent")
    expect_v2_error(client.get_object, 404, "NoSuchBucket", oss.GetObjectRequest(bucket=name, key="k"))
    expect_v2_error(client.head_object, 404, "NoSuchBucket", oss.HeadObjectRequest(bucket=name, key="k"))
    expect_v2_error(client.put_object, 404, "NoSuchBucket", oss.PutObjectRequest(bucket=name, key="k", body=b"d"))
    expect_v2_error(client.list_objects_v2, 404, "NoSuchBucket", oss.ListObjectsV2Request(bucket=name))
    expect_v2_error(client.delete_bucket, 404, "NoSuchBucket", oss.DeleteBucketRequest(bucket=name))


def test_wrong_secret_signature_does_not_match(server, client, bkt):
    client.put_object(oss.PutObjectRequest(bucket=bkt, key="exists.txt", body=b"x"))
    bad = v2_client(server, secret="wrong" + server.secret_key)
    se = expect_v2_error(bad.put_object, 403, "SignatureDoesNotMatch",
                         oss.PutObjectRequest(bucket=bkt, key="k", body=b"d"))
    assert se.request_id and "HostId" in se.error_fileds
    expect_v2_error(bad.get_object, 403, "SignatureDoesNotMatch", oss.GetObjectRequest(bucket=bkt, key="exists.txt"))
    expect_v2_error(bad.head_object, 403, "SignatureDoesNotMatch", oss.HeadObjectRequest(bucket=bkt, key="exists.txt"))
    expect_v2_error(bad.list_buckets, 403, "SignatureDoesNotMatch", oss.ListBucketsRequest())


# --------------------------------------------------------------------------- cross-dialect


def test_cross_dialect_s3_put_v2_get(client, bkt, s3):
    key = "from s3/ü file+1.txt"
    body = b"written by boto3"
    put = s3.put_object(Bucket=bkt, Key=key, Body=body, ContentType="text/x-from-s3",
                        Metadata={"color": "blue", "json": '{"a":[1,2]}'})
    res, got = _get(client, bkt, key)
    assert got == body
    assert res.content_type == "text/x-from-s3"
    assert dict(res.metadata or {}) == {"color": "blue", "json": '{"a":[1,2]}'}
    assert not [h for h in res.headers if h.lower().startswith("x-amz-meta-")]
    assert res.etag.strip('"').lower() == put["ETag"].strip('"').lower()


def test_cross_dialect_v2_put_s3_get(client, bkt, s3):
    key = "from oss/ü file+2.txt"
    body = b"written by alibabacloud-oss-v2"
    client.put_object(oss.PutObjectRequest(bucket=bkt, key=key, body=body, content_type="text/x-from-oss",
                                           metadata={"color": "green"}))
    got = s3.get_object(Bucket=bkt, Key=key)
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/x-from-oss"
    assert got["Metadata"] == {"color": "green"}
    assert not [h for h in got["ResponseMetadata"]["HTTPHeaders"] if h.startswith("x-oss-meta-")]
