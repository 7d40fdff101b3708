#!/usr/bin/env bash
# The arm64 image (Grace Hopper and Grace Blackwell nodes), cross-built from Debian 12's arm64
# packages: an OCI archive like build-image.sh's, for linux/arm64.
#
# Debian 12's arm64 -dev packages cannot all be installed beside the build machine's amd64 ones:
# libyaml-cpp-dev is not Multi-Arch: same, and prometheus-cpp-dev:arm64 depends on the civetweb
# binary package, which is not either, so apt would remove libyaml-cpp-dev, prometheus-cpp-dev and
# civetweb (amd64). The cross build therefore runs in a Debian 12 root of its own
# (packaging/debian12-root.sh, kept in BUILD_DIR/packaging/debian12-arm64-cross-root) holding the
# cross compiler, the arm64 -dev packages and the build machine's protoc and grpc_cpp_plugin. Only
# what the image needs is built (the binary; no tests, no benchmarks), in BUILD_DIR/arm64.
# Needs root (systemd-nspawn), debootstrap and Debian's apt mirror.
#
# usage: build-arm64.sh SOURCE_DIR BUILD_DIR OUT.tar VERSION REVISION [REPOSITORY]
set -euo pipefail
usage="usage: build-arm64.sh SOURCE_DIR BUILD_DIR OUT.tar VERSION REVISION [REPOSITORY]"
src=$(realpath "${1:?$usage}")
build=$(realpath "${2:?$usage}")
out=$(realpath "${3:?$usage}")
version=${4:?$usage}
revision=${5:?$usage}
repository=${6:-}  # empty: build-image.sh's default

# The libraries of the native build (scripts/install-deps), for arm64; one that is
# Architecture: all (headers only) is the same package for both.
arm64_libraries=()
while read -r p; do
  if [[ $(apt-cache show --no-all-versions "$p" | awk '$1 == "Architecture:" {print $2; exit}') == all ]]; then
    arm64_libraries+=("$p")
  else
    arm64_libraries+=("$p:arm64")
  fi
done < <("$src/scripts/install-deps" --print-libraries)
[[ ${#arm64_libraries[@]} -gt 0 ]] || { echo "build-arm64: no libraries from scripts/install-deps" >&2; exit 1; }
libraries=$(printf '%s, ' "${arm64_libraries[@]}")
root=$build/packaging/debian12-arm64-cross-root
bash "$src/packaging/debian12-root.sh" "$root" --arch arm64 \
  "cmake, ninja-build, ccache, g++-aarch64-linux-gnu, protobuf-compiler, protobuf-compiler-grpc, umoci, qemu-user-static" \
  "${libraries%, }"
exec {lock}>"$root.lock"
flock -s "$lock"  # nobody changes the root while it builds

# The source, the build tree and the output directory appear in the root at their own paths.
binds=(--bind="$src")
[[ $build == "$src"/* ]] || binds+=(--bind="$build")
[[ $(dirname "$out") == "$src"/* || $(dirname "$out") == "$build"/* ]] || binds+=(--bind="$(dirname "$out")")
in_root() {
  # ccache keeps its cache in the root (/root/.cache/ccache), so rebuilds are quick.
  systemd-nspawn -q --register=no --keep-unit -D "$root" "${binds[@]}" --chdir="$src" --pipe \
    -E CCACHE_BASEDIR="$src" "$@"
}
arm64_build=$build/arm64
started=$SECONDS
in_root cmake -S "$src" -B "$arm64_build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_TOOLCHAIN_FILE="$src/packaging/image/aarch64-linux-gnu.cmake" \
  -DDEVSCOPE_BUILD_TESTS=OFF -DDEVSCOPE_BUILD_BENCH=OFF -DDEVSCOPE_REVISION="$revision" \
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
in_root cmake --build "$arm64_build" -j "$(nproc)" --target devscope
echo "build-arm64: cross build took $((SECONDS - started)) s"
in_root bash "$src/packaging/image/build-image.sh" "$arm64_build" "$out" "$version" "$revision" \
  "$repository" arm64
