"""The AWS KMS JSON protocol: `aws kms …` (CLI v1) and boto3's KMS client against coffer.

Covers key lifecycle, aliases, data keys, encryption context, rotation and BYOK
(import of key material wrapped with RSA-OAEP-SHA-256 by the `cryptography`
package, as the AWS docs describe). Every test makes its own keys.
"""

from __future__ import annotations

import base64
import json
import os
import uuid

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization

from support import REGION, wrap_for_import


def kms_client(endpoint: str, access_key: str, secret_key: str):
    session = boto3.session.Session(
        aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=REGION
    )
    cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60)
    return session.client("kms", endpoint_url=endpoint, config=cfg)


@pytest.fixture(scope="module")
def kms(server):
    """boto3's KMS client as root."""
    return kms_client(server.endpoint, server.access_key, server.secret_key)


def kms_error(fn, code: str, *args, **kwargs) -> ClientError:
    """Call fn and assert it fails with the KMS exception `code`."""
    with pytest.raises(ClientError) as ei:
        fn(*args, **kwargs)
    got = ei.value.response.get("Error", {}).get("Code", "")
    assert got == code, f"expected {code}, got {got!r}: {ei.value.response.get('Error')}"
    return ei.value


def cli_error(aws, code: str, *args: str) -> str:
    """Run `aws kms …`, expect it to fail with `code`; returns stderr."""
    proc = aws("kms", *args, check=False)
    assert proc.returncode != 0, f"`aws kms {' '.join(args)}` succeeded:\n{proc.stdout}"
    assert f"({code})" in proc.stderr, f"expected {code}:\n{proc.stderr}"
    return proc.stderr


