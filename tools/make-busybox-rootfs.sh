#!/usr/bin/env bash
# Lays out a minimal busybox rootfs in DIR from Debian's busybox-static package:
# /bin/busybox plus one symlink per applet, /etc/passwd, /etc/group, /tmp, /root.
# Used by tests and benchmarks to make base images offline:
#   tools/make-busybox-rootfs.sh /tmp/rootfs && build/strata import /tmp/rootfs busybox:latest
# --arch ARCH (a Debian architecture: arm64, armhf, ppc64el, ...) takes the
# busybox of Debian's busybox-static:ARCH instead, for foreign base images:
#   tools/make-busybox-rootfs.sh --arch arm64 /tmp/rootfs-arm64 &&
#     build/strata import --platform linux/arm64 /tmp/rootfs-arm64 busybox:arm64
# The .deb is fetched once with `apt-get download` (needs `dpkg
# --add-architecture ARCH` and apt-get update, which tools/setup.sh does for
# arm64) into $STRATA_DEB_CACHE (default /var/cache/strata-debs), and used
# from there offline afterwards. The applet list is the host busybox's (the
# same Debian package version), since a foreign binary cannot run here
# without emulation.
set -euo pipefail
arch=""
if [ "${1:-}" = "--arch" ]; then
  arch=${2:?usage: make-busybox-rootfs.sh [--arch ARCH] DIR}
  shift 2
fi
dir=${1:?usage: make-busybox-rootfs.sh [--arch ARCH] DIR}
host_bb=${BUSYBOX:-/bin/busybox}
bb=$host_bb
if ! "$host_bb" --list >/dev/null 2>&1; then
  echo "make-busybox-rootfs: $host_bb not found or not runnable; apt-get install busybox-static" >&2
  exit 1
fi
if [ -n "$arch" ] && [ "$arch" != "$(dpkg --print-architecture)" ]; then
  cache=${STRATA_DEB_CACHE:-/var/cache/strata-debs}
  mkdir -p "$cache"
  deb=$(ls "$cache"/busybox-static_*_"$arch".deb 2>/dev/null | tail -n1 || true)
  if [ -z "$deb" ]; then
    if ! (cd "$cache" && apt-get download -q -o APT::Sandbox::User=root "busybox-static:$arch" >/dev/null); then
      echo "make-busybox-rootfs: cannot download busybox-static:$arch (run:" \
        "dpkg --add-architecture $arch && apt-get update)" >&2
      exit 1
    fi
    deb=$(ls "$cache"/busybox-static_*_"$arch".deb | tail -n1)
  fi
  unpacked=$(mktemp -d)
  trap 'rm -rf "$unpacked"' EXIT
  dpkg-deb -x "$deb" "$unpacked"
  bb="$unpacked/bin/busybox"
  [ -f "$bb" ] || { echo "make-busybox-rootfs: $deb has no /bin/busybox" >&2; exit 1; }
fi
if file -L "$bb" 2>/dev/null | grep -q 'dynamically linked'; then
  echo "make-busybox-rootfs: $bb is dynamically linked; install busybox-static" >&2
  exit 1
fi
mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home,var,proc,sys,dev}
chmod 1777 "$dir/tmp"
chmod 0700 "$dir/root"
install -m 0755 "$bb" "$dir/bin/busybox"
for applet in $("$host_bb" --list); do
  [ "$applet" = busybox ] && continue
  [ -e "$dir/bin/$applet" ] || ln -s busybox "$dir/bin/$applet"
done
cat > "$dir/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
P
cat > "$dir/etc/group" <<'G'
root:x:0:
daemon:x:1:
bin:x:2:
wheel:x:10:root,app
staff:x:50:app
nogroup:x:65534:
app:x:1000:
G
mkdir -p "$dir/home/app" && chown 1000:1000 "$dir/home/app" 2>/dev/null || true
echo "ok: busybox rootfs in $dir"
