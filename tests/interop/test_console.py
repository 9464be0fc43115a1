"""The web console (`coffer server --console-listen`), in a real browser: headless Chromium
(Debian's `chromium` and `chromium-driver`) driven by selenium signs in with the root key pair,
creates a KMS key and a bucket whose default is SSE-KMS under it, uploads a file through the
page, sees the object's key id, disables the key and sees the download refused with the KMS
error, re-enables it and downloads the same bytes. Everything the page does goes through the
signed S3, KMS and admin APIs; boto3 checks the results independently.

Screenshots go to $COFFER_ARTIFACTS/console (else the test's tmp_path); their paths are
printed. Without chromium the browser test is skipped, unless COFFER_REQUIRE_BROWSER is set
(scripts/test sets it), when it fails.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from pathlib import Path

import pytest
import requests

from support import (admin_call, free_port, kms_client, make_s3_client, sign_request,
                     unique_bucket_name)

WAIT_S = 30


def console_server(make_server):
    port = free_port()
    srv = make_server(extra_args=["--console-listen", f"127.0.0.1:{port}"])
    return srv, f"http://127.0.0.1:{port}"


def test_console_listener_serves_the_page_and_the_signed_api(make_server):
    srv, origin = console_server(make_server)
    page = requests.get(f"{origin}/console/", timeout=10)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert '<script type="module" src="js/app.js">' in page.text
    script = requests.get(f"{origin}/console/js/sigv4.js", timeout=10)
    assert script.status_code == 200 and "AWS4-HMAC-SHA256" in script.text
    assert requests.get(f"{origin}/console/no-such.js", timeout=10).status_code == 404
    root = requests.get(f"{origin}/", allow_redirects=False, timeout=10)
    assert (root.status_code, root.headers["location"]) == (302, "/console/")
    # The same listener is the API for signed requests (the page's origin), with the same
    # authentication: unsigned API calls are refused, signed ones served.
    assert requests.get(f"{origin}/{unique_bucket_name('anon')}", timeout=10).status_code == 403
    s3 = make_s3_client(origin, srv.access_key, srv.secret_key)
    # A bucket named like the asset prefix stays reachable with signed requests (this server
    # is the test's own, so the name is free).
    s3.create_bucket(Bucket="console")
    s3.put_object(Bucket="console", Key="js/app.js", Body=b"an object, not the asset")
    assert s3.get_object(Bucket="console", Key="js/app.js")["Body"].read() == b"an object, not the asset"
    assert make_s3_client(srv.endpoint, srv.access_key, srv.secret_key).get_object(
        Bucket="console", Key="js/app.js")["Body"].read() == b"an object, not the asset"
    assert "import" in requests.get(f"{origin}/console/js/app.js", timeout=10).text, "unsigned: the asset"
    assert requests.get(f"{origin}/health/ready", timeout=10).json()["status"] == "ready"


def test_admin_protection_names_format_and_key_versions(make_server):
    """The admin endpoint the console's Protection panel reads: the envelope's format version,
    algorithm, wrap kind, key id and version, without unwrapping (so also while the key is
    disabled); root only."""
    srv = make_server()
    s3 = make_s3_client(srv.endpoint, srv.access_key, srv.secret_key)
    kms = kms_client(srv)
    key_id = kms.create_key(Description="protection")["KeyMetadata"]["KeyId"]
    bucket = unique_bucket_name("protection")
    s3.create_bucket(Bucket=bucket)
    name = "dir/a b+c.txt"
    s3.put_object(Bucket=bucket, Key=name, Body=b"v1", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    s3.put_object(Bucket=bucket, Key="default", Body=b"sealed by default")
    path = f"protection/{bucket}/dir/a%20b%2Bc.txt"

    first = admin_call(srv, "GET", path)
    assert (first["bucket"], first["key"], first["size"]) == (bucket, name, 2)
    envelope = first["envelope"]
    assert envelope["format_version"] == 2 and envelope["algorithm"] == "AES-256-GCM"
    assert (envelope["wrap_kind"], envelope["key_id"], envelope["key_version"], envelope["bucket_key"]) == (
        "kms", key_id, 1, False)
    service = admin_call(srv, "GET", f"protection/{bucket}/default")["envelope"]
    assert service["wrap_kind"] == "service-key" and service["key_id"] != key_id

    # A rotation seals new objects under the key's next version; the old one keeps its own.
    kms.rotate_key_on_demand(KeyId=key_id)
    s3.put_object(Bucket=bucket, Key="after-rotation", Body=b"v2", ServerSideEncryption="aws:kms",
                  SSEKMSKeyId=key_id)
    assert admin_call(srv, "GET", f"protection/{bucket}/after-rotation")["envelope"]["key_version"] == 2
    # Read from the envelope alone: it answers while the key is disabled.
    kms.disable_key(KeyId=key_id)
    assert admin_call(srv, "GET", path)["envelope"]["key_version"] == 1

    def status(access_key, secret_key, target):
        url = f"{srv.endpoint}/_coffer/admin/{target}"
        signed = sign_request("GET", url, access_key, secret_key)
        return requests.get(url, headers=dict(signed.headers), timeout=10)

    missing = status(srv.access_key, srv.secret_key, f"protection/{bucket}/nothing-here")
    assert missing.status_code == 404 and "<Code>NoSuchKey</Code>" in missing.text
    assert status(srv.access_key, srv.secret_key, "protection/only-a-bucket").status_code == 400
    user = admin_call(srv, "POST", "users", {"name": "viewer"})
    refused = status(user["access_key"], user["secret_key"], path)
    assert refused.status_code == 403 and "<Code>AccessDenied</Code>" in refused.text


def browser_tools():
    """chromium, chromedriver and selenium, or a skip (a failure under COFFER_REQUIRE_BROWSER)."""
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        selenium_present = False
    else:
        selenium_present = True
    missing = [name for name, present in
               (("chromium", chromium), ("chromedriver", driver), ("selenium", selenium_present))
               if not present]
    if missing:
        message = f"the console's browser test needs {', '.join(missing)}"
        if os.environ.get("COFFER_REQUIRE_BROWSER"):
            pytest.fail(message + " (COFFER_REQUIRE_BROWSER is set)")
        pytest.skip(message)
    return chromium, driver


@pytest.fixture
def artifacts(tmp_path) -> Path:
    base = Path(os.environ["COFFER_ARTIFACTS"]) if os.environ.get("COFFER_ARTIFACTS") else tmp_path
    directory = base / "console"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def browser(tmp_path, artifacts):
    chromium, chromedriver = browser_tools()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False,
    })
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "COFFER_"))}
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver, env=env))
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        try:
            for entry in driver.get_log("browser"):
                print("browser console:", entry.get("level"), entry.get("message"))
        finally:
            driver.quit()


class Page:
    """The console page in the browser, with the few moves the test makes."""

    def __init__(self, driver, origin: str, artifacts: Path, run: str):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select, WebDriverWait

        # Screenshots are named <run>-<n>-<what>.png, so two tests never overwrite each other's.
        self.driver, self.origin, self.artifacts, self.run = driver, origin, artifacts, run
        self.By, self.Select = By, Select
        self.wait = WebDriverWait(driver, WAIT_S)
        self.shots = 0

    def find(self, css: str):
        return self.driver.find_element(self.By.CSS_SELECTOR, css)

    def until_text(self, css: str, needle: str) -> str:
        """Waits for the element at `css` to contain `needle`; its text."""
        from selenium.common.exceptions import StaleElementReferenceException, TimeoutException

        def present(driver):
            try:
                found = driver.find_elements(self.By.CSS_SELECTOR, css)
                return found and needle in found[0].text and found[0].text
            except StaleElementReferenceException:  # the page re-rendered meanwhile
                return False
        try:
            return self.wait.until(present)
        except TimeoutException:
            self.screenshot("timed-out")
            errors = self.driver.find_elements(self.By.CSS_SELECTOR, "#messages")
            raise AssertionError(f"{css} never showed {needle!r}; messages: "
                                 f"{errors[0].text if errors else '-'}") from None

    def notice(self, needle: str) -> str:
        return self.until_text("#notice-message", needle)

    def go(self, fragment: str, ready_css: str):
        self.driver.execute_script("location.hash = arguments[0]", fragment)
        self.wait.until(lambda d: d.find_elements(self.By.CSS_SELECTOR, ready_css))

    def screenshot(self, name: str) -> Path:
        self.shots += 1
        path = self.artifacts / f"{self.run}-{self.shots:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        print(f"screenshot: {path}")
        return path


def test_console_sse_kms_bucket_upload_disable_enable_download(make_server, browser, artifacts, tmp_path):
    srv, origin = console_server(make_server)
    s3 = make_s3_client(srv.endpoint, srv.access_key, srv.secret_key)
    kms = kms_client(srv)
    page = Page(browser, origin, artifacts, "root")

    # Sign in with the root key pair.
    browser.get(f"{origin}/console/")
    page.find("#access-key-id").send_keys(srv.access_key)
    page.find("#secret-access-key").send_keys(srv.secret_key)
    page.find("#sign-in-button").click()
    page.until_text("#who", "(root)")
    page.until_text("#buckets", "")
    page.screenshot("signed-in")

    # A KMS key with an alias, created through the page (KMS API: CreateKey, CreateAlias).
    alias = f"alias/console-{uuid.uuid4().hex[:8]}"
    page.go("#/keys", "#create-key")
    page.find("#new-key-description").send_keys("console test key")
    page.find("#new-key-alias").send_keys(alias)
    page.find("#create-key-button").click()
    key_id = page.notice("Created key").split("Created key ")[1].rstrip(".")
    page.until_text("#keys", alias)
    assert {a["AliasName"]: a["TargetKeyId"] for a in kms.list_aliases()["Aliases"]}[alias] == key_id
    page.screenshot("key-created")

    # A bucket whose default is SSE-KMS under that key.
    bucket = unique_bucket_name("console")
    page.go("#/buckets", "#create-bucket")
    page.find("#new-bucket-name").send_keys(bucket)
    page.Select(page.find("#encryption-algorithm")).select_by_value("aws:kms")
    page.Select(page.find("#encryption-key")).select_by_value(key_id)
    page.find("#create-bucket-button").click()
    page.notice(f"Created bucket {bucket}")
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id}
    page.screenshot("bucket-created")

    # Upload two files through the page: a small one (one PUT) and one past the multipart
    # threshold (16 MiB: three 8 MiB parts). The protection shown names the key.
    payload = os.urandom(300 * 1024) + b"console upload"
    upload = tmp_path / "console-upload.bin"
    upload.write_bytes(payload)
    large_payload = os.urandom(17 * 1024 * 1024)
    large = tmp_path / "console-large.bin"
    large.write_bytes(large_payload)
    page.go(f"#/buckets/{bucket}", "#upload-file")
    page.until_text("#bucket-encryption", "aws:kms")
    page.find("#upload-file").send_keys(f"{upload}\n{large}")
    page.find("#upload-button").click()
    page.notice("Uploaded console-upload.bin, console-large.bin")
    page.until_text("#upload-progress", "console-large.bin: 100 %")
    shown_key = page.until_text("#object-key-id", key_id)
    assert page.find("#object-sse").text == "aws:kms"
    assert page.find("#object-format-version").text.isdigit(), "the envelope's format version"
    assert page.find("#object-key-version").text.isdigit(), "the key version"
    page.screenshot("uploaded-protection")
    head = s3.head_object(Bucket=bucket, Key=upload.name)
    assert head["ServerSideEncryption"] == "aws:kms" and key_id in head["SSEKMSKeyId"] and key_id in shown_key
    assert s3.get_object(Bucket=bucket, Key=upload.name)["Body"].read() == payload
    large_head = s3.head_object(Bucket=bucket, Key=large.name)
    assert large_head["ETag"].endswith('-3"'), "a multipart upload of three parts"
    assert key_id in large_head["SSEKMSKeyId"]
    assert s3.get_object(Bucket=bucket, Key=large.name)["Body"].read() == large_payload

    # Disable the key through the page: the download is refused with the KMS error.
    page.go(f"#/keys/{key_id}", "#disable-key")
    page.find("#disable-key").click()
    page.until_text("#key-state", "Disabled")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    page.screenshot("key-disabled")
    page.go(f"#/buckets/{bucket}", "button.download")
    page.find(f'button.download[data-key="{upload.name}"]').click()
    refused = page.until_text("#error-message", "KMS.DisabledException")
    assert key_id in refused or "disabled" in refused.lower(), refused
    page.screenshot("download-refused")
    time.sleep(1)
    assert not list(browser.downloads.iterdir()), "nothing was downloaded while the key was disabled"

    # Enable it again: the download succeeds and has the uploaded bytes.
    page.go(f"#/keys/{key_id}", "#enable-key")
    page.find("#enable-key").click()
    page.until_text("#key-state", "Enabled")
    page.go(f"#/buckets/{bucket}", "button.download")
    page.find(f'button.download[data-key="{upload.name}"]').click()
    page.notice(f"Downloaded {upload.name}")
    downloaded = browser.downloads / upload.name
    deadline = time.monotonic() + WAIT_S
    while not (downloaded.exists() and downloaded.stat().st_size == len(payload)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert downloaded.exists(), list(browser.downloads.iterdir())
    assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == hashlib.sha256(payload).hexdigest()
    page.screenshot("downloaded")

    # Signing out forgets the secret: nothing of it was stored in the browser.
    page.find("#sign-out").click()
    page.wait.until(lambda d: d.find_element(page.By.ID, "sign-in").is_displayed())
    stored = browser.execute_script(
        "return JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage), document.cookie])")
    assert srv.secret_key not in stored and srv.access_key not in stored, stored
    assert page.find("#secret-access-key").get_attribute("value") == ""
    page.screenshot("signed-out")


def test_console_user_has_only_its_own_rights(make_server, browser, artifacts):
    """The page has no rights of its own: a user who is not root signs in, sees no Users page,
    and a key change it tries through the page is refused by the KMS API, as for any client."""
    srv, origin = console_server(make_server)
    kms = kms_client(srv)
    key_id = kms.create_key(Description="root's key")["KeyMetadata"]["KeyId"]
    user = admin_call(srv, "POST", "users", {"name": "console-user"})
    page = Page(browser, origin, artifacts, "user")

    browser.get(f"{origin}/console/")
    page.find("#access-key-id").send_keys(user["access_key"])
    page.find("#secret-access-key").send_keys(user["secret_key"])
    page.find("#sign-in-button").click()
    who = page.until_text("#who", user["access_key"])
    assert "(root)" not in who
    assert not page.find("#nav-users").is_displayed()
    page.go("#/users", "#page h1")
    page.until_text("#page", "Only root may manage users.")

    # Root's key: its policy names the account alone, so the user may not even describe it
    # (docs/kms.md "Key policies"), and the key list leaves it out.
    page.go(f"#/keys/{key_id}", "#page")
    page.until_text("#error-message", "KMS.AccessDeniedException")
    page.screenshot("user-refused")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    page.go("#/keys", "#keys")
    page.until_text("#page", "Only root may create or change keys.")
    assert key_id not in page.find("#keys").text

    # A wrong secret is refused at sign-in, with the server's error.
    page.find("#sign-out").click()
    page.find("#access-key-id").send_keys(user["access_key"])
    page.find("#secret-access-key").send_keys("not-the-secret")
    page.find("#sign-in-button").click()
    page.until_text("#error-message", "SignatureDoesNotMatch")
    assert page.find("#sign-in").is_displayed()


def test_console_audit_log_and_key_usage(make_server, browser, artifacts):
    """The key page says which objects the key protects (per key version), the deletion
    confirmation repeats the count, and the Audit page filters the KMS audit log by key,
    operation and outcome: a Decrypt refused while the key was disabled is found."""
    srv, origin = console_server(make_server)
    s3 = make_s3_client(srv.endpoint, srv.access_key, srv.secret_key)
    kms = kms_client(srv)
    key_id = kms.create_key(Description="audited from the console")["KeyMetadata"]["KeyId"]
    bucket = unique_bucket_name("console-usage")
    s3.create_bucket(Bucket=bucket)
    for name in ("one", "two"):
        s3.put_object(Bucket=bucket, Key=name, Body=name.encode(), ServerSideEncryption="aws:kms",
                      SSEKMSKeyId=key_id)
    kms.rotate_key_on_demand(KeyId=key_id)
    s3.put_object(Bucket=bucket, Key="three", Body=b"3", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"console audit")["CiphertextBlob"]
    kms.disable_key(KeyId=key_id)
    with pytest.raises(Exception):
        kms.decrypt(CiphertextBlob=blob)
    kms.enable_key(KeyId=key_id)
    page = Page(browser, origin, artifacts, "audit")

    browser.get(f"{origin}/console/")
    page.find("#access-key-id").send_keys(srv.access_key)
    page.find("#secret-access-key").send_keys(srv.secret_key)
    page.find("#sign-in-button").click()
    page.until_text("#who", "(root)")

    # The key page: "3 object versions in 1 bucket (v1: 2, v2: 1)".
    page.go(f"#/keys/{key_id}", "#key-usage")
    usage = page.until_text("#key-usage", "object versions")
    assert usage == "3 object versions in 1 bucket (v1: 2, v2: 1)", usage
    page.screenshot("key-usage")

    # Scheduling deletion asks first, with the count; dismissing it schedules nothing.
    from selenium.webdriver.support import expected_conditions
    page.find("#schedule-deletion button[type=submit]").click()
    alert = page.wait.until(expected_conditions.alert_is_present())
    assert "still protects 3 object versions in 1 bucket" in alert.text, alert.text
    alert.dismiss()
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"

    # The Audit page, reached from the key page, filtered to this key's failures.
    page.find("#key-audit").click()
    page.until_text("#audit", "EnableKey")
    assert page.find("#audit-key").get_attribute("value") == key_id
    page.Select(page.find("#audit-outcome")).select_by_value("error")
    page.find("#audit-apply").click()
    page.wait.until(lambda d: "outcome=error" in d.current_url)
    refused = page.until_text("#audit", "DisabledException")
    rows = browser.find_elements(page.By.CSS_SELECTOR, "#audit tbody tr")
    assert len(rows) == 1 and "Decrypt" in refused and key_id in refused, refused
    page.until_text("#audit-summary", "1 entry")
    page.screenshot("audit-refused-decrypt")

    # An operation filter, and a time range that excludes everything.
    page.go(f"#/audit?key={key_id}&operation=DisableKey", "#audit")
    page.until_text("#audit", "DisableKey")
    assert len(browser.find_elements(page.By.CSS_SELECTOR, "#audit tbody tr")) == 1
    page.go(f"#/audit?key={key_id}&until=2000-01-01T00:00:00Z", "#audit-summary")
    page.until_text("#audit-summary", "0 entries")
    page.until_text("#audit", "None.")
    page.screenshot("audit-empty-range")
