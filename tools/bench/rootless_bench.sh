#!/usr/bin/env bash
# Rootless build benchmark: the same Dockerfiles built as one unprivileged
# user by rootless strata and by rootless buildah (`buildah build --layers`,
# --storage-driver overlay, runc, OCI isolation in buildah's own user
# namespace), side by side in one run, on a local busybox base.
#
#   tools/bench/rootless_bench.sh [path/to/strata]     (root; default $STRATA or build/strata)
#
# The user is tools/rootless-test-user.sh's (created if missing, with
# /etc/subuid and /etc/subgid ranges); both tools run through `runuser`, with
# their storage in a temp dir in that user's home. RUN steps use
# --network none for both (the default network's NAT needs /dev/net/tun, which
# some hosts keep from unprivileged users).
#
# Workloads:
#   w1-multi    the integration test's image: two stages, COPY --from, RUN as
#               root and as USER 1000, COPY --chown=1000:1000, a whiteout and an
#               opaque directory
#   w2-context  COPY of a generated context (1,000 files, 100 MiB random), then a RUN
#   w3-runs     five `RUN true` steps (the fixed cost of a rootless RUN step)
# Modes:
#   cold     fresh storage for each tool; the base image is loaded first, not timed
#   cached   fully cached rebuild of the unchanged context
# Each mode is the median of BENCH_RUNS (default 3) runs, the tools
# alternating. Prints seconds and the ratio buildah/strata (>1: strata is
# faster). Checks that strata's cached rebuild prints the digest of the build
# before it. BENCH_TIMEOUT=S bounds each build (default 600). The temp dir is
# removed on exit.
set -euo pipefail

STRATA=${1:-${STRATA:-build/strata}}
RUNS=${BENCH_RUNS:-3}
TIMEOUT=${BENCH_TIMEOUT:-600}
USER_NAME=${BENCH_USER:-strata-rootless-test}
here=$(cd "$(dirname "$0")/../.." && pwd)

[ "$(id -u)" = 0 ] || { echo "rootless_bench: run as root (it creates the test user and runs as it)" >&2; exit 1; }
[ -x "$STRATA" ] || { echo "rootless_bench: strata binary not found: $STRATA" >&2; exit 1; }
for t in buildah runc runuser timeout newuidmap; do
  command -v "$t" >/dev/null || { echo "rootless_bench: $t missing" >&2; exit 1; }
done
"$here/tools/rootless-test-user.sh" "$USER_NAME"
home=$(getent passwd "$USER_NAME" | cut -d: -f6)

work=$(mktemp -d "$home/rootless-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
chown "$USER_NAME" "$work"
install -m 0755 "$STRATA" "$work/strata"
"$here/tools/make-busybox-rootfs.sh" "$work/rootfs" >/dev/null
chmod -R a+rX "$work/rootfs"

as_user() {
  (cd "$work" && runuser -u "$USER_NAME" -- env -i HOME="$home" USER="$USER_NAME" \
    PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin timeout "$TIMEOUT" "$@")
}
# The base, once: a strata store's busybox saved as an OCI archive both load.
as_user "$work/strata" --root "$work/seed" import "$work/rootfs" busybox:latest >/dev/null
as_user "$work/strata" --root "$work/seed" save busybox:latest --format oci-archive \
  -o "$work/busybox.tar"

# Contexts.
mkdir -p "$work/ctx"
mk_ctx() {
  local name=$1 from=$2
  local d="$work/ctx/$name"
  mkdir -p "$d"
  case $name in
    w1-multi)
      echo chowned >"$d/f.txt"
      cat >"$d/Dockerfile" <<EOF
FROM $from AS build
RUN mkdir -p /data && echo old > /data/old && echo built > /artifact
FROM $from
COPY --from=build /artifact /artifact
RUN mkdir -p /data && echo old > /data/old1 && echo old > /data/old2
COPY --chown=1000:1000 f.txt /home/app/f.txt
RUN rm /bin/vi && rm -rf /data && mkdir /data && echo new > /data/new
USER 1000
RUN id -u > /tmp/uid && echo by-app > /tmp/by-app
EOF
      ;;
    w2-context)
      mkdir -p "$d/src"
      for i in $(seq 1 10); do
        mkdir -p "$d/src/d$i"
        for j in $(seq 1 100); do
          head -c 104857 /dev/urandom >"$d/src/d$i/f$j"
        done
      done
      printf 'FROM %s\nCOPY src /src\nRUN du -s /src > /du.txt\n' "$from" >"$d/Dockerfile"
      ;;
    w3-runs)
      { echo "FROM $from"; for i in 1 2 3 4 5; do echo "RUN true"; done; } >"$d/Dockerfile"
      ;;
  esac
}
for w in w1-multi w2-context w3-runs; do
  mk_ctx "$w" busybox
  # buildah: the same context, its base named as buildah stores it.
  cp -r "$work/ctx/$w" "$work/ctx/$w-buildah"
  sed -i 's|^FROM busybox|FROM localhost/busybox:latest|' "$work/ctx/$w-buildah/Dockerfile"
