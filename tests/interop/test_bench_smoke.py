"""`coffer bench` runs against the server in every SSE mode and reports
non-zero throughput and zero errors (no timing assertion: figures live in
docs/performance.md)."""

import json
import os
import subprocess

import pytest

from support import coffer_bin, destroy_bucket

MODES = ["none", "AES256", "SM4", "aws:kms", "aws:kms+bucket-key", "SSE-C"]


@pytest.mark.parametrize("sse", MODES)
@pytest.mark.parametrize("workload", ["put", "get"])
def test_bench_reports_throughput_and_no_errors(server, s3, sse, workload):
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=server.access_key,
        AWS_SECRET_ACCESS_KEY=server.secret_key,
        AWS_ENDPOINT_URL=server.endpoint,
    )
    bucket = "bench-" + sse.replace(":", "-").replace("+", "-").lower()
    try:
        run_bench(env, bucket, sse, workload)
    finally:
        destroy_bucket(s3, bucket)


def run_bench(env, bucket, sse, workload):
    out = subprocess.run(
        [str(coffer_bin()), "bench", "--bucket", bucket, "--size", "64KiB",
         "--concurrency", "4", "--duration", "1", "--warmup", "0.2",
         "--workload", workload, "--objects", "8", "--sse", sse, "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    (report,) = json.loads(out.stdout)
    assert report["phase"] == workload
    assert report["errors"] == 0, report["first_error"]
    assert report["ops"] > 0 and report["ops_per_second"] > 0
    assert report["megabytes_per_second"] > 0
    assert 0 < report["latency_ms_p50"] <= report["latency_ms_p90"] <= report["latency_ms_p99"]
