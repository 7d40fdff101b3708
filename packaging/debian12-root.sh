#!/usr/bin/env bash
# Makes, or brings up to date, a Debian 12 root directory: debootstrap (minbase) from this machine's
# Debian mirror, the same Debian apt sources as this machine (so versions match what the build
# linked), optional foreign architectures (multiarch), and packages installed with
# `apt-get satisfy`. Kept between runs: DIR.key records how the root was bootstrapped and DIR.deps
# what was installed, so a second call with the same arguments does nothing; new arguments install
# what is missing; another mirror starts over. Used for the .deb's systemd test (a root to boot) and
# the arm64 cross build (a root holding arm64 -dev packages that the build machine's own amd64 ones
# would conflict with). Needs root, debootstrap and systemd-nspawn.
#
# usage: debian12-root.sh DIR [--arch ARCH]... DEPENDS...
#   DEPENDS: apt relationship strings, e.g. "systemd-sysv, dbus" or "libssl3 (>= 3.0.0)"
set -euo pipefail
usage="usage: debian12-root.sh DIR [--arch ARCH]... DEPENDS..."
dir=${1:?$usage}
shift
archs=()
while [[ ${1:-} == --arch ]]; do
  archs+=("${2:?$usage}")
  shift 2
done
depends=("$@")
for t in debootstrap systemd-nspawn flock apt-get; do
  command -v $t >/dev/null || { echo "debian12-root: needs $t (scripts/install-deps)" >&2; exit 1; }
done

# The Debian 12 sources this machine's apt uses (CI: Debian's mirror only).
mapfile -t sources < <(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' \
  'Created-By: Packages' | awk '$2 ~ /^bookworm/ && $3 == "main" {print "deb " $0}' | sort -u)
mirror=$(printf '%s\n' "${sources[@]}" | awk '$3 == "bookworm" {print $2; exit}')
[[ -n $mirror ]] || { echo "debian12-root: no Debian 12 (bookworm main) mirror in this machine's apt sources" >&2; exit 1; }
key="debootstrap --variant=minbase bookworm $mirror | ${sources[*]}"
want="archs: ${archs[*]} | ${depends[*]}"

mkdir -p "$(dirname "$dir")"
exec {lock}>"$dir.lock"
flock "$lock"
if [[ ! -d $dir || $(cat "$dir.key" 2>/dev/null) != "$key" ]]; then
  echo "debian12-root: debootstrap into $dir (once; later runs reuse it)"
  started=$SECONDS
  rm -rf "$dir" "$dir.new" "$dir.key" "$dir.deps"
  debootstrap --variant=minbase bookworm "$dir.new" "$mirror" >"$dir.log" 2>&1 ||
    { tail -n 30 "$dir.log" >&2; echo "debian12-root: debootstrap failed (log: $dir.log)" >&2; exit 1; }
  printf '%s\n' "${sources[@]}" >"$dir.new/etc/apt/sources.list"
  mv "$dir.new" "$dir"
  echo "$key" >"$dir.key"
  echo "debian12-root: debootstrap took $((SECONDS - started)) s"
fi
if [[ $(cat "$dir.deps" 2>/dev/null) != "$want" ]]; then
  echo "debian12-root: installing ${archs[*]:+(${archs[*]}) }${depends[*]}"
  started=$SECONDS
  # Not booted; the host's network (the mirror).
  in_root() {
    systemd-nspawn -q --register=no --keep-unit -D "$dir" --pipe -E DEBIAN_FRONTEND=noninteractive \
      "$@" >>"$dir.log" 2>&1 ||
      { tail -n 30 "$dir.log" >&2; echo "debian12-root: '$*' failed in $dir (log: $dir.log)" >&2; exit 1; }
  }
  for a in "${archs[@]}"; do in_root dpkg --add-architecture "$a"; done
  in_root apt-get update -q
  in_root apt-get satisfy -y -q --no-install-recommends "${depends[@]}"
  in_root apt-get clean
  echo "$want" >"$dir.deps"
  echo "debian12-root: installing took $((SECONDS - started)) s"
fi
