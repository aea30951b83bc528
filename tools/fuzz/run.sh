#!/usr/bin/env bash
# Builds the libFuzzer targets into build-fuzz/ (clang, ASan+UBSan) and runs
# each from its seed corpus for a bounded time; fails on the first crash,
# leak, sanitizer report or timeout, leaving the input in build-fuzz/crashes/.
#   tools/fuzz/run.sh [SECONDS] [TARGET...]    (default 15 s each, all targets)
# New inputs found go to build-fuzz/corpus/<target>/ (not committed); copy
# interesting ones into tools/fuzz/corpus/<target>/ by hand.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}
shift || true
cc=${STRATA_FUZZ_CC:-clang-16}
cxx=${STRATA_FUZZ_CXX:-clang++-16}
build=build-fuzz
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
if [ ! -f "$build/build.ninja" ]; then
  CC=$cc CXX=$cxx cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSTRATA_FUZZ=ON -DSTRATA_BUILD_TESTS=OFF -DSTRATA_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null
fi
cmake --build "$build" -j"${STRATA_JOBS:-$(nproc)}" --target strata_fuzz

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$build"/tools/fuzz/fuzz_*; do targets+=("$(basename "$f" | sed 's/^fuzz_//')"); done
fi
mkdir -p "$build/crashes"
failed=()
for t in "${targets[@]}"; do
  seeds=tools/fuzz/corpus/$t
  work=$build/corpus/$t
  # A fresh working corpus each run, so the seed alone decides the inputs.
  rm -rf "$work"
  mkdir -p "$work"
  log=$build/fuzz_$t.log
  # -timeout: one input taking longer than 10 s is a hang; -rss_limit_mb keeps
  # a runaway allocation a finding instead of an OOM kill.
  # -seed: the same inputs in the same order on every run (CI stays
  # reproducible: what a longer run with this seed passed, a shorter one
  # passes); STRATA_FUZZ_SEED=0 lets libFuzzer pick one for exploring.
  if "$build/tools/fuzz/fuzz_$t" "$work" "$seeds" -max_total_time="$seconds" -timeout=10 \
       -seed="${STRATA_FUZZ_SEED:-1}" \
       -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/crashes/$t-" \
       >"$log" 2>&1; then
    echo "fuzz $t: ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs in ${seconds}s)"
  else
    echo "fuzz $t: FAILED, see $log; input in $build/crashes/"
    grep -E 'ERROR|FUZZ_CHECK|runtime error|Test unit written' "$log" | head -5 || true
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failures in ${failed[*]}" >&2
  exit 1
fi
