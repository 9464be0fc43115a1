"""Crash-safety harness: concurrent writes against the real `coffer` binary, kill -9, restart, check.

DESIGN.md §1.4: "A write acknowledged to the client survives kill -9 … A failed or interrupted
write leaves no visible partial object."

Each cycle (re)starts the server on the same data dir and runs concurrent workers (boto3 in the S3
dialect, one oss2 worker in the OSS dialect) doing a random mix of single PUTs (0 B to 4 MiB),
multipart uploads (CreateMultipartUpload, UploadPart and ranged UploadPartCopy, then Complete,
Abort, or nothing), CopyObject (often into another SSE mode), overwrites and deletes, every write
in a random SSE mode: none, AES256, SM4, aws:kms (default key, a named key, with a bucket key),
SSE-C. The server is SIGKILLed at a random moment (after a random delay, or just as an operation of
a chosen kind starts), then restarted, and the harness checks:

- every key holds exactly its last acknowledged version, or, when its last operation was in doubt
  (the connection died with the server), the outcome of that operation: byte for byte (SHA-256),
  with the right ETag and SSE response headers (algorithm, KMS key id, SSE-C key MD5); nothing
  else, never a partial object;
- LIST and GET agree (no listed object fails to GET, no present object is missing from LIST);
- in-progress multipart uploads are listed with their acknowledged parts; an upload whose
  Complete was in doubt is either still listed with the object unchanged, or gone with the whole
  new object in place (Complete is atomic);
- `tmp/` is empty after restart, and `blobs/` plus the inline blobs the store reports at start-up
  hold exactly the blobs the visible state
  references (one per single-part object, one per part of a multipart object or an upload);
  the store's start-up orphan collection reports what it removed.

Every key belongs to one worker, so its operations are sequential and the expected state is exact.
Objects survive across cycles and get overwritten, copied and deleted in later cycles. An answer
received once the kill is under way counts only if the server logged its request id (see
`Worker.call`: botocore can report a 200 the dying server never sent).

Run by hand (the pytest short version is test_crash.py):

    cargo build -p coffer
    .venv/bin/python tests/interop/crash_harness.py --cycles 200 --seed 1 [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import random
import re
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import oss2
from botocore.config import Config
from botocore.exceptions import ClientError
from oss2.models import PartInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oss_support import oss2_bucket  # noqa: E402
from support import REGION, CofferServer, random_access_key, random_secret_key  # noqa: E402

KiB, MiB = 1 << 10, 1 << 20
MIN_PART = 5 * MiB
BUCKET = "crash-harness"
S3_MODES = ["none", "AES256", "SM4", "aws:kms", "aws:kms-named", "aws:kms-bucket-key", "SSE-C"]
OSS_MODES = ["none", "AES256", "SM4", "KMS"]
KEYS_PER_WORKER = 8
# Kill strategies: after a random delay, or just as an operation of this kind starts.
KILL_ON_OPS = ["put", "complete", "copy", "part", "delete", "vput", "marker", "vdelete", "locked-put"]
INLINE_LOG = re.compile(r"blobs kept inline in the database.*?inline_blobs=(\d+)")
ORPHAN_LOG = re.compile(r"removed orphaned temp and blob files.*?temp_files=(\d+).*?blob_files=(\d+)")


# --------------------------------------------------------------------------- content


# A run of bytes: `Random(seed).randbytes(full)[start:end]`.
Segment = tuple[int, int, int, int]


def segments_bytes(segments: tuple[Segment, ...]) -> bytes:
    return b"".join(random.Random(seed).randbytes(full)[a:b] for seed, full, a, b in segments)


def slice_segments(segments: tuple[Segment, ...], start: int, end: int) -> tuple[Segment, ...]:
    """The segments covering bytes [start, end) of the concatenation of `segments`."""
    out, pos = [], 0
    for seed, full, a, b in segments:
        lo, hi = max(start, pos), min(end, pos + (b - a))
        if lo < hi:
            out.append((seed, full, a + lo - pos, a + hi - pos))
        pos += b - a
    return tuple(out)


@dataclass(frozen=True)
class Sse:
    """An SSE mode as the S3 dialect reports it on GET."""

    mode: str  # none | AES256 | SM4 | aws:kms | SSE-C
    kms_key: str | None = None  # key id, or None for the default key (learned from responses)
    bucket_key: bool = False
    customer_key: bytes | None = None


@dataclass(frozen=True)
class Version:
    """One state of an object: its bytes (as segments), ETag, SSE, and how many blobs it uses."""

    segments: tuple[Segment, ...]
    size: int
    sha256: str
    md5: str
    etag: str
    sse: Sse
    blobs: int
    origin: str  # "<op> in cycle N" for messages


def single_version(segments: tuple[Segment, ...], sse: Sse, origin: str) -> Version:
    data = segments_bytes(segments)
    md5 = hashlib.md5(data).hexdigest()
    return Version(segments, len(data), hashlib.sha256(data).hexdigest(), md5, md5, sse, 1, origin)


@dataclass
class Part:
    segments: tuple[Segment, ...]
    size: int
    etag: str  # unquoted MD5


@dataclass
class Upload:
    key: str
    sse: Sse
    parts: dict[int, Part] = field(default_factory=dict)
    in_doubt_part: tuple[int, Part] | None = None
    # "open", or the terminal operation that was in doubt: "complete" / "abort".
    state: str = "open"
    completing: Version | None = None


@dataclass
class KeyState:
    """What a key must hold: `known` (after its last acknowledged operation; None = absent), or,
    if its last operation was in doubt, possibly `in_doubt` (DELETED for a delete)."""

    known: Version | None = None
    in_doubt: Version | None | str = None  # None = no operation in doubt

    def candidates(self) -> list[Version | None]:
        if self.in_doubt is None:
            return [self.known]
        return [self.known, None if self.in_doubt == DELETED else self.in_doubt]


DELETED = "deleted"


class InDoubt(Exception):
    """The connection died with the server: the operation may or may not have happened."""


class ForeignAnswer(Exception):
    """A client reported an answer to a request the killed server never answered."""


class Unexpected(Exception):
    """The server answered an error, or failed before the kill: a bug."""


# --------------------------------------------------------------------------- stats


@dataclass
class Stats:
    cycles: int = 0
    ops: Counter = field(default_factory=Counter)  # acknowledged, by kind
    in_doubt: Counter = field(default_factory=Counter)  # by kind
    in_doubt_applied: int = 0
    in_doubt_not_applied: int = 0
    objects_checked: int = 0
    acked_objects_checked: int = 0
    uploads_checked: int = 0
    orphan_temp_files: int = 0
    orphan_blob_files: int = 0
    foreign_answers: int = 0
    kills: Counter = field(default_factory=Counter)
    versions_checked: int = 0
    markers_checked: int = 0
    locked_delete_refusals_checked: int = 0

    def summary(self) -> dict:
        return {
            "cycles": self.cycles,
            "acknowledged_ops": sum(self.ops.values()),
            "acknowledged_ops_by_kind": dict(sorted(self.ops.items())),
            "in_doubt_ops": sum(self.in_doubt.values()),
            "in_doubt_by_kind": dict(sorted(self.in_doubt.items())),
            "in_doubt_applied": self.in_doubt_applied,
            "in_doubt_not_applied": self.in_doubt_not_applied,
            "objects_checked": self.objects_checked,
            "acknowledged_objects_checked": self.acked_objects_checked,
            "uploads_checked": self.uploads_checked,
            "orphan_temp_files_removed": self.orphan_temp_files,
            "orphan_blob_files_removed": self.orphan_blob_files,
            "answers_the_server_never_gave": self.foreign_answers,
            "kills_by_trigger": dict(sorted(self.kills.items())),
            "versions_checked": self.versions_checked,
            "delete_markers_checked": self.markers_checked,
            "locked_delete_refusals_checked_after_restart": self.locked_delete_refusals_checked,
        }


# --------------------------------------------------------------------------- workers


class Worker:
    """One thread's keys, its client, and the operations it runs on them."""

    modes = S3_MODES

    def __init__(self, harness: Harness, index: int):
        self.h = harness
        self.index = index
        self.name = f"w{index}"
        self.keys: dict[str, KeyState] = {f"{self.name}/k{i}": KeyState() for i in range(KEYS_PER_WORKER)}
        self.uploads: dict[str, Upload] = {}
        # Keys with a CreateMultipartUpload in doubt: an unknown upload of them may show up.
        self.doubtful_creates: Counter = Counter()
        self.customer_key = hashlib.sha256(f"crash-harness {harness.seed} {index}".encode()).digest()
        self.rng = random.Random()
        self.errors: list[str] = []
        self.history: dict[str, list[str]] = {}
        self.cycle = 0

    # -- plumbing

    def connect(self) -> None:
        """Fresh clients for the (re)started server (made here: botocore sessions are not
        thread-safe to create)."""
        self.reader = self.h.s3_client()

    def run(self, cycle: int, stop: threading.Event) -> None:
        self.cycle = cycle
        self.rng = random.Random(f"{self.h.seed}/{cycle}/{self.index}")
        try:
            while not stop.is_set():
                self.step()
        except InDoubt:
            pass
        except Unexpected as exc:
            self.errors.append(str(exc))
        except Exception as exc:  # a harness bug: report it as such
            self.errors.append(f"{self.name}: harness error {exc!r}")

    def call(self, kind: str, fn, *args, **kwargs):
        """Runs one request; classifies its failure as in doubt or unexpected.

        Once the kill is under way, an answer counts only if the server logged its request id
        (it logs before answering). botocore can report success for a request the dying server
        never answered: after a 0-byte PutObject on a keep-alive connection (answered at once,
        without 100 Continue), a later `Expect: 100-continue` request on it that meets EOF gets
        the stale status "200" and no headers (the server now closes such connections; this check
        stays as the guard). Such answers are in doubt, like a dead connection."""
        self.h.op_started(kind)
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            if self.h.killing.is_set() and not self.h.logged_by_server(error_request_id(exc)):
                self.h.stats_in_doubt(kind)
                raise InDoubt() from exc
            raise Unexpected(f"{self.name} cycle {self.cycle}: {kind} failed: {exc!r}") from exc
        if self.h.killing.is_set() and not self.h.logged_by_server(request_id(result)):
            self.h.stats_in_doubt(kind)
            self.h.stats_foreign(f"{self.name} {kind}: {describe_answer(result)}")
            raise InDoubt() from ForeignAnswer(f"{kind}: answer with request id {request_id(result)!r} "
                                               "that the server never logged")
        return result

    def pick_mode(self) -> Sse:
        mode = self.rng.choice(self.modes)
        return self.h.sse_of(mode, self.customer_key)

    def new_segments(self) -> tuple[Segment, ...]:
        r = self.rng.random()
        if r < 0.05:
            size = 0
        elif r < 0.3:
            size = self.rng.randint(1, 4 * KiB)
        elif r < 0.6:
            size = self.rng.randint(4 * KiB, 256 * KiB)
        elif r < 0.85:
            size = self.rng.randint(256 * KiB, MiB)
        else:
            size = self.rng.randint(MiB, 4 * MiB)
        return ((self.rng.getrandbits(63), size, 0, size),)

    def origin(self, op: str) -> str:
        return f"{op} by {self.name} in cycle {self.cycle}"

    def present_keys(self) -> list[str]:
        return [k for k, s in self.keys.items() if s.known is not None]

    # -- the mix

    def step(self) -> None:
        r = self.rng.random()
        key = self.rng.choice(list(self.keys))
        if r < 0.40:
            self.put(key)
        elif r < 0.55:
            self.multipart(key)
        elif r < 0.75:
            self.copy(key)
        elif r < 0.85:
            self.delete(key)
        else:
            self.read_back()

    def write(self, kind: str, key: str, version: Version | None, fn, *args, **kwargs):
        """A request that turns `key` into `version` (None: deletes it)."""
        state = self.keys[key]
        what = f"{kind} ({'delete' if version is None else f'{version.size} B'})"
        try:
            result = self.call(kind, fn, *args, **kwargs)
        except InDoubt as exc:
            state.in_doubt = DELETED if version is None else version
            self.note(key, f"{what} in doubt: {exc.__cause__!r}")
            raise
        state.known = version
        self.note(key, f"{what} acknowledged, request id {request_id(result)}")
        self.h.stats_acked(kind)
        return result

    def note(self, key: str, event: str) -> None:
        """Per-key history, for the failure messages."""
        self.history.setdefault(key, []).append(f"{time.time():.3f} cycle {self.cycle}: {event}")

    def put(self, key: str) -> None:
        sse = self.pick_mode()
        segments = self.new_segments()
        version = single_version(segments, sse, self.origin("PUT"))
        self.write("put", key, version, self.do_put, key, segments_bytes(segments), version)

    def copy(self, key: str) -> None:
        sources = self.present_keys()
        if not sources:
            return self.put(key)
        src_key = self.rng.choice(sources)
        src = self.keys[src_key].known
        sse = self.pick_mode()
        # A copy onto itself must change something, and with no header it changes nothing
        # when the source is sealed as the server's default would seal it (AES256).
        if src_key == key and sse.mode == "none" and src.sse.mode in ("none", "AES256"):
            sse = self.h.sse_of("AES256", self.customer_key)
        version = Version(src.segments, src.size, src.sha256, src.md5, src.md5, sse, 1, self.origin("COPY"))
        self.write("copy", key, version, self.do_copy, src_key, src, key, version)

    def delete(self, key: str) -> None:
        self.write("delete", key, None, self.do_delete, key)

    def multipart(self, key: str) -> None:
        sse = self.pick_mode()
        upload_id = self.create_upload(key, sse)
        upload = self.uploads[upload_id] = Upload(key, sse)
        for number in range(1, self.rng.randint(1, 3) + 1):
            last = self.rng.random() < 0.4 or number == 3
            size = MIN_PART if not last else self.rng.randint(1, MiB)
            sources = [k for k in self.present_keys() if self.keys[k].known.size >= size]
            if sources and self.rng.random() < 0.3 and self.can_copy_parts():
                src_key = self.rng.choice(sources)
                src = self.keys[src_key].known
                start = self.rng.randint(0, src.size - size)
                segments = slice_segments(src.segments, start, start + size)
                part = Part(segments, size, hashlib.md5(segments_bytes(segments)).hexdigest())
                self.upload_part_copy(upload_id, upload, number, part, src_key, src, start)
            else:
                segments = ((self.rng.getrandbits(63), size, 0, size),)
                data = segments_bytes(segments)
                part = Part(segments, size, hashlib.md5(data).hexdigest())
                self.upload_part(upload_id, upload, number, part, data)
            if last:
                break
        r = self.rng.random()
        if r < 0.8:
            self.complete(upload_id, upload)
        elif r < 0.9:
            self.abort(upload_id, upload)
        # else: left in progress, for the restart to keep

    def completed_version(self, upload: Upload) -> Version:
        parts = [upload.parts[n] for n in sorted(upload.parts)]
        segments = tuple(s for p in parts for s in p.segments)
        data = segments_bytes(segments)
        md5_of_md5s = hashlib.md5(b"".join(bytes.fromhex(p.etag) for p in parts)).hexdigest()
        return Version(segments, len(data), hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest(),
                       f"{md5_of_md5s}-{len(parts)}", upload.sse, len(parts), self.origin("COMPLETE"))

    def create_upload(self, key: str, sse: Sse) -> str:
        try:
            upload_id, _ = self.call("create", self.do_create, key, sse)
        except InDoubt:
            self.doubtful_creates[key] += 1
            raise
        self.h.stats_acked("create")
        return upload_id

    def upload_part(self, upload_id: str, upload: Upload, number: int, part: Part, data: bytes) -> None:
        self.part_request("part", upload, number, part, self.do_upload_part, upload_id, upload, number, data)

    def upload_part_copy(self, upload_id, upload, number, part, src_key, src, start) -> None:
        self.part_request("part-copy", upload, number, part, self.do_upload_part_copy, upload_id, upload,
                          number, src_key, src, start, part.size)

    def part_request(self, kind, upload: Upload, number: int, part: Part, fn, *args) -> None:
        try:
            etag, _ = self.call("part", fn, *args)
        except InDoubt:
            upload.in_doubt_part = (number, part)
            raise
        if etag.strip('"').lower() != part.etag:
            raise Unexpected(f"{self.name}: {kind} {number} of {upload.key}: ETag {etag} != {part.etag}")
        upload.parts[number] = part
        self.h.stats_acked(kind)

    def complete(self, upload_id: str, upload: Upload) -> None:
        version = self.completed_version(upload)
        try:
            self.write("complete", upload.key, version, self.do_complete, upload_id, upload)
        except InDoubt:
            upload.state, upload.completing = "complete", version
            raise
        del self.uploads[upload_id]

    def abort(self, upload_id: str, upload: Upload) -> None:
        try:
            self.call("abort", self.do_abort, upload_id, upload)
        except InDoubt:
            upload.state = "abort"
            raise
        self.h.stats_acked("abort")
        del self.uploads[upload_id]

    def read_back(self) -> None:
        """A GET of one of this worker's keys while the server runs: the acknowledged state."""
        present = self.present_keys()
        if not present:
            return
        key = self.rng.choice(present)
        version = self.keys[key].known
        body, headers = self.call("get", self.h.get_object, self.reader, key, version.sse)
        problem = self.h.mismatch(body, headers, version)
        if problem:
            raise Unexpected(f"{self.name}: live GET of {key}: {problem}")
        self.h.stats_acked("get")

    # -- dialect specifics

    def can_copy_parts(self) -> bool:
        return True

    def do_put(self, key: str, data: bytes, version: Version) -> None:
        raise NotImplementedError

    def do_copy(self, src_key: str, src: Version, key: str, version: Version) -> None:
        raise NotImplementedError

    def do_delete(self, key: str) -> None:
        raise NotImplementedError

    # The do_* methods return the client's response; those that return a value the model
    # needs return (value, response).

    def do_create(self, key: str, sse: Sse) -> tuple[str, object]:
        raise NotImplementedError

    def do_upload_part(self, upload_id, upload, number, data) -> tuple[str, object]:
        raise NotImplementedError

    def do_upload_part_copy(self, upload_id, upload, number, src_key, src, start, size) -> tuple[str, object]:
        raise NotImplementedError

    def do_complete(self, upload_id: str, upload: Upload) -> None:
        raise NotImplementedError

    def do_abort(self, upload_id: str, upload: Upload):
        raise NotImplementedError


