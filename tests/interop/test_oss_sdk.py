"""OSS dialect through the official `oss2` SDK (2.19.1), signed with V1 (`oss2.Auth`) and V4 (`oss2.AuthV4`).

Every test runs once per signature version. Buckets are created through oss2 and removed via
boto3. See OSS-NOTES.md for the response requirements these tests exercise.
"""

from __future__ import annotations

import hashlib
import time
import urllib.parse

import oss2
import pytest
import requests
from oss2.models import PartInfo

from oss_support import (
    LIST_KEYS,
    LIST_PREFIX,
    MiB,
    assert_crc_header,
    assert_etag,
    assert_oss_error_response,
    assert_recent,
    cleanup_bucket,
    crc64,
    expect_oss2_error,
    expected_delimited,
    oss2_bucket,
    oss2_service,
    sha256_file,
    unique_oss_bucket,
    utf8_sorted,
    write_big_file,
)
from support import DeterministicStream

E = oss2.exceptions


@pytest.fixture(params=["v1", "v4"])
def kind(request) -> str:
    """The oss2 signature version: "v1" (oss2.Auth) or "v4" (oss2.AuthV4 + region)."""
    return request.param


@pytest.fixture
def new_bucket(server, kind, s3_required):
    """Factory: a fresh bucket created through oss2; all are destroyed (via boto3) afterwards."""
    made: list[str] = []

    def make(prefix: str = "oss2") -> oss2.Bucket:
        name = unique_oss_bucket(f"{prefix}-{kind}")
        made.append(name)
        b = oss2_bucket(server, name, kind)
        b.create_bucket()
        return b

    yield make
    for name in made:
        cleanup_bucket(s3_required, name)


@pytest.fixture
def obucket(new_bucket) -> oss2.Bucket:
    return new_bucket()


# --------------------------------------------------------------------------- buckets


def test_bucket_create_list_delete(server, kind, s3_required):
    name = unique_oss_bucket(f"oss2-{kind}-cld")
    b = oss2_bucket(server, name, kind)
    service = oss2_service(server, kind)
    try:
        res = b.create_bucket()
        assert res.status == 200, f"PutBucket returned {res.status}"
        assert res.request_id, "PutBucket response has no x-oss-request-id"

        listed = service.list_buckets(prefix=name)
        assert [x.name for x in listed.buckets] == [name], f"list_buckets(prefix) -> {[x.name for x in listed.buckets]}"
        info = listed.buckets[0]
        assert_recent(info.creation_date, "bucket CreationDate")
        assert listed.is_truncated is False

        # The unfiltered listing (with marker pagination through oss2.BucketIterator) contains it too.
        assert name in [x.name for x in oss2.BucketIterator(service, max_keys=2)]

        # A bucket with an object cannot be deleted.
        b.put_object("keep.txt", b"x")
        expect_oss2_error(b.delete_bucket, E.BucketNotEmpty, 409, "BucketNotEmpty")
        b.delete_object("keep.txt")

        res = b.delete_bucket()
        assert res.status == 204, f"DeleteBucket returned {res.status}"
        assert service.list_buckets(prefix=name).buckets == []
        expect_oss2_error(b.delete_bucket, E.NoSuchBucket, 404, "NoSuchBucket")
    finally:
        cleanup_bucket(s3_required, name)


# --------------------------------------------------------------------------- objects


