#!/usr/bin/env bash
# Build benchmark: the same Dockerfiles built by strata and by
# `buildah build --layers` (overlay storage, runc, OCI isolation) and, with
# BENCH_BUILDKIT=1, Docker's BuildKit (dockerd 20.10 from Debian, started in
# the bench's temp dir as ../shared/PEERS.md describes) side by side in one
# run, on a local busybox base (no network).
#
#   tools/bench/build_bench.sh [path/to/strata]      (default: $STRATA or build/strata)
#
# Workloads (each Dockerfile ends with a late `COPY marker.txt /`):
#   w1-meta     busybox base, three RUN steps plus ENV/WORKDIR/USER/LABEL
#   w2-context  COPY of a generated context (2,000 files, 200 MiB random) then a RUN
#   w3-multi    multi-stage build with COPY --from of two stages
#   w4-1gib     RUN dd if=/dev/urandom bs=1M count=1024 (layer commit throughput)
#   w5-10step   a 10-step Dockerfile (ENV/RUN/WORKDIR/LABEL/COPY/EXPOSE)
#   w6-runs     ten `RUN true` steps (the fixed cost of a RUN step)
# Modes:
#   cold     fresh store for strata (--root), fresh storage for buildah
#            (--root/--runroot); the base image is imported first, not timed
#   cached   fully cached rebuild of the unchanged context
#   changed  rebuild after changing marker.txt (only the late COPY misses)
#   edit1    (w2 only) rebuild after rewriting one of the 2,000 files: the
#            200 MiB COPY step and everything after it miss
# Each mode is the median of BENCH_RUNS (default 3) runs, strata and buildah
# alternating; the 1 GiB cold build runs once. Prints seconds, the ratio
# peer/strata (>1 means strata is faster) and strata's peak RSS
# (/usr/bin/time -v: the largest of strata and its waited-for children).
# Checks that every cached strata rebuild prints the digest of the build
# before it, and that a changed rebuild prints a new one.
#
# Environment: BENCH_QUICK=1 skips w4-1gib; BENCH_RUNS=N; BENCH_ONLY="w1-meta w5-10step"
# runs a subset; BENCH_LOG_DIR=DIR keeps the per-build logs (strata
# --progress plain has per-step times); BENCH_TIMEOUT=S bounds each build
# (default 600). Needs root, buildah and runc. Everything lives in one temp dir
# that is removed on exit. The machine may be shared: `uptime` is printed
# before and after, and the machine's limits measured in the same run
# (`openssl dgst -sha256` of 1 GiB, `dd bs=1M conv=fsync` of 1 GiB).
# BENCH_BUILDKIT=1 needs /usr/bin/docker and dockerd (apt-get install docker.io);
# binfmt_misc is switched off for the run (BuildKit 20.10 probes emulators on
# every build, ~1.5 s) and restored on exit.
set -euo pipefail

STRATA=${1:-${STRATA:-build/strata}}
RUNS=${BENCH_RUNS:-3}
TIMEOUT=${BENCH_TIMEOUT:-600}
ONLY=${BENCH_ONLY:-}
here=$(cd "$(dirname "$0")/../.." && pwd)

[ "$(id -u)" = 0 ] || { echo "build_bench: run as root (RUN steps and overlay mounts)" >&2; exit 1; }
[ -x "$STRATA" ] || { echo "build_bench: strata binary not found: $STRATA" >&2; exit 1; }
STRATA=$(cd "$(dirname "$STRATA")" && pwd)/$(basename "$STRATA")
for t in buildah runc /usr/bin/time timeout; do
  command -v "$t" >/dev/null || { echo "build_bench: $t missing" >&2; exit 1; }
done
BUILDKIT=${BENCH_BUILDKIT:-0}
if [ "$BUILDKIT" = 1 ]; then
  for t in /usr/bin/docker dockerd; do
    command -v "$t" >/dev/null || { echo "build_bench: $t missing (apt-get install docker.io)" >&2; exit 1; }
  done
fi

