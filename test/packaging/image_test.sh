#!/usr/bin/env bash
# The container image: packaging/image/build-image.sh makes an OCI archive that skopeo reads, with
# the entrypoint and labels the chart relies on, and whose root file system is self-contained: the
# binary runs in it (chroot, as root) with only the libraries the image carries, serves the demo's
# metrics over HTTPS with the image's OpenSSL 3, and exits 2 on a bad flag.
#
# With ARCH arm64, the same checks of the arm64 image (packaging/image/build-arm64.sh cross-builds
# it), whose binary runs under qemu-user-static on the image's own libraries. That costs minutes of
# CI time, so it runs only where DEVSCOPE_TEST_ARM64=1 (and as root); otherwise exit 77, skipped.
# usage: image_test.sh BUILD_DIR SOURCE_DIR VERSION [ARCH]
set -euo pipefail
# shellcheck source=test/packaging/https.sh
source "$(dirname "${BASH_SOURCE[0]}")/https.sh"
trap 'echo "FAIL: unexpected error (exit $?) at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND" >&2' ERR
usage="usage: image_test.sh BUILD_DIR SOURCE_DIR VERSION [ARCH]"
build=${1:?$usage}
src=${2:?$usage}
version=${3:?$usage}
arch=${4:-$(dpkg --print-architecture)}
native=$([[ $arch == "$(dpkg --print-architecture)" ]] && echo yes || echo no)
if [[ $native == no && ${DEVSCOPE_TEST_ARM64:-0} != 1 ]]; then
  echo "skipped: the $arch image is cross-built and tested only where DEVSCOPE_TEST_ARM64=1"
  exit 77
fi
if [[ $native == no && $(id -u) -ne 0 ]]; then
  echo "skipped: the $arch cross build runs in a systemd-nspawn root, which needs root"
  exit 77
fi
if [[ $native == no ]] && ! unshare --mount --propagation private true 2>/dev/null; then
  # systemd-nspawn makes / a slave mount in a namespace of its own; where / is no mount point (a
  # chroot, as in a bare-root check of a fresh machine) it cannot start the cross root.
  echo "skipped: no private mount namespace here: the $arch cross build's systemd-nspawn root cannot start"
  exit 77
