"""Client-side encryption with the `coffer` CLI: cp/cat/ls/rm, every master-key kind, errors, rewrap.

What is pinned here (docs/client-side-encryption.md):
- `coffer cp --encrypt` with a KMS key, an AES key file or an RSA key stores ciphertext only; the
  metadata holds the wrapped key and nothing that reveals the data key or the master key; no
  request the CLI sends carries key material (checked through a recording proxy);
- `coffer cp`/`cat` down decrypt byte-exactly (whole, ranged, multipart), and fail closed: wrong
  key, altered metadata, tampered or truncated content ⇒ non-zero exit, a message, no file;
- `coffer cp s3://… s3://…` keeps the ciphertext and its metadata; `coffer cse rewrap` changes the
  master key without touching the content.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from support import destroy_bucket, free_port
from cse_support import (
    Coffer,
    MiB,
    RecordingProxy,
    aes_key_file,
    assert_metadata_hides,
    kms_client,
    raw_object,
    rsa_der_secrets,
    rsa_pair,
)

# A recognisable plaintext: any stored copy of it would be found.
MARKER = b"COFFER-CSE-PLAINTEXT-MARKER-"


def plaintext(size: int) -> bytes:
    block = MARKER + os.urandom(100)
    return (block * (size // len(block) + 1))[:size]


@pytest.fixture
def coffer(server) -> Coffer:
    return Coffer(server)


@pytest.fixture
def kms(server):
    return kms_client(server)


def assert_no_file_left(directory, name: str) -> None:
    leftovers = [p.name for p in directory.iterdir() if p.name == name or p.name.startswith(".coffer-download-")]
    assert not leftovers, f"a failed download left files behind: {leftovers}"


def data_key_of(metadata: dict[str, str], *, aes_key: bytes | None = None, rsa_key=None, kms=None) -> bytes:
    """The object's data key, recovered independently of Coffer (S3EC V3 wrapping rules)."""
    wrapped = base64.b64decode(metadata["x-amz-3"])
    if aes_key is not None:  # AES/GCM: nonce ‖ ciphertext ‖ tag, AAD "AES/GCM/NoPadding"
        return AESGCM(aes_key).decrypt(wrapped[:12], wrapped[12:], b"AES/GCM/NoPadding")
    if rsa_key is not None:  # RSA-OAEP-SHA1 over len ‖ key ‖ "AES/GCM/NoPadding"
        pseudo = rsa_key.decrypt(wrapped, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(),
                                                       label=None))
        return pseudo[1:1 + pseudo[0]]
    context = json.loads(metadata["x-amz-t"])
    return kms.decrypt(CiphertextBlob=wrapped, EncryptionContext=context)["Plaintext"]


# --------------------------------------------------------------------------- plain transfer


def test_plain_cp_cat_ls_rm(coffer, bucket, s3_required, tmp_path):
    small, large = plaintext(1000), plaintext(11 * MiB + 5)
    (tmp_path / "small").write_bytes(small)
    (tmp_path / "large").write_bytes(large)
    coffer("cp", str(tmp_path / "small"), f"s3://{bucket}/dir/")
    coffer("cp", str(tmp_path / "large"), f"s3://{bucket}/large", "--part-size", "5MiB", "--concurrency", "3")
    assert s3_required.get_object(Bucket=bucket, Key="dir/small")["Body"].read() == small
    stored = s3_required.head_object(Bucket=bucket, Key="large")
    assert stored["ETag"].strip('"').endswith("-3"), f"11 MiB in 5 MiB parts is a 3-part upload: {stored['ETag']}"
    assert s3_required.get_object(Bucket=bucket, Key="large")["Body"].read() == large

    coffer("cp", f"s3://{bucket}/large", str(tmp_path / "down"))
    assert (tmp_path / "down").read_bytes() == large
    assert coffer("cat", f"s3://{bucket}/dir/small").stdout == small
    assert coffer("cat", f"s3://{bucket}/large", "--range", "5242870-5242900").stdout == large[5242870:5242901]

    listing = coffer("ls", f"s3://{bucket}").stdout.decode()
    assert "PRE dir/" in listing and "large" in listing and "dir/small" not in listing
    assert "dir/small" in coffer("ls", f"s3://{bucket}", "--recursive").stdout.decode()
    assert bucket in coffer("ls").stdout.decode()

    coffer("cp", f"s3://{bucket}/large", f"s3://{bucket}/copy")
    assert s3_required.get_object(Bucket=bucket, Key="copy")["Body"].read() == large
    coffer("rm", f"s3://{bucket}/large")
    coffer.fails("cat", f"s3://{bucket}/large", expect="NoSuchKey")