class S3Worker(Worker):
    """boto3, S3 dialect: every SSE mode, UploadPartCopy, copies across modes."""

    def connect(self) -> None:
        super().connect()
        self.client = self.h.s3_client()
        self.raw_headers: dict[str, str] = {}

        def add_raw(request, **_):
            for name, value in self.raw_headers.items():
                request.headers[name] = value

        self.client.meta.events.register_first("before-sign.s3", add_raw)

    def call(self, kind, fn, *args, **kwargs):
        try:
            return super().call(kind, fn, *args, **kwargs)
        finally:
            self.raw_headers = {}  # set by write_args for this request only

    def write_args(self, sse: Sse) -> dict:
        """boto3 arguments asking for `sse` on a write; SM4 goes as a raw header."""
        if sse.mode == "AES256":
            return {"ServerSideEncryption": "AES256"}
        if sse.mode == "SM4":
            self.raw_headers = {"x-amz-server-side-encryption": "SM4"}
            return {}
        if sse.mode == "aws:kms":
            kw = {"ServerSideEncryption": "aws:kms"}
            if sse.kms_key:
                kw["SSEKMSKeyId"] = sse.kms_key
            if sse.bucket_key:
                kw["BucketKeyEnabled"] = True
            return kw
        if sse.mode == "SSE-C":
            return customer_args(sse)
        return {}

    def do_put(self, key, data, version):
        return self.client.put_object(Bucket=BUCKET, Key=key, Body=data, **self.write_args(version.sse))

    def do_copy(self, src_key, src, key, version):
        return self.client.copy_object(Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": src_key},
                                **self.write_args(version.sse), **customer_args(src.sse, "CopySource"))

    def do_delete(self, key):
        return self.client.delete_object(Bucket=BUCKET, Key=key)

    def do_create(self, key, sse):
        r = self.client.create_multipart_upload(Bucket=BUCKET, Key=key, **self.write_args(sse))
        return r["UploadId"], r

    def do_upload_part(self, upload_id, upload, number, data):
        r = self.client.upload_part(Bucket=BUCKET, Key=upload.key, UploadId=upload_id, PartNumber=number,
                                    Body=data, **customer_args(upload.sse))
        return r["ETag"], r

    def do_upload_part_copy(self, upload_id, upload, number, src_key, src, start, size):
        r = self.client.upload_part_copy(
            Bucket=BUCKET, Key=upload.key, UploadId=upload_id, PartNumber=number,
            CopySource={"Bucket": BUCKET, "Key": src_key}, CopySourceRange=f"bytes={start}-{start + size - 1}",
            **customer_args(upload.sse), **customer_args(src.sse, "CopySource"))
        return r["CopyPartResult"]["ETag"], r

    def do_complete(self, upload_id, upload):
        return self.client.complete_multipart_upload(
            Bucket=BUCKET, Key=upload.key, UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": f'"{p.etag}"'}
                                       for n, p in sorted(upload.parts.items())]})

    def do_abort(self, upload_id, upload):
        return self.client.abort_multipart_upload(Bucket=BUCKET, Key=upload.key, UploadId=upload_id)


