"""User (identity) policies: `coffer user policy put|get|delete` and the admin API behind it.

- a document is validated whole before it is stored: not JSON, a Principal (identity policies
  name none), an unknown action ⇒ refused with the parser's reason (MalformedPolicy, 400),
  nothing stored; `get` prints what was put; `delete` detaches it;
- only root may read or change policies; an unknown user is NoSuchUser (404), a user without
  a policy NoSuchUserPolicy (404); removing a user removes its policy;
- with boto3: a policy granting user B read on a prefix of user A's bucket lets B list and
  read there and nowhere else; an explicit Deny in B's policy wins even in B's own bucket.
"""

from __future__ import annotations

import json
import uuid

import pytest

from support import add_user, destroy_bucket, expect_error, run_coffer, unique_bucket_name


def coffer_as_root(server, *args: str, check: bool = True):
    return run_coffer(["user", "policy", *args], server.endpoint, server.access_key,
                      server.secret_key, check=check)


def put(server, name: str, document: str, tmp_path, check: bool = True):
    path = tmp_path / f"{uuid.uuid4().hex}.json"
    path.write_text(document)
    return coffer_as_root(server, "put", name, str(path), check=check)


READ_REPORTS = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "ReadReports", "Effect": "Allow",
                   "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::BUCKET/reports/*"}],
}


def test_put_get_delete_with_the_cli(server, tmp_path):
    user = add_user(server, f"up-{uuid.uuid4().hex[:6]}")
    document = json.dumps(READ_REPORTS)
    put(server, user.name, document, tmp_path)
    shown = coffer_as_root(server, "get", user.name).stdout
    assert json.loads(shown) == READ_REPORTS, shown
    # Replacing it.
    replaced = dict(READ_REPORTS, Statement=[dict(READ_REPORTS["Statement"][0], Sid="Other")])
    put(server, user.name, json.dumps(replaced), tmp_path)
    assert json.loads(coffer_as_root(server, "get", user.name).stdout) == replaced
    coffer_as_root(server, "delete", user.name)
    missing = coffer_as_root(server, "get", user.name, check=False)
    assert missing.returncode != 0 and "NoSuchUserPolicy" in missing.stderr, missing.stderr
    # Standard input works too.
    proc = run_coffer(["user", "policy", "put", user.name, "-"], server.endpoint,
                      server.access_key, server.secret_key, check=False, stdin=document)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(coffer_as_root(server, "get", user.name).stdout) == READ_REPORTS


@pytest.mark.parametrize("document, reason", [
    ("not json", None),
    (json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                "Resource": "*"}]}), "Principal"),
    (json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:Frobnicate", "Resource": "*"}]}),
     "s3:Frobnicate"),
    (json.dumps({"Statement": [{"Effect": "Maybe", "Action": "s3:GetObject", "Resource": "*"}]}),
     "Effect"),
])
def test_malformed_policies_are_refused_with_the_parsers_reason(server, tmp_path, document, reason):
    user = add_user(server, f"up-bad-{uuid.uuid4().hex[:6]}")
    put(server, user.name, json.dumps(READ_REPORTS), tmp_path)
    refused = put(server, user.name, document, tmp_path, check=False)
    assert refused.returncode != 0
    assert "MalformedPolicy" in refused.stderr and "400" in refused.stderr, refused.stderr
    if reason:
        assert reason in refused.stderr, refused.stderr
    # The earlier policy is still the one attached.
    assert json.loads(coffer_as_root(server, "get", user.name).stdout) == READ_REPORTS


