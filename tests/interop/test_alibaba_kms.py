"""The Alibaba Cloud KMS API (RPC style, Version 2016-01-20) with Alibaba's own clients, over HTTPS
with the server's generated certificate:

- oss2 `CryptoBucket` with `AliKMSProvider` (aliyunsdkcore, POP signature V1) writes and reads
  objects whole and ranged, its data keys generated and opened by Coffer's KMS;
- aliyunsdkkms (V1) and alibabacloud_kms20160120 (ACS3-HMAC-SHA256, V3) run GenerateDataKey,
  Encrypt, Decrypt, DescribeKey and the key administration actions;
- one key, two protocols: disabled through the AWS protocol (boto3) ⇒ refused through Alibaba's;
- a tampered signature, a replayed nonce, an unknown key ⇒ refused with Alibaba's error shape.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from types import SimpleNamespace

import oss2
import pytest
import requests
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkkms.request.v20160120 import (
    CreateAliasRequest, CreateKeyRequest, DecryptRequest, DescribeKeyRequest, DisableKeyRequest,
    EnableKeyRequest, EncryptRequest, GenerateDataKeyRequest, GetParametersForImportRequest,
    ImportKeyMaterialRequest, ListAliasesRequest, ListKeysRequest, ReEncryptRequest,
    UpdateRotationPolicyRequest,
)
from alibabacloud_kms20160120 import models as kms_models
from alibabacloud_kms20160120.client import Client as KmsV3Client
from alibabacloud_tea_openapi import utils_models as open_api_models
from alibabacloud_tea_openapi.utils import Utils
from darabonba.runtime import RuntimeOptions

from cse_support import Coffer
from oss_support import OSS_REGION, oss2_auth
import support
from support import SECRETS, ServerFactory, add_user, free_port, kms_client, unique_bucket_name

pytestmark = pytest.mark.embedded_only("starts an HTTPS server of its own")

KMS_REGION = "cn-hangzhou"


class AliServer:
    """A coffer server with an HTTPS listener, and Alibaba KMS clients pointed at it."""

    def __init__(self, srv, tls_port: int):
        self.srv = srv
        self.tls_port = tls_port
        self.ca = str(srv.data_dir / "tls" / "self-signed.crt")
        self.url = f"https://localhost:{tls_port}/"

    def v1(self, secret: str | None = None, access_key: str | None = None) -> AcsClient:
        """aliyunsdkcore's client: HTTPS to localhost:<port>, trusting only the test certificate."""
        client = AcsClient(access_key or self.srv.access_key, secret or self.srv.secret_key, KMS_REGION,
                           auto_retry=False, port=self.tls_port, verify=self.ca)
        client.add_endpoint(KMS_REGION, "Kms", "localhost")
        return client

    def v3(self) -> KmsV3Client:
        config = open_api_models.Config(access_key_id=self.srv.access_key,
                                        access_key_secret=self.srv.secret_key,
                                        region_id=KMS_REGION, endpoint=f"localhost:{self.tls_port}",
                                        protocol="https", ca=self.ca)
        return KmsV3Client(config)

    def provider(self, cmk: str) -> oss2.crypto.AliKMSProvider:
        provider = oss2.crypto.AliKMSProvider(self.srv.access_key, self.srv.secret_key, KMS_REGION, cmk)
        provider.kms_client = self.v1()
        return provider


@pytest.fixture(scope="module")
def ali(tmp_path_factory):
    factory = ServerFactory(tmp_path_factory.mktemp("alikms"))
    port = free_port()
    srv = factory(extra_args=["--tls-listen", f"127.0.0.1:{port}"])
    try:
        yield AliServer(srv, port)
    finally:
        factory.stop_all(remove_data=True)


def call(client: AcsClient, request) -> dict:
    request.set_accept_format("JSON")
    answer = json.loads(client.do_action_with_exception(request))
    assert answer.get("RequestId"), answer
    for field in ("Plaintext",):
        if field in answer:
            SECRETS.add("Alibaba KMS plaintext", answer[field])
    return answer


