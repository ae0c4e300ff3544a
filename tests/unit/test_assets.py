"""Static files: every module a page runs preloaded, and versioned URLs that browsers keep, never stale."""
from __future__ import annotations

import re
from pathlib import Path

from dashboard import create_app
from dashboard.assets import module_closure, page_modules, static_version
from dashboard.settings import Settings

STATIC = Path(__file__).resolve().parents[2] / "static"


def test_main_and_the_page_modules_reach_every_module() -> None:
    modules = module_closure(STATIC)
    assert modules[0] == "js/main.js"
    pages = page_modules(STATIC)
    early = module_closure(STATIC, "js/connect.js")
    reached = set(modules).union(early, *pages.values())
    on_disk = {str(p.relative_to(STATIC)) for p in (STATIC / "js").rglob("*.js")}
    assert on_disk <= reached  # nothing a page runs would be left to a late fetch
    assert "vendor/socket.io/socket.io.esm.min.js" in modules and "vendor/uplot/uPlot.esm.js" in modules
    # The early live connection's modules are fetched first (the Socket.IO client among them), then the panels'.
    assert "vendor/socket.io/socket.io.esm.min.js" in early and "js/panels/workers.js" not in early
    assert pages[None][:len(early) - 1] == early[1:]
    assert "js/connect.js" not in pages[None] and "js/main.js" not in pages[None]


def test_only_its_own_page_loads_a_page_module() -> None:
    pages = page_modules(STATIC)
    main = (STATIC / "js" / "main.js").read_text()
    named = re.search(r"const PAGES = new Set\(\[([^\]]*)\]\)", main).group(1)  # the pages main.js imports a module for
    assert set(re.findall(r'"([^"]+)"', named)) == set(pages) - {None}
    overview = pages[None]
    assert not any(m.startswith("js/pages/") for m in overview) and "js/panels/task_detail.js" not in overview
    assert pages["task"][:len(overview)] == overview  # main.js's first, then the page's own
    assert "js/pages/task.js" in pages["task"] and "js/panels/task_detail.js" in pages["task"]
    assert len(set(pages["task"])) == len(pages["task"])  # each once


def test_page_modules_are_found_by_file_name(tmp_path: Path) -> None:
    (tmp_path / "js" / "pages").mkdir(parents=True)
    (tmp_path / "js" / "main.js").write_text('import "./common.js";\n')
    (tmp_path / "js" / "common.js").write_text("")
    (tmp_path / "js" / "pages" / "task-type.js").write_text('import "../common.js";\nimport "../own.js";\n')
    (tmp_path / "js" / "own.js").write_text("")
    assert page_modules(tmp_path) == {None: ["js/common.js"],
                                      "task-type": ["js/common.js", "js/pages/task-type.js", "js/own.js"]}


def test_imports_are_read_relative_to_their_module_and_never_leave_the_folder(tmp_path: Path) -> None:
    (tmp_path / "js" / "panels").mkdir(parents=True)
    (tmp_path / "js" / "main.js").write_text('import { a } from "./panels/a.js";\nimport "./side.js";\n')
    (tmp_path / "js" / "panels" / "a.js").write_text(
        'export { b } from "../helpers/b.js";\nimport x from "../../../etc/passwd.js";\nconst s = "import(\'./no.js\')";\n')
    (tmp_path / "js" / "side.js").write_text("")
    assert module_closure(tmp_path) == ["js/main.js", "js/panels/a.js", "js/side.js"]  # b.js is missing: left out


def test_the_version_changes_with_any_file(tmp_path: Path) -> None:
    (tmp_path / "a.css").write_text("a {}")
    before = static_version(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{12}", before) and static_version(tmp_path) == before
    (tmp_path / "a.css").write_text("a { color: red }")
    assert static_version(tmp_path) != before


def test_pages_load_versioned_files_that_browsers_keep(tmp_path: Path) -> None:
    client = create_app(Settings(db=str(tmp_path / "d.db"), async_mode="threading")).test_client()
    page = client.get("/").get_data(as_text=True)
    version = re.search(r'src="/static/v/([0-9a-f]{12})/js/main.js"', page).group(1)
    assert version == static_version(STATIC)
    # The early live connection's own script comes first, async: it runs as soon as its few modules are in.
    early = page.index(f'<script type="module" async src="/static/v/{version}/js/connect.js"></script>')
    assert early < page.index(f'src="/static/v/{version}/js/main.js"')
    preloads = re.findall(r'<link rel="modulepreload" href="/static/v/[0-9a-f]{12}/([^"]+)">', page)
    assert preloads == page_modules(STATIC)[None] and "js/store.js" in preloads
    task_page = client.get("/tasks/no-such-task").get_data(as_text=True)  # a 404 is the same page
    task_preloads = re.findall(r'<link rel="modulepreload" href="/static/v/[0-9a-f]{12}/([^"]+)">', task_page)
    assert task_preloads == page_modules(STATIC)["task"]
    kept = client.get(f"/static/v/{version}/js/store.js")
    assert kept.status_code == 200 and kept.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    kept.close()
    older = client.get("/static/v/000000000000/js/store.js")  # a page from before an upgrade: today's file
    assert older.status_code == 200 and "immutable" not in older.headers.get("Cache-Control", "")
    older.close()
    plain = client.get("/static/js/store.js")
    assert plain.status_code == 200
    plain.close()
    assert client.get(f"/static/v/{version}/js/nothing.js").status_code == 404
    assert client.get(f"/static/v/{version}/../dashboard/__init__.py").status_code == 404
