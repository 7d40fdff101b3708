#!/usr/bin/env bash
# The .deb as a node runs it: under systemd 252 as init, in a Debian 12 root booted with
# systemd-nspawn. Installs the package with apt and checks what deb_test.sh can only check
# statically: the unit starts, is enabled and serves /metrics; `systemd-analyze security` of the
# running unit; a SIGSEGV is restarted; an upgrade to a higher version keeps the edited conffiles and
# restarts into them; the device plugin registers with the kubelet stand-in through the unit's own
# paths (/var/lib/kubelet/...) and serves Allocate; `apt-get purge` leaves no file, directory or user
# behind.
#
# The Debian 12 root is made once with debootstrap from this machine's Debian mirror and kept in the
# build tree (BUILD_DIR/packaging/debian12-systemd-root, by packaging/debian12-root.sh; delete it to
# start over); every run boots a throw-away overlay on top of it, so a test never changes it.
#
# Needs root, systemd-nspawn (systemd-container), debootstrap, curl and Debian's apt mirror. Without
# root, or without a private mount namespace, it cannot run anything and exits 77 (ctest: skipped).
# usage: deb_systemd_test.sh BUILD_DIR SOURCE_DIR KUBELET_STANDIN
set -euo pipefail
trap 'echo "FAIL: unexpected error (exit $?) at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND" >&2' ERR
usage="usage: deb_systemd_test.sh BUILD_DIR SOURCE_DIR KUBELET_STANDIN"
build=$(realpath "${1:?$usage}")
src=${2:?$usage}
standin=${3:?$usage}
if [[ $(id -u) -ne 0 ]]; then
  echo "skipped: booting a container with systemd-nspawn needs root"
  exit 77
fi
for t in systemd-nspawn debootstrap nsenter curl cpack dpkg-deb jq flock mount; do
  command -v $t >/dev/null || { echo "FAIL: $t not found (scripts/install-deps)" >&2; exit 1; }
done
# systemd-nspawn makes / a slave mount in its own namespace: where / is no mount point (a chroot,
# as in a bare-root check of a fresh machine) it cannot boot anything.
if ! unshare --mount --propagation private true 2>/dev/null; then
  echo "skipped: no private mount namespace here (/ is no mount point, or no CAP_SYS_ADMIN): systemd-nspawn cannot boot a root"
  exit 77
fi

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
started=$SECONDS
step() { echo "--- $* (at $((SECONDS - started)) s)"; }