def create_key(ali: AliServer, **params) -> str:
    request = CreateKeyRequest.CreateKeyRequest()
    for name, value in params.items():
        request.add_query_param(name, value)
    return call(ali.v1(), request)["KeyMetadata"]["KeyId"]


def expect_error(fn, status: int, code: str) -> ServerException:
    with pytest.raises(ServerException) as raised:
        fn()
    assert (raised.value.get_http_status(), raised.value.get_error_code()) == (status, code), raised.value
    assert raised.value.get_request_id()
    return raised.value


# ------------------------------------------------------------------ oss2 AliKMSProvider


def test_oss2_crypto_bucket_with_ali_kms_provider(ali):
    cmk = create_key(ali, Description="oss2 client-side encryption")
    s3 = ali.srv.client(checksum="when_required")
    bucket = unique_bucket_name("alikms")
    s3.create_bucket(Bucket=bucket)
    cb = oss2.CryptoBucket(oss2_auth("v4", ali.srv.access_key, ali.srv.secret_key), ali.srv.endpoint,
                           bucket, crypto_provider=ali.provider(cmk), region=OSS_REGION,
                           connect_timeout=30)
    data = os.urandom(300_000)
    cb.put_object("whole", data)
    # The stored object is sealed by the client: the body is not the plaintext, and the wrap
    # names the Alibaba KMS.
    stored = s3.get_object(Bucket=bucket, Key="whole")
    assert stored["Body"].read() != data
    meta = stored["Metadata"]
    assert meta.get("client-side-encryption-wrap-alg") == "KMS/ALICLOUD", meta
    assert cb.get_object("whole").read() == data
    for start, end in ((0, 15), (17, 4000), (123_456, 299_999)):
        assert cb.get_object("whole", byte_range=(start, end)).read() == data[start:end + 1]
    # A second provider instance (a fresh client) reads it too: the key comes from Coffer's KMS.
    other = oss2.CryptoBucket(oss2_auth("v1", ali.srv.access_key, ali.srv.secret_key), ali.srv.endpoint,
                              bucket, crypto_provider=ali.provider(cmk), region=OSS_REGION)
    assert other.get_object("whole").read() == data
    # Disabled through the AWS protocol: the provider can no longer open the object's key.
    aws = kms_client(ali.srv)
    aws.disable_key(KeyId=cmk)
    with pytest.raises(oss2.exceptions.OpenApiServerError) as raised:
        cb.get_object("whole").read()
    assert raised.value.status == 400 and "Rejected.Disabled" in str(raised.value)
    aws.enable_key(KeyId=cmk)
    assert cb.get_object("whole", byte_range=(5, 9)).read() == data[5:10]


def test_coffer_cp_and_ali_kms_provider_read_each_other(ali, tmp_path):
    """`coffer cp --encrypt --format oss --kms-key-id` writes KMS/ALICLOUD objects that
    AliKMSProvider reads through the Alibaba API, and coffer reads what the provider wrote."""
    coffer = Coffer(ali.srv)
    cmk = create_key(ali, Description="coffer cp and oss2")
    s3 = ali.srv.client(checksum="when_required")
    bucket = unique_bucket_name("alicp")
    s3.create_bucket(Bucket=bucket)
    cb = oss2.CryptoBucket(oss2_auth("v4", ali.srv.access_key, ali.srv.secret_key), ali.srv.endpoint,
                           bucket, crypto_provider=ali.provider(cmk), region=OSS_REGION,
                           connect_timeout=30)
    for name, size in (("small", 1000), ("multipart", 11 * 1024 * 1024 + 7)):
        data = os.urandom(size)
        (tmp_path / name).write_bytes(data)
        coffer("cp", str(tmp_path / name), f"s3://{bucket}/{name}", "--encrypt", "--format", "oss",
               "--kms-key-id", cmk, "--part-size", "5MiB")
        assert s3.get_object(Bucket=bucket, Key=name)["Metadata"][
            "client-side-encryption-wrap-alg"] == "KMS/ALICLOUD"
        assert cb.get_object(name).read() == data, name
        assert cb.get_object(name, byte_range=(100, 899)).read() == data[100:900], name

    data = os.urandom(70_000)
    cb.put_object("by-oss2", data)
    coffer("cp", f"s3://{bucket}/by-oss2", str(tmp_path / "by-oss2"), "--kms-key-id", cmk)
    assert (tmp_path / "by-oss2").read_bytes() == data


