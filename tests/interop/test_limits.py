"""Resource limits: slow-loris heads, stalled bodies, crowds of idle connections and huge
request heads. The server times out or refuses what abuses it, keeps serving everyone
else promptly, and its memory stays bounded.

Each test runs a dedicated server with short limits (--header-read-timeout,
--body-read-timeout, --max-connections) so that the timeouts fire within seconds.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import ExitStack

import pytest

from support import sign_request, unique_bucket_name

MiB = 1 << 20
HEADER_TIMEOUT_S = 3
BODY_TIMEOUT_S = 2
SEND_TIMEOUT_S = 2
RSS_LIMIT = 200 * MiB
# A normal request must not wait for the abusers: far below any timeout above.
PROMPT_S = 1.5


def vm_rss(pid: int) -> int:
    """Resident set size of pid now, from /proc/PID/status (VmRSS, in kB)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def limited_server(make_server, max_connections: int):
    srv = make_server(extra_args=["--header-read-timeout", str(HEADER_TIMEOUT_S),
                                  "--body-read-timeout", str(BODY_TIMEOUT_S),
                                  "--send-timeout", str(SEND_TIMEOUT_S),
                                  "--max-connections", str(max_connections)])
    client = srv.client(checksum="when_required", read_timeout=30)
    bucket = unique_bucket_name("limits")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="k", Body=b"payload")
    return srv, client, bucket


def timed_get(client, bucket: str) -> float:
    """One normal GetObject; returns how long it took."""
    started = time.monotonic()
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"payload"
    return time.monotonic() - started


def connect(stack: ExitStack, port: int) -> socket.socket:
    sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
    return sock


def closed_by_server(sock: socket.socket, within_s: float) -> bool:
    """Whether the server closes sock (EOF or reset) within `within_s`, reading (and
    discarding) anything it says first."""
    deadline = time.monotonic() + within_s
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
    return False


def signed_head(srv, bucket: str) -> bytes:
    """A complete, valid keep-alive GET for the test object."""
    sr = sign_request("GET", f"{srv.endpoint}/{bucket}/k", srv.access_key, srv.secret_key)
    headers = "".join(f"{k}: {v}\r\n" for k, v in sr.headers.items())
    return f"GET /{bucket}/k HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n{headers}\r\n".encode()


