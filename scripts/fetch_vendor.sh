#!/usr/bin/env bash
# Vendor the Socket.IO browser client (ESM build) into static/vendor/socket.io/.
#
# Fetches socket.io-client from the npm registry with `npm pack`, checks the
# tarball against a pinned sha256, and copies dist/socket.io.esm.min.js (+ .map)
# and LICENSE. Idempotent: when the vendored file already has the pinned hash it
# does nothing (so it also works offline once the files are committed).
# Usage: scripts/fetch_vendor.sh [--force]
set -euo pipefail

readonly PACKAGE="socket.io-client"
readonly VERSION="4.8.1"
#: sha256 of socket.io-client-4.8.1.tgz as served by the npm registry
#: (its sha512 integrity: hJVXfu3E28NmzGk8o1sHhN3om52tRvwYeidbj7xKy2eIIse5IoKX3USlS6Tqt3BHAtflLIkCQBkzVrEEfWUyYQ==)
readonly TARBALL_SHA256="e39a4baa07488a5cfe10de424bc8646ed897f5dbd318312a852ff74570e47e01"
#: sha256 of package/dist/socket.io.esm.min.js inside that tarball
readonly ESM_SHA256="6e1fe90688a686dcd6baadc5a3bdc7aa741f8a01c147381af515a2ccca05f2fc"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/static/vendor/socket.io"
force="${1:-}"

sha256() { sha256sum "$1" | cut -d' ' -f1; }

if [[ "$force" != "--force" && -f "$dest/socket.io.esm.min.js" && -f "$dest/LICENSE" ]] \
    && [[ "$(sha256 "$dest/socket.io.esm.min.js")" == "$ESM_SHA256" ]]; then
    echo "fetch_vendor: $PACKAGE@$VERSION already vendored in ${dest#"$root"/}"
    exit 0
fi

command -v npm >/dev/null || { echo "fetch_vendor: npm is required" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
tarball="$tmp/$PACKAGE-$VERSION.tgz"
[[ -f "$tarball" ]] || { echo "fetch_vendor: npm pack produced no $tarball" >&2; exit 1; }

actual="$(sha256 "$tarball")"
if [[ "$actual" != "$TARBALL_SHA256" ]]; then
    echo "fetch_vendor: sha256 mismatch for $PACKAGE@$VERSION: expected $TARBALL_SHA256, got $actual" >&2
    exit 1
fi

tar -xzf "$tarball" -C "$tmp" package/dist package/LICENSE
esm="$tmp/package/dist/socket.io.esm.min.js"
[[ "$(sha256 "$esm")" == "$ESM_SHA256" ]] || { echo "fetch_vendor: unexpected ESM build hash" >&2; exit 1; }
grep -q 'as io' "$esm" || { echo "fetch_vendor: ESM build does not export io" >&2; exit 1; }

mkdir -p "$dest"
cp "$esm" "$dest/socket.io.esm.min.js"
if [[ -f "$esm.map" ]]; then cp "$esm.map" "$dest/socket.io.esm.min.js.map"; fi
cp "$tmp/package/LICENSE" "$dest/LICENSE"
echo "fetch_vendor: vendored $PACKAGE@$VERSION into ${dest#"$root"/}"
