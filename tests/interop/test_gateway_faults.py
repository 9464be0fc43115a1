"""Stateless gateways under faults (issue 16): gateways killed under load, PostgreSQL restarted
under load, the upstream S3 down, gateways racing each other, a KMS key disabled through one
gateway.

The crash run's length is COFFER_CRASH_SECONDS (default 25 s of load) and its seed
COFFER_CRASH_SEED (default: random, printed, so a failure can be replayed); gateway_faults_support.py
says what it does and checks.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import os
import random
import threading
import time
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway_faults_support import GatewayCrashRun
from gateway_support import (  # noqa: F401 (cluster, factory, upstream: module fixtures)
    GatewaySet,
    PostgresCluster,
    Upstream,
    cluster,
    factory,
    postgres_available,
    upstream,
)
from support import REGION, error_code, http_status, make_s3_client, unique_bucket_name

pytestmark = pytest.mark.skipif(not postgres_available(),
                                reason="PostgreSQL is not installed (scripts/test installs it)")

MiB = 1 << 20
UNAVAILABLE = (503, "ServiceUnavailable")
KMS_DISABLED = (403, "KMS.DisabledException")
UTC = datetime.timezone.utc


@pytest.fixture(scope="module")
def pair(factory, cluster, upstream):
    gateways = GatewaySet(factory, cluster, upstream)
    gateways.add()
    gateways.add()
    return gateways


def outcome(fn, *args, **kwargs):
    """("ok", answer) or (HTTP status, error code); ("no answer", repr) for a dead connection."""
    try:
        return "ok", fn(*args, **kwargs)
    except ClientError as exc:
        return http_status(exc), error_code(exc)
    except Exception as exc:  # connection refused, reset, timed out
        return "no answer", repr(exc)


# --------------------------------------------------------------------------- kill -9


@pytest.fixture(scope="module")
def crash_run(factory, cluster, upstream):
    seconds = float(os.environ.get("COFFER_CRASH_SECONDS", "25"))
    seed = int(os.environ.get("COFFER_CRASH_SEED") or random.randrange(1 << 32))
    print(f"gateway crash run: {seconds:.0f} s, COFFER_CRASH_SEED={seed}")
    gateways = GatewaySet(factory, cluster, upstream)
    for _ in range(3):
        gateways.add()
    bucket = unique_bucket_name("gw-crash")
    first = gateways.clients()[0]
    first.create_bucket(Bucket=bucket)
    # The default KMS key (created on first use) made now, and the other gateways restarted to
    # load it: a gateway does not see a key another one created (test_kms_default_key_… below
    # shows it), and this run is about kills.
    first.put_object(Bucket=bucket, Key="warm", Body=b"warm", ServerSideEncryption="aws:kms")
    first.delete_object(Bucket=bucket, Key="warm")
    for g in gateways.gateways[1:]:
        port = g.port
        g.stop()
        g.start(port=port)
    run = GatewayCrashRun(gateways, bucket, seed=seed, workers=3)
    summary = run.run(seconds)
    print(summary)
    return run, summary


def test_kill_9_of_gateways_under_load(crash_run):
    """Gateways SIGKILLed at random (sometimes two of three) in the middle of PUTs, multipart
    uploads and deletes, restarted on their data dirs, while the others keep serving:
    acknowledged writes read back byte for byte, acknowledged deletes stay deleted, nothing
    partial is visible, open uploads keep their parts, every referenced blob is upstream."""
    run, summary = crash_run
    assert not run.errors, "\n".join(run.errors[:10])
    checked = run.verify()
    print(checked)
    assert summary["kills"] >= 2, summary
    for kind in ("put", "delete", "create", "part", "complete"):
        assert summary["acknowledged_by_kind"].get(kind, 0) > 0, f"no {kind} acknowledged: {summary}"
    assert checked.get("acknowledged objects read back", 0) > 0, checked
    assert summary["served_while_another_gateway_was_down"] > 0, \
        f"no request was served by one gateway while another was down: {summary}"
    assert summary["answers_the_gateway_never_logged"] == 0, summary
    blobs = run.blob_accounting()
    assert blobs["refs"] & blobs["upstream"], "the accounting compares like with like (blob ids)"
    assert not blobs["missing"], \
        f"{len(blobs['missing'])} referenced blobs are not upstream: {sorted(blobs['missing'])[:5]}"


def test_every_orphan_blob_is_a_kills(crash_run):
    """Upstream blobs that are neither referenced nor pending were all written just before a
    kill: no request that was answered leaves garbage behind (see the next test)."""
    run, _ = crash_run
    blobs = run.blob_accounting()
    print({k: len(v) for k, v in blobs.items()})
    assert not blobs["orphans_no_kill_explains"], (
        f"{len(blobs['orphans_no_kill_explains'])} upstream blobs are neither referenced nor "
        f"pending, and no kill explains them: {sorted(blobs['orphans_no_kill_explains'])[:5]}")


def test_no_orphan_blobs_after_kills(crash_run):
    """Every upstream blob is referenced by an object, part or version, or has a
    `pending_blobs` row (which the sweeper acts on): a kill leaves no garbage nobody knows of,
    since a gateway names every blob in a pending row before its first byte goes upstream."""
    run, _ = crash_run
    blobs = run.blob_accounting()
    assert not blobs["orphans"], (
        f"{len(blobs['orphans'])} of {len(blobs['upstream'])} upstream blobs are neither referenced "
        f"nor pending: {sorted(blobs['orphans'])[:5]}")


# --------------------------------------------------------------------------- PostgreSQL restart


class Load:
    """Threads writing fresh keys through the gateways, round robin, and reading each back:
    what was acknowledged, and every failure with its time."""

    def __init__(self, clients, bucket: str, threads: int = 2):
        self.clients, self.bucket = clients, bucket
        self.acked: dict[str, bytes] = {}
        self.failures: list[tuple[float, float, int, object, object]] = []  # start, end, gw, status, code
        self.successes: list[tuple[float, int]] = []  # end time, gateway
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.work, args=(i,)) for i in range(threads)]

    def work(self, index: int) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            gw = n % len(self.clients)
            key = f"load/{index}/{n}"
            body = os.urandom(random.choice([100, 20_000, 300_000]))
            start = time.monotonic()
            put = outcome(self.clients[gw].put_object, Bucket=self.bucket, Key=key, Body=body)
            if put[0] != "ok":
                self.failures.append((start, time.monotonic(), gw, *put))
                time.sleep(0.1)
                continue
            self.acked[key] = body
            start = time.monotonic()
            got = outcome(lambda: self.clients[1 - gw % 2].get_object(
                Bucket=self.bucket, Key=key)["Body"].read())
            if got[0] != "ok":
                self.failures.append((start, time.monotonic(), 1 - gw % 2, *got))
                time.sleep(0.1)
            elif got[1] != body:
                self.failures.append((start, time.monotonic(), 1 - gw % 2, "wrong body", key))
            else:
                self.successes.append((time.monotonic(), gw))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(120)


@pytest.fixture(scope="module")
def postgres_outage(factory, upstream, tmp_path_factory):
    """Two gateways under load over a cluster of their own; PostgreSQL stopped for 4 s, then
    started again; the gateways are not restarted."""
    pg = PostgresCluster(tmp_path_factory.mktemp("pg-outage"))
    try:
        gateways = GatewaySet(factory, pg, upstream)
        gateways.add()
        gateways.add()
        pids = [g.pid for g in gateways.gateways]
        clients = gateways.clients(checksum="when_required", read_timeout=20)
        bucket = unique_bucket_name("gw-pg")
        clients[0].create_bucket(Bucket=bucket)
        with Load(clients, bucket) as load:
            time.sleep(2)
            pg.stop("fast")
            down_from = time.monotonic()
            # While down: each gateway asked directly too (a HEAD and a PUT each).
            probes = []
            time.sleep(1)
            for c in clients:
                probes.append(outcome(c.put_object, Bucket=bucket, Key="probe", Body=b"x"))
                probes.append(outcome(c.head_object, Bucket=bucket, Key="load/0/1"))
                probes.append(outcome(c.list_objects_v2, Bucket=bucket, MaxKeys=5))
            time.sleep(max(0.0, down_from + 4 - time.monotonic()))
            down_until = time.monotonic()
            pg.start()
            up_at = time.monotonic()
            # Until each gateway has served a full PUT + GET again, then 2 s more.
            deadline = up_at + 30
            while time.monotonic() < deadline:
                served = {gw for t, gw in load.successes if t > up_at}
                if served == {0, 1}:
                    break
                time.sleep(0.1)
            recovered_after = time.monotonic() - up_at
            time.sleep(2)
        yield {
            "gateways": gateways, "pids": pids, "clients": clients, "bucket": bucket,
            "load": load, "probes": probes, "down": (down_from, down_until), "up_at": up_at,
            "recovered_after": recovered_after,
        }
    finally:
        pg.destroy()


def test_postgres_down_answers_503(postgres_outage):
    """While PostgreSQL is down, requests that need it are refused with 503 ServiceUnavailable
    (a retryable answer), promptly, not 500 and not a hang."""
    o = postgres_outage
    down_from, down_until = o["down"]
    during = [f for f in o["load"].failures if f[0] >= down_from + 0.5 and f[1] <= down_until]
    seen = sorted({p if p[0] != "ok" else ("ok",) for p in o["probes"]} |
                  {(f[3], f[4]) for f in during}, key=str)
    print("answers while PostgreSQL was down:", seen)
    assert during or o["probes"], "no request was made while PostgreSQL was down"
    assert all(p[0] != "ok" for p in o["probes"][0::3]), f"a PUT succeeded without PostgreSQL: {o['probes']}"
    slow = [f for f in during if f[1] - f[0] > 10]
    assert not slow, f"requests hung while PostgreSQL was down: {slow[:3]}"
    # A HEAD's error has no body: botocore reports its status as the code.
    wrong = [s for s in seen if s not in (UNAVAILABLE, (503, "503"))]
    assert not wrong, f"answers while PostgreSQL was down: {seen}"


def test_postgres_restart_recovers_without_gateway_restart(postgres_outage):
    """Once PostgreSQL is back, both gateways (the same processes) serve again within seconds:
    their pools reconnect."""
    o = postgres_outage
    assert [g.pid for g in o["gateways"].gateways] == o["pids"] and \
        all(g.running() for g in o["gateways"].gateways), "a gateway died or was restarted"
    print(f"both gateways served again {o['recovered_after']:.1f} s after PostgreSQL was back")
    assert o["recovered_after"] < 15, \
        f"gateways did not serve again within 15 s of PostgreSQL's return " \
        f"({o['load'].failures[-3:]})"
    after = [f for f in o["load"].failures if f[0] > o["up_at"] + o["recovered_after"]]
    assert not after, f"failures after recovery: {after[:5]}"
    for c in o["clients"]:
        c.put_object(Bucket=o["bucket"], Key="after", Body=b"after")
        assert c.get_object(Bucket=o["bucket"], Key="after")["Body"].read() == b"after"


def test_postgres_restart_loses_nothing_acknowledged(postgres_outage):
    o = postgres_outage
    acked = o["load"].acked
    assert len(acked) > 10, acked.keys()
    a, b = o["clients"]
    for i, (key, body) in enumerate(sorted(acked.items())):
        assert (a if i % 2 else b).get_object(Bucket=o["bucket"], Key=key)["Body"].read() == body, key
    listed = set()
    for page in a.get_paginator("list_objects_v2").paginate(Bucket=o["bucket"], Prefix="load/"):
        listed.update(x["Key"] for x in page.get("Contents", []))
    assert set(acked) <= listed
    wrong = [f for f in o["load"].failures if f[3] == "wrong body"]
    assert not wrong, wrong


# --------------------------------------------------------------------------- upstream down


@pytest.fixture(scope="module")
def upstream_outage(factory, cluster):
    """Two gateways over an upstream of their own, stopped and started again on its port."""
    up = Upstream(factory)
    gateways = GatewaySet(factory, cluster, up)
    gateways.add()
    gateways.add()
    a, b = gateways.clients(checksum="when_required", read_timeout=60)
    bucket = unique_bucket_name("gw-up")
    a.create_bucket(Bucket=bucket)
    marker = f"PLAINTEXT-MARKER-{uuid.uuid4().hex}".encode()
    before = {"small": marker * 10, "big": marker * (9 * MiB // len(marker))}
    for key, body in before.items():
        a.put_object(Bucket=bucket, Key=key, Body=body)
    upload = a.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part1 = marker * (5 * MiB // len(marker) + 1)
    e1 = a.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=part1)["ETag"]

    port = up.server.port
    up.server.stop()
    answers = {
        "PUT small": outcome(a.put_object, Bucket=bucket, Key="during-small", Body=marker * 3),
        "PUT big": outcome(b.put_object, Bucket=bucket, Key="during-big",
                           Body=marker * (10 * MiB // len(marker))),
        "GET": outcome(lambda: b.get_object(Bucket=bucket, Key="small")["Body"].read()),
        "GET range": outcome(lambda: a.get_object(Bucket=bucket, Key="big",
                                                  Range="bytes=100-199")["Body"].read()),
        "UploadPart": outcome(b.upload_part, Bucket=bucket, Key="mp", UploadId=upload,
                              PartNumber=2, Body=marker * 100),
        "CopyObject": outcome(a.copy_object, Bucket=bucket, Key="during-copy",
                              CopySource={"Bucket": bucket, "Key": "small"}),
    }
    up.server.start(port=port)
    return {"up": up, "gateways": gateways, "clients": (a, b), "bucket": bucket,
            "marker": marker, "before": before, "answers": answers, "upload": upload,
            "parts": [(1, e1, part1)]}


def test_upstream_down_answers_503(upstream_outage):
    answers = {what: (o[0], o[1]) for what, o in upstream_outage["answers"].items()}
    print("answers while the upstream was down:", answers)
    wrong = {what: o for what, o in answers.items() if o != UNAVAILABLE}
    assert not wrong, f"expected 503 ServiceUnavailable while the upstream is down: {wrong}"


def test_upstream_outage_no_record_without_blob_no_plaintext(upstream_outage, cluster):
    o = upstream_outage
    a, b = o["clients"]
    bucket, marker = o["bucket"], o["marker"]
    # Nothing refused was recorded; everything listed reads back, through both gateways.
    for key in ("during-small", "during-big", "during-copy"):
        st = outcome(a.head_object, Bucket=bucket, Key=key)
        assert st[0] == 404, f"{key}, written while the upstream was down, is visible: {st}"
    listed = [x["Key"] for x in a.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert sorted(listed) == sorted(o["before"]), listed
    for key in listed:
        for c in (a, b):
            assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == o["before"][key], key
    parts = b.list_parts(Bucket=bucket, Key="mp", UploadId=o["upload"]).get("Parts", [])
    assert [p["PartNumber"] for p in parts] == [1], f"a refused part was recorded: {parts}"
    e2 = b.upload_part(Bucket=bucket, Key="mp", UploadId=o["upload"], PartNumber=2, Body=b"tail")["ETag"]
    b.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=o["upload"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": o["parts"][0][1]}, {"PartNumber": 2, "ETag": e2}]})
    assert a.get_object(Bucket=bucket, Key="mp")["Body"].read() == o["parts"][0][2] + b"tail"
    # Every referenced blob is upstream.
    refs = set(cluster.psql("SELECT blob FROM blob_refs", o["gateways"].database).split())
    stored = {k.split("/", 1)[1] for k in o["up"].objects(o["gateways"].bucket)}
    assert refs and refs <= stored, f"referenced blobs missing upstream: {sorted(refs - stored)[:5]}"
    # No plaintext anywhere: upstream objects and data dir, the database, the gateways' dirs
    # and logs.
    for key, data in o["up"].objects(o["gateways"].bucket).items():
        assert marker not in data, f"plaintext in upstream object {key}"
    places = [o["up"].server.data_dir] + [g.data_dir for g in o["gateways"].gateways]
    for place in places:
        for p in place.rglob("*"):
            if p.is_file():
                assert marker not in p.read_bytes(), f"plaintext in {p}"
    for g in (o["up"].server, *o["gateways"].gateways):
        assert marker.decode() not in g.log_text(), f"plaintext in the log of {g.data_dir}"
    dump = cluster.dump(o["gateways"].database)
    assert marker not in dump and marker.hex().encode() not in dump, "plaintext in pg_dump"


# --------------------------------------------------------------------------- races between gateways


def test_if_none_match_races_over_many_keys(factory, cluster, upstream):
    """40 keys, each raced by 6 writers through 3 gateways with `If-None-Match: *`, all 6
    released together: exactly one writer wins each key, the others get 412 (or 409), and the
    key holds the winner's bytes."""
    gateways = GatewaySet(factory, cluster, upstream)
    for _ in range(3):
        gateways.add()
    clients = [gateways.clients(checksum="when_required") for _ in range(6)]  # one set per writer
    bucket = unique_bucket_name("gw-race")
    clients[0][0].create_bucket(Bucket=bucket)
    keys, writers = 40, 6
    barriers = [threading.Barrier(writers, timeout=60) for _ in range(keys)]
    losers = []

    def attempt(job):
        k, w = job
        body = f"key {k} writer {w} ".encode() * (1 + 500 * (w % 3))
        barriers[k].wait()
        try:
            clients[w][w % 3].put_object(Bucket=bucket, Key=f"race-{k}", Body=body, IfNoneMatch="*")
            return k, w
        except ClientError as exc:
            losers.append((http_status(exc), error_code(exc)))
            return k, None

    jobs = [(k, w) for k in range(keys) for w in range(writers)]
    with concurrent.futures.ThreadPoolExecutor(writers * 3) as pool:
        results = list(pool.map(attempt, jobs))
    winners = {}
    for k, w in results:
        if w is not None:
            winners.setdefault(k, []).append(w)
    multiple = {k: ws for k, ws in winners.items() if len(ws) != 1}
    assert not multiple and len(winners) == keys, f"keys without exactly one winner: {multiple}, " \
        f"{keys - len(winners)} without any"
    assert set(losers) <= {(412, "PreconditionFailed"), (409, "ConditionalRequestConflict")}, set(losers)
    for k, (w,) in winners.items():
        got = clients[1][k % 3].get_object(Bucket=bucket, Key=f"race-{k}")["Body"].read()
        assert got == f"key {k} writer {w} ".encode() * (1 + 500 * (w % 3)), k


