#!/usr/bin/env bash
# Builds if needed and runs every test suite (unit and integration) with ctest.
#   tools/test.sh            all tests
#   tools/test.sh -L unit    only the fast hermetic ones
#   STRATA_SANITIZE=1 tools/test.sh   ASan+UBSan build (Debug) in build-asan/
#   STRATA_TSAN=1 tools/test.sh       ThreadSanitizer build in build-tsan/; runs
#                                     only the suites that exercise threads
#                                     ($STRATA_TSAN_TESTS, a ctest -R regex)
# Extra arguments go to ctest. STRATA_JOBS overrides the build parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache paths relative to the checkout, so that another clone hits the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
build=build
extra=()
targets=()
filter=()
# The suites with real concurrency, all hermetic: parallel gzip/zstd
# compression and the layer writer's pipeline (oci/compress.cc), the store
# under concurrent writers, the registry client's parallel blob pulls and
# pushes (jobs > 1 against the scripted transport), the shared token cache and
# the retrying transport. Their binaries are the only ones built.
tsan_tests='^(CompressTest|LayerWriterTest|StoreTest|ClientTest|AuthenticatorTest|AuthTransportTest|RetryTransportTest)\.'
tsan_targets=(strata_layer_tests strata_oci_tests strata_registry_tests)
if [ "${STRATA_SANITIZE:-0}" = 1 ] && [ "${STRATA_TSAN:-0}" = 1 ]; then
  echo "test.sh: STRATA_SANITIZE and STRATA_TSAN exclude each other" >&2
  exit 2
fi
if [ "${STRATA_SANITIZE:-0}" = 1 ]; then
  build=build-asan
  extra=(-DSTRATA_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DSTRATA_BUILD_BENCH=OFF)
elif [ "${STRATA_TSAN:-0}" = 1 ]; then
  build=build-tsan
  # -O1: TSan's own slowdown is enough; benchmarks are never built here.
  extra=(-DSTRATA_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATA_BUILD_BENCH=OFF
         -DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1\ -g)
  targets=("${tsan_targets[@]}")
  filter=(-R "${STRATA_TSAN_TESTS:-$tsan_tests}")
  # Fail on the first report, with both stacks; the test binaries run under
  # ctest, so the exit code is what counts.
  export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1}"
fi
# `-L unit` in a sanitizer build: build only the unit test binaries (the
# targets whose gtest_discover_tests carry LABELS unit), not the CLI and the
# integration suites that would not run anyway.
only_unit=0
prev=""
for a in "$@"; do
  if { [ "$prev" = -L ] && [ "$a" = unit ]; } || [ "$a" = -Lunit ]; then only_unit=1; fi
  prev=$a
done
if [ "$build" = build-asan ] && [ "$only_unit" = 1 ]; then
  mapfile -t targets < <(python3 - <<'PY'
import pathlib, re
for f in sorted(pathlib.Path("tests").rglob("*")):
    if f.name == "CMakeLists.txt" or f.suffix == ".cmake":
        for m in re.finditer(r"gtest_discover_tests\(\s*(\w+)([^)]*)\)", f.read_text()):
            if re.search(r"LABELS\s+unit\b", m.group(2)):
                print(m.group(1))
PY
)
fi
if [ "$build" != build ]; then
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1 halt_on_error=1}"
fi
if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
  launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  fi
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "${extra[@]}" >/dev/null
fi
if [ ${#targets[@]} -gt 0 ]; then
  cmake --build "$build" -j"${STRATA_JOBS:-$(nproc)}" --target "${targets[@]}"
else
  cmake --build "$build" -j"${STRATA_JOBS:-$(nproc)}"
fi
cd "$build"
ctest --output-on-failure --timeout 600 "${filter[@]}" "$@"
