#!/usr/bin/env python3
"""Checks that every #include follows strata's dependency direction.

    tools/check_layering.py [ROOT]      (ROOT defaults to the repository root)

Reads every `#include "..."` and `#include <...>` in the source folders below
and prints one line per back-edge, e.g.

    oci/store.cc:12: oci must not include registry/client.h

Exit status: 0 clean, 1 violations found, 2 usage error. Run by ctest as
`Layering` (label unit); tests/layering/ plants a back-edge in a mini tree to
show that the check can fail.
"""
import os
import re
import sys

# ---------------------------------------------------------------------------
# The rules, as data.
# ---------------------------------------------------------------------------

# Folders whose files are checked (and their subfolders).
SCANNED = ["oci", "registry", "builder", "tools"]

# FOLDER -> folders it must not include. A file is subject to the rules of
# every folder that contains it, so builder/frontend/x.cc obeys both the
# "builder" and the "builder/frontend" lines. The builder subfolders may not
# exist yet; the rules apply as soon as they do.
#   oci <- registry <- tools,  oci <- builder <- tools,
#   inside builder: frontend, runtime <- engine; frontend and runtime never
#   see each other.
FORBIDDEN = {
    "oci": ["registry", "builder", "tools"],
    "registry": ["builder", "tools"],
    "builder": ["registry", "tools"],
    "builder/frontend": ["builder/runtime", "builder/engine"],
    "builder/runtime": ["builder/engine", "builder/frontend"],
}

# Third-party headers that only some files may include: (label, regex on the
# text between <>, allowed files or folders). An entry ending in "/" allows a
# folder and its subfolders; an entry ending in ".*" allows any extension of
# that file stem; anything else is one file.
THIRD_PARTY = [
    # tar reading/writing: layers, image archives, ADD of local archives.
    ("libarchive", r"archive\.h|archive_entry\.h",
     # oci/util/archive_handle.h is the one RAII wrapper every user goes
     # through; `strata diff` walks layer tars itself.
     ["oci/util/archive_handle.h", "tools/strata/cmd_diff.cc"]),
    # compression codecs live behind oci/compress.h.
    ("zstd", r"zstd\.h", ["oci/compress.cc"]),
    ("zlib", r"zlib\.h", ["oci/compress.cc"]),
    ("libdeflate", r"libdeflate\.h", ["oci/compress.cc"]),
    # ISA-L (igzip) is linked by strata_oci but included nowhere today; if it
    # is ever used directly it belongs next to the other codecs.
    ("isa-l", r"isa-l(\.h|/.*)", ["oci/compress.cc"]),
    # sha256 (digests) and base64 of credentials.
    ("openssl", r"openssl/.*", ["oci/digest.cc", "registry/credentials.cc"]),
    # HTTP: only the curl transport, in tools/ (the only layer that picks a
    # concrete transport; registry/ talks to a Transport interface).
    ("curl", r"curl/curl\.h", ["tools/curl/"]),
]

# ---------------------------------------------------------------------------

SOURCE_EXTENSIONS = (".h", ".hh", ".hpp", ".cc", ".cpp", ".cxx", ".c", ".inc")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
THIRD_PARTY_RES = [(label, re.compile(r"(?:%s)\Z" % pattern), allowed)
                   for label, pattern, allowed in THIRD_PARTY]


def folders_of(path):
    """Every rule folder containing `path` (slash-separated, root-relative)."""
    return [f for f in FORBIDDEN if path.startswith(f + "/")]


def resolve(root, including_file, target):
    """Root-relative path of a quoted include: relative to the including file
    if it exists there, else relative to the root (the project's include dir)."""
    local = os.path.normpath(os.path.join(os.path.dirname(including_file), target))
    if os.path.isfile(os.path.join(root, local)):
        return local.replace(os.sep, "/")
    return os.path.normpath(target).replace(os.sep, "/")


def allowed(path, entries):
    for entry in entries:
        if entry.endswith("/") and path.startswith(entry):
            return True
        if entry.endswith(".*") and os.path.splitext(path)[0] == entry[:-2]:
            return True
        if path == entry:
            return True
    return False


def check_file(root, rel):
    errors = []
    with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            kind, target = m.groups()
            if kind == '"':
                included = resolve(root, rel, target)
                for folder in folders_of(rel):
                    for bad in FORBIDDEN[folder]:
                        if included.startswith(bad + "/"):
                            errors.append(f"{rel}:{lineno}: {folder} must not include {included}")
            else:
                for label, pattern, allowed_in in THIRD_PARTY_RES:
                    if pattern.match(target) and not allowed(rel, allowed_in):
                        errors.append(f"{rel}:{lineno}: <{target}> ({label}) may only be "
                                      f"included from {', '.join(allowed_in)}")
    return errors


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1].startswith("-")):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    root = argv[1] if len(argv) == 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    root = os.path.abspath(root)
    errors = []
    files = 0
    for top in SCANNED:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(SOURCE_EXTENSIONS):
                    rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
                    files += 1
                    errors.extend(check_file(root, rel))
    for e in errors:
        print(e)
    if errors:
        print(f"check_layering: {len(errors)} include(s) against the dependency direction",
              file=sys.stderr)
        return 1
    print(f"check_layering: {files} files, no back-edges")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
