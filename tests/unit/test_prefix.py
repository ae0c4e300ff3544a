"""--url-prefix: the prefix checked, every route, redirect and cookie under it, and nothing outside it."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dashboard import create_app
from dashboard.auth import AuthFile
from dashboard.prefix import PrefixError, normalize_prefix
from dashboard.settings import Settings, SettingsError, load_settings


@pytest.mark.parametrize(("raw", "expected"), [("/celery", "/celery"), ("/celery/", "/celery"), ("celery", "/celery"),
                                               ("/ops/celery", "/ops/celery"), ("/", ""), ("", "")])
def test_prefixes_are_normalized(raw: str, expected: str) -> None:
    assert normalize_prefix(raw) == expected


@pytest.mark.parametrize("raw", ["/a b", "/a?x", "/a#x", "/a//b", "/../x", "/a%2Fb", "/a\\b"])
def test_a_prefix_that_is_not_a_plain_path_stops_start_up(raw: str) -> None:
    with pytest.raises(PrefixError):
        normalize_prefix(raw)
    with pytest.raises(SettingsError, match="--url-prefix"):
        load_settings(["--url-prefix", raw])


def test_everything_is_served_under_the_prefix_and_nothing_outside(tmp_path: Path) -> None:
    app = create_app(Settings(db=str(tmp_path / "d.db"), async_mode="threading", url_prefix="/celery"))
    client = app.test_client()
    assert client.get("/celery/api/health").status_code == 200
    page = client.get("/celery/")
    assert page.status_code == 200 and b'href="/celery/tasks"' in page.data
    bundle = re.search(rb'src="(/celery/static/v/[0-9a-f]{12}/js/bundle/main.js)"', page.data).group(1).decode()
    assert b"js/connect.js" in client.get(bundle).data  # served under the prefix, from memory
    assert b'<meta name="dashboard-base" content="/celery">' in page.data
    assert client.get("/celery").status_code == 200  # without the trailing slash too
    css = client.get("/celery/static/css/app.css")
    assert css.status_code == 200
    css.close()
    root = client.get("/")
    assert root.status_code == 302 and root.headers["Location"] == "/celery/"
    outside = client.get("/api/health")
    assert outside.status_code == 404 and b"/celery/" in outside.data
    assert client.get("/celeryx/api/health").status_code == 404


def test_a_proxy_that_strips_the_prefix_says_so_in_x_forwarded_prefix(tmp_path: Path) -> None:
    app = create_app(Settings(db=str(tmp_path / "d.db"), async_mode="threading", url_prefix="/celery",
                              behind_proxy=True))
    client = app.test_client()
    page = client.get("/tasks", headers={"X-Forwarded-Prefix": "/celery"})
    assert page.status_code == 200 and b'href="/celery/workers"' in page.data


def test_logins_redirect_and_set_their_cookie_under_the_prefix(tmp_path: Path) -> None:
    path = str(tmp_path / "auth.toml")
    auth = AuthFile.create_or_open(path)
    auth.add_user("ann", "admin", "correct horse")
    auth.write()
    app = create_app(Settings(db=str(tmp_path / "d.db"), async_mode="threading", url_prefix="/celery",
                              auth_file=path))
    client = app.test_client()
    to_login = client.get("/celery/tasks?state=FAILURE")
    assert to_login.status_code == 302 and to_login.headers["Location"] == "/celery/login?next=/tasks%3Fstate%3DFAILURE"
    form = client.get("/celery/login?next=/tasks")
    assert b'action="/celery/login"' in form.data
    answer = client.post("/celery/login", data={"name": "ann", "password": "correct horse", "next": "/tasks"},
                         headers={"Origin": "http://localhost"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/celery/tasks"
    assert "Path=/celery" in answer.headers["Set-Cookie"]
    page = client.get("/celery/tasks").get_data(as_text=True)
    csrf = json.loads(re.search(r'id="bootstrap">(.*?)</script>', page).group(1))["csrf"]  # type: ignore[union-attr]
    out = client.post("/celery/logout", headers={"Origin": "http://localhost", "X-CSRF-Token": csrf})
    assert out.status_code == 302 and out.headers["Location"] == "/celery/login"
