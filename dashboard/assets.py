"""The pages' JavaScript: each page's modules in one file, and the modules listed for ``<link rel="modulepreload">``.

A browser learns an ES module's imports only once it has fetched and parsed it, and asks a server for
six files at a time; on a dashboard busy ingesting events each request waits its turn. So each page
loads one bundle (``page_bundles``) of every module it runs, built here at start-up from the modules
as they are in ``static/js``; when a module uses a form the bundler does not rewrite, the pages load
their modules one by one, each page's head listing every module ``main.js`` reaches (``page_modules``,
found by reading the static import statements) so that the browser fetches them all at once; a page
with panels of its own (``js/pages/<page>.js``, which main.js imports only on that page) also lists that
module's. Pure code apart from reading the files; no Flask.
"""
from __future__ import annotations

import hashlib
import re
import string
from pathlib import Path, PurePosixPath
from typing import Sequence

#: ``import ... from "./x.js"``, ``export ... from "../y.js"`` and ``import "./z.js"``: relative specifiers only.
_IMPORT = re.compile(r"""(?:^|[;\s])(?:import|export)\s[^;"'`]*?["'](\.{1,2}/[^"']+\.js)["']|"""
                     r"""(?:^|[;\s])import\s*["'](\.{1,2}/[^"']+\.js)["']""", re.MULTILINE)


def module_closure(static_dir: Path, entry: str = "js/main.js") -> list[str]:
    """Return the paths under ``static_dir`` (``js/...``, ``vendor/...``) of ``entry`` and every module it
    imports, directly or not, in the order first reached; a missing file is left out (the browser reports it)."""
    root = static_dir.resolve()
    seen: dict[str, None] = {}
    pending = [PurePosixPath(entry)]
    while pending:
        path = pending.pop(0)
        key = str(path)
        if key in seen:
            continue
        file = root / key
        try:
            text = file.read_text(encoding="utf-8")
        except OSError:
            continue
        seen[key] = None
        for match in _IMPORT.finditer(text):
            spec = match.group(1) or match.group(2)
            target = _normalise(path.parent / spec)
            if target is not None and target not in seen:
                pending.append(PurePosixPath(target))
    return list(seen)


def page_modules(static_dir: Path, entry: str = "js/main.js", first: str = "js/connect.js"
                 ) -> dict[str | None, list[str]]:
    """Return, for each page with a module of its own (``js/pages/<page>.js``, by its page name) and for
    every other page (None), the modules its head preloads: those ``first`` reaches (the early live
    connection's script: the Socket.IO client, fetched before the panels), then those ``entry`` reaches,
    then its page module's that neither does (``first`` and ``entry`` are the page's scripts, not listed)."""
    early = module_closure(static_dir, first)
    common = early + [m for m in module_closure(static_dir, entry) if m not in early]
    pages: dict[str | None, list[str]] = {None: [m for m in common if m not in (first, entry)]}
    shared = set(common)
    for file in sorted((static_dir.resolve() / "js" / "pages").glob("*.js")):
        own = module_closure(static_dir, f"js/pages/{file.name}")
        pages[file.stem] = pages[None] + [m for m in own if m not in shared]
    return pages