fi
tmp=$(mktemp -d)
demo_pid=""
cleanup() {
  [[ -n $demo_pid ]] && kill "$demo_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
tools=(umoci skopeo jq yq openssl)
[[ $native == yes ]] || tools+=(podman runc)
for t in "${tools[@]}"; do
  command -v "$t" >/dev/null || { echo "FAIL: $t not found (scripts/install-deps)" >&2; exit 1; }
done

started=$SECONDS
if [[ $native == yes ]]; then
  bash "$src/packaging/image/build-image.sh" "$build" "$tmp/image.tar" "$version" testrev >"$tmp/build.log" 2>&1 ||
    { cat "$tmp/build.log" >&2; echo "FAIL: build-image.sh failed" >&2; exit 1; }
else
  bash "$src/packaging/image/build-arm64.sh" "$src" "$build" "$tmp/image.tar" "$version" testrev >"$tmp/build.log" 2>&1 ||
    { tail -n 40 "$tmp/build.log" >&2; echo "FAIL: build-arm64.sh failed" >&2; exit 1; }
  grep '^debian12-root:\|^build-arm64:' "$tmp/build.log" || true
fi
ok "$(grep '^build-image:' "$tmp/build.log" | tail -n1) in $((SECONDS - started)) s"

# --- what a registry and a container runtime read --------------------------------------------------
skopeo inspect --config "oci-archive:$tmp/image.tar" >"$tmp/config.json" ||
  { echo "FAIL: skopeo cannot read the archive" >&2; exit 1; }
expect() { [[ $2 == "$3" ]] || fail "$1: got '$2', want '$3'"; }
expect entrypoint "$(jq -c .config.Entrypoint "$tmp/config.json")" '["/usr/bin/devscope"]'
expect "os/arch" "$(jq -r '"\(.os)/\(.architecture)"' "$tmp/config.json")" "linux/$arch"
expect "version label" "$(jq -r '.config.Labels["org.opencontainers.image.version"]' "$tmp/config.json")" "$version"
expect "exposed port" "$(jq -r '.config.ExposedPorts | keys[]' "$tmp/config.json")" 9410/tcp
ok "skopeo reads the archive: entrypoint, platform, labels, port"

# --- the root file system ------------------------------------------------------------------------
mkdir "$tmp/layout"
tar -xf "$tmp/image.tar" -C "$tmp/layout"
# Named by its full reference, not the bare tag: `podman load` names the image after it.
expect "reference name" "$(jq -r '.manifests[] | .annotations["org.opencontainers.image.ref.name"]' "$tmp/layout/index.json")" \
  "ghcr.io/devscope/devscope:$version"
expect "chart's default image" "ghcr.io/devscope/devscope:$version" \
  "$(yq -r .image.repository "$src/charts/devscope/values.yaml"):$(yq -r .appVersion "$src/charts/devscope/Chart.yaml")"
umoci unpack --rootless --image "$tmp/layout:ghcr.io/devscope/devscope:$version" "$tmp/bundle" >/dev/null
root=$tmp/bundle/rootfs
for f in usr/bin/devscope usr/share/doc/devscope-image-packages.txt \
  usr/share/doc/libc6/copyright; do
  [[ -f $root/$f ]] || fail "/$f is not in the image"
done
[[ -e $root/bin/sh ]] && fail "the image has a shell; it should hold only devscope and its libraries"
ok "image holds the binary, provenance and copyright files, and no shell"

# How the image's binary runs here: in a chroot of the image, or, for another architecture, under
# qemu-user-static (the cross-build root's) with the image as its root for the loader and for every
# absolute path the binary opens (-L).
if [[ $native == yes ]]; then
  in_image=(chroot "$root" /usr/bin/devscope)
  how="in a chroot of the image"
else
  in_image=("$build/packaging/debian12-arm64-cross-root/usr/bin/qemu-aarch64-static" -L "$root"
    "$root/usr/bin/devscope")
  how="under qemu-aarch64-static on the image's root"
  expect "machine" "$(file -b "$root/usr/bin/devscope" | grep -o 'ARM aarch64')" "ARM aarch64"
  grep -q ' arm64$' "$root/usr/share/doc/devscope-image-packages.txt" ||
    fail "devscope-image-packages.txt lists no arm64 package"
  grep ' amd64$' "$root/usr/share/doc/devscope-image-packages.txt" &&
    fail "the arm64 image carries amd64 libraries"
fi

if [[ $(id -u) -ne 0 && $native == yes ]]; then
  # Without root there is no chroot: run the image's own loader on the image's libraries only.
  version_out=$("$root/lib64/ld-linux-x86-64.so.2" --inhibit-cache \
    --library-path "$root/usr/lib/x86_64-linux-gnu:$root/usr/lib" "$root/usr/bin/devscope" --version)
  [[ $version_out == "devscope $version "* ]] || fail "devscope --version in the image printed '$version_out'"
  echo "note: not root, so the image's binary ran with its own loader instead of in a chroot"
else
  version_out=$("${in_image[@]}" --version) || fail "devscope --version failed in the image"
  [[ $version_out == "devscope $version "* ]] || fail "devscope --version in the image printed '$version_out'"
  rc=0
  "${in_image[@]}" --no-such-flag >/dev/null 2>&1 || rc=$?
  expect "bad flag exit status in the image" "$rc" 2

  # The demo over HTTPS inside the image (no /proc in this chroot).
  make_certificate "$root/etc/devscope/tls.key" "$root/etc/devscope/tls.crt"
  printf 'tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n' >"$root/etc/devscope/web.yaml"
  "${in_image[@]}" demo --web.listen-address=127.0.0.1:0 \
    --web.config.file=/etc/devscope/web.yaml >"$tmp/demo.log" 2>&1 &
  demo_pid=$!
  port=$(logged_https_port "$tmp/demo.log")
  [[ -n $port ]] || fail "the demo in the image did not start: $(tail -n3 "$tmp/demo.log")"
  held=0
  for _ in $(seq 30); do
    [[ -n $port ]] || break
    held=$(https_get "$port" "$root/etc/devscope/tls.crt" /metrics |
      grep -c '^devscope_container_device_info{.*pod="' || true)
    [[ $held -gt 0 ]] && break
    sleep 0.5
  done
  [[ $held -gt 0 ]] || fail "no device held by a pod in the image's demo metrics over HTTPS"
  kill "$demo_pid"
  wait "$demo_pid" 2>/dev/null || true
  demo_pid=""
  ok "$how: --version, bad flag (2), the demo's metrics over HTTPS ($held held devices)"
fi

# --- the published multi-arch image (arm64 run only: it needs both archives) ----------------------
# build-index.sh joins this machine's amd64 image and the arm64 one under the one reference; podman
# (runc, its own storage in $tmp) pulls each platform from the archive by --arch and runs it. No
# binfmt_misc here, so the arm64 container's entrypoint is qemu-aarch64-static, mounted in: it runs
# only an aarch64 binary, as the amd64 container runs only an x86-64 one, so each run proves which
# manifest podman chose.
if [[ $native == no ]]; then
  started=$SECONDS
  bash "$src/packaging/image/build-image.sh" "$build" "$tmp/image-amd64.tar" "$version" testrev >"$tmp/build.log" 2>&1 ||
    { cat "$tmp/build.log" >&2; echo "FAIL: build-image.sh (amd64) failed" >&2; exit 1; }
  bash "$src/packaging/image/build-index.sh" "$tmp/multiarch.tar" "$tmp/image-amd64.tar" "$tmp/image.tar" ||
    { echo "FAIL: build-index.sh failed" >&2; exit 1; }
  ref=ghcr.io/devscope/devscope:$version
  expect "multi-arch platforms" "$(skopeo inspect --raw "oci-archive:$tmp/multiarch.tar:$ref" |
    jq -r '[.manifests[].platform | "\(.os)/\(.architecture)"] | sort | join(" ")')" "linux/amd64 linux/arm64"
  # What publishing does (skopeo copy --all), into a local layout instead of a registry.
  skopeo copy -q --all "oci-archive:$tmp/multiarch.tar:$ref" "oci:$tmp/published:$ref" ||
    fail "skopeo copy --all cannot copy the multi-arch archive"
  for a in amd64 arm64; do
    skopeo inspect --override-arch "$a" --config "oci:$tmp/published:$ref" 2>/dev/null |
      jq -e --arg a "$a" '.architecture == $a' >/dev/null || fail "the copied index has no $a image"
  done
  pm() {
    podman --root "$tmp/storage" --runroot "$tmp/runroot" --tmpdir "$tmp/libpod" --runtime runc \
      --cgroup-manager cgroupfs --events-backend file "$@"
  }
  run=(run --rm --pull always --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
  qemu=$build/packaging/debian12-arm64-cross-root/usr/bin/qemu-aarch64-static
  for a in amd64 arm64; do
    if [[ $a == amd64 ]]; then
      out=$(pm "${run[@]}" --arch amd64 "oci-archive:$tmp/multiarch.tar:$ref" --version 2>"$tmp/podman.err")
    else
      out=$(pm "${run[@]}" --arch arm64 -v "$qemu:/qemu-aarch64-static:ro" --entrypoint /qemu-aarch64-static \
        "oci-archive:$tmp/multiarch.tar:$ref" /usr/bin/devscope --version 2>"$tmp/podman.err")
    fi || true
    [[ $out == "devscope $version "* ]] ||
      fail "podman --arch $a on the multi-arch archive printed '$out': $(tail -n3 "$tmp/podman.err")"
    expect "podman's $a image" "$(pm image inspect --format '{{.Os}}/{{.Architecture}}' "$ref")" "linux/$a"
  done
  pm rmi -a -f >/dev/null 2>&1 || true
  ok "multi-arch image $ref: linux/amd64 and linux/arm64, skopeo copy --all, podman runs each --arch, in $((SECONDS - started)) s"
fi

if [[ $failures -gt 0 ]]; then echo "$failures check(s) failed" >&2; exit 1; fi