# --------------------------------------------------------------------------- each master key


MASTER_KEYS = ["kms", "aes", "rsa"]


@pytest.mark.parametrize("kind", MASTER_KEYS)
def test_encrypted_round_trip_hides_plaintext_and_keys(kind, server, coffer, bucket, s3_required, kms, tmp_path):
    """Single PUT and multipart; raw object, metadata and every request are free of key material."""
    secrets: list[tuple[bytes, str]] = []
    unwrap = {}
    if kind == "kms":
        key_id = kms.create_key(Description=f"cse {uuid.uuid4().hex[:6]}")["KeyMetadata"]["KeyId"]
        write, read = ["--kms-key-id", key_id], ["--kms-key-id", key_id]
        unwrap["kms"] = kms
    elif kind == "aes":
        path, key = aes_key_file(coffer, tmp_path)
        write = read = ["--key-file", str(path)]
        secrets.append((key, "the AES master key"))
        unwrap["aes_key"] = key
    else:
        public, private, key = rsa_pair(tmp_path)
        write, read = ["--rsa-public-key", str(public)], ["--rsa-private-key", str(private)]
        secrets += [(s, "RSA private key material") for s in rsa_der_secrets(key)]
        unwrap["rsa_key"] = key

    proxy = RecordingProxy(server.port)
    try:
        via_proxy = Coffer(server, proxy.endpoint)
        for name, size in (("single", 300 * 1024 + 7), ("multi", 11 * MiB + 3)):
            data = plaintext(size)
            (tmp_path / name).write_bytes(data)
            via_proxy("cp", str(tmp_path / name), f"s3://{bucket}/{name}", "--encrypt", *write,
                      "--part-size", "5MiB")
            stored, metadata, _ = raw_object(s3_required, bucket, name)
            assert MARKER not in stored, f"{kind}/{name}: plaintext stored"
            assert len(stored) == size + 16, f"{kind}/{name}: GCM content is plaintext + 16-byte tag"
            assert metadata.get("x-amz-c") == "115" and "x-amz-3" in metadata, metadata
            data_key = data_key_of(metadata, **unwrap)
            assert len(data_key) == 32
            for secret, what in [*secrets, (data_key, "the data key")]:
                assert_metadata_hides(metadata, secret, what)
                proxy.assert_never_sent(secret, what)
            via_proxy("cp", f"s3://{bucket}/{name}", str(tmp_path / f"{name}.out"), *read)
            assert (tmp_path / f"{name}.out").read_bytes() == data, f"{kind}/{name}: decrypted bytes differ"
            for secret, what in [*secrets, (data_key, "the data key")]:
                proxy.assert_never_sent(secret, what)
        # A ranged read across the multipart boundary decrypts the exact bytes.
        data = (tmp_path / "multi").read_bytes()
        got = coffer("cat", f"s3://{bucket}/multi", "--range", f"{5 * MiB - 10}-{5 * MiB + 20}", *read).stdout
        assert got == data[5 * MiB - 10:5 * MiB + 21]
    finally:
        proxy.close()


def test_oss_format_and_aws_v2_round_trip(coffer, bucket, s3_required, tmp_path):
    path, _ = aes_key_file(coffer, tmp_path)
    data = plaintext(11 * MiB + 9)
    (tmp_path / "src").write_bytes(data)
    for fmt in ("oss", "aws-v2"):
        coffer("cp", str(tmp_path / "src"), f"s3://{bucket}/{fmt}", "--encrypt", "--format", fmt,
               "--key-file", str(path), "--part-size", "5MiB")
        stored, metadata, _ = raw_object(s3_required, bucket, fmt)
        assert MARKER not in stored
        if fmt == "oss":
            assert len(stored) == len(data)
            assert metadata["client-side-encryption-cek-alg"] == "AES/CTR/NoPadding"
            assert metadata["client-side-encryption-data-size"] == str(len(data))
            assert metadata["client-side-encryption-part-size"] == str(5 * MiB)
        else:
            assert metadata["x-amz-cek-alg"] == "AES/GCM/NoPadding" and len(stored) == len(data) + 16
        assert coffer("cat", f"s3://{bucket}/{fmt}", "--key-file", str(path)).stdout == data
        assert coffer("cat", f"s3://{bucket}/{fmt}", "--key-file", str(path), "--range", "17-4000").stdout \
            == data[17:4001]


