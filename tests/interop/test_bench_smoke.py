"""`coffer bench` runs against the server in every SSE mode and reports
non-zero throughput and zero errors (no timing assertion: figures live in
docs/performance.md)."""

import json
import os
import subprocess

import pytest

from support import coffer_bin, destroy_bucket

MODES = ["none", "plaintext", "AES256", "SM4", "aws:kms", "aws:kms+bucket-key", "SSE-C"]


def bench_env(server):
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=server.access_key,
        AWS_SECRET_ACCESS_KEY=server.secret_key,
        AWS_ENDPOINT_URL=server.endpoint,
    )
    return env


def bucket_for(sse, workload):
    return f"bench-{workload}-" + sse.replace(":", "-").replace("+", "-").lower()


@pytest.mark.parametrize("sse", MODES)
@pytest.mark.parametrize("workload", ["put", "get"])
def test_bench_reports_throughput_and_no_errors(server, s3, sse, workload):
    bucket = bucket_for(sse, workload)
    try:
        run_bench(server, bucket, sse, workload, "--size", "64KiB", "--objects", "8",
                  "--concurrency", "4")
    finally:
        destroy_bucket(s3, bucket)


@pytest.mark.parametrize("sse", ["none", "AES256", "aws:kms+bucket-key", "SSE-C"])
def test_bench_multipart_reports_throughput_and_server_memory(server, s3, sse):
    """Whole multipart uploads (three parts, the last one short), and the
    server's resident memory sampled through --server-pid."""
    bucket = bucket_for(sse, "multipart")
    try:
        report = run_bench(
            server, bucket, sse, "multipart", "--size", "11MiB", "--part-size", "5MiB",
            "--concurrency", "2", "--server-pid", str(server.pid),
        )
        assert report["part_size"] == 5 << 20
        assert report["bytes"] == report["ops"] * (11 << 20)
        assert report["server_rss_peak_mib"] > 0 and report["server_rss_hwm_mib"] > 0
        listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
        assert {o["Size"] for o in listed} == {11 << 20}
        assert all(o["ETag"].endswith('-3"') for o in listed)
        assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    finally:
        destroy_bucket(s3, bucket)


@pytest.mark.parametrize("sse,stored", [("plaintext", None), ("none", "AES256")])
def test_bench_reports_server_cpu_per_gib_and_what_it_stored(server, s3, sse, stored):
    """--server-pid gives the server's CPU seconds per GiB moved; `plaintext`
    stores plaintext objects (the bucket's rule `none`), while `none` sends no
    header and so gets the server's default AES256."""
    bucket = bucket_for(sse, "cpu")
    try:
        report = run_bench(server, bucket, sse, "put", "--size", "1MiB", "--concurrency", "2",
                           "--server-pid", str(server.pid))
        assert report["server_cpu_seconds"] > 0
        gib = report["bytes"] / (1 << 30)
        assert report["server_cpu_seconds_per_gib"] == pytest.approx(
            report["server_cpu_seconds"] / gib)
        assert 0 <= report["server_user_seconds_per_gib"] <= report["server_cpu_seconds_per_gib"]
        key = s3.list_objects_v2(Bucket=bucket)["Contents"][0]["Key"]
        assert s3.head_object(Bucket=bucket, Key=key).get("ServerSideEncryption") == stored
    finally:
        destroy_bucket(s3, bucket)


def run_bench(server, bucket, sse, workload, *args):
    out = subprocess.run(
        [str(coffer_bin()), "bench", "--bucket", bucket, "--duration", "1", "--warmup", "0.2", "--workload", workload,
         "--sse", sse, "--json", *args],
        env=bench_env(server), capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    (report,) = json.loads(out.stdout)
    assert report["phase"] == workload
    assert report["errors"] == 0, report["first_error"]
    assert report["ops"] > 0 and report["ops_per_second"] > 0
    assert report["megabytes_per_second"] > 0
    assert 0 < report["latency_ms_p50"] <= report["latency_ms_p90"] <= report["latency_ms_p99"]
    return report
