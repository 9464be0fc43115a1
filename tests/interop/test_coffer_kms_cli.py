"""`coffer kms …`: key administration through the server's KMS API."""

import json
import os
import subprocess

from support import coffer_bin


def coffer_kms(server, *args, ok=True):
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=server.access_key,
        AWS_SECRET_ACCESS_KEY=server.secret_key,
        AWS_ENDPOINT_URL=server.endpoint,
    )
    out = subprocess.run([str(coffer_bin()), "kms", *args], env=env,
                         capture_output=True, text=True, timeout=60)
    if ok:
        assert out.returncode == 0, f"coffer kms {args}: {out.stderr}"
        return json.loads(out.stdout)
    assert out.returncode != 0, f"coffer kms {args} should fail: {out.stdout}"
    return out.stderr


def test_key_lifecycle_through_coffer_kms(server):
    key = coffer_kms(server, "create-key", "--description", "cli test")["KeyMetadata"]
    key_id = key["KeyId"]
    assert key["KeyState"] == "Enabled"
    alias = f"alias/cli-{key_id[:8]}"
    coffer_kms(server, "create-alias", alias, key_id)
    assert coffer_kms(server, "describe-key", alias)["KeyMetadata"]["KeyId"] == key_id
    assert key_id in [k["KeyId"] for k in coffer_kms(server, "list-keys")["Keys"]]
    assert alias in [a["AliasName"] for a in coffer_kms(server, "list-aliases")["Aliases"]]

    coffer_kms(server, "disable-key", alias)
    assert coffer_kms(server, "describe-key", key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    coffer_kms(server, "enable-key", alias)

    coffer_kms(server, "rotate-key", key_id)
    rotations = coffer_kms(server, "list-key-rotations", key_id)["Rotations"]
    assert len(rotations) == 1 and rotations[0]["RotationType"] == "ON_DEMAND"

    pending = coffer_kms(server, "schedule-key-deletion", key_id, "--days", "7")
    assert pending["KeyState"] == "PendingDeletion"
    coffer_kms(server, "cancel-key-deletion", key_id)
    assert coffer_kms(server, "describe-key", key_id)["KeyMetadata"]["KeyState"] == "Disabled"

    error = coffer_kms(server, "describe-key", "alias/does-not-exist", ok=False)
    assert "NotFoundException" in error
    error = coffer_kms(server, "schedule-key-deletion", key_id, "--days", "3", ok=False)
    assert "ValidationException" in error
