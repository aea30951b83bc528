#!/usr/bin/env bash
# Bytes that flow for `FROM <base on a local registry>` + `COPY app /app` +
# `build --push` to a new repository (issue 12, goals 4 and 5), against a
# local CNCF Distribution registry whose access log counts the bytes served:
#   before    what strata did before blob-source records and lazy bases: the
#             whole base pulled, every blob uploaded (the store's
#             ROOT/sources is removed before the push, and --lazy-base=false)
#   mount     plain COPY (reads the base): the base is pulled whole, the
#             push mounts its layers from the repository they came from
#   lazy      COPY --link (never reads the base): only the base's manifest
#             and config are pulled; the push mounts the base layers
#   other     the lazy image pushed to a second registry: the base layers
#             are fetched from the first (into the store), then uploaded
#   tools/bench/lazy_base_bench.sh [path/to/strata]   (default: build/strata)
# Needs root (RUN-less builds, but the build enters its namespaces).
set -euo pipefail
STRATA=$(realpath "${1:-${STRATA:-build/strata}}")
BASE_MB=${BASE_MB:-40}
here=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/strata-lazybench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

start_registry() {  # name -> prints host:port
  local name=$1 port
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  cat > "$work/$name.yml" <<C
version: 0.1
log: {level: error, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: $work/$name-storage}}
http: {addr: 127.0.0.1:$port}
C
  /usr/bin/docker-registry serve "$work/$name.yml" > "$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
  echo "127.0.0.1:$port"
}
# Bytes the registry served to GET requests (manifests and blobs) after log line $2.
served() {
  tail -n +"$(( $2 + 1 ))" "$work/$1.log" | grep -E '"GET /v2/[^ ]+/(blobs|manifests)/' |
    awk '{ for (i = 1; i < NF; i++) if ($i ~ /^HTTP\/1\.[01]"$/) { s += $(i + 2); break } } END { print s + 0 }'
}
lines() { wc -l < "$work/$1.log"; }
st() { "$STRATA" --tls-verify=false --root "$work/$1" "${@:2}"; }

reg=$(start_registry reg1)
reg2=$(start_registry reg2)

# The base: busybox plus BASE_MB MiB of random bytes (incompressible).
"$here/tools/make-busybox-rootfs.sh" "$work/rootfs" >/dev/null
head -c $((BASE_MB << 20)) /dev/urandom > "$work/rootfs/usr/lib-data"
st seed import "$work/rootfs" base:1 >/dev/null
st seed push -q base:1 "$reg/debian-like-base:1" >/dev/null
mkdir -p "$work/ctx"
head -c 100000 /dev/urandom > "$work/ctx/app"
printf 'FROM %s/debian-like-base:1\nCOPY app /app\n' "$reg" > "$work/ctx/Dockerfile.copy"
printf 'FROM %s/debian-like-base:1\nCOPY --link app /app\n' "$reg" > "$work/ctx/Dockerfile.link"

run() {  # label root dockerfile repo [build flags...]
  local label=$1 root=$2 df=$3 repo=$4; shift 4
  local l0 out pulled
  l0=$(lines reg1)
  st "$root" build -q --progress plain "$@" -f "$work/ctx/$df" -t "$reg/$repo:1" "$work/ctx" >/dev/null
  pulled=$(served reg1 "$l0")
  if [ "$label" = before ]; then rm -rf "${work:?}/$root/sources"; fi
  out=$(st "$root" push "$reg/$repo:1" 2>&1 >/dev/null | grep '^Blobs:' || true)
  printf '%-7s pulled %10s bytes   push: %s\n' "$label" "$pulled" "$out"
}
run before r-before Dockerfile.copy app-before --lazy-base=false
run mount r-mount Dockerfile.copy app-mount
run lazy r-lazy Dockerfile.link app-lazy
l1=$(lines reg1)
out=$(st r-lazy push "$reg/app-lazy:1" "$reg2/app:1" 2>&1 >/dev/null | grep -E '^(Blobs|Fetched)' | tr '\n' ' ')
printf '%-7s pulled %10s bytes   push: %s\n' other "$(served reg1 "$l1")" "$out"