def test_put_get_head_delete(obucket, tmp_path):
    key = "docs/report 2024+final ü.json"
    body = b'{"hello": "coffer"}\n' * 500
    headers = {
        "Content-Type": "application/vnd.coffer-test+json; charset=utf-8",
        "x-oss-meta-color": "blue",
        "x-oss-meta-with-dash": "a value with spaces, commas; and = signs",
        "x-oss-meta-long": "L" * 350,
    }
    put = obucket.put_object(key, body, headers=headers)
    assert put.status == 200
    assert put.request_id, "PutObject: no x-oss-request-id"
    assert_etag(put.etag, body, "PutObject")
    if put.crc is not None:
        assert put.crc == crc64(body), f"PutObject x-oss-hash-crc64ecma {put.crc} != {crc64(body)}"

    get = obucket.get_object(key)
    got = get.read()
    assert got == body, "GET returned different bytes"
    assert get.status == 200
    assert get.content_length == len(body)
    assert get.content_type == headers["Content-Type"]
    assert get.etag == put.etag
    assert get.headers.get("x-oss-meta-color") == "blue"
    assert get.headers.get("x-oss-meta-with-dash") == headers["x-oss-meta-with-dash"]
    assert get.headers.get("x-oss-meta-long") == "L" * 350
    assert not [h for h in get.headers if h.lower().startswith("x-amz-meta-")], (
        f"OSS response carries S3 metadata headers: {list(get.headers)}"
    )
    assert_recent(get.last_modified, "GET Last-Modified")
    if get.server_crc is not None:
        assert get.server_crc == get.client_crc == crc64(body), "GET CRC64 mismatch"

    head = obucket.head_object(key)
    assert head.status == 200
    assert head.content_length == len(body)
    assert head.content_type == headers["Content-Type"]
    assert head.etag == put.etag
    assert head.headers.get("x-oss-meta-color") == "blue"
    assert head.headers.get("x-oss-meta-long") == "L" * 350
    assert_crc_header(head.headers, body, "HEAD")

    meta = obucket.get_object_meta(key)
    assert meta.content_length == len(body)
    assert meta.etag == put.etag
    assert_recent(meta.last_modified, "GetObjectMeta Last-Modified")
    assert obucket.object_exists(key) is True

    # get_object_to_file checks the CRC64 against x-oss-hash-crc64ecma when present.
    out = tmp_path / "download.bin"
    obucket.get_object_to_file(key, str(out))
    assert out.read_bytes() == body

    dele = obucket.delete_object(key)
    assert dele.status == 204, f"DeleteObject returned {dele.status}"
    assert obucket.object_exists(key) is False
    expect_oss2_error(obucket.get_object, E.NoSuchKey, 404, "NoSuchKey", key)
    # Deleting a missing key is not an error on OSS.
    assert obucket.delete_object(key).status == 204


def test_put_overwrite_and_empty_object(obucket):
    obucket.put_object("k.bin", b"first version", headers={"x-oss-meta-v": "1"})
    obucket.put_object("k.bin", b"second", headers={"x-oss-meta-w": "2"})
    head = obucket.head_object("k.bin")
    assert head.content_length == len(b"second")
    assert head.headers.get("x-oss-meta-w") == "2"
    assert "x-oss-meta-v" not in head.headers, "overwrite kept the old object's metadata"
    assert obucket.get_object("k.bin").read() == b"second"

    put = obucket.put_object("empty", b"")
    assert_etag(put.etag, b"", "empty PutObject")
    assert obucket.get_object("empty").read() == b""
    assert obucket.head_object("empty").content_length == 0


def test_ranged_get(obucket, tmp_path):
    body = bytes(range(256)) * 4 + b"tail-bytes"  # 1034 bytes
    obucket.put_object("range.bin", body)
    total = len(body)

    r = obucket.get_object("range.bin", byte_range=(100, 199))
    assert r.status == 206, f"ranged GET returned {r.status}"
    assert r.read() == body[100:200]
    assert r.content_length == 100
    assert r.content_range == f"bytes 100-199/{total}", f"Content-Range {r.content_range!r}"

    r = obucket.get_object("range.bin", byte_range=(1000, None))
    assert r.status == 206
    assert r.read() == body[1000:]
    assert r.content_range == f"bytes 1000-{total - 1}/{total}"

    r = obucket.get_object("range.bin", byte_range=(None, 10))  # suffix: last 10 bytes
    assert r.status == 206
    assert r.read() == body[-10:]

    r = obucket.get_object("range.bin", byte_range=(0, 0))
    assert r.status == 206 and r.read() == body[:1]

    # A full download to file checks the whole-object CRC64 when the server sends one.
    out = tmp_path / "full.bin"
    obucket.get_object_to_file("range.bin", str(out))
    assert out.read_bytes() == body


