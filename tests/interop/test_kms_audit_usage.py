"""The KMS audit log and key usage through the admin API and the `coffer` CLI, against the
real binary: `GET /_coffer/admin/kms/audit` (filters, paging by sequence, root only, no key
material in a line), `GET /_coffer/admin/kms/usage` (object versions and bytes per key
version and bucket, current and noncurrent, bucket keys, while the key is disabled),
`coffer kms audit`, `coffer kms usage` and the guard on `coffer kms schedule-key-deletion`.

Runs on the session server: embedded by default, and in gateway mode
(COFFER_INTEROP_BACKEND=gateways) against two gateways whose keystore and audit log are in
PostgreSQL. Every check filters by a key the test created, so other tests' calls on the
shared server do not disturb it.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse

import pytest
import requests

from support import (admin_call, destroy_bucket, kms_client, run_coffer, sign_request,
                     unique_bucket_name)


def audit(server, **filters) -> dict:
    query = urllib.parse.urlencode({k: v for k, v in filters.items() if v is not None})
    return admin_call(server, "GET", f"kms/audit?{query}")


def audit_all(server, after: int = 0, **filters) -> list[dict]:
    """Every matching line after sequence number `after`, page after page."""
    lines = []
    while True:
        page = audit(server, after=after, limit=1000, **filters)
        lines += page["lines"]
        if not page["truncated"]:
            return lines
        assert page["next_after"] > after, page
        after = page["next_after"]


def usage(server, key: str) -> dict:
    return admin_call(server, "GET", f"kms/usage?key={urllib.parse.quote(key, safe='')}")


def signed_get(server, path: str, access_key: str, secret_key: str) -> requests.Response:
    url = f"{server.endpoint}/_coffer/admin/{path}"
    signed = sign_request("GET", url, access_key, secret_key)
    return requests.get(url, headers=dict(signed.headers), timeout=30)


@pytest.fixture
def kms(server):
    return kms_client(server)


@pytest.fixture
def versioned_bucket(s3_required):
    name = unique_bucket_name("kmsusage")
    s3_required.create_bucket(Bucket=name)
    s3_required.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    yield name
    destroy_bucket(s3_required, name)


@pytest.fixture
def plain_bucket(s3_required):
    name = unique_bucket_name("kmsusage2")
    s3_required.create_bucket(Bucket=name)
    yield name
    destroy_bucket(s3_required, name)


def test_usage_counts_versions_per_key_version_and_bucket(server, s3_required, kms, versioned_bucket,
                                                          plain_bucket):
    s3 = s3_required
    key_id = kms.create_key(Description="usage")["KeyMetadata"]["KeyId"]
    alias = f"alias/usage-{key_id[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    other = kms.create_key(Description="another key")["KeyMetadata"]["KeyId"]

    def put(bucket, name, body, key=key_id, **extra):
        s3.put_object(Bucket=bucket, Key=name, Body=body, ServerSideEncryption="aws:kms",
                      SSEKMSKeyId=key, **extra)

    # Key version 1: two versions of one object (one noncurrent) in the versioned bucket.
    put(versioned_bucket, "doc", b"a" * 10)
    put(versioned_bucket, "doc", b"b" * 20)
    # Under another key, and under the service key: not counted.
    put(versioned_bucket, "other", b"x" * 5, key=other)
    s3.put_object(Bucket=versioned_bucket, Key="service", Body=b"y" * 7)
    kms.rotate_key_on_demand(KeyId=key_id)
    # Key version 2: one in each bucket, one of them through a bucket key.
    put(versioned_bucket, "later", b"c" * 30)
    put(plain_bucket, "bk", b"d" * 40, BucketKeyEnabled=True)
    assert s3.head_object(Bucket=plain_bucket, Key="bk").get("BucketKeyEnabled") is True
    # A delete marker hides "doc" but both its versions are still sealed under the key.
    s3.delete_object(Bucket=versioned_bucket, Key="doc")

    for reference in (key_id, alias, kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]):
        counted = usage(server, reference)
        assert counted["key_id"] == key_id, counted
        assert (counted["objects"], counted["bytes"]) == (4, 100), counted
        assert {b["bucket"]: (b["objects"], b["bytes"]) for b in counted["buckets"]} == {
            versioned_bucket: (3, 60), plain_bucket: (1, 40)}
        versions = {v["key_version"]: v for v in counted["key_versions"]}
        assert set(versions) == {1, 2}, counted
        assert (versions[1]["objects"], versions[1]["bytes"]) == (2, 30)
        assert {b["bucket"]: b["objects"] for b in versions[1]["buckets"]} == {versioned_bucket: 2}
        assert {b["bucket"]: b["objects"] for b in versions[2]["buckets"]} == {
            versioned_bucket: 1, plain_bucket: 1}
        assert counted["object_versions_scanned"] >= 6

    # Read from envelopes alone: the count stands while the key is disabled.
    kms.disable_key(KeyId=key_id)
    assert usage(server, key_id)["objects"] == 4
    kms.enable_key(KeyId=key_id)
    assert usage(server, other)["objects"] == 1

    # The CLI prints the same answer.
    cli = run_coffer(["kms", "usage", alias], server.endpoint, server.access_key, server.secret_key)
    assert json.loads(cli.stdout)["objects"] == 4

    # Unknown keys and missing parameters are errors a person can act on.
    missing = signed_get(server, "kms/usage?key=alias%2Fno-such-alias", server.access_key, server.secret_key)
    assert missing.status_code == 400 and "KMS.NotFoundException" in missing.text, missing.text
    bare = signed_get(server, "kms/usage", server.access_key, server.secret_key)
    assert bare.status_code == 400 and "InvalidArgument" in bare.text, bare.text


def test_schedule_deletion_warns_with_the_count_and_needs_force(server, s3_required, kms, plain_bucket):
    key_id = kms.create_key(Description="deletion guard")["KeyMetadata"]["KeyId"]
    s3_required.put_object(Bucket=plain_bucket, Key="kept", Body=b"sealed", ServerSideEncryption="aws:kms",
                           SSEKMSKeyId=key_id)
    s3_required.put_object(Bucket=plain_bucket, Key="kept2", Body=b"sealed", ServerSideEncryption="aws:kms",
                           SSEKMSKeyId=key_id)
    creds = (server.endpoint, server.access_key, server.secret_key)

    refused = run_coffer(["kms", "schedule-key-deletion", key_id, "--days", "7"], *creds, check=False)
    assert refused.returncode != 0
    assert "still protects 2 object version(s) in 1 bucket(s)" in refused.stderr, refused.stderr
    assert "--force" in refused.stderr
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled", "nothing scheduled"

    forced = run_coffer(["kms", "schedule-key-deletion", key_id, "--days", "7", "--force"], *creds)
    assert "still protects 2 object version(s)" in forced.stderr, forced.stderr
    assert json.loads(forced.stdout)["KeyState"] == "PendingDeletion"
    kms.cancel_key_deletion(KeyId=key_id)

    # A key that protects nothing is scheduled without a word.
    idle = kms.create_key(Description="protects nothing")["KeyMetadata"]["KeyId"]
    quiet = run_coffer(["kms", "schedule-key-deletion", idle, "--days", "7"], *creds)
    assert "warning" not in quiet.stderr and json.loads(quiet.stdout)["KeyState"] == "PendingDeletion"


def test_audit_log_filters_pages_and_holds_no_key_material(server, s3_required, kms, plain_bucket):
    created = kms.create_key(Description="audited")["KeyMetadata"]
    key_id, arn = created["KeyId"], created["Arn"]
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2))
    plaintext = b"audit-marker-plaintext-0123456789"
    encrypted = kms.encrypt(KeyId=key_id, Plaintext=plaintext)
    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    s3_required.put_object(Bucket=plain_bucket, Key="obj", Body=b"object body",
                           ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    kms.disable_key(KeyId=key_id)
    with pytest.raises(Exception):
        kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"])
    kms.enable_key(KeyId=key_id)
    assert kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"])["Plaintext"] == plaintext

    lines = audit_all(server, key=key_id)
    operations = [line["operation"] for line in lines]
    for expected in ("CreateKey", "Encrypt", "GenerateDataKey", "DisableKey", "Decrypt", "EnableKey"):
        assert expected in operations, operations
    assert all(line["key_id"] == key_id or line.get("source_key_id") == key_id for line in lines)
    seqs = [line["seq"] for line in lines]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "oldest first, by sequence"
    # The SSE-KMS call the PUT made names the object and the requester.
    sse = [line for line in lines if line.get("resource") == f"{plain_bucket}/obj"]
    assert [(line["operation"], line["principal"]) for line in sse] == [("GenerateDataKey", "root")], sse

    # Filters: operation (any case), outcome, principal, time range, key by ARN.
    refused = audit_all(server, key=key_id, outcome="error")
    assert [(line["operation"], line["outcome"]) for line in refused] == [("Decrypt", "DisabledException")]
    assert [line["operation"] for line in audit_all(server, key=key_id, operation="disablekey")] == ["DisableKey"]
    assert all(line["principal"] == "root" for line in audit_all(server, key=key_id, principal="root"))
    assert len(audit_all(server, key=key_id, since=started)) == len(lines)
    assert audit_all(server, key=key_id, until="2000-01-01T00:00:00Z") == []
    assert [line["seq"] for line in audit_all(server, key=arn)] == seqs

    # Paging: limit 2, then on from next_after, gives the same lines.
    first = audit(server, key=key_id, limit=2)
    assert len(first["lines"]) == 2 and first["truncated"] is True
    rest = audit_all(server, key=key_id, after=first["next_after"])
    assert [line["seq"] for line in first["lines"] + rest] == seqs

    # No key material: neither the plaintext nor a data key nor a ciphertext blob is in a line.
    text = json.dumps(lines)
    for secret in (plaintext, data_key["Plaintext"], data_key["CiphertextBlob"], encrypted["CiphertextBlob"]):
        assert base64.b64encode(secret).decode() not in text
        assert secret.hex() not in text
    assert plaintext.decode() not in text

    # The CLI: one JSON object per line, with the filters.
    cli = run_coffer(["kms", "audit", "--key", key_id, "--outcome", "DisabledException"],
                     server.endpoint, server.access_key, server.secret_key)
    printed = [json.loads(line) for line in cli.stdout.splitlines()]
    assert [(line["operation"], line["key_id"]) for line in printed] == [("Decrypt", key_id)]
    limited = run_coffer(["kms", "audit", "--key", key_id, "--limit", "3"],
                         server.endpoint, server.access_key, server.secret_key)
    assert [json.loads(line)["seq"] for line in limited.stdout.splitlines()] == seqs[:3]


def test_audit_and_usage_are_root_only_and_check_their_input(server, second_user):
    for path in ("kms/audit", "kms/usage?key=alias%2Faws%2Fs3"):
        refused = signed_get(server, path, second_user.access_key, second_user.secret_key)
        assert refused.status_code == 403 and "<Code>AccessDenied</Code>" in refused.text, refused.text
    for query in ("since=yesterday", "limit=0", "limit=5000", "after=-1"):
        bad = signed_get(server, f"kms/audit?{query}", server.access_key, server.secret_key)
        assert bad.status_code == 400 and "InvalidArgument" in bad.text, (query, bad.text)
    with pytest.raises(urllib.error.HTTPError):
        admin_call(server, "POST", "kms/audit")


def test_bucket_key_reuse_under_the_default_key_is_no_kms_call(server, s3_required, plain_bucket):
    """Objects sealed by a cached bucket key cost no KMS request, as in AWS (where a bucket
    key is what keeps SSE-KMS out of CloudTrail per object): once the bucket key is made,
    more PUTs add no audit line, also under the default key (`alias/aws/s3`), whose alias
    resolves from memory — not a DescribeKey line per object."""
    def put_and_count(first: int) -> list[str]:
        for i in range(first, first + 6):
            s3_required.put_object(Bucket=plain_bucket, Key=f"bk{i}", Body=b"x" * 100,
                                   ServerSideEncryption="aws:kms", BucketKeyEnabled=True)
        return [line["operation"] for line in audit_all(server)
                if (line.get("resource") or "").startswith(f"{plain_bucket}/")]

    made = put_and_count(0)
    assert "GenerateDataKey" in made, made
    assert put_and_count(6) == made, "reusing the bucket key wrote audit lines"
    # Without a bucket key, each object is one GenerateDataKey, as in AWS: the default
    # key's alias resolves without a DescribeKey line of its own.
    s3_required.put_object(Bucket=plain_bucket, Key="direct", Body=b"y",
                           ServerSideEncryption="aws:kms")
    direct = [line["operation"] for line in audit_all(server)
              if line.get("resource") == f"{plain_bucket}/direct"]
    assert direct == ["GenerateDataKey"], direct
    for i in range(12):
        got = s3_required.get_object(Bucket=plain_bucket, Key=f"bk{i}")
        assert got["Body"].read() == b"x" * 100 and got["BucketKeyEnabled"] is True
