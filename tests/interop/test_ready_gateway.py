"""`/health/ready` of a gateway follows its PostgreSQL (docs/operations.md): with the database
stopped, the metadata store and the KMS keystore behind it are unreachable, and ready answers
503 naming the failing checks (never why), on the S3 listener and the admin listener alike,
while live stays 200; once PostgreSQL is back on the same port, ready is 200 again."""

from __future__ import annotations

import pytest
import requests

from gateway_support import (  # noqa: F401 (cluster, factory, upstream: module fixtures)
    GatewaySet,
    cluster,
    factory,
    postgres_available,
    upstream,
    wait_until,
)
from support import free_port, unique_bucket_name

pytestmark = pytest.mark.skipif(not postgres_available(),
                                reason="PostgreSQL is not installed (scripts/test installs it)")


def ready(url: str) -> requests.Response:
    return requests.get(f"{url}/health/ready", timeout=30)


def test_ready_turns_503_while_postgres_is_down(factory, cluster, upstream):
    admin = f"http://127.0.0.1:{free_port()}"
    gateways = GatewaySet(factory, cluster, upstream,
                          extra_args=["--admin-listen", admin.removeprefix("http://")])
    gateway = gateways.add()
    urls = [gateway.endpoint, admin]
    for url in urls:
        up = ready(url)
        assert up.status_code == 200, up.text
        assert up.json() == {"status": "ready", "checks": {
            "store": "ok", "blobs": "ok", "keystore": "ok", "kms": "ok"}}

    cluster.stop()
    try:
        for url in urls:
            down = ready(url)
            assert down.status_code == 503, down.text
            body = down.json()
            assert body["status"] == "not ready"
            failed = {name for name, verdict in body["checks"].items() if verdict == "failed"}
            assert {"store", "kms"} <= failed, body
            assert body["checks"]["blobs"] == "ok", "the upstream S3 still answers"
            assert "postgres" not in down.text.lower(), "names the check, never why"
            live = requests.get(f"{url}/health/live", timeout=10)
            assert live.status_code == 200
    finally:
        cluster.start()

    # Back: the pool reconnects and the KMS reloads; ready within a few probes.
    for url in urls:
        assert wait_until(lambda: ready(url).status_code == 200, timeout=30), ready(url).text
    c = gateway.client()
    bucket = unique_bucket_name("ready")
    c.create_bucket(Bucket=bucket)
    c.put_object(Bucket=bucket, Key="k", Body=b"after the restart")
    assert c.get_object(Bucket=bucket, Key="k")["Body"].read() == b"after the restart"