# ------------------------------------------------------------------ aliyunsdkkms (V1)


def test_v1_data_plane_and_describe(ali):
    client = ali.v1()
    cmk = create_key(ali)
    context = json.dumps({"bucket": "b", "object": "o"})
    request = GenerateDataKeyRequest.GenerateDataKeyRequest()
    request.set_KeyId(cmk)
    request.set_KeySpec("AES_128")
    request.set_EncryptionContext(context)
    generated = call(client, request)
    assert generated["KeyId"] == cmk and generated["KeyVersionId"]
    assert len(base64.b64decode(generated["Plaintext"])) == 16

    request = DecryptRequest.DecryptRequest()
    request.set_CiphertextBlob(generated["CiphertextBlob"])
    request.set_EncryptionContext(context)
    opened = call(client, request)
    assert opened["Plaintext"] == generated["Plaintext"] and opened["KeyId"] == cmk

    # Another encryption context does not open it.
    request = DecryptRequest.DecryptRequest()
    request.set_CiphertextBlob(generated["CiphertextBlob"])
    request.set_EncryptionContext(json.dumps({"bucket": "b", "object": "other"}))
    expect_error(lambda: call(client, request), 400, "InvalidParameter")

    # Encrypt takes a string, and Decrypt gives back the same string.
    text = "hello, 世界 ~*+/="
    request = EncryptRequest.EncryptRequest()
    request.set_KeyId(cmk)
    request.set_Plaintext(text)
    sealed = call(client, request)
    request = DecryptRequest.DecryptRequest()
    request.set_CiphertextBlob(sealed["CiphertextBlob"])
    assert call(client, request)["Plaintext"] == text

    # ReEncrypt moves it under another key.
    other = create_key(ali, KeySpec="Aliyun_SM4")
    request = ReEncryptRequest.ReEncryptRequest()
    request.set_CiphertextBlob(sealed["CiphertextBlob"])
    request.set_DestinationKeyId(other)
    moved = call(client, request)
    assert moved["KeyId"] == other
    request = DecryptRequest.DecryptRequest()
    request.set_CiphertextBlob(moved["CiphertextBlob"])
    assert call(client, request)["KeyId"] == other

    request = DescribeKeyRequest.DescribeKeyRequest()
    request.set_KeyId(other)
    meta = call(client, request)["KeyMetadata"]
    assert (meta["KeyId"], meta["KeyState"], meta["KeySpec"]) == (other, "Enabled", "Aliyun_SM4")
    assert meta["Arn"].startswith("acs:kms:") and meta["Arn"].endswith(f":key/{other}")


def test_v1_key_administration(ali):
    client = ali.v1()
    cmk = create_key(ali, Description="administered")
    alias = f"alias/ali-{uuid.uuid4().hex[:8]}"
    request = CreateAliasRequest.CreateAliasRequest()
    request.set_AliasName(alias)
    request.set_KeyId(cmk)
    call(client, request)
    aliases = call(client, ListAliasesRequest.ListAliasesRequest())
    listed = {a["AliasName"]: a["KeyId"] for a in aliases["Aliases"]["Alias"]}
    assert listed.get(alias) == cmk
    request = ListKeysRequest.ListKeysRequest()
    request.set_PageSize(100)
    keys = call(client, request)
    assert cmk in {k["KeyId"] for k in keys["Keys"]["Key"]} and keys["TotalCount"] >= 1

    request = UpdateRotationPolicyRequest.UpdateRotationPolicyRequest()
    request.set_KeyId(cmk)
    request.set_EnableAutomaticRotation(True)
    request.set_RotationInterval("365d")
    call(client, request)
    request = DescribeKeyRequest.DescribeKeyRequest()
    request.set_KeyId(alias)
    meta = call(client, request)["KeyMetadata"]
    assert meta["KeyId"] == cmk and meta["AutomaticRotation"] == "Enabled", meta

    # Disabled through Alibaba's protocol ⇒ disabled for the AWS protocol too.
    request = DisableKeyRequest.DisableKeyRequest()
    request.set_KeyId(cmk)
    call(client, request)
    aws = kms_client(ali.srv)
    assert aws.describe_key(KeyId=cmk)["KeyMetadata"]["KeyState"] == "Disabled"
    with pytest.raises(aws.exceptions.DisabledException):
        aws.generate_data_key(KeyId=cmk, KeySpec="AES_256")
    request = EnableKeyRequest.EnableKeyRequest()
    request.set_KeyId(cmk)
    call(client, request)
    assert aws.describe_key(KeyId=cmk)["KeyMetadata"]["KeyState"] == "Enabled"

    request = DescribeKeyRequest.DescribeKeyRequest()
    request.set_KeyId(str(uuid.uuid4()))
    expect_error(lambda: call(client, request), 404, "Forbidden.KeyNotFound")


