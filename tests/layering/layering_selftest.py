#!/usr/bin/env python3
"""Runs tools/check_layering.py on mini trees in a temp dir: a clean one must
pass, and one with planted back-edges must fail naming each of them.

    layering_selftest.py PATH/TO/check_layering.py
"""
import os
import subprocess
import sys
import tempfile

CLEAN = {
    "oci/util/error.h": "#pragma once\n",
    "oci/digest.cc": '#include "oci/util/error.h"\n#include <openssl/evp.h>\n',
    "registry/client.cc": '#include "oci/digest.h"\n#include "registry/auth.h"\n',
    "registry/auth.h": "#pragma once\n",
    "tools/curl/curl_transport.cc": "#include <curl/curl.h>\n",
    "builder/frontend/parser.cc": '#include "oci/util/error.h"\n#include "builder/frontend/parser.h"\n',
    "builder/frontend/parser.h": "#pragma once\n",
    "builder/runtime/runner.cc": '#include "oci/util/error.h"\n',
    "builder/engine/executor.cc": ('#include "builder/frontend/parser.h"\n'
                                   '#include "builder/runtime/runner.h"\n'
                                   '#include "local.h"\n'),
    "builder/engine/local.h": "#pragma once\n",
    "tools/strata/main.cc": ('#include "registry/client.h"\n#include "builder/engine/executor.h"\n'
                             '#include "tools/curl/curl_transport.h"\n'),
}

# (file, content, the line the checker must print)
PLANTED = [
    ("oci/store.cc", '#include "oci/digest.h"\n#include "registry/client.h"\n',
     "oci/store.cc:2: oci must not include registry/client.h"),
    ("oci/util/file_util.cc", '  #  include "tools/strata/main.h"\n',
     "oci/util/file_util.cc:1: oci must not include tools/strata/main.h"),
    ("registry/pull.cc", '#include "builder/engine/executor.h"\n',
     "registry/pull.cc:1: registry must not include builder/engine/executor.h"),
    ("builder/engine/fetch.cc", '#include "registry/client.h"\n',
     "builder/engine/fetch.cc:1: builder must not include registry/client.h"),
    ("builder/frontend/plan.cc", '#include "builder/runtime/runner.h"\n',
     "builder/frontend/plan.cc:1: builder/frontend must not include builder/runtime/runner.h"),
    ("builder/frontend/stage.cc", '\n#include "../engine/local.h"\n',
     "builder/frontend/stage.cc:2: builder/frontend must not include builder/engine/local.h"),
    ("builder/runtime/net.cc", '#include "builder/frontend/parser.h"\n',
     "builder/runtime/net.cc:1: builder/runtime must not include builder/frontend/parser.h"),
    ("builder/runtime/spec.h", '#include "builder/engine/executor.h"\n',
     "builder/runtime/spec.h:1: builder/runtime must not include builder/engine/executor.h"),
    ("oci/blob.cc", "#include <curl/curl.h>\n",
     "oci/blob.cc:1: <curl/curl.h> (curl) may only be included from"),
    ("builder/runtime/untar.cc", "#include <archive_entry.h>\n",
     "builder/runtime/untar.cc:1: <archive_entry.h> (libarchive) may only be included from"),
    ("registry/gz.cc", "#include <zlib.h>\n",
     "registry/gz.cc:1: <zlib.h> (zlib) may only be included from"),
]


def make_tree(root, files):
    for rel, content in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(content)


def run(checker, root):
    r = subprocess.run([sys.executable, checker, root], capture_output=True, text=True)
    return r.returncode, r.stdout


def main():
    checker = sys.argv[1]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        clean = os.path.join(tmp, "clean")
        make_tree(clean, CLEAN)
        rc, out = run(checker, clean)
        if rc != 0:
            failures.append(f"clean tree: exit {rc}, want 0:\n{out}")

        dirty = os.path.join(tmp, "dirty")
        make_tree(dirty, CLEAN)
        make_tree(dirty, {rel: content for rel, content, _ in PLANTED})
        rc, out = run(checker, dirty)
        if rc != 1:
            failures.append(f"tree with back-edges: exit {rc}, want 1")
        lines = out.splitlines()
        for _, _, want in PLANTED:
            if not any(line.startswith(want) for line in lines):
                failures.append(f"missing: {want}")
        if len(lines) != len(PLANTED):
            failures.append(f"{len(lines)} lines reported, want {len(PLANTED)}:\n{out}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
