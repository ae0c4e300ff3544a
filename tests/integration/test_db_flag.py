"""A ``--db`` the dashboard cannot use stops start-up with one line naming the flag, and status 2."""
from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import pytest

from helpers import PYTHON, REPO_ROOT, free_port

pytestmark = pytest.mark.integration

#: Longest run.py may take to give up on a --db it cannot use, in seconds.
EXIT_SECONDS = 30.0


def run_dashboard(db: Path | str, file_size_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``run.py`` with this ``--db`` and a broker that is never there; return how it ended."""
    def limit_file_size() -> None:  # writes beyond it fail as they do on a full disk
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    env = {key: value for key, value in os.environ.items() if not key.startswith("DASHBOARD_")}
    return subprocess.run([PYTHON, "run.py", "--db", str(db), "--port", str(free_port()),
                           "--broker", "redis://127.0.0.1:1/0"], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=EXIT_SECONDS, preexec_fn=limit_file_size)


def assert_one_line_error(done: subprocess.CompletedProcess[str], db: Path | str) -> str:
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2, done.stderr
    assert len(errors) == 1 and errors[0].startswith(f"error: --db {db}: cannot open the task history ("), done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return errors[0]


def test_a_directory(tmp_path: Path) -> None:
    assert_one_line_error(run_dashboard(tmp_path), tmp_path)


def test_a_directory_that_does_not_exist(tmp_path: Path) -> None:
    db = tmp_path / "no-such-dir" / "history.db"
    line = assert_one_line_error(run_dashboard(db), db)
    assert line.endswith("(unable to open database file)")
    assert not db.parent.exists()


def test_a_full_disk(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    assert_one_line_error(run_dashboard(db, file_size_limit=0), db)


def test_a_read_only_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("this user (root) writes in read-only directories")
        assert_one_line_error(run_dashboard(locked / "history.db"), locked / "history.db")
    finally:
        locked.chmod(0o700)


def test_a_read_only_file(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    db.write_bytes(b"")  # an empty database, to be given its schema
    db.chmod(0o400)
    if os.access(db, os.W_OK):
        pytest.skip("this user (root) writes read-only files")
    assert_one_line_error(run_dashboard(db), db)


def test_a_postgresql_server_that_is_not_there() -> None:
    db = "postgresql://celery:s3cret-pw@127.0.0.1:1/history"
    line = assert_one_line_error(run_dashboard(db), "postgresql://celery:****@127.0.0.1:1/history")
    assert "s3cret" not in line and "refused" in line


def test_a_postgresql_schema_newer_than_the_code(postgres_url: str) -> None:
    import psycopg
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE dashboard_schema (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO dashboard_schema VALUES (999)")
    done = run_dashboard(postgres_url)
    assert done.returncode == 2 and "schema version 999 is newer" in done.stderr, done.stderr
