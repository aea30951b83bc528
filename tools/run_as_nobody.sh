#!/usr/bin/env bash
# Runs a test binary as an unprivileged user (nobody, 65534) when called as
# root, so that suites meant to be hermetic prove they need no privilege:
#   tools/run_as_nobody.sh BINARY [ARGS...]
# As a non-root user it runs BINARY directly. Exit 77 (skip) without setpriv.
set -euo pipefail
bin=$1
shift
if [ "$(id -u)" != 0 ]; then exec "$bin" "$@"; fi
command -v setpriv >/dev/null || { echo "setpriv not found" >&2; exit 77; }
tmp=$(mktemp -d /tmp/strata-nobody-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
chmod 1777 "$tmp"
# A copy, so the checkout's location (e.g. under a 0700 /root) does not matter.
cp "$bin" "$tmp/test-binary"
chmod 755 "$tmp/test-binary"
setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$tmp" TMPDIR="$tmp" \
  "$tmp/test-binary" "$@"
