"""KMS key policies, as AWS KMS enforces them, with boto3 and the aws CLI:

- a key's default policy names the account (root, and users whose identity policy allows) and
  its creator: another user is refused Encrypt, GenerateDataKey, Decrypt and DescribeKey with
  AccessDeniedException (400), and SSE-KMS under the key with S3's AccessDenied (403);
- PutKeyPolicy (boto3 and `aws kms put-key-policy`) granting that user kms:Decrypt lets them
  decrypt, and nothing more; CreateKey(Policy=…) sets a policy at creation; GetKeyPolicy and
  ListKeyPolicies read it back; a malformed document is MalformedPolicyDocumentException;
- the account statement delegates to identity policies (`coffer user policy put`), and an
  explicit Deny in either policy wins;
- S3 calls KMS as the caller: a key policy without the account statement refuses even root's
  GET of an object sealed under the key, until root (who may always repair a key policy)
  puts one back.
"""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from support import (
    REGION, AwsCli, add_user, destroy_bucket, expect_error, kms_client, make_s3_client, run_coffer,
    unique_bucket_name,
)

ACCOUNT = "000000000000"
ROOT_ARN = f"arn:aws:iam::{ACCOUNT}:root"


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def kms_as(server, user):
    """boto3's KMS client signed by `user` (a CofferUser)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(aws_access_key_id=user.access_key,
                                    aws_secret_access_key=user.secret_key, region_name=REGION)
    cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60)
    return session.client("kms", endpoint_url=server.endpoint, config=cfg)


def kms_denied(fn, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as raised:
        fn(**kwargs)
    error = raised.value.response
    assert error["Error"]["Code"] == "AccessDeniedException", error
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400, error
    return raised.value


def put_user_policy(server, name: str, document: dict, tmp_path) -> None:
    path = tmp_path / f"{name}-policy.json"
    path.write_text(json.dumps(document))
    run_coffer(["user", "policy", "put", name, str(path)], server.endpoint, server.access_key,
               server.secret_key)


def statement(effect: str, principal, actions, resource="*", sid=None) -> dict:
    out = {"Effect": effect, "Action": actions, "Resource": resource}
    if principal is not None:
        out["Principal"] = {"AWS": principal}
    if sid:
        out["Sid"] = sid
    return out


def policy(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture(scope="module")
def users(server, tmp_path_factory):
    """Alice may create keys (an identity policy allowing kms:CreateKey); Bob may not."""
    suffix = uuid.uuid4().hex[:6]
    alice = add_user(server, f"kp-alice-{suffix}")
    bob = add_user(server, f"kp-bob-{suffix}")
    put_user_policy(server, alice.name,
                    {"Version": "2012-10-17",
                     "Statement": [statement("Allow", None, "kms:CreateKey")]},
                    tmp_path_factory.mktemp("kp"))
    return alice, bob


def test_the_default_policy_lets_the_creator_and_root_use_a_key_and_refuses_others(server, users):
    alice, bob = users
    as_alice, as_bob, as_root = kms_as(server, alice), kms_as(server, bob), kms_client(server)
    key = as_alice.create_key(Description="alice's key")["KeyMetadata"]
    document = json.loads(as_alice.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    principals = {s["Principal"]["AWS"] for s in document["Statement"]}
    assert principals == {ROOT_ARN, user_arn(alice.name)}, document
    assert as_alice.list_key_policies(KeyId=key["KeyId"])["PolicyNames"] == ["default"]

    sealed = as_alice.encrypt(KeyId=key["KeyId"], Plaintext=b"alice's secret")["CiphertextBlob"]
    assert as_root.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"alice's secret"
    error = kms_denied(as_bob.encrypt, KeyId=key["KeyId"], Plaintext=b"x")
    assert user_arn(bob.name) in str(error) and "kms:Encrypt" in str(error)
    kms_denied(as_bob.generate_data_key, KeyId=key["KeyId"], KeySpec="AES_256")
    kms_denied(as_bob.decrypt, CiphertextBlob=sealed)
    kms_denied(as_bob.describe_key, KeyId=key["KeyId"])
    kms_denied(as_bob.disable_key, KeyId=key["KeyId"])
    kms_denied(as_bob.get_key_policy, KeyId=key["KeyId"], PolicyName="default")
    kms_denied(as_bob.put_key_policy, KeyId=key["KeyId"], PolicyName="default",
               Policy=policy(statement("Allow", user_arn(bob.name), "kms:*")))
    # Without an identity policy allowing it, a user cannot create keys.
    kms_denied(as_bob.create_key)


def test_a_key_policy_grant_lets_another_user_decrypt_and_nothing_more(server, users):
    alice, bob = users
    as_alice, as_bob = kms_as(server, alice), kms_as(server, bob)
    key = as_alice.create_key()["KeyMetadata"]["KeyId"]
    sealed = as_alice.encrypt(KeyId=key, Plaintext=b"shared")["CiphertextBlob"]
    kms_denied(as_bob.decrypt, CiphertextBlob=sealed)
    as_alice.put_key_policy(KeyId=key, PolicyName="default", Policy=policy(
        statement("Allow", ROOT_ARN, "kms:*", sid="Enable IAM User Permissions"),
        statement("Allow", user_arn(alice.name), "kms:*"),
        statement("Allow", user_arn(bob.name), "kms:Decrypt", sid="BobDecrypts"),
    ))
    assert as_bob.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"shared"
    kms_denied(as_bob.encrypt, KeyId=key, Plaintext=b"x")
    kms_denied(as_bob.re_encrypt, CiphertextBlob=sealed, DestinationKeyId=key)
    stored = json.loads(as_alice.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    assert [s.get("Sid") for s in stored["Statement"]][-1] == "BobDecrypts", stored


def test_malformed_key_policies_and_policy_names_are_refused(server, users):
    alice, _ = users
    as_alice = kms_as(server, alice)
    key = as_alice.create_key()["KeyMetadata"]["KeyId"]
    for document in ["not json", json.dumps({"Statement": [{"Effect": "Allow", "Action": "kms:*",
                                                               "Resource": "*"}]}),
                     policy(statement("Allow", ROOT_ARN, "kms:Frobnicate"))]:
        with pytest.raises(ClientError) as raised:
            as_alice.put_key_policy(KeyId=key, PolicyName="default", Policy=document)
        assert raised.value.response["Error"]["Code"] == "MalformedPolicyDocumentException", document
        with pytest.raises(ClientError) as raised:
            as_alice.create_key(Policy=document)
        assert raised.value.response["Error"]["Code"] == "MalformedPolicyDocumentException", document
    expect_kms_error(as_alice.get_key_policy, "ValidationException", KeyId=key, PolicyName="other")
    # The refused documents changed nothing: alice still owns her key.
    assert as_alice.encrypt(KeyId=key, Plaintext=b"still mine")["KeyId"].endswith(key)


def expect_kms_error(fn, code: str, **kwargs) -> None:
    with pytest.raises(ClientError) as raised:
        fn(**kwargs)
    assert raised.value.response["Error"]["Code"] == code, raised.value.response


def test_create_key_with_a_policy_and_the_aws_cli(server, users, tmp_path):
    alice, bob = users
    as_alice, as_bob, as_root = kms_as(server, alice), kms_as(server, bob), kms_client(server)
    # Root creates a key for bob alone (and the account).
    key = as_root.create_key(Policy=policy(
        statement("Allow", ROOT_ARN, "kms:*"),
        statement("Allow", user_arn(bob.name), ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]),
    ))["KeyMetadata"]["KeyId"]
    sealed = as_bob.encrypt(KeyId=key, Plaintext=b"bob's")["CiphertextBlob"]
    kms_denied(as_alice.decrypt, CiphertextBlob=sealed)
    # The aws CLI: put-key-policy from a file, get-key-policy back.
    cli = AwsCli(server.endpoint, server.access_key, server.secret_key, tmp_path)
    document = tmp_path / "policy.json"
    document.write_text(policy(
        statement("Allow", ROOT_ARN, "kms:*"),
        statement("Allow", user_arn(alice.name), "kms:Decrypt", sid="AliceReads"),
    ))
    cli("kms", "put-key-policy", "--key-id", key, "--policy-name", "default",
        "--policy", f"file://{document}")
    answer = cli.json("kms", "get-key-policy", "--key-id", key, "--policy-name", "default")
    assert json.loads(answer["Policy"])["Statement"][1]["Sid"] == "AliceReads", answer
    assert as_alice.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"bob's"
    kms_denied(as_bob.encrypt, KeyId=key, Plaintext=b"no longer")


def test_identity_policies_reach_keys_through_the_account_statement(server, users, tmp_path):
    alice, bob = users
    carol = add_user(server, f"kp-carol-{uuid.uuid4().hex[:6]}")
    as_alice, as_carol, as_root = kms_as(server, alice), kms_as(server, carol), kms_client(server)
    root_key = as_root.create_key()["KeyMetadata"]
    kms_denied(as_carol.encrypt, KeyId=root_key["KeyId"], Plaintext=b"x")
    put_user_policy(server, carol.name, {"Version": "2012-10-17", "Statement": [
        statement("Allow", None, ["kms:Encrypt", "kms:Decrypt"], resource=root_key["Arn"]),
    ]}, tmp_path)
    sealed = as_carol.encrypt(KeyId=root_key["KeyId"], Plaintext=b"carol's")["CiphertextBlob"]
    assert as_carol.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"carol's"
    kms_denied(as_carol.generate_data_key, KeyId=root_key["KeyId"], KeySpec="AES_256")
    # A key policy without the account statement gives identity policies nothing to act on.
    alice_only = as_alice.create_key(Policy=policy(
        statement("Allow", user_arn(alice.name), "kms:*"),
    ))["KeyMetadata"]
    put_user_policy(server, carol.name, {"Version": "2012-10-17", "Statement": [
        statement("Allow", None, "kms:*", resource="*"),
        statement("Deny", None, "kms:Decrypt", resource=root_key["Arn"]),
    ]}, tmp_path)
    kms_denied(as_carol.encrypt, KeyId=alice_only["KeyId"], Plaintext=b"x")
    # An explicit Deny in the identity policy wins over the key policy's grant.
    kms_denied(as_carol.decrypt, CiphertextBlob=sealed)
    assert as_carol.encrypt(KeyId=root_key["KeyId"], Plaintext=b"y")["KeyId"].endswith(root_key["KeyId"])


def test_sse_kms_uses_a_key_only_as_its_policy_allows(server, users):
    alice, bob = users
    as_alice = kms_as(server, alice)
    key = as_alice.create_key()["KeyMetadata"]["KeyId"]
    s3_alice, s3_bob = alice.client(), bob.client()
    s3_root = make_s3_client(server.endpoint, server.access_key, server.secret_key)
    mine, theirs = unique_bucket_name("kpa"), unique_bucket_name("kpb")
    s3_alice.create_bucket(Bucket=mine)
    s3_bob.create_bucket(Bucket=theirs)
    try:
        s3_alice.put_object(Bucket=mine, Key="k", Body=b"alice's object",
                            ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
        assert s3_alice.get_object(Bucket=mine, Key="k")["Body"].read() == b"alice's object"
        # Bob, in his own bucket, may not seal under alice's key: S3's AccessDenied, 403.
        for bucket_key in (False, True):
            expect_error(s3_bob.put_object, "AccessDenied", 403, Bucket=theirs, Key="k", Body=b"x",
                         ServerSideEncryption="aws:kms", SSEKMSKeyId=key,
                         BucketKeyEnabled=bucket_key)
        expect_error(s3_bob.create_multipart_upload, "AccessDenied", 403, Bucket=theirs, Key="mp",
                     ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
        # The managed default key serves every user of the account through S3.
        s3_bob.put_object(Bucket=theirs, Key="default", Body=b"b", ServerSideEncryption="aws:kms")
        assert s3_bob.get_object(Bucket=theirs, Key="default")["Body"].read() == b"b"

        # Root reads alice's object under the default policy (the account statement)…
        assert s3_root.get_object(Bucket=mine, Key="k")["Body"].read() == b"alice's object"
        # …but not once alice's key policy leaves the account out: S3 decrypts as the caller.
        as_alice.put_key_policy(KeyId=key, PolicyName="default",
                                Policy=policy(statement("Allow", user_arn(alice.name), "kms:*")))
        expect_error(s3_root.get_object, "AccessDenied", 403, Bucket=mine, Key="k")
        expect_error(s3_root.copy_object, "AccessDenied", 403, Bucket=mine, Key="copy",
                     CopySource={"Bucket": mine, "Key": "k"})
        assert s3_alice.get_object(Bucket=mine, Key="k")["Body"].read() == b"alice's object"
        # Root may always repair a key policy (lock-out recovery), and then reads again.
        kms_client(server).put_key_policy(KeyId=key, PolicyName="default", Policy=policy(
            statement("Allow", ROOT_ARN, "kms:*"), statement("Allow", user_arn(alice.name), "kms:*")))
        assert s3_root.get_object(Bucket=mine, Key="k")["Body"].read() == b"alice's object"
    finally:
        destroy_bucket(s3_root, mine)
        destroy_bucket(s3_root, theirs)


def test_the_managed_key_is_for_s3_only(server, users):
    _, bob = users
    as_bob = kms_as(server, bob)
    # Make sure the default key exists (the SSE test above may not have run).
    s3_root = make_s3_client(server.endpoint, server.access_key, server.secret_key)
    bucket = unique_bucket_name("kpm")
    s3_root.create_bucket(Bucket=bucket)
    try:
        s3_root.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms")
    finally:
        destroy_bucket(s3_root, bucket)
    kms_denied(as_bob.encrypt, KeyId="alias/aws/s3", Plaintext=b"x")
    document = json.loads(kms_client(server).get_key_policy(KeyId="alias/aws/s3",
                                                            PolicyName="default")["Policy"])
    assert document["Statement"][0]["Condition"]["StringEquals"]["kms:ViaService"] == \
        f"s3.{REGION}.amazonaws.com", document
    expect_kms_error(kms_client(server).put_key_policy, "ValidationException", KeyId="alias/aws/s3",
                     PolicyName="default", Policy=policy(statement("Allow", ROOT_ARN, "kms:*")))


def test_a_bucket_policy_grant_to_read_does_not_grant_the_key(server, users):
    """Bob may read alice's bucket (her bucket policy says so), but the objects are sealed
    under alice's key: S3 refuses the GET on the key policy, as AWS does, until the key policy
    lets bob decrypt."""
    alice, bob = users
    as_alice = kms_as(server, alice)
    key = as_alice.create_key()["KeyMetadata"]["KeyId"]
    s3_alice, s3_bob = alice.client(), bob.client()
    bucket = unique_bucket_name("kpg")
    s3_alice.create_bucket(Bucket=bucket)
    try:
        s3_alice.put_object(Bucket=bucket, Key="sealed", Body=b"under alice's key",
                            ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
        s3_alice.put_object(Bucket=bucket, Key="s3-managed", Body=b"under the service key",
                            ServerSideEncryption="AES256")
        s3_alice.put_bucket_policy(Bucket=bucket, Policy=policy(
            statement("Allow", user_arn(bob.name), "s3:GetObject", resource=f"arn:aws:s3:::{bucket}/*")))
        assert s3_bob.get_object(Bucket=bucket, Key="s3-managed")["Body"].read() == b"under the service key"
        expect_error(s3_bob.get_object, "AccessDenied", 403, Bucket=bucket, Key="sealed")
        as_alice.put_key_policy(KeyId=key, PolicyName="default", Policy=policy(
            statement("Allow", ROOT_ARN, "kms:*"),
            statement("Allow", user_arn(alice.name), "kms:*"),
            statement("Allow", user_arn(bob.name), "kms:Decrypt"),
        ))
        assert s3_bob.get_object(Bucket=bucket, Key="sealed")["Body"].read() == b"under alice's key"
    finally:
        destroy_bucket(s3_alice, bucket)
