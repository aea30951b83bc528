#!/usr/bin/env bash
# Lays out a minimal busybox rootfs for another architecture in DIR, offline
# apart from apt: Debian's busybox-static:ARCH (needs `dpkg --add-architecture
# ARCH && apt-get update`, which tools/setup.sh does for arm64). The layout is
# make-busybox-rootfs.sh's; the applet list comes from the host's busybox (the
# same Debian version), since the foreign binary cannot run without QEMU.
#   tools/make-foreign-busybox-rootfs.sh arm64 /tmp/rootfs-arm64 &&
#   build/strata import --platform linux/arm64 /tmp/rootfs-arm64 busybox:arm64
# The .deb is cached in ${STRATA_DEB_CACHE:-/var/cache/strata-debs}.
set -euo pipefail
arch=${1:?usage: make-foreign-busybox-rootfs.sh ARCH DIR}
dir=${2:?usage: make-foreign-busybox-rootfs.sh ARCH DIR}
cache=${STRATA_DEB_CACHE:-/var/cache/strata-debs}
host_bb=${BUSYBOX:-/bin/busybox}
mkdir -p "$cache"
deb=$(ls "$cache"/busybox-static_*_"$arch".deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
  if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    echo "make-foreign-busybox-rootfs: dpkg has no $arch architecture; run" \
         "dpkg --add-architecture $arch && apt-get update (tools/setup.sh does)" >&2
    exit 1
  fi
  (cd "$cache" && apt-get download -q "busybox-static:$arch" >/dev/null)
  deb=$(ls "$cache"/busybox-static_*_"$arch".deb | head -n1)
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp"
bb="$tmp/bin/busybox"
[ -f "$bb" ] || { echo "make-foreign-busybox-rootfs: $deb has no bin/busybox" >&2; exit 1; }
if ! "$host_bb" --list >/dev/null 2>&1; then
  echo "make-foreign-busybox-rootfs: host $host_bb not runnable (for the applet list);" \
       "apt-get install busybox-static" >&2
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
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
  > "$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/etc/group"
echo "ok: busybox ($arch) rootfs in $dir"
