#!/usr/bin/env bash
# Registry benchmark: push and pull a 5-layer ~300 MB image to a local CNCF
# Distribution registry with strata, side by side with `skopeo copy` of the
# same OCI layout and `buildah push/pull` (its own --root, overlay) in the same
# run, plus a re-push of the unchanged image.
#   tools/bench/registry_bench.sh [path/to/strata]   (default: build/strata)
# Layers are random bytes (incompressible), so timings measure transfer, not gzip.
set -euo pipefail
STRATA=${1:-${STRATA:-build/strata}}
LAYERS=${LAYERS:-5}
LAYER_MB=${LAYER_MB:-60}
for t in skopeo buildah; do
  command -v "$t" >/dev/null || { echo "registry_bench: $t missing" >&2; exit 1; }
done
# Lower case only: buildah names an image pulled from oci:DIR after DIR.
work=/tmp/strata-regbench.$$.$RANDOM
mkdir -m 0700 "$work"
reg_pids=()
bah() { buildah --root "$work/buildah/root" --runroot "$work/buildah/run" --storage-driver overlay "$@"; }
cleanup() {
  bah rmi -a -f >/dev/null 2>&1 || true
  for m in $(awk -v p="$work/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  for p in "${reg_pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

# One registry per tool: skopeo and buildah share containers/image's blob-info
# cache, which would let the second of them mount every blob from the first's
# repository instead of uploading it.
start_registry() { # NAME -> prints HOST:PORT
  local port
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  cat > "$work/$1.yml" <<C
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/storage-$1}}
http: {addr: 127.0.0.1:$port}
C
  /usr/bin/docker-registry serve "$work/$1.yml" > "$work/registry-$1.log" 2>&1 &
  reg_pids+=($!)
  for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
  REG=127.0.0.1:$port
}
start_registry strata; reg_strata=$REG
start_registry skopeo; reg_skopeo=$REG
start_registry buildah; reg_buildah=$REG

# An OCI layout with LAYERS gzip layers of LAYER_MB MiB of random bytes each.
layout=$work/layout
mkdir -p "$layout/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
layers_json= diffids_json=
for i in $(seq "$LAYERS"); do
  d=$work/l$i; mkdir -p "$d/root"
  head -c $((LAYER_MB << 20)) /dev/urandom > "$d/root/data$i"
  tar cf "$d/layer.tar" --owner=0 --group=0 -C "$d/root" .
  diffid=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
  gzip -n -1 -c "$d/layer.tar" > "$d/layer.tgz"
  dg=$(sha256sum "$d/layer.tgz" | cut -d' ' -f1); sz=$(stat -c %s "$d/layer.tgz")
  mv "$d/layer.tgz" "$layout/blobs/sha256/$dg"; rm -rf "$d"
  layers_json+="${layers_json:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$dg\",\"size\":$sz}"
  diffids_json+="${diffids_json:+,}\"sha256:$diffid\""
done
config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$diffids_json]}}"
printf '%s' "$config" > "$work/config.json"
cdg=$(sha256sum "$work/config.json" | cut -d' ' -f1); csz=$(stat -c %s "$work/config.json")
mv "$work/config.json" "$layout/blobs/sha256/$cdg"
manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cdg\",\"size\":$csz},\"layers\":[$layers_json]}"
printf '%s' "$manifest" > "$work/manifest.json"
mdg=$(sha256sum "$work/manifest.json" | cut -d' ' -f1); msz=$(stat -c %s "$work/manifest.json")
mv "$work/manifest.json" "$layout/blobs/sha256/$mdg"
echo "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$mdg\",\"size\":$msz,\"annotations\":{\"org.opencontainers.image.ref.name\":\"bench\"}}]}" > "$layout/index.json"
total=$(du -sb "$layout/blobs" | cut -f1)

root=$work/root
"$STRATA" --root "$root" load -i "$layout" >/dev/null
bah_id=$(bah pull -q "oci:$layout:bench")

t() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }; e=$(date +%s.%N); echo "$e - $s" | bc; }
sync
strata_push=$(t "$STRATA" --root "$root" -q push "sha256:$mdg" "$reg_strata/strata/bench:1")
skopeo_push=$(t skopeo copy -q --dest-tls-verify=false "oci:$layout:bench" "docker://$reg_skopeo/skopeo/bench:1")
strata_repush=$(t "$STRATA" --root "$root" -q push "sha256:$mdg" "$reg_strata/strata/bench:1")
skopeo_repush=$(t skopeo copy -q --dest-tls-verify=false "oci:$layout:bench" "docker://$reg_skopeo/skopeo/bench:1")
buildah_push=$(t bah push -q --tls-verify=false "$bah_id" "docker://$reg_buildah/buildah/bench:1")
buildah_repush=$(t bah push -q --tls-verify=false "$bah_id" "docker://$reg_buildah/buildah/bench:1")
bah rmi -a -f >/dev/null
buildah_pull=$(t bah pull -q --tls-verify=false "docker://$reg_buildah/buildah/bench:1")
strata_pull=$(t "$STRATA" --root "$work/pullroot" -q pull "$reg_strata/strata/bench:1")
skopeo_pull=$(t skopeo copy -q --src-tls-verify=false "docker://$reg_skopeo/skopeo/bench:1" "oci:$work/skopeo-pull:bench")

mb=$(echo "scale=1; $total / 1048576" | bc)
echo "image: $LAYERS layers, ${mb} MiB of blobs, registry docker-registry $(docker-registry --version | awk '{print $3}') on 127.0.0.1"
echo "| operation | strata s | skopeo s | ratio | buildah s | ratio |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
row() { printf '| %s | %.2f | %.2f | %.1fx | %.2f | %.1fx |\n' "$1" "$2" "$3" "$(echo "$3 / $2" | bc -l)" "$4" "$(echo "$4 / $2" | bc -l)"; }
row "push (empty registry)" "$strata_push" "$skopeo_push" "$buildah_push"
row "re-push (all present)" "$strata_repush" "$skopeo_repush" "$buildah_repush"
row "pull (empty store)" "$strata_pull" "$skopeo_pull" "$buildah_pull"
