"""Gateway mode for the interop suite: a throwaway PostgreSQL cluster, an upstream S3 server
(a second `coffer`, embedded, storing what it is given as is) and `coffer server` gateways
over both (`--meta postgres://… --blobs s3://…`).

PostgreSQL comes from Debian's `postgresql` package (scripts/test installs it): initdb into a
temporary directory, trust authentication on loopback, a port picked here. initdb refuses to
run as root, so as root the cluster belongs to the `postgres` user (runuser).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from support import CofferServer, ServerFactory, free_port, make_s3_client


def _postgres_bin() -> Path | None:
    base = Path("/usr/lib/postgresql")
    if not base.is_dir():
        return None
    versions = sorted((p for p in base.iterdir() if (p / "bin" / "initdb").is_file()),
                      key=lambda p: int(p.name) if p.name.isdigit() else 0)
    return versions[-1] / "bin" if versions else None


def postgres_available() -> bool:
    return _postgres_bin() is not None


class PostgresCluster:
    """One PostgreSQL cluster in a temporary directory, on a loopback port; stoppable and
    restartable on the same port (to show a gateway riding out a database restart)."""

    def __init__(self, base: Path):
        binary = _postgres_bin()
        if binary is None:
            pytest.fail("PostgreSQL is not installed (apt-get install postgresql); "
                        "scripts/test installs it", pytrace=False)
        self.bin = binary
        self.as_postgres = os.geteuid() == 0
        # The cluster dir must be reachable by `postgres` when run as root: not under a 0700 tmp.
        self.dir = Path(tempfile.mkdtemp(prefix="coffer-pg-", dir="/tmp"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = free_port()
        if self.as_postgres:
            subprocess.run(["chown", "-R", "postgres:postgres", str(self.dir)], check=True)
        self._run("initdb", "-D", str(self.data), "-U", "coffer", "--auth=trust",
                  "--encoding=UTF8", "--locale=C", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.dir}'\nmax_connections = 200\n"
                "fsync = on\nsynchronous_commit = on\n"
            )
        self.start()

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / tool), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            pytest.fail(f"{tool} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}",
                        pytrace=False)
        return result

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "coffer",
             "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            pytest.fail(f"psql failed: {result.stderr}", pytrace=False)
        return result.stdout

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database; returns its URL."""
        name = name or f"coffer_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgres://coffer@127.0.0.1:{self.port}/{database}"

    def dump(self, database: str) -> bytes:
        """`pg_dump` of one database, as the at-rest greps read it."""
        result = subprocess.run(
            [str(self.bin / "pg_dump"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "coffer",
             database], capture_output=True, timeout=300)
        if result.returncode != 0:
            pytest.fail(f"pg_dump failed: {result.stderr.decode(errors='replace')}",
                        pytrace=False)
        return result.stdout

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class Upstream:
    """The upstream S3 server gateways keep their blobs in: a `coffer` of its own, whose
    bucket stores what it is given as is (its default-encryption rule is `none`), so that what
    lies in its data dir is exactly what the gateways sent."""

    def __init__(self, factory: ServerFactory):
        self.server: CofferServer = factory()
        self.client = self.server.client()

    def bucket(self) -> str:
        name = f"blobs-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        self.client.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "none"}}]
            },
        )
        return name

    def blobs_url(self, bucket: str, prefix: str = "gw") -> str:
        return f"s3://{bucket}/{prefix}?endpoint={self.server.endpoint}&region=us-east-1"

    def env(self) -> dict[str, str]:
        return {
            "COFFER_BLOBS_ACCESS_KEY_ID": self.server.access_key,
            "COFFER_BLOBS_SECRET_ACCESS_KEY": self.server.secret_key,
        }

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every upstream object in `bucket`, key → bytes as stored."""
        found = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                found[item["Key"]] = self.client.get_object(
                    Bucket=bucket, Key=item["Key"])["Body"].read()
        return found


class GatewaySet:
    """Gateways over one database and one upstream bucket, sharing root credentials and one
    root key (the first gateway's key file, copied to the others' data dirs)."""

    def __init__(self, factory: ServerFactory, cluster: PostgresCluster, upstream: Upstream,
                 extra_args: list[str] | None = None):
        self.factory = factory
        self.cluster = cluster
        self.upstream = upstream
        self.database_url = cluster.create_database()
        self.database = self.database_url.rsplit("/", 1)[1]
        self.bucket = upstream.bucket()
        self.extra_args = list(extra_args or [])
        self.gateways: list[CofferServer] = []

    def args(self) -> list[str]:
        return ["--meta", self.database_url, "--blobs", self.upstream.blobs_url(self.bucket),
                *self.extra_args]

    def add(self, start: bool = True) -> CofferServer:
        gateway = self.factory(start=False, extra_args=self.args(), extra_env=self.upstream.env())
        if self.gateways:
            first = self.gateways[0]
            gateway.access_key, gateway.secret_key = first.access_key, first.secret_key
            gateway.data_dir.mkdir(parents=True, mode=0o700)
            if (first.data_dir / "root.key").exists():
                shutil.copyfile(first.data_dir / "root.key", gateway.data_dir / "root.key")
                os.chmod(gateway.data_dir / "root.key", 0o600)
        self.gateways.append(gateway)
        if start:
            gateway.start()
        return gateway

    def clients(self, **kwargs) -> list:
        return [make_s3_client(g.endpoint, g.access_key, g.secret_key, **kwargs)
                for g in self.gateways]


def wait_until(predicate, timeout: float = 10.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)