# --------------------------------------------------------------------------- copy


def test_copy_object(obucket, new_bucket):
    src_key = "src dir/source file+1 ü.txt"
    body = b"copy me please " * 100
    obucket.put_object(src_key, body, headers={
        "Content-Type": "text/x-coffer-src",
        "x-oss-meta-origin": "source",
        "x-oss-meta-shared": "from-source",
    })

    # Same bucket, default directive (COPY): content and metadata carried over.
    res = obucket.copy_object(obucket.bucket_name, src_key, "copies/same bucket.txt")
    assert res.status == 200
    assert_etag(res.etag, body, "CopyObject ETag response header (oss2 reads only the header)")
    h = obucket.head_object("copies/same bucket.txt")
    assert h.headers.get("x-oss-meta-origin") == "source"
    assert h.content_type == "text/x-coffer-src"
    assert obucket.get_object("copies/same bucket.txt").read() == body

    # Another bucket, explicit COPY.
    other = new_bucket("oss2-dst")
    res = other.copy_object(obucket.bucket_name, src_key, "dst/copied+key.txt",
                            headers={"x-oss-metadata-directive": "COPY"})
    assert_etag(res.etag, body, "cross-bucket CopyObject")
    h = other.head_object("dst/copied+key.txt")
    assert h.headers.get("x-oss-meta-origin") == "source"
    assert h.headers.get("x-oss-meta-shared") == "from-source"
    assert other.get_object("dst/copied+key.txt").read() == body

    # Another bucket, REPLACE: only the new metadata and Content-Type.
    res = other.copy_object(obucket.bucket_name, src_key, "dst/replaced.txt", headers={
        "x-oss-metadata-directive": "REPLACE",
        "Content-Type": "application/x-replaced",
        "x-oss-meta-fresh": "new value",
    })
    assert_etag(res.etag, body, "REPLACE CopyObject")
    h = other.head_object("dst/replaced.txt")
    assert h.content_type == "application/x-replaced"
    assert h.headers.get("x-oss-meta-fresh") == "new value"
    assert "x-oss-meta-origin" not in h.headers, "REPLACE kept the source metadata"
    assert other.get_object("dst/replaced.txt").read() == body

    # update_object_meta = copy onto itself with REPLACE.
    obucket.update_object_meta(src_key, {"x-oss-meta-updated": "yes", "Content-Type": "text/plain"})
    h = obucket.head_object(src_key)
    assert h.headers.get("x-oss-meta-updated") == "yes"
    assert "x-oss-meta-origin" not in h.headers
    assert obucket.get_object(src_key).read() == body

    # Copy from a missing source.
    expect_oss2_error(other.copy_object, E.NoSuchKey, 404, "NoSuchKey",
                      obucket.bucket_name, "no/such key", "dst/x")


