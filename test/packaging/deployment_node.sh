# The node of deployment_test.sh (its root $host, /dev, fixtures, Secrets), the value sets and
# what each must show, and one set's run. Sourced, not run.

# Fixture device nodes: path, major, minor. Numbers that need no driver: nothing opens them.
fixture_nodes=(
  "/dev/dri/card1 226 1" "/dev/dri/renderD128 226 128"      # drm: an AMD GPU
  "/dev/vfio/vfio 10 196" "/dev/vfio/42 242 42"             # netdev: a VF bound to vfio-pci
  "/dev/nvidia0 195 0" "/dev/nvidiactl 195 255" "/dev/nvidia-uvm 243 0"  # nvml (fake library)
  "/dev/widget0 240 0"                                       # devicedir
)
gpu_uuid=GPU-fa4e0000-0000-4000-8000-000000000000  # what the fake NVML names its first GPU

# What a workload holding one device of each kind must see: device nodes (major:minor in hex, as
# busybox stat prints them), variables and files of its mounts.
declare -A workload_facts=(
  [drm]="node /dev/dri/card1 e2:1|node /dev/dri/renderD128 e2:80"
  [netdev]="node /dev/vfio/42 f2:2a|node /dev/vfio/vfio a:c4"
  [nvml]="node /dev/nvidia0 c3:0|node /dev/nvidiactl c3:ff|node /dev/nvidia-uvm f3:0"
  [devicedir]="node /dev/widget0 f0:0|env WIDGET_VISIBLE_DEVICES=widget-0|file /opt/widget/marker widget-share"
)
# The device IDs each collector finds on the fixture.
declare -A fixture_ids=([drm]="0000:03:00.0" [netdev]="0000:5e:00.0 0000:5e:00.2" [nvml]=$gpu_uuid [devicedir]=widget-0)

# Per set: the collectors whose devices /metrics must list; RESOURCE=KIND pairs to admit (one
# device each, one workload each); how a scraper authenticates (plain, basic, mtls).
declare -A set_collectors=([defaults]="drm netdev" [plugin-off]="drm netdev" [collectors-off]=""
  [https-basic-auth]="drm netdev" [https-client-certs]="drm netdev" [devicedir]="drm netdev nvml devicedir"
  [cdi]="drm netdev nvml devicedir")
declare -A set_admits=([https-basic-auth]="amd.com/gpu=drm" [https-client-certs]="nic.example.com/vf=netdev"
  [devicedir]="example.com/widget=devicedir nvidia.com/gpu=nvml"
  [cdi]="amd.com/gpu=drm nic.example.com/vf=netdev example.com/widget=devicedir nvidia.com/gpu=nvml")
declare -A set_scrape=([https-basic-auth]=basic [https-client-certs]=mtls)

# set_values NAME: the chart values of one set, as a user would write them.
set_values() {
  local nvml_and_devicedir='collectors:
  nvml: true
  devicedir:
    path: /run/devscope/devices
env:
  - name: FAKE_NVML_GPUS
    value: "1"
extraVolumes:
  - name: fake-nvml
    hostPath:
      path: /usr/lib/devscope-test-nvml
      type: Directory
extraVolumeMounts:
  - name: fake-nvml
    mountPath: /usr/lib/devscope-test-nvml
    readOnly: true'
  case $1 in
    defaults) echo "{}" ;;
    plugin-off) printf 'devicePlugin:\n  enabled: false\n' ;;
    collectors-off) printf 'collectors:\n  nvml: false\n  drm: false\n  netdev: false\n' ;;
    https-basic-auth)
      printf 'web:\n  configSecret: devscope-web\n  tlsSecret: devscope-tls\n  scheme: https\n'
      printf 'config:\n  collectors:\n    drm:\n      advertise: amd.com/gpu\n' ;;
    https-client-certs)
      printf 'web:\n  configSecret: devscope-web-mtls\n  tlsSecret: devscope-tls\n  scheme: https\n'
      printf 'config:\n  collectors:\n    netdev:\n      advertise: nic.example.com/vf\n' ;;
    devicedir)
      echo "$nvml_and_devicedir"
      printf 'config:\n  collectors:\n    nvml:\n      library: /usr/lib/devscope-test-nvml/libnvidia-ml.so.1\n'
      printf '      advertise: nvidia.com/gpu\n'
      printf '  device_plugin:\n    resources:\n      example.com/widget:\n        pre_start_container: true\n' ;;
    cdi)
      echo "$nvml_and_devicedir"
      printf 'devicePlugin:\n  cdi:\n    enabled: true\n'
      printf 'config:\n  collectors:\n    nvml:\n      library: /usr/lib/devscope-test-nvml/libnvidia-ml.so.1\n'
      printf '      advertise: nvidia.com/gpu\n    drm:\n      advertise: amd.com/gpu\n'
      printf '    netdev:\n      advertise: nic.example.com/vf\n'
      printf '  device_plugin:\n    allocate_with: cdi\n' ;;
    *) return 1 ;;
  esac
}