class OssWorker(Worker):
    """oss2, OSS dialect: none/AES256/SM4/KMS, PUT, copy, multipart, delete."""

    modes = OSS_MODES

    def connect(self) -> None:
        super().connect()
        self.bucket = oss2_bucket(self.h.server, BUCKET, "v4")

    def pick_mode(self) -> Sse:
        mode = self.rng.choice(self.modes)
        return self.h.sse_of("aws:kms" if mode == "KMS" else mode, None)

    @staticmethod
    def headers(sse: Sse) -> dict[str, str]:
        if sse.mode == "none":
            return {}
        return {"x-oss-server-side-encryption": "KMS" if sse.mode == "aws:kms" else sse.mode}

    def can_copy_parts(self) -> bool:
        return False

    def do_put(self, key, data, version):
        return self.bucket.put_object(key, data, headers=self.headers(version.sse))

    def do_copy(self, src_key, src, key, version):
        return self.bucket.copy_object(BUCKET, src_key, key, headers=self.headers(version.sse))

    def do_delete(self, key):
        return self.bucket.delete_object(key)

    def do_create(self, key, sse):
        r = self.bucket.init_multipart_upload(key, headers=self.headers(sse))
        return r.upload_id, r

    def do_upload_part(self, upload_id, upload, number, data):
        r = self.bucket.upload_part(upload.key, upload_id, number, data)
        return r.etag, r

    def do_complete(self, upload_id, upload):
        return self.bucket.complete_multipart_upload(
            upload.key, upload_id, [PartInfo(n, p.etag) for n, p in sorted(upload.parts.items())])

    def do_abort(self, upload_id, upload):
        return self.bucket.abort_multipart_upload(upload.key, upload_id)


