#!/usr/bin/env bash
# Regenerates the hand-made layer tarballs used by tests/oci/layer_reader_test.cc.
# Each one is a hostile or tricky input for the applier; the tars are committed
# so that tests never depend on this script's Python version. Deterministic:
# fixed mtimes, uid/gid 0, no user names.
#   testdata/layers/make.sh            (writes next to this script)
set -euo pipefail
cd "$(dirname "$0")"
python3 - <<'PY'
import gzip, io, tarfile

def entry(name, typ=tarfile.REGTYPE, data=b"", linkname="", mode=0o644, devmajor=0, devminor=0):
    ti = tarfile.TarInfo(name)
    ti.type = typ
    ti.mode = mode
    ti.mtime = 1700000000
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.linkname = linkname
    ti.devmajor, ti.devminor = devmajor, devminor
    ti.size = len(data) if typ == tarfile.REGTYPE else 0
    return ti, (io.BytesIO(data) if typ == tarfile.REGTYPE else None)

def write(path, entries, fmt=tarfile.GNU_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for ti, f in entries:
            t.addfile(ti, f)
    data = buf.getvalue()
    if path.endswith(".gz"):
        data = gzip.compress(data, compresslevel=9, mtime=0)
    with open(path, "wb") as out:
        out.write(data)

D = tarfile.DIRTYPE
# Paths that climb out of the root.
write("dotdot.tar", [entry("../escaped-dotdot", data=b"x")])
write("dotdot_nested.tar", [entry("a/", D, mode=0o755), entry("a/../../escaped-nested", data=b"x")])
write("absolute.tar", [entry("/escaped-absolute", data=b"x")])
# A symlink used as a parent directory: "up" points above the root, "abs"
# at an absolute directory; writing through them must stay inside the root.
write("symlink_parent.tar", [
    entry("up", tarfile.SYMTYPE, linkname="../../.."),
    entry("up/escaped-symlink", data=b"x"),
])
write("symlink_abs_parent.tar", [
    entry("abs", tarfile.SYMTYPE, linkname="/"),
    entry("abs/escaped-abs-symlink", data=b"x"),
])
# Hardlinks to a path outside the root, and to one not extracted yet.
write("hardlink_outside.tar", [entry("h", tarfile.LNKTYPE, linkname="../../../etc/passwd")])
write("hardlink_unseen.tar", [
    entry("h", tarfile.LNKTYPE, linkname="later"),
    entry("later", data=b"x"),
])
# A device node.
write("device.tar", [entry("dev/", D, mode=0o755),
                     entry("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3)])
# A decompression bomb, tiny: 8 MiB of zeros in about 8 KiB of gzip.
write("bomb.tar.gz", [entry("zeros", data=bytes(8 << 20))])
# Whiteouts that name "." or ".." (would delete the parent or escape).
write("whiteout_dotdot.tar", [entry("a/", D, mode=0o755), entry("a/.wh..", data=b"")])
write("whiteout_dot.tar", [entry(".wh..", data=b"")])
# Valid but tricky: whiteouts and an opaque marker after entries of the same
# layer; they hide lower layers only, so "keep" and "d/new" must survive.
write("same_layer_whiteout.tar", [
    entry("keep", data=b"this layer"),
    entry(".wh.keep", data=b""),
    entry("d/", D, mode=0o755),
    entry("d/new", data=b"new"),
    entry("d/.wh..wh..opq", data=b""),
    entry(".wh.gone", data=b""),
])
PY
echo "wrote $(ls *.tar *.tar.gz | wc -l) tarballs to $(pwd)"
