"""The dashboard under a path prefix behind a real nginx (deploy/nginx.conf, as the README gives it):
pages, static files, the API and the live socket (WebSocket through the proxy) all under /celery/, a
live task reaching the page, and its link staying under the prefix. Debian's nginx is installed by ./dashboard.sh test when missing."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import requests
from celery.events.dispatcher import EventDispatcher
from playwright.sync_api import Page, expect

from helpers import REPO_ROOT, Proc, free_port, producer_app, start_dashboard, wait_broker_connected, wait_until

pytestmark = pytest.mark.browser

BROKER_DB = 3
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def start_nginx(folder: Path, port: int, upstream: int) -> Proc:
    """nginx with deploy/nginx.conf's map and server blocks, on ``port``, in front of ``upstream``."""
    site = (REPO_ROOT / "deploy" / "nginx.conf").read_text()
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};").replace("127.0.0.1:5555", f"127.0.0.1:{upstream}")
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    config = folder / "nginx-test.conf"
    config.write_text(f"""
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log {folder}/nginx-access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    {site}
}}
""")
    proc = Proc("nginx", [NGINX, "-c", str(config), "-p", str(folder)], folder)

    def serving() -> bool:
        if not proc.alive():
            raise AssertionError(f"nginx exited:\n{proc.log_tail()}\n{(folder / 'nginx-error.log').read_text()}")
        try:
            return requests.get(f"http://127.0.0.1:{port}/celery/api/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False
    wait_until(serving, 15, message="nginx does not pass /celery/ to the dashboard")
    return proc


def test_the_dashboard_under_a_prefix_through_nginx(redis_port: int, tmp_path: Path, page: Page) -> None:
    if not Path(NGINX).exists():
        pytest.fail(f"{NGINX} is missing: ./dashboard.sh test installs Debian's nginx when run as root")
    broker = f"redis://127.0.0.1:{redis_port}/{BROKER_DB}"
    dashboard = start_dashboard(broker, tmp_path, extra_args=("--url-prefix", "/celery", "--behind-proxy"))
    nginx = None
    app = producer_app(broker)
    try:
        wait_broker_connected(dashboard)
        direct = requests.get(f"{dashboard.root}/", allow_redirects=False, timeout=5)
        assert direct.status_code == 302 and direct.headers["Location"] == "/celery/"
        outside = requests.get(f"{dashboard.root}/api/health", timeout=5)  # outside the prefix
        assert outside.status_code == 404 and "/celery/" in outside.text
        port = free_port()
        nginx = start_nginx(tmp_path / "nginx", port, dashboard.port)
        proxy = f"http://127.0.0.1:{port}"

        page.goto(f"{proxy}/celery")  # without the trailing slash too
        expect(page).to_have_url(f"{proxy}/celery/")
        expect(page.locator("[data-connection]")).to_have_attribute("data-state", "connected", timeout=15_000)
        assert page.evaluate("getComputedStyle(document.body).getPropertyValue('--gap').trim()") != ""  # app.css
        expect(page.locator('nav a[href="/celery/tasks"]')).to_be_visible()

        with app.connection_for_write() as connection:
            EventDispatcher(connection, hostname="proxied@test", app=app).send(
                "task-received", uuid="proxied-task-1", name="reports.build", args="()", kwargs="{}",
                timestamp=time.time())
        row = page.locator('[data-panel="tasks"] tr[data-uuid="proxied-task-1"]')
        expect(row).to_be_visible(timeout=10_000)  # pushed live over the socket through nginx
        row.locator("a").first.click()
        expect(page).to_have_url(f"{proxy}/celery/tasks/proxied-task-1")
        expect(page.locator('[data-view="task"] [data-field="name"]')).to_have_text("reports.build")

    finally:
        app.close()
        if nginx is not None:
            nginx.stop()
        dashboard.stop()