def test_forbid_overwrite(obucket, s3):
    """`x-oss-forbid-overwrite: true` refuses a PutObject, CopyObject, InitiateMultipartUpload or
    CompleteMultipartUpload onto a key that exists (409 FileAlreadyExists) and leaves the object
    as it was; `false` overwrites, another value is 400, and a versioned bucket ignores it."""
    forbid = {"x-oss-forbid-overwrite": "true"}
    key = "guarded/kept.txt"
    obucket.put_object(key, b"first", headers=forbid)  # absent: written
    # oss2 has no class of its own for FileAlreadyExists.
    refused = expect_oss2_error(obucket.put_object, E.ServerError, 409, "FileAlreadyExists", key,
                                b"second", headers=forbid)
    assert refused.details.get("EC") == "0026-00000201", refused.details
    obucket.put_object("guarded/source", b"source body")
    expect_oss2_error(obucket.copy_object, E.ServerError, 409, "FileAlreadyExists",
                      obucket.bucket_name, "guarded/source", key, headers=forbid)
    expect_oss2_error(obucket.init_multipart_upload, E.ServerError, 409, "FileAlreadyExists", key,
                      headers=forbid)
    # An upload begun without the header is refused when completed with it, and can still be
    # completed without.
    upload_id = obucket.init_multipart_upload(key).upload_id
    part = obucket.upload_part(key, upload_id, 1, b"part body")
    expect_oss2_error(obucket.complete_multipart_upload, E.ServerError, 409, "FileAlreadyExists",
                      key, upload_id, [PartInfo(1, part.etag)], headers=forbid)
    assert obucket.get_object(key).read() == b"first"

    expect_oss2_error(obucket.put_object, E.InvalidArgument, 400, "InvalidArgument", key, b"x",
                      headers={"x-oss-forbid-overwrite": "abc"})
    obucket.put_object(key, b"third", headers={"x-oss-forbid-overwrite": "false"})
    assert obucket.get_object(key).read() == b"third"
    obucket.complete_multipart_upload(key, upload_id, [PartInfo(1, part.etag)])
    assert obucket.get_object(key).read() == b"part body"
    obucket.copy_object(obucket.bucket_name, "guarded/source", "guarded/fresh copy", headers=forbid)
    assert obucket.get_object("guarded/fresh copy").read() == b"source body"

    # Versioned: a write adds a version and overwrites nothing.
    s3.put_bucket_versioning(Bucket=obucket.bucket_name,
                             VersioningConfiguration={"Status": "Enabled"})
    obucket.put_object(key, b"fourth", headers=forbid)
    assert obucket.get_object(key).read() == b"fourth"
    versions = s3.list_object_versions(Bucket=obucket.bucket_name, Prefix=key)["Versions"]
    assert len(versions) == 2, versions


# --------------------------------------------------------------------------- listing


def _fill_listing_bucket(b: oss2.Bucket) -> None:
    for key in LIST_KEYS:
        b.put_object(key, key.encode("utf-8"))
    b.put_object("outside-prefix.txt", b"not listed under the prefix")


def _check_entries(objs, what: str) -> None:
    for o in objs:
        assert o.size == len(o.key.encode("utf-8")), f"{what}: {o.key!r} size {o.size}"
        assert o.etag.lower() == hashlib.md5(o.key.encode()).hexdigest(), f"{what}: {o.key!r} etag"
        assert_recent(o.last_modified, f"{what}: {o.key!r} LastModified")


