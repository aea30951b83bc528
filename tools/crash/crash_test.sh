#!/usr/bin/env bash
# Crash test: SIGKILLs strata at random points of build / prune / pull / push /
# load runs against one store, and after every kill checks that the store is
# still right:
#   - the next build of the same Dockerfile gives the reference image digest
#     (SOURCE_DATE_EPOCH makes it reproducible), both from the cache and with
#     --no-cache (which re-runs every RUN on the snapshots left behind);
#     the RUN prints a file count and a listing hash that are part of the layer,
#   - `strata fsck` passes,
#   - the older images (stable:2, busybox) keep their digests,
#   - after that next strata command: no mounts under the store
#     (/proc/self/mountinfo) and no runc containers in ROOT/runtime,
#   - the killed operation, run again, succeeds.
# Pull and push go to a docker-registry started on 127.0.0.1 (stopped at exit).
#
# usage: tools/crash/crash_test.sh [--runs N] [--files N] [--seed N]
#                                  [--strata BIN] [--work DIR] [--keep]
#                                  [--strict-leftovers] [--ops build,prune,...]
#   --runs 20 --files 2000 is the bounded mode ctest runs (< 3 min);
#   --runs 100 (or more) --files 6000 the full one.
# Exit 0 if there were no wrong builds, fsck failures, changed images or failed
# re-runs (leftover mounts/containers fail the run only with
# --strict-leftovers); the counts are printed last.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
runs=20
files=2000
seed=$$
strata_bin=""
work=""
keep=0
strict_leftovers=0
only_ops=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --files) files=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --strata) strata_bin=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --strict-leftovers) strict_leftovers=1; shift ;;
    --ops) IFS=, read -r -a only_ops <<< "$2"; shift 2 ;;
    *) echo "crash_test: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$strata_bin" ] || strata_bin="$src/build/strata"
[ -x "$strata_bin" ] || { echo "crash_test: $strata_bin is not executable" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "crash_test: needs root (overlayfs, runc)" >&2; exit 77; }
command -v docker-registry >/dev/null || { echo "crash_test: docker-registry missing" >&2; exit 77; }
[ -n "$work" ] || work=$(mktemp -d /tmp/strata-crash-XXXXXX)
mkdir -p "$work"
root="$work/store"
log="$work/log"
mkdir -p "$log"
RANDOM=$seed
export SOURCE_DATE_EPOCH=1700000000
S() { "$strata_bin" --root "$root" --tls-verify=false "$@"; }

registry_pid=""
cleanup() {
  if [ -n "$registry_pid" ]; then
    kill "$registry_pid" 2>/dev/null
    wait "$registry_pid" 2>/dev/null
  fi
  if [ "$keep" = 0 ]; then
    reap_leftovers >/dev/null 2>&1
    rm -rf "$work"
  else
    echo "crash_test: work dir kept: $work"
  fi
}
trap cleanup EXIT

# --- leftovers: mounts under the store, runc containers of the store --------
count_mounts() { awk -v r="$root/" 'index($5, r) == 1' /proc/self/mountinfo | wc -l; }
count_containers() {
  [ -d "$root/runtime" ] || { echo 0; return; }
  runc --root "$root/runtime" list -q 2>/dev/null | grep -c . || true
}
# Removes what a killed run left (ours only: containers in this store's runc
# root, mounts under this store), so that one kill is counted once.
reap_leftovers() {
  if [ -d "$root/runtime" ]; then
    for id in $(runc --root "$root/runtime" list -q 2>/dev/null); do
      runc --root "$root/runtime" kill "$id" KILL 2>/dev/null
      runc --root "$root/runtime" delete -f "$id" 2>/dev/null
    done
  fi
  awk -v r="$root/" 'index($5, r) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
}

# --- registry ---------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg="127.0.0.1:$port"
mkdir -p "$work/registry"
cat > "$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
  delete:
    enabled: true
http:
  addr: $reg
EOF
docker-registry serve "$work/registry.yml" > "$log/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do
  curl -sf "http://$reg/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://$reg/v2/" >/dev/null || { echo "crash_test: registry did not start" >&2; exit 1; }

# --- base image and contexts -------------------------------------------------
"$src/tools/make-busybox-rootfs.sh" "$work/rootfs" >/dev/null || exit 1
S import "$work/rootfs" busybox:latest >/dev/null || exit 1

