"""HTTPS served directly (--certfile/--keyfile) with a self-signed certificate made by openssl: the page
loads in Chromium and its live socket connects over wss; the login cookie is Secure; a key that does
not match its certificate stops start-up with a message naming the flags."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, expect

from helpers import PYTHON, REPO_ROOT, Proc, free_port, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]

BROKER_DB = 3


def make_certificate(folder: Path, name: str = "server") -> tuple[Path, Path]:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    done = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                           str(cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return cert, key


def test_https_with_a_secure_cookie_and_a_live_socket(redis_port: int, tmp_path: Path, browser: Browser) -> None:
    cert, key = make_certificate(tmp_path)
    auth = tmp_path / "auth.toml"
    added = subprocess.run([PYTHON, "run.py", "auth", "add-user", "ann", "--role", "viewer", "--auth-file", str(auth)],
                           cwd=REPO_ROOT, input="correct horse\n", capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    port = free_port()
    proc = Proc("dashboard-tls", [PYTHON, "run.py", "--broker", f"redis://127.0.0.1:{redis_port}/{BROKER_DB}",
                                  "--port", str(port), "--db", str(tmp_path / "d.db"), "--certfile", str(cert),
                                  "--keyfile", str(key), "--auth-file", str(auth)], tmp_path)
    base = f"https://127.0.0.1:{port}"
    try:
        def serving() -> bool:
            if not proc.alive():
                raise AssertionError(proc.log_tail())
            try:
                return requests.get(f"{base}/api/health", verify=False, timeout=2).json() == {"status": "ok"}
            except requests.RequestException:
                return False
        wait_until(serving, 30, message="no HTTPS answer")
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/api/health", timeout=3)  # plain HTTP is not served
        answer = requests.post(f"{base}/login", data={"name": "ann", "password": "correct horse", "next": "/"},
                               headers={"Origin": base}, allow_redirects=False, timeout=5,
                               verify=False)  # self-signed: the test checks what is served, not the chain
        assert answer.status_code == 302 and "Secure" in answer.headers["Set-Cookie"]

        context = browser.new_context(ignore_https_errors=True)
        page = context.new_page()
        try:
            page.goto(f"{base}/login")
            page.fill("input[name=name]", "ann")
            page.fill("input[name=password]", "correct horse")
            page.click("button[type=submit]")
            expect(page.locator("[data-connection]")).to_have_attribute("data-state", "connected", timeout=15_000)
            assert page.url.startswith(base)
        finally:
            context.close()
    finally:
        proc.stop()


def test_a_key_that_does_not_match_stops_start_up(tmp_path: Path) -> None:
    cert, _ = make_certificate(tmp_path, "one")
    _, other_key = make_certificate(tmp_path, "two")
    done = subprocess.run([PYTHON, "run.py", "--certfile", str(cert), "--keyfile", str(other_key)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--certfile" in done.stderr and "cannot be used" in done.stderr
    only = subprocess.run([PYTHON, "run.py", "--certfile", str(cert)], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60)
    assert only.returncode == 2 and "go together" in only.stderr
