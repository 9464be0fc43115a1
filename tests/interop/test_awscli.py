"""The aws CLI (v1) against coffer: s3 high-level commands and a few s3api calls."""

import hashlib
import os
import re
import time
from pathlib import Path

import pytest

from support import destroy_bucket, unique_bucket_name

MiB = 1024 * 1024


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            h.update(block)
    return h.hexdigest()


def write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 8 * MiB)
            f.write(os.urandom(n))
            left -= n


def age_file(path: Path) -> None:
    """Back-date a file by an hour so that `aws s3 sync` decides by size alone and a
    server whose LastModified has one-second resolution does not look older."""
    past = time.time() - 3600
    os.utime(path, (past, past))


def tree_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def cli_bucket(aws, s3_required):
    name = unique_bucket_name("cli")
    aws("s3", "mb", f"s3://{name}")
    yield name
    destroy_bucket(s3_required, name)


def test_mb_ls_rb(aws, s3_required):
    name = unique_bucket_name("climb")
    out = aws("s3", "mb", f"s3://{name}").stdout
    assert f"make_bucket: {name}" in out, out
    try:
        s3_required.head_bucket(Bucket=name)
        listing = aws("s3", "ls").stdout
        assert re.search(rf"^\S+ \S+ {re.escape(name)}$", listing, re.M), f"`aws s3 ls` lacks {name}:\n{listing}"
        aws("s3", "cp", "-", f"s3://{name}/x.txt", "--no-progress", input_bytes=b"x")
        out = aws("s3", "rb", f"s3://{name}", "--force").stdout
        assert f"remove_bucket: {name}" in out, out
        assert name not in {b["Name"] for b in s3_required.list_buckets()["Buckets"]}
    finally:
        destroy_bucket(s3_required, name)


def test_cp_100mib_up_and_down(aws, s3_required, cli_bucket, tmp_path):
    src = tmp_path / "big.bin"
    write_random(src, 100 * MiB)
    aws("s3", "cp", str(src), f"s3://{cli_bucket}/big/big.bin", "--no-progress")
    head = s3_required.head_object(Bucket=cli_bucket, Key="big/big.bin")
    assert head["ContentLength"] == 100 * MiB
    # The CLI's defaults: multipart above 8 MiB in 8 MiB parts => 13 parts.
    assert head["ETag"].endswith('-13"'), f"expected a 13-part multipart ETag, got {head['ETag']}"
    dst = tmp_path / "back.bin"
    aws("s3", "cp", f"s3://{cli_bucket}/big/big.bin", str(dst), "--no-progress")
    assert dst.stat().st_size == 100 * MiB
    assert sha256_file(dst) == sha256_file(src), "100 MiB file came back different"


def test_sync_up_change_sync_down(aws, cli_bucket, tmp_path):
    src = tmp_path / "src"
    files = {
        "top.txt": b"top level\n",
        "space name.txt": b"spaces in the name\n",
        "sub/b.txt": b"version one\n",
        "sub/deeper/c.bin": os.urandom(300_000),
        "sub/deeper/deepest/d.txt": b"d" * 10,
        "sub2/e.json": b'{"e": 1}',
        "sub2/\u00fcml\u00e4ut.txt": "unicode name".encode(),
        "big/part.bin": os.urandom(9 * MiB),  # multipart inside sync
    }
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
        age_file(src / rel)

    out = aws("s3", "sync", str(src), f"s3://{cli_bucket}/tree/", "--no-progress").stdout
    uploads = [line for line in out.splitlines() if line.startswith("upload:")]
    assert len(uploads) == len(files), f"first sync uploaded {len(uploads)} of {len(files)} files:\n{out}"

    listed = aws.json("s3api", "list-objects-v2", "--bucket", cli_bucket, "--prefix", "tree/")
    keys = sorted(o["Key"] for o in listed.get("Contents", []))
    assert keys == sorted(f"tree/{rel}" for rel in files), f"keys after sync: {keys}"

    # Change one file (new size, so sync must notice) and sync again.
    (src / "sub/b.txt").write_bytes(b"version two, longer\n")
    age_file(src / "sub/b.txt")
    out = aws("s3", "sync", str(src), f"s3://{cli_bucket}/tree/", "--no-progress").stdout
    uploads = [line for line in out.splitlines() if line.startswith("upload:")]
    assert len(uploads) == 1 and "sub/b.txt" in uploads[0], (
        f"second sync should upload only sub/b.txt, it did:\n{out}"
    )

    dst = tmp_path / "dst"
    aws("s3", "sync", f"s3://{cli_bucket}/tree/", str(dst), "--no-progress")
    expected = dict(files, **{"sub/b.txt": b"version two, longer\n"})
    assert tree_files(dst) == expected, "downloaded tree differs from the source tree"

    # A third sync is a no-op.
    out = aws("s3", "sync", str(src), f"s3://{cli_bucket}/tree/", "--no-progress").stdout
    assert "upload:" not in out, f"an unchanged tree was uploaded again:\n{out}"