ctx="$work/ctx"
mkdir -p "$ctx"
head -c 300000 /dev/urandom > "$ctx/blob.bin"
echo "context file" > "$ctx/note.txt"
# Multi-stage: a RUN that makes many files, COPY from the context and from the
# first stage, and a RUN that lists what it sees into the layer (and prints it):
# names and contents only (an adopted snapshot keeps real mtimes, an unpacked one
# the clamped ones; the layers are the same).
cat > "$ctx/Dockerfile" <<EOF
FROM busybox AS gen
ARG SALT=
RUN mkdir -p /data && cd /data && i=0 && while [ \$i -lt $files ]; do echo "\$i\$SALT" > f\$i; i=\$((i+1)); done
RUN find /data -type f | wc -l > /gen-count && cat /gen-count
FROM busybox
COPY note.txt blob.bin /ctx/
COPY --from=gen /data /data
RUN echo "files: \$(find /data -type f | wc -l)" > /seen && (find /data /ctx /bin | sort; cat /data/* /ctx/*) | md5sum >> /seen && cat /seen
EOF

timed() {
  local t0 rc
  t0=$(date +%s.%N)
  "$@"
  rc=$?
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f\n", b - a }' > "$work/last-time"
  return $rc
}
last_time() { cat "$work/last-time"; }

ref=$(timed S build -q -t stable:1 "$ctx" 2> "$log/ref.err" | tail -1)
[ -n "$ref" ] || { cat "$log/ref.err"; echo "crash_test: reference build failed" >&2; exit 1; }
t_build=$(last_time)
# The older image: its own chains (salted), tagged all along.
S build -q --build-arg SALT=stable -t stable:2 "$ctx" > /dev/null 2>&1 || exit 1
seen_ref=$(S unpack stable:1 "$work/u" >/dev/null 2>&1 && cat "$work/u/seen"); rm -rf "$work/u"
# Untagged, the reference's snapshots are prunable: a killed prune can leave
# them half deleted for the next build (the 9-of-9 failure this test guards).
S rmi stable:1 > /dev/null 2>&1
# A second, independent fresh build must agree (else the digest check means nothing).
ref2=$(S build -q --no-cache "$ctx" 2> "$log/ref2.err" | tail -1)
[ "$ref" = "$ref2" ] || { echo "crash_test: build is not reproducible ($ref vs $ref2)" >&2; exit 1; }

# Images that only the registry / an archive hold, so that pull and load write.
S build -q --build-arg SALT=pull -t pullsrc:1 "$ctx" > /dev/null 2>&1 || exit 1
S push pullsrc:1 "$reg/crash/pull:1" > "$log/push-setup.log" 2>&1 || { cat "$log/push-setup.log"; exit 1; }
S build -q --build-arg SALT=load -t loadme:1 "$ctx" > /dev/null 2>&1 || exit 1
S save loadme:1 -o "$work/loadme.tar" > /dev/null 2>&1 || exit 1
S rmi pullsrc:1 loadme:1 > /dev/null 2>&1
S prune --all > /dev/null 2>&1

older() {
  for r in stable:2 busybox:latest; do
    printf '%s %s\n' "$r" "$(S inspect "$r" 2>&1 | sha256sum | cut -c1-16)"
  done
}
older > "$work/older.before"

# --- per-operation preparation, command, re-run -------------------------------
prepare() {  # $1 op, $2 run index
  case "$1" in
    prune)  # untagged snapshots of the very chains the next build uses
      S build -q --no-cache "$ctx" > /dev/null 2>&1 ;;
    pull)  # --all: the cache records of the setup build keep its blobs otherwise
      S rmi "$reg/crash/pull:1" > /dev/null 2>&1
      S prune --all > /dev/null 2>&1 ;;
    load)
      S rmi loadme:1 > /dev/null 2>&1
      S prune --all > /dev/null 2>&1 ;;
    *) ;;
  esac
}
command_for() {  # $1 op, $2 run index
  case "$1" in
    build) echo "build -q --no-cache -t work:1 $ctx" ;;
    build-cached) echo "build -q -t work:2 $ctx" ;;
    prune) echo "prune" ;;
    pull) echo "pull $reg/crash/pull:1" ;;
    push) echo "push stable:2 $reg/crash/push$2:1" ;;
    load) echo "load -i $work/loadme.tar" ;;
  esac
}

ops=(build prune pull push load build-cached)
[ ${#only_ops[@]} -gt 0 ] && ops=("${only_ops[@]}")
declare -A t_op killed_n done_n
for op in "${ops[@]}"; do killed_n[$op]=0; done_n[$op]=0; done
# Calibrate: how long each operation takes unkilled (kills land in [0, 1.2 t]).
for op in "${ops[@]}"; do
  prepare "$op" 0
  timed S $(command_for "$op" 0) > "$log/calibrate-$op.log" 2>&1 ||
    { cat "$log/calibrate-$op.log"; echo "crash_test: $op failed unkilled" >&2; exit 1; }
  t_op[$op]=$(last_time)
done

wrong_builds=0 fsck_failures=0 changed_images=0 leftover_mounts=0 leftover_containers=0
failed_reruns=0 runs_with_leftovers=0
echo "crash_test: seed $seed, $runs runs, $files files, store $root"
echo "crash_test: reference $ref ($(echo "$seen_ref" | tr '\n' ' '))"
for op in "${ops[@]}"; do printf 'crash_test: %-12s %.2fs unkilled\n' "$op" "${t_op[$op]}"; done

for i in $(seq 1 "$runs"); do
  op=${ops[$((RANDOM % ${#ops[@]}))]}
  prepare "$op" "$i"
  delay=$(awk -v t="${t_op[$op]}" -v r="$RANDOM" 'BEGIN { printf "%.3f", t * 1.2 * r / 32768 }')
  cmd=$(command_for "$op" "$i")
  S $cmd > "$log/run-$i.log" 2>&1 &
  pid=$!
  sleep "$delay"
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null
    killed_n[$op]=$((killed_n[$op] + 1))
    what="killed after ${delay}s"
  else
    done_n[$op]=$((done_n[$op] + 1))
    what="finished before ${delay}s"
  fi
  wait "$pid" 2>/dev/null
  problems=""
  # The next build: from the cache, then re-running every step.
  d1=$(S build -q -t check:1 "$ctx" 2> "$log/check-$i.err" | tail -1)
  d2=$(S build -q --no-cache -t check:2 "$ctx" 2>> "$log/check-$i.err" | tail -1)
  if [ "$d1" != "$ref" ] || [ "$d2" != "$ref" ]; then
    wrong_builds=$((wrong_builds + 1))
    seen=$(S unpack check:2 "$work/u$i" >/dev/null 2>&1 && cat "$work/u$i/seen"); rm -rf "$work/u$i"
    problems+=" wrong-build(cached=${d1:-error} fresh=${d2:-error} seen=[$(echo "$seen" | tr '\n' ' ')] $(tail -2 "$log/check-$i.err" | tr '\n' ' '))"
  fi
  # Leftovers after that next strata command.
  m=$(count_mounts) c=$(count_containers)
  if [ "$m" -gt 0 ] || [ "$c" -gt 0 ]; then
    leftover_mounts=$((leftover_mounts + m))
    leftover_containers=$((leftover_containers + c))
    runs_with_leftovers=$((runs_with_leftovers + 1))
    problems+=" leftovers(mounts=$m containers=$c)"
    reap_leftovers
  fi
  if ! S fsck > "$log/fsck-$i.log" 2>&1; then
    fsck_failures=$((fsck_failures + 1))
    problems+=" fsck($(head -3 "$log/fsck-$i.log" | tr '\n' ' '))"
  fi
  older > "$work/older.after"
  if ! cmp -s "$work/older.before" "$work/older.after"; then
    changed_images=$((changed_images + 1))
    problems+=" changed-images($(diff "$work/older.before" "$work/older.after" | grep '^>' | tr '\n' ' '))"
  fi
  # The killed operation itself, again, must work.
  case "$op" in
    pull|load|push)
      if ! S $cmd > "$log/rerun-$i.log" 2>&1; then
        failed_reruns=$((failed_reruns + 1))
        problems+=" rerun-failed($(tail -1 "$log/rerun-$i.log"))"
      fi ;;
  esac
  S rmi check:1 check:2 work:1 work:2 > /dev/null 2>&1
  printf 'run %3d %-12s %-26s %s\n' "$i" "$op" "$what" "${problems:-ok}"
done

echo
echo "crash_test: $runs runs (seed $seed, $files files per RUN)"
for op in "${ops[@]}"; do
  printf '  %-12s killed %3d, finished before the kill %3d\n' "$op" "${killed_n[$op]}" "${done_n[$op]}"
done
echo "  wrong later builds:   $wrong_builds"
echo "  fsck failures:        $fsck_failures"
echo "  changed older images: $changed_images"
echo "  failed re-runs:       $failed_reruns"
echo "  leftovers:            $runs_with_leftovers runs ($leftover_mounts mounts, $leftover_containers runc containers)"
bad=$((wrong_builds + fsck_failures + changed_images + failed_reruns))
[ "$strict_leftovers" = 1 ] && bad=$((bad + runs_with_leftovers))
[ "$bad" = 0 ]
