#!/usr/bin/env bash
# Runs clang-tidy (the checks in .clang-tidy) over every strata library and
# tool source (oci/, registry/, builder/, tools/) listed in
# build/compile_commands.json; configure build/ first (tools/setup.sh or
# tools/test.sh). Prints the findings, exit 1 on any.
#   tools/tidy.sh [FILE-REGEX]     e.g. tools/tidy.sh '/oci/digest\.cc$'
# clang-tidy-16, not 14: clang 14 cannot parse libstdc++ 12's std::expected
# (see tools/fuzz/flags.cmake); the same __cpp_concepts override is passed,
# and the compile database is copied to build/tidy/ with g++'s -std=c++23
# spelled -std=c++2b (clang 16 does not know the c++23 spelling).
set -euo pipefail
cd "$(dirname "$0")/.."
tidy=${CLANG_TIDY:-clang-tidy-16}
runner=${RUN_CLANG_TIDY:-run-clang-tidy-16}
[ -f build/compile_commands.json ] || { echo "tidy.sh: no build/compile_commands.json" >&2; exit 2; }
regex=${1:-"^$PWD/(oci|registry|builder|tools)/.*\.cc\$"}
mkdir -p build/tidy
python3 - <<'PY'
import json
db = json.load(open("build/compile_commands.json"))
for e in db:
    e["command"] = e["command"].replace("-std=c++23", "-std=c++2b")
json.dump(db, open("build/tidy/compile_commands.json", "w"), indent=1)
PY
start=$SECONDS
status=0
"$runner" -clang-tidy-binary "$(command -v "$tidy")" -p build/tidy -j "${STRATA_JOBS:-$(nproc)}" \
  -quiet -extra-arg=-U__cpp_concepts -extra-arg=-D__cpp_concepts=202002L \
  -extra-arg=-Wno-unknown-warning-option "$regex" >build/tidy.log 2>&1 || status=$?
# Findings only; the full output is in build/tidy.log.
grep -E '^/.*: (warning|error): ' build/tidy.log | sort -u || true
echo "tidy.sh: $((SECONDS - start)) s, exit $status" >&2
[ "$status" = 0 ] || exit 1