VERSIONED_BUCKET = "crash-versioned"
LOCKED_BUCKET = "crash-locked"
VERSION_KEYS = 4
LOCK_KINDS = ["GOVERNANCE", "COMPLIANCE", "hold"]
# Bounds on what a versioned worker keeps, so that a long run's checks stay fast.
MAX_UNLOCKED_VERSIONS = 60
MAX_LOCKED_VERSIONS = 40


@dataclass
class VersionEntry:
    """One version the model knows: an object (its bytes' SHA-256) or a delete marker."""

    key: str
    marker: bool
    sha256: str | None = None
    lock: str | None = None  # None, or one of LOCK_KINDS
    origin: str = ""


class VersionWorker(Worker):
    """boto3 against a bucket with versioning enabled, or with object lock: PUTs add versions,
    deletes add markers, deletes by version id remove exactly that version. In the object-lock
    bucket some PUTs carry a retention (GOVERNANCE, COMPLIANCE) or a legal hold, and deletes of
    those versions by id are tried and must be refused (403 AccessDenied), before and after
    every kill. The model is every version by id; after each restart `verify` checks it against
    ListObjectVersions and GET by version id."""

    def __init__(self, harness: Harness, index: int, bucket: str):
        super().__init__(harness, index)
        self.keys = {}  # the plain bucket's model stays empty for this worker
        self.bucket = bucket
        self.locking = bucket == LOCKED_BUCKET
        self.name = f"{'l' if self.locking else 'v'}{index}"
        self.vkeys = [f"{self.name}/k{i}" for i in range(VERSION_KEYS)]
        self.versions: dict[str, VersionEntry] = {}
        self.removed: set[str] = set()
        # Operations in doubt: PUTs (key, sha256, lock), markers by key, removals by version id.
        self.doubt_puts: list[tuple[str, str, str | None]] = []
        self.doubt_markers: Counter = Counter()
        self.doubt_removals: set[str] = set()

    def connect(self) -> None:
        super().connect()
        # Locked PUTs need a body checksum (S3's rule): botocore's default CRC32.
        self.client = self.h.s3_client(checksum="when_supported")

    def unlocked(self) -> list[str]:
        return [vid for vid, e in self.versions.items() if e.lock is None and vid not in self.doubt_removals]

    def locked(self) -> list[str]:
        return [vid for vid, e in self.versions.items() if e.lock is not None]

    def step(self) -> None:
        r = self.rng.random()
        key = self.rng.choice(self.vkeys)
        if len(self.unlocked()) > MAX_UNLOCKED_VERSIONS and r < 0.6:
            return self.remove_version()
        if r < 0.40:
            self.vput(key)
        elif r < 0.55:
            self.add_marker(key)
        elif r < 0.75:
            self.remove_version()
        elif r < 0.85 and self.locking:
            self.try_locked_delete()
        else:
            self.read_version()

    def vput(self, key: str) -> None:
        size = self.rng.choice([0, self.rng.randint(1, 4 * KiB), self.rng.randint(4 * KiB, 64 * KiB)])
        data = random.Random(self.rng.getrandbits(63)).randbytes(size)
        sha = hashlib.sha256(data).hexdigest()
        lock = None
        if self.locking and len(self.locked()) < MAX_LOCKED_VERSIONS and self.rng.random() < 0.5:
            lock = self.rng.choice(LOCK_KINDS)
        kwargs = {}
        if lock == "hold":
            kwargs["ObjectLockLegalHoldStatus"] = "ON"
        elif lock is not None:
            kwargs["ObjectLockMode"] = lock
            kwargs["ObjectLockRetainUntilDate"] = datetime.datetime.now(datetime.timezone.utc) + \
                datetime.timedelta(days=1)
        kind = "locked-put" if lock else "vput"
        try:
            r = self.call(kind, self.client.put_object, Bucket=self.bucket, Key=key, Body=data, **kwargs)
        except InDoubt:
            self.doubt_puts.append((key, sha, lock))
            raise
        self.versions[r["VersionId"]] = VersionEntry(key, False, sha, lock, self.origin(kind))
        self.h.stats_acked(kind)

    def add_marker(self, key: str) -> None:
        try:
            r = self.call("marker", self.client.delete_object, Bucket=self.bucket, Key=key)
        except InDoubt:
            self.doubt_markers[key] += 1
            raise
        if r.get("DeleteMarker") is not True or not r.get("VersionId"):
            raise Unexpected(f"{self.name}: delete of {key} in a versioned bucket added no marker: {r}")
        self.versions[r["VersionId"]] = VersionEntry(key, True, origin=self.origin("marker"))
        self.h.stats_acked("marker")

    def remove_version(self) -> None:
        candidates = self.unlocked()
        if not candidates:
            return
        vid = self.rng.choice(candidates)
        entry = self.versions[vid]
        try:
            self.call("vdelete", self.client.delete_object, Bucket=self.bucket, Key=entry.key, VersionId=vid)
        except InDoubt:
            self.doubt_removals.add(vid)
            raise
        del self.versions[vid]
        self.removed.add(vid)
        self.h.stats_acked("vdelete")

    def try_locked_delete(self) -> None:
        candidates = self.locked()
        if not candidates:
            return
        vid = self.rng.choice(candidates)
        self.call("locked-delete", self.refused_delete, self.client, vid)
        self.h.stats_acked("locked-delete")

    def refused_delete(self, client, vid: str) -> dict:
        """A delete by id of a locked version: it must be refused with 403 AccessDenied."""
        entry = self.versions[vid]
        try:
            r = client.delete_object(Bucket=self.bucket, Key=entry.key, VersionId=vid)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "AccessDenied":
                raise
            return {"ResponseMetadata": exc.response.get("ResponseMetadata", {})}
        raise Unexpected(f"{self.name}: {entry.lock} version {vid} of {entry.key} ({entry.origin}) was "
                         f"deleted: {describe_answer(r)}")

    def read_version(self) -> None:
        objects = [vid for vid, e in self.versions.items() if not e.marker and vid not in self.doubt_removals]
        if not objects:
            return
        vid = self.rng.choice(objects)
        entry = self.versions[vid]
        body, _ = self.call("get", self.get_version, self.reader, entry.key, vid)
        if hashlib.sha256(body).hexdigest() != entry.sha256:
            raise Unexpected(f"{self.name}: live GET of {entry.key} version {vid} ({entry.origin}): wrong bytes")
        self.h.stats_acked("get")

    def get_version(self, client, key: str, vid: str):
        r = client.get_object(Bucket=self.bucket, Key=key, VersionId=vid)
        return r["Body"].read(), r

    # -- after a restart

    def verify(self, client) -> tuple[list[str], int]:
        """Checks the bucket against the model and settles the model on it; returns the
        problems and how many blob files the bucket's versions reference."""
        problems: list[str] = []
        listed: dict[str, tuple[str, bool, bool]] = {}  # version id -> (key, marker, latest)
        for page in client.get_paginator("list_object_versions").paginate(Bucket=self.bucket,
                                                                          Prefix=f"{self.name}/"):
            for v in page.get("Versions", []):
                listed[v["VersionId"]] = (v["Key"], False, v["IsLatest"])
            for m in page.get("DeleteMarkers", []):
                listed[m["VersionId"]] = (m["Key"], True, m["IsLatest"])
        # Every acknowledged version is there, whole; every acknowledged removal stays removed.
        for vid, entry in list(self.versions.items()):
            if vid not in listed:
                if vid in self.doubt_removals:
                    del self.versions[vid]
                    self.removed.add(vid)
                    self.h.stats_resolved(True)
                    continue
                problems.append(f"{self.bucket}/{entry.key}: acknowledged version {vid} ({entry.origin}"
                                f"{', ' + entry.lock if entry.lock else ''}) lost")
                continue
            if vid in self.doubt_removals:
                self.h.stats_resolved(False)
            if listed[vid][:2] != (entry.key, entry.marker):
                problems.append(f"{self.bucket}: version {vid} listed as {listed[vid]}, expected {entry}")
        for vid in self.removed & set(listed):
            problems.append(f"{self.bucket}/{listed[vid][0]}: removed version {vid} is listed again")
        # Versions nobody acknowledged: each must be the whole outcome of an operation in doubt.
        for vid, (key, marker, _) in listed.items():
            if vid in self.versions or vid in self.removed:
                continue
            if marker:
                if self.doubt_markers[key] > 0:
                    self.doubt_markers[key] -= 1
                    self.versions[vid] = VersionEntry(key, True, origin="marker in doubt")
                    self.h.stats_resolved(True)
                else:
                    problems.append(f"{self.bucket}/{key}: unknown delete marker {vid}")
                continue
            try:
                body, _ = self.get_version(client, key, vid)
            except Exception as exc:  # noqa: BLE001 - reported
                problems.append(f"{self.bucket}/{key}: listed version {vid} cannot be read: {exc!r}")
                continue
            sha = hashlib.sha256(body).hexdigest()
            match = next((d for d in self.doubt_puts if d[0] == key and d[1] == sha), None)
            if match is None:
                problems.append(f"{self.bucket}/{key}: version {vid} matches no PUT ({len(body)} bytes)")
                continue
            self.doubt_puts.remove(match)
            self.versions[vid] = VersionEntry(key, False, sha, match[2], "PUT in doubt")
            self.h.stats_resolved(True)
        self.h.stats_resolved(False, len(self.doubt_puts) + sum(self.doubt_markers.values()))
        # Bytes by version id; markers answer as markers (whole records, never half-written).
        for vid, entry in self.versions.items():
            if entry.marker:
                try:
                    client.head_object(Bucket=self.bucket, Key=entry.key, VersionId=vid)
                    problems.append(f"{self.bucket}/{entry.key}: delete marker {vid} answers HEAD with 200")
                except ClientError as exc:
                    status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
                    headers = exc.response["ResponseMetadata"].get("HTTPHeaders", {})
                    if status != 405 or headers.get("x-amz-delete-marker") != "true":
                        problems.append(f"{self.bucket}/{entry.key}: delete marker {vid}: HEAD answers {status}")
                self.h.stats_versions(markers=1)
                continue
            try:
                body, _ = self.get_version(client, entry.key, vid)
            except Exception as exc:  # noqa: BLE001 - reported
                problems.append(f"{self.bucket}/{entry.key}: version {vid} ({entry.origin}): GET failed: {exc!r}")
                continue
            if hashlib.sha256(body).hexdigest() != entry.sha256:
                problems.append(f"{self.bucket}/{entry.key}: version {vid} ({entry.origin}): wrong bytes")
            self.h.stats_versions(objects=1)
        # The current object of each key is its newest version (404 under a marker).
        for key in self.vkeys:
            latest = [vid for vid, (k, _, is_latest) in listed.items() if k == key and is_latest]
            if len(latest) > 1:
                problems.append(f"{self.bucket}/{key}: {len(latest)} versions listed as latest")
                continue
            entry = self.versions.get(latest[0]) if latest else None
            try:
                body, _ = self.get_current(client, key)
                if entry is None or entry.marker or hashlib.sha256(body).hexdigest() != entry.sha256:
                    problems.append(f"{self.bucket}/{key}: current object is not its newest version")
            except ClientError as exc:
                if exc.response["ResponseMetadata"]["HTTPStatusCode"] != 404 or (entry and not entry.marker):
                    problems.append(f"{self.bucket}/{key}: GET answers {exc.response.get('Error')}")
        # No locked version can be removed, after the restart as before it.
        locked = self.locked()
        for vid in self.rng.sample(locked, min(3, len(locked))):
            try:
                self.refused_delete(client, vid)
                self.h.stats_versions(refusals=1)
            except Exception as exc:  # noqa: BLE001 - reported
                problems.append(f"{self.bucket}: locked version {vid}: {exc}")
        self.doubt_puts.clear()
        self.doubt_markers.clear()
        self.doubt_removals.clear()
        blobs = sum(1 for _, marker, _ in listed.values() if not marker)
        return problems, blobs

    def get_current(self, client, key: str):
        r = client.get_object(Bucket=self.bucket, Key=key)
        return r["Body"].read(), r


