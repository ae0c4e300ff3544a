"""A live monitoring dashboard for Celery: ``create_app`` builds it, ``Dashboard.start`` runs it."""
from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

from urllib.parse import quote

from flask import (Flask, Response, g, has_request_context, jsonify, redirect, render_template, request,
                   send_from_directory)
from flask_socketio import SocketIO
from werkzeug.middleware.proxy_fix import ProxyFix

from .access import LOCAL, Access
from .assets import BundleError, page_bundles, page_modules, static_version
from .alerting import AlertService
from .alerts import WebhookNotifier
from .auth import AuthFile, Principal
from .cluster import Cluster
from .control import TaskControl
from .inspector import WorkerInspector
from .leader import Leadership, lock_key
from .events import EventCollector
from . import jsonio
from .history import HOLD_UNFINISHED_SECONDS, HistoryWriter
from .hosts import HostGuard, HostPolicy
from .live import LiveHub, LiveNamespace
from .memory import MemoryReleaser
from .metrics import build_registry
from .prefix import PrefixMiddleware
from .periodic_service import PeriodicService
from .reconcile import Reconciler
from .sampler import QueueSampler, build_queue_book
from .settings import Settings
from .shapes import Alert
from .store import is_storage_failure, open_store

log = logging.getLogger(__name__)

T = TypeVar("T")
RunBlocking = Callable[..., Any]

#: Longest wait at shutdown for the receive loop to end before the last write, in seconds.
CLOSE_WAIT_SECONDS = 5.0
#: Paths anyone may reach: the login page, and the load balancers' check.
PUBLIC_PATHS = frozenset(("/login", "/healthcheck", "/api/ready"))
#: How long browsers keep a versioned static file (``/static/v/<version>/...``): its URL changes with it.
STATIC_MAX_AGE_SECONDS = 365 * 86400
#: The repository root, where templates/ and static/ live.
ROOT = Path(__file__).resolve().parent.parent
#: Sent with every response: no inline script or style, no framing, nothing from elsewhere.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; "
                           "frame-ancestors 'none'; form-action 'self'")