def test_only_root_manages_policies_and_users_must_exist(server, tmp_path):
    user = add_user(server, f"up-{uuid.uuid4().hex[:6]}")
    path = tmp_path / "p.json"
    path.write_text(json.dumps(READ_REPORTS))
    for args in (["put", user.name, str(path)], ["get", user.name], ["delete", user.name]):
        proc = run_coffer(["user", "policy", *args], server.endpoint, user.access_key,
                          user.secret_key, check=False)
        assert proc.returncode != 0 and "AccessDenied" in proc.stderr, (args, proc.stderr)
    ghost = f"ghost-{uuid.uuid4().hex[:6]}"
    for args in (["put", ghost, str(path)], ["get", ghost], ["delete", ghost]):
        proc = coffer_as_root(server, *args, check=False)
        assert proc.returncode != 0 and "NoSuchUser" in proc.stderr, (args, proc.stderr)
    no_policy = coffer_as_root(server, "get", user.name, check=False)
    assert "NoSuchUserPolicy" in no_policy.stderr and "404" in no_policy.stderr, no_policy.stderr


def test_removing_a_user_removes_its_policy(server, tmp_path):
    name = f"up-gone-{uuid.uuid4().hex[:6]}"
    add_user(server, name)
    put(server, name, json.dumps(READ_REPORTS), tmp_path)
    run_coffer(["user", "remove", name], server.endpoint, server.access_key, server.secret_key)
    add_user(server, name)
    again = coffer_as_root(server, "get", name, check=False)
    assert again.returncode != 0 and "NoSuchUserPolicy" in again.stderr, again.stderr


def test_a_user_policy_grants_read_on_another_users_prefix(server, tmp_path):
    owner = add_user(server, f"up-a-{uuid.uuid4().hex[:6]}")
    reader = add_user(server, f"up-b-{uuid.uuid4().hex[:6]}")
    s3_owner, s3_reader = owner.client(), reader.client()
    bucket = unique_bucket_name("upa")
    s3_owner.create_bucket(Bucket=bucket)
    try:
        s3_owner.put_object(Bucket=bucket, Key="reports/q1.txt", Body=b"q1")
        s3_owner.put_object(Bucket=bucket, Key="private/plan.txt", Body=b"plan")
        expect_error(s3_reader.get_object, "AccessDenied", 403, Bucket=bucket, Key="reports/q1.txt")
        put(server, reader.name, json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject",
             "Resource": f"arn:aws:s3:::{bucket}/reports/*"},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}",
             "Condition": {"StringLike": {"s3:prefix": "reports/*"}}},
        ]}), tmp_path)
        assert s3_reader.get_object(Bucket=bucket, Key="reports/q1.txt")["Body"].read() == b"q1"
        listed = s3_reader.list_objects_v2(Bucket=bucket, Prefix="reports/")
        assert [o["Key"] for o in listed["Contents"]] == ["reports/q1.txt"]
        expect_error(s3_reader.get_object, "AccessDenied", 403, Bucket=bucket, Key="private/plan.txt")
        expect_error(s3_reader.list_objects_v2, "AccessDenied", 403, Bucket=bucket)
        expect_error(s3_reader.put_object, "AccessDenied", 403, Bucket=bucket, Key="reports/x",
                     Body=b"x")
        # Detached, the grant is gone.
        coffer_as_root(server, "delete", reader.name)
        expect_error(s3_reader.get_object, "AccessDenied", 403, Bucket=bucket, Key="reports/q1.txt")
    finally:
        destroy_bucket(s3_owner, bucket)


def test_an_explicit_deny_in_a_user_policy_wins_on_the_users_own_bucket(server, tmp_path):
    user = add_user(server, f"up-deny-{uuid.uuid4().hex[:6]}")
    s3 = user.client()
    bucket = unique_bucket_name("upd")
    s3.create_bucket(Bucket=bucket)
    try:
        s3.put_object(Bucket=bucket, Key="k", Body=b"v")
        put(server, user.name, json.dumps({"Version": "2012-10-17", "Statement": [
            {"Sid": "NoDeletes", "Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"},
        ]}), tmp_path)
        expect_error(s3.delete_object, "AccessDenied", 403, Bucket=bucket, Key="k")
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
        coffer_as_root(server, "delete", user.name)
        s3.delete_object(Bucket=bucket, Key="k")
    finally:
        destroy_bucket(s3, bucket)
