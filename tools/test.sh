#!/usr/bin/env bash
# Builds if needed and runs every test suite (unit and integration) with ctest.
#   tools/test.sh            all tests
#   tools/test.sh -L unit    only the fast hermetic ones
#   STRATA_SANITIZE=1 tools/test.sh   ASan+UBSan build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
extra=()
if [ "${STRATA_SANITIZE:-0}" = 1 ]; then
  build=build-asan
  extra=(-DSTRATA_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
fi
if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${extra[@]}" >/dev/null
fi
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure --timeout 600 "$@"
