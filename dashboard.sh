#!/usr/bin/env bash
# Celery Dashboard: one entry point for the demo, a real cluster, and the test suite.
#
#   ./dashboard.sh [FLAGS]         the demo: dashboard + two real workers + a producer, no server needed
#                                  (run.py FLAGS, e.g. --port 5556; also ./dashboard.sh demo FLAGS)
#   ./dashboard.sh run [FLAGS]     the dashboard against your broker (run.py FLAGS, e.g. --broker redis://host:6379/0)
#   ./dashboard.sh auth ...        users and API tokens of an --auth-file (add-user, add-token, list, remove)
#   ./dashboard.sh test [ARGS]     the whole test suite (ARGS go to pytest)
#   ./dashboard.sh bench [ARGS]    the comparison benchmark against Flower (bench/compare.py ARGS, e.g. --quick)
#
# Each command creates .venv and installs requirements.txt (the runtime) when
# needed; `test` installs requirements-dev.txt (the runtime and the test tools)
# and also redis-server, rabbitmq-server, chromium and nginx from Debian's packages
# when they are missing and it runs as root. `bench` keeps its own
# environment, bench/.venv, which bench/compare.py creates and updates.
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY="$VENV/bin/python"

ensure_venv() {
    # ensure_venv [FILE]: .venv with FILE's packages (requirements.txt, the runtime, by default)
    local file=${1:-requirements.txt}
    if [ ! -x "$PY" ]; then
        python3 -m venv "$VENV"
    fi
    local stamp="$VENV/.${file%.txt}.sha256"
    local want
    want=$(cat "$file" requirements.txt | sha256sum | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        "$PY" -m pip install --quiet --disable-pip-version-check -r "$file"
        echo "$want" > "$stamp"
    fi
}

ensure_debian_packages() {
    local missing=()
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || missing+=(rabbitmq-server)
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx)  # the reverse-proxy test
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing ${missing[*]}: install them (apt-get install ${missing[*]}) or run as root" >&2
        return 0
    fi
    echo "installing ${missing[*]} from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_rabbitmq_running() {
    # Start the machine's RabbitMQ when it is installed but stopped; the tests skip it otherwise.
    if "$PY" -c "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(('127.0.0.1', 5672)))"; then
        return 0
    fi
    if [ "$(id -u)" -eq 0 ] && [ -x /usr/sbin/rabbitmq-server ]; then
        echo "starting rabbitmq-server"
        /usr/sbin/rabbitmq-server -detached >/dev/null 2>&1 || true
        for _ in $(seq 1 60); do
            "$PY" -c "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(('127.0.0.1', 5672)))" && return 0
            sleep 1
        done
        echo "rabbitmq-server did not open port 5672 within 60 s; its tests will be skipped" >&2
    fi
}

run_tests() {
    ensure_debian_packages
    ensure_venv requirements-dev.txt
    ensure_rabbitmq_running
    echo "== Type check (mypy dashboard)"
    "$PY" -m mypy dashboard
    echo "== JavaScript unit tests (node --test)"
    node --test tests/js/
    echo "== Python tests (pytest)"
    local status=0
    "$PY" -m pytest "$@" || status=$?
    if [ "$status" -eq 5 ]; then
        echo "pytest collected no tests: failing the run" >&2
        return 1
    fi
    return "$status"
}

command=${1:-demo}
case "$command" in
    -*) command=demo ;;  # ./dashboard.sh --port 5556: the demo, with run.py's flags
    *) [ $# -gt 0 ] && shift ;;
esac
case "$command" in
    demo) ensure_venv; exec "$PY" run.py --demo "$@" ;;
    run) ensure_venv; exec "$PY" run.py "$@" ;;
    auth) ensure_venv; exec "$PY" run.py auth "$@" ;;
    test) run_tests "$@" ;;
    bench) exec python3 bench/compare.py "$@" ;;
    options) ensure_venv; exec "$PY" -c "from dashboard.settings import options_table; print(options_table())" ;;
    *) echo "usage: $0 [demo] [FLAGS] | run FLAGS | auth COMMAND | test [PYTEST_ARGS] | bench [COMPARE_ARGS] | options  (FLAGS: run.py's, e.g. --port 5556)" >&2; exit 2 ;;
esac
