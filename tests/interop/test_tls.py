"""HTTPS: versions, cipher suites, certificates (self-signed, reload, mutual TLS) and the
per-bucket TLS policy, driven by real TLS clients: `openssl s_client`, boto3, oss2, Python's
ssl module, and `sslscan` (a Debian package; scripts/test installs it).

Each scenario starts a dedicated server with `--tls-listen` beside its HTTP listener and no
`--allow-insecure-sse-c`. The default certificate is the self-signed one the server generates
into `<data-dir>/tls/self-signed.crt`; clients trust it by being given that file explicitly.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from unittest import mock

import boto3
import oss2
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError, SSLError

from oss_support import OSS_REGION
from support import (
    REGION,
    coffer_bin,
    destroy_bucket,
    error_code,
    free_port,
    make_s3_client,
    sign_request,
    unique_bucket_name,
)

S_CLIENT_TIMEOUT_S = 20
RELOAD_WAIT_S = 15.0


class TlsServer:
    """A dedicated server with HTTP and HTTPS listeners."""

    def __init__(self, srv, tls_port: int):
        self.srv = srv
        self.tls_port = tls_port

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    @property
    def http(self) -> str:
        return self.srv.endpoint

    @property
    def ca(self) -> str:
        """The generated self-signed certificate: the CA bundle clients are given."""
        return str(self.srv.data_dir / "tls" / "self-signed.crt")

    def s3(self, https: bool = True):
        """boto3 as root: over HTTPS trusting the self-signed certificate, or plain HTTP."""
        if https:
            return _s3_with_verify(self.https, self.srv.access_key, self.srv.secret_key, self.ca)
        return make_s3_client(self.http, self.srv.access_key, self.srv.secret_key,
                              checksum="when_required")


def _s3_with_verify(endpoint, access_key, secret_key, verify):
    """boto3 with an explicit `verify` (a CA bundle path, or True for the system store)."""
    cfg = Config(region_name=REGION, signature_version="s3v4", s3={"addressing_style": "path"},
                 retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10,
                 read_timeout=60, request_checksum_calculation="when_required")
    session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                    region_name=REGION)
    return session.client("s3", endpoint_url=endpoint, config=cfg, verify=verify)


@pytest.fixture
def tls_server(make_server):
    """Factory: a started server with an HTTPS listener and the given extra flags."""

    def make(*flags: str) -> TlsServer:
        port = free_port()
        srv = make_server(extra_args=["--tls-listen", f"127.0.0.1:{port}", *flags])
        return TlsServer(srv, port)

    return make


def s_client(port: int, *args: str) -> tuple[str | None, str | None, str]:
    """Handshake with `openssl s_client`: (version, cipher) negotiated, or (None, None)."""
    proc = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost", *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=S_CLIENT_TIMEOUT_S,
    )
    out = proc.stdout + proc.stderr
    m = re.search(r"New, (TLSv1\.[0-3]), Cipher is (\S+)", out)
    if m is None or proc.returncode != 0:
        return None, None, out
    return m.group(1), m.group(2), out


def tls_context(ca: str | None, *, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca) if ca else ssl._create_unverified_context()
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


def peer_fingerprint(port: int) -> str:
    """SHA-256 of the certificate a fresh connection is shown."""
    ctx = tls_context(None)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def pem_fingerprint(path: Path) -> str:
    der = ssl.PEM_cert_to_DER_cert(path.read_text())
    return hashlib.sha256(der).hexdigest()


def make_cert(directory: Path, name: str, *, ca: tuple[Path, Path] | None = None,
              cn: str = "localhost") -> tuple[Path, Path]:
    """(cert, key): ECDSA P-256, self-signed for localhost/127.0.0.1, or a client
    certificate signed by `ca` = (CA cert, CA key)."""
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)],
                   check=True, capture_output=True)
    if ca is None:
        subprocess.run(
            ["openssl", "req", "-x509", "-new", "-key", str(key), "-out", str(cert), "-days", "2",
             "-subj", f"/CN={cn}", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, capture_output=True)
    else:
        csr = directory / f"{name}.csr"
        subprocess.run(["openssl", "req", "-new", "-key", str(key), "-out", str(csr), "-subj", f"/CN={cn}"],
                       check=True, capture_output=True)
        ext = directory / f"{name}.ext"
        ext.write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
                       f"subjectAltName=DNS:{cn}\n")
        subprocess.run(
            ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext)],
            check=True, capture_output=True)
    return cert, key


def signed_get(port: int, ctx: ssl.SSLContext, path: str, access_key: str, secret_key: str):
    """A SigV4-signed GET over a connection made with `ctx`: (status, body, negotiated version)."""
    url = f"https://127.0.0.1:{port}{path}"
    signed = sign_request("GET", url, access_key, secret_key)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    try:
        conn.request("GET", path, headers=signed.headers)
        resp = conn.getresponse()
        return resp.status, resp.read(), conn.sock.version()
    finally:
        conn.close()


def deny_policy(bucket: str, condition: dict, sid: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": sid, "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            "Condition": condition,
        }],
    })


# --------------------------------------------------------------------------- versions, suites


def test_min_version_13_refuses_tls12(tls_server):
    srv = tls_server("--tls-min-version", "1.3")
    version, _, out = s_client(srv.tls_port, "-tls1_2")
    assert version is None, f"TLS 1.2 was accepted with --tls-min-version 1.3:\n{out}"
    version, cipher, out = s_client(srv.tls_port, "-tls1_3")
    assert version == "TLSv1.3", out
    assert cipher == "TLS_AES_256_GCM_SHA384", "the server's preference (AES-256) wins"


def test_max_version_12_refuses_tls13(tls_server):
    srv = tls_server("--tls-max-version", "1.2")
    version, _, out = s_client(srv.tls_port, "-tls1_3")
    assert version is None, f"TLS 1.3 was accepted with --tls-max-version 1.2:\n{out}"
    version, cipher, out = s_client(srv.tls_port, "-tls1_2")
    assert version == "TLSv1.2", out
    assert cipher == "ECDHE-ECDSA-AES256-GCM-SHA384", out


def test_cipher_suite_allow_list(tls_server):
    srv = tls_server("--tls-cipher-suites",
                     "TLS_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256")
    assert s_client(srv.tls_port, "-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256")[0] is None
    assert s_client(srv.tls_port, "-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384")[:2] == (
        "TLSv1.3", "TLS_AES_256_GCM_SHA384")
    assert s_client(srv.tls_port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384")[0] is None
    assert s_client(srv.tls_port, "-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305")[:2] == (
        "TLSv1.2", "ECDHE-ECDSA-CHACHA20-POLY1305")


@pytest.mark.parametrize("flags, message", [
    (["--tls-min-version", "1.0"], "TLS 1.0 is not supported"),
    (["--tls-min-version", "1.1"], "TLS 1.1 is not supported"),
    (["--tls-max-version", "TLSv1.1"], "TLS 1.1 is not supported"),
    (["--tls-min-version", "1.3", "--tls-max-version", "1.2"], "above the maximum"),
    (["--tls-cipher-suites", "TLS_RSA_WITH_RC4_128_SHA"], "supported (IANA names): TLS_AES_256_GCM_SHA384"),
    (["--tls-cert", "/nonexistent.pem"], "--tls-cert and --tls-key go together"),
])
def test_bad_tls_settings_refused_at_start(tmp_path, flags, message):
    proc = subprocess.run(
        [str(coffer_bin()), "server", "--data-dir", str(tmp_path / "data"), "--listen",
         f"127.0.0.1:{free_port()}", "--tls-listen", f"127.0.0.1:{free_port()}", *flags],
        env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "COFFER_"))},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode != 0, f"started with {flags}"
    assert message in proc.stderr, proc.stderr


def test_handshake_timeout_closes_silent_connections(tls_server):
    """Slow-client protection: a connection that never starts its handshake is closed."""
    srv = tls_server()
    with socket.create_connection(("127.0.0.1", srv.tls_port), timeout=30) as s:
        started = time.monotonic()
        assert s.recv(1) == b"", "the server closed the connection"
        assert time.monotonic() - started < 25


# --------------------------------------------------------------------------- SDKs over HTTPS


def test_boto3_over_https_with_the_self_signed_certificate(tls_server):
    srv = tls_server()
    s3 = srv.s3()
    bucket = unique_bucket_name("tls")
    s3.create_bucket(Bucket=bucket)
    try:
        s3.put_object(Bucket=bucket, Key="k", Body=b"over https")
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"over https"
        # SSE-C is accepted over TLS...
        key = os.urandom(32)
        s3.put_object(Bucket=bucket, Key="ssec", Body=b"customer key", SSECustomerAlgorithm="AES256",
                      SSECustomerKey=key)
        got = s3.get_object(Bucket=bucket, Key="ssec", SSECustomerAlgorithm="AES256", SSECustomerKey=key)
        assert got["Body"].read() == b"customer key"
        # ...and refused over the same server's plain HTTP (no --allow-insecure-sse-c).
        plain = srv.s3(https=False)
        with pytest.raises(ClientError) as ei:
            plain.put_object(Bucket=bucket, Key="ssec2", Body=b"x", SSECustomerAlgorithm="AES256",
                             SSECustomerKey=key)
        assert error_code(ei.value) == "InvalidRequest"
        assert "secure connection" in ei.value.response["Error"]["Message"]
        with pytest.raises(ClientError):
            plain.get_object(Bucket=bucket, Key="ssec", SSECustomerAlgorithm="AES256", SSECustomerKey=key)
        # Without the CA bundle the self-signed certificate is not trusted.
        untrusted = _s3_with_verify(srv.https, srv.srv.access_key, srv.srv.secret_key, True)
        with pytest.raises(SSLError):
            untrusted.list_buckets()
    finally:
        destroy_bucket(s3, bucket)


def oss2_https_bucket(srv: TlsServer, name: str, ctx: ssl.SSLContext | None = None) -> oss2.Bucket:
    """oss2 over HTTPS, trusting the server's CA bundle (through requests' `verify`)."""
    adapter = None
    if ctx is not None:
        class ContextAdapter(requests.adapters.HTTPAdapter):
            def init_poolmanager(self, *args, **kwargs):
                kwargs["ssl_context"] = ctx
                return super().init_poolmanager(*args, **kwargs)
        adapter = ContextAdapter()
    session = oss2.Session(adapter=adapter)
    session.session.verify = srv.ca
    # REQUESTS_CA_BUNDLE (set on some machines) would override `verify`.
    session.session.trust_env = False
    auth = oss2.Auth(srv.srv.access_key, srv.srv.secret_key)
    return oss2.Bucket(auth, srv.https, name, region=OSS_REGION, session=session, connect_timeout=30)


def test_oss2_over_https_and_https_config(tls_server):
    srv = tls_server()
    name = unique_bucket_name("osstls")
    b = oss2_https_bucket(srv, name)
    b.create_bucket()
    try:
        b.put_object("k", b"oss over https")
        assert b.get_object("k").read() == b"oss over https"
        # No httpsConfig yet: Enable=false.
        assert b.get_bucket_https_config().tls_enabled is False
        b.put_bucket_https_config(oss2.models.BucketTlsVersion(True, ["TLSv1.3"]))
        got = b.get_bucket_https_config()
        assert got.tls_enabled is True and got.tls_version == ["TLSv1.3"]
        # TLS 1.3 (what oss2 negotiates by default) passes.
        assert b.get_object("k").read() == b"oss over https"
        # oss2 pinned to TLS 1.2: refused by the bucket's rule, which the message names.
        old = oss2_https_bucket(srv, name, tls_context(srv.ca, version=ssl.TLSVersion.TLSv1_2))
        with pytest.raises(oss2.exceptions.AccessDenied) as ei:
            old.get_object("k")
        assert "httpsConfig" in ei.value.message and "TLSv1.2" in ei.value.message
        # Plain HTTP: refused too.
        plain = oss2.Bucket(oss2.Auth(srv.srv.access_key, srv.srv.secret_key), srv.http, name,
                            region=OSS_REGION)
        with pytest.raises(oss2.exceptions.AccessDenied) as ei:
            plain.get_object("k")
        assert "plain HTTP" in ei.value.message
        # TLSv1.0/1.1 alone cannot be configured: Coffer never negotiates them.
        with pytest.raises(oss2.exceptions.OssError) as ei:
            b.put_bucket_https_config(oss2.models.BucketTlsVersion(True, ["TLSv1.0", "TLSv1.1"]))
        assert ei.value.status == 400
        b.put_bucket_https_config(oss2.models.BucketTlsVersion(False, []))
        assert plain.get_object("k").read() == b"oss over https"
    finally:
        destroy_bucket(srv.s3(), name)


# --------------------------------------------------------------------------- bucket policy


def test_bucket_policy_requiring_tls13_refuses_tls12(tls_server):
    srv = tls_server()
    s3 = srv.s3()
    bucket = unique_bucket_name("tls13")
    s3.create_bucket(Bucket=bucket)
    try:
        s3.put_object(Bucket=bucket, Key="k", Body=b"tls 1.3 only")
        s3.put_bucket_policy(Bucket=bucket, Policy=deny_policy(
            bucket, {"NumericLessThan": {"s3:TlsVersion": "1.3"}}, "RequireTLS13"))
        assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"][0]["Sid"] == "RequireTLS13"
        ak, sk = srv.srv.access_key, srv.srv.secret_key
        status, body, version = signed_get(srv.tls_port, tls_context(srv.ca, version=ssl.TLSVersion.TLSv1_2),
                                           f"/{bucket}/k", ak, sk)
        assert version == "TLSv1.2"
        assert status == 403, body
        assert b"AccessDenied" in body and b"RequireTLS13" in body and b"s3:TlsVersion" in body
        status, body, version = signed_get(srv.tls_port, tls_context(srv.ca, version=ssl.TLSVersion.TLSv1_3),
                                           f"/{bucket}/k", ak, sk)
        assert (status, body, version) == (200, b"tls 1.3 only", "TLSv1.3")
        # boto3 (TLS 1.3 by default) is served.
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"tls 1.3 only"
        # boto3 pinned to TLS 1.2 is refused, with the rule in the message.
        with mock.patch("botocore.httpsession.create_urllib3_context",
                        lambda *a, **k: tls_context(None, version=ssl.TLSVersion.TLSv1_2)):
            old = srv.s3()
        with pytest.raises(ClientError) as ei:
            old.get_object(Bucket=bucket, Key="k")
        assert error_code(ei.value) == "AccessDenied"
        assert "RequireTLS13" in ei.value.response["Error"]["Message"]
    finally:
        s3.delete_bucket_policy(Bucket=bucket)
        destroy_bucket(s3, bucket)


def test_bucket_denying_insecure_transport_refuses_plain_http(tls_server):
    srv = tls_server()
    s3, plain = srv.s3(), srv.s3(https=False)
    bucket = unique_bucket_name("securetransport")
    s3.create_bucket(Bucket=bucket)
    try:
        s3.put_object(Bucket=bucket, Key="k", Body=b"secure only")
        s3.put_bucket_policy(Bucket=bucket, Policy=deny_policy(
            bucket, {"Bool": {"aws:SecureTransport": "false"}}, "DenyInsecureTransport"))
        for call in (lambda: plain.get_object(Bucket=bucket, Key="k"),
                     lambda: plain.put_object(Bucket=bucket, Key="k2", Body=b"x"),
                     lambda: plain.list_objects_v2(Bucket=bucket)):
            with pytest.raises(ClientError) as ei:
                call()
            assert error_code(ei.value) == "AccessDenied"
            assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
            message = ei.value.response["Error"]["Message"]
            assert "DenyInsecureTransport" in message and "plain HTTP" in message, message
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"secure only"
        # Root can always repair the rule itself, even over plain HTTP.
        plain.delete_bucket_policy(Bucket=bucket)
        assert plain.get_object(Bucket=bucket, Key="k")["Body"].read() == b"secure only"
        with pytest.raises(ClientError) as ei:
            s3.get_bucket_policy(Bucket=bucket)
        assert error_code(ei.value) == "NoSuchBucketPolicy"
        with pytest.raises(ClientError) as ei:
            s3.put_bucket_policy(Bucket=bucket, Policy='{"Version": "2012-10-17"}')
        assert error_code(ei.value) == "MalformedPolicy"
    finally:
        destroy_bucket(s3, bucket)


# --------------------------------------------------------------------------- certificates


def test_certificate_swap_on_disk_is_picked_up_without_restart(tls_server, tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    cert, key = make_cert(certs, "live")
    first = pem_fingerprint(cert)
    srv = tls_server("--tls-cert", str(cert), "--tls-key", str(key))
    assert peer_fingerprint(srv.tls_port) == first

    # A connection opened before the swap, kept alive across it.
    ctx = tls_context(None)
    kept = http.client.HTTPSConnection("127.0.0.1", srv.tls_port, context=ctx, timeout=30)
    kept.request("GET", "/")
    kept.getresponse().read()
    kept_sock = kept.sock

    def swap(name: str) -> str:
        new_cert, new_key = make_cert(certs, name)
        # Key first, then certificate, each by rename (what cert tooling does).
        os.replace(new_key, key)
        os.replace(new_cert, cert)
        return pem_fingerprint(cert)

    def wait_for(fingerprint: str) -> None:
        deadline = time.monotonic() + RELOAD_WAIT_S
        while peer_fingerprint(srv.tls_port) != fingerprint:
            assert time.monotonic() < deadline, "the new certificate was not picked up"
            time.sleep(0.2)

    second = swap("second")
    assert second != first
    wait_for(second)
    # The old connection is unharmed and still the one it was.
    kept.request("GET", "/")
    assert kept.getresponse().read()
    assert kept.sock is kept_sock
    assert hashlib.sha256(kept_sock.getpeercert(binary_form=True)).hexdigest() == first
    kept.close()

    # A bad new file keeps the old certificate and logs an error.
    cert.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    deadline = time.monotonic() + RELOAD_WAIT_S
    while "reload failed" not in srv.srv.log_text():
        assert time.monotonic() < deadline, "no error was logged for the bad certificate"
        time.sleep(0.2)
    assert peer_fingerprint(srv.tls_port) == second

    # SIGHUP reloads too.
    third = swap("third")
    os.kill(srv.srv.pid, signal.SIGHUP)
    deadline = time.monotonic() + RELOAD_WAIT_S
    while "certificate reloaded (SIGHUP)" not in srv.srv.log_text():
        assert time.monotonic() < deadline, "SIGHUP did not reload the certificate"
        time.sleep(0.2)
    assert peer_fingerprint(srv.tls_port) == third
    assert srv.srv.running()


def test_self_signed_certificate_generated_and_fingerprint_printed(tls_server):
    srv = tls_server()
    fingerprint = pem_fingerprint(Path(srv.ca))
    assert peer_fingerprint(srv.tls_port) == fingerprint
    printed = ":".join(fingerprint[i:i + 2] for i in range(0, 64, 2)).upper()
    assert printed in srv.srv.log_text()
    mode = (Path(srv.srv.data_dir) / "tls" / "self-signed.key").stat().st_mode
    assert mode & 0o077 == 0, "the private key is readable by its owner only"
    # The certificate verifies for both names it was made for.
    for host in ("localhost", "127.0.0.1"):
        with socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10) as raw:
            with tls_context(srv.ca).wrap_socket(raw, server_hostname=host):
                pass


def test_mutual_tls(tls_server, tmp_path):
    ca = make_cert(tmp_path, "client-ca", cn="Coffer test client CA")
    client_cert, client_key = make_cert(tmp_path, "client", ca=ca, cn="client")
    srv = tls_server("--tls-client-ca", str(ca[0]))

    def get(ctx: ssl.SSLContext) -> int:
        conn = http.client.HTTPSConnection("127.0.0.1", srv.tls_port, context=ctx, timeout=10)
        try:
            conn.request("GET", "/")
            return conn.getresponse().status
        finally:
            conn.close()

    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        get(tls_context(srv.ca))
    ctx = tls_context(srv.ca)
    ctx.load_cert_chain(str(client_cert), str(client_key))
    assert get(ctx) == 403, "the handshake passes; the unsigned request is then refused"
    # A certificate from another CA is refused.
    stranger_cert, stranger_key = make_cert(tmp_path, "stranger")
    ctx = tls_context(srv.ca)
    ctx.load_cert_chain(str(stranger_cert), str(stranger_key))
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        get(ctx)


# --------------------------------------------------------------------------- sslscan


@pytest.mark.skipif(shutil.which("sslscan") is None, reason="sslscan is not installed (scripts/test installs it)")
def test_sslscan_default_listener(tls_server):
    """No protocol below TLS 1.2, no weak suite, on the default HTTPS listener."""
    srv = tls_server()
    proc = subprocess.run(["sslscan", "--no-colour", f"127.0.0.1:{srv.tls_port}"],
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    for old in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"):
        assert re.search(rf"^{re.escape(old)}\s+disabled", out, re.M), f"{old} not disabled:\n{out}"
    for new in ("TLSv1.2", "TLSv1.3"):
        assert re.search(rf"^{re.escape(new)}\s+enabled", out, re.M), f"{new} not enabled:\n{out}"
    accepted = re.findall(r"^(?:Preferred|Accepted)\s+(TLSv1\.[0-3])\s+(\d+) bits\s+(\S+)", out, re.M)
    assert accepted, out
    for version, bits, cipher in accepted:
        assert version in ("TLSv1.2", "TLSv1.3"), (version, cipher)
        assert int(bits) >= 128, (version, bits, cipher)
        assert not re.search(r"RC4|DES|NULL|EXP|MD5|CBC|SHA$|anon", cipher), (version, cipher)
        assert "GCM" in cipher or "CHACHA20" in cipher, (version, cipher)
    assert "Insecure session renegotiation supported" not in out
    assert "Compression enabled" not in out
