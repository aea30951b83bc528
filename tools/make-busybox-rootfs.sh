#!/usr/bin/env bash
# Lays out a minimal busybox rootfs in DIR from Debian's busybox-static package:
# /bin/busybox plus one symlink per applet, /etc/passwd, /etc/group, /tmp, /root.
# Used by tests and benchmarks to make base images offline:
#   tools/make-busybox-rootfs.sh /tmp/rootfs && build/strata import /tmp/rootfs busybox:latest
set -euo pipefail
dir=${1:?usage: make-busybox-rootfs.sh DIR}
bb=${BUSYBOX:-/bin/busybox}
if ! "$bb" --list >/dev/null 2>&1; then
  echo "make-busybox-rootfs: $bb not found or not runnable; apt-get install busybox-static" >&2
  exit 1
fi
if file -L "$bb" 2>/dev/null | grep -q 'dynamically linked'; then
  echo "make-busybox-rootfs: $bb is dynamically linked; install busybox-static" >&2
  exit 1
fi
mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home,var,proc,sys,dev}
chmod 1777 "$dir/tmp"
chmod 0700 "$dir/root"
install -m 0755 "$bb" "$dir/bin/busybox"
for applet in $("$bb" --list); do
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