def test_v1_byok_import(ali):
    """An EXTERNAL key gets its material through Alibaba's GetParametersForImport and
    ImportKeyMaterial, and then encrypts; the AWS protocol decrypts what it made."""
    client = ali.v1()
    cmk = create_key(ali, Origin="EXTERNAL")
    request = DescribeKeyRequest.DescribeKeyRequest()
    request.set_KeyId(cmk)
    assert call(client, request)["KeyMetadata"]["KeyState"] == "PendingImport"
    request = GetParametersForImportRequest.GetParametersForImportRequest()
    request.set_KeyId(cmk)
    request.set_WrappingAlgorithm("RSAES_OAEP_SHA_256")
    request.set_WrappingKeySpec("RSA_2048")
    parameters = call(client, request)
    material = os.urandom(32)
    wrapped = support.wrap_for_import(base64.b64decode(parameters["PublicKey"]), material)
    request = ImportKeyMaterialRequest.ImportKeyMaterialRequest()
    request.set_KeyId(cmk)
    request.set_ImportToken(parameters["ImportToken"])
    request.set_EncryptedKeyMaterial(base64.b64encode(wrapped).decode())
    call(client, request)
    request = EncryptRequest.EncryptRequest()
    request.set_KeyId(cmk)
    request.set_Plaintext("imported")
    sealed = call(client, request)
    opened = kms_client(ali.srv).decrypt(CiphertextBlob=base64.b64decode(sealed["CiphertextBlob"]))
    assert opened["Plaintext"] == b"imported"
    # A token is single-use.
    request = ImportKeyMaterialRequest.ImportKeyMaterialRequest()
    request.set_KeyId(cmk)
    request.set_ImportToken(parameters["ImportToken"])
    request.set_EncryptedKeyMaterial(base64.b64encode(wrapped).decode())
    expect_error(lambda: call(client, request), 400, "InvalidParameter")


def test_key_policies_decide_what_a_user_may_do_with_a_key(ali):
    user = add_user(ali.srv, f"ali-{uuid.uuid4().hex[:6]}")
    client = ali.v1(access_key=user.access_key, secret=user.secret_key)
    cmk = create_key(ali)
    # Root's key: its default policy names the account alone, so another user is refused.
    request = EncryptRequest.EncryptRequest()
    request.set_KeyId(cmk)
    request.set_Plaintext("by a user")
    refused = expect_error(lambda: call(client, request), 403, "Forbidden.RAM")
    assert f"user/{user.name}" in refused.get_error_msg() and "kms:Encrypt" in refused.get_error_msg()
    describe = DescribeKeyRequest.DescribeKeyRequest()
    describe.set_KeyId(cmk)
    expect_error(lambda: call(client, describe), 403, "Forbidden.RAM")
    expect_error(lambda: call(client, CreateKeyRequest.CreateKeyRequest()), 403, "Forbidden.RAM")
    # A key policy (put through the AWS protocol) lets the user use the key, not administer it.
    kms_client(ali.srv).put_key_policy(KeyId=cmk, PolicyName="default", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::000000000000:user/{user.name}"},
             "Action": ["kms:Encrypt", "kms:DescribeKey"], "Resource": "*"},
        ]}))
    assert call(client, request)["KeyId"] == cmk
    assert call(client, describe)["KeyMetadata"]["KeyState"] == "Enabled"
    request = DisableKeyRequest.DisableKeyRequest()
    request.set_KeyId(cmk)
    expect_error(lambda: call(client, request), 403, "Forbidden.RAM")


