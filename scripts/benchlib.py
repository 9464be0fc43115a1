"""Shared by scripts/bench-compare and scripts/bench-gateway: start a `coffer server` pinned
to a core, and run one `coffer bench` cell against it pinned to another."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ACCESS, SECRET = "bench-admin", "bench-secret-not-for-production"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONCURRENCY = {"4KiB": 16, "64KiB": 8, "1MiB": 4, "16MiB": 2, "64MiB": 2}


def binary_at(spec):
    """A `coffer` binary to measure: `spec` itself when it is a file, else the release build of
    the commit `spec` names in this repository (`762fbd0`, `main~3`), built once from a
    temporary worktree into target/bench-builds/<commit>/coffer and reused after."""
    if os.path.isfile(spec):
        return spec
    commit = subprocess.run(
        ["git", "-C", REPO, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"],
        capture_output=True, text=True).stdout.strip()
    if not commit:
        sys.exit(f"{spec!r} is neither a file nor a commit of {REPO}: give a coffer binary "
                 "or a commit to build one from")
    builds = os.path.join(REPO, "target", "bench-builds")
    out = os.path.join(builds, commit[:12], "coffer")
    if os.path.isfile(out):
        return out
    tree = tempfile.mkdtemp(prefix=f"coffer-{commit[:12]}-")
    subprocess.run(["git", "-C", REPO, "worktree", "add", "--detach", "--force", tree, commit],
                   check=True, stdout=subprocess.DEVNULL)
    try:
        print(f"# building {commit[:12]} (release) to measure it", file=sys.stderr, flush=True)
        # One target dir for every such build, so later ones reuse the dependencies.
        env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(builds, "target"))
        subprocess.run(["cargo", "build", "--release", "-p", "coffer"], cwd=tree, env=env,
                       check=True)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        shutil.copy2(os.path.join(env["CARGO_TARGET_DIR"], "release", "coffer"), out)
    finally:
        subprocess.run(["git", "-C", REPO, "worktree", "remove", "--force", tree], check=False)
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, core, extra_args=(), extra_env=None, data=None):
    """A server on a fresh (or the given) data dir and a free port; returns (process, port,
    data dir) once it answers."""
    data = data or tempfile.mkdtemp(prefix="coffer-bench-")
    port = free_port()
    env = dict(os.environ, COFFER_ROOT_ACCESS_KEY=ACCESS, COFFER_ROOT_SECRET_KEY=SECRET,
               COFFER_LOG="warn", **(extra_env or {}))
    server = subprocess.Popen(
        ["taskset", "-c", core, binary, "server", "--data-dir", data,
         "--listen", f"127.0.0.1:{port}", "--allow-insecure-sse-c", *extra_args],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
        except urllib.error.HTTPError:
            return server, port, data  # an S3 error answer: the server is up
        except OSError:
            time.sleep(0.2)
            continue
        return server, port, data
    server.kill()
    shutil.rmtree(data, ignore_errors=True)
    sys.exit(f"{binary} did not start on port {port}")


def bench_report(generator, core, port, pid, workload, size, mode, duration, concurrency=None):
    """One `coffer bench` cell: its JSON report (MB/s, op/s, latency, and with the server's
    pid its RSS and CPU seconds per GiB)."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS, AWS_SECRET_ACCESS_KEY=SECRET,
               AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
    out = subprocess.run(
        ["taskset", "-c", core, generator, "bench", "--workload", workload, "--size", size,
         "--concurrency", str(concurrency or CONCURRENCY.get(size, 4)), "--duration", str(duration),
         "--sse", mode, "--server-pid", str(pid), "--bucket", f"b-{workload}-{mode}".lower()
         .replace(":", "-").replace("+", "-").replace("_", "-"), "--json"],
        env=env, capture_output=True, text=True, check=True).stdout
    reports = json.loads(out)
    return reports[-1] if isinstance(reports, list) else reports


def bench(generator, core, port, pid, workload, size, mode, duration):
    report = bench_report(generator, core, port, pid, workload, size, mode, duration)
    return report["megabytes_per_second"], report["ops_per_second"]


def stop(server, data):
    """Stops a server from `start` and deletes its data dir (gigabytes after a PUT cell)."""
    server.terminate()
    server.wait(timeout=30)
    shutil.rmtree(data, ignore_errors=True)
