"""The bucket-policy decision table (issue #15's first Must-show): each row is one request
(who, what, on which bucket policy and public access block) and the decision AWS's documented
evaluation logic gives, checked against the real server with boto3 (signed as root, the
bucket's owner, another user; SigV4 and SigV2; header and presigned-URL authentication; over
HTTP and over TLS 1.2 / 1.3) and with raw unsigned HTTP (requests).

One server serves every row: each group (one policy, optionally a public access block) gets a
bucket of its own, set up once, the first time a row of the group runs; rows never change what
other rows read (writes go to fresh keys). A row's decision is "allow" (any answer but 403 —
a 404 for a missing object is allowed-but-absent) or "deny" (403 AccessDenied).

The expectations cite the AWS documentation they come from, per group:
  [EVAL]   IAM User Guide, "Policy evaluation logic" (explicit deny wins; an allow is needed)
  [S3AUTH] S3 User Guide, "How Amazon S3 authorizes a request" (owner, bucket policy, ACL)
  [PRIN]   IAM User Guide, "AWS JSON policy elements: Principal" / "NotPrincipal"
  [ACT]    IAM User Guide, "Action" / "NotAction" (wildcards, case-insensitive)
  [RES]    IAM User Guide, "Resource" / "NotResource" (case-sensitive ARNs)
  [COND]   IAM User Guide, "Condition operators" (missing keys, …IfExists, ForAnyValue/ForAllValues)
  [KEYS]   S3 User Guide, "Bucket policy examples using condition keys" and the Service
           Authorization Reference "Actions, resources, and condition keys for Amazon S3"
  [SSE]    S3 User Guide, "Requiring server-side encryption" / "Using SSE-KMS" bucket policies
  [TLS]    S3 User Guide, "Security best practices: enforce encryption of data in transit"
           (aws:SecureTransport, s3:TlsVersion)
  [PAB]    S3 User Guide, "Blocking public access to your Amazon S3 storage" ("The meaning of
           public", RestrictPublicBuckets, BlockPublicPolicy)
  [LOCK]   S3 User Guide, "I accidentally denied everyone access to my bucket" (the owner and
           root can always get, put and delete the bucket policy)
  [404]    S3 API Reference, GetObject: "If you don't have the s3:ListBucket permission, Amazon
           S3 returns an HTTP status code 403"
"""

from __future__ import annotations

import hashlib
import json
import ssl
from dataclasses import dataclass, field
from unittest import mock

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from support import (
    REGION,
    ServerFactory,
    add_user,
    destroy_bucket,
    free_port,
    make_s3_client,
    unique_bucket_name,
)

ACCOUNT = "000000000000"
OWNER, OTHER = "powner", "pother"
TIMEOUT = 30


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def user_id(name: str) -> str:
    """Coffer's `aws:userid` of a user (docs/access-control.md)."""
    canonical = hashlib.sha256(f"coffer-owner:{name}".encode()).hexdigest()
    return "AIDA" + canonical[:17].upper()


B, OBJ = "arn:aws:s3:::{B}", "arn:aws:s3:::{B}/*"


def st(effect: str, principal, action, resource=OBJ, condition=None, *, sid=None,
       not_principal=None, not_action=None, not_resource=None) -> dict:
    """One statement; `{B}` in resources and values becomes the group's bucket."""
    s: dict = {"Effect": effect}
    if sid:
        s["Sid"] = sid
    if not_principal is not None:
        s["NotPrincipal"] = not_principal
    else:
        s["Principal"] = principal
    if not_action is not None:
        s["NotAction"] = not_action
    else:
        s["Action"] = action
    if not_resource is not None:
        s["NotResource"] = not_resource
    else:
        s["Resource"] = resource
    if condition:
        s["Condition"] = condition
    return s


ANY = "*"
OTHER_P = {"AWS": user_arn(OTHER)}
ALL_S3 = [B, OBJ]

# Objects every group's bucket holds (key → tags).
OBJECTS = {
    "k": {},
    "public/a": {},
    "private/b": {},
    "home/pother/x": {},
    "home/someone/x": {},
    "tagged-public": {"class": "public"},
    "tagged-secret": {"class": "secret"},
}


@dataclass(frozen=True)
class Group:
    """One bucket policy (statements), optionally a public access block and versioning."""

    statements: tuple = ()
    block: dict | None = None
    versioned: bool = False


@dataclass(frozen=True)
class Row:
    group: str
    who: str
    op: str
    expect: str  # "allow" | "deny"
    args: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        detail = ",".join(f"{k}={v}" for k, v in sorted(self.args.items()))
        return f"{self.group}:{self.who}:{self.op}[{detail}]:{self.expect}"


def R(group, who, op, expect, **args) -> Row:
    return Row(group, who, op, expect, args)


PUBLIC_READ = st("Allow", ANY, "s3:GetObject", sid="PublicRead")
DENY_HTTP = st("Deny", ANY, "s3:*", ALL_S3, {"Bool": {"aws:SecureTransport": "false"}},
               sid="DenyInsecureTransport")
DENY_OLD_TLS = st("Deny", ANY, "s3:*", ALL_S3, {"NumericLessThan": {"s3:TlsVersion": "1.3"}},
                  sid="RequireTLS13")
# "Deny PutObject unless SSE-KMS with key X" — the two statements of AWS's example ([SSE]).
REQUIRE_KMS = st("Deny", ANY, "s3:PutObject", OBJ,
                 {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}, sid="RequireKms")
