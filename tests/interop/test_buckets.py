"""Bucket operations and per-user bucket ownership (root sees every bucket and, through
`coffer ls --owners`, who owns it)."""

import pytest

from support import (
    admin_call,
    destroy_bucket,
    error_code,
    expect_error,
    run_coffer,
    unique_bucket_name,
)


def bucket_names(client) -> set[str]:
    return {b["Name"] for b in client.list_buckets().get("Buckets", [])}


def test_create_head_list_delete(s3_any):
    name = unique_bucket_name("life")
    resp = s3_any.create_bucket(Bucket=name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    try:
        head = s3_any.head_bucket(Bucket=name)
        assert head["ResponseMetadata"]["HTTPStatusCode"] == 200
        listed = s3_any.list_buckets()
        assert name in {b["Name"] for b in listed["Buckets"]}, "new bucket missing from ListBuckets"
        entry = next(b for b in listed["Buckets"] if b["Name"] == name)
        assert entry.get("CreationDate") is not None, "ListBuckets entry has no CreationDate"
        s3_any.delete_bucket(Bucket=name)
    except Exception:
        destroy_bucket(s3_any, name)
        raise
    assert name not in bucket_names(s3_any), "deleted bucket still listed"
    expect_error(s3_any.head_bucket, "404", 404, Bucket=name)


def test_create_twice_is_already_owned_by_you(s3, bucket):
    expect_error(s3.create_bucket, "BucketAlreadyOwnedByYou", 409, Bucket=bucket)
    # The existing bucket is untouched.
    s3.head_bucket(Bucket=bucket)


@pytest.mark.parametrize(
    "name",
    [
        "ab",  # too short
        "a" * 64,  # too long
        "UpperCase-bucket",  # upper case
        "under_score-bucket",  # underscore
        "-leading-hyphen",
        "trailing-hyphen-",
        "double..dots",
        "192.168.5.4",  # formatted like an IP address
        ".leading-dot",
    ],
)
def test_invalid_bucket_name(s3, name):
    try:
        expect_error(s3.create_bucket, "InvalidBucketName", 400, Bucket=name)
    finally:
        # If the server wrongly accepted it, do not leave it behind.
        if name in bucket_names(s3):
            destroy_bucket(s3, name)


def test_delete_non_empty_bucket(s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep.txt", Body=b"x")
    expect_error(s3.delete_bucket, "BucketNotEmpty", 409, Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="keep.txt")["Body"].read() == b"x"


def test_no_such_bucket(s3):
    name = unique_bucket_name("missing")
    expect_error(s3.list_objects_v2, "NoSuchBucket", 404, Bucket=name)
    expect_error(s3.list_objects, "NoSuchBucket", 404, Bucket=name)
    expect_error(s3.get_object, "NoSuchBucket", 404, Bucket=name, Key="k")
    expect_error(s3.put_object, "NoSuchBucket", 404, Bucket=name, Key="k", Body=b"x")
    expect_error(s3.delete_bucket, "NoSuchBucket", 404, Bucket=name)
    expect_error(s3.head_bucket, "404", 404, Bucket=name)
    expect_error(s3.get_bucket_location, "NoSuchBucket", 404, Bucket=name)


def test_get_bucket_location(s3, bucket):
    resp = s3.get_bucket_location(Bucket=bucket)
    # us-east-1 is reported as an empty LocationConstraint, which botocore maps to None.
    assert resp.get("LocationConstraint") in (None, "", "us-east-1"), resp


def test_other_user_gets_access_denied(s3, s3_user2, bucket):
    s3.put_object(Bucket=bucket, Key="secret.txt", Body=b"root only")
    expect_error(s3_user2.head_bucket, "403", 403, Bucket=bucket)
    expect_error(s3_user2.list_objects_v2, "AccessDenied", 403, Bucket=bucket)
    expect_error(s3_user2.list_objects, "AccessDenied", 403, Bucket=bucket)
    expect_error(s3_user2.get_object, "AccessDenied", 403, Bucket=bucket, Key="secret.txt")
    expect_error(s3_user2.head_object, "403", 403, Bucket=bucket, Key="secret.txt")
    expect_error(s3_user2.put_object, "AccessDenied", 403, Bucket=bucket, Key="intruder", Body=b"x")
    expect_error(s3_user2.delete_object, "AccessDenied", 403, Bucket=bucket, Key="secret.txt")
    expect_error(s3_user2.delete_bucket, "AccessDenied", 403, Bucket=bucket)
    expect_error(s3_user2.create_multipart_upload, "AccessDenied", 403, Bucket=bucket, Key="mp")
    expect_error(
        s3_user2.copy_object, "AccessDenied", 403,
        Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "secret.txt"},
    )
    # Nothing the other user tried had an effect.
    assert s3.get_object(Bucket=bucket, Key="secret.txt")["Body"].read() == b"root only"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["secret.txt"], f"unexpected keys after denied writes: {keys}"


def test_copy_from_foreign_bucket_denied(s3, s3_user2, bucket):
    """User 2 cannot read root's object by copying it into a bucket of its own."""
    s3.put_object(Bucket=bucket, Key="secret.txt", Body=b"root only")
    own = unique_bucket_name("u2own")
    s3_user2.create_bucket(Bucket=own)
    try:
        expect_error(
            s3_user2.copy_object, "AccessDenied", 403,
            Bucket=own, Key="stolen", CopySource={"Bucket": bucket, "Key": "secret.txt"},
        )
    finally:
        destroy_bucket(s3_user2, own)


def test_root_lists_every_bucket_and_users_only_theirs(server, s3, s3_user2, second_user, bucket):
    theirs = unique_bucket_name("u2")
    s3_user2.create_bucket(Bucket=theirs)
    try:
        root_view = bucket_names(s3)
        user_view = bucket_names(s3_user2)
        # Root may use every bucket, so its ListBuckets names every bucket (issue 18).
        assert bucket in root_view and theirs in root_view, (
            f"root sees {sorted(root_view)}; expected its own {bucket} and user2's {theirs}"
        )
        assert theirs in user_view and bucket not in user_view, (
            f"user2 sees {sorted(user_view)}; expected its own {theirs} and not {bucket}"
        )
        # The name is taken for everyone.
        expect_error(s3.create_bucket, "BucketAlreadyExists", 409, Bucket=theirs)

        # The owners: `coffer ls --owners` (root only, through the admin API).
        listed = run_coffer(["ls", "--owners"], server.endpoint, server.access_key,
                            server.secret_key).stdout
        rows = {line.split()[-1]: line.split() for line in listed.splitlines()}
        assert rows[bucket][1] == "root" and rows[theirs][1] == second_user.name, listed
        created = s3.list_buckets()["Buckets"]
        date = next(b["CreationDate"] for b in created if b["Name"] == theirs)
        assert rows[theirs][0] == date.strftime("%Y-%m-%dT%H:%M:%S.000Z"), (rows[theirs], date)
        owned = {b["name"]: b for b in admin_call(server, "GET", "buckets")}
        assert owned[theirs]["owner"] == second_user.name and owned[bucket]["owner"] == "root"
        assert owned[theirs]["region"] == "us-east-1" and owned[theirs]["created_ms"] > 0
        # Another user may not see the owners.
        refused = run_coffer(["ls", "--owners"], server.endpoint, second_user.access_key,
                             second_user.secret_key, check=False)
        assert refused.returncode != 0 and "AccessDenied" in refused.stderr, refused
    finally:
        destroy_bucket(s3_user2, theirs)


def test_owner_id_is_stable_and_per_user(s3, s3_required, s3_user2, bucket):
    first = s3.list_buckets()["Owner"]
    second = s3_required.list_buckets()["Owner"]
    assert first.get("ID"), f"ListBuckets has no Owner ID: {first}"
    assert first["ID"] == second["ID"], f"Owner ID changed between calls: {first} vs {second}"
    other = s3_user2.list_buckets()["Owner"]
    assert other.get("ID") and other["ID"] != first["ID"], (
        f"user2 has Owner ID {other.get('ID')!r}, same as or missing next to root's {first['ID']!r}"
    )
    s3.put_object(Bucket=bucket, Key="owned", Body=b"1")
    listed = s3.list_objects_v2(Bucket=bucket, FetchOwner=True)["Contents"][0]
    assert listed.get("Owner", {}).get("ID") == first["ID"], (
        f"object Owner {listed.get('Owner')} differs from ListBuckets Owner {first}"
    )


def test_delete_bucket_frees_name(s3):
    name = unique_bucket_name("reuse")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="a", Body=b"a")
    s3.delete_object(Bucket=name, Key="a")
    s3.delete_bucket(Bucket=name)
    s3.create_bucket(Bucket=name)
    try:
        contents = s3.list_objects_v2(Bucket=name).get("Contents", [])
        assert contents == [], f"re-created bucket shows old objects: {contents}"
    finally:
        destroy_bucket(s3, name)