def later(seconds: float) -> datetime.datetime:
    return (datetime.datetime.now(UTC) + datetime.timedelta(seconds=seconds)).replace(microsecond=0)


def test_object_lock_set_on_one_gateway_binds_the_other(pair):
    a, b = pair.clients()
    bucket = unique_bucket_name("gw-lock")
    a.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    denied = (403, "AccessDenied")
    # Retention through A, after B has seen the version unlocked.
    vid = b.put_object(Bucket=bucket, Key="r", Body=b"retained")["VersionId"]
    assert b.head_object(Bucket=bucket, Key="r", VersionId=vid).get("ObjectLockMode") is None
    a.put_object_retention(Bucket=bucket, Key="r", VersionId=vid,
                           Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later(3600)})
    assert outcome(b.delete_object, Bucket=bucket, Key="r", VersionId=vid) == denied
    assert b.head_object(Bucket=bucket, Key="r", VersionId=vid)["ObjectLockMode"] == "GOVERNANCE"
    # COMPLIANCE through A: not even B's bypass deletes it.
    vid_c = a.put_object(Bucket=bucket, Key="c", Body=b"compliance")["VersionId"]
    b.head_object(Bucket=bucket, Key="c", VersionId=vid_c)
    a.put_object_retention(Bucket=bucket, Key="c", VersionId=vid_c,
                           Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later(5)})
    assert outcome(b.delete_object, Bucket=bucket, Key="c", VersionId=vid_c,
                   BypassGovernanceRetention=True) == denied
    # Legal hold through A, delete through B refused; released through A, B deletes.
    vid_h = b.put_object(Bucket=bucket, Key="h", Body=b"held")["VersionId"]
    b.head_object(Bucket=bucket, Key="h", VersionId=vid_h)
    a.put_object_legal_hold(Bucket=bucket, Key="h", VersionId=vid_h, LegalHold={"Status": "ON"})
    assert outcome(b.delete_object, Bucket=bucket, Key="h", VersionId=vid_h,
                   BypassGovernanceRetention=True) == denied
    a.put_object_legal_hold(Bucket=bucket, Key="h", VersionId=vid_h, LegalHold={"Status": "OFF"})
    b.delete_object(Bucket=bucket, Key="h", VersionId=vid_h)
    assert outcome(a.head_object, Bucket=bucket, Key="h", VersionId=vid_h)[0] == 404