def request_id(result) -> str | None:
    """The request id of a boto3 or oss2 response, a (value, response) pair, or a
    (body, lower-cased headers) pair."""
    if isinstance(result, tuple):
        result = result[1]
    if isinstance(result, dict):
        if "ResponseMetadata" in result:
            return result["ResponseMetadata"].get("RequestId")
        return result.get("x-amz-request-id")
    return getattr(result, "request_id", None)


def describe_answer(result) -> str:
    if isinstance(result, tuple):
        result = result[1]
    if isinstance(result, dict):
        meta = result.get("ResponseMetadata", {})
        return f"HTTP {meta.get('HTTPStatusCode')} headers {meta.get('HTTPHeaders', result)}"
    return f"HTTP {getattr(result, 'status', '?')} headers {dict(getattr(result, 'headers', {}) or {})}"


def error_request_id(exc: Exception) -> str | None:
    """The request id of an error answer; None when the connection failed."""
    if isinstance(exc, ClientError):
        return exc.response.get("ResponseMetadata", {}).get("RequestId")
    if isinstance(exc, oss2.exceptions.OssError) and not isinstance(exc, oss2.exceptions.RequestError):
        return exc.request_id or None
    return None


def customer_args(sse: Sse, prefix: str = "") -> dict:
    if sse.mode != "SSE-C":
        return {}
    return {f"{prefix}SSECustomerAlgorithm": "AES256", f"{prefix}SSECustomerKey": sse.customer_key}


