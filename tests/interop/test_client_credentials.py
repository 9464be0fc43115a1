"""`coffer` client commands find their endpoint, credentials and CA bundle as the aws CLI does:
flags, then AWS_* variables, then the profile in the shared credentials and config files — so
the file a server writes (DATA_DIR/credentials) works as it is."""

from __future__ import annotations

import subprocess

from support import _clean_env, coffer_bin, free_port, unique_bucket_name


def coffer(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(coffer_bin()), *args], env={**_clean_env(), **env},
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def test_the_servers_credentials_file_is_a_profile(make_server, tmp_path):
    srv = make_server(with_root_env=False)
    credentials = srv.data_dir / "credentials"
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_ENDPOINT_URL": srv.endpoint,
           "HOME": str(tmp_path)}
    bucket = unique_bucket_name("creds")
    source = tmp_path / "hello.txt"
    source.write_text("hello from a profile\n")
    done = coffer(["cp", str(source), f"s3://{bucket}/hello.txt"], env)
    assert done.returncode != 0 and "NoSuchBucket" in done.stderr, done.stderr
    text = credentials.read_text()
    access_key = text.split("aws_access_key_id = ")[1].split()[0]
    secret_key = text.split("aws_secret_access_key = ")[1].split()[0]
    srv.access_key, srv.secret_key = access_key, secret_key
    srv.client().create_bucket(Bucket=bucket)
    done = coffer(["cp", str(source), f"s3://{bucket}/hello.txt"], env)
    assert done.returncode == 0, done.stderr
    done = coffer(["cat", f"s3://{bucket}/hello.txt"], env)
    assert done.stdout == "hello from a profile\n", done.stderr

    # A named profile: its credentials from the credentials file, its endpoint from the
    # config file's `[profile NAME]`.
    named = tmp_path / "credentials"
    named.write_text(f"[ops]\naws_access_key_id = {access_key}\n"
                     f"aws_secret_access_key = {secret_key}\n")
    config = tmp_path / "config"
    config.write_text(f"[profile ops]\nendpoint_url = {srv.endpoint}\nregion = us-east-1\n")
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(named), "AWS_CONFIG_FILE": str(config),
           "AWS_PROFILE": "ops", "HOME": str(tmp_path)}
    done = coffer(["ls", f"s3://{bucket}"], env)
    assert done.returncode == 0 and "hello.txt" in done.stdout, done.stderr

    # Every client command finds them the same way: the admin, KMS and bench commands too,
    # with only the server's credentials file and AWS_ENDPOINT_URL, and with the profile.
    for reader in ({"AWS_SHARED_CREDENTIALS_FILE": str(credentials),
                    "AWS_ENDPOINT_URL": srv.endpoint, "HOME": str(tmp_path)}, env):
        for args in (["user", "list"], ["kms", "list-keys"],
                     ["bench", "--bucket", unique_bucket_name("bench"), "--workload", "put",
                      "--size", "4KiB", "--duration", "1", "--warmup", "0.2"]):
            done = coffer(args, reader)
            assert done.returncode == 0, (args, reader.get("AWS_PROFILE"), done.stderr)

    # Variables beat the profile: a wrong pair in the environment is what gets used.
    done = coffer(["ls", f"s3://{bucket}"],
                  {**env, "AWS_ACCESS_KEY_ID": "WRONG", "AWS_SECRET_ACCESS_KEY": "wrong"})
    assert done.returncode != 0 and "InvalidAccessKeyId" in done.stderr, done.stderr


def test_missing_credentials_say_what_was_tried(tmp_path):
    done = coffer(["ls"], {"HOME": str(tmp_path)})
    assert done.returncode != 0
    assert "AWS_ACCESS_KEY_ID" in done.stderr
    assert f"{tmp_path}/.aws/credentials (no such file)" in done.stderr, done.stderr
    assert "AWS_SHARED_CREDENTIALS_FILE" in done.stderr


def test_ca_bundle_flag_and_profile(make_server, tmp_path):
    port = free_port()
    srv = make_server(extra_args=["--tls-listen", f"127.0.0.1:{port}"])
    ca = srv.data_dir / "tls" / "self-signed.crt"
    assert ca.is_file(), list((srv.data_dir / "tls").iterdir())
    url = f"https://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": srv.access_key, "AWS_SECRET_ACCESS_KEY": srv.secret_key,
           "HOME": str(tmp_path)}
    done = coffer(["ls", "--endpoint-url", url], env)
    assert done.returncode != 0 and "--ca-bundle" in done.stderr, done.stderr
    done = coffer(["ls", "--endpoint-url", url, "--ca-bundle", str(ca)], env)
    assert done.returncode == 0, done.stderr
    config = tmp_path / "config"
    config.write_text(f"[default]\nendpoint_url = {url}\nca_bundle = {ca}\n")
    done = coffer(["ls"], {**env, "AWS_CONFIG_FILE": str(config)})
    assert done.returncode == 0, done.stderr
