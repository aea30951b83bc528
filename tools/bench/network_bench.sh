#!/usr/bin/env bash
# Cost of RUN's default network (private namespace + slirp4netns NAT) against
# the host network, on an apt-get build:
#
#   FROM debian:test
#   RUN apt-get update && apt-get install -y --no-install-recommends hello
#
# built with `--network host --allow network.host` and with the default
# network, BENCH_RUNS (default 3) --no-cache builds each, alternating; prints
# every time and the medians. Then the fixed cost per RUN step: a `RUN true`
# built BENCH_RUNS x 5 times per mode.
#
#   tools/bench/network_bench.sh [path/to/strata]     (default: $STRATA or build/strata)
#
# The Debian rootfs is made with `debootstrap --variant=minbase bookworm` from
# the first deb.debian.org-style mirror in /etc/apt (BENCH_MIRROR overrides),
# or taken from BENCH_ROOTFS=DIR (an existing debootstrap result), and
# imported with `strata import DIR debian:test` into a temp store. Needs root,
# debootstrap (unless BENCH_ROOTFS), slirp4netns, runc and Debian's mirror.
# Everything lives in one temp dir removed on exit. `uptime` is printed before
# and after (the machine may be shared).
set -euo pipefail

STRATA=${1:-${STRATA:-build/strata}}
RUNS=${BENCH_RUNS:-3}
[ "$(id -u)" = 0 ] || { echo "network_bench: run as root" >&2; exit 1; }
[ -x "$STRATA" ] || { echo "network_bench: strata binary not found: $STRATA" >&2; exit 1; }
STRATA=$(cd "$(dirname "$STRATA")" && pwd)/$(basename "$STRATA")

work=$(mktemp -d /tmp/strata-netbench.XXXXXX)
trap 'rm -rf "$work"' EXIT

mirror=${BENCH_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(grep -rhoE 'https?://[^ ]*/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ \
    2>/dev/null | head -1 | tr -d ' ' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi
rootfs=${BENCH_ROOTFS:-}
if [ -z "$rootfs" ]; then
  command -v debootstrap >/dev/null || { echo "network_bench: debootstrap missing" >&2; exit 1; }
  rootfs=$work/rootfs
  echo "debootstrap --variant=minbase bookworm from $mirror ..." >&2
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; exit 1; }
fi
store=$work/store
"$STRATA" --root "$store" import "$rootfs" debian:test >/dev/null

mkdir -p "$work/apt" "$work/true"
printf 'FROM debian:test\nRUN apt-get update && apt-get install -y --no-install-recommends hello\n' \
  >"$work/apt/Dockerfile"
printf 'FROM debian:test\nRUN true\n' >"$work/true/Dockerfile"

# One --no-cache build; prints its wall time in seconds.
build() {  # mode context
  local flags=()
  [ "$1" = host ] && flags=(--network host --allow network.host)
  local t0 t1
  t0=$(date +%s.%N)
  "$STRATA" --root "$store" build -q --no-cache "${flags[@]}" "$2" >"$work/out.log" 2>&1 ||
    { cat "$work/out.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b - a}' 
}

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f\n", m}'; }

echo "uptime: $(uptime)"
echo "strata: $STRATA   mirror: $mirror   runs: $RUNS"
for ctx in apt true; do
  n=$RUNS
  [ "$ctx" = true ] && n=$((RUNS * 5))
  : >"$work/host.$ctx"
  : >"$work/default.$ctx"
  for _ in $(seq "$n"); do
    build host "$work/$ctx" >>"$work/host.$ctx"
    build default "$work/$ctx" >>"$work/default.$ctx"
  done
  for mode in host default; do
    printf '%-6s %-8s median %ss   runs: %s\n' "$ctx" "$mode" "$(median <"$work/$mode.$ctx")" \
      "$(awk '{printf "%.2f ", $1}' "$work/$mode.$ctx")"
  done
done
echo "uptime: $(uptime)"