def test_error_body_is_s3_xml(s3):
    name = unique_bucket_name("xml")
    try:
        s3.list_objects_v2(Bucket=name)
    except Exception as exc:  # botocore parsed the XML error, so Code/Message are present
        err = exc.response["Error"]
        assert error_code(exc) == "NoSuchBucket"
        assert err.get("Message"), f"error without Message: {err}"
        assert exc.response["ResponseMetadata"].get("RequestId"), "error without x-amz-request-id"
    else:
        pytest.fail("ListObjectsV2 on a missing bucket succeeded")


def test_list_buckets_prefix_and_paging(s3):
    prefix = unique_bucket_name("lbp")
    names = [f"{prefix}-{i}" for i in range(3)]
    for name in names:
        s3.create_bucket(Bucket=name)
    try:
        mine = sorted(n for n in names if n.startswith(prefix))
        listed = [b["Name"] for b in s3.list_buckets(Prefix=prefix)["Buckets"]]
        assert listed == mine
        first = s3.list_buckets(Prefix=prefix, MaxBuckets=1)
        assert [b["Name"] for b in first["Buckets"]] == mine[:1]
        assert first.get("ContinuationToken") == mine[0]
        rest = s3.list_buckets(Prefix=prefix, ContinuationToken=first["ContinuationToken"])
        assert [b["Name"] for b in rest["Buckets"]] == mine[1:]
        assert "ContinuationToken" not in rest
    finally:
        for name in names:
            s3.delete_bucket(Bucket=name)
