"""Gateway mode for the interop suite: a throwaway PostgreSQL cluster, an upstream S3 server
(a second `coffer`, embedded, storing what it is given as is) and `coffer server` gateways
over both (`--meta postgres://… --blobs s3://…`), and an nginx balancer in front of them that
sends each request to the next gateway (`Balancer`). `BalancedGateways` puts them together as
the session server of `COFFER_INTEROP_BACKEND=gateways` (see conftest.py, docs/testing.md).

PostgreSQL comes from Debian's `postgresql` package and nginx from `nginx-light` (scripts/test
installs both): initdb into a temporary directory, trust authentication on loopback, a port
picked here. initdb refuses to run as root, so as root the cluster belongs to the `postgres`
user (runuser).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from support import (
    STARTUP_TIMEOUT_S,
    STOP_TIMEOUT_S,
    CofferServer,
    ServerFactory,
    free_port,
    make_s3_client,
)


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

    def at_rest(self) -> dict[str, bytes]:
        """What lies at rest, by name: the `pg_dump` of the database, every object in the
        upstream bucket, every file in the upstream's data dir."""
        found = {"pg_dump": self.cluster.dump(self.database)}
        for key, data in self.upstream.objects(self.bucket).items():
            found[f"upstream object {key}"] = data
        for path in self.upstream.server.data_dir.rglob("*"):
            if path.is_file():
                found[f"upstream file {path}"] = path.read_bytes()
        return found


