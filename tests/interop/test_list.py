"""ListObjects V1 and V2: prefixes, delimiters, pagination, url encoding."""

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote_plus

import pytest

from support import destroy_bucket, unique_bucket_name

PREFIXES = ["alpha/", "beta/", "gamma/one/", "gamma/two/", ""]
KEYS = sorted(f"{PREFIXES[i % 5]}key-{i:03d}" for i in range(250))
# Keys whose listing must survive url encoding both ways.
ODD_KEYS = sorted([
    "odd/with space.txt",
    "odd/ünïcödé/日本.txt",
    "odd/plus+sign",
    "odd/percent%41",
    "odd/amp&lt<gt>",
    "odd/sub dir/file",
])


@pytest.fixture(scope="module")
def listing_bucket(s3_required):
    name = unique_bucket_name("list")
    s3_required.create_bucket(Bucket=name)

    def put(key):
        s3_required.put_object(Bucket=name, Key=key, Body=key.encode())

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, KEYS))
    yield name
    destroy_bucket(s3_required, name)


@pytest.fixture(scope="module")
def odd_bucket(s3_required):
    name = unique_bucket_name("oddlist")
    s3_required.create_bucket(Bucket=name)
    for key in ODD_KEYS:
        s3_required.put_object(Bucket=name, Key=key, Body=b"o")
    yield name
    destroy_bucket(s3_required, name)


def keys_of(page) -> list[str]:
    return [o["Key"] for o in page.get("Contents", [])]


def prefixes_of(page) -> list[str]:
    return [p["Prefix"] for p in page.get("CommonPrefixes", [])]


def test_full_listing_is_sorted_and_complete(s3, listing_bucket):
    v2 = s3.list_objects_v2(Bucket=listing_bucket)
    assert v2["KeyCount"] == 250 and keys_of(v2) == KEYS, "V2 without max-keys should return all 250 keys in order"
    assert v2["IsTruncated"] is False
    v1 = s3.list_objects(Bucket=listing_bucket)
    assert keys_of(v1) == KEYS and v1["IsTruncated"] is False
    sizes = {o["Key"]: o["Size"] for o in v2["Contents"]}
    assert all(sizes[k] == len(k) for k in KEYS), "listed Size does not match the stored object"
    assert all(o["ETag"].startswith('"') for o in v2["Contents"]), "listed ETags must be quoted"


def test_default_max_keys_is_1000(s3, listing_bucket):
    resp = s3.list_objects_v2(Bucket=listing_bucket)
    assert resp.get("MaxKeys") == 1000


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_prefix(s3, listing_bucket, version):
    call = s3.list_objects if version == "v1" else s3.list_objects_v2
    resp = call(Bucket=listing_bucket, Prefix="alpha/")
    assert keys_of(resp) == [k for k in KEYS if k.startswith("alpha/")]
    assert len(keys_of(resp)) == 50
    assert resp.get("Prefix") == "alpha/"
    assert keys_of(call(Bucket=listing_bucket, Prefix="nothing-here/")) == []
    assert keys_of(call(Bucket=listing_bucket, Prefix="gamma/")) == [k for k in KEYS if k.startswith("gamma/")]
    assert keys_of(call(Bucket=listing_bucket, Prefix="key-00")) == [k for k in KEYS if k.startswith("key-00")]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_delimiter_common_prefixes(s3, listing_bucket, version):
    call = s3.list_objects if version == "v1" else s3.list_objects_v2
    root = call(Bucket=listing_bucket, Delimiter="/")
    assert prefixes_of(root) == ["alpha/", "beta/", "gamma/"], f"CommonPrefixes: {prefixes_of(root)}"
    assert keys_of(root) == [k for k in KEYS if "/" not in k], "top-level keys under delimiter"
    assert root.get("Delimiter") == "/"

    gamma = call(Bucket=listing_bucket, Prefix="gamma/", Delimiter="/")
    assert prefixes_of(gamma) == ["gamma/one/", "gamma/two/"]
    assert keys_of(gamma) == []

    one = call(Bucket=listing_bucket, Prefix="gamma/one/", Delimiter="/")
    assert prefixes_of(one) == [] and len(keys_of(one)) == 50

    # A non-slash delimiter groups on its first occurrence after the prefix.
    dash = call(Bucket=listing_bucket, Prefix="beta/", Delimiter="-")
    assert prefixes_of(dash) == ["beta/key-"] and keys_of(dash) == []


