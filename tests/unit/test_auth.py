"""Users, tokens and roles from --auth-file; login, sessions, CSRF and the rate limit, in-process."""
from __future__ import annotations

import base64
import io
import json
import os
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from dashboard import create_app
from dashboard.access import LoginLimiter
from dashboard.auth import AuthFile, AuthFileError, check_password, hash_password
from dashboard.auth_cli import main as auth_cli
from dashboard.settings import Settings

HOST = {"Host": "127.0.0.1"}


class Stdin(io.StringIO):
    def isatty(self) -> bool:
        return False


def cli(*argv: str, stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = auth_cli(list(argv), stdin=Stdin(stdin), stdout=out)
    return code, out.getvalue()


@pytest.fixture
def auth_path(tmp_path: Path) -> str:
    path = str(tmp_path / "auth.toml")
    assert cli("add-user", "alice", "--role", "admin", "--auth-file", path, stdin="correct horse\n")[0] == 0
    assert cli("add-user", "victor", "--role", "viewer", "--auth-file", path, stdin="viewer pass\n")[0] == 0
    return path


@pytest.fixture
def secured(auth_path: str, tmp_path: Path) -> FlaskClient:
    app = create_app(Settings(db=str(tmp_path / "d.db"), async_mode="threading", auth_file=auth_path))
    return app.test_client()


def login(client: FlaskClient, name: str, password: str) -> str:
    """Log in; return the page's CSRF token."""
    answer = client.post("/login", data={"name": name, "password": password, "next": "/tasks"}, headers=HOST)
    assert answer.status_code == 302 and answer.headers["Location"] == "/tasks", answer.data
    page = client.get("/tasks", headers=HOST).get_data(as_text=True)
    return json.loads(re.search(r'id="bootstrap">(.*?)</script>', page).group(1))["csrf"]


def test_passwords_and_tokens_are_stored_as_hashes_only(auth_path: str) -> None:
    text = Path(auth_path).read_text()
    assert "correct horse" not in text and "scrypt$" in text
    assert oct(os.stat(auth_path).st_mode & 0o777) == "0o600"
    code, out = cli("add-token", "bot", "--role", "operator", "--auth-file", auth_path)
    token = out.strip().splitlines()[-1]
    assert code == 0 and token.startswith("cdt_") and token not in Path(auth_path).read_text()
    assert AuthFile(auth_path).token(token).role == "operator"
    assert cli("list", "--auth-file", auth_path)[1].splitlines() == [
        "user\talice\tadmin", "user\tvictor\tviewer", "token\tbot\toperator"]
    assert check_password("x", hash_password("x")) and not check_password("y", hash_password("x"))


def test_bad_input_to_the_commands_and_a_bad_file_are_clear(auth_path: str, tmp_path: Path) -> None:
    assert cli("add-user", "bob", "--role", "admin", "--auth-file", auth_path, stdin="short\n")[0] == 2
    assert cli("add-user", "../x", "--role", "admin", "--auth-file", auth_path, stdin="long enough\n")[0] == 2
    assert cli("remove", "nobody", "--auth-file", auth_path)[0] == 1
    broken = tmp_path / "broken.toml"
    broken.write_text('secret = "c2VjcmV0c2VjcmV0c2VjcmV0"\n[users.eve]\nrole = "god"\npassword = "scrypt$1"\n')
    with pytest.raises(AuthFileError, match="users.eve: role must be one of viewer, operator, admin"):
        AuthFile(str(broken))


def test_nothing_is_served_without_credentials(secured: FlaskClient) -> None:
    page = secured.get("/workers", headers=HOST)
    assert page.status_code == 302 and page.headers["Location"] == "/login?next=/workers"
    api = secured.get("/api/workers", headers=HOST)
    assert api.status_code == 401 and "authentication required" in api.get_json()["error"]
    assert api.headers["WWW-Authenticate"].startswith("Bearer")
    assert secured.get("/healthcheck", headers=HOST).status_code == 200
    assert secured.get("/login", headers=HOST).status_code == 200
    with secured.get("/static/css/app.css", headers=HOST) as static:
        assert static.status_code == 200


def test_a_session_needs_its_csrf_token_and_the_right_role(secured: FlaskClient, auth_path: str) -> None:
    wrong = secured.post("/login", data={"name": "alice", "password": "nope"}, headers=HOST)
    assert wrong.status_code == 401 and b"Wrong name or password." in wrong.data
    csrf = login(secured, "alice", "correct horse")
    cookie = secured.get_cookie("dashboard_session", domain="127.0.0.1")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    assert secured.get("/api/workers", headers=HOST).status_code == 200
    no_token = secured.post("/api/tasks/t1/revoke", json={}, headers=HOST)
    assert no_token.status_code == 403 and "CSRF" in no_token.get_json()["error"]
    with_token = secured.post("/api/tasks/t1/revoke", json={}, headers={**HOST, "X-CSRF-Token": csrf})
    assert with_token.status_code == 404  # past authentication and the role: the task is unknown
    AuthFile(auth_path).remove("alice")  # takes effect at once
    assert secured.get("/api/workers", headers=HOST).status_code == 401


def test_a_viewer_reads_but_may_not_act(secured: FlaskClient) -> None:
    csrf = login(secured, "victor", "viewer pass")
    answer = secured.post("/api/tasks/t1/revoke", json={}, headers={**HOST, "X-CSRF-Token": csrf})
    assert answer.status_code == 403 and answer.get_json()["error"] == "the operator role is needed; victor is viewer"
    assert secured.post("/api/queues/celery/purge", json={}, headers={**HOST, "X-CSRF-Token": csrf}).status_code == 403


def test_scripts_use_a_bearer_token_or_basic_auth(secured: FlaskClient, auth_path: str) -> None:
    token = cli("add-token", "ci", "--role", "operator", "--auth-file", auth_path)[1].strip().splitlines()[-1]
    bearer = {**HOST, "Authorization": f"Bearer {token}"}
    assert secured.get("/api/workers", headers=bearer).status_code == 200
    assert secured.post("/api/tasks/t1/revoke", json={}, headers=bearer).status_code == 404  # no CSRF for a token
    assert secured.post("/api/queues/celery/purge", json={}, headers=bearer).status_code == 403  # admin only
    assert secured.get("/api/workers", headers={**HOST, "Authorization": "Bearer cdt_wrong"}).status_code == 401
    basic = base64.b64encode(b"alice:correct horse").decode()
    assert secured.get("/api/workers", headers={**HOST, "Authorization": f"Basic {basic}"}).status_code == 200


def test_failed_logins_are_limited_per_user(secured: FlaskClient) -> None:
    for _ in range(5):
        assert secured.post("/login", data={"name": "alice", "password": "guess"}, headers=HOST).status_code == 401
    blocked = secured.post("/login", data={"name": "alice", "password": "correct horse"}, headers=HOST)
    assert blocked.status_code == 429 and b"Too many failed logins" in blocked.data
    assert secured.post("/login", data={"name": "victor", "password": "viewer pass"}, headers=HOST).status_code == 302


def test_the_limiter_forgets_after_its_window() -> None:
    now = [0.0]
    limiter = LoginLimiter(clock=lambda: now[0])
    for _ in range(5):
        limiter.failed("u", "1.2.3.4")
    assert limiter.blocked_for("u", "1.2.3.4") == 300.0
    now[0] = 301.0
    assert limiter.blocked_for("u", "1.2.3.4") == 0.0


def test_the_live_socket_needs_credentials_too(secured: FlaskClient) -> None:
    app = secured.application
    socketio = app.extensions["dashboard"].socketio
    anonymous = socketio.test_client(app, namespace="/live")
    assert not anonymous.is_connected("/live")
    forged = socketio.test_client(app, namespace="/live", headers={"Cookie": "dashboard_session=forged"})
    assert not forged.is_connected("/live")
    login(secured, "victor", "viewer pass")
    cookie = secured.get_cookie("dashboard_session", domain="127.0.0.1")
    member = socketio.test_client(app, namespace="/live", headers={"Cookie": f"dashboard_session={cookie.value}"})
    assert member.is_connected("/live")
    member.disconnect(namespace="/live")


def test_open_redirects_are_refused(secured: FlaskClient) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil"):
        answer = secured.post("/login", data={"name": "alice", "password": "correct horse", "next": target},
                              headers=HOST)
        assert answer.headers["Location"] == "/", target


def test_actions_logins_refusals_and_file_changes_are_audited(secured: FlaskClient, auth_path: str) -> None:
    secured.post("/login", data={"name": "alice", "password": "nope"}, headers=HOST)
    csrf = login(secured, "victor", "viewer pass")
    secured.post("/api/tasks/t1/revoke", json={}, headers={**HOST, "X-CSRF-Token": csrf})  # refused: viewer
    assert secured.get("/api/audit", headers=HOST).status_code == 403
    assert secured.get("/audit", headers=HOST).status_code == 403
    cli("add-token", "new-bot", "--role", "viewer", "--auth-file", auth_path)
    csrf = login(secured, "alice", "correct horse")
    secured.post("/api/tasks/bulk", json={"action": "revoke", "filter": {"q": "<b>nothing-matches"}},
                 headers={**HOST, "X-CSRF-Token": csrf})
    entries = secured.get("/api/audit", headers=HOST).get_json()["items"]
    seen = [(e["who"], e["action"], e["outcome"]) for e in reversed(entries)]
    assert seen[0] == ("alice", "login", "failed: wrong name or password")
    assert ("victor", "login", "logged in") in seen
    assert ("victor", "POST /api/tasks/t1/revoke", "refused: the operator role is needed; victor is viewer") in seen
    assert any(who == "auth-file" and action == "auth-file-changed" for who, action, _ in seen)
    assert seen[-1] == ("alice", "bulk-revoke (dry run)", "0 would be touched")
    assert all(e["address"] == "127.0.0.1" for e in entries if e["who"] != "auth-file")
    page = secured.get("/audit", headers=HOST)
    assert page.status_code == 200 and b"bulk-revoke (dry run)" in page.data
    # the parameters as readable JSON, the outside text escaped once, for HTML (not tojson's \u003c for scripts)
    assert b'&#34;q&#34;: &#34;&lt;b&gt;nothing-matches&#34;' in page.data and b"\\u003c" not in page.data


def test_the_audit_log_outlives_task_retention(tmp_path: Path) -> None:
    from dashboard.store import TaskStore
    store = TaskStore(str(tmp_path / "h.db"), max_age_seconds=60)
    try:
        store.audit({"at": 1e9, "who": "alice", "action": "revoke", "target": "t", "outcome": "sent; 1 replied"})
        store.audit({"at": 2e9, "who": "alice", "action": "retry", "target": "<script>", "outcome": "sent as x"})
        assert store.prune(2e9) == 0 and len(store.audit_page()["items"]) == 2  # task retention leaves it
        assert store.prune_audit(1.5e9) == 1
        assert [e["action"] for e in store.audit_page()["items"]] == ["retry"]
    finally:
        store.close()


ACTION_ENDPOINTS = ["/api/tasks/t1/revoke", "/api/tasks/t1/retry", "/api/tasks/bulk", "/api/workers/w@h/ping",
                    "/api/workers/w@h/pool-grow", "/api/workers/w@h/shutdown", "/api/queues/celery/purge"]


@pytest.mark.parametrize("path", ACTION_ENDPOINTS)
def test_each_action_endpoint_needs_credentials_a_role_and_the_csrf_token(secured: FlaskClient, path: str) -> None:
    assert secured.post(path, json={}, headers=HOST).status_code == 401
    csrf = login(secured, "victor", "viewer pass")
    assert secured.post(path, json={}, headers=HOST).status_code == 403  # no CSRF token
    viewer = secured.post(path, json={}, headers={**HOST, "X-CSRF-Token": csrf})
    assert viewer.status_code == 403 and "role is needed" in viewer.get_json()["error"]


def test_a_bug_recording_an_audit_entry_is_logged_and_counted_not_raised(
        secured: FlaskClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    dashboard = secured.application.extensions["dashboard"]
    monkeypatch.setattr(dashboard.store, "audit", lambda entry: (_ for _ in ()).throw(TypeError("a bug")))
    before = dashboard.collector.internal_errors
    dashboard.record("revoke", "t1", {}, "sent; 0 replied")
    assert dashboard.collector.internal_errors == before + 1
    assert any(r.exc_info and "audit entry revoke" in r.getMessage() for r in caplog.records)


def test_metrics_need_credentials_unless_public(auth_path: str, tmp_path: Path) -> None:
    secured = create_app(Settings(db=str(tmp_path / "m.db"), async_mode="threading", auth_file=auth_path))
    answer = secured.test_client().get("/metrics", headers=HOST)
    assert answer.status_code == 401 and "Bearer" in answer.headers["WWW-Authenticate"]  # a scraper: no login page
    code, out = cli("add-token", "prometheus", "--role", "viewer", "--auth-file", auth_path)
    token = out.strip().splitlines()[-1]
    scrape = secured.test_client().get("/metrics", headers={**HOST, "Authorization": f"Bearer {token}"})
    assert scrape.status_code == 200 and b"celery_worker_up" in scrape.data
    public = create_app(Settings(db=str(tmp_path / "p.db"), async_mode="threading", auth_file=auth_path,
                                 metrics_public=True))
    assert public.test_client().get("/metrics", headers=HOST).status_code == 200
    assert public.test_client().get("/api/workers", headers=HOST).status_code == 401  # the rest stays closed


def test_ready_answers_503_until_loaded_and_subscribed_without_credentials(auth_path: str, tmp_path: Path) -> None:
    app = create_app(Settings(db=str(tmp_path / "r.db"), async_mode="threading", auth_file=auth_path))
    client = app.test_client()
    answer = client.get("/api/ready", headers=HOST)
    assert answer.status_code == 503 and len(answer.get_json()["waiting_for"]) == 2
    dashboard = app.extensions["dashboard"]
    dashboard.started = True
    dashboard.collector.broker.set("connected")
    answer = client.get("/api/ready", headers=HOST)
    assert answer.status_code == 200 and answer.get_json() == {"ready": True, "waiting_for": []}


@pytest.mark.parametrize("behind_proxy", [True, False])
def test_behind_a_tls_proxy_the_cookie_is_secure_and_the_client_address_comes_from_the_proxy(
        auth_path: str, tmp_path: Path, behind_proxy: bool) -> None:
    app = create_app(Settings(db=str(tmp_path / "p.db"), async_mode="threading", auth_file=auth_path,
                              behind_proxy=behind_proxy))
    client = app.test_client()
    forwarded = {**HOST, "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    answer = client.post("/login", data={"name": "alice", "password": "correct horse", "next": "/"},
                         headers=forwarded)
    assert answer.status_code == 302
    cookie = answer.headers["Set-Cookie"]
    assert ("Secure" in cookie) is behind_proxy  # never trusted without the flag: anyone could send the header
    entries = app.extensions["dashboard"].store.audit_page()["items"]
    assert entries[0]["address"] == ("203.0.113.7" if behind_proxy else "127.0.0.1")
