"""``GET /api/tasks`` answers every parameter it cannot use with a 400 naming it, never a 500."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from flask.testing import FlaskClient

from dashboard import create_app
from dashboard.settings import Settings
from test_store import T0, task
from test_store_hardening import cursor


@pytest.fixture
def client(tmp_path: Path) -> Iterator[FlaskClient]:
    app = create_app(Settings(db=str(tmp_path / "t.db"), async_mode="threading"))
    dashboard = app.extensions["dashboard"]
    dashboard.store.write_batch([task("a", 1), task("b", 2)], [])
    yield app.test_client()
    dashboard.store.close()


@pytest.mark.parametrize("name", ["q", "name", "worker", "queue", "state", "since", "until", "time", "sort",
                                  "limit", "cursor"])
def test_a_nul_character_in_any_parameter_is_a_400_naming_it(client: FlaskClient, name: str) -> None:
    for value in ("%00", "abc%00", "billing%00charge"):
        response = client.get(f"/api/tasks?{name}={value}")
        assert response.status_code == 400, (name, value)
        assert response.get_json() == {"error": f"{name}: contains a NUL character"}


@pytest.mark.parametrize(("query", "name"), [
    (f"cursor={cursor([T0], 1 << 63)}", "cursor"),  # a row id beyond SQLite's integers
    (f"cursor={cursor([1 << 63], 1)}", "cursor"),
    (f"cursor={cursor([10 ** 400], 1)}", "cursor"),
    ("since=1e400", "since"),
    ("until=-1e400", "until"),
    ("since=nan", "since"),
    ("until=inf", "until"),
    ("limit=99999999999999999999999", "limit"),
    (f"limit={'9' * 5000}", "limit"),  # more digits than Python converts
    ("limit=1e3", "limit"),
], ids=["cursor row id 2**63", "cursor value 2**63", "cursor value 10**400", "since 1e400", "until -1e400",
        "since nan", "until inf", "limit 1e23", "limit 5000 digits", "limit 1e3"])
def test_numbers_out_of_range_are_a_400_naming_the_parameter(client: FlaskClient, query: str, name: str) -> None:
    response = client.get(f"/api/tasks?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"].startswith(f"{name}: ")


def test_the_same_parameters_in_range_still_work(client: FlaskClient) -> None:
    first = client.get("/api/tasks?limit=1&since=0&until=1e300&q=billing").get_json()
    assert [item["uuid"] for item in first["items"]] == ["b"] and first["next"]
    second = client.get(f"/api/tasks?limit=1&q=billing&cursor={first['next']}").get_json()
    assert [item["uuid"] for item in second["items"]] == ["a"]
    assert client.get(f"/api/tasks?cursor={cursor([T0 + 10], (1 << 63) - 1)}").status_code == 200


def test_health_counts_quarantined_tasks(client: FlaskClient) -> None:
    store = client.get("/api/health").get_json()["store"]
    assert store["quarantined"] == 0 and store["error"] is None


def test_health_says_how_the_integrity_check_went(client: FlaskClient) -> None:
    store = client.application.extensions["dashboard"].store
    body = client.get("/api/health").get_json()
    assert body["store"]["integrity"] is None  # no check ran: a small file is checked on open
    store.check_pending = True
    assert client.get("/api/health").get_json()["store"]["integrity"] == "checking"
    store.check_pending, store.integrity = False, "*** in database main ***\nPage 4: btreeInitPage() returns error"
    body = client.get("/api/health").get_json()
    assert body["status"] == "degraded" and body["store"]["integrity"].startswith("*** in database main")
