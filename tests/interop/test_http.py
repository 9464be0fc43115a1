"""HTTP/1.1 connection handling under keep-alive, driven over a raw socket."""

import socket
import time

import pytest

from support import sign_request


def raw_request(server, method: str, path: str, body: bytes = b"") -> tuple[bytes, bytes]:
    """A SigV4-signed request as (head, body) bytes, ready for a raw socket."""
    sr = sign_request(method, server.endpoint + path, server.access_key, server.secret_key, body=body)
    headers = "".join(f"{k}: {v}\r\n" for k, v in sr.headers.items())
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n{headers}"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head, body


def read_response(sock: socket.socket) -> bytes:
    """Read exactly one HTTP/1.1 response with a Content-Length (as error responses have)."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


def read_all(sock: socket.socket, quiet_s: float = 1.0) -> bytes:
    sock.settimeout(quiet_s)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            return data
        if not chunk:
            return data
        data += chunk


@pytest.mark.parametrize("body_size", [1, 1000, 70_000])
@pytest.mark.parametrize("body_late", [False, True], ids=["body-with-head", "body-after-response"])
def test_unread_body_after_early_error_does_not_leak_into_next_request(server, bucket, body_size, body_late):
    """An UploadPart to an unknown upload is refused (404 NoSuchUpload) before its body
    is read. The next request on the same connection must then either be served
    normally or the connection closed; the unread body bytes must never be parsed as
    the start of the next request (which shows up as SignatureDoesNotMatch / method
    "xGET")."""
    path = f"/{bucket}/k?partNumber=1&uploadId=bm90LWEtcmVhbC11cGxvYWQ"
    body = b"x" * body_size
    head1, body1 = raw_request(server, "PUT", path, body)
    head2, _ = raw_request(server, "GET", "/")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        if body_late:
            sock.sendall(head1)
            time.sleep(0.1)  # the server answers 404 before the body arrives
            try:
                sock.sendall(body1)
                sock.sendall(head2)
            except (BrokenPipeError, ConnectionResetError):
                return  # the server closed the connection: acceptable
        else:
            try:
                sock.sendall(head1 + body1 + head2)
            except (BrokenPipeError, ConnectionResetError):
                return
        data = read_all(sock)
    statuses = [line for line in data.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]
    assert statuses, f"no response at all: {data[:300]!r}"
    assert statuses[0].startswith(b"HTTP/1.1 404"), f"first response: {statuses[0]!r}"
    assert b"NoSuchUpload" in data
    assert b"SignatureDoesNotMatch" not in data and len(statuses) <= 2, (
        "the unread request body was parsed as part of the next request on the connection: "
        f"{statuses!r}"
    )
    if len(statuses) == 2:
        assert statuses[1].startswith(b"HTTP/1.1 200"), f"second request on the connection got {statuses[1]!r}"


# The race it looks for was seen in about 2 % of rounds.
ROUNDS = 100


@pytest.mark.embedded_only("a balancer in front answers Expect: 100-continue itself")
@pytest.mark.parametrize("body_size", [1, 70_000])
def test_expect_100_continue_refused_then_next_request(server, bucket, body_size):
    """botocore sends `Expect: 100-continue` on uploads. When the server answers with a
    final error (here 404 NoSuchUpload) instead of 100 Continue, botocore does not send
    the body at all and reuses the connection for its next request. The server must
    then not wait for (and swallow) the body it never got: the next request must be
    answered as sent, or the connection closed. Racy by nature, so tried ROUNDS times."""
    path = f"/{bucket}/k?partNumber=1&uploadId=bm90LWEtcmVhbC11cGxvYWQ"
    sr = sign_request("PUT", server.endpoint + path, server.access_key, server.secret_key,
                      body=b"x" * body_size)
    headers = "".join(f"{k}: {v}\r\n" for k, v in sr.headers.items())
    head1 = (f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n{headers}"
             f"Content-Length: {body_size}\r\nExpect: 100-continue\r\n\r\n").encode()
    head2, _ = raw_request(server, "GET", "/")
    outcomes: dict[str, int] = {}
    for _ in range(ROUNDS):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(head1)
            first = read_response(sock)
            assert first.startswith(b"HTTP/1.1 404"), f"expected a 404 before any body was sent: {first[:200]!r}"
            try:
                sock.sendall(head2)  # as botocore does: no body, next request on the same connection
                second = read_all(sock, quiet_s=0.3)
            except (BrokenPipeError, ConnectionResetError):
                second = b""
        status = second.split(b"\r\n", 1)[0].decode(errors="replace") or "connection closed"
        outcomes[status] = outcomes.get(status, 0) + 1
    bad = {k: v for k, v in outcomes.items() if k not in ("connection closed", "HTTP/1.1 200 OK")}
    assert not bad, (
        "after a refused Expect: 100-continue upload, the next request on the same connection "
        f"was mangled (its first bytes taken as the missing body) in {sum(bad.values())} of {ROUNDS} "
        f"rounds; outcomes: {outcomes}"
    )
