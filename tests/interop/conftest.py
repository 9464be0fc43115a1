"""Fixtures for the interop suite: the real `coffer` binary driven by real clients.

A session-wide server is started once on a free loopback port with a temporary
data dir and random root credentials. Tests that need a server of their own
(kill -9, memory measurement, credential generation) use `make_server`, which
hands out independent, restartable instances.

Gateway mode (`COFFER_INTEROP_BACKEND=gateways`): the session server is two stateless
gateways over a PostgreSQL cluster and an upstream coffer, behind an nginx balancer that
alternates per request (gateway_support.BalancedGateways). Tests that start servers of their
own (`make_server`) or are marked `embedded_only` are skipped there: they check the embedded
store, which the default run covers.
"""

from __future__ import annotations

import base64
import os
import signal
import time
import uuid

import pytest

from support import (
    ERROR_BODIES,
    SECRETS,
    AwsCli,
    CofferServer,
    CofferUser,
    ServerFactory,
    add_user,
    destroy_bucket,
    unique_bucket_name,
)


GATEWAY_MODE = os.environ.get("COFFER_INTEROP_BACKEND", "embedded") == "gateways"


# Gateway mode: a gateway that refuses an aws-chunked upload mid-body (a bad chunk signature)
# answers 403 and closes the connection at once, unread body and all. nginx, still sending
# the body, gets EPIPE and answers 502 instead of passing the 403 on (about one time in ten).
# xfail until the server drains what it leaves unread before closing (a lingering close).
EARLY_ERROR_CLOSE_PENDING = {
    "test_auth.py::test_aws_chunked_signed_payload_bad_chunk_signature",
    "test_auth.py::test_aws_chunked_signed_payload_altered_data",
}

_GATEWAY_MODE_XFAIL = {
    **dict.fromkeys(EARLY_ERROR_CLOSE_PENDING,
                    "an early error closes without draining the body: 502 behind nginx at times"),
}


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)
    if not GATEWAY_MODE:
        return
    for item in items:
        name = item.nodeid.rsplit("/", 1)[-1]
        reason = _GATEWAY_MODE_XFAIL.get(name) or _GATEWAY_MODE_XFAIL.get(name.split("[")[0])
        if reason is not None:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=False))
        marker = item.get_closest_marker("embedded_only")
        if marker is not None:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            item.add_marker(pytest.mark.skip(reason=f"embedded store only: {reason}"))
        elif "make_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(
                reason="starts embedded servers of its own (make_server): the default run covers it"))


# --------------------------------------------------------------------------- secrets registry
# Every secret a client sends or receives is recorded in support.SECRETS, and every error body
# a client receives in support.ERROR_BODIES, for the last-running test_secrets.py.

_SSE_C_PARAMS = ("SSECustomerKey", "CopySourceSSECustomerKey")
_SSE_C_HEADERS = ("x-amz-server-side-encryption-customer-key",
                  "x-amz-copy-source-server-side-encryption-customer-key")


def _record_params(params, **_):
    for name in _SSE_C_PARAMS:
        value = params.get(name)
        SECRETS.add("SSE-C key (boto3)", value)
        # botocore's own handler may already have replaced the key by its base64.
        if isinstance(value, str) and len(value) == 44:
            try:
                SECRETS.add("SSE-C key (boto3)", base64.b64decode(value, validate=True))
            except ValueError:
                pass


def _record_response(http_response, parsed, model, **_):
    # botocore reads the whole body of every >= 300 response (to parse the error).
    if http_response is not None and http_response.status_code >= 400:
        ERROR_BODIES.append(http_response.content or b"")
    if isinstance(parsed, dict) and isinstance(parsed.get("Plaintext"), bytes):
        SECRETS.add(f"KMS {model.name} plaintext", parsed["Plaintext"])


def _record_kms_request(params, model, **_):
    if model.name in ("Encrypt", "ImportKeyMaterial") and isinstance(params.get("Plaintext"), bytes):
        SECRETS.add("KMS Encrypt plaintext", params["Plaintext"])


# Gateway mode: a KMS key-state change made through one gateway reaches the other within the
# documented bound (docs/kms.md, 1 s; milliseconds when notifications flow). A test that
# disables a key and reads through "the server" at once may reach the other gateway first, so
# boto3 KMS calls that change a key's state wait out the bound before returning: the tests then
# check the promise that is made (refused everywhere within the bound), not a stronger one.
KMS_PROPAGATION_BOUND_S = 1.0
_KMS_STATE_CHANGES = ("DisableKey", "EnableKey", "ScheduleKeyDeletion", "CancelKeyDeletion",
                      "ImportKeyMaterial", "DeleteImportedKeyMaterial", "RotateKeyOnDemand",
                      "UpdateAlias", "DeleteAlias")


def _wait_for_kms_propagation(**_):
    time.sleep(KMS_PROPAGATION_BOUND_S)


def _hook_clients() -> None:
    """Every botocore client records SSE-C keys, KMS plaintexts and error bodies."""
    import botocore.session

    original = botocore.session.Session.create_client
    if getattr(original, "_coffer_secrets", False):
        return

    def create_client(self, *args, **kwargs):
        client = original(self, *args, **kwargs)
        events = client.meta.events
        events.register("before-parameter-build", _record_params)
        events.register("before-parameter-build.kms", _record_kms_request)
        events.register("after-call", _record_response)
        if GATEWAY_MODE:
            for operation in _KMS_STATE_CHANGES:
                events.register(f"after-call.kms.{operation}", _wait_for_kms_propagation)
        return client

    create_client._coffer_secrets = True
    botocore.session.Session.create_client = create_client