def test_legal_hold_and_delete_racing_on_two_gateways(pair):
    """A legal hold (through A) and a delete of the same version (through B), released together,
    30 times: never both acknowledged, and the version's state is the one that won."""
    a, b = pair.clients()
    a2, b2 = pair.clients()
    bucket = unique_bucket_name("gw-lockrace")
    a.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    tally = {"hold won": 0, "delete won": 0}
    for i in range(30):
        vid = a.put_object(Bucket=bucket, Key=f"k{i}", Body=b"v")["VersionId"]
        go = threading.Barrier(2, timeout=30)

        def hold():
            go.wait()
            return outcome(a2.put_object_legal_hold, Bucket=bucket, Key=f"k{i}", VersionId=vid,
                           LegalHold={"Status": "ON"})

        def delete():
            go.wait()
            return outcome(b2.delete_object, Bucket=bucket, Key=f"k{i}", VersionId=vid)

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            h, d = pool.submit(hold), pool.submit(delete)
            h, d = h.result(), d.result()
        assert not (h[0] == "ok" and d[0] == "ok"), f"round {i}: hold and delete both acknowledged"
        head = outcome(a.head_object, Bucket=bucket, Key=f"k{i}", VersionId=vid)
        if d[0] == "ok":
            assert head[0] == 404 and h[0] in (404, 405), (i, h, head)
            tally["delete won"] += 1
        else:
            assert h[0] == "ok" and d == (403, "AccessDenied"), (i, h, d)
            assert head[0] == "ok" and head[1].get("ObjectLockLegalHoldStatus") == "ON", (i, head)
            tally["hold won"] += 1
    print(tally)


