"""Static files: every module a page runs preloaded, and versioned URLs that browsers keep, never stale."""
from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

import dashboard as dashboard_package
from dashboard import create_app
from dashboard.assets import (BundleError, _split_module, module_closure, page_bundle, page_bundles, page_modules,
                              static_version)
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
    version = re.search(r'<script type="module" src="/static/v/([0-9a-f]{12})/js/bundle/main.js"></script>', page).group(1)
    bundles = page_bundles(STATIC)
    # The version changes with the bundles too, which change with the code that builds them.
    assert version == static_version(STATIC, *(text.encode() for _at, text, _vendored in bundles.values()))
    assert version != static_version(STATIC)
    assert "js/main.js" not in page and "js/connect.js" not in page  # one file instead
    preloads = re.findall(r'<link rel="modulepreload" href="/static/v/[0-9a-f]{12}/([^"]+)">', page)
    assert preloads == bundles[None][2] == ["vendor/socket.io/socket.io.esm.min.js", "vendor/uplot/uPlot.esm.js"]
    task_page = client.get("/tasks/no-such-task").get_data(as_text=True)  # a 404 is the same page
    assert f'<script type="module" src="/static/v/{version}/js/bundle/task.js"></script>' in task_page
    bundle = client.get(f"/static/v/{version}/js/bundle/main.js")
    assert bundle.status_code == 200 and bundle.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert bundle.mimetype == "text/javascript" and bundle.get_data(as_text=True) == bundles[None][1]
    assert bundle.headers["ETag"] == '"%s"' % hashlib.sha256(bundle.get_data()).hexdigest()[:20]  # of its bytes
    again = client.get(f"/static/v/{version}/js/bundle/main.js", headers={"If-None-Match": bundle.headers["ETag"]})
    assert again.status_code == 304
    packed = client.get(f"/static/v/{version}/js/bundle/main.js", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert packed.headers["Content-Encoding"] == "gzip" and packed.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(packed.get_data()) == bundle.get_data() and len(packed.get_data()) < len(bundle.get_data()) / 3
    assert packed.headers["ETag"] != bundle.headers["ETag"] and "Content-Encoding" not in bundle.headers
    older = client.get("/static/v/000000000000/js/bundle/task.js")  # a page from before an upgrade: today's, revalidated
    assert older.status_code == 200 and older.headers["Cache-Control"] == "no-cache"
    assert client.get(f"/static/v/{version}/js/bundle/nothing.js").status_code == 404
    kept = client.get(f"/static/v/{version}/js/store.js")  # the modules themselves are still served
    assert kept.status_code == 200 and kept.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    kept.close()
    older = client.get("/static/v/000000000000/js/store.js")
    assert older.status_code == 200 and "immutable" not in older.headers.get("Cache-Control", "")
    older.close()
    plain = client.get("/static/js/store.js")
    assert plain.status_code == 200
    plain.close()
    assert client.get(f"/static/v/{version}/js/nothing.js").status_code == 404
    assert client.get(f"/static/v/{version}/../dashboard/__init__.py").status_code == 404


@pytest.mark.parametrize(("error", "logged"), [
    (BundleError("js/x.js: this export form is not bundled: 'export default 1;'"),
     "the pages load their modules one by one: js/x.js: this export form is not bundled"),
    (IndexError("list index out of range"),  # a fault of the bundler's own: logged with its traceback
     "the pages load their modules one by one: building their bundles failed"),
])
def test_what_cannot_be_bundled_leaves_the_pages_loading_modules(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, error: Exception,
        logged: str) -> None:
    def refuse(static_dir: Path) -> None:
        raise error
    monkeypatch.setattr(dashboard_package, "page_bundles", refuse)
    client = create_app(Settings(db=str(tmp_path / "d.db"), async_mode="threading")).test_client()
    page = client.get("/").get_data(as_text=True)
    assert logged in caplog.text and (isinstance(error, BundleError) or "IndexError" in caplog.text)
    version = static_version(STATIC)
    early = page.index(f'<script type="module" async src="/static/v/{version}/js/connect.js"></script>')
    assert early < page.index(f'<script type="module" src="/static/v/{version}/js/main.js"></script>')
    preloads = re.findall(r'<link rel="modulepreload" href="/static/v/[0-9a-f]{12}/([^"]+)">', page)
    assert preloads == page_modules(STATIC)[None] and "js/store.js" in preloads
    task_page = client.get("/tasks/no-such-task").get_data(as_text=True)
    task_preloads = re.findall(r'<link rel="modulepreload" href="/static/v/[0-9a-f]{12}/([^"]+)">', task_page)
    assert task_preloads == page_modules(STATIC)["task"]
    assert "js/bundle/" not in page + task_page


def test_every_page_bundle_parses_and_holds_every_module_its_page_runs(tmp_path: Path) -> None:
    bundles = page_bundles(STATIC)
    modules = page_modules(STATIC)
    assert set(bundles) == set(modules)
    (tmp_path / "package.json").write_text('{"type": "module"}')
    for page, (at, text, vendored) in bundles.items():
        assert at == f"js/bundle/{page or 'main'}.js"
        held = re.findall(r"^// ---- (\S+)$", text, re.MULTILINE)
        assert held[-1] == (f"js/pages/{page}.js" if page else "js/main.js") and held.index("js/connect.js") < held.index("js/main.js")
        assert set(held) | set(vendored) == set(modules[page]) | {"js/connect.js", "js/main.js"} and len(held) == len(set(held))
        code = re.sub(r'^import \* as __m\d+ from "[^"]+";$', "", text, flags=re.MULTILINE)  # past its vendored imports
        assert not re.search(r"^\s*(import|export)\s", code, re.MULTILINE)
        assert not re.search(r"(?<![\w$.'\"`])import\s*\(", code)  # every import() is the bundle's
        file = tmp_path / f"{page or 'main'}.js"
        file.write_text(text)
        checked = subprocess.run(["node", "--check", str(file)], capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stderr


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def _run(root: Path, text: str) -> tuple[list[Any], str]:
    """Run a bundle in Node.js (as ``js/bundle/x.js`` under ``root``); return the JSON lines it printed and its stderr."""
    _write(root, {"package.json": '{"type": "module"}', "js/bundle/x.js": text})
    ran = subprocess.run(["node", str(root / "js" / "bundle" / "x.js")], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    return [json.loads(line) for line in ran.stdout.splitlines()], ran.stderr


def test_a_bundle_runs_its_modules_as_the_browser_would(tmp_path: Path) -> None:
    _write(tmp_path, {
        "vendor/lib.js": "export default function lib() { return 'lib'; }\nexport const helper = () => 'helper';\n",
        "js/first.js": 'import { log } from "./util/log.js";\nlog("first");\n',
        "js/util/log.js": "export const lines = [];\nexport function log(line) { lines.push(line); }\n",
        "js/util/shapes.js": (
            'import { log } from "./log.js";\nlog("shapes");\nconst SIDE = 2;\nexport { SIDE, SIDE as EDGE };\n'
            "export class Square { area() { return SIDE * SIDE; } }\n"
            "export async function later() { return 'later'; }\nfunction hidden() {}\n"),
        "js/main.js": (
            'import lib, { helper } from "../vendor/lib.js";\nimport * as\n  whole from "../vendor/lib.js";\n'
            "import {\n  Square,\n  EDGE as\n  edge, later,\n} from \"./util/shapes.js\";\n"
            'import { lines, log } from "./util/log.js";\n'
            'log("main");\nconst own = "import(not this)";\nfunction hidden() { return "main\'s own"; }\n'
            "const page = 'extra';\n"
            "Promise.all([later(), import(`./pages/${page}.js`)]).then(([a, extra]) => {\n"
            "  console.log(JSON.stringify([lines, lib(), helper(), whole.helper(), new Square().area(), edge, a,\n"
            "    extra.name, extra.log === log, hidden(), Object.keys(whole).sort()]));\n"
            "  return import(\"./late.js\");\n"
            "}).catch((error) => console.log(JSON.stringify(String(error))));\n"),
        "js/pages/extra.js": 'import { log } from "../util/log.js";\nlog("extra");\nexport const name = "extra page";\nexport { log };\n',
        "js/late.js": 'export const name = "not in the bundle";\n',
    })
    text, vendored = page_bundle(tmp_path, ["js/first.js", "js/main.js", "js/pages/extra.js"], "js/bundle/x.js",
                                 imported=["js/pages/extra.js"])
    assert vendored == ["vendor/lib.js"] and "// ---- js/late.js" not in text
    assert _run(tmp_path, text)[0] == [
        [["first", "shapes", "main", "extra"], "lib", "helper", "helper", 4, 2, "later", "extra page", True, "main's own",
         ["default", "helper"]],
        "TypeError: js/late.js is not in this page's bundle",  # as a browser's import() of a missing file, rejected
    ]


def test_a_module_that_throws_stops_only_the_modules_that_import_it(tmp_path: Path) -> None:
    _write(tmp_path, {
        "js/shared.js": "export const seen = [];\n",
        "js/early.js": 'import { seen } from "./shared.js";\nimport "./broken.js";\nimport "./ok.js";\nseen.push("early");\n',
        "js/broken.js": 'throw new Error("broken at load");\n',
        "js/ok.js": 'export const ok = "ok";\n',  # reached first by early.js, after broken.js, but imports nothing of it
        "js/main.js": (
            'import { seen } from "./shared.js";\nimport { ok } from "./ok.js";\nseen.push("main", ok);\n'
            "import(\"./pages/p.js\").then(() => console.log(JSON.stringify(\"loaded\")),\n"
            "  (error) => console.log(JSON.stringify([seen, String(error)])));\n"),
        "js/pages/p.js": 'import { seen } from "../shared.js";\nimport { x } from "./uses_broken.js";\nseen.push("page");\n',
        "js/pages/uses_broken.js": 'import "../broken.js";\nexport const x = 1;\n',
    })
    text = page_bundle(tmp_path, ["js/early.js", "js/main.js", "js/pages/p.js"], "js/bundle/x.js",
                       imported=["js/pages/p.js"])[0]
    # broken.js's error is reported once (on stderr here); early.js, which imports it, does not run; main.js
    # runs all the same, as a separate script would, with ok.js; the page module, which imports broken.js
    # through another, rejects main.js's import() with broken.js's own error, as the browser's import() would.
    (printed,), stderr = _run(tmp_path, text)
    assert stderr.count("broken at load") == 1
    seen, error = printed
    assert seen == ["main", "ok"] and error == "Error: broken at load"


def test_dynamic_imports_are_rewritten_wherever_they_stand() -> None:
    body, imports, _exports = _split_module("js/m.js", 'import { a } from "./a.js";\nimport("./b.js").then(a);\n')
    assert imports == [("{ a }", "js/a.js")] and body == '__import("js/m.js", "./b.js").then(a);\n'  # at the body's start
    body = _split_module("js/m.js", 'x.import("./b.js");\nconst s = "import(\'./b.js\')";\n')[0]
    assert "__import" not in body  # a method named import, and the word in a string


def test_every_module_is_read_as_node_reads_it(tmp_path: Path) -> None:
    """The bundler's reading of each module (its exports and its imports) is Node.js's own parser's."""
    modules = sorted(str(p.relative_to(STATIC)) for p in (STATIC / "js").rglob("*.js"))
    script = tmp_path / "read.mjs"
    script.write_text(  # every module linked to those it imports, the vendored ones too: a name none exports fails
        "import vm from 'node:vm'; import fs from 'node:fs';\n"
        "const [paths, root] = [JSON.parse(process.argv[2]), process.argv[3]];\n"
        "const made = new Map();\n"
        "function load(path) {\n"
        "  if (!made.has(path)) made.set(path, new vm.SourceTextModule(fs.readFileSync(`${root}/${path}`, 'utf8'), { identifier: path }));\n"
        "  return made.get(path);\n"
        "}\n"
        "const out = {};\n"
        "for (const path of paths) {\n"
        "  const m = load(path);\n"
        "  if (m.status === 'unlinked') await m.link((specifier, from) => load(new URL(specifier, 'https://x/' + from.identifier).pathname.slice(1)));\n"
        "  const specifiers = m.dependencySpecifiers.map((s) => new URL(s, 'https://x/' + path).pathname.slice(1));\n"
        "  out[path] = [[...new Set(specifiers)].sort(), Reflect.ownKeys(m.namespace).filter((k) => typeof k === 'string').sort()];\n"
        "}\n"
        "console.log(JSON.stringify(out));\n")
    ran = subprocess.run(["node", "--experimental-vm-modules", "--no-warnings", str(script), json.dumps(modules), str(STATIC)],
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    read = json.loads(ran.stdout)
    assert sorted(read) == modules
    for path, (imported, exports) in read.items():
        _body, imports, exported = _split_module(path, (STATIC / path).read_text())
        assert sorted(e.split(":")[0] for e in exported) == exports, path
        assert sorted({target for _clause, target in imports}) == imported, path


@pytest.mark.parametrize(("files", "message"), [
    ({"js/main.js": 'import { a } from "./a.js";\n', "js/a.js": 'import { m } from "./main.js";\nexport const a = 1;\n'},
     "js/main.js -> js/a.js -> js/main.js: modules that import each other"),
    ({"js/main.js": 'import { b } from "./a.js";\n', "js/a.js": "export const a = 1;\n"},
     "js/main.js: imports 'b', which js/a.js does not export"),
    ({"js/main.js": "export default 1;\n"}, "js/main.js: this export form is not bundled: 'export default 1;'"),
    ({"js/main.js": "export let a = 1;\n"}, "js/main.js: this export form is not bundled"),
    ({"js/main.js": 'export { a } from "./a.js";\n', "js/a.js": "export const a = 1;\n"}, "this export form"),
    ({"js/main.js": "var a = 1;\n"}, "js/main.js: var is not bundled"),
    ({"js/main.js": "const here = import.meta.url;\n"}, "import.meta is not bundled"),
    ({"js/main.js": 'import { a } from "./gone.js";\n'}, "js/gone.js: cannot read it"),
    ({"js/main.js": 'import { a } from "lib";\n'}, "only relative imports are bundled"),
    ({"js/main.js": "function f() {\n  for (var i = 0; i < 2; i++) {}\n}\n"}, "js/main.js: var is not bundled"),
    ({"js/main.js": "const name = './x.js';\nimport(name);\n"}, "an import() of a computed path is not bundled"),
    ({"js/main.js": "const __bundled = 1;\n"}, "a name the bundle uses is not bundled"),
    ({"js/main.js": 'import a from "./a.js";\n', "js/a.js": "export const a = 1;\n"},
     "js/main.js: imports the default export, which js/a.js does not have"),
    ({"js/main.js": "let n = 0;\nexport { n };\n"}, "js/main.js: an export of the let 'n' is not bundled"),
    ({"js/main.js": "const a = 1;\nexport { a as b c };\n"}, "js/main.js: cannot read 'a as b c' in an import or export"),
    ({"js/main.js": 'import { a as } from "./a.js";\n', "js/a.js": "export const a = 1;\n"}, "cannot read 'a as'"),
    ({"js/main.js": 'import("./b.js");\nimport(name);\n'}, "an import() of a computed path is not bundled: 'import(name);'"),
])
def test_what_the_bundler_does_not_rewrite_is_refused_by_name(tmp_path: Path, files: dict[str, str], message: str) -> None:
    _write(tmp_path, files)
    with pytest.raises(BundleError) as refused:
        page_bundle(tmp_path, ["js/main.js"], "js/bundle/main.js")
    assert message in str(refused.value)