def test_list_objects_prefix_delimiter_pagination(obucket):
    _fill_listing_bucket(obucket)

    # V1, pages of 7 with marker.
    keys, marker, pages = [], "", 0
    while True:
        page = obucket.list_objects(prefix=LIST_PREFIX, marker=marker, max_keys=7)
        pages += 1
        assert len(page.object_list) <= 7
        _check_entries(page.object_list, "ListObjects")
        keys += [o.key for o in page.object_list]
        if not page.is_truncated:
            break
        assert page.next_marker, "truncated V1 page without NextMarker"
        marker = page.next_marker
        assert pages < 20, "V1 pagination does not terminate"
    assert keys == LIST_KEYS, f"V1 pages returned {keys}"
    assert pages == 5, f"30 keys in pages of 7 should be 5 pages, got {pages}"

    # V1 with delimiter.
    exp_objs, exp_prefixes = expected_delimited(LIST_KEYS, LIST_PREFIX)
    page = obucket.list_objects(prefix=LIST_PREFIX, delimiter="/", max_keys=1000)
    assert [o.key for o in page.object_list] == exp_objs
    assert page.prefix_list == exp_prefixes
    assert page.is_truncated is False

    # Delimiter + small pages: common prefixes count towards max-keys and are not repeated.
    objs, prefixes, marker = [], [], ""
    for _ in range(40):
        page = obucket.list_objects(prefix=LIST_PREFIX, delimiter="/", marker=marker, max_keys=4)
        assert len(page.object_list) + len(page.prefix_list) <= 4
        objs += [o.key for o in page.object_list]
        prefixes += page.prefix_list
        if not page.is_truncated:
            break
        marker = page.next_marker
    assert objs == exp_objs and prefixes == exp_prefixes, f"paged delimiter listing: {objs} / {prefixes}"

    # Prefixes with a space, a '+', and unicode.
    for prefix in (f"{LIST_PREFIX}dir one/", f"{LIST_PREFIX}dir+two/", f"{LIST_PREFIX}ü", f"{LIST_PREFIX}日本"):
        got = [o.key for o in obucket.list_objects(prefix=prefix, max_keys=100).object_list]
        assert got == [k for k in LIST_KEYS if k.startswith(prefix)], f"prefix {prefix!r}: {got}"

    # V2, pages of 7 with continuation-token.
    keys, token, pages = [], "", 0
    while True:
        page = obucket.list_objects_v2(prefix=LIST_PREFIX, continuation_token=token, max_keys=7)
        pages += 1
        assert len(page.object_list) <= 7
        _check_entries(page.object_list, "ListObjectsV2")
        keys += [o.key for o in page.object_list]
        if not page.is_truncated:
            break
        assert page.next_continuation_token, "truncated V2 page without NextContinuationToken"
        token = page.next_continuation_token
        assert pages < 20
    assert keys == LIST_KEYS, f"V2 pages returned {keys}"

    # V2 start-after, delimiter, and the SDK's own iterator.
    after = LIST_KEYS[9]
    got = [o.key for o in obucket.list_objects_v2(prefix=LIST_PREFIX, start_after=after, max_keys=100).object_list]
    assert got == LIST_KEYS[10:]
    page = obucket.list_objects_v2(prefix=LIST_PREFIX, delimiter="/", max_keys=1000)
    assert [o.key for o in page.object_list] == exp_objs and page.prefix_list == exp_prefixes
    it = [o.key for o in oss2.ObjectIteratorV2(obucket, prefix=LIST_PREFIX, max_keys=6)]
    assert it == LIST_KEYS
    it = [o.key for o in oss2.ObjectIterator(obucket, max_keys=9)]
    assert it == utf8_sorted(LIST_KEYS + ["outside-prefix.txt"])


def test_batch_delete(obucket):
    keys = ["del/a b.txt", "del/c+d", "del/ü/é", "del/amp&<x>", "del/plain"]
    for k in keys:
        obucket.put_object(k, b"data")
    obucket.put_object("keep/me", b"stay")
    res = obucket.batch_delete_objects(keys)
    assert sorted(res.deleted_keys) == sorted(keys), f"deleted_keys {res.deleted_keys}"
    assert [o.key for o in obucket.list_objects(prefix="del/").object_list] == []
    assert obucket.object_exists("keep/me")


# --------------------------------------------------------------------------- multipart


def test_multipart_resumable_upload_50mib(obucket, tmp_path):
    size = 50 * MiB
    src = tmp_path / "big.bin"
    digest = write_big_file(src, size, seed=50)
    key = "big/resumable upload ü.bin"
    store = oss2.ResumableStore(root=str(tmp_path / "store"))
    res = oss2.resumable_upload(obucket, key, str(src), store=store, multipart_threshold=8 * MiB,
                                part_size=8 * MiB, num_threads=4,
                                headers={"x-oss-meta-kind": "resumable", "Content-Type": "application/x-big"})
    assert res.status == 200
    assert res.etag, "CompleteMultipartUpload response has no ETag header"

    head = obucket.head_object(key)
    assert head.content_length == size
    assert head.headers.get("x-oss-meta-kind") == "resumable"
    assert head.content_type == "application/x-big"

    out = tmp_path / "back.bin"
    obucket.get_object_to_file(key, str(out))  # CRC-checked if the server sends x-oss-hash-crc64ecma
    assert sha256_file(out) == digest, "multipart object content differs from the uploaded file"

    r = obucket.get_object(key, byte_range=(8 * MiB - 5, 8 * MiB + 4))  # across a part boundary
    stream = DeterministicStream(size, seed=50)
    stream.seek(8 * MiB - 5)
    assert r.status == 206 and r.read() == stream.read(10)