# --------------------------------------------------------------------------- KMS key state


def kms_client(server):
    session = boto3.session.Session(aws_access_key_id=server.access_key,
                                    aws_secret_access_key=server.secret_key, region_name=REGION)
    return session.client("kms", endpoint_url=server.endpoint, config=Config(
        retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=30))


def first_time(check, limit: float, step: float = 0.05) -> tuple[float | None, list]:
    """Seconds until `check()` first returns True, polling every `step` s; None if not within
    `limit`. Also what it saw."""
    start, seen = time.monotonic(), []
    while True:
        ok, what = check()
        seen.append(what)
        elapsed = time.monotonic() - start
        if ok:
            return elapsed, seen
        if elapsed > limit:
            return None, seen
        time.sleep(step)


def test_kms_default_key_created_by_one_gateway_is_known_to_the_others(factory, cluster, upstream):
    """The default key (alias/aws/s3) is created by the first SSE-KMS request that needs it,
    on whichever gateway: an object sealed under it through A reads back through B."""
    gateways = GatewaySet(factory, cluster, upstream)
    gateways.add()
    gateways.add()
    a, b = gateways.clients(checksum="when_required")
    bucket = unique_bucket_name("gw-kms-default")
    a.create_bucket(Bucket=bucket)
    a.put_object(Bucket=bucket, Key="k", Body=b"under the default key", ServerSideEncryption="aws:kms")
    got = outcome(lambda: b.get_object(Bucket=bucket, Key="k")["Body"].read())
    assert got == ("ok", b"under the default key"), f"B cannot read it: {got}"
    put = outcome(b.put_object, Bucket=bucket, Key="k2", Body=b"x", ServerSideEncryption="aws:kms")
    assert put[0] == "ok", f"B cannot use the default key: {put[:2]}"
    assert put[1]["SSEKMSKeyId"] == a.head_object(Bucket=bucket, Key="k")["SSEKMSKeyId"], \
        "two default keys"


