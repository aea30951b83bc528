#!/usr/bin/env bash
# Multi-platform build benchmark: strata and buildah on the same workloads,
# side by side in one run, from the same two-platform busybox base (amd64 +
# arm64 from Debian's busybox-static, an index made by strata and pushed to a
# docker-registry the bench starts on 127.0.0.1; both tools pull it from
# there once, untimed).
#
#   tools/bench/multiplatform_bench.sh [path/to/strata]   (default: $STRATA or build/strata)
#
# The workload: COPY of a small context (8 files, 4 MiB random), then one RUN
# doing CPU work in the shell (a 20,000-iteration busybox sh loop), a 16 MiB
# dd and sha256sum of everything. Under emulation every instruction of
# busybox runs in qemu-aarch64.
# Modes (each --no-cache, the base already local; median of BENCH_RUNS,
# default 3, strata and buildah alternating):
#   arm64     --platform linux/arm64 (RUN emulated)
#             buildah build --platform linux/arm64
#   two       --platform linux/amd64,linux/arm64 (an index)
#             buildah build --platform linux/amd64,linux/arm64 --manifest M
#   seq       strata only: the amd64 build then the arm64 build, one after the
#             other: what `two` would cost without running platforms in
#             parallel
# Prints seconds and the ratio peer/strata (>1 means strata is faster).
# Needs root, buildah, runc, docker-registry and the qemu-aarch64 binfmt
# handler (`strata binfmt --install aarch64`, which this script runs: it is
# idempotent). Everything lives in one temp dir removed on exit; the registry
# is stopped on exit.
set -euo pipefail

STRATA=${1:-${STRATA:-build/strata}}
RUNS=${BENCH_RUNS:-3}
TIMEOUT=${BENCH_TIMEOUT:-900}
here=$(cd "$(dirname "$0")/../.." && pwd)

[ "$(id -u)" = 0 ] || { echo "multiplatform_bench: run as root" >&2; exit 1; }
[ -x "$STRATA" ] || { echo "multiplatform_bench: strata binary not found: $STRATA" >&2; exit 1; }
STRATA=$(cd "$(dirname "$STRATA")" && pwd)/$(basename "$STRATA")
for t in buildah runc docker-registry timeout python3; do
  command -v "$t" >/dev/null || { echo "multiplatform_bench: $t missing" >&2; exit 1; }
done
"$STRATA" binfmt --install aarch64 >/dev/null

