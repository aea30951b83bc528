#!/usr/bin/env bash
# Layer commit throughput: strata's writer (tar -> sha256 -> gzip|zstd ->
# sha256 -> store) against the classic pipelines on the same data, same run.
#
#   tools/bench/layer_bench.sh [BUILD_DIR [BASE_BUILD_DIR]]   (default: build)
#
# Data sets (made once under $BENCH_DIR, default /tmp/strata-layer-bench):
#   random: one 1 GiB file of random bytes (incompressible: measures overhead)
#   tree:   2000 files of 40-500 KiB from /usr/lib, /usr/share, /usr/include
#           (every 4th in path order: ~230 MB, binaries, text, some .gz)
#   tree2:  tree with one file changed (hard links to tree, one copy)
# Prints, per data set, seconds, MB/s of uncompressed tar, output size, peak
# RSS (/usr/bin/time -v) and, for strata gzip, members reused/compressed/
# stored. "incremental" commits tree, then times tree2 into the same store
# (chunk cache warm). BASE_BUILD_DIR: another build's layer_commit_bench
# (e.g. the parent commit, zlib gzip) in the same run. Uses every core;
# results on a shared machine are noisy: compare ratios within one run, and
# CPU seconds rather than wall time. SETS="tree" runs one data set.
set -euo pipefail
build=${1:-build}
bench=$build/tools/bench/layer_commit_bench
[ -x "$bench" ] || { echo "build layer_commit_bench first ($bench)" >&2; exit 1; }
base=${2:+$2/tools/bench/layer_commit_bench}
data=${BENCH_DIR:-/tmp/strata-layer-bench}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$data"
if [ ! -f "$data/random/blob" ]; then
  mkdir -p "$data/random"
  head -c $((1024 * 1024 * 1024)) /dev/urandom > "$data/random/blob"
fi
if [ ! -d "$data/tree" ]; then
  mkdir -p "$data/tree"
  find /usr/lib /usr/share /usr/include -type f -size +40k -size -500k 2>/dev/null |
    sort | awk 'NR % 4 == 1' | head -n 2000 > "$out/list" || true
  xargs -d '\n' cp --parents -t "$data/tree" < "$out/list"
fi
if [ ! -d "$data/tree2" ]; then
  cp -al "$data/tree" "$data/tree2"
  f=$(find "$data/tree2" -type f | sort | sed -n 1000p)
  cp --remove-destination "$f" "$f.tmp" && mv "$f.tmp" "$f"
  echo "/* changed */" >> "$f"
fi

# measure NAME OUTFILE CMD...: runs CMD under /usr/bin/time -v; prints a row
# (wall seconds, MB/s, output bytes, CPU seconds user+sys, peak RSS). For an
# incremental row the seconds are the bench's own timing of the second commit
# and CPU and RSS cover both commits.
measure() {
  local name=$1 outfile=$2; shift 2
  /usr/bin/time -v -o "$out/time" "$@" > "$out/stdout"
  local secs rss size cpu
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$out/time")
  case $name in *incremental*) secs=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' "$out/stdout") ;; esac
  cpu=$(awk -F': ' '/User time|System time/ {s+=$2} END {print s}' "$out/time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print int($2/1024)}' "$out/time")
  if [ -n "$outfile" ]; then size=$(stat -c %s "$outfile"); else size=$(sed -n 's/.*blob_bytes=\([0-9]*\).*/\1/p' "$out/stdout"); fi
  printf '%-26s %8.2f s %9.1f MB/s %12d bytes %7.2f s CPU %6d MiB RSS %s\n' "$name" "$secs" \
    "$(echo "$tar_bytes / 1000000 / $secs" | bc -l)" "$size" "$cpu" "$rss" \
    "$(grep -o 'reused=.*' "$out/stdout" || true)"
}

for set in ${SETS:-random tree}; do
  dir=$data/$set
  tar_bytes=$(tar -cf - -C "$dir" . | wc -c)
  echo "== $set: $(find "$dir" -type f | wc -l) files, $tar_bytes tar bytes, $(nproc) cores"
  if [ -n "$base" ]; then
    measure "base gzip (level 1)" "" "$base" "$dir" gzip
    measure "base gzip -6" "" "$base" "$dir" gzip 6
  fi
  measure "strata gzip (level 1)" "" "$bench" "$dir" gzip
  measure "strata gzip -6" "" "$bench" "$dir" gzip 6
  if [ "$set" = tree ]; then
    measure "strata gzip incremental" "" "$bench" "$dir" gzip -1 0 "$data/tree2"
    measure "strata gzip -6 incremental" "" "$bench" "$dir" gzip 6 0 "$data/tree2"
  fi
  measure "strata zstd (level 3)" "" "$bench" "$dir" zstd
  measure "tar | gzip -1" "$out/o" sh -c "tar -cf - -C '$dir' . | gzip -1 > '$out/o'"
  measure "tar | gzip -6" "$out/o" sh -c "tar -cf - -C '$dir' . | gzip -6 > '$out/o'"
  measure "tar | pigz (-6)" "$out/o" sh -c "tar -cf - -C '$dir' . | pigz > '$out/o'"
  measure "tar | pigz -1" "$out/o" sh -c "tar -cf - -C '$dir' . | pigz -1 > '$out/o'"
  measure "tar | zstd -T0" "$out/o" sh -c "tar -cf - -C '$dir' . | zstd -q -T0 > '$out/o'"
done