def write(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return f"fileb://{path}"


def unique_alias(prefix: str = "it") -> str:
    return f"alias/{prefix}-{uuid.uuid4().hex[:12]}"


def new_key(kms, **kwargs) -> dict:
    return kms.create_key(Description=f"interop {uuid.uuid4().hex[:8]}", **kwargs)["KeyMetadata"]


# --------------------------------------------------------------------------- keys and aliases


def test_create_key_alias_describe_and_list(aws):
    created = aws.json("kms", "create-key", "--description", "interop cli key")["KeyMetadata"]
    key_id, arn = created["KeyId"], created["Arn"]
    assert created["KeyState"] == "Enabled" and created["Enabled"] is True, created
    assert created["Origin"] == "AWS_KMS" and created["KeyManager"] == "CUSTOMER", created
    assert created["KeySpec"] == "SYMMETRIC_DEFAULT" and created["KeyUsage"] == "ENCRYPT_DECRYPT", created
    assert created["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"], created
    assert arn.startswith("arn:aws:kms:") and arn.endswith(f":key/{key_id}"), arn
    assert created["AWSAccountId"] == "000000000000", created

    alias = unique_alias("cli")
    aws("kms", "create-alias", "--alias-name", alias, "--target-key-id", key_id)

    for ref in (key_id, alias, arn):
        described = aws.json("kms", "describe-key", "--key-id", ref)["KeyMetadata"]
        assert described["KeyId"] == key_id and described["Arn"] == arn, (ref, described)
        assert described["Description"] == "interop cli key", described
    alias_arn = arn.split(":key/")[0] + ":" + alias
    described = aws.json("kms", "describe-key", "--key-id", alias_arn)["KeyMetadata"]
    assert described["KeyId"] == key_id, described

    keys = aws.json("kms", "list-keys")["Keys"]
    assert {"KeyId": key_id, "KeyArn": arn} in keys, keys

    aliases = aws.json("kms", "list-aliases")["Aliases"]
    mine = [a for a in aliases if a["AliasName"] == alias]
    assert len(mine) == 1 and mine[0]["TargetKeyId"] == key_id, aliases
    assert mine[0]["AliasArn"] == alias_arn, mine
    by_key = aws.json("kms", "list-aliases", "--key-id", key_id)["Aliases"]
    assert [a["AliasName"] for a in by_key] == [alias], by_key

    cli_error(aws, "AlreadyExistsException", "create-alias", "--alias-name", alias, "--target-key-id", key_id)
    cli_error(aws, "NotFoundException", "describe-key", "--key-id", "alias/does-not-exist-" + uuid.uuid4().hex)


def test_update_and_delete_alias(kms):
    first, second = new_key(kms), new_key(kms)
    alias = unique_alias("upd")
    kms.create_alias(AliasName=alias, TargetKeyId=first["KeyId"])
    kms.update_alias(AliasName=alias, TargetKeyId=second["KeyId"])
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == second["KeyId"]
    kms.delete_alias(AliasName=alias)
    kms_error(kms.describe_key, "NotFoundException", KeyId=alias)


# --------------------------------------------------------------------------- data plane


def test_generate_data_key_then_decrypt(aws, tmp_path):
    key_id = aws.json("kms", "create-key")["KeyMetadata"]["KeyId"]
    generated = aws.json("kms", "generate-data-key", "--key-id", key_id, "--key-spec", "AES_256",
                         "--encryption-context", "bucket=b1,object=o1")
    plaintext = base64.b64decode(generated["Plaintext"])
    assert len(plaintext) == 32
    assert generated["KeyId"].endswith(f":key/{key_id}"), generated
    blob = write(tmp_path, "dk.bin", base64.b64decode(generated["CiphertextBlob"]))
    opened = aws.json("kms", "decrypt", "--ciphertext-blob", blob,
                      "--encryption-context", "bucket=b1,object=o1")
    assert base64.b64decode(opened["Plaintext"]) == plaintext
    assert opened["KeyId"] == generated["KeyId"], opened

    without = aws.json("kms", "generate-data-key-without-plaintext", "--key-id", key_id,
                       "--number-of-bytes", "32")
    assert "Plaintext" not in without and without["CiphertextBlob"], without


def test_generate_data_key_only_makes_32_byte_keys(kms):
    key_id = new_key(kms)["KeyId"]
    kms_error(kms.generate_data_key, "ValidationException", KeyId=key_id, KeySpec="AES_128")
    kms_error(kms.generate_data_key, "ValidationException", KeyId=key_id, NumberOfBytes=16)
    assert len(kms.generate_data_key(KeyId=key_id, NumberOfBytes=32)["Plaintext"]) == 32


def test_encrypt_decrypt_with_encryption_context(kms):
    key = new_key(kms)
    context = {"purpose": "interop", "tenant": "t1"}
    secret = os.urandom(100)
    encrypted = kms.encrypt(KeyId=key["KeyId"], Plaintext=secret, EncryptionContext=context)
    assert encrypted["KeyId"] == key["Arn"] and encrypted["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    blob = encrypted["CiphertextBlob"]
    assert secret not in blob

    opened = kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
    assert opened["Plaintext"] == secret and opened["KeyId"] == key["Arn"]
    # With the key named, by ARN.
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=context, KeyId=key["Arn"])["Plaintext"] == secret

    kms_error(kms.decrypt, "InvalidCiphertextException", CiphertextBlob=blob,
              EncryptionContext={"purpose": "interop", "tenant": "t2"})
    kms_error(kms.decrypt, "InvalidCiphertextException", CiphertextBlob=blob)
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    kms_error(kms.decrypt, "InvalidCiphertextException", CiphertextBlob=bytes(tampered),
              EncryptionContext=context)
    other = new_key(kms)
    kms_error(kms.decrypt, "IncorrectKeyException", CiphertextBlob=blob, EncryptionContext=context,
              KeyId=other["KeyId"])


def test_re_encrypt_moves_a_ciphertext_to_another_key(kms):
    source, destination = new_key(kms), new_key(kms)
    blob = kms.encrypt(KeyId=source["KeyId"], Plaintext=b"move me", EncryptionContext={"a": "1"})["CiphertextBlob"]
    moved = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"a": "1"},
                           DestinationKeyId=destination["KeyId"], DestinationEncryptionContext={"b": "2"})
    assert moved["SourceKeyId"] == source["Arn"] and moved["KeyId"] == destination["Arn"], moved
    opened = kms.decrypt(CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"b": "2"})
    assert opened["Plaintext"] == b"move me" and opened["KeyId"] == destination["Arn"]


# --------------------------------------------------------------------------- lifecycle


def test_disable_and_enable_key(aws, tmp_path):
    key_id = aws.json("kms", "create-key")["KeyMetadata"]["KeyId"]
    plaintext = write(tmp_path, "p.bin", b"hello kms")
    aws("kms", "disable-key", "--key-id", key_id)
    assert aws.json("kms", "describe-key", "--key-id", key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    cli_error(aws, "DisabledException", "encrypt", "--key-id", key_id, "--plaintext", plaintext)
    aws("kms", "enable-key", "--key-id", key_id)
    encrypted = aws.json("kms", "encrypt", "--key-id", key_id, "--plaintext", plaintext)
    assert encrypted["CiphertextBlob"], encrypted


def test_schedule_and_cancel_key_deletion(aws, kms, tmp_path):
    key_id = aws.json("kms", "create-key")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"before deletion")["CiphertextBlob"]
    scheduled = aws.json("kms", "schedule-key-deletion", "--key-id", key_id, "--pending-window-in-days", "7")
    assert scheduled["KeyState"] == "PendingDeletion" and scheduled["PendingWindowInDays"] == 7, scheduled
    assert scheduled["KeyId"].endswith(key_id) and scheduled["DeletionDate"], scheduled
    described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert described["KeyState"] == "PendingDeletion" and described["Enabled"] is False, described
    assert "DeletionDate" in described, described

    cli_error(aws, "KMSInvalidStateException", "encrypt", "--key-id", key_id,
              "--plaintext", write(tmp_path, "p.bin", b"x"))
    kms_error(kms.decrypt, "KMSInvalidStateException", CiphertextBlob=blob)
    cli_error(aws, "ValidationException", "schedule-key-deletion", "--key-id", key_id,
              "--pending-window-in-days", "3")

    cancelled = aws.json("kms", "cancel-key-deletion", "--key-id", key_id)
    assert cancelled["KeyId"].endswith(key_id), cancelled
    described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert described["KeyState"] == "Disabled" and "DeletionDate" not in described, described
    kms.enable_key(KeyId=key_id)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before deletion"