REQUIRE_KEY_X = st("Deny", ANY, "s3:PutObject", OBJ,
                   {"StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "{KEY_X}"}},
                   sid="RequireKeyX")

GROUPS: dict[str, Group] = {
    # [S3AUTH] No policy: the owner and root only.
    "none": Group(),
    # [PRIN] Principal "*" is everyone, anonymous included.
    "public-read": Group((PUBLIC_READ,)),
    "public-read-aws-star": Group((st("Allow", {"AWS": "*"}, "s3:GetObject"),)),
    "public-list": Group((PUBLIC_READ, st("Allow", ANY, "s3:ListBucket", B))),
    # [PRIN] A user named by ARN; [ACT] several actions.
    "user-grant": Group((st("Allow", OTHER_P, ["s3:GetObject", "s3:PutObject"]),)),
    # [PRIN] The account (its root ARN or bare id) delegates to the account's identity
    # policies: a user without one is not allowed by it.
    "account-root": Group((st("Allow", {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "s3:GetObject"),)),
    "account-id": Group((st("Allow", {"AWS": ACCOUNT}, "s3:GetObject"),)),
    # [PRIN] NotPrincipal with Deny: everyone but the named principal is denied (owner too).
    "not-principal": Group((PUBLIC_READ,
                            st("Deny", None, "s3:GetObject", not_principal=OTHER_P, sid="OnlyOther"))),
    # [ACT] Wildcards and case.
    "action-star": Group((st("Allow", OTHER_P, "s3:Get*"),)),
    "action-qmark": Group((st("Allow", OTHER_P, "s3:?etObject"),)),
    "action-case": Group((st("Allow", OTHER_P, "S3:GETOBJECT"),)),
    "action-all": Group((st("Allow", OTHER_P, "s3:*", ALL_S3),)),
    "not-action": Group((st("Allow", OTHER_P, None, OBJ, not_action="s3:DeleteObject"),)),
    # [RES]
    "resource-prefix": Group((st("Allow", OTHER_P, "s3:GetObject", "arn:aws:s3:::{B}/public/*"),)),
    "resource-case": Group((st("Allow", OTHER_P, "s3:GetObject", "arn:aws:s3:::{B}/PUBLIC/*"),)),
    "resource-qmark": Group((st("Allow", OTHER_P, "s3:GetObject", "arn:aws:s3:::{B}/publi?/*"),)),
    "not-resource": Group((st("Allow", OTHER_P, "s3:GetObject", not_resource="arn:aws:s3:::{B}/private/*"),)),
    "bucket-arn-only": Group((st("Allow", OTHER_P, ["s3:ListBucket", "s3:GetObject"], ALL_S3[:1] + ["arn:aws:s3:::{B}/public/*"]),)),
    # [EVAL] Explicit deny wins over any allow, the owner's and root's included.
    "deny-wins": Group((PUBLIC_READ,
                        st("Deny", ANY, "s3:GetObject", "arn:aws:s3:::{B}/private/*", sid="NoPrivate"))),
    "deny-put": Group((st("Deny", ANY, "s3:PutObject", sid="NoWrites"),)),
    # [LOCK] Everything denied to everyone; the owner and root can still manage the policy.
    "lockout": Group((st("Deny", ANY, "s3:*", ALL_S3, sid="DenyAll"),)),
    # [KEYS] aws:SourceIp (the tests come from 127.0.0.1).
    "ip-loopback": Group((st("Allow", ANY, "s3:GetObject", OBJ, {"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}}),)),
    "ip-loopback-8": Group((st("Allow", ANY, "s3:GetObject", OBJ, {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}),)),
    "ip-ten": Group((st("Allow", ANY, "s3:GetObject", OBJ, {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),)),
    "not-ip-ten": Group((PUBLIC_READ, st("Deny", ANY, "s3:GetObject", OBJ,
                                         {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, sid="OnlyTen"))),
    # [KEYS] listing parameters.
    "list-prefix": Group((st("Allow", OTHER_P, "s3:ListBucket", B, {"StringEquals": {"s3:prefix": "public/"}}),)),
    "list-prefix-like": Group((st("Allow", OTHER_P, "s3:ListBucket", B, {"StringLike": {"s3:prefix": "public/*"}}),)),
    "list-max-keys": Group((st("Allow", OTHER_P, "s3:ListBucket", B,
                               {"NumericLessThanEquals": {"s3:max-keys": "10"}}),)),
    "list-delimiter": Group((st("Allow", OTHER_P, "s3:ListBucket", B, {"StringEquals": {"s3:delimiter": "/"}}),)),
    "list-versions": Group((st("Allow", OTHER_P, "s3:ListBucketVersions", B),)),
    # [KEYS] the caller.
    "username": Group((st("Allow", ANY, "s3:GetObject", OBJ, {"StringEquals": {"aws:username": OTHER}}),)),
    "userid": Group((st("Allow", ANY, "s3:GetObject", OBJ, {"StringEquals": {"aws:userid": user_id(OTHER)}}),)),
    "principal-arn": Group((st("Allow", ANY, "s3:GetObject", OBJ,
                               {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/pot*"}}),)),
    "home-variable": Group((st("Allow", ANY, "s3:GetObject", "arn:aws:s3:::{B}/home/${aws:username}/*"),)),
    # [COND] dates and numbers.
    "time-after": Group((st("Allow", OTHER_P, "s3:GetObject", OBJ,
                            {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}),)),
    "time-before": Group((st("Allow", OTHER_P, "s3:GetObject", OBJ,
                             {"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}),)),
    "epoch": Group((st("Allow", OTHER_P, "s3:GetObject", OBJ,
                       {"NumericGreaterThan": {"aws:EpochTime": "1600000000"}}),)),
    # [SSE]
    "require-kms-key": Group((REQUIRE_KMS, REQUIRE_KEY_X)),
    "require-aes": Group((st("Deny", ANY, "s3:PutObject", OBJ,
                             {"StringNotEquals": {"s3:x-amz-server-side-encryption": "AES256"}}, sid="RequireAes"),)),
    "require-sse-null": Group((st("Deny", ANY, "s3:PutObject", OBJ,
                                  {"Null": {"s3:x-amz-server-side-encryption": "true"}}, sid="RequireSse"),
                               st("Allow", OTHER_P, "s3:PutObject"))),
    "sse-if-exists": Group((st("Allow", OTHER_P, "s3:PutObject", OBJ,
                               {"StringEqualsIfExists": {"s3:x-amz-server-side-encryption": "AES256"}}),)),
    # [KEYS] tags of the request and of the object.
    "request-tag": Group((st("Allow", OTHER_P, "s3:PutObject", OBJ,
                             {"StringEquals": {"s3:RequestObjectTag/project": "alpha"}}),)),
    "request-tag-any-key": Group((st("Allow", OTHER_P, "s3:PutObject", OBJ,
                                     {"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": ["project"]}}),)),
    "request-tag-all-keys": Group((st("Allow", OTHER_P, "s3:PutObject", OBJ,
                                      {"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["project", "team"]}}),)),
    "existing-tag": Group((st("Allow", ANY, "s3:GetObject", OBJ,
                              {"StringEquals": {"s3:ExistingObjectTag/class": "public"}}),)),
    "existing-tag-deny": Group((st("Deny", ANY, "s3:GetObject", OBJ,
                                   {"StringEquals": {"s3:ExistingObjectTag/class": "secret"}}, sid="NoSecrets"),)),
    # [KEYS] s3:VersionId on a versioned bucket.
    "version-id": Group((st("Allow", OTHER_P, "s3:GetObjectVersion", OBJ,
                            {"StringEquals": {"s3:VersionId": "{V1}"}}),), versioned=True),
    "current-only": Group((st("Allow", OTHER_P, "s3:GetObject"),), versioned=True),
    # [KEYS] how the request was signed.
    "sigv4-only": Group((st("Allow", OTHER_P, "s3:GetObject"),
                         st("Deny", ANY, "s3:*", ALL_S3,
                            {"StringNotEquals": {"s3:signatureversion": "AWS4-HMAC-SHA256"}}, sid="SigV4Only"))),
    "no-presigned": Group((st("Allow", OTHER_P, "s3:GetObject"),
                           st("Deny", ANY, "s3:*", ALL_S3,
                              {"StringEquals": {"s3:authType": "REST-QUERY-STRING"}}, sid="NoPresigned"))),
    "header-auth-only": Group((st("Allow", OTHER_P, ["s3:GetObject", "s3:PutObject"], OBJ,
                                  {"StringEquals": {"s3:authType": "REST-HEADER"}}),)),
    # [TLS]
    "secure-transport": Group((PUBLIC_READ, DENY_HTTP)),
    "tls13": Group((PUBLIC_READ, DENY_OLD_TLS)),
    # [PAB]
    "restrict-public": Group((PUBLIC_READ,), block={"RestrictPublicBuckets": True}),
    "restrict-nonpublic": Group((st("Allow", OTHER_P, "s3:GetObject"),), block={"RestrictPublicBuckets": True}),
    "block-policy": Group((st("Allow", OTHER_P, "s3:GetObject"),), block={"BlockPublicPolicy": True}),
    # Per-key DeleteObjects and copy sources.
    "delete-public-prefix": Group((st("Allow", OTHER_P, "s3:DeleteObject", "arn:aws:s3:::{B}/public/*"),)),
    "copy-public-prefix": Group((st("Allow", OTHER_P, "s3:PutObject"),
                                 st("Allow", OTHER_P, "s3:GetObject", "arn:aws:s3:::{B}/public/*"))),
    # Bucket sub-resources by their own actions.
    "bucket-reads": Group((st("Allow", OTHER_P, ["s3:GetBucketLocation", "s3:GetBucketPolicy",
                                                  "s3:GetBucketPolicyStatus"], B),)),
}

PUBLIC_DOC = {"Version": "2012-10-17", "Statement": [st("Allow", ANY, "s3:GetObject")]}
PRIVATE_DOC = {"Version": "2012-10-17", "Statement": [st("Allow", OTHER_P, "s3:GetObject")]}

ROWS: list[Row] = [
    # ---- [S3AUTH] no policy: ownership alone.
    R("none", "owner", "get", "allow"), R("none", "owner", "put", "allow"),
    R("none", "owner", "list", "allow"), R("none", "owner", "delete", "allow", key="gone-1"),
    R("none", "root", "get", "allow"), R("none", "root", "list", "allow"),
    R("none", "other", "get", "deny"), R("none", "other", "put", "deny"),
    R("none", "other", "list", "deny"), R("none", "other", "delete", "deny"),
    R("none", "other", "head_bucket", "deny"), R("none", "other", "location", "deny"),
    R("none", "anon", "get", "deny"), R("none", "anon", "head", "deny"), R("none", "anon", "list", "deny"),
    R("none", "anon", "put", "deny"), R("none", "anon", "delete", "deny"),
    R("none", "anon", "get_policy", "deny"), R("none", "other", "get_policy", "deny"),
    # ---- [PRIN] public read.
    R("public-read", "anon", "get", "allow"), R("public-read", "anon", "head", "allow"),
    R("public-read", "anon", "get", "deny", key="missing"),  # [404] no s3:ListBucket
    R("public-read", "anon", "put", "deny"), R("public-read", "anon", "list", "deny"),
    R("public-read", "anon", "delete", "deny"), R("public-read", "anon", "get_tagging", "deny"),
    R("public-read", "other", "get", "allow"), R("public-read", "other", "put", "deny"),
    R("public-read", "other-v2", "get", "allow"), R("public-read", "other-presigned", "get", "allow"),
    R("public-read", "owner", "put", "allow"), R("public-read", "owner", "get", "allow", key="missing"),
    R("public-read-aws-star", "anon", "get", "allow"), R("public-read-aws-star", "other", "get", "allow"),
    R("public-read-aws-star", "anon", "list", "deny"),
    R("public-list", "anon", "list", "allow"), R("public-list", "anon", "get", "allow", key="missing"),
    R("public-list", "anon", "list_versions", "deny"), R("public-list", "anon", "list_v1", "allow"),
    # ---- [PRIN] a user by ARN.
    R("user-grant", "other", "get", "allow"), R("user-grant", "other", "put", "allow"),
    R("user-grant", "other", "head", "allow"), R("user-grant", "other", "list", "deny"),
    R("user-grant", "other", "delete", "deny"), R("user-grant", "anon", "get", "deny"),
    R("user-grant", "other-v2", "get", "allow"), R("user-grant", "other", "get_tagging", "deny"),
    R("user-grant", "other", "get", "deny", key="missing"),
    R("account-root", "other", "get", "deny"), R("account-root", "anon", "get", "deny"),
    R("account-root", "root", "get", "allow"),
    R("account-id", "other", "get", "deny"), R("account-id", "anon", "get", "deny"),
    R("not-principal", "other", "get", "allow"), R("not-principal", "anon", "get", "deny"),
    R("not-principal", "owner", "get", "deny"), R("not-principal", "root", "get", "deny"),
    R("not-principal", "owner", "list", "allow"),
    # ---- [ACT]
    R("action-star", "other", "get", "allow"), R("action-star", "other", "head", "allow"),
    R("action-star", "other", "get_tagging", "allow"), R("action-star", "other", "put", "deny"),
    R("action-star", "other", "delete", "deny"),
    R("action-qmark", "other", "get", "allow"), R("action-qmark", "other", "put", "deny"),
    R("action-case", "other", "get", "allow"), R("action-case", "other", "put", "deny"),
    R("action-all", "other", "get", "allow"), R("action-all", "other", "put", "allow"),
    R("action-all", "other", "list", "allow"), R("action-all", "other", "delete", "allow", key="gone-2"),
    R("action-all", "other", "get_policy", "allow"), R("action-all", "anon", "get", "deny"),
    R("not-action", "other", "get", "allow"), R("not-action", "other", "put", "allow"),
    R("not-action", "other", "delete", "deny"), R("not-action", "other", "list", "deny"),
    # ---- [RES]
    R("resource-prefix", "other", "get", "allow", key="public/a"),
    R("resource-prefix", "other", "get", "deny", key="private/b"),
    R("resource-prefix", "other", "get", "deny", key="k"),
    R("resource-case", "other", "get", "deny", key="public/a"),
    R("resource-qmark", "other", "get", "allow", key="public/a"),
    R("resource-qmark", "other", "get", "deny", key="private/b"),
    R("not-resource", "other", "get", "allow", key="public/a"),
    R("not-resource", "other", "get", "allow", key="k"),
    R("not-resource", "other", "get", "deny", key="private/b"),
    R("bucket-arn-only", "other", "list", "allow"),
    R("bucket-arn-only", "other", "get", "deny", key="k"),
    # ---- [EVAL] deny wins.
    R("deny-wins", "anon", "get", "allow", key="public/a"), R("deny-wins", "anon", "get", "deny", key="private/b"),
    R("deny-wins", "other", "get", "deny", key="private/b"), R("deny-wins", "owner", "get", "deny", key="private/b"),
    R("deny-wins", "root", "get", "deny", key="private/b"), R("deny-wins", "owner", "get", "allow", key="k"),
    R("deny-put", "owner", "put", "deny"), R("deny-put", "root", "put", "deny"),
    R("deny-put", "owner", "get", "allow"), R("deny-put", "owner", "copy", "deny"),
    R("deny-put", "owner", "mpu", "deny"),
    # ---- [LOCK]
    R("lockout", "owner", "get", "deny"), R("lockout", "root", "get", "deny"), R("lockout", "owner", "list", "deny"),
    R("lockout", "owner", "get_tagging", "deny"), R("lockout", "owner", "location", "deny"),
    R("lockout", "owner", "get_policy", "allow"), R("lockout", "root", "get_policy", "allow"),
    R("lockout", "owner", "put_policy", "allow", doc="same"),
    R("lockout", "other", "get_policy", "deny"), R("lockout", "anon", "get_policy", "deny"),
    # ---- [KEYS] aws:SourceIp
    R("ip-loopback", "anon", "get", "allow"), R("ip-loopback", "other", "get", "allow"),
    R("ip-loopback-8", "anon", "get", "allow"),
    R("ip-ten", "anon", "get", "deny"), R("ip-ten", "other", "get", "deny"), R("ip-ten", "owner", "get", "allow"),
    R("not-ip-ten", "anon", "get", "deny"), R("not-ip-ten", "owner", "get", "deny"),
    R("not-ip-ten", "owner", "list", "allow"),
    # ---- [KEYS] listing parameters
    R("list-prefix", "other", "list", "allow", prefix="public/"),
    R("list-prefix", "other", "list", "deny", prefix="private/"),
    R("list-prefix", "other", "list", "deny"),
    R("list-prefix", "other", "list_v1", "allow", prefix="public/"),
    R("list-prefix-like", "other", "list", "allow", prefix="public/x"),
    R("list-prefix-like", "other", "list", "deny", prefix="home/"),
    R("list-max-keys", "other", "list", "allow", max_keys=5),
    R("list-max-keys", "other", "list", "deny", max_keys=50),
    R("list-max-keys", "other", "list", "deny"),
    R("list-delimiter", "other", "list", "allow", delimiter="/"),
    R("list-delimiter", "other", "list", "deny"),
    R("list-versions", "other", "list_versions", "allow"), R("list-versions", "other", "list", "deny"),
    # ---- [KEYS] the caller
    R("username", "other", "get", "allow"), R("username", "anon", "get", "deny"),
    R("username", "owner", "get", "allow"),
    R("userid", "other", "get", "allow"), R("userid", "anon", "get", "deny"),
    R("principal-arn", "other", "get", "allow"), R("principal-arn", "anon", "get", "deny"),
    R("home-variable", "other", "get", "allow", key="home/pother/x"),
    R("home-variable", "other", "get", "deny", key="home/someone/x"),
    R("home-variable", "anon", "get", "deny", key="home/pother/x"),
    # ---- [COND] dates, numbers
    R("time-after", "other", "get", "allow"), R("time-before", "other", "get", "deny"),
    R("epoch", "other", "get", "allow"),
    # ---- [SSE] deny PutObject unless SSE-KMS with key X: PUT, CopyObject, CreateMultipartUpload
    R("require-kms-key", "owner", "put", "deny"),
    R("require-kms-key", "owner", "put", "deny", sse="AES256"),
    R("require-kms-key", "root", "put", "allow", sse="aws:kms", kms="X"),
    R("require-kms-key", "owner", "put", "deny", sse="aws:kms", kms="Y"),
    R("require-kms-key", "owner", "put", "deny", sse="aws:kms"),
    R("require-kms-key", "root", "put", "deny", sse="aws:kms", kms="Y"),
    R("require-kms-key", "root", "put", "deny", sse="AES256"),
    R("require-kms-key", "root", "copy", "allow", sse="aws:kms", kms="X"),
    R("require-kms-key", "owner", "copy", "deny"),
    R("require-kms-key", "owner", "copy", "deny", sse="aws:kms", kms="Y"),
    R("require-kms-key", "root", "mpu", "allow", sse="aws:kms", kms="X"),
    R("require-kms-key", "owner", "mpu", "deny"),
    R("require-kms-key", "owner", "mpu", "deny", sse="AES256"),
    R("require-kms-key", "anon", "put", "deny", sse="aws:kms", kms="X"),
    R("require-kms-key", "owner", "get", "allow"),
    R("require-aes", "owner", "put", "allow", sse="AES256"),
    R("require-aes", "owner", "put", "deny"),
    R("require-aes", "owner", "put", "deny", sse="aws:kms", kms="X"),
    R("require-aes", "owner", "copy", "allow", sse="AES256"),
    R("require-aes", "owner", "mpu", "deny"),
    R("require-sse-null", "other", "put", "deny"),
    R("require-sse-null", "other", "put", "allow", sse="AES256"),
    R("require-sse-null", "owner", "put", "deny"),
    R("sse-if-exists", "other", "put", "allow"),
    R("sse-if-exists", "other", "put", "allow", sse="AES256"),
    R("sse-if-exists", "other", "put", "deny", sse="aws:kms"),
    # ---- [KEYS] tags
    R("request-tag", "other", "put", "allow", tagging="project=alpha"),
    R("request-tag", "other", "put", "deny", tagging="project=beta"),
    R("request-tag", "other", "put", "deny"),
    R("request-tag-any-key", "other", "put", "allow", tagging="project=x"),
    R("request-tag-any-key", "other", "put", "deny", tagging="team=x"),
    R("request-tag-all-keys", "other", "put", "allow", tagging="project=a&team=b"),
    R("request-tag-all-keys", "other", "put", "deny", tagging="project=a&cost=1"),
    R("request-tag-all-keys", "other", "put", "allow"),
    R("existing-tag", "anon", "get", "allow", key="tagged-public"),
    R("existing-tag", "anon", "get", "deny", key="tagged-secret"),
    R("existing-tag", "other", "get", "allow", key="tagged-public"),
    R("existing-tag", "other", "get", "deny", key="k"),
    R("existing-tag", "owner", "get", "allow", key="tagged-secret"),
    R("existing-tag-deny", "owner", "get", "deny", key="tagged-secret"),
    R("existing-tag-deny", "owner", "get", "allow", key="tagged-public"),
    R("existing-tag-deny", "root", "get", "deny", key="tagged-secret"),
    # ---- [KEYS] s3:VersionId
    R("version-id", "other", "get", "allow", key="v", version="V1"),
    R("version-id", "other", "get", "deny", key="v", version="V2"),
    R("version-id", "other", "get", "deny", key="v"),
    R("current-only", "other", "get", "allow", key="v"),
    R("current-only", "other", "get", "deny", key="v", version="V1"),
    # ---- [KEYS] signature version and authentication type
    R("sigv4-only", "other", "get", "allow"), R("sigv4-only", "other-v2", "get", "deny"),
    R("sigv4-only", "owner", "get", "allow"), R("sigv4-only", "owner-v2", "get", "deny"),
    R("no-presigned", "other", "get", "allow"), R("no-presigned", "other-presigned", "get", "deny"),
    R("no-presigned", "owner-presigned", "get", "deny"),
    R("header-auth-only", "other", "get", "allow"), R("header-auth-only", "other-presigned", "get", "deny"),
    R("header-auth-only", "other-presigned", "put", "deny"), R("header-auth-only", "other", "put", "allow"),
    # ---- [TLS]
    R("secure-transport", "anon", "get", "deny"), R("secure-transport", "anon-tls", "get", "allow"),
    R("secure-transport", "other", "get", "deny"), R("secure-transport", "other-tls13", "get", "allow"),
    R("secure-transport", "owner", "get", "deny"), R("secure-transport", "owner", "get_policy", "allow"),
    R("secure-transport", "other-tls12", "get", "allow"),
    R("tls13", "other-tls12", "get", "deny"), R("tls13", "other-tls13", "get", "allow"),
    R("tls13", "anon", "get", "allow"), R("tls13", "anon-tls", "get", "allow"),
    # ---- [PAB]
    R("restrict-public", "anon", "get", "deny"), R("restrict-public", "other", "get", "allow"),
    R("restrict-public", "owner", "get", "allow"),
    R("restrict-nonpublic", "other", "get", "allow"), R("restrict-nonpublic", "anon", "get", "deny"),
    R("block-policy", "owner", "put_policy", "deny", doc="public"),
    R("block-policy", "root", "put_policy", "deny", doc="public"),
    R("block-policy", "owner", "put_policy", "allow", doc="private"),
    R("block-policy", "other", "get", "allow"),
    # ---- DeleteObjects per key, copy sources
    R("delete-public-prefix", "other", "delete_objects", "allow", key="public/gone"),
    R("delete-public-prefix", "other", "delete_objects", "deny", key="private/gone"),
    R("delete-public-prefix", "other", "delete", "allow", key="public/gone-too"),
    R("delete-public-prefix", "anon", "delete_objects", "deny", key="public/gone"),
    R("copy-public-prefix", "other", "copy", "allow", src="public/a"),
    R("copy-public-prefix", "other", "copy", "deny", src="private/b"),
    R("copy-public-prefix", "other", "get", "deny", key="private/b"),
    # ---- bucket sub-resources
    R("bucket-reads", "other", "location", "allow"), R("bucket-reads", "other", "get_policy", "allow"),
    R("bucket-reads", "other", "policy_status", "allow"), R("bucket-reads", "other", "head_bucket", "deny"),
    R("bucket-reads", "other", "get_encryption", "deny"), R("bucket-reads", "anon", "location", "deny"),
]


# --------------------------------------------------------------------------- the server


def _tls_context(version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl._create_unverified_context()
    ctx.minimum_version = ctx.maximum_version = version
    return ctx


class Table:
    """The server, the callers and each group's bucket, made on first use."""

    def __init__(self, factory: ServerFactory):
        self.tls_port = free_port()
        self.srv = factory(extra_args=["--tls-listen", f"127.0.0.1:{self.tls_port}"])
        self.root = self.srv.client(checksum="when_required")
        self.users = {OWNER: add_user(self.srv, OWNER), OTHER: add_user(self.srv, OTHER)}
        self.clients: dict[str, object] = {}
        self.buckets: dict[str, str] = {}
        self.versions: dict[str, dict[str, str]] = {}
        # Root creates the keys (and so may use them whatever the key policies say): the rows
        # that succeed with SSE-KMS are root's; the bucket policy binds root as anyone else.
        kms = self._kms("root")
        self.keys = {name: kms.create_key(Description=f"policy table {name}")["KeyMetadata"]["Arn"]
                     for name in ("X", "Y")}

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    @property
    def ca(self) -> str:
        return str(self.srv.data_dir / "tls" / "self-signed.crt")

    def _credentials(self, name: str) -> tuple[str, str]:
        if name == "root":
            return self.srv.access_key, self.srv.secret_key
        user = self.users[name]
        return user.access_key, user.secret_key

    def _kms(self, name: str):
        ak, sk = self._credentials(name)
        session = boto3.session.Session(aws_access_key_id=ak, aws_secret_access_key=sk, region_name=REGION)
        return session.client("kms", endpoint_url=self.srv.endpoint,
                              config=Config(retries={"max_attempts": 1, "mode": "standard"}))

    def client(self, who: str):
        """boto3 for `who`: root, owner, other; `-v2` SigV2; `-tls12`/`-tls13` over HTTPS."""
        if who in self.clients:
            return self.clients[who]
        base, _, variant = who.partition("-")
        name = {"root": "root", "owner": OWNER, "other": OTHER}[base]
        ak, sk = self._credentials(name)
        if variant == "v2":
            cfg = Config(region_name=REGION, signature_version="s3", s3={"addressing_style": "path"},
                         retries={"max_attempts": 1, "mode": "standard"})
            session = boto3.session.Session(aws_access_key_id=ak, aws_secret_access_key=sk,
                                            region_name=REGION)
            client = session.client("s3", endpoint_url=self.srv.endpoint, config=cfg)
        elif variant in ("tls12", "tls13"):
            version = ssl.TLSVersion.TLSv1_2 if variant == "tls12" else ssl.TLSVersion.TLSv1_3
            cfg = Config(region_name=REGION, signature_version="s3v4", s3={"addressing_style": "path"},
                         retries={"max_attempts": 1, "mode": "standard"},
                         request_checksum_calculation="when_required")
            session = boto3.session.Session(aws_access_key_id=ak, aws_secret_access_key=sk,
                                            region_name=REGION)
            with mock.patch("botocore.httpsession.create_urllib3_context",
                            lambda *a, **k: _tls_context(version)):
                client = session.client("s3", endpoint_url=self.https, config=cfg, verify=self.ca)
        else:
            client = make_s3_client(self.srv.endpoint, ak, sk, checksum="when_required")
        self.clients[who] = client
        return client

    def bucket(self, group: str) -> str:
        """The group's bucket: owned by OWNER, holding OBJECTS, with its policy and block."""
        if group in self.buckets:
            return self.buckets[group]
        spec = GROUPS[group]
        owner = self.client("owner")
        name = unique_bucket_name(f"pt-{group}")[:63]
        owner.create_bucket(Bucket=name)
        versions: dict[str, str] = {}
        if spec.versioned:
            owner.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            versions["V1"] = owner.put_object(Bucket=name, Key="v", Body=b"v1")["VersionId"]
            versions["V2"] = owner.put_object(Bucket=name, Key="v", Body=b"v2")["VersionId"]
        for key, tags in OBJECTS.items():
            tagging = "&".join(f"{k}={v}" for k, v in tags.items())
            owner.put_object(Bucket=name, Key=key, Body=f"body of {key}".encode(),
                             **({"Tagging": tagging} if tagging else {}))
        if spec.block:
            owner.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=spec.block)
        if spec.statements:
            owner.put_bucket_policy(Bucket=name, Policy=self.render(
                {"Version": "2012-10-17", "Statement": list(spec.statements)}, name, versions))
        self.buckets[group] = name
        self.versions[group] = versions
        return name

    def render(self, doc: dict, bucket: str, versions: dict[str, str]) -> str:
        text = json.dumps(doc).replace("{B}", bucket).replace("{KEY_X}", self.keys["X"])
        for label, version in versions.items():
            text = text.replace("{" + label + "}", version)
        return text

    def cleanup(self) -> None:
        for bucket in self.buckets.values():
            try:
                self.root.delete_bucket_policy(Bucket=bucket)
                for upload in self.root.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
                    self.root.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                                     UploadId=upload["UploadId"])
                destroy_bucket(self.root, bucket)
            except ClientError:
                pass


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    factory = ServerFactory(tmp_path_factory.mktemp("policy-table"))
    try:
        t = Table(factory)
        yield t
        t.cleanup()
    finally:
        factory.stop_all(remove_data=True)


# --------------------------------------------------------------------------- running a row


def sse_args(row: Row, table: Table) -> dict:
    args = {}
    if "sse" in row.args:
        args["ServerSideEncryption"] = row.args["sse"]
    if "kms" in row.args:
        args["SSEKMSKeyId"] = table.keys[row.args["kms"]]
    return args


def fresh_key(row: Row) -> str:
    return "written/" + hashlib.sha256(row.id.encode()).hexdigest()[:16]


def signed_call(table: Table, row: Row, bucket: str):
    """Runs the row's operation through boto3 as its caller; raises ClientError when refused."""
    c = table.client(row.who)
    key = row.args.get("key", "k")
    version = table.versions[row.group].get(row.args.get("version", ""), None)
    op = row.op
    if op in ("get", "head"):
        extra = {"VersionId": version} if version else {}
        fn = c.get_object if op == "get" else c.head_object
        return fn(Bucket=bucket, Key=key, **extra)
    if op == "put":
        extra = {"Tagging": row.args["tagging"]} if "tagging" in row.args else {}
        return c.put_object(Bucket=bucket, Key=fresh_key(row), Body=b"written", **sse_args(row, table), **extra)
    if op == "copy":
        return c.copy_object(Bucket=bucket, Key=fresh_key(row),
                             CopySource={"Bucket": bucket, "Key": row.args.get("src", "k")},
                             **sse_args(row, table))
    if op == "mpu":
        upload = c.create_multipart_upload(Bucket=bucket, Key=fresh_key(row), **sse_args(row, table))
        table.root.abort_multipart_upload(Bucket=bucket, Key=fresh_key(row), UploadId=upload["UploadId"])
        return upload
    if op in ("list", "list_v1"):
        params = {"Bucket": bucket}
        for arg, param in (("prefix", "Prefix"), ("delimiter", "Delimiter"), ("max_keys", "MaxKeys")):
            if arg in row.args:
                params[param] = row.args[arg]
        return (c.list_objects_v2 if op == "list" else c.list_objects)(**params)
    if op == "list_versions":
        return c.list_object_versions(Bucket=bucket)
    if op == "delete":
        return c.delete_object(Bucket=bucket, Key=key)
    if op == "delete_objects":
        result = c.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key}]})
        for error in result.get("Errors", []):
            raise ClientError({"Error": {"Code": error["Code"], "Message": error["Message"]},
                               "ResponseMetadata": {"HTTPStatusCode": 403}}, "DeleteObjects")
        return result
    if op == "get_tagging":
        return c.get_object_tagging(Bucket=bucket, Key=key)
    if op == "get_policy":
        return c.get_bucket_policy(Bucket=bucket)
    if op == "put_policy":
        doc = {"public": PUBLIC_DOC, "private": PRIVATE_DOC}.get(row.args["doc"])
        if doc is None:  # "same": the group's own document again
            doc = {"Version": "2012-10-17", "Statement": list(GROUPS[row.group].statements)}
        return c.put_bucket_policy(Bucket=bucket, Policy=table.render(doc, bucket, table.versions[row.group]))
    if op == "policy_status":
        return c.get_bucket_policy_status(Bucket=bucket)
    if op == "location":
        return c.get_bucket_location(Bucket=bucket)
    if op == "head_bucket":
        return c.head_bucket(Bucket=bucket)
    if op == "get_encryption":
        return c.get_bucket_encryption(Bucket=bucket)
    raise AssertionError(f"unknown op {op}")


def presigned_call(table: Table, row: Row, bucket: str) -> int:
    c = table.client(row.who.removesuffix("-presigned"))
    if row.op == "get":
        url = c.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": row.args.get("key", "k")})
        return requests.get(url, timeout=TIMEOUT).status_code
    url = c.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": fresh_key(row)})
    return requests.put(url, data=b"presigned", timeout=TIMEOUT).status_code


def anonymous_call(table: Table, row: Row, bucket: str) -> requests.Response:
    base = table.https if row.who == "anon-tls" else table.srv.endpoint
    verify = table.ca if row.who == "anon-tls" else True
    key = row.args.get("key", "k")
    headers = {}
    if "sse" in row.args:
        headers["x-amz-server-side-encryption"] = row.args["sse"]
    if "kms" in row.args:
        headers["x-amz-server-side-encryption-aws-kms-key-id"] = table.keys[row.args["kms"]]
    method, path, params, data = {
        "get": ("GET", f"/{bucket}/{key}", {}, None),
        "head": ("HEAD", f"/{bucket}/{key}", {}, None),
        "put": ("PUT", f"/{bucket}/{fresh_key(row)}", {}, b"anonymous"),
        "delete": ("DELETE", f"/{bucket}/{key}", {}, None),
        "list": ("GET", f"/{bucket}", {"list-type": "2"}, None),
        "list_v1": ("GET", f"/{bucket}", {}, None),
        "list_versions": ("GET", f"/{bucket}", {"versions": ""}, None),
        "get_tagging": ("GET", f"/{bucket}/{key}", {"tagging": ""}, None),
        "get_policy": ("GET", f"/{bucket}", {"policy": ""}, None),
        "location": ("GET", f"/{bucket}", {"location": ""}, None),
        "delete_objects": ("POST", f"/{bucket}", {"delete": ""},
                           f"<Delete><Object><Key>{key}</Key></Object></Delete>".encode()),
    }[row.op]
    if data is not None and row.op == "delete_objects":
        headers["Content-MD5"] = __import__("base64").b64encode(hashlib.md5(data).digest()).decode()
    return requests.request(method, base + path, params=params, data=data, headers=headers,
                            verify=verify, timeout=TIMEOUT)


def decision_of_status(status: int, body: bytes = b"") -> str:
    if status == 403:
        return "deny"
    assert status < 400 or status == 404, f"neither allowed nor denied: HTTP {status} {body[:300]!r}"
    return "allow"


def run_row(table: Table, row: Row) -> str:
    bucket = table.bucket(row.group)
    if row.who.startswith("anon"):
        resp = anonymous_call(table, row, bucket)
        if resp.status_code == 403 and row.op != "head":
            assert b"<Code>AccessDenied</Code>" in resp.content, resp.content
        if row.op == "delete_objects" and resp.status_code == 200:
            return "deny" if b"<Code>AccessDenied</Code>" in resp.content else "allow"
        return decision_of_status(resp.status_code, resp.content)
    if row.who.endswith("-presigned"):
        return decision_of_status(presigned_call(table, row, bucket))
    try:
        signed_call(table, row, bucket)
        return "allow"
    except ClientError as exc:
        status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
        code = exc.response.get("Error", {}).get("Code", "")
        if status == 403:
            assert code in ("AccessDenied", "403"), exc.response
        return decision_of_status(status, str(exc.response).encode())


def test_table_is_big_enough():
    assert len(ROWS) >= 150, len(ROWS)
    assert len({row.id for row in ROWS}) == len(ROWS), "row ids are unique"
    assert {row.group for row in ROWS} == set(GROUPS), "every group has rows, every row a group"


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_policy_decision(table, row):
    assert run_row(table, row) == row.expect