tmp=$(mktemp -d)
merged=$tmp/merged
nspawn_pid=""
standin_pid=""
cleanup() {
  [[ -z $standin_pid ]] || kill "$standin_pid" 2>/dev/null || true
  if [[ -n $nspawn_pid ]]; then
    # SIGTERM asks the container's systemd to power off; it takes about 2 s.
    kill -TERM "$nspawn_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$nspawn_pid" 2>/dev/null || true
    wait "$nspawn_pid" 2>/dev/null || true
  fi
  if mountpoint -q "$merged"; then umount "$merged"; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# --- the packages: this build, and the same build one Debian revision higher (the upgrade) --------
step "building the packages"
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/v1" >"$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log" >&2; echo "FAIL: cpack could not build the package" >&2; exit 1; }
release=$(dpkg-deb -f "$tmp"/v1/devscope_*.deb Version | sed 's/.*-//')
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/v2" \
  -D CPACK_DEBIAN_PACKAGE_RELEASE=$((release + 1)) >"$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log" >&2; echo "FAIL: cpack could not build the upgrade package" >&2; exit 1; }
deb1=$(echo "$tmp"/v1/devscope_*.deb)
deb2=$(echo "$tmp"/v2/devscope_*.deb)
version1=$(dpkg-deb -f "$deb1" Version)
version2=$(dpkg-deb -f "$deb2" Version)
dpkg --compare-versions "$version2" gt "$version1" || { echo "FAIL: $version2 is not above $version1" >&2; exit 1; }

# --- the cached Debian 12 root ---------------------------------------------------------------------
# systemd as init, and the package's run-time dependencies, so that apt inside the booted container
# (which has no network) installs the package from the file alone.
step "the cached Debian 12 root"
cache=$build/packaging/debian12-systemd-root
bash "$src/packaging/debian12-root.sh" "$cache" "systemd-sysv, dbus" "$(dpkg-deb -f "$deb1" Depends)"
exec {lock}>"$cache.lock"
flock -s "$lock"  # nobody changes the root while it is the overlay's lower layer
ok "cached Debian 12 root with systemd and the package's dependencies"

# --- boot ----------------------------------------------------------------------------------------
step "booting the root with systemd-nspawn"
mkdir -p "$tmp/upper" "$tmp/work" "$merged"
mount -t overlay overlay -o "lowerdir=$cache,upperdir=$tmp/upper,workdir=$tmp/work" "$merged"
# What the test brings into the root: the packages and a devicedir of two widgets.
data=/srv/devscope-test
mkdir -p "$merged$data/devices"
cp "$deb1" "$deb2" "$merged$data/"
for id in widget-0 widget-1; do
  mkdir "$merged$data/devices/$id"
  echo example.com/widget >"$merged$data/devices/$id/resource"
  printf 'device /dev/null /dev/widget rw\nenv WIDGET=%s\n' "$id" >"$merged$data/devices/$id/allocate"
done
chmod -R a+rX "$merged$data"
# --register=no --keep-unit: no machined and no scope of its own on these machines. A private
# network: nothing inside can reach the network, and port 9410 there is the container's own.
systemd-nspawn --boot --register=no --keep-unit --private-network -D "$merged" \
  --machine="devscope-deb-$$" >"$tmp/boot.log" 2>&1 &
nspawn_pid=$!
leader=""
for _ in $(seq 150); do
  for child in $(ps --ppid "$nspawn_pid" -o pid= 2>/dev/null); do
    [[ $(awk '/^NSpid:/ {print $NF}' "/proc/$child/status" 2>/dev/null) == 1 ]] && leader=$child
  done
  [[ -n $leader ]] && break
  sleep 0.2
done
[[ -n $leader ]] || { cat "$tmp/boot.log" >&2; echo "FAIL: the container's init did not start" >&2; exit 1; }
# A command inside the container (all its namespaces), with a clean environment.
in_ct() {
  nsenter -t "$leader" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"
}
# Until systemd in the container answers on its bus, is-system-running says "offline".
state=offline
for _ in $(seq 120); do
  state=$(timeout 120 nsenter -t "$leader" -a systemctl is-system-running --wait 2>/dev/null || true)
  [[ $state == offline || -z $state ]] || break
  sleep 0.5
done
if [[ $state != running ]]; then
  fail "the container booted to '$state', not 'running': $(in_ct systemctl --failed --no-legend)"
fi
ok "systemd $(in_ct systemctl --version | awk 'NR == 1 {print $2}') booted the root: $state"

# Everything on the root file system and who owns it, and the account databases: what purge must
# restore. Left out: what the system itself changes as it runs (logs, apt and dpkg state, caches).
snapshot() {
  in_ct find / -xdev \( -path /var/log -o -path /var/cache -o -path /var/lib/apt -o \
    -path /var/lib/dpkg -o -path /var/lib/systemd/random-seed -o -path /var/lib/systemd/timers -o \
    -path /var/lib/systemd/catalog -o -path /tmp -o -path /var/tmp \) -prune -o \
    -printf '%y %m %u:%g %p\n' | sort
  in_ct sha256sum /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/subuid /etc/subgid 2>/dev/null || true
}
snapshot >"$tmp/before"

# --- install ------------------------------------------------------------------------------------
step "apt-get install $data/$(basename "$deb1")"
in_ct apt-get install -y -q "$data/$(basename "$deb1")" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; echo "FAIL: apt-get install of the package failed" >&2; exit 1; }
unit() { in_ct systemctl show -P "$1" devscope.service; }
# metrics_from_inside: devscope's /metrics, fetched in the container's network namespace.
metrics() { nsenter -t "$leader" -n curl -sf --max-time 5 http://127.0.0.1:9410/metrics; }
wait_for_metrics() {  # PATTERN: up to 30 s for a /metrics that has a line matching it
  for _ in $(seq 60); do
    metrics 2>/dev/null | grep -q "$1" && return 0
    sleep 0.5
  done
  return 1
}
[[ $(unit ActiveState) == active && $(unit SubState) == running ]] ||
  fail "after install devscope.service is $(unit ActiveState)/$(unit SubState): $(in_ct journalctl -u devscope -n 20 --no-pager)"
[[ $(in_ct systemctl is-enabled devscope.service) == enabled ]] || fail "devscope.service is not enabled after install"
for wants in multi-user.target kubelet.service; do
  in_ct test -L "/etc/systemd/system/$wants.wants/devscope.service" || fail "install did not add devscope.service to $wants's wants"
done
wait_for_metrics '^devscope_build_info{' || fail "the installed unit does not serve devscope_build_info on :9410/metrics"
ok "installed $version1: devscope.service enabled, active, serving /metrics on :9410"

# --- systemd-analyze security of the running unit ---------------------------------------------------
# 0 is locked down, 10 is no sandbox; the unit scores 2.3. The bound leaves room for one more
# setting, not for losing the sandbox: a unit that runs at 2.6 or more fails here.
exposure_bound=2.5
in_ct systemd-analyze security --no-pager devscope.service >"$tmp/security.out" 2>&1 || true
exposure=$(sed -n 's/.*Overall exposure level for devscope.service: \([0-9.]*\).*/\1/p' "$tmp/security.out")
if [[ -z $exposure ]]; then
  fail "systemd-analyze security printed no exposure: $(tail -n 5 "$tmp/security.out")"
elif awk -v e="$exposure" -v b="$exposure_bound" 'BEGIN {exit !(e > b)}'; then
  fail "the running unit's exposure is $exposure, above $exposure_bound: $(grep '✗' "$tmp/security.out" | head -n 20)"
else
  ok "systemd-analyze security of the running unit: exposure $exposure (bound $exposure_bound)"
fi

# --- a crash is restarted ----------------------------------------------------------------------------
step "SIGSEGV to the main process"
pid_before=$(unit MainPID)
restarts_before=$(unit NRestarts)
in_ct systemctl kill --kill-whom=main --signal=SIGSEGV devscope.service
restarted=""
for _ in $(seq 60); do  # RestartSec=5s
  pid=$(unit MainPID)
  if [[ $(unit NRestarts) -gt $restarts_before && $pid != 0 && $pid != "$pid_before" &&
    $(unit SubState) == running ]]; then
    restarted=$pid
    break
  fi
  sleep 0.5
done
if [[ -z $restarted ]]; then
  fail "devscope.service was not restarted after SIGSEGV: $(unit ActiveState)/$(unit SubState), NRestarts=$(unit NRestarts)"
else
  in_ct journalctl -u devscope.service --no-pager -o cat | grep -q 'status=11/SEGV' ||
    fail "the journal does not record the SIGSEGV"
  wait_for_metrics '^devscope_build_info{' || fail "the restarted unit does not serve /metrics"
  ok "SIGSEGV: restarted (pid $pid_before -> $restarted, NRestarts $(unit NRestarts)), serving again"
fi

# --- the admin edits both conffiles; the upgrade keeps them ---------------------------------------------
step "editing the conffiles, upgrading to $version2"
cat >"$merged/etc/default/devscope" <<EOF
# Edited by the node's admin.
DEVSCOPE_ARGS="--collector.devicedir.path=$data/devices"
EOF
cat >>"$merged/etc/devscope/config.yaml" <<'EOF'
# Edited by the node's admin.
device_plugin:
  resources:
    "example.com/widget":
      pre_start_container: true
EOF
in_ct systemctl restart devscope.service
sha_default=$(sha256sum <"$merged/etc/default/devscope")
sha_config=$(sha256sum <"$merged/etc/devscope/config.yaml")
pid_before=$(unit MainPID)
in_ct apt-get install -y -q "$data/$(basename "$deb2")" >"$tmp/upgrade.log" 2>&1 ||
  { cat "$tmp/upgrade.log" >&2; echo "FAIL: apt-get install of the upgrade failed" >&2; exit 1; }
[[ $(in_ct dpkg-query -W -f='${Version}' devscope) == "$version2" ]] || fail "after the upgrade dpkg lists $(in_ct dpkg-query -W -f='${Version}' devscope)"
[[ $(sha256sum <"$merged/etc/default/devscope") == "$sha_default" ]] || fail "the upgrade changed the edited /etc/default/devscope"
[[ $(sha256sum <"$merged/etc/devscope/config.yaml") == "$sha_config" ]] || fail "the upgrade changed the edited /etc/devscope/config.yaml"
leftovers=$(in_ct find /etc/devscope /etc/default -name '*.dpkg-*')
[[ -z $leftovers ]] || fail "the upgrade left $leftovers"
[[ $(unit MainPID) != "$pid_before" && $(unit SubState) == running ]] ||
  fail "the upgrade did not restart devscope.service (MainPID $pid_before -> $(unit MainPID), $(unit SubState))"
[[ $(in_ct systemctl is-enabled devscope.service) == enabled ]] || fail "the upgrade disabled devscope.service"
wait_for_metrics '^devscope_device_info{.*device="widget-1"' ||
  fail "after the upgrade devscope does not run with the edited /etc/default/devscope (no widget-1 in /metrics)"
ok "upgrade $version1 -> $version2: edited conffiles kept, unit restarted into them, still enabled"

# --- the device plugin, through the unit's own paths ----------------------------------------------------
step "kubelet stand-in on the container's /var/lib/kubelet"
# The stand-in runs on this machine, serving the sockets in the container's own /var/lib/kubelet:
# devscope (ProtectSystem=strict, ReadWritePaths=/var/lib/kubelet/device-plugins) must create its
# plugin socket there for the stand-in to dial back.
"$standin" --root "$merged/var/lib/kubelet" --resource example.com/widget --admit 1 \
  --pod default/test-pod/main --wait-seconds 60 >"$tmp/standin.out" 2>"$tmp/standin.err" &
standin_pid=$!
for _ in $(seq 140); do
  grep -q '"event":"\(allocated\|error\)"' "$tmp/standin.out" && break
  kill -0 "$standin_pid" 2>/dev/null || break
  sleep 0.5
done
registered=$(grep '"event":"registered"' "$tmp/standin.out" || true)
allocated=$(grep '"event":"allocated"' "$tmp/standin.out" || true)
if [[ -z $registered || -z $allocated ]]; then
  fail "no registration and admission through the stand-in: $(cat "$tmp/standin.out" "$tmp/standin.err")"
else
  endpoint=$(jq -r '.registrations[0].endpoint' <<<"$registered")
  in_ct test -S "/var/lib/kubelet/device-plugins/$endpoint" ||
    fail "the plugin socket /var/lib/kubelet/device-plugins/$endpoint is not in the container"
  [[ $(jq -r '.registrations[0].options.pre_start_required' <<<"$registered") == true ]] ||
    fail "the registration does not carry config.yaml's pre_start_container: $registered"
  [[ $(jq -r '[.devices[] | select(.health == "Healthy") | .ID] | sort | join(",")' <<<"$registered") == widget-0,widget-1 ]] ||
    fail "ListAndWatch did not stream widget-0 and widget-1 healthy: $registered"
  id=$(jq -r '.ids[0]' <<<"$allocated")
  [[ $(jq -r ".response.envs.WIDGET" <<<"$allocated") == "$id" &&
    $(jq -r '.response.devices[0].host_path' <<<"$allocated") == /dev/null ]] ||
    fail "Allocate did not answer $id's allocate file: $allocated"
  wait_for_metrics "^devscope_container_device_info{namespace=\"default\",pod=\"test-pod\",container=\"main\",resource=\"example.com/widget\",device=\"$id\"" ||
    fail "/metrics does not show $id held by default/test-pod"
  ok "plugin registered at /var/lib/kubelet/device-plugins/$endpoint (pre-start from config.yaml), Allocate of $id, held in /metrics"
fi
kill "$standin_pid"
wait "$standin_pid" 2>/dev/null || true
standin_pid=""

# --- purge -----------------------------------------------------------------------------------------
purge() {
  in_ct apt-get purge -y -q devscope >"$tmp/purge.log" 2>&1 ||
    { cat "$tmp/purge.log" >&2; echo "FAIL: apt-get purge failed" >&2; exit 1; }
}
# On a node whose kubelet keeps files in /var/lib/kubelet, purge leaves the kubelet's directories.
step "apt-get purge devscope beside a kubelet's own files"
echo "kind: KubeletConfiguration" >"$merged/var/lib/kubelet/config.yaml"
purge
for d in /var/lib/kubelet/device-plugins /var/lib/kubelet/plugins_registry; do
  in_ct test -d "$d" || fail "purge removed the kubelet's $d"
done
ok "purge beside a kubelet keeps /var/lib/kubelet/device-plugins and plugins_registry"
# Where no kubelet ever ran (the kubelet's file gone), install again and purge: nothing may remain.
rm "$merged/var/lib/kubelet/config.yaml"
step "apt-get install $version2 again, then purge it"
in_ct apt-get install -y -q "$data/$(basename "$deb2")" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; echo "FAIL: installing again after purge failed" >&2; exit 1; }
[[ $(unit SubState) == running && $(in_ct systemctl is-enabled devscope.service) == enabled ]] ||
  fail "installed again after purge, devscope.service is $(unit SubState), $(in_ct systemctl is-enabled devscope.service)"
purge
[[ -z $(in_ct dpkg-query -W -f='${Status}' devscope 2>/dev/null) ]] ||
  fail "dpkg still knows devscope after purge: $(in_ct dpkg-query -W -f='${Status}' devscope)"
[[ $(unit LoadState) == not-found ]] || fail "systemd still has devscope.service after purge: $(unit LoadState)"
in_ct sh -c 'ls /var/lib/dpkg/info/devscope.* 2>/dev/null' | grep . && fail "dpkg's info files for devscope remain"
if in_ct sh -c 'for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = devscope ] && exit 0; done; exit 1'; then
  fail "a devscope process still runs after purge"
fi
snapshot >"$tmp/after"
if diff -u "$tmp/before" "$tmp/after" >"$tmp/purge.diff"; then
  ok "purge: package, unit, processes, files, directories and accounts all gone"
else
  fail "purge did not restore the root (- gone, + left behind):
$(grep '^[-+][^-+]' "$tmp/purge.diff")"
fi

step "done"
if [[ $failures -gt 0 ]]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all checks of the package under systemd passed in $((SECONDS - started)) s"