def test_rotation_keeps_old_ciphertexts_decryptable(aws, kms):
    key = new_key(kms)
    key_id = key["KeyId"]
    old_blob = kms.encrypt(KeyId=key_id, Plaintext=b"version one")["CiphertextBlob"]

    status = aws.json("kms", "get-key-rotation-status", "--key-id", key_id)
    assert status["KeyRotationEnabled"] is False, status
    aws("kms", "enable-key-rotation", "--key-id", key_id, "--rotation-period-in-days", "180")
    status = aws.json("kms", "get-key-rotation-status", "--key-id", key_id)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 180, status

    rotated = aws.json("kms", "rotate-key-on-demand", "--key-id", key_id)
    assert rotated["KeyId"].endswith(key_id), rotated
    rotations = aws.json("kms", "list-key-rotations", "--key-id", key_id)["Rotations"]
    assert len(rotations) == 1, rotations
    assert rotations[0]["RotationType"] == "ON_DEMAND" and rotations[0]["KeyId"].endswith(key_id), rotations
    assert rotations[0]["RotationDate"], rotations

    new_blob = kms.encrypt(KeyId=key_id, Plaintext=b"version two")
    assert new_blob["KeyId"] == key["Arn"], new_blob
    assert new_blob["CiphertextBlob"] != old_blob
    assert kms.decrypt(CiphertextBlob=old_blob)["Plaintext"] == b"version one"
    opened = kms.decrypt(CiphertextBlob=new_blob["CiphertextBlob"])
    assert opened["Plaintext"] == b"version two" and opened["KeyId"] == key["Arn"]

    aws("kms", "disable-key-rotation", "--key-id", key_id)
    assert aws.json("kms", "get-key-rotation-status", "--key-id", key_id)["KeyRotationEnabled"] is False


# --------------------------------------------------------------------------- BYOK


def import_parameters(aws, key_id: str) -> tuple[bytes, bytes]:
    params = aws.json("kms", "get-parameters-for-import", "--key-id", key_id,
                      "--wrapping-algorithm", "RSAES_OAEP_SHA_256", "--wrapping-key-spec", "RSA_2048")
    assert params["KeyId"].endswith(key_id) and params["ParametersValidTo"], params
    public_key = base64.b64decode(params["PublicKey"])
    assert serialization.load_der_public_key(public_key).key_size == 2048
    return public_key, base64.b64decode(params["ImportToken"])


def import_material(aws, tmp_path, key_id: str, material: bytes, *extra: str, check: bool = True):
    public_key, token = import_parameters(aws, key_id)
    wrapped = write(tmp_path, f"wrapped-{uuid.uuid4().hex[:6]}.bin", wrap_for_import(public_key, material))
    token_file = write(tmp_path, f"token-{uuid.uuid4().hex[:6]}.bin", token)
    args = ["kms", "import-key-material", "--key-id", key_id, "--encrypted-key-material", wrapped,
            "--import-token", token_file, *extra]
    return aws(*args, check=check)


