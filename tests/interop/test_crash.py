"""kill -9 during concurrent writes: acknowledged writes survive, nothing partial shows.

DESIGN.md §1.4: "A write acknowledged to the client survives kill -9 … A failed or interrupted
write leaves no visible partial object."

The short run of crash_harness.py (see its docstring for what every cycle does and checks), over
a plain bucket, a versioned bucket and an object-lock bucket:
COFFER_CRASH_CYCLES cycles (default 10), seeded by COFFER_CRASH_SEED (default: random, printed,
so a failure can be replayed). The long run is by hand; docs/reliability.md has its figures.
"""

import hashlib
import os
import random
import signal
import threading
import time

import pytest

from crash_harness import Harness, inline_blobs_kept
from support import add_user, expect_error, opt_out_of_encryption, unique_bucket_name

MiB = 1024 * 1024


def content(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def test_kill_9_during_concurrent_writes(make_server):
    cycles = int(os.environ.get("COFFER_CRASH_CYCLES", "10"))
    seed = int(os.environ.get("COFFER_CRASH_SEED") or random.randrange(1 << 32))
    print(f"crash harness: {cycles} cycles, COFFER_CRASH_SEED={seed}")
    srv = make_server(start=False, extra_args=["--allow-insecure-sse-c"])
    harness = Harness(srv, seed=seed, workers=3, oss_workers=1, max_run_s=2.0)
    stats = harness.run(cycles).summary()
    print(stats)
    assert stats["cycles"] == cycles
    # The run exercised what it claims to: every kind of write was acknowledged, and checked.
    for kind in ("put", "copy", "delete", "create", "part", "complete",
                 "vput", "marker", "vdelete", "locked-put", "locked-delete"):
        assert stats["acknowledged_ops_by_kind"].get(kind, 0) > 0, f"no {kind} acknowledged in {cycles} cycles"
    assert stats["acknowledged_objects_checked"] > 0
    # Versioned and object-lock buckets: versions and markers read back after every restart,
    # locked versions refused deletion after restarts too.
    assert stats["versions_checked"] > 0 and stats["delete_markers_checked"] > 0, stats
    assert stats["locked_delete_refusals_checked_after_restart"] > 0, stats
    # The server closes connections that could hand botocore a stale answer (see the next
    # test); an answer the server never logged is a server bug again, not noise to absorb.
    assert stats["answers_the_server_never_gave"] == 0, stats


def test_kill_9_during_concurrent_small_puts(make_server):
    """Group commit: concurrent small PUTs share one metadata commit and their bodies live in
    meta.redb. kill -9 in the middle of 16 writers, three times: after each restart every
    acknowledged object reads back byte for byte, a PUT in doubt is whole or absent, and no
    key nobody wrote appears."""
    seed = int(os.environ.get("COFFER_CRASH_SEED") or random.randrange(1 << 32))
    print(f"small PUTs: COFFER_CRASH_SEED={seed}")
    rng = random.Random(seed)
    srv = make_server()
    admin = srv.client(checksum="when_required")
    buckets = {"plain": unique_bucket_name("small-plain"), "sealed": unique_bucket_name("small-sealed")}
    for bucket in buckets.values():
        admin.create_bucket(Bucket=bucket)
    opt_out_of_encryption(admin, buckets["plain"])
    acked: dict[tuple[str, str], bytes] = {}
    in_doubt: dict[tuple[str, str], bytes] = {}
    for cycle in range(3):
        stop = threading.Event()
        lock = threading.Lock()
        clients = [srv.client(checksum="when_required", retries=0) for _ in range(16)]
        acked_before = len(acked)

        def writer(n: int, cycle: int = cycle, stop: threading.Event = stop,
                   lock: threading.Lock = lock) -> None:
            client = clients[n]
            local = random.Random(seed * 100 + cycle * 16 + n)
            i = 0
            while not stop.is_set():
                bucket = buckets["plain" if i % 2 else "sealed"]
                key, body = f"c{cycle}/w{n}/{i}", local.randbytes(local.randrange(0, 8192))
                with lock:
                    in_doubt[(bucket, key)] = body
                try:
                    client.put_object(Bucket=bucket, Key=key, Body=body)
                except Exception:  # noqa: BLE001 - the server died under it: stays in doubt
                    return
                with lock:
                    acked[(bucket, key)] = in_doubt.pop((bucket, key))
                i += 1

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        # Kill once the writers are well under way (a busy machine may take a while to start
        # them), at a random moment.
        deadline = time.monotonic() + 60
        while len(acked) < acked_before + 32 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.0))
        srv.kill()
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a writer hung after the kill"
        srv.start()
        admin = srv.client(checksum="when_required")  # the restarted server has a new port
        assert inline_blobs_kept(srv.log_path.read_text(errors="replace")) >= len(acked) > 0, \
            "small bodies are kept inline (the group-commit path ran)"
        for bucket in buckets.values():
            listed = {o["Key"] for page in admin.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                      for o in page.get("Contents", [])}
            for key in listed:
                assert (bucket, key) in acked or (bucket, key) in in_doubt, f"{bucket}/{key}: nobody wrote it"
            for (b, key), body in list(acked.items()):
                if b == bucket:
                    assert key in listed, f"cycle {cycle}: acknowledged {b}/{key} lost (seed {seed})"
                    got = admin.get_object(Bucket=b, Key=key)["Body"].read()
                    assert got == body, f"cycle {cycle}: acknowledged {b}/{key} differs (seed {seed})"
            for (b, key), body in list(in_doubt.items()):
                if b == bucket and key in listed:
                    assert admin.get_object(Bucket=b, Key=key)["Body"].read() == body, f"{b}/{key}: partial"
                    acked[(b, key)] = in_doubt.pop((b, key))
        print(f"cycle {cycle}: {len(acked)} acknowledged objects so far, all intact; "
              f"{len(in_doubt)} in doubt absent")
        in_doubt.clear()  # absent after the restart: never written, for good


def test_put_after_kill_fails_after_an_empty_put(make_server):
    """Found by the harness: botocore sends `Expect: 100-continue` on every PutObject; an empty
    body is answered without `100 Continue`, botocore keeps that status on the connection and
    reports it for a later PUT on it that meets EOF: a 200 for a PUT the killed server never
    got. The server closes such connections, so that PUT fails as it must."""
    srv = make_server()
    client = srv.client(checksum="when_required")
    bucket = unique_bucket_name("empty-put")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="empty", Body=b"")
    # Frozen, the server still takes the next PUT's headers; it dies while botocore waits
    # (up to 1 s) for `100 Continue`.
    srv.proc.send_signal(signal.SIGSTOP)
    outcome = []

    def put():
        try:
            outcome.append(client.put_object(Bucket=bucket, Key="after-kill", Body=b"data")["ResponseMetadata"])
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=put)
    thread.start()
    time.sleep(0.5)
    srv.kill()
    thread.join(timeout=30)
    assert outcome and isinstance(outcome[0], Exception), f"a PUT the killed server never answered succeeded: {outcome}"


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