def test_ls_and_rm_recursive(aws, s3_required, cli_bucket):
    for key in ["docs/a.txt", "docs/b.txt", "docs/nested/c.txt", "other.txt"]:
        s3_required.put_object(Bucket=cli_bucket, Key=key, Body=key.encode())
    top = aws("s3", "ls", f"s3://{cli_bucket}/").stdout
    assert re.search(r"^\s+PRE docs/$", top, re.M), f"`aws s3 ls` lacks PRE docs/:\n{top}"
    assert re.search(r"\s9 other\.txt$", top, re.M), f"`aws s3 ls` lacks other.txt (9 bytes):\n{top}"
    docs = aws("s3", "ls", f"s3://{cli_bucket}/docs/").stdout
    assert "PRE nested/" in docs and "a.txt" in docs and "b.txt" in docs, docs
    rec = aws("s3", "ls", f"s3://{cli_bucket}", "--recursive").stdout
    assert sorted(line.split()[-1] for line in rec.splitlines() if line.strip()) == [
        "docs/a.txt", "docs/b.txt", "docs/nested/c.txt", "other.txt"
    ], rec

    out = aws("s3", "rm", f"s3://{cli_bucket}/docs/", "--recursive").stdout
    assert out.count("delete:") == 3, f"rm --recursive should delete 3 objects:\n{out}"
    left = [o["Key"] for o in s3_required.list_objects_v2(Bucket=cli_bucket).get("Contents", [])]
    assert left == ["other.txt"], f"left after rm --recursive: {left}"


def test_s3api_put_head_list_get(aws, cli_bucket, tmp_path):
    body = tmp_path / "meta.txt"
    body.write_bytes(b"s3api body\n")
    put = aws.json("s3api", "put-object", "--bucket", cli_bucket, "--key", "api/meta.txt",
                   "--body", str(body), "--metadata", "colour=green,owner=cli",
                   "--content-type", "text/plain", "--cache-control", "no-cache")
    assert put["ETag"] == f'"{hashlib.md5(body.read_bytes()).hexdigest()}"', put

    head = aws.json("s3api", "head-object", "--bucket", cli_bucket, "--key", "api/meta.txt")
    assert head["Metadata"] == {"colour": "green", "owner": "cli"}, head
    assert head["ContentType"] == "text/plain"
    assert head["ContentLength"] == len(body.read_bytes())
    assert head.get("CacheControl") == "no-cache"

    listed = aws.json("s3api", "list-objects-v2", "--bucket", cli_bucket, "--prefix", "api/")
    assert [o["Key"] for o in listed["Contents"]] == ["api/meta.txt"]

    out = tmp_path / "got.txt"
    got = aws.json("s3api", "get-object", "--bucket", cli_bucket, "--key", "api/meta.txt", str(out))
    assert out.read_bytes() == body.read_bytes()
    assert got["Metadata"] == {"colour": "green", "owner": "cli"}

    missing = aws("s3api", "head-object", "--bucket", cli_bucket, "--key", "api/none", check=False)
    assert missing.returncode != 0 and "404" in missing.stderr, missing.stderr


def test_cli_presign(aws, cli_bucket, s3_required):
    import requests

    s3_required.put_object(Bucket=cli_bucket, Key="p.txt", Body=b"cli presign")
    url = aws("s3", "presign", f"s3://{cli_bucket}/p.txt", "--expires-in", "120").stdout.strip()
    resp = requests.get(url, timeout=30)
    assert resp.status_code == 200 and resp.content == b"cli presign", (resp.status_code, resp.text[:300])