def test_v1_marker_pagination(s3, listing_bucket):
    collected, marker, pages = [], "", 0
    while True:
        resp = s3.list_objects(Bucket=listing_bucket, MaxKeys=37, Marker=marker)
        page = keys_of(resp)
        pages += 1
        assert len(page) <= 37, f"page of {len(page)} keys exceeds MaxKeys=37"
        assert resp["MaxKeys"] == 37
        collected += page
        if not resp["IsTruncated"]:
            break
        assert len(page) == 37, "a truncated page must be full"
        marker = resp.get("NextMarker") or page[-1]
        assert pages < 20, "pagination does not terminate"
    assert collected == KEYS, "V1 marker pagination lost, duplicated or reordered keys"
    assert pages == 7


def test_v1_marker_with_delimiter_returns_next_marker(s3, listing_bucket):
    seen_keys, seen_prefixes, marker = [], [], ""
    for _ in range(100):
        resp = s3.list_objects(Bucket=listing_bucket, Delimiter="/", MaxKeys=7, Marker=marker)
        assert len(keys_of(resp)) + len(prefixes_of(resp)) <= 7, "keys + CommonPrefixes exceed MaxKeys"
        seen_keys += keys_of(resp)
        seen_prefixes += prefixes_of(resp)
        if not resp["IsTruncated"]:
            break
        assert resp.get("NextMarker"), "V1 with a delimiter must return NextMarker when truncated"
        marker = resp["NextMarker"]
    assert seen_prefixes == ["alpha/", "beta/", "gamma/"], f"prefixes across pages: {seen_prefixes}"
    assert seen_keys == [k for k in KEYS if "/" not in k]


def test_v2_continuation_token_pagination(s3, listing_bucket):
    collected, token, pages = [], None, 0
    while True:
        kwargs = {"Bucket": listing_bucket, "MaxKeys": 37}
        if token:
            kwargs["ContinuationToken"] = token
        resp = s3.list_objects_v2(**kwargs)
        page = keys_of(resp)
        pages += 1
        assert resp["KeyCount"] == len(page), f"KeyCount {resp['KeyCount']} != {len(page)} keys"
        assert len(page) <= 37
        if token:
            assert resp.get("ContinuationToken") == token, "the request's ContinuationToken is not echoed"
        collected += page
        if not resp["IsTruncated"]:
            assert not resp.get("NextContinuationToken")
            break
        token = resp.get("NextContinuationToken")
        assert token, "truncated V2 page without NextContinuationToken"
        assert pages < 20
    assert collected == KEYS, "V2 continuation pagination lost, duplicated or reordered keys"
    assert pages == 7


def test_v2_start_after(s3, listing_bucket):
    pivot = KEYS[99]
    resp = s3.list_objects_v2(Bucket=listing_bucket, StartAfter=pivot)
    assert keys_of(resp) == KEYS[100:], "StartAfter must return exactly the keys after it"
    assert resp.get("StartAfter") == pivot
    # StartAfter that is not itself a key.
    resp = s3.list_objects_v2(Bucket=listing_bucket, StartAfter="beta/key-0")
    assert keys_of(resp) == [k for k in KEYS if k > "beta/key-0"]
    # StartAfter combined with pagination.
    collected, token = [], None
    while True:
        kwargs = {"Bucket": listing_bucket, "MaxKeys": 40, "StartAfter": pivot}
        if token:
            kwargs["ContinuationToken"] = token
        resp = s3.list_objects_v2(**kwargs)
        collected += keys_of(resp)
        if not resp["IsTruncated"]:
            break
        token = resp["NextContinuationToken"]
    assert collected == KEYS[100:]
    # Past the last key: nothing.
    assert keys_of(s3.list_objects_v2(Bucket=listing_bucket, StartAfter=KEYS[-1])) == []