# --------------------------------------------------------------------------- the harness


class Harness:
    def __init__(self, server: CofferServer, *, seed: int, workers: int = 4, oss_workers: int = 1,
                 versioned_workers: int = 1, locked_workers: int = 1,
                 min_run_s: float = 0.3, max_run_s: float = 2.5, log=print):
        self.server = server
        self.seed = seed
        self.rng = random.Random(seed)
        self.min_run_s, self.max_run_s = min_run_s, max_run_s
        self.log = log
        self.stats = Stats()
        self.lock = threading.Lock()
        self.killing = threading.Event()
        self.kill_on: str | None = None
        self.kill_now = threading.Event()
        self.default_kms_key: str | None = None
        self.named_kms_key: str | None = None
        self.workers: list[Worker] = [S3Worker(self, i) for i in range(workers)]
        self.workers += [OssWorker(self, workers + i) for i in range(oss_workers)]
        first = len(self.workers)
        self.version_workers: list[VersionWorker] = [
            VersionWorker(self, first + i, VERSIONED_BUCKET) for i in range(versioned_workers)]
        self.version_workers += [VersionWorker(self, first + versioned_workers + i, LOCKED_BUCKET)
                                 for i in range(locked_workers)]
        self.workers += self.version_workers

    # -- clients

    def s3_client(self, read_timeout: float = 60, checksum: str = "when_required"):
        cfg = Config(region_name=REGION, signature_version="s3v4", s3={"addressing_style": "path"},
                     retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                     read_timeout=read_timeout, request_checksum_calculation=checksum)
        session = boto3.session.Session(aws_access_key_id=self.server.access_key,
                                        aws_secret_access_key=self.server.secret_key, region_name=REGION)
        return session.client("s3", endpoint_url=self.server.endpoint, config=cfg)

    def sse_of(self, mode: str, customer_key: bytes | None) -> Sse:
        if mode == "aws:kms-named":
            return Sse("aws:kms", kms_key=self.named_kms_key)
        if mode == "aws:kms-bucket-key":
            return Sse("aws:kms", bucket_key=True)
        if mode == "SSE-C":
            return Sse("SSE-C", customer_key=customer_key)
        return Sse(mode)

    # -- bookkeeping from the workers

    def op_started(self, kind: str) -> None:
        if self.kill_on == kind:
            self.kill_now.set()

    def stats_acked(self, kind: str) -> None:
        with self.lock:
            self.stats.ops[kind] += 1

    def stats_in_doubt(self, kind: str) -> None:
        with self.lock:
            self.stats.in_doubt[kind] += 1

    def stats_foreign(self, what: str) -> None:
        with self.lock:
            self.stats.foreign_answers += 1
        self.log(f"answer the killed server never gave (client reported it): {what}")

    def stats_resolved(self, applied: bool, n: int = 1) -> None:
        """An operation in doubt turned out applied (or not) after the restart."""
        with self.lock:
            if applied:
                self.stats.in_doubt_applied += n
            else:
                self.stats.in_doubt_not_applied += n

    def stats_versions(self, objects: int = 0, markers: int = 0, refusals: int = 0) -> None:
        with self.lock:
            self.stats.versions_checked += objects
            self.stats.markers_checked += markers
            self.stats.locked_delete_refusals_checked += refusals

    def logged_by_server(self, rid: str | None) -> bool:
        """Whether the current server run logged this request id (it logs before answering)."""
        return bool(rid) and f'request_id="{rid}"' in self.server.log_path.read_text(errors="replace")

    # -- reading and comparing

    def get_object(self, client, key: str, sse: Sse) -> tuple[bytes, dict[str, str]]:
        r = client.get_object(Bucket=BUCKET, Key=key, **customer_args(sse))
        body = r["Body"].read()
        return body, {k.lower(): v for k, v in r["ResponseMetadata"]["HTTPHeaders"].items()}

    def mismatch(self, body: bytes, headers: dict[str, str], v: Version) -> str | None:
        """Why this GET answer is not version `v` (None if it is)."""
        if len(body) != v.size or hashlib.sha256(body).hexdigest() != v.sha256:
            return (f"{len(body)} bytes, sha256 {hashlib.sha256(body).hexdigest()[:16]}, expected {v.size} bytes "
                    f"sha256 {v.sha256[:16]} ({v.origin})")
        etag = headers.get("etag", "").strip('"')
        if etag != v.etag:
            return f"ETag {etag!r}, expected {v.etag!r} ({v.origin})"
        return self.sse_mismatch(headers, v.sse)

    def sse_mismatch(self, h: dict[str, str], sse: Sse) -> str | None:
        seen = {k: v for k, v in h.items() if "server-side" in k}
        amz = h.get("x-amz-server-side-encryption")
        alg = h.get("x-amz-server-side-encryption-customer-algorithm")
        md5 = h.get("x-amz-server-side-encryption-customer-key-md5")
        key_id = h.get("x-amz-server-side-encryption-aws-kms-key-id")
        bucket_key = h.get("x-amz-server-side-encryption-bucket-key-enabled") == "true"
        if sse.mode == "none":
            # No header and no bucket rule: the server's default, AES256.
            ok = amz == "AES256" and alg is None and key_id is None
        elif sse.mode in ("AES256", "SM4"):
            ok = amz == sse.mode and alg is None and key_id is None
        elif sse.mode == "SSE-C":
            expected_md5 = base64.b64encode(hashlib.md5(sse.customer_key).digest()).decode()
            ok = amz is None and alg == "AES256" and md5 == expected_md5
        else:
            expected = sse.kms_key
            if expected is None:
                with self.lock:
                    if self.default_kms_key is None and key_id:
                        self.default_kms_key = key_id
                    expected = self.default_kms_key
            ok = (amz == "aws:kms" and key_id is not None and key_same(key_id, expected)
                  and bucket_key == sse.bucket_key)
        return None if ok else f"SSE headers {seen} do not say {sse.mode} {sse.kms_key or ''}"

    # -- one cycle

    def setup(self) -> None:
        self.server.start()
        self.s3_client().create_bucket(Bucket=BUCKET)
        if any(not w.locking for w in self.version_workers):
            self.s3_client().create_bucket(Bucket=VERSIONED_BUCKET)
            self.s3_client().put_bucket_versioning(Bucket=VERSIONED_BUCKET,
                                                   VersioningConfiguration={"Status": "Enabled"})
        if any(w.locking for w in self.version_workers):
            self.s3_client().create_bucket(Bucket=LOCKED_BUCKET, ObjectLockEnabledForBucket=True)
        session = boto3.session.Session(aws_access_key_id=self.server.access_key,
                                        aws_secret_access_key=self.server.secret_key, region_name=REGION)
        kms = session.client("kms", endpoint_url=self.server.endpoint,
                             config=Config(retries={"max_attempts": 1}))
        self.named_kms_key = kms.create_key(Description="crash harness")["KeyMetadata"]["KeyId"]

    def run(self, cycles: int) -> Stats:
        self.setup()
        for cycle in range(cycles):
            self.cycle(cycle)
        rc = self.server.stop()
        assert rc in (0, -15), f"server exited with {rc} on SIGTERM after {cycles} crash cycles"
        return self.stats

    def cycle(self, cycle: int) -> None:
        if not self.server.running():
            self.server.start()
        for w in self.workers:
            w.connect()
        self.killing.clear()
        self.kill_now.clear()
        trigger = self.rng.choice(["delay", "delay", *KILL_ON_OPS])
        self.kill_on = None
        stop = threading.Event()
        threads = [threading.Thread(target=w.run, args=(cycle, stop), daemon=True, name=w.name)
                   for w in self.workers]
        started = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(self.min_run_s)
        if trigger == "delay":
            time.sleep(self.rng.uniform(0, self.max_run_s - self.min_run_s))
        else:
            self.kill_on = trigger
            if not self.kill_now.wait(self.max_run_s - self.min_run_s):
                trigger = "delay (no op of that kind started)"
            else:
                # Requests take from under a millisecond (metadata only) to ~100 ms (4 MiB):
                # spread the kill over that range to land before, during and after commits.
                time.sleep(self.rng.choice([0.0, self.rng.uniform(0, 0.005), self.rng.uniform(0, 0.05)]))
        self.killing.set()
        killed_at = time.time()
        self.server.kill()
        ran = time.monotonic() - started
        stop.set()
        for t in threads:
            t.join(timeout=120)
        hung = [t.name for t in threads if t.is_alive()]
        assert not hung, f"cycle {cycle}: workers {hung} hung after the server was killed"
        errors = [e for w in self.workers for e in w.errors]
        for w in self.workers:
            w.errors = []
        assert not errors, f"cycle {cycle} (seed {self.seed}): requests failed before the kill: {errors[:5]}"
        self.stats.kills[trigger.split(" ")[0]] += 1

        tmp_before = files_under(self.server.data_dir / "tmp")
        blobs_before = files_under(self.server.data_dir / "blobs")
        self.server.start()
        removed = orphans_removed(self.server.log_path.read_text(errors="replace"))
        problems = self.verify(cycle, blobs_before, removed)
        left_tmp = files_under(self.server.data_dir / "tmp")
        if left_tmp:
            problems.append(f"{len(left_tmp)} files left in tmp/ after restart: {left_tmp[:3]}")
        if removed[0] != len(tmp_before):
            problems.append(f"the server reports {removed[0]} temp files removed; {len(tmp_before)} were there")
        self.stats.orphan_temp_files += removed[0]
        self.stats.orphan_blob_files += removed[1]
        self.stats.cycles += 1
        assert not problems, (f"crash cycle {cycle} (seed {self.seed}, kill {trigger} after {ran:.2f}s, "
                              f"at {killed_at:.3f}): "
                              f"{len(problems)} problems:\n  " + "\n  ".join(problems[:20]))
        self.log(f"cycle {cycle}: killed ({trigger}) after {ran:.2f}s; "
                 f"{sum(self.stats.ops.values())} ops acked so far, {sum(self.stats.in_doubt.values())} in doubt; "
                 f"orphans removed: {removed[0]} temp, {removed[1]} blob files")

    # -- verification after restart

    def verify(self, cycle: int, blobs_before: list[str], removed: tuple[int, int]) -> list[str]:
        problems: list[str] = []
        client = self.s3_client()
        blob_files = len(files_under(self.server.data_dir / "blobs"))
        if len(blobs_before) - removed[1] != blob_files:
            problems.append(f"{len(blobs_before)} blob files before restart, {removed[1]} reported removed, "
                            f"{blob_files} now")
        # Small blobs live in meta.redb, not in blobs/: the store reports how many it kept.
        inline = inline_blobs_kept(self.server.log_path.read_text(errors="replace"))
        listed: dict[str, tuple[int, str]] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for o in page.get("Contents", []):
                listed[o["Key"]] = (o["Size"], o["ETag"].strip('"'))

        states = {k: s for w in self.workers for k, s in w.keys.items()}
        histories = {k: h for w in self.workers for k, h in w.history.items()}
        for key in sorted(set(listed) - set(states)):
            problems.append(f"{key}: listed but never written")

        def check(key: str) -> tuple[str, Version | None, str | None]:
            state = states[key]
            candidates = state.candidates()
            present = [v for v in candidates if v is not None]
            if key not in listed:
                if None not in candidates:
                    return key, None, (f"{key}: acknowledged {present[0].origin} lost (not listed); "
                                       f"history: {histories.get(key, [])[-6:]}")
                try:
                    client.head_object(Bucket=BUCKET, Key=key, **customer_args(present[0].sse) if present else {})
                    return key, None, f"{key}: not listed, but HEAD finds it"
                except ClientError as exc:
                    if exc.response["ResponseMetadata"]["HTTPStatusCode"] != 404:
                        return key, None, f"{key}: not listed, HEAD answers {exc.response['Error']}"
                return key, None, None
            if not present:
                return key, None, f"{key}: listed, but it must be absent (deleted)"
            errors = []
            for v in present:
                try:
                    body, headers = self.get_object(client, key, v.sse)
                except ClientError as exc:
                    errors.append(f"GET as {v.sse.mode}: {exc.response['Error']}")
                    continue
                except Exception as exc:  # e.g. the body broke off: an integrity failure mid-stream
                    errors.append(f"GET as {v.sse.mode}: {exc!r}")
                    continue
                problem = self.mismatch(body, headers, v)
                if problem is None:
                    size, etag = listed[key]
                    if size != v.size or etag != v.etag:
                        return key, v, f"{key}: listed as {size} bytes ETag {etag}, GET gives {v.size} / {v.etag}"
                    return key, v, None
                errors.append(problem)
            return key, None, (f"{key}: matches no allowed version "
                               f"({[v.origin if v else 'absent' for v in candidates]}): {errors}; "
                               f"history: {histories.get(key, [])[-6:]}")

        resolved: dict[str, Version | None] = {}
        with ThreadPoolExecutor(4) as pool:
            for key, version, problem in pool.map(check, sorted(states)):
                if problem:
                    problems.append(problem)
                resolved[key] = version
        if problems:
            return problems

        # Multipart uploads: acknowledged ones listed with their parts; in-doubt ones either way.
        listed_uploads: dict[str, str] = {}
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=BUCKET):
            for u in page.get("Uploads", []):
                listed_uploads[u["UploadId"]] = u["Key"]
        referenced_blobs = sum(v.blobs for v in resolved.values() if v is not None)
        for w in self.version_workers:
            found, blobs = w.verify(client)
            problems += found
            referenced_blobs += blobs
        for w in self.workers:
            for upload_id, upload in w.uploads.items():
                listed_now = upload_id in listed_uploads
                if upload.state == "open" and not listed_now:
                    problems.append(f"{upload.key}: acknowledged upload {upload_id} lost")
                if upload.state == "complete":
                    applied = resolved[upload.key] == upload.completing
                    if applied == listed_now:
                        problems.append(f"{upload.key}: upload {upload_id} {'still' if listed_now else 'not'} "
                                        f"listed, but the object {'is' if applied else 'is not'} its Complete")
                if not listed_now:
                    continue
                parts = list_parts(client, upload.key, upload_id)
                referenced_blobs += len(parts)
                expected = {n: p.etag for n, p in upload.parts.items()}
                if upload.in_doubt_part:
                    n, part = upload.in_doubt_part
                    if parts.get(n) == part.etag:
                        expected[n] = part.etag
                if parts != expected:
                    problems.append(f"{upload.key}: upload {upload_id} has parts {parts}, expected {expected}")
                self.stats.uploads_checked += 1
            for upload_id, key in listed_uploads.items():
                if key.startswith(f"{w.name}/") and upload_id not in w.uploads:
                    if w.doubtful_creates[key] == 0:
                        problems.append(f"{key}: unknown upload {upload_id} listed")
                    referenced_blobs += len(list_parts(client, key, upload_id))
        if referenced_blobs != blob_files + inline:
            problems.append(f"{blob_files} blob files on disk and {inline} inline blobs, but the visible "
                            f"objects and uploads reference {referenced_blobs}: orphans survived the "
                            f"restart or blobs are missing")
        if problems:
            return problems

        # The checks passed: settle the model on what the server holds, and start clean.
        for w in self.workers:
            for key, state in w.keys.items():
                self.stats.objects_checked += 1
                if state.in_doubt is None:
                    self.stats.acked_objects_checked += state.known is not None
                elif resolved[key] == state.known and state.in_doubt != state.known:
                    self.stats.in_doubt_not_applied += 1
                else:
                    self.stats.in_doubt_applied += 1
                state.known, state.in_doubt = resolved[key], None
            w.uploads.clear()
            w.doubtful_creates.clear()
            w.history = {k: h[-6:] for k, h in w.history.items()}
        for upload_id, key in listed_uploads.items():
            client.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id)
        return problems


