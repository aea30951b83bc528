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
  # rootless builds: newuidmap/newgidmap (tests run as a user they create)
  uidmap
  # real clients and services the integration tests check against
  docker-registry skopeo umoci podman buildah apache2-utils openssl
  busybox-static pigz zstd gzip tar hyperfine python3 curl
  # git sources and --ssh (build runs git, ssh-agent, ssh-add); the git/ssh
  # integration tests start an sshd on 127.0.0.1
  openssh-client openssh-server
  # multi-platform builds: RUN for arm64 under QEMU (strata binfmt --install)
  qemu-user-static
  # benchmarks (tools/bench/network_bench.sh builds a Debian rootfs)
  debootstrap
  # quality lanes: libFuzzer targets and clang-tidy (clang 16, not Debian's
  # default 14, which cannot compile libstdc++ 12's std::expected), ccache
  clang-16 libclang-rt-16-dev clang-tidy-16 ccache
)

# Foreign base images for the multi-platform tests come from Debian's
# busybox-static:arm64 (tools/make-busybox-rootfs.sh --arch arm64): arm64 is
# a dpkg architecture here, added once (then apt-get update).
if [ "$(dpkg --print-architecture)" != arm64 ] &&
  ! dpkg --print-foreign-architectures | grep -qx arm64; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq -o APT::Sandbox::User=root
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq -o APT::Sandbox::User=root
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Test-only: ajv-cli, the JSON Schema validator the attestation integration
# test checks the SBOM and provenance statements with (npm; idempotent).
if command -v npm >/dev/null && [ ! -x /opt/strata-test-tools/node_modules/.bin/ajv ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO mkdir -p /opt/strata-test-tools
  $SUDO npm install --no-audit --no-fund --prefix /opt/strata-test-tools \
    ajv-cli@5.0.0 ajv-formats@2 >/dev/null
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

# The arm64 busybox .deb, fetched once so the multi-platform tests run
# offline (make-busybox-rootfs.sh keeps it in $STRATA_DEB_CACHE).
if [ "$(dpkg --print-architecture)" != arm64 ]; then
  probe=$(mktemp -d)
  tools/make-busybox-rootfs.sh --arch arm64 "$probe/rootfs" >/dev/null
  rm -rf "$probe"
fi