def _hook_requests() -> None:
    """Raw `requests` calls record SSE-C key headers and (non-streamed) error bodies."""
    import requests.adapters

    original = requests.adapters.HTTPAdapter.send
    if getattr(original, "_coffer_secrets", False):
        return

    def send(self, request, *args, **kwargs):
        for name in _SSE_C_HEADERS:
            value = request.headers.get(name)
            if value:
                try:
                    SECRETS.add("SSE-C key (raw HTTP)", base64.b64decode(value))
                except ValueError:
                    pass
        response = original(self, request, *args, **kwargs)
        if response.status_code >= 400 and not kwargs.get("stream"):
            ERROR_BODIES.append(response.content or b"")
        return response

    send._coffer_secrets = True
    requests.adapters.HTTPAdapter.send = send


def _hook_byok() -> None:
    """BYOK key material is wrapped by the test with the KMS's RSA public key: record it."""
    from cryptography.hazmat.primitives import serialization

    original = serialization.load_der_public_key
    if getattr(original, "_coffer_secrets", False):
        return

    class RecordingPublicKey:
        def __init__(self, key):
            self._key = key

        def encrypt(self, plaintext, padding):
            SECRETS.add("BYOK key material", plaintext)
            return self._key.encrypt(plaintext, padding)

        def __getattr__(self, name):
            return getattr(self._key, name)

    def load_der_public_key(*args, **kwargs):
        return RecordingPublicKey(original(*args, **kwargs))

    load_der_public_key._coffer_secrets = True
    serialization.load_der_public_key = load_der_public_key


def pytest_configure(config):
    _hook_clients()
    _hook_requests()
    _hook_byok()


_GATEWAY_SUMMARY: list[str] = []


def pytest_terminal_summary(terminalreporter):
    for line in _GATEWAY_SUMMARY:
        terminalreporter.write_line(line)


@pytest.fixture
def make_server(tmp_path):
    """Factory for dedicated, restartable servers with their own data dirs.

    Every server it made is stopped, and its data dir removed, when the test ends.
    """
    factory = ServerFactory(tmp_path / "servers")
    yield factory
    factory.stop_all(remove_data=True)


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> CofferServer:
    """The shared server for the whole session (SSE-C allowed over its plain HTTP); in gateway
    mode, two gateways behind a balancer that behave as one (gateway_support.BalancedGateways)."""
    factory = ServerFactory(tmp_path_factory.mktemp("session-server"))
    srv = None
    try:
        if GATEWAY_MODE:
            from gateway_support import BalancedGateways

            srv = BalancedGateways(factory, count=2, extra_args=["--allow-insecure-sse-c"])
            srv.assert_alternates()
        else:
            srv = factory(extra_args=["--allow-insecure-sse-c"])
        yield srv
        if GATEWAY_MODE:
            served = srv.requests_served()
            _GATEWAY_SUMMARY.append(f"gateway mode: the two gateways served {served} requests "
                                    f"(nginx passed on {sorted(srv.balancer.served().values())})")
            assert min(served) >= sum(served) // 4, f"one gateway served too few: {served}"
        rc = srv.stop()
        # A graceful stop must not crash; 0 or death by SIGTERM are both acceptable.
        assert rc in (0, -signal.SIGTERM), (
            f"coffer server exited with {rc} on SIGTERM; output tail:\n{srv.log_text()[-4000:]}"
        )
    finally:
        factory.stop_all(remove_data=True)
        if GATEWAY_MODE and srv is not None:
            srv.destroy()


@pytest.fixture(scope="session")
def endpoint(server) -> str:
    return server.endpoint


@pytest.fixture(scope="session")
def s3(server):
    """boto3 with default config: over HTTP it sends x-amz-checksum-crc32 on uploads."""
    return server.client()


@pytest.fixture(scope="session")
def s3_required(server):
    """boto3 with request_checksum_calculation=when_required: plain Content-Length + sha256."""
    return server.client(checksum="when_required")


@pytest.fixture(params=["when_supported", "when_required"])
def s3_any(request, s3, s3_required):
    """Each test using this runs once with each client config."""
    return s3 if request.param == "when_supported" else s3_required


@pytest.fixture
def bucket(s3_required):
    """A fresh bucket owned by root, emptied and deleted after the test."""
    name = unique_bucket_name()
    s3_required.create_bucket(Bucket=name)
    yield name
    destroy_bucket(s3_required, name)


@pytest.fixture(scope="session")
def second_user(server) -> CofferUser:
    """A second, non-root user created with `coffer user add`."""
    return add_user(server, f"user2-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def s3_user2(second_user):
    return second_user.client()


@pytest.fixture(scope="session")
def aws(server, tmp_path_factory) -> AwsCli:
    """Run the aws CLI (v1, from the venv) against the session server as root."""
    return AwsCli(server.endpoint, server.access_key, server.secret_key,
                  tmp_path_factory.mktemp("awscli"))
