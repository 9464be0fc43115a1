"""kill -9 of gateways under load (issue 16): the crash harness's gateway mode.

Unlike crash_harness.py (one embedded server, killed and restarted in cycles, checked after
every restart), gateways are killed while the load goes on: the store lives in PostgreSQL and
the upstream bucket, and the other gateways keep serving it.

`GatewayCrashRun` drives 2-3 gateways over one database and one upstream bucket:

- worker threads, each owning its keys (so each key's operations are sequential and the expected
  state is exact), run a mix of PUTs (0 B to 10 MiB, some above the upstream part size so the
  blob goes up as an upstream multipart upload; default SSE or aws:kms), overwrites, deletes,
  multipart uploads (create, parts and complete each through a gateway picked at random;
  completed, aborted or left open) and read-backs, each request through a gateway picked at
  random among those up;
- a killer thread SIGKILLs a random gateway (sometimes two at once, never all) after a random
  delay, or just as a request of a chosen kind reaches it, keeps it down a moment and restarts
  it on the same port and data dir (root.key and credentials live there).

A request that fails while its gateway was being killed is *in doubt*: the key may hold its
outcome or not (a retried part is re-sent through another gateway). Any other failure is a bug,
in particular a failure of a gateway that was not killed ("the others keep serving"). An answer
that arrives after its gateway was killed counts only if that gateway logged its request id
(see crash_harness.Worker.call). After an in-doubt request a worker pauses briefly
(`DOUBT_PAUSE_S`): a COMMIT the dying gateway had already sent still lands in PostgreSQL, and
the pause keeps it ahead of the worker's next request on the key.

`verify()` then checks, through the restarted gateways: every key holds its last acknowledged
version byte for byte (or the outcome of a later request in doubt), acknowledged deletes stay
deleted, LIST and GET agree, open uploads are listed with their acknowledged parts; and, in
PostgreSQL and the upstream bucket: every referenced blob exists upstream (`missing_blobs`),
and every upstream blob is referenced or has a `pending_blobs` row (`orphan_blobs`).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from gateway_support import GatewaySet
from support import CofferServer, make_s3_client

KiB, MiB = 1 << 10, 1 << 20
MIN_PART = 5 * MiB
UPSTREAM_PART = 8 * MiB  # coffer-blobs-s3 DEFAULT_PART_SIZE: a longer blob is an upstream multipart
KEYS_PER_WORKER = 6
DOUBT_PAUSE_S = 0.3
# Kill triggers: after a random delay, or as a request of this kind reaches the victim (the
# long ones twice as often: a kill lands inside them).
KILL_ON = ["put", "put-big", "put-big", "part", "part", "complete", "delete", "create"]


@dataclass(frozen=True)
class Version:
    sha256: str
    size: int
    sse: str  # "AES256" (the default) or "aws:kms"
    origin: str


@dataclass
class KeyState:
    """`known`: after the last acknowledged request (None = absent); `doubt`: outcomes of
    requests in doubt since then (None for a delete)."""

    known: Version | None = None
    doubt: list = field(default_factory=list)

    def candidates(self) -> list:
        return [self.known, *self.doubt]


@dataclass
class OpenUpload:
    key: str
    upload_id: str
    parts: dict[int, str] = field(default_factory=dict)  # number -> ETag (unquoted)


class InDoubt(Exception):
    pass


class Unexpected(Exception):
    pass


class Gate:
    """One gateway under the killer. `epoch` changes (before the signal) at every kill, so a
    request can tell whether its gateway died under it."""

    def __init__(self, index: int, server: CofferServer):
        self.index = index
        self.server = server
        self.port = server.port
        self.epoch = 0
        self.up = threading.Event()
        self.up.set()
        self.lock = threading.Lock()

    def logged(self, request_id: str | None) -> bool:
        return bool(request_id) and f'request_id="{request_id}"' in self.server.log_text()


def request_id_of(result) -> str | None:
    if isinstance(result, ClientError):
        return result.response.get("ResponseMetadata", {}).get("RequestId")
    if isinstance(result, dict):
        return result.get("ResponseMetadata", {}).get("RequestId")
    return None


def content(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


class GatewayCrashRun:
    def __init__(self, gateways: GatewaySet, bucket: str, *, seed: int, workers: int = 3,
                 max_down_s: float = 1.5, kill_every_s: tuple[float, float] = (1.0, 3.0)):
        self.set = gateways
        self.gates = [Gate(i, g) for i, g in enumerate(gateways.gateways)]
        self.bucket = bucket
        self.seed = seed
        self.n_workers = workers
        self.max_down_s = max_down_s
        self.kill_every_s = kill_every_s
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.stats = Counter()
        self.kills = Counter()
        self.stats_lock = threading.Lock()
        self.kill_trigger: tuple[Gate, str] | None = None  # (gate, kind): kill as it arrives
        self.triggered = threading.Event()
        self.workers: list[Worker] = []
        self.kill_times: list[float] = []  # wall clock, to place what a kill left behind

    # -- plumbing shared by the workers

    def count(self, name: str, n: int = 1) -> None:
        with self.stats_lock:
            self.stats[name] += n

    def live_gates(self) -> list[Gate]:
        return [g for g in self.gates if g.up.is_set()]

    def request_starts(self, gate: Gate, kind: str) -> None:
        trigger = self.kill_trigger
        if trigger is not None and trigger[0] is gate and trigger[1] == kind:
            self.kill_trigger = None
            self.triggered.set()

    # -- the killer

    def kill(self, gate: Gate, trigger: str) -> None:
        with gate.lock:
            gate.up.clear()
            gate.epoch += 1
            self.kill_times.append(time.time())
            gate.server.kill()
        self.kills[trigger] += 1
        self.kills[f"gateway {gate.index}"] += 1

    def revive(self, gate: Gate) -> None:
        with gate.lock:
            gate.server.start(port=gate.port)
            gate.up.set()

    def killer(self) -> None:
        rng = random.Random(f"{self.seed}/killer")
        try:
            while not self.stop.wait(rng.uniform(*self.kill_every_s)):
                victims = rng.sample(self.gates, 2 if len(self.gates) > 2 and rng.random() < 0.25 else 1)
                how = rng.choice(["delay", *KILL_ON])
                if how == "delay":
                    trigger = "after a random delay"
                else:
                    self.triggered.clear()
                    self.kill_trigger = (victims[0], how)
                    got = self.triggered.wait(5.0)
                    self.kill_trigger = None
                    trigger = f"as a {how} arrives" if got else "after waiting for a request"
                    time.sleep(rng.uniform(0, 0.02))  # somewhere inside that request
                for gate in victims:
                    self.kill(gate, trigger)
                if len(victims) > 1:
                    self.kills["two at once"] += 1
                time.sleep(rng.uniform(0.1, self.max_down_s))
                for gate in victims:
                    self.revive(gate)
        except BaseException as exc:  # a gateway that does not come back is a failure too
            self.errors.append(f"killer: {exc!r}")
            self.stop.set()

    # -- the run

    def run(self, seconds: float) -> dict:
        self.workers = [Worker(self, i) for i in range(self.n_workers)]
        threads = [threading.Thread(target=w.run, name=w.name) for w in self.workers]
        killer = threading.Thread(target=self.killer, name="killer")
        started = time.monotonic()
        for t in threads:
            t.start()
        killer.start()
        self.stop.wait(seconds)
        self.stop.set()
        killer.join(120)
        for t in threads:
            t.join(180)
        for gate in self.gates:
            if not gate.server.running():
                self.revive(gate)
        self.stats["seconds"] = round(time.monotonic() - started, 1)
        for w in self.workers:
            self.errors.extend(w.errors)
        return self.summary()

    def summary(self) -> dict:
        by_kind = {k[4:]: v for k, v in sorted(self.stats.items()) if k.startswith("ack ")}
        doubt = {k[6:]: v for k, v in sorted(self.stats.items()) if k.startswith("doubt ")}
        return {
            "seed": self.seed,
            "seconds": self.stats["seconds"],
            "gateways": len(self.gates),
            "workers": self.n_workers,
            "kills": sum(v for k, v in self.kills.items() if k.startswith("gateway ")),
            "kills_by": dict(sorted(self.kills.items())),
            "acknowledged": sum(by_kind.values()),
            "acknowledged_by_kind": by_kind,
            "in_doubt": sum(doubt.values()),
            "in_doubt_by_kind": doubt,
            "served_while_another_gateway_was_down": self.stats["served while another down"],
            "answers_the_gateway_never_logged": self.stats["foreign"],
            "bytes_acknowledged": self.stats["bytes"],
        }

    # -- after the run

    def verify(self) -> dict:
        """Checks the visible state through the gateways; returns counts, or raises."""
        clients = self.set.clients(checksum="when_required")
        problems: list[str] = []
        checked = Counter()
        listed = set()
        for page in clients[0].get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            listed.update(o["Key"] for o in page.get("Contents", []))
        expected_present = set()
        for w in self.workers:
            for key, state in w.keys.items():
                client = clients[hash(key) % len(clients)]
                try:
                    r = client.get_object(Bucket=self.bucket, Key=key)
                    body = r["Body"].read()
                    got = (hashlib.sha256(body).hexdigest(), len(body), r.get("ServerSideEncryption"))
                except ClientError as exc:
                    if exc.response["Error"]["Code"] != "NoSuchKey":
                        problems.append(f"{key}: GET failed: {exc!r}")
                        continue
                    got = None
                ok = [v for v in state.candidates()
                      if (v is None and got is None)
                      or (v is not None and got == (v.sha256, v.size, v.sse))]
                if not ok:
                    problems.append(f"{key}: holds {got}, expected one of {state.candidates()};"
                                    f" history: {w.history.get(key, [])[-6:]}")
                    continue
                checked["keys"] += 1
                if state.known is not None and state.known in ok:
                    checked["acknowledged objects read back"] += 1
                if state.known is None and got is None and not state.doubt:
                    checked["acknowledged absences"] += 1
                if got is not None:
                    expected_present.add(key)
                if (got is not None) != (key in listed):
                    problems.append(f"{key}: GET says {'present' if got else 'absent'}, LIST "
                                    f"{'lists' if key in listed else 'omits'} it")
        stray = listed - {k for w in self.workers for k in w.keys}
        if stray:
            problems.append(f"LIST shows keys nobody wrote: {sorted(stray)[:5]}")
        # Open uploads: listed, with their acknowledged parts.
        uploads = {}
        for page in clients[1 % len(clients)].get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket):
            for u in page.get("Uploads", []):
                uploads[u["UploadId"]] = u["Key"]
        for w in self.workers:
            for up in w.open_uploads:
                if uploads.get(up.upload_id) != up.key:
                    problems.append(f"open upload {up.upload_id} of {up.key} is not listed")
                    continue
                parts = clients[-1].list_parts(Bucket=self.bucket, Key=up.key,
                                               UploadId=up.upload_id).get("Parts", [])
                got = {p["PartNumber"]: p["ETag"].strip('"') for p in parts}
                for number, etag in up.parts.items():
                    if got.get(number) != etag:
                        problems.append(f"upload {up.upload_id}: part {number} is {got.get(number)}, "
                                        f"acknowledged {etag}")
                checked["open uploads"] += 1
        if problems:
            raise AssertionError(f"{len(problems)} problems after the run:\n" + "\n".join(problems[:30]))
        return dict(checked)

    def blob_accounting(self) -> dict:
        """Upstream blobs against `blob_refs` and `pending_blobs`."""
        db, cluster = self.set.database, self.set.cluster
        refs = set(cluster.psql("SELECT blob FROM blob_refs", db).split())
        pending = set(cluster.psql("SELECT blob FROM pending_blobs", db).split())
        client = self.set.upstream.client
        prefix = "gw/"
        written = {}  # id -> LastModified (epoch seconds)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.set.bucket,
                                                                    Prefix=prefix):
            for o in page.get("Contents", []):
                written[o["Key"][len(prefix):]] = o["LastModified"].timestamp()
        upstream = set(written)
        orphans = upstream - refs - pending
        # An orphan a kill explains was written upstream in the seconds before a kill (its
        # gateway died before committing the record); LastModified has 1 s resolution.
        explained = {b for b in orphans
                     if any(written[b] - 1.5 <= t <= written[b] + 15 for t in self.kill_times)}
        return {
            "upstream": upstream, "refs": refs, "pending": pending,
            "missing": refs - upstream,
            "orphans": orphans,
            "orphans_no_kill_explains": orphans - explained,
        }


class Worker:
    def __init__(self, run: GatewayCrashRun, index: int):
        self.run_ = run
        self.index = index
        self.name = f"w{index}"
        self.keys = {f"{self.name}/k{i}": KeyState() for i in range(KEYS_PER_WORKER)}
        self.open_uploads: list[OpenUpload] = []
        self.history: dict[str, list[str]] = {}
        self.errors: list[str] = []
        self.rng = random.Random(f"{run.seed}/{index}")
        # One client per gateway (made here, in the test's thread: botocore sessions are not
        # thread-safe to create). Created at construction; ports do not change on restart.
        self.clients = [make_s3_client(g.server.endpoint, g.server.access_key, g.server.secret_key,
                                       checksum="when_required", read_timeout=60)
                        for g in run.gates]

    def note(self, key: str, event: str) -> None:
        self.history.setdefault(key, []).append(f"{time.time():.3f} {event}")

    def run(self) -> None:
        try:
            while not self.run_.stop.is_set():
                self.step()
        except Unexpected as exc:
            self.errors.append(str(exc))
            self.run_.stop.set()
        except Exception as exc:  # a harness bug: say so
            self.errors.append(f"{self.name}: harness error {exc!r}")
            self.run_.stop.set()

    def pick(self) -> Gate:
        while True:
            live = self.run_.live_gates()
            if live:
                return self.rng.choice(live)
            time.sleep(0.05)

    def call(self, kind: str, fn_name: str, **kwargs):
        """One request through a live gateway picked at random: its answer, or InDoubt if that
        gateway was killed under it; any other failure is Unexpected."""
        gate = self.pick()
        epoch = gate.epoch
        others_down = len(self.run_.live_gates()) < len(self.run_.gates)
        self.run_.request_starts(gate, kind)
        try:
            result = getattr(self.clients[gate.index], fn_name)(**kwargs)
            if fn_name == "get_object":
                result["Body"] = result["Body"].read()
        except Exception as exc:
            if gate.epoch != epoch:
                self.run_.count(f"doubt {kind}")
                time.sleep(DOUBT_PAUSE_S)
                raise InDoubt(f"{kind} via gateway {gate.index}: {exc!r}") from exc
            raise Unexpected(f"{self.name}: {kind} via gateway {gate.index} (not killed) failed: "
                             f"{exc!r}") from exc
        if gate.epoch != epoch and not gate.logged(request_id_of(result)):
            self.run_.count("foreign")
            self.run_.count(f"doubt {kind}")
            time.sleep(DOUBT_PAUSE_S)
            raise InDoubt(f"{kind} via gateway {gate.index}: an answer it never logged")
        self.run_.count(f"ack {kind}")
        if others_down and len(self.run_.live_gates()) < len(self.run_.gates):
            self.run_.count("served while another down")
        return result

    # -- the mix

    def step(self) -> None:
        r = self.rng.random()
        key = self.rng.choice(list(self.keys))
        if r < 0.40:
            self.put(key)
        elif r < 0.52:
            self.multipart(key)
        elif r < 0.70:
            self.delete(key)
        else:
            self.read_back(key)

    def write(self, kind: str, key: str, version: Version | None, fn_name: str, **kwargs):
        state = self.keys[key]
        what = f"{kind} ({'delete' if version is None else f'{version.size} B'})"
        try:
            result = self.call(kind, fn_name, **kwargs)
        except InDoubt as exc:
            state.doubt.append(version)
            self.note(key, f"{what} in doubt: {exc}")
            return None
        state.known, state.doubt = version, []
        self.note(key, f"{what} acknowledged {request_id_of(result)}")
        return result

    def put(self, key: str) -> None:
        r = self.rng.random()
        size = (0 if r < 0.05 else self.rng.randint(1, 4 * KiB) if r < 0.35
                else self.rng.randint(4 * KiB, 256 * KiB) if r < 0.65
                else self.rng.randint(256 * KiB, 2 * MiB) if r < 0.94
                else self.rng.randint(UPSTREAM_PART + 1, UPSTREAM_PART + 2 * MiB))
        data = content(self.rng.getrandbits(63), size)
        sse = "aws:kms" if self.rng.random() < 0.3 else "AES256"
        extra = {"ServerSideEncryption": "aws:kms"} if sse == "aws:kms" else {}
        version = Version(hashlib.sha256(data).hexdigest(), size, sse, f"PUT by {self.name}")
        if self.write("put-big" if size > UPSTREAM_PART else "put", key, version, "put_object",
                      Bucket=self.run_.bucket, Key=key, Body=data, **extra) is not None:
            self.run_.count("bytes", size)

    def delete(self, key: str) -> None:
        self.write("delete", key, None, "delete_object", Bucket=self.run_.bucket, Key=key)

    def read_back(self, key: str) -> None:
        state = self.keys[key]
        if state.known is None or state.doubt:
            return
        try:
            r = self.call("get", "get_object", Bucket=self.run_.bucket, Key=key)
        except InDoubt:
            return
        body = r["Body"]
        got = (hashlib.sha256(body).hexdigest(), len(body), r.get("ServerSideEncryption"))
        v = state.known
        if got != (v.sha256, v.size, v.sse):
            raise Unexpected(f"{self.name}: live GET of {key}: {got[1]} B {got[2]}, expected "
                             f"{v.size} B {v.sse}; history {self.history.get(key, [])[-5:]}")

    def multipart(self, key: str) -> None:
        bucket = self.run_.bucket
        try:
            created = self.call("create", "create_multipart_upload", Bucket=bucket, Key=key)
        except InDoubt:
            return  # an unknown upload may exist: it is not this model's to check
        upload = OpenUpload(key, created["UploadId"])
        self.open_uploads.append(upload)
        datas = []
        n_parts = self.rng.choice([1, 2, 2])
        for number in range(1, n_parts + 1):
            size = MIN_PART if number < n_parts else self.rng.randint(1, 512 * KiB)
            data = content(self.rng.getrandbits(63), size)
            datas.append(data)
            for _attempt in range(5):  # a part in doubt is sent again, as a client would
                try:
                    r = self.call("part", "upload_part", Bucket=bucket, Key=key,
                                  UploadId=upload.upload_id, PartNumber=number, Body=data)
                except InDoubt:
                    continue
                etag = r["ETag"].strip('"')
                if etag != hashlib.md5(data).hexdigest():
                    raise Unexpected(f"{self.name}: part {number} of {key}: ETag {etag}")
                upload.parts[number] = etag
                break
            else:
                return  # left open, with what was acknowledged
            if self.run_.stop.is_set():
                return
        r = self.rng.random()
        if r < 0.8:
            body = b"".join(datas)
            version = Version(hashlib.sha256(body).hexdigest(), len(body), "AES256",
                              f"COMPLETE by {self.name}")
            parts = [{"PartNumber": n, "ETag": f'"{e}"'} for n, e in sorted(upload.parts.items())]
            result = self.write("complete", key, version, "complete_multipart_upload", Bucket=bucket,
                                Key=key, UploadId=upload.upload_id,
                                MultipartUpload={"Parts": parts})
            self.open_uploads.remove(upload)  # completed, or in doubt: no longer checked as open
            if result is not None:
                self.run_.count("bytes", len(body))
        elif r < 0.9:
            try:
                self.call("abort", "abort_multipart_upload", Bucket=bucket, Key=key,
                          UploadId=upload.upload_id)
            except InDoubt:
                pass
            self.open_uploads.remove(upload)
        # else: left open, checked after the run
