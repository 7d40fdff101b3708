#!/usr/bin/env bash
# Runs devscope's nvml collector against the real libnvidia-ml on a machine with an NVIDIA GPU and
# driver, and prints what it saw (every sample, and the processes using each GPU) next to what
# nvidia-smi says, for a person to compare. test/device/run-nvml-compare.sh compares the served
# counters with nvidia-smi's and flags mismatches.
#
# Usage: test/device/run-nvml-check.sh [PREBUILT_NVML_PROBE]
#   With no argument it builds test/device/nvml_probe.cc with only what it needs (collectors/,
#   common/, Abseil, spdlog, yaml-cpp) straight with the C++ compiler: no gRPC or CMake needed.
# Environment:
#   NVML_LIBRARY  library to load (default libnvidia-ml.so.1, as devscope)
#   WATCH         seconds to keep the XID event thread running (default 5)
#   BUILD_DIR     where the probe is built (default a temporary directory)
#   CXX           compiler (default c++)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
probe=${1:-}
library=${NVML_LIBRARY:-libnvidia-ml.so.1}
watch=${WATCH:-5}

if [[ -z $probe ]]; then
  build=${BUILD_DIR:-$(mktemp -d /tmp/nvml-probe.XXXXXX)}
  mkdir -p "$build"
  probe=$build/nvml_probe
  libs="-lspdlog -lfmt -lyaml-cpp"
  if pkg-config --exists absl_statusor absl_strings absl_str_format absl_synchronization absl_time 2>/dev/null; then
    libs="$(pkg-config --cflags --libs absl_statusor absl_status absl_strings absl_str_format \
              absl_synchronization absl_time) $libs"
  else
    libs="-labsl_statusor -labsl_status -labsl_strings -labsl_str_format_internal \
          -labsl_synchronization -labsl_time -labsl_time_zone -labsl_int128 -labsl_base \
          -labsl_raw_logging_internal -labsl_throw_delegate -labsl_cord -labsl_strerror $libs"
  fi
  echo "== building $probe"
  # shellcheck disable=SC2086
  ${CXX:-c++} -std=c++20 -O2 -Wall -DSPDLOG_FMT_EXTERNAL -DSPDLOG_COMPILED_LIB -I"$root" \
    -DDEVSCOPE_VERSION=\"probe\" -DDEVSCOPE_REVISION=\"probe\" \
    "$root/test/device/nvml_probe.cc" "$root"/collectors/*.cc "$root"/common/*.cc \
    -o "$probe" $libs -ldl -pthread
fi

echo "== host"
uname -a
if command -v nvidia-smi >/dev/null; then
  echo "== nvidia-smi -L"
  nvidia-smi -L || true
  echo "== nvidia-smi query"
  nvidia-smi --query-gpu=index,uuid,name,pci.bus_id,serial,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw,mig.mode.current,ecc.errors.corrected.aggregate.total,ecc.errors.uncorrected.aggregate.total \
    --format=csv || true
else
  echo "(no nvidia-smi on PATH)"
fi

echo "== nvml_probe --library $library --watch $watch"
status=0
"$probe" --library "$library" --watch "$watch" || status=$?
echo "== nvml_probe exit status $status"
exit "$status"