def test_multipart_manual_list_parts_abort(obucket):
    key = "mp/manual key+1.bin"
    part_bodies = {1: DeterministicStream(5 * MiB, seed=1).read(), 2: DeterministicStream(5 * MiB, seed=2).read(),
                   3: b"the last, short part"}
    init = obucket.init_multipart_upload(key, headers={"x-oss-meta-stage": "manual",
                                                       "Content-Type": "application/x-manual"})
    uid = init.upload_id
    assert uid, "InitiateMultipartUpload returned no UploadId"

    etags = {}
    for n in (2, 1, 3):  # out of order on purpose
        r = obucket.upload_part(key, uid, n, part_bodies[n])
        assert_etag(r.etag, part_bodies[n], f"UploadPart {n}")
        if r.crc is not None:
            assert r.crc == crc64(part_bodies[n]), f"UploadPart {n} CRC"
        etags[n] = r.etag

    parts = obucket.list_parts(key, uid)
    assert [p.part_number for p in parts.parts] == [1, 2, 3]
    assert [p.size for p in parts.parts] == [len(part_bodies[n]) for n in (1, 2, 3)]
    assert [p.etag.lower() for p in parts.parts] == [etags[n].lower() for n in (1, 2, 3)]
    assert parts.is_truncated is False
    page = obucket.list_parts(key, uid, max_parts=2)
    assert [p.part_number for p in page.parts] == [1, 2] and page.is_truncated is True
    page = obucket.list_parts(key, uid, marker=page.next_marker, max_parts=2)
    assert [p.part_number for p in page.parts] == [3]

    uploads = obucket.list_multipart_uploads(prefix="mp/")
    assert [(u.key, u.upload_id) for u in uploads.upload_list] == [(key, uid)]
    assert_recent(uploads.upload_list[0].initiation_date, "Upload/Initiated")

    # A second upload, aborted.
    other = obucket.init_multipart_upload("mp/aborted").upload_id
    obucket.upload_part("mp/aborted", other, 1, b"x" * 1024)
    assert obucket.abort_multipart_upload("mp/aborted", other).status == 204
    assert [u.upload_id for u in obucket.list_multipart_uploads(prefix="mp/").upload_list] == [uid]
    expect_oss2_error(obucket.upload_part, E.NoSuchUpload, 404, "NoSuchUpload", "mp/aborted", other, 2, b"y")
    expect_oss2_error(obucket.list_parts, E.NoSuchUpload, 404, "NoSuchUpload", "mp/aborted", other)

    done = obucket.complete_multipart_upload(key, uid, [PartInfo(n, etags[n]) for n in (1, 2, 3)])
    assert done.status == 200 and done.etag, "CompleteMultipartUpload: no ETag header"
    whole = part_bodies[1] + part_bodies[2] + part_bodies[3]
    if done.crc is not None:
        assert done.crc == crc64(whole), "Complete x-oss-hash-crc64ecma is not the CRC of the whole object"
    assert obucket.get_object(key).read() == whole
    head = obucket.head_object(key)
    assert head.content_length == len(whole)
    assert head.headers.get("x-oss-meta-stage") == "manual"
    assert head.content_type == "application/x-manual"
    assert obucket.list_multipart_uploads(prefix="mp/").upload_list == []


def test_upload_part_copy(obucket, new_bucket):
    size = 10 * MiB + 100  # both copied parts >= 5 MiB (S3's minimum for non-last parts)
    source = DeterministicStream(size, seed=7).read()
    src_key = "src dir/source file+ü.bin"
    obucket.put_object(src_key, source)

    target = new_bucket("oss2-upc")
    key = "assembled/from copies.bin"
    uid = target.init_multipart_upload(key).upload_id
    r1 = target.upload_part_copy(obucket.bucket_name, src_key, (0, 5 * MiB - 1), key, uid, 1)
    r2 = target.upload_part_copy(obucket.bucket_name, src_key, (5 * MiB, size - 1), key, uid, 2)
    r3 = target.upload_part(key, uid, 3, b"appended-tail")
    for n, r in ((1, r1), (2, r2)):
        assert r.etag, f"UploadPartCopy {n}: no ETag response header (oss2 ignores the XML body)"
    assert_etag(r1.etag, source[:5 * MiB], "UploadPartCopy 1")
    assert_etag(r2.etag, source[5 * MiB:], "UploadPartCopy 2")
    parts = target.list_parts(key, uid).parts
    assert [(p.part_number, p.size) for p in parts] == [(1, 5 * MiB), (2, size - 5 * MiB), (3, 13)]
    target.complete_multipart_upload(key, uid, [PartInfo(1, r1.etag), PartInfo(2, r2.etag), PartInfo(3, r3.etag)])
    assert target.get_object(key).read() == source + b"appended-tail"