def run_inline(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``function`` here: blocking calls are fine in the threading async mode."""
    return function(*args, **kwargs)


class Dashboard:
    """The running parts of one dashboard: collector, live hub and Socket.IO server."""

    def __init__(self, settings: Settings, socketio: SocketIO, run_blocking: RunBlocking) -> None:
        self.settings = settings
        self.started = False  # the background loops run (``start``)
        self.access = Access(AuthFile(settings.auth_file) if settings.auth_file else None, settings.session_hours)
        if self.access.auth is not None:
            self.access.auth.on_change = lambda change: self.record(
                "auth-file-changed", settings.auth_file, change, "read again",
                who=Principal("auth-file", "admin", "file"))
        self.run_blocking = run_blocking
        self.socketio = socketio
        self.cluster = Cluster.build(settings, build_queue_book(settings))  # the model: read and written only here
        self.collector = EventCollector(settings, sleep=socketio.sleep, cluster=self.cluster,
                                        on_alert=self.on_alert)
        self.hub = LiveHub(socketio, self.collector, settings, self.access)
        self.inspector = WorkerInspector(self.collector)
        self.sampler = QueueSampler(self.collector, self.on_alert, run_blocking)
        self.store = open_store(settings.db, settings.max_tasks_stored, settings.max_age_seconds,
                                settings.keep_failed_seconds)
        self.history = HistoryWriter(self.collector, self.store, run_blocking)
        self.leadership: Leadership | None = None
        if settings.leader_lock:  # several processes share the history: one of them writes it
            self.leadership = Leadership(settings.leader_lock, lock_key(settings.db), settings.leader_ttl_seconds,
                                         socketio.sleep, self.on_leadership, self.collector.count_internal_error)
            self.history.shared = True
            self.history.leads = lambda: self.leads
            self.history.replay_seconds = settings.leader_ttl_seconds * 4 / 3 + HOLD_UNFINISHED_SECONDS + 3
        self.webhooks = WebhookNotifier(settings.webhooks, sleep=socketio.sleep,
                                        count_internal_error=self.collector.count_internal_error)
        self.control = TaskControl(self.collector.app, settings.broker_url, self.collector.connection_errors,
                                   self.collector.count_internal_error)
        self.metrics_registry = build_registry(self)
        self.periodic = PeriodicService(self)
        self.reconciler = Reconciler(self)
        self.collector.on_gap = self.reconciler.after_gap
        self.alerting = AlertService(self)
        self.memory = MemoryReleaser(socketio.sleep, run_blocking,
                                     count_internal_error=self.collector.count_internal_error)

    def run_read(self, function: Callable[..., T], *args: Any) -> T:
        """Run a short read of the history (a page's: one task, the unfiltered list): here, where the store
        reads a local file (``READS_INLINE``), else away from the event loop like any blocking call."""
        if self.store.READS_INLINE:
            return function(*args)
        return self.run_blocking(function, *args)

    def record(self, action: str, target: str | None, params: Any, outcome: str, replies: Any = None,
               who: Principal | None = None) -> None:
        """Add an entry to the audit log: who (the request's principal unless given), from where, what,
        on what, with what, and how it went. A storage failure is logged; it never fails the action."""
        identity = g.get("identity") if has_request_context() else None
        principal = who or (identity.principal if identity else LOCAL)
        entry = {"at": time.time(), "who": principal.name, "role": principal.role,
                 "address": request.remote_addr if has_request_context() else None, "action": action,
                 "target": target, "params": params, "outcome": outcome, "replies": replies}
        try:
            self.run_blocking(self.store.audit, entry)
        except Exception as exc:  # the action itself already happened: never fail it for its record
            if not is_storage_failure(exc):
                self.collector.count_internal_error()
                log.exception("audit entry %s on %s by %s not stored", action, target, principal.name)
                return
            log.error("audit entry %s on %s by %s not stored: %s: %s", action, target, principal.name,
                      type(exc).__name__, exc)

    @property
    def broadcasts(self) -> bool:
        """Whether this process sends alerts to the pages: its own, or with ``--message-queue`` the leader's
        to every process's pages (a follower then sends none, and its snapshots carry the stored ones)."""
        return not self.settings.message_queue or self.leads

    @property
    def leads(self) -> bool:
        """Whether this process writes the history and notifies (always, without ``--leader-lock``)."""
        return self.leadership is None or self.leadership.leader

    def on_leadership(self, leading: bool, previous_renewal: float | None) -> None:
        """This process became the leader (``previous_renewal``: the last one's last renewal) or stopped being it."""
        if leading:
            self.history.promote(previous_renewal)
            self.alerting.resume()
        else:
            self.history.demote()

    def on_alert(self, alert: Alert) -> None:
        """Send a worker or queue alert to the webhooks (from the leader only) and to the pages."""
        if self.settings.webhooks and self.leads:
            self.webhooks.notify(alert, self.settings.webhooks)  # the alert file's webhooks get rule alerts only
        if self.broadcasts:
            self.hub.alert(alert)

    def health(self) -> dict[str, Any]:
        """Return ``GET /api/health`` without the store's part: broker, events, errors, limits, live clients."""
        body = self.collector.health()
        body["limits"] = self.cluster.limits()
        body["live"] = {"clients": len(self.hub.clients), "dropped": self.hub.dropped_clients}
        body["sampler"] = self.sampler.health()
        body["leader"] = self.leads
        if self.leadership is not None:
            body["leadership"] = self.leadership.to_json()
        reconciler = self.reconciler
        body["reconciliation"] = {"backend": reconciler.backend_app is not None, "suspects": len(reconciler.suspects),
                                  "reconciled": reconciler.reconciled, "lost": reconciler.lost}
        return body

    def start(self) -> None:
        """Warm the state from the store, then start the background loops."""
        self.started = True
        self.history.warm()
        if self.leadership is not None:
            self.socketio.start_background_task(self.leadership.run)
        if self.store.check_pending:  # a large history after an unclean shutdown: checked while serving
            self.socketio.start_background_task(self._check_integrity)
        self.socketio.start_background_task(self.history.run)
        self.socketio.start_background_task(self.history.prune_loop)
        self.socketio.start_background_task(self.collector.run)
        self.socketio.start_background_task(self.collector.watch)
        self.socketio.start_background_task(self.inspector.run)
        self.socketio.start_background_task(self.sampler.run)
        self.socketio.start_background_task(self.hub.run)
        if self.webhooks.urls:  # --webhook's and the alert file's
            self.socketio.start_background_task(self.webhooks.run)
        self.periodic.start()
        self.socketio.start_background_task(self.reconciler.run)
        self.alerting.start()
        self.socketio.start_background_task(self.memory.run)

    def _check_integrity(self) -> None:
        """Run the integrity check that opening the store left pending; a failure is logged, never raised."""
        try:
            self.run_blocking(self.store.check_integrity)
        except Exception as exc:  # nothing else would see it: the task would end with it
            self.history.report_failure(exc, "checking the integrity of")

    def stop(self) -> None:
        """Ask every background loop to end."""
        self.collector.stop()
        self.hub.stop()
        self.inspector.stop()
        self.sampler.stop()
        self.history.stop()
        self.periodic.stop()
        self.reconciler.stop()
        self.alerting.stop()
        self.memory.stop()
        if self.leadership is not None:
            self.leadership.stop()

    def close(self) -> None:
        """After ``stop``: wait for the last event to be applied, write what is pending, close the store."""
        deadline = time.monotonic() + CLOSE_WAIT_SECONDS
        while self.started and not self.collector.finished and time.monotonic() < deadline:
            self.socketio.sleep(0.05)
        if self.history.close() and self.leads:
            log.info("task history written to %s", self.store.path)
        if self.leadership is not None:
            self.leadership.release()  # after the last write: the next leader starts from it
        self.store.close()
        self.webhooks.stop()


def _page_scripts(static_dir: Path) -> tuple[dict[str | None, dict[str, Any]], dict[str, bytes]]:
    """Each page's scripts, by its page name (None: the pages without a module of their own): ``bundle``, the
    path of its bundle, and ``preload``, the vendored modules it imports; or, when the modules cannot be
    bundled (logged, once), ``bundle`` None and ``preload``, every module it runs. And the bundles' code by
    their path."""
    try:
        built = page_bundles(static_dir)
    except BundleError as error:
        log.warning("the pages load their modules one by one: %s", error)
    except Exception:  # a fault of the bundler's own: the pages still work without it
        log.exception("the pages load their modules one by one: building their bundles failed")
    else:
        return ({page: {"bundle": at, "preload": vendored} for page, (at, _text, vendored) in built.items()},
                {at: text.encode() for at, text, _vendored in built.values()})
    return {page: {"bundle": None, "preload": modules} for page, modules in page_modules(static_dir).items()}, {}


def create_app(settings: Settings | None = None, run_blocking: RunBlocking = run_inline) -> Flask:
    """Build the Flask app, its Socket.IO server and the dashboard's parts; start nothing.

    ``run_blocking(function, *args)`` runs a call that blocks on the disk (SQLite) away from the
    event loop: under eventlet, ``run.py`` passes ``eventlet.tpool.execute`` (a native thread).
    """
    settings = settings or Settings()
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.json = jsonio.StrictJSONProvider(app)  # jsonify and the pages' bootstrap: no NaN, valid UTF-8
    hosts = HostPolicy.for_this_machine(settings.address, settings.allowed_hosts)
    # Only pages of the dashboard's own origin, under one of its own host names, may open the socket.
    # With --message-queue, what one process emits to every page goes through Redis (JSON) to every
    # process; everything else each process sends its own pages itself (``ignore_queue``, see live.py).
    queue = {"message_queue": settings.message_queue, "channel": "celery-dashboard-live:" + lock_key(settings.db)[-8:]} \
        if settings.message_queue else {}
    socketio = SocketIO(app, async_mode=settings.async_mode, logger=False, engineio_logger=False,
                        json=jsonio, ping_interval=settings.ping_interval_seconds, **queue,
                        ping_timeout=settings.ping_timeout_seconds,
                        cors_allowed_origins=lambda origin, environ: hosts.allows_origin(
                            origin, environ.get("HTTP_HOST")) or (origin or "").lower() in settings.allowed_origins)
    app.wsgi_app = HostGuard(app.wsgi_app, hosts, settings.allowed_origins)  # type: ignore[method-assign]  # outermost: Socket.IO too
    if settings.url_prefix:  # outside the host check and the proxy's headers, which it depends on
        app.wsgi_app = PrefixMiddleware(app.wsgi_app, settings.url_prefix)  # type: ignore[method-assign]
    if settings.behind_proxy:  # the client's address, scheme and path prefix from the proxy's X-Forwarded-*
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_prefix=1)  # type: ignore[method-assign]
    dashboard = Dashboard(settings, socketio, run_blocking)
    app.extensions["dashboard"] = dashboard
    socketio.on_namespace(LiveNamespace(dashboard.hub))

    from . import api, views
    app.jinja_env.filters["audit_time"] = lambda at: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))
    # JSON as text in an element (autoescaped there), not ``tojson``'s \u003c escapes meant for scripts.
    app.jinja_env.filters["json_text"] = lambda value: json.dumps(value, ensure_ascii=False, default=str)
    # Every page's links and its scripts' requests start with ``base``: the --url-prefix (or a proxy's prefix).
    # ``static``: where the pages load static files from, under a version that changes with any of them
    # (``/static/v/<version>/...``, kept by browsers for a year); ``/static/...`` serves them too, revalidated.
    # ``scripts_for(page)``: what a page's head loads: its bundle (``js/bundle/<page>.js``, every module it
    # runs in one file, built here at start-up) and the vendored modules the bundle imports, to preload;
    # or, when a module cannot be bundled, its modules one by one (``bundle`` None, every module preloaded).
    static_dir = Path(app.static_folder or "static")
    scripts, bundles = _page_scripts(static_dir)
    version = static_version(static_dir, *bundles.values())
    # Each bundle as is and, from the first request that accepts it, gzipped (182-232 KB, 52-66 KB
    # gzipped), with the ETag of those bytes.
    variants: dict[tuple[str, bool], tuple[bytes, str]] = {
        (at, False): (code, hashlib.sha256(code).hexdigest()[:20]) for at, code in bundles.items()}
    app.context_processor(lambda: {"base": request.script_root, "static": f"{request.script_root}/static/v/{version}",
                                   "scripts_for": lambda page: scripts.get(page, scripts[None])})

    @app.get("/static/v/<asked>/<path:filename>")
    def _versioned_static(asked: str, filename: str) -> Response:
        if filename in bundles:
            gzipped = request.accept_encodings["gzip"] > 0
            if (filename, gzipped) not in variants:
                packed = gzip.compress(bundles[filename], compresslevel=6, mtime=0)
                variants[filename, gzipped] = (packed, hashlib.sha256(packed).hexdigest()[:20])
            code, tag = variants[filename, gzipped]
            response = Response(code, mimetype="text/javascript")
            response.vary.add("Accept-Encoding")
            if gzipped:
                response.content_encoding = "gzip"
            response.set_etag(tag)
            response.cache_control.no_cache = True  # revalidated, unless asked under today's version (below)
            response.make_conditional(request)
        else:
            response = send_from_directory(static_dir, filename,
                                           max_age=STATIC_MAX_AGE_SECONDS if asked == version else None)
        if asked == version:  # an older page's version gets today's file, revalidated
            response.headers["Cache-Control"] = f"public, max-age={STATIC_MAX_AGE_SECONDS}, immutable"
        return response
    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)

    @app.before_request
    def _authenticate() -> Any:
        """Every page, API call and POST needs credentials when an auth file is configured (see access.py)."""
        if request.path.startswith("/static/") or request.path in PUBLIC_PATHS:
            return None
        if request.path == "/metrics" and dashboard.settings.metrics_public:
            return None
        identity = dashboard.access.identify(request.headers, request.cookies, request.remote_addr or "?")
        if identity is None and request.path == "/api/health" and request.method in ("GET", "HEAD"):
            g.status_only = True  # load balancers and probes: the status alone, without credentials
            return None
        if identity is None:
            if request.path.startswith("/api/") or request.path == "/metrics":  # scripts: no login page
                return (jsonify(error="authentication required: log in, or send Authorization: Bearer TOKEN"), 401,
                        {"WWW-Authenticate": 'Bearer realm="dashboard"'})
            return redirect(f"{request.script_root}/login?next={quote(request.full_path.rstrip('?'), safe='/')}")
        g.identity = identity
        if request.method not in ("GET", "HEAD", "OPTIONS") and identity.csrf is not None \
                and not hmac.compare_digest(request.headers.get("X-CSRF-Token") or request.form.get("csrf", ""),
                                            identity.csrf):
            return jsonify(error="missing or wrong CSRF token (X-CSRF-Token)"), 403
        return None

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")  # task data stays out of every cache
        return response

    @app.errorhandler(404)
    def _not_found(exc: Exception) -> Any:
        if request.path.startswith("/api/"):
            return jsonify(error=f"not found: {request.path}"), 404
        from .views import bootstrap
        return render_template("error.html", bootstrap=bootstrap("error"), title="Not found",
                               message=f"There is no page at {request.path}."), 404

    @app.errorhandler(405)
    def _not_allowed(exc: Exception) -> Any:
        if request.path.startswith("/api/"):
            return jsonify(error=f"method {request.method} not allowed on {request.path}"), 405
        return exc

    @app.errorhandler(500)
    def _server_error(exc: Exception) -> Any:
        dashboard.collector.count_internal_error()
        log.error("unhandled error on %s", request.path, exc_info=getattr(exc, "original_exception", None))
        if request.path.startswith("/api/"):
            return jsonify(error="internal error; see the dashboard's log"), 500
        return exc

    return app
