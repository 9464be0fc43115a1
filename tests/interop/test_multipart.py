"""Multipart uploads: complete, errors, listings, UploadPartCopy, s3transfer."""

import hashlib
import os

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from support import expect_error, http_status

MiB = 1024 * 1024


def multipart_etag(parts: list[bytes]) -> str:
    joined = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(joined).hexdigest()}-{len(parts)}"'


def upload_parts(client, bucket, key, upload_id, parts):
    out = []
    for n, data in enumerate(parts, start=1):
        resp = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data)
        assert resp["ETag"] == f'"{hashlib.md5(data).hexdigest()}"', f"part {n} ETag is not its MD5"
        out.append({"PartNumber": n, "ETag": resp["ETag"]})
    return out


def test_three_part_upload(s3_any, bucket):
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1 * MiB)]
    up = s3_any.create_multipart_upload(Bucket=bucket, Key="mp/three", ContentType="application/x-test",
                                        Metadata={"kind": "multipart"})
    uid = up["UploadId"]
    assert uid, "CreateMultipartUpload returned no UploadId"
    done = upload_parts(s3_any, bucket, "mp/three", uid, parts)
    resp = s3_any.complete_multipart_upload(Bucket=bucket, Key="mp/three", UploadId=uid,
                                            MultipartUpload={"Parts": done})
    expected_etag = multipart_etag(parts)
    assert resp["ETag"] == expected_etag, f"Complete ETag {resp['ETag']}, expected {expected_etag}"

    body = b"".join(parts)
    get = s3_any.get_object(Bucket=bucket, Key="mp/three")
    assert get["ContentLength"] == len(body)
    assert get["ETag"] == expected_etag
    assert get["ContentType"] == "application/x-test"
    assert get["Metadata"] == {"kind": "multipart"}
    got = get["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest(), "assembled content differs"

    # A range that straddles the part 1 / part 2 boundary.
    b = 5 * MiB
    rng = s3_any.get_object(Bucket=bucket, Key="mp/three", Range=f"bytes={b - 10}-{b + 9}")
    assert rng["Body"].read() == body[b - 10:b + 10]
    assert rng["ContentRange"] == f"bytes {b - 10}-{b + 9}/{len(body)}"
    # The upload is gone once completed.
    uploads = s3_any.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert uid not in [u["UploadId"] for u in uploads], "completed upload still listed"
    listed = s3_any.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed] == [("mp/three", len(body), expected_etag)]


def test_complete_with_subset_of_parts(s3, bucket):
    """Parts uploaded but not named in Complete are dropped; re-uploading a part replaces it."""
    p1, p2_old, p2, p3 = os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(100)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="subset")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="subset", UploadId=uid, PartNumber=1, Body=p1)["ETag"]
    s3.upload_part(Bucket=bucket, Key="subset", UploadId=uid, PartNumber=2, Body=p2_old)
    e2 = s3.upload_part(Bucket=bucket, Key="subset", UploadId=uid, PartNumber=2, Body=p2)["ETag"]
    e3 = s3.upload_part(Bucket=bucket, Key="subset", UploadId=uid, PartNumber=5, Body=p3)["ETag"]
    s3.upload_part(Bucket=bucket, Key="subset", UploadId=uid, PartNumber=4, Body=b"unused")
    s3.complete_multipart_upload(
        Bucket=bucket, Key="subset", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2},
                                   {"PartNumber": 5, "ETag": e3}]},
    )
    got = s3.get_object(Bucket=bucket, Key="subset")["Body"].read()
    assert got == p1 + p2 + p3, "content is not parts 1, 2 (latest) and 5"


def test_entity_too_small(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    done = upload_parts(s3, bucket, "small", uid, [os.urandom(1 * MiB), os.urandom(1 * MiB)])
    expect_error(s3.complete_multipart_upload, "EntityTooSmall", 400, Bucket=bucket, Key="small",
                 UploadId=uid, MultipartUpload={"Parts": done})
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key="small")
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=uid)


def test_single_small_part_is_fine(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="one")["UploadId"]
    done = upload_parts(s3, bucket, "one", uid, [b"tiny"])
    resp = s3.complete_multipart_upload(Bucket=bucket, Key="one", UploadId=uid, MultipartUpload={"Parts": done})
    assert resp["ETag"] == multipart_etag([b"tiny"])
    assert s3.get_object(Bucket=bucket, Key="one")["Body"].read() == b"tiny"


