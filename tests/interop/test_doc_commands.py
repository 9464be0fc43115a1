"""The shell examples of the README's tour, of the client guides and of docs/access-control.md's
CORS section run as written.

Each guide's ```sh blocks are run, in order, by bash (`-euo pipefail`) in an empty directory
with a fresh HOME and a dedicated server, `coffer` (the binary under test) and `aws` (the test
venv's) on PATH. Only what a reader would have is given: the environment the guide names
(docs/client-side-encryption.md: AWS_ENDPOINT_URL and root's pair), or, where a guide points at
the default server (docs/cli.md: `./coffer-data`, `http://127.0.0.1:9000`), that text replaced
by the dedicated server's data dir and URL. Then the results are checked from outside.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import REGION, REPO_ROOT, _clean_env, coffer_bin

DOCS = REPO_ROOT / "docs"


def sh_blocks(doc: Path) -> list[str]:
    blocks = re.findall(r"^```sh\n(.*?)^```$", doc.read_text(), re.S | re.M)
    assert blocks, f"no ```sh block in {doc}"
    return blocks


def reader_env(tmp_path: Path, **extra: str) -> tuple[Path, Path, dict[str, str]]:
    """An empty working directory, a fresh HOME, and PATH with the binaries under test."""
    for tool in ("openssl", "jq", "sha256sum"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed; the guides use it", pytrace=False)
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    path = os.pathsep.join([str(coffer_bin().resolve().parent), str(Path(sys.executable).parent),
                            os.environ.get("PATH", "/usr/bin:/bin")])
    assert shutil.which("coffer", path=path) == str(coffer_bin().resolve().parent / "coffer")
    env = {**_clean_env(), "PATH": path, "HOME": str(home), "AWS_EC2_METADATA_DISABLED": "true",
           **extra}
    return work, home, env


def run_script(script: str, doc: Path, work: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (
        f"{doc.name}: the commands failed ({done.returncode}):\n{script}\n"
        f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")
    return done


def test_cse_guide_commands_run_as_written(make_server, tmp_path):
    doc = DOCS / "client-side-encryption.md"
    srv = make_server()
    work, home, env = reader_env(tmp_path, AWS_ENDPOINT_URL=srv.endpoint,
                                 AWS_ACCESS_KEY_ID=srv.access_key,
                                 AWS_SECRET_ACCESS_KEY=srv.secret_key, AWS_DEFAULT_REGION=REGION)
    done = None
    for block in sh_blocks(doc):
        done = run_script(block, doc, work, env)

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


def test_cli_guide_commands_run_as_written(make_server, tmp_path):
    doc = DOCS / "cli.md"
    srv = make_server(with_root_env=False)  # root's pair only in <data-dir>/credentials
    work, _, env = reader_env(tmp_path)
    script = "\n".join(sh_blocks(doc))
    assert "coffer-data/credentials" in script and "http://127.0.0.1:9000" in script
    script = (script.replace("coffer-data/credentials", str(srv.data_dir / "credentials"))
              .replace("http://127.0.0.1:9000", srv.endpoint))
    done = run_script(script, doc, work, env)

    # The stdin upload arrived whole, in parts; its sha256sum came back through stdout.
    text = (srv.data_dir / "credentials").read_text()
    srv.access_key = text.split("aws_access_key_id = ")[1].split()[0]
    srv.secret_key = text.split("aws_secret_access_key = ")[1].split()[0]
    got = srv.client().get_object(Bucket="backups", Key="random.bin")
    body = got["Body"].read()
    assert len(body) == 30_000_000 and got["ETag"].strip('"').endswith("-4"), got["ETag"]
    assert hashlib.sha256(body).hexdigest() in done.stdout, done.stdout
    assert "random.bin" in done.stdout
    assert '"access_key": "CAROLKEY"' in done.stdout, done.stdout
    assert "removed user carol" in done.stderr
    # Root's `coffer ls --owners` names carol as the owner of the bucket she made.
    assert re.search(r"Z  carol  carol-photos$", done.stdout, re.M), done.stdout


def test_access_control_cors_commands_run_as_written(make_server, tmp_path):
    """docs/access-control.md § CORS: the rules set with the aws CLI, read back, and a preflight
    by curl answered from them, by a reader whose aws CLI holds root's pair."""
    doc = DOCS / "access-control.md"
    section = doc.read_text().split("\n## CORS\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, re.S | re.M)
    assert blocks, "no ```sh block in the CORS section"
    srv = make_server()
    work, _, env = reader_env(tmp_path, AWS_ACCESS_KEY_ID=srv.access_key,
                              AWS_SECRET_ACCESS_KEY=srv.secret_key, AWS_DEFAULT_REGION=REGION)
    script = "\n".join(blocks)
    assert "http://127.0.0.1:9000" in script
    done = run_script(script.replace("http://127.0.0.1:9000", srv.endpoint), doc, work, env)
    rules = srv.client().get_bucket_cors(Bucket="photos")["CORSRules"]
    assert rules[0]["AllowedOrigins"] == ["https://*.example.com"], rules
    assert '"AllowedOrigins"' in done.stdout, done.stdout
    head = done.stdout.lower()
    assert "http/1.1 200" in head and "access-control-allow-origin: https://app.example.com" in head, (
        done.stdout)


def test_readme_tour_runs_as_written(make_server, tmp_path):
    """The quick tour, encryption at rest and users, in the directory that holds the server's
    data dir (the README's `coffer-data`), with the reader's files made first."""
    doc = REPO_ROOT / "README.md"
    srv = make_server(with_root_env=False)  # root's pair only in <data-dir>/credentials
    _, _, env = reader_env(tmp_path)
    work = srv.data_dir.parent
    (work / "holiday.jpg").write_bytes(os.urandom(200_000))
    (work / "big.iso").write_bytes(os.urandom(20_000_000))  # past the aws CLI's 8 MiB threshold
    (work / "album").mkdir()
    for n in range(3):
        (work / "album" / f"{n}.jpg").write_bytes(os.urandom(10_000))
    blocks = [b for b in sh_blocks(doc) if "s3 s3" in b or "coffer user" in b]
    assert len(blocks) == 3, blocks
    script = "\n".join(blocks)
    assert "coffer-data" in script and "http://127.0.0.1:9000" in script
    script = (script.replace("coffer-data", srv.data_dir.name)
              .replace("http://127.0.0.1:9000", srv.endpoint))
    # A reader types these into an interactive shell, where the tour's alias expands.
    done = run_script("shopt -s expand_aliases\n" + script, doc, work, env)

    assert '"AES256"' in done.stdout, done.stdout
    assert "not on disk in the clear" in done.stdout, done.stdout
    assert re.search(r"^700 ", done.stdout, re.M) and re.search(r"^600 ", done.stdout, re.M), \
        done.stdout
    presigned = r"^http://127\.0\.0\.1:\d+/photos/2026/holiday\.jpg\?.*Signature="
    assert re.search(presigned, done.stdout, re.M), "presign printed no URL"
    assert '"access_key": "BOBKEY"' in done.stdout, done.stdout
    text = (srv.data_dir / "credentials").read_text()
    srv.access_key = text.split("aws_access_key_id = ")[1].split()[0]
    srv.secret_key = text.split("aws_secret_access_key = ")[1].split()[0]
    names = {b["Name"] for b in srv.client().list_buckets()["Buckets"]}
    assert "photos" not in names and "notes" in names, names