def wait_until(predicate, timeout: float = 10.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def requests_logged(server: CofferServer, op: str | None = None, path: str | None = None) -> int:
    """How many requests `server` logged (one `request` line each), of operation `op` on `path`
    if given."""
    count = 0
    for line in server.log_text().splitlines():
        if " coffer_api::server: request request_id=" not in line:
            continue
        if op is not None and f' op="{op}" ' not in line:
            continue
        if path is not None and f' path="{path}" ' not in line:
            continue
        count += 1
    return count


# --------------------------------------------------------------------------- balancer


def nginx_bin() -> str | None:
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    return found


def balancer_available() -> bool:
    return nginx_bin() is not None


_NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 2;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log notice;
events {{ worker_connections 1024; }}
http {{
    log_format balanced '$request_method $request_uri $status $upstream_addr';
    access_log {dir}/access.log balanced;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    # Round robin per request. A gateway is never taken out of the rotation and a failed
    # request is not retried on another: the tests see every failure.
    upstream gateways {{
        zone gateways 64k;
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        # Requests reach the gateways as clients sent them: any body size, any header.
        client_max_body_size 0;
        underscores_in_headers on;
        ignore_invalid_headers off;
        client_header_buffer_size 16k;
        large_client_header_buffers 8 64k;
        location / {{
            proxy_pass http://gateways;
            # HTTP/1.1 upstream, one connection per request (nginx's default: no keep-alive).
            proxy_http_version 1.1;
            # SigV4 and the OSS signatures cover Host: pass it on as the client sent it.
            proxy_set_header Host $http_host;
            # Stream bodies both ways, unbuffered (aws-chunked bodies pass as they are).
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_next_upstream off;
            proxy_redirect off;
            proxy_pass_header Server;
            proxy_pass_header Date;
            proxy_read_timeout 600s;
            proxy_send_timeout 600s;
        }}
    }}
}}
"""


class Balancer:
    """nginx (Debian's `nginx-light`) in front of servers, sending each request to the next one
    in turn: round robin per request, not per connection (clients keep their connection to
    nginx alive; nginx opens one to a server for each request).

    It changes nothing the servers verify: Host is passed on as the client sent it, bodies
    stream unbuffered both ways and of any size. nginx answers `Expect: 100-continue` itself,
    so the servers behind it never see one."""

    def __init__(self, backends: list[CofferServer]):
        binary = nginx_bin()
        if binary is None:
            pytest.fail("nginx is not installed (apt-get install nginx-light); "
                        "scripts/test installs it", pytrace=False)
        self.bin = binary
        self.backends = backends
        self.dir = Path(tempfile.mkdtemp(prefix="coffer-nginx-"))
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        assert self.port is not None, "balancer was never started"
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """(Re)writes the configuration for the backends' current ports and starts nginx."""
        assert self.proc is None or self.proc.poll() is not None, "balancer already running"
        (self.dir / "tmp").mkdir(exist_ok=True)
        self.port = self.port or free_port()
        servers = "\n".join(f"        server 127.0.0.1:{b.port} max_fails=0;"
                            for b in self.backends)
        conf = self.dir / "nginx.conf"
        conf.write_text(_NGINX_CONF.format(
            dir=self.dir, port=self.port, servers=servers,
            # As root, nginx's workers would otherwise run as `nobody`, locked out of self.dir.
            user="user root;" if os.geteuid() == 0 else ""))
        with open(self.dir / "nginx.out", "ab") as out:
            self.proc = subprocess.Popen(
                [self.bin, "-p", str(self.dir), "-e", str(self.dir / "error.log"), "-c", str(conf)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"nginx exited with status {self.proc.returncode}:\n{self.errors()}",
                            pytrace=False)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"nginx did not listen on {self.port}:\n{self.errors()}", pytrace=False)

    def errors(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in (self.dir / "nginx.out",
                                                                  self.dir / "error.log")
                         if p.is_file())

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def served(self) -> dict[int, int]:
        """Requests nginx passed on, by backend port (from its access log)."""
        counts: dict[int, int] = {}
        log = self.dir / "access.log"
        for line in (log.read_text(errors="replace") if log.is_file() else "").splitlines():
            match = re.search(r"127\.0\.0\.1:(\d+)$", line)
            if match:
                port = int(match.group(1))
                counts[port] = counts.get(port, 0) + 1
        return counts

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def assert_alternates(balancer: Balancer, servers: list[CofferServer], client, bucket: str,
                      requests: int = 20) -> list[int]:
    """`requests` GETs of one object over one kept-alive connection through `balancer`: each
    server must have logged at least a fair share less one (requests are dealt per request, not
    per connection). Returns the counts."""
    key = f"alternation-{uuid.uuid4().hex[:8]}"
    client.put_object(Bucket=bucket, Key=key, Body=b"which gateway?")
    path = f"/{bucket}/{key}"
    for _ in range(requests):
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"which gateway?"
    fair = requests // len(servers) - 1

    def counts():
        return [requests_logged(s, op="GetObject", path=path) for s in servers]

    wait_until(lambda: sum(counts()) >= requests, timeout=5)
    got = counts()
    assert sum(got) == requests and min(got) >= fair, (
        f"{requests} GETs through the balancer were served {got} by the servers "
        f"(nginx: {balancer.served()}): not alternating per request")
    client.delete_object(Bucket=bucket, Key=key)
    return got


class BalancedGateways:
    """Gateways behind a `Balancer`, standing in for the session's `CofferServer` in gateway
    mode (`COFFER_INTEROP_BACKEND=gateways`, see conftest.py): its endpoint is the balancer's
    and its credentials are the gateways' shared root pair, so every test's requests alternate
    between the gateways.

    It has no data dir: `at_rest()` gives instead what someone holding the database and the
    upstream bucket would have."""

    def __init__(self, factory: ServerFactory, count: int = 2,
                 extra_args: list[str] | None = None):
        self.cluster = PostgresCluster(factory.base)
        self.balancer: Balancer | None = None
        try:
            self.upstream = Upstream(factory)
            self.set = GatewaySet(factory, self.cluster, self.upstream, extra_args)
            for _ in range(count):
                self.set.add()
            self.gateways = self.set.gateways
            self.balancer = Balancer(self.gateways)
            self.balancer.start()
        except BaseException:
            # The servers are the factory's to stop; the cluster and nginx are ours.
            self.destroy()
            raise
        first = self.gateways[0]
        self.access_key, self.secret_key = first.access_key, first.secret_key
        # The first gateway's logs: test_secrets.py checks the session server's are searched
        # (every gateway's are, as every server's: support.SERVER_LOG_DIRS).
        self.log_dir = first.log_dir

    @property
    def endpoint(self) -> str:
        return self.balancer.endpoint

    @property
    def port(self) -> int:
        return self.balancer.port

    @property
    def data_dir(self) -> Path:
        pytest.fail("gateway mode: the session server has no data dir (metadata lie in "
                    "PostgreSQL, blobs upstream); read server.at_rest() instead", pytrace=False)

    def client(self, **kwargs):
        return make_s3_client(self.endpoint, self.access_key, self.secret_key, **kwargs)

    def log_text(self) -> str:
        return "\n".join(g.log_text() for g in self.gateways)

    def running(self) -> bool:
        return all(g.running() for g in self.gateways)

    def requests_served(self) -> list[int]:
        """Requests each gateway logged so far."""
        return [requests_logged(g) for g in self.gateways]

    def assert_alternates(self) -> list[int]:
        client = self.client()
        bucket = f"alternation-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=bucket)
        counts = assert_alternates(self.balancer, self.gateways, client, bucket)
        client.delete_bucket(Bucket=bucket)
        return counts

    def at_rest(self) -> dict[str, bytes]:
        return self.set.at_rest()

    def stop(self) -> int | None:
        """Stops the balancer and the gateways; a gateway's exit status that is not a clean
        one (0, or death by SIGTERM) if any, else the first gateway's."""
        self.balancer.stop()
        codes = [g.stop() for g in self.gateways]
        return next((rc for rc in codes if rc not in (0, -signal.SIGTERM)), codes[0])

    def destroy(self) -> None:
        """After `stop` (and the factory's `stop_all`): the cluster and nginx's files go."""
        if self.balancer is not None:
            self.balancer.destroy()
        self.cluster.destroy()


# ----------------------------------------------------------------------------- module fixtures
# The PostgreSQL cluster, server factory and upstream a gateway test module shares; a module
# takes them with `from gateway_support import cluster, factory, upstream`.

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pg = PostgresCluster(tmp_path_factory.mktemp("pg"))
    yield pg
    pg.destroy()


@pytest.fixture(scope="module")
def factory(tmp_path_factory):
    servers = ServerFactory(tmp_path_factory.mktemp("gateway-servers"))
    yield servers
    servers.stop_all(remove_data=True)


@pytest.fixture(scope="module")
def upstream(factory):
    return Upstream(factory)