def test_invalid_part(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="ip")["UploadId"]
    done = upload_parts(s3, bucket, "ip", uid, [os.urandom(5 * MiB), b"last"])
    wrong = [done[0], {"PartNumber": 2, "ETag": '"00000000000000000000000000000000"'}]
    expect_error(s3.complete_multipart_upload, "InvalidPart", 400, Bucket=bucket, Key="ip",
                 UploadId=uid, MultipartUpload={"Parts": wrong})
    never_uploaded = done + [{"PartNumber": 3, "ETag": done[1]["ETag"]}]
    expect_error(s3.complete_multipart_upload, "InvalidPart", 400, Bucket=bucket, Key="ip",
                 UploadId=uid, MultipartUpload={"Parts": never_uploaded})
    # The upload is still usable after a failed Complete.
    s3.complete_multipart_upload(Bucket=bucket, Key="ip", UploadId=uid, MultipartUpload={"Parts": done})
    assert s3.head_object(Bucket=bucket, Key="ip")["ContentLength"] == 5 * MiB + 4


def test_invalid_part_order(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="order")["UploadId"]
    # Both parts are 5 MiB, so that either order would be valid by size.
    done = upload_parts(s3, bucket, "order", uid, [os.urandom(5 * MiB), os.urandom(5 * MiB)])
    expect_error(s3.complete_multipart_upload, "InvalidPartOrder", 400, Bucket=bucket, Key="order",
                 UploadId=uid, MultipartUpload={"Parts": list(reversed(done))})
    s3.abort_multipart_upload(Bucket=bucket, Key="order", UploadId=uid)


def test_no_such_upload_after_abort(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="ab")["UploadId"]
    done = upload_parts(s3, bucket, "ab", uid, [b"part one"])
    s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=uid)
    expect_error(s3.upload_part, "NoSuchUpload", 404, Bucket=bucket, Key="ab", UploadId=uid,
                 PartNumber=2, Body=b"x")
    expect_error(s3.complete_multipart_upload, "NoSuchUpload", 404, Bucket=bucket, Key="ab",
                 UploadId=uid, MultipartUpload={"Parts": done})
    expect_error(s3.list_parts, "NoSuchUpload", 404, Bucket=bucket, Key="ab", UploadId=uid)
    expect_error(s3.upload_part, "NoSuchUpload", 404, Bucket=bucket, Key="ab",
                 UploadId="bm90LWEtcmVhbC11cGxvYWQ", PartNumber=1, Body=b"x")
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key="ab")
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_upload_id_bound_to_key(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="right-key")["UploadId"]
    try:
        expect_error(s3.upload_part, "NoSuchUpload", 404, Bucket=bucket, Key="wrong-key",
                     UploadId=uid, PartNumber=1, Body=b"x")
    finally:
        s3.abort_multipart_upload(Bucket=bucket, Key="right-key", UploadId=uid)


def test_list_multipart_uploads(s3, bucket):
    created = []
    for key in ["a/1", "a/2", "b/1", "b/1", "c"]:
        created.append((key, s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]))
    try:
        resp = s3.list_multipart_uploads(Bucket=bucket)
        listed = sorted((u["Key"], u["UploadId"]) for u in resp.get("Uploads", []))
        assert listed == sorted(created), f"ListMultipartUploads: {listed}"
        assert all(u.get("Initiated") for u in resp["Uploads"]), "uploads without Initiated"
        keys = [u["Key"] for u in resp["Uploads"]]
        assert keys == sorted(keys), "uploads not sorted by key"

        by_prefix = s3.list_multipart_uploads(Bucket=bucket, Prefix="a/")
        assert sorted(u["Key"] for u in by_prefix.get("Uploads", [])) == ["a/1", "a/2"]

        delim = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
        assert [p["Prefix"] for p in delim.get("CommonPrefixes", [])] == ["a/", "b/"]
        assert [u["Key"] for u in delim.get("Uploads", [])] == ["c"]

        # Paging with KeyMarker / UploadIdMarker.
        seen, kwargs = [], {"Bucket": bucket, "MaxUploads": 2}
        for _ in range(10):
            page = s3.list_multipart_uploads(**kwargs)
            ups = page.get("Uploads", [])
            assert len(ups) <= 2
            seen += [(u["Key"], u["UploadId"]) for u in ups]
            if not page["IsTruncated"]:
                break
            kwargs["KeyMarker"] = page["NextKeyMarker"]
            kwargs["UploadIdMarker"] = page["NextUploadIdMarker"]
        assert sorted(seen) == sorted(created) and len(seen) == len(created), (
            f"paged ListMultipartUploads returned {seen}"
        )

        paginated = []
        for page in s3.get_paginator("list_multipart_uploads").paginate(
                Bucket=bucket, PaginationConfig={"PageSize": 2}):
            paginated += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
        assert sorted(paginated) == sorted(created)
    finally:
        for key, uid in created:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)


