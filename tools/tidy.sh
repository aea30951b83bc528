#!/usr/bin/env bash
# Runs clang-tidy (the checks in .clang-tidy) over every strata source file in
# build/compile_commands.json (configure build/ first: tools/setup.sh or
# tools/test.sh). Exit 1 on any finding.
#   tools/tidy.sh [FILE-REGEX]     e.g. tools/tidy.sh '/oci/'
# clang-tidy-16, not 14: clang 14 cannot parse libstdc++ 12's std::expected
# (see tools/fuzz/flags.cmake); the same __cpp_concepts override is passed.
set -euo pipefail
cd "$(dirname "$0")/.."
tidy=${CLANG_TIDY:-clang-tidy-16}
runner=$(command -v run-clang-tidy-16 || command -v run-clang-tidy || true)
[ -f build/compile_commands.json ] || { echo "tidy.sh: no build/compile_commands.json" >&2; exit 2; }
regex=${1:-'/(oci|registry|builder|tools)/.*\.cc$'}
args=(-extra-arg=-U__cpp_concepts -extra-arg=-D__cpp_concepts=202002L
      -extra-arg=-Wno-unknown-warning-option -extra-arg=-Wno-unused-command-line-argument)
start=$(date +%s)
if [ -n "$runner" ]; then
  "$runner" -clang-tidy-binary "$(command -v "$tidy")" -p build -j "${STRATA_JOBS:-$(nproc)}" \
    -quiet "${args[@]}" "$regex" 2>/dev/null | grep -v '^\(clang-tidy\|Running\|[0-9]* warnings\? generated\|Suppressed\)' \
    | tee build/tidy.log
  status=${PIPESTATUS[0]}
else
  status=0
  for f in $(python3 -c 'import json,re,sys; [print(e["file"]) for e in json.load(open("build/compile_commands.json")) if re.search(sys.argv[1], e["file"])]' "$regex" | sort -u); do
    "$tidy" -p build --quiet "${args[@]}" "$f" 2>/dev/null || status=1
  done
fi
echo "tidy.sh: $(( $(date +%s) - start )) s, exit $status" >&2
exit "$status"
