#!/usr/bin/env bash
# Installs every Debian package strata needs (idempotent, quiet) and builds
# Release into build/. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git file
  # libraries
  libarchive-dev libssl-dev libzstd-dev zlib1g-dev libisal-dev libdeflate-dev nlohmann-json3-dev
  libcurl4-openssl-dev libcli11-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
  # runtime: RUN steps and overlay snapshots; slirp4netns is the NAT of RUN's
  # default network
  runc slirp4netns
  # real clients and services the integration tests check against
  docker-registry skopeo umoci podman buildah apache2-utils openssl
  busybox-static pigz zstd gzip tar hyperfine python3 curl
  # benchmarks (tools/bench/network_bench.sh builds a Debian rootfs)
  debootstrap
  # quality lanes: libFuzzer targets and clang-tidy (clang 16, not Debian's
  # default 14, which cannot compile libstdc++ 12's std::expected), ccache
  clang-16 libclang-rt-16-dev clang-tidy-16 ccache
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Foreign base images for the multi-platform tests (issue 15): dpkg knows
# arm64, and busybox-static:arm64's .deb is cached where
# tools/make-foreign-busybox-rootfs.sh looks, so the tests run offline. apt
# needs /tmp to be 1777 (its sandbox user writes there).
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
[ "$(stat -c %a /tmp)" = 1777 ] || $SUDO chmod 1777 /tmp
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
fi
debs=/var/cache/strata-debs
if ! ls "$debs"/busybox-static_*_arm64.deb >/dev/null 2>&1; then
  $SUDO mkdir -p "$debs"
  if ! (cd "$debs" && $SUDO apt-get download -qq busybox-static:arm64 2>/dev/null); then
    $SUDO apt-get update -qq
    (cd "$debs" && $SUDO apt-get download -qq busybox-static:arm64 2>/dev/null)
  fi
fi

# STRATA_WERROR=1 (CI) makes any compiler warning an error. ccache, when
# installed, with paths relative to the checkout: another clone hits the cache.
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" \
  -DSTRATA_WERROR="$([ "${STRATA_WERROR:-0}" = 1 ] && echo ON || echo OFF)" >/dev/null
cmake --build build -j"$(nproc)"

# A base image for offline builds: busybox:latest from Debian's busybox-static,
# imported into the default store (or $STRATA_ROOT) unless it is already there.
if ! build/strata inspect busybox:latest >/dev/null 2>&1; then
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  tools/make-busybox-rootfs.sh "$rootfs/rootfs" >/dev/null
  build/strata import "$rootfs/rootfs" busybox:latest >/dev/null
  echo "setup: imported busybox:latest (a base image for offline builds)"
fi