def test_list_parts_with_paging(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="lp")["UploadId"]
    try:
        datas = [os.urandom(1000 + n) for n in range(7)]
        done = upload_parts(s3, bucket, "lp", uid, datas)
        resp = s3.list_parts(Bucket=bucket, Key="lp", UploadId=uid)
        parts = resp["Parts"]
        assert [p["PartNumber"] for p in parts] == list(range(1, 8))
        assert [p["ETag"] for p in parts] == [d["ETag"] for d in done]
        assert [p["Size"] for p in parts] == [len(d) for d in datas]
        assert resp["UploadId"] == uid and resp["Key"] == "lp"

        seen, marker = [], 0
        for _ in range(10):
            page = s3.list_parts(Bucket=bucket, Key="lp", UploadId=uid, MaxParts=3, PartNumberMarker=marker)
            numbers = [p["PartNumber"] for p in page.get("Parts", [])]
            assert len(numbers) <= 3
            seen += numbers
            if not page["IsTruncated"]:
                break
            marker = page["NextPartNumberMarker"]
            assert marker == numbers[-1], f"NextPartNumberMarker {marker} != last part {numbers[-1]}"
        assert seen == list(range(1, 8)), f"paged ListParts returned parts {seen}"
    finally:
        s3.abort_multipart_upload(Bucket=bucket, Key="lp", UploadId=uid)


def test_upload_part_copy_with_range(s3, bucket):
    source = os.urandom(6 * MiB + 12345)
    s3.put_object(Bucket=bucket, Key="copy-src", Body=source)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    middle = os.urandom(5 * MiB)

    r1 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "copy-src"},
                             CopySourceRange=f"bytes=0-{5 * MiB - 1}")
    part1 = source[:5 * MiB]
    assert r1["CopyPartResult"]["ETag"] == f'"{hashlib.md5(part1).hexdigest()}"', "UploadPartCopy ETag"
    r2 = s3.upload_part(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=2, Body=middle)
    r3 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=3,
                             CopySource={"Bucket": bucket, "Key": "copy-src"},
                             CopySourceRange=f"bytes=100-{100 + 65536 + 1999}")
    part3 = source[100:100 + 65536 + 2000]
    assert r3["CopyPartResult"]["ETag"] == f'"{hashlib.md5(part3).hexdigest()}"'
    s3.complete_multipart_upload(
        Bucket=bucket, Key="assembled", UploadId=uid,
        MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": r1["CopyPartResult"]["ETag"]},
            {"PartNumber": 2, "ETag": r2["ETag"]},
            {"PartNumber": 3, "ETag": r3["CopyPartResult"]["ETag"]},
        ]},
    )
    get = s3.get_object(Bucket=bucket, Key="assembled")
    expected = part1 + middle + part3
    assert get["Body"].read() == expected, "object assembled from copied ranges differs"
    assert get["ETag"] == multipart_etag([part1, middle, part3])


def test_upload_part_copy_whole_object_and_bad_range(s3, bucket):
    source = os.urandom(300_000)
    s3.put_object(Bucket=bucket, Key="src", Body=source)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    try:
        r = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=uid, PartNumber=1,
                                CopySource={"Bucket": bucket, "Key": "src"})
        assert r["CopyPartResult"]["ETag"] == f'"{hashlib.md5(source).hexdigest()}"'
        # A range past the end of the source is refused (S3 answers 400 InvalidArgument or
        # 416 InvalidRange depending on the case; either is a refusal).
        with pytest.raises(ClientError) as ei:
            s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=uid, PartNumber=2,
                                CopySource={"Bucket": bucket, "Key": "src"},
                                CopySourceRange="bytes=299990-300100")
        assert http_status(ei.value) in (400, 416), ei.value.response
        s3.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=uid,
                                     MultipartUpload={"Parts": [{"PartNumber": 1,
                                                                 "ETag": r["CopyPartResult"]["ETag"]}]})
        assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == source
    except Exception:
        s3.abort_multipart_upload(Bucket=bucket, Key="dst", UploadId=uid)
        raise


@pytest.mark.parametrize("size", [12 * MiB + 777, 5 * MiB])
def test_upload_file_with_small_threshold(s3_any, bucket, tmp_path, size):
    src = tmp_path / "upload.bin"
    data = os.urandom(size)
    src.write_bytes(data)
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=4)
    s3_any.upload_file(str(src), bucket, "transfer/upload.bin", Config=cfg)
    head = s3_any.head_object(Bucket=bucket, Key="transfer/upload.bin")
    n_parts = -(-size // (5 * MiB))
    assert head["ContentLength"] == size
    assert head["ETag"].endswith(f'-{n_parts}"'), f"ETag {head['ETag']} does not name {n_parts} parts"
    chunks = [data[i:i + 5 * MiB] for i in range(0, size, 5 * MiB)]
    assert head["ETag"] == multipart_etag(chunks)
    dst = tmp_path / "download.bin"
    s3_any.download_file(bucket, "transfer/upload.bin", str(dst), Config=cfg)
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest(), (
        "download_file (ranged, concurrent GETs) returned different bytes"
    )