def test_byok_import_encrypt_decrypt_and_delete_material(aws, kms, server, tmp_path):
    created = aws.json("kms", "create-key", "--origin", "EXTERNAL", "--description", "byok")["KeyMetadata"]
    key_id = created["KeyId"]
    assert created["Origin"] == "EXTERNAL" and created["KeyState"] == "PendingImport", created
    assert created["Enabled"] is False, created
    kms_error(kms.encrypt, "KMSInvalidStateException", KeyId=key_id, Plaintext=b"too early")

    material = os.urandom(32)
    import_material(aws, tmp_path, key_id, material, "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    described = aws.json("kms", "describe-key", "--key-id", key_id)["KeyMetadata"]
    assert described["KeyState"] == "Enabled", described
    assert described["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE", described

    blob = kms.encrypt(KeyId=key_id, Plaintext=b"bring your own key", EncryptionContext={"k": "v"})["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"k": "v"})["Plaintext"] == b"bring your own key"

    # Another key's material cannot replace this one's.
    proc = import_material(aws, tmp_path, key_id, os.urandom(32),
                           "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE", check=False)
    assert proc.returncode != 0 and "(IncorrectKeyMaterialException)" in proc.stderr, proc.stderr

    aws("kms", "delete-imported-key-material", "--key-id", key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
    kms_error(kms.decrypt, "KMSInvalidStateException", CiphertextBlob=blob, EncryptionContext={"k": "v"})

    # The same material brings the key, and its ciphertexts, back.
    import_material(aws, tmp_path, key_id, material, "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"k": "v"})["Plaintext"] == b"bring your own key"

    log = server.log_text()
    for secret in (material.hex(), base64.b64encode(material).decode(),
                   base64.b64encode(b"bring your own key").decode()):
        assert secret not in log, "key material or a plaintext reached the server log"


def test_byok_import_with_expiry(aws, kms, tmp_path):
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    material = os.urandom(32)
    proc = import_material(aws, tmp_path, key_id, material, "--expiration-model", "KEY_MATERIAL_EXPIRES",
                           "--valid-to", "2001-01-01T00:00:00Z", check=False)
    assert proc.returncode != 0 and "An error occurred" in proc.stderr, proc.stderr
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"

    import_material(aws, tmp_path, key_id, material, "--expiration-model", "KEY_MATERIAL_EXPIRES",
                    "--valid-to", "2099-01-01T00:00:00Z")
    described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert described["KeyState"] == "Enabled", described
    assert described["ExpirationModel"] == "KEY_MATERIAL_EXPIRES", described
    assert described["ValidTo"].year == 2099, described


def test_byok_wrapping_key_specs(kms):
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    for spec, bits in (("RSA_3072", 3072), ("RSA_4096", 4096)):
        params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                               WrappingKeySpec=spec)
        assert serialization.load_der_public_key(params["PublicKey"]).key_size == bits
    generated = new_key(kms)["KeyId"]
    with pytest.raises(ClientError):
        kms.get_parameters_for_import(KeyId=generated, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                      WrappingKeySpec="RSA_2048")


# --------------------------------------------------------------------------- authorization and protocol


def test_users_use_keys_only_as_key_policies_allow(kms, second_user):
    """Root's key has the account-only default policy: another user may neither use nor
    administer it until its key policy names them (test_key_policy.py goes further)."""
    user_kms = kms_client(second_user.endpoint, second_user.access_key, second_user.secret_key)
    kms_error(user_kms.create_key, "AccessDeniedException")
    key_id = new_key(kms)["KeyId"]
    kms_error(user_kms.disable_key, "AccessDeniedException", KeyId=key_id)
    kms_error(user_kms.schedule_key_deletion, "AccessDeniedException", KeyId=key_id)
    kms_error(user_kms.encrypt, "AccessDeniedException", KeyId=key_id, Plaintext=b"x")
    kms_error(user_kms.describe_key, "AccessDeniedException", KeyId=key_id)
    user_arn = f"arn:aws:iam::000000000000:user/{second_user.name}"
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": user_arn},
             "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*"},
        ]}))
    blob = user_kms.encrypt(KeyId=key_id, Plaintext=b"from a user")["CiphertextBlob"]
    assert user_kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"from a user"
    assert user_kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id
    kms_error(user_kms.disable_key, "AccessDeniedException", KeyId=key_id)


def signed_kms_post(server, target: str, body: bytes, service: str = "kms") -> requests.Response:
    url = server.endpoint + "/"
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
    req = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials(server.access_key, server.secret_key), service, REGION).add_auth(req)
    return requests.post(url, data=body, headers=dict(req.headers.items()), timeout=30)


def test_protocol_errors_are_kms_json(server):
    response = signed_kms_post(server, "TrentService.Sign", b"{}")
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert response.json()["__type"] == "UnknownOperationException", response.text

    response = signed_kms_post(server, "TrentService.Encrypt", b"{not json")
    assert response.status_code == 400 and response.json()["__type"] == "ValidationException"

    response = signed_kms_post(server, "TrentService.ListKeys", b"{}", service="s3")
    assert response.status_code in (400, 403), response.text
    assert response.json()["__type"] in ("IncompleteSignatureException", "InvalidSignatureException")

    response = requests.post(server.endpoint + "/", data=b"{}", timeout=30, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.ListKeys"})
    assert response.status_code == 403
    assert response.json()["__type"] == "MissingAuthenticationTokenException", response.text

    response = signed_kms_post(server, "TrentService.ListKeys", b"")
    assert response.status_code == 200 and json.loads(response.text)["Truncated"] is False
