"""The pages' JavaScript modules, listed for ``<link rel="modulepreload">``.

A browser learns an ES module's imports only once it has fetched and parsed it, so a page
whose modules import each other five levels deep waits five round trips before it runs; on a
dashboard busy ingesting events each round trip is slow. The page head lists every module
``main.js`` reaches, found here once by reading the static import statements, so the browser
fetches them all at once; a page with panels of its own (``js/pages/<page>.js``, which main.js
imports only on that page) also lists that module's. Pure code apart from reading the files; no Flask.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

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


def static_version(static_dir: Path) -> str:
    """Return a short hash of every file under ``static_dir`` (paths and contents): the part of the static
    URLs that changes with any file, so that browsers may keep them for a year and never use an old one."""
    digest = hashlib.sha256()
    root = static_dir.resolve()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(root)).encode() + b"\0")
        digest.update(file.read_bytes())
    return digest.hexdigest()[:12]
