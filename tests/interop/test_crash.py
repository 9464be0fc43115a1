"""kill -9 during concurrent uploads: acknowledged writes survive, nothing partial shows.

DESIGN.md §1.4: "A write acknowledged to the client survives kill -9 … A failed or
interrupted write leaves no visible partial object."
"""

import hashlib
import random
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from support import add_user, expect_error, unique_bucket_name

KiB, MiB = 1024, 1024 * 1024
THREADS = 8
CYCLES = 3
RUN_SECONDS = 2.0
MIN_SIZE, MAX_SIZE = 1 * KiB, 4 * MiB
TMP_CLEAN_WAIT_S = 10.0


def content(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


class Ledger:
    """What was attempted and what was acknowledged, per key, in order."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempts: dict[str, list[tuple[str, int]]] = defaultdict(list)  # key -> [(sha256, size)]
        self.acked: dict[str, int] = {}  # key -> index into attempts of the last acknowledged PUT
        self.in_flight = 0
        self.errors: list[str] = []

    def begin(self, key: str, digest: str, size: int) -> int:
        with self.lock:
            self.attempts[key].append((digest, size))
            self.in_flight += 1
            return len(self.attempts[key]) - 1

    def end(self, key: str, index: int, ok: bool) -> None:
        with self.lock:
            self.in_flight -= 1
            if ok:
                self.acked[key] = index


def writer(client, bucket: str, cycle: int, tid: int, ledger: Ledger, stop: threading.Event) -> None:
    rng = random.Random(f"{cycle}/{tid}")
    i = 0
    while not stop.is_set():
        # Every third PUT overwrites one "hot" key per thread, the rest are new keys.
        key = f"c{cycle}/t{tid}/hot" if i % 3 == 2 else f"c{cycle}/t{tid}/k{i:05d}"
        size = rng.randint(MIN_SIZE, MAX_SIZE)
        data = content(rng.getrandbits(64), size)
        index = ledger.begin(key, hashlib.sha256(data).hexdigest(), size)
        try:
            client.put_object(Bucket=bucket, Key=key, Body=data)
        except Exception as exc:  # the server was killed under us
            ledger.end(key, index, ok=False)
            if not stop.is_set():
                ledger.errors.append(f"{key}: {exc!r}")
            return
        ledger.end(key, index, ok=True)
        i += 1


def files_under(path) -> list[str]:
    if not path.exists():
        return []
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def verify(client, bucket: str, ledger: Ledger) -> int:
    listed: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            listed[o["Key"]] = o["Size"]

    missing = sorted(k for k in ledger.acked if k not in listed)
    assert not missing, f"{len(missing)} acknowledged objects lost after kill -9, e.g. {missing[:5]}"
    unknown = sorted(k for k in listed if k not in ledger.attempts)
    assert not unknown, f"objects that were never written are listed: {unknown[:5]}"

    def check(key: str) -> None:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        digest = hashlib.sha256(body).hexdigest()
        attempts = ledger.attempts[key]
        allowed = attempts[ledger.acked[key]:] if key in ledger.acked else attempts
        assert (digest, len(body)) in allowed, (
            f"{key}: content read back ({len(body)} bytes, sha256 {digest[:16]}…) matches no "
            f"{'acknowledged-or-later' if key in ledger.acked else 'attempted'} write "
            f"(sizes {[s for _, s in allowed]}): partial or corrupt object visible"
        )
        assert listed[key] == len(body), f"{key}: listed Size {listed[key]} but GET returned {len(body)} bytes"

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(check, sorted(listed)))
    return len(listed)


def test_kill_9_during_uploads(make_server):
    srv = make_server()
    setup = srv.client(checksum="when_required")
    bucket = unique_bucket_name("crash")
    setup.create_bucket(Bucket=bucket)
    ledger = Ledger()

    for cycle in range(CYCLES):
        clients = [srv.client(checksum="when_supported" if t % 2 == 0 else "when_required", read_timeout=30)
                   for t in range(THREADS)]
        stop = threading.Event()
        threads = [threading.Thread(target=writer, args=(clients[t], bucket, cycle, t, ledger, stop), daemon=True)
                   for t in range(THREADS)]
        for t in threads:
            t.start()
        time.sleep(RUN_SECONDS)
        deadline = time.monotonic() + 5
        while ledger.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        in_flight = ledger.in_flight
        srv.kill()
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "an uploader thread hung after the server was killed"
        assert not ledger.errors, f"uploads failed before the kill: {ledger.errors[:3]}"
        acked_this_cycle = sum(1 for k in ledger.acked if k.startswith(f"c{cycle}/"))
        assert acked_this_cycle > 0, f"cycle {cycle}: no upload was acknowledged within {RUN_SECONDS}s"

        srv.start()
        client = srv.client(checksum="when_required")
        n = verify(client, bucket, ledger)
        print(f"crash cycle {cycle}: killed with {in_flight} uploads in flight; "
              f"{acked_this_cycle} acknowledged this cycle; {n} objects verified after restart")

        tmp = srv.data_dir / "tmp"
        assert tmp.is_dir(), f"{tmp} does not exist: the server's temp-file layout changed, update this test"
        deadline = time.monotonic() + TMP_CLEAN_WAIT_S
        while files_under(tmp) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = files_under(tmp)
        assert not left, f"cycle {cycle}: {len(left)} files left under {tmp} after restart: {left[:5]}"

    # After all that, the server still stops cleanly.
    rc = srv.stop()
    assert rc in (0, -15), f"server exited with {rc} on SIGTERM after crash recovery"


def test_graceful_restart_keeps_everything(make_server):
    """SIGTERM and start again on the same data dir: buckets, objects with their
    metadata, users, bucket ownership and an unfinished multipart upload all survive."""
    srv = make_server()
    client = srv.client()
    bucket = unique_bucket_name("restart")
    client.create_bucket(Bucket=bucket)
    body = content(7, 300_000)
    client.put_object(Bucket=bucket, Key="dir/obj", Body=body, Metadata={"k": "v"}, ContentType="text/x-test")
    uid = client.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part1 = content(8, 5 * MiB)
    e1 = client.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=part1)["ETag"]
    user = add_user(srv, "persisted-user")
    theirs = unique_bucket_name("theirs")
    user.client().create_bucket(Bucket=theirs)
    owner_before = client.list_buckets()["Owner"]["ID"]

    rc = srv.stop()
    assert rc in (0, -15), f"server exited with {rc} on SIGTERM"
    srv.start()
    client = srv.client()

    got = client.get_object(Bucket=bucket, Key="dir/obj")
    assert got["Body"].read() == body and got["Metadata"] == {"k": "v"} and got["ContentType"] == "text/x-test"
    assert client.list_buckets()["Owner"]["ID"] == owner_before, "root's Owner ID changed across a restart"
    uploads = [u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    assert uploads == [uid], f"unfinished multipart upload lost across restart: {uploads}"
    part2 = content(9, 1000)
    e2 = client.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=2, Body=part2)["ETag"]
    client.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert hashlib.sha256(client.get_object(Bucket=bucket, Key="mp")["Body"].read()).digest() == \
        hashlib.sha256(part1 + part2).digest(), "multipart upload completed after restart has wrong content"

    user.endpoint = srv.endpoint
    user_client = user.client()
    assert [b["Name"] for b in user_client.list_buckets()["Buckets"]] == [theirs], "user's buckets after restart"
    expect_error(user_client.list_objects_v2, "AccessDenied", 403, Bucket=bucket)