def read_one_response(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    data = b""
    while b"payload" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_slow_loris_heads_are_cut_off_while_others_are_served(make_server):
    """150 connections trickle a request head one byte every 200 ms and never finish it.
    A normal client is served promptly all along; every trickler is disconnected once the
    header-read timeout has passed, even though it keeps sending."""
    srv, client, bucket = limited_server(make_server, max_connections=1024)
    baseline_rss = vm_rss(srv.pid)
    stop = threading.Event()
    with ExitStack() as stack:
        socks = [connect(stack, srv.port) for _ in range(150)]
        head = f"PUT /{bucket}/slow HTTP/1.1\r\nHost: x\r\nx-amz-meta-slow: ".encode()

        def trickle():
            for i in range(10_000):
                if stop.is_set():
                    return
                for s in socks:
                    try:
                        s.send(head[i:i + 1] if i < len(head) else b"a")
                    except OSError:
                        pass  # cut off by the server: what we want
                time.sleep(0.2)

        sender = threading.Thread(target=trickle, daemon=True)
        sender.start()
        try:
            started = time.monotonic()
            latencies = []
            while time.monotonic() - started < HEADER_TIMEOUT_S - 0.5:
                latencies.append(timed_get(client, bucket))
            assert max(latencies) < PROMPT_S, (
                f"a normal request waited {max(latencies):.2f}s behind slow-loris connections")
            cut = [closed_by_server(s, HEADER_TIMEOUT_S + 3) for s in socks]
        finally:
            stop.set()
            sender.join()
        assert all(cut), f"{cut.count(False)} of {len(socks)} trickling connections were never cut off"
    rss = vm_rss(srv.pid)
    print(f"\nslow-loris: {len(latencies)} normal GETs, slowest {max(latencies) * 1000:.0f} ms; "
          f"RSS {baseline_rss / MiB:.1f} -> {rss / MiB:.1f} MiB")
    assert rss < RSS_LIMIT, f"server RSS {rss / MiB:.1f} MiB"
    assert timed_get(client, bucket) < PROMPT_S


def test_stalled_bodies_time_out(make_server):
    """50 uploads send their head and half their body, then go silent. Each is answered
    RequestTimeout once the body-read timeout passes and its connection closed; nothing
    is stored and normal requests go on meanwhile."""
    srv, client, bucket = limited_server(make_server, max_connections=1024)
    with ExitStack() as stack:
        socks = []
        for i in range(50):
            key = f"stalled-{i}"
            sr = sign_request("PUT", f"{srv.endpoint}/{bucket}/{key}", srv.access_key,
                              srv.secret_key, payload_hash="UNSIGNED-PAYLOAD")
            headers = "".join(f"{k}: {v}\r\n" for k, v in sr.headers.items())
            sock = connect(stack, srv.port)
            sock.sendall(f"PUT /{bucket}/{key} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n{headers}"
                         f"Content-Length: 1000\r\n\r\n".encode() + b"x" * 500)
            socks.append(sock)
        assert timed_get(client, bucket) < PROMPT_S
        for sock in socks:
            sock.settimeout(BODY_TIMEOUT_S + 5)
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 400") and b"RequestTimeout" in answer, answer[:300]
            assert closed_by_server(sock, 5), "the connection of a timed-out body stayed open"
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [o["Key"] for o in listed] == ["k"], "a stalled upload was stored"


def test_idle_keep_alive_connections_are_closed(make_server):
    """300 keep-alive connections (below the connection limit) each make one request and
    go idle. A normal client is served promptly beside them, and the server closes every
    idle one after the header-read timeout."""
    srv, client, bucket = limited_server(make_server, max_connections=1024)
    request = signed_head(srv, bucket)
    with ExitStack() as stack:
        socks = [connect(stack, srv.port) for _ in range(300)]
        for sock in socks:
            sock.sendall(request)
        for sock in socks:
            assert read_one_response(sock).startswith(b"HTTP/1.1 200"), "keep-alive request failed"
        assert timed_get(client, bucket) < PROMPT_S
        rss = vm_rss(srv.pid)
        closed = [closed_by_server(s, HEADER_TIMEOUT_S + 3) for s in socks]
        assert all(closed), f"{closed.count(False)} idle connections were never closed"
    print(f"\n300 idle keep-alive connections: RSS {rss / MiB:.1f} MiB")
    assert rss < RSS_LIMIT


def test_connections_beyond_the_limit_wait_and_recover(make_server):
    """With --max-connections 32, 32 silent connections take every slot: a 33rd client is
    not served while they hold them, and is served as soon as the server has timed them
    out. The server is then as good as new."""
    limit = 32
    srv, client, bucket = limited_server(make_server, max_connections=limit)
    time.sleep(HEADER_TIMEOUT_S + 0.5)  # the set-up client's own keep-alive connection is gone
    with ExitStack() as stack:
        hogs = [connect(stack, srv.port) for _ in range(limit)]
        time.sleep(0.3)  # let the server accept them all
        extra = connect(stack, srv.port)  # queued in the listen backlog
        started = time.monotonic()
        extra.sendall(signed_head(srv, bucket))
        extra.settimeout(1.0)
        with pytest.raises(socket.timeout):
            extra.recv(1)  # nothing yet: every slot is held
        answer = read_one_response(extra)
        waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert waited < HEADER_TIMEOUT_S + 3, f"the queued client waited {waited:.1f}s"
        assert all(closed_by_server(h, 3) for h in hogs), "silent connections outlived the timeout"
    print(f"\nconnection {limit + 1} of limit {limit}: served after {waited:.1f}s")
    assert timed_get(client, bucket) < PROMPT_S


def test_clients_that_stop_reading_are_dropped(make_server):
    """With --max-connections 4, four clients ask for a 16 MiB object and never read the
    answer (a slow read). The server drops them once their responses have stalled for the
    send timeout, which frees their slots: a fifth client is then served."""
    limit, size = 4, 16 * MiB
    srv, client, bucket = limited_server(make_server, max_connections=limit)
    client.put_object(Bucket=bucket, Key="big", Body=b"r" * size)
    time.sleep(HEADER_TIMEOUT_S + 0.5)  # the set-up client's keep-alive connection is gone
    sr = sign_request("GET", f"{srv.endpoint}/{bucket}/big", srv.access_key, srv.secret_key)
    headers = "".join(f"{k}: {v}\r\n" for k, v in sr.headers.items())
    request = f"GET /{bucket}/big HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n{headers}\r\n".encode()
    with ExitStack() as stack:
        readers = []
        for _ in range(limit):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
            sock.connect(("127.0.0.1", srv.port))
            sock.sendall(request)
            readers.append(sock)
        started = time.monotonic()
        served_after = timed_get(client, bucket)  # waits for a slot
        assert served_after < SEND_TIMEOUT_S + 5, f"the fifth client waited {served_after:.1f}s"
        # A reader that was still queued for a slot is accepted only as the others are
        # dropped; draining it now would un-stall it. Give it its own send timeout first.
        time.sleep(SEND_TIMEOUT_S + 2)
        for sock in readers:
            received = 0
            sock.settimeout(5)
            try:
                while chunk := sock.recv(1 << 20):
                    received += len(chunk)
            except (ConnectionResetError, socket.timeout):
                pass
            assert received < size, "a client that stopped reading still got the whole object"
    print(f"\nslow readers dropped: a fifth client was served after "
          f"{time.monotonic() - started:.1f}s (send timeout {SEND_TIMEOUT_S}s)")
    assert timed_get(client, bucket) < PROMPT_S


@pytest.mark.parametrize("name,head_extra", [
    ("150-headers", "".join(f"x-h{i}: v\r\n" for i in range(150))),
    ("one-100KiB-header", "x-big: " + "b" * (100 * 1024) + "\r\n"),
    ("80KiB-in-60-headers", "".join(f"x-h{i}: {'c' * 1400}\r\n" for i in range(60))),
])
def test_huge_request_heads_are_refused(make_server, name, head_extra):
    """Too many headers, or a head over the 64 KiB cap, is answered 431 and the connection
    closed; the server carries on."""
    srv, client, bucket = limited_server(make_server, max_connections=1024)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        try:
            sock.sendall(f"GET /{bucket}/k HTTP/1.1\r\nHost: x\r\n{head_extra}\r\n".encode())
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before we finished writing
        sock.settimeout(10)
        try:
            answer = sock.recv(65536)
        except ConnectionResetError:
            answer = b""
        assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
        assert closed_by_server(sock, 5)
    assert timed_get(client, bucket) < PROMPT_S


def test_many_endless_heads_keep_memory_bounded(make_server):
    """100 connections each pour an endless request head (1 MiB each, as fast as the
    server reads). Each is cut off at the head cap rather than buffered, and the server's
    memory stays bounded."""
    srv, client, bucket = limited_server(make_server, max_connections=1024)
    blob = b"x-flood: " + b"f" * 8192 + b"\r\n"
    refused = 0
    with ExitStack() as stack:
        socks = [connect(stack, srv.port) for _ in range(100)]
        for sock in socks:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        for sock in socks:
            try:
                for _ in range(MiB // len(blob)):
                    sock.sendall(blob)
            except (BrokenPipeError, ConnectionResetError):
                refused += 1
                continue
        rss = vm_rss(srv.pid)
        assert timed_get(client, bucket) < PROMPT_S
        assert all(closed_by_server(s, 5) for s in socks), "a flooding connection stayed open"
    # (Writes that did not fail were absorbed by the kernel's socket buffers.)
    print(f"\n100 endless heads: {refused} refused mid-write; RSS {rss / MiB:.1f} MiB")
    assert rss < RSS_LIMIT, f"server RSS {rss / MiB:.1f} MiB"