def test_copy_between_buckets_keeps_encryption(coffer, bucket, s3_required, tmp_path):
    other = f"cse-{uuid.uuid4().hex[:12]}"
    s3_required.create_bucket(Bucket=other)
    try:
        path, _ = aes_key_file(coffer, tmp_path)
        data = plaintext(70_000)
        (tmp_path / "src").write_bytes(data)
        coffer("cp", str(tmp_path / "src"), f"s3://{bucket}/obj", "--encrypt", "--key-file", str(path))
        coffer("cp", f"s3://{bucket}/obj", f"s3://{other}/obj")
        a, b = raw_object(s3_required, bucket, "obj"), raw_object(s3_required, other, "obj")
        assert a[0] == b[0] and a[1] == b[1], "the copy changed the ciphertext or its metadata"
        assert coffer("cat", f"s3://{other}/obj", "--key-file", str(path)).stdout == data
    finally:
        destroy_bucket(s3_required, other)


# --------------------------------------------------------------------------- failures


def test_failures_leave_no_plaintext(coffer, bucket, s3_required, tmp_path):
    key_a, _ = aes_key_file(coffer, tmp_path, "a.key")
    key_b, _ = aes_key_file(coffer, tmp_path, "b.key")
    data = plaintext(200_000)
    (tmp_path / "src").write_bytes(data)
    coffer("cp", str(tmp_path / "src"), f"s3://{bucket}/obj", "--encrypt", "--key-file", str(key_a))
    out = tmp_path / "out"
    out.mkdir()
    dest = str(out / "plain")

    # No key, wrong key.
    coffer.fails("cp", f"s3://{bucket}/obj", dest, expect="client-side encrypted")
    coffer.fails("cp", f"s3://{bucket}/obj", dest, "--key-file", str(key_b), expect="wrong master key")
    assert_no_file_left(out, "plain")

    stored, metadata, _ = raw_object(s3_required, bucket, "obj")

    def put_raw(key, body, meta):
        s3_required.put_object(Bucket=bucket, Key=key, Body=body, Metadata=meta)

    # Tampered content: one flipped bit in the middle; truncated: the tag cut off.
    flipped = bytearray(stored)
    flipped[len(flipped) // 2] ^= 0x01
    put_raw("flipped", bytes(flipped), metadata)
    put_raw("truncated", stored[:-7], metadata)
    # Altered metadata: the key commitment, and the wrapped key.
    altered = dict(metadata)
    commitment = bytearray(base64.b64decode(altered["x-amz-d"]))
    commitment[0] ^= 0x80
    altered["x-amz-d"] = base64.b64encode(bytes(commitment)).decode()
    put_raw("altered-commitment", stored, altered)
    missing = {k: v for k, v in metadata.items() if k != "x-amz-i"}
    put_raw("missing-field", stored, missing)

    for key, expect in (("flipped", "tag mismatch"), ("truncated", "tag mismatch"),
                        ("altered-commitment", "commit"), ("missing-field", "x-amz-i")):
        coffer.fails("cp", f"s3://{bucket}/{key}", dest, "--key-file", str(key_a), expect=expect)
        assert_no_file_left(out, "plain")
        proc = coffer("cat", f"s3://{bucket}/{key}", "--key-file", str(key_a), check=False)
        assert proc.returncode != 0 and MARKER not in proc.stdout, f"{key}: cat released plaintext"

    # The untouched object still decrypts.
    coffer("cp", f"s3://{bucket}/obj", dest, "--key-file", str(key_a))
    assert (out / "plain").read_bytes() == data
    # Key options on an upload without --encrypt are refused rather than ignored.
    coffer.fails("cp", str(tmp_path / "src"), f"s3://{bucket}/x", "--key-file", str(key_a), expect="--encrypt")


# --------------------------------------------------------------------------- rewrap


def test_rewrap_changes_the_master_key_not_the_content(coffer, bucket, s3_required, kms, tmp_path):
    key_a, _ = aes_key_file(coffer, tmp_path, "a.key")
    public, private, _ = rsa_pair(tmp_path)
    kms_key = kms.create_key(Description="cse rewrap")["KeyMetadata"]["KeyId"]
    data = plaintext(150_000)
    (tmp_path / "src").write_bytes(data)
    for name in ("p/one", "p/two"):
        coffer("cp", str(tmp_path / "src"), f"s3://{bucket}/{name}", "--encrypt", "--key-file", str(key_a))
    before = {n: raw_object(s3_required, bucket, n) for n in ("p/one", "p/two")}

    out = coffer("cse", "rewrap", f"s3://{bucket}/p/one", "--from-key-file", str(key_a),
                 "--to-rsa-public-key", str(public)).stdout.decode()
    assert "rewrapped 1" in out
    # p/one is no longer under A: the recursive run rewraps p/two, reports p/one, exits non-zero.
    proc = coffer("cse", "rewrap", f"s3://{bucket}/p/", "--recursive", "--from-key-file", str(key_a),
                  "--to-kms-key-id", kms_key, check=False)
    err = proc.stderr.decode()
    assert proc.returncode != 0 and "p/one" in err and "wrong master key" in err, err

    for name, to_key in (("p/one", ["--rsa-private-key", str(private)]), ("p/two", ["--kms-key-id", kms_key])):
        stored, metadata, etag = raw_object(s3_required, bucket, name)
        old_stored, old_metadata, old_etag = before[name]
        assert stored == old_stored and etag == old_etag, f"{name}: rewrap changed the content"
        assert metadata["x-amz-3"] != old_metadata["x-amz-3"], f"{name}: the wrapped key did not change"
        assert coffer("cat", f"s3://{bucket}/{name}", *to_key).stdout == data
        coffer.fails("cat", f"s3://{bucket}/{name}", "--key-file", str(key_a), expect="master key")


def test_sha256_of_big_download_matches(coffer, bucket, tmp_path):
    """Multipart with more parts than --concurrency, encrypted in order, decrypted as one stream."""
    path, _ = aes_key_file(coffer, tmp_path)
    data = plaintext(23 * MiB + 1)
    (tmp_path / "src").write_bytes(data)
    coffer("cp", str(tmp_path / "src"), f"s3://{bucket}/big", "--encrypt", "--key-file", str(path),
           "--part-size", "5MiB", "--concurrency", "2")
    coffer("cp", f"s3://{bucket}/big", str(tmp_path), "--key-file", str(path))
    assert hashlib.sha256((tmp_path / "big").read_bytes()).digest() == hashlib.sha256(data).digest()


def test_https_endpoint_with_a_ca_file(make_server, tmp_path):
    """The CLI over HTTPS, trusting the server's self-signed certificate from AWS_CA_BUNDLE."""
    port = free_port()
    srv = make_server(extra_args=["--tls-listen", f"127.0.0.1:{port}"])
    ca = str(srv.data_dir / "tls" / "self-signed.crt")
    https = f"https://127.0.0.1:{port}"
    srv.client(checksum="when_required").create_bucket(Bucket="tls-cse")
    key, _ = aes_key_file(Coffer(srv), tmp_path)
    data = plaintext(6 * MiB + 1)
    (tmp_path / "src").write_bytes(data)
    secure = Coffer(srv, https, env={"AWS_CA_BUNDLE": ca})
    secure("cp", str(tmp_path / "src"), "s3://tls-cse/obj", "--encrypt", "--key-file", str(key),
           "--part-size", "5MiB")
    assert secure("cat", "s3://tls-cse/obj", "--key-file", str(key)).stdout == data
    # No CA file: refused with a message, nothing sent.
    Coffer(srv, https).fails("ls", "s3://tls-cse", expect="AWS_CA_BUNDLE")
    # A CA that did not sign the server's certificate: the handshake fails.
    (tmp_path / "other-ca.pem").write_bytes(self_signed_pem())
    Coffer(srv, https, env={"AWS_CA_BUNDLE": str(tmp_path / "other-ca.pem")}).fails(
        "ls", "s3://tls-cse", expect="certificate")


def self_signed_pem() -> bytes:
    """An unrelated self-signed CA certificate for 127.0.0.1."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the server's CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize("fmt", ["aws", "oss"])
def test_empty_file_round_trip(fmt, coffer, bucket, s3_required, tmp_path):
    path, _ = aes_key_file(coffer, tmp_path)
    (tmp_path / "empty").write_bytes(b"")
    coffer("cp", str(tmp_path / "empty"), f"s3://{bucket}/empty", "--encrypt", "--format", fmt,
           "--key-file", str(path))
    stored, _, _ = raw_object(s3_required, bucket, "empty")
    assert len(stored) == (16 if fmt == "aws" else 0), "an empty GCM object is just its tag"
    coffer("cp", f"s3://{bucket}/empty", str(tmp_path / "back"), "--key-file", str(path))
    assert (tmp_path / "back").read_bytes() == b""