def _normalise(path: PurePosixPath) -> str | None:
    """Resolve ``..`` in a relative path; None when it leaves the static folder."""
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def static_version(static_dir: Path, *made: bytes) -> str:
    """Return a short hash of every file under ``static_dir`` (paths and contents) and of what is ``made``
    from them (the bundles, which also change with the code that builds them): the part of the static URLs
    that changes with any of them, so that browsers may keep them for a year and never use an old one."""
    digest = hashlib.sha256()
    root = static_dir.resolve()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(root)).encode() + b"\0")
        digest.update(file.read_bytes())
    for data in made:
        digest.update(b"\0made\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()[:12]


class BundleError(ValueError):
    """A module uses a form the bundler does not rewrite (the page then loads its modules one by one)."""


#: A static import at the start of a line: ``import X from "s"``, ``import { a, b as c } from "s"``
#: (over several lines too), ``import * as ns from "s"``, ``import X, { a } from "s"`` and ``import "s"``.
_STATIC_IMPORT = re.compile(r"""^import\s+(?:(?P<clause>[\w$*{][^;"'`]*?)\s+from\s+)?["'](?P<spec>[^"']+)["'];?[ \t]*$\n?""",
                            re.MULTILINE)
#: ``export function f``, ``export async function f``, ``export class C``, ``export const X`` at a line's start.
_EXPORT_DECLARATION = re.compile(r"^export\s+(?P<kind>(?:async\s+)?function\*?|class|const)\s+(?P<name>[A-Za-z_$][\w$]*)",
                                 re.MULTILINE)
#: ``export { a, b as c };`` of names the module has (not ``export ... from``).
_EXPORT_LIST = re.compile(r"^export\s*\{(?P<names>[^}]*)\}\s*;?[ \t]*$\n?", re.MULTILINE)
_NAME = re.compile(r"[A-Za-z_$][\w$]*")
#: What is left of a module, its imports and exports taken out, that the bundler does not rewrite, at a
#: line's start; and (``_SUSPECT``, whose matches ``_finish`` reads in their context) elsewhere: each
#: starts with a literal, which Python's re finds ten times faster than a pattern with a look-behind.
_REFUSED_LINE = re.compile(r"^[ \t]*(?:export\b|import\s*[\w${*\"'])", re.MULTILINE)
_SUSPECT = re.compile(r"(?P<meta>import\.meta)|(?P<call>import\s*\()|(?P<var>var\s+[\w$\[{])"
                      r"|(?P<reserved>__(?:bundled|failed|take|import|report|reported|m\d+))")
_RELATIVE_SPECIFIER = re.compile(r"""\s*["'`]\.{1,2}/""")
_IDENTIFIER_CHARS = frozenset(string.ascii_letters + string.digits + "_$")


def page_bundle(static_dir: Path, entries: list[str], at: str, imported: Sequence[str] = (),
                _read: dict[str, tuple[str, list[tuple[str | None, str]], list[str]]] | None = None
                ) -> tuple[str, list[str]]:
    """Return one ES module, to be served at ``at`` under ``static_dir``, that runs ``entries`` (``js/...``
    paths, in that order) and every module under ``js/`` they import, each module once, after those it
    imports, in a block of its own; and the files outside ``js/`` it imports (the vendored libraries), which
    stay modules of their own. A module's ``import()`` of a string or template literal starting with ``./``
    or ``../`` gets that module from the bundle, or is rejected when the bundle does not hold it or it failed.

    As with separate module scripts, a module that throws stops only the modules that import it, directly
    or not (an import of it throws its error again), and its error is reported once (``reportError``),
    unless it was reached from one of the entries in ``imported``, those another imports with ``import()``:
    that import is rejected with it instead. Raises BundleError for a form it does not rewrite (``export
    default``, ``export let``, an ``export { ... }`` of a let, ``export ... from``, ``var``, ``import.meta``,
    any other ``import()``), an import of a name its module does not export, a missing module, or modules
    that import each other in a cycle."""
    root = static_dir.resolve()
    order: list[str] = []  # bundled modules, each after those it imports
    native: list[str] = []  # modules the bundle imports (vendored files)
    parsed: dict[str, tuple[str, list[tuple[str | None, str]], list[str]]] = {}  # path -> (body, imports, exports)
    read = {} if _read is None else _read  # each file read and split once over several bundles
    visiting: list[str] = []

    def visit(path: str) -> None:
        if path in parsed or path in native:
            return
        if path in visiting:
            raise BundleError(f"{' -> '.join(visiting[visiting.index(path):] + [path])}: modules that import each other")
        if not path.startswith("js/"):
            if not (root / path).is_file():
                raise BundleError(f"{path}: no such module")
            native.append(path)
            return
        if path not in read:
            try:
                read[path] = _split_module(path, (root / path).read_text(encoding="utf-8"))
            except OSError as error:
                raise BundleError(f"{path}: cannot read it ({error.strerror or error})") from None
        visiting.append(path)
        body, imports, exports = read[path]
        for _clause, target in imports:
            visit(target)
        visiting.pop()
        parsed[path] = (body, imports, exports)
        order.append(path)

    segments: list[tuple[str, list[str]]] = []  # each entry with the modules it is the first to reach
    for entry in entries:
        before = len(order)
        visit(entry)
        segments.append((entry, order[before:]))
    names = {path: f"__m{index}" for index, path in enumerate(native)}
    home = PurePosixPath(at).parent
    out = [f"// One file for the modules {', '.join(entries)} run (dashboard/assets.py page_bundle): each in a block"
           " of its own, after those it imports.\n"]
    for path in native:
        out.append(f'import * as {names[path]} from "{_relative(path, home)}";\n')
    out.append("const __bundled = new Map(); // path -> the module's exports, once its code has run\n"
               "const __failed = new Map(); // path -> why its code, or that of a module it imports, failed\n"
               "/** A bundled module's exports, or the error that stopped its code (as an import of it would throw). */\n"
               "function __take(path) {\n"
               "  if (__bundled.has(path)) return __bundled.get(path);\n"
               "  throw __failed.get(path) ?? new TypeError(`${path} is not in this page's bundle`);\n"
               "}\n"
               "const __reported = new Set();\n"
               "/** Report an error a module threw, once (its importers throw it again). */\n"
               "function __report(error) {\n"
               "  if (__reported.has(error)) return;\n"
               "  __reported.add(error);\n"
               "  (globalThis.reportError ?? console.error)(error);\n"
               "}\n"
               "/** A module's `import(specifier)`: the module from this bundle, or a rejection. */\n"
               "function __import(from, specifier) {\n"
               '  return Promise.resolve().then(() => __take(new URL(specifier, "https://x/" + from).pathname.slice(1)));\n'
               "}\n")
    for entry, reached in segments:
        if not reached:
            continue
        # A module's error is reported once, where it was thrown, unless another imports its entry with import()
        # (that import is rejected with it instead), as the browser does with separate scripts.
        report = "" if entry in imported else "\n  __report(error);"
        out.append(f"\n// ==== {entry}, with the modules it is the first to import\n")
        for path in reached:
            body, imports, exports = parsed[path]
            out.append(f"// ---- {path}\ntry {{\n")
            for clause, target in imports:  # an import of a module that failed throws its error, as the browser's would
                source = f"__take({_js_string(target)})" if target in parsed else names[target]
                if clause is not None:
                    out.append(_bind(clause, source, parsed[target][2] if target in parsed else None, path, target))
                elif target in parsed:
                    out.append(f"{source};\n")
            out.append(body.rstrip("\n") + "\n")
            out.append(f"__bundled.set({_js_string(path)}, {{ {', '.join(exports)} }});\n"
                       f"}} catch (error) {{\n  __failed.set({_js_string(path)}, error);{report}\n}}\n")
    return "".join(out), native


def _split_module(path: str, text: str) -> tuple[str, list[tuple[str | None, str]], list[str]]:
    """Return a module's code without its import statements and ``export`` keywords and with its
    ``import()``s rewritten (``_finish``), its imports as (clause or None, static path) and the names it exports."""
    imports: list[tuple[str | None, str]] = []

    def take_import(match: re.Match[str]) -> str:
        spec = match.group("spec")
        if not spec.startswith(("./", "../")):
            raise BundleError(f"{path}: import of {spec!r}: only relative imports are bundled")
        target = _normalise(PurePosixPath(path).parent / spec)
        if target is None:
            raise BundleError(f"{path}: import of {spec!r} leaves the static folder")
        imports.append((match.group("clause"), target))
        return ""

    body = _STATIC_IMPORT.sub(take_import, text)
    exports: list[str] = []

    def take_list(match: re.Match[str]) -> str:
        for item in filter(None, (part.strip() for part in match.group("names").split(","))):
            local, public = _aliased(path, item)
            if re.search(rf"^let\s+{re.escape(local)}\b", text, re.MULTILINE):  # copied once: not a live binding
                raise BundleError(f"{path}: an export of the let {local!r} is not bundled")
            exports.append(local if public == local else f"{public}: {local}")
        return ""

    body = _EXPORT_LIST.sub(take_list, body)

    def take_declaration(match: re.Match[str]) -> str:
        exports.append(match.group("name"))
        return f"{match.group('kind')} {match.group('name')}"

    body = _EXPORT_DECLARATION.sub(take_declaration, body)
    refused = _REFUSED_LINE.search(body)
    if refused:
        raise BundleError(f"{path}: this {'export' if 'export' in refused.group() else 'import'} form is not bundled: "
                          f"{_line_at(body, refused.start())!r}")
    return _finish(path, body), imports, exports


def _finish(path: str, body: str) -> str:
    """Rewrite each ``import("./...")`` (a string or template literal of a relative path) to the bundle's
    ``__import``; refuse ``import.meta``, ``var``, any other ``import(...)`` and the names the bundle uses."""
    parts, done = [], 0
    for match in _SUSPECT.finditer(body):
        at, kind = match.start(), match.lastgroup
        before = body[at - 1] if at else "\n"
        if before in _IDENTIFIER_CHARS or before == "." or (kind == "reserved" and body[match.end():match.end() + 1]
                                                           and body[match.end()] in _IDENTIFIER_CHARS):
            continue  # part of another name, or a property
        if kind == "call":
            if before in "\"'`":
                continue  # the word in a string
            if _RELATIVE_SPECIFIER.match(body, match.end()):
                parts += [body[done:at], f"__import({_js_string(path)}, "]
                done = match.end()
                continue
        what = {"meta": "import.meta", "call": "an import() of a computed path", "var": "var",
                "reserved": "a name the bundle uses"}[kind or ""]
        raise BundleError(f"{path}: {what} is not bundled: {_line_at(body, at)!r}")
    return "".join(parts) + body[done:]


def _line_at(body: str, at: int) -> str:
    """The line of ``body`` from ``at``, for a message."""
    return body[at:].split("\n", 1)[0].strip()[:80]


def _bind(clause: str, namespace: str, exports: list[str] | None, path: str, target: str) -> str:
    """The statement that gives an import clause's local names from ``namespace`` (the bundled module's
    object, or a vendored module's namespace); checks the names against a bundled module's exports."""
    clause = clause.strip()
    statements: list[str] = []
    default, _, rest = clause.partition(",") if not clause.startswith(("{", "*")) else ("", "", clause)
    if default.strip():
        if exports is not None:  # a bundled module has no default export (see _split_module)
            raise BundleError(f"{path}: imports the default export, which {target} does not have")
        statements.append(f"const {default.strip()} = {namespace}.default;")
    rest = rest.strip()
    if rest.startswith("*"):
        star, name = _aliased(path, rest)
        if star != "*":
            raise BundleError(f"{path}: cannot read the import clause {clause!r}")
        statements.append(f"const {name} = {namespace};")
    elif rest.startswith("{"):
        offered = None if exports is None else {public.split(":")[0] for public in exports}  # None: a vendored module
        pairs = []
        for item in filter(None, (part.strip() for part in rest.strip("{} \n").split(","))):
            public, local = _aliased(path, item)
            if offered is not None and public not in offered:
                raise BundleError(f"{path}: imports {public!r}, which {target} does not export")
            pairs.append(f"{public}: {local}" if local != public else public)
        statements.append(f"const {{ {', '.join(pairs)} }} = {namespace};")
    elif rest:
        raise BundleError(f"{path}: cannot read the import clause {clause!r}")
    return "\n".join(statements) + "\n"


def _aliased(path: str, item: str) -> tuple[str, str]:
    """``a`` or ``a as b`` (over lines too) of an import or export list, as (a, b): ``b`` is ``a`` when not renamed;
    ``*`` may stand for ``a``."""
    names = re.split(r"\s+as\s+", item.strip())
    if len(names) > 2 or not _NAME.fullmatch(names[-1]) or not (_NAME.fullmatch(names[0]) or names[0] == "*"):
        raise BundleError(f"{path}: cannot read {item.strip()!r} in an import or export")
    return names[0], names[-1]


def _relative(path: str, home: PurePosixPath) -> str:
    """``path`` (under the static folder) as a specifier from a module in folder ``home``."""
    up = "../" * len(home.parts)
    return (up or "./") + path


def _js_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def page_bundles(static_dir: Path, entry: str = "js/main.js", first: str = "js/connect.js"
                 ) -> dict[str | None, tuple[str, str, list[str]]]:
    """Return, for each page with a module of its own (by its page name) and for every other page (None),
    its bundle: (its path under ``static_dir``, ``js/bundle/<page>.js`` or ``js/bundle/main.js``, its text,
    the vendored modules it imports, for the head to preload). ``first`` runs first: the live connection
    opens before the panels' modules run. Raises BundleError as page_bundle does."""
    bundles: dict[str | None, tuple[str, str, list[str]]] = {}
    read: dict[str, tuple[str, list[tuple[str | None, str]], list[str]]] = {}
    pages: list[str | None] = [None] + sorted(file.stem for file in (static_dir.resolve() / "js" / "pages").glob("*.js"))
    for page in pages:
        entries = [first, entry] + ([f"js/pages/{page}.js"] if page else [])
        at = f"js/bundle/{page or 'main'}.js"
        bundles[page] = (at, *page_bundle(static_dir, entries, at, imported=entries[2:], _read=read))
    return bundles