# --------------------------------------------------------------------------- presigned URLs


def test_presigned_get_put(obucket, kind):
    key = "presigned dir/file name+1 ü.txt"
    body = b"uploaded through a presigned URL"

    put_url = obucket.sign_url("PUT", key, 300)
    resp = requests.put(put_url, data=body, timeout=30)
    assert resp.status_code == 200, f"presigned PUT -> {resp.status_code}: {resp.content[:400]!r}"
    assert resp.headers.get("ETag", "").strip('"').lower() == hashlib.md5(body).hexdigest()

    get_url = obucket.sign_url("GET", key, 300)
    resp = requests.get(get_url, timeout=30)
    assert resp.status_code == 200, f"presigned GET -> {resp.status_code}: {resp.content[:400]!r}"
    assert resp.content == body
    assert resp.headers.get("x-oss-request-id")

    # Signed headers: the caller must send exactly those, and they take effect.
    signed = {"Content-Type": "text/x-presigned", "x-oss-meta-via": "presign"}
    url = obucket.sign_url("PUT", "presigned/with-headers", 300, headers=signed)
    resp = requests.put(url, data=b"hdrs", headers=signed, timeout=30)
    assert resp.status_code == 200, f"presigned PUT with headers -> {resp.status_code}: {resp.content[:400]!r}"
    head = obucket.head_object("presigned/with-headers")
    assert head.content_type == "text/x-presigned" and head.headers.get("x-oss-meta-via") == "presign"
    # ... and a different signed header value is refused.
    resp = requests.put(url, data=b"hdrs", headers={**signed, "x-oss-meta-via": "tampered"}, timeout=30)
    assert_oss_error_response(resp, 403, "SignatureDoesNotMatch")

    # oss2's own helpers for signed URLs.
    assert obucket.get_object_with_url(get_url).read() == body

    # A tampered signature.
    parts = urllib.parse.urlsplit(get_url)
    q = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    sig_name = "Signature" if kind == "v1" else "x-oss-signature"
    alt = ("A", "B") if kind == "v1" else ("0", "1")  # stay valid base64 / hex
    q = [(k, (alt[0] if v[0] != alt[0] else alt[1]) + v[1:] if k == sig_name else v) for k, v in q]
    bad = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(q, quote_via=urllib.parse.quote)))
    assert_oss_error_response(requests.get(bad, timeout=30), 403, "SignatureDoesNotMatch")

    # An expired URL.
    short = obucket.sign_url("GET", key, 1)
    time.sleep(3)
    assert_oss_error_response(requests.get(short, timeout=30), 403, "AccessDenied")


# --------------------------------------------------------------------------- errors


def test_no_such_key_get_and_head(obucket):
    key = "missing/no such key.txt"
    exc = expect_oss2_error(obucket.get_object, E.NoSuchKey, 404, "NoSuchKey", key)
    assert exc.request_id, "error without x-oss-request-id"
    for field in ("Message", "RequestId", "HostId"):
        assert exc.details.get(field), f"error XML lacks <{field}>: {exc.details}"
    assert exc.details["RequestId"] == exc.request_id

    # HEAD has no body: oss2 reads the error from x-oss-err. With it, NoSuchKey; without it, bare NotFound.
    exc = expect_oss2_error(obucket.head_object, E.NoSuchKey, 404, "NoSuchKey", key)
    assert exc.request_id and exc.details.get("RequestId")
    expect_oss2_error(obucket.get_object_meta, E.NoSuchKey, 404, "NoSuchKey", key)
    assert obucket.object_exists(key) is False