def test_key_disabled_through_aws_protocol_is_refused(ali):
    client = ali.v1()
    aws = kms_client(ali.srv)
    cmk = aws.create_key(Description="made with boto3")["KeyMetadata"]["KeyId"]
    request = EncryptRequest.EncryptRequest()
    request.set_KeyId(cmk)
    request.set_Plaintext("secret text")
    sealed = call(client, request)
    aws.disable_key(KeyId=cmk)
    refused_before = (ali.srv.data_dir / "kms" / "audit.log").read_text().count(
        '"outcome":"DisabledException"')
    request = DecryptRequest.DecryptRequest()
    request.set_CiphertextBlob(sealed["CiphertextBlob"])
    expect_error(lambda: call(client, request), 400, "Rejected.Disabled")
    request = GenerateDataKeyRequest.GenerateDataKeyRequest()
    request.set_KeyId(cmk)
    expect_error(lambda: call(client, request), 400, "Rejected.Disabled")
    aws.enable_key(KeyId=cmk)
    request = DecryptRequest.DecryptRequest()
    request.set_CiphertextBlob(sealed["CiphertextBlob"])
    assert call(client, request)["Plaintext"] == "secret text"
    # The same audit log as the AWS protocol: one line per call, with who and the outcome, and
    # never the plaintext.
    audit = (ali.srv.data_dir / "kms" / "audit.log").read_text()
    lines = [json.loads(line) for line in audit.splitlines() if cmk in line]
    calls = [(line["operation"], line["outcome"]) for line in lines]
    assert ("Encrypt", "ok") in calls and ("Decrypt", "ok") in calls, calls
    assert audit.count('"outcome":"DisabledException"') > refused_before, "refusals not audited"
    assert all(line["principal"] == "root" for line in lines), lines
    assert "secret text" not in audit


# ------------------------------------------------------------------ alibabacloud_kms20160120 (V3)


def test_v3_sdk_data_plane(ali):
    client = ali.v3()
    cmk = create_key(ali)
    runtime = RuntimeOptions(autoretry=False)
    generated = client.generate_data_key_with_options(
        kms_models.GenerateDataKeyRequest(key_id=cmk, key_spec="AES_256",
                                          encryption_context={"purpose": "v3"}), runtime).body
    SECRETS.add("Alibaba KMS plaintext (V3)", generated.plaintext)
    assert generated.key_id == cmk and len(base64.b64decode(generated.plaintext)) == 32
    opened = client.decrypt_with_options(
        kms_models.DecryptRequest(ciphertext_blob=generated.ciphertext_blob,
                                  encryption_context={"purpose": "v3"}), runtime).body
    assert opened.plaintext == generated.plaintext and opened.key_version_id

    sealed = client.encrypt_with_options(
        kms_models.EncryptRequest(key_id=cmk, plaintext="v3 text"), runtime).body
    opened = client.decrypt_with_options(
        kms_models.DecryptRequest(ciphertext_blob=sealed.ciphertext_blob), runtime).body
    assert opened.plaintext == "v3 text"

    meta = client.describe_key_with_options(kms_models.DescribeKeyRequest(key_id=cmk),
                                            runtime).body.key_metadata
    assert (meta.key_id, meta.key_state) == (cmk, "Enabled")


# ------------------------------------------------------------------ signatures


def v1_signed_url(ali: AliServer, params: dict, secret: str | None = None) -> str:
    """A V1-signed GET URL built with aliyunsdkcore's own composer."""
    from aliyunsdkcore.auth.composer import rpc_signature_composer as composer

    url, _ = composer.get_signed_url(dict(params), ali.srv.access_key, secret or ali.srv.secret_key,
                                     "JSON", "GET", {})
    return f"https://localhost:{ali.tls_port}{url}"


