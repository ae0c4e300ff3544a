#!/usr/bin/env bash
# Vendor the browser libraries the pages import into static/vendor/:
#   socket.io-client (ESM build) into static/vendor/socket.io/,
#   uPlot (ESM build and its stylesheet) into static/vendor/uplot/.
#
# Fetches each package from the npm registry with `npm pack`, checks the
# tarball against a pinned sha256 and every file taken from it against its own,
# and copies them with the package's LICENSE. Idempotent: a package whose
# vendored files already have the pinned hashes is left alone (so it also works
# offline once the files are committed).
# Usage: scripts/fetch_vendor.sh [--force]
set -euo pipefail

readonly SOCKETIO_PACKAGE="socket.io-client"
readonly SOCKETIO_VERSION="4.8.1"
#: sha256 of socket.io-client-4.8.1.tgz as served by the npm registry
#: (its sha512 integrity: hJVXfu3E28NmzGk8o1sHhN3om52tRvwYeidbj7xKy2eIIse5IoKX3USlS6Tqt3BHAtflLIkCQBkzVrEEfWUyYQ==)
readonly SOCKETIO_TARBALL_SHA256="e39a4baa07488a5cfe10de424bc8646ed897f5dbd318312a852ff74570e47e01"
#: sha256 of package/dist/socket.io.esm.min.js inside that tarball
readonly SOCKETIO_ESM_SHA256="6e1fe90688a686dcd6baadc5a3bdc7aa741f8a01c147381af515a2ccca05f2fc"

readonly UPLOT_PACKAGE="uplot"
readonly UPLOT_VERSION="1.6.32"
#: sha256 of uplot-1.6.32.tgz as served by the npm registry (MIT)
#: (its sha512 integrity: KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==)
readonly UPLOT_TARBALL_SHA256="4b8a8191e425658e3ea8c8c1314b0fc679c861ee3a1af2b20c7b16ba50b5133d"
#: sha256 of package/dist/uPlot.esm.js and package/dist/uPlot.min.css inside that tarball
readonly UPLOT_ESM_SHA256="5dd9b3281aa64b461b42d9945f6adb2649d346502b12281a9ae0d46599a80eba"
readonly UPLOT_CSS_SHA256="df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
force="${1:-}"

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# vendored DEST FILE SHA256 [FILE SHA256 ...]: DEST has a LICENSE and every FILE with its pinned hash.
vendored() {
    local dest="$1"
    shift
    [[ "$force" != "--force" && -f "$dest/LICENSE" ]] || return 1
    while (($#)); do
        [[ -f "$dest/$1" && "$(sha256 "$dest/$1")" == "$2" ]] || return 1
        shift 2
    done
}

# unpack PACKAGE VERSION TARBALL_SHA256: npm pack it, check the tarball, extract it into $tmp/PACKAGE/package.
unpack() {
    local package="$1" version="$2" expected="$3"
    command -v npm >/dev/null || { echo "fetch_vendor: npm is required" >&2; exit 1; }
    mkdir -p "$tmp/$package"
    (cd "$tmp/$package" && npm pack --silent "$package@$version" >/dev/null)
    local tarball="$tmp/$package/$package-$version.tgz"
    [[ -f "$tarball" ]] || { echo "fetch_vendor: npm pack produced no $tarball" >&2; exit 1; }
    local actual
    actual="$(sha256 "$tarball")"
    if [[ "$actual" != "$expected" ]]; then
        echo "fetch_vendor: sha256 mismatch for $package@$version: expected $expected, got $actual" >&2
        exit 1
    fi
    tar -xzf "$tarball" -C "$tmp/$package" package/dist package/LICENSE
}

# check FILE SHA256: the file taken from a tarball has its pinned hash.
check() {
    [[ "$(sha256 "$1")" == "$2" ]] || { echo "fetch_vendor: unexpected hash of ${1#"$tmp"/}" >&2; exit 1; }
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

dest="$root/static/vendor/socket.io"
if vendored "$dest" socket.io.esm.min.js "$SOCKETIO_ESM_SHA256"; then
    echo "fetch_vendor: $SOCKETIO_PACKAGE@$SOCKETIO_VERSION already vendored in ${dest#"$root"/}"
else
    unpack "$SOCKETIO_PACKAGE" "$SOCKETIO_VERSION" "$SOCKETIO_TARBALL_SHA256"
    package="$tmp/$SOCKETIO_PACKAGE/package"
    esm="$package/dist/socket.io.esm.min.js"
    check "$esm" "$SOCKETIO_ESM_SHA256"
    grep -q 'as io' "$esm" || { echo "fetch_vendor: ESM build does not export io" >&2; exit 1; }
    mkdir -p "$dest"
    cp "$esm" "$dest/socket.io.esm.min.js"
    if [[ -f "$esm.map" ]]; then cp "$esm.map" "$dest/socket.io.esm.min.js.map"; fi
    cp "$package/LICENSE" "$dest/LICENSE"
    echo "fetch_vendor: vendored $SOCKETIO_PACKAGE@$SOCKETIO_VERSION into ${dest#"$root"/}"
fi

dest="$root/static/vendor/uplot"
if vendored "$dest" uPlot.esm.js "$UPLOT_ESM_SHA256" uPlot.min.css "$UPLOT_CSS_SHA256"; then
    echo "fetch_vendor: $UPLOT_PACKAGE@$UPLOT_VERSION already vendored in ${dest#"$root"/}"
else
    unpack "$UPLOT_PACKAGE" "$UPLOT_VERSION" "$UPLOT_TARBALL_SHA256"
    package="$tmp/$UPLOT_PACKAGE/package"
    check "$package/dist/uPlot.esm.js" "$UPLOT_ESM_SHA256"
    check "$package/dist/uPlot.min.css" "$UPLOT_CSS_SHA256"
    grep -q 'export { uPlot as default }' "$package/dist/uPlot.esm.js" \
        || { echo "fetch_vendor: ESM build does not export uPlot" >&2; exit 1; }
    mkdir -p "$dest"
    cp "$package/dist/uPlot.esm.js" "$package/dist/uPlot.min.css" "$dest/"
    cp "$package/LICENSE" "$dest/LICENSE"
    echo "fetch_vendor: vendored $UPLOT_PACKAGE@$UPLOT_VERSION into ${dest#"$root"/}"
fi
