"""ACLs and object ownership through boto3, the aws CLI and oss2: canned ACLs and grants on
buckets and objects (at create, PUT, copy, multipart and through `?acl`), the XML of both
dialects, `?ownershipControls` (BucketOwnerEnforced turns ACLs off, as on AWS; buckets
created through the OSS dialect use ACLs), the public access block's BlockPublicAcls, and
who may read what once an ACL grants it."""

from __future__ import annotations

import subprocess

import oss2
import pytest

from oss_support import oss2_bucket, unique_oss_bucket
from support import destroy_bucket, expect_error, unique_bucket_name

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"

def canonical_id(client) -> str:
    return client.list_buckets()["Owner"]["ID"]


def grants_of(response) -> set[tuple[str, str]]:
    """(grantee, permission) of a Get*Acl answer: a canonical id or a group URI."""
    out = set()
    for grant in response["Grants"]:
        grantee = grant["Grantee"]
        who = grantee.get("ID") or grantee.get("URI")
        assert grantee["Type"] == ("CanonicalUser" if "ID" in grantee else "Group"), grantee
        out.add((who, grant["Permission"]))
    return out


@pytest.fixture
def acl_bucket(s3):
    """A bucket whose ACLs count (ObjectWriter), owned by root."""
    name = unique_bucket_name("acl")
    s3.create_bucket(Bucket=name, ObjectOwnership="ObjectWriter")
    yield name
    destroy_bucket(s3, name)


# --------------------------------------------------------------------------- ownership


