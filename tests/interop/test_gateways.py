"""Stateless gateways (issue 16): `coffer server --meta postgres://… --blobs s3://…`, several
of them over one PostgreSQL database and one upstream bucket, serving one store."""

from __future__ import annotations

import concurrent.futures
import os
import uuid

import pytest
from botocore.exceptions import ClientError

from gateway_support import GatewaySet, PostgresCluster, Upstream, postgres_available
from support import ServerFactory, error_code, http_status, unique_bucket_name

pytestmark = pytest.mark.skipif(not postgres_available(),
                                reason="PostgreSQL is not installed (scripts/test installs it)")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pg = PostgresCluster(tmp_path_factory.mktemp("pg"))
    yield pg
    pg.destroy()


@pytest.fixture(scope="module")
def factory(tmp_path_factory):
    f = ServerFactory(tmp_path_factory.mktemp("gw-servers"))
    yield f
    f.stop_all(remove_data=True)


@pytest.fixture(scope="module")
def upstream(factory):
    return Upstream(factory)


@pytest.fixture(scope="module")
def trio(factory, cluster, upstream):
    """Three gateways over one database and one upstream bucket."""
    gateways = GatewaySet(factory, cluster, upstream)
    for _ in range(3):
        gateways.add()
    return gateways


def test_read_and_list_after_write_from_any_gateway(trio):
    a, b, c = trio.clients()
    bucket = unique_bucket_name("gw")
    a.create_bucket(Bucket=bucket)
    body = os.urandom(300_000)
    put = b.put_object(Bucket=bucket, Key="k/one", Body=body)
    assert put["ServerSideEncryption"] == "AES256", "sealed by default on a gateway too"
    assert c.get_object(Bucket=bucket, Key="k/one")["Body"].read() == body
    assert a.get_object(Bucket=bucket, Key="k/one", Range="bytes=1000-1999")["Body"].read() \
        == body[1000:2000]
    listed = [o["Key"] for o in c.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == ["k/one"]
    a.delete_object(Bucket=bucket, Key="k/one")
    with pytest.raises(ClientError) as missing:
        b.head_object(Bucket=bucket, Key="k/one")
    assert http_status(missing.value) == 404


def test_multipart_across_gateways(trio):
    a, b, c = trio.clients()
    bucket = unique_bucket_name("gw-mp")
    a.create_bucket(Bucket=bucket)
    upload = a.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    parts, bodies = [], []
    for number, client in ((1, a), (2, b), (3, c)):
        body = os.urandom(5 * 1024 * 1024 if number < 3 else 123_457)
        bodies.append(body)
        etag = client.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=number,
                                  Body=body)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    listed = b.list_parts(Bucket=bucket, Key="big", UploadId=upload)["Parts"]
    assert [p["PartNumber"] for p in listed] == [1, 2, 3]
    c.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload,
                                MultipartUpload={"Parts": parts})
    assert a.get_object(Bucket=bucket, Key="big")["Body"].read() == b"".join(bodies)


def test_if_none_match_race_has_one_winner(trio):
    clients = trio.clients()
    bucket = unique_bucket_name("gw-race")
    clients[0].create_bucket(Bucket=bucket)
    for round_ in range(5):
        key = f"race-{round_}"

        def attempt(i):
            try:
                clients[i % 3].put_object(Bucket=bucket, Key=key, Body=f"writer {i}".encode(),
                                          IfNoneMatch="*")
                return i
            except ClientError as e:
                assert error_code(e) in ("PreconditionFailed", "ConditionalRequestConflict"), e
                return None

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            winners = [w for w in pool.map(attempt, range(6)) if w is not None]
        assert len(winners) == 1, winners
        body = clients[1].get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == f"writer {winners[0]}".encode()


def test_a_gateway_with_another_root_key_refuses_to_start(trio, factory):
    stranger = factory(start=False, extra_args=trio.args(), extra_env=trio.upstream.env())
    with pytest.raises(pytest.fail.Exception) as failed:
        stranger.start()
    message = str(failed.value)
    assert "root key" in message and "missing" in message, message
    # With a key of its own (not the first gateway's), it is refused by the root-key check.
    stranger.data_dir.mkdir(parents=True, exist_ok=True)
    (stranger.data_dir / "root.key").write_text("coffer-root-key-v1\n" + "ab" * 32 + "\n")
    os.chmod(stranger.data_dir / "root.key", 0o600)
    with pytest.raises(pytest.fail.Exception) as failed:
        stranger.start()
    message = str(failed.value)
    assert "sealed with another root key" in message, message


def test_gateways_with_one_passphrase_share_the_salt(factory, cluster, upstream, tmp_path):
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("correct horse battery staple\n")
    gateways = GatewaySet(factory, cluster, upstream,
                          extra_args=["--root-passphrase-file", str(passphrase)])
    first = gateways.add()
    second = gateways.add()
    assert not (first.data_dir / "root.key").exists(), "no key file with a passphrase"
    assert not (second.data_dir / "root.key").exists()
    a, b = first.client(), second.client()
    bucket = unique_bucket_name("gw-pass")
    a.create_bucket(Bucket=bucket)
    a.put_object(Bucket=bucket, Key="x", Body=b"under a passphrase")
    assert b.get_object(Bucket=bucket, Key="x")["Body"].read() == b"under a passphrase"
    salt = cluster.psql("SELECT value FROM gateway_settings WHERE name = 'root-salt'",
                        gateways.database)
    assert salt.startswith("coffer-root-salt-v1 argon2id"), salt


def test_shared_root_credentials_without_environment(factory, cluster, upstream):
    """Gateways started without COFFER_ROOT_* share the pair the first one generated."""
    gateways = GatewaySet(factory, cluster, upstream)
    first = factory(with_root_env=False, start=False, extra_args=gateways.args(),
                    extra_env=upstream.env())
    first.start()
    credentials = (first.data_dir / "credentials").read_text()
    second = factory(with_root_env=False, start=False, extra_args=gateways.args(),
                     extra_env=upstream.env())
    second.data_dir.mkdir(parents=True, mode=0o700)
    (second.data_dir / "root.key").write_bytes((first.data_dir / "root.key").read_bytes())
    os.chmod(second.data_dir / "root.key", 0o600)
    second.start()
    assert (second.data_dir / "credentials").read_text() == credentials
    assert oct((second.data_dir / "credentials").stat().st_mode & 0o777) == "0o600"


def test_at_rest_nothing_in_postgres_or_upstream(trio, cluster, upstream):
    a, b, _ = trio.clients()
    bucket = unique_bucket_name("gw-rest")
    a.create_bucket(Bucket=bucket)
    marker = f"MARKER-{uuid.uuid4().hex}".encode()
    body = marker * 2000
    b.put_object(Bucket=bucket, Key="secret.txt", Body=body)
    a.put_object(Bucket=bucket, Key="small.txt", Body=marker)
    assert a.get_object(Bucket=bucket, Key="secret.txt")["Body"].read() == body
    dump = cluster.dump(trio.database)
    # Object keys are bytea (pg_dump writes them as hex): look for both forms.
    assert marker not in dump and marker.hex().encode() not in dump
    assert b"secret.txt".hex().encode() in dump and bucket.encode() in dump, \
        "the dump holds the metadata (the grep reads the right thing)"
    stored = upstream.objects(trio.bucket)
    assert stored, "the upstream holds the blobs"
    for key, data in stored.items():
        assert marker not in data, key
        assert "secret" not in key and bucket not in key, "no names upstream"
    on_disk = b"".join(p.read_bytes() for p in upstream.server.data_dir.rglob("*") if p.is_file())
    assert marker not in on_disk
