"""Alert rules (``--alerts FILE``, TOML) and the engine that checks them on a timer, never per event.

A rule names a kind of trouble and its limits; ``AlertEngine.check(now, inputs)`` looks at what the
model reports (``Cluster.rule_inputs``) and returns what fired and what resolved since the last
check. An alert is one rule about one subject (a worker, a queue, a task type, a task): it fires
once its condition has held for the rule's ``for`` seconds, and resolves by itself when the
condition ends. Silences are kept here too: a silenced alert still shows, but is not delivered.

Pure: no I/O, and the clock is the ``now`` the caller passes (tests inject it).
"""
from __future__ import annotations

import fnmatch
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote

from .stats import FAILED, SUCCEEDED
from .tomlfile import read_toml

#: Alerts kept in memory for the page, most recent last (the store keeps them all).
HISTORY_KEPT = 500
SEVERITIES = ("warning", "critical")


class RuleError(ValueError):
    """An alert file the dashboard cannot use; the message names the rule and the field."""


@dataclass(frozen=True)
class Rule:
    """One alert rule; which limits apply depends on its ``kind`` (see ``KINDS``)."""

    name: str
    kind: str
    severity: str = "warning"
    for_seconds: float = 0.0  # how long the condition must hold before the alert fires
    task: str = "*"  # task name or glob, for the task kinds
    entry: str = "*"  # periodic schedule entry name or glob, for the periodic kinds
    queue: str = "*"  # queue name or glob, for the queue kinds
    above: float = 0.0  # queue-depth: messages; failure-rate: percent
    seconds: float = 0.0  # queue-wait: age; task-runtime: running time; no-success: time without one
    window: float = 300.0  # failure-rate: the window, in seconds
    min_count: int = 10  # failure-rate: finished runs in the window needed to judge

    def describe(self) -> dict[str, Any]:
        """Return the rule as the API lists it."""
        fields_ = {"name": self.name, "kind": self.kind, "severity": self.severity, "for": self.for_seconds}
        for key in KINDS[self.kind][1]:
            fields_[key] = getattr(self, _ATTRIBUTES.get(key, key))
        return fields_


#: kind -> (what it watches, the fields it takes besides name, kind, severity and for)
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "worker-lost": ("a worker stopped sending heartbeats without shutting down", ()),
    "queue-depth": ("a queue holds more than `above` messages for `for` seconds", ("queue", "above")),
    "queue-wait": ("the oldest message waiting in a queue was sent more than `seconds` ago", ("queue", "seconds")),
    "failure-rate": ("more than `above` % of a task type's runs failed over `window` seconds, "
                     "once at least `min_count` finished", ("task", "above", "window", "min_count")),
    "task-runtime": ("a task has been running for more than `seconds` (stuck), while it still runs",
                     ("task", "seconds")),
    "no-success": ("no run of a task type succeeded for `seconds`", ("task", "seconds")),
    "event-stream": ("the event stream is cut, or silent for `seconds` while workers are online", ("seconds",)),
    "periodic-missed": ("a periodic task's run did not come within its grace (one alert when beat looks stopped)",
                        ("entry",)),
    "periodic-failed": ("a periodic task's last run failed", ("entry",)),
}
#: Rules the dashboard adds when ``--app`` has a beat schedule and the alert file has no rule of their kind.
PERIODIC_DEFAULTS = (Rule("periodic-missed", "periodic-missed"), Rule("periodic-failed", "periodic-failed"))
#: File keys whose attribute has another name.
_ATTRIBUTES = {"for": "for_seconds"}
#: Fields a rule of a kind must give (the others have defaults).
_REQUIRED = {"queue-depth": ("above",), "queue-wait": ("seconds",), "failure-rate": ("above",),
             "task-runtime": ("seconds",), "no-success": ("task", "seconds"), "event-stream": ("seconds",)}


@dataclass(frozen=True)
class AlertFile:
    """The rules and where their alerts go besides the page."""

    rules: tuple[Rule, ...] = ()
    webhooks: tuple[str, ...] = ()  # JSON documents, like --webhook
    slack: tuple[str, ...] = ()  # Slack incoming-webhook URLs


def load_alert_file(path: str) -> AlertFile:
    """Read and check an alert file; raise RuleError naming what is wrong."""
    return parse_alert_file(read_toml(path, "alerts", RuleError), path)