def test_tampered_or_replayed_v1_requests_are_refused(ali):
    cmk = create_key(ali)
    params = {"Action": "DescribeKey", "Version": "2016-01-20", "KeyId": cmk}
    url = v1_signed_url(ali, params)
    good = requests.get(url, verify=ali.ca, timeout=30)
    assert good.status_code == 200, good.text
    assert good.json()["KeyMetadata"]["KeyId"] == cmk

    # The same signed URL again: its nonce is spent.
    replayed = requests.get(url, verify=ali.ca, timeout=30)
    assert (replayed.status_code, replayed.json()["Code"]) == (400, "SignatureNonceUsed")

    # One changed bit in the key id, the action, the nonce, the timestamp or the signature.
    for name in ("KeyId", "Action", "SignatureNonce", "Timestamp", "Signature"):
        fresh = v1_signed_url(ali, params)
        prefix, query = fresh.split("?", 1)
        pairs = [pair.split("=", 1) for pair in query.split("&")]
        for pair in pairs:
            if pair[0] == name:
                value = pair[1]
                pair[1] = chr(ord(value[0]) ^ 1) + value[1:]
        tampered = requests.get(prefix + "?" + "&".join("=".join(p) for p in pairs),
                                verify=ali.ca, timeout=30)
        assert tampered.status_code in (400, 404), (name, tampered.text)
        body = tampered.json()
        assert {"Code", "Message", "RequestId"} <= body.keys(), body
        assert "KeyMetadata" not in body

    # A signed STS token: Coffer has none, so the request is refused, not run as the key's owner.
    sts = requests.get(v1_signed_url(ali, {**params, "SecurityToken": "token"}), verify=ali.ca,
                       timeout=30)
    assert (sts.status_code, sts.json()["Code"]) == (400, "UnsupportedOperation"), sts.text

    # The wrong secret, through the SDK.
    expect_error(lambda: call(ali.v1(secret=ali.srv.secret_key[:-1] + "x"),
                              DescribeKeyRequest.DescribeKeyRequest()),
                 400, "SignatureDoesNotMatch")


def test_tampered_v3_request_is_refused(ali):
    """A request signed as alibabacloud_tea_openapi signs it (its own `get_authorization`) is
    served; one changed bit in a signed header, the query or the body after signing is refused."""
    cmk = create_key(ali)

    def signed(body: bytes) -> tuple[dict, dict]:
        query = {"KeyId": cmk}
        headers = {
            "host": f"localhost:{ali.tls_port}",
            "x-acs-action": "DescribeKey",
            "x-acs-version": "2016-01-20",
            "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "x-acs-signature-nonce": uuid.uuid4().hex,
            "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
            "content-type": "application/x-www-form-urlencoded",
            "accept": "application/json",
        }
        request = SimpleNamespace(method="POST", pathname="/", query=query, headers=dict(headers))
        headers["Authorization"] = Utils.get_authorization(
            request, "ACS3-HMAC-SHA256", headers["x-acs-content-sha256"], ali.srv.access_key,
            ali.srv.secret_key)
        return query, headers

    def send(query, headers, body):
        return requests.post(ali.url, params=query, headers=headers, data=body, verify=ali.ca,
                             timeout=30)

    body = b"Extra=1"
    query, headers = signed(body)
    answer = send(query, headers, body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["KeyMetadata"]["KeyId"] == cmk

    def flip(text: str) -> str:
        return chr(ord(text[0]) ^ 1) + text[1:]

    for header in ("x-acs-signature-nonce", "x-acs-date", "Authorization", "accept"):
        query, headers = signed(body)
        headers[header] = flip(headers[header]) if header != "Authorization" else (
            headers[header][:-1] + ("0" if headers[header][-1] != "0" else "1"))
        answer = send(query, headers, body)
        assert answer.status_code == 400, (header, answer.text)
        assert {"Code", "Message", "RequestId"} <= answer.json().keys()
    query, headers = signed(body)
    assert send({"KeyId": flip(cmk)}, headers, body).status_code == 400
    query, headers = signed(body)
    answer = send(query, headers, b"Extra=0")
    assert (answer.status_code, answer.json()["Code"]) == (400, "SignatureDoesNotMatch"), answer.text
