#!/usr/bin/env bash
# The path a user takes, end to end: the Helm chart rendered with `helm template` for several
# value sets, the image (the OCI archive, loaded by podman) run under podman with runc exactly as
# the rendered DaemonSet says (args, env, volumes, security context, resources, probes run as the
# kubelet runs them), against the kubelet stand-ins; then a pod admitted through the stand-in
# (GetPreferredAllocation, Allocate, PreStartContainer) and its workload started with exactly
# what Allocate answered, and checked from inside.
#
# The node: $host stands for the node's root. Every hostPath of the DaemonSet maps to
# $host/<path>: the kubelet stand-in's directories, a fixture /sys (an AMD GPU, a NIC with a
# vfio-bound VF), a devicedir, a directory with a fake libnvidia-ml. The test runs in a private
# mount namespace whose /dev is $host/dev (the basic nodes and the fixture's device nodes) and
# whose /run/cdi is $host/run/cdi, so that what Allocate and the CDI specs name (/dev/dri/card1,
# specs in /var/run/cdi) is what podman finds, as the node's runtime would. Mount host paths that
# Allocate names are real directories of this machine.
#
# usage: deployment_test.sh BUILD_DIR SOURCE_DIR VERSION KUBELET_STANDIN FAKE_NVML_LIB TOOLS_DIR [SET...]
# Exit 77 (skipped) only where podman cannot run a container here at all: not root, no private
# mount namespace (unshare --mount), or a trivial busybox container under runc fails to start;
# the reason is printed. Missing packages are a failure (scripts/install-deps installs them).
set -uo pipefail
usage="usage: deployment_test.sh BUILD_DIR SOURCE_DIR VERSION KUBELET_STANDIN FAKE_NVML_LIB TOOLS_DIR [SET...]"
build=${1:?$usage}
src=${2:?$usage}
version=${3:?$usage}
kubelet_bin=${4:?$usage}
fake_nvml=${5:?$usage}
tools=${6:?$usage}
shift 6
all_sets=(defaults plugin-off collectors-off https-basic-auth https-client-certs devicedir cdi)
[[ $# -gt 0 ]] && sets=("$@") || sets=("${all_sets[@]}")

skip() { echo "SKIP: $*"; exit 77; }

# --- outside the namespace: what must be there, and whether this machine can run containers --------
if [[ -z ${DEVSCOPE_DEPLOYMENT_NS:-} ]]; then
  [[ $(id -u) -eq 0 ]] || skip "not root: rootless podman cannot create the fixture's device nodes"
  missing=()
  for t in podman runc busybox curl jq yq openssl umoci unshare; do command -v $t >/dev/null || missing+=("$t"); done
  ((${#missing[@]} == 0)) || { echo "FAIL: not installed: ${missing[*]} (scripts/install-deps)" >&2; exit 1; }
  unshare --mount --propagation private true 2>/dev/null ||
    skip "unshare --mount fails here (no CAP_SYS_ADMIN?): the test needs a private mount namespace"
  # The CDI directory podman reads (/var/run/cdi is /run/cdi); the namespace mounts over it.
  mkdir -p /run/cdi
  DEVSCOPE_DEPLOYMENT_NS=1 exec unshare --mount --propagation private bash "$0" "$build" "$src" "$version" \
    "$kubelet_bin" "$fake_nvml" "$tools" "${sets[@]}"
fi

# --- inside the namespace ---------------------------------------------------------------------------
tmp=$(mktemp -d /tmp/devscope-deployment.XXXXXX)
host=$tmp/host
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
kubelet_pid=""
cleanup() {
  [[ -n $kubelet_pid ]] && kill "$kubelet_pid" 2>/dev/null
  pm rm -f -a -t 0 >/dev/null 2>&1
  # Everything mounted lives in this namespace; unmount before deleting, never across a mount.
  umount -R /dev /run/cdi "$host/dev" 2>/dev/null
  findmnt -rn -o TARGET | grep "^$tmp" | sort -r | xargs -r umount 2>/dev/null
  rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
pm() {
  podman --root "$tmp/storage" --runroot "$tmp/runroot" --tmpdir "$tmp/libpod" --runtime runc \
    --cgroup-manager cgroupfs --events-backend file "$@"
}
limits=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
# shellcheck source=test/packaging/deployment_pod.sh
source "$src/test/packaging/deployment_pod.sh"
# shellcheck source=test/packaging/https.sh
source "$src/test/packaging/https.sh"
# shellcheck source=test/packaging/deployment_node.sh
source "$src/test/packaging/deployment_node.sh"
started=$(date +%s)

helm=${DEVSCOPE_HELM:-$(command -v helm || true)}
[[ -n $helm ]] || { [[ -x $tools/helm ]] || "$src/scripts/install-helm" "$tools" >/dev/null; helm=$tools/helm; }

# A busybox root file system: the workload image, and the probe of whether podman runs at all.
make_busybox_root "$tmp/workload-root"
if ! probe_out=$(pm run --rm "${limits[@]}" --rootfs "$tmp/workload-root" /bin/true 2>&1); then
  skip "podman cannot run a busybox container with runc here: $probe_out"
fi

make_node
# The image as shipped, loaded under the reference the chart renders.
bash "$src/packaging/image/build-image.sh" "$build" "$tmp/image.tar" "$version" deployment-test >"$tmp/image.log" 2>&1 ||
  { cat "$tmp/image.log" >&2; echo "FAIL: build-image.sh" >&2; exit 1; }
loaded=$(pm load -i "$tmp/image.tar" 2>&1 | sed -n 's/^Loaded image: //p')
[[ $loaded == "ghcr.io/devscope/devscope:$version" ]] || fail "podman load named the image '$loaded', want ghcr.io/devscope/devscope:$version"
tar -C "$tmp/workload-root" -c . | pm import - localhost/devscope-test-workload:1 >/dev/null ||
  { echo "FAIL: cannot import the workload image" >&2; exit 1; }
ok "image loaded as $loaded ($(du -h "$tmp/image.tar" | cut -f1)), node prepared in $(($(date +%s) - started)) s"

# wait_ready CID IP: the readiness probe, as the kubelet runs it, until it passes (30 s at most),
# while the container keeps running; then the liveness probe once.
wait_ready() {
  local cid=$1 ip=$2 why="" deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    [[ $(pm inspect -f '{{.State.Running}}' "$cid") == true ]] ||
      { fail "$set: the container exited ($(pm inspect -f '{{.State.ExitCode}}' "$cid")): $(pm logs "$cid" 2>&1 | tail -n5)"; return 1; }
    why=$(probe "$container" readinessProbe "$ip" "$cid") && break
    sleep 0.2
  done
  ((SECONDS < deadline)) || { fail "$set: never ready: $why; log: $(pm logs "$cid" 2>&1 | tail -n5)"; return 1; }
  why=$(probe "$container" livenessProbe "$ip" "$cid") || { fail "$set: liveness: $why"; return 1; }
}

# check_paths ADMIT_JSON: Allocate's host paths are the node's: device nodes under /dev, nothing
# under one of devscope's own mounts (/host/dev, the kubelet's directories, ...).
check_paths() {
  local path mount_path
  while read -r path; do
    [[ $path == /dev/* ]] || fail "$set: Allocate names device host path $path, not under the node's /dev"
  done < <(jq -r '.response.devices[]?.host_path' <<<"$1")
  while read -r path; do
    while read -r mount_path; do
      [[ $path == "$mount_path" || $path == "$mount_path"/* ]] &&
        fail "$set: Allocate names $path, a path under devscope's own mount $mount_path"
    done < <(jq -r '.volumeMounts[].mountPath' <<<"$container")
  done < <(jq -r '.response | (.devices[]?.host_path), (.mounts[]?.host_path)' <<<"$1")
}

# run_workload RESOURCE KIND: admits one pod holding one device of RESOURCE, starts its workload
# with exactly what Allocate answered, and checks what the workload sees.
run_workload() {
  local resource=$1 kind=$2 pod="$set-$2" answer
  answer=$(kubelet admit "$resource" 1 "deploy-test/$pod/workload")
  [[ $(jq -r .event <<<"$answer") == allocated ]] || { fail "$set: admitting $resource: $(jq -r .error <<<"$answer")"; return 1; }
  local calls
  calls=$(jq -r '.calls | join(",")' <<<"$answer")
  local want_calls=GetPreferredAllocation,Allocate
  [[ $(yq -r --arg r "$resource" '.config.device_plugin.resources[$r].pre_start_container // false' "$values") == true ]] &&
    want_calls+=,PreStartContainer
  [[ $calls == "$want_calls" ]] || fail "$set: the kubelet called $calls for $resource, want $want_calls"
  check_paths "$answer"
  local allocate_with
  allocate_with=$(yq -r --arg r "$resource" '.config.device_plugin.resources[$r].allocate_with //
    .config.device_plugin.allocate_with // "device-specs"' "$values")
  local names specs
  names=$(jq -r '[.response.cdi_devices[].name] | join(",")' <<<"$answer")
  specs=$(jq '.response.devices | length' <<<"$answer")
  case $allocate_with in
    cdi) [[ $specs == 0 && $names == "$resource=$(jq -r '.ids[0]' <<<"$answer")" ]] ||
      fail "$set: allocate_with cdi, and Allocate answered $specs device specs and CDI names '$names'" ;;
    device-specs) [[ $specs -gt 0 && -z $names ]] ||
      fail "$set: allocate_with device-specs, and Allocate answered $specs device specs and CDI names '$names'" ;;
  esac
  local -a args
  mapfile -t args < <(workload_args "$answer")
  local out
  # Every character device, every variable, every mount's marker file, as the workload sees them.
  out=$(pm run --rm --pull=never "${limits[@]}" "${args[@]}" localhost/devscope-test-workload:1 sh -c \
    'find /dev -type c | while read -r n; do echo "node $n $(stat -c %t:%T "$n")"; done
     env | sed "s/^/env /"; for f in /opt/*/marker; do [ -f "$f" ] && echo "file $f $(cat "$f")"; done; true' 2>&1) ||
    { fail "$set: the $kind workload did not run: $out (podman ${args[*]})"; return 1; }
  local fact seen=()
  IFS='|' read -r -a facts <<<"${workload_facts[$kind]}"
  for fact in "${facts[@]}"; do
    if grep -qxF "$fact" <<<"$out"; then seen+=("${fact#* }"); else fail "$set: the $kind workload does not see '$fact'"; fi
  done
  # ... and no other fixture device.
  local spec node
  for spec in "${fixture_nodes[@]}"; do
    node=${spec%% *}
    [[ ${workload_facts[$kind]} == *"node $node "* ]] && continue
    grep -q "^node $node " <<<"$out" && fail "$set: the $kind workload sees $node, which it was not given"
  done
  local how="device specs"
  [[ $(jq '.response.cdi_devices | length' <<<"$answer") -gt 0 ]] && how="CDI $(jq -r '[.response.cdi_devices[].name] | join(",")' <<<"$answer")"
  [[ $(jq '.response.devices | length' <<<"$answer") -gt 0 && $how == CDI* ]] && how="device specs and $how"
  ok "$set: $resource ($kind, $(jq -r '.ids | join(",")' <<<"$answer")) through $calls, by $how; the workload saw: $(IFS=';'; echo "${seen[*]}")"
  pods_admitted+=("$pod")
}

# run_set NAME: one value set from helm template to a stopped container.
run_set() {
  set=$1
  local t0=$SECONDS failures_before=$failures
  values=$tmp/values/$set.yaml
  mkdir -p "$tmp/values" "$tmp/rendered"
  set_values "$set" >"$values" || { fail "no value set $set"; return; }
  local rendered=$tmp/rendered/$set.yaml
  "$helm" template devscope "$src/charts/devscope" --namespace devscope-system -f "$values" >"$rendered" 2>"$tmp/helm.err" ||
    { fail "$set: helm template: $(cat "$tmp/helm.err")"; return; }
  write_configmaps "$rendered"
  local ds
  ds=$(yq -c 'select(.kind == "DaemonSet")' "$rendered")
  container=$(jq -c '.spec.template.spec.containers[0]' <<<"$ds")
  local scheme port
  scheme=$(yq -r '.web.scheme // "http"' "$values")
  port=$(jq -r '.ports[] | select(.name == "metrics") | .containerPort' <<<"$container")

  # The node as the kubelet leaves it: its directories, no sockets; a device-plugins directory only
  # where the plugin is on (a node without one must not crash-loop devscope when it is off).
  rm -rf "$host/var/lib/kubelet" "$host"/run/cdi/*
  local -a kubelet_args=()
  if [[ $(yq -r '.devicePlugin.enabled // true' "$values") == false ]]; then
    kubelet_args=(--without-device-plugins)
    jq -e '.args | any(startswith("--kubelet.device-plugins-dir"))' <<<"$container" >/dev/null &&
      fail "$set: the plugin is off, and the DaemonSet still passes --kubelet.device-plugins-dir"
  fi
  kubelet_start "${kubelet_args[@]}" || return

  local -a args
  mapfile -t args < <(pod_run_args "$ds")
  [[ ${#args[@]} -gt 0 && $failures == "$failures_before" ]] || { kubelet_stop; return; }
  local cid ip
  cid=$(pm run -d --name "devscope-$set" --pull=never "${limits[@]}" "${args[@]}" 2>"$tmp/run.err") ||
    { fail "$set: podman run: $(cat "$tmp/run.err")"; kubelet_stop; return; }
  ip=$(pm inspect -f '{{.NetworkSettings.IPAddress}}' "$cid")
  if wait_ready "$cid" "$ip"; then
    local ready_s=$((SECONDS - t0))
    check_node "$scheme" "$ip" "$port"
    ok "$set: started, probes pass (ready after ${ready_s} s), /metrics serves the node's ${set_collectors[$set]:-no} devices"
    local cdi=false
    [[ $(yq -r '.devicePlugin.cdi.enabled // false' "$values") == true ]] && cdi=true
    [[ $cdi == true ]] && check_cdi_specs
    pods_admitted=()
    local pair
    for pair in ${set_admits[$set]:-}; do run_workload "${pair%%=*}" "${pair#*=}"; done
    check_pods "$scheme" "$ip" "$port"
  fi
  pm stop -t 10 "$cid" >/dev/null 2>&1
  local code
  code=$(pm inspect -f '{{.State.ExitCode}}' "$cid")
  [[ $code == 0 ]] || fail "$set: devscope exited $code on SIGTERM: $(pm logs "$cid" 2>&1 | tail -n3)"
  local left
  left=$(ls "$host/run/cdi")
  [[ -z $left ]] || fail "$set: CDI specs left after devscope stopped: $left"
  if [[ $failures != "$failures_before" ]]; then
    echo "--- $set: devscope's log ---" >&2
    pm logs "$cid" 2>&1 | tail -n 15 >&2
  fi
  pm rm -f "$cid" >/dev/null 2>&1
  kubelet_stop
  echo "$set: $((SECONDS - t0)) s"
}

# check_node SCHEME IP PORT: /metrics lists the fixture's devices of the set's collectors (and no
# others), passes promtool, and the plugin registered exactly the resources the set advertises.
check_node() {
  local metrics collector id failures_before_node=$failures
  metrics=$(scrape "$set" "$1" "$2" "$3" /metrics) || { fail "$set: cannot scrape /metrics"; return; }
  if [[ $1 == https ]]; then
    curl -sf --max-time 5 -k "https://$2:$3/metrics" >/dev/null &&
      fail "$set: /metrics answered a client with neither credentials nor a client certificate"
  fi
  command -v promtool >/dev/null && { promtool check metrics <<<"$metrics" >"$tmp/promtool.out" 2>&1 ||
    fail "$set: promtool: $(head -n3 "$tmp/promtool.out")"; }
  for collector in drm netdev nvml devicedir; do
    for id in ${fixture_ids[$collector]}; do
      if [[ " ${set_collectors[$set]} " == *" $collector "* ]]; then
        grep "^devscope_device_info{" <<<"$metrics" | grep -F "device=\"$id\"" | grep -qF "collector=\"$collector\"" ||
          fail "$set: /metrics has no $collector device $id"
      else
        grep "^devscope_device_info{" <<<"$metrics" | grep -qF "device=\"$id\"" &&
          fail "$set: /metrics has $collector device $id, which this set does not collect"
      fi
    done
  done
  [[ $failures == "$failures_before_node" ]] ||
    echo "--- $set: the devices /metrics lists ---" "$(grep -E '^devscope_(device_info|collector_up)' <<<"$metrics")" >&2
  local want got pair
  want=$(for pair in ${set_admits[$set]:-}; do echo "${pair%%=*}"; done | sort | tr '\n' ' ')
  if [[ -n $want ]]; then
    for pair in ${set_admits[$set]}; do
      [[ $(jq -r .event <<<"$(kubelet wait "${pair%%=*}" 1 15)") == registered ]] || fail "$set: ${pair%%=*} never registered"
    done
  else
    sleep 2  # time enough to register anything it would
  fi
  got=$(kubelet registrations | jq -r '[.registrations[]? | select(.accepted) | .resource] | unique | .[]' | sort | tr '\n' ' ')
  [[ $got == "$want" ]] || fail "$set: the plugin registered '$got', want '$want'"
}

# check_cdi_specs: one spec per advertised resource in the node's CDI directory, each a CDI spec
# (0.5.0 or later) of that kind naming the fixture's devices, with host paths of the node.
check_cdi_specs() {
  local pair resource kind spec mount_path path
  for pair in ${set_admits[$set]}; do
    resource=${pair%%=*}
    kind=${pair#*=}
    spec=$host/run/cdi/devscope-${resource//\//-}.json
    [[ -f $spec ]] || { fail "$set: no CDI spec $spec for $resource: $(ls "$host/run/cdi")"; continue; }
    jq -e --arg k "$resource" '.kind == $k and (.cdiVersion | IN("0.5.0", "0.6.0"))' "$spec" >/dev/null ||
      fail "$set: $spec is not a CDI 0.5.0/0.6.0 spec of kind $resource: $(head -c 300 "$spec")"
    for id in ${fixture_ids[$kind]}; do
      [[ $kind == netdev && $id == 0000:5e:00.0 ]] && continue  # the PF is not advertised
      jq -e --arg id "$id" 'any(.devices[]; .name == $id)' "$spec" >/dev/null || fail "$set: $spec does not name $id"
    done
    while read -r path; do
      [[ $path == /dev/* ]] || fail "$set: $spec names device host path $path, not under the node's /dev"
    done < <(jq -r '.devices[].containerEdits.deviceNodes[]? | .hostPath // .path' "$spec")
    while read -r path; do
      while read -r mount_path; do
        [[ $path == "$mount_path" || $path == "$mount_path"/* ]] && fail "$set: $spec names $path, under devscope's own mount $mount_path"
      done < <(jq -r '.volumeMounts[].mountPath' <<<"$container")
    done < <(jq -r '.devices[].containerEdits | (.deviceNodes[]? | .hostPath // .path), (.mounts[]?.hostPath)' "$spec")
  done
}

# check_pods SCHEME IP PORT: the admitted pods show up as holders in /metrics (devscope reads them
# back from the pod-resources stand-in).
check_pods() {
  local pod metrics="" deadline=$((SECONDS + 10))
  for pod in "${pods_admitted[@]}"; do
    while ((SECONDS < deadline)); do
      metrics=$(scrape "$set" "$1" "$2" "$3" /metrics)
      grep -q "^devscope_container_device_info{.*pod=\"$pod\"" <<<"$metrics" && break
      sleep 0.5
    done
    grep -q "^devscope_container_device_info{.*pod=\"$pod\"" <<<"$metrics" ||
      fail "$set: /metrics does not show pod $pod holding its device"
  done
}

for set in "${sets[@]}"; do
  run_set "$set"
done

echo "deployment test: ${#sets[@]} value sets in $(($(date +%s) - started)) s"
if [[ $failures -gt 0 ]]; then echo "$failures check(s) failed" >&2; exit 1; fi
exit 0