def parse_alert_file(data: dict[str, Any], path: str = "alerts") -> AlertFile:
    unknown = set(data) - {"rule", "notify"}
    if unknown:
        raise RuleError(f"{path}: unknown section {sorted(unknown)[0]!r} (expected [[rule]] and [notify])")
    rules: list[Rule] = []
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise RuleError(f"{path}: rules are [[rule]] tables")
    for index, raw in enumerate(raw_rules, 1):
        rules.append(_parse_rule(raw, f"{path}: rule {index}"))
    names = [rule.name for rule in rules]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate:
        raise RuleError(f"{path}: two rules are named {duplicate!r}; names must differ")
    notify = data.get("notify", {})
    if not isinstance(notify, dict) or set(notify) - {"webhooks", "slack"}:
        raise RuleError(f"{path}: [notify] takes webhooks = [...] and slack = [...]")
    urls = {}
    for key in ("webhooks", "slack"):
        value = notify.get(key, [])
        if not isinstance(value, list) or not all(isinstance(u, str) and u.startswith(("http://", "https://"))
                                                  for u in value):
            raise RuleError(f"{path}: [notify] {key} must be a list of http:// or https:// URLs")
        urls[key] = tuple(value)
    return AlertFile(tuple(rules), urls["webhooks"], urls["slack"])


def _parse_rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: expected a table")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise RuleError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    allowed = {"name", "kind", "severity", "for", *KINDS[kind][1]}
    extra = set(raw) - allowed
    if extra:
        raise RuleError(f"{where} ({kind}): unknown field {sorted(extra)[0]!r}; it takes {', '.join(sorted(allowed))}")
    missing = [key for key in _REQUIRED.get(kind, ()) if key not in raw]
    if missing:
        raise RuleError(f"{where} ({kind}): {missing[0]} is required")
    values: dict[str, Any] = {"kind": kind}
    name = raw.get("name", kind)
    if not isinstance(name, str) or not name.strip():
        raise RuleError(f"{where}: name must be text")
    values["name"] = name.strip()
    severity = raw.get("severity", "warning")
    if severity not in SEVERITIES:
        raise RuleError(f"{where}: severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    values["severity"] = severity
    for key, value in raw.items():
        if key in ("name", "kind", "severity"):
            continue
        attribute = _ATTRIBUTES.get(str(key), str(key))
        if key in ("task", "queue", "entry"):
            if not isinstance(value, str) or not value:
                raise RuleError(f"{where}: {key} must be a name or a glob such as \"app.*\"")
        elif key == "min_count":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise RuleError(f"{where}: min_count must be a whole number of at least 1")
        elif not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise RuleError(f"{where}: {key} must be a number of at least 0, got {value!r}")
        values[attribute] = value
    if kind == "failure-rate" and not 0 <= values["above"] < 100:
        raise RuleError(f"{where}: above is a percentage, from 0 to under 100")
    if kind == "failure-rate" and values.get("window", 300.0) <= 0:
        raise RuleError(f"{where}: window must be more than 0 seconds")
    return Rule(**values)


@dataclass
class Alert:
    """One rule about one subject, from when it fired to when it resolved."""

    id: int
    rule: str
    kind: str
    severity: str
    subject: str
    summary: str
    started: float
    value: float | None = None
    resolved: float | None = None
    silenced_until: float | None = None
    link: str | None = None  # the page about the subject

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "rule": self.rule, "kind": self.kind, "severity": self.severity,
                "subject": self.subject, "summary": self.summary, "started": self.started, "value": self.value,
                "resolved": self.resolved, "silenced_until": self.silenced_until, "link": self.link}


@dataclass
class Silence:
    rule: str
    subject: str | None  # None: every subject of the rule
    until: float
    who: str
    at: float

    def covers(self, alert: Alert, now: float) -> bool:
        return self.until > now and self.rule == alert.rule and self.subject in (None, alert.subject)

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "subject": self.subject, "until": self.until, "who": self.who, "at": self.at}


Finding = tuple[str, str, float | None, str | None]  # (subject, summary, value, link)