def test_v2_delimiter_pagination_counts_prefixes(s3, listing_bucket):
    seen, token = [], None
    for _ in range(100):
        kwargs = {"Bucket": listing_bucket, "Delimiter": "/", "MaxKeys": 5}
        if token:
            kwargs["ContinuationToken"] = token
        resp = s3.list_objects_v2(**kwargs)
        entries = prefixes_of(resp) + keys_of(resp)
        assert resp["KeyCount"] == len(entries), "KeyCount must count keys and CommonPrefixes"
        assert len(entries) <= 5
        seen += entries
        if not resp["IsTruncated"]:
            break
        token = resp["NextContinuationToken"]
    expected = sorted(["alpha/", "beta/", "gamma/"] + [k for k in KEYS if "/" not in k])
    assert sorted(seen) == expected and len(seen) == len(expected), "entries lost or repeated across pages"


@pytest.mark.parametrize("operation", ["list_objects", "list_objects_v2"])
def test_paginator_walk(s3_any, listing_bucket, operation):
    paginator = s3_any.get_paginator(operation)
    walked = []
    pages = 0
    for page in paginator.paginate(Bucket=listing_bucket, PaginationConfig={"PageSize": 40}):
        walked += keys_of(page)
        pages += 1
    assert walked == KEYS, f"{operation} paginator did not walk the exact key set"
    assert pages == 7, f"{operation} paginator took {pages} pages for 250 keys at 40 per page"


def test_max_keys_zero_and_one(s3, listing_bucket):
    one = s3.list_objects_v2(Bucket=listing_bucket, MaxKeys=1)
    assert keys_of(one) == KEYS[:1] and one["IsTruncated"] is True
    zero = s3.list_objects_v2(Bucket=listing_bucket, MaxKeys=0)
    assert keys_of(zero) == []


def test_url_encoding_decoded_by_botocore(s3, odd_bucket):
    """botocore asks for encoding-type=url by default and decodes keys and prefixes."""
    assert keys_of(s3.list_objects_v2(Bucket=odd_bucket)) == ODD_KEYS
    assert keys_of(s3.list_objects(Bucket=odd_bucket)) == ODD_KEYS
    resp = s3.list_objects_v2(Bucket=odd_bucket, Prefix="odd/", Delimiter="/")
    assert prefixes_of(resp) == ["odd/sub dir/", "odd/ünïcödé/"], prefixes_of(resp)
    assert keys_of(resp) == [k for k in ODD_KEYS if k.count("/") == 1]
    # StartAfter echoes back decoded as well.
    resp = s3.list_objects_v2(Bucket=odd_bucket, StartAfter="odd/plus+sign")
    assert keys_of(resp) == [k for k in ODD_KEYS if k > "odd/plus+sign"]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_url_encoding_explicit(s3, odd_bucket, version):
    """With EncodingType=url passed explicitly botocore leaves the keys as sent: they
    must be percent-encoded (no raw spaces or non-ASCII) and decode to the real keys."""
    call = s3.list_objects if version == "v1" else s3.list_objects_v2
    resp = call(Bucket=odd_bucket, EncodingType="url")
    assert resp.get("EncodingType") == "url", "response must say EncodingType=url"
    raw = keys_of(resp)
    for key in raw:
        assert " " not in key and key.isascii(), f"key not url-encoded: {key!r}"
    assert [unquote_plus(k) for k in raw] == ODD_KEYS, f"encoded keys do not decode to the originals: {raw}"
    resp = call(Bucket=odd_bucket, EncodingType="url", Prefix="odd/", Delimiter="/")
    raw_prefixes = prefixes_of(resp)
    assert all(p.isascii() and " " not in p for p in raw_prefixes), raw_prefixes
    assert [unquote_plus(p) for p in raw_prefixes] == ["odd/sub dir/", "odd/ünïcödé/"]


def test_list_empty_bucket(s3, bucket):
    resp = s3.list_objects_v2(Bucket=bucket)
    assert resp["KeyCount"] == 0 and "Contents" not in resp and resp["IsTruncated"] is False
    assert resp["Name"] == bucket
