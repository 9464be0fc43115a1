"""Packaging: what `coffer` says about itself and the files in packaging/.

- `coffer --version`: version, the commit it was built from (a commit of this repository, or
  "unknown" outside git) and the build date (UTC).
- `coffer completions bash|zsh|fish` name every subcommand; the bash script parses (`bash -n`)
  and, sourced, completes `coffer s` to `server sse`.
- `coffer man` is a roff page that `man -l` renders, naming every subcommand; `--out-dir`
  writes a page per subcommand.
- packaging/coffer.service passes `systemd-analyze verify` (when systemd-analyze is installed)
  and carries the hardening keys; packaging/Dockerfile is multi-stage, runs as a non-root
  user, and its HEALTHCHECK command, run as written, passes against a live server's
  /health/live and fails against a stopped one.
"""

from __future__ import annotations

import datetime
import json
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from support import REPO_ROOT, _clean_env, coffer_bin

PACKAGING = REPO_ROOT / "packaging"


def coffer(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([str(coffer_bin()), *args], env=_clean_env(), capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"coffer {' '.join(args)}: {done.stderr}"
    return done


def subcommands() -> list[str]:
    """The subcommands `coffer --help` lists (help aside)."""
    text = coffer("--help").stdout
    section = text.split("Commands:")[1].split("Options:")[0]
    names = [line.split()[0] for line in section.splitlines() if line.strip()]
    names = [n for n in names if n != "help"]
    assert {"server", "cp", "ls", "cat", "rm", "user", "kms", "sse", "bench", "completions",
            "man"} <= set(names), names
    return names


# --------------------------------------------------------------------------- --version


def test_version_names_release_commit_and_build_date():
    out = coffer("--version").stdout.strip()
    match = re.fullmatch(r"coffer (\d+\.\d+\.\d+) \(commit ([0-9a-f]{7,40}|unknown), "
                         r"built (\d{4}-\d{2}-\d{2}) UTC\)", out)
    assert match, out
    version, commit, built = match.groups()
    cargo_toml = (REPO_ROOT / "Cargo.toml").read_text()
    assert f'version = "{version}"' in cargo_toml, version
    if (REPO_ROOT / ".git").exists() and shutil.which("git"):
        # Built from this checkout: the commit is one of its own.
        known = subprocess.run(["git", "-C", str(REPO_ROOT), "cat-file", "-e", f"{commit}^{{commit}}"],
                               capture_output=True)
        assert known.returncode == 0, f"commit {commit} is not in this repository"
    built_date = datetime.date.fromisoformat(built)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    assert datetime.date(2025, 1, 1) <= built_date <= today, built


# --------------------------------------------------------------------------- completions


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completions_name_every_subcommand(shell):
    script = coffer("completions", shell).stdout
    assert len(script) > 1000, script[:200]
    for name in subcommands():
        assert re.search(rf"\b{re.escape(name)}\b", script), f"{shell} completion lacks {name}"
    # Options of subcommands too, not just their names.
    assert "endpoint-url" in script and "new-access-key" in script
    checker = {"bash": ["bash", "-n"], "zsh": ["zsh", "-n"], "fish": ["fish", "--no-execute"]}[shell]
    if shutil.which(checker[0]) is None:
        pytest.skip(f"{checker[0]} is not installed: the script's syntax is not checked")
    done = subprocess.run(checker, input=script, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_bash_completion_completes(tmp_path):
    # Sourced from a file: the script is larger than one argument may be (128 KiB).
    script = tmp_path / "coffer.bash"
    script.write_text(coffer("completions", "bash").stdout)
    probe = (f"source {script}\nCOMP_WORDS=(coffer s); COMP_CWORD=1; _coffer coffer s coffer; "
             "echo \"${COMPREPLY[@]}\"\n"
             "COMP_WORDS=(coffer user add bob --new-a); COMP_CWORD=4; _coffer coffer --new-a add; "
             "echo \"${COMPREPLY[@]}\"\n")
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()[-2:]
    assert set(first.split()) == {"server", "sse"}, first
    assert second.split() == ["--new-access-key"], second


# --------------------------------------------------------------------------- man page


def test_man_page_renders_and_names_every_subcommand(tmp_path):
    page = coffer("man").stdout
    assert page.lstrip().splitlines()[2].startswith(".TH coffer 1 "), page[:300]
    for section in (".SH NAME", ".SH SYNOPSIS", ".SH SUBCOMMANDS"):
        assert section in page
    for name in subcommands():
        assert f"coffer\\-{name.replace('-', chr(92) + '-')}(1)" in page, f"the man page lacks {name}"
    (tmp_path / "coffer.1").write_text(page)
    if shutil.which("man") is None:
        pytest.skip("man is not installed: the page is not rendered")
    done = subprocess.run(["man", "-l", str(tmp_path / "coffer.1")], capture_output=True, text=True,
                          timeout=30, env={**_clean_env(), "MANPAGER": "cat", "MANWIDTH": "100"})
    assert done.returncode == 0, done.stderr
    assert "NAME" in done.stdout and "S3-compatible object store" in done.stdout, done.stdout[:500]
    assert "coffer-server(1)" in done.stdout

    pages = tmp_path / "pages"
    coffer("man", "--out-dir", str(pages))
    written = {p.name for p in pages.iterdir()}
    assert {"coffer.1", "coffer-server.1", "coffer-cp.1", "coffer-kms-create-key.1"} <= written, written
    assert "\\-\\-new\\-access\\-key" in (pages / "coffer-user-add.1").read_text()


# --------------------------------------------------------------------------- systemd unit


def unit_settings(text: str) -> dict[str, list[str]]:
    """`Key=value` lines by key (a key may repeat), comments and sections aside."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_systemd_unit_is_hardened():
    text = (PACKAGING / "coffer.service").read_text()
    s = unit_settings(text)
    one = {k: v[-1] for k, v in s.items()}
    assert one["ExecStart"] == "/usr/local/bin/coffer server --config /etc/coffer/coffer.toml"
    assert one["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert (one["User"], one["Group"]) == ("coffer", "coffer")
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
                       "ProtectKernelModules": "yes", "ProtectControlGroups": "yes",
                       "RestrictSUIDSGID": "yes", "MemoryDenyWriteExecute": "yes",
                       "CapabilityBoundingSet": "", "AmbientCapabilities": "",
                       "ReadWritePaths": "/var/lib/coffer", "StateDirectory": "coffer",
                       "StateDirectoryMode": "0700", "UMask": "0077"}.items():
        assert one.get(key) == value, f"{key}={one.get(key)!r}, expected {value!r}"
    assert set(one["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert "@system-service" in s["SystemCallFilter"]
    # The example config the unit points at keeps its data dir where the unit may write.
    config = PACKAGING / "coffer.toml"
    if config.exists():
        assert re.search(r'^data_dir = "/var/lib/coffer"$', config.read_text(), re.M), (
            "packaging/coffer.toml's data_dir is not the unit's ReadWritePaths")


def test_reload_never_stops_a_server(make_server):
    """The unit's ExecReload sends SIGHUP; a plain-HTTP server with no access log (nothing to
    reload) must keep serving, not die of SIGHUP's default action."""
    srv = make_server()
    srv.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert srv.running(), "SIGHUP stopped the server"
    srv.client().list_buckets()


def test_systemd_analyze_verifies_the_unit(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (the hardening keys are checked above)")
    # verify checks that ExecStart exists and that Documentation=man:coffer(1) resolves:
    # point them at the binary under test and its own man page.
    unit = tmp_path / "coffer.service"
    unit.write_text((PACKAGING / "coffer.service").read_text()
                    .replace("/usr/local/bin/coffer", str(coffer_bin())))
    (tmp_path / "man" / "man1").mkdir(parents=True)
    (tmp_path / "man" / "man1" / "coffer.1").write_text(coffer("man").stdout)
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                          timeout=60, env={**_clean_env(), "MANPATH": str(tmp_path / "man")})
    assert done.returncode == 0 and "coffer.service" not in done.stderr, done.stderr


# --------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (PACKAGING / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_multi_stage_and_runs_unprivileged():
    instructions = dockerfile_instructions()
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert len(froms) == 2 and re.match(r"rust:1\.\d+-bookworm AS builder$", froms[0]), froms
    assert froms[1] == "debian:bookworm-slim", froms
    final = instructions[[i for i, (w, _) in enumerate(instructions) if w == "FROM"][1]:]
    words = {w: r for w, r in final}
    assert words["USER"] == "coffer:coffer"
    assert "--uid 10001" in words["RUN"] and "/var/lib/coffer" in words["RUN"]
    assert words["VOLUME"] == '["/var/lib/coffer"]'
    assert set(words["EXPOSE"].split()) == {"9000", "9443"}
    assert "COPY --from=builder" in " ".join(f"{w} {r}" for w, r in final)
    assert words["ENTRYPOINT"] == '["coffer"]' and words["CMD"] == '["server"]'
    assert "/health/live" in words["HEALTHCHECK"]
    ignore = (PACKAGING / "Dockerfile.dockerignore").read_text().split()
    assert "target/" in ignore and ".git/" in ignore


def healthcheck_command(port: int) -> list[str]:
    """The HEALTHCHECK's exec form, pointed at `port` instead of the image's 9000."""
    rest = dict(dockerfile_instructions())["HEALTHCHECK"]
    command = json.loads(rest[rest.index("CMD ") + 4:])
    assert command[:2] == ["bash", "-c"], command
    assert "/dev/tcp/127.0.0.1/9000" in command[2]
    return [*command[:2], command[2].replace("/dev/tcp/127.0.0.1/9000", f"/dev/tcp/127.0.0.1/{port}")]


def test_dockerfile_healthcheck_probes_health_live(make_server):
    srv = make_server()
    done = subprocess.run(healthcheck_command(srv.port), capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    srv.stop()
    done = subprocess.run(healthcheck_command(srv.port), capture_output=True, text=True, timeout=10)
    assert done.returncode != 0, "the health check passed against a stopped server"


def test_packaging_doc_commands_name_real_files():
    """docs/packaging.md installs files that exist, with flags the binary has."""
    doc = (REPO_ROOT / "docs" / "packaging.md").read_text()
    for path in re.findall(r"\bpackaging/[\w.-]+", doc):
        assert (REPO_ROOT / path).exists() or path == "packaging/coffer.toml", path
    blocks = re.findall(r"```sh\n(.*?)```", doc, re.S)
    commands = [shlex.split(line, comments=True) for block in blocks for line in block.splitlines()]
    used = {c[1] for c in commands if len(c) > 1 and c[0] == "coffer"}
    assert {"completions", "man"} <= used, used
    assert used <= set(subcommands()) | {"--version"}, used
