"""packaging/coffer.toml, the example configuration, is complete and works.

- Every `--flag` of `coffer server --help` has a key in the example (its name without dashes;
  flags with no key are listed in FLAGS_WITHOUT_KEY, each with its reason; keys shown only
  commented out, in KEYS_SHOWN_COMMENTED).
- A server starts with the example itself, its paths and ports moved to a temporary directory,
  and every key visibly takes effect: HTTP and HTTPS (with the given certificate, client
  certificates required), the region, the root passphrase, the web console, the admin
  listener with its metrics token, and the access log.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import tomllib
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, SSLError

from support import REPO_ROOT, coffer_bin, free_port
from test_tls import make_cert

EXAMPLE = REPO_ROOT / "packaging" / "coffer.toml"

# Flags that have no config-file key, and why.
FLAGS_WITHOUT_KEY = {
    "config": "names the file itself",
    "help": "prints help",
}
# Flags whose key is spelled differently.
KEY_OF_FLAG = {"domain": "domains"}
# Keys the example shows commented out, and why: setting them would override a default that
# the server sizes to its host.
KEYS_SHOWN_COMMENTED = {
    "metadata_cache": "its default is a share of the host's (or cgroup's) memory",
}


def help_flags() -> set[str]:
    text = subprocess.run([str(coffer_bin()), "server", "--help"], capture_output=True,
                          text=True, check=True, env={"PATH": "/usr/bin:/bin"}).stdout
    return set(re.findall(r"^\s+(?:-\w, )?--([a-z0-9-]+)", text, re.MULTILINE))


def test_every_flag_has_a_key_in_the_example():
    flags = help_flags()
    assert {"data-dir", "listen", "admin-listen", "access-log"} <= flags, flags
    text = EXAMPLE.read_text()
    keys = set(tomllib.loads(text))
    for key in KEYS_SHOWN_COMMENTED:
        assert key not in keys, f"{key} is set in the example, which overrides its default"
        assert re.search(rf"^# {key} = ", text, re.MULTILINE), f"{key} is not shown in the example"
        keys.add(key)
    missing = sorted(f for f in flags - set(FLAGS_WITHOUT_KEY)
                     if KEY_OF_FLAG.get(f, f.replace("-", "_")) not in keys)
    assert not missing, f"flags with no key in packaging/coffer.toml: {missing}"
    unknown = sorted(keys - {KEY_OF_FLAG.get(f, f.replace("-", "_")) for f in flags})
    assert not unknown, f"keys in the example that no flag has: {unknown}"


def test_a_server_starts_with_the_example(tmp_path):
    etc, data, logs = tmp_path / "etc", tmp_path / "data", tmp_path / "log"
    (etc / "tls").mkdir(parents=True)
    logs.mkdir()
    cert, key = make_cert(etc / "tls", "server")
    ca_cert, ca_key = make_cert(etc / "tls", "clients-ca", cn="Coffer test clients")
    client_cert, client_key = make_cert(etc / "tls", "client", ca=(ca_cert, ca_key), cn="client")
    (etc / "root-passphrase").write_text("a long passphrase for the example config\n")
    token = "example-metrics-token-7f3a"
    (etc / "metrics-token").write_text(token + "\n")
    http_port, tls_port, admin_port, console_port = free_port(), free_port(), free_port(), free_port()

    text = EXAMPLE.read_text()
    for old, new in [("/var/lib/coffer", str(data)), ("/var/log/coffer", str(logs)),
                     ("/etc/coffer/tls/cert.pem", str(cert)), ("/etc/coffer/tls/key.pem", str(key)),
                     ("/etc/coffer/tls/clients-ca.pem", str(ca_cert)), ("/etc/coffer", str(etc)),
                     ("127.0.0.1:9000", f"127.0.0.1:{http_port}"),
                     ("127.0.0.1:9443", f"127.0.0.1:{tls_port}"),
                     ("127.0.0.1:9100", f"127.0.0.1:{admin_port}"),
                     ("127.0.0.1:9001", f"127.0.0.1:{console_port}"),
                     ('region = "us-east-1"', 'region = "eu-example-1"')]:
        assert old in text, old
        text = text.replace(old, new)
    config = tmp_path / "coffer.toml"
    config.write_text(text)

    access_key, secret_key = "EXAMPLECONFIGROOT", "example-config-root-secret-0123456789"
    env = {"PATH": "/usr/bin:/bin", "COFFER_ROOT_ACCESS_KEY": access_key,
           "COFFER_ROOT_SECRET_KEY": secret_key}
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([str(coffer_bin()), "server", "--config", str(config)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        admin = f"http://127.0.0.1:{admin_port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if requests.get(f"{admin}/health/ready", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "not ready within 30 s"
            time.sleep(0.1)

        assert not (data / "root.key").exists(), "the root key comes from the passphrase"
        console = requests.get(f"http://127.0.0.1:{console_port}/console/", timeout=5)
        assert console.status_code == 200 and "text/html" in console.headers["content-type"]
        assert requests.get(f"{admin}/metrics", timeout=5).status_code == 401
        assert requests.get(f"{admin}/metrics", timeout=5,
                            headers={"Authorization": f"Bearer {token}"}).status_code == 200

        # HTTP, in the configured region.
        def client(endpoint: str, region: str, **config):
            return boto3.session.Session().client(
                "s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=access_key,
                aws_secret_access_key=secret_key, verify=str(cert),
                config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"},
                              **config))
        http_url, https_url = f"http://127.0.0.1:{http_port}", f"https://localhost:{tls_port}"
        plain = client(http_url, "eu-example-1")
        plain.create_bucket(Bucket="example-config",
                            CreateBucketConfiguration={"LocationConstraint": "eu-example-1"})
        assert plain.get_bucket_location(Bucket="example-config")["LocationConstraint"] \
            == "eu-example-1"

        # HTTPS with the configured certificate; a client certificate is required.
        mutual = client(https_url, "eu-example-1", client_cert=(str(client_cert), str(client_key)))
        assert [b["Name"] for b in mutual.list_buckets()["Buckets"]] == ["example-config"]
        with pytest.raises((SSLError, EndpointConnectionError, ConnectionClosedError)):
            client(https_url, "eu-example-1").list_buckets()

        deadline = time.monotonic() + 10
        access_log = logs / "access.log"
        while (not access_log.exists() or access_log.read_text().count("\n") < 3) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        entries = [json.loads(line) for line in access_log.read_text().splitlines()]
        assert [(e["operation"], e["status"], e["tls"]) for e in entries] == \
            [("CreateBucket", 200, None), ("GetBucketLocation", 200, None),
             ("ListBuckets", 200, "TLSv1.3")], entries
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
