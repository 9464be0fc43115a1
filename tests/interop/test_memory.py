"""What the server holds in memory: a 1 GiB object streams through it without being held, and
the metadata cache (small objects' bodies included) stays within its size, which by default is
a share of the memory the host or the server's cgroup allows."""

import hashlib
import os
import re
import time
from pathlib import Path

import pytest

from support import DeterministicStream, unique_bucket_name

GiB, MiB = 1024 ** 3, 1024 ** 2
SIZE = 1 * GiB
PEAK_RSS_LIMIT = 200 * MiB


def vm_hwm_bytes(pid: int) -> int:
    """Peak resident set size of pid, from /proc/PID/status (VmHWM, in kB)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def test_1gib_put_get_streams(make_server):
    srv = make_server()
    client = srv.client(checksum="when_required", read_timeout=600)
    bucket = unique_bucket_name("mem")
    client.create_bucket(Bucket=bucket)
    baseline = vm_hwm_bytes(srv.pid)

    expected = hashlib.sha256()
    stream = DeterministicStream(SIZE, seed=1234)
    for block in iter(lambda: stream.read(8 * MiB), b""):
        expected.update(block)
    stream.seek(0)

    client.put_object(Bucket=bucket, Key="one-gib.bin", Body=stream)
    after_put = vm_hwm_bytes(srv.pid)

    head = client.head_object(Bucket=bucket, Key="one-gib.bin")
    assert head["ContentLength"] == SIZE

    got = hashlib.sha256()
    received = 0
    body = client.get_object(Bucket=bucket, Key="one-gib.bin")["Body"]
    for chunk in body.iter_chunks(chunk_size=1 * MiB):
        got.update(chunk)
        received += len(chunk)
    after_get = vm_hwm_bytes(srv.pid)

    print(f"\ncoffer peak RSS (VmHWM): start {baseline / MiB:.1f} MiB, after 1 GiB PUT "
          f"{after_put / MiB:.1f} MiB, after 1 GiB GET {after_get / MiB:.1f} MiB "
          f"(limit {PEAK_RSS_LIMIT / MiB:.0f} MiB)")
    assert received == SIZE, f"GET returned {received} bytes, expected {SIZE}"
    assert got.hexdigest() == expected.hexdigest(), "1 GiB object came back different"
    assert after_get < PEAK_RSS_LIMIT, (
        f"server peak RSS {after_get / MiB:.1f} MiB exceeds {PEAK_RSS_LIMIT / MiB:.0f} MiB: "
        "the body is being buffered instead of streamed"
    )


def test_metadata_cache_bounds_what_small_objects_hold(make_server):
    """Small objects live in meta.redb; --metadata-cache bounds the pages of it kept in memory.
    120 MiB of them written with an 8 MiB cache leave the server's peak RSS well short of
    120 MiB above where it started (the default cache, 1 GiB, would keep them all)."""
    from concurrent.futures import ThreadPoolExecutor

    srv = make_server(extra_args=["--metadata-cache", "8"])
    client = srv.client(max_pool_connections=16)
    bucket = unique_bucket_name("cache")
    client.create_bucket(Bucket=bucket)
    baseline = vm_hwm_bytes(srv.pid)
    body = bytes(range(256)) * (48 * 1024 // 256)  # inline: at most 64 KiB sealed
    count = 120 * MiB // len(body)

    def put(i: int) -> None:
        client.put_object(Bucket=bucket, Key=f"small/{i:05}", Body=body)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))
    grown = vm_hwm_bytes(srv.pid) - baseline
    print(f"\n{count} objects of {len(body) // 1024} KiB: peak RSS grew {grown / MiB:.1f} MiB")
    assert client.get_object(Bucket=bucket, Key="small/00007")["Body"].read() == body
    assert grown < 80 * MiB, (
        f"peak RSS grew {grown / MiB:.1f} MiB for {count * len(body) / MiB:.0f} MiB of small "
        "objects with --metadata-cache 8: the cache is not bounded by the setting"
    )


def metadata_cache_line(srv) -> str:
    lines = [l for l in srv.log_text().splitlines() if "metadata cache:" in l]
    assert len(lines) == 1, f"one 'metadata cache' line expected in:\n{srv.log_text()}"
    return lines[0]


def test_metadata_cache_defaults_to_a_share_of_the_hosts_memory(make_server):
    srv = make_server()
    line = metadata_cache_line(srv)
    m = re.search(r"metadata cache: (\d+) MiB for the (\d+) MiB of (the host's memory|the "
                  r"server's cgroup limit)", line)
    assert m, line
    cache, most = int(m[1]), int(m[2])
    assert cache == min(1024, max(16, most // 8)), line
    with open("/proc/meminfo") as f:
        host_mib = int(next(l for l in f if l.startswith("MemTotal:")).split()[1]) // 1024
    assert most <= host_mib, line
    if m[3] == "the host's memory":
        assert most == host_mib, line


class MemoryCgroup:
    """A memory cgroup of its own (v2 where the memory controller is there, else v1), with
    a limit, for a server to start in."""

    def __init__(self, limit: int):
        v2 = Path("/sys/fs/cgroup")
        controllers = v2 / "cgroup.subtree_control"
        if controllers.exists() and "memory" in controllers.read_text().split():
            self.dir, limit_file = v2 / f"coffer-test-{os.getpid()}", "memory.max"
        elif Path("/sys/fs/cgroup/memory/cgroup.procs").exists():
            self.dir = Path(f"/sys/fs/cgroup/memory/coffer-test-{os.getpid()}")
            limit_file = "memory.limit_in_bytes"
        else:
            pytest.skip("no memory cgroup controller on this machine")
        try:
            self.dir.mkdir()
            (self.dir / limit_file).write_text(str(limit))
        except PermissionError as e:
            pytest.skip(f"cannot make a memory cgroup here ({e}): the test needs root")

    def launcher(self) -> list[str]:
        """A command that moves itself into this cgroup, then execs its arguments (same pid)."""
        procs = self.dir / "cgroup.procs"
        return ["sh", "-c", f'echo $$ > "{procs}" && exec "$@"', "enter-cgroup"]

    def remove(self) -> None:
        self.dir.rmdir()


def test_metadata_cache_fits_a_containers_memory_limit(make_server):
    """In a container (here, a cgroup limited to 512 MiB) the default cache is an eighth of
    the limit, not of the host's memory."""
    cgroup = MemoryCgroup(512 * MiB)
    try:
        srv = make_server(start=False)
        srv.launcher = cgroup.launcher()
        srv.start()
        line = metadata_cache_line(srv)
        assert "metadata cache: 64 MiB for the 512 MiB of the server's cgroup limit" in line, line
        client = srv.client()
        bucket = unique_bucket_name("cgroup")
        client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key="k", Body=b"small")
        assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"small"
        srv.stop()
    finally:
        for _ in range(50):
            try:
                cgroup.remove()
                break
            except OSError:
                time.sleep(0.1)
