#!/usr/bin/env bash
# Builds devscope's container image, for the Helm chart, without a container engine: an OCI image
# archive (what `skopeo copy oci-archive:FILE docker://REGISTRY/devscope:TAG` pushes) made with
# umoci. The image holds the binary and exactly the shared libraries it loads, copied from this Debian 12 machine's packages, with each
# package's name, version and copyright file. No shell, no package manager: nothing else to patch.
#
# The archive's one image is named REPOSITORY:VERSION (the index's org.opencontainers.image.ref.name),
# the reference the Helm chart asks for by default, so that `podman load -i`, `skopeo copy
# oci-archive:OUT.tar ...` and `umoci unpack --image LAYOUT:REPOSITORY:VERSION` all find it by name.
#
# ARCH (default: this machine's) is the Debian architecture of the binary in BUILD_DIR. For another
# architecture (arm64: packaging/image/build-arm64.sh runs this in its cross-build root) the
# libraries are that architecture's multiarch packages, listed by that architecture's dynamic loader
# run under qemu-user-static.
#
# usage: build-image.sh BUILD_DIR OUT.tar VERSION REVISION [REPOSITORY [ARCH]]
set -euo pipefail
usage="usage: build-image.sh BUILD_DIR OUT.tar VERSION REVISION [REPOSITORY [ARCH]]"
build=${1:?$usage}
out=${2:?$usage}
version=${3:?$usage}
revision=${4:?$usage}
repository=${5:-ghcr.io/devscope/devscope}
ref=$repository:$version
arch=${6:-$(dpkg --print-architecture)}
case $arch in
  "$(dpkg --print-architecture)") strip=strip list_libraries=(ldd) ;;
  arm64) strip=aarch64-linux-gnu-strip list_libraries=(qemu-aarch64-static /lib/ld-linux-aarch64.so.1 --list) ;;
  *) echo "build-image: no cross tools known for $arch" >&2; exit 1 ;;
esac
for tool in umoci dpkg-query "$strip" "${list_libraries[0]}"; do
  command -v $tool >/dev/null || { echo "build-image: needs $tool (scripts/install-deps)" >&2; exit 1; }
done
binary=$build/devscope
[[ -f $binary ]] || { echo "build-image: $binary is not built" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
layout=$work/layout
bundle=$work/bundle
umoci init --layout "$layout"
umoci new --image "$layout:$ref"
umoci unpack --rootless --image "$layout:$ref" "$bundle" >/dev/null
root=$bundle/rootfs

# Debian 12's merged /usr: /lib, /lib64, /bin are links into /usr, so library paths that ldd
# reports under /lib resolve in the image as they do on the host.
mkdir -p "$root"/usr/{bin,lib,lib64,share/doc} "$root"/etc/devscope
for d in bin lib lib64; do ln -s usr/$d "$root/$d"; done
mkdir -m 1777 "$root/tmp"
install -m 0755 "$binary" "$root/usr/bin/devscope"
"$strip" --strip-unneeded "$root/usr/bin/devscope"

# Every library the binary loads, by the path the dynamic loader resolves.
mapfile -t libraries < <("${list_libraries[@]}" "$binary" |
  awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $2 ~ /^\(/ {print $1}' | sort -u)
packages=()
for lib in "${libraries[@]}"; do
  dest=$root/usr${lib#/usr}
  mkdir -p "$(dirname "$dest")"
  cp -L "$lib" "$dest"
  real=$(readlink -f "$lib")
  # "libfoo:arm64: /usr/lib/..." names the package with its architecture (a multiarch root may
  # hold the same library package for two).
  package=$(dpkg-query -S "$real" 2>/dev/null | head -n1 | sed 's/: .*//') ||
    package=$(dpkg-query -S "${real#/usr}" 2>/dev/null | head -n1 | sed 's/: .*//') || true
  [[ -n $package ]] || { echo "build-image: no Debian package owns $real" >&2; exit 1; }
  packages+=("$package")
done
# Provenance and licences of what was copied.
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
{
  echo "# Debian 12 packages whose shared libraries this image carries (package version arch)"
  for p in "${packages[@]}"; do dpkg-query -W -f='${Package} ${Version} ${Architecture}\n' "$p"; done
} >"$root/usr/share/doc/devscope-image-packages.txt"
for p in "${packages[@]}"; do
  base=${p%%:*}
  if [[ -f /usr/share/doc/$base/copyright ]]; then
    mkdir -p "$root/usr/share/doc/$base"
    cp /usr/share/doc/"$base"/copyright "$root/usr/share/doc/$base/"
  fi
done
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$root/usr/share/doc/devscope"
cp "$src/packaging/debian/copyright" "$root/usr/share/doc/devscope/copyright"

umoci repack --image "$layout:$ref" "$bundle"
umoci config --image "$layout:$ref" \
  --os linux --architecture "$arch" \
  --config.entrypoint /usr/bin/devscope \
  --config.workingdir / \
  --config.env PATH=/usr/bin \
  --config.exposedports 9410/tcp \
  --config.label org.opencontainers.image.title=devscope \
  --config.label org.opencontainers.image.version="$version" \
  --config.label org.opencontainers.image.revision="$revision" \
  --config.label org.opencontainers.image.description="Kubernetes node agent: which pod holds which device, and how it is doing" \
  --history.comment "devscope $version and the Debian 12 libraries it loads"
umoci gc --layout "$layout"
# An OCI archive is the layout, tarred.
tar --sort=name -C "$layout" -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "build-image: $out ($(du -h "$out" | cut -f1), ${#libraries[@]} libraries from ${#packages[@]} packages)"
