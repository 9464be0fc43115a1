"""Start-up errors a person can act on (issue 18): a data dir another server holds names that
server's pid; a first start that fails leaves no half-made data dir behind."""

from __future__ import annotations

import socket
import subprocess

from support import _clean_env, coffer_bin


def start(data_dir, port) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(coffer_bin()), "server", "--data-dir", str(data_dir), "--listen",
         f"127.0.0.1:{port}"],
        env={**_clean_env(), "COFFER_LOG": "warn"}, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=60)


def test_a_held_data_dir_names_the_server_holding_it(make_server, tmp_path):
    first = make_server()
    second = start(first.data_dir, 0)
    assert second.returncode != 0
    assert f"another coffer server (pid {first.pid}) holds the data dir" in second.stderr, \
        second.stderr
    assert first.client().list_buckets() is not None, "the first server still serves"


def test_a_failed_first_start_leaves_no_data_dir(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        data_dir = tmp_path / "fresh"
        failed = start(data_dir, busy.getsockname()[1])
    assert failed.returncode != 0 and "cannot listen on" in failed.stderr, failed.stderr
    assert not data_dir.exists(), list(data_dir.rglob("*"))
