"""Client-side encryption interop: `coffer cp` against the SDKs that write the same formats.

- oss2 `CryptoBucket` with `RsaProvider` (RSA PKCS#1 v1.5 wrap) and `LocalRsaProvider` (RSA-OAEP)
  writes, single PUT and multipart (`MultipartUploadCryptoContext`) → `coffer cp` decrypts;
- `coffer cp --format oss` with an RSA key writes, single and multipart → oss2 `CryptoBucket` and
  alibabacloud-oss-v2 `EncryptionClient` (`MasterRsaCipher`) decrypt, whole and ranged;
- amazon-s3-encryption-client-python 4 (`KmsKeyring` on Coffer's KMS) writes → `coffer cp` decrypts,
  and `coffer cp --encrypt --kms-key-id` (single and multipart) → the S3EC decrypts.
"""

from __future__ import annotations

import os
import uuid

import alibabacloud_oss_v2 as oss
import oss2
import pytest
from oss2.models import MultipartUploadCryptoContext, PartInfo
from s3_encryption import S3EncryptionClient, S3EncryptionClientConfig
from s3_encryption.materials import KmsKeyring

from cse_support import Coffer, MiB, kms_client, raw_object, rsa_pair
from oss_support import OSS_REGION, oss2_auth

PART = 5 * MiB
SIZES = {"single": 300 * 1024 + 5, "multi": 11 * MiB + 7}


def data_of(size: int) -> bytes:
    return os.urandom(size)


@pytest.fixture
def coffer(server) -> Coffer:
    return Coffer(server)


@pytest.fixture(scope="module")
def rsa_keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp("rsa")
    public, private, _ = rsa_pair(directory)
    return public, private


def crypto_bucket(server, bucket: str, provider) -> oss2.CryptoBucket:
    return oss2.CryptoBucket(oss2_auth("v4", server.access_key, server.secret_key), server.endpoint, bucket,
                             crypto_provider=provider, region=OSS_REGION, connect_timeout=30)


def oss2_write(cb: oss2.CryptoBucket, key: str, data: bytes) -> None:
    """A single PUT, or a multipart upload in 5 MiB parts with the crypto context."""
    if len(data) <= PART:
        cb.put_object(key, data)
        return
    ctx = MultipartUploadCryptoContext(data_size=len(data), part_size=PART)
    upload_id = cb.init_multipart_upload(key, upload_context=ctx).upload_id
    parts = []
    for n, offset in enumerate(range(0, len(data), PART), start=1):
        result = cb.upload_part(key, upload_id, n, data[offset:offset + PART], upload_context=ctx)
        parts.append(PartInfo(n, result.etag))
    cb.complete_multipart_upload(key, upload_id, parts)


@pytest.mark.parametrize("provider_kind", ["RsaProvider", "LocalRsaProvider"])
def test_oss2_writes_coffer_reads(provider_kind, server, coffer, bucket, s3_required, rsa_keys, tmp_path):
    public, private = rsa_keys
    if provider_kind == "RsaProvider":
        provider = oss2.RsaProvider(key_pair={"public_key": public.read_text(), "private_key": private.read_text()})
        key_args = ["--rsa-private-key", str(private)]
        wrap_alg = "RSA/NONE/PKCS1Padding"
    else:
        # LocalRsaProvider generates its own pair (PKCS#1 PEM) into the directory.
        provider = oss2.LocalRsaProvider(dir=str(tmp_path / "oss-local-rsa"), key="k")
        key_args = ["--rsa-private-key", str(tmp_path / "oss-local-rsa" / "k.private_key.pem")]
        wrap_alg = "RSA/NONE/OAEPWithSHA-1AndMGF1Padding"
    cb = crypto_bucket(server, bucket, provider)
    for name, size in SIZES.items():
        data = data_of(size)
        oss2_write(cb, name, data)
        stored, metadata, _ = raw_object(s3_required, bucket, name)
        assert stored != data and metadata["client-side-encryption-wrap-alg"] == wrap_alg, metadata
        coffer("cp", f"s3://{bucket}/{name}", str(tmp_path / name), *key_args)
        assert (tmp_path / name).read_bytes() == data, f"{provider_kind}/{name}: coffer decrypted other bytes"
        got = coffer("cat", f"s3://{bucket}/{name}", *key_args, "--range", "1000-300000").stdout
        assert got == data[1000:300001]


