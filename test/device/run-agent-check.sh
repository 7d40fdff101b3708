#!/usr/bin/env bash
# Runs the whole agent as the container image holds it (its own loader and Debian 12 libraries,
# so it runs on a device machine that is not Debian 12) against the real NVIDIA driver, and prints
# what it served next to what nvidia-smi says, for a person to compare. Also prints the driver's
# MIG capability minors table, whose format the nvml collector parses.
#
# Usage: test/device/run-agent-check.sh ROOTFS
#   ROOTFS: the image's root file system, e.g. made here with
#     cmake --build build --target image && mkdir -p build/device-check/layout &&
#     tar -xf build/devscope-image.tar -C build/device-check/layout &&
#     umoci unpack --rootless --image build/device-check/layout:ghcr.io/devscope/devscope:0.1.0 build/device-check/bundle
#   and then build/device-check/bundle/rootfs.
set -uo pipefail
root=$(cd "${1:?usage: run-agent-check.sh ROOTFS}" && pwd)
tmp=$(mktemp -d)
trap '[[ -n $pid ]] && kill $pid 2>/dev/null && wait $pid; rm -rf "$tmp"' EXIT
pid=""

library=$(ldconfig -p 2>/dev/null | awk '/libnvidia-ml\.so\.1 / {print $NF; exit}')
for dir in /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu /usr/lib64; do
  [[ -z $library && -e $dir/libnvidia-ml.so.1 ]] && library=$dir/libnvidia-ml.so.1
done
echo "== libnvidia-ml: ${library:-not found}"
echo "== nvidia-smi"
nvidia-smi --query-gpu=index,uuid,name,pci.bus_id,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw,mig.mode.current,ecc.errors.corrected.aggregate.total \
  --format=csv 2>&1 || true
echo "== /proc/driver/nvidia-caps/mig-minors (first 8 of $(wc -l </proc/driver/nvidia-caps/mig-minors 2>/dev/null || echo 0) lines)"
head -n 8 /proc/driver/nvidia-caps/mig-minors 2>&1 || true
ls /dev/nvidia-caps 2>&1 | head -n 3

# Always called in a subshell ($(...) or &), so exec leaves $! the agent's own pid.
devscope() {
  exec "$root/lib64/ld-linux-x86-64.so.2" --library-path "$root/usr/lib/x86_64-linux-gnu" \
    "$root/usr/bin/devscope" "$@"
}
echo "== devscope --version: $(devscope --version 2>&1)"
printf 'collectors:\n  nvml:\n    library: %s\n' "${library:-libnvidia-ml.so.1}" >"$tmp/config.yaml"
devscope --config.file="$tmp/config.yaml" --web.listen-address=127.0.0.1:9555 \
  --kubelet.pod-resources-socket="$tmp/absent.sock" --no-device-plugin --no-collector.drm \
  --no-collector.netdev >"$tmp/log" 2>&1 &
pid=$!
sleep 5
echo "== GET /metrics: device and collector series"
exec 3<>/dev/tcp/127.0.0.1/9555 && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 &&
  grep -E '^devscope_(device|collector)_' <&3
exec 3<&-
echo "== resident memory: $(awk '/^VmRSS/ {print $2 " " $3}' /proc/$pid/status)"
echo "== log"
cat "$tmp/log"
