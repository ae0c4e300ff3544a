"""Runs the alert rules on a timer and tells everyone: the store, the pages, the webhooks and Slack.

``AlertService.check`` reads the model's report (``Cluster.rule_inputs``) and the event stream's
state, lets ``rules.AlertEngine`` decide what fired and resolved, stores each change, pushes the
active alerts to the live pages (``alerts`` message) and delivers the unsilenced ones. It picks up
the alerts still open when the dashboard last stopped, so a restart neither forgets nor repeats them.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from .alerts import WebhookNotifier, slack_text
from .rules import PERIODIC_DEFAULTS, Alert, AlertEngine, AlertFile, Silence, load_alert_file

if TYPE_CHECKING:
    from . import Dashboard

log = logging.getLogger(__name__)


class AlertService:
    """The alert rules of one dashboard; see the module docstring."""

    def __init__(self, dashboard: "Dashboard", clock: Callable[[], float] = time.time) -> None:
        settings = dashboard.settings
        self.dashboard = dashboard
        self.clock = clock
        self.file = load_alert_file(settings.alerts_file) if settings.alerts_file else AlertFile()
        rules = self.file.rules
        if dashboard.periodic.configured:  # a beat schedule is watched: its misses and failures alert
            kinds = {rule.kind for rule in rules}
            names = {rule.name for rule in rules}
            rules += tuple(r for r in PERIODIC_DEFAULTS if r.kind not in kinds and r.name not in names)
        self.engine = AlertEngine(rules, started_at=clock(), base=settings.url_prefix)
        # JSON documents go through the dashboard's own notifier (one delivery loop for every webhook URL).
        self.json_urls = tuple(dict.fromkeys(settings.webhooks + self.file.webhooks))
        self.webhooks = dashboard.webhooks
        self.webhooks.urls = tuple(dict.fromkeys(self.webhooks.urls + self.json_urls))
        self.slack = WebhookNotifier(self.file.slack, sleep=dashboard.socketio.sleep, render=slack_text,
                                     count_internal_error=dashboard.collector.count_internal_error)
        self.stopping = False
        self.checks = 0

    def start(self) -> None:
        """Pick up what was open and silenced at the last stop; start checking and delivering."""
        if not self.engine.rules:
            return
        self._load(write=self.dashboard.leads)
        dashboard = self.dashboard
        if self.slack.urls:
            dashboard.socketio.start_background_task(self.slack.run)
        dashboard.socketio.start_background_task(self.run)

    def _load(self, write: bool) -> None:
        """Take the open alerts, the next alert id and the silences from the store (what the leader wrote);
        ``write``: store alerts whose rule is gone from the file as resolved."""
        dashboard = self.dashboard
        store, run = dashboard.store, dashboard.run_blocking
        engine = self.engine
        engine.next_id = run(store.last_alert_id) + 1
        names = {rule.name for rule in engine.rules}
        now = self.clock()
        ended = []
        engine.active.clear()
        for row in run(store.open_alerts):
            alert = Alert(**row)
            if alert.rule in names:
                engine.active[(alert.rule, alert.subject)] = alert
                if all(seen.id != alert.id for seen in engine.history):
                    engine.history.append(alert)
            else:  # its rule is gone from the file
                alert.resolved = now
                ended.append(alert.to_json())
        if ended and write:
            run(store.save_alerts, ended)
        engine.silences = [Silence(**row) for row in run(store.silences, now) if row["rule"] in names]

    def resume(self) -> None:
        """This process leads now: go on from the alerts the last leader stored, so none is raised twice."""
        if not self.engine.rules:
            return
        try:
            self._load(write=True)
        except Exception as exc:  # its own view of the alerts goes on meanwhile
            self.dashboard.history.report_failure(exc, "reading the open alerts from")
            return
        self.push()

    def run(self) -> None:
        while not self.stopping:
            self.dashboard.socketio.sleep(self.dashboard.settings.alert_interval_seconds)
            if self.stopping:
                break
            try:
                self.check()
            except Exception:  # one failed check must not end the alerts
                self.dashboard.collector.count_internal_error()
                log.exception("checking the alert rules failed")

    def stop(self) -> None:
        self.stopping = True
        self.slack.stop()

    def check(self) -> tuple[list[Alert], list[Alert]]:
        """Check every rule now; store, push and deliver what changed. Return what fired and resolved."""
        dashboard = self.dashboard
        collector = dashboard.collector
        inputs = dashboard.cluster.rule_inputs()
        inputs["stream"] = {"connected": collector.broker.connected, "error": collector.broker.error,
                            "cuts": collector.broker.stream_cuts,
                            "silent_for": time.monotonic() - collector.last_event_at}
        if dashboard.periodic.configured:
            inputs["periodic"] = dashboard.periodic.report()
        now = self.clock()
        if dashboard.leadership is not None:  # another process may have set a silence: the store has them all
            names = {rule.name for rule in self.engine.rules}
            try:
                self.engine.silences = [Silence(**row) for row in dashboard.run_blocking(dashboard.store.silences, now)
                                        if row["rule"] in names]
            except Exception as exc:  # the silences known so far hold meanwhile
                dashboard.history.report_failure(exc, "reading the silences from")
        before = [(alert.id, alert.summary, alert.silenced_until) for alert in self.engine.active.values()]
        fired, resolved = self.engine.check(now, inputs)
        self.checks += 1
        if not dashboard.broadcasts:
            self.push()  # a follower's snapshots: the alerts the leader stored by now
        elif not fired and not resolved and before != [(a.id, a.summary, a.silenced_until)
                                                       for a in self.engine.active.values()]:
            self.push()  # a summary moved on ("running for 12 min"), or another process set a silence
        if fired or resolved:
            if dashboard.leads:  # a follower shows its alerts; the leader stores and delivers them
                self._save(fired + resolved)
            for alert in fired:
                log.warning("alert %s: %s", alert.rule, alert.summary)
            for alert in resolved:
                log.info("alert %s resolved: %s", alert.rule, alert.subject or alert.rule)
            for alert in fired + resolved:
                if dashboard.leads and not self.engine.is_silenced(alert, now):
                    self._deliver(alert, now)
            if dashboard.broadcasts:
                self.push()
        return fired, resolved

    def silence(self, rule: str, subject: str | None, minutes: float, who: str) -> Silence:
        """Silence a rule's alerts (about one subject, or all) for ``minutes``; 0 lifts a silence."""
        now = self.clock()
        silence = self.engine.silence(rule, subject, now + minutes * 60, who, now)
        self.dashboard.run_blocking(self.dashboard.store.save_silence, silence.to_json())
        self.push()
        return silence

    def push(self) -> None:
        dashboard = self.dashboard
        if dashboard.broadcasts:
            dashboard.hub.emit_alerts(self.active())
            return
        # A follower with a message queue: the leader's alerts reach its pages; its snapshots carry the stored ones.
        try:
            stored = [Alert(**row) for row in dashboard.run_blocking(dashboard.store.open_alerts)]
        except Exception as exc:
            dashboard.history.report_failure(exc, "reading the open alerts from")
            return
        now = self.clock()
        for alert in stored:
            alert.silenced_until = self.engine.silenced_until(alert, now)
        dashboard.hub.active_alerts = [alert.to_json() for alert in stored]

    def active(self) -> list[dict[str, Any]]:
        return [alert.to_json() for alert in self.engine.active.values()]

    def to_json(self) -> dict[str, Any]:
        """The body of ``GET /api/alerts`` without the stored history."""
        now = self.clock()
        return {"active": self.active(), "rules": [rule.describe() for rule in self.engine.rules],
                "silences": [s.to_json() for s in self.engine.silences if s.until > now],
                "notify": {"webhooks": len(self.json_urls), "slack": len(self.slack.urls)}}

    def _save(self, alerts: list[Alert]) -> None:
        try:
            self.dashboard.run_blocking(self.dashboard.store.save_alerts, [a.to_json() for a in alerts])
        except Exception as exc:  # the alert still shows and is delivered
            self.dashboard.history.report_failure(exc, "storing alerts in")

    def _deliver(self, alert: Alert, now: float) -> None:
        document = {"event": "alert-resolved" if alert.resolved is not None else "alert-firing", "time": now,
                    **alert.to_json()}
        if self.json_urls:
            self.webhooks.notify(document, self.json_urls)
        if self.slack.urls:
            self.slack.notify(document)