def test_coffer_writes_oss_sdks_read(server, coffer, bucket, rsa_keys, tmp_path):
    public, private = rsa_keys
    provider = oss2.RsaProvider(key_pair={"public_key": public.read_text(), "private_key": private.read_text()})
    cb = crypto_bucket(server, bucket, provider)
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(server.access_key, server.secret_key)
    cfg.endpoint, cfg.region, cfg.use_path_style = server.endpoint, OSS_REGION, True
    v2 = oss.EncryptionClient(oss.Client(cfg), oss.crypto.MasterRsaCipher(public_key=public.read_text(),
                                                                          private_key=private.read_text()))
    for name, size in SIZES.items():
        data = data_of(size)
        (tmp_path / name).write_bytes(data)
        coffer("cp", str(tmp_path / name), f"s3://{bucket}/{name}", "--encrypt", "--format", "oss",
               "--rsa-public-key", str(public), "--oss-rsa-padding", "pkcs1", "--part-size", "5MiB")
        assert cb.get_object(name).read() == data, f"oss2 could not decrypt coffer's {name}"
        assert cb.get_object(name, byte_range=(1001, 200000)).read() == data[1001:200001]
        result = v2.get_object(oss.GetObjectRequest(bucket=bucket, key=name))
        assert result.body.read() == data, f"alibabacloud-oss-v2 could not decrypt coffer's {name}"
        ranged = v2.get_object(oss.GetObjectRequest(bucket=bucket, key=name, range_header="bytes=77-5242999",
                                                    range_behavior="standard"))
        assert ranged.body.read() == data[77:5243000]


def s3ec_client(server, key_id: str) -> S3EncryptionClient:
    # A client of its own: the S3EC installs event handlers on the client it wraps.
    keyring = KmsKeyring(kms_client=kms_client(server), kms_key_id=key_id)
    return S3EncryptionClient(wrapped_s3_client=server.client(checksum="when_required"),
                              config=S3EncryptionClientConfig(keyring=keyring))


def test_s3_encryption_client_interop(server, coffer, bucket, s3_required, tmp_path):
    key_id = kms_client(server).create_key(Description=f"s3ec {uuid.uuid4().hex[:6]}")["KeyMetadata"]["KeyId"]
    s3ec = s3ec_client(server, key_id)

    # S3EC writes, coffer reads.
    data = data_of(SIZES["single"])
    s3ec.put_object(Bucket=bucket, Key="by-s3ec", Body=data)
    stored, metadata, _ = raw_object(s3_required, bucket, "by-s3ec")
    assert stored != data and metadata.get("x-amz-c") == "115", metadata
    coffer("cp", f"s3://{bucket}/by-s3ec", str(tmp_path / "by-s3ec"), "--kms-key-id", key_id)
    assert (tmp_path / "by-s3ec").read_bytes() == data

    # coffer writes (single and multipart, V3 and V2), S3EC reads.
    for name, size in SIZES.items():
        for fmt in ("aws", "aws-v2"):
            data = data_of(size)
            (tmp_path / name).write_bytes(data)
            coffer("cp", str(tmp_path / name), f"s3://{bucket}/{name}-{fmt}", "--encrypt", "--format", fmt,
                   "--kms-key-id", key_id, "--part-size", "5MiB")
            if fmt == "aws-v2":
                # The S3EC refuses V2 (non-committing) objects unless its policy allows them.
                from s3_encryption.materials import CommitmentPolicy
                reader = S3EncryptionClient(
                    wrapped_s3_client=server.client(checksum="when_required"),
                    config=S3EncryptionClientConfig(
                        keyring=KmsKeyring(kms_client=kms_client(server), kms_key_id=key_id),
                        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT))
            else:
                reader = s3ec
            got = reader.get_object(Bucket=bucket, Key=f"{name}-{fmt}")["Body"].read()
            assert got == data, f"the S3 Encryption Client could not decrypt coffer's {name}-{fmt}"