make_busybox_root() {
  mkdir -p "$1/bin" "$1/dev" "$1/proc" "$1/sys" "$1/etc" "$1/tmp" "$1/opt"
  cp "$(command -v busybox)" "$1/bin/busybox"
  for applet in sh cat env find stat sed true ls; do ln -sf busybox "$1/bin/$applet"; done
}

# make_node: $host and this namespace's /dev and /run/cdi.
make_node() {
  mkdir -p "$host"/{dev,sys,run/cdi,var/lib,usr/lib/devscope-test-nvml,run/devscope/devices}
  ln -s ../run "$host/var/run"
  # /dev: a tmpfs with the basic nodes, the fixture's nodes, its own shm (podman's locks) and pts.
  mount -t tmpfs -o mode=0755 devscope-test-dev "$host/dev"
  local spec path major minor
  for spec in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
    read -r path major minor <<<"$spec"
    mknod -m 0666 "$host/dev/$path" c "$major" "$minor"
  done
  for spec in "${fixture_nodes[@]}"; do
    read -r path major minor <<<"$spec"
    mkdir -p "$(dirname "$host$path")"
    mknod -m 0666 "$host$path" c "$major" "$minor"
  done
  mkdir -p "$host/dev/shm" "$host/dev/pts"
  mount -t tmpfs -o mode=1777 devscope-test-shm "$host/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$host/dev/pts" 2>/dev/null && ln -s pts/ptmx "$host/dev/ptmx"
  ln -s /proc/self/fd "$host/dev/fd"
  for i in 0 1 2; do ln -s "/proc/self/fd/$i" "$host/dev/$(echo stdin stdout stderr | cut -d' ' -f$((i + 1)))"; done
  mount --rbind "$host/dev" /dev
  mount --bind "$host/run/cdi" /run/cdi
  make_sysfs "$host/sys"

  # The devicedir: one widget, with a device node, a variable, a mount and an annotation.
  local widget=$host/run/devscope/devices/widget-0
  mkdir -p "$widget" "$tmp/widget-share"
  echo widget-share >"$tmp/widget-share/marker"
  echo example.com/widget >"$widget/resource"
  echo Healthy >"$widget/health"
  printf 'device /dev/widget0 /dev/widget0 rw\nenv WIDGET_VISIBLE_DEVICES=widget-0\nmount %s /opt/widget ro\nannotation example.com/widget=widget-0\n' \
    "$tmp/widget-share" >"$widget/allocate"
  cp "$fake_nvml" "$host/usr/lib/devscope-test-nvml/libnvidia-ml.so.1"
  make_secrets
}

# make_sysfs ROOT: an AMD GPU (card1, renderD128) and a Mellanox PF with one VF bound to vfio-pci
# (IOMMU group 42), laid out as the kernel lays them out, links relative.
make_sysfs() {
  local s=$1 gpu=$1/devices/pci0000:00/0000:03:00.0 pf=$1/devices/pci0000:00/0000:5e:00.0
  local vf=$1/devices/pci0000:00/0000:5e:00.2
  mkdir -p "$gpu/drm/card1" "$gpu/drm/renderD128" "$pf/net/ens1f0" "$vf" "$s/class/drm" "$s/class/net" \
    "$s/bus/pci/devices" "$s/bus/pci/drivers"/{amdgpu,mlx5_core,vfio-pci} "$s/kernel/iommu_groups/42"
  printf '0x1002\n' >"$gpu/vendor"; printf '0x744c\n' >"$gpu/device"; printf '0x030000\n' >"$gpu/class"
  echo 0 >"$gpu/numa_node"; echo 1 >"$gpu/enable"
  ln -s ../../../bus/pci/drivers/amdgpu "$gpu/driver"
  ln -s ../../../0000:03:00.0 "$gpu/drm/card1/device"
  ln -s ../../devices/pci0000:00/0000:03:00.0/drm/card1 "$s/class/drm/card1"
  printf '0x15b3\n' >"$pf/vendor"; printf '0x101d\n' >"$pf/device"; printf '0x020000\n' >"$pf/class"
  echo 0 >"$pf/numa_node"; echo 4 >"$pf/sriov_totalvfs"; echo 1 >"$pf/sriov_numvfs"
  ln -s ../../../bus/pci/drivers/mlx5_core "$pf/driver"
  ln -s ../0000:5e:00.2 "$pf/virtfn0"
  ln -s ../../../0000:5e:00.0 "$pf/net/ens1f0/device"
  echo up >"$pf/net/ens1f0/operstate"
  ln -s ../../devices/pci0000:00/0000:5e:00.0/net/ens1f0 "$s/class/net/ens1f0"
  printf '0x15b3\n' >"$vf/vendor"; printf '0x101e\n' >"$vf/device"; printf '0x020000\n' >"$vf/class"
  echo 0 >"$vf/numa_node"
  ln -s ../0000:5e:00.0 "$vf/physfn"
  ln -s ../../../bus/pci/drivers/vfio-pci "$vf/driver"
  ln -s ../../../kernel/iommu_groups/42 "$vf/iommu_group"
  for a in 0000:03:00.0 0000:5e:00.0 0000:5e:00.2; do
    ln -s "../../../devices/pci0000:00/$a" "$s/bus/pci/devices/$a"
  done
}