done
chmod -R a+rX "$work/ctx"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

strata_reset() {
  rm -rf "$work/s-store"
  as_user "$work/strata" --root "$work/s-store" load -i "$work/busybox.tar" >/dev/null
}
strata_build() {  # ctx -> prints seconds; digest in $work/s-digest
  local t0 t1
  t0=$(now)
  as_user "$work/strata" --root "$work/s-store" build -q --network none "$work/ctx/$1" \
    >"$work/s-out" 2>"$work/s-err" || { cat "$work/s-err" >&2; exit 1; }
  t1=$(now)
  tail -1 "$work/s-out" >"$work/s-digest"
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}
buildah_args() {
  echo --root "$work/b-root" --runroot "$work/b-run" --storage-driver overlay
}
buildah_reset() {
  rm -rf "$work/b-root" "$work/b-run"
  # shellcheck disable=SC2046
  as_user buildah $(buildah_args) pull -q "oci-archive:$work/busybox.tar" >/dev/null
  # shellcheck disable=SC2046
  as_user buildah $(buildah_args) tag "$(as_user buildah $(buildah_args) images -q | head -1)" \
    localhost/busybox:latest
}
buildah_build() {
  local t0 t1
  t0=$(now)
  # shellcheck disable=SC2046
  as_user buildah $(buildah_args) build --layers --pull=never --runtime runc --network none \
    -q "$work/ctx/$1-buildah" >/dev/null 2>"$work/b-err" || { cat "$work/b-err" >&2; exit 1; }
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

echo "# rootless_bench: $(uname -r), $(nproc) cores, user $USER_NAME ($(grep "^$USER_NAME:" /etc/subuid))"
echo "# $(buildah --version), $(runc --version | head -1)"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-12s %-7s %9s %9s %8s\n' workload mode strata buildah ratio
for w in w1-multi w2-context w3-runs; do
  declare -a sc=() bc_=() sh=() bh=()
  for r in $(seq 1 "$RUNS"); do
    # cold, then cached, alternating which tool goes first.
    if [ $((r % 2)) = 1 ]; then
      strata_reset; sc+=("$(strata_build "$w")"); first=$(cat "$work/s-digest")
      sh+=("$(strata_build "$w")")
      buildah_reset; bc_+=("$(buildah_build "$w")"); bh+=("$(buildah_build "$w")")
    else
      buildah_reset; bc_+=("$(buildah_build "$w")"); bh+=("$(buildah_build "$w")")
      strata_reset; sc+=("$(strata_build "$w")"); first=$(cat "$work/s-digest")
      sh+=("$(strata_build "$w")")
    fi
    if [ "$(cat "$work/s-digest")" != "$first" ]; then
      echo "rootless_bench: $w: the cached rebuild gave $(cat "$work/s-digest"), not $first" >&2
      exit 1
    fi
  done
  for mode in cold cached; do
    if [ $mode = cold ]; then
      s=$(printf '%s\n' "${sc[@]}" | median); b=$(printf '%s\n' "${bc_[@]}" | median)
    else
      s=$(printf '%s\n' "${sh[@]}" | median); b=$(printf '%s\n' "${bh[@]}" | median)
    fi
    printf '%-12s %-7s %9.2f %9.2f %7.2fx\n' "$w" "$mode" "$s" "$b" "$(awk -v b="$b" -v s="$s" 'BEGIN { print b / s }')"
  done
  unset sc bc_ sh bh
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