def test_no_such_bucket(server, kind):
    b = oss2_bucket(server, unique_oss_bucket(f"oss2-{kind}-absent"), kind)
    expect_oss2_error(b.get_object, E.NoSuchBucket, 404, "NoSuchBucket", "k")
    expect_oss2_error(b.head_object, E.NoSuchBucket, 404, "NoSuchBucket", "k")
    expect_oss2_error(b.put_object, E.NoSuchBucket, 404, "NoSuchBucket", "k", b"data")
    expect_oss2_error(b.list_objects, E.NoSuchBucket, 404, "NoSuchBucket")
    expect_oss2_error(b.delete_bucket, E.NoSuchBucket, 404, "NoSuchBucket")
    # object_exists re-raises NoSuchBucket rather than answering False.
    with pytest.raises(E.NoSuchBucket):
        b.object_exists("k")


def test_wrong_secret_signature_does_not_match(server, kind, obucket):
    obucket.put_object("exists.txt", b"x")
    bad = oss2_bucket(server, obucket.bucket_name, kind, secret="wrong" + server.secret_key)
    exc = expect_oss2_error(bad.put_object, E.SignatureDoesNotMatch, 403, "SignatureDoesNotMatch", "k", b"d")
    assert exc.request_id and exc.details.get("HostId") is not None
    expect_oss2_error(bad.get_object, E.SignatureDoesNotMatch, 403, "SignatureDoesNotMatch", "exists.txt")
    expect_oss2_error(bad.head_object, E.SignatureDoesNotMatch, 403, "SignatureDoesNotMatch", "exists.txt")
    expect_oss2_error(oss2_service(server, kind, secret="wrong-secret").list_buckets,
                      E.SignatureDoesNotMatch, 403, "SignatureDoesNotMatch")
    assert obucket.get_object("exists.txt").read() == b"x"


# --------------------------------------------------------------------------- cross-dialect


def test_cross_dialect_s3_put_oss_get(obucket, s3):
    key = "from s3/ü file+1.txt"
    body = b"written by boto3"
    put = s3.put_object(Bucket=obucket.bucket_name, Key=key, Body=body, ContentType="text/x-from-s3",
                        Metadata={"color": "blue", "json": '{"a":[1,2]}'})
    got = obucket.get_object(key)
    assert got.read() == body
    assert got.content_type == "text/x-from-s3"
    assert got.headers.get("x-oss-meta-color") == "blue"
    assert got.headers.get("x-oss-meta-json") == '{"a":[1,2]}'
    assert "x-amz-meta-color" not in got.headers, "OSS response uses the S3 metadata prefix"
    assert got.etag.lower() == put["ETag"].strip('"').lower()
    head = obucket.head_object(key)
    assert head.headers.get("x-oss-meta-color") == "blue" and head.content_length == len(body)
    assert key in [o.key for o in obucket.list_objects(prefix="from s3/").object_list]


def test_cross_dialect_oss_put_s3_get(obucket, s3):
    key = "from oss/ü file+2.txt"
    body = b"written by oss2"
    obucket.put_object(key, body, headers={"Content-Type": "text/x-from-oss",
                                           "x-oss-meta-color": "green", "x-oss-meta-empty-ish": "-"})
    got = s3.get_object(Bucket=obucket.bucket_name, Key=key)
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/x-from-oss"
    assert got["Metadata"] == {"color": "green", "empty-ish": "-"}
    raw = got["ResponseMetadata"]["HTTPHeaders"]
    assert not [h for h in raw if h.startswith("x-oss-meta-")], f"S3 response carries OSS metadata: {list(raw)}"
    head = s3.head_object(Bucket=obucket.bucket_name, Key=key)
    assert head["Metadata"] == {"color": "green", "empty-ish": "-"}
    listed = s3.list_objects_v2(Bucket=obucket.bucket_name, Prefix="from oss/")
    assert [o["Key"] for o in listed.get("Contents", [])] == [key]