@dataclass
class AlertEngine:
    """Checks the rules against the model's report; see the module docstring."""

    rules: tuple[Rule, ...]
    started_at: float  # when the dashboard started: "no success" counts from here for a type never seen
    next_id: int = 1
    active: dict[tuple[str, str], Alert] = field(default_factory=dict)
    history: deque[Alert] = field(default_factory=lambda: deque(maxlen=HISTORY_KEPT))
    silences: list[Silence] = field(default_factory=list)
    _since: dict[tuple[str, str], float] = field(default_factory=dict)  # condition true since, not fired yet
    _windows: dict[str, deque[tuple[float, dict[str, tuple[int, int]]]]] = field(default_factory=dict)
    _cuts: tuple[int, float] = (0, 0.0)  # the stream cuts seen, and when the count last rose
    base: str = ""  # --url-prefix: the alerts' links are paths under it

    def check(self, now: float, inputs: dict[str, Any]) -> tuple[list[Alert], list[Alert]]:
        """Check every rule at ``now``; return the alerts that fired and those that resolved."""
        fired: list[Alert] = []
        resolved: list[Alert] = []
        cuts = inputs.get("stream", {}).get("cuts", 0)
        if cuts > self._cuts[0]:
            self._cuts = (cuts, now)
        for rule in self.rules:
            findings = {f[0]: f for f in CHECKS[rule.kind](self, rule, now, inputs)}
            for subject, summary, value, link in findings.values():
                key = (rule.name, subject)
                alert = self.active.get(key)
                if alert is not None:
                    alert.summary, alert.value = summary, value
                    continue
                since = self._since.setdefault(key, now)
                if now - since >= rule.for_seconds:
                    del self._since[key]
                    alert = Alert(self.next_id, rule.name, rule.kind, rule.severity, subject, summary, now, value,
                                  link=self.base + link if link else link)
                    self.next_id += 1
                    alert.silenced_until = self._silenced_until(alert, now)
                    self.active[key] = alert
                    self.history.append(alert)
                    fired.append(alert)
            for key in [k for k in self._since if k[0] == rule.name and k[1] not in findings]:
                del self._since[key]
            for key in [k for k in self.active if k[0] == rule.name and k[1] not in findings]:
                alert = self.active.pop(key)
                alert.resolved = now
                resolved.append(alert)
        for alert in self.active.values():
            alert.silenced_until = self._silenced_until(alert, now)
        return fired, resolved

    def silence(self, rule: str, subject: str | None, until: float, who: str, now: float) -> Silence:
        """Silence a rule (one subject, or all when None) until ``until``; an earlier silence of it ends."""
        if rule not in {r.name for r in self.rules}:
            raise RuleError(f"no rule named {rule!r}")
        self.silences = [s for s in self.silences if s.until > now and (s.rule, s.subject) != (rule, subject)]
        silence = Silence(rule, subject, until, who, now)
        if until > now:
            self.silences.append(silence)
        for alert in self.active.values():
            alert.silenced_until = self._silenced_until(alert, now)
        return silence

    def is_silenced(self, alert: Alert, now: float) -> bool:
        return alert.silenced_until is not None and alert.silenced_until > now

    def silenced_until(self, alert: Alert, now: float) -> float | None:
        """Until when a silence covers ``alert`` (None: it is not silenced)."""
        return self._silenced_until(alert, now)

    def _silenced_until(self, alert: Alert, now: float) -> float | None:
        until = [s.until for s in self.silences if s.covers(alert, now)]
        return max(until) if until else None

    # -- the checks, one per kind -----------------------------------------------------------------
    def _worker_lost(self, rule: Rule, now: float, inputs: dict[str, Any]) -> list[Finding]:
        return [(hostname, f"worker {hostname} lost: no heartbeat since {_ago(now, last)}", None,
                 _link("workers", hostname))
                for hostname, status, last in inputs.get("workers", []) if status == "lost"]

    def _queue_depth(self, rule: Rule, now: float, inputs: dict[str, Any]) -> list[Finding]:
        return [(name, f"queue {name} holds {depth} messages (limit {rule.above:g})", float(depth), _link("queues", name))
                for name, (depth, _) in inputs.get("queues", {}).items()
                if depth is not None and depth > rule.above and _matches(rule.queue, name)]

    def _queue_wait(self, rule: Rule, now: float, inputs: dict[str, Any]) -> list[Finding]:
        return [(name, f"the oldest message in queue {name} was sent {_ago(now, oldest)}", now - oldest,
                 _link("queues", name))
                for name, (_, oldest) in inputs.get("queues", {}).items()
                if oldest is not None and now - oldest > rule.seconds and _matches(rule.queue, name)]

    def _failure_rate(self, rule: Rule, now: float, inputs: dict[str, Any]) -> list[Finding]:
        counts: dict[str, list[int]] = inputs.get("counts", {})
        current = {name: (c[SUCCEEDED], c[FAILED]) for name, c in counts.items() if _matches(rule.task, name)}
        window = self._windows.setdefault(rule.name, deque())
        window.append((now, current))
        while len(window) > 1 and window[1][0] <= now - rule.window:
            window.popleft()  # keep one snapshot at or before the window's start
        then = window[0][1]
        findings: list[Finding] = []
        for name, (succeeded, failed) in current.items():
            before = then.get(name, (0, 0)) if window[0][0] < now else (0, 0)
            failures, finished = failed - before[1], (succeeded + failed) - sum(before)
            if finished >= rule.min_count and failures * 100 > rule.above * finished:
                rate = 100 * failures / finished
                findings.append((name, f"{rate:.1f} % of {name} failed ({failures} of {finished}) over "
                                       f"{_span(rule.window)} (limit {rule.above:g} %)", rate,
                                 _link("task-types", name)))
        return findings

    def _task_runtime(self, rule: Rule, now: float, inputs: dict[str, Any]) -> list[Finding]:
        return [(uuid, f"task {name or uuid} has been running on {worker} for {_span(now - started)} "
                       f"(limit {_span(rule.seconds)})", now - started, _link("tasks", uuid))
                for uuid, name, worker, started in inputs.get("started", [])
                if now - started > rule.seconds and _matches(rule.task, name or "")]

    def _no_success(self, rule: Rule, now: float, inputs: dict[str, Any]) -> list[Finding]:
        last_success: dict[str, float] = inputs.get("last_success", {})
        names = {n for n in inputs.get("counts", {}) if _matches(rule.task, n)}
        if not any(ch in rule.task for ch in "*?["):
            names.add(rule.task)  # a named type never seen at all is the worst case
        findings: list[Finding] = []
        for name in names:
            last = last_success.get(name)
            if now - (last if last is not None else self.started_at) > rule.seconds:
                since = f"since {_ago(now, last)}" if last is not None else "since the dashboard started"
                findings.append((name, f"no {name} succeeded {since} (limit {_span(rule.seconds)})", None,
                                 _link("task-types", name)))
        return findings

    def _event_stream(self, rule: Rule, now: float, inputs: dict[str, Any]) -> list[Finding]:
        stream = inputs.get("stream", {})
        if not stream.get("connected", True):
            return [("", f"the event stream is disconnected: {stream.get('error') or 'reconnecting'}", None, None)]
        if self._cuts[0] and now - self._cuts[1] < max(rule.seconds, 1.0):
            return [("", "the broker cut the event stream: events were lost", None, None)]
        online = any(status == "online" for _, status, _ in inputs.get("workers", []))
        silent = stream.get("silent_for", 0.0)
        if online and silent > rule.seconds:
            return [("", f"no event for {_span(silent)} while workers are online", silent, None)]
        return []

    def _periodic_missed(self, rule: Rule, now: float, inputs: dict[str, Any]) -> list[Finding]:
        periodic = inputs.get("periodic") or {}
        entries = [e for e in periodic.get("entries", []) if _matches(rule.entry, e["name"]) and e["error"] is None]
        if periodic.get("beat_stopped") and rule.entry == "*":
            last = periodic.get("last_run_at")
            since = f"no periodic task has run since {_ago(now, last)}" if last else "no periodic task has run"
            return [("beat", f"beat looks stopped: {since}", None, "/periodic")]
        return [(e["name"], f"periodic task {e['name']} ({e['task']}, {e['schedule']}) missed "
                            f"{e['missed']} run{'s' * (e['missed'] != 1)}", float(e["missed"]), "/periodic")
                for e in entries if e["status"] == "missed"]

    def _periodic_failed(self, rule: Rule, now: float, inputs: dict[str, Any]) -> list[Finding]:
        entries = (inputs.get("periodic") or {}).get("entries", [])
        return [(e["name"], f"periodic task {e['name']} ({e['task']}) failed its last run",
                 None, _link("tasks", e["last_run"]["uuid"]))
                for e in entries if e["status"] == "failed" and _matches(rule.entry, e["name"])]


CHECKS: dict[str, Callable[[AlertEngine, Rule, float, dict[str, Any]], list[Finding]]] = {
    "worker-lost": AlertEngine._worker_lost, "queue-depth": AlertEngine._queue_depth,
    "queue-wait": AlertEngine._queue_wait, "failure-rate": AlertEngine._failure_rate,
    "task-runtime": AlertEngine._task_runtime, "no-success": AlertEngine._no_success,
    "event-stream": AlertEngine._event_stream, "periodic-missed": AlertEngine._periodic_missed,
    "periodic-failed": AlertEngine._periodic_failed,
}


def _link(page: str, name: str) -> str:
    """The dashboard's page about a subject, its name escaped for a URL path."""
    return f"/{page}/{quote(name, safe='@')}"


def _matches(pattern: str, name: str) -> bool:
    return pattern == "*" or pattern == name or fnmatch.fnmatchcase(name, pattern)


def _span(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _ago(now: float, then: float | None) -> str:
    return "never" if then is None else f"{_span(now - then)} ago"
