"""The files in deploy/, verified as far as this machine allows (it has no Docker daemon and no cluster):
the Dockerfile's steps run in a plain directory with only what it copies, its HEALTHCHECK command passing;
the compose file and the Kubernetes manifest parsed, their options, modules and probe paths real; the
systemd unit through ``systemd-analyze verify``. The nginx configuration has its own browser test."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from dashboard.auth import AuthFile
from dashboard.settings import SettingsError, build_parser, env_name, load_settings
from helpers import PYTHON, REPO_ROOT, Proc, free_port, wait_until

pytestmark = pytest.mark.integration

DEPLOY = REPO_ROOT / "deploy"


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined: (INSTRUCTION, arguments)."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_dockerfiles_steps_make_a_serving_dashboard(redis_port: int, tmp_path: Path) -> None:
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    users = [args for step, args in steps if step == "USER"]
    assert users and users[-1] not in ("root", "0")  # it runs as its own user
    app = tmp_path / "app"
    app.mkdir()
    env: dict[str, str] = {}
    for step, args in steps:
        if step == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(args)))
        elif step == "COPY":
            source, _ = args.split()
            src = REPO_ROOT / source
            (shutil.copytree if src.is_dir() else shutil.copy)(src, app / source.rstrip("/"))
        elif step == "RUN" and "pip install" in args:
            assert "-r requirements.txt" in args  # the file the test environment installs too
    healthcheck = next(args for step, args in steps if step == "HEALTHCHECK")
    probe = json.loads(healthcheck.split("CMD", 1)[1])
    entrypoint = json.loads(next(args for step, args in steps if step == "ENTRYPOINT"))
    assert entrypoint == ["python", "run.py"] and "/api/health" in probe[-1]
    port = free_port()
    env.update({"DASHBOARD_PORT": str(port), "DASHBOARD_DB": str(tmp_path / "history.db"),  # no /data here
                "DASHBOARD_BROKER": f"redis://127.0.0.1:{redis_port}/3", "DASHBOARD_INSECURE_NO_AUTH": "1"})
    refused = subprocess.run([PYTHON, *entrypoint[1:]], cwd=app, env={**os.environ, **{k: v for k, v in env.items()
                             if k != "DASHBOARD_INSECURE_NO_AUTH"}}, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--auth-file" in refused.stderr  # 0.0.0.0 and no login: refused
    proc = Proc("docker-steps", [PYTHON, str(app / "run.py")], tmp_path, env=env)  # the copied files only

    def serving() -> bool:
        if not proc.alive():
            raise AssertionError(f"the image's dashboard exited:\n{proc.log_tail()}")
        try:
            return requests.get(f"http://127.0.0.1:{port}/api/health", timeout=2).ok
        except requests.RequestException:
            return False
    try:
        wait_until(serving, 30, message="the image's dashboard does not serve")
        check = subprocess.run([PYTHON if word == "python" else word.replace("5555", str(port)) for word in probe],
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        bundle = re.search(r'src="(/static/v/[0-9a-f]{12}/js/bundle/main.js)"', page.text)
        assert page.status_code == 200 and bundle, page.text
        assert requests.get(f"http://127.0.0.1:{port}{bundle.group(1)}", timeout=5).status_code == 200
        assert requests.get(f"http://127.0.0.1:{port}/static/js/main.js", timeout=5).status_code == 200
    finally:
        proc.stop()


def options_of(environment: dict[str, Any]) -> set[str]:
    """The DASHBOARD_* variables of a container that are not options of the dashboard."""
    known = {env_name(option[2:]) for action in build_parser()._actions for option in action.option_strings
             if option.startswith("--")}
    return {key for key in environment if key.startswith("DASHBOARD_") and key not in known}


def test_the_compose_file_runs_redis_two_workers_a_producer_and_the_dashboard() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "worker-1", "worker-2", "producer", "dashboard"}
    for name in ("worker-1", "worker-2", "producer", "dashboard"):
        build = services[name]["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == (DEPLOY / "Dockerfile").resolve()
    for name in ("worker-1", "worker-2"):
        command = services[name]["entrypoint"]
        assert command[:4] == ["celery", "-A", "dashboard.demo.tasks", "worker"] and "-E" in command
    assert services["producer"]["entrypoint"] == ["python", "-m", "dashboard.demo.producer"]
    dashboard = services["dashboard"]
    assert not options_of(dashboard["environment"])
    assert dashboard["ports"] == ["127.0.0.1:5555:5555"]
    for module in ("dashboard.demo.tasks", "dashboard.demo.producer"):
        assert subprocess.run([PYTHON, "-c", f"import importlib.util, sys; sys.exit(importlib.util.find_spec('{module}') is None)"],
                              cwd=REPO_ROOT).returncode == 0


def test_the_kubernetes_manifest_probes_paths_that_answer_without_credentials(tmp_path: Path) -> None:
    documents = list(yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()))
    kinds = {doc["kind"]: doc for doc in documents}
    assert set(kinds) == {"PersistentVolumeClaim", "Deployment", "Service"}
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert kinds["Deployment"]["spec"]["replicas"] == 1
    assert not options_of({e["name"]: e for e in container["env"]})
    auth = tmp_path / "auth.toml"
    AuthFile.create_or_open(str(auth)).write()  # as ./dashboard.sh auth writes it
    args = [arg.replace("/etc/celery-dashboard/auth.toml", str(auth)) for arg in container["args"]]
    try:
        load_settings(args, {})
    except SettingsError as exc:  # every flag it passes exists and parses
        pytest.fail(f"the manifest's args do not parse: {exc}")
    probes = {container["livenessProbe"]["httpGet"]["path"], container["readinessProbe"]["httpGet"]["path"]}
    assert probes == {"/api/health", "/api/ready"}
    from dashboard import create_app
    from dashboard.settings import Settings
    client = create_app(Settings(db=str(tmp_path / "d.db"), async_mode="threading", auth_file=str(auth))).test_client()
    for path in probes:
        assert client.get(path).status_code in (200, 503)  # never 401: a probe sends no credentials
    assert kinds["Service"]["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]


def test_the_systemd_unit_verifies() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    unit = (DEPLOY / "celery-dashboard.service").read_text().replace("/opt/celery-dashboard/.venv/bin/python", PYTHON)
    unit = unit.replace("/opt/celery-dashboard", str(REPO_ROOT))
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"unit-{os.getpid()}"
    folder.mkdir(exist_ok=True)
    path = folder / "celery-dashboard.service"
    path.write_text(unit)
    try:
        done = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
        problems = [line for line in done.stderr.splitlines() if "celery-dashboard.service" in line]
        assert done.returncode == 0 and not problems, done.stderr
    finally:
        shutil.rmtree(folder)
