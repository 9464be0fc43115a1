"""Generates the fixed vectors of coffer-cse's tests with the real SDKs.

Run from the repository root with a Python that has oss2 2.19.1,
alibabacloud-oss-v2 1.4.1 and amazon-s3-encryption-client-python 4.0.0:

    python crates/coffer-cse/tests/vectors/generate.py > crates/coffer-cse/tests/data/vectors.json

Randomness (content keys, IVs, message ids) is pinned by patching the SDKs'
random sources, so the content bytes are reproducible; RSA encryption stays
randomised (the tests only decrypt those values). No network is used: the
S3EC pipeline gets a materials manager that returns a fixed data key and a
stand-in KMS blob (the tests check everything but the KMS call).
"""

import base64
import hashlib
import json
import os
import sys

import oss2
import oss2.utils
import oss2.crypto
from alibabacloud_oss_v2.crypto.master_rsa_cipher import MasterRsaCipher
from s3_encryption import pipelines
from s3_encryption.materials.encrypted_data_key import EncryptedDataKey
from s3_encryption.materials.materials import AlgorithmSuite

DATA = os.path.join(os.path.dirname(__file__), "..", "data")
PRIVATE_PEM = open(os.path.join(DATA, "rsa2048.pkcs1.pem")).read()
PUBLIC_PEM = open(os.path.join(DATA, "rsa2048.spki.pem")).read()

CEK = bytes(range(32))
PLAINTEXT = bytes((i * 7 + 3) % 256 for i in range(1000))


def oss2_object(provider, iv):
    """An oss2 PUT: metadata as to_object_meta writes it, and the ciphertext."""
    oss2.utils.random_key = lambda n: CEK
    provider.cipher.get_key = lambda: CEK
    oss2.utils.random_iv = lambda: iv
    provider.get_iv = lambda: iv
    material = provider.create_content_material()
    headers = material.to_object_meta(
        {"content-length": str(len(PLAINTEXT)), "content-md5": base64.b64encode(hashlib.md5(PLAINTEXT).digest()).decode()}
    )
    ciphertext = material.cipher.encrypt(PLAINTEXT)
    meta = {k.lower().replace("x-oss-meta-", ""): v for k, v in headers.items()}
    return {"metadata": meta, "ciphertext": ciphertext.hex()}


def oss_vectors():
    iv_pkcs1 = bytes.fromhex("6569b01e536d8cab000000007dad69ad")
    pkcs1 = oss2.crypto.RsaProvider(
        key_pair={"public_key": PUBLIC_PEM, "private_key": PRIVATE_PEM}, mat_desc={"desc": "demo-key-1"}
    )
    out = {"oss2_rsa_pkcs1": oss2_object(pkcs1, iv_pkcs1)}

    keys_dir = "/tmp/coffer-cse-vectors-rsa"
    os.makedirs(keys_dir, exist_ok=True)
    open(os.path.join(keys_dir, "k.private_key.pem"), "w").write(PRIVATE_PEM)
    open(os.path.join(keys_dir, "k.public_key.pem"), "w").write(PUBLIC_PEM)
    # An IV whose low half is about to carry: exercises the 128-bit counter.
    iv_oaep = bytes.fromhex("0102030405060708fffffffffffffff0")
    oaep = oss2.crypto.LocalRsaProvider(dir=keys_dir, key="k")
    out["oss2_rsa_oaep"] = oss2_object(oaep, iv_oaep)

    # alibabacloud-oss-v2's MasterRsaCipher wraps CEK and IV separately.
    v2 = MasterRsaCipher(mat_desc={"desc": "v2"}, public_key=PUBLIC_PEM, private_key=PRIVATE_PEM)
    out["v2_master_rsa_cipher"] = {
        "wrapped_key": base64.b64encode(v2.encrypt(CEK)).decode(),
        "wrapped_iv": base64.b64encode(v2.encrypt(iv_pkcs1)).decode(),
        "matdesc": v2.get_mat_desc(),
    }

    # Multipart: oss2 encrypts part n with the counter advanced by
    # (n-1)*part_size/16 (crypto_bucket's offset handling).
    part_size = 256
    parts = []
    for n in range(4):
        c = oss2.utils.AESCTRCipher()
        c.initialize(CEK, iv_oaep, c.calc_offset(n * part_size))
        parts.append(c.encrypt(PLAINTEXT[n * part_size:(n + 1) * part_size]).hex())
    out["oss2_multipart_parts"] = {"part_size": part_size, "iv": iv_oaep.hex(), "parts": parts}
    return out


class FixedMaterials:
    """Stands in for the KMS keyring: a known data key and blob."""

    def __init__(self, context_value):
        self.context_value = context_value

    def get_encryption_materials(self, request):
        request.encryption_context["aws:x-amz-cek-alg"] = self.context_value
        request.plaintext_data_key = CEK
        request.encrypted_data_key = EncryptedDataKey(
            key_provider_id=b"S3Keyring", key_provider_info="kms+context", encrypted_data_key=b"stand-in KMS blob"
        )
        return request


def s3ec_vectors():
    out = {}
    real_urandom = os.urandom
    message_id = bytes(range(100, 128))
    iv12 = bytes(range(40, 52))
    try:
        pipelines.os.urandom = lambda n: message_id if n == 28 else iv12
        suite = AlgorithmSuite.ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY
        v3 = pipelines.PutEncryptedObjectPipeline(cmm=FixedMaterials("115"), encryption_algorithm=suite)
        ciphertext, metadata = v3.encrypt(PLAINTEXT)
        out["s3ec_v3_kms"] = {"metadata": metadata, "ciphertext": ciphertext.hex()}
        suite = AlgorithmSuite.ALG_AES_256_GCM_IV12_TAG16_NO_KDF
        v2 = pipelines.PutEncryptedObjectPipeline(cmm=FixedMaterials("AES/GCM/NoPadding"), encryption_algorithm=suite)
        ciphertext, metadata = v2.encrypt(PLAINTEXT)
        out["s3ec_v2_kms"] = {"metadata": metadata, "ciphertext": ciphertext.hex()}
    finally:
        pipelines.os.urandom = real_urandom
    return out


vectors = {"cek": CEK.hex(), "plaintext": PLAINTEXT.hex()}
vectors.update(oss_vectors())
vectors.update(s3ec_vectors())
json.dump(vectors, sys.stdout, indent=1, sort_keys=True)
print()
