#!/usr/bin/env bash
# Creates, once, the unprivileged user that the rootless integration tests
# and tools/bench/rootless_bench.sh run strata (and buildah) as, with a
# range of 65536 subordinate ids in /etc/subuid and /etc/subgid:
#   tools/rootless-test-user.sh [USER]      (root only; default strata-rootless-test)
# Idempotent and safe to run concurrently (flock): an existing user or range
# is left as it is (Debian's useradd already adds ranges from 100000). It
# changes nothing else on the host.
set -euo pipefail
user=${1:-strata-rootless-test}
if [ "$(id -u)" != 0 ]; then
  echo "rootless-test-user: needs root (useradd, /etc/subuid)" >&2
  exit 1
fi
exec 9>/tmp/.strata-rootless-test-user.lock
flock -w 60 9
if ! id "$user" >/dev/null 2>&1; then
  useradd -m -s /bin/sh "$user"
fi
for f in /etc/subuid /etc/subgid; do
  [ -e "$f" ] || install -m 0644 /dev/null "$f"
  grep -q "^$user:" "$f" || echo "$user:200000:65536" >>"$f"
done
