"""The shell examples of docs/client-side-encryption.md run as written.

Every ```sh block of the guide is run, in order, by bash (`-euo pipefail`) in an empty
directory with a fresh HOME, the endpoint and root pair of a dedicated server in the
environment the guide names (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), and
`coffer` (the binary under test) and `aws` (the test venv's) on PATH. Then the results are
checked: every download is the bytes uploaded, the objects are stored encrypted.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import REGION, REPO_ROOT, _clean_env, coffer_bin

DOC = REPO_ROOT / "docs" / "client-side-encryption.md"


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```$", text, re.S | re.M)


def test_cse_guide_commands_run_as_written(make_server, tmp_path):
    for tool in ("openssl", "jq"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed; the guide's commands use it", pytrace=False)
    blocks = sh_blocks(DOC.read_text())
    assert blocks, "no ```sh block in the guide"
    srv = make_server()
    work = tmp_path / "work"
    home = tmp_path / "home"
    work.mkdir()
    home.mkdir()
    path = os.pathsep.join([str(coffer_bin().resolve().parent), str(Path(sys.executable).parent),
                            os.environ.get("PATH", "/usr/bin:/bin")])
    env = {**_clean_env(), "PATH": path, "HOME": str(home), "AWS_ENDPOINT_URL": srv.endpoint,
           "AWS_ACCESS_KEY_ID": srv.access_key, "AWS_SECRET_ACCESS_KEY": srv.secret_key,
           "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true"}
    assert shutil.which("coffer", path=path) == str(coffer_bin().resolve().parent / "coffer")
    for number, block in enumerate(blocks, 1):
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=work, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (
            f"block {number} of {DOC.name} failed ({done.returncode}):\n{block}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")

    # What the guide's commands did, checked from outside.
    big = (work / "big.tar").read_bytes()
    assert len(big) == 20_000_000
    assert (work / "restore" / "big.tar").read_bytes() == big
    assert (work / "restore" / "big-rsa.tar").read_bytes() == big
    assert "meeting" in done.stdout, done.stdout
    assert (home / ".coffer" / "master.key").stat().st_mode & 0o077 == 0
    s3 = srv.client()
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket="backups").get("Contents", [])}
    assert listed == {"big.tar", "notes.txt"}, listed
    stored = s3.get_object(Bucket="backups", Key="big.tar")
    # S3EC V3 metadata (x-amz-3: the wrapped data key), ciphertext in the body.
    assert "x-amz-3" in stored["Metadata"], stored["Metadata"]
    assert stored["Body"].read(1 << 16) != big[: 1 << 16], "big.tar is stored in plaintext"
