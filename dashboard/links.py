"""Links out: ``--task-link 'Logs=https://logs.example/search?q={uuid}'`` and ``--worker-link``.

A link is a label and an http(s) URL template. Its placeholders are filled with the task's or the
worker's values, each URL-encoded (a hostile task name cannot add a query parameter or change the
host); a value that is unknown leaves the link out rather than pointing somewhere wrong.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

#: Placeholders each kind of link may use; times are epoch milliseconds.
TASK_PLACEHOLDERS = ("uuid", "name", "hostname", "queue", "root_id", "started", "finished")
WORKER_PLACEHOLDERS = ("hostname",)


class LinkError(ValueError):
    """A link template the dashboard cannot use; the message names the flag."""


@dataclass(frozen=True)
class Link:
    label: str
    template: str

    def render(self, values: dict[str, Any]) -> dict[str, str] | None:
        """The link for these values, or None when a placeholder it uses has no value."""
        filled: dict[str, str] = {}
        for _, field, _, _ in string.Formatter().parse(self.template):
            if field:
                value = values.get(field)
                if value is None or value == "":
                    return None
                filled[field] = quote(str(value), safe="")
        return {"label": self.label, "url": self.template.format(**filled)}


def parse_link(raw: str, flag: str, placeholders: tuple[str, ...]) -> Link:
    """``LABEL=URL``: an http or https URL whose placeholders are among ``placeholders``."""
    label, sep, template = raw.partition("=")
    label, template = label.strip(), template.strip()
    if not sep or not label or not template:
        raise LinkError(f"--{flag}: expected LABEL=URL, such as 'Logs=https://logs.example/search?q={{uuid}}', "
                        f"got {raw!r}")
    if urlsplit(template).scheme.lower() not in ("http", "https") or not urlsplit(template).netloc:
        raise LinkError(f"--{flag} {label}: only http:// and https:// URLs are accepted, got {template!r}")
    if "{" in urlsplit(template).netloc:
        raise LinkError(f"--{flag} {label}: a placeholder may not stand in the host of {template!r}")
    try:
        parts = [(field, spec, conversion) for _, field, spec, conversion in string.Formatter().parse(template)
                 if field is not None]
    except ValueError as exc:
        raise LinkError(f"--{flag} {label}: {exc} in {template!r} (write a literal brace as {{{{ or }}}})") from None
    for field, spec, conversion in parts:
        if field not in placeholders or spec or conversion:
            raise LinkError(f"--{flag} {label}: unknown placeholder {{{field}}}; it takes "
                            f"{', '.join('{' + p + '}' for p in placeholders)}")
    return Link(label, template)


def task_links(links: tuple[Link, ...], task: dict[str, Any]) -> list[dict[str, str]]:
    """The task page's buttons for this task (its JSON shape)."""
    if not links:
        return []
    finished = next((task.get(k) for k in ("succeeded", "failed", "revoked", "rejected") if task.get(k)), None)
    values = {"uuid": task.get("uuid"), "name": task.get("name"), "hostname": task.get("worker"),
              "queue": task.get("queue"), "root_id": task.get("root_id"),
              "started": _millis(task.get("started")), "finished": _millis(finished)}
    return [rendered for link in links if (rendered := link.render(values)) is not None]


def worker_links(links: tuple[Link, ...], hostname: str) -> list[dict[str, str]]:
    """The worker page's buttons for this worker."""
    return [rendered for link in links if (rendered := link.render({"hostname": hostname})) is not None]


def _millis(seconds: Any) -> int | None:
    return int(round(seconds * 1000)) if isinstance(seconds, (int, float)) else None
