#!/usr/bin/env bash
# The container image: packaging/image/build-image.sh makes an OCI archive that skopeo reads, with
# the entrypoint and labels the chart relies on, and whose root file system is self-contained: the
# binary runs in it (chroot, as root) with only the libraries the image carries, serves the demo's
# metrics over HTTPS with the image's OpenSSL 3, and exits 2 on a bad flag.
# usage: image_test.sh BUILD_DIR SOURCE_DIR VERSION
set -euo pipefail
# shellcheck source=test/packaging/https.sh
source "$(dirname "${BASH_SOURCE[0]}")/https.sh"
trap 'echo "FAIL: unexpected error (exit $?) at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND" >&2' ERR
build=${1:?usage: image_test.sh BUILD_DIR SOURCE_DIR VERSION}
src=${2:?usage: image_test.sh BUILD_DIR SOURCE_DIR VERSION}
version=${3:?usage: image_test.sh BUILD_DIR SOURCE_DIR VERSION}
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
for t in umoci skopeo jq yq openssl; do
  command -v $t >/dev/null || { echo "FAIL: $t not found (scripts/install-deps)" >&2; exit 1; }
done

bash "$src/packaging/image/build-image.sh" "$build" "$tmp/image.tar" "$version" testrev >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log" >&2; echo "FAIL: build-image.sh failed" >&2; exit 1; }
ok "$(tail -n1 "$tmp/build.log")"

# --- what a registry and a container runtime read --------------------------------------------------
skopeo inspect --config "oci-archive:$tmp/image.tar" >"$tmp/config.json" ||
  { echo "FAIL: skopeo cannot read the archive" >&2; exit 1; }
expect() { [[ $2 == "$3" ]] || fail "$1: got '$2', want '$3'"; }
expect entrypoint "$(jq -c .config.Entrypoint "$tmp/config.json")" '["/usr/bin/devscope"]'
expect "os/arch" "$(jq -r '"\(.os)/\(.architecture)"' "$tmp/config.json")" linux/amd64
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

if [[ $(id -u) -ne 0 ]]; then
  # Without root there is no chroot: run the image's own loader on the image's libraries only.
  version_out=$("$root/lib64/ld-linux-x86-64.so.2" --inhibit-cache \
    --library-path "$root/usr/lib/x86_64-linux-gnu:$root/usr/lib" "$root/usr/bin/devscope" --version)
  [[ $version_out == "devscope $version "* ]] || fail "devscope --version in the image printed '$version_out'"
  echo "note: not root, so the image's binary ran with its own loader instead of in a chroot"
else
  version_out=$(chroot "$root" /usr/bin/devscope --version) || fail "devscope --version failed in the image"
  [[ $version_out == "devscope $version "* ]] || fail "devscope --version in the image printed '$version_out'"
  rc=0
  chroot "$root" /usr/bin/devscope --no-such-flag >/dev/null 2>&1 || rc=$?
  expect "bad flag exit status in the image" "$rc" 2

  # The demo over HTTPS inside the image (no /proc in this chroot).
  make_certificate "$root/etc/devscope/tls.key" "$root/etc/devscope/tls.crt"
  printf 'tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n' >"$root/etc/devscope/web.yaml"
  chroot "$root" /usr/bin/devscope demo --web.listen-address=127.0.0.1:0 \
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
  ok "in a chroot of the image: --version, bad flag (2), the demo's metrics over HTTPS ($held held devices)"
fi

if [[ $failures -gt 0 ]]; then echo "$failures check(s) failed" >&2; exit 1; fi