def key_same(got: str, expected: str | None) -> bool:
    if expected is None:
        return True
    return got == expected or got.endswith(f"/{expected}") or expected.endswith(f"/{got}")


def list_parts(client, key: str, upload_id: str) -> dict[int, str]:
    out = {}
    for page in client.get_paginator("list_parts").paginate(Bucket=BUCKET, Key=key, UploadId=upload_id):
        for p in page.get("Parts", []):
            out[p["PartNumber"]] = p["ETag"].strip('"')
    return out


def files_under(path: Path) -> list[str]:
    if not path.exists():
        return []
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def inline_blobs_kept(log_text: str) -> int:
    """Referenced blobs the store keeps in its database (small ones), from its start-up log."""
    m = INLINE_LOG.search(log_text)
    return int(m.group(1)) if m else 0


def orphans_removed(log_text: str) -> tuple[int, int]:
    """(temp files, blob files) the store's start-up orphan collection reported removing."""
    m = ORPHAN_LOG.search(log_text)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


# --------------------------------------------------------------------------- by hand


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cycles", type=int, default=100)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--data-dir", type=Path, default=None, help="a new or empty directory (default: a temp dir)")
    p.add_argument("--workers", type=int, default=4, help="boto3 workers (plus one oss2 worker)")
    p.add_argument("--max-run", type=float, default=2.5, help="longest run before the kill, seconds")
    p.add_argument("--versioned-workers", type=int, default=1, help="workers on a versioned bucket")
    p.add_argument("--locked-workers", type=int, default=1, help="workers on an object-lock bucket")
    args = p.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    base = args.data_dir or Path(tempfile.mkdtemp(prefix="coffer-crash-"))
    data_dir = base / "data"
    if data_dir.exists() and any(data_dir.iterdir()):
        p.error(f"{data_dir} is not empty")
    log_dir = base / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    server = CofferServer(data_dir, log_dir, random_access_key(), random_secret_key(),
                          ["--allow-insecure-sse-c"])
    print(f"crash harness: seed {seed}, {args.cycles} cycles, data in {data_dir}", flush=True)
    started = time.monotonic()
    harness = Harness(server, seed=seed, workers=args.workers, max_run_s=args.max_run,
                      versioned_workers=args.versioned_workers, locked_workers=args.locked_workers,
                      log=lambda m: print(m, flush=True))

    def interrupted(*_):
        raise KeyboardInterrupt  # print the figures so far (finally, below)

    signal.signal(signal.SIGTERM, interrupted)
    try:
        harness.run(args.cycles)
    finally:
        server.kill()
        summary = harness.stats.summary()
        summary["seed"] = seed
        summary["seconds"] = round(time.monotonic() - started, 1)
        print(json.dumps(summary, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