def test_new_s3_buckets_have_acls_off(s3, bucket):
    controls = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
    assert controls["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    root = canonical_id(s3)
    assert grants_of(s3.get_bucket_acl(Bucket=bucket)) == {(root, "FULL_CONTROL")}
    for acl in ("public-read", "public-read-write", "authenticated-read"):
        expect_error(s3.put_bucket_acl, "AccessControlListNotSupported", 400, Bucket=bucket, ACL=acl)
        expect_error(s3.put_object, "AccessControlListNotSupported", 400, Bucket=bucket,
                     Key="k", Body=b"x", ACL=acl)
    expect_error(s3.put_object, "AccessControlListNotSupported", 400, Bucket=bucket, Key="k",
                 Body=b"x", GrantRead=f'uri="{ALL_USERS}"')
    # The owner's own full control is what the bucket has anyway: accepted.
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    s3.put_object(Bucket=bucket, Key="k2", Body=b"x", ACL="private")
    assert grants_of(s3.get_object_acl(Bucket=bucket, Key="k")) == {(root, "FULL_CONTROL")}
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k", "k2"]


def test_create_bucket_with_acl_needs_acls_on(s3):
    name = unique_bucket_name("acl")
    expect_error(s3.create_bucket, "InvalidBucketAclWithObjectOwnership", 400, Bucket=name,
                 ACL="public-read")
    expect_error(s3.head_bucket, None, 404, Bucket=name)
    expect_error(s3.create_bucket, "InvalidArgument", 400, Bucket=name, ObjectOwnership="Nobody")
    s3.create_bucket(Bucket=name, ACL="public-read", ObjectOwnership="ObjectWriter")
    try:
        assert grants_of(s3.get_bucket_acl(Bucket=name)) == {
            (canonical_id(s3), "FULL_CONTROL"), (ALL_USERS, "READ")}
        rules = s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"]
        assert rules == [{"ObjectOwnership": "ObjectWriter"}]
        # ACLs off while the bucket ACL is public: refused, as on AWS.
        expect_error(s3.put_bucket_ownership_controls, "InvalidBucketAclWithObjectOwnership", 400,
                     Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
        s3.put_bucket_acl(Bucket=name, ACL="private")
        s3.put_bucket_ownership_controls(
            Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
        expect_error(s3.put_bucket_acl, "AccessControlListNotSupported", 400, Bucket=name,
                     ACL="public-read")
    finally:
        destroy_bucket(s3, name)


def test_ownership_controls_put_get_delete(s3, bucket):
    for setting in ("ObjectWriter", "BucketOwnerPreferred", "BucketOwnerEnforced"):
        s3.put_bucket_ownership_controls(
            Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": setting}]})
        got = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
        assert got == [{"ObjectOwnership": setting}]
    s3.delete_bucket_ownership_controls(Bucket=bucket)
    expect_error(s3.get_bucket_ownership_controls, "OwnershipControlsNotFoundError", 404, Bucket=bucket)
    # Without a setting Coffer keeps ACLs off (the secure default, see docs/access-control.md).
    expect_error(s3.put_bucket_acl, "AccessControlListNotSupported", 400, Bucket=bucket,
                 ACL="public-read")


def test_object_ownership_decides_the_owner(s3, s3_user2):
    """A bucket of user2; root writes into it (root may use every bucket)."""
    name = unique_bucket_name("own")
    s3_user2.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerPreferred")
    try:
        root, user2 = canonical_id(s3), canonical_id(s3_user2)
        s3.put_object(Bucket=name, Key="mine", Body=b"x")
        s3.put_object(Bucket=name, Key="given", Body=b"x", ACL="bucket-owner-full-control")
        assert s3.get_object_acl(Bucket=name, Key="mine")["Owner"]["ID"] == root
        given = s3.get_object_acl(Bucket=name, Key="given")
        assert given["Owner"]["ID"] == user2, "bucket-owner-full-control hands the object over"
        s3_user2.put_bucket_ownership_controls(
            Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
        s3.put_object(Bucket=name, Key="written", Body=b"x", ACL="bucket-owner-full-control")
        written = s3.get_object_acl(Bucket=name, Key="written")
        assert written["Owner"]["ID"] == root
        assert grants_of(written) == {(root, "FULL_CONTROL"), (user2, "FULL_CONTROL")}
        s3_user2.put_bucket_ownership_controls(
            Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
        assert s3.get_object_acl(Bucket=name, Key="mine")["Owner"]["ID"] == user2, (
            "under BucketOwnerEnforced the bucket owner owns every object")
    finally:
        destroy_bucket(s3, name)


# --------------------------------------------------------------------------- canned and grants


CANNED = {
    "private": set(),
    "public-read": {(ALL_USERS, "READ")},
    "public-read-write": {(ALL_USERS, "READ"), (ALL_USERS, "WRITE")},
    "authenticated-read": {(AUTHENTICATED_USERS, "READ")},
    "aws-exec-read": set(),
    "bucket-owner-read": set(),  # root writes into its own bucket: nothing to add
    "bucket-owner-full-control": set(),
}


@pytest.mark.parametrize("canned", sorted(CANNED))
def test_canned_object_acls(s3, acl_bucket, canned):
    root = canonical_id(s3)
    s3.put_object(Bucket=acl_bucket, Key="put", Body=b"x", ACL=canned)
    s3.put_object(Bucket=acl_bucket, Key="later", Body=b"x")
    s3.put_object_acl(Bucket=acl_bucket, Key="later", ACL=canned)
    s3.copy_object(Bucket=acl_bucket, Key="copy", CopySource={"Bucket": acl_bucket, "Key": "put"},
                   ACL=canned)
    upload = s3.create_multipart_upload(Bucket=acl_bucket, Key="mpu", ACL=canned)["UploadId"]
    etag = s3.upload_part(Bucket=acl_bucket, Key="mpu", UploadId=upload, PartNumber=1,
                          Body=b"x")["ETag"]
    s3.complete_multipart_upload(Bucket=acl_bucket, Key="mpu", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    expected = {(root, "FULL_CONTROL")} | CANNED[canned]
    for key in ("put", "later", "copy", "mpu"):
        got = s3.get_object_acl(Bucket=acl_bucket, Key=key)
        assert got["Owner"]["ID"] == root
        assert grants_of(got) == expected, key


def test_copy_takes_the_requests_acl_not_the_sources(s3, acl_bucket):
    s3.put_object(Bucket=acl_bucket, Key="src", Body=b"x", ACL="public-read")
    s3.copy_object(Bucket=acl_bucket, Key="dst", CopySource={"Bucket": acl_bucket, "Key": "src"})
    assert grants_of(s3.get_object_acl(Bucket=acl_bucket, Key="dst")) == {
        (canonical_id(s3), "FULL_CONTROL")}


def test_canned_bucket_acls(s3, acl_bucket):
    root = canonical_id(s3)
    for canned, extra in [("public-read-write", CANNED["public-read-write"]),
                          ("authenticated-read", CANNED["authenticated-read"]),
                          ("log-delivery-write", {(LOG_DELIVERY, "WRITE"), (LOG_DELIVERY, "READ_ACP")}),
                          ("private", set())]:
        s3.put_bucket_acl(Bucket=acl_bucket, ACL=canned)
        assert grants_of(s3.get_bucket_acl(Bucket=acl_bucket)) == {(root, "FULL_CONTROL")} | extra


def test_grant_headers(s3, s3_user2, acl_bucket):
    root, user2 = canonical_id(s3), canonical_id(s3_user2)
    s3.put_object(Bucket=acl_bucket, Key="k", Body=b"x", GrantRead=f'id="{user2}"',
                  GrantFullControl=f'id="{root}"')
    assert grants_of(s3.get_object_acl(Bucket=acl_bucket, Key="k")) == {
        (user2, "READ"), (root, "FULL_CONTROL")}
    s3.put_object_acl(Bucket=acl_bucket, Key="k", GrantReadACP=f'id="{user2}", uri="{ALL_USERS}"',
                      GrantWriteACP=f'uri="{AUTHENTICATED_USERS}"')
    got = s3.get_object_acl(Bucket=acl_bucket, Key="k")
    assert grants_of(got) == {(user2, "READ_ACP"), (ALL_USERS, "READ_ACP"),
                              (AUTHENTICATED_USERS, "WRITE_ACP")}
    names = {g["Grantee"].get("ID"): g["Grantee"].get("DisplayName") for g in got["Grants"]}
    assert names[user2].startswith("user2-"), names
    s3.put_bucket_acl(Bucket=acl_bucket, GrantWrite=f'id="{user2}"', GrantFullControl=f'id="{root}"')
    assert grants_of(s3.get_bucket_acl(Bucket=acl_bucket)) == {(user2, "WRITE"), (root, "FULL_CONTROL")}
    # What S3 refuses.
    expect_error(s3.put_object_acl, "UnresolvableGrantByEmailAddress", 400, Bucket=acl_bucket,
                 Key="k", GrantRead='emailAddress="someone@example.com"')
    expect_error(s3.put_object_acl, "InvalidArgument", 400, Bucket=acl_bucket, Key="k",
                 GrantRead='id="' + "0" * 64 + '"')
    expect_error(s3.put_object_acl, "InvalidArgument", 400, Bucket=acl_bucket, Key="k",
                 GrantRead='uri="http://acs.amazonaws.com/groups/global/Nobody"')
    expect_error(s3.put_object_acl, "InvalidRequest", 400, Bucket=acl_bucket, Key="k",
                 ACL="public-read", GrantRead=f'id="{user2}"')
    expect_error(s3.put_object, "InvalidArgument", 400, Bucket=acl_bucket, Key="bad", Body=b"x",
                 ACL="everyone-read")
    expect_error(s3.head_object, None, 404, Bucket=acl_bucket, Key="bad")
    # The refusals changed nothing.
    assert grants_of(s3.get_object_acl(Bucket=acl_bucket, Key="k")) == {
        (user2, "READ_ACP"), (ALL_USERS, "READ_ACP"), (AUTHENTICATED_USERS, "WRITE_ACP")}


def test_access_control_policy_documents(s3, s3_user2, acl_bucket):
    root, user2 = canonical_id(s3), canonical_id(s3_user2)
    s3.put_object(Bucket=acl_bucket, Key="k", Body=b"x")
    policy = {
        "Owner": {"ID": root},
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": root}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"Type": "CanonicalUser", "ID": user2}, "Permission": "READ"},
            {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ_ACP"},
        ],
    }
    s3.put_object_acl(Bucket=acl_bucket, Key="k", AccessControlPolicy=policy)
    got = s3.get_object_acl(Bucket=acl_bucket, Key="k")
    assert got["Owner"]["ID"] == root
    assert got["Owner"]["DisplayName"] == "root"
    assert grants_of(got) == {(root, "FULL_CONTROL"), (user2, "READ"), (ALL_USERS, "READ_ACP")}
    # What a GET answers can be PUT back as it is (tools read, edit and write ACLs so).
    s3.put_bucket_acl(Bucket=acl_bucket, AccessControlPolicy={"Owner": got["Owner"],
                                                              "Grants": got["Grants"]})
    assert grants_of(s3.get_bucket_acl(Bucket=acl_bucket)) == grants_of(got)
    # An ACL cannot give the resource away, nor grant by e-mail.
    given_away = {**policy, "Owner": {"ID": user2}}
    expect_error(s3.put_object_acl, "AccessDenied", 403, Bucket=acl_bucket, Key="k",
                 AccessControlPolicy=given_away)
    by_email = {**policy, "Grants": [{"Grantee": {"Type": "AmazonCustomerByEmail",
                                                  "EmailAddress": "a@example.com"},
                                      "Permission": "READ"}]}
    expect_error(s3.put_object_acl, "UnresolvableGrantByEmailAddress", 400, Bucket=acl_bucket,
                 Key="k", AccessControlPolicy=by_email)
    expect_error(s3.get_object_acl, "NoSuchKey", 404, Bucket=acl_bucket, Key="absent")


def test_object_acls_belong_to_one_version(s3, acl_bucket):
    s3.put_bucket_versioning(Bucket=acl_bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=acl_bucket, Key="k", Body=b"1")["VersionId"]
    second = s3.put_object(Bucket=acl_bucket, Key="k", Body=b"2")["VersionId"]
    put = s3.put_object_acl(Bucket=acl_bucket, Key="k", VersionId=first, ACL="public-read")
    assert put["ResponseMetadata"]["HTTPHeaders"]["x-amz-version-id"] == first
    assert (ALL_USERS, "READ") in grants_of(
        s3.get_object_acl(Bucket=acl_bucket, Key="k", VersionId=first))
    assert (ALL_USERS, "READ") not in grants_of(s3.get_object_acl(Bucket=acl_bucket, Key="k"))
    assert s3.get_object_acl(Bucket=acl_bucket, Key="k", VersionId=second)[
        "ResponseMetadata"]["HTTPHeaders"]["x-amz-version-id"] == second


def test_aws_cli_acls(aws, s3, s3_user2, acl_bucket):
    user2 = canonical_id(s3_user2)
    aws("s3api", "put-bucket-acl", "--bucket", acl_bucket, "--acl", "public-read")
    got = aws.json("s3api", "get-bucket-acl", "--bucket", acl_bucket)
    assert {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"} in got["Grants"]
    s3.put_object(Bucket=acl_bucket, Key="k", Body=b"x")
    aws("s3api", "put-object-acl", "--bucket", acl_bucket, "--key", "k", "--grant-read",
        f"id={user2}")
    got = aws.json("s3api", "get-object-acl", "--bucket", acl_bucket, "--key", "k")
    assert [(g["Grantee"]["ID"], g["Permission"]) for g in got["Grants"]] == [(user2, "READ")]
    proc = aws("s3api", "put-object-acl", "--bucket", acl_bucket, "--key", "k", "--acl", "nonsense",
               check=False)
    assert proc.returncode != 0 and "InvalidArgument" in proc.stderr, proc.stderr
    controls = aws.json("s3api", "get-bucket-ownership-controls", "--bucket", acl_bucket)
    assert controls["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "ObjectWriter"}]


# --------------------------------------------------------------------------- OSS


@pytest.fixture
def oss_bucket(server, s3):
    """A bucket created through oss2 (OSS V4 signatures)."""
    made = []

    def make(**create) -> oss2.Bucket:
        bucket = oss2_bucket(server, unique_oss_bucket("acl"), "v4")
        bucket.create_bucket(**create)
        made.append(bucket.bucket_name)
        return bucket

    yield make
    for name in made:
        destroy_bucket(s3, name)


def test_oss_bucket_acls(oss_bucket, s3):
    bucket = oss_bucket()
    assert bucket.get_bucket_acl().acl == oss2.BUCKET_ACL_PRIVATE
    # OSS buckets use ACLs: their ownership is ObjectWriter.
    rules = s3.get_bucket_ownership_controls(Bucket=bucket.bucket_name)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "ObjectWriter"}]
    for acl in (oss2.BUCKET_ACL_PUBLIC_READ, oss2.BUCKET_ACL_PUBLIC_READ_WRITE, oss2.BUCKET_ACL_PRIVATE):
        bucket.put_bucket_acl(acl)
        assert bucket.get_bucket_acl().acl == acl
    made = oss_bucket(permission=oss2.BUCKET_ACL_PUBLIC_READ)
    assert made.get_bucket_acl().acl == oss2.BUCKET_ACL_PUBLIC_READ
    # The same ACL in S3's form.
    assert (ALL_USERS, "READ") in grants_of(s3.get_bucket_acl(Bucket=made.bucket_name))
    with pytest.raises(oss2.exceptions.OssError) as ei:
        bucket.put_bucket_acl("public")
    assert (ei.value.status, ei.value.code) == (400, "InvalidArgument")


def test_oss_object_acls(oss_bucket, s3):
    bucket = oss_bucket()
    bucket.put_object("plain", b"x")
    assert bucket.get_object_acl("plain").acl == oss2.OBJECT_ACL_DEFAULT
    bucket.put_object("public", b"x", headers={"x-oss-object-acl": oss2.OBJECT_ACL_PUBLIC_READ})
    assert bucket.get_object_acl("public").acl == oss2.OBJECT_ACL_PUBLIC_READ
    for acl in (oss2.OBJECT_ACL_PUBLIC_READ_WRITE, oss2.OBJECT_ACL_PRIVATE, oss2.OBJECT_ACL_DEFAULT):
        bucket.put_object_acl("plain", acl)
        assert bucket.get_object_acl("plain").acl == acl
    # A `default` object has the bucket's ACL: S3's view shows what it amounts to.
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ)
    assert (ALL_USERS, "READ") in grants_of(s3.get_object_acl(Bucket=bucket.bucket_name, Key="plain"))
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PRIVATE)
    assert (ALL_USERS, "READ") not in grants_of(
        s3.get_object_acl(Bucket=bucket.bucket_name, Key="plain"))
    # Set through S3, read through OSS.
    s3.put_object_acl(Bucket=bucket.bucket_name, Key="plain", ACL="public-read-write")
    assert bucket.get_object_acl("plain").acl == oss2.OBJECT_ACL_PUBLIC_READ_WRITE
    with pytest.raises(oss2.exceptions.OssError) as ei:
        bucket.put_object("bad", b"x", headers={"x-oss-object-acl": "everyone"})
    assert (ei.value.status, ei.value.code) == (400, "InvalidArgument")
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object_acl("bad")


def test_oss_acls_on_a_bucket_with_acls_off(server, s3, bucket):
    """An S3-made bucket keeps ACLs off for OSS clients too; private and default are no-ops."""
    b = oss2_bucket(server, bucket, "v4")
    with pytest.raises(oss2.exceptions.OssError) as ei:
        b.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ)
    assert (ei.value.status, ei.value.code) == (400, "AccessControlListNotSupported")
    b.put_object("k", b"x", headers={"x-oss-object-acl": oss2.OBJECT_ACL_DEFAULT})
    b.put_object_acl("k", oss2.OBJECT_ACL_PRIVATE)
    assert b.get_object_acl("k").acl == oss2.OBJECT_ACL_PRIVATE
    assert b.get_bucket_acl().acl == oss2.BUCKET_ACL_PRIVATE


# --------------------------------------------------------------------------- who may read


def test_a_grant_lets_another_user_read(s3, s3_user2, acl_bucket):
    s3.put_object(Bucket=acl_bucket, Key="k", Body=b"secret")
    expect_error(s3_user2.get_object, "AccessDenied", 403, Bucket=acl_bucket, Key="k")
    s3.put_object_acl(Bucket=acl_bucket, Key="k", GrantRead=f'id="{canonical_id(s3_user2)}"')
    assert s3_user2.get_object(Bucket=acl_bucket, Key="k")["Body"].read() == b"secret"
    # Reading the object is not reading its ACL, nor listing the bucket.
    expect_error(s3_user2.get_object_acl, "AccessDenied", 403, Bucket=acl_bucket, Key="k")
    expect_error(s3_user2.list_objects_v2, "AccessDenied", 403, Bucket=acl_bucket)
    s3.put_object_acl(Bucket=acl_bucket, Key="k", ACL="private")
    expect_error(s3_user2.get_object, "AccessDenied", 403, Bucket=acl_bucket, Key="k")


def test_anonymous_curl_reads_only_public_objects(server, s3, acl_bucket):
    s3.put_object(Bucket=acl_bucket, Key="public", Body=b"for all", ACL="public-read")
    s3.put_object(Bucket=acl_bucket, Key="private", Body=b"not for all")

    def curl(key: str) -> tuple[int, bytes]:
        proc = subprocess.run(
            ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", f"{server.endpoint}/{acl_bucket}/{key}"],
            capture_output=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
        body, _, status = proc.stdout.rpartition(b"\n")
        return int(status), body

    assert curl("public") == (200, b"for all")
    status, body = curl("private")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body, body
    # IgnorePublicAcls: the public grant stays but no longer counts.
    s3.put_public_access_block(Bucket=acl_bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": True,
        "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
    assert curl("public")[0] == 403
    assert (ALL_USERS, "READ") in grants_of(s3.get_object_acl(Bucket=acl_bucket, Key="public"))


def test_block_public_acls_refuses_public_acls(s3, acl_bucket):
    s3.put_object(Bucket=acl_bucket, Key="k", Body=b"x")
    s3.put_public_access_block(Bucket=acl_bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": False,
        "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
    for call, kwargs in [
        (s3.put_bucket_acl, {"ACL": "public-read"}),
        (s3.put_bucket_acl, {"GrantRead": f'uri="{AUTHENTICATED_USERS}"'}),
        (s3.put_object_acl, {"Key": "k", "ACL": "public-read-write"}),
        (s3.put_object_acl, {"Key": "k", "GrantRead": f'uri="{ALL_USERS}"'}),
        (s3.put_object, {"Key": "new", "Body": b"x", "ACL": "public-read"}),
        (s3.create_multipart_upload, {"Key": "new", "ACL": "authenticated-read"}),
        (s3.copy_object, {"Key": "new", "CopySource": {"Bucket": acl_bucket, "Key": "k"},
                          "ACL": "public-read"}),
    ]:
        expect_error(call, "AccessDenied", 403, Bucket=acl_bucket, **kwargs)
    expect_error(s3.head_object, None, 404, Bucket=acl_bucket, Key="new")
    # Grants to users are not public.
    s3.put_object_acl(Bucket=acl_bucket, Key="k", GrantRead=f'id="{canonical_id(s3)}"')
    s3.put_bucket_acl(Bucket=acl_bucket, ACL="log-delivery-write")