# make_secrets: what a user creates before installing: the TLS pair, and two web configs (basic
# auth; client certificates from a CA of their own) with a client certificate for the scraper.
make_secrets() {
  local secrets=$tmp/secrets c=$tmp/client
  mkdir -p "$secrets"/{devscope-tls,devscope-web,devscope-web-mtls} "$c"
  make_certificate "$secrets/devscope-tls/tls.key" "$secrets/devscope-tls/tls.crt"
  local tls='tls_server_config:
  cert_file: /etc/devscope-tls/tls.crt
  key_file: /etc/devscope-tls/tls.key'
  # bcrypt of "secret" at cost 4.
  printf '%s\nbasic_auth_users:\n  prometheus: %s\n' "$tls" '$2b$04$bK/WuQTajV.OYHjXQxavSu5LWpmDoxzhXv5fJy8uLlwt79pQC.Qn.' \
    >"$secrets/devscope-web/web.yaml"
  make_certificate "$c/ca.key" "$c/ca.crt"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=prometheus \
    -keyout "$c/client.key" -out "$c/client.csr" >/dev/null 2>&1
  openssl x509 -req -in "$c/client.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" -CAcreateserial -days 1 \
    -out "$c/client.crt" >/dev/null 2>&1
  cp "$c/ca.crt" "$secrets/devscope-web-mtls/ca.crt"
  printf '%s\n  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n' "$tls" \
    >"$secrets/devscope-web-mtls/web.yaml"
}

# kubelet_start [--without-device-plugins]; kubelet CMD...: the stand-in (test/tools/kubelet_standin)
# on the node's /var/lib/kubelet, driven line by line; each answer is one JSON line.
kubelet_start() {
  coproc KUBELET { "$kubelet_bin" --root "$host/var/lib/kubelet" --commands "$@" 2>"$tmp/kubelet.log"; }
  kubelet_pid=$KUBELET_PID
  # Ordinary descriptors: a coprocess's own are closed in subshells, $(kubelet ...) included.
  exec {kubelet_in}>&"${KUBELET[1]}" {kubelet_out}<&"${KUBELET[0]}"
  local line=""
  read -r -t 10 -u "$kubelet_out" line
  [[ $(jq -r .event <<<"$line" 2>/dev/null) == serving ]] ||
    { fail "the kubelet stand-in did not start: $line $(cat "$tmp/kubelet.log")"; return 1; }
}
kubelet() {
  local line=""
  echo "$*" >&"$kubelet_in"
  read -r -t 60 -u "$kubelet_out" line || line='{"event":"error","error":"no answer from the stand-in"}'
  echo "$line"
}
kubelet_stop() {
  echo quit >&"$kubelet_in" 2>/dev/null
  exec {kubelet_in}>&- {kubelet_out}<&-
  wait "$kubelet_pid" 2>/dev/null
  kubelet_pid=""
}

# scrape SET SCHEME IP PORT PATH: the metrics as that set's Prometheus fetches them (the server's
# certificate verified, with the set's credentials or client certificate).
scrape() {
  local -a auth=()
  case ${set_scrape[$1]:-plain} in
    basic) auth=(-u prometheus:secret) ;;
    mtls) auth=(--cert "$tmp/client/client.crt" --key "$tmp/client/client.key") ;;
  esac
  [[ $2 == https ]] && auth+=(--cacert "$tmp/secrets/devscope-tls/tls.crt")
  curl -sf --max-time 5 "${auth[@]}" --resolve "devscope:$4:$3" "$2://devscope:$4$5"
}