@pytest.mark.parametrize("bucket_key", [False, True], ids=["data-key", "bucket-key"])
def test_kms_key_disabled_on_one_gateway_refused_by_the_other_within_1s(pair, bucket_key):
    gw_a, gw_b = pair.gateways
    kms_a = kms_client(gw_a)
    b = make_s3_client(gw_b.endpoint, gw_b.access_key, gw_b.secret_key, checksum="when_required")
    bucket = unique_bucket_name("gw-kms")
    b.create_bucket(Bucket=bucket)
    key_id = kms_a.create_key(Description="gateway faults")["KeyMetadata"]["KeyId"]
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id, "BucketKeyEnabled": bucket_key}
    # B uses the key (and, with a bucket key, caches one) before it is disabled.
    first = outcome(b.put_object, Bucket=bucket, Key="warm-0", Body=b"warm", **sse)
    assert first[0] == "ok", f"B refuses a key just created through A: {first}"
    for i in (1, 2):
        b.put_object(Bucket=bucket, Key=f"warm-{i}", Body=b"warm", **sse)
    assert b.get_object(Bucket=bucket, Key="warm-0")["Body"].read() == b"warm"
    n = [0]

    def put_and_get():
        n[0] += 1
        put = outcome(b.put_object, Bucket=bucket, Key=f"poll-{n[0]}", Body=b"poll", **sse)
        get = outcome(lambda: b.get_object(Bucket=bucket, Key="warm-0")["Body"].read())
        return put[:2] if put[0] != "ok" else "ok", get[:2] if get[0] != "ok" else "ok"

    kms_a.disable_key(KeyId=key_id)
    try:
        refused_after, seen = first_time(lambda: ((r := put_and_get()) == (KMS_DISABLED, KMS_DISABLED), r), 3.0)
    finally:
        kms_a.enable_key(KeyId=key_id)
    works_after, seen_on = first_time(lambda: ((r := put_and_get()) == ("ok", "ok"), r), 3.0)
    print(f"bucket key {bucket_key}: refused by B {refused_after} s after the disable on A "
          f"(saw {sorted(set(map(str, seen)))}); works {works_after} s after the enable")
    assert refused_after is not None and refused_after <= 1.0, \
        f"B still served with the key disabled on A after {refused_after or '> 3'} s; saw {seen[-1]}"
    assert works_after is not None and works_after <= 1.0, \
        f"B refused the key enabled again on A after {works_after or '> 3'} s; saw {seen_on[-1]}"