work=$(mktemp -d /tmp/strata-mpbench.XXXXXX)
reg_pid=""
cleanup() {
  local rc=$?
  if [ -n "$reg_pid" ]; then
    kill "$reg_pid" 2>/dev/null || true
    wait "$reg_pid" 2>/dev/null || true
  fi
  buildah --root "$work/b/root" --runroot "$work/b/run" --storage-driver overlay \
    rm --all >/dev/null 2>&1 || true
  umount -R "$work/b/root/overlay" 2>/dev/null || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

echo "== multiplatform_bench: strata=$STRATA, $(buildah --version), $(nproc) cores"
echo "== load before: $(uptime)"

# The registry, on a free loopback port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/registry"
cat > "$work/registry.yml" <<Y
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
Y
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done
reg=127.0.0.1:$port

# The two-platform base: busybox for amd64 and arm64, an index, pushed.
S() { "$STRATA" --root "$work/s" --tls-verify=false "$@"; }
"$here/tools/make-busybox-rootfs.sh" "$work/rootfs-amd64" >/dev/null
"$here/tools/make-busybox-rootfs.sh" --arch arm64 "$work/rootfs-arm64" >/dev/null
S import "$work/rootfs-amd64" busybox:amd64 >/dev/null
S import --platform linux/arm64 "$work/rootfs-arm64" busybox:arm64 >/dev/null
mkdir -p "$work/basectx"
printf 'FROM busybox:${TARGETARCH}\n' > "$work/basectx/Dockerfile"
S build -q --pull=never --platform linux/amd64,linux/arm64 -t "$reg/bench/busybox:multi" \
  --push "$work/basectx" >/dev/null

# The workload.
ctx=$work/ctx
mkdir -p "$ctx/data"
for i in 1 2 3 4 5 6 7 8; do head -c 524288 /dev/urandom > "$ctx/data/f$i"; done
cat > "$ctx/Dockerfile" <<D
FROM $reg/bench/busybox:multi
COPY data /data
RUN i=0; while [ \$i -lt 20000 ]; do i=\$((i+1)); done; \\
    dd if=/dev/zero of=/blob bs=1M count=16 2>/dev/null && sha256sum /blob /data/* > /sums
D

B() { buildah --root "$work/b/root" --runroot "$work/b/run" --storage-driver overlay "$@"; }
mkdir -p "$work/logs"
# timed LOG CMD...: seconds on stdout; the log keeps the output.
timed() {
  local log=$1
  shift
  local t0 t1
  t0=$(date +%s.%N)
  if ! timeout "$TIMEOUT" "$@" >"$log" 2>&1; then
    echo "multiplatform_bench: failed: $* (log below)" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
strata_build() { # PLATFORMS LOG
  timed "$2" "$STRATA" --root "$work/s" --tls-verify=false build --no-cache --progress plain \
    --platform "$1" -t bench:out "$ctx"
}
buildah_build() { # PLATFORMS LOG
  if [[ $1 == *,* ]]; then
    B manifest rm bench-list >/dev/null 2>&1 || true
    timed "$2" buildah --root "$work/b/root" --runroot "$work/b/run" --storage-driver overlay \
      build --no-cache --tls-verify=false --runtime runc --isolation oci --network host \
      --platform "$1" --manifest bench-list "$ctx"
  else
    timed "$2" buildah --root "$work/b/root" --runroot "$work/b/run" --storage-driver overlay \
      build --no-cache --tls-verify=false --runtime runc --isolation oci --network host \
      --platform "$1" -t bench-out "$ctx"
  fi
}
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# Warm-up (untimed): both tools pull the base for both platforms once.
strata_build linux/amd64,linux/arm64 "$work/logs/warm.strata" >/dev/null
buildah_build linux/amd64,linux/arm64 "$work/logs/warm.buildah" >/dev/null

declare -A res
for mode in arm64 two; do
  plats=linux/arm64
  [ "$mode" = two ] && plats=linux/amd64,linux/arm64
  : > "$work/$mode.s"
  : > "$work/$mode.b"
  for r in $(seq 1 "$RUNS"); do
    strata_build "$plats" "$work/logs/$mode.$r.strata" >> "$work/$mode.s"
    buildah_build "$plats" "$work/logs/$mode.$r.buildah" >> "$work/$mode.b"
  done
  res[$mode.s]=$(median < "$work/$mode.s")
  res[$mode.b]=$(median < "$work/$mode.b")
done
# Sequential strata: amd64 then arm64.
: > "$work/seq.s"
for r in $(seq 1 "$RUNS"); do
  a=$(strata_build linux/amd64 "$work/logs/seq-a.$r.strata")
  b=$(strata_build linux/arm64 "$work/logs/seq-b.$r.strata")
  echo "$a + $b" | bc -l >> "$work/seq.s"
done
res[seq.s]=$(median < "$work/seq.s")

echo "== load after: $(uptime)"
echo "== results (median of $RUNS runs, --no-cache; ratio = buildah / strata, >1 means strata is faster)"
echo "| workload | strata s | buildah s | ratio |"
echo "| --- | --- | --- | --- |"
printf '| arm64 (emulated RUN) | %.2f | %.2f | %.2f |\n' "${res[arm64.s]}" "${res[arm64.b]}" \
  "$(echo "${res[arm64.b]} / ${res[arm64.s]}" | bc -l)"
printf '| amd64+arm64 index | %.2f | %.2f | %.2f |\n' "${res[two.s]}" "${res[two.b]}" \
  "$(echo "${res[two.b]} / ${res[two.s]}" | bc -l)"
printf '| strata amd64 then arm64, sequential | %.2f | | |\n' "${res[seq.s]}"
