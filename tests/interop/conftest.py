"""Fixtures for the interop suite: the real `coffer` binary driven by real clients.

A session-wide server is started once on a free loopback port with a temporary
data dir and random root credentials. Tests that need a server of their own
(kill -9, memory measurement, credential generation) use `make_server`, which
hands out independent, restartable instances.
"""

from __future__ import annotations

import signal
import uuid

import pytest

from support import (
    AwsCli,
    CofferServer,
    CofferUser,
    ServerFactory,
    add_user,
    destroy_bucket,
    unique_bucket_name,
)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)


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
    """The shared server for the whole session (SSE-C allowed over its plain HTTP)."""
    factory = ServerFactory(tmp_path_factory.mktemp("session-server"))
    srv = factory(extra_args=["--allow-insecure-sse-c"])
    yield srv
    try:
        rc = srv.stop()
        # A graceful stop must not crash; 0 or death by SIGTERM are both acceptable.
        assert rc in (0, -signal.SIGTERM), (
            f"coffer server exited with {rc} on SIGTERM; output tail:\n{srv.log_text()[-4000:]}"
        )
    finally:
        factory.stop_all(remove_data=True)


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