work=$(mktemp -d /tmp/strata-buildbench.XXXXXX)
unmount_under() {
  # Unmount anything left mounted under $1 (deepest first).
  local m
  for m in $(awk -v p="$1/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
}
binfmt_was=
cleanup() {
  local rc=$?
  if [ -f "$work/dockerd/pid" ]; then
    local dpid
    dpid=$(cat "$work/dockerd/pid")
    kill "$dpid" 2>/dev/null || true
    for _ in $(seq 1 50); do [ -e "/proc/$dpid" ] || break; sleep 0.2; done
  fi
  [ -n "$binfmt_was" ] && echo "$binfmt_was" > /proc/sys/fs/binfmt_misc/status 2>/dev/null || true
  if [ -n "${BENCH_LOG_DIR:-}" ] && [ -d "$work/logs" ]; then
    mkdir -p "$BENCH_LOG_DIR" && cp -r "$work/logs/." "$BENCH_LOG_DIR/" || true
  fi
  unmount_under "$work"
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/logs" "$work/results"

BASE=localhost/busybox-bench:latest
echo "== build_bench: strata=$STRATA, $(buildah --version), runc $(runc --version | sed -n 's/^runc version //p'), $(nproc) cores"
echo "== load before: $(uptime)"

"$here/tools/make-busybox-rootfs.sh" "$work/rootfs" >/dev/null

# ---- the machine's limits, in this run ----------------------------------------
head -c 1073741824 /dev/urandom > "$work/limit.bin"
sync
t0=$(date +%s%N); openssl dgst -sha256 "$work/limit.bin" >/dev/null; t1=$(date +%s%N)
LIMIT_SHA=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", 1073.741824 / ((b - a) / 1e9)}')
t0=$(date +%s%N); dd if="$work/limit.bin" of="$work/limit.out" bs=1M conv=fsync status=none; t1=$(date +%s%N)
LIMIT_WRITE=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", 1073.741824 / ((b - a) / 1e9)}')
rm -f "$work/limit.bin" "$work/limit.out"
echo "== machine limits: sha256 $LIMIT_SHA MB/s (openssl dgst), write+fsync $LIMIT_WRITE MB/s (dd conv=fsync)"

# ---- BuildKit (dockerd) -----------------------------------------------------------
dk() { DOCKER_HOST=unix://$work/dockerd/docker.sock DOCKER_BUILDKIT=1 DOCKER_CONFIG=$work/dockerd/cli /usr/bin/docker "$@"; }
if [ "$BUILDKIT" = 1 ]; then
  if [ -e /proc/sys/fs/binfmt_misc/status ]; then
    binfmt_was=$(cat /proc/sys/fs/binfmt_misc/status)
    [ "$binfmt_was" = enabled ] && binfmt_was=1 || binfmt_was=0
    echo 0 > /proc/sys/fs/binfmt_misc/status
  fi
  mkdir -p "$work/dockerd"
  echo "{\"deprecated-key-path\": \"$work/dockerd/key.json\"}" > "$work/dockerd/daemon.json"
  setsid dockerd --config-file "$work/dockerd/daemon.json" --data-root "$work/dockerd/root" \
    --exec-root "$work/dockerd/exec" --pidfile "$work/dockerd/pid" \
    -H "unix://$work/dockerd/docker.sock" --bridge=none --iptables=false --ip-forward=false \
    --ip-masq=false > "$work/dockerd/log" 2>&1 < /dev/null &
  for _ in $(seq 1 100); do dk version >/dev/null 2>&1 && break; sleep 0.2; done
  dk version >/dev/null 2>&1 || { echo "build_bench: dockerd did not start:" >&2; tail "$work/dockerd/log" >&2; exit 1; }
  tar -C "$work/rootfs" -c . | dk import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$BASE" >/dev/null
  echo "== BuildKit: $(dk version --format 'docker {{.Server.Version}}'), binfmt_misc off for the run"
fi

# ---- stores ---------------------------------------------------------------
# fresh_strata NAME: a new strata store with the busybox base imported.
fresh_strata() {
  rm -rf "$work/s-$1"
  "$STRATA" --root "$work/s-$1" import "$work/rootfs" "$BASE" >/dev/null
}
# bah NAME ARGS...: buildah on the storage named NAME.
bah() {
  local n=$1; shift
  buildah --root "$work/b-$n/root" --runroot "$work/b-$n/run" --storage-driver overlay "$@"
}
# fresh_buildah NAME: new buildah storage with the same base (scratch + copy + commit).
fresh_buildah() {
  if [ -d "$work/b-$1" ]; then
    bah "$1" rm --all >/dev/null 2>&1 || true
    unmount_under "$work/b-$1"
    rm -rf "$work/b-$1"
  fi
  local ctr
  ctr=$(bah "$1" from scratch)
  bah "$1" copy "$ctr" "$work/rootfs" / >/dev/null
  bah "$1" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr" >/dev/null
  bah "$1" commit -q "$ctr" "$BASE" >/dev/null
  bah "$1" rm "$ctr" >/dev/null
}

# ---- timing ----------------------------------------------------------------
# timed LOG CMD...: runs CMD bounded by $TIMEOUT under /usr/bin/time -v, stdout
# to LOG.out, stderr to LOG.err; sets T (seconds) and RSS (MiB). Fails loudly.
timed() {
  local log=$1; shift
  local t0 t1
  t0=$(date +%s%N)
  if ! /usr/bin/time -v -o "$log.time" timeout "$TIMEOUT" "$@" > "$log.out" 2> "$log.err"; then
    echo "build_bench: FAILED: $*" >&2
    echo "---- last lines of $log.err:" >&2
    tail -n 30 "$log.err" >&2
    return 1
  fi
  t1=$(date +%s%N)
  T=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
  RSS=$(awk -F': ' '/Maximum resident set size/ {print int($2 / 1024)}' "$log.time")
}

strata_build() { # STORE LOG CTX
  timed "$2" "$STRATA" --root "$work/s-$1" build --progress plain -t "bench-$1" "$3"
  DIGEST=$(tail -n 1 "$2.out")
}
buildah_build() { # STORE LOG CTX
  timed "$2" buildah --root "$work/b-$1/root" --runroot "$work/b-$1/run" --storage-driver overlay \
    build --layers --runtime runc --isolation oci --network host --pull=never \
    --iidfile "$2.iid" -t "bench-$1" "$3"
}

buildkit_build() { # STORE LOG CTX
  timed "$2" env DOCKER_HOST="unix://$work/dockerd/docker.sock" DOCKER_BUILDKIT=1 \
    DOCKER_CONFIG="$work/dockerd/cli" /usr/bin/docker build --network host --progress plain \
    -t "bench-$1" "$3"
}
# fresh_buildkit: drop BuildKit's cache and the images the bench built.
fresh_buildkit() {
  dk builder prune -af >/dev/null
  local built
  built=$(dk images --format '{{.Repository}}:{{.Tag}}' | grep '^bench-' || true)
  [ -z "$built" ] || dk rmi -f $built >/dev/null
  dk image prune -f >/dev/null
}
# peers W MODE I: one run of each peer, appending to the results.
peers() {
  buildah_build "$1" "$work/logs/$1.$2$3.buildah" "$work/ctx/$1"
  echo "$T" >> "$work/results/$1.$2.buildah"
  if [ "$BUILDKIT" = 1 ]; then
    buildkit_build "$1" "$work/logs/$1.$2$3.buildkit" "$work/ctx/$1"
    echo "$T" >> "$work/results/$1.$2.buildkit"
  fi
}

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# ---- workloads ----------------------------------------------------------------
mkctx() { mkdir -p "$work/ctx/$1"; echo "marker 0" > "$work/ctx/$1/marker.txt"; }

mkctx w1-meta
cat > "$work/ctx/w1-meta/Dockerfile" <<EOF
FROM $BASE
ENV APP_HOME=/app APP_MODE=bench
WORKDIR /app
RUN mkdir -p /app/bin && printf '#!/bin/sh\necho hello\n' > /app/bin/hello && chmod 0755 /app/bin/hello
RUN echo "built in \$APP_HOME" > /app/built.txt && ls -la /app > /app/listing.txt
LABEL org.opencontainers.image.title=bench version=1.0
USER app
RUN id > /tmp/whoami.txt && /app/bin/hello >> /tmp/whoami.txt
COPY marker.txt /app/marker.txt
EOF

mkctx w2-context
for d in $(seq -w 0 19); do
  mkdir -p "$work/ctx/w2-context/data/d$d"
  head -c $((10 * 1024 * 1024)) /dev/urandom > "$work/chunk"
  split -n 100 -d -a 3 "$work/chunk" "$work/ctx/w2-context/data/d$d/f"
done
rm -f "$work/chunk"
cat > "$work/ctx/w2-context/Dockerfile" <<EOF
FROM $BASE
COPY data/ /data/
RUN find /data -type f | wc -l > /data-count.txt && du -s /data > /data-size.txt
COPY marker.txt /
EOF

mkctx w3-multi
mkdir -p "$work/ctx/w3-multi/src"
for i in $(seq 1 50); do seq "$i" 3 20000 | sed 's/^/line /' > "$work/ctx/w3-multi/src/f$i.txt"; done
cat > "$work/ctx/w3-multi/Dockerfile" <<EOF
FROM $BASE AS build
WORKDIR /src
COPY src/ /src/
RUN mkdir -p /out && for f in /src/*.txt; do tr a-z A-Z < "\$f" > "/out/\$(basename "\$f")"; done && tar -cf /out.tar -C /out .

FROM $BASE AS assets
RUN mkdir /assets && seq 1 100000 > /assets/numbers.txt && echo asset > /assets/name

FROM $BASE
COPY --from=build /out.tar /opt/app.tar
COPY --from=assets /assets /opt/assets
RUN tar -tf /opt/app.tar | wc -l > /opt/count.txt
COPY marker.txt /
EOF

mkctx w4-1gib
cat > "$work/ctx/w4-1gib/Dockerfile" <<EOF
FROM $BASE
RUN dd if=/dev/urandom of=/big bs=1M count=1024
COPY marker.txt /
EOF

mkctx w5-10step
echo "payload" > "$work/ctx/w5-10step/file1.txt"
cat > "$work/ctx/w5-10step/Dockerfile" <<EOF
FROM $BASE
ENV A=1
RUN echo one > /one
WORKDIR /work
RUN echo two > two
LABEL step=five
COPY file1.txt /work/
RUN cat file1.txt > three
ENV B=2
EXPOSE 8080
COPY marker.txt /
EOF

mkctx w6-runs
{ echo "FROM $BASE"; for i in $(seq 1 10); do echo "RUN true $i"; done; echo "COPY marker.txt /"; } \
  > "$work/ctx/w6-runs/Dockerfile"

workloads="w1-meta w2-context w3-multi w4-1gib w5-10step w6-runs"
[ "${BENCH_QUICK:-0}" = 1 ] && workloads="w1-meta w2-context w3-multi w5-10step w6-runs"
[ -n "$ONLY" ] && workloads=$ONLY

failures=0
# record W MODE: median of the collected samples into results.
record() {
  local w=$1 m=$2 s b k=0 r
  s=$(median < "$work/results/$w.$m.strata")
  b=$(median < "$work/results/$w.$m.buildah")
  [ "$BUILDKIT" = 1 ] && k=$(median < "$work/results/$w.$m.buildkit")
  r=$(sort -g "$work/results/$w.$m.rss" | tail -n 1)
  printf '%s %s %s %s %s %s\n' "$w" "$m" "$s" "$b" "$k" "$r" >> "$work/results/table"
  printf '   %-8s strata %7.3f s  buildah %7.3f s (%5.1fx)  buildkit %7.3f s (%5.1fx)  strata RSS %d MiB\n' \
    "$m" "$s" "$b" "$(awk -v s="$s" -v b="$b" 'BEGIN {print (s > 0 ? b / s : 0)}')" \
    "$k" "$(awk -v s="$s" -v b="$k" 'BEGIN {print (s > 0 ? b / s : 0)}')" "$r"
}

for w in $workloads; do
  ctx=$work/ctx/$w
  [ -f "$ctx/Dockerfile" ] || { echo "build_bench: unknown workload $w" >&2; exit 2; }
  echo "== $w ($(du -sh "$ctx" | cut -f1) context)"
  cold_runs=$RUNS
  [ "$w" = w4-1gib ] && cold_runs=1
  echo "marker 0" > "$ctx/marker.txt"
  # cold: each run on fresh stores (base import untimed).
  for i in $(seq 1 "$cold_runs"); do
    fresh_strata "$w"; fresh_buildah "$w"
    [ "$BUILDKIT" = 1 ] && fresh_buildkit
    sync
    strata_build "$w" "$work/logs/$w.cold$i.strata" "$ctx"
    echo "$T" >> "$work/results/$w.cold.strata"; echo "$RSS" >> "$work/results/$w.cold.rss"
    peers "$w" cold "$i"
  done
  record "$w" cold
  prev=$DIGEST
  # cached: unchanged context, same stores as the last cold run.
  for i in $(seq 1 "$RUNS"); do
    strata_build "$w" "$work/logs/$w.cached$i.strata" "$ctx"
    echo "$T" >> "$work/results/$w.cached.strata"; echo "$RSS" >> "$work/results/$w.cached.rss"
    if [ "$DIGEST" != "$prev" ]; then
      echo "   DIGEST MISMATCH: cached rebuild printed $DIGEST, previous build $prev" | tee -a "$work/results/notes"
      failures=$((failures + 1))
    fi
    grep -q ' 0 cached)' "$work/logs/$w.cached$i.strata.err" && \
      echo "   NOTE: $w cached run $i reported 0 cached steps" | tee -a "$work/results/notes"
    peers "$w" cached "$i"
  done
  record "$w" cached
  # changed: a new marker.txt each run; only the late COPY misses.
  for i in $(seq 1 "$RUNS"); do
    echo "marker $i" > "$ctx/marker.txt"
    strata_build "$w" "$work/logs/$w.changed$i.strata" "$ctx"
    echo "$T" >> "$work/results/$w.changed.strata"; echo "$RSS" >> "$work/results/$w.changed.rss"
    if [ "$DIGEST" = "$prev" ]; then
      echo "   DIGEST UNCHANGED: rebuild after a marker change printed the old digest $DIGEST" | tee -a "$work/results/notes"
      failures=$((failures + 1))
    fi
    prev=$DIGEST
    peers "$w" changed "$i"
  done
  record "$w" changed
  if [ "$w" = w2-context ]; then
    # edit1: rewrite one of the 2,000 files (same size, new bytes).
    for i in $(seq 1 "$RUNS"); do
      head -c "$(stat -c %s "$ctx/data/d07/f042")" /dev/urandom > "$work/edit" && mv "$work/edit" "$ctx/data/d07/f042"
      strata_build "$w" "$work/logs/$w.edit1$i.strata" "$ctx"
      echo "$T" >> "$work/results/$w.edit1.strata"; echo "$RSS" >> "$work/results/$w.edit1.rss"
      if [ "$DIGEST" = "$prev" ]; then
        echo "   DIGEST UNCHANGED after editing a data file: $DIGEST" | tee -a "$work/results/notes"
        failures=$((failures + 1))
      fi
      prev=$DIGEST
      peers "$w" edit1 "$i"
    done
    record "$w" edit1
  fi
  # Drop this workload's stores now (w2 and w4 hold hundreds of MiB each).
  bah "$w" rm --all >/dev/null 2>&1 || true
  unmount_under "$work/b-$w"
  rm -rf "$work/s-$w" "$work/b-$w"
  [ "$BUILDKIT" = 1 ] && fresh_buildkit
done

echo
echo "== results (median of $RUNS runs; w4 cold: 1 run; ratio = peer / strata, >1 means strata is faster)"
echo "== machine limits: sha256 $LIMIT_SHA MB/s, write+fsync $LIMIT_WRITE MB/s"
echo "| workload | mode | strata s | buildah s | ratio | BuildKit s | ratio | strata RSS |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
while read -r w m s b k r; do
  printf '| %s | %s | %.3f | %.3f | %.1fx | %s | %s | %d MiB |\n' "$w" "$m" "$s" "$b" \
    "$(awk -v s="$s" -v b="$b" 'BEGIN {print (s > 0 ? b / s : 0)}')" \
    "$([ "$BUILDKIT" = 1 ] && printf '%.3f' "$k" || echo -)" \
    "$([ "$BUILDKIT" = 1 ] && awk -v s="$s" -v b="$k" 'BEGIN {printf "%.1fx", (s > 0 ? b / s : 0)}' || echo -)" "$r"
done < "$work/results/table"
[ -f "$work/results/notes" ] && { echo "notes:"; cat "$work/results/notes"; }
echo "== load after: $(uptime)"
echo "buildah: buildah build --layers --runtime runc --isolation oci --network host --pull=never, storage-driver overlay (own --root/--runroot)"
[ "$failures" = 0 ] || { echo "build_bench: $failures digest check(s) failed" >&2; exit 1; }
