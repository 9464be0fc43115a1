"""Secrets never leak: after the whole run, grep every server log (debug level), every KMS
audit log and every error body a client received for every secret the suite handled.

The secrets come from support.SECRETS, filled as the suite runs: each server's root key (from
its data dir) and root secret key, users' secret keys, root passphrases, SSE-C keys sent by
boto3, raw HTTP or the aws CLI, plaintexts returned by KMS GenerateDataKey/Decrypt (boto3 and
the aws CLI), plaintexts sent to KMS Encrypt, and BYOK key material. Each is searched for raw,
as hex (both cases) and as base64 (standard and URL-safe). A planted canary proves the grep
can fail.
"""

from __future__ import annotations

import base64
import os

import pytest

from support import ERROR_BODIES, SECRETS, SERVER_LOG_DIRS, SecretRegistry


def haystacks() -> dict[str, bytes]:
    """Every server log, every KMS audit log (saved copies and live ones), every error body."""
    found: dict[str, bytes] = {}
    for log_dir in SERVER_LOG_DIRS:
        for path in sorted(log_dir.glob("*.log")):
            found[str(path)] = path.read_bytes()
        audit = log_dir.parent / "data" / "kms" / "audit.log"
        if audit.is_file():
            found[str(audit)] = audit.read_bytes()
    found["error bodies"] = b"\n".join(ERROR_BODIES)
    return found


@pytest.mark.last
def test_no_secret_in_any_log_audit_log_or_error_body(server, s3_required):
    # The grep can fail: a canary secret planted in a server log and in an error body is found
    # in every form, and an unplanted one is not.
    canary = os.urandom(32)
    planted = SecretRegistry()
    planted.add("canary", canary)
    fake = {
        "log": b"... level=DEBUG key=" + canary.hex().encode() + b" ...",
        "body": b"<Error>" + base64.b64encode(canary) + b"</Error>",
        "raw": b"x" + canary + b"y",
    }
    hits = planted.find_in(fake)
    assert "canary (hex) in log" in hits and "canary (base64) in body" in hits and "canary (raw) in raw" in hits, hits
    assert SecretRegistry().find_in(fake) == []

    # The servers' logs (every server runs with COFFER_LOG=debug, see support.CofferServer.env)
    # are among those searched, the session server's included.
    texts = haystacks()
    assert SERVER_LOG_DIRS, "no server logs were recorded"
    assert str(server.log_dir) in " ".join(texts), "the session server's log is not searched"
    assert any(b"request_id=" in t for t in texts.values()), "no request was logged: the grep would prove little"

    # The registry holds the kinds of secret the suite is expected to handle.
    labels = {label.split(" ")[0] for label, _ in SECRETS.items()}
    assert "root" in labels, f"no root key or root secret registered: {sorted(labels)}"

    hits = SECRETS.find_in(texts)
    kinds = sorted({label for label, _ in SECRETS.items()})
    print(f"secrets grep: {len(SECRETS.items())} secrets ({len(kinds)} kinds) in "
          f"{len(texts)} haystacks, {sum(map(len, texts.values()))} bytes")
    assert hits == [], f"secrets found where they must never be: {hits}"
