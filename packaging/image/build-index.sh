#!/usr/bin/env bash
# The published image: one multi-arch reference. Joins the per-architecture OCI archives of
# build-image.sh (amd64) and build-arm64.sh (arm64) into one OCI archive whose index.json names a
# single image index, REPOSITORY:VERSION, which lists each platform's manifest with its os and
# architecture. A runtime pulling the reference gets its node's platform; `skopeo copy --all
# oci-archive:OUT.tar docker://REPOSITORY:VERSION` publishes every platform under the one tag.
#
# The OCI layout is small enough to write directly: blobs are content-addressed, so the inputs'
# blobs are merged as they are, and only the index is new. No container engine or registry needed.
#
# usage: build-index.sh OUT.tar IMAGE.tar...   (each IMAGE.tar holds one image, all under one name)
set -euo pipefail
usage="usage: build-index.sh OUT.tar IMAGE.tar..."
out=${1:?$usage}
shift
(($# >= 2)) || { echo "$usage" >&2; exit 2; }
command -v jq >/dev/null || { echo "build-index: needs jq (scripts/install-deps)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
layout=$work/layout
mkdir -p "$layout/blobs/sha256"
blob() { echo "$1/blobs/${2/://}"; }  # blob LAYOUT sha256:HEX -> LAYOUT/blobs/sha256/HEX

ref=""
descriptors=()
for archive in "$@"; do
  input=$work/input
  rm -rf "$input" && mkdir "$input"
  tar -xf "$archive" -C "$input"
  [[ $(jq -r '.manifests | length' "$input/index.json") == 1 ]] ||
    { echo "build-index: $archive holds more than one image" >&2; exit 1; }
  manifest=$(jq -c '.manifests[0]' "$input/index.json")
  name=$(jq -r '.annotations["org.opencontainers.image.ref.name"] // ""' <<<"$manifest")
  [[ -n $name ]] || { echo "build-index: the image in $archive has no reference name" >&2; exit 1; }
  [[ -z $ref || $name == "$ref" ]] ||
    { echo "build-index: $archive holds $name, the others $ref" >&2; exit 1; }
  ref=$name
  config=$(jq -r .config.digest "$(blob "$input" "$(jq -r .digest <<<"$manifest")")")
  platform=$(jq -c '{architecture, os} + (if .variant then {variant} else {} end)' "$(blob "$input" "$config")")
  for d in "${descriptors[@]}"; do
    [[ $(jq -c .platform <<<"$d") != "$platform" ]] ||
      { echo "build-index: two images for $platform" >&2; exit 1; }
  done
  # The platform's manifest, without the name: the index carries it.
  descriptors+=("$(jq -c --argjson p "$platform" \
    'del(.annotations["org.opencontainers.image.ref.name"]) | if .annotations == {} then del(.annotations) else . end
     | .platform = $p' <<<"$manifest")")
  cp -n "$input"/blobs/sha256/* "$layout/blobs/sha256/"
done

printf '%s\n' "${descriptors[@]}" |
  jq -cs '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: .}' \
    | tr -d '\n' >"$work/index-blob"
digest=sha256:$(sha256sum "$work/index-blob" | cut -d' ' -f1)
size=$(stat -c %s "$work/index-blob")
mv "$work/index-blob" "$(blob "$layout" "$digest")"
jq -cn --arg d "$digest" --argjson s "$size" --arg r "$ref" \
  '{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d,
    size: $s, annotations: {"org.opencontainers.image.ref.name": $r}}]}' >"$layout/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
tar --sort=name -C "$layout" -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "build-index: $out ($ref: $(printf '%s\n' "${descriptors[@]}" |
  jq -rs 'map(.platform | "\(.os)/\(.architecture)") | join(", ")'), $(du -h "$out" | cut -f1))"
